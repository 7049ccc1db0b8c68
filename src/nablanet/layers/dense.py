"""Fully connected layer: z = x W + b."""
from __future__ import annotations

from ..errors import ConfigError, DataError
from ..init import initializer
from .base import Layer, is_size, register


@register
class Dense(Layer):
    """A fully connected layer, z = x W + b, for a mini-batch x of shape (m, n_in).

    ``n_in=None`` takes the width of the input at build time: ``Dense(n_out=30)``.

    W has shape (n_in, n_out) — the transpose of Nielsen's (n_out, n_in) — so a
    mini-batch of row vectors multiplies on the left and the whole batch is one GEMM.

    Backward, from δ = ∂C/∂z (shape (m, n_out)):
        ∂C/∂W = xᵀ δ          (BP4, summed over the mini-batch)
        ∂C/∂b = Σ_rows δ      (BP3)
        ∂C/∂x = δ Wᵀ          (BP2 before the activation's σ′)
    """

    regularized = ("W",)
    fusable = ("W", "b")

    def __init__(self, n_in: int | None = None, n_out: int | None = None,
                 init: str = "normal-scaled", need_input_grad: bool = True):
        super().__init__()
        if n_out is None:
            raise ConfigError("Dense needs n_out, its number of units (n_in may be left out: "
                              "it is the width of the layer below)")
        if not is_size(n_out) or (n_in is not None and not is_size(n_in)):
            raise ConfigError(f"Dense needs positive whole-number sizes, got n_in={n_in!r}, "
                              f"n_out={n_out!r}")
        self.n_in = None if n_in is None else int(n_in)
        self.n_out = int(n_out)
        self.init = init
        initializer(init)  # fail early on an unknown name
        # The first layer of a net never needs ∂C/∂x; skipping it saves a GEMM.
        self.need_input_grad = need_input_grad

    def build(self, input_shape, backend, rng):
        self.backend = backend
        if len(input_shape) != 1:
            raise ConfigError(f"Dense expects flat inputs, got per-example shape {input_shape}; "
                              "add a Flatten layer first")
        n_in = input_shape[0]
        if self.n_in is not None and self.n_in != n_in:
            raise ConfigError(f"Dense({self.n_in}, {self.n_out}) cannot take {n_in} inputs")
        self.n_in = n_in
        weights, biases = initializer(self.init)
        self.set_params(W=weights((n_in, self.n_out), n_in, self.n_out, rng),
                        b=biases((self.n_out,), n_in, self.n_out, rng))
        return (self.n_out,)

    def config(self):
        return {"n_in": self.n_in, "n_out": self.n_out, "init": self.init}

    def forward(self, x, train=False):
        if x.shape[-1] != self.n_in:
            raise DataError(f"Dense layer expects {self.n_in} features, got {x.shape[-1]}")
        fused = self.fused_updates.get("W")
        if fused is not None and fused.products:       # on the BLAS that holds the threads
            z = fused.product(x, self.params["W"])
        else:
            z = x @ self.params["W"]
        z += self.params["b"]
        return z, x

    def backward(self, delta, x):
        # ∂C/∂x first: with a fused SGD step (training/fused.py) W changes in the next line
        dx = delta @ self.params["W"].T if self.need_input_grad else None
        self.accumulate_matmul("W", x.T, delta)
        self.accumulate_row_sum("b", delta)
        return dx

