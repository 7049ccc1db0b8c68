"""On-the-fly data augmentation as an input layer: new distortions every mini-batch.

Like dropout it has two explicit paths: while training (``train=True``) each batch
is distorted afresh with :mod:`nablanet.data.augment` (random affine maps or Simard's
elastic distortions), drawing from the generator the trainer seeds; at test time
(``train=False``) inputs pass through untouched. Placed first, it needs no backward
pass: no gradient flows below the data, so backward returns None and backprop stops.
"""
from __future__ import annotations

from math import prod

import numpy as np

from ..data.augment import DISTORTIONS, MNIST_SHAPE, OPTIONS, distort, distortion
from ..errors import ConfigError
from .base import Layer, is_size, register


@register
class RandomDistortion(Layer):
    """Distort each training batch (``kind`` 'affine' or 'elastic', keyword ``options``).

    Inputs are single-channel images: flat rows of H·W pixels (``image_shape`` gives
    H, W), (H, W) or (1, H, W) per example.
    """

    stochastic = True

    def __init__(self, kind: str = "elastic", image_shape=MNIST_SHAPE, **options):
        super().__init__()
        self.kind, self.options = kind, dict(options)
        try:
            distortion(kind, self.options)
        except ConfigError as exc:              # an unknown kind, or an option it does not take
            raise ConfigError(f"RandomDistortion: {exc}") from None
        if (not isinstance(image_shape, (list, tuple)) or len(image_shape) != 2
                or not all(is_size(s) for s in image_shape)):
            raise ConfigError(f"RandomDistortion image_shape must be two positive integers "
                              f"(height, width), got {image_shape!r}")
        self.image_shape = tuple(int(s) for s in image_shape)
        # Fail at construction, not mid-training: distort one blank pixel once (the
        # options do not depend on the size, and a model file's image_shape may be huge).
        try:
            if "scale" in self.options:
                self.options["scale"] = tuple(self.options["scale"])
            distort(np.zeros((1, 1, 1)), np.random.default_rng(0), kind,
                    image_shape=self.image_shape, **self.options)
        except TypeError as exc:
            raise ConfigError(f"RandomDistortion({kind!r}): {exc}") from None

    def config(self):
        return {"kind": self.kind, "image_shape": list(self.image_shape),
                **{k: list(v) if isinstance(v, tuple) else v for k, v in self.options.items()}}

    def build(self, input_shape, backend, rng):
        self.backend = backend
        shape = tuple(input_shape)
        if shape not in ((prod(self.image_shape),), self.image_shape, (1, *self.image_shape)):
            if not (len(shape) in (2, 3) and (len(shape) == 2 or shape[0] == 1)):
                raise ConfigError(f"RandomDistortion takes single-channel images, got "
                                  f"per-example shape {shape} (image_shape {self.image_shape})")
            self.image_shape = shape[-2:]
        # Known only now: a move of the whole side blanks the image. A shift moves every
        # image by exactly its pixels; an affine translation is drawn from ±translation, so
        # it may reach the side (only its extreme draws would blank) but not pass it.
        side = min(self.image_shape)
        if self.kind == "shift" and self._setting("pixels") >= side:
            raise ConfigError(f"RandomDistortion shift of {self._setting('pixels')} pixels "
                              f"must be smaller than the {self._images()} images")
        if self.kind == "affine" and self._setting("translation") > side:
            raise ConfigError(f"RandomDistortion affine translation of "
                              f"{self._setting('translation')} pixels must be at most the "
                              f"side of the {self._images()} images")
        return shape

    def _images(self) -> str:
        return f"{self.image_shape[0]}×{self.image_shape[1]}"

    def _setting(self, name):
        """An option as the distortion will use it: the one given, or the function's default."""
        return self.options.get(name, OPTIONS[self.kind][name])

    def forward(self, x, train=False):
        if not train:
            return x, None
        flat = x.reshape(len(x), -1)
        # the distortion itself, not distort(): no NaN scan (and GPU wait) for every batch
        out = DISTORTIONS[self.kind](flat, self.rng, image_shape=self.image_shape,
                                     **self.options)
        return out.reshape(x.shape).astype(x.dtype, copy=False), None

    def backward(self, dy, cache):
        return None
