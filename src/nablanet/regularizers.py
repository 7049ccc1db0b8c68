"""Regularisation: penalties added to the cost, and constraints applied after a step.

With n training examples (the whole training set, not the mini-batch):

* L2:  C = C₀ + λ/2n Σ w²   →  ∂C/∂w = ∂C₀/∂w + (λ/n) w.
  Inside plain SGD this is the lectures' weight decay
  w ← (1 − ηλ/n) w − η ∂C₀/∂w.
* L1:  C = C₀ + λ/n Σ |w|   →  ∂C/∂w = ∂C₀/∂w + (λ/n) sgn(w), with sgn(0) = 0.

Only the parameters a layer lists in ``regularized`` (its weights) are penalised;
biases join only when ``include_biases=True``.
"""
from __future__ import annotations

from .backend import axpy, xp_of
from .errors import ConfigError
from .utils.state import number


class Penalty:
    def __init__(self, lmbda: float, include_biases: bool = False):
        # NaN passed `lmbda < 0` and made every weight NaN at the first step
        lmbda = number(lmbda, "lmbda", error=ConfigError)
        if lmbda < 0:
            raise ConfigError(f"regularisation strength must be ≥ 0, got {lmbda}")
        self.lmbda = lmbda
        self.include_biases = include_biases

    def _targets(self, net):
        for layer in net.layers:
            names = layer.params if self.include_biases else layer.regularized
            for name in names:
                yield layer, name

    def value(self, net, n: int) -> float:
        """The penalty term, to add to the mean cost C₀."""
        if not self.lmbda:
            return 0.0
        return sum(self._term(layer.params[name]) for layer, name in self._targets(net)) / n

    def add_gradient(self, net, n: int) -> None:
        """∂C/∂w += penalty gradient, for every penalised parameter with a gradient."""
        if not self.lmbda:
            return
        for layer, name in self._targets(net):
            if layer.grads[name] is not None:
                self._add_gradient(layer.params[name], layer.grads[name], n)

    def config(self) -> dict:
        return {"name": self.name, "lmbda": self.lmbda, "include_biases": self.include_biases}


class L2(Penalty):
    """λ/2n Σ w² (weight decay)."""

    name = "l2"

    def _term(self, w):
        return 0.5 * self.lmbda * float((w * w).sum())

    def _add_gradient(self, w, g, n):
        axpy(self.lmbda / n, w, g)


class L1(Penalty):
    """λ/n Σ |w|; shrinks weights by a constant amount, driving small ones to zero."""

    name = "l1"

    def _term(self, w):
        return self.lmbda * float(abs(w).sum())

    def _add_gradient(self, w, g, n):
        axpy(self.lmbda / n, xp_of(w).sign(w), g)   # sgn(0) = 0


class MaxNorm:
    """Constrain each unit's incoming weight vector to ‖w‖₂ ≤ c (Srivastava et al.).

    Applied after each update: vectors longer than c are scaled back onto the ball.
    Dense weights are (n_in, n_out), so a unit's incoming vector is a column.
    """

    def __init__(self, c: float = 3.0):
        self.c = number(c, "c", error=ConfigError)
        if self.c <= 0:
            raise ConfigError(f"max-norm bound must be > 0, got {c}")

    def apply(self, net) -> None:
        for layer in net.layers:
            for name in layer.regularized:
                w = layer.params[name]
                xp = xp_of(w)
                axes = tuple(i for i in range(w.ndim) if i != _unit_axis(w))
                norms = xp.sqrt((w * w).sum(axis=axes, keepdims=True))
                w *= xp.minimum(1, self.c / xp.maximum(norms, 1e-12)).astype(w.dtype)

    def config(self) -> dict:
        return {"name": "max-norm", "c": self.c}


def _unit_axis(w) -> int:
    """The axis that indexes output units: last for (n_in, n_out), first for conv kernels."""
    return w.ndim - 1 if w.ndim == 2 else 0
