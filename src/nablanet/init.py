"""Weight initialisers.

Each initialiser draws the weights of a fully connected (or convolutional) layer
from a seeded ``numpy.random.Generator`` on the host in float64, so the same seed
gives the same starting point in float32, float64 and on a GPU.

``fan_in`` is the number of inputs to one unit (n_in), ``fan_out`` the number of
units it feeds. Biases follow Nielsen: N(0, 1) for his two initialisers, zero for
the others.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .errors import ConfigError


def normal(shape, fan_in, fan_out, rng):
    """N(0, 1): Nielsen's "large" initialiser (network.py, chapter 1)."""
    return rng.standard_normal(shape)


def normal_scaled(shape, fan_in, fan_out, rng):
    """N(0, 1/n_in): Nielsen's default (network2.py), keeps z = Σ w x + b of order 1."""
    return rng.standard_normal(shape) / np.sqrt(fan_in)


def uniform(shape, fan_in, fan_out, rng, limit=0.2):
    """U(−0.2, 0.2): the small uniform range of the early lectures."""
    return rng.uniform(-limit, limit, shape)


def glorot(shape, fan_in, fan_out, rng):
    """Glorot/Xavier uniform: U(±√(6 / (n_in + n_out))), variance 2 / (n_in + n_out)."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape)


def he(shape, fan_in, fan_out, rng):
    """He (Kaiming) normal: N(0, 2/n_in), for ReLU units that zero half their inputs."""
    return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)


def zeros(shape, fan_in, fan_out, rng):
    return np.zeros(shape)


# name -> (weight initialiser, bias initialiser)
INITIALIZERS: dict[str, tuple[Callable, Callable]] = {
    "normal": (normal, normal),                 # "large"
    "large": (normal, normal),
    "normal-scaled": (normal_scaled, normal),   # Nielsen's default
    "default": (normal_scaled, normal),
    "uniform": (uniform, zeros),
    "glorot": (glorot, zeros),
    "xavier": (glorot, zeros),
    "he": (he, zeros),
    "zeros": (zeros, zeros),
}


def initializer(name: str) -> tuple[Callable, Callable]:
    """Look up an initialiser pair by name; unknown names list the valid ones."""
    try:
        return INITIALIZERS[name]
    except KeyError:
        raise ConfigError(
            f"unknown init {name!r}; choose one of {', '.join(sorted(INITIALIZERS))}"
        ) from None
