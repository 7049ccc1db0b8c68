"""Gradient-norm clipping (Pascanu, Mikolov & Bengio 2013), the cure for exploding gradients.

If the gradient of all parameters together, g, is longer than a threshold θ, rescale it:

    g ← g · θ / ‖g‖     when ‖g‖ > θ

The direction is kept, only the step is shortened, so one steep cliff of the error
surface (lecture 7d: the recurrent net's exploding gradients) cannot throw the weights
far away. Applied after backprop, before the optimiser's step.
"""
from __future__ import annotations

import math

from .backend import xp_of
from .errors import ConfigError
from .gpu_kernels import on_gpu


def gradient_norm(net) -> float:
    """‖g‖₂ over every parameter gradient of ``net`` (None counts as zero)."""
    grads = [g.reshape(-1) for layer, name in net.parameters()
             if (g := layer.grads[name]) is not None]
    if grads and on_gpu(grads[0]):
        # summed on the device: one wait for the GPU per step, not one per parameter
        xp = xp_of(grads[0])
        return math.sqrt(float(xp.stack([g @ g for g in grads]).astype(xp.float64).sum()))
    # One float at a time in parameter order, as before the GPU path: sum() compensates
    # its float additions from Python 3.12 on, which would move a clipped step's last bits.
    total = 0.0
    for g in grads:
        total += float(g @ g)
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
