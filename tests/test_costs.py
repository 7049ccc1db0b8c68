"""Cost values and gradients against Nielsen's formulas (chapter 3) on tiny arrays, and
the targets the costs are given."""
import math

import numpy as np
import pytest

from nablanet import (ConfigError, CrossEntropy, DataError, LogLikelihood, Quadratic,
                      get_backend, get_cost)
from nablanet.costs import output_delta
from nablanet.layers import Sigmoid

F32, F64 = get_backend("cpu", "float32"), get_backend("cpu", "float64")

A = np.array([[0.2, 0.8], [0.6, 0.4], [0.9, 0.1]])
Y = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])


def test_quadratic_value_and_gradient():
    # ½ Σₓ ‖y − a‖²: ½ (0.04 + 0.04 + 0.16 + 0.16 + 0.01 + 0.01)
    assert Quadratic().value(A, Y) == pytest.approx(0.21)
    np.testing.assert_allclose(Quadratic().gradient(A, Y), A - Y)


def test_cross_entropy_value_and_gradient():
    # −Σₓ Σⱼ [yⱼ ln aⱼ + (1 − yⱼ) ln(1 − aⱼ)]
    by_hand = -(math.log(0.8) + math.log(0.8) + math.log(0.6) + math.log(0.6)
                + math.log(0.9) + math.log(0.9))
    assert CrossEntropy().value(A, Y) == pytest.approx(by_hand, rel=1e-12)
    np.testing.assert_allclose(CrossEntropy().gradient(A, Y), (A - Y) / (A * (1 - A)))


def test_log_likelihood_value_and_gradient():
    # −Σₓ ln a_{y(x)}: only the target unit's activation counts
    by_hand = -(math.log(0.8) + math.log(0.6) + math.log(0.9))
    assert LogLikelihood().value(A, Y) == pytest.approx(by_hand, rel=1e-12)
    np.testing.assert_allclose(LogLikelihood().gradient(A, Y), -Y / A)


def test_perfect_outputs_cost_nothing():
    for cost in (Quadratic(), CrossEntropy(), LogLikelihood()):
        assert cost.value(Y, Y) == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy_and_log_likelihood_stay_finite_at_0_and_1(dtype):
    # in float32 1 − 1e-12 rounds to 1.0: the clip must use the dtype's own epsilon
    wrong = np.array([[0.0, 1.0]], dtype=dtype)
    right = np.array([[1.0, 0.0]], dtype=dtype)
    for cost in (CrossEntropy(), LogLikelihood()):
        assert math.isfinite(cost.value(wrong, right)) and cost.value(wrong, right) > 20
        assert np.isfinite(cost.gradient(wrong, right)).all()


def test_cross_entropy_has_no_learning_slowdown():
    """Nielsen ch. 3: a badly wrong, saturated sigmoid neuron (z = 5, y = 0) learns slowly
    with the quadratic cost, δ = (a − y)σ′(z), but fast with cross-entropy, δ = a − y."""
    sigmoid = Sigmoid()
    sigmoid.build((1,), F64, None)
    a, cache = sigmoid.forward(np.array([[5.0]]))
    y = np.array([[0.0]])
    slow = output_delta(Quadratic(), sigmoid, a, y, cache, 1)
    fast = output_delta(CrossEntropy(), sigmoid, a, y, cache, 1)
    assert fast[0, 0] == pytest.approx(a[0, 0])
    assert slow[0, 0] == pytest.approx(a[0, 0] * a[0, 0] * (1 - a[0, 0]))
    assert fast[0, 0] > 100 * slow[0, 0]


def test_output_delta_is_the_mean_over_the_batch():
    """δᴸ carries the 1/n of the mean cost, for the closed form and for BP1 alike."""
    sigmoid = Sigmoid()
    sigmoid.build((2,), F64, None)
    a, cache = sigmoid.forward(np.array([[0.3, -1.0], [2.0, 0.5]]))
    y = np.array([[0.0, 1.0], [1.0, 0.0]])
    np.testing.assert_allclose(output_delta(CrossEntropy(), sigmoid, a, y, cache, 4),
                               (a - y) / 4)
    np.testing.assert_allclose(output_delta(Quadratic(), sigmoid, a, y, cache, 4),
                               (a - y) * a * (1 - a) / 4)


# -- targets -------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8])
def test_integer_labels_become_one_hot(dtype):
    y = Quadratic().targets(np.array([2, 0, 1, 2], dtype=dtype), 3, F32)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])


def test_regression_targets_pass_through():
    targets = np.array([[0.5, -2.0], [1.5, 3.0]])
    y = Quadratic().targets(targets, 2, F64)
    np.testing.assert_array_equal(y, targets)
    assert y.dtype == np.float64
    # a 1-D float target is one output per example
    np.testing.assert_array_equal(Quadratic().targets(np.array([0.5, 1.5]), 1, F32),
                                  [[0.5], [1.5]])


def test_integer_targets_of_two_dimensions_pass_through_and_no_labels_give_no_rows():
    # only a 1-D integer array is labels; a 0/1 integer matrix is the targets themselves
    y = CrossEntropy().targets(np.array([[0, 1], [1, 1]]), 2, F32)
    np.testing.assert_array_equal(y, [[0, 1], [1, 1]])
    assert y.dtype == np.float32
    assert LogLikelihood().targets(np.array([], dtype=np.int64), 3, F32).shape == (0, 3)


@pytest.mark.parametrize("labels", [[0, 3, 1], [0, -1, 1]])
def test_labels_outside_the_output_units_are_a_data_error(labels):
    # A label ≥ K would be an IndexError; −1 would silently mean the last class.
    with pytest.raises(DataError, match=r"labels must be in \[0, 3\)"):
        LogLikelihood().targets(np.array(labels), 3, F32)


def test_regression_targets_of_the_wrong_width_are_a_data_error():
    with pytest.raises(DataError, match="3 columns.*2 outputs"):
        Quadratic().targets(np.zeros((4, 3)), 2, F32)


def test_get_cost():
    assert isinstance(get_cost("cross-entropy"), CrossEntropy)
    ll = LogLikelihood()
    assert get_cost(ll) is ll
    with pytest.raises(ConfigError, match="unknown cost 'hinge'.*quadratic"):
        get_cost("hinge")
