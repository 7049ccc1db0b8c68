"""Dropout (Srivastava, Hinton et al. 2014; Nielsen ch. 3, network3.py)."""
from __future__ import annotations

from ..errors import ConfigError
from ..utils.state import number
from .base import Layer, register


@register
class Dropout(Layer):
    """Drop each unit of the input with probability p while training.

    Two explicit paths, as in the lectures:

    * training (``train=True``): each unit is kept with probability 1 − p, and the kept
      ones are scaled by 1/(1 − p) ("inverted dropout");
    * inference (``train=False``): the whole net is used, unchanged.

    This equals the lecture's rule "train the thinned net, then multiply the outgoing
    weights by 1 − p at test time": both make the expected input of the next layer
    at training time equal the input it sees at test time; inverted dropout does the
    scaling during training so the saved weights are used as they are.

    Placed before the first Dense layer, it is dropout on the input layer
    (typically p = 0.2), as Hinton et al. recommend.
    """

    stochastic = True

    def __init__(self, p: float = 0.5):
        super().__init__()
        # number(), not float(): float() reads "0.5" and fails on None with a TypeError
        p = number(p, "p", error=ConfigError)
        if not 0.0 <= p < 1.0:
            raise ConfigError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def config(self):
        return {"p": self.p}

    def forward(self, x, train=False):
        if not train or self.p == 0.0:
            return x, None
        keep = 1.0 - self.p
        mask = self.rng.random(x.shape, dtype=x.dtype) < keep
        scaled_mask = mask * x.dtype.type(1.0 / keep)
        return x * scaled_mask, scaled_mask

    def backward(self, dy, scaled_mask):
        return dy if scaled_mask is None else dy * scaled_mask
