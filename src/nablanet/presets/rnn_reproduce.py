"""Reproduce the char-lstm result: ``python -m nablanet.presets.rnn_reproduce char-lstm
--minutes 30 --out DIR``.

Trains the preset on Tiny Shakespeare (or ``--text FILE``) within the time budget (the
whole command, final validation and sample included), leaves a run directory that
``nablanet generate DIR --prime TEXT`` reads, and writes ``DIR/results.json``: the best
validation cost in nats and bits per character, the target (≤ 1.65 nats/char in 30
minutes on a 2-core CPU), whether it was met, and the sample's file.
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import NablanetError
from ..runs import to_json
from ..utils.wording import Parser
from ..utils.atomic import atomic_write_bytes
from .rnn import RECIPES, TARGETS, train_char_lstm


def parse_args(argv=None):
    from ..cli.common import add_blas_threads_flag

    p = Parser(prog="python -m nablanet.presets.rnn_reproduce",
               description=__doc__.split("\n\n")[0])
    p.add_argument("preset", choices=sorted(RECIPES))
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--minutes", type=float, help="wall-clock budget of the whole run")
    budget.add_argument("--epochs", type=int, help="passes over the training text instead")
    p.add_argument("--out", type=Path, required=True, help="the run directory to write")
    p.add_argument("--text", type=Path, help="any UTF-8 text file (default: Tiny Shakespeare)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    # The flag every entry point shares (a negative count is a usage error). For this
    # preset one thread was 2.7× faster on a busy 2-core machine, two about 1.3× faster
    # on an idle one.
    add_blas_threads_flag(p)
    return p.parse_args(argv)


def main(argv=None) -> int:
    from ..cli.common import blas_threads

    args = parse_args(argv)
    try:
        with blas_threads(args.blas_threads):                # held for the whole run
            summary = train_char_lstm(args.out, text_path=args.text, minutes=args.minutes,
                                      epochs=args.epochs, seed=args.seed, device=args.device)
    except NablanetError as exc:
        print(f"error: {' '.join(str(exc).splitlines())}", file=sys.stderr)
        return 2
    target = TARGETS[args.preset]
    nats = summary["best_validation_nats_per_char"]
    within = args.minutes is not None and args.minutes <= target["minutes"]
    passed = nats <= target["validation_nats_per_char"] and within
    results = {"preset": args.preset, "minutes": args.minutes, "epochs_budget": args.epochs,
               "seconds": summary["seconds"], "steps": summary["steps"],
               "epochs": summary["epochs"],
               "validation_nats_per_char": nats,
               "validation_bits_per_char": summary["best_validation_bits_per_char"],
               "final_validation_nats_per_char": summary["final_validation_nats_per_char"],
               "target_nats_per_char": target["validation_nats_per_char"],
               "target_minutes": target["minutes"], "passed": passed,
               "run_dir": str(args.out), "sample_file": str(args.out / "sample.txt")}
    atomic_write_bytes(args.out / "results.json", (to_json(results, indent=2) + "\n").encode())
    sample = (args.out / "sample.txt").read_text(encoding="utf-8")
    print(f"\n{args.preset}: validation {nats:.3f} nats/char "
          f"({results['validation_bits_per_char']:.3f} bits/char) after {summary['seconds']:.0f} s, "
          f"{summary['steps']} steps ({summary['epochs']:.2f} epochs)")
    budget = f"{args.minutes:g} minutes" if args.minutes else f"{args.epochs} epochs"
    print(f"{'PASS' if passed else 'FAIL'}  target ≤ {target['validation_nats_per_char']} "
          f"nats/char within {target['minutes']} minutes (this run: {nats:.3f} in {budget}"
          + ("" if within else ", not the target's budget") + ")")
    print(f"wrote {args.out / 'results.json'}; sample ({args.out / 'sample.txt'}):\n")
    print(sample[:800])
    return 0


if __name__ == "__main__":
    sys.exit(main())
