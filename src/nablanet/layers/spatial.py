"""What every layer on images shares: the (C, H, W) input check and the memory layout.

The contract's arrays are NCHW (examples, channels, rows, columns), as in PyTorch.
Inside, the image layers work channel-major, (C, N, H, W): a layer reads
``channel_major(x)`` and returns its (C, N, H, W) result through the same view. The
view costs nothing, element-wise layers in between (ReLU, dropout) keep the layout,
and in it every image row is a contiguous run in memory, so the copies of im2col,
col2im and pooling move whole rows rather than a few channels at a time — what
matters for nets with few channels (LeNet-5's 1, 6 and 16). A single-channel batch
(MNIST after ``Reshape``) is already channel-major.
"""
from __future__ import annotations

from ..errors import ConfigError, DataError
from .base import Layer


def channel_major(x):
    """(N, C, H, W) viewed as (C, N, H, W), and back: the transpose is its own inverse."""
    return x.transpose(1, 0, 2, 3)


class ImageLayer(Layer):
    """A layer whose per-example input is an image stack (C, H, W)."""

    input_shape: tuple[int, int, int] | None = None

    def _image_shape(self, input_shape) -> tuple[int, int, int]:
        """Check the per-example shape given at build time; return (C, H, W)."""
        name = type(self).__name__
        if len(input_shape) != 3:
            hint = "; add a Reshape layer first, e.g. Reshape((1, 28, 28))" \
                if len(input_shape) == 1 else ""
            raise ConfigError(f"{name} expects images (channels, height, width) per example, "
                              f"got shape {tuple(input_shape)}{hint}")
        self.input_shape = tuple(int(s) for s in input_shape)
        return self.input_shape

    def _check_images(self, x) -> None:
        """DataError unless ``x`` is a batch (N, C, H, W) of the images this layer was built for."""
        name, want = type(self).__name__, self.input_shape
        if x.ndim != 4:
            raise DataError(f"{name} expects a batch of images (N, C, H, W), got an array of "
                            f"shape {tuple(x.shape)}")
        if x.shape[1] != want[0]:
            raise DataError(f"{name} expects {want[0]} channel(s), got {x.shape[1]} "
                            f"(batch shape {tuple(x.shape)})")
        if tuple(x.shape[2:]) != want[1:]:
            raise DataError(f"{name} expects {want[1]}×{want[2]} images, got "
                            f"{x.shape[2]}×{x.shape[3]}")
