"""``nablanet train``: train a network and write a run directory (see :mod:`nablanet.runs`).

Settings come from the defaults (the default MNIST network of ``make run``), then
``--config FILE.toml``, then the flags given on the command line. ``--resume RUN``
continues RUN from its ``last/`` checkpoint with RUN's own settings (only
``--epochs`` and ``--data-dir`` may change; ``--epochs`` not under a cosine schedule,
whose length it is), ending bit-identical to a run that was never interrupted.
"""
from __future__ import annotations

import contextlib
import signal
import sys
from datetime import datetime
from pathlib import Path

from ..config import TrainConfig
from ..errors import ConfigError
from ..runs import RunDir, train_run
from ..utils.wording import plural
from .common import (add_blas_threads_flag, add_training_flags, blas_threads, info,
                     training_flags, with_absolute_data_paths)
from .train_preset import preset_names, run_preset

#: settings a resumed run may change without changing what it computes
RESUME_MAY_CHANGE = ("epochs", "data_dir")


def add_parser(subparsers):
    p = subparsers.add_parser(
        "train", help="train a network; writes a run directory",
        description="Train a fully connected network (default: Nielsen's 784-100-10 sigmoid "
                    "net, cross-entropy, η=0.5, λ=5, mini-batches of 10, 30 epochs) and write "
                    "config.toml, metrics.jsonl, summary.json, best/, last/ and plots. "
                    "A --preset run writes what its recipe keeps: the CNN presets "
                    "metrics.jsonl, best/, last/, result.json and test_predictions.npy; "
                    "char-lstm config.toml, metrics.jsonl, summary.json, best/, last/ and "
                    "sample.txt.")
    add_training_flags(p)
    run = p.add_argument_group("run")
    run.add_argument("--config", type=Path, metavar="FILE.toml",
                     help="settings as TOML (the flags' names with underscores, e.g. "
                          "batch_size = 10); flags on the command line override it")
    run.add_argument("--out", type=Path, metavar="DIR",
                     help="run directory (default runs/<date>-<time>)")
    run.add_argument("--resume", type=Path, metavar="RUN",
                     help="continue RUN from its last/ checkpoint (e.g. with a larger --epochs, "
                          "unless it follows a cosine schedule)")
    run.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")
    add_blas_threads_flag(run, default="auto")
    named = p.add_argument_group("presets (the later lectures' nets, with their own recipes)")
    from ..presets.rbm_reproduce import PRESET_EXPERIMENTS    # pretrain's presets
    named.add_argument("--preset", choices=preset_names(), metavar="NAME",
                       help="one of: " + ", ".join(preset_names()) + " (the energy-based "
                            "presets " + ", ".join(PRESET_EXPERIMENTS) + ": nablanet "
                            "pretrain --preset NAME)")
    named.add_argument("--text", type=Path, metavar="FILE",
                       help="char-lstm: the text to model (default Tiny Shakespeare)")
    named.add_argument("--minutes", type=float, metavar="M",
                       help="char-lstm: wall-clock budget (default 30 unless --epochs)")
    return p


def run(args) -> int:
    flags = training_flags(args)
    if args.preset is not None:
        if args.resume is not None or args.config is not None:
            raise ConfigError("--preset cannot be combined with --resume or --config")
        directory = args.out if args.out is not None else default_run_dir()
        with terminate_as_interrupt(), blas_threads(args.blas_threads):
            return run_preset(args, flags, directory)
    if args.text is not None or args.minutes is not None:
        raise ConfigError("--text and --minutes belong to --preset char-lstm")
    if args.resume is not None:
        config, directory = _resumed(args, flags)
    else:
        base = TrainConfig.from_toml(args.config) if args.config else TrainConfig()
        config = with_absolute_data_paths(base.merged_with(flags))
        directory = args.out if args.out is not None else default_run_dir()
    replacing = args.resume is None and RunDir(directory).config_path.is_file()
    info(args, f"run directory: {directory}"
               + (" (replacing the run that was there)" if replacing else ""))
    for idle in config.idle_settings(flags):
        # a note, not an error: --config RUN/config.toml --optimizer sgd keeps the file's μ
        info(args, f"note: --{idle.replace('_', '-')}; it has no effect")
    if config.cost == "log-likelihood" and config.output_activation == "sigmoid":
        # allowed (a sigmoid is a probability), but rarely what was meant: a net trained
        # so on MNIST stays at chance
        info(args, "note: log-likelihood with sigmoid outputs raises the true class's output "
                   "and never lowers the others (softmax does, by normalising); expect "
                   "little better than chance")
    with terminate_as_interrupt(), blas_threads(args.blas_threads):
        summary = train_run(config, directory, resume=args.resume is not None,
                            progress=None if args.quiet else sys.stderr)
    if summary["status"] == "early-stopped":
        info(args, f"stopped early: {summary['message']}")
    if summary.get("last_test_accuracy") is not None:
        info(args, f"best epoch {summary['best_epoch'] + 1}; last model's test accuracy "
                   f"{summary['last_test_accuracy']:.2%} ({summary['last_test_errors']} errors)")
    print(f"test accuracy: {summary['test_accuracy']:.2%} ({summary['test_errors']} errors)")
    return 0


def _resumed(args, flags: dict) -> tuple[TrainConfig, Path]:
    if args.out is not None or args.config is not None:
        raise ConfigError("--resume continues RUN in place with its own config.toml; "
                          "drop --out and --config")
    changed = sorted(set(flags) - set(RESUME_MAY_CHANGE))
    if changed:
        given = ", ".join("--" + key.replace("_", "-") for key in changed)
        raise ConfigError(f"--resume keeps the run's settings; only --epochs and --data-dir "
                          f"may change (got {given})")
    _refuse_preset_run(args.resume)
    run = RunDir(args.resume)
    run.require_resumable()
    stored = run.read_config()
    if stored.schedule == "cosine" and flags.get("epochs", stored.epochs) != stored.epochs:
        # the cosine's length is the run's epochs: a new length bends η from here on, and
        # the run would match no uninterrupted one
        raise ConfigError(f"--resume keeps the run's cosine schedule, which decays η over "
                          f"its {plural(stored.epochs, 'epoch')}; --epochs "
                          f"{flags['epochs']} would change it mid-run (train a new run for "
                          f"that length)")
    return with_absolute_data_paths(stored.merged_with(flags)), run.path


def _refuse_preset_run(path: Path) -> None:
    """A --preset run keeps no TrainConfig to resume from; say so rather than "no config.toml"
    or "no last/ checkpoint" about a run that has both kinds of file."""
    from ..presets.cnn_reproduce import RESULT
    from .generate_text import is_char_lm

    if is_char_lm(path) or (path / RESULT).is_file():
        raise ConfigError(f"{path}: a --preset run, which --resume cannot continue; train "
                          "the preset again (nablanet train --preset NAME --epochs N --out DIR)")


@contextlib.contextmanager
def terminate_as_interrupt():
    """Treat SIGTERM (``kill``, a job scheduler's stop) like Ctrl-C while a run trains, so
    its summary says it was interrupted and how to resume instead of "running" forever."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:                      # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def default_run_dir(root: Path = Path("runs")) -> Path:
    """runs/<date>-<time>, with a suffix when two runs start in the same second."""
    stem = datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate, n = root / stem, 1
    while candidate.exists():
        n += 1
        candidate = root / f"{stem}-{n}"
    return candidate
