"""``nablanet pretrain --preset NAME --out RUN``: train an energy-based preset on MNIST.

Presets: rbm (CD-1, AIS test log-likelihood), dbn (greedy pretraining + backprop
fine-tuning), dbn-generative (10 label units on the top RBM, class-clamped
generation), deep-autoencoder and deep-autoencoder-2d (Hinton & Salakhutdinov 2006,
compared with PCA). The run directory gets results.json, metrics.jsonl, PNGs and
the models; ``--epochs``, ``--train-size`` and friends shrink a run for a check.
``nablanet reproduce hinton-2006`` runs dbn, dbn-generative and deep-autoencoder
one after another and prints each beside the published numbers.
"""
from __future__ import annotations

import sys

from .common import add_blas_threads_flag, blas_threads

#: one line per preset for --help
DESCRIPTIONS = {
    "rbm": "784-500 RBM by CD-1; AIS log Z and the test log-likelihood",
    "dbn": "784-500-500-2000 DBN pretrained, then fine-tuned by backprop; test error",
    "dbn-generative": "the DBN with 10 label units; digits generated with the label clamped",
    "deep-autoencoder": "784-1000-500-250-30 autoencoder; reconstruction error beside PCA's",
    "deep-autoencoder-2d": "the same with a 2-d code; scatter plot of the test codes",
}


def add_parser(subparsers):
    from ..presets.rbm_reproduce import PRESET_EXPERIMENTS, add_arguments

    p = subparsers.add_parser(
        "pretrain", help="train an RBM, DBN or deep autoencoder preset: --preset "
                         + "|".join(DESCRIPTIONS) + " (writes a run directory)",
        description=" ".join(__doc__.split("\n\n")[1].split()))
    p.add_argument("--preset", required=True, choices=sorted(PRESET_EXPERIMENTS), metavar="NAME",
                   help="; ".join(f"{k}: {v}" for k, v in DESCRIPTIONS.items()))
    add_arguments(p)
    add_blas_threads_flag(p)
    return p


def run(args) -> int:
    from ..presets.rbm_reproduce import (PRESET_EXPERIMENTS, check_stage_flags,
                                         experiment_kwargs, run_experiment, summary_lines)

    kwargs = experiment_kwargs(args)
    check_stage_flags(args.preset, kwargs)
    with blas_threads(args.blas_threads):
        summary = run_experiment(PRESET_EXPERIMENTS[args.preset], args.out, preset=args.preset,
                                 **kwargs)
    print("\n".join(summary_lines(summary)), file=sys.stdout)
    return 0
