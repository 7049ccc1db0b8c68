"""How many BLAS threads the GEMMs of a training epoch get (``Trainer(blas_threads=...)``).

Splitting a GEMM over threads pays only when it is large. 784-100-10, plain SGD (its step
fused into the GEMMs, training/fused.py), seconds for a 60 000-example epoch on 2 idle
cores, ``Trainer(blas_threads=1)`` against ``blas_threads=2``, best of 3–4, on the two
EPYC VMs the project has run on (GEMM ceilings ~420 and ~205 GFLOP/s at 2 threads):

    batch                    10       20       32       44       48       64      128
    largest GEMM (M mult.)  0.78     1.6      2.5      3.4      3.8      5.0      10
    faster VM  1 thread     0.27     0.24     0.20      -        -       0.17     0.14
               2 threads    0.28     0.35     0.25      -        -       0.13     0.11
    slower VM  1 thread     0.43     0.41     0.36    0.32     0.31     0.31     0.27
               2 threads    0.46     0.42     0.36    0.30–0.45 0.24   0.25     0.21

On the slower VM two threads win from batch 45 (0.35 → 0.28 s) and lose or draw below it
(44 varied from run to run, 40: 0.32–0.33 against 0.33–0.35 s).

``"auto"`` (the default) therefore holds the BLAS to one thread for an epoch whose largest
GEMM is under :data:`SMALL_GEMM` multiply-adds, and otherwise lets it use the cores no
other thread wants (:func:`~nablanet.training.batches.idle_cores`):
OpenBLAS's threads spin while they wait, and on a machine whose cores are busy they only
take time slices from each other (with one of the 2 cores busy, batch 128 took 0.32–0.49 s
an epoch on two threads against 0.15 s on one). On one thread the limit covers the
training steps only and monitoring between epochs runs with the BLAS's own setting; on
several, monitoring runs under it too (``Trainer.blas_plan``).

A GEMM's last bits can depend on how many threads computed it (784-100-10 at batch 128:
weights 1 ulp apart after 2 epochs on 1 and on 2 threads; at batch 10, where one thread is
always chosen, none). ``auto`` decides once per :class:`~nablanet.training.Trainer`, the
count goes into checkpoints (``--resume`` reuses it) and into a run's ``summary.json``
(``blas_threads``); to rerun bit for bit on a machine whose load differs, fix the count.
"""
from __future__ import annotations

import math

from ..errors import ConfigError
from ..utils.blas import thread_count
from .batches import idle_cores

#: a GEMM with fewer multiply-adds than this runs faster on one thread (see the table:
#: 784-100-10 at batch 45 has 3.53 M)
SMALL_GEMM = 3_500_000


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
