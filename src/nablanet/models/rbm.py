"""Restricted Boltzmann machines trained by contrastive divergence (Hinton 2002).

Visible units v (binary pixels, or Gaussian real values), hidden units h (binary,
or Gaussian linear units for the code layer of a deep autoencoder), weights W
(n_visible × n_hidden), visible biases a and hidden biases b:

    E(v, h) = Σᵢ e_v(vᵢ) + Σⱼ e_h(hⱼ) − aᵀv − bᵀh − vᵀWh
    F(v)    = −log Σ_h e^{−E(v,h)} = Σᵢ e_v(vᵢ) − aᵀv − Σⱼ log Σ_{hⱼ} e^{hⱼ(bⱼ + vᵀW·ⱼ) − e_h(hⱼ)}

where e(s) is 0 for binary units and s²/2 for Gaussian ones (:mod:`.units`); for
binary hidden units the last sum is Σⱼ softplus(bⱼ + vᵀW·ⱼ).

Learning follows the lecture's rule (Hinton, "A practical guide to training RBMs",
2010, §9–10), with learning rate ε, weight cost η and momentum ν:

    Δw(t) = ν Δw(t−1) + ε (⟨v hᵀ⟩_data − ⟨v hᵀ⟩_recon − η w)

The negative statistics come from a k-step Gibbs chain started at the data (CD-k)
or from persistent chains that are never reset (PCD, Tieleman 2008). One CD-1
step is four matrix products: up (v₀W), down (h₀Wᵀ), up (v₁W) and a single product
Vᵀ H that yields ⟨v hᵀ⟩_data − ⟨v hᵀ⟩_recon at once, because the positive and
negative states are stacked in one buffer V = [v₀; v₁] and H = [p₀/m; −p₁/m].
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from ..backend import Backend, device_rng, get_backend, make_rng, to_host
from ..data.dataset import check_values
from ..errors import ConfigError, DataError, DivergenceError
from ..init import claim_parameters
from ..layers.base import is_size
from ..training.history import History
from ..utils.state import number, whole_number
from .units import SoftmaxGroup, get_units

MONITORS = ("reconstruction_error", "pseudo_log_likelihood")
_CHUNK = 2000


@dataclass(frozen=True)
class ContrastiveDivergence:
    """How an RBM is trained: CD-k or persistent CD, and the update rule's constants.

    ``learning_rate`` ε, ``weight_cost`` η (weights only, not biases) and
    ``momentum`` ν, which switches to ``final_momentum`` after
    ``momentum_switch`` epochs (0.5 → 0.9 after 5, as in Hinton's rbm.m).
    ``sample_visible``: draw binary reconstructions instead of using their
    probabilities (the guide's §3.2 uses probabilities); intermediate and
    persistent chains always sample, so they remain true Gibbs chains.
    ``n_chains``: the number of persistent chains (default: the batch size).
    ``clamp_labels``: keep an RBM's label units clamped in the negative phase (to
    the data's labels for CD-k, to each persistent chain's own label for PCD), so
    the statistics are those of log p(v | label) rather than log p(v, label): the
    class-conditional model that label-clamped generation samples from, whose
    negative phase visits the very modes such chains fall into.
    """

    k: int = 1
    persistent: bool = False
    learning_rate: float = 0.1
    weight_cost: float = 0.0002
    momentum: float = 0.5
    final_momentum: float = 0.9
    momentum_switch: int = 5
    batch_size: int = 100
    sample_visible: bool = False
    n_chains: int | None = None
    clamp_labels: bool = False

    def __post_init__(self):
        # whole_number, not int(): k = 2.5 passed int(k) ≥ 1 and failed in range() later
        if whole_number(self.k, "k", None, error=ConfigError) < 1:
            raise ConfigError(f"CD-k needs k ≥ 1, got {self.k}")
        check_update_rule(self.learning_rate, self.weight_cost, self.batch_size)
        for name in ("momentum", "final_momentum"):
            if not 0 <= number(getattr(self, name), name, error=ConfigError) < 1:
                raise ConfigError(f"{name} ν must be in [0, 1), got {getattr(self, name)}")
        whole_number(self.momentum_switch, "momentum_switch", error=ConfigError)
        if self.n_chains is not None:
            whole_number(self.n_chains, "n_chains", 1, error=ConfigError)

    def config(self) -> dict:
        return asdict(self)


def check_update_rule(learning_rate, weight_cost, batch_size) -> None:
    """The constants every RBM-style update rule shares: ε > 0, η ≥ 0, batches ≥ 1."""
    if not number(learning_rate, "learning_rate", error=ConfigError) > 0:
        raise ConfigError(f"learning rate ε must be > 0, got {learning_rate}")
    if number(weight_cost, "weight_cost", error=ConfigError) < 0:
        raise ConfigError(f"weight cost η must be ≥ 0, got {weight_cost}")
    if whole_number(batch_size, "batch_size", None, error=ConfigError) < 1:
        raise ConfigError(f"batch size must be ≥ 1, got {batch_size}")


class _Workspace:
    """Buffers reused by every CD step of one (positive, negative) batch size."""

    def __init__(self, xp, dtype, n_pos: int, n_neg: int, n_visible: int, n_hidden: int):
        self.V = xp.empty((n_pos + n_neg, n_visible), dtype=dtype)
        self.H = xp.empty((n_pos + n_neg, n_hidden), dtype=dtype)
        self.v_pos, self.v_neg = self.V[:n_pos], self.V[n_pos:]
        self.h_pos, self.h_neg = self.H[:n_pos], self.H[n_pos:]
        self.h_state = xp.empty((n_neg, n_hidden), dtype=dtype)
        self.v_mean = xp.empty((n_neg, n_visible), dtype=dtype)


class RBM:
    """A restricted Boltzmann machine on ``backend`` (float32 on the CPU by default).

    ``visible``/``hidden``: "binary" or "gaussian" units. ``n_labels``: the last
    ``n_labels`` visible units form one softmax group (the label units that
    Hinton, Osindero & Teh 2006 join to the top RBM of a deep belief net).
    Weights start as N(0, ``init_std``²), biases at zero (guide §8).
    """

    def __init__(self, n_visible: int, n_hidden: int, *, visible: str = "binary",
                 hidden: str = "binary", n_labels: int = 0, init_std: float = 0.01,
                 backend: Backend | None = None, rng=None):
        # is_size, not int(): int() cuts 2.5 to 2, reads "5" as 5 and fails on inf
        if not (is_size(n_visible) and is_size(n_hidden)):
            raise ConfigError(f"an RBM needs positive whole-number sizes, got {n_visible!r} "
                              f"visible and {n_hidden!r} hidden units")
        if isinstance(n_labels, bool) or not (is_size(n_labels) or n_labels == 0) \
                or not n_labels < n_visible:
            raise ConfigError(f"n_labels must be in [0, n_visible), got {n_labels}")
        if n_labels and visible != "binary":
            raise ConfigError("label units can only join binary visible units")
        self.n_visible, self.n_hidden, self.n_labels = int(n_visible), int(n_hidden), int(n_labels)
        self.visible, self.hidden = visible, hidden
        self.visible_units = get_units(visible, "visible")
        self.hidden_units = get_units(hidden, "hidden")
        self.label_units = SoftmaxGroup()
        self.backend = backend or get_backend()
        self.init_std = number(init_std, "init_std", non_negative=True, error=ConfigError)
        rng = make_rng(rng)
        xp, dtype = self.backend.xp, self.backend.dtype
        claim_parameters((self.n_visible, self.n_hidden))
        self.params = {
            "W": self.backend.asarray(rng.standard_normal((self.n_visible, self.n_hidden))
                                      * self.init_std),
            "b_visible": xp.zeros(self.n_visible, dtype=dtype),
            "b_hidden": xp.zeros(self.n_hidden, dtype=dtype),
        }
        self.velocity = {k: xp.zeros_like(v) for k, v in self.params.items()}
        self.grads = {k: xp.empty_like(v) for k, v in self.params.items()}
        self.chains = None                 # PCD: hidden states of the persistent chains
        self.chain_labels = None           # ... and their label units when clamped
        self.epochs_trained = 0
        self._workspaces: dict[tuple[int, int], _Workspace] = {}

    # -- parameters ---------------------------------------------------------------------
    @property
    def W(self):
        return self.params["W"]

    @property
    def b_visible(self):
        return self.params["b_visible"]

    @property
    def b_hidden(self):
        return self.params["b_hidden"]

    @property
    def n_pixels(self) -> int:
        """Visible units that are not label units."""
        return self.n_visible - self.n_labels

    def set_params(self, **arrays) -> None:
        """Install parameter arrays (shapes checked), e.g. loaded from a file."""
        for name, value in arrays.items():
            if name not in self.params:
                raise ConfigError(f"an RBM has no parameter {name!r}")
            if tuple(value.shape) != self.params[name].shape:
                raise ConfigError(f"{name} must have shape {self.params[name].shape}, "
                                  f"got {tuple(value.shape)}")
            self.params[name] = self.backend.asarray(value)
            self.velocity[name] = self.backend.xp.zeros_like(self.params[name])
        self.chains = self.chain_labels = None

    def config(self) -> dict:
        return {"n_visible": self.n_visible, "n_hidden": self.n_hidden, "visible": self.visible,
                "hidden": self.hidden, "n_labels": self.n_labels, "init_std": self.init_std}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"RBM({args})"

    # -- energies -------------------------------------------------------------------------
    def energy(self, v, h):
        """E(v, h) for each row pair (v, h)."""
        v, h = self.visible_input(v, "v"), self.backend.asarray(h)
        return (self.visible_units.self_energy(v[:, :self.n_pixels])
                + self.hidden_units.self_energy(h)
                - v @ self.b_visible - h @ self.b_hidden - ((v @ self.W) * h).sum(axis=1))

    def free_energy(self, v):
        """F(v) = −log Σ_h exp(−E(v, h)) for each row, so p(v) = e^{−F(v)} / Z."""
        v = self.visible_input(v, "v")
        return (self.visible_units.self_energy(v[:, :self.n_pixels]) - v @ self.b_visible
                - self.hidden_units.log_partition(v @ self.W + self.b_hidden))

    # -- conditionals (the two halves of a Gibbs step) ----------------------------------
    def hidden_mean(self, v, out=None):
        """E[h | v]: σ(b + vW) for binary units, b + vW for Gaussian ones."""
        out = self.backend.xp.matmul(v, self.W, out=out)
        out += self.b_hidden
        return self.hidden_units.mean(out)

    def visible_mean(self, h, out=None):
        """E[v | h]: σ(a + Whᵀ) (or a + Wh), a softmax over the label units."""
        out = self.backend.xp.matmul(h, self.W.T, out=out)
        out += self.b_visible
        self.visible_units.mean(out[:, :self.n_pixels] if self.n_labels else out)
        if self.n_labels:
            out[:, self.n_pixels:] = self.label_units.mean(out[:, self.n_pixels:])
        return out

    def sample_hidden(self, mean, rng, out=None):
        return self.hidden_units.sample(mean, rng, out)

    def sample_visible(self, mean, rng, out=None):
        if not self.n_labels:
            return self.visible_units.sample(mean, rng, out)
        out = mean if out is None else out
        p = self.n_pixels
        self.visible_units.sample(mean[:, :p], rng, out[:, :p])
        out[:, p:] = self.label_units.sample(mean[:, p:].copy(), rng)
        return out

    # -- data ----------------------------------------------------------------------------
    def prepare(self, x, *, binarize=False, probabilities: bool = False, rng=None,
                name: str = "data"):
        """Check ``x`` (n × n_visible) and move it to the backend.

        Binary visible units need values in {0, 1}. Anything else in [0, 1] is an
        error unless ``binarize`` (True or "threshold": v = x > ½; "sample": one
        draw v ~ Bernoulli(x), as Salakhutdinov & Murray 2008 binarise MNIST) or
        ``probabilities=True`` (use x as p(v = 1), as Hinton's code does for MNIST
        intensities and for the hidden probabilities fed to the next RBM of a stack).
        """
        xp = self.backend.xp
        x = self.visible_input(x, name)
        if binarize not in (False, True, "threshold", "sample"):
            raise ConfigError(f"binarize must be False, True, 'threshold' or 'sample', "
                              f"got {binarize!r}")
        if binarize and probabilities:
            raise ConfigError("choose binarize or probabilities, not both")
        if not bool(xp.isfinite(x).all()):
            raise DataError(f"{name}: contains NaN or infinite values")
        if self.visible != "binary":
            return x
        low, high = float(x.min()), float(x.max())
        if low < 0 or high > 1:
            raise DataError(f"{name}: binary visible units need values in [0, 1], got "
                            f"[{low:g}, {high:g}]; scale the data first")
        if binarize == "sample":
            draw = device_rng(self.backend, make_rng(rng))
            return (draw.random(x.shape, dtype=x.dtype) < x).astype(x.dtype)
        if binarize:
            return (x > 0.5).astype(x.dtype)
        if not probabilities and bool(((x != 0) & (x != 1)).any()):
            raise DataError(f"{name}: a Bernoulli RBM needs binary data (0/1) but got values "
                            f"in between; pass binarize=True (threshold at 0.5), "
                            f"binarize='sample', or probabilities=True")
        return x

    def visible_input(self, x, name: str = "data"):
        """``x`` (a Dataset, an array or nested lists) as an (n, n_visible) backend array.

        The shape check of every method that takes data: a single example (1-D) would
        otherwise broadcast into n_visible rows of nonsense, and a wrong width would
        surface as a matmul error.
        """
        x = getattr(x, "x", x)                   # a Dataset's inputs
        if not hasattr(x, "ndim"):
            x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.n_visible:
            hint = "; one example v is v[None, :]" if x.shape == (self.n_visible,) else ""
            raise DataError(f"{name}: an RBM with {self.n_visible} visible units needs an "
                            f"(n, {self.n_visible}) array, got shape {tuple(x.shape)}{hint}")
        if x.shape[0] == 0:      # a mean over no rows was a ZeroDivisionError
            raise DataError(f"{name}: no examples")
        check_values(x, name)    # NaN rows gave NaN features and free energies
        return self.backend.asarray(x)

    # -- learning -----------------------------------------------------------------------
    def fit(self, x, epochs: int = 1, *, cd: ContrastiveDivergence | None = None,
            validation=None, binarize=False, probabilities: bool = False,
            monitor=("reconstruction_error",), monitor_size: int = 10_000,
            callback=None, rng=None) -> History:
        """Train for ``epochs`` epochs of shuffled mini-batches; returns the per-epoch metrics.

        ``monitor`` names what is measured after each epoch on the first
        ``monitor_size`` training rows (and the validation set): the mean squared
        ``reconstruction_error`` per example and the ``pseudo_log_likelihood``.
        ``callback(row)`` is called with each epoch's metrics (progress, plots).
        """
        cd = cd or ContrastiveDivergence()
        if not isinstance(cd, ContrastiveDivergence):
            raise ConfigError(f"cd must be a ContrastiveDivergence(...), got {cd!r}")
        # range(-1) trained nothing and said nothing; monitor_size=0 divided by zero
        epochs = whole_number(epochs, "epochs", 1, error=ConfigError)
        monitor_size = whole_number(monitor_size, "monitor_size", 1, error=ConfigError)
        if isinstance(monitor, str):       # its letters are no monitors
            raise ConfigError(f"monitor must be a sequence of names such as ({monitor!r},), "
                              f"got the string {monitor!r}")
        unknown = set(monitor) - set(MONITORS)
        if unknown:
            raise ConfigError(f"unknown monitor {sorted(unknown)}; choose from {MONITORS}")
        rng = make_rng(rng)
        x = self.prepare(x, binarize=binarize, probabilities=probabilities, rng=rng,
                         name="training data")
        if validation is not None:
            validation = self.prepare(validation, binarize=binarize, probabilities=probabilities,
                                      rng=rng, name="validation data")
        draw = device_rng(self.backend, rng)
        monitor_rng = np.random.default_rng(rng.integers(2**63))   # keeps training's stream
        history = History()
        n, xp = len(x), self.backend.xp
        for _ in range(epochs):
            momentum = (cd.momentum if self.epochs_trained < cd.momentum_switch
                        else cd.final_momentum)
            start = time.perf_counter()
            order = rng.permutation(n)
            if xp is not np:
                order = xp.asarray(order)
            for i in range(0, n, cd.batch_size):
                self.train_step(x, order[i:i + cd.batch_size], cd, momentum, draw)
            row = {"epoch": self.epochs_trained, "seconds": time.perf_counter() - start,
                   "momentum": momentum}
            if not bool(xp.isfinite(self.W).all()):
                raise DivergenceError(f"RBM weights became non-finite in epoch "
                                      f"{self.epochs_trained + 1}; lower the learning rate "
                                      f"(ε = {cd.learning_rate})")
            row.update(self._monitor(x[:monitor_size], "train", monitor, monitor_rng))
            if validation is not None:
                row.update(self._monitor(validation, "validation", monitor, monitor_rng))
            self.epochs_trained += 1
            history.append(row)
            if callback is not None:
                callback(row)
        return history

    def train_step(self, x, rows, cd: ContrastiveDivergence, momentum: float, rng) -> None:
        """One mini-batch: the CD statistics of ``x[rows]``, then the update rule."""
        n_neg = int(cd.n_chains or cd.batch_size) if cd.persistent else len(rows)
        ws = self._workspace(len(rows), n_neg)
        xp = self.backend.xp
        if xp is np:
            # rows come from a permutation, never out of range; mode="raise" (the default)
            # would gather into a temporary and copy it to ``out`` (a 100-row epoch: 19.7
            # against 14.9 ms here). CuPy's take has no mode.
            np.take(x, rows, axis=0, out=ws.v_pos, mode="clip")
        else:
            xp.take(x, rows, axis=0, out=ws.v_pos)
        self._gradient(ws, cd.k, cd.persistent, cd.sample_visible, rng, scale=cd.learning_rate,
                       clamp_labels=cd.clamp_labels)
        self._update(cd.weight_cost, momentum, cd.learning_rate)

    def gradient(self, v, *, k: int = 1, persistent: bool = False,
                 sample_visible: bool = False, clamp_labels: bool = False,
                 rng=None) -> dict[str, np.ndarray]:
        """The CD-k (or PCD-k) estimate of ∂ log p(v)/∂θ, averaged over the rows of ``v``.

        The same code the training step runs; returned as host arrays
        {"W", "b_visible", "b_hidden"} (for tests and diagnostics).
        """
        v = self.visible_input(v, "v")
        n_neg = (len(self.chains) if self.chains is not None else len(v)) if persistent else len(v)
        ws = self._workspace(len(v), n_neg)
        ws.v_pos[...] = v
        self._gradient(ws, int(k), persistent, sample_visible,
                       device_rng(self.backend, make_rng(rng)), clamp_labels=clamp_labels)
        return {name: to_host(g).copy() for name, g in self.grads.items()}

    def _workspace(self, n_pos: int, n_neg: int) -> _Workspace:
        key = (n_pos, n_neg)
        ws = self._workspaces.get(key)
        if ws is None:
            if len(self._workspaces) > 4:          # the odd last batch of several data sets
                self._workspaces.clear()
            ws = self._workspaces[key] = _Workspace(self.backend.xp, self.backend.dtype,
                                                    n_pos, n_neg, self.n_visible, self.n_hidden)
        return ws

    def _gradient(self, ws: _Workspace, k: int, persistent: bool, sample_visible: bool,
                  rng, scale: float = 1.0, clamp_labels: bool = False) -> None:
        """Fill ``self.grads`` with ``scale`` × (⟨v hᵀ⟩_data − ⟨v hᵀ⟩_model) and the bias terms.

        The scale (the learning rate ε in training) rides on the hidden statistics,
        so the one product Vᵀ H yields ε × the weight gradient with no extra pass.
        Hidden states that drive a reconstruction are sampled (guide §3.1); the
        statistics use hidden probabilities (§3.3). ``clamp_labels``: see
        :class:`ContrastiveDivergence`.
        """
        xp = self.backend.xp
        n_pos, n_neg = len(ws.v_pos), len(ws.v_neg)
        clamp = clamp_labels and self.n_labels
        self.hidden_mean(ws.v_pos, out=ws.h_pos)                        # product 1: up
        if persistent:
            if (self.chains is None or len(self.chains) != n_neg
                    or (clamp and self.chain_labels is None)):
                # Start the fantasy particles at the data (Tieleman 2008).
                rows = xp.arange(n_neg) % n_pos
                self.chains = self.sample_hidden(ws.h_pos[rows], rng)
                self.chain_labels = ws.v_pos[rows, self.n_pixels:].copy() if clamp else None
            h = self.chains
        else:
            h = self.sample_hidden(ws.h_pos, rng, out=ws.h_state)
        labels = (self.chain_labels if persistent else ws.v_pos[:, self.n_pixels:]) if clamp else None
        for step in range(k):
            last = step == k - 1
            if sample_visible or persistent or not last:
                self.visible_mean(h, out=ws.v_mean)                     # product 2: down
                self.sample_visible(ws.v_mean, rng, out=ws.v_neg)
            else:
                self.visible_mean(h, out=ws.v_neg)
            if labels is not None:
                ws.v_neg[:, self.n_pixels:] = labels
            self.hidden_mean(ws.v_neg, out=ws.h_neg)                    # product 3: up
            if persistent:
                h = self.sample_hidden(ws.h_neg, rng, out=self.chains)
            elif not last:
                h = self.sample_hidden(ws.h_neg, rng, out=ws.h_state)
        g = self.grads
        ws.h_pos *= scale / n_pos
        ws.h_neg *= -scale / n_neg
        xp.matmul(ws.V.T, ws.H, out=g["W"])                             # product 4: Vᵀ H
        ws.H.sum(axis=0, out=g["b_hidden"])
        xp.subtract(ws.v_pos.mean(axis=0), ws.v_neg.mean(axis=0), out=g["b_visible"])
        g["b_visible"] *= scale

    def _update(self, weight_cost: float, momentum: float, epsilon: float) -> None:
        """Δθ ← ν Δθ + ε (gradient − η w);  θ ← θ + Δθ  (weight cost on W only).

        ``self.grads`` already holds ε × gradient (see :meth:`_gradient`). NumPy
        in-place operations only, no SciPy BLAS call: two OpenBLAS thread pools
        (NumPy's and SciPy's) alternating every step spin against each other and
        slowed a multi-threaded epoch some 50-fold.
        """
        for name, p in self.params.items():
            delta, g = self.velocity[name], self.grads[name]
            delta *= momentum
            delta += g
            if name == "W" and weight_cost:
                self.backend.xp.multiply(p, -epsilon * weight_cost, out=g)
                delta += g
            p += delta

    # -- monitors -------------------------------------------------------------------------
    def _monitor(self, x, prefix: str, monitor, rng) -> dict:
        out = {}
        if "reconstruction_error" in monitor:
            out[f"{prefix}_reconstruction_error"] = self.reconstruction_error(x)
        if "pseudo_log_likelihood" in monitor and self.visible == "binary" and not self.n_labels:
            out[f"{prefix}_pseudo_log_likelihood"] = self.pseudo_log_likelihood(x, rng=rng)
        return out

    def transform(self, x, chunk_size: int = _CHUNK):
        """p(h = 1 | v) (or E[h | v]) for every row, on the backend, in chunks."""
        x = self.visible_input(x)
        chunk_size = whole_number(chunk_size, "chunk_size", 1, error=ConfigError)
        xp = self.backend.xp
        out = xp.empty((len(x), self.n_hidden), dtype=self.backend.dtype)
        for i in range(0, len(x), chunk_size):
            self.hidden_mean(x[i:i + chunk_size], out=out[i:i + chunk_size])
        return out

    def reconstruct(self, x):
        """The mean-field reconstruction E[v | E[h | v]] of every row."""
        return self.visible_mean(self.transform(x))

    def reconstruction_error(self, x, chunk_size: int = _CHUNK) -> float:
        """Mean over examples of Σᵢ (vᵢ − v̂ᵢ)², v̂ the mean-field reconstruction (no sampling)."""
        x = self.visible_input(x)
        total = 0.0
        for i in range(0, len(x), chunk_size):
            d = self.reconstruct(x[i:i + chunk_size])
            d -= x[i:i + chunk_size]
            total += float((d * d).sum())
        return total / len(x)

    def pseudo_log_likelihood(self, x, *, exact: bool = False, rng=None,
                              chunk_size: int = _CHUNK) -> float:
        """Mean over examples of PL(v) = Σᵢ log p(vᵢ | v₋ᵢ) = Σᵢ log σ(F(ṽ⁽ⁱ⁾) − F(v)).

        ṽ⁽ⁱ⁾ is v with unit i flipped (Besag 1975). With ``exact=False`` one unit
        i per example is drawn at random and the term is scaled by n_visible, an
        unbiased estimate that costs two free energies (as scikit-learn's
        BernoulliRBM.score_samples); ``exact=True`` sums all n_visible terms.
        """
        if self.visible != "binary" or self.n_labels:
            raise ConfigError("the pseudo-log-likelihood is defined here for binary visible "
                              "units without label units")
        xp = self.backend.xp
        x = self.visible_input(x)
        rng = make_rng(rng)
        total = 0.0
        for s in range(0, len(x), chunk_size):
            v = x[s:s + chunk_size]
            f = self.free_energy(v)
            rows = xp.arange(len(v))
            units = range(self.n_visible) if exact else [None]
            for i in units:
                flipped = v.copy()
                if i is None:
                    col = xp.asarray(rng.integers(0, self.n_visible, len(v)))
                    flipped[rows, col] = 1 - flipped[rows, col]
                else:
                    flipped[:, i] = 1 - flipped[:, i]
                d = self.free_energy(flipped) - f
                # log σ(d) = −softplus(−d), stable for either sign
                term = -(xp.maximum(-d, 0) + xp.log1p(xp.exp(-xp.abs(d))))
                total += float(term.sum()) * (1 if exact else self.n_visible)
        return total / len(x)

    # -- sampling ------------------------------------------------------------------------
    def gibbs(self, v, steps: int, rng, *, labels=None, label_gain: float = 1.0):
        """Run ``steps`` steps of alternating Gibbs sampling v → h → v from states ``v``.

        Returns (v, p): the final visible states and their probabilities E[v | h].
        ``labels`` (one-hot rows) clamps the label units throughout. ``label_gain`` g
        scales the clamped labels' weights as the hidden units see them (input
        b + vᵀW + (g − 1) yᵀW_label): the chain then samples the sharpened conditional
        ∝ p(v, h | y) e^{(g − 1) yᵀW_label h}, in which the label outweighs the modes
        of other classes.
        """
        xp = self.backend.xp
        v = self.backend.asarray(v).copy()
        h = xp.empty((len(v), self.n_hidden), dtype=self.backend.dtype)
        mean = xp.empty_like(v)
        extra = None
        if labels is not None:
            labels = self.backend.asarray(labels)
            v[:, self.n_pixels:] = labels
            if float(label_gain) != 1.0:
                extra = (float(label_gain) - 1.0) * (labels @ self.W[self.n_pixels:])
        elif float(label_gain) != 1.0:
            raise ConfigError("label_gain needs clamped labels")
        for _ in range(int(steps)):
            if extra is None:
                self.hidden_mean(v, out=h)
            else:
                xp.matmul(v, self.W, out=h)
                h += self.b_hidden
                h += extra
                self.hidden_units.mean(h)
            self.sample_hidden(h, rng)
            self.visible_mean(h, out=mean)
            self.sample_visible(mean, rng, out=v)
            if labels is not None:
                v[:, self.n_pixels:] = labels
        return v, mean

    def sample(self, n: int, steps: int = 1000, *, rng=None, start=None, labels=None):
        """``n`` fantasies: Gibbs chains run ``steps`` steps from ``start`` (default random
        binary states, or N(0, 1) for Gaussian units); returns E[v | h] of the last step
        as a host array."""
        # ≥ 1: with no step the "probabilities" returned were an uninitialised buffer
        steps = whole_number(steps, "steps", 1, error=ConfigError)
        draw = device_rng(self.backend, make_rng(rng))
        if start is None:
            shape = (whole_number(n, "n", 1, error=ConfigError), self.n_visible)
            start = (draw.random(shape, dtype=self.backend.dtype) < 0.5
                     if self.visible == "binary"
                     else draw.standard_normal(shape, dtype=self.backend.dtype))
            start = start.astype(self.backend.dtype)
        else:
            start = self.visible_input(start, "start")
        if labels is not None and tuple(getattr(labels, "shape", np.shape(labels))) != (
                len(start), self.n_labels):
            raise DataError(f"labels must be one-hot rows of shape ({len(start)}, "
                            f"{self.n_labels}) for this RBM's {self.n_labels} label units, "
                            f"got shape {np.shape(labels)}")
        _, mean = self.gibbs(start, steps, draw, labels=labels)
        return to_host(mean)

