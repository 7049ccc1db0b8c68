"""What the demos share: figures (matplotlib's object API, Agg, written atomically),
data (an MNIST subset when the files are there, else a fallback that says so) and the
printed report."""
from __future__ import annotations

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


def classification_data(rng, n_train: int, n_validation: int, n_test: int = 0):
    """(train, validation, test, source): an MNIST subset when the files can be found
    without downloading, else scikit-learn's 8×8 digits, else Gaussian blobs.

    ``source`` names what was used, and every demo prints it.
    """
    from ..data import load_mnist, mnist_available

    if mnist_available():
        train, validation, test = load_mnist(download=False)
        pick = rng.permutation(len(train))[:n_train]
        val = rng.permutation(len(validation))[:n_validation]
        tst = rng.permutation(len(test))[:n_test]
        return (Dataset(train.x[pick], train.y[pick], "train"),
                Dataset(validation.x[val], validation.y[val], "validation"),
                Dataset(test.x[tst], test.y[tst], "test") if n_test else None,
                f"MNIST subset ({n_train} train, {n_validation} validation"
                + (f", {n_test} test)" if n_test else ")"))
    try:
        from sklearn.datasets import load_digits
        d = load_digits()
        x, y, source = (d.data / 16.0).astype(np.float32), d.target, "scikit-learn 8x8 digits"
    except ImportError:
        x, y = _blobs(rng, 3000, 64, 10)
        source = "synthetic Gaussian blobs (64 features, 10 classes)"
    order = rng.permutation(len(x))
    n_train = min(n_train, len(x) // 2)
    n_validation = min(n_validation, (len(x) - n_train) // 2 if n_test else len(x) - n_train)
    n_test = min(n_test, len(x) - n_train - n_validation)
    cut = np.cumsum([n_train, n_validation, n_test])
    parts = np.split(order, cut)[:3]
    sets = [Dataset(x[p], y[p], name) for p, name in zip(parts, ("train", "validation", "test"))]
    return (sets[0], sets[1], sets[2] if n_test else None,
            f"{source} (MNIST not found; {n_train} train, {n_validation} validation"
            + (f", {n_test} test)" if n_test else ")"))


def _blobs(rng, n, d, k):
    centres = rng.standard_normal((k, d)) * 1.5
    y = rng.integers(0, k, n)
    return (centres[y] + rng.standard_normal((n, d))).astype(np.float32), y
