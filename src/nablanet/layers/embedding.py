"""Symbol inputs: integer indices (batch, time) → vectors (batch, time, d).

* :class:`OneHot` — the lectures' local ("one unit per symbol") code, no parameters;
* :class:`Embedding` — a learned feature vector per symbol (lecture 4, the family-tree
  and neural language models): the same as a one-hot code times a weight matrix E,
  computed as a row lookup E[index].
"""
from __future__ import annotations

from ..errors import ConfigError, DataError
from ..init import initializer
from .base import Layer, is_size, register


def check_indices(indices, n_symbols: int, who: str):
    """Integer indices in [0, n_symbols), or a DataError naming the first bad one."""
    xp_kind = getattr(indices, "dtype", None)
    if xp_kind is None or indices.dtype.kind not in "iu":
        raise DataError(f"{who} expects integer symbol indices, got dtype {xp_kind}")
    if indices.size and (int(indices.min()) < 0 or int(indices.max()) >= n_symbols):
        bad = int(indices.max()) if int(indices.max()) >= n_symbols else int(indices.min())
        raise DataError(f"{who}: symbol index {bad} is outside [0, {n_symbols})")
    return indices


def one_hot(xp, indices, n_symbols: int, dtype):
    """indices (...) → (..., n_symbols) with a single 1 per row (inputs, or softmax targets)."""
    out = xp.zeros(indices.shape + (n_symbols,), dtype=dtype)
    rows = out.reshape(-1, n_symbols)
    rows[xp.arange(rows.shape[0]), indices.reshape(-1)] = 1
    return out


@register
class OneHot(Layer):
    """Index k → the unit vector e_k of length ``n_symbols`` (one active input unit)."""

    takes_indices = True

    def __init__(self, n_symbols: int):
        super().__init__()
        if not is_size(n_symbols):
            raise ConfigError(f"OneHot needs a whole number n_symbols ≥ 1, got {n_symbols!r}")
        self.n_symbols = int(n_symbols)

    def config(self):
        return {"n_symbols": self.n_symbols}

    def build(self, input_shape, backend, rng):
        self.backend = backend
        return tuple(input_shape) + (self.n_symbols,)

    def forward(self, x, train=False):
        xp = self.backend.xp
        x = check_indices(xp.asarray(x), self.n_symbols, "OneHot")
        return one_hot(xp, x, self.n_symbols, self.backend.dtype), None

    def backward(self, dy, cache):
        return None                     # nothing to learn below integer indices


@register
class Embedding(Layer):
    """A learned d-vector per symbol: y[b, t] = E[x[b, t]];  ∂C/∂E[k] = Σ_{x=k} ∂C/∂y."""

    regularized = ("E",)
    takes_indices = True

    def __init__(self, n_symbols: int, n_dims: int, init: str = "normal-scaled"):
        super().__init__()
        if not (is_size(n_symbols) and is_size(n_dims)):
            raise ConfigError(f"Embedding needs positive whole-number sizes, got "
                              f"n_symbols={n_symbols!r}, n_dims={n_dims!r}")
        initializer(init)                       # fail early on an unknown name
        self.n_symbols, self.n_dims, self.init = int(n_symbols), int(n_dims), init

    def config(self):
        return {"n_symbols": self.n_symbols, "n_dims": self.n_dims, "init": self.init}

    def build(self, input_shape, backend, rng):
        self.backend = backend
        weights, _ = initializer(self.init)
        # One symbol is one active input unit, so fan_in = 1 would blow the scale up;
        # use n_dims on both sides (unit-variance rows for the normal initialisers).
        self.set_params(E=weights((self.n_symbols, self.n_dims), self.n_dims, self.n_dims, rng))
        return tuple(input_shape) + (self.n_dims,)

    def gemm_work(self):
        return 0                  # a row lookup, however large E is

    def forward(self, x, train=False):
        xp = self.backend.xp
        x = check_indices(xp.asarray(x), self.n_symbols, "Embedding")
        return self.params["E"][x], x

    def backward(self, dy, x):
        xp = self.backend.xp
        grad = xp.zeros_like(self.params["E"])
        scatter_add(xp, grad, x.reshape(-1), dy.reshape(-1, self.n_dims))
        self.accumulate("E", grad)
        return None


def scatter_add(xp, target, rows, values) -> None:
    """target[rows[k]] += values[k], with repeated rows adding up (unbuffered)."""
    if xp.__name__ == "numpy":
        xp.add.at(target, rows, values)
    else:                                           # CuPy spells it cupyx.scatter_add
        import cupyx
        cupyx.scatter_add(target, rows, values)
