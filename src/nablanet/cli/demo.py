"""``nablanet demo NAME --out DIR [--seed N] [--quick]``: run one lecture demonstration."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..demos import DEMOS, get_demo
from .common import add_blas_threads_flag, blas_threads, non_negative_int


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``demo`` subcommand on an ``argparse`` subparsers object."""
    listing = "; ".join(f"{name}: {desc}" for name, (_, desc) in DEMOS.items())
    p = subparsers.add_parser(
        "demo", help="run one of the lectures' demonstrations (prints numbers, writes PNGs)",
        description=f"Demos: {listing}")
    p.add_argument("name", choices=sorted(DEMOS), metavar="NAME",
                   help=f"one of: {', '.join(sorted(DEMOS))}")
    p.add_argument("--out", required=True, type=Path, help="folder for the PNG(s)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the random generator (default 0)")
    p.add_argument("--quick", action="store_true", help="smaller sizes, for a fast check")
    add_blas_threads_flag(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    """Run the demo named in ``args``; return the exit status."""
    demo = get_demo(args.name)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with blas_threads(getattr(args, "blas_threads", 1)):
        demo(out, rng=np.random.default_rng(args.seed), quick=bool(getattr(args, "quick", False)))
    return 0
