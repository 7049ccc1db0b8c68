"""Each large mini-batch gathered by two threads at once, half the rows each, against the
shipped ``training/batches.py`` (one ``take`` in the main thread on two cores: the helper
thread of its prefetch needs a spare core).

The hope: a row gather is memory-bound, and if one core did not use all of the memory
bandwidth, two cores copying halves would finish sooner even after a thread hand-off.
On the 2-core VM they do not: the gathers alone, with the other core idle, took longer
split than whole (variant/base 1.17 and 1.23), and whole epochs were slower too.
"""
import sys
from unittest import mock

import numpy as np

from _paired import N, Helper, paired, shipped_against_patched, synthetic
import nablanet.training.batches as B

helper = Helper()
shipped_rows = B._rows


def split_rows(a, index):
    """``a.take(index, axis=0)``, the second half of the rows copied in the helper thread."""
    if len(index) * a[:1].nbytes < B.PREFETCH_MIN_BYTES:
        return shipped_rows(a, index)
    out = np.empty((len(index),) + a.shape[1:], a.dtype)
    half = len(index) // 2
    # "clip" never clips (the indices come from a permutation), but the default "raise"
    # makes take copy into a buffer of its own before writing to out=
    helper.submit(a.take, index[half:], 0, out[half:], "clip")
    a.take(index[:half], axis=0, out=out[:half], mode="clip")
    helper.wait()
    return out


def gathers_alone(m: int = 1024) -> None:
    """An epoch's gathers with no steps between them: what the split gains where the
    other core is idle."""
    x, rng = synthetic().x, np.random.default_rng(0)

    def epoch(rows):
        def run():
            order = rng.permutation(N)
            for i in range(0, N, m):
                rows(x, order[i:i + m])
        return run
    paired(f"batch {m}, gathers alone, one thread (base) vs two", epoch(shipped_rows),
           epoch(split_rows))


if __name__ == "__main__":
    gathers_alone()
    shipped_against_patched("rows gathered by two threads", [int(a) for a in sys.argv[1:]] or [1024],
                            mock.patch.object(B, "_rows", split_rows))
