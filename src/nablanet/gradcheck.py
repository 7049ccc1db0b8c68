"""Gradient checking: compare backprop with central differences in float64.

    ∂f/∂θᵢ ≈ (f(θ + εeᵢ) − f(θ − εeᵢ)) / 2ε

The error measure is ‖g_backprop − g_numeric‖ / (‖g_backprop‖ + ‖g_numeric‖), which
stays meaningful when single entries are near zero. With float64 and ε = 1e-5 a
correct backward pass gives about 1e-9 or less; an error above 1e-6 means a bug.
ε = 1e-5 is near the step that balances the O(ε²) truncation error of the central
difference against its O(u·|f|/ε) round-off (u ≈ 1e-16): ε ≈ u^(1/3). With ε = 1e-6
the round-off alone reaches 1e-6 relative error on small (saturated-unit) gradients.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .backend import to_host
from .costs import get_cost, output_delta
from .errors import ConfigError, DataError
from .layers import Linear
from .utils.state import number, whole_number


def relative_error(a, b) -> float:
    a, b = np.asarray(to_host(a), dtype=np.float64), np.asarray(to_host(b), dtype=np.float64)
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if scale == 0 else float(np.linalg.norm(a - b) / scale)


def numerical_gradient(f: Callable[[], float], x, eps: float = 1e-5) -> np.ndarray:
    """Central-difference gradient of ``f()`` with respect to array ``x`` (perturbed in place)."""
    # eps=0 was a ZeroDivisionError after the first two passes
    eps = number(eps, "eps", positive=True, error=ConfigError)
    if not hasattr(x, "reshape") or not hasattr(x, "shape"):
        raise DataError(f"x must be an array (it is perturbed in place), got {type(x).__name__}")
    grad = np.zeros(x.shape, dtype=np.float64)
    flat = x.reshape(-1)                                    # a view: edits reach x
    for i in range(flat.size):
        old = flat[i].item()
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        grad.reshape(-1)[i] = (up - down) / (2 * eps)
    return grad


def _check_float64(backend, what: str) -> None:
    """In float32 the round-off of a central difference is about 1e-3 of the gradient: a
    correct backward pass would look broken."""
    if np.dtype(backend.dtype) != np.float64:
        raise ConfigError(f"gradient checks need float64: {what} is built with "
                          f"{np.dtype(backend.dtype).name}; build it with "
                          "get_backend('cpu', 'float64')")


def _fresh_rng_for(layers, seed: int) -> None:
    """Re-seed stochastic layers so every forward pass draws the same dropout mask."""
    for layer in layers:
        if layer.stochastic:
            layer.rng = np.random.default_rng(seed)


def check_layer(layer, x, *, train: bool = True, seed: int = 0, eps: float = 1e-5) -> dict:
    """Relative errors of ∂L/∂x and every ∂L/∂θ for L = Σ y ⊙ R, R a fixed random array.

    ``layer`` must be built with a float64 backend; returns {"x": err, name: err, ...}.
    """
    _check_float64(layer.backend, type(layer).__name__)
    if not hasattr(x, "dtype") or (x.dtype.kind == "f" and x.dtype != np.float64):
        raise DataError(f"check_layer perturbs x in place: give a float64 array (or integer "
                        f"indices), got {getattr(x, 'dtype', type(x).__name__)}")
    rng = np.random.default_rng(seed + 1)
    _fresh_rng_for([layer], seed)
    y, cache = layer.forward(x, train)
    weights = rng.standard_normal(y.shape)

    def loss() -> float:
        _fresh_rng_for([layer], seed)
        return float((layer.forward(x, train)[0] * weights).sum())

    layer.zero_grads()
    dx = layer.backward(weights, cache)
    errors = {}
    if dx is not None:
        errors["x"] = relative_error(dx, numerical_gradient(loss, x, eps))
    for name, param in layer.params.items():
        errors[name] = relative_error(layer.grads[name], numerical_gradient(loss, param, eps))
    return errors


def check_net(net, cost, x, y, *, penalties=(), n_train: int | None = None,
              train: bool = True, seed: int = 0, eps: float = 1e-5) -> dict:
    """Relative errors of every parameter gradient of C = mean cost + penalties.

    This runs the same path as training: the cost's δᴸ (with the closed form a − y
    where σ′ cancels), backprop through the net, then each penalty's gradient.
    A net with an output per time step takes ``y`` shaped like its outputs (one-hot
    rows for a softmax) and averages over batch × time outputs, as the BPTT step
    does (training/bptt.py). Keys are "layer<i>.<name>".
    """
    cost = get_cost(cost)
    x = net.check_input(x)                  # built, rows of input_shape, finite
    _check_float64(net.backend, "the net")
    n = len(x) if n_train is None else whole_number(n_train, "n_train", 1, error=ConfigError)
    eps = number(eps, "eps", positive=True, error=ConfigError)
    if len(net.output_shape) == 1:
        target = cost.targets(y, net.output_shape[-1], net.backend)
    else:
        target = net.backend.asarray(y)
    if len(target) != len(x):
        raise DataError(f"x has {len(x)} examples but y has {len(target)}")
    penalties = list(penalties) if isinstance(penalties, (list, tuple)) else None
    if penalties is None or not all(hasattr(p, "add_gradient") for p in penalties):
        raise ConfigError("penalties must be a list of penalties such as [L2(5.0)]")
    n_outputs = target.size // target.shape[-1]
    output = net.output_activation or Linear()
    start = len(net.layers) - (net.output_activation is not None)

    def total_cost() -> float:
        _fresh_rng_for(net.layers, seed)
        a, _ = net.forward(x, train)
        return cost.value(a, target) / n_outputs + sum(p.value(net, n) for p in penalties)

    _fresh_rng_for(net.layers, seed)
    net.zero_grads()
    a, caches = net.forward(x, train)
    net.backward(output_delta(cost, output, a, target, caches[-1], n_outputs), caches, start)
    for penalty in penalties:
        penalty.add_gradient(net, n)
    errors = {}
    for i, layer in enumerate(net.layers):
        for name, param in layer.params.items():
            errors[f"layer{i}.{name}"] = relative_error(
                layer.grads[name], numerical_gradient(total_cost, param, eps))
    return errors
