"""Early stopping: keep the weights from the epoch where the validation cost was lowest.

With only 1000 training examples the training cost keeps falling while the
validation cost turns and rises (overfitting) and the weights keep growing. Early
stopping (patience 10 epochs on the validation cost) stops there and restores the
best epoch's weights; the same run continued to the end is the "without". Both are
then scored on a test set that neither looked at. Because weights start small and
grow while training, stopping early also keeps them small — like weight decay.
"""
from __future__ import annotations

import numpy as np

from ..training import EarlyStopping
from ._common import figure, save
from ._overfitting import setup, train


def run(out_dir, *, rng=None, quick: bool = False) -> dict:
    data, seed, epochs = setup(rng, quick, 120, "early stopping — {features}-30-10, η = 0.5, "
                                                "m = 10, {epochs} epochs at most")
    test, source = data[2], data[3]
    full, history, norms = train(data, epochs=epochs, seed=seed)
    stopper = EarlyStopping(patience=10, monitor="validation_cost")
    stopped, stopped_history, _ = train(data, epochs=epochs, seed=seed,
                                                    callbacks=[stopper])
    best = stopped.restored_epoch
    results = {"source": source, "stopped_at": len(stopped_history) - 1, "best_epoch": best}
    for name, trainer in (("without", full), ("with", stopped)):
        cost, accuracy = trainer.evaluate(test)
        results[name] = {"test_cost": cost, "test_accuracy": accuracy}
    results["weight_norm"] = {"without": norms[-1], "with": norms[best + 1]}
    print(f"without early stopping: {len(history)} epochs, test cost "
          f"{results['without']['test_cost']:.4f}, test accuracy "
          f"{results['without']['test_accuracy']:.2%}, ‖w‖ = {norms[-1]:.1f}")
    print(f"with early stopping:    stopped after epoch {results['stopped_at'] + 1}, weights "
          f"of epoch {best + 1} restored; test cost {results['with']['test_cost']:.4f}, "
          f"test accuracy {results['with']['test_accuracy']:.2%}, ‖w‖ = {norms[best + 1]:.1f}")
    print(f"validation cost: lowest {min(history['validation_cost']):.4f} at epoch {best + 1}, "
          f"{history['validation_cost'][-1]:.4f} at the end")

    fig, axes = figure(1, 3, size=(15, 4.5))
    x = np.arange(1, len(history) + 1)
    panels = (("cost", "cross-entropy"), ("accuracy", "accuracy"))
    for ax, (key, label) in zip(axes[0, :2], panels):
        ax.plot(x, history[f"train_{key}"], label="training")
        ax.plot(x, history[f"validation_{key}"], label="validation")
        ax.set(xlabel="epoch", ylabel=label, title=f"{label}: training vs validation")
    axes[0, 2].plot(np.arange(len(norms)), norms, color="tab:purple", label="‖w‖")
    axes[0, 2].set(xlabel="epoch", ylabel="‖w‖", title="size of the weights")
    for ax in axes[0]:
        ax.axvline(best + 1, color="tab:green", ls="--", lw=1,
                   label=f"best validation cost (epoch {best + 1}): weights kept")
        ax.axvline(results["stopped_at"] + 1, color="tab:red", ls=":", lw=1,
                   label="early stopping stops (patience 10)")
        ax.legend(fontsize=8)
    fig.suptitle(f"early stopping — {source}; test accuracy "
                 f"{results['without']['test_accuracy']:.2%} without, "
                 f"{results['with']['test_accuracy']:.2%} with", fontsize=10)
    results["figures"] = [str(save(fig, out_dir, "early-stopping.png"))]
    results["validation_cost"] = history["validation_cost"]
    return results
