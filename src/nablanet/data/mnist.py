"""MNIST: find the files, check them against the canonical SHA-256, download if absent, split.

The split is Nielsen's (``mnist_loader.load_data``): the first 50 000 training
images train, the last 10 000 validate, the 10 000 ``t10k`` images test, so a
run here can be compared with the book's numbers. Pixels are float32 in [0, 1]
(0 = black background, 1 = white ink); labels are int64 0..9.

Where the files are looked for, in order: the ``data_dir`` argument (a folder
holding ``mnist/``, or the mnist folder itself), ``$NABLANET_DATA/mnist``, and
the cache folder (``$NABLANET_CACHE``, else ``$XDG_CACHE_HOME/nablanet``, else
``~/.cache/nablanet``) ``/mnist``, which is also where downloads go.
"""
from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from ..utils.atomic import atomic_path
from .dataset import Splits, hold_out_last
from .idx import IDX_FILES, idx_paths, load_idx_dir

# SHA-256 of the canonical files, compressed (as published) and decompressed
# (as some mirrors and users keep them), so either form can be verified.
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
# Public mirrors of the original files (yann.lecun.com now refuses most clients).
MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)
DOWNLOAD_TIMEOUT_S = 30
_CHUNK = 1 << 20
_HINT = "set NABLANET_DATA to a folder containing mnist/ or pass data_dir"


def load_mnist(data_dir: str | os.PathLike | None = None, *, validation_size: int = 10_000,
               download: bool = True, verify: bool = True, dtype=np.float32) -> Splits:
    """MNIST as ``Splits(train, validation, test)``: 50 000 / 10 000 / 10 000 by default.

    ``validation_size`` images are taken from the END of the 60 000 training
    images (0 gives ``validation=None`` and 60 000 training images). With
    ``verify`` every file's SHA-256 is checked; a mismatch raises
    :class:`DataError`. Missing files are downloaded into the cache folder when
    ``download`` is true.
    """
    if not 0 <= validation_size < 60_000:
        raise ConfigError(f"validation_size must be in [0, 60000), got {validation_size}")
    directory = find_mnist_dir(data_dir)
    if directory is None:
        directory = _download_or_fail(data_dir, download)
    if verify:
        for path in idx_paths(directory).values():
            verify_sha256(path, MNIST_SHA256[path.name])
    full_train, _, test = load_idx_dir(directory, dtype=dtype)
    train, validation = hold_out_last(full_train, validation_size)
    return Splits(train, validation, test)


def find_mnist_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The first folder (see the module docstring for the order) holding all four MNIST files."""
    return next((d for d in _search_path(data_dir) if _is_complete(d)), None)


def mnist_available(data_dir: str | os.PathLike | None = None) -> bool:
    """True when the four MNIST files can be found without downloading."""
    return find_mnist_dir(data_dir) is not None


def cache_dir() -> Path:
    """nablanet's download cache: ``$NABLANET_CACHE``, ``$XDG_CACHE_HOME/nablanet`` or ``~/.cache/nablanet``."""
    if explicit := os.environ.get("NABLANET_CACHE"):
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "nablanet"


def verify_sha256(path: str | os.PathLike, expected: str) -> None:
    """Raise :class:`DataError` unless the file's SHA-256 is ``expected`` (hashed in a stream)."""
    path = Path(path)
    with open(path, "rb") as f:
        actual = hashlib.file_digest(f, "sha256").hexdigest()
    if actual != expected:
        raise DataError(f"{path}: SHA-256 mismatch (expected {expected[:12]}…, got {actual[:12]}…); "
                        "the file is corrupted or not the canonical MNIST: delete it or pass verify=False")


def download_mnist(directory: str | os.PathLike | None = None) -> Path:
    """Download the missing ``.gz`` files into ``directory`` (default: the cache); return it.

    Each file is streamed into a temporary file, hashed on the way, and moved
    into place only when its SHA-256 is the canonical one, so an interrupted or
    tampered download never leaves a file that a later run would trust.
    """
    directory = Path(directory) if directory is not None else cache_dir() / "mnist"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"{directory}: cannot create the MNIST download folder ({err.strerror})") from err
    for name in IDX_FILES:
        if not _present(directory, name):
            _download_one(f"{name}.gz", directory)
    return directory


def _download_or_fail(data_dir, download: bool) -> Path:
    looked = ", ".join(str(d) for d in _search_path(data_dir))
    if not download:
        raise DataError(f"MNIST not found in {looked} (download=False); {_HINT}")
    target = cache_dir() / "mnist"
    try:
        return download_mnist(target)
    except DataError as err:
        missing = ", ".join(f"{n}.gz" for n in IDX_FILES if not _present(target, n))
        raise DataError(f"MNIST files missing ({missing}); looked in {looked}; "
                        f"download failed: {err}; {_HINT}") from err


def _download_one(name: str, directory: Path) -> None:
    """Try each mirror in turn; raise DataError with the last failure when all fail."""
    failures = []
    for mirror in MIRRORS:
        try:
            _fetch_verified(mirror + name, directory / name, MNIST_SHA256[name])
            return
        except (OSError, DataError) as err:           # URLError and timeouts are OSErrors
            failures.append(f"{mirror + name}: {err}")
    raise DataError(f"{name}: every mirror failed ({'; '.join(failures)})")


def _fetch_verified(url: str, path: Path, expected: str) -> None:
    digest = hashlib.sha256()
    with atomic_path(path) as tmp:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(tmp, "wb") as out:
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != expected:            # raising here discards the temp file
            raise DataError(f"SHA-256 mismatch (expected {expected[:12]}…, got {digest.hexdigest()[:12]}…)")


def _search_path(data_dir) -> list[Path]:
    """Candidate MNIST folders, in the documented order."""
    candidates = []
    if data_dir is not None:
        given = Path(data_dir).expanduser()
        candidates += [given / "mnist", given]
    if env := os.environ.get("NABLANET_DATA"):
        candidates.append(Path(env).expanduser() / "mnist")
    candidates.append(cache_dir() / "mnist")
    return candidates


def _present(directory: Path, name: str) -> bool:
    return (directory / f"{name}.gz").is_file() or (directory / name).is_file()


def _is_complete(directory: Path) -> bool:
    return all(_present(directory, name) for name in IDX_FILES)
