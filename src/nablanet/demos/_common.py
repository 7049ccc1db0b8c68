"""What the demos share: figures (matplotlib's object API, Agg, written atomically),
data (an MNIST subset when the files are there, else a fallback that says so) and the
printed report."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..data import Dataset
from ..utils.atomic import atomic_path


def figure(rows: int = 1, cols: int = 1, size=(10, 4)):
    """(fig, axes) from matplotlib's object API: no pyplot, no global state, Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def save(fig, out_dir, name: str) -> Path:
    """Write ``fig`` to ``out_dir/name`` (PNG) atomically; print and return the path."""
    path = Path(out_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    print(f"wrote {path}")
    return path


def heading(text: str) -> None:
    print(f"\n== {text} ==")


def classification_data(rng, n_train: int, n_validation: int = 0, n_test: int = 0):
    """(train, validation, test, source): random subsets of MNIST when the files can be
    found without downloading, else of scikit-learn's 8×8 digits, else Gaussian blobs.

    A size of 0 gives ``None`` for that set; ``source`` names what was used (every demo
    prints it).
    """
    from ..data import mnist_available

    wanted = (n_train, n_validation, n_test)
    if mnist_available():
        splits = _mnist()
        sets = [_subset(data, size, rng) for data, size in zip(splits, wanted)]
        source = "MNIST subset"
    else:
        try:
            from sklearn.datasets import load_digits
            digits = load_digits()
            x, y = (digits.data / 16.0).astype(np.float32), digits.target
            source = "scikit-learn 8x8 digits (MNIST not found)"
        except ImportError:
            x, y = _blobs(rng, 3000, 64, 10)
            source = "synthetic Gaussian blobs, 64 features (MNIST and scikit-learn not found)"
        # Shrink the request proportionally when the fallback has fewer examples.
        scale = min(1.0, 0.9 * len(x) / sum(wanted))
        wanted = tuple(int(size * scale) for size in wanted)
        parts = np.split(rng.permutation(len(x)), np.cumsum(wanted))[:3]
        sets = [Dataset(x[p], y[p], name) if len(p) else None
                for p, name in zip(parts, ("train", "validation", "test"))]
    sizes = ", ".join(f"{len(d)} {d.name}" for d in sets if d is not None)
    return (*sets, f"{source} ({sizes})")


@functools.lru_cache(maxsize=1)
def _mnist():
    """MNIST, read and checksummed once per process (several demos may run in one)."""
    from ..data import load_mnist

    return load_mnist(download=False)


def _subset(data, size: int, rng):
    if not size:
        return None
    pick = rng.permutation(len(data))[:size]
    return Dataset(data.x[pick], data.y[pick], data.name)


def _blobs(rng, n, d, k):
    centres = rng.standard_normal((k, d)) * 1.5
    y = rng.integers(0, k, n)
    return (centres[y] + rng.standard_normal((n, d))).astype(np.float32), y
