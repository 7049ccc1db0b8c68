"""Max and average pooling: gradients, PyTorch agreement (incl. overlapping windows), bad input."""
import numpy as np
import pytest

from nablanet import ConfigError, DataError, get_backend
from nablanet.gradcheck import check_layer
from nablanet.layers import AvgPool2D, MaxPool2D

F64 = get_backend("cpu", "float64")
TOL = 1e-6

# (image (H, W), kernel, stride (None = kernel), padding)
CASES = [
    ((6, 8), 2, None, 0),          # LeNet / Nielsen: 2×2, non-overlapping
    ((7, 7), 2, None, 0),          # odd size: the last row and column are never pooled
    ((7, 9), 3, 2, 0),             # AlexNet's overlapping 3×3 windows, stride 2
    ((8, 9), 3, 2, 1),             # overlapping with padding
    ((6, 7), (2, 3), (1, 2), (1, 1)),   # rectangular everything
    ((5, 5), 1, 2, 0),             # 1×1 windows: subsampling only
]
IDS = [f"{hw[0]}x{hw[1]}_k{k}_s{s}_p{p}" for hw, k, s, p in CASES]
POOLS = [MaxPool2D, AvgPool2D]


def pool(cls, hw, k, s, p, channels=3):
    layer = cls(k, s, p)
    layer.build((channels, *hw), F64, None)
    return layer


@pytest.mark.parametrize("cls", POOLS)
@pytest.mark.parametrize("hw, k, s, p", CASES, ids=IDS)
def test_gradients_match_central_differences(cls, hw, k, s, p):
    layer = pool(cls, hw, k, s, p)
    x = np.random.default_rng(1).standard_normal((2, 3, *hw))   # no ties: max is differentiable
    errors = check_layer(layer, x)
    assert set(errors) == {"x"} and errors["x"] < TOL, errors


@pytest.mark.parametrize("cls", POOLS)
@pytest.mark.parametrize("hw, k, s, p", CASES, ids=IDS)
def test_forward_and_gradient_match_pytorch(cls, hw, k, s, p):
    torch = pytest.importorskip("torch")
    functional = {MaxPool2D: torch.nn.functional.max_pool2d,
                  AvgPool2D: torch.nn.functional.avg_pool2d}[cls]
    layer = pool(cls, hw, k, s, p)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, *hw))
    y, cache = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    xt = torch.tensor(x, requires_grad=True)
    yt = functional(xt, layer.kernel_size, layer.stride, layer.padding)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.backward(dy, cache), xt.grad.numpy(), rtol=1e-12,
                               atol=1e-12)


def test_max_pool_sends_the_gradient_to_the_first_of_tied_maxima():
    layer = pool(MaxPool2D, (4, 4), 2, None, 0, channels=1)
    x = np.array([[[[1., 1., 0., 2.],
                    [1., 0., 2., 2.],
                    [0., 0., 5., 1.],
                    [3., 3., 5., 5.]]]])
    y, cache = layer.forward(x)
    np.testing.assert_array_equal(y, [[[[1., 2.], [3., 5.]]]])
    dx = layer.backward(np.array([[[[10., 20.], [30., 40.]]]]), cache)
    np.testing.assert_array_equal(dx, [[[[10., 0., 0., 20.],
                                         [0., 0., 0., 0.],
                                         [0., 0., 40., 0.],
                                         [30., 0., 0., 0.]]]])


def test_overlapping_max_pool_sums_gradients_of_a_shared_maximum():
    """A pixel that is the maximum of two overlapping windows receives both windows' δ."""
    layer = pool(MaxPool2D, (1, 5), (1, 3), (1, 2), 0, channels=1)
    x = np.array([[[[0., 1., 9., 1., 0.]]]])
    y, cache = layer.forward(x)
    np.testing.assert_array_equal(y, [[[[9., 9.]]]])
    np.testing.assert_array_equal(layer.backward(np.array([[[[1., 2.]]]]), cache),
                                  [[[[0., 0., 3., 0., 0.]]]])


def test_average_pool_includes_padding_in_the_count():
    layer = pool(AvgPool2D, (2, 2), 2, None, 1, channels=1)
    y, _ = layer.forward(np.ones((1, 1, 2, 2)))
    np.testing.assert_allclose(y, np.full((1, 1, 2, 2), 0.25))   # one real pixel per window


@pytest.mark.parametrize("cls", POOLS)
def test_output_shape_and_float32(cls):
    layer = cls(3, 2)
    assert layer.build((4, 13, 10), get_backend("cpu", "float32"), None) == (4, 6, 4)
    y, cache = layer.forward(np.ones((2, 4, 13, 10), dtype=np.float32))
    assert y.shape == (2, 4, 6, 4) and y.dtype == np.float32
    assert layer.backward(np.ones_like(y), cache).dtype == np.float32


# -- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", POOLS)
def test_window_larger_than_the_padded_input_is_a_config_error(cls):
    with pytest.raises(ConfigError, match="window 5×5 is larger than the padded input 4×4"):
        pool(cls, (4, 4), 5, None, 0)
    # too wide alone (the rows fit) is refused as well
    with pytest.raises(ConfigError, match="window 2×5 is larger than the padded input 8×4"):
        pool(cls, (8, 4), (2, 5), None, 0)


@pytest.mark.parametrize("cls", POOLS)
@pytest.mark.parametrize("stride", [0, -2, 2.5, False])
def test_invalid_stride_is_a_config_error(cls, stride):
    with pytest.raises(ConfigError, match="stride"):
        cls(2, stride)


@pytest.mark.parametrize("cls", POOLS)
def test_padding_beyond_half_the_window_is_a_config_error(cls):
    with pytest.raises(ConfigError, match="at most half the kernel"):
        cls(2, 2, 2)


@pytest.mark.parametrize("cls", POOLS)
def test_wrong_images_are_a_data_error(cls):
    layer = pool(cls, (6, 6), 2, None, 0)
    with pytest.raises(DataError, match="expects 3 channel"):
        layer.forward(np.zeros((1, 2, 6, 6)))
    with pytest.raises(DataError, match="6×6 images"):
        layer.forward(np.zeros((1, 3, 6, 5)))
    with pytest.raises(ConfigError, match="images"):
        cls(2).build((36,), F64, None)
