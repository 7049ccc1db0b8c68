"""``nablanet reproduce nielsen-ch3|nielsen-ch6|lenet5|hinton-2006``: re-run a published table.

``nielsen-ch3``: Nielsen's chapter 1 and 3 MNIST table, several seeds.

Six configurations — 30 and 100 hidden sigmoid units × {quadratic cost η = 3.0,
cross-entropy η = 0.5, cross-entropy with L2 λ = 5 η = 0.5} — trained with
mini-batches of 10 for 30 epochs on Nielsen's 50 000/10 000 split, plus his best
single run of chapter 3 (100 hidden, cross-entropy, λ = 5, η = 0.1, 60 epochs:
98.04 % validation accuracy). Weights start from N(0, 1/n_in) by default, the
``default_weight_initializer`` of Nielsen's network2.py. ``--init normal`` uses the
N(0, 1) ``large_weight_initializer`` instead: measured over 3 seeds it leaves the
100-unit quadratic net (η = 3.0) saturated and unstable (test errors 3.5–22 %).

Every configuration-seed pair is an ordinary run directory ``OUT/NAME/seed-S``;
one already completed with the same settings is reused, not trained again.
The table compares our median test error (of the model with the best
validation accuracy) with the threshold for each row; ``reproduce.json`` holds
every number.

``hinton-2006``: the energy-based experiments of Hinton & Salakhutdinov 2006 and
Hinton, Osindero & Teh 2006 on MNIST (one seed; see
:mod:`nablanet.presets.rbm_reproduce`): the pretrained and fine-tuned 784-500-500-2000
DBN's test error, the generative DBN's label-clamped digits, and the deep
autoencoder's reconstruction error beside PCA's, each printed beside the published
number, each experiment in OUT/dbn, OUT/generate, OUT/autoencoder.

``nielsen-ch6`` and ``lenet5``: the convolutional nets (:mod:`.reproduce_cnn`).
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from ..config import CHOICES, TrainConfig
from ..errors import ConfigError, NablanetError
from ..runs import RunDir, to_json, train_run
from ..utils.atomic import atomic_write_bytes
from ..utils.wording import plural
from .common import (add_blas_threads_flag, add_data_flags, blas_threads, info, non_negative_int,
                     positive_int, with_absolute_data_paths)
from .reproduce_cnn import CNN_TABLES, run_cnn


@dataclass(frozen=True)
class Experiment:
    name: str
    label: str
    hidden: int
    cost: str
    eta: float
    lmbda: float = 0.0
    epoch_factor: int = 1                      # × --epochs (the 60-epoch row is 2 × 30)
    threshold_error: float | None = None       # % test error the median must not exceed
    published_accuracy: float | None = None    # % validation accuracy of Nielsen's one run


NIELSEN_CH3 = (
    Experiment("h30-quadratic", "hidden 30,  quadratic,     η=3.0", 30, "quadratic", 3.0,
               threshold_error=5.53),
    Experiment("h30-cross-entropy", "hidden 30,  cross-entropy, η=0.5", 30, "cross-entropy",
               0.5, threshold_error=4.86),
    Experiment("h30-cross-entropy-l2", "hidden 30,  cross-entropy, λ=5, η=0.5", 30,
               "cross-entropy", 0.5, 5.0, threshold_error=4.03),
    Experiment("h100-quadratic", "hidden 100, quadratic,     η=3.0", 100, "quadratic", 3.0,
               threshold_error=3.74),
    Experiment("h100-cross-entropy", "hidden 100, cross-entropy, η=0.5", 100, "cross-entropy",
               0.5, threshold_error=3.00),
    Experiment("h100-cross-entropy-l2", "hidden 100, cross-entropy, λ=5, η=0.5", 100,
               "cross-entropy", 0.5, 5.0, threshold_error=2.56),
    Experiment("h100-cross-entropy-l2-eta0.1", "hidden 100, cross-entropy, λ=5, η=0.1", 100,
               "cross-entropy", 0.1, 5.0, epoch_factor=2, published_accuracy=98.04),
)
TABLES = {"nielsen-ch3": NIELSEN_CH3}
#: tables of experiments rather than seeded rows (run by their own module)
ENERGY_TABLES = ("hinton-2006",)
#: --help's summary of the tables (the module docstring says more, for readers of the code)
DESCRIPTION = ("Re-run a published table and print our numbers beside the published ones. "
               "nielsen-ch3: Nielsen's chapter 1 and 3 MNIST table (30 and 100 sigmoid "
               "units, quadratic and cross-entropy costs, L2), several seeds; nielsen-ch6: "
               "his chapter 6 ladder of convolutional nets and their ensemble; lenet5: "
               "LeNet-5 (LeCun et al. 1998); hinton-2006: the DBN, the generative DBN and "
               "the deep autoencoder of Hinton & Salakhutdinov and Hinton, Osindero & Teh "
               "(2006), seed 0.")
#: BLAS/OpenMP thread counts, pinned to 1 in workers: N processes × 1 thread beats oversubscription
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                     "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def add_parser(subparsers):
    tables = sorted([*TABLES, *ENERGY_TABLES, *CNN_TABLES])
    p = subparsers.add_parser(
        "reproduce", help=f"re-run a published table ({', '.join(tables)})",
        description=DESCRIPTION)
    p.add_argument("table", choices=tables, metavar="TABLE", help=f"one of: {', '.join(tables)}")
    p.add_argument("--seeds", type=int, metavar="N",
                   help="nielsen-ch3: seeds 0..N-1 (default 3); the other tables run seed 0 "
                        "only")
    p.add_argument("--epochs", type=positive_int, metavar="N",
                   help="epochs per run (nielsen-ch3: default 30, the η=0.1 row trains twice "
                        "as long; hinton-2006: RBM epochs per layer, default the presets' 50)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="nielsen-ch3: runs trained at once, in N processes of one BLAS thread "
                        "each")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="where the run directories and reproduce.json (nielsen-ch6, lenet5: "
                        "results.json) go (default runs/TABLE)")
    p.add_argument("--only", action="append", metavar="NAME",
                   help="run only these rows (repeatable): "
                        + ", ".join(e.name for e in NIELSEN_CH3)
                        + "; hinton-2006: dbn, generate, autoencoder; nielsen-ch6: its "
                          "ladder steps, e.g. nielsen-ch6-final")
    add_data_flags(p)
    p.add_argument("--init", choices=CHOICES["init"],
                   help="nielsen-ch3: weight initialisation (default normal-scaled, "
                        "network2's default)")
    p.add_argument("--rerun", action="store_true", help="train again even where a run completed")
    p.add_argument("--check", action="store_true",
                   help="exit 1 when a median test error is above its threshold")
    p.add_argument("--quiet", action="store_true", help="no line per finished run")
    add_blas_threads_flag(p)
    p.add_argument("--members", type=int, metavar="K",
                   help="nielsen-ch6: nets in the final ensemble (default 5; 0: none)")
    energy = p.add_argument_group("hinton-2006 (and, where said, nielsen-ch6 and lenet5)")
    energy.add_argument("--fine-tune-epochs", type=non_negative_int, metavar="N",
                        help="backprop epochs of the DBN and the autoencoder (default: the "
                             "presets')")
    energy.add_argument("--train-size", type=positive_int, metavar="N",
                        help="use the first N training images (default all 50000; also "
                             "nielsen-ch6, lenet5, which cut the validation images too)")
    energy.add_argument("--test-size", type=positive_int, metavar="N",
                        help="use the first N test images (default all 10000)")
    energy.add_argument("--gibbs-steps", type=non_negative_int, metavar="N",
                        help="Gibbs steps per generated digit (default the preset's)")
    energy.add_argument("--per-class", type=positive_int, metavar="N",
                        help="digits generated per class (default 100)")
    energy.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                        help="also nielsen-ch6, lenet5")
    return p


_ENERGY_FLAGS = ("fine_tune_epochs", "train_size", "test_size", "gibbs_steps", "per_class")
#: the flags of that group that the convolutional tables take too (their help: "also ...")
_CNN_TOO = ("train_size", "device")


def run(args) -> int:
    if args.out is None:
        args.out = Path("runs") / args.table
    if args.members is not None and args.table != "nielsen-ch6":  # hinton-2006 ignored it
        raise ConfigError("--members belongs to nielsen-ch6")
    if args.table in ENERGY_TABLES:
        return _run_energy(args)
    if args.table in CNN_TABLES:
        return run_cnn(args)
    given = [f for f in _ENERGY_FLAGS if getattr(args, f) is not None]
    if args.device != "cpu":
        given.append("device")
    if given:
        tables = ("the hinton-2006, nielsen-ch6 and lenet5 tables" if given[0] in _CNN_TOO
                  else "the hinton-2006 table")
        raise ConfigError(f"--{given[0].replace('_', '-')} belongs to {tables}")
    args.seeds = 3 if args.seeds is None else args.seeds
    args.epochs = 30 if args.epochs is None else args.epochs
    args.init = args.init or "normal-scaled"
    experiments = _selected(TABLES[args.table], args.only)
    if args.seeds < 1 or args.jobs < 1:
        raise ConfigError(f"--seeds and --jobs must be ≥ 1, got {args.seeds} and {args.jobs}")
    tasks = [(e, seed, _config(e, seed, args), args.out / e.name / f"seed-{seed}")
             for e in experiments for seed in range(args.seeds)]
    todo = [t for t in tasks if args.rerun or not _finished(t[2], t[3])]
    # Longest first, so N workers do not end waiting on one 60-epoch run started last.
    todo.sort(key=lambda t: -t[2].epochs * sum(t[2].hidden))
    info(args, f"{plural(len(tasks), 'run')} ({len(tasks) - len(todo)} already done) into "
               f"{args.out}")
    summaries = {t[3]: RunDir(t[3]).read_summary() for t in tasks if t not in todo}
    start = time.perf_counter()
    for done, (task, summary) in enumerate(_execute(todo, args.jobs, args.blas_threads), start=1):
        summaries[task[3]] = summary
        info(args, f"[{done}/{len(todo)}] {task[0].name} seed {task[1]}: {_brief(summary)} "
                   f"({time.perf_counter() - start:.0f} s)")
    rows = [_row(e, [(seed, d, summaries[d]) for ex, seed, _, d in tasks if ex is e],
                 args.epochs * e.epoch_factor) for e in experiments]
    report = {"table": args.table, "dataset": args.dataset or "mnist", "seeds": args.seeds,
              "epochs": args.epochs, "init": args.init, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out / "reproduce.json", to_json(report, indent=2).encode() + b"\n")
    print(format_table(report))
    failed = [r for row in rows for r in row["runs"] if r["status"] not in _DONE]
    if failed:
        print(f"nablanet: error: {len(failed)} run(s) did not finish: "
              + "; ".join(f"{r['directory']}: {r['status']} ({r['message']})" for r in failed),
              file=sys.stderr)
        return 1
    above = [row["name"] for row in rows if row["within_threshold"] is False]
    return 1 if args.check and above else 0


def _run_energy(args) -> int:
    """hinton-2006: the dbn, generate and autoencoder experiments, one after another."""
    from ..presets.rbm_reproduce import all_checks_pass, reproduce_hinton_2006

    for flag, value, default in (("--seeds", args.seeds, 1), ("--jobs", args.jobs, 1)):
        if value is not None and value != default:
            raise ConfigError(f"{flag} {value}: {args.table} runs one seed in one process")
    if args.init is not None or args.rerun:
        raise ConfigError(f"--{'init' if args.init else 'rerun'} belongs to nielsen-ch3 "
                          f"({args.table} always trains its presets afresh)")
    if args.dataset not in (None, "mnist"):
        raise ConfigError(f"{args.table} reproduces MNIST results; --dataset must be mnist")
    kwargs = {"epochs": args.epochs, "fine_tune_epochs": args.fine_tune_epochs,
              "train_size": args.train_size, "test_size": args.test_size,
              "gibbs_steps": args.gibbs_steps, "per_class": args.per_class,
              "device": args.device, "data_dir": args.data_dir}
    if args.validation_size is not None:
        kwargs["validation_size"] = args.validation_size
    with blas_threads(args.blas_threads):
        summaries = reproduce_hinton_2006(args.out, only=args.only,
                                          stream=None if args.quiet else sys.stderr, **kwargs)
    return 1 if args.check and not all_checks_pass(summaries) else 0


# -- the runs ------------------------------------------------------------------------------------
def _selected(table, only):
    if not only:
        return table
    names = {e.name for e in table}
    unknown = [n for n in only if n not in names]
    if unknown:
        raise ConfigError(f"unknown row {unknown[0]!r}; choose from {', '.join(sorted(names))}")
    return tuple(e for e in table if e.name in only)


def _config(e: Experiment, seed: int, args) -> TrainConfig:
    data = {k: v for k, v in (("dataset", args.dataset), ("data_dir", args.data_dir),
                              ("validation_size", args.validation_size)) if v is not None}
    # absolute, as nablanet train stores them: `evaluate RUN` from any folder finds the data
    return with_absolute_data_paths(
        TrainConfig(hidden=[e.hidden], cost=e.cost, eta=e.eta, lmbda=e.lmbda, batch_size=10,
                    epochs=args.epochs * e.epoch_factor, init=args.init, seed=seed, **data))


_DONE = ("completed", "early-stopped")


def _finished(config: TrainConfig, directory: Path) -> bool:
    """Whether ``directory`` holds a finished run of exactly ``config``."""
    run = RunDir(directory)
    try:
        stored = run.read_config()
        return (run.read_summary().get("status") in _DONE
                and config.resolve(stored.sizes[0]) == stored)
    except (NablanetError, OSError, TypeError, IndexError):
        return False


def _execute(tasks, jobs: int, threads: int):
    """Yield (task, summary) as runs finish: here with ``threads`` BLAS threads, or in
    ``jobs`` worker processes of one BLAS thread each."""
    if jobs == 1 or len(tasks) <= 1:
        with blas_threads(threads):
            for task in tasks:
                yield task, run_one(task[2].to_dict(), str(task[3]))
        return
    # spawn, not fork: each worker imports NumPy afresh and so reads the thread limits.
    context = multiprocessing.get_context("spawn")
    with _single_threaded_blas(), ProcessPoolExecutor(min(jobs, len(tasks)), context) as pool:
        futures = {pool.submit(run_one, t[2].to_dict(), str(t[3])): t for t in tasks}
        for future in as_completed(futures):
            yield futures[future], future.result()


def run_one(config_values: dict, directory: str) -> dict:
    """Train one run (in a worker process or here); return its summary, failed or not."""
    try:
        return train_run(TrainConfig(**config_values), directory)
    except (NablanetError, OSError) as exc:
        try:
            return RunDir(directory).read_summary()      # status and message are recorded there
        except (NablanetError, OSError):
            # No summary was written (its folder could not be made, say): report that
            # failure, not the "summary.json: no such file" it leads to.
            raise exc from None


@contextlib.contextmanager
def _single_threaded_blas():
    """Set the BLAS/OpenMP thread variables to 1 for the workers started inside."""
    saved = {k: os.environ.get(k) for k in _THREAD_VARIABLES}
    os.environ.update({k: "1" for k in _THREAD_VARIABLES})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# -- the table -----------------------------------------------------------------------------------
def _row(e: Experiment, runs, epochs: int) -> dict:
    entries = []
    for seed, directory, s in runs:
        entries.append({"seed": seed, "directory": str(directory), "status": s.get("status"),
                        "message": s.get("message", ""), "test_accuracy": s.get("test_accuracy"),
                        "test_error": _test_error(s),
                        "best_validation_accuracy": s.get("best_validation_accuracy"),
                        "best_epoch": s.get("best_epoch"),
                        "median_epoch_seconds": s.get("median_epoch_seconds")})
    row = {"name": e.name, "label": e.label, "hidden": e.hidden, "cost": e.cost, "eta": e.eta,
           "lmbda": e.lmbda, "epochs": epochs, "runs": entries}
    if e.published_accuracy is not None:
        values = [100 * r["best_validation_accuracy"] for r in entries
                  if r["best_validation_accuracy"] is not None]
        row.update(metric="validation_accuracy", published=e.published_accuracy,
                   median=statistics.median(values) if values else None,
                   best=max(values) if values else None, within_threshold=None)
    else:
        values = [r["test_error"] for r in entries if r["test_error"] is not None]
        median = statistics.median(values) if values else None
        row.update(metric="test_error", threshold=e.threshold_error, median=median,
                   best=min(values) if values else None,
                   within_threshold=None if median is None else median <= e.threshold_error)
    return row


def _test_error(summary: dict) -> float | None:
    """The % test error from the counts: 100 · errors / n is the float nearest the
    two-decimal figure, as the thresholds are, where 100 · (1 − accuracy) put 553 errors
    of 10 000 at 5.530000000000001, above h30-quadratic's 5.53."""
    errors, n = summary.get("test_errors"), summary.get("test_examples")
    return None if errors is None or not n else 100 * errors / n


def format_table(report: dict) -> str:
    """The rows as text: each seed's number, the median, and the threshold beside it."""
    lines = [f"{report['table']}: {report['dataset']}, mini-batch 10, "
             f"{plural(report['epochs'], 'epoch')}, init {report['init']}, "
             f"seeds 0..{report['seeds'] - 1}; test error (%) of the model with the best "
             "validation accuracy",
             f"{'':40} {'seeds':<22} {'median':>7} {'threshold':>10}"]
    for row in report["rows"]:
        seeds = " ".join(_pct(r["test_error"] if row["metric"] == "test_error"
                              else _scale(r["best_validation_accuracy"])) for r in row["runs"])
        if row["metric"] == "test_error":
            verdict = {True: "ok", False: "ABOVE", None: "-"}[row["within_threshold"]]
            lines.append(f"{row['label']:40} {seeds:<22} {_pct(row['median']):>7} "
                         f"{row['threshold']:>10.2f}  {verdict}")
        else:
            lines.append(f"{row['label']}, {plural(row['epochs'], 'epoch')}: validation "
                         f"accuracy (%) {seeds}; median {_pct(row['median'])}, "
                         f"best {_pct(row['best'])} "
                         f"(published single run {row['published']:.2f})")
    return "\n".join(lines)


def _brief(summary: dict) -> str:
    if summary.get("status") not in _DONE:
        return f"{summary.get('status')}: {summary.get('message')}"
    return (f"test error {100 * (1 - summary['test_accuracy']):.2f}%, best epoch "
            f"{summary['best_epoch'] + 1}, {summary['median_epoch_seconds']:.1f} s/epoch")


def _scale(fraction):
    return None if fraction is None else 100 * fraction


def _pct(value) -> str:
    return "  -  " if value is None else f"{value:5.2f}"
