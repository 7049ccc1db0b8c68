"""How many BLAS threads the GEMMs of a training epoch get (``Trainer(blas_threads=...)``).

Splitting a GEMM over threads pays only when it is large. 784-100-10, plain SGD (its step
fused into the GEMMs, training/fused.py), seconds for a 60 000-example epoch on 2 idle
cores, ``Trainer(blas_threads=1)`` against ``blas_threads=2``:

    batch                    10       20       32       64      128     1024
    largest GEMM (M mult.)  0.78     1.6      2.5      5.0      10       80
    1 thread   (s)          0.27     0.24     0.20     0.17     0.14     0.12
    2 threads  (s)          0.28     0.35     0.25     0.13     0.11     0.10

``"auto"`` (the default) therefore holds the BLAS to one thread for an epoch whose largest
GEMM is under :data:`SMALL_GEMM` multiply-adds, and otherwise lets it use the cores no
other thread wants (:func:`~nablanet.training.batches.idle_cores`, read once per ``fit``):
OpenBLAS's threads spin while they wait, and on a machine whose cores are busy they only
take time slices from each other (over 100× slower). The limit covers the training steps
only; monitoring between epochs runs large GEMMs with the BLAS's own setting.
"""
from __future__ import annotations

import math

from ..errors import ConfigError
from ..utils.blas import thread_count
from .batches import idle_cores

#: a GEMM with fewer multiply-adds than this runs faster on one thread (see the table)
SMALL_GEMM = 1 << 22


def check_setting(setting):
    """``"auto"``, ``None`` (leave the BLAS as it is) or a thread count ≥ 1."""
    if setting == "auto" or setting is None:
        return setting
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
        raise ConfigError(f"blas_threads must be 'auto', None or a count ≥ 1, got {setting!r}")
    return setting


def largest_gemm(net, batch_size: int) -> int:
    """Multiply-adds of the largest GEMM in a training step of ``net``."""
    return batch_size * max((layer.gemm_work() for layer in net.layers), default=0)


def epoch_thread_limit(setting, net, batch_size: int) -> int | None:
    """The BLAS thread limit for this ``fit``'s epochs; None leaves the BLAS as it is."""
    if setting != "auto":
        return setting
    if largest_gemm(net, batch_size) < SMALL_GEMM:
        return 1
    idle = idle_cores()
    if idle is None:
        return None
    usable = 1 + max(0, math.floor(idle))            # this thread's core and the idle ones
    return usable if usable < thread_count() else None
