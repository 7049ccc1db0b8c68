"""Image grids for energy-based models (matplotlib Agg, no pyplot state): learned
filters, fantasies and generated digits, test digits beside their reconstructions,
and a scatter of 2-D codes coloured by class.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..backend import to_host
from ..utils.atomic import atomic_path


def tile(images, image_shape=(28, 28), n_cols: int = 10, pad: int = 1,
         scale: str = "none") -> np.ndarray:
    """One 2-D array holding ``images`` (rows of length h·w) on a grid, ``pad`` pixels apart.

    ``scale``: "none" (values as given, e.g. probabilities in [0, 1]) or "each"
    (every tile stretched to [0, 1], for weights of any range).
    """
    images = np.asarray(to_host(images), dtype=np.float64).reshape(-1, *image_shape)
    if scale == "each":
        lo = images.min(axis=(1, 2), keepdims=True)
        hi = images.max(axis=(1, 2), keepdims=True)
        images = (images - lo) / np.maximum(hi - lo, 1e-12)
    n = len(images)
    n_cols = max(1, min(n_cols, n))
    n_rows = math.ceil(n / n_cols)
    h, w = image_shape
    grid = np.ones((n_rows * (h + pad) + pad, n_cols * (w + pad) + pad))
    for k, image in enumerate(images):
        r, c = divmod(k, n_cols)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h,
             pad + c * (w + pad):pad + c * (w + pad) + w] = image
    return grid


def save_grid(path, images, *, image_shape=(28, 28), n_cols: int = 10, title: str = "",
              scale: str = "none", row_labels=None) -> Path:
    """Write ``images`` as one greyscale grid PNG (white ink on black, like MNIST)."""
    grid = tile(images, image_shape, n_cols, scale=scale)
    figure = _figure(size=(max(3.0, grid.shape[1] / 40), max(3.0, grid.shape[0] / 40 + 0.4)))
    axes = figure.subplots()
    axes.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes.set_xticks([])
    if row_labels is not None:
        h = image_shape[0] + 1
        axes.set_yticks([1 + h * i + h / 2 for i in range(len(row_labels))], list(row_labels))
    else:
        axes.set_yticks([])
    if title:
        axes.set_title(title)
    return _save(figure, path)


def save_filters(path, rbm, n: int = 100, image_shape=(28, 28), title: str = "") -> Path:
    """The incoming weights of the first ``n`` hidden units, each shown as an image."""
    W = to_host(rbm.W)[:rbm.n_pixels, :n].T
    return save_grid(path, W, image_shape=image_shape, n_cols=10, scale="each",
                     title=title or f"weights of {min(n, rbm.n_hidden)} hidden units")


def save_reconstructions(path, x, x_hat, *, n: int = 10, image_shape=(28, 28),
                         title: str = "", labels=("data", "reconstruction")) -> Path:
    """Test digits (first row) above their reconstructions (following rows, one per model).

    ``x_hat`` may be one array or a list of arrays (e.g. autoencoder and PCA).
    """
    rows = [np.asarray(to_host(x))[:n]]
    rows += [np.asarray(to_host(r))[:n] for r in (x_hat if isinstance(x_hat, list) else [x_hat])]
    images = np.concatenate([np.clip(r, 0, 1) for r in rows])
    return save_grid(path, images, image_shape=image_shape, n_cols=n, title=title,
                     row_labels=labels if len(labels) == len(rows) else None)


def save_code_scatter(path, codes, labels, *, title: str = "") -> Path:
    """2-D codes of test digits, one colour per class (Hinton & Salakhutdinov's Fig. 3)."""
    codes, labels = np.asarray(to_host(codes)), np.asarray(labels)
    figure = _figure(size=(6.4, 6.0))
    axes = figure.subplots()
    for k in np.unique(labels):
        chosen = labels == k
        axes.scatter(codes[chosen, 0], codes[chosen, 1], s=3, alpha=0.6, label=str(k),
                     color=_colour(int(k)))
    axes.legend(markerscale=4, fontsize="small", loc="best", title="class")
    axes.set_xlabel("code unit 1")
    axes.set_ylabel("code unit 2")
    if title:
        axes.set_title(title)
    return _save(figure, path)


def _colour(k: int):
    from matplotlib import colormaps
    return colormaps["tab10"](k % 10)


def _figure(size=(6.4, 4.2)):
    # A bare Figure with the Agg canvas: no pyplot, no GUI backend (as nablanet.plots).
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, layout="tight")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    return path
