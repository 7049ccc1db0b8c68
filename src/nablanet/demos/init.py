"""Weight initialisation: N(0, 1) against N(0, 1/n_in) (Nielsen ch. 3).

With N(0, 1) weights a hidden unit's z = Σⱼ wⱼxⱼ + b has variance Σⱼ xⱼ² + 1 — for
an MNIST image (Σ x² ≈ 100) a standard deviation near 10, so most sigmoid units start
saturated (σ′(z) ≈ 0) and learn slowly. With N(0, 1/n_in) the variance is
Σ x²/n_in + 1 ≈ 1, the units start in their sensitive range, and the net learns
faster from the first epoch. (Nielsen's own example, 500 inputs at 1 and 500 at 0,
gives std √501 ≈ 22.4 against √(3/2) ≈ 1.22.)
"""
from __future__ import annotations

import numpy as np

from ..net import mlp
from ..optimizers import SGD
from ..regularizers import L2
from ..training import Trainer
from ._common import classification_data, figure, heading, save

INITS = {"normal": "N(0, 1)", "normal-scaled": "N(0, 1/n_in)"}


def run(out_dir, *, rng=None, quick: bool = False) -> dict:
    rng = np.random.default_rng(rng)
    n_train = 2000 if quick else 10000
    train, validation, _, source = classification_data(rng, n_train, 1000 if quick else 2000)
    epochs = 4 if quick else 15
    lam = 5.0 * n_train / 50000                # Nielsen's λ = 5 for n = 50 000, same λ/n
    heading("initial weights N(0, 1) vs N(0, 1/n_in): z = w·x + b of the first hidden layer")
    print(f"data: {source}")
    seed = int(rng.integers(2**31))
    results: dict = {"source": source, "z": {}, "validation_accuracy": {}}
    zs = {}
    for init, label in INITS.items():
        net = mlp([train.n_features, 30, 10], "sigmoid", "sigmoid", init=init, rng=seed)
        z, _ = net.layers[0].forward(net.backend.asarray(train.x[:1000]))
        z = np.asarray(z, np.float64).ravel()
        sigma = 1 / (1 + np.exp(-z))
        zs[init] = z
        results["z"][init] = {"std": float(z.std()), "saturated": float(np.mean(np.abs(z) > 4)),
                              "mean_sigma_prime": float(np.mean(sigma * (1 - sigma)))}
        r = results["z"][init]
        print(f"{label:>13}: std(z) = {r['std']:6.2f}, |z| > 4 (σ′ < 0.018) for "
              f"{r['saturated']:.1%} of units, mean σ′(z) = {r['mean_sigma_prime']:.3f}")
    print(f"Nielsen's example (1000 inputs, half of them 1): std(z) = √501 = {np.sqrt(501):.1f}"
          f" vs √(3/2) = {np.sqrt(1.5):.2f}")

    heading(f"learning curves: {train.n_features}-30-10, cross-entropy, η = 0.1, m = 10, λ = {lam:g}, "
            f"{n_train} training examples")
    for init, label in INITS.items():
        net = mlp([train.n_features, 30, 10], "sigmoid", "sigmoid", init=init, rng=seed)
        trainer = Trainer(net, "cross-entropy", SGD(0.1), batch_size=10, penalties=[L2(lam)],
                          monitor=("validation_accuracy",), rng=seed + 1)
        history = trainer.fit(train, epochs, validation)
        results["validation_accuracy"][init] = history["validation_accuracy"]
        acc = history["validation_accuracy"]
        print(f"{label:>13}: validation accuracy after epoch 1: {acc[0]:.2%}, "
              f"after {epochs}: {acc[-1]:.2%}")

    fig, axes = figure(1, 3, size=(15, 4.5))
    bins = np.linspace(-40, 40, 161)
    for ax, (init, label), colour in zip(axes[0, :2], INITS.items(), ("tab:red", "tab:blue")):
        ax.hist(zs[init], bins=bins, color=colour, alpha=0.8)
        ax.axvspan(-4, 4, color="0.85", zorder=0, label="|z| < 4: σ′(z) not tiny")
        ax.set(xlabel="z = w·x + b (first hidden layer)", ylabel="count",
               title=f"{label}: std(z) = {results['z'][init]['std']:.1f}, "
                     f"{results['z'][init]['saturated']:.0%} saturated")
        ax.legend(fontsize=8)
    ax = axes[0, 2]
    for (init, label), colour in zip(INITS.items(), ("tab:red", "tab:blue")):
        acc = results["validation_accuracy"][init]
        ax.plot(np.arange(1, len(acc) + 1), acc, "o-", ms=3, color=colour, label=label)
    ax.set(xlabel="epoch", ylabel="validation accuracy", title="learning curves")
    ax.legend()
    fig.suptitle(f"weight initialisation — {source}", fontsize=10)
    results["figures"] = [str(save(fig, out_dir, "init.png"))]
    return results
