"""Gather batch k + 1 in a helper thread while batch k's elementwise layers run (kicked
from the hidden activation's forward, after the first GEMM), against the shipped epoch."""
import sys
from unittest import mock

import _paired
from nablanet.training import Trainer


def gather(x, targets, rows):
    return x.take(rows, axis=0), targets.take(rows, axis=0)


def patched_epoch(gatherer):
    def run_epoch(self, x, targets, n):
        self.net.set_rng(self.rng)
        order, m = self.rng.permutation(n), self.batch_size
        activation = self.net.layers[1]
        forward, pending = activation.forward, {}

        def kick_then_forward(z, train=False):
            if pending.get("job") is not None:
                gatherer.submit(gather, *pending.pop("job"))
            return forward(z, train)
        activation.forward = kick_then_forward
        try:
            xb, yb = x.take(order[:m], axis=0), targets.take(order[:m], axis=0)
            for i in range(0, n, m):
                following = order[i + m:i + 2 * m]
                if len(following):
                    pending["job"] = x, targets, following
                self.train_step(xb, yb)
                if len(following):
                    xb, yb = gatherer.wait()
        finally:
            del activation.forward
    return run_epoch


def main(batch_sizes):
    prefetching = mock.patch.object(Trainer, "_run_epoch", patched_epoch(_paired.Helper()))
    _paired.shipped_against_patched("prefetch inside the step", batch_sizes, prefetching)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [128, 1024])
