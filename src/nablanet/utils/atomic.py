"""Atomic file writes: a reader sees the old file or the complete new one, never a part.

A crash, a full disk or a failed checksum in the middle of writing must not leave a
truncated file under the final name, because the next run would trust it (a half
downloaded MNIST file, a half written checkpoint). So everything is written to a
temporary file in the same folder (same filesystem, so the rename is atomic),
flushed to disk, and only then moved onto the final name with ``os.replace``.
"""
from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on clean exit move it onto ``path``.

    The caller writes the temporary file however it likes (``open``, ``np.save``,
    a streamed download). If the ``with`` body raises, the temporary file is
    removed and ``path`` is left exactly as it was.
    """
    path = Path(path)
    # A fresh, unguessable name that is not created yet, so the file gets the
    # usual umask permissions (mkstemp would force 0600 on the final file).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is not None and Path(exc.filename) == tmp:
            # Report the name the caller gave: "/out/.x.png.8415.6fce.tmp: No such file or
            # directory" names a file nobody asked for.
            exc.filename, exc.filename2 = str(path), None
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`); return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def _fsync(path: Path) -> None:
    # Flush the data before the rename; otherwise a power loss can leave the new
    # name pointing at an empty file on some filesystems.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
