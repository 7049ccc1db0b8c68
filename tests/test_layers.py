"""Layer behaviour beyond gradients: dropout's two paths, softmax's stability, activation
values and dtypes, gradient accumulation, and the initialisers' statistics and seeding."""
import numpy as np
import pytest
import scipy.special

from nablanet import ConfigError, DataError, Sequential, get_backend, mlp
from nablanet.init import INITIALIZERS
from nablanet.layers import (ACTIVATIONS, Dense, Dropout, LeakyReLU, Linear, ReLU, Sigmoid,
                             Softmax, Tanh)

F32, F64 = get_backend("cpu", "float32"), get_backend("cpu", "float64")


def build(layer, n_in, backend=F64, seed=0):
    layer.build((n_in,), backend, np.random.default_rng(seed))
    return layer


def dropout(p, seed=0, backend=F64):
    layer = build(Dropout(p), 1, backend)
    layer.rng = np.random.default_rng(seed)
    return layer


# -- dropout ------------------------------------------------------------------------------

def test_dropout_inference_path_is_the_identity():
    x = np.random.default_rng(0).standard_normal((50, 20))
    y, cache = dropout(0.5).forward(x, train=False)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(dropout(0.5).backward(x, cache), x)


def test_dropout_with_p_zero_is_the_identity_while_training():
    x = np.random.default_rng(0).standard_normal((50, 20))
    np.testing.assert_array_equal(dropout(0.0).forward(x, train=True)[0], x)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_keeps_1_minus_p_of_units_scaled_by_1_over_1_minus_p(p):
    x = np.full((400, 250), 3.0)
    y, mask = dropout(p).forward(x, train=True)
    kept = y != 0
    # 100 000 Bernoulli(1 − p) draws: the kept fraction is within 0.01 of 1 − p (≫ 5σ)
    assert abs(kept.mean() - (1 - p)) < 0.01
    np.testing.assert_allclose(y[kept], 3.0 / (1 - p))
    # backward uses the same mask and scale
    np.testing.assert_allclose(dropout(p).backward(np.ones_like(x), mask), y / 3.0)


def test_dropout_expected_output_equals_the_input():
    """Inverted dropout: E[output] = input, so the inference path needs no rescaling."""
    p, draws = 0.5, 4000
    x = np.random.default_rng(1).standard_normal(30)
    layer = dropout(p, seed=2)
    outputs = layer.forward(np.tile(x, (draws, 1)), train=True)[0]
    sd = np.abs(x) * np.sqrt(p / (1 - p)) / np.sqrt(draws)    # std. error of each mean
    assert np.all(np.abs(outputs.mean(axis=0) - x) < 5 * sd + 1e-12)


def test_dropout_masks_are_seeded_and_differ_between_draws():
    x = np.ones((20, 20))
    a = dropout(0.5, seed=7).forward(x, train=True)[0]
    b = dropout(0.5, seed=7).forward(x, train=True)[0]
    np.testing.assert_array_equal(a, b)
    layer = dropout(0.5, seed=7)
    first, second = layer.forward(x, True)[0], layer.forward(x, True)[0]
    assert not np.array_equal(first, second)


def test_dropout_keeps_float32():
    x = np.ones((4, 5), dtype=np.float32)
    y, mask = dropout(0.5, backend=F32).forward(x, train=True)
    assert y.dtype == np.float32 and mask.dtype == np.float32


def test_dropout_with_p_zero_draws_no_random_numbers():
    """p = 0 is the unchanged input and leaves the shared generator alone, so adding it to
    a net changes no other layer's masks or the shuffling."""
    layer = dropout(0.0, seed=5)
    before = layer.rng.bit_generator.state
    x = np.random.default_rng(0).standard_normal((6, 4))
    y, _ = layer.forward(x, train=True)
    assert layer.rng.bit_generator.state == before
    np.testing.assert_array_equal(y, x)


def test_dropout_defaults_to_half_the_units():
    assert Dropout().p == 0.5           # Hinton et al.'s rate for hidden units


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_dropout_rejects_bad_probabilities(p):
    with pytest.raises(ConfigError, match="dropout probability"):
        Dropout(p)


def test_net_uses_dropout_only_while_training():
    net = mlp([6, 40, 3], "sigmoid", "softmax", dropout=0.5, input_dropout=0.2, rng=0)
    x = np.random.default_rng(0).standard_normal((8, 6)).astype(np.float32)
    eval_a, eval_b = net.forward(x)[0], net.forward(x)[0]
    np.testing.assert_array_equal(eval_a, eval_b)
    np.testing.assert_array_equal(net.predict(x), eval_a)
    assert not np.array_equal(net.forward(x, train=True)[0], eval_a)


# -- activations -------------------------------------------------------------------------

REFERENCE = {
    Sigmoid: lambda z: 1 / (1 + np.exp(-z)),
    Tanh: np.tanh,
    ReLU: lambda z: np.maximum(z, 0),
    LeakyReLU: lambda z: np.where(z > 0, z, 0.01 * z),
    Linear: lambda z: z,
    Softmax: lambda z: scipy.special.softmax(z, axis=1),
}


@pytest.mark.parametrize("cls", list(REFERENCE), ids=lambda c: c.__name__)
def test_activation_values(cls):
    z = np.linspace(-4, 4, 24).reshape(4, 6)
    np.testing.assert_allclose(build(cls(), 6).forward(z)[0], REFERENCE[cls](z), rtol=1e-12)


@pytest.mark.parametrize("cls", list(REFERENCE), ids=lambda c: c.__name__)
def test_activations_keep_float32(cls):
    layer = build(cls(), 6, F32)
    z = np.linspace(-4, 4, 24, dtype=np.float32).reshape(4, 6)
    a, cache = layer.forward(z, train=True)
    assert a.dtype == np.float32
    assert layer.backward(np.ones_like(a), cache).dtype == np.float32


def test_leaky_relu_slope_is_configurable():
    layer = build(LeakyReLU(0.2), 2)
    np.testing.assert_allclose(layer.forward(np.array([[-5.0, 5.0]]))[0], [[-1.0, 5.0]])
    assert layer.config() == {"alpha": 0.2}


def test_activation_registry_names():
    assert {"sigmoid", "tanh", "relu", "leaky-relu", "linear", "softmax"} <= set(ACTIVATIONS)


@pytest.mark.parametrize("name, cls", [("sigmoid", Sigmoid), ("tanh", Tanh), ("relu", ReLU),
                                       ("leaky-relu", LeakyReLU), ("linear", Linear),
                                       ("softmax", Softmax)])
def test_each_activation_name_computes_its_function(name, cls):
    z = np.linspace(-4, 4, 24).reshape(4, 6)
    np.testing.assert_allclose(build(ACTIVATIONS[name](), 6).forward(z)[0], REFERENCE[cls](z),
                               rtol=1e-12)


@pytest.mark.parametrize("layer, slope_at_zero", [(ReLU(), 0.0), (LeakyReLU(0.2), 0.2)])
def test_rectifier_derivative_at_zero_is_the_negative_side(layer, slope_at_zero):
    # "derivative 1 for z > 0, else 0" (α for the leaky one), as PyTorch: a unit at exactly
    # 0 (a zero input, a zero-padded border) passes the negative side's slope
    build(layer, 3)
    z = np.array([[-1.0, 0.0, 1.0]])
    a, cache = layer.forward(z)
    np.testing.assert_array_equal(a, [[-slope_at_zero, 0.0, 1.0]])
    np.testing.assert_array_equal(layer.backward(np.ones_like(z), cache),
                                  [[slope_at_zero, slope_at_zero, 1.0]])


def test_softmax_rows_sum_to_one():
    z = np.random.default_rng(0).standard_normal((50, 10)) * 5
    a = build(Softmax(), 10).forward(z)[0]
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-12)
    assert (a > 0).all()


@pytest.mark.parametrize("backend", [F32, F64], ids=["float32", "float64"])
def test_softmax_is_stable_for_huge_inputs(backend):
    z = np.array([[1000.0, 999.0, 0.0], [-1000.0, -1001.0, -1000.0], [1e4, 1e4, 1e4]],
                 dtype=backend.dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):   # no inf, no 0/0
        a = build(Softmax(), 3, backend).forward(z)[0]
    assert np.isfinite(a).all()
    np.testing.assert_allclose(a, scipy.special.softmax(z.astype(np.float64), axis=1),
                               rtol=1e-5, atol=1e-30)


def test_sigmoid_saturates_without_overflow():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        a = build(Sigmoid(), 2).forward(np.array([[1000.0, -1000.0]]))[0]
    np.testing.assert_array_equal(a, [[1.0, 0.0]])


# -- dense ------------------------------------------------------------------------------

def test_dense_computes_xw_plus_b():
    layer = build(Dense(3, 2), 3)
    layer.set_params(W=np.arange(6.0).reshape(3, 2), b=np.array([1.0, -1.0]))
    z, _ = layer.forward(np.array([[1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(z, [[0 + 2 * 2 + 3 * 4 + 1, 1 + 2 * 3 + 3 * 5 - 1]])


def test_dense_gradients_accumulate_over_backward_calls():
    """Two backward passes before a step add up (the tied-weights rule), and the reused
    GEMM buffer does not corrupt a later step after zero_grads."""
    layer = build(Dense(3, 2), 3)
    rng = np.random.default_rng(0)
    x, delta = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    _, cache = layer.forward(x)
    layer.backward(delta, cache)
    once = {k: v.copy() for k, v in layer.grads.items()}
    np.testing.assert_allclose(once["W"], x.T @ delta)
    np.testing.assert_allclose(once["b"], delta.sum(axis=0))
    layer.backward(delta, cache)
    for k in once:
        np.testing.assert_allclose(layer.grads[k], 2 * once[k])
    first_buffer = layer.grads["W"]
    layer.zero_grads()
    assert all(g is None for g in layer.grads.values())
    layer.backward(delta, cache)
    for k in once:
        np.testing.assert_allclose(layer.grads[k], once[k])
    assert layer.grads["W"] is first_buffer          # the GEMM's buffer, reused: no allocation


def test_dense_without_input_gradient_returns_none():
    layer = build(Dense(3, 2, need_input_grad=False), 3)
    x = np.random.default_rng(0).standard_normal((4, 3))
    _, cache = layer.forward(x)
    assert layer.backward(np.ones((4, 2)), cache) is None
    np.testing.assert_allclose(layer.grads["W"], x.T @ np.ones((4, 2)))    # still learns


def test_dense_rejects_the_wrong_number_of_features():
    layer = build(Dense(3, 2), 3)
    with pytest.raises(DataError, match="expects 3 features, got 4"):
        layer.forward(np.ones((2, 4)))


def test_net_predict_checks_its_input_in_one_clear_error():
    net = mlp([4, 3, 2], rng=0)
    x = np.random.default_rng(0).random((5, 4))
    np.testing.assert_array_equal(net.predict(x.tolist()), net.predict(x))   # lists are arrays
    with pytest.raises(DataError, match=r"got \(\); one example x is x\[None\]"):
        net.predict(x[0])
    with pytest.raises(ConfigError, match="not built"):
        Sequential([Dense(4, 2)]).predict(x)


def test_predict_in_chunks_equals_one_pass():
    # 23 rows in chunks of 5: four full chunks and a short one, all of them returned
    net = mlp([4, 6, 3], "sigmoid", "softmax", backend=F64, rng=0)
    x = np.random.default_rng(0).standard_normal((23, 4))
    np.testing.assert_allclose(net.predict(x, chunk_size=5), net.forward(x)[0], rtol=1e-12)
    np.testing.assert_array_equal(net.classify(x, chunk_size=5), net.forward(x)[0].argmax(1))


def test_predict_on_no_rows_gives_no_rows_of_the_output_shape():
    net = mlp([4, 3, 2], rng=0)
    assert net.predict(np.empty((0, 4))).shape == (0, 2)
    assert net.classify(np.empty((0, 4))).shape == (0,)


def test_a_net_counts_its_parameters_and_needs_a_layer():
    assert mlp([3, 4, 2], rng=0).n_params() == 3 * 4 + 4 + 4 * 2 + 2
    with pytest.raises(ConfigError, match="at least one layer"):
        Sequential([])


def test_a_net_ending_in_a_dense_layer_has_no_output_activation_and_trains_it():
    from nablanet.optimizers import SGD
    from nablanet.training import Trainer
    from nablanet.data import Dataset
    assert isinstance(mlp([3, 2], rng=0).output_activation, Sigmoid)
    net = Sequential([Dense(3, 1)], 3).build(3, F64, rng=0)
    assert net.output_activation is None
    # linear regression: the only layer must learn y = x·w (quadratic cost, plain SGD)
    x = np.random.default_rng(0).standard_normal((200, 3))
    w = np.array([[1.0], [-2.0], [0.5]])
    Trainer(net, "quadratic", SGD(0.1), batch_size=20, rng=0).fit(Dataset(x, x @ w), 30)
    np.testing.assert_allclose(net.layers[0].params["W"], w, atol=1e-3)


def test_predict_names_the_expected_input_shape():
    # checked before the first layer: a net that starts with Reshape or a distortion would
    # otherwise fail deep inside it, or not at all
    net = mlp([4, 3], backend=F64, rng=0)
    with pytest.raises(DataError, match=r"network expects inputs of shape \(4,\) per example, "
                                        r"got \(2, 2\)"):
        net.predict(np.ones((3, 2, 2)))


@pytest.mark.parametrize("n_in, n_out", [(0, 3), (3, 0), (-1, 2)])
def test_dense_rejects_non_positive_sizes(n_in, n_out):
    with pytest.raises(ConfigError):
        Dense(n_in, n_out)


def test_first_dense_layer_skips_the_input_gradient():
    net = mlp([4, 5, 2], rng=0, input_dropout=0.2)
    assert net.layers[1].need_input_grad is False     # below it is only the input dropout
    assert net.layers[3].need_input_grad is True


# -- initialisers -------------------------------------------------------------------------

N_IN, N_OUT = 400, 300


def init_weights(init, backend=F64, seed=0, n_in=N_IN, n_out=N_OUT):
    layer = build(Dense(n_in, n_out, init=init), n_in, backend, seed)
    return layer.params["W"], layer.params["b"]


# init -> (weight std, bias std); 120 000 draws give the std within ~0.5%
EXPECTED_STD = {
    "normal": (1.0, 1.0),
    "normal-scaled": (1 / np.sqrt(N_IN), 1.0),              # Nielsen's N(0, 1/n_in)
    "glorot": (np.sqrt(2 / (N_IN + N_OUT)), 0.0),           # U(±√(6/(n_in+n_out)))
    "he": (np.sqrt(2 / N_IN), 0.0),                         # N(0, 2/n_in)
    "uniform": (0.2 / np.sqrt(3), 0.0),                     # U(−0.2, 0.2)
    "zeros": (0.0, 0.0),
}


@pytest.mark.parametrize("init", list(EXPECTED_STD))
def test_initialiser_statistics(init):
    w, b = init_weights(init)
    w_std, b_std = EXPECTED_STD[init]
    assert w.std() == pytest.approx(w_std, rel=0.02, abs=1e-12)
    assert abs(w.mean()) <= 5 * w_std / np.sqrt(w.size)     # 5 standard errors
    if b_std:
        # only 300 biases: a looser bound
        assert b.std() == pytest.approx(b_std, rel=0.15)
    else:
        np.testing.assert_array_equal(b, 0)


def test_glorot_and_uniform_respect_their_limits():
    limit = np.sqrt(6 / (N_IN + N_OUT))
    w, _ = init_weights("glorot")
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.99 * limit
    w, _ = init_weights("uniform")
    assert np.abs(w).max() <= 0.2 and np.abs(w).max() > 0.19


@pytest.mark.parametrize("init", ["normal-scaled", "glorot", "he", "normal"])
def test_same_seed_gives_the_same_weights_in_float32_and_float64(init):
    w64, b64 = init_weights(init, F64, seed=3, n_in=20, n_out=10)
    w32, b32 = init_weights(init, F32, seed=3, n_in=20, n_out=10)
    assert w32.dtype == np.float32 and w64.dtype == np.float64
    np.testing.assert_array_equal(w32, w64.astype(np.float32))
    np.testing.assert_array_equal(b32, b64.astype(np.float32))
    np.testing.assert_array_equal(init_weights(init, F64, seed=3, n_in=20, n_out=10)[0], w64)
    assert not np.array_equal(init_weights(init, F64, seed=4, n_in=20, n_out=10)[0], w64)


def test_seeded_nets_are_identical_and_differ_across_seeds():
    def weights(seed):
        return [layer.params[n] for layer, n in mlp([5, 7, 3], rng=seed).parameters()]
    for a, b in zip(weights(11), weights(11)):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(weights(11)[0], weights(12)[0])


@pytest.mark.parametrize("alias, name", [("large", "normal"), ("default", "normal-scaled"),
                                         ("xavier", "glorot")])
def test_an_initialiser_alias_draws_what_its_name_draws(alias, name):
    for got, expected in zip(init_weights(alias, n_in=20, n_out=10),
                             init_weights(name, n_in=20, n_out=10)):
        np.testing.assert_array_equal(got, expected)


def test_unknown_initialiser_names_the_choices():
    with pytest.raises(ConfigError, match="unknown init 'bogus'.*glorot"):
        Dense(3, 2, init="bogus")
    assert "he" in INITIALIZERS


@pytest.mark.parametrize("alpha", [float("nan"), float("inf"), True, "steep", None])
def test_leaky_relu_alpha_must_be_a_finite_number(alpha):
    # NaN turned every negative input into NaN; True was read as a slope of 1
    with pytest.raises(ConfigError, match="LeakyReLU alpha must be a finite number"):
        LeakyReLU(alpha)
    assert LeakyReLU(0.2).alpha == 0.2
