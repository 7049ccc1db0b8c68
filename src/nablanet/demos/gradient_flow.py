"""Vanishing and exploding gradients through time (lecture 7d), and why the LSTM helps (7e).

A cost on the last step only, C = r · h_T (r random), is backpropagated through 100
steps of random input; the plot shows ‖∂C/∂x_t‖, the error that reaches the input of
each earlier step, against how many steps back it is (averaged over 32 sequences).

* A plain tanh RNN multiplies the error by Uᵀ and by tanh′ ≤ 1 at every step back: with
  the recurrent weights scaled to spectral radius 0.9 it shrinks geometrically
  (vanishing), with radius 3 it grows geometrically (exploding; gradient clipping is
  the fix for that one).
* Through an LSTM's memory cell the error is multiplied only by the keep (forget) gate
  f: with f near 1 ("keep" switched on) it arrives from 100 steps back almost undiminished.
  The forget-gate bias sets f at the start: σ(1) ≈ 0.73 per step still fades over 100
  steps, σ(3) ≈ 0.95 keeps the error of order 1.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_backend
from ..layers import LSTM, SimpleRNN
from ._common import figure, heading, save

STEPS_BACK = (1, 10, 25, 50, 99)


def gradient_reaching_each_step(layer, x, rng) -> np.ndarray:
    """‖∂C/∂x_t‖ (mean over the batch) for C = r · h_T, indexed by steps back from T."""
    h, cache = layer.forward(x)
    dh = np.zeros_like(h)
    dh[:, -1] = rng.standard_normal(h[:, -1].shape)
    dx = layer.backward(dh, cache)
    return np.linalg.norm(dx, axis=2).mean(axis=0)[::-1]


def nets(n_in: int, n_hidden: int):
    """(label, layer, spectral radius of U to impose or None)."""
    return [("plain RNN, ρ(U) = 0.9", SimpleRNN(n_in, n_hidden), 0.9),
            ("plain RNN, ρ(U) = 3", SimpleRNN(n_in, n_hidden), 3.0),
            ("LSTM, forget bias 1", LSTM(n_in, n_hidden, forget_bias=1.0), None),
            ("LSTM, forget bias 3", LSTM(n_in, n_hidden, forget_bias=3.0), None)]


def run(out_dir, *, rng=None, quick: bool = False) -> dict:
    rng = np.random.default_rng(rng)
    n_steps, batch, n_in, n_hidden = (100, 8, 8, 32) if quick else (100, 32, 8, 64)
    backend = get_backend("cpu", "float64")
    x = rng.standard_normal((batch, n_steps, n_in))
    heading(f"‖∂C/∂x_t‖ for a cost on the last of {n_steps} steps ({n_hidden} hidden units)")
    print("net".ljust(24) + "".join(f"{k:>10d}" for k in STEPS_BACK) + "   steps back")
    curves, results = {}, {}
    for label, layer, radius in nets(n_in, n_hidden):
        layer.build((n_steps, n_in), backend, rng)
        if radius is not None:
            u = layer.params["U"]
            u *= radius / np.abs(np.linalg.eigvals(u)).max()
        curve = gradient_reaching_each_step(layer, x, rng)
        curves[label] = curve
        results[label] = {k: float(curve[k]) for k in STEPS_BACK}
        print(label.ljust(24) + "".join(f"{curve[k]:10.1e}" for k in STEPS_BACK))

    fig, axes = figure(1, 1, size=(8, 4.5))
    ax = axes[0, 0]
    for label, curve in curves.items():
        ax.semilogy(np.arange(n_steps), curve, label=label,
                    ls="-" if label.startswith("LSTM") else "--")
    ax.set(xlabel="steps back from the last step (t = T − k)",
           ylabel="‖∂C/∂x_t‖ (mean over sequences)",
           title="error reaching each earlier time step: RNN vanishes or explodes, LSTM keeps it")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, out_dir, "gradient_flow.png")
    return {"steps_back": list(STEPS_BACK), "norms": results}
