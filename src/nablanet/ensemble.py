"""Ensembles of networks: averaging models, bagging, boosting, and MC-dropout.

K nets trained from different seeds (or on bootstrap resamples, *bagging*) make
partly independent errors, so combining them helps. Three ways to combine the
output distributions p₁ … p_K of one input (the lectures' "two ways to average
models", plus the vote):

* ``vote``    — plurality vote of the K top classes (Nielsen's five-net ensemble);
  a tie goes to the class with the larger mean probability;
* ``mean``    — the mixture, p = (1/K) Σ p_k (arithmetic mean);
* ``product`` — the normalised geometric mean, p ∝ (Π p_k)^{1/K}: a class any member
  finds very unlikely stays unlikely.

AdaBoost (:class:`AdaBoostSAMME`, Zhu, Zou, Rosset & Hastie 2009) trains the nets in
sequence, each on data resampled by weights that grow on the examples the ensemble
so far gets wrong. MC-dropout (:func:`mc_dropout`, Gal & Ghahramani 2016) keeps
dropout on at test time: the mean of T thinned nets approximates the ensemble of all
thinned nets, and their spread estimates how unsure the net is.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .backend import make_rng, to_host
from .data.dataset import Dataset, check_dataset, check_values
from .errors import ConfigError, DataError
from .layers import Dropout
from .layers.base import every_layer
from .utils.state import whole_number

COMBINE = ("vote", "mean", "product")
_TINY = 1e-12


def member_outputs(nets, x, chunk_size: int = 2000) -> np.ndarray:
    """(K, n, classes): every member's output probabilities for ``x`` (host arrays)."""
    if not nets:
        raise ConfigError("an ensemble needs at least one network")
    outputs = [net.predict(x, chunk_size) for net in nets]
    shapes = {o.shape for o in outputs}
    if len(shapes) != 1:
        raise DataError(f"ensemble members disagree on the output shape: {sorted(shapes)}")
    return np.stack(outputs)


def combine(outputs, how: str = "vote") -> np.ndarray:
    """Combine (K, n, classes) member outputs into (n, classes) scores whose rows sum to 1.

    For ``vote`` the scores are vote shares; ties are broken by :func:`predict_combined`.
    """
    try:
        outputs = np.asarray(outputs, dtype=np.float64)
    except (TypeError, ValueError):           # strings, ragged lists
        raise DataError("member outputs must be a (K, n, classes) array of numbers") from None
    if outputs.ndim != 3 or not outputs.shape[0] or not outputs.shape[2]:
        raise DataError(f"member outputs must be (K, n, classes) with K ≥ 1 members and "
                        f"classes ≥ 1, got shape {outputs.shape}")
    # a NaN output would be averaged into NaN scores, or win a vote as class 0
    check_values(outputs, "member outputs", "outputs")
    if how == "mean":
        return outputs.mean(axis=0)
    if how == "product":
        log_mean = np.log(np.maximum(outputs, _TINY)).mean(axis=0)
        p = np.exp(log_mean - log_mean.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True)
    if how == "vote":
        winners = outputs.argmax(axis=2)[..., None] == np.arange(outputs.shape[2])
        return winners.mean(axis=0)
    raise ConfigError(f"unknown combination {how!r}; choose one of {', '.join(COMBINE)}")


def predict_combined(outputs, how: str = "vote") -> np.ndarray:
    """Class labels from (K, n, classes) member outputs, combined by ``how``."""
    scores = combine(outputs, how)
    if how == "vote":
        # A vote share differs by at least 1/K; half the mean probability / K never
        # overturns a vote, it only decides between tied classes.
        k = len(outputs)
        scores = scores + np.asarray(outputs).mean(axis=0) / (2 * k)
    return scores.argmax(axis=1)


class Ensemble:
    """Trained nets combined by ``vote``, ``mean`` or ``product`` (scikit-learn style)."""

    def __init__(self, nets, combine: str = "vote"):
        if combine not in COMBINE:
            raise ConfigError(f"unknown combination {combine!r}; choose one of "
                              f"{', '.join(COMBINE)}")
        if not nets:
            raise ConfigError("an ensemble needs at least one network")
        self.nets, self.combine = list(nets), combine

    def predict_proba(self, x) -> np.ndarray:
        return combine(member_outputs(self.nets, x), self.combine)

    def predict(self, x) -> np.ndarray:
        return predict_combined(member_outputs(self.nets, x), self.combine)

    def score(self, data: Dataset) -> float:
        """Accuracy on labelled data."""
        check_dataset(data, "data")
        return float((self.predict(data.x) == data.y).mean())


# -- training members ----------------------------------------------------------------------
def bootstrap(data: Dataset, rng) -> Dataset:
    """A bootstrap resample: n examples drawn with replacement (bagging, Breiman 1996)."""
    check_dataset(data, "data")
    rng = make_rng(rng)
    index = rng.integers(0, len(data), size=len(data))
    return Dataset(data.x[index], data.y[index], f"{data.name} bootstrap")


def weighted_resample(data: Dataset, weights, rng) -> Dataset:
    """n examples drawn with replacement, example i with probability ``weights[i]``."""
    check_dataset(data, "data")
    rng = make_rng(rng)
    weights = _weights(weights, len(data))
    index = rng.choice(len(data), size=len(data), p=weights / weights.sum())
    return Dataset(data.x[index], data.y[index], f"{data.name} resampled")


def _weights(weights, n: int) -> np.ndarray:
    """n finite non-negative sampling weights with a positive sum, or a DataError (NumPy's
    own errors name "probabilities", and all-negative weights passed its check)."""
    w = np.asarray(weights)
    if w.shape != (n,) or w.dtype.kind not in "biuf":
        raise DataError(f"weights must be {n} numbers, one per example, got shape {w.shape}, "
                        f"dtype {w.dtype}")
    w = w.astype(np.float64, copy=False)
    if not (np.isfinite(w).all() and (w >= 0).all() and w.sum() > 0):
        raise DataError("weights must be finite and ≥ 0 with a positive sum")
    return w


#: make_net(rng) -> an untrained net;  fit(net, data, rng) trains it in place
MakeNet = Callable[[np.random.Generator], object]
FitNet = Callable[[object, Dataset, np.random.Generator], object]


def train_members(make_net: MakeNet, fit: FitNet, train: Dataset, k: int, *,
                  bagging: bool = False, rng=None) -> list:
    """K nets, each from its own seed and (with ``bagging``) its own bootstrap resample."""
    k = whole_number(k, "k", 1, error=ConfigError)       # int() cut 2.5 and failed on None
    check_dataset(train, "train")
    seeds = make_rng(rng).spawn(k)
    nets = []
    for seed in seeds:
        net = make_net(seed)
        fit(net, bootstrap(train, seed) if bagging else train, seed)
        nets.append(net)
    return nets


@dataclass
class AdaBoostSAMME:
    """Multi-class AdaBoost (SAMME) with networks as the base learners.

    Start with weights wᵢ = 1/n. For m = 1 … M: train net h_m on a resample drawn by
    the weights (nets take no per-example weights, so "boosting by resampling");
    its weighted error is err_m = Σ wᵢ [h_m(xᵢ) ≠ yᵢ]; its say in the vote is
        α_m = ln((1 − err_m) / err_m) + ln(K − 1),
    and the weights of the examples it got wrong grow, wᵢ ← wᵢ e^{α_m}, then are
    renormalised. The ensemble predicts argmax_c Σ_m α_m [h_m(x) = c]. A learner no
    better than chance (err_m ≥ 1 − 1/K) ends the loop; a perfect one gets α = ln 1e10.
    """

    make_net: MakeNet
    fit_net: FitNet
    n_estimators: int = 5
    rng: object = None

    def fit(self, train: Dataset) -> "AdaBoostSAMME":
        # -1 was an OverflowError from spawn(), 2.5 cut to 2
        n_estimators = whole_number(self.n_estimators, "n_estimators", 1, error=ConfigError)
        check_dataset(train, "train")
        if train.y.ndim != 1:
            raise DataError("AdaBoost needs class labels")
        n, rng = len(train), make_rng(self.rng)
        classes = int(train.y.max()) + 1
        weights = np.full(n, 1.0 / n)
        self.estimators_, self.alphas_, self.errors_ = [], [], []
        for seed in rng.spawn(n_estimators):
            net = self.make_net(seed)
            self.fit_net(net, weighted_resample(train, weights, seed), seed)
            wrong = net.classify(train.x) != train.y
            error = float(weights[wrong].sum() / weights.sum())
            if error >= 1 - 1 / classes:
                break
            alpha = np.log(max(1 - error, _TINY) / max(error, 1e-10)) + np.log(classes - 1)
            self.estimators_.append(net)
            self.alphas_.append(float(alpha))
            self.errors_.append(error)
            weights = weights * np.exp(alpha * wrong)
            weights /= weights.sum()
        if not self.estimators_:
            raise DataError("AdaBoost: the first network was no better than chance")
        self.n_classes_ = classes
        return self

    def decision_function(self, x) -> np.ndarray:
        """(n, classes): Σ_m α_m [h_m(x) = c]."""
        if not hasattr(self, "n_classes_"):
            raise ConfigError("this AdaBoostSAMME is not fitted yet; call fit(train) first")
        scores = np.zeros((len(x), self.n_classes_))
        rows = np.arange(len(x))
        for net, alpha in zip(self.estimators_, self.alphas_):
            scores[rows, net.classify(x)] += alpha
        return scores

    def predict(self, x) -> np.ndarray:
        return self.decision_function(x).argmax(axis=1)


# -- MC-dropout ----------------------------------------------------------------------------
def mc_dropout(net, x, passes: int = 20, *, rng=None, chunk_size: int = 2000):
    """(mean, std) of the outputs over ``passes`` forward passes with dropout left on.

    Only the :class:`~nablanet.layers.Dropout` layers run their training path; every
    other layer (including input distortions) runs as at test time. A branching block
    with Dropout inside runs in training mode as a whole, which samples its dropout and
    changes nothing else: Dropout is the only layer whose output depends on the mode,
    besides RandomDistortion, which such a block may not hold.
    """
    passes = whole_number(passes, "passes", 1, error=ConfigError)
    chunk_size = whole_number(chunk_size, "chunk_size", 1, error=ConfigError)
    if not any(isinstance(layer, Dropout) for layer in every_layer(net.layers)):
        raise ConfigError("MC-dropout needs a network with Dropout layers")
    sampled = [_samples_dropout(layer) for layer in net.layers]
    x = net.check_input(x)
    net.set_rng(make_rng(rng))
    means, stds = [], []
    for start in range(0, len(x), chunk_size):
        xb = net.device_input(x[start:start + chunk_size])
        total = total_sq = 0.0
        for _ in range(passes):
            a = xb
            for layer, train in zip(net.layers, sampled):
                a, _ = layer.forward(a, train)
            a = to_host(a).astype(np.float64)
            total = total + a
            total_sq = total_sq + a * a
        mean = total / passes
        means.append(mean)
        stds.append(np.sqrt(np.maximum(total_sq / passes - mean * mean, 0.0)))
    return np.concatenate(means), np.concatenate(stds)


def _samples_dropout(layer) -> bool:
    """Whether MC-dropout runs ``layer`` in training mode: a Dropout layer, or a block
    whose only stochastic layers inside are Dropout (a ConfigError if it holds another)."""
    if isinstance(layer, Dropout):
        return True
    inner = [sub for sub in every_layer(layer.sublayers())
             if sub.stochastic and not sub.sublayers()]          # the leaves that draw
    if not any(isinstance(sub, Dropout) for sub in inner):
        return False
    if not all(isinstance(sub, Dropout) for sub in inner):
        others = sorted({type(sub).__name__ for sub in inner if not isinstance(sub, Dropout)})
        raise ConfigError(f"MC-dropout runs a block with Dropout inside in training mode, "
                          f"which would also switch on its {', '.join(others)}")
    return True
