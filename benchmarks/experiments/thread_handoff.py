"""What handing work to a second Python thread costs, and how each stage of a step scales
when two threads run it at once on a one-thread BLAS (``rows`` rows each, default 512)."""
import sys

import numpy as np

from _paired import Helper, best_us
from nablanet.utils.blas import limited


def main(rows):
    rng, helper = np.random.default_rng(0), Helper()
    x = [rng.random((rows, 784), dtype=np.float32) for _ in range(2)]
    z = [rng.random((rows, 100), dtype=np.float32) for _ in range(2)]
    w = rng.random((784, 100), dtype=np.float32) / 100
    stages = {
        "nothing (the hand-off alone)": lambda i: None,
        "forward GEMM x @ W": lambda i: x[i] @ w,
        "weight-gradient GEMM xᵀ δ": lambda i: x[i].T @ z[i],
        "tanh": lambda i: np.tanh(z[i]),
        "row max (softmax)": lambda i: z[i].max(axis=1, keepdims=True),
        "column sum (bias)": lambda i: z[i].sum(axis=0),
        "row gather (take)": lambda i: x[i].take(np.arange(rows), axis=0),
    }

    def in_turn(f):
        f(0)
        f(1)

    def at_once(f):
        helper.submit(f, 1)
        f(0)
        helper.wait()
    with limited(1):
        for name, f in stages.items():
            a, b = best_us(lambda: in_turn(f), 100), best_us(lambda: at_once(f), 100)
            print(f"{rows} rows, {name:30s} in turn {a:7.1f} µs, at once {b:7.1f} µs: "
                  f"×{a / b:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 512)
