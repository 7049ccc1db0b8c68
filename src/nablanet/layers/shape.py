"""Flatten and Reshape: change how each example's numbers are arranged, nothing else.

MNIST arrives flat, one row of 784 pixels per image; ``Reshape((1, 28, 28))`` as the
first layer turns it into the (C, H, W) images a convolution reads, so the data
format stays one for every net. ``Flatten`` goes the other way, from feature maps to
the vector a fully connected layer takes (in C, H, W order, as PyTorch flattens).
Backward reshapes δ back: the Jacobian is a permutation-free relabelling.
"""
from __future__ import annotations

from math import prod

from ..errors import ConfigError, DataError
from .base import Layer, is_size, register


class _Rearrange(Layer):
    """Reshape each example from ``input_shape`` to ``self.target``."""

    target: tuple[int, ...] = ()

    def build(self, input_shape, backend, rng):
        self.backend = backend
        self.input_shape = tuple(int(s) for s in input_shape)
        return self.target

    def forward(self, x, train=False):
        if tuple(x.shape[1:]) != self.input_shape:
            raise DataError(f"{type(self).__name__} expects examples of shape "
                            f"{self.input_shape}, got {tuple(x.shape[1:])}")
        return x.reshape(len(x), *self.target), None

    def backward(self, dy, cache):
        return dy.reshape(len(dy), *self.input_shape)


@register
class Flatten(_Rearrange):
    """(C, H, W) feature maps → one vector of C·H·W numbers per example."""

    def build(self, input_shape, backend, rng):
        self.target = (prod(input_shape),)
        return super().build(input_shape, backend, rng)


@register
class Reshape(_Rearrange):
    """Each example → ``shape`` (same number of entries), e.g. 784 → (1, 28, 28)."""

    def __init__(self, shape):
        super().__init__()
        shape = tuple(shape) if isinstance(shape, (list, tuple)) else (shape,)
        if not shape or not all(is_size(s) for s in shape):
            raise ConfigError(f"Reshape needs a shape of positive integers, got {shape!r}")
        self.target = tuple(int(s) for s in shape)

    def config(self):
        return {"shape": list(self.target)}

    def build(self, input_shape, backend, rng):
        if prod(input_shape) != prod(self.target):
            raise ConfigError(f"Reshape cannot turn examples of shape {tuple(input_shape)} "
                              f"({prod(input_shape)} numbers) into {self.target} "
                              f"({prod(self.target)})")
        return super().build(input_shape, backend, rng)
