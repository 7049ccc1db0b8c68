"""Run directories: everything a training run leaves on disk, and the run itself.

    RUN/config.toml     the full resolved TrainConfig (sizes, output filled in)
    RUN/metrics.jsonl   one JSON object per epoch, appended as the epoch ends
    RUN/summary.json    status, test accuracy of the best model, timings
    RUN/best/, last/    saved models; last/ also holds the training state (--resume)
    RUN/cost.png, accuracy.png   training and validation curves (Nielsen ch. 3)

``summary.json`` says ``"running"`` while the run trains and then ``"completed"``,
``"early-stopped"``, ``"diverged"`` or ``"failed"`` (with the message): a run that
raised is never left looking finished. Every JSON and TOML file is replaced
atomically; metrics.jsonl is appended one line per epoch (a line cut short by a
crash is left out when it is read, and a --resume rewrites the file from last/).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

import numpy as np
import tomli_w

from .config import TrainConfig, build_net, build_trainer, load_data
from .errors import ConfigError, DataError, DivergenceError, ModelFileError
from .training import Callback, Checkpoint, Progress
from .utils.atomic import atomic_write_bytes

CONFIG, METRICS, SUMMARY = "config.toml", "metrics.jsonl", "summary.json"
PLOTS = ("cost.png", "accuracy.png")
#: the trainer's stop reasons, as the four final statuses of a run
FINAL_STATUS = {"completed": "completed", "early-stopped": "early-stopped",
                "eta-exhausted": "early-stopped", "diverged": "diverged",
                "interrupted": "failed", "failed": "failed"}


class RunDir:
    """The files of one run directory (see the module docstring)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    config_path = property(lambda self: self.path / CONFIG)
    metrics_path = property(lambda self: self.path / METRICS)
    summary_path = property(lambda self: self.path / SUMMARY)
    best = property(lambda self: self.path / "best")
    last = property(lambda self: self.path / "last")

    def start_fresh(self) -> None:
        """Create the directory, or clear the outputs of an earlier run in it.

        A non-empty folder that is not a run directory is refused rather than mixed
        with (or, for best/ and last/, overwriting) files that are not ours.
        """
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"{self.path}: exists and is not a directory")
        if self.path.is_dir() and any(self.path.iterdir()) and not self.config_path.is_file():
            raise ConfigError(f"{self.path}: folder is not empty and holds no run; "
                              "choose a new --out")
        self.path.mkdir(parents=True, exist_ok=True)
        for name in (METRICS, SUMMARY, *PLOTS):
            (self.path / name).unlink(missing_ok=True)
        for directory in (self.best, self.last):
            shutil.rmtree(directory, ignore_errors=True)

    def require_resumable(self) -> None:
        if not self.config_path.is_file():
            raise ConfigError(f"{self.path}: not a run directory (no {CONFIG})")
        from .io import finish_interrupted_swap
        if not (finish_interrupted_swap(self.last) / "training_state.json").is_file():
            raise ConfigError(f"{self.path}: nothing to resume, no last/ checkpoint "
                              "(the run stopped before its first epoch ended)")

    # -- files ---------------------------------------------------------------------------
    def write_config(self, config: TrainConfig) -> None:
        text = "# nablanet training configuration; `nablanet train --config` reads it back\n"
        atomic_write_bytes(self.config_path, (text + tomli_w.dumps(config.to_toml_dict())).encode())

    def read_config(self) -> TrainConfig:
        # write_config stores every setting: defaults in place of an empty file would
        # score or resume with a configuration the run never had.
        return TrainConfig.from_toml(self.config_path, allow_empty=False)

    def write_summary(self, summary: dict) -> None:
        atomic_write_bytes(self.summary_path, to_json(summary, indent=2).encode() + b"\n")

    def read_summary(self) -> dict:
        return _read_json(self.summary_path)

    def read_metrics(self) -> list[dict]:
        """The rows of metrics.jsonl. A last line without its newline is one that a crash
        cut short while it was appended; it is left out (a --resume rewrites it)."""
        if not self.metrics_path.is_file():
            return []
        try:
            text = self.metrics_path.read_text(encoding="utf-8")
            if not text.endswith("\n"):
                text = text[:text.rfind("\n") + 1]
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        except (ValueError, RecursionError) as exc:     # as in io._read_json
            raise ConfigError(f"{self.metrics_path}: malformed JSON line ({exc})") from None
        if not all(isinstance(row, dict) for row in rows):
            raise ConfigError(f"{self.metrics_path}: each line must be a JSON object")
        return rows

    def write_metrics(self, rows: list[dict]) -> None:
        """Replace metrics.jsonl with ``rows`` (a resumed run restarts from its checkpoint)."""
        atomic_write_bytes(self.metrics_path, "".join(to_json(r) + "\n" for r in rows).encode())

    def model_dir(self, which: str = "best") -> Path:
        """``best/`` or ``last/``; a model directory given directly is returned as it is."""
        if (self.path / "config.json").is_file():
            return self.path
        if which not in ("best", "last"):
            raise ConfigError(f"model must be 'best' or 'last', got {which!r}")
        directory = self.path / which
        if not (directory / "config.json").is_file():
            if not self.path.is_dir():
                raise ModelFileError(f"{self.path}: no such run or model directory")
            raise ModelFileError(f"{self.path}: no {which}/ model (not a run directory, "
                                 "or the run ended before saving one)")
        return directory


class MetricsWriter(Callback):
    """Append each epoch's metrics to metrics.jsonl as one JSON line, flushed at once."""

    priority = 110          # after the checkpoint: a line is written once its epoch is saved

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def on_epoch_end(self, trainer, epoch, metrics):
        append_json_line(self.path, metrics)


def append_json_line(path: str | os.PathLike, row: dict) -> None:
    """Append ``row`` to a JSON-lines file as one line, written out when the file closes.

    Appending is not atomic, but a crash can only cut this last line short, and
    :meth:`RunDir.read_metrics` leaves such a line out.
    """
    with open(path, "a", encoding="utf-8") as f:
        f.write(to_json(row) + "\n")


# -- evaluation ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Score:
    """How a model does on a labelled set: C₀ (no penalty term), accuracy, errors of n."""

    cost: float | None
    accuracy: float
    errors: int
    n: int


def check_fits(net, data) -> None:
    """Raise :class:`DataError` unless ``net`` can classify ``data``: one input per feature
    and a class label, within the net's outputs, for every example."""
    n_inputs, n_classes = math.prod(net.input_shape), net.output_shape[-1]
    if data.n_features != n_inputs:
        raise DataError(f"{data.name}: examples have {data.n_features} features, but the model "
                        f"takes {n_inputs} inputs")
    if data.y.ndim != 1:
        raise DataError(f"{data.name}: needs class labels to score a classifier")
    if len(data.y) and data.y.max() >= n_classes:
        row = int(np.argmax(data.y >= n_classes))
        raise DataError(f"{data.name}: label {data.y[row]} at row {row} is out of range for "
                        f"a network with {n_classes} outputs")


def score(net, cost, data) -> Score:
    """Evaluate ``net`` on ``data`` in chunks (``net.predict``); labels must fit its outputs."""
    from .backend import get_backend

    check_fits(net, data)
    outputs = net.predict(data.x)
    n_classes = outputs.shape[1]
    errors = int((outputs.argmax(axis=1) != data.y).sum())
    value = None
    if cost is not None:
        targets = cost.targets(data.y, n_classes, get_backend("cpu", outputs.dtype))
        value = cost.value(outputs, targets) / len(data)
    return Score(value, 1 - errors / len(data), errors, len(data))


# -- a whole run ---------------------------------------------------------------------------------
def train_run(config: TrainConfig, directory: str | os.PathLike, *, resume: bool = False,
              progress: TextIO | None = None) -> dict:
    """Train ``config`` into run directory ``directory`` and return its summary.

    With ``resume`` the run continues from ``last/`` (weights, optimiser, RNG and
    callback states, history), so it ends with the same weights as an
    uninterrupted run. ``progress`` gets one line per epoch. A diverged run
    raises :class:`DivergenceError` after writing its summary; any other error
    is re-raised after marking the summary "failed".
    """
    run = RunDir(directory)
    clock = time.perf_counter()
    summary: dict = {"status": "running", "message": "", "seed": config.seed,
                     "started_at": _now(), "resumed": resume}
    state = _resume_state(run, config) if resume else None   # checked before writing anything
    if not resume:
        run.start_fresh()
    run.write_config(config)
    run.write_summary(summary)
    trainer = None
    try:
        splits = load_data(config)
        config = config.resolve(splits.train.n_features)
        run.write_config(config)
        train, validation, test = _checked_labels(splits, config.n_classes)
        monitor = "validation_accuracy" if validation is not None else "train_accuracy"
        rng = np.random.default_rng(config.seed)
        net = build_net(config, rng)
        checkpoint = Checkpoint(run.path, monitor=monitor)
        # The same callbacks with or without progress: a checkpoint's callback states are
        # matched by position, so a quiet run must resume into a verbose one and back.
        callbacks = [checkpoint, MetricsWriter(run.metrics_path),
                     Progress(progress or _Discard(), total_epochs=config.epochs)]
        trainer = build_trainer(config, net, rng=rng, callbacks=callbacks, monitor=monitor)
        if state is not None:
            _restore(trainer, run, state)
            summary["resumed_from_epoch"] = trainer.next_epoch
        summary.update(n_params=net.n_params(), sizes=config.sizes, train_examples=len(train),
                       validation_examples=len(validation) if validation else 0,
                       test_examples=len(test), monitor=monitor)
        # Overflow on the way to a NaN is the divergence guard's to report, in one line.
        with np.errstate(over="ignore", invalid="ignore"):
            trainer.fit(train, config.epochs, validation)

        status = FINAL_STATUS.get(trainer.status, trainer.status)
        summary["blas_threads"] = trainer.threads_used
        summary.update(_history_summary(trainer.history.rows, checkpoint.best.epoch))
        summary.update(_test_summary(run, test, net.backend))
        summary.update(status=status, message=trainer.message)
        _finish(run, summary, clock, trainer)
        if status == "diverged":
            raise DivergenceError(trainer.message)
        return summary
    except BaseException as exc:
        if summary["status"] == "running":       # not yet recorded as diverged
            summary.update(status="failed", message=_describe(exc, trainer, run))
            _finish(run, summary, clock, trainer, quietly=True)
        raise


def _resume_state(run: RunDir, config: TrainConfig) -> tuple[dict, dict]:
    """The training state in ``last/``, if there is one and ``config`` asks for more epochs."""
    from .io import load_training_state

    run.require_resumable()
    try:
        ended = run.read_summary().get("status")
    except (ConfigError, OSError):      # no readable summary: the checkpoint decides
        ended = None
    if ended == "early-stopped":
        # Its checkpoint is where an uninterrupted run stops too; training on from there
        # would give a run that no uninterrupted one matches.
        raise ConfigError(f"{run.path}: stopped early, where an uninterrupted run stops too; "
                          "nothing to resume (train a new run, e.g. with a larger "
                          "--early-stopping)")
    scalars, arrays = load_training_state(run.last)
    done = scalars.get("next_epoch")
    if not isinstance(done, int) or isinstance(done, bool) or done < 0:
        raise ModelFileError(f"{run.last / 'training_state.json'}: next_epoch must be a whole "
                             f"number of epochs, got {done!r}")
    if done >= config.epochs:
        raise ConfigError(f"{run.path}: already trained {done} of {config.epochs} epochs; "
                          "pass a larger --epochs to continue")
    return scalars, arrays


def _restore(trainer, run: RunDir, state: tuple[dict, dict]) -> None:
    """Put ``last/``'s weights and training ``state`` into ``trainer``."""
    from .io import load_model

    saved, _, _ = load_model(run.last, backend=trainer.net.backend)
    scalars, arrays = state
    callbacks = scalars.get("callbacks")
    if not isinstance(callbacks, list):
        raise ModelFileError(f"{run.last / 'training_state.json'}: 'callbacks' must be a list "
                             f"of callback states, got {callbacks!r}")
    if saved.config() != trainer.net.config() or len(callbacks) != len(trainer.callbacks):
        raise ConfigError(f"{run.last}: the checkpoint does not match {run.config_path}")
    trainer.set_params([layer.params[name] for layer, name in saved.parameters()])
    try:
        trainer.load_state_dict(scalars, arrays)
    # OverflowError: NumPy's check of an RNG state (a negative or 2⁶⁴-sized word)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        raise ModelFileError(f"{run.last}: malformed training state in training_state.json "
                             f"or .safetensors ({type(exc).__name__}: {exc})") from None
    run.write_metrics(trainer.history.rows)       # drop lines written after the checkpoint


class _Discard:
    """A text stream that drops what it is given (progress of a quiet run)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None: ...


def _checked_labels(splits, n_classes: int):
    """The splits, with every label checked to be a class of a net with ``n_classes`` outputs."""
    from .data import validate_dataset

    return tuple(None if d is None else validate_dataset(d.x, d.y, n_classes=n_classes, name=d.name)
                 for d in splits)


def _history_summary(rows: list[dict], best_epoch: int | None) -> dict:
    validation = [r["validation_accuracy"] for r in rows if _finite(r.get("validation_accuracy"))]
    last = rows[-1] if rows else {}
    return {"epochs_run": len(rows), "best_epoch": best_epoch,
            "best_validation_accuracy": max(validation) if validation else None,
            "final_validation_accuracy": last.get("validation_accuracy"),
            "final_train_accuracy": last.get("train_accuracy"),
            "final_train_cost": last.get("train_cost"),
            "median_epoch_seconds": statistics.median(r["seconds"] for r in rows) if rows else None}


def _test_summary(run: RunDir, test, backend) -> dict:
    """Test scores of the best model (by validation accuracy) and of the last one."""
    from .io import load_model

    out = {}
    for which, prefix in (("best", "test"), ("last", "last_test")):
        if not (getattr(run, which) / "config.json").is_file():
            out.update({f"{prefix}_accuracy": None, f"{prefix}_errors": None})
            continue
        net, cost, _ = load_model(getattr(run, which), backend=backend)
        s = score(net, cost, test)
        out.update({f"{prefix}_accuracy": s.accuracy, f"{prefix}_errors": s.errors,
                    f"{prefix}_cost": s.cost})
    return out


def _finish(run: RunDir, summary: dict, clock: float, trainer, quietly: bool = False) -> None:
    """Plots, timings and the final summary.json; ``quietly`` (a run that already failed)
    keeps a plotting problem from hiding the error being reported."""
    summary.update(wall_seconds=time.perf_counter() - clock, peak_rss_mb=peak_rss_mb(),
                   finished_at=_now())
    rows = trainer.history.rows if trainer is not None else []
    try:
        if rows:
            from .plots import plot_curves
            plot_curves(rows, run.path, summary.get("best_epoch"))
    except Exception as exc:
        if not quietly:
            summary.update(status="failed", message=f"plotting failed: {exc}")
            run.write_summary(summary)
            raise
    run.write_summary(summary)


def _describe(exc: BaseException, trainer, run: RunDir) -> str:
    if isinstance(exc, KeyboardInterrupt):
        where = f" during epoch {trainer.next_epoch + 1}" if trainer is not None else ""
        return f"interrupted{where}; continue with: nablanet train --resume {run.path}"
    return str(exc) or type(exc).__name__


def peak_rss_mb() -> float | None:
    """The process's peak resident memory in MB (None where the OS does not say)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024   # bytes vs KiB


# -- JSON ------------------------------------------------------------------------------------------
def to_json(obj, indent=None) -> str:
    """Strict JSON: NaN and ±inf (a diverged epoch) become null, NumPy scalars plain numbers."""
    return json.dumps(_plain(obj), indent=indent, allow_nan=False)


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (ValueError, RecursionError) as exc:     # as in io._read_json
        raise ConfigError(f"{path}: malformed JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return data


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
