"""IDX files (the MNIST format): read, write, and load a directory of the four standard files.

The format (LeCun, http://yann.lecun.com/exdb/mnist/): a 4-byte magic number
``00 00 TT NN`` (two zero bytes, a type code TT, the number of dimensions NN),
then NN big-endian uint32 sizes, then the values in C order, big-endian.
Fashion-MNIST, KMNIST and EMNIST use the same format and file names, so
:func:`load_idx_dir` reads any of them.
"""
from __future__ import annotations

import gzip
import os
import zlib
from contextlib import contextmanager
from math import prod
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

from ..errors import DataError
from ..utils.atomic import atomic_path
from .dataset import Dataset, Splits

# IDX type code → big-endian dtype of the stored values.
_TYPE_CODES = {
    0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
_CODE_OF = {dtype.newbyteorder("="): code for code, dtype in _TYPE_CODES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20
#: the most bytes deflate can give per compressed byte (RFC 1951's longest run costs
#: about 1/1032 of its length), which bounds what a gzip file can honestly hold
MAX_DEFLATE_RATIO = 1032

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def read_idx(path: str | os.PathLike, *, dtype=None, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file, plain or gzip-compressed, into a native-endian, writable array.

    Compression is detected from the gzip magic bytes, not the file name. When
    ``dtype``/``ndim`` are given the header must declare exactly those (MNIST
    images are uint8 3-D, labels uint8 1-D), so a swapped images/labels file is
    caught at the header. Raises :class:`DataError` for a bad magic number, a
    truncated header, data shorter or longer than the dimensions say, or a
    corrupted gzip stream.
    """
    path = Path(path)
    try:
        with _open_maybe_gzip(path) as stream:
            return _read_idx_stream(stream, path.name, dtype, ndim, path.stat().st_size)
    except FileNotFoundError as err:
        raise DataError(f"{path}: no such file") from err
    except OSError as err:                             # a directory, no permission, ...
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from err


def write_idx(path: str | os.PathLike, array, compress: bool = True) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed unless ``compress=False``), atomically.

    Supported dtypes are the IDX ones: uint8, int8, int16, int32, float32,
    float64 (convert int64 labels with ``.astype(np.uint8)`` first).
    """
    path = Path(path)
    array = np.asarray(array)
    code = _CODE_OF.get(array.dtype.newbyteorder("="))
    if code is None:
        raise DataError(f"{path.name}: cannot write dtype {array.dtype} as IDX "
                        "(supported: uint8, int8, int16, int32, float32, float64)")
    if not 1 <= array.ndim <= 255:
        raise DataError(f"{path.name}: IDX needs 1 to 255 dimensions, got shape {array.shape}")
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    body = np.ascontiguousarray(array, dtype=_TYPE_CODES[code]).tobytes()
    with atomic_path(path) as tmp, open(tmp, "wb") as raw:
        if compress:
            # mtime=0 and no file name in the header: the same array gives the same bytes.
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
                gz.write(header)
                gz.write(body)
        else:
            raw.write(header)
            raw.write(body)
    return path


def idx_paths(directory: str | os.PathLike) -> dict[str, Path]:
    """The four standard IDX files in ``directory``, each ``name`` or ``name.gz`` (.gz preferred).

    Raises :class:`DataError` naming every missing file and the directory.
    """
    directory = Path(directory)
    found, missing = {}, []
    for name in IDX_FILES:
        candidates = [directory / f"{name}.gz", directory / name]
        hit = next((p for p in candidates if p.is_file()), None)
        if hit is None:
            missing.append(f"{name}[.gz]")
        else:
            found[name] = hit
    if missing:
        raise DataError(f"{directory}: missing {', '.join(missing)}")
    return found


def load_idx_dir(directory: str | os.PathLike, *, dtype=np.float32) -> Splits:
    """Load a folder of the four standard IDX files as ``Splits(train, None, test)``.

    Images become ``dtype`` rows in [0, 1] of length rows·cols; labels int64.
    """
    paths = idx_paths(directory)
    train = load_idx_pair(paths["train-images-idx3-ubyte"], paths["train-labels-idx1-ubyte"],
                          dtype=dtype, name="train")
    test = load_idx_pair(paths["t10k-images-idx3-ubyte"], paths["t10k-labels-idx1-ubyte"],
                         dtype=dtype, name="test")
    return Splits(train, None, test)


def load_idx_pair(images_path: str | os.PathLike, labels_path: str | os.PathLike, *,
                  dtype=np.float32, name: str = "data") -> Dataset:
    """One uint8 images file (n, rows, cols) and its uint8 labels file (n,) as a Dataset."""
    images = read_idx(images_path, dtype=np.uint8, ndim=3)
    labels = read_idx(labels_path, dtype=np.uint8, ndim=1)
    if len(images) != len(labels):
        raise DataError(f"{Path(images_path).name} has {len(images)} images but "
                        f"{Path(labels_path).name} has {len(labels)} labels")
    x = scale_pixels(images.reshape(len(images), prod(images.shape[1:])), dtype)  # -1 fails for n = 0
    return Dataset(x, labels.astype(np.int64), name)


def scale_pixels(pixels: np.ndarray, dtype=np.float32) -> np.ndarray:
    """uint8 0..255 → ``dtype`` in [0, 1] in one vectorised pass.

    ``np.divide(..., dtype=float32)`` casts block by block inside the ufunc, so
    no float64 copy of the whole set is ever made (60 000 MNIST images: 188 MB
    as float32, 376 MB as float64), and 255/255 is exactly 1.0.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise DataError(f"dtype must be float32 or float64, got {dtype}")
    return np.divide(pixels, dtype.type(255), dtype=dtype)


@contextmanager
def _open_maybe_gzip(path: Path) -> Iterator[BinaryIO]:
    """Open ``path`` for reading, decompressing when it starts with the gzip magic bytes."""
    with open(path, "rb") as raw:
        if raw.read(2) != _GZIP_MAGIC:
            raw.seek(0)
            yield raw
            return
        raw.seek(0)
        try:
            with gzip.GzipFile(fileobj=raw) as stream:
                yield stream
        # BadGzipFile is an OSError; a cut-off stream raises EOFError; bad deflate data zlib.error.
        except (OSError, EOFError, zlib.error) as err:
            raise DataError(f"{path.name}: not a valid gzip file (truncated or corrupted)") from err


def _read_idx_stream(stream: BinaryIO, name: str, want_dtype, want_ndim: int | None,
                     file_size: int) -> np.ndarray:
    stored, shape = _read_header(stream, name, want_dtype, want_ndim)
    nbytes = prod(shape) * stored.itemsize
    # Checked before anything is allocated: a header's dims can ask for terabytes.
    if isinstance(stream, gzip.GzipFile):
        if nbytes > file_size * MAX_DEFLATE_RATIO:
            raise DataError(f"{name}: header dims {shape} describe {nbytes} bytes, more than a "
                            f"{file_size}-byte gzip file can hold")
    else:
        _check_length(name, shape, nbytes, file_size - 4 - 4 * len(shape))
    try:
        # np.empty reserves without touching memory, so a header that lies about a
        # huge size costs nothing until data actually arrives.
        array = np.empty(shape, dtype=stored)
    except (MemoryError, ValueError) as err:
        raise DataError(f"{name}: header dims {shape} describe {nbytes} bytes, too many to hold") from err
    got = _fill(stream, memoryview(array.reshape(-1).view(np.uint8)))
    _check_length(name, shape, nbytes, got if got < nbytes else nbytes + _count_remaining(stream))
    if not array.dtype.isnative:
        # Swap in place and relabel: no second copy of the data.
        array = array.byteswap(inplace=True).view(array.dtype.newbyteorder("="))
    return array


def _check_length(name: str, shape: tuple, nbytes: int, found: int) -> None:
    """The data must be exactly the ``nbytes`` the header's dims describe."""
    if found < nbytes:
        raise DataError(f"{name}: data is shorter than the header says: dims {shape} "
                        f"need {nbytes} bytes, found {found}")
    if found > nbytes:
        raise DataError(f"{name}: data is longer than the header says: dims {shape} "
                        f"need {nbytes} bytes, found {found}")


def _read_header(stream: BinaryIO, name: str, want_dtype, want_ndim: int | None):
    """Parse the magic number and dims; return (stored big-endian dtype, shape)."""
    magic = stream.read(4)
    if len(magic) < 4:
        raise DataError(f"{name}: truncated header ({len(magic)} bytes, an IDX header needs at least 4)")
    number = int.from_bytes(magic, "big")
    zero, code, ndim = number >> 16, magic[2], magic[3]
    stored = _TYPE_CODES.get(code)
    want_code = None if want_dtype is None else _CODE_OF[np.dtype(want_dtype).newbyteorder("=")]
    if (zero != 0 or stored is None or ndim == 0
            or (want_code is not None and code != want_code)
            or (want_ndim is not None and ndim != want_ndim)):
        raise DataError(f"{name}: bad magic number 0x{number:08X} "
                        f"(expected {_describe_magic(want_code, want_ndim)})")
    dims = stream.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DataError(f"{name}: truncated header ({4 + len(dims)} bytes, "
                        f"{ndim} dimensions need {4 + 4 * ndim})")
    shape = tuple(int(d) for d in np.frombuffer(dims, dtype=">u4"))
    return stored, shape


def _describe_magic(code: int | None, ndim: int | None) -> str:
    if code is not None and ndim is not None:
        return f"0x0000{code:02X}{ndim:02X} for {_TYPE_CODES[code].newbyteorder('=').name} {ndim}-D"
    codes = "/".join(f"{c:02X}" for c in _TYPE_CODES) if code is None else f"{code:02X}"
    return f"0x0000TTNN: two zero bytes, type code TT in {codes}, ndim NN = {ndim or '1..255'}"


def _fill(stream: BinaryIO, buffer: memoryview) -> int:
    """Read into ``buffer`` in 1 MiB chunks (bounded temporaries for gzip); return bytes read."""
    pos = 0
    while pos < len(buffer):
        n = stream.readinto(buffer[pos:pos + _CHUNK])
        if not n:
            break
        pos += n
    return pos


def _count_remaining(stream: BinaryIO) -> int:
    """Bytes left after the data; reading to the end also makes gzip check its CRC."""
    extra = 0
    while chunk := stream.read(_CHUNK):
        extra += len(chunk)
    return extra
