"""IDX reading/writing, the four-file directory loader, and the atomic-write helper."""
import gzip
import os

import numpy as np
import pytest

from nablanet.data import load_idx_dir, read_idx, scale_pixels, write_idx
from nablanet.errors import DataError
from nablanet.utils import atomic_path, atomic_write_bytes

IDX_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


def header(code, dims):
    return bytes([0, 0, code, len(dims)]) + np.array(dims, dtype=">u4").tobytes()


def write_idx_dir(directory, n_train=6, n_test=3, side=4, compress=True, seed=0):
    """Four synthetic IDX files; returns (train images, train labels, test images, test labels)."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        write_idx(directory / (name + ".gz" if compress else name), array, compress=compress)
    return arrays


# --- round trips ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", IDX_DTYPES)
@pytest.mark.parametrize("compress", [True, False])
def test_round_trip_every_idx_type(tmp_path, dtype, compress):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    path = write_idx(tmp_path / "a.idx", array, compress=compress)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, array)
    back[0, 0, 0] = 1                                   # writable, not a view of file bytes


def test_compression_is_detected_from_magic_bytes_not_the_name(tmp_path):
    array = np.arange(10, dtype=np.int32)
    write_idx(tmp_path / "compressed.idx", array, compress=True)
    write_idx(tmp_path / "plain.gz", array, compress=False)
    assert (tmp_path / "compressed.idx").read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(read_idx(tmp_path / "compressed.idx"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "plain.gz"), array)


def test_write_is_deterministic_and_big_endian(tmp_path):
    array = np.array([1, 256], dtype=np.int16)
    write_idx(tmp_path / "a", array, compress=False)
    assert (tmp_path / "a").read_bytes() == header(0x0B, [2]) + b"\x00\x01\x01\x00"
    write_idx(tmp_path / "b.gz", array)
    write_idx(tmp_path / "c.gz", array)
    assert (tmp_path / "b.gz").read_bytes() == (tmp_path / "c.gz").read_bytes()


def test_empty_first_dimension_reads(tmp_path):
    path = write_idx(tmp_path / "empty", np.zeros((0, 2), dtype=np.uint8))
    assert read_idx(path).shape == (0, 2)


# --- header errors ---------------------------------------------------------------------------

@pytest.mark.parametrize("magic", [b"\x01\x00\x08\x01", b"\x00\x01\x08\x01",   # both zero bytes
                                   b"\x00\x00\x0a\x01", b"\x00\x00\x08\x00"])
def test_bad_magic_number(tmp_path, magic):
    path = tmp_path / "bad"
    path.write_bytes(magic + b"\x00\x00\x00\x01" + b"\x00")
    with pytest.raises(DataError, match=r"bad: bad magic number 0x"):
        read_idx(path)


def test_expected_type_mismatch_names_the_expected_magic(tmp_path):
    path = write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(3, dtype=np.uint8))
    with pytest.raises(DataError, match=r"bad magic number 0x00000801 \(expected 0x00000803 for uint8 3-D\)"):
        read_idx(path, dtype=np.uint8, ndim=3)


def test_a_file_of_another_type_is_refused_not_reinterpreted(tmp_path):
    # float32 images have MNIST's shape but not its uint8 pixels: 4 bytes each, read as
    # bytes they would be garbage (and 4 times as many)
    path = write_idx(tmp_path / "images", np.zeros((2, 3, 3), dtype=np.float32))
    with pytest.raises(DataError, match=r"bad magic number 0x00000D03 \(expected 0x00000803 "
                                        r"for uint8 3-D\)"):
        read_idx(path, dtype=np.uint8, ndim=3)


def test_truncated_header_before_the_dims(tmp_path):
    path = tmp_path / "short"
    path.write_bytes(b"\x00\x00")
    with pytest.raises(DataError, match="short: truncated header"):
        read_idx(path)


@pytest.mark.parametrize("keep", [10, 12, 15])          # 12: one whole dimension missing
def test_truncated_header_inside_the_dims(tmp_path, keep):
    path = tmp_path / "short"
    path.write_bytes(header(0x08, [2, 2, 2])[:keep])
    with pytest.raises(DataError, match=rf"truncated header \({keep} bytes, 3 dimensions need 16\)"):
        read_idx(path)


def test_header_with_absurd_dims_is_refused_without_allocating(tmp_path):
    path = tmp_path / "huge"
    path.write_bytes(header(0x0E, [0xFFFFFFFF] * 4))
    with pytest.raises(DataError, match="shorter than the header says.*found 0$"):
        read_idx(path)


@pytest.mark.parametrize("compress", [True, False])
def test_a_size_the_file_cannot_hold_is_refused_before_allocating(tmp_path, monkeypatch,
                                                                   compress):
    """4 GiB of uint8 declared in a small file: refused from the file's size, not after
    np.empty has reserved the gigabytes (nor after gzip has inflated what there is)."""
    raw = header(0x08, [65536, 65536]) + bytes(1000)
    path = tmp_path / "x"
    path.write_bytes(gzip.compress(raw) if compress else raw)

    def no_allocation(*args, **kwargs):
        raise AssertionError("allocated before checking the size")
    monkeypatch.setattr(np, "empty", no_allocation)
    what = "more than a .*-byte gzip file can hold" if compress else "shorter than the header"
    with pytest.raises(DataError, match=what):
        read_idx(path)


# --- data length errors ------------------------------------------------------------------------

@pytest.mark.parametrize("compress", [True, False])
def test_data_shorter_than_dims(tmp_path, compress):
    raw = header(0x08, [3, 2]) + bytes(5)
    path = tmp_path / "x"
    path.write_bytes(gzip.compress(raw) if compress else raw)
    with pytest.raises(DataError, match=r"shorter than the header says: dims \(3, 2\) need 6 bytes, found 5"):
        read_idx(path)


@pytest.mark.parametrize("compress", [True, False])
def test_data_longer_than_dims(tmp_path, compress):
    raw = header(0x08, [3, 2]) + bytes(9)
    path = tmp_path / "x"
    path.write_bytes(gzip.compress(raw) if compress else raw)
    with pytest.raises(DataError, match="longer than the header says.*found 9"):
        read_idx(path)


# --- gzip and file errors ----------------------------------------------------------------------

def test_truncated_gzip_stream(tmp_path):
    good = gzip.compress(header(0x08, [1000]) + np.arange(1000, dtype=np.uint8).tobytes())
    path = tmp_path / "cut.gz"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match=r"cut.gz: not a valid gzip file \(truncated or corrupted\)"):
        read_idx(path)


@pytest.mark.parametrize("where", ["deflate", "crc"])
def test_corrupted_gzip_stream(tmp_path, where):
    data = bytearray(gzip.compress(header(0x08, [1000]) + bytes(range(256)) * 3 + bytes(232)))
    data[20 if where == "deflate" else -6] ^= 0xFF
    path = tmp_path / "bad.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="not a valid gzip file"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope.gz: no such file"):
        read_idx(tmp_path / "nope.gz")


def test_write_refuses_dtypes_idx_cannot_hold(tmp_path):
    with pytest.raises(DataError, match="cannot write dtype int64 as IDX"):
        write_idx(tmp_path / "labels", np.zeros(3, dtype=np.int64))
    with pytest.raises(DataError, match=r"IDX needs 1 to 255 dimensions, got shape \(\)"):
        write_idx(tmp_path / "labels", np.uint8(3))     # a header with ndim 0 is unreadable
    assert not (tmp_path / "labels").exists()


def test_compressed_idx_bytes_depend_only_on_the_array(tmp_path):
    """gzip's header would otherwise hold the time and file name: rewrites would differ."""
    data = write_idx(tmp_path / "a.gz", np.arange(6, dtype=np.uint8)).read_bytes()
    assert data[3] == 0 and data[4:8] == bytes(4)       # no FNAME flag, MTIME = 0


def test_scale_pixels_refuses_a_float_type_models_do_not_use():
    np.testing.assert_array_equal(scale_pixels(np.array([0, 255], np.uint8), np.float64), [0, 1])
    with pytest.raises(DataError, match="float32 or float64, got float16"):
        scale_pixels(np.zeros(2, np.uint8), np.float16)


# --- the four-file directory -------------------------------------------------------------------

def test_load_idx_dir_scales_flattens_and_keeps_integer_labels(tmp_path):
    arrays = write_idx_dir(tmp_path / "fashion")
    train, validation, test = load_idx_dir(tmp_path / "fashion")
    assert validation is None
    assert train.x.shape == (6, 16) and test.x.shape == (3, 16)
    assert train.x.dtype == np.float32 and train.y.dtype == np.int64
    np.testing.assert_allclose(train.x, arrays["train-images-idx3-ubyte"].reshape(6, 16) / 255, rtol=1e-6)
    np.testing.assert_array_equal(test.y, arrays["t10k-labels-idx1-ubyte"])


def test_load_idx_dir_accepts_plain_and_gz_mixed_and_float64(tmp_path):
    arrays = write_idx_dir(tmp_path, compress=False)
    os.replace(tmp_path / "t10k-labels-idx1-ubyte", tmp_path / "t10k-labels-idx1-ubyte.gz")
    train, _, test = load_idx_dir(tmp_path, dtype=np.float64)
    assert train.x.dtype == np.float64
    assert train.x.max() <= 1.0 and train.x.min() >= 0.0
    np.testing.assert_array_equal(test.y, arrays["t10k-labels-idx1-ubyte"])


def test_load_idx_dir_prefers_the_gz_file_when_both_are_there(tmp_path):
    arrays = write_idx_dir(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8), compress=False)
    np.testing.assert_array_equal(load_idx_dir(tmp_path).test.y, arrays["t10k-labels-idx1-ubyte"])


def test_load_idx_dir_names_every_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"missing train-images-idx3-ubyte\[\.gz\], "
                                        r"train-labels.*t10k-images.*t10k-labels-idx1-ubyte\[\.gz\]$"):
        load_idx_dir(tmp_path)


def test_load_idx_dir_names_the_missing_file_and_directory(tmp_path):
    write_idx_dir(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match=rf"{tmp_path}: missing t10k-images-idx3-ubyte\[\.gz\]"):
        load_idx_dir(tmp_path)


def test_load_idx_dir_checks_image_and_label_counts_agree(tmp_path):
    write_idx_dir(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(5, dtype=np.uint8))
    with pytest.raises(DataError, match="has 6 images but train-labels-idx1-ubyte.gz has 5 labels"):
        load_idx_dir(tmp_path)


def test_load_idx_dir_catches_swapped_images_and_labels(tmp_path):
    write_idx_dir(tmp_path)
    os.replace(tmp_path / "train-labels-idx1-ubyte.gz", tmp_path / "train-images-idx3-ubyte.gz")
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(6, dtype=np.uint8))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: bad magic number 0x00000801"):
        load_idx_dir(tmp_path)


# --- atomic writes -----------------------------------------------------------------------------

def test_atomic_write_bytes_replaces_the_whole_file(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"old")
    atomic_write_bytes(path, b"new contents")
    assert path.read_bytes() == b"new contents"
    assert os.listdir(tmp_path) == ["f"]


def test_atomic_path_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("disk full")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f"]                # no temporary file left behind


def test_atomic_write_flushes_the_data_to_disk_before_the_rename(tmp_path, monkeypatch):
    """Without the fsync a power loss can leave the new name on an empty file."""
    path, events = tmp_path / "f", []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace",
                        lambda src, dst: (events.append("replace"), real_replace(src, dst))[1])
    atomic_write_bytes(path, b"data")
    assert events == ["fsync", "replace"]
