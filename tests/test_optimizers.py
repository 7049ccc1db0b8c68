"""Optimiser steps against their update formulas, weight decay and L1 inside SGD, max-norm,
and checkpointed optimiser state that continues a run exactly."""
import numpy as np
import pytest

from nablanet import (L1, L2, SGD, AdaGrad, Adam, ConfigError, MaxNorm, ModelFileError,
                      Momentum, Nesterov, RMSprop, Sequential, get_backend, get_optimizer, mlp)
from nablanet.layers import Conv2D, Dense
from nablanet.optim import DeltaBarDelta, Rprop
from nablanet.training import Trainer

F64 = get_backend("cpu", "float64")

W0 = np.array([[0.5], [-1.5]])
G1 = np.array([[0.2], [-0.4]])
G2 = np.array([[-0.1], [0.3]])


def tiny_net(w=W0, b=(0.25,)):
    """One Dense(2, 1) layer: parameters W (2×1) and b (1,)."""
    net = Sequential([Dense(2, 1)]).build((2,), F64, rng=0)
    net.layers[0].set_params(W=np.array(w, dtype=float), b=np.array(b, dtype=float))
    return net


def step(opt, net, g_w, g_b=None):
    layer = net.layers[0]
    layer.grads["W"] = np.array(g_w, dtype=float)
    layer.grads["b"] = None if g_b is None else np.array(g_b, dtype=float)
    opt.step(net)
    net.zero_grads()
    return layer.params["W"].copy()


def two_steps(opt):
    net = tiny_net()
    return step(opt, net, G1), step(opt, net, G2)


# -- each update rule, two steps, against the formula ------------------------------------

def test_sgd():
    w1, w2 = two_steps(SGD(0.5))
    np.testing.assert_allclose(w1, W0 - 0.5 * G1, rtol=1e-15)
    np.testing.assert_allclose(w2, W0 - 0.5 * G1 - 0.5 * G2, rtol=1e-15)


def test_momentum():
    eta, mu = 0.5, 0.9
    w1, w2 = two_steps(Momentum(eta, mu))
    v1 = -eta * G1                      # v ← μv − η∇C, from v = 0
    v2 = mu * v1 - eta * G2
    np.testing.assert_allclose(w1, W0 + v1, rtol=1e-15)
    np.testing.assert_allclose(w2, W0 + v1 + v2, rtol=1e-15)


def test_nesterov():
    eta, mu = 0.5, 0.9
    w1, w2 = two_steps(Nesterov(eta, mu))
    v1 = -eta * G1
    v2 = mu * v1 - eta * G2
    # w ← w + μv − η∇C (the look-ahead form of Sutskever et al. 2013)
    np.testing.assert_allclose(w1, W0 + mu * v1 - eta * G1, rtol=1e-15)
    np.testing.assert_allclose(w2, w1 + mu * v2 - eta * G2, rtol=1e-15)


def test_adagrad():
    eta, eps = 0.1, 0.05                # an ε that shows: √G is 0.2–0.5 here
    w1, w2 = two_steps(AdaGrad(eta, eps))
    s1 = G1 ** 2
    s2 = s1 + G2 ** 2
    np.testing.assert_allclose(w1, W0 - eta * G1 / (np.sqrt(s1) + eps), rtol=1e-15)
    np.testing.assert_allclose(w2, w1 - eta * G2 / (np.sqrt(s2) + eps), rtol=1e-15)


def test_rmsprop():
    eta, rho, eps = 0.01, 0.8, 0.05
    w1, w2 = two_steps(RMSprop(eta, rho, eps))
    e1 = (1 - rho) * G1 ** 2
    e2 = rho * e1 + (1 - rho) * G2 ** 2
    np.testing.assert_allclose(w1, W0 - eta * G1 / (np.sqrt(e1) + eps), rtol=1e-15)
    np.testing.assert_allclose(w2, w1 - eta * G2 / (np.sqrt(e2) + eps), rtol=1e-15)


def adam_two_steps(eta, b1, b2, eps):
    """Adam's first two steps from W0 on G1 then G2, written out with bias correction."""
    m1, v1 = (1 - b1) * G1, (1 - b2) * G1 ** 2
    m2, v2 = b1 * m1 + (1 - b1) * G2, b2 * v1 + (1 - b2) * G2 ** 2
    expect1 = W0 - eta * (m1 / (1 - b1)) / (np.sqrt(v1 / (1 - b2)) + eps)
    expect2 = expect1 - eta * (m2 / (1 - b1 ** 2)) / (np.sqrt(v2 / (1 - b2 ** 2)) + eps)
    return expect1, expect2


def test_adam_with_bias_correction():
    eta, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    w1, w2 = two_steps(Adam(eta, b1, b2, eps))
    expect1, expect2 = adam_two_steps(eta, b1, b2, eps)
    np.testing.assert_allclose(w1, expect1, rtol=1e-12)
    np.testing.assert_allclose(w2, expect2, rtol=1e-12)
    # bias correction makes the first step ≈ η·sgn(g), whatever the gradient's scale
    np.testing.assert_allclose(w1, W0 - eta * np.sign(G1), rtol=1e-6)


def test_adam_uses_its_own_betas_and_eps():
    eta, b1, b2, eps = 0.01, 0.5, 0.8, 0.05
    w1, w2 = two_steps(Adam(eta, b1, b2, eps))
    expect1, expect2 = adam_two_steps(eta, b1, b2, eps)
    np.testing.assert_allclose(w1, expect1, rtol=1e-12)
    np.testing.assert_allclose(w2, expect2, rtol=1e-12)


@pytest.mark.parametrize("make, same_as", [
    (lambda: Momentum(0.5, 0.0), lambda: SGD(0.5)),          # μ = 0: no memory
    (lambda: Nesterov(0.5, 0.0), lambda: SGD(0.5)),
    # ρ = 0 and β₁ = β₂ = 0: each step divides by |g| + ε alone (sign SGD, scaled)
    (lambda: RMSprop(0.5, rho=0.0), lambda: Adam(0.5, beta1=0.0, beta2=0.0)),
], ids=["momentum", "nesterov", "rmsprop-adam"])
def test_zero_momentum_and_decay_rates_are_allowed(make, same_as):
    np.testing.assert_allclose(two_steps(make()), two_steps(same_as()), rtol=1e-15)


def test_defaults_are_the_published_settings():
    """AdaGrad η = 0.01; RMSprop η = 0.001, ρ = 0.9 (Hinton 6e); Adam η = 0.001, β₁ = 0.9,
    β₂ = 0.999, ε = 10⁻⁸ (Kingma & Ba); momentum μ = 0.9."""
    assert Momentum(0.1).config() == {"name": "momentum", "eta": 0.1, "momentum": 0.9}
    assert AdaGrad().config() == {"name": "adagrad", "eta": 0.01, "eps": 1e-8}
    assert RMSprop().config() == {"name": "rmsprop", "eta": 0.001, "rho": 0.9, "eps": 1e-8}
    assert Adam().config() == {"name": "adam", "eta": 0.001, "beta1": 0.9, "beta2": 0.999,
                               "eps": 1e-8}


def test_get_optimizer_leaves_unset_settings_at_their_defaults():
    """The CLI passes None for a setting the user did not give."""
    assert get_optimizer("adam", 0.1, beta1=None, beta2=0.99, eps=None).config() == \
        Adam(0.1, beta2=0.99).config()


@pytest.mark.parametrize("make", [
    lambda: Momentum(0.2, 0.5), lambda: Nesterov(0.2, 0.5), lambda: AdaGrad(0.2, eps=0.01),
    lambda: RMSprop(0.2, rho=0.5, eps=0.01), lambda: Adam(0.2, 0.5, 0.6, 0.01),
], ids=lambda f: f().name)
def test_config_rebuilds_the_same_optimizer(make):
    """config() is what a checkpoint records of the optimiser: every setting, so the
    same class built from it steps the same way (test_second_order.py checks the
    per-connection ones)."""
    opt = make()
    settings = opt.config()
    assert settings.pop("name") == opt.name
    rebuilt = type(opt)(**settings)
    assert rebuilt.config() == opt.config()
    np.testing.assert_array_equal(two_steps(rebuilt), two_steps(make()))


def test_a_skipped_parameter_keeps_its_value_and_its_state():
    """A parameter with no gradient this step is not stepped at all: not moved by its
    velocity or first moment, and its running averages not decayed."""
    for make in (lambda: Momentum(0.1), lambda: Nesterov(0.1), lambda: AdaGrad(0.1),
                 lambda: RMSprop(0.1), lambda: Adam(0.1)):
        opt, net = make(), tiny_net()
        step(opt, net, G1, g_b=[0.3])
        b, state = net.layers[0].params["b"].copy(), {k: v[1].copy() for k, v in opt.state.items()}
        step(opt, net, G2, g_b=None)
        np.testing.assert_array_equal(net.layers[0].params["b"], b)
        for slot, arrays in opt.state.items():
            np.testing.assert_array_equal(arrays[1], state[slot], err_msg=f"{opt.name} {slot}")


@pytest.mark.parametrize("opt", [SGD(0.1), Momentum(0.1), Nesterov(0.1), AdaGrad(0.1),
                                 RMSprop(0.1), Adam(0.1)], ids=lambda o: o.name)
def test_parameters_without_a_gradient_are_left_alone(opt):
    net = tiny_net()
    step(opt, net, G1, g_b=None)
    np.testing.assert_array_equal(net.layers[0].params["b"], [0.25])
    assert not np.array_equal(net.layers[0].params["W"], W0)


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"])
def test_updates_keep_float32(name):
    net = mlp([3, 2], rng=0)
    layer = net.layers[0]
    layer.grads["W"] = np.ones((3, 2), dtype=np.float32)
    layer.grads["b"] = np.ones(2, dtype=np.float32)
    get_optimizer(name, 0.1).step(net)
    assert layer.params["W"].dtype == np.float32 and layer.params["b"].dtype == np.float32


# -- regularisation inside the update ----------------------------------------------------

def test_l2_with_sgd_is_weight_decay():
    """w ← (1 − ηλ/n) w − η ∂C₀/∂w, and biases are not decayed."""
    eta, lmbda, n = 0.5, 5.0, 50
    net = tiny_net()
    g_b = np.array([0.3])
    net.layers[0].grads.update(W=G1.copy(), b=g_b.copy())
    L2(lmbda).add_gradient(net, n)
    SGD(eta).step(net)
    np.testing.assert_allclose(net.layers[0].params["W"],
                               (1 - eta * lmbda / n) * W0 - eta * G1, rtol=1e-15)
    np.testing.assert_allclose(net.layers[0].params["b"], 0.25 - eta * g_b, rtol=1e-15)


def test_l2_can_include_biases():
    eta, lmbda, n = 0.5, 5.0, 50
    net = tiny_net()
    net.layers[0].grads.update(W=G1.copy(), b=np.array([0.3]))
    L2(lmbda, include_biases=True).add_gradient(net, n)
    SGD(eta).step(net)
    np.testing.assert_allclose(net.layers[0].params["b"],
                               (1 - eta * lmbda / n) * 0.25 - eta * 0.3, rtol=1e-15)


def test_l2_in_the_training_loop_is_weight_decay(make_blobs):
    """Through Trainer.train_step: the decayed run differs from the plain one by exactly
    −ηλ/n · w₀ (same mini-batch, same ∂C₀/∂w)."""
    eta, lmbda, n = 0.3, 4.0, 20
    data = make_blobs(10)
    nets = [mlp([4, 5, 3], "sigmoid", "sigmoid", backend=F64, rng=1) for _ in range(2)]
    w0 = [layer.params[k].copy() for layer, k in nets[0].parameters()]
    for net, penalties in zip(nets, ([], [L2(lmbda)])):
        trainer = Trainer(net, "cross-entropy", SGD(eta), batch_size=10, penalties=penalties)
        trainer.n_train = n
        trainer.train_step(data.x.astype(np.float64), trainer.cost.targets(data.y, 3, F64))
    for (plain, key), (decayed, _), w in zip(nets[0].parameters(), nets[1].parameters(), w0):
        shift = -eta * lmbda / n * w if key == "W" else 0 * w
        np.testing.assert_allclose(decayed.params[key], plain.params[key] + shift,
                                   rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("penalty", [L1(2.0, include_biases=True), L2(2.0, include_biases=True)])
def test_a_penalty_skips_a_parameter_without_a_gradient(penalty):
    """A parameter whose gradient is None (its step fused into the GEMM, or not trained
    this step) gets no penalty gradient: it stays None, for the optimiser to skip."""
    net = tiny_net()
    net.layers[0].grads.update(W=None, b=np.zeros(1))
    penalty.add_gradient(net, 10)
    assert net.layers[0].grads["W"] is None
    # the bias, which has one, is still penalised: λ/n·b for L2, λ/n·sgn(b) for L1
    assert net.layers[0].grads["b"][0] == pytest.approx(0.2 * (0.25 if penalty.name == "l2"
                                                               else 1.0))


def test_l1_uses_sgn_with_sgn_0_equal_to_0():
    eta, lmbda, n = 0.5, 2.0, 10
    net = tiny_net(w=[[0.0], [-1.5]])
    net.layers[0].grads.update(W=np.zeros((2, 1)), b=np.zeros(1))
    L1(lmbda).add_gradient(net, n)
    np.testing.assert_array_equal(net.layers[0].grads["W"], [[0.0], [-lmbda / n]])
    np.testing.assert_array_equal(net.layers[0].grads["b"], [0.0])        # biases exempt
    SGD(eta).step(net)
    # a weight at exactly 0 stays there; the other moves a constant η λ/n towards 0
    np.testing.assert_allclose(net.layers[0].params["W"], [[0.0], [-1.5 + eta * lmbda / n]])


def test_penalty_values():
    net = tiny_net()
    n = 4
    assert L2(2.0).value(net, n) == pytest.approx(0.5 * 2.0 * (0.25 + 2.25) / n)
    assert L1(2.0).value(net, n) == pytest.approx(2.0 * (0.5 + 1.5) / n)
    assert L2(2.0, include_biases=True).value(net, n) == pytest.approx(
        0.5 * 2.0 * (0.25 + 2.25 + 0.0625) / n)
    assert L2(0.0).value(net, n) == 0.0


def test_max_norm_caps_each_units_incoming_column():
    # Dense weights are (n_in, n_out): unit j's incoming weights are column j.
    w = np.array([[3.0, 0.6, 0.0], [4.0, 0.8, -3.0]])        # column norms 5, 1, 3
    net = Sequential([Dense(2, 3)]).build((2,), F64, rng=0)
    net.layers[0].set_params(W=w.copy(), b=np.array([10.0, -10.0, 10.0]))
    MaxNorm(2.0).apply(net)
    capped = net.layers[0].params["W"]
    np.testing.assert_allclose(np.linalg.norm(capped, axis=0), [2.0, 1.0, 2.0])
    np.testing.assert_allclose(capped[:, 0], w[:, 0] * 2 / 5)      # direction kept
    np.testing.assert_array_equal(capped[:, 1], w[:, 1])           # inside the ball: untouched
    np.testing.assert_array_equal(net.layers[0].params["b"], [10.0, -10.0, 10.0])


def test_max_norm_caps_each_filter_of_a_conv_kernel():
    # A kernel is (O, C, kh, kw): output unit o's incoming weights are W[o], all C·kh·kw
    # of them, not a slice along the last axis as for a dense matrix.
    net = Sequential([Conv2D(2, 3, 2)]).build((2, 4, 4), F64, rng=0)
    w = np.random.default_rng(0).standard_normal((3, 2, 2, 2))
    w[1] *= 0.1 / np.linalg.norm(w[1])                          # one filter inside the ball
    net.layers[0].set_params(W=w.copy())
    MaxNorm(0.5).apply(net)
    capped = net.layers[0].params["W"]
    np.testing.assert_allclose(np.linalg.norm(capped.reshape(3, -1), axis=1), [0.5, 0.1, 0.5])
    np.testing.assert_allclose(capped[0], w[0] * 0.5 / np.linalg.norm(w[0]))
    np.testing.assert_array_equal(capped[1], w[1])


@pytest.mark.parametrize("make, match", [
    (lambda: SGD(0.0), "eta"), (lambda: SGD(-1), "eta"), (lambda: Momentum(0.1, 1.0), "momentum"),
    (lambda: L2(-0.1), "strength"), (lambda: MaxNorm(0), "max-norm"),
    (lambda: get_optimizer("lbfgs", 0.1), "unknown optimizer"),
    (lambda: get_optimizer("sgd", 0.1, momentum=0.9), "optimizer 'sgd'"),
    # these used to be accepted and fail (or drift to NaN) at the first step
    (lambda: SGD(float("inf")), "finite"), (lambda: Adam(0.1, beta1=1.0), "beta1"),
    (lambda: Adam(0.1, beta2=1.5), "beta2"), (lambda: RMSprop(0.1, rho=2), "rho"),
    (lambda: AdaGrad(0.1, eps=-1), "eps"), (lambda: Adam(0.1, eps=0), "eps"),
    (lambda: RMSprop(0.1, rho=1.0), "rho"),
])
def test_bad_settings_are_config_errors(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


# -- checkpointed state --------------------------------------------------------------------

OPTIMIZERS = [lambda: SGD(0.1), lambda: Momentum(0.1, 0.9), lambda: Nesterov(0.1, 0.8),
              lambda: AdaGrad(0.1), lambda: RMSprop(0.01), lambda: Adam(0.01),
              lambda: DeltaBarDelta(0.1), lambda: Rprop(0.1)]


def _random_grads(net, rng):
    for layer, name in net.parameters():
        layer.grads[name] = rng.standard_normal(layer.params[name].shape)


@pytest.mark.parametrize("make", OPTIMIZERS, ids=lambda f: f().name)
def test_state_dict_round_trip_continues_identically(make):
    rng = np.random.default_rng(0)
    net = mlp([3, 4, 2], backend=F64, rng=0)
    opt = make()
    for _ in range(3):
        _random_grads(net, rng)
        opt.step(net)
    scalars, arrays = opt.state_dict()
    assert scalars["t"] == 3
    assert len(arrays) == 4 * len(opt.slots)

    twin_net = mlp([3, 4, 2], backend=F64, rng=0)
    for (a, k), (b, _) in zip(net.parameters(), twin_net.parameters()):
        b.params[k][...] = a.params[k]
    snapshot = {k: v.copy() for k, v in arrays.items()}

    # the snapshot must not alias the live state: keep stepping the original first
    grads = [np.random.default_rng(s).standard_normal((1,)) for s in range(4)]
    for g in grads:
        for layer, name in net.parameters():
            layer.grads[name] = g * np.ones_like(layer.params[name])
        opt.step(net)
    twin = make()
    twin.load_state_dict(scalars, arrays, F64)
    for g in grads:
        for layer, name in twin_net.parameters():
            layer.grads[name] = g * np.ones_like(layer.params[name])
        twin.step(twin_net)
    for (a, k), (b, _) in zip(net.parameters(), twin_net.parameters()):
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert twin.t == opt.t == 7
    # nor does the loaded state write its steps back into the arrays it was given
    for key, value in snapshot.items():
        np.testing.assert_array_equal(arrays[key], value)


@pytest.mark.parametrize("make", [m for m in OPTIMIZERS if m().slots], ids=lambda f: f().name)
def test_loading_a_state_replaces_all_of_the_old_one(make):
    """A used optimiser given a fresh optimiser's state steps as the fresh one does."""
    used, net = make(), tiny_net()
    step(used, net, G1, g_b=[0.3])
    used.load_state_dict(*make().state_dict(), F64)
    assert used.t == 0 and all(not arrays for arrays in used.state.values())
    np.testing.assert_array_equal(two_steps(used), two_steps(make()))


def test_a_state_array_that_fits_no_slot_or_parameter_is_refused():
    net = tiny_net()
    shapes = [layer.params[name].shape for layer, name in net.parameters()]
    momentum = Momentum(0.1)
    step(momentum, net, G1, g_b=[0.3])
    scalars, arrays = momentum.state_dict()
    for key, shape in (("m.0", (2, 1)),             # Adam's slot, of W's shape
                       ("velocity.2", (1,))):       # one past the last parameter
        with pytest.raises(ModelFileError, match=f"'{key}' of shape .* matches no parameter"):
            Momentum(0.1).load_state_dict(scalars, {**arrays, key: np.zeros(shape)}, F64,
                                          shapes=shapes)


@pytest.mark.parametrize("make", [m for m in OPTIMIZERS if m().slots], ids=lambda f: f().name)
def test_a_state_lacking_a_slot_array_is_refused(make):
    """After a step every parameter has all its slots: one missing (Adam's m for the last
    bias, say) would restart from zeros and the resumed run part from the uninterrupted one."""
    net = mlp([3, 4, 2], backend=F64, rng=0)
    opt = make()
    _random_grads(net, np.random.default_rng(0))
    opt.step(net)
    scalars, arrays = opt.state_dict()
    shapes = [layer.params[name].shape for layer, name in net.parameters()]
    make().load_state_dict(scalars, arrays, F64, shapes=shapes)        # whole: accepted
    gone = f"{opt.slots[-1]}.3"
    del arrays[gone]
    with pytest.raises(ModelFileError, match=f"{opt.name} state at step 1 lacks {gone}$"):
        make().load_state_dict(scalars, arrays, F64, shapes=shapes)
    # before any step there is nothing to lack
    make().load_state_dict({"t": 0, "eta": 0.1}, {}, F64, shapes=shapes)


def test_an_optimizer_that_has_not_stepped_may_move_to_another_net():
    """Only steps tie an optimiser to a net: a trainer built and dropped before fitting
    leaves nothing of its net in the state."""
    adam, first = Adam(0.1), tiny_net()
    Trainer(first, "quadratic", adam)
    Trainer(tiny_net(), "quadratic", adam)              # first is still alive here
    assert adam.t == 0


@pytest.mark.parametrize("make", [lambda: L2(0.5, include_biases=True), lambda: L1(0.25),
                                  lambda: MaxNorm(2.5)], ids=["l2", "l1", "max-norm"])
def test_regulariser_config_names_every_setting(make):
    settings = make().config()
    name = settings.pop("name")
    rebuilt = {"l2": L2, "l1": L1, "max-norm": MaxNorm}[name](**settings)
    assert rebuilt.config() == make().config() and vars(rebuilt) == vars(make())


def test_max_norm_leaves_an_all_zero_column_alone_without_dividing_by_zero():
    """L1 drives a unit's weights to exactly 0 and keeps them there (sgn(0) = 0): its
    column norm is 0, which must not become c/0 (a warning at every step)."""
    net = Sequential([Dense(2, 2)]).build((2,), F64, rng=0)
    net.layers[0].set_params(W=np.array([[0.0, 3.0], [0.0, 4.0]]))
    with np.errstate(all="raise"):
        MaxNorm(1.0).apply(net)
    np.testing.assert_allclose(net.layers[0].params["W"], [[0.0, 0.6], [0.0, 0.8]])


# -- the GPU's fused updates -----------------------------------------------------------------

def emulated_kernel(name):
    """gpu_kernels' CUDA body for update ``name``, run by NumPy: its statements are C
    expressions that read the same in Python, so a call that passes its arguments in an
    order other than the kernel's signature shows here too, not only on a GPU."""
    from nablanet.gpu_kernels import _SOURCES
    inputs, outputs, body = _SOURCES[name]
    in_names = [p.split()[-1] for p in inputs.split(",")]
    out_names = [p.split()[-1] for p in outputs.split(",")]

    def run(*args):
        assert len(args) == len(in_names) + len(out_names), name
        scope = dict(zip(in_names + out_names, args), sqrt=np.sqrt)
        for statement in filter(str.strip, body.split(";")):
            exec(statement.strip(), {}, scope)
        for out, array in zip(out_names, args[len(in_names):]):
            array[...] = scope[out]          # a statement "v = ..." rebinds; write it back
    return run


@pytest.mark.parametrize("make", OPTIMIZERS[:6], ids=lambda f: f().name)
def test_the_fused_gpu_updates_equal_the_numpy_updates(monkeypatch, make):
    import nablanet.backend as backend
    import nablanet.optimizers as optimizers
    runs = []
    for fused in (False, True):
        for module in (backend, optimizers):
            monkeypatch.setattr(module, "on_gpu", lambda a, fused=fused: fused)
            monkeypatch.setattr(module, "kernel", emulated_kernel)
        net, opt, rng = mlp([3, 4, 2], backend=F64, rng=0), make(), np.random.default_rng(1)
        for _ in range(3):
            _random_grads(net, rng)
            opt.step(net)
        runs.append((net, opt.state_dict()[1]))
    (net, state), (fused_net, fused_state) = runs
    start = mlp([3, 4, 2], backend=F64, rng=0)
    for (a, k), (b, _), (w0, _) in zip(net.parameters(), fused_net.parameters(),
                                       start.parameters()):
        assert not np.allclose(a.params[k], w0.params[k])          # the steps moved it
        np.testing.assert_allclose(b.params[k], a.params[k], rtol=1e-13, atol=1e-15)
    assert state.keys() == fused_state.keys()
    for key in state:
        np.testing.assert_allclose(fused_state[key], state[key], rtol=1e-13, atol=1e-15)
