"""Peak memory (resident set size) of a full MNIST training run, measured in a child process.

    .venv/bin/python benchmarks/peak_memory.py [--epochs 2] [--via auto|cli|trainer]

The run happens in a fresh process so the figure is what a user's training run
costs, not this script's imports. ``--via cli`` runs ``nablanet train --epochs N
--out TMPDIR``; ``--via trainer`` runs ``nablanet.training.Trainer`` directly on the
benchmark network (784-100-10, sigmoid/softmax, log-likelihood, SGD η = 0.1,
batch 10, all four monitors, 50 000/10 000 split); ``auto`` (the default) uses the
CLI when it exists. Without the MNIST files the measurement is skipped with a message.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from _common import run_with_peak_rss, verdict

LIMIT_MB = 600
MB = 1_000_000
LABEL = f"peak memory of an MNIST run < {LIMIT_MB} MB"


@dataclass(frozen=True)
class PeakMemory:
    """The child's peak RSS; ``complete`` is False when it was stopped at the time limit
    (the peak is then a lower bound)."""

    bytes: int
    complete: bool = True


def peak_verdict(peak: PeakMemory) -> str:
    over = peak.bytes >= LIMIT_MB * MB
    if not peak.complete and not over:          # a lower bound below the limit proves nothing
        return verdict(LABEL, None, f"run stopped at the time limit, ≥ {peak.bytes / MB:.0f} MB so far")
    return verdict(LABEL, not over, f"{peak.bytes / MB:.0f} MB" + ("" if peak.complete else ", lower bound"))


def cli_command(epochs: int, out: str) -> list[str] | None:
    """``nablanet train`` for this interpreter, or None while the CLI has no ``train``."""
    if importlib.util.find_spec("nablanet.cli.main") is None:
        return None
    script = Path(sys.executable).with_name("nablanet")
    exe = str(script) if script.exists() else shutil.which("nablanet")
    return None if exe is None else [exe, "train", "--epochs", str(epochs), "--out", out]


def measure(epochs: int = 2, via: str = "auto", echo: bool = False,
            timeout: float | None = 900) -> PeakMemory | None:
    """Peak RSS of an MNIST training run, or None when MNIST is absent.

    A run still going after ``timeout`` seconds is stopped and its peak so far
    returned as incomplete. Raises RuntimeError (with the child's last output lines)
    when the run fails.
    """
    from nablanet.data.mnist import mnist_available

    say = print if echo else (lambda *a, **k: None)
    if not mnist_available():
        say("peak memory: SKIPPED, MNIST not found (set NABLANET_DATA to a folder holding "
            "mnist/, or run once with downloads allowed)")
        return None
    with tempfile.TemporaryDirectory(prefix="nablanet-peak-") as tmp:
        cmd = cli_command(epochs, os.path.join(tmp, "run")) if via != "trainer" else None
        if cmd is None:
            if via == "cli":
                raise RuntimeError("nablanet train is not available yet (no nablanet.cli.main)")
            cmd = [sys.executable, os.path.abspath(__file__), "--child", "--epochs", str(epochs)]
            how = f"nablanet.training.Trainer, {epochs} epoch(s), batch 10"
        else:
            how = f"nablanet train --epochs {epochs}"
        say(f"peak memory: MNIST run in a child process ({how}) ...", flush=True)
        status, peak, output = run_with_peak_rss(cmd, timeout=timeout)
    lines = output.strip().splitlines()
    if status is None:                          # stopped at the time limit
        say(f"peak memory: the run was stopped after {timeout:g} s; "
            f"{peak / MB:.0f} MB peak RSS so far (a lower bound)")
        return PeakMemory(peak, complete=False)
    if status != 0:
        tail = "\n".join(lines[-10:])
        raise RuntimeError(f"the MNIST run exited with status {status}:\n{tail}")
    say(f"peak memory: {peak / MB:.0f} MB peak RSS" + (f"  [{lines[-1].strip()}]" if lines else ""))
    return PeakMemory(peak)


def child(epochs: int) -> None:
    """The training run itself (runs in the child process)."""
    from nablanet.data import load_mnist
    from nablanet.net import mlp
    from nablanet.optimizers import SGD
    from nablanet.training import Trainer

    train, validation, _ = load_mnist(download=False)
    net = mlp([784, 100, 10], "sigmoid", "softmax", rng=0)
    trainer = Trainer(net, "log-likelihood", SGD(0.1), batch_size=10, rng=0)
    history = trainer.fit(train, epochs, validation)
    last = history.rows[-1]
    print(f"{len(history.rows)} epoch(s), validation accuracy {last['validation_accuracy']:.4f}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--via", choices=["auto", "cli", "trainer"], default="auto")
    p.add_argument("--timeout", type=float, default=900,
                   help="stop the run after this many seconds and report the peak so far")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.epochs)
        return 0
    try:
        peak = measure(args.epochs, args.via, echo=True, timeout=args.timeout)
    except RuntimeError as err:
        print(f"peak memory: {err}", file=sys.stderr)
        print(verdict(LABEL, False, "the run failed"))
        return 1
    if peak is not None:
        print(peak_verdict(peak))
    return 0


if __name__ == "__main__":
    sys.exit(main())
