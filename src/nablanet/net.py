"""Networks: containers that run layers forward and backpropagate through them."""
from __future__ import annotations

import numpy as np

from .backend import Backend, device_rng, get_backend, make_rng, to_host
from .data.dataset import check_values
from .errors import ConfigError, DataError
from .layers import Activation, Layer
from .layers.base import every_layer, is_size, layer_spec, set_input_grad_needed
from .utils.state import whole_number


class Sequential:
    """A stack of layers, each feeding the next.

    ``forward`` returns the output and the list of per-layer caches; ``backward``
    takes ∂C/∂(output of layer ``start − 1``) and runs BP2 down the stack, each
    layer adding its parameter gradients (BP3, BP4) into ``layer.grads``.

    The last layer is normally an activation; the training loop hands its cache to
    the cost, which computes δᴸ directly (see :func:`nablanet.costs.output_delta`),
    and backpropagation starts one layer below it.
    """

    def __init__(self, layers: list[Layer], input_shape: tuple[int, ...] | int | None = None):
        if isinstance(layers, Layer) or not hasattr(layers, "__iter__"):
            raise ConfigError(f"Sequential takes a list of layers such as [Dense(n_out=30), "
                              f"Sigmoid()], got {layers!r}")
        if not layers:
            raise ConfigError("a network needs at least one layer")
        self.layers = list(layers)
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise ConfigError(f"layer {i} of the network is not a layer: {layer!r}")
        self.input_shape: tuple[int, ...] | None = None
        self.output_shape: tuple[int, ...] | None = None
        self.backend: Backend = get_backend()
        self._parameters: list[tuple[Layer, str]] = []
        if input_shape is not None:
            self.build(input_shape)

    # -- construction -----------------------------------------------------------
    def build(self, input_shape, backend: Backend | None = None, rng=None) -> "Sequential":
        """Allocate every layer's parameters for per-example ``input_shape``."""
        _check_each_layer_once(self.layers)
        shape = (input_shape,) if np.isscalar(input_shape) else tuple(input_shape)
        if not shape or not all(is_size(n) for n in shape):
            raise ConfigError(f"input_shape must hold positive whole numbers (the size of one "
                              f"example), got {input_shape!r}")
        shape = tuple(int(n) for n in shape)
        self.input_shape = shape
        self.backend = backend or self.backend
        rng = make_rng(rng)
        for layer in self.layers:
            shape = layer.build(shape, self.backend, rng)
        self.output_shape = shape
        set_input_grad_needed(self.layers, False)
        self._parameters = [(layer, name) for layer in self.layers for name in layer.params]
        self.set_rng(rng)
        return self

    def set_rng(self, rng: np.random.Generator) -> None:
        """Give stochastic layers (dropout) the generator they draw from."""
        stochastic = [layer for layer in self.layers if layer.stochastic]
        if not stochastic:
            return      # seeding a GPU generator draws from ``rng``: only do it when needed
        draw = device_rng(self.backend, rng)
        for layer in stochastic:
            layer.rng = draw

    @property
    def built(self) -> bool:
        return self.output_shape is not None

    def parameters(self) -> list[tuple[Layer, str]]:
        """(layer, name) for every parameter, in a fixed order."""
        return self._parameters

    @property
    def output_activation(self) -> Activation | None:
        last = self.layers[-1]
        return last if isinstance(last, Activation) else None

    def n_params(self) -> int:
        return int(sum(layer.params[name].size for layer, name in self._parameters))

    # -- the two passes -----------------------------------------------------------
    def forward(self, x, train: bool = False):
        caches = []
        for layer in self.layers:
            x, cache = layer.forward(x, train)
            caches.append(cache)
        return x, caches

    def backward(self, dy, caches, start: int | None = None):
        """Backpropagate ∂C/∂(output of layer start−1) down to the input; returns ∂C/∂x."""
        layers = self.layers
        for i in range(len(layers) - 1 if start is None else start - 1, -1, -1):
            dy = layers[i].backward(dy, caches[i])
            if dy is None:          # nothing below needs a gradient
                break
        return dy

    def zero_grads(self) -> None:
        # Only parameters hold gradients: at mini-batch size 10 a call per layer shows.
        for layer, name in self._parameters:
            layer.grads[name] = None

    # -- inference -----------------------------------------------------------------
    def predict(self, x, chunk_size: int = 2000) -> np.ndarray:
        """Outputs for every row of ``x`` (host array), evaluated in chunks to bound memory."""
        x = self.check_input(x)
        chunk_size = whole_number(chunk_size, "chunk_size", 1, error=ConfigError)
        outs = [to_host(self.forward(self.device_input(x[i:i + chunk_size]))[0])
                for i in range(0, len(x), chunk_size)]
        return np.concatenate(outs) if outs else np.empty((0,) + self.output_shape)

    def classify(self, x, chunk_size: int = 2000) -> np.ndarray:
        """The index of the most active output unit for every row of ``x``."""
        return self.predict(x, chunk_size).argmax(axis=1)

    def device_input(self, x):
        """Host inputs on this net's device: floats of its dtype, or the integer indices
        that a first OneHot/Embedding layer reads (a Dataset holds every x as floats;
        cast to floats, indices were refused by those layers)."""
        if not self.layers[0].takes_indices:
            return self.backend.asarray(x)
        x = self.backend.xp.asarray(x)
        if x.dtype.kind == "f":
            indices = x.astype(np.int64)
            if not bool((indices == x).all()):
                raise DataError("symbol indices must be whole numbers")
            x = indices
        return x

    def check_input(self, x):
        """``x`` (an array or nested lists) with rows of ``input_shape``, or a DataError."""
        if not self.built:
            raise ConfigError("the network is not built: pass input_shape to Sequential "
                              "or call net.build(input_shape)")
        if not hasattr(x, "shape"):
            x = np.asarray(x)
        if tuple(x.shape[1:]) != self.input_shape:
            # one example given without its batch axis reads as "shape ()" otherwise
            hint = "; one example x is x[None]" if tuple(x.shape) == self.input_shape else ""
            raise DataError(f"network expects inputs of shape {self.input_shape} per example, "
                            f"got {tuple(x.shape[1:])}{hint}")
        # once per call: a NaN row would come back as NaN outputs, a string as a ValueError
        check_values(x, "inputs")
        return x

    # -- description ---------------------------------------------------------------
    def config(self) -> dict:
        return {"type": "Sequential", "input_shape": list(self.input_shape or ()),
                "layers": [layer_spec(layer) for layer in self.layers]}

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential([\n  {inner}\n])"


def _check_each_layer_once(layers) -> None:
    """A ConfigError if one layer object sits at two places in the net (blocks included).

    Its parameters would be listed twice, so every optimiser step and penalty would count
    them twice (SGD would move them by 2η·∂C/∂w), and a model file would load them as two
    untied layers. Weights shared over time steps are a recurrent layer's own.
    """
    seen = set()
    for layer in every_layer(layers):
        if id(layer) in seen:
            raise ConfigError(f"the same {type(layer).__name__} layer object appears twice in "
                              f"the net ({layer!r}); give each place its own layer")
        seen.add(id(layer))


def mlp(sizes, activation: str = "sigmoid", output: str = "sigmoid", *,
        init: str = "normal-scaled", dropout: float = 0.0, input_dropout: float = 0.0,
        backend: Backend | None = None, rng=None) -> Sequential:
    """A fully connected net such as Nielsen's ``Network([784, 30, 10])``.

    ``activation`` is used in hidden layers, ``output`` at the top; ``dropout``
    thins every hidden layer, ``input_dropout`` the input layer.
    """
    from .layers import ACTIVATIONS, Dense, Dropout

    # is_size, not int(): int() cuts 2.5 to 2 and reads "30" or True as a width
    if (isinstance(sizes, str) or not hasattr(sizes, "__iter__") or len(sizes) < 2
            or not all(is_size(s) for s in sizes)):
        raise ConfigError(f"sizes must list at least two positive layer widths (whole "
                          f"numbers), got {sizes!r}")
    sizes = [int(s) for s in sizes]
    for name in (activation, output):
        if name not in ACTIVATIONS:
            raise ConfigError(f"unknown activation {name!r}; choose one of "
                              f"{', '.join(ACTIVATIONS)}")
    layers: list[Layer] = [Dropout(input_dropout)] if input_dropout else []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        layers += [Dense(n_in, n_out, init=init), ACTIVATIONS[output if last else activation]()]
        if dropout and not last:
            layers.append(Dropout(dropout))
    return Sequential(layers).build((sizes[0],), backend, rng)
