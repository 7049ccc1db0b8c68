"""Fused elementwise updates for CuPy arrays: one kernel launch instead of one per operator.

On a GPU every NumPy-style operator is its own kernel launch, and for the small nets of
the lectures the launches, not the arithmetic, set the pace: ~15 µs each on an H100
host, so Adam's update of one parameter (8 operators) took ~190 µs, 27 % of an inception
CNN's epoch. Each kernel here computes the same update the NumPy code beside its user
writes out (the equations live there, in the docstrings), in one pass over the arrays;
tests/test_gpu.py trains with each optimiser on the CPU and the GPU and checks that the
weights agree. NumPy arrays never come here: callers ask :func:`on_gpu` first.

CuPy is imported only when a kernel is first used, so the CPU path never needs it.
"""
from __future__ import annotations

from functools import cache

import numpy as np

#: name -> (input parameters, output parameters, CUDA body); T is the arrays' dtype, so a
#: Python float given for a scalar is rounded to it, as NumPy rounds it in ``x * 0.9``
_SOURCES = {
    # y ← y + αx (axpy)
    "axpy": ("T x, T alpha", "T y", "y += alpha * x"),
    # v ← μv − η g;  w ← w + v
    "momentum": ("T g, T mu, T eta", "T w, T v", "v = mu * v - eta * g; w += v"),
    # v ← μv − η g;  w ← w + μv − η g
    "nesterov": ("T g, T mu, T eta", "T w, T v", "v = mu * v - eta * g; w += mu * v - eta * g"),
    # G ← G + g²;  w ← w − η g / (√G + ε)
    "adagrad": ("T g, T eta, T eps", "T w, T s", "s += g * g; w -= eta * g / (sqrt(s) + eps)"),
    # E ← ρE + (1 − ρ)g²;  w ← w − η g / (√E + ε)
    "rmsprop": ("T g, T rho, T one_minus_rho, T eta, T eps", "T w, T e",
                "e = rho * e + one_minus_rho * g * g; w -= eta * g / (sqrt(e) + eps)"),
    # m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;  w ← w − η̂ m / (√(v·v̂) + ε)
    "adam": ("T g, T b1, T one_minus_b1, T b2, T one_minus_b2, T eta_hat, T v_hat, T eps",
             "T w, T m, T v",
             "m = b1 * m + one_minus_b1 * g; v = b2 * v + one_minus_b2 * g * g; "
             "w -= eta_hat * m / (sqrt(v * v_hat) + eps)"),
}


def on_gpu(a) -> bool:
    """True for a CuPy array (any array that is not NumPy's is one here)."""
    return not isinstance(a, np.ndarray)


@cache
def kernel(name: str):
    """The compiled ``cupy.ElementwiseKernel`` for update ``name`` (compiled once)."""
    import cupy

    inputs, outputs, body = _SOURCES[name]
    return cupy.ElementwiseKernel(inputs, outputs, body, f"nablanet_{name}")
