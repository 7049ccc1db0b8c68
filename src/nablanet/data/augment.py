"""Data augmentation: more training digits from the ones we have.

Nielsen ch. 6; Simard, Steinkraus & Platt 2003.

* :func:`shift_images` / :func:`expand_by_shifts` — Nielsen's ``expand_mnist.py``:
  every image plus its four one-pixel shifts (up, down, left, right), so 50 000
  training images become 250 000.
* :func:`random_shift` — the same expansion drawn on the fly: each image as it is or
  shifted one pixel, a fresh choice every time.
* :func:`random_affine` — rotation, translation, shear (skew) and scaling, a fresh
  random map per image.
* :func:`elastic_distortion` — Simard, Steinkraus & Platt (2003): a random
  displacement field, Δx and Δy uniform in (−1, 1) at every pixel, smoothed by a
  Gaussian of width σ and scaled by α; each pixel is then read from where the field
  points (bilinear interpolation). σ ≈ 4 and α ≈ 34 for 28 × 28 digits.

All of them take a batch of images (n, H, W) — or flat rows with ``image_shape`` —
and a ``numpy.random.Generator``, warp the whole batch in one ``scipy.ndimage`` call,
and return float arrays of the same shape. The batch index is a coordinate of the
warp that is never moved, which is exact with linear interpolation (order 1); higher
spline orders would blend neighbouring images, so they are not offered.

Use them on the fly — a :class:`~nablanet.layers.augment.RandomDistortion` first layer
distorts every mini-batch afresh while training (drawing from the trainer's seeded
generator) and passes inputs through untouched at test time — or pre-expanded
(:func:`expand`, :func:`expand_by_shifts`).
"""
from __future__ import annotations

import inspect
import numbers
from math import inf, prod

import numpy as np

from ..backend import make_rng, to_host, xp_of
from ..errors import ConfigError, DataError
from ..utils.state import number, whole_number
from .dataset import Dataset, check_dataset, check_values

MNIST_SHAPE = (28, 28)
#: the smallest zoom an affine distortion may draw (and 1 / it the largest)
MIN_ZOOM = 1e-3


# -- helpers -------------------------------------------------------------------------
def _ndimage(xp):
    """scipy.ndimage on the CPU, cupyx.scipy.ndimage for CuPy arrays (same API)."""
    if xp is np:
        import scipy.ndimage
        return scipy.ndimage
    import cupyx.scipy.ndimage
    return cupyx.scipy.ndimage


def _as_images(x, image_shape):
    """(n, H, W) view of ``x`` (flat rows or images) and a function restoring x's shape."""
    if x.ndim == 3:
        return x, lambda images: images
    if x.ndim != 2 or x.shape[1] != prod(image_shape):
        raise DataError(f"expected images (n, H, W) or rows of {prod(image_shape)} pixels "
                        f"(image_shape {tuple(image_shape)}), got an array of shape {x.shape}")
    n = x.shape[0]
    return x.reshape(n, *image_shape), lambda images: images.reshape(n, -1)


def _generator(rng):
    """A NumPy or CuPy generator as given; a seed (int or None) made into one, as elsewhere."""
    return rng if hasattr(rng, "random") else make_rng(rng)


def _uniform(rng, low, high, n, xp):
    """n draws from U(low, high) via ``rng.random`` (NumPy and CuPy generators both have
    it), on the device of ``xp`` whichever generator drew them."""
    return low + (high - low) * xp.asarray(rng.random(n, dtype=np.float64))


def _warp(images, rows, cols):
    """images[n] sampled at (rows[n], cols[n]) by bilinear interpolation, zeros outside."""
    xp = xp_of(images)
    n = images.shape[0]
    index = xp.broadcast_to(xp.arange(n, dtype=rows.dtype)[:, None, None], rows.shape)
    out = _ndimage(xp).map_coordinates(images, xp.stack([index, rows, cols]), order=1,
                                       mode="constant", cval=0.0)
    return out.astype(images.dtype, copy=False)


# -- Nielsen's expansion ------------------------------------------------------------------
def shift_images(x, dy: int, dx: int, image_shape=MNIST_SHAPE):
    """Images moved by (dy, dx) pixels (positive: down, right); vacated pixels are 0."""
    images, restore = _as_images(x, image_shape)
    check_values(images, "shift_images", "images")
    _check_shift((dy, dx), images.shape[1:])
    return restore(_shift(images, int(dy), int(dx)))


def _shift(images, dy: int, dx: int):
    """shift_images on (n, H, W) images, unchecked (random_shift runs it for every batch)."""
    xp = xp_of(images)
    out = xp.zeros_like(images)
    h, w = images.shape[1:]
    if abs(dy) < h and abs(dx) < w:
        out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
            images[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def _check_shift(shift, side) -> None:
    """(dy, dx): whole pixels, each smaller than the image side it moves along (a shift of
    the whole side or more blanked the image without a word)."""
    try:
        dy, dx = shift
    except (TypeError, ValueError):
        dy = dx = None
    if not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) and abs(d) < n
               for d, n in zip((dy, dx), side)):
        raise ConfigError(f"a shift must be (dy, dx), whole pixels below the image size "
                          f"{side[0]}×{side[1]}, got {shift!r}")


#: Nielsen's four one-pixel displacements (expand_mnist.py): up, down, left, right
ONE_PIXEL_SHIFTS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def expand_by_shifts(data: Dataset, image_shape=MNIST_SHAPE, shifts=ONE_PIXEL_SHIFTS) -> Dataset:
    """The originals followed by each shifted copy: n → 5n (50 000 → 250 000 for MNIST)."""
    check_dataset(data, "data")
    if isinstance(shifts, str) or not hasattr(shifts, "__iter__"):
        raise ConfigError(f"shifts must be a list of (dy, dx) pairs, got {shifts!r}")
    shifts = list(shifts)
    images, restore = _as_images(data.x, image_shape)
    for shift in shifts:                         # all of them before the first copy is made
        _check_shift(shift, images.shape[1:])
    # _shift, not shift_images: a Dataset's x is finite, no need to scan it once per shift
    x = np.concatenate([data.x] + [restore(_shift(images, int(dy), int(dx)))
                                   for dy, dx in shifts])
    return Dataset(x, np.tile(data.y, 1 + len(shifts)) if data.y.ndim == 1
                   else np.concatenate([data.y] * (1 + len(shifts))), f"{data.name} expanded")


def random_shift(x, rng, *, pixels: int = 1, image_shape=MNIST_SHAPE):
    """Nielsen's expansion drawn afresh: each image unmoved or shifted ``pixels`` up, down,
    left or right, the five equally likely (over many epochs every image is seen in all
    five versions of :func:`expand_by_shifts`, at a fifth of the cost per epoch).
    Whole-pixel moves: no interpolation, so no blur."""
    if isinstance(pixels, bool) or not isinstance(pixels, int) or pixels < 0:
        raise ConfigError(f"shift pixels must be an integer ≥ 0, got {pixels!r}")
    rng = _generator(rng)
    images, restore = _as_images(x, image_shape)
    xp = xp_of(images)
    choice = to_host(rng.integers(0, 1 + len(ONE_PIXEL_SHIFTS), images.shape[0]))
    out = xp.array(images, copy=True)
    for k, (dy, dx) in enumerate(ONE_PIXEL_SHIFTS, start=1):
        picked = xp.asarray(np.flatnonzero(choice == k))
        if len(picked):
            out[picked] = _shift(images[picked], dy * pixels, dx * pixels)
    return restore(out)


# -- random distortions ---------------------------------------------------------------------
def random_affine(x, rng, *, rotation: float = 10.0, translation: float = 2.0,
                  shear: float = 10.0, scale: tuple[float, float] = (0.9, 1.1),
                  image_shape=MNIST_SHAPE):
    """Each image under its own random affine map about the image centre.

    Angles are drawn uniformly from ±``rotation`` and ±``shear`` degrees, the shift
    from ±``translation`` pixels in each direction and the zoom from ``scale``; a
    positive angle turns the digit counter-clockwise as displayed. The output pixel u
    is read from the input at A⁻¹(u − c − t) + c (inverse mapping, so every output
    pixel gets a value).
    """
    _check_affine(rotation, translation, shear, scale)
    rng = _generator(rng)
    images, restore = _as_images(x, image_shape)
    xp = xp_of(images)
    n, h, w = images.shape
    theta = xp.deg2rad(_uniform(rng, -rotation, rotation, n, xp))
    phi = xp.deg2rad(_uniform(rng, -shear, shear, n, xp))
    zoom = _uniform(rng, scale[0], scale[1], n, xp)
    t = _uniform(rng, -translation, translation, (2, n), xp)
    # A = zoom · R(θ) · [[1, tan φ], [0, 1]] acting on (row, col); its inverse is applied.
    cos, sin, tan = xp.cos(theta), xp.sin(theta), xp.tan(phi)
    a = xp.stack([xp.stack([cos, cos * tan - sin]), xp.stack([sin, sin * tan + cos])])
    a = a * zoom                                                  # (2, 2, n)
    det = a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]
    inv = xp.stack([xp.stack([a[1, 1], -a[0, 1]]), xp.stack([-a[1, 0], a[0, 0]])]) / det
    centre = xp.asarray([(h - 1) / 2, (w - 1) / 2])
    r, c = xp.meshgrid(xp.arange(h, dtype=xp.float64), xp.arange(w, dtype=xp.float64),
                       indexing="ij")
    u = xp.stack([r, c])[:, None] - centre[:, None, None, None] - t[:, :, None, None]
    src = xp.einsum("ijn,jnhw->inhw", inv, u) + centre[:, None, None, None]
    return restore(_warp(images, src[0], src[1]))


def elastic_distortion(x, rng, *, alpha: float = 34.0, sigma: float = 4.0,
                       image_shape=MNIST_SHAPE):
    """Simard et al.'s elastic distortion: displacement U(−1, 1) ⊛ Gaussian(σ) · α per image."""
    for key, value in (("alpha", alpha), ("sigma", sigma)):
        number(value, key, finite=False, error=ConfigError)     # None or "34": a TypeError
    rng = _generator(rng)
    if not 0 <= alpha < inf or not 0 < sigma < inf:
        raise ConfigError(f"elastic distortion needs finite alpha ≥ 0 and sigma > 0, got "
                          f"alpha={alpha}, sigma={sigma}")
    images, restore = _as_images(x, image_shape)
    xp = xp_of(images)
    n, h, w = images.shape
    field = _uniform(rng, -1.0, 1.0, (2, n, h, w), xp)
    # Smooth each image's field alone: no blur across the batch axis or between Δy and Δx.
    field = _ndimage(xp).gaussian_filter(field, sigma=(0, 0, sigma, sigma), mode="constant")
    r, c = xp.meshgrid(xp.arange(h, dtype=xp.float64), xp.arange(w, dtype=xp.float64),
                       indexing="ij")
    return restore(_warp(images, r + alpha * field[0], c + alpha * field[1]))


def _check_affine(rotation, translation, shear, scale):
    # Written so that NaN fails: min() with a NaN passed "< 0", and a NaN angle or shift
    # turned every image black.
    ranges = (rotation, translation, shear)
    for key, value in zip(("rotation", "translation", "shear"), ranges):
        number(value, key, finite=False, error=ConfigError)     # None or "10": a TypeError
    if np.ndim(scale) != 1 or len(scale) != 2:                  # scale=1.0: len() TypeError
        raise ConfigError(f"affine scale must be a (low, high) pair, got {scale!r}")
    for value in scale:
        number(value, "scale", finite=False, error=ConfigError)
    if not all(0 <= r < inf for r in ranges) or not 0 < scale[0] <= scale[1] < inf:
        raise ConfigError(f"affine ranges must be finite and ≥ 0 with 0 < scale[0] ≤ "
                          f"scale[1], got rotation={rotation}, translation={translation}, "
                          f"shear={shear}, scale={scale}")
    if shear >= 90:
        raise ConfigError(f"shear must be below 90 degrees, got {shear}")
    if rotation > 180:          # ±180° already turns every way; 1e308 overflowed to NaN
        raise ConfigError(f"rotation must be at most 180 degrees, got {rotation}")
    if not (MIN_ZOOM <= scale[0] and scale[1] <= 1 / MIN_ZOOM):
        # beyond, the map squeezes the image into a point or one pixel over all of it,
        # and its determinant under- or overflows
        raise ConfigError(f"affine scale must lie within [{MIN_ZOOM:g}, {1 / MIN_ZOOM:g}], "
                          f"got {scale}")


DISTORTIONS = {"affine": random_affine, "elastic": elastic_distortion, "shift": random_shift}
#: each distortion's keyword options (image_shape included) and their defaults
OPTIONS = {kind: {name: p.default for name, p in inspect.signature(fn).parameters.items()
                  if p.kind is p.KEYWORD_ONLY} for kind, fn in DISTORTIONS.items()}


def distortion(kind: str, options: dict):
    """The function for ``kind``, once ``kind`` and the names in ``options`` are known ones."""
    if kind not in DISTORTIONS:
        raise ConfigError(f"unknown distortion {kind!r}; choose one of "
                          f"{', '.join(DISTORTIONS)}")
    unknown = sorted(set(options) - set(OPTIONS[kind]))
    if unknown:
        raise ConfigError(f"the {kind} distortion has no option {unknown[0]!r}; its options "
                          f"are {', '.join(OPTIONS[kind])}")
    return DISTORTIONS[kind]


def distort(x, rng, kind: str = "elastic", **options):
    """One random distortion of every image in ``x``: ``kind`` 'affine', 'elastic' or 'shift'.

    ``x`` is checked for NaN and inf here, once; a RandomDistortion layer calls the
    distortion itself for every batch, without that scan (a host wait on a GPU)."""
    fn = distortion(kind, options)
    x = x if hasattr(x, "ndim") else np.asarray(x)
    check_values(x, "distort", "images")
    return fn(x, rng, **options)


def expand(data: Dataset, rng, copies: int = 1, kind: str = "elastic", **options) -> Dataset:
    """A pre-expanded training set: the originals followed by ``copies`` distorted copies."""
    copies = whole_number(copies, "copies", 0, error=ConfigError)    # int() cut 2.5
    check_dataset(data, "data")
    fn = distortion(kind, options)              # a Dataset's x is finite: no scan needed
    rng = _generator(rng)
    parts = [data.x] + [fn(data.x, rng, **options) for _ in range(copies)]
    return Dataset(np.concatenate(parts), np.concatenate([data.y] * (1 + copies)),
                   f"{data.name} + {copies} {kind}")
