"""2-D convolution (LeNet-5, Nielsen ch. 6): shared weights over local receptive fields.

For input channels c, kernels W (O, C, kh, kw), stride s and zero padding,

    z[n, o, p, q] = b[o] + Σ_{c,i,j} W[o, c, i, j] · x_pad[n, c, s·p + i, s·q + j]

(a cross-correlation, as in every framework). Backward, from δ = ∂C/∂z:

    ∂C/∂b[o] = Σ_{n,p,q} δ[n, o, p, q]
    ∂C/∂W    = δ · colsᵀ          (BP4 summed over every position that shares W)
    ∂C/∂x    = col2im(Wᵀ · δ)     (BP2 through each receptive field)

All three are GEMMs over the whole mini-batch (see :mod:`nablanet.functional.windows`).
"""
from __future__ import annotations

from ..errors import ConfigError
from ..functional.windows import col2im, im2col, output_size, pair, row_pitch
from ..init import initializer
from .base import is_size, register
from .spatial import ImageLayer, channel_major


@register
class Conv2D(ImageLayer):
    """Convolution with ``out_channels`` kernels of ``kernel_size`` over (C, H, W) images.

    ``in_channels=None`` takes C from the input shape at build time. Weights are
    (O, C, kh, kw), PyTorch's layout, so a unit's incoming weights are ``W[o]`` (max-norm
    acts on those); initialisers see fan_in = C·kh·kw and fan_out = O·kh·kw.

    Memory stays bounded whatever the batch: the matrix of receptive fields (im2col)
    is built for at most ``workspace_bytes`` worth of examples at a time, and in
    evaluation (``train=False``) it is never kept for the backward pass.
    """

    regularized = ("W",)
    #: largest im2col matrix built at once; bigger batches are processed in slices
    workspace_bytes = 64 << 20

    def __init__(self, in_channels: int | None = None, out_channels: int | None = None,
                 kernel_size=5, stride=1, padding=0, init: str = "normal-scaled",
                 need_input_grad: bool = True):
        super().__init__()
        if out_channels is None:
            raise ConfigError("Conv2D needs out_channels, its number of kernels (in_channels "
                              "may be left out: it is read from the images)")
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not (value is None and name == "in_channels") and not is_size(value):
                raise ConfigError(f"Conv2D {name} must be a positive integer, got {value!r}")
        self.in_channels = None if in_channels is None else int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.padding = pair(padding, "padding", minimum=0)
        self.init = init
        initializer(init)                     # fail early on an unknown name
        # The first layer of a net never needs ∂C/∂x; skipping col2im saves a GEMM.
        self.need_input_grad = need_input_grad

    def build(self, input_shape, backend, rng):
        self.backend = backend
        c, h, w = self._image_shape(input_shape)
        if self.in_channels is not None and self.in_channels != c:
            raise ConfigError(f"Conv2D(in_channels={self.in_channels}) cannot take {c}-channel "
                              f"images (input shape {tuple(input_shape)})")
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if kh > h + 2 * ph or kw > w + 2 * pw:
            raise ConfigError(f"Conv2D kernel {kh}×{kw} is larger than the padded input "
                              f"{h + 2 * ph}×{w + 2 * pw} (images {h}×{w}, padding {ph},{pw})")
        self.in_channels = c
        self.output_hw = (output_size(h, kh, sh, ph), output_size(w, kw, sw, pw))
        fan_in, fan_out = c * kh * kw, self.out_channels * kh * kw
        weights, biases = initializer(self.init)
        self.set_params(W=weights((self.out_channels, c, kh, kw), fan_in, fan_out, rng),
                        b=biases((self.out_channels,), fan_in, fan_out, rng))
        return (self.out_channels, *self.output_hw)

    def config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": list(self.padding), "init": self.init}

    def gemm_work(self):
        return self.params["W"].size * self.output_hw[0] * self.output_hw[1]

    # -- the contract ------------------------------------------------------------------
    def forward(self, x, train=False):
        self._check_images(x)
        xp = self.backend.xp
        x = channel_major(x)                                     # (C, N, H, W)
        n, o, (ho, wo) = x.shape[1], self.out_channels, self.output_hw
        wq = row_pitch(x.shape[3], self.kernel_size, self.stride, self.padding)
        kernels = self.params["W"].reshape(o, -1)                # (O, C·kh·kw)
        step = self._examples_per_slice()
        if step >= n:
            cols = self._im2col(x)
            z = (kernels @ cols).reshape(o, n, ho, wq)
        else:
            cols, z = None, xp.empty((o, n, ho, wq), dtype=kernels.dtype)
            for start in range(0, n, step):
                z[:, start:start + step] = (kernels @ self._im2col(x[:, start:start + step])
                                            ).reshape(o, -1, ho, wq)
        z += self.params["b"][:, None, None, None]
        # The matrix of receptive fields is kept for backward only when training on
        # one slice; otherwise backward rebuilds it slice by slice from x.
        return channel_major(z[..., :wo]), (x, cols if train else None)

    def backward(self, delta, cache):
        x, cols = cache
        xp, o, (ho, wo) = self.backend.xp, self.out_channels, self.output_hw
        n = x.shape[1]
        wq = row_pitch(x.shape[3], self.kernel_size, self.stride, self.padding)
        # δ channel-major and as wide as z, with zeros in the junk columns (≥ Wo).
        wide = xp.zeros((o, n, ho, wq), dtype=delta.dtype)
        wide[..., :wo] = channel_major(delta)
        self.accumulate("b", wide.reshape(o, -1).sum(axis=1))
        kernels = self.params["W"].reshape(o, -1)
        dx = xp.empty(x.shape, dtype=delta.dtype) if self.need_input_grad else None
        step = n if cols is not None else self._examples_per_slice()
        for start in range(0, n, step):
            xs = x[:, start:start + step]
            d = wide[:, start:start + step].reshape(o, -1)
            c = cols if cols is not None else self._im2col(xs)
            self.accumulate_matmul("W", d, c.T)                     # ∂C/∂W = δ · colsᵀ
            if dx is not None:                                      # ∂C/∂x = col2im(Wᵀ · δ)
                dx[:, start:start + step] = col2im(kernels.T @ d, xs.shape, self.kernel_size,
                                                   self.stride, self.padding)
        return None if dx is None else channel_major(dx)

    def _im2col(self, x):
        return im2col(x, self.kernel_size, self.stride, self.padding)

    def _examples_per_slice(self) -> int:
        """How many examples' receptive fields fit in ``workspace_bytes``."""
        (ho, _), (kh, kw), (_, w) = self.output_hw, self.kernel_size, self.input_shape[1:]
        wq = row_pitch(w, self.kernel_size, self.stride, self.padding)
        per_example = ho * wq * self.in_channels * kh * kw * self.params["W"].itemsize
        return max(1, self.workspace_bytes // per_example)

