"""``nablanet ensemble RUN1 RUN2 ... [--combine vote|mean|product|all]``: combine trained nets.

Each run's model (``best/`` unless ``--model last``) classifies the test split; the
members' output distributions are combined by plurality vote, by their mean (the
mixture) or by their normalised geometric mean (the product), and the accuracy of
every member and of the ensemble is printed.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..ensemble import COMBINE, member_outputs, predict_combined
from ..errors import ConfigError
from ..runs import check_fits
from .common import add_data_flags, add_split_flag, info, load_run_model, load_runs_split


def add_parser(subparsers):
    p = subparsers.add_parser("ensemble", help="combine several trained nets (vote/mean/product)",
                              description=__doc__.split("\n\n")[1].replace("\n", " "))
    p.add_argument("runs", nargs="+", metavar="RUN", type=str,
                   help="run directories (or model directories) of the members")
    p.add_argument("--combine", choices=(*COMBINE, "all"), default="vote",
                   help="how to combine the members' outputs (default vote)")
    p.add_argument("--model", choices=("best", "last"), default="best",
                   help="which model of each run (default best)")
    add_data_flags(p, of_run=True)
    add_split_flag(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.add_argument("--quiet", action="store_true", help="no 'model:' lines on stderr")
    return p


def run(args) -> int:
    twice = [str(p) for i, p in enumerate(args.runs)
             if any(Path(p).resolve() == Path(q).resolve() for q in args.runs[:i])]
    if twice:
        # one net counted twice outweighs the others in every vote and mean
        raise ConfigError(f"{twice[0]} is given twice; an ensemble takes each run once")
    nets = []
    for path in args.runs:
        net, _, model_dir = load_run_model(path, args.model)
        info(args, f"model: {model_dir}")
        nets.append(net)
    _, data = load_runs_split(args, args.runs)
    for net in nets:
        check_fits(net, data)
    outputs = member_outputs(nets, data.x)
    members = [float((o.argmax(axis=1) == data.y).mean()) for o in outputs]
    ways = COMBINE if args.combine == "all" else (args.combine,)
    combined = {how: float((predict_combined(outputs, how) == data.y).mean()) for how in ways}
    n = len(data)
    if args.json:
        print(json.dumps({"split": args.split, "examples": n, "members": dict(zip(args.runs,
                                                                                 members)),
                          "ensemble": combined}))
        return 0
    for path, accuracy in zip(args.runs, members):
        print(f"member {path}: {accuracy:.2%} ({round((1 - accuracy) * n)} errors)")
    for how, accuracy in combined.items():
        print(f"ensemble of {len(nets)} ({how}): {accuracy:.2%} "
              f"({round((1 - accuracy) * n)} errors of {n})")
    best = int(np.argmax(members))
    if len(nets) > 1:
        print(f"best single member: {members[best]:.2%}")
    return 0
