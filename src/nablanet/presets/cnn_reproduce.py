"""Reproduce the convolutional results on MNIST: LeNet-5 and Nielsen's chapter-6 ladder.

    python -m nablanet.presets.cnn_reproduce lenet5|nielsen-ch6|PRESET --out DIR
        [--epochs N] [--subset N] [--members K] [--steps a,b,...] [--device cpu|gpu]
        [--seed S] [--data-dir DIR] [--blas-threads N] [--quiet]

* ``lenet5``: the LeNet-5 preset with its recipe (LeCun et al. 1998: 0.95% test error).
* ``nielsen-ch6``: the chapter's ladder, each net with Nielsen's settings — 784-100-10,
  one conv-pool layer, two, ReLU with L2, shifted (5×) training data, a second fully
  connected layer, 1000-unit layers with dropout (Nielsen's recipe, and
  ``nielsen-ch6-final``: the same net with a recipe a CPU can afford) — then an
  ensemble of ``--members`` ``nielsen-ch6-final`` nets combined by plurality vote
  (published: 99.67%, 33 errors), with McNemar's test of the ensemble against its
  first member. ``--steps nielsen-ch6-final`` trains just the final net and its
  ensemble (the net trained as a step is member 1).
* any other name in :data:`~nablanet.presets.PRESETS` trains that one net.

Each net is trained on the first 50 000 training images (``--subset N`` takes the first
N of them and of the validation images, for a quick check; shifted data is expanded
after the cut) and the 10 000 validation images pick the epoch; its test accuracy is
read at that epoch, as Nielsen does. A recipe with ``validation_in_training`` trains on
all 60 000 and keeps its last epoch.
Every net gets a run directory ``DIR/<name>`` (``best/``, ``last/``, metrics.jsonl) that
``nablanet evaluate``/``ensemble``/``compare`` read; ``DIR/results.json`` holds our numbers
beside the published ones and is rewritten after every net, so a long run keeps what
it has finished.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from ..backend import get_backend
from ..data import Dataset, load_mnist
from ..data.augment import expand_by_shifts
from ..errors import ConfigError, NablanetError
from ..optimizers import get_optimizer
from ..regularizers import L2
from ..config import TrainConfig, build_callbacks
from ..training import Checkpoint, Progress, Trainer
from ..utils.wording import Parser, plural
from ..utils.atomic import atomic_path, atomic_write_bytes
from .cnn import PRESETS, PUBLISHED, PUBLISHED_ENSEMBLE, RECIPES

#: the chapter's ladder, in order
LADDER = ("nielsen-ch6-fc", "nielsen-ch6-conv", "nielsen-ch6-conv2", "nielsen-ch6-relu",
          "nielsen-ch6-expanded", "nielsen-ch6-fc2", "nielsen-ch6-dropout", "nielsen-ch6-final")
TARGETS = {"lenet5": 0.99, "lenet5-distorted": 0.99,          # the acceptance lines
           "nielsen-ch6-dropout": 0.995, "nielsen-ch6-final": 0.995}
ENSEMBLE_MAX_ERRORS = 33


def load_data(data_dir=None, subset: int | None = None):
    """MNIST train, validation and test sets; ``subset`` keeps the first ``subset`` of the
    50 000 training images, and of the 10 000 validation images (a recipe may train on
    those too)."""
    train, validation, test = load_mnist(data_dir, download=False)
    if subset is not None:
        if not 0 < subset <= len(train):
            raise ConfigError(f"--subset must be in [1, {len(train)}], got {subset}")
        train = Dataset(train.x[:subset], train.y[:subset], train.name)
        validation = Dataset(validation.x[:subset], validation.y[:subset], validation.name)
    return train, validation, test


def train_preset(name: str, data, out: Path, *, epochs: int | None = None, seed: int = 0,
                 device: str = "cpu", stream=sys.stderr) -> dict:
    """Train preset ``name`` with its recipe into run directory ``out``; return its results.

    The model with the best validation accuracy is kept (``out/best``) and scored on
    the test set. A run that already finished in ``out`` with the same preset, settings,
    net, seed, device and training-set size (its ``result.json``) is reused, not trained
    again — so the members of an ensemble can be trained in parallel processes first.
    """
    from ..io import load_model
    from ..runs import MetricsWriter, score, to_json

    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    recipe = dict(RECIPES[name])
    if epochs is not None and epochs < 1:       # 0 is not "the recipe's": say so
        raise ConfigError(f"epochs must be ≥ 1, got {epochs}")
    epochs = int(recipe["epochs"] if epochs is None else epochs)
    _check_out(out)
    train, validation, test = data
    if recipe.get("validation_in_training"):
        # all 60 000 training images; nothing is left to pick an epoch, so the last is kept
        train = Dataset(np.concatenate([train.x, validation.x]),
                        np.concatenate([train.y, validation.y]), f"{train.name}+validation")
        validation = None
    if recipe["expand"]:
        train = expand_by_shifts(train)
    backend = get_backend(device)
    net = PRESETS[name](backend=backend, rng=np.random.default_rng(seed))
    settings = {**recipe, "epochs": epochs, "net": net.config()}
    finished = _finished(out, name, settings, seed, len(train), device)
    if finished is not None:
        if stream is not None:
            print(f"{out}: finished earlier with these settings and seed; its result is "
                  "reused (choose another --out to train again)", file=stream, flush=True)
        return finished
    extra = {"momentum": recipe["momentum"]} if "momentum" in recipe else {}
    optimizer = get_optimizer(recipe["optimizer"], recipe["eta"], **extra)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.jsonl").write_text("")
    callbacks = [Checkpoint(out), MetricsWriter(out / "metrics.jsonl")]
    # the recipe's schedule, built as `nablanet train` builds one
    schedule = {k: recipe[k] for k in ("schedule", "step_every") if k in recipe}
    callbacks += build_callbacks(TrainConfig(**schedule, epochs=epochs))
    if stream is not None:
        callbacks.append(Progress(stream, total_epochs=epochs))
    trainer = Trainer(net, recipe["cost"], optimizer, batch_size=recipe["batch_size"],
                      penalties=[L2(recipe["lmbda"])] if recipe["lmbda"] else [],
                      callbacks=callbacks,
                      monitor=("validation_accuracy",) if validation is not None else (),
                      rng=np.random.default_rng(seed + 1))
    start = time.perf_counter()
    history = trainer.fit(train, epochs, validation)
    seconds = time.perf_counter() - start
    best, cost, meta = load_model(out / "best", backend=backend)
    scored = score(best, cost, test)
    predictions = best.classify(test.x)
    with atomic_path(out / "test_predictions.npy") as tmp, open(tmp, "wb") as f:
        np.save(f, predictions)
    result = {"name": name, "directory": str(out), "epochs": len(history.rows),
              "best_epoch": meta.get("epoch"), "device": device,
              "train_examples": len(train), "seed": seed,
              "validation_accuracy": max((r["validation_accuracy"] for r in history.rows
                                          if "validation_accuracy" in r), default=None),
              "test_accuracy": scored.accuracy, "test_errors": scored.errors,
              "published_test_accuracy": PUBLISHED.get(name),
              "seconds": seconds, "seconds_per_epoch": [r["seconds"] for r in history.rows],
              "status": trainer.status, "settings": settings}
    atomic_write_bytes(out / RESULT, (to_json(result, indent=2) + "\n").encode())
    return result


#: the results of a finished preset run, in its run directory
RESULT = "result.json"


def _check_out(out: Path) -> None:
    """Refuse a folder that holds something other than a preset run (a `nablanet train` or
    char-lstm run, anything else) rather than mixing our best/, last/ and metrics into it.
    A preset run, finished (result.json) or interrupted (metrics.jsonl), is ours to redo."""
    out = Path(out)
    if not out.is_dir() or not any(out.iterdir()):
        return
    if (out / "config.toml").is_file() or not any((out / f).is_file()
                                                   for f in (RESULT, "metrics.jsonl")):
        raise ConfigError(f"{out}: folder is not empty and holds no preset run; "
                          "choose a new --out")


def _finished(out: Path, name: str, settings: dict, seed: int, n_train: int, device: str):
    """The stored result of a completed run in ``out`` with exactly these settings, or None."""
    import json

    try:
        stored = json.loads((Path(out) / RESULT).read_text())
    except (OSError, ValueError, RecursionError):   # unreadable, or JSON nested too deep
        return None
    same = isinstance(stored, dict) and (stored.get("name") == name and stored.get("seed") == seed
            and stored.get("device") == device and stored.get("status") == "completed"
            and stored.get("settings") == json.loads(json.dumps(settings))
            and stored.get("train_examples") == n_train)
    return stored if same else None


def ensemble_of(name: str, data, out: Path, members: int, *, epochs=None, seed: int = 0,
                device: str = "cpu", stream=sys.stderr, first: dict | None = None) -> dict:
    """``members`` nets of preset ``name`` (seeds seed, seed+1, ...) and their plurality vote.

    ``first``, the result of a net of the same preset already trained with ``seed`` (its
    run directory in ``first["directory"]``), becomes member 1 instead of being trained
    again.
    """
    from ..ensemble import Ensemble
    from ..evaluation import compare
    from ..io import load_model

    runs, directories = [], []
    for k in range(members):
        if k == 0 and first is not None and first["seed"] == seed:
            runs.append(first)
        else:
            runs.append(train_preset(name, data, out / f"{name}-{k + 1}", epochs=epochs,
                                     seed=seed + k, device=device, stream=stream))
        directories.append(Path(runs[-1]["directory"]))
        if stream is not None:
            print(f"member {k + 1}: " + format_line(runs[-1]), file=stream, flush=True)
    nets = [load_model(d / "best")[0] for d in directories]
    test = data[2]
    predictions = Ensemble(nets, "vote").predict(test.x)
    errors = int((predictions != test.y).sum())
    first_predictions = np.load(directories[0] / "test_predictions.npy", allow_pickle=False)
    mcnemar = compare(test.y, predictions, first_predictions)
    return {"name": f"{name} × {members}", "members": runs, "combine": "vote",
            "test_accuracy": 1 - errors / len(test), "test_errors": errors,
            "published": PUBLISHED_ENSEMBLE,
            "mcnemar_vs_first_member": {"table": mcnemar.table.tolist(),
                                        "p_exact": mcnemar.p_exact, "chi2": mcnemar.chi2,
                                        "p_chi2": mcnemar.p_chi2,
                                        "significant": mcnemar.significant}}


def reproduce(target: str, out, *, epochs: int | None = None, subset: int | None = None,
              members: int = 5, steps=None, seed: int = 0, device: str = "cpu",
              data_dir=None, stream=sys.stderr) -> dict:
    """Run ``target`` (lenet5, nielsen-ch6 or a preset) into ``out``; returns results.json."""
    out = Path(out)
    # Checked before any training: a flag that cannot apply was silently dropped (steps
    # for a single preset) or failed only after the whole ladder (a negative ensemble).
    if steps and target != "nielsen-ch6":
        raise ConfigError(f"ladder steps belong to nielsen-ch6, not {target!r}")
    if members < 0:
        raise ConfigError(f"--members must be ≥ 0, got {members}")
    if target == "nielsen-ch6":
        names = tuple(steps or LADDER)
        unknown = [s for s in names if s not in LADDER]
        if unknown:
            raise ConfigError(f"unknown ladder step(s) {unknown}; choose from {', '.join(LADDER)}")
    elif target in PRESETS:
        names, members = (target,), 0
    else:
        raise ConfigError(f"unknown target {target!r}; choose lenet5, nielsen-ch6 or one of "
                          f"{', '.join(PRESETS)}")
    data = load_data(data_dir, subset)
    results = {"target": target, "device": device, "subset": subset, "nets": [],
               "ensemble": None}
    clock = time.perf_counter()
    for name in names:
        results["nets"].append(train_preset(name, data, out / name, epochs=epochs, seed=seed,
                                            device=device, stream=stream))
        _write(out, results, clock)
        if stream is not None:
            print(format_line(results["nets"][-1]), file=stream, flush=True)
    if target == "nielsen-ch6" and members:
        final = PUBLISHED_ENSEMBLE["name"]
        trained = [run for run in results["nets"] if run["name"] == final]
        results["ensemble"] = ensemble_of(final, data, out / "ensemble", members,
                                          epochs=epochs, seed=seed, device=device,
                                          stream=stream, first=trained[0] if trained else None)
    results["checks"] = checks(results)
    _write(out, results, clock)
    return results


def checks(results: dict) -> dict:
    """The issue's acceptance lines (meant for full-length runs on all the data)."""
    out = {}
    for run in results["nets"]:
        if run["name"] in TARGETS:
            out[f"{run['name']} test accuracy >= {TARGETS[run['name']]:.1%}"] = \
                run["test_accuracy"] >= TARGETS[run["name"]]
    if results.get("ensemble"):
        out[f"ensemble test errors <= {ENSEMBLE_MAX_ERRORS}"] = \
            results["ensemble"]["test_errors"] <= ENSEMBLE_MAX_ERRORS
    return out


def format_line(run: dict) -> str:
    published = run.get("published_test_accuracy")
    return (f"{run['name']:24s} ours {run['test_accuracy']:7.2%} ({run['test_errors']} errors, "
            f"{plural(run['epochs'], 'epoch')}, {run['seconds']:.0f}s)   published "
            + ("—" if published is None else f"{published:.2%}"))


def format_report(results: dict) -> str:
    """Our numbers beside the published ones, one line per net, then the ensemble and checks."""
    lines = [format_line(run) for run in results["nets"]]
    ens = results.get("ensemble")
    if ens:
        pub = ens["published"]
        m = ens["mcnemar_vs_first_member"]
        lines.append(f"{ens['name']:24s} ours {ens['test_accuracy']:7.2%} ({ens['test_errors']} "
                     f"errors, vote)   published {pub['accuracy']:.2%} ({pub['errors']} errors)")
        lines.append(f"  McNemar vs member 1: table {m['table']}, exact p = {m['p_exact']:.3g}")
    lines += [f"{'PASS' if ok else 'FAIL'}  {check}" for check, ok in results.get("checks",
                                                                              {}).items()]
    return "\n".join(lines)


def _write(out: Path, results: dict, clock: float) -> None:
    from ..runs import to_json
    results["seconds"] = time.perf_counter() - clock
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "results.json", (to_json(results, indent=2) + "\n").encode())


def main(argv=None) -> int:
    from ..cli.common import add_blas_threads_flag, blas_threads

    p = Parser(prog="python -m nablanet.presets.cnn_reproduce",
               description=__doc__.split("\n\n")[0])
    p.add_argument("target", help="lenet5, nielsen-ch6, or a preset name")
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    p.add_argument("--epochs", type=int, metavar="N", help="epochs per net (default: recipe's)")
    p.add_argument("--subset", type=int, metavar="N", help="first N training images only")
    p.add_argument("--members", type=int, default=5, metavar="K",
                   help="nielsen-ch6: nets in the final ensemble (0: none; default 5)")
    p.add_argument("--steps", metavar="A,B", help="nielsen-ch6: ladder steps to run "
                   f"(default all: {','.join(LADDER)})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--data-dir", metavar="DIR", help="where MNIST is (default $NABLANET_DATA)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    add_blas_threads_flag(p)
    args = p.parse_args(argv)
    try:
        with blas_threads(args.blas_threads):
            results = reproduce(args.target, args.out, epochs=args.epochs, subset=args.subset,
                                members=args.members, seed=args.seed, device=args.device,
                                steps=args.steps.split(",") if args.steps else None,
                                data_dir=args.data_dir,
                                stream=None if args.quiet else sys.stderr)
    except NablanetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
