"""On several threads, no fused SGD steps: every GEMM on NumPy's pool and the update as a
separate pass; against the shipped plan (fused steps on SciPy's pool)."""
import sys
from unittest import mock

import _paired
import nablanet.training.fused as fused
from nablanet.utils.blas import thread_count


def main(batch_sizes):
    shipped = fused.thread_plan

    def unfused_when_threaded(net, targets):
        return None if thread_count() > 1 else shipped(net, targets)
    unfused = mock.patch.object(fused, "thread_plan", unfused_when_threaded)
    _paired.shipped_against_patched("unfused on NumPy's pool", batch_sizes, unfused)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [128, 1024])
