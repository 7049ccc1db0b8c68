"""Where the time of one training step goes: each stage of a 784-100-10 step, timed alone.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/mlp_stages.py

Prints µs per call for the gather, each layer's forward and backward, the cost's δᴸ,
the optimiser step and the whole ``Trainer.train_step``, at each batch size and BLAS
thread count asked for, inside the trainer's own plan for that count
(``Trainer.blas_plan``: the thread limit, SGD steps fused into the GEMMs, and on several
threads the forward products on SciPy's pool), so a fused parameter's step is part of its
layer's backward and the optimiser step is what remains; then one epoch of
``Trainer.fit`` per setting. A benchmark, not a test: the figures guide optimisation of
the hot path.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from _common import SETTLE_SECONDS

from nablanet import SGD, mlp
from nablanet.costs import output_delta
from nablanet.data import Dataset
from nablanet.training import Trainer

N = 60_000


def per_call_us(f, calls: int) -> float:
    f()
    start = time.perf_counter()
    for _ in range(calls):
        f()
    return (time.perf_counter() - start) / calls * 1e6


def stages(data: Dataset, batch_size: int, calls: int, threads: int) -> dict[str, float]:
    net = mlp([784, 100, 10], "sigmoid", "softmax", rng=0)
    trainer = Trainer(net, "log-likelihood", SGD(0.1), batch_size=batch_size, monitor=(),
                      rng=0, blas_threads=threads)
    trainer.n_train = N
    with trainer.blas_plan(threads):
        return _stages(trainer, data, batch_size, calls)


def _stages(trainer: Trainer, data: Dataset, batch_size: int, calls: int) -> dict[str, float]:
    net = trainer.net
    targets = trainer.cost.targets(data.y, 10, net.backend)
    batch = np.random.default_rng(0).permutation(N)[:batch_size]
    x, t = data.x[batch], targets[batch]
    dense1, sigmoid, dense2, softmax = net.layers
    z1, c0 = dense1.forward(x, True)
    a1, c1 = sigmoid.forward(z1, True)
    z2, c2 = dense2.forward(a1, True)
    a2, c3 = softmax.forward(z2, True)
    delta = output_delta(trainer.cost, softmax, a2, t, c3, batch_size)

    def backward(layer, dy, cache):
        layer.zero_grads()
        return layer.backward(dy, cache)

    da1 = backward(dense2, delta, c2)
    dz1 = sigmoid.backward(da1, c1)
    timings = {
        # gathered as training/batches.py does
        "gather x, y": lambda: (data.x.take(batch, axis=0), targets.take(batch, axis=0)),
        "dense 1 forward": lambda: dense1.forward(x, True),
        "sigmoid forward": lambda: sigmoid.forward(z1, True),
        "dense 2 forward": lambda: dense2.forward(a1, True),
        "softmax forward": lambda: softmax.forward(z2, True),
        "output delta": lambda: output_delta(trainer.cost, softmax, a2, t, c3, batch_size),
        "dense 2 backward": lambda: backward(dense2, delta, c2),
        "sigmoid backward": lambda: sigmoid.backward(da1, c1),
        "dense 1 backward": lambda: backward(dense1, dz1, c0),
    }
    out = {name: per_call_us(f, calls) for name, f in timings.items()}
    net.zero_grads()
    net.backward(delta, [c0, c1, c2, c3], 3)
    out["optimizer step"] = per_call_us(lambda: trainer.optimizer.step(net), calls)
    out["whole train_step"] = per_call_us(lambda: trainer.train_step(x, t), calls)
    return out


def epoch_seconds(data: Dataset, batch_size: int, repeats: int, threads: int) -> float:
    net = mlp([784, 100, 10], "sigmoid", "softmax", rng=0)
    trainer = Trainer(net, "log-likelihood", SGD(0.1), batch_size=batch_size, monitor=(),
                      rng=0, blas_threads=threads)
    # the stage timings leave OpenBLAS workers spinning for ~0.1 s: let them stop
    time.sleep(SETTLE_SECONDS)
    best = float("inf")
    for _ in range(repeats):
        trainer.next_epoch = 0
        start = time.perf_counter()
        trainer.fit(data, 1)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[10, 128, 1024])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=3, help="epochs per setting (best is shown)")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    data = Dataset(rng.random((N, 784), dtype=np.float32), rng.integers(0, 10, N))
    for threads in args.threads:
        for m in args.batch_sizes:
            calls = max(20, 30_000 // m)
            print(f"\nbatch {m}, {threads} BLAS thread(s): µs per call")
            for name, us in stages(data, m, calls, threads).items():
                print(f"  {name:18s} {us:9.1f}")
            print(f"  one epoch (best of {args.repeats}): "
                  f"{epoch_seconds(data, m, args.repeats, threads):.3f} s")


if __name__ == "__main__":
    main()
