"""The up-down algorithm: fine-tuning a generative deep belief net (contrastive wake-sleep).

Hinton, Osindero & Teh 2006 ("A fast learning algorithm for deep belief nets", §5
and appendix B). After greedy pretraining the lower layers' weights are *untied*:
each keeps recognition weights R (bottom-up, the RBM's W and hidden biases) and
gets its own generative weights G (top-down, a copy of Wᵀ and the visible biases).
Then every mini-batch:

* **up (wake) pass**: sample states layer by layer with the recognition weights,
  s₀ = data, sᵢ₊₁ ~ σ(sᵢRᵢ + cᵢ); the top RBM sees [s_pen, label].
* **top RBM**: k steps of alternating Gibbs sampling from the wake states with the
  label units free (softmax probabilities), and its CD-k update
  ΔW_top = ε(⟨vhᵀ⟩_wake − ⟨vhᵀ⟩_k).
* **down (sleep) pass**: from the chain's penultimate states, sample downwards with
  the generative weights, d_pen = v_k, dᵢ ~ σ(dᵢ₊₁Gᵢ + bᵢ) (probabilities at the
  pixels).
* **updates**, each the delta rule of a layer of logistic units predicting the one
  below or above: generative weights learn to reconstruct the wake states,
  ΔGᵢ = ε sᵢ₊₁ᵀ(sᵢ − σ(sᵢ₊₁Gᵢ + bᵢ)), recognition weights to recover the causes
  of the dreams, ΔRᵢ = ε dᵢᵀ(dᵢ₊₁ − σ(dᵢRᵢ + cᵢ)).

The generative updates make the top-down model fit the data the recognition
weights explain; the sleep updates make recognition invert the generative model;
and the top RBM learns from chains that start at real penultimate states, which is
what lets a label-clamped chain reach the clamped class's digits.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from ..backend import device_rng, make_rng
from ..errors import ConfigError, DivergenceError
from ..training.history import History
from ..utils.state import whole_number
from .rbm import check_update_rule


@dataclass(frozen=True)
class UpDown:
    """Settings of the up-down algorithm.

    ``learning_rate`` ε (of the mean over the mini-batch), ``k``: Gibbs steps of
    the top RBM's negative phase (HOT06: 3, later 6 and 10), ``k_every``: raise k
    by ``k_step`` every that many epochs (0: never), up to ``k_max``.
    ``weight_cost`` η: an L2 pull εηw on every weight.
    """

    learning_rate: float = 0.01
    k: int = 3
    k_every: int = 0
    k_step: int = 3
    k_max: int = 10
    batch_size: int = 100
    weight_cost: float = 0.0

    def __post_init__(self):
        check_update_rule(self.learning_rate, self.weight_cost, self.batch_size)
        for name in ("k", "k_max", "k_every", "k_step"):    # int() cut k = 2.5 to 2
            whole_number(getattr(self, name), name, None, error=ConfigError)
        if self.k < 1 or self.k_max < self.k:
            raise ConfigError(f"up-down needs 1 ≤ k ≤ k_max, got k={self.k}, "
                              f"k_max={self.k_max}")
        if self.k_every < 0 or self.k_step < 0:
            raise ConfigError("k_every and k_step must be ≥ 0")

    def k_at(self, epoch: int) -> int:
        """Gibbs steps of the top RBM in (0-based) fine-tuning epoch ``epoch``."""
        if not self.k_every:
            return int(self.k)
        return min(int(self.k_max), int(self.k) + int(self.k_step) * (epoch // int(self.k_every)))

    def config(self) -> dict:
        return asdict(self)


def delta_rule(inputs, targets, weights, bias):
    """(∂/∂W, ∂/∂b) of Σ log p(targets | inputs) for logistic units predicting ``targets``
    with probabilities p = σ(inputs·W + b): inputsᵀ(targets − p) and Σ(targets − p)."""
    from .units import sigmoid_

    error = targets - sigmoid_(inputs @ weights + bias)
    return inputs.T @ error, error.sum(axis=0)


def up_down(dbn, x, labels, epochs: int, *, rule: UpDown | None = None, validation=None,
            callback=None, rng=None) -> History:
    """Fine-tune the generative DBN ``dbn`` (label units on its top RBM) by up-down on
    images ``x`` with integer ``labels``; unties its weights first (:meth:`DBN.untie`).

    Each epoch's row holds its seconds, k and — with ``validation`` (a Dataset) — the
    free-energy classification error there. ``callback(row)`` sees each row.
    """
    rule = rule or UpDown()
    if not isinstance(rule, UpDown):
        raise ConfigError(f"rule must be an UpDown(...), got {rule!r}")
    # before untie(): epochs=-1 untied the DBN and trained nothing
    epochs = whole_number(epochs, "epochs", 1, error=ConfigError)
    if not dbn.n_labels:
        raise ConfigError("up-down fine-tunes a generative DBN: its top RBM needs label units")
    if len(dbn.rbms) < 2:
        raise ConfigError("up-down needs at least one layer below the top RBM")
    if dbn.rbms[-1].hidden != "binary" or dbn.rbms[0].visible != "binary":
        raise ConfigError("up-down needs binary units (the visible and top hidden layers)")
    rng = make_rng(rng)
    x = dbn.rbms[0].prepare(getattr(x, "x", x), probabilities=True, rng=rng, name="training data")
    onehot = dbn._label_units(labels, len(x))
    dbn.untie()
    draw = device_rng(dbn.backend, rng)
    history, xp = History(), dbn.backend.xp
    for epoch in range(epochs):
        k = rule.k_at(epoch)
        start = time.perf_counter()
        order = rng.permutation(len(x))
        if xp is not np:
            order = xp.asarray(order)
        for i in range(0, len(x), rule.batch_size):
            rows = order[i:i + rule.batch_size]
            _step(dbn, x[rows], onehot[rows], k, rule, draw)
        row = {"epoch": epoch, "seconds": time.perf_counter() - start, "k": k}
        if not all(bool(xp.isfinite(w).all()) for w in _weights(dbn)):
            raise DivergenceError(f"up-down: weights became non-finite in epoch {epoch + 1}; lower "
                                  f"the learning rate (ε = {rule.learning_rate})")
        if validation is not None:
            row["validation_error"] = float((dbn.classify(validation.x) != validation.y).mean())
        history.append(row)
        if callback is not None:
            callback(row)
    return history


def _weights(dbn):
    yield from (rbm.W for rbm in dbn.rbms)
    yield from (g["W"] for g in dbn.generative)


def _step(dbn, data, onehot, k: int, rule: UpDown, draw) -> None:
    """One mini-batch of up-down: wake pass, top-level CD-k, sleep pass, then all updates
    (every prediction is made with the weights as they were at the start of the step)."""
    xp = dbn.backend.xp
    lower, top = dbn.rbms[:-1], dbn.rbms[-1]
    n_pen = top.n_pixels
    # Wake: sampled states bottom-up with the recognition weights.
    wake = [data]
    for rbm in lower:
        wake.append(rbm.sample_hidden(rbm.hidden_mean(wake[-1]), draw))
    v_pos = xp.concatenate([wake[-1], onehot], axis=1)
    h_pos = top.hidden_mean(v_pos)
    # Top RBM: k Gibbs steps from the wake states; label units stay softmax probabilities.
    h = top.sample_hidden(h_pos.copy(), draw)
    for _ in range(k):
        v_neg = top.visible_mean(h)
        top.visible_units.sample(v_neg[:, :n_pen], draw, out=v_neg[:, :n_pen])
        h_neg = top.hidden_mean(v_neg)
        h = top.sample_hidden(h_neg.copy(), draw)
    # Sleep: sampled states top-down with the generative weights (probabilities at the bottom).
    dream = [xp.ascontiguousarray(v_neg[:, :n_pen])]
    for i in reversed(range(len(lower))):
        mean = dbn.generate_down(dream[-1], i)
        dream.append(mean if i == 0 else lower[i].visible_units.sample(mean, draw))
    dream.reverse()                     # dream[i] is layer i, like wake[i]
    # Delta rules, all from the predictions of the weights at the start of the step.
    scale = rule.learning_rate / len(data)
    updates = []
    for i, rbm in enumerate(lower):
        g = dbn.generative[i]
        updates.append((g["W"], g["b"], *delta_rule(wake[i + 1], wake[i], g["W"], g["b"])))
        updates.append((rbm.W, rbm.b_hidden,
                        *delta_rule(dream[i], dream[i + 1], rbm.W, rbm.b_hidden)))
    top_dW = v_pos.T @ h_pos - v_neg.T @ h_neg
    updates.append((top.W, top.b_hidden, top_dW, h_pos.sum(axis=0) - h_neg.sum(axis=0)))
    top.params["b_visible"] += scale * (v_pos.sum(axis=0) - v_neg.sum(axis=0))
    for W, b, dW, db in updates:        # in place: W and b are the models' own arrays
        if rule.weight_cost:
            dW -= (len(data) * rule.weight_cost) * W
        W += scale * dW
        b += scale * db

