"""Weight decay (L2): C = C₀ + λ/2n Σ w², i.e. w ← (1 − ηλ/n) w − η ∂C₀/∂w.

Nielsen's chapter-3 experiment: 784-30-10 started from the "large" N(0, 1) weights,
1000 training examples, η = 0.5. Without decay the training accuracy reaches 100%
while the validation accuracy stalls, and the weights keep growing; with λ = 0.1 or
1 the weights stay small, and the validation accuracy ends higher.
"""
from __future__ import annotations

import numpy as np

from ..regularizers import L2
from ._common import figure, save
from ._overfitting import setup, train

LAMBDAS = (0.0, 0.1, 1.0)


def run(out_dir, *, rng=None, quick: bool = False) -> dict:
    data, seed, epochs = setup(rng, quick, 150, "weight decay — {features}-30-10 from N(0, 1) "
                                                "weights, η = 0.5, m = 10, {epochs} epochs")
    test, source = data[2], data[3]
    results: dict = {"source": source, "runs": {}}
    print(f"{'λ':>5} {'train acc':>9} {'valid. acc':>10} {'test acc':>9} {'‖w‖':>8}")
    runs = {}
    for lam in LAMBDAS:
        trainer, history, norms = train(data, epochs=epochs, seed=seed, init="normal",
                                        penalties=[L2(lam)] if lam else [])
        _, test_accuracy = trainer.evaluate(test)
        runs[lam] = (history, norms)
        results["runs"][lam] = {"train_accuracy": history["train_accuracy"][-1],
                                "validation_accuracy": history["validation_accuracy"][-1],
                                "test_accuracy": test_accuracy, "weight_norm": norms[-1],
                                "weight_norms": norms}
        r = results["runs"][lam]
        print(f"{lam:>5} {r['train_accuracy']:>9.2%} {r['validation_accuracy']:>10.2%} "
              f"{test_accuracy:>9.2%} {norms[-1]:>8.1f}")

    fig, axes = figure(1, 3, size=(15, 4.5))
    colours = dict(zip(LAMBDAS, ("tab:red", "tab:blue", "tab:green")))
    for lam, (history, norms) in runs.items():
        x = np.arange(1, len(history) + 1)
        axes[0, 0].plot(x, history["train_accuracy"], color=colours[lam], ls="--",
                        label=f"λ = {lam:g}: training")
        axes[0, 0].plot(x, history["validation_accuracy"], color=colours[lam],
                        label=f"λ = {lam:g}: validation")
        gap = np.array(history["train_accuracy"]) - np.array(history["validation_accuracy"])
        axes[0, 1].plot(x, gap, color=colours[lam], label=f"λ = {lam:g}")
        axes[0, 2].plot(np.arange(len(norms)), norms, color=colours[lam], label=f"λ = {lam:g}")
    axes[0, 0].set(xlabel="epoch", ylabel="accuracy", ylim=(0.5, 1.01),
                   title="training (dashed) vs validation accuracy")
    axes[0, 1].set(xlabel="epoch", ylabel="training − validation accuracy",
                   title="overfitting gap")
    axes[0, 2].set(xlabel="epoch", ylabel="‖w‖", title="size of the weights")
    for ax in axes[0]:
        ax.legend(fontsize=8)
    fig.suptitle(f"weight decay — {source}, N(0, 1) initial weights", fontsize=10)
    results["figures"] = [str(save(fig, out_dir, "weight-decay.png"))]
    return results
