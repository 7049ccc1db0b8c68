"""Gather batch k + 1 in a helper thread while batch k's elementwise layers run (kicked
from the hidden activation's forward, after the first GEMM), against the shipped epoch."""
import sys
import threading

import _paired
from nablanet.training import Trainer


class Gatherer(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.go, self.done, self.job = threading.Semaphore(0), threading.Semaphore(0), None
        self.start()

    def run(self):
        while True:
            self.go.acquire()
            x, t, rows = self.job
            self.out = x.take(rows, axis=0), t.take(rows, axis=0)
            self.done.release()


def patched_epoch(gatherer):
    def run_epoch(self, x, targets, n):
        self.net.set_rng(self.rng)
        order, m = self.rng.permutation(n), self.batch_size
        activation = self.net.layers[1]
        forward, pending = activation.forward, {}

        def kick_then_forward(z, train=False):
            if pending.get("job") is not None:
                gatherer.job, pending["job"] = pending["job"], None
                gatherer.go.release()
            return forward(z, train)
        activation.forward = kick_then_forward
        try:
            xb, yb = x.take(order[:m], axis=0), targets.take(order[:m], axis=0)
            for i in range(0, n, m):
                following = order[i + m:i + 2 * m]
                pending["job"] = (x, targets, following) if len(following) else None
                self.train_step(xb, yb)
                if len(following):
                    gatherer.done.acquire()
                    xb, yb = gatherer.out
        finally:
            del activation.forward
    return run_epoch


def main(batch_sizes):
    data, shipped, gatherer = _paired.synthetic(), Trainer._run_epoch, Gatherer()
    for m in batch_sizes:
        epoch = _paired.fit_one_epoch(data, m)

        def variant():
            Trainer._run_epoch = patched_epoch(gatherer)
            try:
                return epoch()
            finally:
                Trainer._run_epoch = shipped
        _paired.paired(f"batch {m}, prefetch inside the step", epoch, variant)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [128, 1024])
