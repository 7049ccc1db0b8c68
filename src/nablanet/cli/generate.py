"""``nablanet generate RUN --label 3``: digits of a chosen class from a generative DBN.

RUN is a run directory written by ``nablanet pretrain --preset dbn-generative`` (its
``dbn/`` model is used) or a saved DBN itself. Each digit comes from alternating
Gibbs sampling in the top RBM with the label units clamped, then a top-down pass
(Hinton, Osindero & Teh 2006); the chain starts with ``--gain-steps`` steps in which
the label's weights count ``--label-gain`` times (see :meth:`DBN.generate`). The PNG
shows the pixel probabilities.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError, ModelFileError
from . import generate_text
from .common import info, non_negative_int


def add_parser(subparsers):
    from ..presets.rbm import RECIPES

    p = subparsers.add_parser(
        "generate", help="generate digits from a generative DBN (--label), or text from a "
                         "character language model (--prime)",
        description=__doc__.split("\n\n")[1].replace("\n", " ")
        + " A char-lstm run (nablanet train --preset char-lstm) gives text instead: see --prime.")
    p.add_argument("run", metavar="RUN", type=Path,
                   help="a run directory with a dbn/ model, or a saved DBN")
    p.add_argument("--label", type=int, nargs="+", metavar="K",
                   help="the class(es) to generate, e.g. --label 3 or --label 0 1 2")
    p.add_argument("-n", "--n", type=int, default=10, metavar="N",
                   help="digits per label (default 10)")
    sampler = RECIPES["dbn-generative"]["generate"]
    p.add_argument("--gibbs-steps", type=int, default=sampler["gibbs_steps"], metavar="N",
                   help="alternating Gibbs steps of the top RBM's label-clamped chain "
                        f"(default {sampler['gibbs_steps']})")
    p.add_argument("--gain-steps", type=int, default=sampler["gain_steps"], metavar="N",
                   help="steps before those in which the label's weights count --label-gain "
                        f"times: a start from the label alone (default {sampler['gain_steps']})")
    p.add_argument("--label-gain", type=float, default=sampler["label_gain"], metavar="G",
                   help=f"how many times the label's weights count during --gain-steps "
                        f"(default {sampler['label_gain']:g}; 1 or --gain-steps 0: plain "
                        "label-clamped Gibbs sampling from a random start)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of the sampling (default 0)")
    p.add_argument("--out", type=Path, metavar="FILE",
                   help="where to write the PNG (default RUN/generated-<labels>.png); "
                        "for a char-LM, also write the text to FILE")
    p.add_argument("--quiet", action="store_true", help="no 'generating' line on stderr")
    generate_text.add_arguments(p)
    return p


def find_dbn_dir(run: Path) -> Path:
    """RUN itself when it holds a saved RBM stack, else RUN/dbn."""
    for directory in (run, run / "dbn"):
        if (directory / "config.json").is_file():
            return directory
    raise ModelFileError(f"{run}: no saved DBN here or in {run / 'dbn'}")


def run(args) -> int:
    from ..models.dbn import DBN
    from ..models.persistence import load_rbm
    from ..models.plots_rbm import save_grid

    # A char-lstm run gives text; so does --prime alone, so that a RUN holding no char-LM
    # (a typo, a classifier's run) is reported as that rather than as a missing --label.
    if generate_text.is_char_lm(args.run) or (args.prime is not None and args.label is None):
        if args.label is not None:
            raise ConfigError(f"{args.run}: a character language model, which takes --prime "
                              "TEXT, not --label")
        return generate_text.run(args)
    if args.label is None:
        raise ConfigError("--label K is required to generate digits from a DBN")
    if args.prime is not None:
        raise ConfigError("--prime belongs to a character language model; a DBN takes --label")
    if args.n < 1:
        raise ConfigError(f"--n must be at least 1, got {args.n}")
    directory = find_dbn_dir(args.run)
    model, _ = load_rbm(directory)
    if not isinstance(model, DBN) or not model.n_labels:
        raise ConfigError(f"{directory}: not a generative DBN with label units "
                          "(train one with --preset dbn-generative)")
    # Checked before "generating ..." is announced, not after.
    labels = np.repeat(model.check_labels(args.label), args.n)
    model.check_sampling(args.label_gain, args.gain_steps, args.gibbs_steps)
    info(args, f"generating {len(labels)} digits: {args.gain_steps} steps with label gain "
               f"{args.label_gain:g}, then {args.gibbs_steps} Gibbs steps")
    images = model.generate(labels, gibbs_steps=args.gibbs_steps, label_gain=args.label_gain,
                            gain_steps=args.gain_steps, rng=args.seed)
    out = args.out or args.run / f"generated-{'-'.join(map(str, args.label))}.png"
    save_grid(out, images, n_cols=args.n, row_labels=[str(k) for k in args.label],
              title=f"label clamped to {', '.join(map(str, args.label))}")
    print(out)
    return 0
