"""The BLAS thread pools, seen through threadpoolctl.

NumPy and SciPy each bring their own OpenBLAS, each with its own pool of threads. The
controller is made once (scanning the loaded libraries takes ~1 ms) and only after
SciPy's BLAS is loaded, so a limit always reaches both pools: a pool left at two threads
beside one held at one kept its workers spinning and stalled training 10–40× on 2 cores.
Without threadpoolctl (an optional speed-up, never a requirement) nothing is limited.
"""
from __future__ import annotations

import functools
from contextlib import nullcontext


@functools.cache
def controller():
    """threadpoolctl's controller of every loaded BLAS library, or None without it."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    import scipy.linalg.blas  # noqa: F401  loaded first, so its pool is controlled too
    return ThreadpoolController().select(user_api="blas")


def thread_count() -> int:
    """Threads the BLAS libraries may use now (the most of any; 1 if unknown). Reads the
    live setting, so a limit set with threadpoolctl is seen (~4 µs a call)."""
    blas = controller()
    if blas is None:
        return 1
    return max((lib.num_threads for lib in blas.lib_controllers), default=1)


def limited(threads: int | None):
    """A context holding every BLAS pool to ``threads`` (None: as it is)."""
    blas = controller()
    if threads is None or blas is None:
        return nullcontext()
    return blas.limit(limits=int(threads))
