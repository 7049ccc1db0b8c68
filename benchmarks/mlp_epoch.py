"""One training epoch of the same MLP in nablanet, PyTorch, scikit-learn and a per-example loop.

The network: 784-100-10, sigmoid hidden units, softmax output with the
log-likelihood cost (PyTorch's CrossEntropyLoss on logits, scikit-learn's log
loss), plain SGD with η = 0.1, float32, 60 000 synthetic MNIST-shaped examples
(the same arrays for every framework). Each figure is the best of ``--repeats``
epochs, taken in rounds (every framework once per round) so that a slow spell of the
machine does not fall on one framework only. In the same run it measures the float32
GEMM ceiling (``np.matmul`` of two 2048 × 2048 matrices) and nablanet's achieved
GFLOP/s at batch 1024, and it prints the BLAS kernel NumPy runs, then PASS/FAIL lines for the acceptance targets.

    .venv/bin/python benchmarks/mlp_epoch.py [--repeats 3] [--batch-sizes 10 128 1024]
        [--blas-threads N|auto] [--threads N] [--no-peak-memory]

Each framework runs as its users run it: nablanet as ``nablanet train`` and ``Trainer``
do (``--blas-threads auto``: one BLAS thread for an epoch of small GEMMs, the idle
cores for large ones; the thread count each batch size got is printed), PyTorch,
scikit-learn and the per-example loop with their library defaults. ``--blas-threads N``
fixes nablanet's (0: the BLAS default); ``--threads N`` limits PyTorch and every BLAS
library to N for the whole run. The GEMM ceiling is measured at every thread count in
play, and nablanet's GFLOP/s at batch 1024 is judged against the ceiling at the count
that batch size ran with.

The per-example reference is Nielsen's network2 ``update_mini_batch`` (one
backprop per example on column vectors, gradients summed); it is timed on a
fraction of the epoch (``--reference-examples``) and scaled to 60 000.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import sys
import warnings

import numpy as np
from nablanet.cli.common import blas_threads, thread_setting

from _common import (best_of_interleaved, blas_libraries, environment_lines, format_table,
                     gemm_gflops, synthetic_classification, verdict)

SIZES = (784, 100, 10)
ETA = 0.1
N_EXAMPLES = 60_000
SEED = 0

# Training FLOPs per example (elementwise work ignored): the forward GEMMs, the
# weight-gradient GEMMs (same size), and ∂C/∂a¹ of layer 2 only — no framework
# computes ∂C/∂x for the input layer.
FORWARD_FLOPS = 2 * sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:]))
FLOPS_PER_EXAMPLE = 2 * FORWARD_FLOPS + 2 * SIZES[1] * SIZES[2]

# Acceptance targets (reported, never tuned here).
TARGET_VS_TORCH = {10: 0.25, 128: 0.6}
TARGET_VS_SKLEARN = {10: 0.5, 128: 0.5}
TARGET_VS_PER_EXAMPLE = 0.1          # ≥ 10× faster
TARGET_GEMM_FRACTION = 0.6           # at batch 1024
GEMM_BATCH = 1024


# -- nablanet --------------------------------------------------------------------------
def nablanet_epoch(data, batch_size: int):
    """A fresh net and Trainer (untimed); the returned callable runs ``fit(data, 1)``."""
    from nablanet.net import mlp
    from nablanet.optimizers import SGD
    from nablanet.training import Trainer

    net = mlp(list(SIZES), "sigmoid", "softmax", rng=SEED)
    trainer = Trainer(net, "log-likelihood", SGD(ETA), batch_size=batch_size,
                      monitor=(), rng=SEED)
    return lambda: trainer.fit(data, 1)


def _with_threads(run, setting):
    """``run`` inside ``nablanet.cli.common.blas_threads(setting)``, as ``nablanet train``
    runs its epochs."""

    def timed():
        with blas_threads(setting):
            run()
    return timed


# -- PyTorch ---------------------------------------------------------------------------
def torch_epoch(x, y, batch_size: int):
    """The idiomatic loop: a shuffled permutation, index each mini-batch, step."""
    import torch

    torch.manual_seed(SEED)
    model = torch.nn.Sequential(torch.nn.Linear(SIZES[0], SIZES[1]), torch.nn.Sigmoid(),
                                torch.nn.Linear(SIZES[1], SIZES[2]))
    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=ETA)
    generator = torch.Generator().manual_seed(SEED)
    n = len(x)

    def run():
        order = torch.randperm(n, generator=generator)
        for i in range(0, n, batch_size):
            batch = order[i:i + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
    return run


# -- scikit-learn ------------------------------------------------------------------------
def sklearn_epoch(x, y, batch_size: int, fitted: list | None = None):
    """One ``fit`` epoch of MLPClassifier with plain SGD (no momentum, no L2, no early stop)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(SIZES[1],), activation="logistic", solver="sgd",
                        batch_size=batch_size, learning_rate_init=ETA, momentum=0,
                        nesterovs_momentum=False, alpha=0, max_iter=1, shuffle=True, tol=0,
                        n_iter_no_change=1000, random_state=SEED)

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)   # max_iter=1 is the point
            clf.fit(x, y)
        if fitted is not None:
            fitted.append(clf)
    return run


# -- the per-example reference -------------------------------------------------------------
class PerExampleNetwork:
    """Nielsen's network2 training step: ``update_mini_batch`` backpropagates one
    example at a time (column vectors) and sums the gradients — the loop that a
    matrix-based mini-batch replaces (Nielsen ch. 2, "fully matrix-based approach").

    Softmax output with the log-likelihood cost, so δᴸ = aᴸ − y (BP1); float32
    like the other frameworks.
    """

    def __init__(self, sizes, rng: np.random.Generator):
        self.weights = [(rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)
                        for n_in, n_out in zip(sizes[:-1], sizes[1:])]
        self.biases = [rng.standard_normal((n_out, 1)).astype(np.float32) for n_out in sizes[1:]]

    def update_mini_batch(self, mini_batch, eta: float) -> None:
        nabla_b = [np.zeros_like(b) for b in self.biases]
        nabla_w = [np.zeros_like(w) for w in self.weights]
        for x, y in mini_batch:
            delta_nabla_b, delta_nabla_w = self.backprop(x, y)
            nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b)]
            nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w)]
        scale = np.float32(eta / len(mini_batch))
        self.weights = [w - scale * nw for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - scale * nb for b, nb in zip(self.biases, nabla_b)]

    def backprop(self, x, y):
        activation, activations = x, [x]
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            activation = _sigmoid(w @ activation + b)
            activations.append(activation)
        z = self.weights[-1] @ activation + self.biases[-1]
        e = np.exp(z - z.max())
        activations.append(e / e.sum())
        delta = activations[-1] - y                                    # BP1, σ′ cancels
        nabla_b, nabla_w = [delta], [delta @ activations[-2].T]         # BP3, BP4
        for layer in range(2, len(self.weights) + 1):
            a = activations[-layer]
            delta = (self.weights[-layer + 1].T @ delta) * a * (1 - a)  # BP2
            nabla_b.insert(0, delta)
            nabla_w.insert(0, delta @ activations[-layer - 1].T)
        return nabla_b, nabla_w


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def per_example_epoch(training_data, batch_size: int):
    """Nielsen's SGD epoch over ``training_data`` (a list of (x, y) column vectors)."""
    net = PerExampleNetwork(SIZES, np.random.default_rng(SEED))
    rng = np.random.default_rng(SEED)

    def run():
        order = rng.permutation(len(training_data))
        shuffled = [training_data[i] for i in order]
        with np.errstate(over="ignore"):            # e^{−z} → inf gives σ = 0, as intended
            for k in range(0, len(shuffled), batch_size):
                net.update_mini_batch(shuffled[k:k + batch_size], ETA)
    return run


# -- the report ----------------------------------------------------------------------------
def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def torch_lines(torch) -> list[str]:
    config = torch.__config__.show()
    blas = next((part.split("=", 1)[1] for part in config.replace(",", " ").split()
                 if part.startswith("BLAS_INFO=")), "?")
    return [f"PyTorch {torch.__version__}: {torch.get_num_threads()} threads, BLAS {blas}, "
            f"CPU capability {torch.backends.cpu.get_cpu_capability()}"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3, help="best of this many epochs (default 3)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[10, 128, 1024])
    p.add_argument("--reference-examples", type=int, default=6000,
                   help="examples the per-example loop is timed on, scaled to 60 000 (default 6000)")
    p.add_argument("--frameworks", nargs="+", default=["nablanet", "torch", "sklearn", "per-example"],
                   choices=["nablanet", "torch", "sklearn", "per-example"])
    p.add_argument("--blas-threads", type=thread_setting, default="auto",
                   help="BLAS threads for nablanet, as `nablanet train --blas-threads` "
                        "(default auto; 0: the BLAS default)")
    p.add_argument("--threads", type=int, default=None,
                   help="limit PyTorch and every BLAS library (NumPy's, SciPy's) to N threads "
                        "for the whole run; default: the libraries' own defaults")
    p.add_argument("--case-budget", type=float, default=40.0,
                   help="stop repeating a case once its timed runs took this many seconds (default 40)")
    p.add_argument("--no-peak-memory", action="store_true",
                   help="skip the MNIST peak-memory run (benchmarks/peak_memory.py)")
    p.add_argument("--peak-memory-timeout", type=float, default=300,
                   help="stop the MNIST run after this many seconds; its peak so far is then "
                        "a lower bound (default 300)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from nablanet.data.dataset import Dataset

    x, y = synthetic_classification(N_EXAMPLES, SIZES[0], SIZES[-1], seed=SEED)
    data = Dataset(x, y, "synthetic")
    wanted = set(args.frameworks)
    torch = None
    if "torch" in wanted:
        try:
            import torch
        except ImportError:
            print("PyTorch not installed: its column is skipped (pip install torch)")
            wanted.discard("torch")
    if "sklearn" in wanted:
        try:
            import sklearn.neural_network  # noqa: F401  loaded before BLAS threads are listed
        except ImportError:
            print("scikit-learn not installed: its column is skipped (pip install scikit-learn)")
            wanted.discard("sklearn")

    import scipy.linalg.blas  # noqa: F401  nablanet's axpy uses SciPy's BLAS: load it to list it

    limiter = None
    if args.threads is not None:
        from threadpoolctl import threadpool_limits
        limiter = threadpool_limits(args.threads, user_api="blas")   # held for the whole run
        if torch is not None:
            torch.set_num_threads(args.threads)

    print(f"MLP epoch: {'-'.join(map(str, SIZES))} sigmoid hidden, softmax + log-likelihood, "
          f"SGD η={ETA}, float32, {N_EXAMPLES:,} synthetic examples, best of {args.repeats}")
    for line in environment_lines():
        print("  " + line)
    if torch is not None:
        print("  " + torch_lines(torch)[0])
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    gemm_repeats = max(5, args.repeats)
    threads = _numpy_blas_threads()
    nabla_threads = {m: nablanet_threads(args.blas_threads, m) for m in args.batch_sizes}

    def measure_ceilings(ceilings: dict) -> dict:
        """GFLOP/s at each thread count, the best of this and any earlier measurement."""
        for n in sorted({threads, *nabla_threads.values()} - {None}):
            with blas_threads(n):
                ceilings[n] = max(ceilings.get(n, 0.0), gemm_gflops(2048, repeats=gemm_repeats))
        return ceilings

    ceilings = measure_ceilings({})
    for n, gflops in ceilings.items():
        print(f"  GEMM ceiling: np.matmul 2048×2048 float32, best of {gemm_repeats}, "
              f"{n} BLAS thread(s): {gflops:.1f} GFLOP/s")
    print(f"  nablanet (--blas-threads {args.blas_threads}) trains with "
          + ", ".join(f"{n} BLAS thread(s) at batch {m}" for m, n in nabla_threads.items())
          + f"; the others with {threads}")

    if "per-example" in wanted:
        n_ref = min(args.reference_examples, N_EXAMPLES)
        onehot = np.eye(SIZES[-1], dtype=np.float32)[y[:n_ref]]
        reference_data = [(x[i].reshape(-1, 1), onehot[i].reshape(-1, 1)) for i in range(n_ref)]
        print(f"  per-example loop: timed on {n_ref:,} examples, scaled ×{N_EXAMPLES / n_ref:g} "
              "to a full epoch")
    budget = args.case_budget
    sklearn_dtype = None
    times: dict[tuple[str, int], float] = {}
    for m in args.batch_sizes:
        small = min(N_EXAMPLES, max(8 * m, 2048))      # warm-up slice: a few steps each
        # name → (prepare, warm-up); m and fitted are bound now, the cases run below
        cases: dict = {}
        fitted: list = []
        if "nablanet" in wanted:
            warm = Dataset(x[:small], y[:small], "warm-up")
            cases["nablanet"] = (
                lambda m=m: _with_threads(nablanet_epoch(data, m), args.blas_threads),
                _with_threads(nablanet_epoch(warm, m), args.blas_threads))
        if "torch" in wanted:
            cases["torch"] = (lambda m=m: torch_epoch(tx, ty, m),
                              torch_epoch(tx[:small], ty[:small], m))
        if "sklearn" in wanted:
            cases["sklearn"] = (lambda m=m, fitted=fitted: sklearn_epoch(x, y, m, fitted),
                                sklearn_epoch(x[:small], y[:small], m))
        if "per-example" in wanted:
            cases["per-example"] = (lambda m=m: per_example_epoch(reference_data, m), None)
        for name, seconds in best_of_interleaved(cases, args.repeats, budget_s=budget).items():
            scale = N_EXAMPLES / n_ref if name == "per-example" else 1
            times[name, m] = seconds * scale
        if fitted:
            sklearn_dtype = fitted[-1].coefs_[0].dtype
        done = ", ".join(f"{name} {t:.2f}s" for (name, b), t in times.items() if b == m)
        print(f"  batch {m}: {done}", flush=True)
    if sklearn_dtype is not None:
        print(f"  scikit-learn {_version('scikit-learn')} trained in {sklearn_dtype} "
              "(float32 input is kept as float32)")

    # Measured again after the timings: on a shared machine the first figure may be low.
    ceilings = measure_ceilings(ceilings)
    print("  GEMM ceiling, best of the measurements before and after: "
          + ", ".join(f"{c:.1f} GFLOP/s at {n} thread(s)" for n, c in ceilings.items()))
    print()
    print(report_table(times, args.batch_sizes))
    gflops, gemm_threads = None, nabla_threads.get(GEMM_BATCH)
    ceiling = ceilings.get(gemm_threads)
    if ("nablanet", GEMM_BATCH) in times:
        gflops = FLOPS_PER_EXAMPLE * N_EXAMPLES / times["nablanet", GEMM_BATCH] / 1e9
        print(f"\nnablanet at batch {GEMM_BATCH}: {FLOPS_PER_EXAMPLE * N_EXAMPLES / 1e9:.2f} "
              f"GFLOP per epoch → {gflops:.1f} GFLOP/s = "
              + ", ".join(f"{100 * gflops / c:.0f}% of the {n}-thread ceiling ({c:.1f} GFLOP/s)"
                          for n, c in ceilings.items()))

    peak = None
    if not args.no_peak_memory:
        import peak_memory
        print()
        try:
            peak = peak_memory.measure(echo=True, timeout=args.peak_memory_timeout)
        except RuntimeError as err:
            print(f"peak memory: {err}")
            peak = "failed"

    print()
    for line in acceptance(times, gflops, ceiling, gemm_threads, peak):
        print(line)
    if limiter is not None:
        limiter.restore_original_limits()
    return 0


def report_table(times, batch_sizes) -> str:
    """Seconds per epoch for each framework, and nablanet's time divided by each other's."""
    others = [f for f in ("torch", "sklearn", "per-example") if any((f, m) in times for m in batch_sizes)]
    header = ["batch", "nablanet s"]
    for f in others:
        header += [f"{f} s", f"nabla/{f}"]
    rows = []
    for m in batch_sizes:
        mine = times.get(("nablanet", m))
        row = [str(m), _seconds(mine)]
        for f in others:
            theirs = times.get((f, m))
            row += [_seconds(theirs),
                    f"{mine / theirs:.3f}" if mine is not None and theirs else "—"]
        rows.append(row)
    return format_table(header, rows)


def _seconds(t):
    return "—" if t is None else f"{t:.3f}"


def _ratio_check(times, other: str, m: int, limit: float) -> str:
    label = f"batch {m}: nablanet ≤ {limit:g}× {other}"
    mine, theirs = times.get(("nablanet", m)), times.get((other, m))
    if mine is None or theirs is None:
        return verdict(label, None, "not measured")
    return verdict(label, mine / theirs <= limit, f"{mine / theirs:.3f}×")


def nablanet_threads(setting, batch_size: int) -> int | None:
    """The BLAS threads a nablanet epoch at ``batch_size`` runs with under ``setting``
    (the ``--blas-threads`` value), as the trainer decides it."""
    from nablanet.cli.common import blas_threads
    from nablanet.net import mlp
    from nablanet.training.threads import epoch_thread_limit

    with blas_threads(setting):
        limit = epoch_thread_limit("auto", mlp(list(SIZES), "sigmoid", "softmax"), batch_size)
        return limit or _numpy_blas_threads()


def _numpy_blas_threads() -> int | None:
    """NumPy's BLAS thread count right now (None without threadpoolctl)."""
    mine = [i for i in blas_libraries() if "numpy" in i["owner"]] or blas_libraries()
    return mine[0]["num_threads"] if mine else None


def acceptance(times, gflops, ceiling, threads, peak) -> list[str]:
    lines = [_ratio_check(times, "torch", m, r) for m, r in TARGET_VS_TORCH.items()]
    lines += [_ratio_check(times, "sklearn", m, r) for m, r in TARGET_VS_SKLEARN.items()]
    for m in sorted({b for f, b in times if f == "per-example"}) or [10]:
        mine, theirs = times.get(("nablanet", m)), times.get(("per-example", m))
        label = f"batch {m}: nablanet ≥ {1 / TARGET_VS_PER_EXAMPLE:g}× faster than the per-example loop"
        lines.append(verdict(label, None, "not measured") if mine is None or theirs is None
                     else verdict(label, mine / theirs <= TARGET_VS_PER_EXAMPLE,
                                  f"{theirs / mine:.2g}× faster"))
    label = (f"batch {GEMM_BATCH}: nablanet ≥ {TARGET_GEMM_FRACTION:.0%} of the GEMM ceiling "
             f"at its thread count ({threads})")
    lines.append(verdict(label, None, "not measured") if gflops is None
                 else verdict(label, gflops >= TARGET_GEMM_FRACTION * ceiling,
                              f"{gflops / ceiling:.0%}"))
    from peak_memory import LABEL, peak_verdict
    lines.append(verdict(LABEL, None, "not measured") if peak is None
                 else verdict(LABEL, False, "the run failed") if peak == "failed"
                 else peak_verdict(peak))
    return lines


if __name__ == "__main__":
    sys.exit(main())
