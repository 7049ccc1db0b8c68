"""Weight initialisers.

Each initialiser draws the weights of a fully connected (or convolutional) layer
from a seeded ``numpy.random.Generator`` on the host in float64, so the same seed
gives the same starting point in float32, float64 and on a GPU.

``fan_in`` is the number of inputs to one unit (n_in), ``fan_out`` the number of
units it feeds. Biases follow Nielsen: N(0, 1) for his two initialisers, zero for
the others.
"""
from __future__ import annotations

import contextvars
from contextlib import contextmanager
from math import prod
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
    """Look up an initialiser pair by name; unknown names list the valid ones.

    Each draw is first counted against the :func:`parameter_budget` in force, if any.
    """
    try:
        pair = INITIALIZERS[name]
    except KeyError:
        raise ConfigError(
            f"unknown init {name!r}; choose one of {', '.join(sorted(INITIALIZERS))}"
        ) from None
    return tuple(_claiming(draw) for draw in pair)


# -- a bound on what a file may make us allocate ----------------------------------------------
#: parameters a file's layers may draw beyond those its weights file holds (8 MB of
#: float64 draws): a small mismatch is left to the check that names the tensor
BUDGET_SLACK = 1 << 20
#: [parameters still allowed, parameters the file holds, the file's name] in this
#: context, or None: no limit
_BUDGET: contextvars.ContextVar[list | None] = contextvars.ContextVar("parameter_budget",
                                                                      default=None)


@contextmanager
def parameter_budget(n: int, source: str):
    """Within the block, refuse (ConfigError) a draw that takes the parameters drawn past
    ``n`` + :data:`BUDGET_SLACK`, before it allocates anything.

    A model file's layers are built with fresh weights, then the stored ones replace
    them. ``source`` (the weights file) holds every parameter, so a config.json that
    asks for far more, lying or damaged, is refused before gigabytes are drawn for
    nothing (a width of 10⁶ took 27 s and 11 GB).
    """
    token = _BUDGET.set([int(n) + BUDGET_SLACK, int(n), source])
    try:
        yield
    finally:
        _BUDGET.reset(token)


def claim_parameters(shape) -> None:
    """Count a tensor of ``shape`` against the :func:`parameter_budget` in force."""
    budget = _BUDGET.get()
    if budget is None:
        return
    budget[0] -= prod(shape)
    if budget[0] < 0:
        raise ConfigError(f"the layers need far more parameters than the {budget[1]} that "
                          f"{budget[2]} holds")


def _claiming(draw: Callable) -> Callable:
    def claimed(shape, fan_in, fan_out, rng):
        claim_parameters(shape)
        return draw(shape, fan_in, fan_out, rng)
    claimed.__doc__ = draw.__doc__
    return claimed
