"""XOR: no perceptron can compute it; a 2-2-1 sigmoid net trained by backprop can.

The four points (0,0)→0, (0,1)→1, (1,0)→1, (1,1)→0 are not linearly separable, so
the perceptron never has an error-free epoch. Two hidden sigmoid units each draw a
line; the output unit combines the two half-planes into the band between them.
A 2-2-1 net can also settle in a local minimum from some starting points; the demo
tries seeds in turn and says how many it needed.
"""
from __future__ import annotations

import numpy as np

from ..data import Dataset
from ..models import Perceptron
from ..net import mlp
from ..optimizers import SGD
from ..training import Trainer
from ._common import figure, heading, save

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
Y = np.array([0, 1, 1, 0])


def train_xor_net(rng, epochs: int, max_tries: int = 10):
    """A 2-2-1 sigmoid net trained by full-batch gradient descent (η = 2) on the
    cross-entropy; new starting weights until all four points are right."""
    for attempt in range(1, max_tries + 1):
        net = mlp([2, 2, 1], "sigmoid", "sigmoid", rng=rng)
        trainer = Trainer(net, "cross-entropy", SGD(2.0), batch_size=4, monitor=("train_cost",),
                          rng=rng)
        history = trainer.fit(Dataset(X, Y[:, None].astype(np.float64)), epochs)
        accuracy = float(((net.predict(X)[:, 0] > 0.5) == Y).mean())
        if accuracy == 1.0:
            break
    return net, history["train_cost"], accuracy, attempt


def run(out_dir, *, rng=None, quick: bool = False) -> dict:
    rng = np.random.default_rng(rng)
    heading("XOR: a perceptron")
    perceptron = Perceptron(max_epochs=50 if quick else 100, rng=rng).fit(X, Y)
    p_acc = perceptron.score(X, Y)
    print(perceptron.message_)
    print(f"perceptron accuracy on the four XOR points: {p_acc:.0%}")

    heading("XOR: a 2-2-1 sigmoid net, backprop")
    net, costs, n_acc, tries = train_xor_net(rng, epochs=1500 if quick else 3000)
    print(f"2-2-1 net: cross-entropy {costs[-1]:.4f} after {len(costs)} epochs, "
          f"accuracy {n_acc:.0%} (starting point {tries} of the ones tried)")
    print("outputs:", ", ".join(f"{tuple(map(int, x))}→{a:.3f}"
                                for x, a in zip(X, net.predict(X)[:, 0])))

    fig, axes = figure(2, 2, size=(11, 9))
    grid = np.linspace(-0.5, 1.5, 201)
    gx, gy = np.meshgrid(grid, grid)
    points = np.column_stack([gx.ravel(), gy.ravel()])
    panels = [(axes[0, 0], perceptron.decision_function(points) >= 0,
               f"perceptron after {perceptron.n_epochs_} epochs: {p_acc:.0%} right"),
              (axes[0, 1], net.predict(points)[:, 0], f"2-2-1 sigmoid net: {n_acc:.0%} right")]
    for ax, surface, title in panels:
        surface = np.asarray(surface, float).reshape(gx.shape)
        image = ax.contourf(gx, gy, surface, levels=np.linspace(0, 1, 11), cmap="RdBu_r",
                            alpha=0.8)
        ax.scatter(X[:, 0], X[:, 1], c=Y, cmap="RdBu_r", edgecolors="k", s=120, vmin=0, vmax=1)
        ax.set(title=title, xlabel="x₁", ylabel="x₂", aspect="equal")
    fig.colorbar(image, ax=axes[0, 1], label="output (1 = red class)")
    lines = [(axes[0, 0], perceptron.net_.layers[0], "perceptron"),
             (axes[0, 1], net.layers[0], "hidden unit")]
    for ax, layer, name in lines:              # each unit's line w·x + b = 0
        for j in range(layer.params["W"].shape[1]):
            w, b = layer.params["W"][:, j], layer.params["b"][j]
            if abs(w[1]) > 1e-12:
                ax.plot(grid, -(w[0] * grid + b) / w[1], "--", color="0.1", lw=1,
                        label=f"{name} {j + 1}: w·x + b = 0")
        ax.set(xlim=(-0.5, 1.5), ylim=(-0.5, 1.5))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="lower left")
    axes[1, 0].step(range(1, len(perceptron.errors_) + 1), perceptron.errors_,
                    color="tab:red", where="mid")
    axes[1, 0].set(xlabel="epoch", ylabel="mistakes in the epoch", ylim=(0, 4.5),
                   title="perceptron: never an error-free epoch")
    axes[1, 1].plot(costs, color="tab:green")
    axes[1, 1].set(xlabel="epoch", ylabel="cross-entropy", yscale="log",
                   title="2-2-1 net: training cost (full-batch GD, η = 2)")
    path = save(fig, out_dir, "xor.png")
    return {"perceptron_accuracy": p_acc, "perceptron_converged": perceptron.converged_,
            "net_accuracy": n_acc, "net_cost": costs[-1], "tries": tries,
            "figures": [str(path)]}
