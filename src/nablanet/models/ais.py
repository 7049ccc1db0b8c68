"""The partition function Z of an RBM: exactly for tiny models, by annealed importance
sampling (AIS) otherwise, and the test log-likelihood it gives.

AIS (Neal 2001; Salakhutdinov & Murray, "On the quantitative analysis of deep belief
networks", ICML 2008) anneals from a base-rate RBM A, whose Z_A is known in closed
form (W = 0, visible biases a_A fitted to the data's pixel means), to the model B
through the intermediate distributions

    log p*_β(v) = (1 − β) a_Aᵀv + β a_Bᵀv + Σⱼ softplus(β (bⱼ + vᵀW·ⱼ)),   0 = β₀ < … < β_K = 1

(the joint of A and B with both energies scaled; A's hidden units are left out,
which only changes Z_A). Each of M chains starts with v ~ p_A, accumulates the log
importance weight log w += log p*_{β_k}(v) − log p*_{β_{k−1}}(v), then takes one Gibbs
step that leaves p_{β_k} invariant:

    h ~ σ(β_k (b + vW)),   v ~ σ((1 − β_k) a_A + β_k (a_B + W h)).

Then Z_B / Z_A ≈ mean(w), and log p(v) = −F(v) − log Z for any test vector.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..backend import device_rng, make_rng, to_host
from ..data.dataset import check_values
from ..errors import ConfigError, DataError
from ..utils.state import number, whole_number
from .rbm import RBM
from .units import Binary, logsumexp, sigmoid_, softplus

#: Salakhutdinov & Murray's schedule: 500 β in [0, 0.5), 4 000 in [0.5, 0.9), 10 000 in [0.9, 1]
_SCHEDULE = ((0.0, 0.5, 500), (0.5, 0.9, 4000), (0.9, 1.0, 10000))
_MAX_ENUMERATED_LOG2 = 24
_LOG2 = math.log(2.0)


@dataclass(frozen=True)
class AISEstimate:
    """log Z with the ±3 standard-error interval log(Ẑ ± 3σ̂) of Salakhutdinov & Murray."""

    log_z: float
    log_z_low: float
    log_z_high: float
    log_z_base: float
    log_weights: np.ndarray
    n_betas: int

    def as_dict(self) -> dict:
        return {"log_z": self.log_z, "log_z_low": self.log_z_low,
                "log_z_high": self.log_z_high, "log_z_base": self.log_z_base,
                "n_chains": len(self.log_weights), "n_betas": self.n_betas}


def default_betas(n_betas: int = 14_500) -> np.ndarray:
    """Inverse temperatures 0 = β₀ < … < β_K = 1, denser near 1 where p_β changes fastest;
    Salakhutdinov & Murray's 14 500 values, scaled to ``n_betas``."""
    if whole_number(n_betas, "n_betas", None, error=ConfigError) < 2:
        raise ConfigError(f"AIS needs at least 2 inverse temperatures, got {n_betas}")
    total = sum(n for *_, n in _SCHEDULE)
    parts = [np.linspace(lo, hi, max(1, round(n * n_betas / total)), endpoint=False)
             for lo, hi, n in _SCHEDULE]
    return np.concatenate(parts + [np.ones(1)])


def base_rate_bias(x, smoothing: float = 0.05) -> np.ndarray:
    """Visible biases a_A = log(p / (1 − p)) of the base-rate model, p the pixel means of
    the training data pulled towards ½ by ``smoothing`` pseudo-counts (so p ∉ {0, 1})."""
    x = to_host(getattr(x, "x", x))
    check_values(x, "data")             # NaN gave NaN biases, no rows the uniform ones
    if x.ndim != 2 or len(x) == 0:
        raise DataError(f"data: base rates need an (n, d) array with n ≥ 1, got shape "
                        f"{x.shape}")
    if not number(smoothing, "smoothing", error=ConfigError) > 0:   # p = 0 or 1: log(0)
        raise ConfigError(f"smoothing must be > 0, got {smoothing}")
    x = x.astype(np.float64)
    n = len(x)
    p = (x.sum(axis=0) + smoothing) / (n + 2 * smoothing)
    return np.log(p) - np.log1p(-p)


def ais_log_partition(rbm: RBM, *, n_chains: int = 100, betas=None, n_betas: int = 14_500,
                      base_bias=None, rng=None) -> AISEstimate:
    """Estimate log Z of a binary–binary ``rbm`` by AIS from a base-rate model.

    ``base_bias``: the base-rate visible biases (:func:`base_rate_bias` of the
    training data; zeros, the uniform distribution, by default).
    """
    _require_binary(rbm, "AIS")
    n_chains = whole_number(n_chains, "n_chains", 1, error=ConfigError)
    backend, xp = rbm.backend, rbm.backend.xp
    betas = default_betas(n_betas) if betas is None else np.asarray(betas, dtype=np.float64)
    # (a NaN β fails the last test: NaN ≤ 0 is False, but so is NaN > 0)
    if betas.ndim != 1 or len(betas) < 2 or betas[0] != 0 or betas[-1] != 1 \
            or not np.all(np.diff(betas) > 0):
        raise ConfigError("betas must increase strictly from 0 to 1")
    a_base = (np.zeros(rbm.n_visible) if base_bias is None
              else np.asarray(base_bias, dtype=np.float64))
    finite = bool(np.isfinite(a_base).all())
    if a_base.shape != (rbm.n_visible,) or not finite:
        raise ConfigError(f"base_bias must be {rbm.n_visible} finite numbers, got shape "
                          f"{a_base.shape}{'' if finite else ' with NaN or inf'}")
    draw = device_rng(backend, make_rng(rng))
    dtype = backend.dtype
    W, a, b = rbm.W, rbm.b_visible, rbm.b_hidden
    a_A = backend.asarray(a_base)
    a_diff = xp.asarray(to_host(a).astype(np.float64) - a_base)     # a_B − a_A, float64
    log_z_base = float(softplus(a_base).sum()) + rbm.n_hidden * _LOG2

    # v ~ p_A, a product of independent Bernoulli(σ(a_A)) pixels.
    v = Binary().sample(sigmoid_(xp.broadcast_to(a_A, (n_chains, rbm.n_visible)).copy()), draw)
    x = xp.matmul(v, W)
    x += b
    h = xp.empty_like(x)
    z = xp.empty_like(v)
    log_w = xp.zeros(n_chains, dtype=np.float64)
    # The importance weights sum many tiny differences: accumulate them in float64.
    previous = softplus(x.astype(np.float64) * betas[0]).sum(axis=1)
    for k in range(1, len(betas)):
        beta = float(betas[k])
        x64 = x.astype(np.float64)
        current = softplus(x64 * beta).sum(axis=1)
        log_w += (beta - betas[k - 1]) * (v.astype(np.float64) @ a_diff) + current - previous
        if k == len(betas) - 1:
            break
        # One Gibbs step that leaves p_β invariant.
        xp.multiply(x, dtype(beta), out=h)
        Binary().sample(sigmoid_(h), draw, out=h)
        xp.matmul(h, W.T, out=z)
        z += a
        z *= beta
        z += (1.0 - beta) * a_A
        Binary().sample(sigmoid_(z), draw, out=v)
        xp.matmul(v, W, out=x)
        x += b
        previous = softplus(x.astype(np.float64) * beta).sum(axis=1)
    log_w = to_host(log_w)
    return _estimate(log_w, log_z_base, len(betas))


def _estimate(log_w: np.ndarray, log_z_base: float, n_betas: int) -> AISEstimate:
    top = log_w.max()
    w = np.exp(log_w - top)
    mean, se = w.mean(), w.std(ddof=1) / math.sqrt(len(w)) if len(w) > 1 else 0.0
    log_mean = top + math.log(mean)
    low = top + math.log(mean - 3 * se) if mean > 3 * se else -math.inf
    high = top + math.log(mean + 3 * se)
    return AISEstimate(log_z=log_z_base + log_mean, log_z_low=log_z_base + low,
                       log_z_high=log_z_base + high, log_z_base=log_z_base,
                       log_weights=log_w, n_betas=n_betas)


def exact_log_partition(rbm: RBM) -> float:
    """log Z by summing over every state of the smaller binary layer (≤ 2²⁴ states).

    With hidden states enumerated, log Z = log Σ_h exp(−e_h(h) + bᵀh + Σᵢ logpart(aᵢ + Wᵢ·h));
    with visible states, log Z = log Σ_v exp(−F(v)). Computed in float64 on the host.
    """
    W = to_host(rbm.W).astype(np.float64)
    a = to_host(rbm.b_visible).astype(np.float64)
    b = to_host(rbm.b_hidden).astype(np.float64)
    hidden_ok = rbm.hidden == "binary" and rbm.n_hidden <= _MAX_ENUMERATED_LOG2
    visible_ok = (rbm.visible == "binary" and not rbm.n_labels
                  and rbm.n_visible <= _MAX_ENUMERATED_LOG2)
    if hidden_ok and (not visible_ok or rbm.n_hidden <= rbm.n_visible):
        n, p = rbm.n_hidden, rbm.n_pixels
        pixels = rbm.visible_units

        def log_terms(h):
            z = h @ W.T + a
            t = h @ b + pixels.log_partition(z[:, :p])
            return t + logsumexp(z[:, p:], axis=1) if rbm.n_labels else t
    elif visible_ok:
        n = rbm.n_visible
        hidden = rbm.hidden_units

        def log_terms(v):
            return v @ a + hidden.log_partition(v @ W + b)
    else:
        raise ConfigError(f"log Z can be enumerated only when a binary layer has at most "
                          f"{_MAX_ENUMERATED_LOG2} units; use ais_log_partition")
    chunks = [logsumexp(log_terms(_binary_states(n, start, min(start + (1 << 16), 1 << n))),
                        axis=0)
              for start in range(0, 1 << n, 1 << 16)]
    return float(logsumexp(np.asarray(chunks), axis=0))


def _binary_states(n: int, start: int, stop: int) -> np.ndarray:
    """Rows = the binary expansions of start … stop − 1 over n bits."""
    codes = np.arange(start, stop, dtype=np.int64)[:, None]
    return ((codes >> np.arange(n, dtype=np.int64)) & 1).astype(np.float64)


def log_likelihood(rbm: RBM, x, log_z: float) -> float:
    """Mean log p(v) = −F(v) − log Z over the rows of ``x`` (binary data)."""
    x = getattr(x, "x", x)
    if x.ndim != 2 or x.shape[1] != rbm.n_visible:
        raise DataError(f"log-likelihood needs (n, {rbm.n_visible}) data, got {tuple(x.shape)}")
    f = np.concatenate([to_host(rbm.free_energy(x[i:i + 2000])).astype(np.float64)
                        for i in range(0, len(x), 2000)])
    return float(-f.mean() - log_z)


def _require_binary(rbm: RBM, what: str) -> None:
    if rbm.visible != "binary" or rbm.hidden != "binary" or rbm.n_labels:
        raise ConfigError(f"{what} is implemented for binary–binary RBMs without label units")
