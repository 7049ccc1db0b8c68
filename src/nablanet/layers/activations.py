"""Activation layers: a = σ(z), applied element by element (softmax across units).

Each caches what its derivative needs, so backward is one line:
    ∂C/∂z = ∂C/∂a ⊙ σ′(z)          (BP2's Hadamard product)
"""
from __future__ import annotations

import math

from ..errors import ConfigError
from ..functional.reductions import max_last, sum_last
from .base import Layer, register


class Activation(Layer):
    """An activation has no parameters; subclasses define forward and backward."""


@register
class Sigmoid(Activation):
    """σ(z) = 1 / (1 + e^{−z});  σ′(z) = σ(z)(1 − σ(z)).

    Computed as σ(z) = ½ tanh(z/2) + ½, the same function, which never overflows
    and runs on the vectorised tanh of NumPy/CuPy (faster than scipy's expit).
    """

    def forward(self, x, train=False):
        a = x * 0.5
        self.backend.xp.tanh(a, out=a)
        a *= 0.5
        a += 0.5
        return a, a

    def backward(self, da, a):
        dz = 1 - a                    # σ′ = a(1 − a), built in one array
        dz *= a
        dz *= da
        return dz


@register
class Tanh(Activation):
    """tanh(z);  tanh′(z) = 1 − tanh²(z)."""

    def forward(self, x, train=False):
        a = self.backend.xp.tanh(x)
        return a, a

    def backward(self, da, a):
        return da * (1 - a * a)


@register
class ReLU(Activation):
    """max(0, z);  derivative 1 for z > 0, else 0."""

    def forward(self, x, train=False):
        positive = x > 0
        return x * positive, positive

    def backward(self, da, positive):
        return da * positive


@register
class LeakyReLU(Activation):
    """z for z > 0, αz otherwise;  derivative 1 or α."""

    def __init__(self, alpha: float = 0.01):
        super().__init__()
        # a bool is no slope, and a NaN one would turn every negative input into NaN
        try:
            finite = not isinstance(alpha, bool) and math.isfinite(float(alpha))
        except (TypeError, ValueError):
            finite = False
        if not finite:
            raise ConfigError(f"LeakyReLU alpha must be a finite number, got {alpha!r}")
        self.alpha = float(alpha)

    def config(self):
        return {"alpha": self.alpha}

    def forward(self, x, train=False):
        slope = self.backend.xp.where(x > 0, 1, self.alpha).astype(x.dtype)
        return x * slope, slope

    def backward(self, da, slope):
        return da * slope


@register
class Linear(Activation):
    """The identity, a = z (a linear output unit);  derivative 1."""

    def forward(self, x, train=False):
        return x, None

    def backward(self, da, cache):
        return da


@register
class Softmax(Activation):
    """aⱼ = e^{zⱼ} / Σₖ e^{zₖ} over the last axis.

    Shifting z by its row maximum leaves a unchanged and keeps e^{z} finite.
    Backward is the Jacobian–vector product ∂C/∂zⱼ = aⱼ(∂C/∂aⱼ − Σₖ aₖ ∂C/∂aₖ).
    """

    def forward(self, x, train=False):
        e = x - max_last(x)
        self.backend.xp.exp(e, e)             # in place (out by position: cheaper)
        e /= sum_last(e)
        return e, e

    def backward(self, da, a):
        return a * (da - sum_last(da * a))


ACTIVATIONS = {
    "sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU, "leaky-relu": LeakyReLU,
    "linear": Linear, "softmax": Softmax,
}
