"""Checks for scalars: the counts and numbers the Python API takes as arguments, and those
a checkpoint's ``training_state.json`` gives back on ``--resume`` (shared by the trainer,
the optimisers, the callbacks and the models, which sit on different levels of the
import graph).

An argument is checked with ``error=ConfigError`` when the call is made, so ``epochs=2.5``
or ``batch_size=None`` is one message naming the argument, not a value cut by ``int()``
or a TypeError from deep inside a training loop.

Each value is checked as it is loaded, so a damaged file fails there, in one line naming
the key, and not epochs later inside the training loop (a ``"since": null`` was a
TypeError at the end of the next epoch, a negative step count Adam's ZeroDivisionError).
The errors are ValueErrors: the run's loader reports them as a malformed training state.
"""
from __future__ import annotations

import math
import numbers


def whole_number(value, key: str, least: int | None = 0, *, error=ValueError) -> int:
    """``value`` as an int if it is an integer ≥ ``least`` (a NumPy one too; not a bool, nor
    2.5 or "3", which int() would cut or read); ``least=None`` leaves the range to the
    caller's own message."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or (least is not None and value < least)):
        bound = "" if least is None else f" ≥ {least}"
        raise error(f"{key!r} must be a whole number{bound}, got {value!r}")
    return int(value)


def number(value, key: str, *, positive: bool = False, non_negative: bool = False,
           optional: bool = False, finite: bool = True, error=ValueError):
    """``value`` as a float: a finite number (> 0 with ``positive``, ≥ 0 with
    ``non_negative``; NaN and ±inf too unless ``finite``), or None if ``optional``."""
    if value is None and optional:
        return None
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or (finite and not math.isfinite(value)) or (positive and not value > 0)
            or (non_negative and not value >= 0)):
        sign = "positive " if positive else "non-negative " if non_negative else ""
        kind = f"a {sign}{'finite ' if finite else ''}number"
        raise error(f"{key!r} must be {kind}{' or null' if optional else ''}, "
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
