"""The unit types of energy-based models: what a layer of units contributes to the energy.

A layer of units s with biases c and total input z = c + (input from the other
layer) contributes ``self_energy(s) − cᵀs`` to E(v, h). Everything an RBM needs
follows from two facts per unit type (Hinton, "A practical guide to training
RBMs", 2010, §13; Hinton & Salakhutdinov 2006 for linear units):

* the conditional p(s | z): its mean (:meth:`Units.mean`) and a draw from it
  (:meth:`Units.sample`);
* the log partition of one unit, log Σₛ exp(s z − self_energy(s))
  (:meth:`Units.log_partition`), which is what summing the unit out of
  exp(−E) leaves behind, so the free energy of the other layer is a sum of them.

=========  ==============  ================  =========================
units      self_energy(s)  mean of p(s | z)  log partition
=========  ==============  ================  =========================
binary     0               σ(z)              softplus(z) = log(1 + eᶻ)
gaussian   s²/2 (σ = 1)    z                 z²/2 + ½ log 2π
=========  ==============  ================  =========================

Gaussian units have unit variance, so data for them must be standardised.
Every function works in place where it can (``out=``) and draws its random
numbers from a passed generator, on the array's own device.
"""
from __future__ import annotations

import math

from ..backend import xp_of
from ..errors import ConfigError
from ..functional.reductions import max_last, sum_last

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def sigmoid_(z):
    """σ(z) in place, as ½ tanh(z/2) + ½ (never overflows; see ``layers.activations.Sigmoid``)."""
    z *= 0.5
    xp_of(z).tanh(z, out=z)
    z *= 0.5
    z += 0.5
    return z


def softplus(z):
    """log(1 + eᶻ), computed as max(z, 0) + log1p(e^{−|z|}) so large |z| neither overflows
    nor loses the small term."""
    xp = xp_of(z)
    return xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.abs(z)))


def softmax_(z):
    """Softmax over the last axis, in place (for a group of label units)."""
    xp = xp_of(z)
    z -= max_last(z)
    xp.exp(z, out=z)
    z /= sum_last(z)
    return z


def logsumexp(z, axis=-1):
    xp = xp_of(z)
    top = z.max(axis=axis, keepdims=True)
    return (top + xp.log(xp.exp(z - top).sum(axis=axis, keepdims=True))).squeeze(axis)


class Units:
    """A layer's unit type; stateless."""

    name = ""

    def mean(self, z):
        """E[s | z], computed in place over the total input z."""
        raise NotImplementedError

    def sample(self, mean, rng, out=None):
        """A draw s ~ p(s | z) given its mean; written into ``out`` (may be ``mean``)."""
        raise NotImplementedError

    def self_energy(self, s):
        """Σ over units of self_energy(sⱼ), one value per example (row)."""
        raise NotImplementedError

    def log_partition(self, z):
        """Σⱼ log Σ_{sⱼ} exp(sⱼ zⱼ − self_energy(sⱼ)), one value per example (row)."""
        raise NotImplementedError


class Binary(Units):
    """Stochastic binary (Bernoulli, logistic) units: p(s = 1 | z) = σ(z)."""

    name = "binary"

    def mean(self, z):
        return sigmoid_(z)

    def sample(self, mean, rng, out=None):
        # s = 1 with probability p: a uniform number per unit, u < p. With a separate
        # ``out`` the uniforms are drawn straight into it and compared in place.
        out = mean if out is None else out
        if out is mean or not out.flags.c_contiguous:   # generators fill contiguous arrays only
            noise = rng.random(mean.shape, dtype=mean.dtype)
        else:
            # size given with out: CuPy's generators treat size=None as one number
            # broadcast into out, not as "the shape of out" as NumPy does.
            noise = rng.random(out.shape, dtype=out.dtype, out=out)
        xp_of(mean).less(noise, mean, out=out)
        return out

    def self_energy(self, s):
        return xp_of(s).zeros(s.shape[0], dtype=s.dtype)

    def log_partition(self, z):
        return softplus(z).sum(axis=-1)


class Gaussian(Units):
    """Linear units with unit-variance Gaussian noise: s ~ N(z, 1)
    (the code units of Hinton & Salakhutdinov 2006; real-valued pixels)."""

    name = "gaussian"

    def mean(self, z):
        return z

    def sample(self, mean, rng, out=None):
        out = mean if out is None else out
        if out is mean or not out.flags.c_contiguous:
            noise = rng.standard_normal(mean.shape, dtype=mean.dtype)
            xp_of(mean).add(mean, noise, out=out)
            return out
        rng.standard_normal(out.shape, dtype=out.dtype, out=out)
        out += mean
        return out

    def self_energy(self, s):
        return 0.5 * (s * s).sum(axis=-1)

    def log_partition(self, z):
        return 0.5 * (z * z).sum(axis=-1) + z.shape[-1] * _HALF_LOG_2PI


class SoftmaxGroup(Units):
    """A group of K binary units of which exactly one is on (the 10 label units of
    Hinton, Osindero & Teh 2006): p(sₖ = 1 | z) = softmax(z)ₖ."""

    name = "softmax"

    def mean(self, z):
        return softmax_(z)

    def sample(self, mean, rng, out=None):
        # Inverse-CDF draw of one category per row, then one-hot.
        xp = xp_of(mean)
        u = rng.random((mean.shape[0], 1), dtype=mean.dtype)
        k = (xp.cumsum(mean, axis=-1) < u).sum(axis=-1)
        k = xp.minimum(k, mean.shape[-1] - 1)            # rounding: cumsum may end below u
        out = mean if out is None else out
        out[...] = 0
        out[xp.arange(mean.shape[0]), k] = 1
        return out

    def self_energy(self, s):
        return xp_of(s).zeros(s.shape[0], dtype=s.dtype)

    def log_partition(self, z):
        return logsumexp(z, axis=-1)


UNITS: dict[str, Units] = {"binary": Binary(), "gaussian": Gaussian()}


def get_units(name: str, role: str) -> Units:
    try:
        return UNITS[name]
    except KeyError:
        raise ConfigError(f"unknown {role} units {name!r}; choose one of "
                          f"{', '.join(UNITS)}") from None
