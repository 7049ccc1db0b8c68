"""Mini-batches in a shuffled order, the next one gathered while this one trains.

``x[batch]`` copies m randomly placed rows out of the training set. For large batches
that copy is a real share of a step: 1024 MNIST rows (3.2 MB) took ~290 µs here with
``take`` (~420 µs by fancy indexing), a fifth of a 784-100-10 step on two threads,
because no row is in cache (the same rows copied again, from cache, take ~70 µs).
NumPy's ``take`` releases the GIL, so one helper thread gathers batch k + 1 while the
main thread trains on batch k, and the copy costs the step nothing on a machine with a
core to spare.

Small batches gather in the main thread: handing work to a thread costs tens of
microseconds, more than copying a few rows (a batch-10 step takes ~50 µs). So does a
busy machine: with every core taken the helper thread only steals time slices from
the main one (a batch-1024 epoch took 0.196 s instead of 0.169 s with another job on
the second of 2 cores), so prefetching also needs a core that is idle when the epoch
starts (:func:`spare_core`). Small batches are gathered several at a time
(``GATHER_BYTES`` of rows, then sliced): each indexing call costs ~1.5 µs beyond its
copy, and one call per 16 batches instead of one per batch took a 784-100-10 epoch at
batch 10 from 0.306 s to 0.295 s here. The order of batches and of rows within them is
the same either way, so results are identical.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import numpy as np

from ..utils.blas import thread_count as blas_thread_count

#: a batch at least this large (bytes of inputs) is gathered ahead in a helper thread
PREFETCH_MIN_BYTES = 256 << 10
#: smaller batches are gathered this many bytes of rows at a time (whole batches)
GATHER_BYTES = 512 << 10


def spare_core() -> bool:
    """True when this process may use more than one core and one is idle now, beyond those
    the BLAS's own threads will take in the next GEMM.

    The BLAS's extra threads (:func:`blas_thread_count` − 1) are this process's own, so
    :func:`idle_cores` leaves them out, yet they keep a core busy (they spin ~0.1 s after
    each GEMM): with 2 BLAS threads on 2 idle cores a prefetching thread made a
    784-100-10 epoch at batch 128 slower (0.140 s against 0.123 s without it).
    """
    blas_extra = blas_thread_count() - 1
    if _cores() - blas_extra < 2:
        return False
    idle = idle_cores()
    return True if idle is None else idle - blas_extra >= 0.5


def idle_cores() -> float | None:
    """Cores this process may run on that no thread wants now (this one counts as wanting
    one); None where the system gives no load figures.

    Linux: the threads runnable now (:func:`_runnable_threads`). Elsewhere the 1-minute
    load average, which lags: right after other work stops it still counts it for a minute.
    """
    runnable = _runnable_threads()
    if runnable is not None:
        return _cores() - runnable
    try:
        return _cores() - os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _cores() -> int:
    return (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1)


#: seconds a load reading is reused: ``fit`` reads it at every call (~1 ms)
LOAD_READING_SECONDS = 1.0
_last_reading: tuple[float, int | None] | None = None


def _runnable_threads(reads: int = 3) -> int | None:
    """Runnable threads from /proc/loadavg, counting this process as this one thread: the
    median of ``reads`` reads 0.2 ms apart (one read catches passing spikes; a millisecond
    apart, five reads took 6 ms, 5 % of a 784-100-10 epoch at batch 128); None
    where there is no such file. The process's other threads are left out because they
    are its own: an OpenBLAS worker spins for a while after each GEMM, and counted as load
    it made an idle machine look busy."""
    global _last_reading
    now = time.monotonic()
    if _last_reading is not None and now - _last_reading[0] < LOAD_READING_SECONDS:
        return _last_reading[1]
    samples = []
    try:
        for _ in range(reads):
            with open("/proc/loadavg", encoding="ascii") as f:
                runnable = int(f.read().split()[3].split("/")[0])
            samples.append(runnable - _own_running_threads() + 1)
            time.sleep(0.0002)
        value = sorted(samples)[reads // 2]
    except (OSError, ValueError, IndexError):
        value = None
    _last_reading = (time.monotonic(), value)
    return value


def _own_running_threads() -> int:
    """This process's threads in state R (running or runnable), this one included."""
    running = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat", encoding="ascii") as f:
                running += f.read().rsplit(")", 1)[1].split()[0] == "R"
        except (OSError, IndexError):           # the thread ended meanwhile
            continue
    return max(running, 1)


def _rows(a, index):
    """``a[index]`` for an integer vector ``index``. ``take`` copies whole rows where fancy
    indexing goes element by element through its general iterator: a 784-float32-row
    gather took 12–15 % less time here (an epoch of 128-row batches: 17.1 → 14.8 ms)."""
    return a.take(index, axis=0)


def minibatches(x, targets, order, batch_size: int, *, prefetch: bool | None = None
                ) -> Iterator[tuple]:
    """``(x[b], targets[b])`` for each chunk ``b`` of ``order``, in order.

    ``prefetch=None`` decides: NumPy data, a batch of ≥ ``PREFETCH_MIN_BYTES`` and a
    spare core (:func:`spare_core`).
    """
    m, n = int(batch_size), len(order)
    if prefetch is None:
        prefetch = (isinstance(x, np.ndarray) and min(m, n) * x[:1].nbytes >= PREFETCH_MIN_BYTES
                    and spare_core())
    if not prefetch:
        # Several small batches per gather: one indexing call instead of one per batch.
        span = m * max(1, GATHER_BYTES // max(1, m * x[:1].nbytes))
        for i in range(0, n, span):
            chunk = order[i:i + span]
            xs, ys = _rows(x, chunk), _rows(targets, chunk)
            for j in range(0, len(chunk), m):
                yield xs[j:j + m], ys[j:j + m]
        return

    def gather(i):
        batch = order[i:i + m]
        return _rows(x, batch), _rows(targets, batch)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="nablanet-batches") as pool:
        pending = pool.submit(gather, 0)
        for i in range(0, n, m):
            ready = pending.result()
            if i + m < n:
                pending = pool.submit(gather, i + m)
            yield ready
