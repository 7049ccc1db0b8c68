"""Where a GPU training step's time goes: per-step time, hidden host synchronisations, and
the functions that cost the most host time, for the nets of ``gpu_epoch.py``.

    python benchmarks/gpu_profile.py [--nets mlp lenet5 inception lstm] [--top 25]
        [--device gpu|cpu]

For each net and batch size it prints the time of a step (best of ``--repeats`` timed
runs over ``--steps`` steps, the GPU synchronised before the clock stops). It then runs
one step under ``cupyx.allow_synchronize(False)``, which raises where a step would wait
for the GPU: a ``float(...)`` or ``.get()`` inside the step (the lstm step clips its
gradient, and clipping waits once, for the norm: expected). Last come cProfile's
``--top`` functions by their own time. On a GPU each CuPy operator is a kernel launch
costing ~15 µs of host time, so the functions that launch the most kernels rise to the
top; benchmarks/README.md ("On a GPU") lists what earlier profiles led to.
``--device cpu`` runs the same on NumPy, to try the script without a GPU (no
synchronisation check there).
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time

from _common import synthetic_classification
from gpu_epoch import nablanet_net
from lstm_step import BATCH as LSTM_BATCH
from lstm_step import training_step

#: batch sizes per net, as gpu_epoch.py times them (the LSTM: a char-LSTM step)
BATCHES = {"mlp": (10, 128, 1024), "lenet5": (64,), "inception": (32,), "lstm": (LSTM_BATCH,)}


def step_function(name: str, batch: int, backend):
    """A zero-argument callable that runs one training step of net ``name``."""
    from nablanet.optimizers import SGD, Adam
    from nablanet.training import Trainer

    if name == "lstm":                   # lstm_step.py's step, clipped as the preset
        return training_step(256, backend, clip=5.0)
    optimizer = Adam(0.001) if name == "inception" else SGD(0.1 if name == "mlp" else 0.01)
    trainer = Trainer(nablanet_net(name, backend), "log-likelihood", optimizer,
                      batch_size=batch, monitor=(), rng=0)
    x, y = synthetic_classification(batch, 784, 10, 0)
    xb = trainer.net.device_input(x)
    yb = trainer.cost.targets(y, 10, backend)
    return lambda: trainer.train_step(xb, yb)


def synchronisation(step, on_gpu: bool) -> str:
    """What ``cupyx.allow_synchronize(False)`` says of one step."""
    if not on_gpu:
        return "not checked on the CPU"
    import warnings

    import cupyx
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")              # the API is deprecated, still works
            with cupyx.allow_synchronize(False):
                step()
    except cupyx.DeviceSynchronized:
        import traceback
        return "the step waits for the GPU here:\n" + "".join(traceback.format_exc(limit=-4))
    return "none inside the step"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nets", nargs="+", default=list(BATCHES), choices=list(BATCHES))
    p.add_argument("--steps", type=int, default=200, help="steps per timed run (default 200)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--top", type=int, default=25, help="functions listed from the profile")
    p.add_argument("--device", choices=("gpu", "cpu"), default="gpu")
    args = p.parse_args(argv)
    from nablanet import get_backend
    try:
        backend = get_backend(args.device, "float32")
    except Exception as exc:                    # BackendError: no CuPy or no device
        print(f"gpu_profile: {exc}")
        return 1
    on_gpu = args.device == "gpu"
    sync = backend.xp.cuda.Device().synchronize if on_gpu else (lambda: None)
    for name in args.nets:
        for batch in BATCHES[name]:
            step = step_function(name, batch, backend)
            for _ in range(20):                          # compile kernels, grow the pools
                step()
            sync()
            best = float("inf")
            for _ in range(max(1, args.repeats)):
                start = time.perf_counter()
                for _ in range(args.steps):
                    step()
                sync()
                best = min(best, (time.perf_counter() - start) / args.steps)
            print(f"=== {name}, batch {batch}: {best * 1e3:.3f} ms a step", flush=True)
            print(f"  synchronisation: {synchronisation(step, on_gpu)}")
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(args.steps):
                step()
            sync()
            profile.disable()
            report = io.StringIO()
            pstats.Stats(profile, stream=report).sort_stats("tottime").print_stats(args.top)
            print("\n".join(line for line in report.getvalue().splitlines()
                            if line.strip() and not line.lstrip().startswith(("Ordered", "List"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
