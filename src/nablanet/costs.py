"""Cost functions, and the one place where a cost meets the output activation.

Each cost knows its value C (the mean over examples) and its gradient ∇ₐC for one
example. :func:`output_delta` computes the output error of the lectures,

    δᴸ = ∂C/∂zᴸ = ∇ₐC ⊙ σ′(zᴸ)                       (BP1)

and for the pairs where σ′ cancels — sigmoid with cross-entropy, softmax with
log-likelihood, a linear unit with the quadratic cost — the closed form

    δᴸ = aᴸ − y.

Targets: classification labels are integers everywhere; :meth:`Cost.targets`
turns them into the one-hot matrix the cost needs, once per data set.
"""
from __future__ import annotations

from .backend import xp_of
from .errors import ConfigError, DataError
from .layers.activations import Activation, Linear, Sigmoid, Softmax

_EPS = 1e-12


class Cost:
    name = ""
    #: the output activation with which σ′ cancels, giving δᴸ = a − y
    cancels_with: type[Activation] | None = None

    def value(self, a, y):
        """C summed over the examples in the batch (divide by n for the mean)."""
        raise NotImplementedError

    def gradient(self, a, y):
        """∇ₐC for each example (rows)."""
        raise NotImplementedError

    def targets(self, labels, n_outputs: int, backend):
        """Target matrix y for ``labels``: one-hot for integer labels, else as given."""
        xp = backend.xp
        labels = xp.asarray(labels)
        if labels.ndim == 1 and labels.dtype.kind in "iu":
            # A label ≥ K would fail deep in indexing; −1 would silently mean class K − 1.
            low, high = (int(labels.min()), int(labels.max())) if len(labels) else (0, 0)
            if not 0 <= low <= high < n_outputs:
                raise DataError(f"class labels must be in [0, {n_outputs}) for a net with "
                                f"{n_outputs} outputs, got {low}..{high}")
            y = xp.zeros((labels.shape[0], n_outputs), dtype=backend.dtype)
            y[xp.arange(labels.shape[0]), labels] = 1
            return y
        y = labels.astype(backend.dtype, copy=False).reshape(labels.shape[0], -1)
        if y.shape[1] != n_outputs:
            raise DataError(f"targets have {y.shape[1]} columns but the net has "
                            f"{n_outputs} outputs")
        return y

    def config(self) -> dict:
        return {"name": self.name}


class Quadratic(Cost):
    """C = 1/2n Σₓ ‖y(x) − aᴸ(x)‖²;  ∇ₐC = aᴸ − y."""

    name = "quadratic"
    cancels_with = Linear

    def value(self, a, y):
        d = a - y
        return 0.5 * float((d * d).sum())

    def gradient(self, a, y):
        return a - y


class CrossEntropy(Cost):
    """C = −1/n Σₓ Σⱼ [yⱼ ln aⱼ + (1 − yⱼ) ln(1 − aⱼ)];  ∇ₐC = (a − y) / (a(1 − a)).

    With sigmoid outputs σ′(z) = a(1 − a) cancels and δᴸ = a − y: the learning
    slowdown of the quadratic cost disappears (Nielsen ch. 3).
    """

    name = "cross-entropy"
    cancels_with = Sigmoid

    def value(self, a, y):
        xp = xp_of(a)
        eps = max(_EPS, float(xp.finfo(a.dtype).eps))   # 1 − 1e-12 is 1.0 in float32
        a = xp.clip(a, eps, 1 - eps)
        return -float((y * xp.log(a) + (1 - y) * xp.log1p(-a)).sum())

    def gradient(self, a, y):
        xp = xp_of(a)
        eps = max(_EPS, float(xp.finfo(a.dtype).eps))
        a = xp.clip(a, eps, 1 - eps)
        return (a - y) / (a * (1 - a))


class LogLikelihood(Cost):
    """C = −1/n Σₓ ln a_{y(x)} (the softmax log-likelihood);  ∇ₐC = −y / a.

    With softmax outputs δᴸ = a − y.
    """

    name = "log-likelihood"
    cancels_with = Softmax

    def value(self, a, y):
        xp = xp_of(a)
        return -float((y * xp.log(xp.maximum(a, _EPS))).sum())

    def gradient(self, a, y):
        xp = xp_of(a)
        return -y / xp.maximum(a, _EPS)



COSTS: dict[str, type[Cost]] = {c.name: c for c in (Quadratic, CrossEntropy, LogLikelihood)}


def get_cost(name: str | Cost) -> Cost:
    if isinstance(name, Cost):
        return name
    try:
        return COSTS[name]()
    except KeyError:
        raise ConfigError(f"unknown cost {name!r}; choose one of {', '.join(COSTS)}") from None


def output_delta(cost: Cost, activation: Activation, a, y, cache, batch_size: int):
    """δᴸ = ∂C/∂zᴸ for the mini-batch mean cost (so 1/m is folded in here, once).

    The lectures' BP1: δᴸ = ∇ₐC ⊙ σ′(zᴸ), which collapses to δᴸ = aᴸ − y when the
    cost was chosen to cancel the output activation's σ′.
    """
    if cost.cancels_with is not None and type(activation) is cost.cancels_with:
        delta = a - y                                            # σ′ cancels
    else:
        delta = activation.backward(cost.gradient(a, y), cache)  # ∇ₐC ⊙ σ′(zᴸ)
    delta *= 1.0 / batch_size
    return delta
