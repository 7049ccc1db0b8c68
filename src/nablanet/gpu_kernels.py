"""Fused elementwise updates for CuPy arrays: one kernel launch instead of one per operator.

On a GPU every NumPy-style operator is its own kernel launch, and for the small nets of
the lectures the launches, not the arithmetic, set the pace: ~15 µs each on an H100
host, so Adam's update of one parameter (8 operators) took ~190 µs, 27 % of an inception
CNN's epoch. Each kernel here computes the same update the NumPy code beside its user
writes out (the equations live there, in the docstrings), in one pass over the arrays.
tests/test_gpu.py trains nets with Momentum, Nesterov, RMSprop and Adam (and L1/L2, through
axpy) on the CPU and the GPU and checks that the weights agree; tests/test_optimizers.py
runs every update's body below under NumPy against the NumPy update, on any machine (the
only check AdaGrad's kernel has). NumPy arrays never come here: callers ask :func:`on_gpu`
first.

The LSTM's time step is fused the same way, two kernels and two GEMMs per step instead of
~30 launches: a 100-step character-LSTM training step went from 67 to 10.5 ms on an H100
(PyTorch's cuDNN LSTM: 5–7 ms).

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
    # One LSTM time step after the recurrent GEMM rec = h_{t−1} U (layers/lstm.py): the
    # gates of row r, unit j sit at a[r, j + k·n] in the order i, f, o, g; a holds x_t W + b
    # and becomes the activations; σ(z) = ½ tanh(z/2) + ½ as sigmoid_inplace computes it.
    "lstm_step": ("raw T rec, T c_prev, int64 n", "raw T a, T c, T tanh_c, T h", """
        const ptrdiff_t at = (i / n) * 4 * n + i % n;
        const T half = 0.5;
        const T write = half * tanh(half * (a[at] + rec[at])) + half;
        const T keep = half * tanh(half * (a[at + n] + rec[at + n])) + half;
        const T read = half * tanh(half * (a[at + 2 * n] + rec[at + 2 * n])) + half;
        const T cand = tanh(a[at + 3 * n] + rec[at + 3 * n]);
        a[at] = write; a[at + n] = keep; a[at + 2 * n] = read; a[at + 3 * n] = cand;
        c = keep * c_prev + write * cand;
        tanh_c = tanh(c);
        h = read * tanh_c;"""),
    # Its backward step, before the GEMM ∂C/∂h_{t−1} = δ_t Uᵀ: from ∂C/∂h_t = dy + dh_next
    # and the carried ∂C/∂c, the gate errors δ_t (times σ′ = σ − σ², tanh′ = 1 − g²) and
    # ∂C/∂c_{t−1} = ∂C/∂c_t ⊙ f.
    "lstm_step_back": ("raw T a, T dy, T dh_next, T tanh_c, T c_prev, int64 n", "raw T d, T dc", """
        const ptrdiff_t at = (i / n) * 4 * n + i % n;
        const T one = 1;
        const T write = a[at], keep = a[at + n], read = a[at + 2 * n], cand = a[at + 3 * n];
        const T dh = dy + dh_next;
        const T dc_t = dc + (one - tanh_c * tanh_c) * read * dh;
        d[at] = dc_t * cand * (write - write * write);
        d[at + n] = dc_t * c_prev * (keep - keep * keep);
        d[at + 2 * n] = dh * tanh_c * (read - read * read);
        d[at + 3 * n] = dc_t * write * (one - cand * cand);
        dc = dc_t * keep;"""),
}


def on_gpu(a) -> bool:
    """True for a CuPy array (any array or scalar that is not NumPy's is one here)."""
    return not isinstance(a, (np.ndarray, np.generic))


@cache
def kernel(name: str):
    """The compiled ``cupy.ElementwiseKernel`` for update ``name`` (compiled once)."""
    import cupy

    inputs, outputs, body = _SOURCES[name]
    return cupy.ElementwiseKernel(inputs, outputs, body, f"nablanet_{name}")
