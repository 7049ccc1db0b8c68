"""The vanishing gradient (Nielsen ch. 5): in a deep sigmoid net the early hidden
layers learn much more slowly than the later ones.

The "speed of learning" of hidden layer l is ‖δˡ‖ = ‖∂C/∂bˡ‖, the gradient of the cost
with respect to that layer's biases over 1000 training examples. By BP2,
δˡ = (Wˡ⁺¹ᵀ δˡ⁺¹) ⊙ σ′(zˡ), and σ′ ≤ 1/4: with weights of order 1 every layer down
multiplies the gradient by a factor below one. ReLU units have derivative 1 where
they are active, so with He initialisation the layers learn at similar speeds.

Nets: 784-30-...-30-10 with 2, 3 and 4 hidden layers (sigmoid output, cross-entropy,
N(0, 1/n_in) weights as in Nielsen's network2), then the 4-hidden-layer net trained by
SGD (η = 0.1, m = 10) with sigmoid and with ReLU hidden units.
"""
from __future__ import annotations

import numpy as np

from ..data import Dataset
from ..net import mlp
from ..optim import Objective, unflatten
from ..optimizers import SGD
from ..training import Callback, Trainer
from ._common import classification_data, figure, heading, save


def hidden_bias_gradients(net, objective: Objective) -> list[float]:
    """‖∂C/∂bˡ‖ for every hidden layer l (the output layer's biases left out)."""
    _, g = objective.value_and_grad(objective.theta())
    parts = unflatten(net, g)
    norms = [float(np.linalg.norm(p)) for (layer, name), p in zip(net.parameters(), parts)
             if name == "b"]
    return norms[:-1]


class SpeedOfLearning(Callback):
    """Records ‖∂C/∂bˡ‖ of every hidden layer after each epoch."""

    def __init__(self, objective: Objective):
        self.objective = objective
        self.rows: list[list[float]] = []

    def on_train_begin(self, trainer):
        self.rows.append(hidden_bias_gradients(trainer.net, self.objective))

    def on_epoch_end(self, trainer, epoch, metrics):
        self.rows.append(hidden_bias_gradients(trainer.net, self.objective))


def run(out_dir, *, rng=None, quick: bool = False) -> dict:
    rng = np.random.default_rng(rng)
    train, _, _, source = classification_data(rng, 1000)
    n_in, n_out = train.n_features, 10
    print(f"data: {source}")
    results: dict = {"source": source, "at_init": {}, "training": {}}

    heading("‖∂C/∂bˡ‖ of each hidden layer at initialisation (1000 examples)")
    for depth in (2, 3, 4):
        for activation, init in (("sigmoid", "normal-scaled"), ("relu", "he")):
            if activation == "relu" and depth != 4:
                continue
            net = mlp([n_in] + [30] * depth + [n_out], activation, "sigmoid", init=init,
                      rng=rng)
            norms = hidden_bias_gradients(net, Objective(net, "cross-entropy", train.x,
                                                         train.y))
            results["at_init"][f"{activation} {depth} hidden"] = norms
            print(f"{activation:>7}, {depth} hidden layers: "
                  + "  ".join(f"layer {i + 1}: {v:.4f}" for i, v in enumerate(norms)))

    epochs = 5 if quick else 30
    heading(f"speed of learning while training 4 hidden layers ({epochs} epochs, η = 0.1, m = 10)")
    for activation, init in (("sigmoid", "normal-scaled"), ("relu", "he")):
        net = mlp([n_in, 30, 30, 30, 30, n_out], activation, "sigmoid", init=init, rng=rng)
        speed = SpeedOfLearning(Objective(net, "cross-entropy", train.x, train.y))
        trainer = Trainer(net, "cross-entropy", SGD(0.1), batch_size=10, callbacks=[speed],
                          monitor=("train_accuracy",), rng=rng)
        history = trainer.fit(Dataset(train.x, train.y), epochs)
        rows = np.array(speed.rows)
        results["training"][activation] = {"speeds": rows.tolist(),
                                           "train_accuracy": history["train_accuracy"]}
        ratio = rows[:, -1] / rows[:, 0]
        print(f"{activation:>7}: layer 4 / layer 1 speed ratio, median over epochs "
              f"{np.median(ratio):.1f}; training accuracy {history['train_accuracy'][-1]:.1%}"
              + ("  (still on the plateau: the early layers hardly move)"
                 if history["train_accuracy"][-1] < 0.5 else ""))

    fig, axes = figure(1, 3, size=(15, 4.5))
    ax = axes[0, 0]
    for label, norms in results["at_init"].items():
        ax.semilogy(range(1, len(norms) + 1), norms, "o-", label=label)
    ax.set(xlabel="hidden layer l (1 = nearest the input)", ylabel="‖∂C/∂bˡ‖",
           title="speed of learning at initialisation", xticks=[1, 2, 3, 4])
    ax.legend(fontsize=8)
    for ax, activation in zip(axes[0, 1:], ("sigmoid", "relu")):
        rows = np.array(results["training"][activation]["speeds"])
        for layer in range(rows.shape[1]):
            ax.semilogy(rows[:, layer], label=f"hidden layer {layer + 1}")
        accuracy = results["training"][activation]["train_accuracy"][-1]
        ax.set(xlabel="epoch", ylabel="‖∂C/∂bˡ‖",
               title=f"4 hidden layers, {activation}: training (train acc. {accuracy:.0%})")
        ax.legend(fontsize=8)
    fig.suptitle(f"vanishing gradient — data: {source}", fontsize=10)
    results["figures"] = [str(save(fig, out_dir, "vanishing-gradient.png"))]
    return results
