"""Fuzzing the data files nablanet reads: IDX headers and bodies (any type code, any
dims, sizes that lie, gzip or plain), .npy/.npz/.csv inputs of ``predict`` and
``train`` (any dtype and shape, ragged or non-numeric text), and .png digits (every
Pillow mode, odd sizes, flipped bytes, a header declaring a huge picture). Each must be
read correctly or be exactly one DataError, within a few megabytes.
"""
from __future__ import annotations

import gzip
import io
import struct
import tempfile
import zlib
from math import prod
from pathlib import Path

import numpy as np
import pytest
from fuzzing import FUZZ, loaded_or_refused, one_error
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nablanet.cli.predict import inputs
from nablanet.data import load_array
from nablanet.data.arrays import MAX_PNG_SIDE, load_digit_png, load_labelled_csv
from nablanet.data.idx import read_idx
from nablanet.errors import DataError

#: IDX type codes (0x08 uint8 ... 0x0E float64) and some that are not
IDX_CODES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


# -- IDX ------------------------------------------------------------------------------------
@st.composite
def idx_files(draw):
    """(bytes of a file, the array it holds or None when it is damaged)."""
    code = draw(st.sampled_from([*IDX_CODES, 0x00, 0x0A, 0xFF]))
    dims = draw(st.lists(st.integers(0, 5) | st.sampled_from([2**16, 2**31, 2**32 - 1]),
                         min_size=0, max_size=4))
    prefix = draw(st.sampled_from([b"\x00\x00", b"\x00\x01", b"\x1f\x00"]))
    header = prefix + bytes([code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    size = prod(dims) * np.dtype(IDX_CODES.get(code, "u1")).itemsize if dims else 0
    body_size = draw(st.sampled_from([size, size - 1, size + 1, 0]) if size < 4096
                     else st.integers(0, 64))
    body = draw(st.binary(min_size=max(body_size, 0), max_size=max(body_size, 0)))
    valid = (prefix == b"\x00\x00" and code in IDX_CODES and dims and len(body) == size)
    try:
        expected = np.frombuffer(body, IDX_CODES[code]).reshape(dims) if valid else None
    except ValueError:              # (0, 2³², 2³¹): no bytes, but more elements than NumPy
        expected = None             # can index, so the reader refuses it
    data = header + body
    cut = draw(st.none() | st.integers(0, len(data)))
    if cut is not None and cut < len(data):
        data, expected = data[:cut], None
    return data, expected


@settings(FUZZ, max_examples=150)
@given(file=idx_files(), compress=st.booleans(),
       want=st.sampled_from([(None, None), (np.uint8, 3), (np.uint8, 1), (np.float64, 2)]))
def test_an_idx_file_reads_as_its_header_says_or_is_one_error(file, compress, want):
    data, expected = file
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "data-idx"
        path.write_bytes(gzip.compress(data) if compress else data)
        array = loaded_or_refused(read_idx, path, dtype=want[0], ndim=want[1], error=DataError)
    if array is not None:
        assert expected is not None, "a damaged file was read"
        np.testing.assert_array_equal(array, expected)
        assert array.dtype.isnative and array.flags.writeable


@FUZZ
@given(data=st.data())
def test_flipped_bytes_in_a_gzipped_idx_file_are_read_or_one_error(data):
    original = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    blob = bytearray(gzip.compress(bytes([0, 0, 8, 3]) + struct.pack(">3I", 2, 3, 4)
                                   + original.tobytes()))
    for _ in range(data.draw(st.integers(1, 3))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "x.gz"
        path.write_bytes(bytes(blob))
        loaded_or_refused(read_idx, path, error=DataError)


# -- arrays for predict and train --------------------------------------------------------
_dtypes = st.sampled_from(["f4", "f8", "f2", "u1", "i1", "i8", "u8", "?", "c16", "U3", "S2",
                           "M8[D]", "m8[s]", [("a", "f4"), ("b", "i4")]])
_arrays = hnp.arrays(dtype=_dtypes.map(np.dtype),
                     shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))


def _features_or_error(path: Path, n_features: int = 4):
    x = loaded_or_refused(inputs, path, n_features, np.float32, error=DataError)
    if x is not None:
        assert x.ndim == 2 and x.shape[1] == n_features and len(x) >= 1
        assert np.isfinite(x).all() and x.dtype.kind == "f"
    return x


@FUZZ
@given(array=_arrays, container=st.sampled_from(["npy", "npz-x", "npz-other", "npz-two"]))
def test_any_npy_or_npz_array_is_rows_of_features_or_one_error(array, container):
    with tempfile.TemporaryDirectory() as scratch:
        if container == "npy":
            path = Path(scratch) / "x.npy"
            np.save(path, array)
        else:
            path = Path(scratch) / "x.npz"
            keys = {"npz-x": ["x"], "npz-other": ["data"], "npz-two": ["a", "b"]}[container]
            np.savez(path, **{key: array for key in keys})
        _features_or_error(path)


@FUZZ
@given(array=hnp.arrays(np.dtype(object), st.integers(1, 3),
                        elements=st.sampled_from([1, 2.5, "x", None, [1, 2]])))
def test_an_object_array_is_refused_without_unpickling(array):
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "x.npy"
        np.save(path, array, allow_pickle=True)
        one_error(DataError, load_array, path, match="not a plain numeric .npy array")


_cells = st.sampled_from(["1", "0.5", "-2e3", " 3 ", '"4"', "", "nan", "inf", "-inf", "1e400",
                          "x", "0x10", "1_0", "\ufeff1", "é", '"1,2"', "\t", "True"])


@settings(FUZZ, max_examples=100)
@given(rows=st.lists(st.lists(_cells, min_size=0, max_size=6), min_size=0, max_size=5),
       header=st.booleans(), ending=st.sampled_from(["\n", "\r\n", "\r", ""]))
def test_any_csv_text_is_rows_of_features_or_one_error(rows, header, ending):
    text = ending.join(",".join(row) for row in (["a", "b", "c", "d"], *rows)[not header:])
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "x.csv"
        path.write_text(text, encoding="utf-8")
        _features_or_error(path)
        dataset = loaded_or_refused(load_labelled_csv, path, error=DataError)
        if dataset is not None:
            assert len(dataset.x) == len(dataset.y) >= 1


@FUZZ
@given(blob=st.binary(max_size=200), suffix=st.sampled_from([".csv", ".npy", ".npz", ".png"]))
def test_arbitrary_bytes_under_any_data_extension_are_one_error(blob, suffix):
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / f"x{suffix}"
        path.write_bytes(blob)
        _features_or_error(path, 784 if suffix == ".png" else 4)


# -- PNG digits -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def Image():
    pytest.importorskip("matplotlib")
    return pytest.importorskip("PIL.Image")


def _png_bytes(Image, pixels: np.ndarray, mode: str) -> bytes:
    image = Image.fromarray(pixels)
    if mode != image.mode:
        image = image.convert(mode)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _declared_png(width: int, height: int, rows: int = 8) -> bytes:
    """A grey PNG whose header declares width × height (valid CRCs), holding a few rows."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
            + _chunk(b"IDAT", zlib.compress(bytes((width + 1) * rows)))
            + _chunk(b"IEND", b""))


@FUZZ
@given(data=st.data())
def test_any_png_is_one_28x28_row_in_the_unit_range_or_one_error(Image, data):
    side = st.integers(1, 40)
    pixels = data.draw(hnp.arrays(np.uint8, st.tuples(side, side) | st.tuples(side, side,
                                                                             st.just(3))))
    mode = data.draw(st.sampled_from(["L", "LA", "RGB", "RGBA", "P", "1", "I;16"]))
    blob = bytearray(_png_bytes(Image, pixels, mode))
    for _ in range(data.draw(st.integers(0, 3))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        blob = blob[:data.draw(st.integers(0, len(blob)))]
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "digit.png"
        path.write_bytes(bytes(blob))
        row = loaded_or_refused(load_digit_png, path, error=DataError)
    if row is not None:
        assert row.shape == (1, 784) and row.dtype == np.float32
        assert 0 <= row.min() and row.max() <= 1


@pytest.mark.parametrize("width, height, match", [
    (60_000, 60_000, "image too large for a digit"), (10_000, 10_000, "too large"),
    (MAX_PNG_SIDE + 1, 3, "too large"), (20_000, 1, "too large"),
    (4000, 4000, r"declares 4000 × 4000 pixels, more than its \d+ bytes can hold"),
])
def test_a_png_declaring_a_huge_picture_is_refused_before_decoding(tmp_path, Image, width,
                                                                   height, match):
    """A few-kilobyte PNG declaring 60 000 × 60 000 took 18 GB and a minute (and Pillow's
    own DecompressionBombError escaped as a raw exception); 20 000 × 1 is padded to a
    20 000² square before resizing; 16 million pixels cannot be deflated into 150 bytes."""
    path = tmp_path / "bomb.png"
    path.write_bytes(_declared_png(width, height, rows=1))
    one_error(DataError, load_digit_png, path, match=match)


@pytest.mark.slow
def test_the_largest_side_allowed_still_loads(tmp_path, Image):
    """(~25 s: the 8192² square is blurred before it is shrunk to 28²)"""
    path = tmp_path / "wide.png"
    Image.fromarray(np.zeros((2, MAX_PNG_SIDE), np.uint8)).save(path)
    assert load_digit_png(path).shape == (1, 784)


@pytest.mark.parametrize("blob", [b"PK\x03\x04", b"PK\x03\x04" + bytes(40)])
def test_a_npy_that_starts_like_a_zip_archive_is_one_error(tmp_path, blob):
    """np.load opens it as an archive: zipfile.BadZipFile escaped as a traceback."""
    path = tmp_path / "x.npy"
    path.write_bytes(blob)
    one_error(DataError, load_array, path, match="not a readable .npy file")
