"""``nablanet pretrain --preset NAME --out RUN``: train an energy-based preset on MNIST.

Presets: rbm (CD-1, AIS test log-likelihood), dbn (greedy pretraining + backprop
fine-tuning), dbn-generative (10 label units on the top RBM, class-clamped
generation), deep-autoencoder and deep-autoencoder-2d (Hinton & Salakhutdinov 2006,
compared with PCA). The run directory gets results.json, metrics.jsonl, PNGs and
the models; ``--epochs``, ``--train-size`` and friends shrink a run for a check.
"""
from __future__ import annotations

import sys


def add_parser(subparsers):
    from ..presets.rbm_reproduce import PRESET_EXPERIMENTS, add_arguments

    p = subparsers.add_parser(
        "pretrain", help="train an RBM, DBN or deep autoencoder preset (writes a run directory)",
        description=__doc__.split("\n\n")[1].replace("\n", " "))
    p.add_argument("--preset", required=True, choices=sorted(PRESET_EXPERIMENTS))
    add_arguments(p)
    return p


def run(args) -> int:
    from ..presets.rbm_reproduce import (PRESET_EXPERIMENTS, experiment_kwargs, run_experiment,
                                         summary_lines)

    summary = run_experiment(PRESET_EXPERIMENTS[args.preset], args.out, preset=args.preset,
                             **experiment_kwargs(args))
    print("\n".join(summary_lines(summary)), file=sys.stdout)
    return 0
