"""Learning curves of a run as PNG files (matplotlib, Agg, no pyplot state).

Training and validation curves share one pair of axes, as in Nielsen's chapter 3
figures of overfitting: the training cost keeps falling while the validation
accuracy stops improving, and the gap between the two curves is the overfitting.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

from .utils.atomic import atomic_path

#: (file name, y-axis label, metric suffix, scale applied to the values)
CURVES = (("cost.png", "cost", "cost", 1.0),
          ("accuracy.png", "accuracy (%)", "accuracy", 100.0))
_SETS = (("train", "training data", "tab:blue"), ("validation", "validation data", "tab:orange"))


def plot_curves(rows: list[dict], directory: str | os.PathLike,
                best_epoch: int | None = None) -> list[Path]:
    """Write cost.png and accuracy.png from per-epoch metric rows; return the paths.

    Epochs without a finite value (a diverged epoch) leave a gap in the curve.
    """
    directory = Path(directory)
    written = []
    for filename, label, suffix, scale in CURVES:
        figure = _figure()
        axes = figure.subplots()
        for prefix, name, colour in _SETS:
            key = f"{prefix}_{suffix}"
            points = [(r["epoch"], r[key] * scale) for r in rows
                      if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
            if points:
                epochs, values = zip(*points)
                axes.plot(epochs, values, marker="." if len(points) < 40 else None,
                          color=colour, label=f"{label.split(' ')[0]} on the {name}")
        if best_epoch is not None:
            axes.axvline(best_epoch, color="grey", linestyle=":", label="best validation epoch")
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        if axes.lines:
            axes.legend()
        path = directory / filename
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format="png", dpi=100)
        written.append(path)
    return written


def _figure():
    # A bare Figure with the Agg canvas: no pyplot, no GUI backend, safe in worker processes.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.2), layout="tight")
    FigureCanvasAgg(figure)
    return figure
