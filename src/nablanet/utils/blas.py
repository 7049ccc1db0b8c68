"""The BLAS thread pools, seen through threadpoolctl.

NumPy and SciPy each bring their own OpenBLAS, each with its own pool of threads. The
controller is made once (scanning the loaded libraries takes ~1 ms) and only after
SciPy's BLAS is loaded, so a limit always reaches both pools: a pool left at two threads
beside one held at one kept its workers spinning and stalled training 10–40× on 2 cores.
Without threadpoolctl (an optional speed-up, never a requirement) nothing is limited.
"""
from __future__ import annotations

import functools
from contextlib import contextmanager, nullcontext
from pathlib import Path


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


def _package_library(package: str):
    """The loaded BLAS library that ``package`` brought (in ``package/`` or the wheel's
    ``package.libs/``), or None."""
    import importlib
    root = Path(importlib.import_module(package).__file__).resolve().parent
    homes = (root, root.with_name(root.name + ".libs"))
    for lib in controller().lib_controllers:
        path = Path(lib.filepath).resolve()
        if any(home in path.parents for home in homes):
            return lib
    return None


@functools.cache
def separate_pools():
    """(NumPy's BLAS, SciPy's BLAS) when each package brought its own library, as their
    wheels do; None when one library serves both or they cannot be told apart."""
    if controller() is None:
        return None
    numpy_blas, scipy_blas = _package_library("numpy"), _package_library("scipy")
    if numpy_blas is None or scipy_blas is None or numpy_blas is scipy_blas:
        return None
    return numpy_blas, scipy_blas


def library_count() -> int:
    """How many BLAS libraries are loaded (0 without threadpoolctl)."""
    blas = controller()
    return 0 if blas is None else len(blas.lib_controllers)


@contextmanager
def pool_threads(numpy_threads: int, scipy_threads: int):
    """NumPy's BLAS pool at one thread count and SciPy's at another, for the block; only
    where :func:`separate_pools` finds two."""
    libs = separate_pools()
    if libs is None:
        raise RuntimeError("NumPy and SciPy share one BLAS here: no separate pools to set")
    before = [lib.num_threads for lib in libs]
    try:
        for lib, n in zip(libs, (numpy_threads, scipy_threads)):
            lib.set_num_threads(n)
        yield
    finally:
        for lib, n in zip(libs, before):
            lib.set_num_threads(n)
