"""Echo-state networks (Jaeger 2001; lecture 8c: "echo state networks").

Fix the input→hidden and hidden→hidden weights at random and learn only the
hidden→output weights; with linear output units that is a linear regression, solved
in closed form. The random weights must be set carefully (the lecture's three knobs):

* the **spectral radius** ρ of the reservoir W (its largest |eigenvalue|): ρ ≈ 1 keeps
  the length of the activity vector about the same from step to step, so inputs
  "echo" for a long time without blowing up; ρ < 1 makes the echoes fade (the echo-state
  property: the state forgets where it started);
* the **input scaling** (how hard the inputs drive the reservoir: small keeps the
  tanh units linear, large makes them binary);
* **sparse** reservoir connectivity (``density``), so the net has many loosely coupled
  oscillators;

plus a **leak rate** α (leaky-integrator units: the state moves only a fraction α of the
way to its new value each step, slowing the reservoir's own time scale):

    x_t = (1 − α) x_{t−1} + α tanh([1, u_t] W_in + x_{t−1} W)
    y_t = [1, u_t, x_t] W_out

W_out minimises ‖F W_out − Y‖² + λ‖W_out‖² over the states F collected after a washout
(ridge regression): W_out = (FᵀF + λI)⁻¹ FᵀY, one symmetric positive-definite solve.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from ..backend import Backend, get_backend, make_rng, to_host
from ..errors import ConfigError, DataError
from ..utils.state import number, whole_number


class EchoStateNetwork:
    """An echo-state network with a ridge-regression readout (scikit-learn style).

    ``fit(u, y)`` and ``predict(u)`` take one sequence (T, n_in) or a batch of sequences
    (B, T, n_in) (all run in parallel, vectorised over the batch); targets y have the
    matching (T, n_out) or (B, T, n_out) shape. Fitted attributes end in ``_``.
    """

    def __init__(self, n_reservoir: int = 200, *, spectral_radius: float = 0.9,
                 input_scaling: float = 1.0, leak_rate: float = 1.0, density: float = 0.1,
                 ridge: float = 1e-6, washout: int = 100, backend: Backend | None = None,
                 rng=None):
        self.n_reservoir = n_reservoir
        self.spectral_radius = spectral_radius
        self.input_scaling = input_scaling
        self.leak_rate = leak_rate
        self.density = density
        self.ridge = ridge
        self.washout = washout
        self.backend = backend
        self.rng = rng
        self._check_settings()

    def _check_settings(self) -> None:
        # whole_number/number first: int() cut n_reservoir=2.5 to 2, and None or a string
        # failed in the comparisons below with a TypeError
        whole_number(self.n_reservoir, "n_reservoir", 1, error=ConfigError)
        whole_number(self.washout, "washout", 0, error=ConfigError)
        for key in ("spectral_radius", "input_scaling", "leak_rate", "density", "ridge"):
            number(getattr(self, key), key, error=ConfigError)
        if not self.spectral_radius > 0:
            raise ConfigError(f"spectral_radius must be > 0, got {self.spectral_radius}")
        if not self.input_scaling >= 0:
            raise ConfigError(f"input_scaling must be ≥ 0, got {self.input_scaling}")
        if not 0 < self.leak_rate <= 1:
            raise ConfigError(f"leak_rate must be in (0, 1], got {self.leak_rate}")
        if not 0 < self.density <= 1:
            raise ConfigError(f"density must be in (0, 1], got {self.density}")
        if not self.ridge >= 0:
            raise ConfigError(f"ridge (λ) must be ≥ 0, got {self.ridge}")

    # -- the fixed random part ----------------------------------------------------------
    def _init_reservoir(self, n_inputs: int) -> None:
        """Draw W_in and the sparse W, then rescale W to the chosen spectral radius."""
        rng = make_rng(self.rng)
        n = int(self.n_reservoir)
        self.backend_ = self.backend or get_backend("cpu", "float64")
        w_in = rng.uniform(-1, 1, (1 + n_inputs, n)) * self.input_scaling   # row 0: bias
        w = rng.standard_normal((n, n)) * (rng.random((n, n)) < self.density)
        radius = float(np.abs(scipy.linalg.eigvals(w)).max())
        if radius == 0:
            raise ConfigError("the random reservoir has spectral radius 0 (too sparse); "
                              "raise density or n_reservoir")
        w *= self.spectral_radius / radius
        self.n_inputs_ = n_inputs
        self.W_in_ = self.backend_.asarray(w_in)
        self.W_ = self.backend_.asarray(w)

    def states(self, u, x0=None):
        """Reservoir states x_1..x_T (B, T, N) for inputs u (B, T, n_in), starting at x0."""
        xp = self.backend_.xp
        batch, n_steps, _ = u.shape
        n = int(self.n_reservoir)
        alpha = float(self.leak_rate)
        # [1, u_t] W_in for every step at once: one GEMM before the time loop
        drive = u.reshape(batch * n_steps, -1) @ self.W_in_[1:] + self.W_in_[0]
        drive = drive.reshape(batch, n_steps, n)
        out = xp.empty((batch, n_steps, n), dtype=drive.dtype)
        x = xp.zeros((batch, n), dtype=drive.dtype) if x0 is None else x0
        for t in range(n_steps):
            new = xp.tanh(drive[:, t] + x @ self.W_)
            x = (1 - alpha) * x + alpha * new if alpha < 1 else new
            out[:, t] = x
        return out

    # -- the learned part ------------------------------------------------------------------
    def fit(self, u, y) -> "EchoStateNetwork":
        """Run the reservoir over u, drop the washout, solve the ridge regression for W_out."""
        self._check_settings()
        u_np, _ = _as_batch(u, "u")
        y_np, _ = _as_batch(y, "y")
        if y_np.shape[:2] != u_np.shape[:2]:
            raise DataError(f"u has (batch, time) {u_np.shape[:2]} but y has {y_np.shape[:2]}")
        if u_np.shape[1] <= int(self.washout):
            raise DataError(f"sequences of {u_np.shape[1]} steps leave nothing after a washout "
                            f"of {self.washout}; use longer sequences or a shorter washout")
        self._init_reservoir(u_np.shape[2])
        xp = self.backend_.xp
        u_dev, y_dev = self.backend_.asarray(u_np), self.backend_.asarray(y_np)
        features = self._features(u_dev, self.states(u_dev))[:, int(self.washout):]
        f = features.reshape(-1, features.shape[-1])
        targets = y_dev[:, int(self.washout):].reshape(-1, y_np.shape[2])
        gram = to_host(f.T @ f).astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.ridge
        rhs = to_host(f.T @ targets).astype(np.float64)
        try:
            w_out = scipy.linalg.solve(gram, rhs, assume_a="pos")
        except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
            w_out = scipy.linalg.lstsq(gram, rhs)[0]     # λ = 0 with collinear states
        self.W_out_ = xp.asarray(w_out, dtype=features.dtype)
        self.n_outputs_ = y_np.shape[2]
        return self

    def predict(self, u, x0=None) -> np.ndarray:
        """Outputs y_t for every step of u (the first ``washout`` steps are transients)."""
        self._require_fitted()
        u_np, squeeze = _as_batch(u, "u")
        if u_np.shape[2] != self.n_inputs_:
            raise DataError(f"the network was fitted on {self.n_inputs_} inputs, got {u_np.shape[2]}")
        if x0 is not None:
            x0 = self.backend_.asarray(self._start_state(x0, len(u_np)))
        u_dev = self.backend_.asarray(u_np)
        y = to_host(self._features(u_dev, self.states(u_dev, x0)) @ self.W_out_)
        return y[0] if squeeze else y

    def generate(self, prime, n_steps: int) -> np.ndarray:
        """Closed loop: read ``prime`` (T₀, n_in), then feed each output back as the next input.

        Needs n_outputs = n_inputs (one-step-ahead prediction of a signal).
        """
        self._require_fitted()
        n_steps = whole_number(n_steps, "n_steps", 1, error=ConfigError)
        if self.n_outputs_ != self.n_inputs_:
            raise ConfigError("generate() feeds outputs back as inputs: n_outputs must equal "
                              f"n_inputs (got {self.n_outputs_} and {self.n_inputs_})")
        prime_np, _ = _as_batch(prime, "prime")
        xp = self.backend_.xp
        u = self.backend_.asarray(prime_np)
        x = self.states(u)[:, -1]
        y = self._features(u[:, -1:], x[:, None])[:, 0] @ self.W_out_
        out = []
        for _ in range(n_steps):
            out.append(y)
            x = self.states(y[:, None], x)[:, -1]
            y = self._features(y[:, None], x[:, None])[:, 0] @ self.W_out_
        return to_host(xp.stack(out, axis=1))[0]

    def _features(self, u, states):
        """[1, u_t, x_t] for every step (the readout's inputs)."""
        xp = self.backend_.xp
        ones = xp.ones(u.shape[:2] + (1,), dtype=states.dtype)
        return xp.concatenate([ones, u.astype(states.dtype), states], axis=-1)

    def _start_state(self, x0, batch: int) -> np.ndarray:
        """``x0`` as the reservoir's starting state: N numbers, or one row of N per sequence."""
        x0 = np.asarray(x0)
        n = int(self.n_reservoir)
        if x0.dtype.kind not in "biuf" or x0.shape not in ((n,), (batch, n)):
            raise DataError(f"x0 must be a reservoir state of {n} numbers (or {batch} × {n}), "
                            f"got shape {x0.shape}, dtype {x0.dtype}")
        if not np.isfinite(x0).all():
            raise DataError("x0 contains NaN or inf")
        return x0.astype(np.float64, copy=False)

    def _require_fitted(self) -> None:
        if not hasattr(self, "W_out_"):
            raise ConfigError("this EchoStateNetwork is not fitted yet; call fit(u, y) first")


def nrmse(y, target) -> float:
    """Normalised root-mean-square error √(mean (y − t)²) / std(t): 0 perfect, 1 = guessing the mean."""
    y, target = np.asarray(y, dtype=np.float64), np.asarray(target, dtype=np.float64)
    return float(np.sqrt(np.mean((y - target) ** 2)) / np.std(target))


def _as_batch(a, name: str) -> tuple[np.ndarray, bool]:
    """(B, T, d) float array from (T,), (T, d) or (B, T, d); True when a batch axis was added."""
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise DataError(f"{name} must be numeric, got dtype {a.dtype}")
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim == 2:
        a, squeeze = a[None], True
    elif a.ndim == 3:
        squeeze = False
    else:
        raise DataError(f"{name} must be (time,), (time, d) or (batch, time, d), got {a.shape}")
    if a.shape[1] == 0:
        raise DataError(f"{name} has no time steps")
    if not np.isfinite(a).all():
        raise DataError(f"{name} contains NaN or inf")
    return a.astype(np.float64, copy=False), squeeze
