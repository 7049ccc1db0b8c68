"""Conv2D: gradients against central differences and PyTorch, memory bounds, bad input."""
import tracemalloc

import numpy as np
import pytest

from nablanet import ConfigError, DataError, Sequential, get_backend
from nablanet.functional import col2im, im2col, output_size
from nablanet.gradcheck import check_layer
from nablanet.layers import Conv2D, Dense, Flatten, ReLU, Reshape, Softmax

F64, F32 = get_backend("cpu", "float64"), get_backend("cpu", "float32")
TOL = 1e-6

# (in_channels, out_channels, image (H, W), kernel, stride, padding)
CASES = [
    (1, 2, (6, 6), 3, 1, 0),
    (3, 4, (7, 8), 3, 1, 1),              # multi-channel, "same" padding
    (2, 3, (9, 7), (3, 2), (2, 1), (1, 2)),   # rectangular kernel, stride and padding
    (2, 2, (8, 8), 5, 2, 2),              # stride 2 with overlapping windows
    (1, 1, (5, 5), 5, 1, 0),              # kernel the size of the image: a 1×1 output
    (3, 2, (4, 4), 2, 3, 0),              # stride larger than the kernel: skipped pixels
    (2, 2, (5, 6), (2, 3), 1, (2, 0)),    # stride 1, rows padded, columns not
    (2, 2, (7, 6), 3, 2, (0, 1)),         # stride 2, columns padded, rows not
]
IDS = [f"c{c}o{o}_{hw[0]}x{hw[1]}_k{k}_s{s}_p{p}" for c, o, hw, k, s, p in CASES]


def conv(c, o, hw, k, s, p, backend=F64, seed=0):
    layer = Conv2D(c, o, k, stride=s, padding=p)
    layer.build((c, *hw), backend, np.random.default_rng(seed))
    return layer


@pytest.mark.parametrize("c, o, hw, k, s, p", CASES, ids=IDS)
def test_gradients_match_central_differences(c, o, hw, k, s, p):
    layer = conv(c, o, hw, k, s, p)
    x = np.random.default_rng(1).standard_normal((2, c, *hw))
    errors = check_layer(layer, x)
    assert set(errors) == {"x", "W", "b"}
    assert max(errors.values()) < TOL, errors


def test_gradcheck_catches_a_wrong_col2im(monkeypatch):
    """The check above can fail: drop one kernel offset from col2im and ∂C/∂x is off."""
    import nablanet.functional.windows as f

    layer = conv(2, 3, (6, 6), 3, 1, 1)
    x = np.random.default_rng(1).standard_normal((2, 2, 6, 6))
    real = f.col2im

    def broken(dcols, *args):
        dcols = dcols.copy()
        dcols.reshape(2, 3, 3, -1)[:, 1, 1] = 0          # forget offset (1, 1)
        return real(dcols, *args)

    monkeypatch.setattr("nablanet.layers.conv.col2im", broken)
    assert check_layer(layer, x)["x"] > 1e-2


@pytest.mark.parametrize("c, o, hw, k, s, p", CASES, ids=IDS)
def test_sliced_batches_give_the_same_values_and_gradients(c, o, hw, k, s, p):
    """A tiny workspace forces one example per im2col slice; nothing may change."""
    whole, sliced = conv(c, o, hw, k, s, p), conv(c, o, hw, k, s, p)
    sliced.workspace_bytes = 1
    x = np.random.default_rng(2).standard_normal((5, c, *hw))
    dy = np.random.default_rng(3).standard_normal((5, o, *whole.output_hw))
    (y1, cache1), (y2, cache2) = whole.forward(x, True), sliced.forward(x, True)
    np.testing.assert_allclose(y2, y1, rtol=1e-12, atol=1e-12)
    assert cache1[1] is not None and cache2[1] is None       # cols kept only for one slice
    assert whole.forward(x, False)[1][1] is None             # and never in evaluation
    np.testing.assert_allclose(sliced.backward(dy, cache2), whole.backward(dy, cache1),
                               rtol=1e-12, atol=1e-12)
    for name in ("W", "b"):
        np.testing.assert_allclose(sliced.grads[name], whole.grads[name], rtol=1e-12)


def test_each_im2col_slice_fits_the_workspace(monkeypatch):
    """As many examples per slice as fit in ``workspace_bytes``, never more, on images taller
    than wide (so rows and columns of the output cannot be mixed up)."""
    layer = conv(2, 3, (9, 5), 3, 1, 0)                # Ho = 7, rows of Wq = 5: 5 040 B each
    layer.workspace_bytes = 3 * 7 * 5 * 2 * 9 * 8 + 100
    sizes = []

    def recording(*args):
        cols = im2col(*args)
        sizes.append(cols.nbytes)
        return cols

    monkeypatch.setattr("nablanet.layers.conv.im2col", recording)
    layer.forward(np.ones((7, 2, 9, 5)), train=True)
    assert sizes == [3 * 5040, 3 * 5040, 5040]        # 3 + 3 + 1 examples
    assert max(sizes) <= layer.workspace_bytes


torch_cases = pytest.mark.parametrize("c, o, hw, k, s, p", CASES, ids=IDS)


@torch_cases
def test_forward_and_gradients_match_pytorch(c, o, hw, k, s, p):
    torch = pytest.importorskip("torch")
    layer = conv(c, o, hw, k, s, p)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, c, *hw))
    y, cache = layer.forward(x, train=True)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy, cache)

    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(layer.params["W"], requires_grad=True)
    bt = torch.tensor(layer.params["b"], requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, wt, bt, stride=layer.stride, padding=layer.padding)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["W"], wt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["b"], bt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_float32_layer_on_a_non_contiguous_batch():
    layer = conv(3, 4, (6, 6), 3, 1, 1, backend=F32)
    x64 = np.random.default_rng(5).standard_normal((4, 6, 6, 3))
    x = x64.astype(np.float32).transpose(0, 3, 1, 2)            # an NHWC array viewed as NCHW
    y, cache = layer.forward(x, train=True)
    assert y.dtype == np.float32 and y.shape == (4, 4, 6, 6)
    ref = conv(3, 4, (6, 6), 3, 1, 1)
    ref.set_params(W=layer.params["W"].astype(np.float64), b=layer.params["b"].astype(np.float64))
    np.testing.assert_allclose(y, ref.forward(x64.transpose(0, 3, 1, 2))[0], rtol=1e-4,
                               atol=1e-5)
    assert layer.backward(np.ones_like(y), cache).dtype == np.float32
    assert layer.grads["W"].dtype == np.float32


def test_gradients_accumulate_over_two_backward_passes():
    layer = conv(2, 2, (5, 5), 3, 1, 0)
    x = np.random.default_rng(6).standard_normal((2, 2, 5, 5))
    y, cache = layer.forward(x, True)
    layer.backward(np.ones_like(y), cache)
    once = {k: v.copy() for k, v in layer.grads.items()}
    layer.backward(np.ones_like(y), cache)
    for name in once:
        np.testing.assert_allclose(layer.grads[name], 2 * once[name])


def test_first_layer_skips_the_input_gradient():
    net = Sequential([Reshape((1, 8, 8)), Conv2D(None, 3, 3), ReLU(), Flatten(),
                      Dense(None, 2), Softmax()]).build((64,), F64, rng=0)
    conv_layer = net.layers[1]
    assert conv_layer.in_channels == 1 and conv_layer.need_input_grad is False
    y, cache = conv_layer.forward(np.ones((2, 1, 8, 8)), True)
    assert conv_layer.backward(np.ones_like(y), cache) is None
    assert conv_layer.grads["W"] is not None


def test_im2col_and_col2im_are_adjoint():
    """⟨im2col(x), D⟩ = ⟨x, col2im(D)⟩ for random x and D, both stride paths."""
    rng = np.random.default_rng(7)
    for stride, padding in (((1, 1), (1, 2)), ((2, 3), (1, 0))):
        x = rng.standard_normal((2, 3, 7, 9))
        cols = im2col(x, (3, 2), stride, padding)
        d = rng.standard_normal(cols.shape)
        ho = output_size(7, 3, stride[0], padding[0])
        wo = output_size(9, 2, stride[1], padding[1])
        valid = d.reshape(-1, 3, ho, cols.shape[1] // (3 * ho))
        valid[..., wo:] = 0                                   # junk columns carry nothing
        lhs = float((cols * d).sum())
        rhs = float((x * col2im(d, x.shape, (3, 2), stride, padding)).sum())
        assert lhs == pytest.approx(rhs, rel=1e-12)


def test_predicting_5000_images_stays_far_below_a_gigabyte():
    """Nielsen's second conv layer (20 → 40 maps) on 5000 images: im2col alone would be
    5000·8·8·500 floats = 640 MB; sliced to the workspace it must stay small."""
    net = Sequential([Reshape((20, 12, 12)), Conv2D(20, 40, 5), Flatten(), Dense(None, 10),
                      Softmax()]).build((20 * 12 * 12,), F32, rng=0)
    x = np.random.default_rng(8).random((5000, 20 * 12 * 12), dtype=np.float32)
    tracemalloc.start()
    try:
        net.predict(x, chunk_size=5000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 250e6, f"peak {peak / 1e6:.0f} MB"


# -- bad input ---------------------------------------------------------------------------------

def test_wrong_image_shape_or_channel_count_is_a_data_error():
    layer = conv(3, 2, (8, 8), 3, 1, 0)
    with pytest.raises(DataError, match="expects 3 channel"):
        layer.forward(np.zeros((2, 1, 8, 8)))
    with pytest.raises(DataError, match="expects 8×8 images, got 9×8"):
        layer.forward(np.zeros((2, 3, 9, 8)))
    with pytest.raises(DataError, match=r"batch of images \(N, C, H, W\)"):
        layer.forward(np.zeros((2, 192)))


def test_flat_input_at_build_is_a_config_error_suggesting_reshape():
    with pytest.raises(ConfigError, match="Reshape"):
        Sequential([Conv2D(None, 2, 3)]).build((784,), F64)
    with pytest.raises(ConfigError, match=r"images \(channels, height, width\).*\(1, 2, 8, 8\)"):
        Sequential([Conv2D(None, 2, 3)]).build((1, 2, 8, 8), F64)


def test_initialiser_fans_count_one_kernel():
    """fan_in = C·kh·kw (the inputs of one output unit), not O·kh·kw: N(0, 1/fan_in) for
    'normal-scaled', U(±√(6/(fan_in + fan_out))) with fan_out = O·kh·kw for 'glorot'."""
    w = conv(2, 40, (9, 9), 5, 1, 0).params["W"]                  # 8 000 draws
    assert w.std() == pytest.approx(1 / np.sqrt(2 * 25), rel=0.05)
    glorot = Conv2D(2, 40, 5, init="glorot")
    glorot.build((2, 9, 9), F64, np.random.default_rng(0))
    limit = np.sqrt(6 / (2 * 25 + 40 * 25))
    assert 0.98 * limit < np.abs(glorot.params["W"]).max() <= limit


def test_kernel_larger_than_the_padded_input_is_a_config_error():
    with pytest.raises(ConfigError, match="kernel 7×7 is larger than the padded input 6×6"):
        conv(1, 1, (4, 4), 7, 1, 1)
    conv(1, 1, (4, 4), 6, 1, 1)                               # exactly fits: allowed


@pytest.mark.parametrize("stride", [0, -1, 1.5, True, (1, 0), (1, 2, 3), "2"])
def test_invalid_stride_is_a_config_error(stride):
    with pytest.raises(ConfigError, match="stride"):
        Conv2D(1, 2, 3, stride=stride)


@pytest.mark.parametrize("kwargs, word", [({"kernel_size": 0}, "kernel_size"),
                                          ({"padding": -1}, "padding"),
                                          ({"out_channels": 0}, "out_channels"),
                                          ({"in_channels": 2.0}, "in_channels"),
                                          ({"init": "nope"}, "init")])
def test_other_bad_arguments_name_themselves(kwargs, word):
    args = {"in_channels": 1, "out_channels": 2, "kernel_size": 3, **kwargs}
    with pytest.raises(ConfigError, match=word):
        Conv2D(**args)


def test_in_channels_that_disagree_with_the_input_are_a_config_error():
    with pytest.raises(ConfigError, match="in_channels=3"):
        conv(3, 2, (8, 8), 3, 1, 0).build((1, 8, 8), F64, None)
