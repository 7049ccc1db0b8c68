"""Max and sum over a short last axis (a softmax's classes), fast on NumPy.

NumPy reduces a C-ordered (m, k) array along its last axis one row at a time, and for
k = 10 the per-row overhead is the whole cost: for 1024 rows the max took 46 µs and the
sum 17 µs here. The max of the transposed copy runs down whole columns instead (5 µs,
copy included), and the sum is a matrix–vector product with a vector of ones, which
BLAS does in 2.5 µs. The results equal NumPy's (the max exactly; the sum to rounding).
"""
from __future__ import annotations

import numpy as np

from ..backend import xp_of

#: a last axis at most this long counts as short
SHORT_AXIS = 64
#: with fewer rows than this the transposed copy does not pay
MIN_ROWS = 32

_ones: dict = {}          # (namespace, length, dtype) → a vector of ones, made once


def max_last(x):
    """``x.max(axis=-1, keepdims=True)``."""
    k = x.shape[-1]
    if xp_of(x) is np and x.ndim >= 2 and k <= SHORT_AXIS and x.size >= MIN_ROWS * k:
        return np.ascontiguousarray(np.moveaxis(x, -1, 0)).max(axis=0)[..., None]
    return x.max(axis=-1, keepdims=True)


def sum_last(x):
    """``x.sum(axis=-1, keepdims=True)``, as x @ 1 (floating-point x)."""
    xp = xp_of(x)
    key = (xp, x.shape[-1], x.dtype)
    ones = _ones.get(key)
    if ones is None:
        ones = _ones[key] = xp.ones(x.shape[-1], dtype=x.dtype)
    return (x @ ones)[..., None]
