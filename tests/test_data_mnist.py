"""MNIST: search order, checksums, Nielsen's split, downloads (faked), and the real files.

No test here touches the network: an autouse fixture makes ``urlopen`` fail the
test, and the download tests install their own fake.
"""
import hashlib
import io
import os
import tracemalloc
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from nablanet.data import mnist
from nablanet.data import cache_dir, find_mnist_dir, load_mnist, mnist_available, write_idx
from nablanet.errors import ConfigError, DataError

# Read before the autouse fixture clears NABLANET_DATA; the Makefile points it at ../shared/data.
REAL_DATA = os.environ.get("NABLANET_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No real data folders, a private cache, and no network."""
    monkeypatch.delenv("NABLANET_DATA", raising=False)
    monkeypatch.setenv("NABLANET_CACHE", str(tmp_path / "cache"))

    def no_network(*args, **kwargs):
        raise AssertionError("a test tried to download")
    monkeypatch.setattr(urllib.request, "urlopen", no_network)


def write_fake_mnist(directory, n_train=8, n_test=3, compress=True):
    """Four small IDX files with MNIST's names and layout (28 × 28 uint8)."""
    rng = np.random.default_rng(1)
    arrays = {
        NAMES[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        NAMES[1]: np.arange(n_train, dtype=np.uint8) % 10,
        NAMES[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        NAMES[3]: np.arange(n_test, dtype=np.uint8) % 10,
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        write_idx(directory / (f"{name}.gz" if compress else name), array, compress=compress)
    return arrays


def trust_files_in(directory, monkeypatch):
    """Make the synthetic files' hashes the 'canonical' ones for this test."""
    for path in directory.iterdir():
        monkeypatch.setitem(mnist.MNIST_SHA256, path.name, hashlib.sha256(path.read_bytes()).hexdigest())


# --- where the files are found -----------------------------------------------------------------

def test_argument_may_be_the_parent_or_the_mnist_folder(tmp_path):
    write_fake_mnist(tmp_path / "data" / "mnist")
    assert find_mnist_dir(tmp_path / "data") == tmp_path / "data" / "mnist"
    assert find_mnist_dir(tmp_path / "data" / "mnist") == tmp_path / "data" / "mnist"


def test_search_order_argument_then_env_then_cache(tmp_path, monkeypatch):
    for place in ("arg", "env", "cache"):
        write_fake_mnist(tmp_path / place / "mnist")
    monkeypatch.setenv("NABLANET_DATA", str(tmp_path / "env"))
    assert find_mnist_dir(tmp_path / "arg") == tmp_path / "arg" / "mnist"
    assert find_mnist_dir() == tmp_path / "env" / "mnist"
    monkeypatch.delenv("NABLANET_DATA")
    assert find_mnist_dir() == tmp_path / "cache" / "mnist"


def test_the_mnist_folder_inside_the_argument_comes_before_the_argument_itself(tmp_path):
    write_fake_mnist(tmp_path / "data")
    write_fake_mnist(tmp_path / "data" / "mnist")
    assert find_mnist_dir(tmp_path / "data") == tmp_path / "data" / "mnist"


def test_decompressed_files_are_found_and_loaded(tmp_path):
    arrays = write_fake_mnist(tmp_path / "mnist", compress=False)
    assert find_mnist_dir(tmp_path) == tmp_path / "mnist"
    train, _, test = load_mnist(tmp_path, validation_size=2, download=False, verify=False)
    np.testing.assert_array_equal(test.y, arrays[NAMES[3]])


def test_incomplete_folder_is_skipped(tmp_path):
    write_fake_mnist(tmp_path / "data" / "mnist")
    (tmp_path / "data" / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    assert find_mnist_dir(tmp_path / "data") is None
    assert not mnist_available(tmp_path / "data")


def test_cache_dir_precedence(tmp_path, monkeypatch):
    assert cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("NABLANET_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "nablanet"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "nablanet"


# --- loading and splitting ---------------------------------------------------------------------

def test_checksum_mismatch_names_file_and_hashes(tmp_path):
    write_fake_mnist(tmp_path / "mnist")
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: SHA-256 mismatch \(expected 440fcabf73cc"):
        load_mnist(tmp_path, download=False)


def test_split_holds_out_the_last_training_images(tmp_path):
    arrays = write_fake_mnist(tmp_path / "mnist")
    train, validation, test = load_mnist(tmp_path, validation_size=3, download=False, verify=False)
    assert (len(train), len(validation), len(test)) == (5, 3, 3)
    assert train.x.shape == (5, 784) and train.x.dtype == np.float32 and train.y.dtype == np.int64
    np.testing.assert_array_equal(validation.y, arrays[NAMES[1]][5:])
    np.testing.assert_allclose(validation.x, arrays[NAMES[0]][5:].reshape(3, 784) / 255, rtol=1e-6)
    assert (validation.name, test.name) == ("validation", "test")


def test_verified_load_with_trusted_hashes_and_no_validation(tmp_path, monkeypatch):
    write_fake_mnist(tmp_path / "mnist")
    trust_files_in(tmp_path / "mnist", monkeypatch)
    train, validation, test = load_mnist(tmp_path, validation_size=0, download=False, dtype=np.float64)
    assert validation is None and len(train) == 8 and train.x.dtype == np.float64


def test_validation_size_out_of_range(tmp_path):
    with pytest.raises(ConfigError, match="validation_size must be in"):
        load_mnist(tmp_path, validation_size=60_000, download=False)


def test_not_found_without_download_says_where_it_looked(tmp_path):
    with pytest.raises(DataError, match=r"MNIST not found in .*cache/mnist \(download=False\).*NABLANET_DATA"):
        load_mnist(tmp_path / "nothing", download=False)


# --- downloads (fake mirrors) ------------------------------------------------------------------

def fake_mirrors(monkeypatch, files, failing=()):
    """Serve ``files`` (name → bytes) from every mirror except those in ``failing``."""
    requested = []

    def urlopen(url, timeout):
        assert timeout == mnist.DOWNLOAD_TIMEOUT_S
        requested.append(url)
        if url.startswith(failing):
            raise urllib.error.URLError("unreachable")
        return io.BytesIO(files[url.rsplit("/", 1)[1]])
    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return requested


def test_download_falls_back_to_the_next_mirror_and_verifies(tmp_path, monkeypatch):
    write_fake_mnist(tmp_path / "served")
    trust_files_in(tmp_path / "served", monkeypatch)
    files = {p.name: p.read_bytes() for p in (tmp_path / "served").iterdir()}
    requested = fake_mirrors(monkeypatch, files, failing=mnist.MIRRORS[0])
    train, validation, test = load_mnist(validation_size=2)
    assert (len(train), len(validation), len(test)) == (6, 2, 3)
    assert requested[:2] == [mnist.MIRRORS[0] + "train-images-idx3-ubyte.gz",
                             mnist.MIRRORS[1] + "train-images-idx3-ubyte.gz"]
    assert sorted(os.listdir(tmp_path / "cache" / "mnist")) == sorted(files)


def test_download_with_a_wrong_hash_leaves_no_file(tmp_path, monkeypatch):
    files = {f"{name}.gz": b"not mnist" for name in NAMES}
    fake_mirrors(monkeypatch, files)
    with pytest.raises(DataError, match=r"MNIST files missing \(train-images.*download failed.*"
                                        r"SHA-256 mismatch.*NABLANET_DATA"):
        load_mnist()
    assert os.listdir(tmp_path / "cache" / "mnist") == []


def test_download_without_a_folder_fills_the_cache(tmp_path, monkeypatch):
    write_fake_mnist(tmp_path / "served")
    trust_files_in(tmp_path / "served", monkeypatch)
    fake_mirrors(monkeypatch, {p.name: p.read_bytes() for p in (tmp_path / "served").iterdir()})
    assert mnist.download_mnist() == tmp_path / "cache" / "mnist"
    assert find_mnist_dir() == tmp_path / "cache" / "mnist"


def test_download_only_fetches_missing_files(tmp_path, monkeypatch):
    write_fake_mnist(tmp_path / "cache" / "mnist")
    trust_files_in(tmp_path / "cache" / "mnist", monkeypatch)
    kept = (tmp_path / "cache" / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (tmp_path / "cache" / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    requested = fake_mirrors(monkeypatch, {"t10k-labels-idx1-ubyte.gz": kept})
    assert len(load_mnist(validation_size=1).test) == 3
    assert requested == [mnist.MIRRORS[0] + "t10k-labels-idx1-ubyte.gz"]


# --- the real MNIST ----------------------------------------------------------------------------

@pytest.mark.mnist
def test_real_mnist():
    if not mnist_available(REAL_DATA):
        pytest.skip(f"MNIST files not found under {REAL_DATA}")
    tracemalloc.start()
    try:
        train, validation, test = load_mnist(REAL_DATA, download=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (train.x.shape, validation.x.shape, test.x.shape) == ((50000, 784), (10000, 784), (10000, 784))
    for split in (train, validation, test):
        assert split.x.dtype == np.float32 and split.y.dtype == np.int64
        assert split.x.min() == 0.0 and split.x.max() == 1.0
    counts = sum(np.bincount(s.y, minlength=10) for s in (train, validation))
    assert counts.tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(test.y).sum() == 10000 and test.y[:5].tolist() == [7, 2, 1, 0, 4]
    assert peak < 400e6                                 # uint8 copy + float32 set, no float64 detour


@pytest.mark.mnist
def test_real_mnist_decompressed_matches_the_published_hashes(tmp_path):
    # Some mirrors and users keep the files decompressed: their hashes must be right too.
    import gzip
    source = find_mnist_dir(REAL_DATA)
    if source is None or not all((source / f"{name}.gz").is_file() for name in NAMES):
        pytest.skip(f"the compressed MNIST files are not under {REAL_DATA}")
    for name in NAMES:
        (tmp_path / name).write_bytes(gzip.decompress((source / f"{name}.gz").read_bytes()))
        mnist.verify_sha256(tmp_path / name, mnist.MNIST_SHA256[name])
