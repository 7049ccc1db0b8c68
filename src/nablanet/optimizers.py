"""First-order optimisers: they update ``layer.params`` in place from ``layer.grads``.

Each reads the learning rate η from ``self.eta`` at every step, so a schedule can
change it between epochs. Per-parameter state (velocities, running averages) is
kept in lists aligned with ``net.parameters()`` and exposed by ``state_dict`` so a
checkpoint resumes a run bit for bit. Gradients are means over the mini-batch
(the cost folds in 1/m), so η means what it means in the lectures.
"""
from __future__ import annotations

import weakref

import numpy as np

from .backend import axpy, to_host, xp_of
from .errors import ConfigError, ModelFileError
from .gpu_kernels import kernel, on_gpu
from .utils.state import number, whole_number


class Optimizer:
    name = ""
    #: names of the per-parameter state arrays this optimiser keeps
    slots: tuple[str, ...] = ()

    def __init__(self, eta: float):
        self.eta = number(eta, "eta", positive=True, error=ConfigError)
        self.t = 0                                 # steps taken (Adam's bias correction)
        self.state: dict[str, list] = {s: [] for s in self.slots}
        self._net = None                           # weakref to the net the steps were for

    def attach(self, net) -> None:
        """Bind to the net a trainer steps; refuse one that has stepped another net.

        Its state (velocities, Adam's moments and step count t, η after a schedule) is
        per parameter of that net: reused on a second net it would carry on from the
        first one's, silently when the shapes agree. Called once, by ``Trainer``.
        """
        owner = self._net() if self._net is not None else None
        if self.t and owner is not net:
            raise ConfigError(f"this {type(self).__name__} optimizer has already taken "
                              f"{self.t} steps for another net; give each net its own "
                              "optimizer")
        self._net = weakref.ref(net)

    def step(self, net) -> None:
        """One update of every parameter that received a gradient."""
        self.t += 1
        for i, (layer, name) in enumerate(net.parameters()):
            g = layer.grads[name]
            if g is not None:
                self.update(i, layer.params[name], g)

    def update(self, i: int, p, g) -> None:
        raise NotImplementedError

    def _slot(self, slot: str, i: int, like):
        """The state array ``slot`` for parameter i, created as zeros on first use."""
        arrays = self.state[slot]
        while len(arrays) <= i:
            arrays.append(None)
        if arrays[i] is None:
            arrays[i] = xp_of(like).zeros_like(like)
        return arrays[i]

    # -- checkpointing -------------------------------------------------------------
    def config(self) -> dict:
        return {"name": self.name, "eta": self.eta}

    def state_dict(self) -> tuple[dict, dict]:
        """(scalars, arrays): JSON-able scalars and host arrays named 'slot.i'.

        The arrays are copies: the live state keeps changing in place after the snapshot.
        """
        arrays = {f"{slot}.{i}": to_host(a).copy() for slot, lst in self.state.items()
                  for i, a in enumerate(lst) if a is not None}
        return {"t": self.t, "eta": self.eta}, arrays

    def load_state_dict(self, scalars: dict, arrays: dict, backend, shapes=None) -> None:
        """Restore :meth:`state_dict`; ``shapes`` (the parameters', in order) checks that
        every array is a slot of this optimiser for a parameter of its shape, and that
        after a step every parameter has all its slots."""
        self.t = whole_number(scalars["t"], "t")
        # 0 is where a cosine schedule ends its last epoch
        self.eta = number(scalars["eta"], "eta", non_negative=True)
        self.state = {s: [] for s in self.slots}
        for key, value in arrays.items():
            slot, _, i = key.rpartition(".")
            if slot not in self.state or not i.isdigit() or shapes is not None and (
                    int(i) >= len(shapes) or value.shape != tuple(shapes[int(i)])):
                raise ModelFileError(f"{self.name} state {key!r} of shape {value.shape} "
                                     "matches no parameter of the net")
            # The slots are updated in place in the net's float type: an integer one fails
            # mid-epoch, another float type or an infinity resumes a different run.
            if value.dtype != np.dtype(backend.dtype) or not np.isfinite(value).all():
                raise ModelFileError(f"{self.name} state {key!r} must hold finite "
                                     f"{np.dtype(backend.dtype)} numbers, got {value.dtype}"
                                     f"{'' if np.isfinite(value).all() else ' with NaN or inf'}")
            lst = self.state[slot]
            while len(lst) <= int(i):
                lst.append(None)
            lst[int(i)] = backend.xp.array(value)     # a copy: updated in place
        if shapes is not None and self.t:
            # Every step updates every parameter of a trained net, so each one has its
            # slots; a missing array would restart from zeros (Adam's moments, a velocity)
            # and the resumed run would silently part from the uninterrupted one.
            missing = [f"{slot}.{i}" for slot, lst in self.state.items()
                       for i in range(len(shapes)) if i >= len(lst) or lst[i] is None]
            if missing:
                raise ModelFileError(f"{self.name} state at step {self.t} lacks "
                                     f"{', '.join(missing)}")


class SGD(Optimizer):
    """w ← w − η ∂C/∂w (online with batch size 1, mini-batch, or full batch)."""

    name = "sgd"

    def update(self, i, p, g):
        axpy(-self.eta, g, p)


class Momentum(Optimizer):
    """Classical momentum:  v ← μv − η∇C;  w ← w + v."""

    name = "momentum"
    slots = ("velocity",)

    def __init__(self, eta: float, momentum: float = 0.9):
        super().__init__(eta)
        momentum = number(momentum, "momentum", error=ConfigError)
        if not 0 <= momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = float(momentum)

    def config(self):
        return {**super().config(), "momentum": self.momentum}

    def update(self, i, p, g):
        v = self._slot("velocity", i, p)
        if on_gpu(p):                 # the same update in one kernel (gpu_kernels.py)
            kernel("momentum")(g, self.momentum, self.eta, p, v)
            return
        v *= self.momentum
        axpy(-self.eta, g, v)
        axpy(1.0, v, p)


class Nesterov(Momentum):
    """Nesterov momentum: take the gradient after the momentum jump.

    In the form that keeps w at the look-ahead point (Sutskever et al. 2013):
        v ← μv − η∇C(w);  w ← w + μv − η∇C(w).
    """

    name = "nesterov"

    def update(self, i, p, g):
        v = self._slot("velocity", i, p)
        if on_gpu(p):
            kernel("nesterov")(g, self.momentum, self.eta, p, v)
            return
        v *= self.momentum
        v -= self.eta * g
        p += self.momentum * v - self.eta * g


class AdaGrad(Optimizer):
    """G ← G + g²;  w ← w − η g / (√G + ε)  (ε outside the root, as in the paper)."""

    name = "adagrad"
    slots = ("sum_sq",)

    def __init__(self, eta: float = 0.01, eps: float = 1e-8):
        super().__init__(eta)
        _check_eps(eps)
        self.eps = float(eps)

    def config(self):
        return {**super().config(), "eps": self.eps}

    def update(self, i, p, g):
        s = self._slot("sum_sq", i, p)
        if on_gpu(p):
            kernel("adagrad")(g, self.eta, self.eps, p, s)
            return
        s += g * g
        p -= self.eta * g / (_sqrt(s) + self.eps)


class RMSprop(Optimizer):
    """E ← ρE + (1 − ρ)g²;  w ← w − η g / (√E + ε)  (Hinton, lecture 6e)."""

    name = "rmsprop"
    slots = ("mean_sq",)

    def __init__(self, eta: float = 0.001, rho: float = 0.9, eps: float = 1e-8):
        super().__init__(eta)
        rho = number(rho, "rho", error=ConfigError)
        if not 0 <= rho < 1:
            raise ConfigError(f"RMSprop's rho must be in [0, 1), got {rho}")
        _check_eps(eps)
        self.rho, self.eps = float(rho), float(eps)

    def config(self):
        return {**super().config(), "rho": self.rho, "eps": self.eps}

    def update(self, i, p, g):
        e = self._slot("mean_sq", i, p)
        if on_gpu(p):
            kernel("rmsprop")(g, self.rho, 1 - self.rho, self.eta, self.eps, p, e)
            return
        e *= self.rho
        e += (1 - self.rho) * g * g
        p -= self.eta * g / (_sqrt(e) + self.eps)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015):
        m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²
        w ← w − η m̂ / (√v̂ + ε),  m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ).
    """

    name = "adam"
    slots = ("m", "v")

    def __init__(self, eta: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8):
        super().__init__(eta)
        beta1, beta2 = (number(b, key, error=ConfigError)
                        for key, b in (("beta1", beta1), ("beta2", beta2)))
        # β = 1 divides by 1 − βᵗ = 0 at the first step; β > 1 makes v negative
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ConfigError(f"Adam's beta1 and beta2 must be in [0, 1), got "
                              f"beta1={beta1}, beta2={beta2}")
        _check_eps(eps)
        self.beta1, self.beta2, self.eps = beta1, beta2, float(eps)

    def config(self):
        return {**super().config(), "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def update(self, i, p, g):
        m, v = self._slot("m", i, p), self._slot("v", i, p)
        m_hat_scale = 1.0 / (1 - self.beta1 ** self.t)
        v_hat_scale = 1.0 / (1 - self.beta2 ** self.t)
        if on_gpu(p):
            kernel("adam")(g, self.beta1, 1 - self.beta1, self.beta2, 1 - self.beta2,
                           self.eta * m_hat_scale, v_hat_scale, self.eps, p, m, v)
            return
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * g * g
        p -= (self.eta * m_hat_scale) * m / (_sqrt(v * v_hat_scale) + self.eps)


def _check_eps(eps) -> None:
    """ε keeps g / (√s + ε) finite where s is 0; ε ≤ 0 divides by zero there."""
    number(eps, "eps", positive=True, error=ConfigError)


def _sqrt(a):
    return a ** 0.5


OPTIMIZERS: dict[str, type[Optimizer]] = {
    c.name: c for c in (SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam)}


def get_optimizer(name: str, eta: float, **kwargs) -> Optimizer:
    """Build an optimiser by name; keyword arguments it does not take are an error."""
    try:
        cls = OPTIMIZERS[name]
    except KeyError:
        raise ConfigError(
            f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}") from None
    try:
        return cls(eta, **{k: v for k, v in kwargs.items() if v is not None})
    except TypeError as exc:
        raise ConfigError(f"optimizer {name!r}: {exc}") from None
