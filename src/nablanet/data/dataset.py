"""Checked (x, y) pairs: the one format every model and training loop receives.

``x`` is a 2-D float array, one example per row (n × d). ``y`` is either a 1-D
int64 array of class labels 0..K-1 (classification; never one-hot here, so
training and test data share one format) or a 2-D float array of targets
(regression, autoencoders). The checks run once, when the data enters the
library, so a NaN pixel or a label 10 in a 10-class problem is reported with
its row instead of surfacing epochs later as a NaN cost or an index error.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import NamedTuple

import numpy as np

from ..errors import DataError


@dataclass(frozen=True, eq=False)
class Dataset:
    """Examples ``x`` (n × d float) with labels or targets ``y``; checked on construction.

    Construction converts ``x`` to float (float32 unless it already is float64)
    and integral float labels to int64, and raises :class:`DataError` for
    anything malformed (see :func:`validate_dataset`).
    """

    x: np.ndarray
    y: np.ndarray
    name: str = "data"

    def __post_init__(self) -> None:
        x = _as_float_matrix(self.x, self.name)
        y = _as_targets(self.y, self.name)
        if len(x) != len(y):
            raise DataError(f"{self.name}: x has {len(x)} examples but y has {len(y)}")
        # Frozen dataclass: the converted arrays replace the originals once, here.
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def n_features(self) -> int:
        """d, the number of input features per example."""
        return self.x.shape[1]


class Splits(NamedTuple):
    """Train / validation / test sets; a split that does not exist is ``None``.

    A tuple so that ``train, validation, test = load_mnist()`` reads like
    Nielsen's ``mnist_loader``.
    """

    train: Dataset | None
    validation: Dataset | None
    test: Dataset | None


def validate_dataset(x, y, *, n_features: int | None = None, n_classes: int | None = None,
                     name: str = "data") -> Dataset:
    """Check and convert ``(x, y)`` into a :class:`Dataset`, or raise :class:`DataError`.

    ``n_features``: the expected d; images (n, 28, 28) are flattened to (n, 784)
    when ``n_features=784``. ``n_classes``: K; labels must then be 1-D integers
    in [0, K). With ``n_classes=None`` a 2-D float ``y`` is accepted as
    regression targets (checked only for finiteness and length). Pixel values
    are not rescaled here: uint8 images become float32 0..255.
    """
    x = _flatten_to(_as_array(x, name, "x"), n_features, name)
    dataset = Dataset(x, y, name)
    if n_classes is not None:
        check_label_range(dataset.y, n_classes, name)
    return dataset


def check_representable(x: np.ndarray, dtype, name: str = "data") -> None:
    """Raise :class:`DataError` unless every value of ``x`` fits the float type ``dtype``.

    A float64 value beyond float32's ±3.4e38 becomes inf when a float32 net reads
    it, and its outputs NaN: report the value where it enters instead.
    """
    limit = np.finfo(dtype).max
    if not np.issubdtype(x.dtype, np.floating) or np.finfo(x.dtype).max <= limit:
        return
    big = np.abs(x) > limit
    if big.any():
        row = int(np.argmax(big.reshape(len(x), -1).any(axis=1)))
        raise DataError(f"{name}: x has {int(big.sum())} values beyond the model's "
                        f"{np.dtype(dtype).name} range (±{limit:.3g}), first in row {row}")


def hold_out_last(dataset: Dataset, n: int, *,
                  names: tuple[str, str] = ("train", "validation")) -> tuple[Dataset, Dataset | None]:
    """Split off the last ``n`` examples as a second set (views, no copy).

    The last rows, not a random draw, as Nielsen's ``mnist_loader`` does with the
    60 000 MNIST training images (50 000 train + 10 000 validation), so results
    are comparable with the book's. ``n == 0`` gives no second set.
    """
    if not 0 <= n < len(dataset):
        raise DataError(f"{dataset.name}: cannot hold out {n} of {len(dataset)} examples "
                        f"(need 0 <= n < {len(dataset)})")
    if n == 0:
        return Dataset(dataset.x, dataset.y, names[0]), None
    cut = len(dataset) - n
    return (Dataset(dataset.x[:cut], dataset.y[:cut], names[0]),
            Dataset(dataset.x[cut:], dataset.y[cut:], names[1]))


def _flatten_to(x: np.ndarray, n_features: int | None, name: str) -> np.ndarray:
    """Reshape (n, h, w, ...) to (n, n_features) when the sizes agree; check d otherwise."""
    if n_features is None or x.ndim < 2:
        return x                                      # shape errors are reported by Dataset
    got = prod(x.shape[1:])
    if got != n_features:
        detail = "" if x.ndim == 2 else f" (shape {x.shape})"
        raise DataError(f"{name}: expected {n_features} features per example, got {got}{detail}")
    return x.reshape(len(x), n_features)


def check_dataset(data, what: str) -> None:
    """Checked once per call: a bare (x, y) tuple would fail as "no attribute 'x'"."""
    if not (hasattr(data, "x") and hasattr(data, "y")):
        raise DataError(f"{what} must be a Dataset, got {type(data).__name__}; wrap arrays "
                        "as nablanet.data.Dataset(x, y)")


def check_values(x, name: str = "data", what: str = "x") -> None:
    """Raise :class:`DataError` unless ``x`` (n examples of any shape; NumPy or CuPy) holds
    real numbers with no NaN or inf: the value checks of a :class:`Dataset`, for inputs that
    reach a model without one (``Sequential.predict``, an RBM's ``transform``)."""
    _check_numeric(x, name, what)
    if x.ndim:
        _check_finite(x, name, what)


def _check_numeric(x, name: str, what: str) -> None:
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)
            or x.dtype == np.bool_):
        raise DataError(f"{name}: {what} must be numeric, got dtype {x.dtype}")


def _as_float_matrix(x, name: str) -> np.ndarray:
    """x as a non-empty, finite n × d float32/float64 array."""
    x = _as_array(x, name, "x")
    _check_numeric(x, name, "x")
    if x.ndim != 2:
        hint = f"; pass n_features={prod(x.shape[1:])} to flatten" if x.ndim > 2 else ""
        raise DataError(f"{name}: x must be 2-D (examples × features), got shape {x.shape}{hint}")
    if len(x) == 0:
        raise DataError(f"{name}: x has 0 examples")
    if x.shape[1] == 0:
        raise DataError(f"{name}: x has 0 features per example")
    # float64 is kept when given (gradient checks need it); everything else is float32.
    x = x if x.dtype in (np.float32, np.float64) else x.astype(np.float32)
    _check_finite(x, name, "x")
    return x


def _as_targets(y, name: str) -> np.ndarray:
    """1-D int64 class labels, or 2-D float regression targets."""
    y = _as_array(y, name, "y")
    if y.ndim == 2:
        if not (np.issubdtype(y.dtype, np.number) or y.dtype == np.bool_):
            raise DataError(f"{name}: y must be numeric, got dtype {y.dtype}")
        y = y if y.dtype in (np.float32, np.float64) else y.astype(np.float32)
        _check_finite(y, name, "y")
        return y
    if y.ndim != 1:
        raise DataError(f"{name}: y must be 1-D class labels or 2-D targets, got shape {y.shape}")
    return as_class_labels(y, name)


def as_class_labels(y: np.ndarray, name: str) -> np.ndarray:
    """Class labels as int64 ≥ 0; integral floats (3.0) are accepted, 2.5 and NaN are not."""
    if np.issubdtype(y.dtype, np.floating):
        _check_finite(y, name, "y")
        fractional = y != np.round(y)
        if fractional.any():
            row = int(np.argmax(fractional))
            raise DataError(f"{name}: class labels must be integers, got {y[row]} at row {row}")
    elif not (np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_):
        raise DataError(f"{name}: class labels must be integers, got dtype {y.dtype}")
    # Checked before the cast: beyond int64 it wraps around (1e30 → −2⁶³), and
    # a negative label would silently index the last class of a one-hot table.
    if y.dtype != np.bool_:
        # floats compare with a float64 2⁶³ (cast to float16 it overflows with a warning);
        # integers with the exact one (as a float64, 2⁶³ − 1 would round up to it)
        limit = np.float64(2 ** 63) if np.issubdtype(y.dtype, np.floating) else 2 ** 63
        for bad, problem in ((y < 0, "is negative"), (y >= limit, "is out of range")):
            if bad.any():
                row = int(np.argmax(bad))
                raise DataError(f"{name}: label {y[row]} at row {row} {problem} "
                                "(labels are 0..K-1)")
    return y.astype(np.int64, copy=False)


def check_label_range(y: np.ndarray, n_classes: int, name: str) -> None:
    if y.ndim != 1:
        raise DataError(f"{name}: n_classes={n_classes} needs 1-D integer labels, got y of shape {y.shape}")
    bad = (y < 0) | (y >= n_classes)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"{name}: label {y[row]} at row {row} is out of range [0, {n_classes})")


def _as_array(a, name: str, what: str) -> np.ndarray:
    """``np.asarray(a)``, with NumPy's "inhomogeneous shape" for ragged rows as one DataError."""
    try:
        return np.asarray(a)
    except ValueError:
        raise DataError(f"{name}: {what} rows have different lengths "
                        "(not a rectangular array)") from None


def _check_finite(a: np.ndarray, name: str, what: str) -> None:
    """Raise with the count and the first row of NaN/inf values, the two facts needed to fix them."""
    if not np.issubdtype(a.dtype, np.floating):
        return
    finite = np.isfinite(a)
    if finite.all():
        return
    bad = ~finite
    row = int(np.argmax(bad.reshape(len(a), -1).any(axis=1)))
    raise DataError(f"{name}: {what} has {int(bad.sum())} non-finite values (NaN or inf), "
                    f"first in row {row}")
