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
#: kernel, stride, padding: windows apart (stride ≥ kernel), overlapping, and 1 × 1; strides
#: unequal along the two axes too, so a row stride used for columns (or back) shows
GEOMETRIES = [(k, s, p) for k, s, p in itertools.product(
    [(1, 1), (2, 2), (2, 3), (3, 3)], [(1, 1), (2, 2), (3, 3), (1, 2), (2, 1)], [0, 1])
    if 2 * p <= min(k)]


def both_paths(monkeypatch, module, run):
    """``run()`` with the loop path, then with the view path forced on."""
    monkeypatch.setattr(module, "on_gpu", lambda a: False)
    loops = run()
    monkeypatch.setattr(module, "on_gpu", lambda a: True)
    return loops, run()


@pytest.mark.parametrize("kernel, stride, padding", GEOMETRIES)
def test_im2col_and_col2im_by_view_equal_the_offset_loops(monkeypatch, kernel, stride, padding):
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 6))
    geometry = (kernel, stride, (padding, padding))
    ho = windows.output_size(7, kernel[0], stride[0], padding)
    wo = windows.output_size(6, kernel[1], stride[1], padding)
    wq = windows.row_pitch(6, kernel, stride, (padding, padding))
    dcols = np.random.default_rng(1).standard_normal((2 * kernel[0] * kernel[1], 3 * ho * wq))
    dcols.reshape(-1, 3, ho, wq)[..., wo:] = 0          # the junk columns carry no gradient

    def run():
        cols = windows.im2col(x, *geometry)
        return cols.reshape(-1, 3, ho, wq)[..., :wo], windows.col2im(dcols, x.shape, *geometry)

    (cols, dx), (cols_view, dx_view) = both_paths(monkeypatch, windows, run)
    np.testing.assert_array_equal(cols_view, cols)
    np.testing.assert_allclose(dx_view, dx, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize("kernel, stride, padding", GEOMETRIES)
@pytest.mark.parametrize("ties", [False, True])
def test_pooling_by_view_equals_the_offset_loops(monkeypatch, cls, kernel, stride, padding,
                                                  ties):
    """Ties (whole windows of zeros after a ReLU) must send δ to the same, first, maximum."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 2, 7, 6))
    if ties:
        x = np.maximum(np.round(x), 0)
    layer = cls(kernel, stride, padding)
    layer.build(x.shape[1:], F64, None)

    def run():
        y, cache = layer.forward(x, train=True)
        return y, layer.backward(np.random.default_rng(3).standard_normal(y.shape), cache)

    (y, dx), (y_view, dx_view) = both_paths(monkeypatch, pool, run)
    np.testing.assert_allclose(y_view, y, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(dx_view, dx, rtol=1e-13, atol=1e-13)
