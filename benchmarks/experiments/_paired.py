"""Shared by the experiments: synthetic MNIST-shaped data, a fresh 784-100-10 trainer, and
paired timing of two variants of one epoch (alternating which runs first each round)."""
from __future__ import annotations

import contextlib
import statistics
import threading
import time

import numpy as np

from nablanet import SGD, mlp
from nablanet.data import Dataset
from nablanet.training import Trainer

N = 60_000


def synthetic(seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    return Dataset(rng.random((N, 784), dtype=np.float32), rng.integers(0, 10, N))


def trainer(batch_size: int) -> Trainer:
    net = mlp([784, 100, 10], "sigmoid", "softmax", rng=0)
    return Trainer(net, "log-likelihood", SGD(0.1), batch_size=batch_size, monitor=(), rng=0)


def paired(label: str, base, variant, rounds: int = 20, settle: float = 0.1) -> None:
    """Time ``base()`` and ``variant()`` (each returns its own seconds, or None to be timed
    here) in ``rounds`` rounds; print both medians and the median of variant / base."""
    times = {"base": [], "variant": []}
    for r in range(rounds):
        for side in (("base", "variant") if r % 2 else ("variant", "base")):
            f = base if side == "base" else variant
            time.sleep(settle)
            start = time.perf_counter()
            seconds = f()
            times[side].append(seconds if seconds is not None else time.perf_counter() - start)
    ratios = sorted(v / b for b, v in zip(times["base"], times["variant"]))
    q = len(ratios) // 4
    print(f"{label}: base best {min(times['base']):.4f} median "
          f"{statistics.median(times['base']):.4f} s | variant best {min(times['variant']):.4f} "
          f"median {statistics.median(times['variant']):.4f} s | variant/base median "
          f"{statistics.median(ratios):.3f} (quartiles {ratios[q]:.3f}, {ratios[-q - 1]:.3f})")


def fit_one_epoch(data: Dataset, batch_size: int):
    """A callable training a fresh trainer for one epoch (construction untimed)."""
    def run():
        t = trainer(batch_size)
        start = time.perf_counter()
        t.fit(data, 1)
        return time.perf_counter() - start
    return run


def patched(run, *patchers):
    """``run`` as the variant: every ``unittest.mock.patch`` in ``patchers`` is in force
    while it runs and undone after, so the base runs the shipped code."""
    def variant():
        with contextlib.ExitStack() as stack:
            for patcher in patchers:
                stack.enter_context(patcher)
            return run()
    return variant


def shipped_against_patched(what: str, batch_sizes, *patchers, rounds: int = 20) -> None:
    """For each batch size, a shipped ``Trainer`` epoch (base) against the same epoch with
    ``patchers`` in force (variant), on synthetic data, as :func:`paired` prints them."""
    data = synthetic()
    for m in batch_sizes:
        epoch = fit_one_epoch(data, m)
        paired(f"batch {m}, {what}", epoch, patched(epoch, *patchers), rounds=rounds)


def best_us(f, calls: int = 50, rounds: int = 7) -> float:
    """µs per call of ``f``: the best of ``rounds`` means over ``calls`` calls."""
    best = float("inf")
    for _ in range(rounds):
        f()
        start = time.perf_counter()
        for _ in range(calls):
            f()
        best = min(best, (time.perf_counter() - start) / calls * 1e6)
    return best


class Helper(threading.Thread):
    """A second thread that runs one job at a time: ``submit(f, *args)``, then ``wait()``."""

    def __init__(self):
        super().__init__(daemon=True)
        self._go, self._done, self._job = threading.Semaphore(0), threading.Semaphore(0), None
        self.result = None
        self.start()

    def run(self):
        while True:
            self._go.acquire()
            f, args = self._job
            self.result = f(*args)
            self._done.release()

    def submit(self, f, *args) -> None:
        self._job = f, args
        self._go.release()

    def wait(self):
        self._done.acquire()
        return self.result
