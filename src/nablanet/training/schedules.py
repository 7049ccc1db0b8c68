"""Learning-rate schedules, as callbacks that set ``trainer.optimizer.eta`` after an epoch.

The η a metrics row records is the one used *during* that epoch; a schedule's
change takes effect from the next epoch on.
"""
from __future__ import annotations

import math

from ..errors import ConfigError
from ..utils.state import number, whole_number
from .callbacks import Best, Callback


class StepDecay(Callback):
    """η ← η·``factor`` every ``every`` epochs (a step schedule)."""

    def __init__(self, every: int, factor: float = 0.5):
        every = whole_number(every, "every", None, error=ConfigError)
        factor = number(factor, "factor", error=ConfigError)
        if every < 1 or not 0 < factor <= 1:
            raise ConfigError(f"step schedule needs every ≥ 1 and 0 < factor ≤ 1, "
                              f"got every={every}, factor={factor}")
        self.every, self.factor = every, factor

    def on_epoch_end(self, trainer, epoch, metrics):
        if (epoch + 1) % self.every == 0:
            trainer.optimizer.eta *= self.factor


class CosineDecay(Callback):
    """η falls from η₀ to ``floor`` along half a cosine over ``epochs`` epochs (SGDR
    without restarts, Loshchilov & Hutter 2017): ηₑ = floor + (η₀ − floor)·½(1 + cos πe/E).

    A run of a fixed length ends at a small η without a halving step to tune; the last
    epochs then average out the noise of the mini-batch steps, which is where the best
    model of such a run usually is.
    """

    def __init__(self, epochs: int, floor: float = 0.0):
        epochs = whole_number(epochs, "epochs", None, error=ConfigError)
        floor = number(floor, "floor", error=ConfigError)
        if epochs < 1 or floor < 0:
            raise ConfigError(f"cosine schedule needs epochs ≥ 1 and floor ≥ 0, "
                              f"got epochs={epochs}, floor={floor}")
        self.epochs, self.floor = epochs, floor
        self.eta0: float | None = None

    def on_train_begin(self, trainer):
        if self.eta0 is None:
            self.eta0 = trainer.optimizer.eta

    def on_epoch_end(self, trainer, epoch, metrics):
        progress = min(epoch + 1, self.epochs) / self.epochs
        trainer.optimizer.eta = (self.floor + (self.eta0 - self.floor)
                                 * 0.5 * (1 + math.cos(math.pi * progress)))

    def state_dict(self):
        return {"eta0": self.eta0}

    def load_state_dict(self, state):
        self.eta0 = number(state["eta0"], "eta0", positive=True, optional=True)


class HalveOnPlateau(Callback):
    """Nielsen's schedule (chapter 3): halve η each time ``monitor`` has not improved for
    ``patience`` epochs, and stop once η has fallen to η₀/``floor_ratio`` (1/1024)."""

    def __init__(self, patience: int = 10, monitor: str = "validation_accuracy",
                 floor_ratio: float = 1024.0, factor: float = 0.5):
        self.patience = whole_number(patience, "patience", None, error=ConfigError)
        if self.patience < 1:
            raise ConfigError(f"schedule patience must be ≥ 1, got {patience}")
        self.factor = number(factor, "factor", error=ConfigError)
        self.floor_ratio = number(floor_ratio, "floor_ratio", error=ConfigError)
        # factor ≥ 1 would never bring η down to the floor, and floor_ratio ≤ 1 would stop
        # at the first cut: either is a typo, not a schedule
        if not (0 < self.factor < 1 and self.floor_ratio > 1):
            raise ConfigError(f"halve-on-plateau needs 0 < factor < 1 and floor_ratio > 1, "
                              f"got factor={factor}, floor_ratio={floor_ratio}")
        self.best = Best(monitor)
        self.eta0: float | None = None
        self.since = 0                      # epochs since the last improvement or halving

    def on_train_begin(self, trainer):
        if self.eta0 is None:
            self.eta0 = trainer.optimizer.eta

    def on_epoch_end(self, trainer, epoch, metrics):
        if self.best.update(epoch, metrics):
            self.since = 0
            return
        self.since += 1
        if self.since >= self.patience:
            self.since = 0
            trainer.optimizer.eta *= self.factor
            if trainer.optimizer.eta <= self.eta0 / self.floor_ratio * (1 + 1e-9):
                trainer.stop("eta-exhausted", f"learning rate fell to η₀/{self.floor_ratio:g}")

    def state_dict(self):
        return {"eta0": self.eta0, "since": self.since, "best": self.best.state_dict()}

    def load_state_dict(self, state):
        self.eta0 = number(state["eta0"], "eta0", positive=True, optional=True)
        self.since = whole_number(state["since"], "since")
        self.best.load_state_dict(state["best"])


class BoldDriver(Callback):
    """An adaptive global learning rate ("bold driver", Battiti 1989; Hinton lecture 6):
    grow η slowly (×``increase``) while the training cost falls, cut it fast
    (×``decrease``) when the cost rises."""

    def __init__(self, increase: float = 1.05, decrease: float = 0.5,
                 monitor: str = "train_cost"):
        self.increase = number(increase, "increase", error=ConfigError)
        self.decrease = number(decrease, "decrease", error=ConfigError)
        if not (self.increase >= 1 and 0 < self.decrease < 1):
            raise ConfigError(f"bold driver needs increase ≥ 1 and 0 < decrease < 1, got "
                              f"increase={increase}, decrease={decrease}")
        self.monitor = monitor
        self.previous: float | None = None

    def on_epoch_end(self, trainer, epoch, metrics):
        if self.monitor not in metrics:
            raise ConfigError(f"bold driver needs {self.monitor!r} monitored")
        cost = metrics[self.monitor]
        if self.previous is not None:
            trainer.optimizer.eta *= self.increase if cost < self.previous else self.decrease
        self.previous = cost

    def state_dict(self):
        return {"previous": self.previous}

    def load_state_dict(self, state):
        # the cost of a diverged epoch may be NaN or infinite
        self.previous = number(state["previous"], "previous", optional=True, finite=False)


SCHEDULES = {"constant": None, "step": StepDecay, "cosine": CosineDecay,
             "halve-on-plateau": HalveOnPlateau, "bold-driver": BoldDriver}
