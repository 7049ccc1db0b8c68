"""``nablanet evaluate RUN``: accuracy, errors and cost of a saved model on a data set.

The data set and its held-out validation size are the run's own (from its
config.toml) unless ``--dataset`` or ``--validation-size`` say otherwise; the model
is the run's ``best/`` (by validation accuracy) or ``last/``.
"""
from __future__ import annotations

import json

from ..runs import score
from .common import (add_data_flags, add_model_argument, add_split_flag, info, load_run_model,
                     load_runs_split)


def add_parser(subparsers):
    p = subparsers.add_parser("evaluate", help="test accuracy of a trained model",
                              description="Print the accuracy, number of errors and cost of a "
                                          "run's model on the test (or another) split.")
    add_model_argument(p)
    add_data_flags(p, of_run=True)
    add_split_flag(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.add_argument("--quiet", action="store_true", help="no 'model:' line on stderr")
    return p


def run(args) -> int:
    net, cost, model_dir = load_run_model(args.run, args.model)
    dataset, data = load_runs_split(args, [args.run])
    info(args, f"model: {model_dir}")
    s = score(net, cost, data)
    if args.json:
        print(json.dumps({"model": str(model_dir), "dataset": dataset, "split": args.split,
                          "accuracy": s.accuracy, "errors": s.errors, "examples": s.n,
                          "cost": s.cost}))
        return 0
    print(f"{args.split} accuracy: {s.accuracy:.2%} ({s.errors} errors of {s.n})")
    if s.cost is not None:
        print(f"{args.split} cost: {s.cost:.4f} ({cost.name}, without regularisation)")
    return 0

