"""Text for character-level language models: any UTF-8 file, or Tiny Shakespeare.

Tiny Shakespeare (Karpathy's ``input.txt``, 1 115 394 characters, 65 distinct) is looked
for like MNIST: the ``data_dir`` argument (a folder holding ``tinyshakespeare/``, or the
folder itself), then ``$NABLANET_DATA/tinyshakespeare``, then the cache folder; its
SHA-256 is checked. The validation text is the *last* 10% (a contiguous tail, as the
lecture holds out text the model has not read, never a random scatter of characters
whose neighbours it has trained on).
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError, DataError
from ..utils.state import number
from .mnist import cache_dir, verify_sha256

TINY_SHAKESPEARE = "tinyshakespeare"
TINY_SHAKESPEARE_FILE = "input.txt"
TINY_SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
TINY_SHAKESPEARE_URL = ("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
                        "tinyshakespeare/input.txt")


def load_text(path: str | os.PathLike) -> str:
    """The whole of a UTF-8 text file; a missing, undecodable or empty file is a DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: text file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not text:
        raise DataError(f"{path}: the text is empty; a language model needs characters to read")
    return text


def find_tinyshakespeare(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The first ``input.txt`` found in the documented order, or None."""
    return next((p for p in _search_path(data_dir) if p.is_file()), None)


def load_tinyshakespeare(data_dir: str | os.PathLike | None = None, *, verify: bool = True) -> str:
    """Tiny Shakespeare as one string, checked against its SHA-256 when ``verify``."""
    path = find_tinyshakespeare(data_dir)
    if path is None:
        looked = ", ".join(str(p) for p in _search_path(data_dir))
        raise DataError(f"Tiny Shakespeare not found (looked for {looked}); download "
                        f"{TINY_SHAKESPEARE_URL} into $NABLANET_DATA/{TINY_SHAKESPEARE}/")
    if verify:
        verify_sha256(path, TINY_SHAKESPEARE_SHA256)
    return load_text(path)


def split_text(text: str, validation_fraction: float = 0.1) -> tuple[str, str]:
    """(training text, validation text): the validation text is the last fraction."""
    if not 0 < number(validation_fraction, "validation_fraction", error=ConfigError) < 1:
        raise ConfigError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    if not isinstance(text, str):
        raise DataError(f"the text must be a string, got {type(text).__name__}")
    if not text:
        raise DataError("the text is empty; a language model needs characters to read")
    cut = len(text) - int(round(len(text) * validation_fraction))
    if cut < 2 or len(text) - cut < 2:
        raise DataError(f"the text has {len(text)} characters: too short to hold out "
                        f"{validation_fraction:.0%} for validation (each part needs ≥ 2)")
    return text[:cut], text[cut:]


def _search_path(data_dir) -> list[Path]:
    candidates = []
    if data_dir is not None:
        given = Path(data_dir).expanduser()
        candidates += [given / TINY_SHAKESPEARE / TINY_SHAKESPEARE_FILE,
                       given / TINY_SHAKESPEARE_FILE]
    if env := os.environ.get("NABLANET_DATA"):
        candidates.append(Path(env).expanduser() / TINY_SHAKESPEARE / TINY_SHAKESPEARE_FILE)
    candidates.append(cache_dir() / TINY_SHAKESPEARE / TINY_SHAKESPEARE_FILE)
    return candidates
