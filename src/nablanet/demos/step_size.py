"""Gradient descent on a 1-D function with the lecture's three step sizes.

    x ← x − α f′(x),  α = 0.1 (x_small), 0.5 (x_med), 0.7 (x_big)

On f(x) = x² + x⁴/4 from x₀ = 1 the three regimes appear: 0.1 creeps towards the
minimum, 0.5 reaches it in a few steps, 0.7 overshoots to the far side, where the
curvature f″ = 2 + 3x² is larger, overshoots further and diverges. On the parabola
x² (f″ = 2 everywhere) the same 0.7 only oscillates: the factor 1 − 2α = −0.4 still
has |·| < 1 — divergence needs α > 2/f″ — so the quartic term is what makes "too big"
truly bad, and the demo prints both.
"""
from __future__ import annotations

import numpy as np

from ._common import figure, heading, save

STEPS = (0.1, 0.5, 0.7)
NAMES = {0.1: "x_small", 0.5: "x_med", 0.7: "x_big"}
FUNCTIONS = {
    "x² + x⁴/4": (lambda x: x**2 + x**4 / 4, lambda x: 2 * x + x**3),
    "x²": (lambda x: x**2, lambda x: 2 * x),
}
X0, N_STEPS, BLOW_UP = 1.0, 30, 1e3


def descend(grad, alpha: float, x0: float = X0, n_steps: int = N_STEPS) -> np.ndarray:
    """The iterates x₀, x₁, … of x ← x − α f′(x), stopped once |x| exceeds 10³."""
    xs = [x0]
    for _ in range(n_steps):
        xs.append(xs[-1] - alpha * grad(xs[-1]))
        if abs(xs[-1]) > BLOW_UP:
            break
    return np.array(xs)


def regime(xs: np.ndarray) -> str:
    """diverging / good / oscillating / too small, from the path (the minimum is x = 0)."""
    if abs(xs[-1]) > abs(xs[0]):
        return "diverging"
    if abs(xs[min(5, len(xs) - 1)]) < 1e-3:
        return "good"
    flips = int((np.sign(xs[1:]) * np.sign(xs[:-1]) < 0).sum())
    return "oscillating" if flips > 2 else "too small"


def run(out_dir, *, rng=None, quick: bool = False) -> dict:
    results = {}
    fig, axes = figure(2, 2, size=(11, 8))
    for row, (name, (f, grad)) in enumerate(FUNCTIONS.items()):
        heading(f"gradient descent on f(x) = {name}, x₀ = {X0}")
        print(f"{'step':<22} {'x1':>9} {'x2':>9} {'x5':>9} {'x10':>10}  regime")
        results[name] = {}
        grid = np.linspace(-2.5, 2.5, 400)
        axes[row, 0].plot(grid, f(grid), color="0.6")
        for alpha, colour in zip(STEPS, ("tab:blue", "tab:green", "tab:red")):
            xs = descend(grad, alpha)
            kind = regime(xs)
            results[name][alpha] = {"x": xs.tolist(), "regime": kind}
            shown = [f"{xs[k]:9.3g}" if k < len(xs) else "      —  " for k in (1, 2, 5)]
            last = f"{xs[10]:10.3g}" if len(xs) > 10 else f"{'>1e3':>10}"
            print(f"{alpha} f′(x) ({NAMES[alpha]})".ljust(22), *shown, last, f" {kind}")
            label = f"α = {alpha} ({NAMES[alpha]}): {kind}"
            path = xs[np.abs(xs) <= 2.5]
            axes[row, 0].plot(path, f(path), "o-", color=colour, ms=4, lw=1, label=label)
            axes[row, 1].semilogy(np.maximum(np.abs(xs), 1e-16), "o-", color=colour, ms=3,
                                  label=label)
        axes[row, 0].set(title=f"f(x) = {name}: the paths x₀ → x₁ → …", xlabel="x",
                         ylabel="f(x)", xlim=(-2.5, 2.5), ylim=(-0.2, float(f(2.5))))
        axes[row, 0].legend(fontsize=8)
        axes[row, 1].set(title=f"f(x) = {name}: distance to the minimum", xlabel="step k",
                         ylabel="|x_k − x*|")
        axes[row, 1].axhline(BLOW_UP, color="0.7", ls=":")
        axes[row, 1].legend(fontsize=8)
    results["figures"] = [str(save(fig, out_dir, "step-size.png"))]
    return results
