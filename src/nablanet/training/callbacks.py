"""Callbacks: small objects the training loop calls at the end of each epoch.

Early stopping, learning-rate schedules, checkpoints, the divergence guard and
the progress line are callbacks rather than flags threaded through the loop
(the Keras idea). Each may read and change the trainer (``trainer.optimizer.eta``,
``trainer.stop(...)``) and has ``state_dict``/``load_state_dict`` so a resumed run
continues exactly where it stopped.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from ..backend import xp_of
from ..errors import ConfigError, ModelFileError
from ..utils.state import number, whole_number
from ..utils.wording import plural


class Callback:
    #: callbacks run in ascending priority: the guard first, checkpoints last
    priority = 0

    def on_train_begin(self, trainer) -> None: ...

    def on_epoch_end(self, trainer, epoch: int, metrics: dict) -> None: ...

    def on_train_end(self, trainer) -> None: ...

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None: ...

    def state_arrays(self) -> dict:
        """Arrays (host) that the state needs, saved beside the JSON state."""
        return {}

    def load_state_arrays(self, arrays: dict, trainer) -> None: ...


class Best:
    """Tracks the best value of one metric ('max' for accuracy, 'min' for cost)."""

    def __init__(self, monitor: str, mode: str | None = None):
        self.monitor = monitor
        self.mode = mode or ("min" if "cost" in monitor or "loss" in monitor else "max")
        if self.mode not in ("min", "max"):
            raise ConfigError(f"mode must be 'min' or 'max', got {self.mode!r}")
        self.value: float | None = None
        self.epoch: int | None = None

    def update(self, epoch: int, metrics: dict) -> bool:
        """Record ``metrics[monitor]``; True when it is a strict improvement."""
        if self.monitor not in metrics:
            raise ConfigError(f"cannot monitor {self.monitor!r}: the run records "
                              f"{', '.join(sorted(metrics))}")
        value = metrics[self.monitor]
        if not math.isfinite(value):
            return False
        better = (self.value is None
                  or (value > self.value if self.mode == "max" else value < self.value))
        if better:
            self.value, self.epoch = value, epoch
        return better

    def state_dict(self) -> dict:
        return {"value": self.value, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.value = number(state["value"], "best value", optional=True)
        epoch = state["epoch"]
        self.epoch = None if epoch is None else whole_number(epoch, "best epoch")


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs ("no-improvement-in-n").

    ``growing=True`` is the growing-patience variant: each time a new best is found at
    epoch e, patience becomes max(patience, ``factor``·e), so a run that is still
    improving late is given proportionally longer. ``restore_best`` puts the best
    weights back when training ends.
    """

    def __init__(self, patience: int = 10, monitor: str = "validation_accuracy",
                 mode: str | None = None, restore_best: bool = True,
                 growing: bool = False, factor: float = 2.0):
        self.patience = whole_number(patience, "patience", None, error=ConfigError)
        if self.patience < 1:
            raise ConfigError(f"early-stopping patience must be ≥ 1, got {patience}")
        self.best = Best(monitor, mode)
        self.restore_best = restore_best
        self.growing = growing
        self.factor = number(factor, "factor", positive=True, error=ConfigError)
        self._best_params = None

    def on_epoch_end(self, trainer, epoch, metrics):
        if self.best.update(epoch, metrics):
            if self.growing:
                self.patience = max(self.patience, int(math.ceil(self.factor * (epoch + 1))))
            if self.restore_best:
                self._best_params = trainer.copy_params()
        elif self.best.epoch is not None and epoch - self.best.epoch >= self.patience:
            trainer.stop("early-stopped",
                         f"no improvement in {self.best.monitor} for "
                         f"{plural(self.patience, 'epoch')} "
                         f"(best {self.best.value:.4f} at epoch {self.best.epoch + 1})")

    def on_train_end(self, trainer):
        if self.restore_best and self._best_params is not None:
            trainer.set_params(self._best_params)
            trainer.restored_epoch = self.best.epoch

    def state_dict(self):
        return {"patience": self.patience, "best": self.best.state_dict()}

    def load_state_dict(self, state):
        self.patience = whole_number(state["patience"], "patience", 1)
        self.best.load_state_dict(state["best"])

    def state_arrays(self):
        if self._best_params is None:
            return {}
        return {f"best_params.{i}": p for i, p in enumerate(self._best_params)}

    def load_state_arrays(self, arrays, trainer):
        if not arrays and not (self.restore_best and self.best.epoch is not None):
            return                      # no best yet, or its weights are not kept
        params = trainer.param_arrays()
        # Without them the resumed run would end on its last weights where the
        # uninterrupted one restores the best.
        missing = [f"best_params.{i}" for i in range(len(params))
                   if f"best_params.{i}" not in arrays]
        if missing:
            raise ModelFileError(f"the early-stopping state lacks the best weights "
                                 f"{', '.join(missing)}")
        self._best_params = [arrays[f"best_params.{i}"] for i in range(len(params))]
        if len(arrays) != len(params) or any(
                a.shape != p.shape or a.dtype != p.dtype or not np.isfinite(a).all()
                for a, p in zip(self._best_params, params)):
            raise ModelFileError("the early-stopping best weights do not match the net (in "
                                 "number, shape or float type) or hold NaN or inf")


class DivergenceGuard(Callback):
    """Stop the run when the cost or the weights stop being finite numbers.

    A NaN never compares as an improvement, so the best checkpoint is never
    overwritten by a diverged model; the last checkpoint is skipped too.
    """

    priority = -10

    def on_epoch_end(self, trainer, epoch, metrics):
        costs = [v for k, v in metrics.items() if k.endswith("_cost")]
        bad_cost = [v for v in costs if not math.isfinite(v)]
        finite_params = all(bool(xp_of(p).isfinite(p).all()) for p in trainer.param_arrays())
        if bad_cost or not finite_params:
            what = f"cost became {bad_cost[0]}" if bad_cost else "weights became non-finite"
            trainer.stop("diverged", f"training diverged in epoch {epoch + 1}: {what}; "
                         f"try a smaller learning rate (eta={trainer.optimizer.eta:g})")


class Progress(Callback):
    """One line per epoch with the monitored metrics (to stderr by default)."""

    priority = 90

    def __init__(self, stream=None, total_epochs: int | None = None):
        self.stream = stream or sys.stderr
        self.total = (None if total_epochs is None
                      else whole_number(total_epochs, "total_epochs", 1, error=ConfigError))

    def on_epoch_end(self, trainer, epoch, metrics):
        parts = [f"epoch {epoch + 1}" + (f"/{self.total}" if self.total else "")]
        if self.total:
            done = round(20 * (epoch + 1) / self.total)
            parts.insert(0, "[" + "#" * done + "." * (20 - done) + "]")
        for key in ("train_cost", "train_accuracy", "validation_cost", "validation_accuracy"):
            if key in metrics:
                value = metrics[key]
                parts.append(f"{key} {value:.4f}" if "cost" in key else f"{key} {value:.2%}")
        parts.append(f"eta {metrics['eta']:g}")
        parts.append(f"{metrics['seconds']:.2f}s")
        print("  ".join(parts), file=self.stream, flush=True)


class Checkpoint(Callback):
    """Save ``best/`` (on improvement of ``monitor``) and ``last/`` plus the training state.

    ``last/`` holds everything needed to resume bit-identically: weights, optimiser
    state, RNG state, callback states and the history so far, replaced in one swap so
    an interrupted save leaves the previous epoch's checkpoint whole.
    """

    priority = 100

    def __init__(self, directory, monitor: str = "validation_accuracy", mode: str | None = None):
        self.directory = Path(directory)
        self.best = Best(monitor, mode)

    def on_epoch_end(self, trainer, epoch, metrics):
        from ..io import save_model
        if trainer.status == "diverged":
            return
        if self.best.monitor not in metrics or self.best.update(epoch, metrics):
            save_model(self.directory / "best", trainer.net, trainer.cost,
                       metadata={"epoch": epoch})
        # Our own improved state is recorded above, before the trainer's snapshot reads it.
        save_model(self.directory / "last", trainer.net, trainer.cost, metadata={"epoch": epoch},
                   training_state=trainer.state_dict(epoch))

    def state_dict(self):
        return {"best": self.best.state_dict()}

    def load_state_dict(self, state):
        self.best.load_state_dict(state["best"])

