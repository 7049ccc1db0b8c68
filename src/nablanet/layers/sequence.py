"""Outputs of a recurrent net: one per time step, or one per sequence.

* :class:`TimeDistributedDense` — the same fully connected layer at every step
  (sequence to sequence: a prediction for each character of a text);
* :class:`LastStep` — keep only the last step's hidden state (sequence to one).

Activations (sigmoid, softmax over the last axis) apply to (batch, time, units) as
they are, so a softmax output per step needs no wrapper.
"""
from __future__ import annotations

from ..errors import ConfigError, DataError
from .base import Layer, register
from .dense import Dense


@register
class TimeDistributedDense(Dense):
    """z_t = h_t W + b at every step t, as one GEMM over all (batch × time) rows.

    Tied over time like the recurrent weights, so ∂C/∂W sums over the steps.
    """

    def build(self, input_shape, backend, rng):
        if len(input_shape) != 2:
            raise ConfigError(f"TimeDistributedDense expects (time, features) per example, "
                              f"got {tuple(input_shape)}")
        (n_out,) = super().build(input_shape[-1:], backend, rng)
        return (input_shape[0], n_out)

    def forward(self, x, train=False):
        if x.ndim != 3:
            raise DataError(f"TimeDistributedDense expects (batch, time, features), got shape "
                            f"{tuple(x.shape)}")
        b, t, f = x.shape
        z, cache = super().forward(x.reshape(b * t, f), train)
        return z.reshape(b, t, -1), cache

    def backward(self, delta, x):
        b, t, n = delta.shape
        dx = super().backward(delta.reshape(b * t, n), x)
        return None if dx is None else dx.reshape(b, t, -1)


@register
class LastStep(Layer):
    """(batch, time, features) → (batch, features): the state after the whole sequence."""

    def build(self, input_shape, backend, rng):
        self.backend = backend
        if len(input_shape) != 2:
            raise ConfigError(f"LastStep expects (time, features) per example, got "
                              f"{tuple(input_shape)}")
        return tuple(input_shape[1:])

    def forward(self, x, train=False):
        if x.ndim != 3:
            raise DataError(f"LastStep expects (batch, time, features), got shape {tuple(x.shape)}")
        return x[:, -1], x.shape

    def backward(self, dy, shape):
        dx = self.backend.xp.zeros(shape, dtype=dy.dtype)
        dx[:, -1] = dy                  # earlier steps reach the cost only through h_T
        return dx
