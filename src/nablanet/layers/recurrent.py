"""The time loop shared by every recurrent layer (lecture 7: backpropagation through time).

A recurrent layer is one feed-forward layer applied at every time step with the same
weights; unrolled over T steps it is a T-layer net whose layers share weights, so BPTT
is ordinary backprop through the unrolled net with the weight gradients *summed over
time steps* (the lectures' rule for tied weights: use ∂E/∂w₁ + ∂E/∂w₂ for both).

Shapes: inputs x are (batch, time, features), outputs (batch, time, hidden) — one output
per step (sequence to sequence; :class:`~nablanet.layers.sequence.LastStep` picks the last
for sequence to one). The gates of a unit family are stacked into one weight matrix, so
each step costs

* for the input part nothing: x W + b for *all* steps is one GEMM before the loop,
* for the recurrent part one GEMM, h_{t−1} U,

and the backward pass mirrors it: one GEMM per step back through U, and after the loop
∂C/∂W = Xᵀ δ, ∂C/∂U = H_{prev}ᵀ δ_rec and ∂C/∂x = δ Wᵀ over all steps at once. The time
loop is the only Python loop; everything inside it is vectorised over the batch.

Initial states (h₀, and c₀ for an LSTM) are, in order of precedence:

* **carried** — ``layer.state`` holds the final state of the previous call (set it, or
  let a ``stateful`` layer store it). The gradient is cut there: this is truncated BPTT,
  carry the state across chunks of k steps, backpropagate only within a chunk;
* **learned** — ``initial_state="learned"``: h₀ is a parameter (the lectures' "irritating
  extra issue": specify the initial states of all units and learn them like weights,
  from the gradient reaching them at t = 0, summed over the batch);
* **zeros** — ``initial_state="zeros"`` (the default).
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import Any, ClassVar, NamedTuple

import numpy as np

from ..data.sequences import stack_sequences
from ..errors import ConfigError, DataError
from ..init import initializer
from ..utils.blas import limited
from .base import Layer, every_layer, is_size

INITIAL_STATES = ("zeros", "learned")

#: BLAS threads inside the time loop (None: leave BLAS alone). A step's GEMMs are small
#: (batch × hidden), and on a busy machine BLAS threads that wait for each other at every
#: step cost far more than they save: an LSTM training step (hidden 256, batch 32, 100
#: steps) took 5.2 s with 2 OpenBLAS threads and 0.18 s with 1, at load 11 on 2 cores.
#: The big GEMMs before and after the loop keep every thread.
LOOP_BLAS_THREADS: int | None = 1


class ScanCache(NamedTuple):
    """What backward needs: time-major inputs, every step's output, the initial state."""

    X: Any                  # (T, B, F) inputs, time-major
    H: Any                  # (T + 1, B, H) hidden states h₀..h_T
    state0: tuple           # initial state arrays, (B, H) each
    learned: bool           # True when state0 came from the learned parameters
    steps: Any              # what the subclass's own backward needs


class Recurrent(Layer):
    """Base class: stacked gate weights W (n_in, G·H), U (H, G·H), b (G·H,).

    Subclasses set ``n_gates`` (G) and ``state_names`` and write the two loops,
    :meth:`_scan` (forward over time) and :meth:`_scan_back` (backward over time).
    """

    n_gates: ClassVar[int] = 1
    state_names: ClassVar[tuple[str, ...]] = ("h",)
    regularized = ("W", "U")

    def __init__(self, n_in: int | None = None, n_hidden: int | None = None,
                 initial_state: str = "zeros", init: str = "glorot",
                 need_input_grad: bool = True):
        super().__init__()
        if n_hidden is None:
            raise ConfigError(f"{type(self).__name__} needs n_hidden, its number of units "
                              "(n_in may be left out: it is the width of the input)")
        if not is_size(n_hidden) or (n_in is not None and not is_size(n_in)):
            raise ConfigError(f"{type(self).__name__} needs positive whole-number sizes, got "
                              f"n_in={n_in!r}, n_hidden={n_hidden!r}")
        if initial_state not in INITIAL_STATES:
            raise ConfigError(f"initial_state must be one of {', '.join(INITIAL_STATES)}, "
                              f"got {initial_state!r}")
        initializer(init)                       # fail early on an unknown name
        self.n_in = None if n_in is None else int(n_in)
        self.n_hidden = int(n_hidden)
        self.initial_state = initial_state
        self.init = init
        self.need_input_grad = need_input_grad
        #: the carried initial state of the next call (a tuple, one (B, H) array per name)
        self.state: tuple | None = None
        #: when True, every forward pass stores its final state in ``self.state``
        self.stateful = False

    # -- construction ---------------------------------------------------------------
    def build(self, input_shape, backend, rng):
        self.backend = backend
        if len(input_shape) != 2:
            raise ConfigError(f"{type(self).__name__} expects (time, features) per example, "
                              f"got {tuple(input_shape)}")
        n_in = int(input_shape[-1])
        if self.n_in is not None and self.n_in != n_in:
            raise ConfigError(f"{type(self).__name__}({self.n_in}, {self.n_hidden}) cannot "
                              f"take {n_in} input features")
        self.n_in = n_in
        weights, _ = initializer(self.init)
        g, h = self.n_gates, self.n_hidden
        # fan_out is one gate's width: each gate is its own layer of H units.
        params = {"W": weights((n_in, g * h), n_in, h, rng),
                  "U": weights((h, g * h), h, h, rng),
                  "b": self._initial_bias()}
        params.update(self._extra_params())
        if self.initial_state == "learned":
            params.update({f"{name}0": np.zeros(h) for name in self.state_names})
        self.set_params(**params)
        return (input_shape[0], h)

    def _initial_bias(self) -> np.ndarray:
        return np.zeros(self.n_gates * self.n_hidden)

    def _extra_params(self) -> dict:
        return {}

    def config(self):
        return {"n_in": self.n_in, "n_hidden": self.n_hidden,
                "initial_state": self.initial_state, "init": self.init}

    def reset_state(self) -> None:
        """Forget the carried state: the next call starts from h₀ (learned or zeros)."""
        self.state = None

    # -- the contract -----------------------------------------------------------------
    def forward(self, x, train=False):
        x = self._check_input(x)
        xp = self.backend.xp
        b, t, f = x.shape
        X = xp.ascontiguousarray(x.transpose(1, 0, 2))          # time-major: Z[t] contiguous
        Z = X.reshape(t * b, f) @ self.params["W"]               # x W for every step: one GEMM
        Z += self.params["b"]
        state0, learned = self._initial_states(b)
        # h₀ stored in front of h₁..h_T: then ∂C/∂U = Σ_t h_{t−1}ᵀ δ_t is one GEMM
        H = xp.empty((t + 1, b, self.n_hidden), dtype=Z.dtype)
        H[0] = state0[0]
        with loop_threads(xp):
            final, steps = self._scan(Z.reshape(t, b, -1), state0, H)
        if self.stateful:
            self.state = tuple(s.copy() for s in final)
        return H[1:].transpose(1, 0, 2), ScanCache(X, H, state0, learned, steps)

    def backward(self, dy, cache: ScanCache):
        xp = self.backend.xp
        X, H = cache.X, cache.H
        t, b, f = X.shape
        dY = dy.transpose(1, 0, 2)                               # (T, B, H) view
        with loop_threads(xp):
            dZ, dZ_rec, dstate0 = self._scan_back(dY, cache)
        gh = dZ.shape[-1]
        flat = dZ.reshape(t * b, gh)
        flat_rec = dZ_rec.reshape(t * b, gh)
        # ∂C/∂W, ∂C/∂b: summed over every step (tied weights); ∂C/∂U pairs δ_rec(t) with h_{t−1}.
        self.accumulate_matmul("W", X.reshape(t * b, f).T, flat)
        self.accumulate("b", flat.sum(axis=0))
        self.accumulate_matmul("U", H[:-1].reshape(t * b, -1).T, flat_rec)
        self._accumulate_extra(dZ, dZ_rec)
        if cache.learned:
            for name, d in zip(self.state_names, dstate0):
                self.accumulate(f"{name}0", d.sum(axis=0))
        if not self.need_input_grad:
            return None
        dx = (flat @ self.params["W"].T).reshape(t, b, f)
        return dx.transpose(1, 0, 2)

    # -- subclass hooks -------------------------------------------------------------------
    def _scan(self, Z, state0, H):
        """Forward over time. Z (T, B, G·H) holds x W + b; H[0] holds h₀ and step t writes
        h_{t+1} into H[t + 1]. Returns (final state, what the backward pass needs)."""
        raise NotImplementedError

    def _scan_back(self, dY, cache):
        """Backward over time: (δ for W and b, δ for U, ∂C/∂(initial state)).

        H = cache.H holds h₀..h_T, so step t reads h_{t−1} = H[t] and h_t = H[t + 1]."""
        raise NotImplementedError

    def _accumulate_extra(self, dZ, dZ_rec) -> None:
        """Gradients of parameters beyond W, U, b (the GRU's b_hn)."""

    # -- helpers ----------------------------------------------------------------------------
    def _check_input(self, x):
        if not hasattr(x, "ndim"):                  # a list of sequences: check, then stack
            x = self.backend.asarray(stack_sequences(x))
        if x.ndim != 3:
            raise DataError(f"{type(self).__name__} expects inputs of shape (batch, time, "
                            f"features), got shape {tuple(x.shape)}")
        if x.shape[-1] != self.n_in:
            raise DataError(f"{type(self).__name__} expects {self.n_in} features per step, "
                            f"got {x.shape[-1]}")
        if x.shape[1] == 0:
            raise DataError(f"{type(self).__name__}: sequences have no time steps")
        return x

    def _initial_states(self, batch: int) -> tuple[tuple, bool]:
        xp, h = self.backend.xp, self.n_hidden
        if self.state is not None:
            if len(self.state) != len(self.state_names) or any(
                    s.shape != (batch, h) for s in self.state):
                shapes = [tuple(s.shape) for s in self.state]
                raise DataError(f"{type(self).__name__}: carried state has shapes {shapes}, "
                                f"this batch needs ({batch}, {h}); call reset_state() when "
                                "the batch size changes")
            return tuple(self.state), False
        dtype = self.backend.dtype
        if self.initial_state == "learned":
            states = []
            for name in self.state_names:
                s = xp.empty((batch, h), dtype=dtype)
                s[...] = self.params[f"{name}0"]
                states.append(s)
            return tuple(states), True
        return tuple(xp.zeros((batch, h), dtype=dtype) for _ in self.state_names), False


def sigmoid_inplace(xp, z) -> None:
    """z ← σ(z) = ½ tanh(z/2) + ½, in place (never overflows; one vectorised tanh)."""
    z *= 0.5
    xp.tanh(z, out=z)
    z *= 0.5
    z += 0.5


def loop_threads(xp):
    """A context limiting the BLAS to :data:`LOOP_BLAS_THREADS` (needs threadpoolctl)."""
    if xp is not np or not LOOP_BLAS_THREADS:
        return nullcontext()
    return limited(LOOP_BLAS_THREADS)


def recurrent_layers(net) -> list[Recurrent]:
    """Every recurrent layer of ``net``, those inside branching blocks too."""
    return [layer for layer in every_layer(net.layers) if isinstance(layer, Recurrent)]


def reset_states(net) -> None:
    """Forget the carried state of every recurrent layer of ``net``."""
    for layer in recurrent_layers(net):
        layer.reset_state()


def set_stateful(net, stateful: bool = True) -> None:
    """Make every recurrent layer of ``net`` carry its final state into the next call."""
    for layer in recurrent_layers(net):
        layer.stateful = bool(stateful)
