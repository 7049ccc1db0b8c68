"""Keep freed memory mapped between training steps (glibc only; elsewhere a no-op).

A training step allocates and frees the same large arrays every time: a convolution's
matrix of receptive fields, its δ, the pooled maps (megabytes each). glibc's malloc
hands blocks above its mmap threshold back to the kernel on ``free`` and trims the
heap top whenever enough of it is free, so the next step maps the same memory again
and touches it page by page. Each page fault costs microseconds here: LeNet-5 at batch
64 took ~1 200 faults a step, 40–45 % of its time, and Nielsen's chapter-6 net ~2 300
(measured with ``getrusage`` minor faults; ``benchmarks/lenet_epoch.py``).

:func:`retain_freed_memory` raises the mmap threshold to glibc's maximum (32 MiB on
64-bit; a fixed value also stops glibc from moving it) and the trim threshold to
``trim_bytes``, so freed blocks stay in the heap and the next step reuses them without
faults. The cost: up to ``trim_bytes`` of freed memory is not returned to the system
until the process exits (the peak is unchanged — the memory was in use a moment ago).
It changes the process's allocator, so the Trainer calls it when training starts
rather than at import; ``NABLANET_KEEP_ALLOCATOR=1`` leaves glibc's defaults alone.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# mallopt parameter numbers from glibc's <malloc.h>
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: glibc's largest allowed mmap threshold on 64-bit systems (4 MiB · sizeof(long))
MMAP_THRESHOLD_MAX = 32 << 20

_done = False


def retain_freed_memory(trim_bytes: int = 512 << 20) -> bool:
    """Tune glibc's malloc once per process; True when it was tuned (now or before)."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux") or os.environ.get("NABLANET_KEEP_ALLOCATOR") == "1":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):       # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mallopt returns 1 on success; both settings or neither matter, so report both.
    _done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(
        mallopt(_M_TRIM_THRESHOLD, int(trim_bytes)))
    return _done
