"""How fast can an epoch's mini-batches be gathered at all? The shipped ``take`` against a
compiled row-copy loop, with and without software prefetch, and against copying the same
bytes in order.

Gathering m random 784-float rows is what ``training/batches.py`` does per mini-batch. If a
compiled loop (one ``memcpy`` per row, optionally prefetching the row ``d`` ahead) were
much faster than NumPy's ``take``, a small C kernel would pay; if prefetching helped, the
copy would be latency-bound and could be overlapped. The sequential copy of the same
volume is the memory system's best case, which no shuffled order can reach.

Needs a C compiler (``cc``); the kernel is built into a temporary folder and loaded with
ctypes. Run: ``.venv/bin/python benchmarks/experiments/gather_floor.py [batch size]``.
"""
from __future__ import annotations

import ctypes
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _paired import N

KERNEL = r"""
#include <stdint.h>
#include <string.h>
void gather(const float *x, const int64_t *rows, int64_t n, int64_t d, float *out, int ahead) {
    size_t bytes = (size_t)d * sizeof(float);
    for (int64_t i = 0; i < n; i++) {
        if (ahead && i + ahead < n) {
            const char *next = (const char *)(x + rows[i + ahead] * d);
            for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(next + o, 0, 0);
        }
        memcpy(out + i * d, x + rows[i] * d, bytes);
    }
}
"""


def compiled_gather():
    """The C kernel as a Python callable, or None where there is no compiler."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    folder = Path(tempfile.mkdtemp())
    (folder / "gather.c").write_text(KERNEL)
    subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", folder / "gather.so",
                    folder / "gather.c"], check=True)
    lib = ctypes.CDLL(str(folder / "gather.so"))
    ptr, i64 = ctypes.c_void_p, ctypes.c_int64
    lib.gather.argtypes = [ptr, ptr, i64, i64, ptr, ctypes.c_int]

    def gather(x, rows, out, ahead):
        lib.gather(x.ctypes.data, rows.ctypes.data, len(rows), x.shape[1], out.ctypes.data,
                   ahead)
    return gather


def epoch_ms(x, order, m, copy) -> float:
    """Best of 7 epochs of ``copy(batch_rows, k)``, in ms."""
    best = float("inf")
    for _ in range(7):
        start = time.perf_counter()
        for k, i in enumerate(range(0, len(order) - m + 1, m)):
            copy(order[i:i + m], k)
        best = min(best, time.perf_counter() - start)
    return 1e3 * best


def main(m: int = 1024) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((N, 784), dtype=np.float32)
    order = rng.permutation(N).astype(np.int64)
    buffers = [np.empty((m, 784), np.float32) for _ in range(2)]
    cases = {
        "take (shipped: a fresh array per batch)": lambda rows, k: x.take(rows, axis=0),
        "take(out=buffer) (mode='raise' copies via a temporary)":
            lambda rows, k: x.take(rows, axis=0, out=buffers[k % 2]),
        "take(out=buffer, mode='clip')":
            lambda rows, k: x.take(rows, axis=0, out=buffers[k % 2], mode="clip"),
        "the same bytes copied in order (best case)":
            lambda rows, k: np.copyto(buffers[k % 2], x[k * m:(k + 1) * m]),
    }
    gather = compiled_gather()
    if gather is not None:
        for ahead in (0, 1, 4, 8):
            cases[f"C memcpy per row, prefetch {ahead} rows ahead"] = (
                lambda rows, k, a=ahead: gather(x, rows, buffers[k % 2], a))
    print(f"one epoch of {N:,} random 784-float32 rows gathered in batches of {m}, "
          f"best of 7 (ms); two rounds:")
    for _ in range(2):
        for label, copy in cases.items():
            print(f"  {label:58s} {epoch_ms(x, order, m, copy):6.1f}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
