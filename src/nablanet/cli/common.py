"""Helpers the subcommands share: the one-line error parser, the training flags, models."""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
from pathlib import Path

from ..config import CHOICES, FIELDS, MNIST, TrainConfig, load_splits
from ..errors import ConfigError, DataError

DEFAULTS = TrainConfig()


def int_list(text: str) -> list[int]:
    """``"100,30"`` → [100, 30] (an argparse type); ``""`` → [] (no hidden layer)."""
    if not text.strip():
        return []
    try:
        # Every entry counts: dropping the empty one in "784,,10" would silently
        # train a net without its hidden layer.
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def positive_int(text: str) -> int:
    """An argparse type for a count that must be ≥ 1 (``--top``, ``--top-k``)."""
    # Clamping 0 to 1 would answer a question the user did not ask.
    return _int_at_least(text, 1, "an integer ≥ 1")


def non_negative_int(text: str) -> int:
    """An argparse type for a seed or a count that may be 0 (``--seed``, ``--gibbs-steps``)."""
    # Caught here, a negative seed is one usage line instead of NumPy's traceback from
    # default_rng, and a negative size cannot slice from the end of the data.
    return _int_at_least(text, 0, "an integer ≥ 0")


def _int_at_least(text: str, least: int, expected: str) -> int:
    """``int(text)`` when it is at least ``least``; otherwise argparse's error."""
    try:
        n = int(text)
    except ValueError:
        n = least - 1
    if n < least:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return n


def add_data_flags(parser, *, of_run: bool = False) -> None:
    """``--dataset``, ``--data-dir`` and ``--validation-size``; ``of_run``: the command
    scores runs, whose own data set (their config.toml's) is the default, not MNIST
    (:func:`load_runs_split`)."""
    dataset_default = ("the run's own (MNIST for a bare model directory)" if of_run
                       else "'mnist'")
    data_dir_default = ("the run's, for its own data set, else $NABLANET_DATA, then the cache"
                        if of_run else "$NABLANET_DATA, then the cache")
    parser.add_argument("--dataset", metavar="mnist|PATH",
                        help="'mnist', a folder holding the four IDX files "
                             "(train-images-idx3-ubyte[.gz], ...), an .npz with x_train, "
                             "y_train, x_test, y_test, or a folder with train.csv and "
                             f"test.csv (label in the last column); default {dataset_default}")
    parser.add_argument("--data-dir", metavar="DIR",
                        help=f"where MNIST is looked for (default: {data_dir_default})")
    validation_default = (f"the run's own; {DEFAULTS.validation_size} for a bare model "
                          "directory" if of_run else DEFAULTS.validation_size)
    parser.add_argument("--validation-size", type=int, metavar="N",
                        help="training examples held out at the end for validation "
                             f"(default {validation_default})")


def add_split_flag(parser) -> None:
    parser.add_argument("--split", choices=("test", "validation", "train"), default="test",
                        help="which split to score (default test)")


def add_training_flags(parser) -> None:
    """Every TrainConfig setting as a flag; each defaults to None, meaning "not given"."""
    d = DEFAULTS
    add_data_flags(parser)
    net = parser.add_argument_group("network")
    shape = net.add_mutually_exclusive_group()
    shape.add_argument("--hidden", type=int_list, action="append", metavar="N[,N...]",
                       help=f"hidden layer widths, repeatable or a comma list (default "
                            f"{','.join(map(str, d.hidden))})")
    shape.add_argument("--sizes", type=int_list, metavar="N,N,...",
                       help="every layer width, inputs to outputs, e.g. 784,30,10")
    net.add_argument("--classes", type=int, metavar="K",
                     help=f"output units when --sizes is not given (default {d.classes})")
    _choice(net, "--activation", "hidden units", d.activation)
    _choice(net, "--output", "output units", "softmax for log-likelihood, else sigmoid")
    _choice(net, "--init", "weight initialisation", d.init)
    net.add_argument("--dropout", type=float, metavar="P",
                     help=f"dropout probability of hidden units (default {d.dropout})")
    net.add_argument("--input-dropout", type=float, metavar="P",
                     help=f"dropout probability of input units (default {d.input_dropout})")

    cost = parser.add_argument_group("cost and regularisation")
    _choice(cost, "--cost", "cost function", d.cost)
    cost.add_argument("--lmbda", "--lambda", dest="lmbda", type=float, metavar="λ",
                      help=f"L2 strength, weight decay λ/2n Σw² (default {d.lmbda})")
    cost.add_argument("--l1", type=float, metavar="λ₁", help=f"L1 strength (default {d.l1})")
    cost.add_argument("--max-norm", type=float, metavar="C",
                      help="cap each unit's incoming weight norm at C (default: none)")

    opt = parser.add_argument_group("optimisation")
    opt.add_argument("--eta", type=float, metavar="η", help=f"learning rate (default {d.eta})")
    opt.add_argument("--batch-size", type=int, metavar="M",
                     help=f"mini-batch size (default {d.batch_size})")
    # Typed here, not only checked in TrainConfig: --preset runs take --epochs and --seed
    # straight to their recipes.
    opt.add_argument("--epochs", type=positive_int, metavar="N",
                     help=f"epochs (default {d.epochs})")
    _choice(opt, "--optimizer", "update rule", d.optimizer)
    opt.add_argument("--momentum", type=float, metavar="μ",
                     help=f"momentum coefficient for momentum/nesterov (default {d.momentum})")
    _choice(opt, "--schedule", "learning-rate schedule", d.schedule)
    opt.add_argument("--schedule-patience", type=int, metavar="N",
                     help=f"halve-on-plateau: epochs without improvement before η halves "
                          f"(default {d.schedule_patience})")
    opt.add_argument("--step-every", type=int, metavar="N",
                     help=f"step: halve η every N epochs (default {d.step_every})")
    opt.add_argument("--early-stopping", type=int, metavar="N",
                     help="stop after N epochs without a better validation accuracy (training "
                          "accuracy with --validation-size 0; default: off)")
    opt.add_argument("--growing-patience", action=argparse.BooleanOptionalAction, default=None,
                     help="early stopping's patience grows to 2 × the epoch of each new best")

    hw = parser.add_argument_group("reproducibility and hardware")
    hw.add_argument("--seed", type=non_negative_int, metavar="S",
                    help=f"random seed (default {d.seed})")
    _choice(hw, "--device", "where to compute", d.device)
    _choice(hw, "--dtype", "floating-point type", d.dtype)


def training_flags(args) -> dict:
    """The TrainConfig settings given on the command line (hidden flattened)."""
    flags = {key: getattr(args, key) for key in FIELDS if getattr(args, key, None) is not None}
    if "hidden" in flags:
        flags["hidden"] = [width for group in flags["hidden"] for width in group]
    return flags


def with_absolute_data_paths(config: TrainConfig) -> TrainConfig:
    """``config`` with its data folders made absolute, as a run's config.toml holds them:
    ``evaluate RUN``, ``--resume RUN`` and ``--config RUN/config.toml`` then find the
    data from any folder, where a path relative to the one training ran in would not.
    ``..`` is resolved too: ``cwd/../data`` stops working once cwd is removed."""
    changes = {}
    if config.dataset != MNIST:
        changes["dataset"] = os.path.abspath(Path(config.dataset).expanduser())
    if config.data_dir is not None:
        changes["data_dir"] = os.path.abspath(Path(config.data_dir).expanduser())
    return dataclasses.replace(config, **changes) if changes else config


def add_model_argument(parser) -> None:
    parser.add_argument("run", metavar="RUN", type=Path,
                        help="a run directory (or a model directory holding config.json)")
    parser.add_argument("--model", choices=("best", "last"), default="best",
                        help="which of the run's models (default: best, by validation accuracy, "
                             "or training accuracy where the run held none out)")


def load_run_model(run: Path, which: str = "best"):
    """(net, cost, model directory) for ``RUN [--model best|last]``: a classifier, as
    evaluate, predict, ensemble and compare need."""
    from ..io import load_model
    from ..runs import RunDir
    from .generate_text import is_char_lm

    if is_char_lm(run):      # its config.toml or input width would be blamed instead
        raise ConfigError(f"{run}: a character language model, not a classifier; sample "
                          f"from it with: nablanet generate {run} --prime TEXT")
    directory = RunDir(run).model_dir(which)
    net, cost, _ = load_model(directory)
    return net, cost, directory


def trained_on(path) -> TrainConfig | None:
    """The settings of the run whose model ``path`` holds (a run directory, or its best/ or
    last/), for the data set it was trained on; None for a model directory outside a run."""
    from ..runs import RunDir

    path = Path(path)
    for run in (path, path.parent) if path.name in ("best", "last") else (path,):
        if RunDir(run).config_path.is_file():
            return RunDir(run).read_config()
    return None


def load_runs_split(args, runs) -> tuple[str, object]:
    """(data set, its split ``--split``) to score the models of ``runs`` on: the data set the
    runs were trained on and the validation rows they held out, unless ``--dataset``,
    ``--data-dir`` or ``--validation-size`` say otherwise. Runs trained on different data
    sets need ``--dataset``; model directories outside a run count as MNIST's."""
    configs = [c for c in map(trained_on, runs) if c is not None]
    dataset = args.dataset or _agreed(configs, "dataset", "--dataset") or MNIST
    # a data folder belongs to its data set: another --dataset takes none of the runs'
    data_dir = args.data_dir or next((c.data_dir for c in configs
                                      if c.dataset == dataset and c.data_dir), None)
    validation_size = 0                 # the held-out rows matter only for their own split
    if args.split != "test":
        validation_size = args.validation_size
        if validation_size is None:
            validation_size = _agreed(configs, "validation_size", "--validation-size")
        if validation_size is None:
            validation_size = DEFAULTS.validation_size
    data = getattr(load_splits(dataset, data_dir=data_dir, validation_size=validation_size),
                   args.split)
    if data is None:
        raise DataError(f"{dataset}: has no {args.split} split")
    return dataset, data


def _agreed(configs, key: str, flag: str):
    """The value of ``key`` that all ``configs`` share; None where there are none."""
    values = list(dict.fromkeys(getattr(c, key) for c in configs))     # in the runs' order
    if len(values) > 1:
        raise ConfigError(f"the runs were trained with different {key.replace('_', ' ')}s "
                          f"({', '.join(map(str, values))}); choose one with {flag}")
    return values[0] if values else None


def add_blas_threads_flag(parser, default: int | str = 1) -> None:
    """``--blas-threads N|auto``: ``nablanet train`` defaults to auto, the rest to 1."""
    parser.add_argument(
        "--blas-threads", type=thread_setting, default=default, metavar="N|auto",
        help=f"threads the BLAS may use (default {default}; 0 keeps the BLAS default of one "
             "per core). auto: the trainer holds it to one thread while an epoch's GEMMs "
             "are small (784-100-10 at batch 32: 0.20 s an epoch on one thread, 0.25 s "
             "on two) and lets it use the idle cores when they are large (batch 128: "
             "0.14 s on one, 0.11 s on two); threads fighting for a busy machine's "
             "cores slow it down (2–3× with one of 2 cores busy), so auto counts only "
             "idle ones")


def thread_setting(text: str):
    """``--blas-threads``' value: "auto" or a count ≥ 0."""
    if text == "auto":
        return text
    return _int_at_least(text, 0, "a thread count ≥ 0 or 'auto'")


def blas_threads(n: int | str):
    """A context limiting BLAS to ``n`` threads (threadpoolctl); 0 leaves it as it is, and
    so does "auto" (each :class:`~nablanet.training.Trainer` then picks its own)."""
    if n == "auto":
        return contextlib.nullcontext()
    if n < 0:
        raise ConfigError(f"--blas-threads must be ≥ 0, got {n}")
    from ..utils.blas import limited     # NumPy's and SciPy's pools, without threadpoolctl none
    return limited(n or None)


def info(args, message: str) -> None:
    """A progress or status line on stderr, unless ``--quiet``."""
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr, flush=True)


def _choice(group, flag: str, what: str, default: str) -> None:
    key = flag.lstrip("-").replace("-", "_")
    group.add_argument(flag, choices=CHOICES[key], help=f"{what} (default {default})")


__all__ = ["DEFAULTS", "MNIST", "add_blas_threads_flag", "add_data_flags",
           "add_split_flag",
           "add_model_argument", "add_training_flags", "blas_threads", "info", "int_list",
           "load_run_model", "load_runs_split", "non_negative_int", "positive_int",
           "thread_setting", "trained_on", "training_flags", "with_absolute_data_paths"]
