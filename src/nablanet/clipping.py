"""Gradient-norm clipping (Pascanu, Mikolov & Bengio 2013), the cure for exploding gradients.

If the gradient of all parameters together, g, is longer than a threshold θ, rescale it:

    g ← g · θ / ‖g‖     when ‖g‖ > θ

The direction is kept, only the step is shortened, so one steep cliff of the error
surface (lecture 7d: the recurrent net's exploding gradients) cannot throw the weights
far away. Applied after backprop, before the optimiser's step.
"""
from __future__ import annotations

import math

from .errors import ConfigError


def gradient_norm(net) -> float:
    """‖g‖₂ over every parameter gradient of ``net`` (None counts as zero)."""
    total = 0.0
    for layer, name in net.parameters():
        g = layer.grads[name]
        if g is not None:
            flat = g.reshape(-1)
            total += float(flat @ flat)
    return math.sqrt(total)


def clip_gradient_norm(net, max_norm: float) -> float:
    """Scale every gradient of ``net`` in place so ‖g‖₂ ≤ ``max_norm``; return the norm before."""
    if not float(max_norm) > 0:
        raise ConfigError(f"gradient clipping threshold must be > 0, got {max_norm}")
    norm = gradient_norm(net)
    if norm > max_norm:
        scale = max_norm / norm
        for layer, name in net.parameters():
            g = layer.grads[name]
            if g is not None:
                g *= scale
    return norm
