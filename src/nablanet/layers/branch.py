"""Branching blocks: residual connections and inception-style concatenation.

A block runs several branches on the same input x, each a list of layers applied in turn,
and joins what they return:

    Residual:  y = F(x) + S(x)            S is the identity unless a shortcut is given
                                          (He et al. 2016, "Deep residual learning")
    Concat:    y = [B₁(x), B₂(x), …]      joined along features or channels
                                          (Szegedy et al. 2015, the inception module)

Backward is the chain rule through a fork. Every branch gets its share of δ = ∂C/∂y (a
sum passes the same δ to both terms; a concatenation gives each branch its own slice),
and because x fed every branch,

    ∂C/∂x = Σ_branches ∂C/∂x |through that branch.

On the identity path of a residual block δ passes through untouched, whatever the
body's σ′ does to its share — why very deep residual nets still train (compare
``nablanet demo vanishing-gradient``).

To the rest of the library a block is one layer. Its ``params`` and ``grads`` are live
views of its children's, keyed ``"<branch>.<layer>.<name>"`` ("0.2.W": the third layer
of the first branch), so optimisers, penalties, max-norm, gradient checks and model files
reach the children's parameters without knowing that branches exist. Blocks nest.
Layers must not change the δ they are given in place (none does): both terms of a sum
read the same array.
"""
from __future__ import annotations

from collections.abc import MutableMapping

from ..errors import ConfigError, DataError
from .base import Layer, layer_spec, layers_from_specs, register, set_input_grad_needed
from .spatial import channel_major


class _ChildrenView(MutableMapping):
    """``params`` or ``grads`` of a block: key "b.i.name" reads and writes that entry of the
    child's own dict, so an optimiser's in-place step or a ``grads[...] = None`` lands there."""

    def __init__(self, block: "Block", attribute: str):
        self._block, self._attribute = block, attribute

    def _entry(self, key):
        owner = self._block._owners.get(key)
        if owner is None:
            raise KeyError(key)
        layer, name = owner
        return getattr(layer, self._attribute), name

    def __getitem__(self, key):
        values, name = self._entry(key)
        return values[name]

    def __setitem__(self, key, value):
        values, name = self._entry(key)
        values[name] = value

    def __delitem__(self, key):
        raise TypeError("a block's parameters are its layers'; they cannot be removed")

    def __iter__(self):
        return iter(self._block._owners)

    def __len__(self):
        return len(self._block._owners)

    def __repr__(self):
        return repr(dict(self))


class Block(Layer):
    """Base class: branches of layers on one input, their outputs joined by :meth:`join`."""

    def __init__(self, branches):
        if not isinstance(branches, (list, tuple)) or not branches:
            raise ConfigError(f"{type(self).__name__} needs a non-empty list of branches")
        # set before Layer.__init__, whose ``self.rng = None`` goes through the setter below
        self.branches = [self._branch(b, i) for i, b in enumerate(branches)]
        self._rng = None
        self._need_input_grad, self._built = True, False
        super().__init__()
        #: "b.i.name" → (child layer, its parameter name), filled when the block is built
        self._owners: dict[str, tuple[Layer, str]] = {}
        self.params = _ChildrenView(self, "params")
        self.grads = _ChildrenView(self, "grads")

    def _branch(self, layers, index: int) -> list[Layer]:
        """One branch: Layer objects, or specs as a model file or config gives them."""
        if not isinstance(layers, (list, tuple)):
            raise ConfigError(f"{type(self).__name__} branch {index} must be a list of "
                              f"layers, got {layers!r}")
        if all(isinstance(layer, Layer) for layer in layers):
            return list(layers)
        return layers_from_specs(list(layers), f"branch {index}", ConfigError)

    def children(self):
        """(branch index, index in the branch, layer) for every layer of every branch."""
        for b, branch in enumerate(self.branches):
            for i, layer in enumerate(branch):
                yield b, i, layer

    def sublayers(self):
        return [layer for _, _, layer in self.children()]

    # -- construction -------------------------------------------------------------------
    def build(self, input_shape, backend, rng):
        self.backend = backend
        outputs = []
        for branch in self.branches:
            shape = tuple(input_shape)
            for layer in branch:
                shape = tuple(layer.build(shape, backend, rng))
            outputs.append(shape)
        self._owners = {f"{b}.{i}.{name}": (layer, name)
                        for b, i, layer in self.children() for name in layer.params}
        self._built = True
        self.need_input_grad = self._need_input_grad      # now each branch's first
        return self.joined_shape(outputs)                 # parameterised layer is known

    def joined_shape(self, shapes: list[tuple]) -> tuple:
        raise NotImplementedError

    def config(self):
        return {"branches": [[layer_spec(layer) for layer in branch]
                             for branch in self.branches]}

    def set_params(self, **arrays) -> None:
        for key, value in arrays.items():
            if key not in self._owners:
                raise KeyError(key)
            layer, name = self._owners[key]
            layer.set_params(**{name: value})

    @property
    def regularized(self):
        return tuple(f"{b}.{i}.{name}" for b, i, layer in self.children()
                     for name in layer.regularized)

    def gemm_work(self) -> int:
        return max((layer.gemm_work() for _, _, layer in self.children()), default=0)

    # -- what reaches the children --------------------------------------------------------
    @property
    def stochastic(self):
        return any(layer.stochastic for _, _, layer in self.children())

    @property
    def rng(self):
        return self._rng

    @rng.setter
    def rng(self, generator):
        self._rng = generator
        for _, _, layer in self.children():
            if layer.stochastic:
                layer.rng = generator

    @property
    def need_input_grad(self) -> bool:
        return self._need_input_grad

    @need_input_grad.setter
    def need_input_grad(self, needed: bool):
        """As :meth:`Sequential.build` does for a net: below a branch's first parameterised
        layer nothing needs ∂C/∂x when the block's input needs none. Which layer that is
        shows once the block is built; until then the setting is only kept."""
        self._need_input_grad = needed
        if self._built:
            for branch in self.branches:
                set_input_grad_needed(branch, needed)

    # -- the contract ---------------------------------------------------------------------
    def forward(self, x, train=False):
        outputs, caches = [], []
        for branch in self.branches:
            y, branch_caches = x, []
            for layer in branch:
                y, cache = layer.forward(y, train)
                branch_caches.append(cache)
            outputs.append(y)
            caches.append(branch_caches)
        return self.join(outputs), caches

    def backward(self, dy, caches):
        dx = None
        for branch, branch_caches, delta in zip(self.branches, caches, self.split(dy)):
            for layer, cache in zip(reversed(branch), reversed(branch_caches)):
                delta = layer.backward(delta, cache)
                if delta is None:                 # nothing below needs a gradient
                    break
            if delta is not None and self._need_input_grad:
                dx = delta if dx is None else dx + delta      # x fed every branch: sum
        return dx

    def join(self, outputs: list):
        raise NotImplementedError

    def split(self, dy) -> list:
        """δ for each branch's output, from δ of the joined output."""
        raise NotImplementedError

    def __repr__(self) -> str:
        inner = " | ".join(", ".join(map(repr, branch)) or "identity"
                           for branch in self.branches)
        return f"{type(self).__name__}({inner})"


@register
class Residual(Block):
    """y = F(x) + S(x): ``layers`` make F; ``shortcut`` makes S (the identity if empty).

    F must end in the shape it starts with, or a ``shortcut`` must map x to F's shape:
    a Dense layer for flat inputs, a 1×1 Conv2D (with F's stride) for images — He et
    al.'s projection shortcut. Put the activation after the block (a ReLU layer) for
    their original block, or inside F only for the "pre-activation" variant.
    """

    def __init__(self, layers, shortcut=()):
        if isinstance(layers, (list, tuple)) and not layers:
            raise ConfigError("Residual needs a non-empty list of layers (F in y = F(x) + x)")
        super().__init__([layers, shortcut])

    def config(self):
        body, shortcut = super().config()["branches"]
        return {"layers": body, "shortcut": shortcut}

    def joined_shape(self, shapes):
        body, shortcut = shapes
        if body != shortcut:
            path = "the shortcut" if self.branches[1] else "the identity shortcut"
            raise ConfigError(f"Residual cannot add F(x) of shape {body} to {path}'s "
                              f"{shortcut}; give a shortcut that maps x to F's shape")
        return body

    def join(self, outputs):
        body, shortcut = outputs
        return body + shortcut          # a new array: the body's last layer may cache its own

    def split(self, dy):
        return dy, dy


@register
class Concat(Block):
    """y = [B₁(x), B₂(x), …]: each of ``branches`` (lists of layers; [] is x itself) run on
    x, their outputs joined along features (flat) or channels (images). The inception
    module is Concat of 1×1, 3×3 and 5×5 convolutions and a pooling branch, each padded
    to keep the image size."""

    def joined_shape(self, shapes):
        rest = {shape[1:] for shape in shapes}
        if len(rest) != 1 or any(len(shape) not in (1, 3) for shape in shapes):
            raise ConfigError(f"Concat joins outputs that differ only in their first axis "
                              f"(features, or channels of equal-sized images); got "
                              f"{', '.join(map(str, shapes))}")
        self.widths = [shape[0] for shape in shapes]
        return (sum(self.widths), *shapes[0][1:])

    def join(self, outputs):
        xp = self.backend.xp
        if outputs[0].ndim == 4:         # channels, joined in the channel-major layout
            return channel_major(xp.concatenate([channel_major(o) for o in outputs]))
        if outputs[0].ndim != 2:
            raise DataError(f"Concat expects a batch of vectors or images, got shape "
                            f"{tuple(outputs[0].shape)}")
        return xp.concatenate(outputs, axis=1)

    def split(self, dy):
        parts, start = [], 0
        for width in self.widths:
            if dy.ndim == 4:            # a run of channels: contiguous in the channel-major layout
                parts.append(channel_major(channel_major(dy)[start:start + width]))
            else:
                parts.append(dy[:, start:start + width])
            start += width
        return parts
