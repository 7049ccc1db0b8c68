"""Batches of sequences: many sequences as one (batch, time, ...) array.

Recurrent layers take a whole mini-batch as one array so the time loop is the only
Python loop. Sequences of unequal length do not fit one array; rather than pad them
silently (which changes what a sequence-to-one net reads last), :func:`stack_sequences`
refuses them unless told where the padding goes:

* ``pad="pre"``: fill at the start, so every sequence *ends* at the last step — right
  for sequence-to-one outputs (:class:`~nablanet.layers.sequence.LastStep`);
* ``pad="post"``: fill at the end, so every sequence starts at step 0.
"""
from __future__ import annotations

import numpy as np

from ..errors import DataError
from .dataset import check_values

PADDING = ("pre", "post")


def stack_sequences(sequences, pad: str | None = None, value=0) -> np.ndarray:
    """Stack sequences of shape (Tᵢ, ...) into one (batch, T, ...) array.

    Unequal lengths raise :class:`DataError` unless ``pad`` is "pre" or "post"; the
    padding steps are filled with ``value``.
    """
    if pad is not None and pad not in PADDING:
        raise DataError(f"pad must be None, 'pre' or 'post', got {pad!r}")
    try:
        arrays = [np.asarray(s) for s in sequences]
    except (TypeError, ValueError) as exc:
        raise DataError(f"sequences must be arrays of shape (time, ...): {exc}") from None
    if not arrays:
        raise DataError("no sequences to stack")
    if any(a.ndim == 0 for a in arrays):
        raise DataError("each sequence needs a time axis; got a scalar")
    for i, a in enumerate(arrays):          # NaN came out stacked, strings as a '<U1' array
        check_values(a, "sequences", f"sequence {i}")
    lengths = [len(a) for a in arrays]
    step_shapes = {a.shape[1:] for a in arrays}
    if len(step_shapes) > 1:
        raise DataError(f"sequences differ in their per-step shape: {sorted(step_shapes)}")
    longest = max(lengths)
    if min(lengths) != longest and pad is None:
        first_short = next(i for i, n in enumerate(lengths) if n != lengths[0])
        raise DataError(f"sequences have unequal lengths ({lengths[0]} steps in sequence 0, "
                        f"{lengths[first_short]} in sequence {first_short}) and no padding; "
                        "pass pad='pre' (sequence to one) or pad='post'")
    dtype = np.result_type(*arrays)
    out = np.full((len(arrays), longest) + arrays[0].shape[1:], value, dtype=dtype)
    for i, a in enumerate(arrays):
        if pad == "pre":
            out[i, longest - len(a):] = a
        else:
            out[i, :len(a)] = a
    return out
