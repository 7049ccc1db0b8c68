"""Universal approximation: one hidden layer of sigmoid units and a linear output unit
can fit any continuous function on [0, 1] as closely as we like, given enough units
(Cybenko 1989; Nielsen ch. 4, whose function this is):

    f(x) = 0.2 + 0.4x² + 0.3x sin(15x) + 0.05 cos(50x).

Each net 1-N-1 starts from the lecture's construction (steep sigmoids as steps tiling
[0, 1], output weights by least squares) and is refined by L-BFGS on the quadratic
cost over 400 points; the error (max and RMS at 2000 other points) falls as N grows.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_backend
from ..models import LinearRegression
from ..net import mlp
from ..optim import Objective, minimize
from ._common import figure, heading, save


def target(x):
    return 0.2 + 0.4 * x**2 + 0.3 * x * np.sin(15 * x) + 0.05 * np.cos(50 * x)


def fit(n_hidden: int, x, y, rng, max_iter: int):
    """A 1-N-1 net (sigmoid hidden, linear output), started from Nielsen's construction
    and refined by L-BFGS.

    Start: hidden unit j is a steep sigmoid, a near-step at sⱼ = (j + ½)/N with slope
    ±(5N + 5) (random sign), so the N steps tile [0, 1]; the output weights are then the
    least-squares fit to f of those steps (a linear regression). L-BFGS then moves
    everything, step positions and slopes included, on the quadratic cost.
    """
    net = mlp([1, n_hidden, 1], "sigmoid", "linear", backend=get_backend("cpu", "float64"),
              rng=rng)
    hidden, sigmoid, output = net.layers[:3]
    position = (np.arange(n_hidden) + 0.5) / n_hidden
    slope = (5.0 * n_hidden + 5) * rng.choice([-1.0, 1.0], n_hidden)
    hidden.set_params(W=slope[None, :], b=-slope * position)
    steps, _ = sigmoid.forward(hidden.forward(x)[0])
    regression = LinearRegression(l2=1e-8).fit(steps, y)      # tiny ridge: steps may coincide
    output.set_params(W=regression.coef_.reshape(n_hidden, 1),
                      b=np.reshape(regression.intercept_, 1))
    minimize(Objective(net, "quadratic", x, y), "l-bfgs", max_iter=max_iter, tol=1e-10)
    return net


def run(out_dir, *, rng=None, quick: bool = False) -> dict:
    rng = np.random.default_rng(rng)
    sizes = (1, 2, 4, 8, 16) if quick else (1, 2, 4, 8, 16, 32, 64)
    x = np.linspace(0, 1, 400)[:, None]
    y = target(x)
    grid = np.sort(rng.uniform(0, 1, 2000))[:, None]
    heading("one sigmoid hidden layer, linear output: f(x) = 0.2 + 0.4x² + 0.3x sin(15x) "
            "+ 0.05 cos(50x) on [0, 1]")
    print(f"{'hidden units':>12} {'max |error|':>12} {'RMS error':>10}")
    errors, fits = {}, {}
    for n in sizes:
        net = fit(n, x, y, rng, max_iter=1000 if quick else 3000)
        out = net.predict(grid)
        err = np.abs(out - target(grid))
        errors[n] = {"max": float(err.max()), "rms": float(np.sqrt((err**2).mean()))}
        fits[n] = out[:, 0]
        print(f"{n:>12} {errors[n]['max']:>12.4f} {errors[n]['rms']:>10.4f}")

    fig, axes = figure(1, 2, size=(13, 4.8))
    ax = axes[0, 0]
    for n in sizes[1::2] + ((sizes[-1],) if len(sizes) % 2 else ()):
        ax.plot(grid[:, 0], fits[n], lw=1.5, label=f"{n} hidden units")
    ax.plot(grid[:, 0], target(grid[:, 0]), "k--", lw=1, label="f(x)", zorder=5)
    ax.set(xlabel="x", ylabel="output", title="fits of 1-N-1 sigmoid nets")
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    ax.loglog(sizes, [errors[n]["max"] for n in sizes], "o-", label="max |error|")
    ax.loglog(sizes, [errors[n]["rms"] for n in sizes], "s-", label="RMS error")
    ax.set(xlabel="hidden units N", ylabel="error on [0, 1]", title="error against the number "
           "of hidden units")
    ax.legend()
    path = save(fig, out_dir, "universal-approximation.png")
    return {"errors": errors, "figures": [str(path)]}
