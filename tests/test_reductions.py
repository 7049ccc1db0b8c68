"""Reductions over a softmax's classes (functional/reductions.py) equal NumPy's."""
import numpy as np
import pytest

from nablanet.functional import max_last, sum_last


@pytest.mark.parametrize("shape", [(10, 10), (1024, 10), (3, 40, 7), (500, 65), (64, 200), (5,)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_and_sum_over_the_last_axis_match_numpy(shape, dtype):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    np.testing.assert_array_equal(max_last(x), x.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(sum_last(x), x.sum(axis=-1, keepdims=True),
                               rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)
    assert sum_last(x).dtype == dtype and max_last(x).dtype == dtype


def test_a_non_contiguous_input_is_reduced_right():
    x = np.random.default_rng(1).standard_normal((200, 30))[:, ::3]      # strided (200, 10)
    np.testing.assert_array_equal(max_last(x), x.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(sum_last(x), x.sum(axis=-1, keepdims=True), rtol=1e-12)


def test_the_sum_keeps_the_dtype_whichever_came_first():
    """The cached vector of ones is per dtype: a float64 one would promote float32 sums."""
    x = np.random.default_rng(2).standard_normal((40, 13))
    assert sum_last(x).dtype == np.float64
    assert sum_last(x.astype(np.float32)).dtype == np.float32
