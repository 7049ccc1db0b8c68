"""On several threads, no fused SGD steps: every GEMM on NumPy's pool and the update as a
separate pass; against the shipped plan (fused steps on SciPy's pool)."""
import sys
from unittest import mock

import _paired
import nablanet.training.fused as fused
from nablanet.utils.blas import thread_count


def main(batch_sizes):
    data, shipped = _paired.synthetic(), fused.thread_plan

    def unfused_when_threaded(net, targets):
        return None if thread_count() > 1 else shipped(net, targets)
    unfused = mock.patch.object(fused, "thread_plan", unfused_when_threaded)
    for m in batch_sizes:
        epoch = _paired.fit_one_epoch(data, m)
        _paired.paired(f"batch {m}, unfused on NumPy's pool", epoch,
                       _paired.patched(epoch, unfused))


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [128, 1024])
