"""User arrays from files: ``.npy``, ``.npz``, ``.csv``, and ``.png`` digit images.

Used by ``predict`` and ``train`` on the user's own data. Nothing here ever
unpickles (``allow_pickle=False`` always): a data file must not be able to run
code.
"""
from __future__ import annotations

import csv
import os
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from .dataset import Dataset, validate_dataset
from .idx import MAX_DEFLATE_RATIO

SUPPORTED = (".csv", ".npy", ".npz", ".png")
_ENCODING = "utf-8-sig"         # UTF-8, skipping the byte-order mark Excel writes
MNIST_SIDE = 28
#: the longest side a digit picture may have (a 48-megapixel phone photo's is 8064): a PNG
#: header can declare 60 000 × 60 000 pixels in a few kilobytes, which decode to tens of
#: gigabytes of floats, and the picture is padded to a square of its longest side before
#: resizing
MAX_PNG_SIDE = 8192
#: what np.load raises for a damaged .npz: bad zip or header, cut short, bad deflate data
_NPZ_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error)


def load_array(path: str | os.PathLike) -> np.ndarray:
    """Load one array from ``.npy``, ``.npz`` (key ``x`` or its single array), ``.csv`` or ``.png``.

    A ``.png`` becomes a (1, 784) float32 row in the MNIST convention (see
    :func:`load_digit_png`). Raises :class:`DataError` for a missing file, an
    unsupported extension or unreadable content.
    """
    path = Path(path)
    _require_file(path)             # first: a folder such as "." has no name or type to judge
    loader = _LOADERS.get(path.suffix.lower())
    if loader is None:
        raise DataError(f"{path.name}: unsupported file type {path.suffix or '(none)'!r} "
                        f"(supported: {', '.join(SUPPORTED)})")
    return loader(path)


def load_labelled_csv(path: str | os.PathLike, label_column: int | str = -1, *,
                      n_classes: int | None = None) -> Dataset:
    """A CSV table of features plus one integer label column, as a checked :class:`Dataset`.

    ``label_column`` is a column index (0 = first, -1 = last) or, when the file
    has a header line, a column name.
    """
    path = Path(path)
    if path.suffix.lower() != ".csv":
        raise DataError(f"{path.name}: load_labelled_csv reads .csv files, got {path.suffix or 'no extension'!r}")
    _require_file(path)
    header, table = _read_csv(path)
    column = _column_index(label_column, header, table.shape[1], path.name)
    if table.shape[1] < 2:
        raise DataError(f"{path.name}: needs at least one feature column besides the label column")
    features = np.delete(table, column, axis=1)
    return validate_dataset(features, table[:, column], n_classes=n_classes, name=path.name)


def load_train_test(path: str | os.PathLike) -> tuple[Dataset, Dataset]:
    """(train, test) from your own arrays, for ``nablanet train --dataset PATH``.

    * a ``.npz`` archive with ``x_train``, ``y_train``, ``x_test``, ``y_test`` (the layout
      of Keras' ``mnist.npz``; images of any shape are flattened, uint8 pixels scaled
      to [0, 1]);
    * a folder holding ``train.csv`` and ``test.csv``, features then an integer label
      in the last column (a header line is allowed).
    """
    path = Path(path)
    if path.is_dir():
        return tuple(load_labelled_csv(path / f"{part}.csv") for part in ("train", "test"))
    if path.suffix.lower() != ".npz":
        raise DataError(f"{path}: expected an .npz archive or a folder with train.csv and "
                        "test.csv")
    _require_file(path)
    want = ("x_train", "y_train", "x_test", "y_test")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in want if k not in archive]
            if missing:
                raise DataError(f"{path.name}: missing arrays {', '.join(missing)} "
                                f"(needs {', '.join(want)})")
            arrays = {k: archive[k] for k in want}
    except _NPZ_ERRORS as err:
        raise DataError(f"{path.name}: not a readable .npz of plain numeric arrays ({err})") from err
    return tuple(validate_dataset(_as_pixels(arrays[f"x_{part}"]), arrays[f"y_{part}"],
                                  name=f"{path.name}:{part}") for part in ("train", "test"))


def _as_pixels(x: np.ndarray) -> np.ndarray:
    """Rows of features; uint8 images become floats in [0, 1] as MNIST's are."""
    x = x.reshape(len(x), -1) if x.ndim > 2 else x
    return x * np.float32(1 / 255) if x.dtype == np.uint8 else x


def load_digit_png(path: str | os.PathLike) -> np.ndarray:
    """A picture of one digit as a (1, 784) float32 row: white digit on black, 28 × 28, in [0, 1].

    MNIST digits are white (1) on black (0), so colour becomes grey (ITU-R 601
    luma), and a light background (the border's mean above 0.5) is inverted. A
    transparent background counts as background whatever its colour. Other
    sizes are padded to a square (so the digit is not squashed) and resized.
    """
    path = Path(path)
    try:
        from matplotlib import image as mpimg           # imported late: matplotlib is slow to import
        from PIL import Image                           # matplotlib reads images with Pillow
    except ImportError as err:
        raise DataError(f"{path.name}: reading .png needs matplotlib (pip install matplotlib)") from err
    try:
        _check_declared_size(path, Image)
        pixels = np.asarray(mpimg.imread(path))
    except Image.DecompressionBombError:                # past twice Pillow's own limit
        raise DataError(f"{path.name}: image too large for a digit (at most {MAX_PNG_SIDE} "
                        "pixels on a side)") from None
    except DataError:
        raise
    except (OSError, ValueError, SyntaxError) as err:   # Pillow's errors for non-images
        raise DataError(f"{path.name}: not a readable PNG image ({err})") from err
    grey = _to_grey(_unit_range(pixels), path.name)
    if _border_mean(grey) > 0.5:
        grey = 1.0 - grey
    return _resize_square(grey, MNIST_SIDE).reshape(1, -1).astype(np.float32)


def _check_declared_size(path: Path, Image) -> None:
    """Refuse, from the header alone, a picture too large for a digit or for its file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)   # judged here
        with Image.open(path) as image:                 # reads the header only
            (width, height), mode, kind = image.size, image.mode, image.format
    if max(width, height) > MAX_PNG_SIDE:
        raise DataError(f"{path.name}: image too large for a digit (at most {MAX_PNG_SIDE} "
                        f"pixels on a side, got {width} × {height})")
    # A PNG's pixels are deflated, at most MAX_DEFLATE_RATIO bytes from each stored one,
    # and a pixel takes a byte at least (a bit in mode "1").
    size = path.stat().st_size
    if kind == "PNG" and width * height * (1 if mode == "1" else 8) > 8 * MAX_DEFLATE_RATIO * size:
        raise DataError(f"{path.name}: the PNG header declares {width} × {height} pixels, "
                        f"more than its {size} bytes can hold")


def _require_file(path: Path) -> None:
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a data file")
    if not path.is_file():
        raise DataError(f"{path}: no such file")


#: how every .npy file starts (NumPy's format), and an .npz: a zip archive
_NPY_MAGIC, _ZIP_MAGIC = b"\x93NUMPY", b"PK\x03\x04"


def _load_npy(path: Path) -> np.ndarray:
    try:
        with open(path, "rb") as f:
            start = f.read(len(_NPY_MAGIC))
    except OSError as err:
        raise DataError(f"{path.name}: not a readable .npy file ({err})") from err
    if not start.startswith(_ZIP_MAGIC) and start != _NPY_MAGIC:
        # np.load takes any other bytes for a pickle and says so, misleadingly
        raise DataError(f"{path.name}: not a .npy file (it does not start with NumPy's "
                        "header)")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as err:                           # object arrays need pickle; also bad headers
        raise DataError(f"{path.name}: not a plain numeric .npy array ({err})") from err
    except _NPZ_ERRORS as err:          # the zip magic, then a damaged archive: np.load opens it
        raise DataError(f"{path.name}: not a readable .npy file ({err})") from err
    if not isinstance(array, np.ndarray):               # np.load sniffs content: a renamed .npz
        array.close()
        raise DataError(f"{path.name}: is an .npz archive, not a .npy array; rename it to .npz")
    return array


def _load_npz(path: Path) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.keys())
            key = "x" if "x" in keys else keys[0] if len(keys) == 1 else None
            if key is not None:
                return archive[key]
    except _NPZ_ERRORS as err:
        raise DataError(f"{path.name}: not a readable .npz of plain numeric arrays ({err})") from err
    raise DataError(f"{path.name}: holds arrays {', '.join(keys) or '(none)'}; "
                    "expected one named 'x' or a single array")


def _load_csv(path: Path) -> np.ndarray:
    return _read_csv(path)[1]


def _read_csv(path: Path) -> tuple[list[str] | None, np.ndarray]:
    """(header names or None, float64 table of n rows × d columns).

    The first line is a header when one of its cells holds a name (a non-empty cell
    that is not a number): a first data row with a missing value stays data, and its
    empty cell is reported. On a bad cell the file is scanned again to report its
    row and column (1-based, as a spreadsheet shows them); the fast path is one
    ``np.loadtxt``. Text is UTF-8, with or without the byte-order mark a
    spreadsheet's "CSV UTF-8" export writes; quoted numbers ("0.5") are numbers.
    """
    try:
        header, table = _parse_csv(path)
    except UnicodeDecodeError as err:
        # err.start counts from the decoded chunk, not the file: name the byte, not where.
        raise DataError(f"{path.name}: not a UTF-8 text CSV file (it holds the byte "
                        f"0x{err.object[err.start]:02X}; binary, or another encoding)") from None
    if table.size == 0:
        raise DataError(f"{path.name}: no data rows")
    return header, table


def _parse_csv(path: Path) -> tuple[list[str] | None, np.ndarray]:
    with open(path, newline="", encoding=_ENCODING) as f:
        first = next(csv.reader(f), None)
    if first is None:
        raise DataError(f"{path.name}: empty CSV file")
    header = [c.strip() for c in first] if any(_is_name(cell) for cell in first) else None
    skip = 0 if header is None else 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)   # "input contained no data": raised later
            table = np.loadtxt(path, delimiter=",", skiprows=skip, ndmin=2, dtype=np.float64,
                               encoding=_ENCODING, quotechar='"')
    except UnicodeDecodeError:                       # a ValueError too, but not a bad cell
        raise
    except ValueError as err:
        raise DataError(_locate_csv_problem(path, skip) or f"{path.name}: {err}") from err
    return header, table


def _locate_csv_problem(path: Path, skip: int) -> str | None:
    """The first non-numeric cell or ragged row, as a one-line message (slow path, errors only)."""
    with open(path, newline="", encoding=_ENCODING) as f:
        rows = csv.reader(f)
        width = None
        for line, row in enumerate(rows, start=1):
            if line <= skip or not row:
                continue
            if width is not None and len(row) != width:
                return f"{path.name}: row {line} has {len(row)} columns, expected {width}"
            width = len(row)
            for column, cell in enumerate(row, start=1):
                if not _is_number(cell):
                    what = f"non-numeric value {cell.strip()!r}" if cell.strip() else "empty cell"
                    return f"{path.name}: {what} at row {line}, column {column}"
    return None


def _is_name(cell: str) -> bool:
    return bool(cell.strip()) and not _is_number(cell)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _column_index(label_column: int | str, header: list[str] | None, width: int, name: str) -> int:
    if isinstance(label_column, str):
        if header is None:
            raise DataError(f"{name}: has no header line, so label_column must be an index, "
                            f"got {label_column!r}")
        if label_column not in header:
            raise DataError(f"{name}: no column named {label_column!r} (columns: {', '.join(header)})")
        return header.index(label_column)
    # Integers only, as for every integer setting in a config (2.0 would index as a float).
    if isinstance(label_column, bool) or not isinstance(label_column, (int, np.integer)):
        raise ConfigError(f"label_column must be a column index (an integer) or a column "
                          f"name, got {label_column!r}")
    if not -width <= label_column < width:
        raise DataError(f"{name}: label_column {label_column} is out of range for {width} columns")
    return label_column % width


def _unit_range(pixels: np.ndarray) -> np.ndarray:
    """Pixel values as floats in [0, 1] (imread gives floats for PNG, integers for some modes)."""
    if np.issubdtype(pixels.dtype, np.integer):
        return pixels / np.iinfo(pixels.dtype).max
    return pixels.astype(np.float64, copy=False)


def _to_grey(pixels: np.ndarray, name: str) -> np.ndarray:
    """(h, w) intensity from grey, grey+alpha, RGB or RGBA pixels."""
    if pixels.ndim == 2:
        return pixels
    if pixels.ndim != 3 or pixels.shape[2] not in (2, 3, 4):
        raise DataError(f"{name}: unsupported image shape {pixels.shape} (expected grey, RGB or RGBA)")
    colour, alpha = (pixels[..., :-1], pixels[..., -1]) if pixels.shape[2] in (2, 4) else (pixels, None)
    grey = colour[..., 0] if colour.shape[2] == 1 else colour @ np.array([0.299, 0.587, 0.114])
    if alpha is not None and _border_mean(alpha) < 0.5:
        # Strokes on a transparent background: the ink is where the image is opaque,
        # whether it was drawn in black or in white.
        return alpha
    return grey


def _border_mean(image: np.ndarray) -> float:
    """Mean of the outermost rows and columns: what the background looks like."""
    border = np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]])
    return float(border.mean())


#: a picture over this many times the target side is first shrunk by box means
SHRINK_FIRST_ABOVE = 4


def _box_shrink(image: np.ndarray, factor: int) -> np.ndarray:
    """Means of factor × factor blocks: exact area averaging, so no stroke is skipped. Each
    side is first padded with black (as :func:`_resize_square` pads) to a multiple of
    ``factor``, evenly on both edges so the picture stays centred."""
    h, w = (-(-n // factor) * factor for n in image.shape)
    top, left = (h - image.shape[0]) // 2, (w - image.shape[1]) // 2
    padded = np.zeros((h, w))
    padded[top:top + image.shape[0], left:left + image.shape[1]] = image
    return padded.reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def _resize_square(image: np.ndarray, side: int) -> np.ndarray:
    """Pad (with black) to a square, then resize to side × side with linear interpolation.

    A picture more than ``SHRINK_FIRST_ABOVE`` times too large (a phone photo) is first
    shrunk by block means: the anti-aliasing blur's kernel grows with the shrink, and at
    full size it took 8 s for a 4096 × 4096 picture and a minute for a 28 × 8000 strip."""
    from scipy import ndimage

    h, w = image.shape
    if (h, w) == (side, side):
        return image
    factor = max(h, w) // (SHRINK_FIRST_ABOVE * side)
    if factor >= 2:
        image = _box_shrink(image, factor)
        h, w = image.shape
    n = max(h, w)
    square = np.zeros((n, n))
    top, left = (n - h) // 2, (n - w) // 2
    square[top:top + h, left:left + w] = image
    scale = side / n
    if scale < 1:
        # Blur before shrinking so thin strokes are averaged, not skipped (anti-aliasing).
        square = ndimage.gaussian_filter(square, sigma=(1 / scale - 1) / 2)
    return np.clip(ndimage.zoom(square, scale, order=1), 0.0, 1.0)


_LOADERS = {".npy": _load_npy, ".npz": _load_npz, ".csv": _load_csv, ".png": load_digit_png}
