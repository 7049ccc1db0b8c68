"""Data-parallel halves: each half of a mini-batch through a hand-written 784-100-10 step on
a one-thread BLAS in its own Python thread, gradients summed, then one SGD update; against
the shipped Trainer epoch (two-thread BLAS). Also times the two half-steps on cached data,
in parallel and in turn, which bounds what the split can gain."""
import sys
import time

import numpy as np

import _paired
from nablanet.utils.blas import limited

ETA = np.float32(0.1)


class Net:
    def __init__(self, rng):
        self.W1 = (rng.standard_normal((784, 100)) / 28).astype(np.float32)
        self.b1 = np.zeros(100, np.float32)
        self.W2 = (rng.standard_normal((100, 10)) / 10).astype(np.float32)
        self.b2 = np.zeros(10, np.float32)

    def half_step(self, x, t, grads):
        """Sigmoid hidden layer, softmax output, log-likelihood: grads of Σ over the rows."""
        z1 = x @ self.W1
        z1 += self.b1
        a1 = np.tanh(z1 * 0.5)
        a1 += 1
        a1 *= 0.5
        z2 = a1 @ self.W2
        z2 += self.b2
        z2 -= z2.max(axis=1, keepdims=True)
        np.exp(z2, out=z2)
        z2 /= z2.sum(axis=1, keepdims=True)
        delta2 = z2 - t
        grads["W2"], grads["b2"] = a1.T @ delta2, delta2.sum(axis=0)
        delta1 = (delta2 @ self.W2.T) * a1 * (1 - a1)
        grads["W1"], grads["b1"] = x.T @ delta1, delta1.sum(axis=0)

    def update(self, ga, gb, m):
        for name in ("W1", "b1", "W2", "b2"):
            g = ga[name]
            g += gb[name]
            g *= ETA / m
            np.subtract(getattr(self, name), g, out=getattr(self, name))


def both(helper, f, args_a, args_b):
    """f(*args_a) here and f(*args_b) in the helper thread, at once."""
    helper.submit(f, *args_b)
    f(*args_a)
    helper.wait()


def main(batch_sizes):
    data = _paired.synthetic()
    x, targets = data.x, np.eye(10, dtype=np.float32)[data.y]
    rng, helper = np.random.default_rng(0), _paired.Helper()
    for m in batch_sizes:
        net = Net(rng)

        def halves():
            order, ga, gb = rng.permutation(len(x)), {}, {}
            with limited(1):
                start = time.perf_counter()
                for i in range(0, len(x), m):
                    rows = order[i:i + m]
                    a, b = rows[:len(rows) // 2], rows[len(rows) // 2:]
                    both(helper, lambda r, g: net.half_step(x.take(r, axis=0),
                                                           targets.take(r, axis=0), g),
                                (a, ga), (b, gb))
                    net.update(ga, gb, len(rows))
                return time.perf_counter() - start
        _paired.paired(f"batch {m}, data-parallel halves", _paired.fit_one_epoch(data, m), halves,
                       rounds=10)
        xa, xb = x[:m // 2].copy(), x[m // 2:m].copy()
        ta, tb = targets[:m // 2].copy(), targets[m // 2:m].copy()
        steps = len(x) // m

        def cached(parallel):
            def run():
                g1, g2 = {}, {}
                with limited(1):
                    start = time.perf_counter()
                    for _ in range(steps):
                        if parallel:
                            both(helper, net.half_step, (xa, ta, g1), (xb, tb, g2))
                        else:
                            net.half_step(xa, ta, g1)
                            net.half_step(xb, tb, g2)
                    return time.perf_counter() - start
            return run
        _paired.paired(f"batch {m}, cached half-steps: in turn (base) vs in parallel",
                       cached(False), cached(True), rounds=10)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1024])
