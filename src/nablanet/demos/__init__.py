"""The lectures' demonstrations: each one prints its numbers and writes PNG(s).

Every demo is a module in this package with a function
``run(out_dir, *, rng, quick=False) -> dict`` returning the numbers it printed
(tests read them). :data:`DEMOS` maps the command-line name to the module, which
is imported only when the demo runs, so ``nablanet demo --help`` stays fast.
"""
from __future__ import annotations

import importlib

from ..errors import ConfigError

#: command-line name -> (module in this package, one-line description)
DEMOS: dict[str, tuple[str, str]] = {
    "step-size": ("step_size", "gradient descent with steps 0.1, 0.5 and 0.7 f′(x)"),
    "xor": ("xor", "a perceptron fails on XOR, a 2-2-1 sigmoid net succeeds"),
    "universal-approximation": ("universal_approximation",
                                "one sigmoid hidden layer fits a function; error vs units"),
    "vanishing-gradient": ("vanishing_gradient",
                           "speed of learning of each hidden layer, sigmoid and ReLU"),
    "double-descent": ("double_descent",
                       "test error vs number of random features across p = n"),
    "early-stopping": ("early_stopping",
                       "training vs validation curves; stop at the best validation cost"),
    "weight-decay": ("weight_decay", "training vs validation curves and ‖w‖ with L2 decay"),
    "binary-addition": ("binary_addition",
                        "a 2-3-1 recurrent net learns to add; 8-bit training, 32-bit test"),
    "gradient-flow": ("gradient_flow",
                      "gradient norm reaching each earlier time step: plain RNN vs LSTM"),
    "init": ("init", "N(0, 1) vs N(0, 1/n_in) weights: the distribution of z, learning curves"),
}


def get_demo(name: str):
    """The ``run`` function of demo ``name``."""
    try:
        module, _ = DEMOS[name]
    except KeyError:
        raise ConfigError(f"unknown demo {name!r}; choose one of {', '.join(DEMOS)}") from None
    return importlib.import_module(f"{__name__}.{module}").run
