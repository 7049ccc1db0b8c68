"""A network's cost as a function of one flat parameter vector θ.

Second-order methods (Newton, Hessian-free, conjugate gradient, BFGS) see a net as
C(θ): every weight and bias of every layer in one vector, in the fixed order of
``net.parameters()``. :class:`Objective` evaluates C(θ) and ∇C(θ) over a fixed
(full) batch with the same pieces the training loop uses — the cost's δᴸ from
:func:`nablanet.costs.output_delta`, BP2–BP4 in ``Sequential.backward``, and the
penalties' gradients — and counts how many gradient evaluations it was asked for.

Curvature products:

* ``hessian_vector``: H v ≈ (∇C(θ + εv) − ∇C(θ − εv)) / 2ε, central differences of the
  exact gradient (Pearlmutter's identity evaluated numerically);
* ``hessian``: the full H column by column (2P gradients; for small nets only);
* ``gauss_newton_operator``: G v = Jᵀ H_L J v (Schraudolph 2002; Martens 2010), with
  J = ∂zᴸ/∂θ the Jacobian of the output pre-activation, J v by the forward-mode
  R-operator and Jᵀ u by ordinary backprop. H_L = ∂²C/∂zᴸ² is the Jacobian of δᴸ;
  for the matching pairs (sigmoid + cross-entropy, softmax + log-likelihood, linear +
  quadratic) δᴸ = a − y, so H_L u = σ′(zᴸ)u — the output activation's own backward.
  G is positive semi-definite, unlike H, which is what makes CG on it safe.
"""
from __future__ import annotations

import numpy as np

from ..backend import to_host
from ..costs import get_cost, output_delta
from ..errors import ConfigError, DataError
from ..layers import Activation, Dense, Dropout, Linear
from ..utils.state import whole_number


def get_flat(net) -> np.ndarray:
    """θ: a float64 copy of every parameter, concatenated in ``net.parameters()`` order."""
    return np.concatenate([to_host(layer.params[name]).ravel().astype(np.float64)
                           for layer, name in net.parameters()])


def set_flat(net, theta) -> None:
    """Write θ back into the layers' parameter arrays (in place, in the net's dtype)."""
    theta = np.asarray(theta)
    if theta.shape != (net.n_params(),):
        raise DataError(f"θ must have {net.n_params()} entries, got shape {theta.shape}")
    offset = 0
    for layer, name in net.parameters():
        p = layer.params[name]
        p[...] = net.backend.asarray(theta[offset:offset + p.size].reshape(p.shape))
        offset += p.size


def flat_grads(net) -> np.ndarray:
    """∇C as one float64 vector (a gradient never accumulated counts as zero)."""
    parts = []
    for layer, name in net.parameters():
        g = layer.grads[name]
        parts.append(np.zeros(layer.params[name].size) if g is None
                     else to_host(g).ravel().astype(np.float64))
    return np.concatenate(parts)


def unflatten(net, v) -> list:
    """v split into arrays shaped like the parameters, on the net's backend."""
    out, offset = [], 0
    for layer, name in net.parameters():
        shape = layer.params[name].shape
        size = int(np.prod(shape))
        out.append(net.backend.asarray(v[offset:offset + size].reshape(shape)))
        offset += size
    return out


class Objective:
    """C(θ) = (1/n) Σₓ Cₓ + penalties, and its gradient, for ``net`` on the examples (x, y).

    ``n_train`` is the n of the penalties' λ/2n (the whole training set; defaults to
    ``len(x)``). Counters: ``n_evals`` gradient evaluations, ``n_products`` curvature-
    vector products. The forward passes run in inference mode (dropout off), so C is a
    deterministic function of θ.
    """

    def __init__(self, net, cost, x, y, *, penalties=(), n_train: int | None = None):
        if not net.built:
            raise ConfigError("build the net before optimising it")
        if len(x) != len(y):
            raise DataError(f"x has {len(x)} examples but y has {len(y)}")
        if len(x) == 0:
            raise DataError("the training set is empty")
        x = net.check_input(x)       # the width and NaN/inf, before the first evaluation
        self.net, self.cost = net, get_cost(cost)
        self.penalties = list(penalties)
        backend = net.backend
        self.x = backend.asarray(x)
        self.y = self.cost.targets(y, net.output_shape[-1], backend)
        self.n = len(x)
        self.n_train = (self.n if n_train is None
                        else whole_number(n_train, "n_train", 1, error=ConfigError))
        # As in the training loop: the cost meets the output activation; a net without
        # one is linear, and backprop starts one layer below it.
        self.output = net.output_activation or Linear()
        self.start = len(net.layers) - (net.output_activation is not None)
        self.n_evals = 0
        self.n_products = 0

    @property
    def size(self) -> int:
        return self.net.n_params()

    def theta(self) -> np.ndarray:
        return get_flat(self.net)

    # -- C and ∇C -------------------------------------------------------------------
    def value(self, theta) -> float:
        """C(θ) alone (one forward pass; not counted as a gradient evaluation)."""
        set_flat(self.net, theta)
        a, _ = self.net.forward(self.x)
        return self._cost_of(a)

    def value_and_grad(self, theta) -> tuple[float, np.ndarray]:
        """(C(θ), ∇C(θ)): the training loop's step on the whole batch, without the update."""
        self.n_evals += 1
        net = self.net
        set_flat(net, theta)
        net.zero_grads()
        a, caches = net.forward(self.x)
        delta = output_delta(self.cost, self.output, a, self.y, caches[-1], self.n)
        net.backward(delta, caches, start=self.start)
        for penalty in self.penalties:
            penalty.add_gradient(net, self.n_train)
        g = flat_grads(net)
        net.zero_grads()
        return self._cost_of(a), g

    def _cost_of(self, a) -> float:
        c = self.cost.value(a, self.y) / self.n
        return c + sum(p.value(self.net, self.n_train) for p in self.penalties)

    # -- curvature ----------------------------------------------------------------------
    def hessian_vector(self, theta, v, eps: float = 1e-5) -> np.ndarray:
        """H v by central differences of the exact gradient (2 gradient evaluations)."""
        self.n_products += 1
        theta, v = np.asarray(theta, np.float64), np.asarray(v, np.float64)
        norm = np.linalg.norm(v)
        if norm == 0:
            return np.zeros_like(v)
        h = eps / norm                          # a step of length ε along v
        g_up = self.value_and_grad(theta + h * v)[1]
        g_down = self.value_and_grad(theta - h * v)[1]
        set_flat(self.net, theta)
        return (g_up - g_down) / (2 * h)

    def hessian(self, theta, eps: float = 1e-5) -> np.ndarray:
        """The full P × P Hessian, column by column, symmetrised (2P gradient evaluations)."""
        theta = np.asarray(theta, np.float64)
        eye = np.eye(len(theta))
        h = np.stack([self.hessian_vector(theta, e, eps) for e in eye], axis=1)
        return 0.5 * (h + h.T)

    def gauss_newton_operator(self, theta):
        """v ↦ G v = Jᵀ H_L J v (+ the L2 penalties' λ/n) at θ; one forward pass, reused."""
        if type(self.output) is not self.cost.cancels_with:
            raise ConfigError(
                f"Gauss–Newton products need a cost matched to the output activation "
                f"(sigmoid + cross-entropy, softmax + log-likelihood, linear + quadratic); "
                f"got {self.cost.name} with {type(self.output).__name__}")
        net = self.net
        set_flat(net, theta)
        inputs, caches = [], []
        x = self.x
        for layer in net.layers:
            inputs.append(x)
            x, cache = layer.forward(x)
            caches.append(cache)
        out_cache = caches[-1] if self.start < len(net.layers) else None
        penalty_diag = self._penalty_curvature()

        def product(v):
            self.n_products += 1
            set_flat(net, theta)          # the caches belong to θ, whatever ran in between
            jv = self._r_forward(inputs, caches, unflatten(net, np.asarray(v)))
            u = self.output.backward(jv, out_cache) / self.n      # H_L J v (σ′ of δᴸ = a − y)
            net.zero_grads()
            net.backward(u, caches, start=self.start)              # Jᵀ (H_L J v)
            gv = flat_grads(net)
            net.zero_grads()
            return gv + penalty_diag * v

        return product

    def _r_forward(self, inputs, caches, directions):
        """J v: the forward-mode derivative R{zᴸ} of the output pre-activation along v.

        Dense: R{z} = R{x} W + x V_W + V_b. Element-wise activations and dropout have
        diagonal Jacobians (softmax a symmetric one), so R{a} is their own backward
        applied to R{z}.
        """
        by_param = dict(zip([(id(layer), name) for layer, name in self.net.parameters()],
                            directions))
        r = None                                       # the input does not depend on θ
        for layer, x, cache in zip(self.net.layers[:self.start], inputs, caches):
            if isinstance(layer, Dense):
                vw, vb = by_param[(id(layer), "W")], by_param[(id(layer), "b")]
                rz = x @ vw + vb
                r = rz if r is None else rz + r @ layer.params["W"]
            elif isinstance(layer, (Activation, Dropout)) and not layer.params:
                r = None if r is None else layer.backward(r, cache)
            else:
                raise ConfigError(f"Gauss–Newton products are implemented for Dense, "
                                  f"activation and dropout layers, not {type(layer).__name__}")
        return r

    def _penalty_curvature(self) -> np.ndarray:
        """The diagonal of the penalties' Hessian: λ/n on L2-penalised weights (L1: 0)."""
        diag = np.zeros(self.size)
        for penalty in self.penalties:
            if penalty.name == "l1":
                continue                          # |w| has no curvature away from 0
            if penalty.name != "l2":
                raise ConfigError(f"no curvature known for penalty {penalty.name!r}")
            net = self.net
            saved = get_flat(net)
            set_flat(net, np.ones(self.size))     # ∂(λ/2n Σw²)/∂w at w = 1 is λ/n
            for layer, name in net.parameters():
                layer.grads[name] = net.backend.xp.zeros_like(layer.params[name])
            penalty.add_gradient(net, self.n_train)
            diag += flat_grads(net)
            net.zero_grads()
            set_flat(net, saved)
        return diag
