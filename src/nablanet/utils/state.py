"""Checks for the scalars a checkpoint's ``training_state.json`` gives back on ``--resume``
(shared by the trainer, the optimisers and the callbacks, which sit on different levels
of the import graph).

Each value is checked as it is loaded, so a damaged file fails there, in one line naming
the key, and not epochs later inside the training loop (a ``"since": null`` was a
TypeError at the end of the next epoch, a negative step count Adam's ZeroDivisionError).
The errors are ValueErrors: the run's loader reports them as a malformed training state.
"""
from __future__ import annotations

import math


def whole_number(value, key: str, least: int = 0) -> int:
    """``value`` if it is an integer ≥ ``least`` (not a bool, nor 2.5, which int() would cut)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{key!r} must be a whole number ≥ {least}, got {value!r}")
    return value


def number(value, key: str, *, positive: bool = False, non_negative: bool = False,
           optional: bool = False, finite: bool = True):
    """``value`` as a float: a finite number (> 0 with ``positive``, ≥ 0 with
    ``non_negative``; NaN and ±inf too unless ``finite``), or None if ``optional``."""
    if value is None and optional:
        return None
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or (finite and not math.isfinite(value)) or (positive and not value > 0)
            or (non_negative and not value >= 0)):
        sign = "positive " if positive else "non-negative " if non_negative else ""
        kind = f"a {sign}{'finite ' if finite else ''}number"
        raise ValueError(f"{key!r} must be {kind}{' or null' if optional else ''}, "
                         f"got {value!r}")
    return float(value)


def history_rows(rows) -> list[dict]:
    """Per-epoch metric rows: objects whose values are numbers, with a whole ``epoch`` and
    finite ``seconds`` (a diverged epoch's cost may be NaN or infinite)."""
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise TypeError("'history' must be a list of per-epoch objects")
    for row in rows:
        whole_number(row.get("epoch"), "history epoch")
        number(row.get("seconds"), "history seconds")
        for key, value in row.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"history {key!r} must be a number, got {value!r}")
    return rows
