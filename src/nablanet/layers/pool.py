"""Pooling (LeNet-5's subsampling, Nielsen ch. 6's max-pooling, AlexNet's overlapping pools).

Each output pixel summarises one kh × kw window of its own channel, windows placed
every ``stride`` pixels; stride < kernel gives overlapping windows (AlexNet: 3 × 3,
stride 2). Both layers loop over the kh·kw kernel offsets, each a strided slice of the
whole batch, never over pixels or examples. On a GPU, where each slice operation is a
kernel launch, the forward pass is instead one reduction over a view of every window,
and max-pooling's backward pass (windows apart) one scatter of δ through that view.

* max-pooling: y = max over the window; ∂C/∂x routes δ to the (first) maximum only.
* average pooling: y = mean over the window; ∂C/∂x spreads δ/(kh·kw) over it.

Padding pads with −∞ for max and with zeros for average pooling, and the average
divides by kh·kw including the padded zeros (PyTorch's defaults).
"""
from __future__ import annotations

from ..errors import ConfigError
from ..functional.windows import offset_view, output_size, pad_spatial, pair, window_view
from ..gpu_kernels import on_gpu
from .base import register
from .spatial import ImageLayer, channel_major


class _Pool2D(ImageLayer):
    """Window geometry and the offset loop shared by max and average pooling."""

    pad_value = 0.0

    def __init__(self, kernel_size=2, stride=None, padding=0):
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(self.kernel_size if stride is None else stride, "stride")
        self.padding = pair(padding, "padding", minimum=0)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ConfigError(f"{type(self).__name__} padding {self.padding} must be at most "
                              f"half the kernel {self.kernel_size}")

    def build(self, input_shape, backend, rng):
        self.backend = backend
        c, h, w = self._image_shape(input_shape)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if kh > h + 2 * ph or kw > w + 2 * pw:
            raise ConfigError(f"{type(self).__name__} window {kh}×{kw} is larger than the "
                              f"padded input {h + 2 * ph}×{w + 2 * pw}")
        self.output_hw = (output_size(h, kh, sh, ph), output_size(w, kw, sw, pw))
        return (c, *self.output_hw)

    def config(self):
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": list(self.padding)}

    @property
    def overlapping(self) -> bool:
        return any(s < k for s, k in zip(self.stride, self.kernel_size))

    def _fold(self, x, combine, reduce):
        """Every window of ``x`` reduced offset by offset: ``combine(acc, view, out=acc)``;
        on a GPU in one ``reduce(windows, axis=(4, 5))``."""
        if on_gpu(x):
            return reduce(self._windows(x), axis=(4, 5))
        y = None
        for view in self._offsets(x):
            if y is None:
                y = view.copy()
            else:
                combine(y, view, out=y)
        return y

    def _windows(self, x):
        """(C, N, Ho, Wo, kh, kw): every window of channel-major ``x``, as a view."""
        return window_view(x, self.kernel_size, self.stride, self.output_hw)

    def _offsets(self, x):
        """The pixels each kernel offset sees in every window, one strided view per offset."""
        (kh, kw) = self.kernel_size
        for i in range(kh):
            for j in range(kw):
                yield offset_view(x, i, j, self.output_hw, self.stride)

    def _padded(self, x):
        self._check_images(x)
        return pad_spatial(channel_major(x), self.padding, self.pad_value)

    def _unpadded(self, dx):
        (ph, pw), (_, h, w) = self.padding, self.input_shape
        return channel_major(dx[:, :, ph:ph + h, pw:pw + w])


@register
class MaxPool2D(_Pool2D):
    """Max-pooling: y = max of each window; δ flows back to the window's first maximum."""

    pad_value = float("-inf")

    def forward(self, x, train=False):
        x = self._padded(x)
        xp = self.backend.xp
        y = self._fold(x, xp.maximum, xp.max)
        return channel_major(y), (x, y)

    def backward(self, dy, cache):
        x, y = cache
        xp = self.backend.xp
        dy = channel_major(dy)
        dx = xp.zeros(x.shape, dtype=dy.dtype)
        if on_gpu(dx) and not self.overlapping:
            # The same rule in a handful of launches: the first maximum of each window
            # (argmax keeps the first of ties) takes δ; windows apart, so plain assignment.
            kh, kw = self.kernel_size
            first = self._windows(x).reshape(*y.shape, kh * kw).argmax(axis=-1)
            hit = first[..., None] == xp.arange(kh * kw)
            self._windows(dx)[...] = (dy[..., None] * hit).reshape(*y.shape, kh, kw)
            return self._unpadded(dx)
        unclaimed = xp.ones(y.shape, dtype=bool)
        for view, dview in zip(self._offsets(x), self._offsets(dx)):
            # The first offset holding the maximum claims the window's δ (ties: first wins).
            hit = view == y
            hit &= unclaimed
            unclaimed ^= hit
            if self.overlapping:
                dview += dy * hit
            else:                                 # each pixel is in one window: assign
                xp.multiply(dy, hit, out=dview)
        return self._unpadded(dx)


@register
class AvgPool2D(_Pool2D):
    """Average pooling (LeNet-5's subsampling without its trainable coefficient)."""

    def forward(self, x, train=False):
        x = self._padded(x)
        xp = self.backend.xp
        y = self._fold(x, xp.add, xp.sum)
        y *= y.dtype.type(1.0 / (self.kernel_size[0] * self.kernel_size[1]))
        return channel_major(y), x.shape

    def backward(self, dy, shape):
        dx = self.backend.xp.zeros(shape, dtype=dy.dtype)
        share = channel_major(dy) * dy.dtype.type(1.0 / (self.kernel_size[0] * self.kernel_size[1]))
        for dview in self._offsets(dx):
            dview += share
        return self._unpadded(dx)
