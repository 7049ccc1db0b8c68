"""Where a 784-100-10 epoch at batch 1024 spends its time, against the time that 60 % of
the 2-thread GEMM ceiling allows.

Runs the shipped ``Trainer`` epoch by hand in its own thread plan (``blas_plan``), timing
the gather of each mini-batch (``take`` of random rows, as training/batches.py does) and
the ``train_step`` on it separately, and prints both beside the budget. The steps alone
come close to the budget, so the line can only be met if the gather overlaps the steps,
and on two cores both are taken by the GEMMs (``prefetch_in_step.py``,
``data_parallel_halves.py``).
"""
import statistics
import sys
import time

import numpy as np

from _paired import N, best_us, synthetic, trainer
from nablanet.utils.blas import limited

# Training FLOPs per example, as benchmarks/mlp_epoch.py counts them.
FLOPS_PER_EXAMPLE = 2 * 2 * (784 * 100 + 100 * 10) + 2 * 100 * 10


def split_epoch(t, x, targets, m: int) -> tuple[float, float]:
    """(seconds gathering, seconds in train_step) over one shuffled epoch of full batches."""
    order = t.rng.permutation(N)
    gather = steps = 0.0
    for i in range(0, N - m + 1, m):
        start = time.perf_counter()
        batch = order[i:i + m]
        xb, yb = x.take(batch, axis=0), targets.take(batch, axis=0)
        ready = time.perf_counter()
        t.train_step(xb, yb)
        gather, steps = gather + ready - start, steps + time.perf_counter() - ready
    return gather, steps


def main(m: int = 1024, rounds: int = 10) -> None:
    data = synthetic()
    a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    with limited(2):
        ceiling = 2 * 2048 ** 3 / best_us(lambda: a @ a, calls=3, rounds=5) / 1e3   # GFLOP/s
    t = trainer(m)
    t.fit(data, 1)                                  # decides the thread plan; warms up
    targets = t.cost.targets(data.y, 10, t.net.backend)
    full = N // m * m
    budget = FLOPS_PER_EXAMPLE * full / (0.6 * ceiling * 1e9)
    with t.blas_plan(t.threads_used):
        runs = [split_epoch(t, data.x, targets, m) for _ in range(rounds)]
    gather = statistics.median(g for g, _ in runs)
    steps = statistics.median(s for _, s in runs)
    print(f"batch {m}, {t.threads_used} BLAS thread(s), {full:,} examples, ceiling "
          f"{ceiling:.0f} GFLOP/s at 2 threads; median of {rounds} epochs:")
    print(f"  gather {1e3 * gather:.1f} ms + steps {1e3 * steps:.1f} ms = "
          f"{1e3 * (gather + steps):.1f} ms; 60 % of the ceiling allows {1e3 * budget:.1f} ms")
    print(f"  the steps alone reach {FLOPS_PER_EXAMPLE * full / steps / 1e9 / ceiling:.0%} "
          f"of the ceiling, the whole epoch "
          f"{FLOPS_PER_EXAMPLE * full / (gather + steps) / 1e9 / ceiling:.0%}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
