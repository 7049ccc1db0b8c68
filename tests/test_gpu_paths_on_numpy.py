"""The GPU's strided-view paths (im2col, col2im, pooling) are plain array code that NumPy
runs too. Forced on here, they must give what the CPU's offset loops give, so their index
arithmetic is checked on every run, also where no GPU is (test_gpu.py runs them on CuPy)."""
import itertools

import numpy as np
import pytest

import nablanet.functional.windows as windows
import nablanet.layers.pool as pool
from nablanet import get_backend
from nablanet.layers import AvgPool2D, MaxPool2D

F64 = get_backend("cpu", "float64")
F32 = get_backend("cpu", "float32")
#: kernel, stride, padding: windows apart (stride ≥ kernel), overlapping, and 1 × 1; strides
#: and paddings that differ between the axes, so that swapping rows and columns shows
GEOMETRIES = [(k, s, p) for k, s, p in itertools.product(
    [(1, 1), (2, 2), (2, 3), (3, 3)], [(1, 1), (2, 2), (3, 3), (1, 2), (2, 1)],
    [(0, 0), (1, 1), (1, 0)]) if all(2 * pi <= ki for pi, ki in zip(p, k))]
#: float32 too: the views count strides in elements, whatever the item size
DTYPES = [np.float64, np.float32]


def tolerance(dtype) -> float:
    """For sums taken in another order (col2im, average pooling)."""
    return 1e-13 if dtype == np.float64 else 1e-5


def both_paths(monkeypatch, module, run):
    """``run()`` with the loop path, then with the view path forced on."""
    monkeypatch.setattr(module, "on_gpu", lambda a: False)
    loops = run()
    monkeypatch.setattr(module, "on_gpu", lambda a: True)
    return loops, run()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel, stride, padding", GEOMETRIES)
def test_im2col_and_col2im_by_view_equal_the_offset_loops(monkeypatch, kernel, stride, padding,
                                                          dtype):
    # As Conv2D passes it: a slice of examples of the channel-major view, not contiguous.
    batch = np.random.default_rng(0).standard_normal((5, 2, 7, 6)).astype(dtype)
    x = batch.transpose(1, 0, 2, 3)[:, 1:4]
    geometry = (kernel, stride, padding)
    ho = windows.output_size(7, kernel[0], stride[0], padding[0])
    wo = windows.output_size(6, kernel[1], stride[1], padding[1])
    wq = windows.row_pitch(6, *geometry)
    dcols = np.random.default_rng(1).standard_normal((2 * kernel[0] * kernel[1], 3 * ho * wq))
    dcols = dcols.astype(dtype)
    dcols.reshape(-1, 3, ho, wq)[..., wo:] = 0          # the junk columns carry no gradient

    def run():
        cols = windows.im2col(x, *geometry)
        return cols.reshape(-1, 3, ho, wq)[..., :wo], windows.col2im(dcols, x.shape, *geometry)

    (cols, dx), (cols_view, dx_view) = both_paths(monkeypatch, windows, run)
    np.testing.assert_array_equal(cols_view, cols)
    tol = tolerance(dtype)
    np.testing.assert_allclose(dx_view, dx, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize("kernel, stride, padding", GEOMETRIES)
@pytest.mark.parametrize("ties", [False, True])
def test_pooling_by_view_equals_the_offset_loops(monkeypatch, cls, kernel, stride, padding,
                                                  ties, dtype):
    """Ties (whole windows of zeros after a ReLU) must send δ to the same, first, maximum."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 2, 7, 6))
    if ties:
        x = np.maximum(np.round(x), 0)
    x = x.astype(dtype)
    layer = cls(kernel, stride, padding)
    layer.build(x.shape[1:], F64 if dtype == np.float64 else F32, None)

    def run():
        y, cache = layer.forward(x, train=True)
        dy = np.random.default_rng(3).standard_normal(y.shape).astype(dtype)
        return y, layer.backward(dy, cache)

    (y, dx), (y_view, dx_view) = both_paths(monkeypatch, pool, run)
    tol = tolerance(dtype)
    np.testing.assert_allclose(y_view, y, rtol=tol, atol=tol)
    np.testing.assert_allclose(dx_view, dx, rtol=tol, atol=tol)
