"""One CD-1 epoch of a 784-500 RBM in nablanet and in an equivalent PyTorch CPU loop.

The same algorithm in both: mini-batches of 100 from a shuffled order, hidden
probabilities p₀ = σ(v₀W + b), a binary sample h₀ (uniform < p₀), the reconstruction
v₁ = σ(h₀Wᵀ + a) as probabilities, p₁ = σ(v₁W + b), and the lecture's update
Δw ← ν Δw + ε(⟨v₀p₀ᵀ⟩ − ⟨v₁p₁ᵀ⟩ − η w) with ε = 0.1, η = 0.0002, ν = 0.5, float32,
on 60 000 synthetic binary 784-pixel images (the same array for both). The PyTorch
loop is written the way a careful user would: in-place sigmoid, ``addmm`` with
α/β to fold the momentum into the statistics products. nablanet's epoch is
``RBM.fit(x, 1)`` (it includes the one-off check that the data are binary).

Each figure is the best of ``--repeats`` epochs, nablanet and PyTorch interleaved
so that load from other processes hits both alike.

    .venv/bin/python benchmarks/rbm_epoch.py [--repeats 3] [--examples 60000] [--threads 1]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from _common import environment_lines, format_table, verdict

N_VISIBLE, N_HIDDEN, BATCH = 784, 500, 100
EPSILON, WEIGHT_COST, MOMENTUM = 0.1, 0.0002, 0.5
SEED = 0
TARGET_RATIO = 1.0            # nablanet / PyTorch


def synthetic_binary(n: int, seed: int = SEED) -> np.ndarray:
    """MNIST-shaped binary images (speed does not depend on what they show)."""
    rng = np.random.default_rng(seed)
    return (rng.random((n, N_VISIBLE), dtype=np.float32) < 0.13).astype(np.float32)


def nablanet_epoch(x: np.ndarray):
    """A fresh RBM (untimed); the returned callable trains it for one epoch."""
    from nablanet.models.rbm import RBM, ContrastiveDivergence

    rbm = RBM(N_VISIBLE, N_HIDDEN, rng=SEED)
    cd = ContrastiveDivergence(k=1, learning_rate=EPSILON, weight_cost=WEIGHT_COST,
                               momentum=MOMENTUM, final_momentum=MOMENTUM, batch_size=BATCH)
    return lambda: rbm.fit(x, 1, cd=cd, monitor=(), rng=SEED)


def torch_epoch(x):
    """The same CD-1 epoch in PyTorch (CPU, float32)."""
    import torch

    gen = torch.Generator().manual_seed(SEED)
    W = torch.randn(N_VISIBLE, N_HIDDEN, generator=gen) * 0.01
    a, b = torch.zeros(N_VISIBLE), torch.zeros(N_HIDDEN)
    dW, da, db = torch.zeros_like(W), torch.zeros_like(a), torch.zeros_like(b)
    n = len(x)

    def run():
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, BATCH):
            v0 = x[order[i:i + BATCH]]
            m = len(v0)
            p0 = torch.addmm(b, v0, W).sigmoid_()
            h0 = (torch.rand(p0.shape, generator=gen) < p0).float()
            v1 = torch.addmm(a, h0, W.t()).sigmoid_()
            p1 = torch.addmm(b, v1, W).sigmoid_()
            # Δw ← ν Δw + ε/m (v₀ᵀp₀ − v₁ᵀp₁) − εη w
            dW.addmm_(v0.t(), p0, beta=MOMENTUM, alpha=EPSILON / m)
            dW.addmm_(v1.t(), p1, alpha=-EPSILON / m)
            dW.add_(W, alpha=-EPSILON * WEIGHT_COST)
            da.mul_(MOMENTUM).add_(v0.mean(0) - v1.mean(0), alpha=EPSILON)
            db.mul_(MOMENTUM).add_(p0.mean(0) - p1.mean(0), alpha=EPSILON)
            W.add_(dW)
            a.add_(da)
            b.add_(db)
    return run


def timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3, help="best of this many epochs (default 3)")
    p.add_argument("--examples", type=int, default=60_000,
                   help="images per epoch (default 60 000); fewer for a quick check")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for both: NumPy's and SciPy's BLAS (threadpoolctl) and "
                        "torch.set_num_threads; default: as the environment sets them. On a "
                        "machine shared with other jobs, 1 avoids BLAS threads spinning on "
                        "busy cores")
    p.add_argument("--no-torch", action="store_true", help="time nablanet only")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    x = synthetic_binary(args.examples)
    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            print("PyTorch not installed: its column is skipped (pip install torch)")
    import scipy.linalg.blas  # noqa: F401  nablanet's axpy uses SciPy's BLAS: load it to limit it
    if args.threads is not None:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads, user_api="blas")     # held for the whole run
        if torch is not None:
            torch.set_num_threads(args.threads)
    print(f"RBM epoch: {N_VISIBLE}-{N_HIDDEN} CD-1, batch {BATCH}, ε={EPSILON}, η={WEIGHT_COST}, "
          f"ν={MOMENTUM}, float32, {args.examples:,} synthetic binary images, best of "
          f"{args.repeats}")
    for line in environment_lines():
        print("  " + line)
    if torch is not None:
        print(f"  PyTorch {torch.__version__}: {torch.get_num_threads()} threads")
        tx = torch.from_numpy(x)

    warm = x[:2000]
    nablanet_epoch(warm)()                       # BLAS threads, allocator, imports
    if torch is not None:
        torch_epoch(tx[:2000])()
    best = {"nablanet": float("inf"), "torch": float("inf")}
    for r in range(max(1, args.repeats)):
        best["nablanet"] = min(best["nablanet"], timed(nablanet_epoch(x)))
        if torch is not None:
            best["torch"] = min(best["torch"], timed(torch_epoch(tx)))
        print(f"  repeat {r + 1}: nablanet {best['nablanet']:.3f}s"
              + (f", torch {best['torch']:.3f}s" if torch is not None else ""), flush=True)

    rows = [["nablanet", f"{best['nablanet']:.3f}", "1.000" if torch is None else
             f"{best['nablanet'] / best['torch']:.3f}"]]
    if torch is not None:
        rows.append(["PyTorch", f"{best['torch']:.3f}", "1.000"])
    print()
    print(format_table(["implementation", "s / epoch", "vs PyTorch"], rows))
    print()
    if torch is None:
        print(verdict(f"nablanet ≤ {TARGET_RATIO}× PyTorch", None, "PyTorch not run"))
    else:
        ratio = best["nablanet"] / best["torch"]
        print(f"ratio nablanet / PyTorch = {ratio:.3f}")
        print(verdict(f"nablanet ≤ {TARGET_RATIO}× PyTorch", ratio <= TARGET_RATIO,
                      f"{ratio:.3f}×"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
