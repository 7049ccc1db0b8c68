"""Convolution as one matrix product: window geometry, im2col and col2im.

Images are channel-major here, x (C, N, H, W) (see :mod:`nablanet.layers.spatial`).
With kernel kh × kw, stride s and zero padding, im2col lays out every receptive
field as a column,

    cols[(c, i, j), (n, p, q)] = x_pad[c, n, s·p + i, s·q + j]                (im2col)

so a convolution with O kernels W (O, C, kh, kw) is one GEMM,

    z[o, (n, p, q)] = Σ_{c,i,j} W[o, (c, i, j)] · cols[(c, i, j), (n, p, q)] + b[o],

its weight gradient another, ∂C/∂W = δ · colsᵀ, and ∂C/∂x is col2im of Wᵀ · δ:
every receptive field adds its share of the gradient back onto the pixels it
covered (where windows overlap the contributions sum — the rule for shared weights
read backwards). Both loop over the kh·kw kernel offsets, each offset one copy or
add over the whole batch.

Stride 1 (the common case) uses a wider output row: with the padded row length Wp
as the output's row pitch, the pixels kernel offset (i, j) reads for a whole image
form ONE contiguous run of the padded image, starting at i·Wp + j. Each copy then
moves Ho·Wp numbers at once instead of Ho rows of Wo; the Wp − Wo extra columns
per output row are computed and ignored (the caller keeps ``[..., :Wo]``). The
output size along one axis is ⌊(size + 2·padding − kernel) / stride⌋ + 1.

On a GPU each copy or add is a kernel launch (~15 µs on an H100 host), and a 5×5
kernel's 25 of them cost more than the arithmetic. There the same matrices come from
one strided view each (:func:`_fields_view`): im2col is one copy of the view of every
receptive field, and col2im (stride 1) one sum over a view of the shifted fields, a
reduction in a fixed order, so a run stays bit-identical (a scatter-add's atomic
additions would sum in whatever order the threads come).
"""
from __future__ import annotations

import numbers

from ..backend import xp_of
from ..errors import ConfigError
from ..gpu_kernels import on_gpu


def pair(value, name: str, minimum: int = 1) -> tuple[int, int]:
    """``value`` (an int or two ints) as (rows, columns); ConfigError naming ``name`` otherwise."""
    items = list(value) if isinstance(value, (list, tuple)) else [value, value]
    # numbers.Integral: a NumPy integer is a size too (as for is_size), a bool is not
    if (len(items) != 2 or any(isinstance(v, bool) or not isinstance(v, numbers.Integral)
                               for v in items)
            or min(items) < minimum):
        raise ConfigError(f"{name} must be an integer ≥ {minimum} or a pair of them, "
                          f"got {value!r}")
    return int(items[0]), int(items[1])


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """⌊(size + 2·padding − kernel) / stride⌋ + 1 (the caller checks the kernel fits)."""
    return (size + 2 * padding - kernel) // stride + 1


def pad_spatial(x, padding: tuple[int, int], value: float = 0.0):
    """Pad the last two (spatial) axes of a batch by ``padding``; no copy when there is none."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return xp_of(x).pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def window_view(x, kernel: tuple[int, int], stride: tuple[int, int], out_hw: tuple[int, int]):
    """Every window of a channel-major batch as one strided view, no copy:
    windows[c, n, p, q, i, j] = x[c, n, s·p + i, s·q + j], shape (C, N, Ho, Wo, kh, kw)."""
    sc, sn, sy, sx = (st // x.itemsize for st in x.strides)
    (sh, sw) = stride
    return _fields_view(x, (*x.shape[:2], *out_hw, *kernel), (sc, sn, sy * sh, sx * sw, sy, sx))


def offset_view(x, i: int, j: int, out_hw: tuple[int, int], stride: tuple[int, int]):
    """The pixels that kernel offset (i, j) sees in every window, as a strided view."""
    (ho, wo), (sh, sw) = out_hw, stride
    return x[..., i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]


def row_pitch(width: int, kernel: tuple[int, int], stride: tuple[int, int],
              padding: tuple[int, int]) -> int:
    """Row length of :func:`im2col`'s output: the padded width for stride 1, else Wo."""
    if stride == (1, 1):
        return width + 2 * padding[1]
    return output_size(width, kernel[1], stride[1], padding[1])


def im2col(x, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]):
    """The (C·kh·kw, N·Ho·Wq) matrix of receptive fields of a channel-major batch.

    Wq is :func:`row_pitch`; output columns q ≥ Wo (stride 1 only) hold junk.
    """
    xp = xp_of(x)
    c, n, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    hp, wp = h + 2 * ph, w + 2 * pw
    ho, wo = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
    if (sh, sw) == (1, 1):
        # One spare zero row so the last offset's run of Ho·Wp numbers stays inside.
        padded = xp.zeros((c, n, hp + 1, wp), dtype=x.dtype)
        padded[:, :, ph:ph + h, pw:pw + w] = x
        flat = padded.reshape(c, n, -1)
        if on_gpu(x):      # cols[c, i, j, n, t] = flat[c, n, i·Wp + j + t]: one view
            sc, sn, _ = (st // flat.itemsize for st in flat.strides)
            view = _fields_view(flat, (c, kh, kw, n, ho * wp), (sc, wp, 1, sn, 1))
            return xp.ascontiguousarray(view).reshape(c * kh * kw, -1)
        cols = xp.empty((c, kh, kw, n, ho * wp), dtype=x.dtype)
        for i in range(kh):
            for j in range(kw):
                cols[:, i, j] = flat[:, :, i * wp + j:i * wp + j + ho * wp]
        return cols.reshape(c * kh * kw, -1)
    padded = pad_spatial(x, padding)
    if on_gpu(x):          # cols[c, i, j, n, p, q] = windows[c, n, p, q, i, j]
        view = window_view(padded, kernel, stride, (ho, wo)).transpose(0, 4, 5, 1, 2, 3)
        return xp.ascontiguousarray(view).reshape(c * kh * kw, -1)
    cols = xp.empty((c, kh, kw, n, ho, wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = offset_view(padded, i, j, (ho, wo), stride)
    return cols.reshape(c * kh * kw, -1)


def col2im(dcols, x_shape: tuple[int, int, int, int], kernel: tuple[int, int],
           stride: tuple[int, int], padding: tuple[int, int]):
    """The adjoint of :func:`im2col`: add each field's gradient back onto its pixels.

    ``dcols`` is (C·kh·kw, N·Ho·Wq) with zeros in the junk columns; returns ∂C/∂x,
    (C, N, H, W), as a view into the padded gradient. One add per kernel offset.
    """
    xp = xp_of(dcols)
    c, n, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    hp, wp = h + 2 * ph, w + 2 * pw
    ho, wo = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
    if (sh, sw) == (1, 1) and on_gpu(dcols):
        dpadded = _col2im_by_view(dcols, (c, n, hp + 1, wp), kernel, ho)
    elif (sh, sw) == (1, 1):
        dpadded = xp.zeros((c, n, hp + 1, wp), dtype=dcols.dtype)
        flat = dpadded.reshape(c, n, -1)
        fields = dcols.reshape(c, kh, kw, n, ho * wp)
        for i in range(kh):
            for j in range(kw):
                flat[:, :, i * wp + j:i * wp + j + ho * wp] += fields[:, i, j]
    else:
        dpadded = xp.zeros((c, n, hp, wp), dtype=dcols.dtype)
        fields = dcols.reshape(c, kh, kw, n, ho, wo)
        for i in range(kh):
            for j in range(kw):
                offset_view(dpadded, i, j, (ho, wo), stride)[...] += fields[:, i, j]
    return dpadded[:, :, ph:ph + h, pw:pw + w]


def _fields_view(a, shape, strides):
    """A view of ``a`` with ``shape`` and ``strides`` counted in elements (no copy)."""
    e = a.itemsize
    return xp_of(a).lib.stride_tricks.as_strided(a, shape=shape,
                                                 strides=tuple(st * e for st in strides))


def _col2im_by_view(dcols, padded_shape, kernel, ho):
    """col2im for stride 1 as one reduction: the flat padded gradient at position t is
    Σ_{i,j} fields[c, i, j, n, t − (i·Wp + j)]. With the fields placed M = (kh−1)·Wp +
    kw − 1 zeros into a longer row, every term is in range and the sum is over a strided
    view whose (i, j) steps go back by i·Wp + j along the row."""
    xp = xp_of(dcols)
    c, n, hp1, wp = padded_shape
    kh, kw = kernel
    length, shift = hp1 * wp, (kh - 1) * wp + kw - 1
    rows = xp.zeros((c, kh, kw, n, shift + length), dtype=dcols.dtype)
    rows[..., shift:shift + ho * wp] = dcols.reshape(c, kh, kw, n, ho * wp)
    sc, si, sj, sn, _ = (st // rows.itemsize for st in rows.strides)
    view = _fields_view(rows[..., shift:], (c, n, length, kh, kw),
                        (sc, sn, 1, si - wp, sj - 1))
    return view.sum(axis=(3, 4)).reshape(padded_shape)
