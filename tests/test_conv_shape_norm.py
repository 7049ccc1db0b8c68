"""Local response normalisation, Flatten/Reshape, and whole conv nets (presets, model files)."""
import numpy as np
import pytest

from nablanet import ConfigError, DataError, get_backend
from nablanet.gradcheck import check_layer, check_net
from nablanet.io import load_model, save_model
from nablanet.layers import Flatten, LocalResponseNorm, Reshape
from nablanet.presets import PRESETS, lenet5, nielsen_ch6

F64 = get_backend("cpu", "float64")
TOL = 1e-6


def lrn(channels=7, hw=(3, 4), **kwargs):
    layer = LocalResponseNorm(**kwargs)
    layer.build((channels, *hw), F64, None)
    return layer


@pytest.mark.parametrize("size", [5, 4, 1, 9])
def test_lrn_gradient_matches_central_differences(size):
    layer = lrn(size=size, alpha=0.2, beta=0.75, k=2.0)   # α large enough to matter
    x = np.random.default_rng(1).standard_normal((2, 7, 3, 4))
    assert check_layer(layer, x)["x"] < TOL


@pytest.mark.parametrize("size", [5, 4, 2])
def test_lrn_matches_pytorch_with_alpha_times_n(size):
    """PyTorch divides α by n; the paper (and this layer) does not."""
    torch = pytest.importorskip("torch")
    layer = lrn(size=size, alpha=0.3, beta=0.75, k=2.0)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 7, 3, 4))
    y, cache = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.local_response_norm(xt, size, alpha=0.3 * size, beta=0.75, k=2.0)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.backward(dy, cache), xt.grad.numpy(), rtol=1e-10,
                               atol=1e-14)


def test_lrn_is_the_papers_formula():
    layer = lrn(channels=3, hw=(1, 1), size=3, alpha=0.5, beta=1.0, k=1.0)
    a = np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1)
    y, _ = layer.forward(a)
    # b_c = a_c / (k + α Σ_{|c'−c|≤1} a²)
    expected = [1 / (1 + 0.5 * 5), 2 / (1 + 0.5 * 14), 3 / (1 + 0.5 * 13)]
    np.testing.assert_allclose(y.ravel(), expected)


@pytest.mark.parametrize("kwargs", [{"size": 0}, {"size": 2.5}, {"alpha": -1}, {"k": 0}])
def test_lrn_bad_arguments(kwargs):
    with pytest.raises(ConfigError, match="LocalResponseNorm"):
        LocalResponseNorm(**kwargs)


def test_flatten_matches_pytorch_order_and_reshape_round_trips():
    flatten, reshape = Flatten(), Reshape((2, 3, 4))
    assert reshape.build((24,), F64, None) == (2, 3, 4)
    assert flatten.build((2, 3, 4), F64, None) == (24,)
    x = np.arange(48.0).reshape(2, 24)
    images, _ = reshape.forward(x)
    np.testing.assert_array_equal(images[1, 1, 2], x[1, 12 + 8:12 + 12])   # C, H, W order
    flat, _ = flatten.forward(images)
    np.testing.assert_array_equal(flat, x)
    np.testing.assert_array_equal(reshape.backward(flatten.backward(flat, None), None), x)


def test_reshape_errors():
    with pytest.raises(ConfigError, match="cannot turn examples of shape"):
        Reshape((1, 28, 28)).build((780,), F64, None)
    with pytest.raises(ConfigError, match="positive integers"):
        Reshape((1, 0, 28))
    layer = Reshape((1, 2, 2))
    layer.build((4,), F64, None)
    with pytest.raises(DataError, match="expects examples of shape"):
        layer.forward(np.zeros((3, 5)))


# -- whole nets ---------------------------------------------------------------------------------

def test_small_conv_net_gradients_through_every_layer_kind():
    from nablanet import Sequential
    from nablanet.layers import (AvgPool2D, Conv2D, Dense, Dropout, MaxPool2D, ReLU,
                                 Softmax, Tanh)
    net = Sequential([Reshape((2, 7, 7)), Conv2D(2, 4, 3, padding=1), Tanh(),
                      LocalResponseNorm(3, alpha=0.1), MaxPool2D(3, 2), Conv2D(4, 3, 2),
                      ReLU(), AvgPool2D(2, 1), Flatten(), Dropout(0.3), Dense(None, 3),
                      Softmax()]).build((98,), F64, rng=0)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 98))
    errors = check_net(net, "log-likelihood", x, rng.integers(0, 3, 3), seed=1)
    assert len(errors) == 6
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_build_for_flat_mnist_and_give_probabilities(name):
    net = PRESETS[name](rng=0)
    assert net.input_shape == (784,) and net.output_shape == (10,)
    p = net.predict(np.random.default_rng(4).random((3, 784), dtype=np.float32))
    assert p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)


def test_preset_architectures():
    assert lenet5(rng=0).n_params() == 61_706             # LeCun et al.'s 60 000, give or take
    final = nielsen_ch6(2, fully_connected=(1000, 1000), dropout=0.5, rng=0)
    kinds = [type(layer).__name__ for layer in final.layers]
    assert kinds.count("Conv2D") == 2 and kinds.count("Dropout") == 3
    assert final.layers[kinds.index("Flatten") + 2].n_in == 40 * 4 * 4


def test_lenet5_round_trips_through_a_model_file(tmp_path):
    net = lenet5(rng=1)
    x = np.random.default_rng(5).random((7, 784), dtype=np.float32)
    save_model(tmp_path / "lenet5", net, "log-likelihood")
    loaded, cost, _ = load_model(tmp_path / "lenet5")
    assert [type(a) for a in loaded.layers] == [type(b) for b in net.layers]
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))
    assert cost.name == "log-likelihood"


def test_same_seed_same_net_different_seed_different_net():
    x = np.random.default_rng(6).random((2, 784), dtype=np.float32)
    np.testing.assert_array_equal(lenet5(rng=3).predict(x), lenet5(rng=3).predict(x))
    assert not np.allclose(lenet5(rng=3).predict(x), lenet5(rng=4).predict(x))
