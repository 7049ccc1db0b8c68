"""Shared helpers for the benchmark scripts: timing, the GEMM ceiling, environment facts,
report formatting and the peak memory of a child process.

Every benchmark in this folder is a script run as ``python benchmarks/<name>.py``;
Python then puts this folder on ``sys.path``, so ``from _common import ...`` works
without making ``benchmarks`` a package.
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

#: environment variables that change which BLAS kernel runs, or how many threads it uses
BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
            "OMP_NUM_THREADS", "MKL_NUM_THREADS")


# -- timing ---------------------------------------------------------------------------
def best_of(prepare: Callable[[], Callable[[], object]], repeats: int, *,
            warmup: Callable[[], object] | None = None, budget_s: float | None = None) -> float:
    """The smallest wall-clock time, in seconds, of ``repeats`` runs.

    ``prepare()`` is called untimed before each run and returns the zero-argument
    callable that is timed, so building a fresh model or optimiser never counts.
    The minimum, not the mean, because on a shared machine noise only ever adds
    time. ``warmup`` (untimed, once) lets lazy initialisation (thread pools, first
    BLAS call, allocator growth) happen before the first timed run. Once the timed
    runs have used ``budget_s`` seconds no further repeat starts (at least one runs),
    so one pathologically slow case cannot stall a whole benchmark.
    """
    return best_of_interleaved({"case": (prepare, warmup)}, repeats, budget_s=budget_s,
                               settle_s=0.0)["case"]


#: seconds between timed runs of different cases (see :func:`best_of_interleaved`)
SETTLE_SECONDS = 0.3


def best_of_interleaved(cases: dict[str, tuple[Callable[[], Callable[[], object]],
                                               Callable[[], object] | None]],
                        repeats: int, *, budget_s: float | None = None,
                        settle_s: float = SETTLE_SECONDS) -> dict[str, float]:
    """:func:`best_of` for several cases at once, taken in rounds: each round times every
    case once, starting one case later than the round before.

    ``cases`` maps a name to ``(prepare, warmup)`` as :func:`best_of` takes them. Timed
    one case after another, a slow spell of a shared machine (seconds long here) lands
    on whichever case runs in it and skews the ratios between cases; in rounds, every
    case has runs spread over the whole measurement. A case stops repeating once its
    timed runs used ``budget_s`` seconds (each case runs at least once).

    Each timed run starts ``settle_s`` seconds after the previous one ended: an OpenBLAS
    worker keeps spinning for ~0.1 s after its last GEMM, and one left over from the
    previous framework took half a core from the next one's first tenth of a second.
    """
    names = list(cases)
    for name in names:
        warmup = cases[name][1]
        if warmup is not None:
            warmup()
    best = {name: float("inf") for name in names}
    spent = dict.fromkeys(names, 0.0)
    for r in range(max(1, int(repeats))):
        for name in names[r % len(names):] + names[:r % len(names)]:
            if r and budget_s is not None and spent[name] >= budget_s:
                continue
            run = cases[name][0]()
            time.sleep(settle_s)
            start = time.perf_counter()
            run()
            seconds = time.perf_counter() - start
            best[name], spent[name] = min(best[name], seconds), spent[name] + seconds
    return best


def gemm_gflops(n: int = 2048, repeats: int = 5, dtype=np.float32, seed: int = 0) -> float:
    """The BLAS ceiling: GFLOP/s of ``np.matmul`` on two n × n matrices (2n³ FLOPs), best of ``repeats``."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n), dtype=np.float64).astype(dtype)
    b = rng.standard_normal((n, n), dtype=np.float64).astype(dtype)
    out = np.empty((n, n), dtype=dtype)
    seconds = best_of(lambda: (lambda: np.matmul(a, b, out=out)), repeats,
                      warmup=lambda: np.matmul(a, b, out=out))
    return 2.0 * n ** 3 / seconds / 1e9


# -- data ------------------------------------------------------------------------------
def synthetic_classification(n: int, n_features: int, n_classes: int,
                             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-shaped random data: x float32 uniform in [0, 1) (n × d), labels int64 in [0, K).

    Speed does not depend on what is learned, so random data lets every framework
    train on exactly the same arrays without any data files.
    """
    rng = np.random.default_rng(seed)
    x = rng.random((n, n_features), dtype=np.float32)
    y = rng.integers(0, n_classes, size=n, dtype=np.int64)
    return x, y


# -- environment -----------------------------------------------------------------------
def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux) and its logical core count."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} logical cores"


def blas_libraries() -> list[dict]:
    """The BLAS libraries loaded in this process, as threadpoolctl reports them.

    Each dict holds internal_api (openblas, mkl, blis), version, architecture (the
    kernel actually selected, e.g. Haswell or SkylakeX), num_threads, and ``owner``:
    the folder it was loaded from (``numpy.libs`` and ``scipy.libs`` for wheels, which
    bundle one OpenBLAS each, with a thread pool each). Empty without threadpoolctl.
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [{**info, "owner": Path(info.get("filepath", "")).parent.name}
            for info in threadpool_info() if info.get("user_api") == "blas"]


def describe_blas(info: dict) -> str:
    return (f"{info.get('internal_api')} {info.get('version') or ''}".rstrip()
            + f", kernel {info.get('architecture', '?')}, threads={info.get('num_threads')}"
            + f" [{info.get('owner', '?')}]")


def blas_env() -> str:
    """The BLAS-related environment variables that are set, or 'none set'."""
    found = [f"{k}={os.environ[k]}" for k in BLAS_ENV if k in os.environ]
    return " ".join(found) if found else "none set"


def environment_lines() -> list[str]:
    """What the figures depend on: CPU, Python, NumPy, and every loaded BLAS's kernel and threads.

    Import SciPy (and anything else that brings a BLAS) before calling, so that
    every library the timed code uses is listed.
    """
    lines = [f"CPU: {cpu_model()}",
             f"Python {platform.python_version()}, NumPy {np.__version__}"]
    blas = blas_libraries()
    if blas:
        lines += [f"BLAS: {describe_blas(info)}" for info in blas]
    else:
        lines.append("BLAS: unknown (pip install threadpoolctl to see the kernel)")
    lines.append(f"BLAS environment: {blas_env()}")
    return lines


# -- report ----------------------------------------------------------------------------
def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Columns right-aligned to their widest cell, the first column left-aligned."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def verdict(label: str, ok: bool | None, detail: str = "") -> str:
    """One acceptance line: PASS, FAIL, or SKIP (``ok is None``: not measured)."""
    word = "SKIP" if ok is None else ("PASS" if ok else "FAIL")
    return f"{word}  {label}" + (f"  ({detail})" if detail else "")


# -- memory ------------------------------------------------------------------------------
# Runs in a small, freshly started interpreter: starts the command, waits for it (killing
# it at the time limit) and writes "<ru_maxrss of its children> <exit status> <timed out>".
_PEAK_RSS_WRAPPER = """
import resource, subprocess, sys
out, timeout, cmd = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
try:
    status, timed_out = subprocess.run(cmd, timeout=timeout or None).returncode, 0
except subprocess.TimeoutExpired:
    status, timed_out = -9, 1
with open(out, "w") as f:
    f.write(f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss} {status} {timed_out}")
"""


def run_with_peak_rss(cmd: list[str], *, env: dict | None = None,
                      timeout: float | None = None) -> tuple[int | None, int, str]:
    """Run ``cmd``; return (exit status, peak resident set size in bytes, its output).

    The peak is ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``, read in a small
    wrapper interpreter that starts ``cmd`` as its only child. The wrapper is needed
    because Linux carries a process's peak RSS across fork and exec: a child started
    directly by a big parent (one that has imported torch, say) reports at least the
    parent's size. After ``timeout`` seconds the command is killed, the status is
    None and the peak is the peak so far. Linux reports KiB, macOS bytes.
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="peak-rss-") as tmp:
        result, log_path = os.path.join(tmp, "result"), os.path.join(tmp, "log")
        with open(log_path, "w") as log:
            subprocess.run([sys.executable, "-c", _PEAK_RSS_WRAPPER, result, str(timeout or 0),
                            *cmd], env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
        with open(result) as f:
            maxrss, status, timed_out = (int(v) for v in f.read().split())
        with open(log_path) as f:
            output = f.read()
    scale = 1 if sys.platform == "darwin" else 1024
    return (None if timed_out else status), maxrss * scale, output
