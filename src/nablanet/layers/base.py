"""The layer contract shared by every layer family.

``y, cache = layer.forward(x, train=True)`` returns the output and whatever the
backward pass needs; ``dx = layer.backward(dy, cache)`` returns ∂C/∂x and *adds*
∂C/∂θ into ``layer.grads``. The cache is returned rather than stored on the layer
so one layer can be applied several times (RNN time steps, shared weights) before
any backward pass; accumulating gradients is then the lectures' rule for tied
weights: use ∂E/∂w₁ + ∂E/∂w₂ for both.

A gradient of ``None`` means "zero, nothing accumulated yet": the first backward
pass binds its array (or writes a GEMM straight into a reused buffer) without an
extra add or allocation, which matters at mini-batch size 10.
"""
from __future__ import annotations

import operator
from typing import Any, ClassVar

from ..backend import Backend, get_backend
from ..errors import ConfigError

LAYERS: dict[str, type["Layer"]] = {}


def register(cls):
    """Add a layer class to the registry that model files are built from."""
    LAYERS[cls.__name__] = cls
    return cls


def layer_spec(layer: "Layer") -> dict:
    """What a model file or config says of one layer: ``{"type": name, **constructor args}``."""
    return {"type": type(layer).__name__, **layer.config()}


def layers_from_specs(specs: list, where="config", error=ConfigError) -> list:
    """Layer objects from ``[{"type": "Conv2D", "out_channels": 20, ...}, ...]``.

    Only registered layer classes are built (a file names classes, never code); a
    bad entry raises ``error`` naming its index and type.
    """
    layers = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict):
            raise error(f"{where}: layer {i} is not an object")
        kwargs = dict(spec)
        kind = kwargs.pop("type", None)
        cls = LAYERS.get(kind) if isinstance(kind, str) else None   # a list cannot be a key
        if cls is None:
            known = ", ".join(sorted(LAYERS))
            raise error(f"{where}: layer {i} has unknown type {kind!r} (known: {known})")
        try:
            layers.append(cls(**kwargs))
        except (TypeError, ValueError) as exc:     # ConfigError is a ValueError too
            raise error(f"{where}: layer {i} ({kind}): {exc}") from None
    return layers


def every_layer(layers):
    """``layers`` and, depth first, the layers inside each (:meth:`Layer.sublayers`)."""
    for layer in layers:
        yield layer
        yield from every_layer(layer.sublayers())


def set_input_grad_needed(layers, needed: bool) -> None:
    """Whether the first layers of a stack compute ∂C/∂x: up to and including the first
    parameterised one, which is all ∂C/∂x of the stack's input passes through on its way
    down. With ``False`` (a net's input, nobody needs the gradient of the data) its GEMM is
    skipped."""
    for layer in layers:
        if hasattr(layer, "need_input_grad"):
            layer.need_input_grad = needed
        if layer.params:
            break


def is_size(value) -> bool:
    """Whether ``value`` is a positive whole number (a NumPy integer too): a layer's width,
    channel or symbol count. Not a bool, nor a float such as 2.5, which ``int()`` would cut
    to a smaller layer than the model file or config asks for."""
    if isinstance(value, bool):
        return False
    try:
        return operator.index(value) >= 1
    except TypeError:
        return False


class Layer:
    """Base class: no parameters, identity shape. Subclasses override what they need."""

    #: parameter names subject to weight decay, L1 and max-norm (weights, not biases)
    regularized: ClassVar[tuple[str, ...]] = ()
    #: True for layers whose forward pass draws random numbers (dropout)
    stochastic: ClassVar[bool] = False
    #: True for layers that read integer symbol indices, not floats (OneHot, Embedding)
    takes_indices: ClassVar[bool] = False
    #: parameters whose gradient is one ``accumulate_matmul`` or ``accumulate_row_sum``
    #: per backward pass, made after the layer is done reading them: an SGD step may
    #: happen inside that BLAS call (training/fused.py)
    fusable: ClassVar[tuple[str, ...]] = ()

    def __init__(self):
        self.params: dict[str, Any] = {}
        self.grads: dict[str, Any] = {}
        self._grad_buffers: dict[str, Any] = {}
        #: name → a step with ``matmul(θ, a, b)`` and ``row_sum(θ, d)`` that apply the
        #: optimiser's update for ∂C/∂θ = a @ b or Σ_rows d directly (training/fused.py,
        #: while a trainer runs); θ's gradient then stays None
        self.fused_updates: dict[str, Any] = {}
        self.backend: Backend = get_backend()
        self.rng = None

    # -- construction -------------------------------------------------------
    def build(self, input_shape: tuple[int, ...], backend: Backend, rng) -> tuple[int, ...]:
        """Allocate parameters for ``input_shape`` (per example); return the output shape."""
        self.backend = backend
        return input_shape

    def config(self) -> dict:
        """Constructor arguments as JSON-serialisable values (for model files)."""
        return {}

    def sublayers(self) -> list["Layer"]:
        """The layers inside this one (a branching block's), for code that must reach every
        layer of a net, such as the recurrent layers' carried state; none by default."""
        return []

    def gemm_work(self) -> int:
        """Multiply-adds per example of this layer's largest GEMM (0 if it has none): a
        parameter matrix applied once to each example, as in a dense layer, unless the
        layer says otherwise. Decides whether its GEMMs are worth splitting over threads."""
        return max((p.size for p in self.params.values()), default=0)

    # -- the contract --------------------------------------------------------
    def forward(self, x, train: bool = False):
        raise NotImplementedError

    def backward(self, dy, cache):
        raise NotImplementedError

    # -- gradients -----------------------------------------------------------
    def accumulate(self, name: str, g) -> None:
        """∂C/∂θ += g (bind on the first contribution, add on later ones).

        ``g`` is bound, not copied, and later contributions are added into it in place:
        pass a fresh array (the result of an expression), never one that is cached
        or reused elsewhere.
        """
        acc = self.grads[name]
        self.grads[name] = g if acc is None else acc + g

    def accumulate_matmul(self, name: str, a, b) -> None:
        """∂C/∂θ += a @ b; the first term is written into a buffer reused every step.

        θ may have more axes than a @ b (a conv kernel (O, C, kh, kw) is the GEMM's
        (O, C·kh·kw)); the product is then written into θ's gradient reshaped.
        """
        acc = self.grads[name]
        if acc is None:
            fused = self.fused_updates.get(name)
            if fused is not None:
                p = self.params[name]
                fused.matmul(p if p.ndim == 2 else p.reshape(a.shape[0], b.shape[-1]), a, b)
                return
            buffer = self._grad_buffers.get(name)
            if buffer is None:
                buffer = self._grad_buffers[name] = self.backend.xp.empty_like(self.params[name])
            self.backend.xp.matmul(a, b, out=buffer.reshape(a.shape[0], b.shape[-1]))
            self.grads[name] = buffer
        else:
            acc += (a @ b).reshape(acc.shape)

    def accumulate_row_sum(self, name: str, d) -> None:
        """∂C/∂θ += Σ over the rows of d (a bias's gradient: BP3 summed over the batch)."""
        if self.grads[name] is None:
            fused = self.fused_updates.get(name)
            if fused is not None:
                fused.row_sum(self.params[name], d)
                return
        self.accumulate(name, d.sum(axis=0))

    def zero_grads(self) -> None:
        for name in self.grads:
            self.grads[name] = None

    def set_params(self, **arrays) -> None:
        """Install parameter arrays (moved to this layer's backend) and clear grads."""
        for name, value in arrays.items():
            self.params[name] = self.backend.asarray(value)
            self.grads[name] = None
            self._grad_buffers.pop(name, None)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"
