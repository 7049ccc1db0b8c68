"""Backprop against central differences (float64): every registered layer (and a check that
none is left out), every cost × output activation, the penalties alone and together, dropout,
conv and sequence nets; plus checks that the checker itself can fail."""
from math import prod

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nablanet import L1, L2, Sequential, get_backend, get_cost, mlp
from nablanet.costs import output_delta
from nablanet.gradcheck import check_layer, check_net, numerical_gradient, relative_error
from nablanet.layers import (GRU, LSTM, AvgPool2D, Concat, Conv2D, Dense, Dropout, Embedding,
                             Flatten, LastStep, LeakyReLU, Linear, LocalResponseNorm, MaxPool2D,
                             OneHot, RandomDistortion, ReLU, Reshape, Residual, Sigmoid,
                             SimpleRNN, Softmax, Tanh, TimeDistributedDense)
from nablanet.layers.base import LAYERS
from nablanet.layers.recurrent import Recurrent
from test_recurrent import recurrent

F64 = get_backend("cpu", "float64")
TOL = 1e-6
ATOL = 1e-9     # absolute error allowed on a vanishing gradient (see assert_net_small)
SETTINGS = settings(max_examples=20, deadline=None)

batches = st.integers(1, 6)
widths = st.integers(1, 7)
seeds = st.integers(0, 2**32 - 1)


def build(layer, n_in, seed=0):
    layer.build((n_in,), F64, np.random.default_rng(seed))
    return layer


def away_from_zero(a, margin=0.1):
    """Move entries at least ``margin`` away from 0, where ReLU and |w| have kinks."""
    a = np.asarray(a, dtype=np.float64)
    return np.where(a >= 0, 1.0, -1.0) * (np.abs(a) + margin)


def assert_small(errors, expected_keys, grads=None):
    """Every relative error < TOL; with the layer's ``grads``, a parameter's vanishing
    gradient may instead pass on its absolute error, as in :func:`assert_net_small`
    (a GRU whose reset gate is shut: ‖∂L/∂b_hn‖ = 7e-10, relative error 3e-4)."""
    assert set(errors) == set(expected_keys), errors    # nothing skipped silently
    for key, err in errors.items():
        g = np.linalg.norm(grads[key]) if grads is not None and key in grads else np.inf
        assert err < TOL or err * 2 * g < ATOL, (key, err, g, errors)


def assert_net_small(net, errors):
    """Relative error < TOL for every parameter, as np.allclose does it: with an absolute
    floor, because a vanishing gradient (a saturated unit, ‖g‖ ~ 1e-5) is below the
    round-off of the central difference itself (~1e-16·C/ε = 1e-10 per entry)."""
    expected = {f"layer{i}.{name}" for i, layer in enumerate(net.layers) for name in layer.params}
    assert set(errors) == expected, errors
    for key, err in errors.items():
        i, name = key[len("layer"):].split(".", 1)     # a block's names have dots too
        g = np.linalg.norm(net.layers[int(i)].grads[name])
        # err · (‖g‖ + ‖g_num‖) ≈ ‖g − g_num‖, the absolute error
        assert err < TOL or err * 2 * g < ATOL, (key, err, g, errors)


# -- the checker itself --------------------------------------------------------------------

def test_numerical_gradient_of_a_known_function():
    x = np.array([[0.5, -1.0], [2.0, 0.25]])
    grad = numerical_gradient(lambda: float((x ** 3).sum()), x)
    np.testing.assert_allclose(grad, 3 * x ** 2, rtol=1e-8)
    np.testing.assert_array_equal(x, [[0.5, -1.0], [2.0, 0.25]])    # restored after probing


def test_relative_error_scale():
    a = np.array([1.0, -2.0, 3.0])
    assert relative_error(a, a) == 0.0
    assert relative_error(a, -a) == pytest.approx(1.0)
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0


class _BiasMeanDense(Dense):
    """Planted bug: ∂C/∂b as the mean over the batch instead of the sum (BP3)."""

    def backward(self, delta, x):
        self.accumulate_matmul("W", x.T, delta)
        self.accumulate("b", delta.mean(axis=0))
        return delta @ self.params["W"].T


class _NoTransposeDense(Dense):
    """Planted bug: ∂C/∂x = δ W instead of δ Wᵀ (a square layer, so shapes still fit)."""

    def backward(self, delta, x):
        self.accumulate_matmul("W", x.T, delta)
        self.accumulate("b", delta.sum(axis=0))
        return delta @ self.params["W"]


class _WrongSigmoid(Sigmoid):
    """Planted bug: σ′ taken as σ instead of σ(1 − σ)."""

    def backward(self, da, a):
        return da * a


@pytest.mark.parametrize("layer, key", [(_BiasMeanDense(4, 4), "b"),
                                        (_NoTransposeDense(4, 4), "x"),
                                        (_WrongSigmoid(), "x")])
def test_gradcheck_detects_a_planted_bug(layer, key):
    build(layer, 4)
    x = np.random.default_rng(1).standard_normal((5, 4))
    assert check_layer(layer, x)[key] > 1e-2


def test_the_checkers_start_from_zero_gradients_each_call():
    """A second check of the same layer or net must not add the first call's gradients."""
    layer = build(Dense(3, 2), 3)
    x = np.random.default_rng(0).standard_normal((4, 3))
    for _ in range(2):
        assert_small(check_layer(layer, x), {"x", "W", "b"})
    net = mlp([3, 4, 2], "tanh", "sigmoid", backend=F64, rng=0)
    for _ in range(2):
        assert_net_small(net, check_net(net, "cross-entropy", x, np.array([0, 1, 1, 0])))


def test_check_net_in_inference_mode_checks_the_net_without_dropout():
    """train=False: backprop and the central differences both run the whole net (no mask)."""
    net = mlp([4, 6, 3], "tanh", "softmax", dropout=0.5, backend=F64, rng=0)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((5, 4)), rng.integers(0, 3, 5)
    assert_net_small(net, check_net(net, "log-likelihood", x, y, train=False))


def test_check_net_detects_a_planted_bug_in_a_hidden_layer():
    net = mlp([3, 4, 2], "sigmoid", "sigmoid", backend=F64, rng=0)
    net.layers[0] = build(_BiasMeanDense(3, 4), 3)
    net.build((3,), F64, rng=0)
    x = np.random.default_rng(2).standard_normal((6, 3))
    errors = check_net(net, "cross-entropy", x, np.array([0, 1, 1, 0, 1, 0]))
    assert errors["layer0.b"] > 1e-2
    assert errors["layer2.W"] < TOL           # the correct layers still check out


# -- single layers -------------------------------------------------------------------------

@SETTINGS
@given(m=batches, n_in=widths, n_out=widths, seed=seeds)
def test_dense(m, n_in, n_out, seed):
    layer = build(Dense(n_in, n_out), n_in, seed)
    x = np.random.default_rng(seed).standard_normal((m, n_in))
    assert_small(check_layer(layer, x, seed=seed), {"x", "W", "b"})


ACTIVATIONS = {"Sigmoid": Sigmoid, "Tanh": Tanh, "ReLU": ReLU, "LeakyReLU": lambda: LeakyReLU(0.1),
               "Linear": Linear, "Softmax": Softmax}


@pytest.mark.parametrize("make", ACTIVATIONS.values(), ids=ACTIVATIONS.keys())
@SETTINGS
@given(m=batches, n=widths, seed=seeds)
def test_activation(make, m, n, seed):
    layer = build(make(), n)
    # ReLU and LeakyReLU have a kink at 0; keep central differences off it.
    x = away_from_zero(np.random.default_rng(seed).standard_normal((m, n)) * 2)
    assert_small(check_layer(layer, x, seed=seed), {"x"})


@SETTINGS
@given(m=batches, n=widths, seed=seeds, p=st.sampled_from([0.2, 0.5, 0.8]))
def test_dropout_in_train_mode_with_a_fixed_mask(m, n, seed, p):
    layer = build(Dropout(p), n)
    x = np.random.default_rng(seed).standard_normal((m, n))
    assert_small(check_layer(layer, x, train=True, seed=seed), {"x"})


# -- every other registered layer, with shapes and settings drawn by hypothesis -------------

def _pair(lo, hi):
    return st.tuples(st.integers(lo, hi), st.integers(lo, hi))


def _images(draw, rng, channels, min_hw=(1, 1)):
    """A batch of 1–2 (C, H, W) images, H and W at least ``min_hw`` and at most 3 more."""
    hw = [draw(st.integers(lo, lo + 3)) for lo in min_hw]
    return rng.standard_normal((draw(st.integers(1, 2)), channels, *hw))


def _without_ties(rng, x):
    """x's shape filled with distinct values ≥ 1e-2 apart, so central differences never
    move one past another (max pooling's kink)."""
    return rng.permutation(x.size).reshape(x.shape) * (4.0 / x.size) - 2.0


def _conv(draw, rng):
    k, s, p = draw(_pair(1, 3)), draw(_pair(1, 3)), draw(_pair(0, 1))
    c = draw(st.integers(1, 3))
    layer = Conv2D(c, draw(st.integers(1, 3)), k, stride=s, padding=p,
                   need_input_grad=draw(st.booleans()))
    return layer, _images(draw, rng, c, [max(1, ki - 2 * pi) for ki, pi in zip(k, p)])


def _pool(cls):
    def spec(draw, rng):
        k = draw(_pair(1, 3))
        p = tuple(draw(st.integers(0, ki // 2)) for ki in k)
        x = _images(draw, rng, draw(st.integers(1, 2)),
                    [max(1, ki - 2 * pi) for ki, pi in zip(k, p)])
        layer = cls(k, draw(st.none() | _pair(1, 3)), p)
        return layer, _without_ties(rng, x) if cls is MaxPool2D else x
    return spec


def _lrn(draw, rng):
    layer = LocalResponseNorm(draw(st.integers(1, 5)), alpha=draw(st.floats(0.01, 0.5)),
                              beta=draw(st.floats(0.5, 1.0)), k=draw(st.floats(1.0, 2.0)))
    return layer, _images(draw, rng, draw(st.integers(1, 6)))


def _recurrent(cls):
    def spec(draw, rng):
        n_in, steps = draw(st.integers(1, 3)), draw(st.integers(1, 4))
        layer = recurrent(cls, n_in, draw(st.integers(1, 3)), steps, draw(seeds),
                          initial_state=draw(st.sampled_from(["zeros", "learned"])),
                          need_input_grad=draw(st.booleans()))
        return layer, rng.standard_normal((draw(batches), steps, n_in))
    return spec


def _sequence(draw, rng):
    return rng.standard_normal((draw(batches), draw(st.integers(1, 4)), draw(widths)))


def _time_distributed(draw, rng):
    x = _sequence(draw, rng)
    return TimeDistributedDense(x.shape[-1], draw(widths)), x


def _embedding(draw, rng):
    n_symbols = draw(st.integers(1, 5))          # few symbols: repeated indices add up
    return (Embedding(n_symbols, draw(widths)),
            rng.integers(0, n_symbols, (draw(batches), draw(st.integers(1, 4)))))


def _reshape(draw, rng):
    shape = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
    return Reshape(shape), rng.standard_normal((draw(batches), prod(shape)))


def _flat_branch(draw, n_out):
    """A short stack ending in ``n_out`` features: Dense, then maybe an activation or dropout."""
    layers = [Dense(n_out=n_out)]
    tail = draw(st.sampled_from([None, Sigmoid, Tanh, Dropout]))
    return layers + ([] if tail is None else [tail(0.3) if tail is Dropout else tail()])


def _residual(draw, rng):
    """Flat or image blocks; an identity or a projection shortcut; sometimes a block nested
    in the body."""
    if draw(st.booleans()):                                      # images, 3×3 'same' convs
        x = _images(draw, rng, draw(st.integers(1, 2)))
        c = x.shape[1] if draw(st.booleans()) else draw(st.integers(1, 3))
        body = [Conv2D(out_channels=c, kernel_size=3, padding=1), Tanh()]
        shortcut = [] if c == x.shape[1] else [Conv2D(out_channels=c, kernel_size=1)]
        return Residual(body, shortcut), x
    x = rng.standard_normal((draw(batches), draw(widths)))
    n_out = x.shape[1] if draw(st.booleans()) else draw(widths)
    body = _flat_branch(draw, draw(widths)) + [Dense(n_out=n_out)]
    if draw(st.booleans()):
        body.append(Residual(_flat_branch(draw, n_out)))
    shortcut = [] if n_out == x.shape[1] else [Dense(n_out=n_out)]
    return Residual(body, shortcut), x


def _concat(draw, rng):
    """Inception-style: branches of different widths (or channel counts), an identity branch
    and a pooling branch among them."""
    if draw(st.booleans()):
        x = _images(draw, rng, draw(st.integers(1, 2)), (2, 2))
        branches = [[Conv2D(out_channels=draw(st.integers(1, 2)), kernel_size=1)],
                    [Conv2D(out_channels=draw(st.integers(1, 2)), kernel_size=3, padding=1),
                     ReLU()],
                    [AvgPool2D(3, stride=1, padding=1)], []]
    else:
        x = rng.standard_normal((draw(batches), draw(widths)))
        branches = [_flat_branch(draw, draw(widths)) for _ in range(draw(st.integers(1, 3)))]
        branches.append([])
    return Concat(draw(st.permutations(branches))), x


# Each spec draws a layer and a batch x; the layer is built for x's per-example shape.
SPECS = {
    "Residual": _residual,
    "Concat": _concat,
    "Conv2D": _conv,
    "MaxPool2D": _pool(MaxPool2D),
    "AvgPool2D": _pool(AvgPool2D),
    "LocalResponseNorm": _lrn,
    "SimpleRNN": _recurrent(SimpleRNN),
    "LSTM": _recurrent(LSTM),
    "GRU": _recurrent(GRU),
    "TimeDistributedDense": _time_distributed,
    "LastStep": lambda draw, rng: (LastStep(), _sequence(draw, rng)),
    "Embedding": _embedding,
    "Flatten": lambda draw, rng: (Flatten(), _images(draw, rng, draw(st.integers(1, 3)))),
    "Reshape": _reshape,
}
#: layers through which no gradient flows: integer symbols or the raw data go in, and
#: there are no parameters
NO_GRADIENT = {"OneHot", "RandomDistortion"}


def test_every_registered_layer_is_gradient_checked():
    checked = set(ACTIVATIONS) | {"Dense", "Dropout"} | set(SPECS) | NO_GRADIENT
    assert checked == set(LAYERS), set(LAYERS) ^ checked


@pytest.mark.parametrize("name", SPECS)
@SETTINGS
@given(data=st.data(), seed=seeds, train=st.booleans())
def test_layer(name, data, seed, train):
    """∂C/∂x (for real inputs, where the layer computes it) and every ∂C/∂θ, in training
    and in inference mode."""
    rng = np.random.default_rng(seed)
    layer, x = SPECS[name](data.draw, rng)
    if not isinstance(layer, Recurrent):    # recurrent() builds, with random biases and h₀
        layer.build(x.shape[1:], F64, rng)
    wants_dx = x.dtype.kind == "f" and getattr(layer, "need_input_grad", True)
    errors = check_layer(layer, x, train=train, seed=seed)
    assert_small(errors, set(layer.params) | ({"x"} if wants_dx else set()), layer.grads)


@pytest.mark.parametrize("layer, x", [
    (OneHot(4), np.array([[0, 3, 1], [2, 2, 0]])),
    (RandomDistortion("affine", image_shape=(5, 5)), np.random.default_rng(0).random((2, 25)))],
    ids=["OneHot", "RandomDistortion"])
def test_layers_without_a_gradient(layer, x):
    layer.build(x.shape[1:], F64, None)
    layer.rng = np.random.default_rng(0)
    y, cache = layer.forward(x, train=True)
    assert not layer.params and layer.backward(np.ones_like(y), cache) is None


# -- whole nets: every cost with every output activation it makes sense with ---------------

# (cost, output activation, targets): "labels" are class indices (one-hot inside the cost),
# "unit" are floats in (0, 1), "real" are unbounded regression targets.
PAIRS = [
    ("quadratic", "linear", "real"),          # σ′ = 1: closed form a − y
    ("quadratic", "sigmoid", "labels"),       # general δᴸ = (a − y) ⊙ σ′(z): the slowdown
    ("quadratic", "tanh", "real"),
    ("quadratic", "softmax", "labels"),
    ("cross-entropy", "sigmoid", "unit"),     # closed form a − y, soft targets too
    ("cross-entropy", "sigmoid", "labels"),
    ("cross-entropy", "softmax", "labels"),   # general path: σ′ does not cancel here
    ("log-likelihood", "softmax", "labels"),  # closed form a − y
    ("log-likelihood", "sigmoid", "labels"),  # general path: −y/a ⊙ σ(1 − σ)
]


def targets(kind, m, n_out, rng):
    if kind == "labels":
        return rng.integers(0, n_out, m)
    if kind == "unit":
        return rng.uniform(0.05, 0.95, (m, n_out))
    return rng.standard_normal((m, n_out))


@pytest.mark.parametrize("cost, output, kind", PAIRS, ids=[f"{c}+{o}" for c, o, _ in PAIRS])
@SETTINGS
@given(m=batches, sizes=st.lists(widths, min_size=2, max_size=3), n_out=st.integers(2, 5),
       hidden=st.sampled_from(["sigmoid", "tanh"]), seed=seeds)
def test_cost_and_output_activation(cost, output, kind, m, sizes, n_out, hidden, seed):
    net = mlp(sizes + [n_out], hidden, output, backend=F64, rng=seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, sizes[0]))
    errors = check_net(net, cost, x, targets(kind, m, n_out, rng))
    assert len(errors) == 2 * len(sizes)
    assert_net_small(net, errors)


def _shift_params_off_zero(net, names=("W", "b")):
    for layer in net.layers:
        for name in names:
            if name in layer.params:
                layer.set_params(**{name: away_from_zero(layer.params[name], 0.05)})


@pytest.mark.parametrize("penalty", [L2(0.7), L1(0.4), L2(0.5, include_biases=True),
                                     L1(0.3, include_biases=True)],
                         ids=["l2", "l1", "l2+biases", "l1+biases"])
@SETTINGS
@given(m=batches, n_in=widths, n_hidden=widths, seed=seeds)
def test_penalties(penalty, m, n_in, n_hidden, seed):
    net = mlp([n_in, n_hidden, 3], "tanh", "sigmoid", backend=F64, rng=seed)
    _shift_params_off_zero(net)              # |w| has a kink at 0
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, n_in))
    # n_train ≠ m: the penalty is scaled by the training-set size, the cost by the batch.
    errors = check_net(net, "cross-entropy", x, rng.integers(0, 3, m), penalties=[penalty],
                       n_train=37)
    assert_net_small(net, errors)


class _SignOfZeroIsOneL1(L1):
    """Planted bug: sgn(0) taken as 1, so a weight at 0 is pushed below it."""

    def _add_gradient(self, w, g, n):
        g += (self.lmbda / n) * np.where(w >= 0, 1.0, -1.0)


@pytest.mark.parametrize("l1, expect_ok", [(L1, True), (_SignOfZeroIsOneL1, False)],
                         ids=["l1", "planted-sgn0=1"])
@SETTINGS
@given(m=batches, n_in=widths, n_hidden=widths, include_biases=st.booleans(), seed=seeds)
def test_l1_and_l2_together_with_weights_at_zero(l1, expect_ok, m, n_in, n_hidden,
                                                 include_biases, seed):
    """At w = 0 the central difference of |w| is (ε − ε)/2ε = 0: it checks sgn(0) = 0."""
    net = mlp([n_in, n_hidden, 3], "tanh", "softmax", backend=F64, rng=seed)
    _shift_params_off_zero(net)
    rng = np.random.default_rng(seed)
    net.layers[0].params["W"][0] = 0.0             # a row of weights at the kink, at least one
    net.layers[2].params["b"][rng.random(3) < 0.5] = 0.0
    x = rng.standard_normal((m, n_in))
    penalties = [l1(0.6, include_biases=include_biases), L2(0.8, include_biases=include_biases)]
    errors = check_net(net, "log-likelihood", x, rng.integers(0, 3, m), penalties=penalties,
                       n_train=29)
    if expect_ok:
        assert_net_small(net, errors)
    else:
        assert errors["layer0.W"] > 1e-3


SEQUENCE_PAIRS = [("log-likelihood", Softmax), ("quadratic", Linear)]


@pytest.mark.parametrize("cost, output", SEQUENCE_PAIRS, ids=[c for c, _ in SEQUENCE_PAIRS])
@pytest.mark.parametrize("cell", [SimpleRNN, LSTM, GRU])
@SETTINGS
@given(m=st.integers(1, 3), steps=st.integers(1, 4), n_symbols=st.integers(2, 4),
       n_hidden=st.integers(1, 3), embed=st.booleans(), to_one=st.booleans(), seed=seeds)
def test_sequence_nets_with_penalties(cost, output, cell, m, steps, n_symbols, n_hidden, embed,
                                      to_one, seed):
    """The BPTT training step's path: symbols in, a cost on every step's output (mean over
    batch × time) or on the last one, L1 and L2 on E, W, U and the output weights."""
    inputs = [Embedding(n_symbols, 2)] if embed else [OneHot(n_symbols)]
    layers = inputs + [cell(None, n_hidden, initial_state="learned"),
                       TimeDistributedDense(n_hidden, n_symbols)]
    net = Sequential(layers + [LastStep()] * to_one + [output()]).build((steps,), F64, seed)
    _shift_params_off_zero(net, ("W", "U", "E", "b"))
    rng = np.random.default_rng(seed)
    x = rng.integers(0, n_symbols, (m, steps))
    shape = net.output_shape
    if cost == "quadratic":
        y = rng.standard_normal((m, *shape))
    else:
        y = rng.integers(0, n_symbols, (m, *shape[:-1]))
        y = y if to_one else np.eye(n_symbols)[y]          # one-hot rows at every step
    errors = check_net(net, cost, x, y, penalties=[L1(0.3), L2(0.5, include_biases=True)],
                       n_train=23)
    assert_net_small(net, errors)


@SETTINGS
@given(m=st.integers(1, 3), seed=seeds)
def test_conv_net_with_penalties(m, seed):
    """L1 and L2 on a 4-D kernel (O, C, kh, kw) as on a dense weight matrix."""
    net = Sequential([Reshape((2, 5, 5)), Conv2D(2, 3, 3, padding=1), Tanh(), AvgPool2D(2),
                      Flatten(), Dense(None, 3), Sigmoid()]).build((50,), F64, seed)
    _shift_params_off_zero(net)
    rng = np.random.default_rng(seed)
    errors = check_net(net, "cross-entropy", rng.standard_normal((m, 50)),
                       rng.integers(0, 3, m), penalties=[L1(0.2), L2(0.4)], n_train=31)
    assert_net_small(net, errors)


@SETTINGS
@given(m=batches, n_in=widths, n_hidden=st.integers(2, 7), seed=seeds)
def test_dropout_l2_softmax_log_likelihood_together(m, n_in, n_hidden, seed):
    # tanh, not ReLU: unbounded units scaled up by 1/(1 − p) twice can push a softmax
    # output below the 1e-12 floor at which the log-likelihood's value is clipped (a flat
    # cost there, while a − y is not), which is a property of the cost, not a backprop bug.
    net = mlp([n_in, n_hidden, n_hidden, 4], "tanh", "softmax", dropout=0.5, input_dropout=0.2,
              backend=F64, rng=seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, n_in))
    errors = check_net(net, "log-likelihood", x, rng.integers(0, 4, m),
                       penalties=[L2(2.0)], n_train=50, train=True, seed=seed)
    assert len(errors) == 6
    assert_net_small(net, errors)


def test_dropout_really_drops_in_the_checked_net():
    """The combined check above is only meaningful if the mask is not all ones."""
    net = mlp([5, 6, 2], "sigmoid", "softmax", dropout=0.5, backend=F64, rng=0)
    x = np.random.default_rng(0).standard_normal((4, 5))
    a_train, caches = net.forward(x, train=True)
    mask = caches[2]
    assert mask is not None and (mask == 0).any() and (mask == 2).any()
    assert not np.allclose(a_train, net.forward(x, train=False)[0])


# -- the closed form a − y is used where σ′ cancels -------------------------------------------

def _forbid_backward(monkeypatch, layer):
    def refuse(*_):
        raise AssertionError("output_delta backpropagated through the output activation")
    monkeypatch.setattr(layer, "backward", refuse)


@pytest.mark.parametrize("cost, activation", [("cross-entropy", Sigmoid),
                                              ("log-likelihood", Softmax),
                                              ("quadratic", Linear)])
def test_cancelling_pairs_use_the_closed_form(monkeypatch, cost, activation):
    output = build(activation(), 3)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4, 3))
    a, cache = output.forward(z)
    y = get_cost(cost).targets(np.array([0, 2, 1, 2]), 3, F64)
    _forbid_backward(monkeypatch, output)
    delta = output_delta(get_cost(cost), output, a, y, cache, batch_size=4)
    np.testing.assert_allclose(delta, (a - y) / 4)


@pytest.mark.parametrize("cost, activation", [("quadratic", Sigmoid),
                                              ("cross-entropy", Softmax),
                                              ("log-likelihood", Sigmoid)])
def test_other_pairs_backpropagate_through_the_activation(monkeypatch, cost, activation):
    output = build(activation(), 3)
    a, cache = output.forward(np.random.default_rng(0).standard_normal((4, 3)))
    y = get_cost(cost).targets(np.array([0, 2, 1, 2]), 3, F64)
    _forbid_backward(monkeypatch, output)
    with pytest.raises(AssertionError, match="backpropagated"):
        output_delta(get_cost(cost), output, a, y, cache, batch_size=4)


def test_a_subclass_of_the_cancelling_activation_gets_the_general_path(monkeypatch):
    """Only the exact activation type cancels: a modified sigmoid must not get a − y."""
    output = build(_WrongSigmoid(), 2)
    a, cache = output.forward(np.array([[0.3, -0.2]]))
    y = np.array([[1.0, 0.0]])
    delta = output_delta(get_cost("cross-entropy"), output, a, y, cache, batch_size=1)
    assert not np.allclose(delta, a - y)
