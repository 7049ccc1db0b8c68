"""Shared by the early-stopping and weight-decay demos: Nielsen's overfitting set-up
(chapter 3) — a 784-30-10 sigmoid net, cross-entropy, η = 0.5, m = 10, trained on
only 1000 examples, so it soon fits the training set and stops generalising better."""
from __future__ import annotations

import numpy as np

from ..net import mlp
from ..optimizers import SGD
from ..training import Callback, Trainer
from ._common import classification_data, heading


class WeightNorm(Callback):
    """‖w‖ = √(Σ w²) over every weight matrix (biases excluded), before training and
    after each epoch: the size of the weights over time."""

    def __init__(self):
        self.norms: list[float] = []

    def _record(self, net):
        self.norms.append(float(np.sqrt(sum(float((layer.params[name] ** 2).sum())
                                                for layer in net.layers
                                                for name in layer.regularized))))

    def on_train_begin(self, trainer):
        if not self.norms:
            self._record(trainer.net)

    def on_epoch_end(self, trainer, epoch, metrics):
        self._record(trainer.net)


def small_training_set(rng, quick: bool = False):
    """(train, validation, test, source): 1000 / 2000 / 2000 examples (quick: 1000 each)."""
    held_out = 1000 if quick else 2000
    return classification_data(rng, 1000, held_out, held_out)


def setup(rng, quick: bool, epochs: int, title: str):
    """The shared start of the overfitting demos: (data, seed, epochs), heading printed.

    ``title`` may use ``{features}`` and ``{epochs}``; quick runs train for 30 epochs.
    """
    rng = np.random.default_rng(rng)
    data = small_training_set(rng, quick)
    seed = int(rng.integers(2**31))
    epochs = 30 if quick else epochs
    heading(title.format(features=data[0].n_features, epochs=epochs))
    print(f"data: {data[3]}")
    return data, seed, epochs


def train(data, *, epochs: int, seed: int, init: str = "normal-scaled", penalties=(),
          callbacks=()):
    """Train the n_in-30-10 net; returns (trainer, history, weight norms per epoch)."""
    train_set, validation = data[0], data[1]
    net = mlp([train_set.n_features, 30, 10], "sigmoid", "sigmoid", init=init, rng=seed)
    norms = WeightNorm()
    trainer = Trainer(net, "cross-entropy", SGD(0.5), batch_size=10, penalties=penalties,
                      callbacks=[norms, *callbacks], rng=seed + 1)
    history = trainer.fit(train_set, epochs, validation)
    return trainer, history, norms.norms
