"""Optimisers over the flat parameter vector: C(θ), ∇C, curvature products, Newton,
Hessian-free, scipy's CG / BFGS / L-BFGS, and the adaptive-rate optimisers."""
import inspect

import numpy as np
import pytest

from nablanet import L1, L2, SGD, Sequential, get_backend, mlp
from nablanet.data import Dataset
from nablanet.errors import ConfigError, DataError
from nablanet.gradcheck import numerical_gradient, relative_error
from nablanet.layers import Dense, Flatten, Softmax
from nablanet.optim import (DeltaBarDelta, Objective, Rprop, flat_grads, get_flat, hessian_free,
                            minimize, newton, set_flat)
from nablanet.training import Trainer

B64 = get_backend("cpu", "float64")


def small_problem(sizes=(3, 4, 2), output="softmax", cost="log-likelihood", n=25, seed=0,
                  penalties=()):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, sizes[0]))
    y = rng.integers(0, sizes[-1], n)
    if cost == "quadratic":
        y = rng.standard_normal((n, sizes[-1]))
    net = mlp(sizes, "sigmoid", output, backend=B64, rng=seed)
    return Objective(net, cost, x, y, penalties=list(penalties))


# -- C(θ) and ∇C ----------------------------------------------------------------------
@pytest.mark.parametrize("output, cost", [("softmax", "log-likelihood"),
                                          ("sigmoid", "cross-entropy"),
                                          ("linear", "quadratic")])
def test_flat_gradient_matches_central_differences(output, cost):
    obj = small_problem(output=output, cost=cost, penalties=[L2(0.3)])
    theta = obj.theta()
    _, g = obj.value_and_grad(theta)
    numeric = numerical_gradient(lambda: obj.value(theta), theta)
    assert relative_error(g, numeric) < 1e-7
    assert obj.n_evals == 1


def test_flat_round_trip_and_size_check():
    obj = small_problem()
    theta = np.arange(obj.size, dtype=float)
    set_flat(obj.net, theta)
    np.testing.assert_array_equal(get_flat(obj.net), theta)
    np.testing.assert_array_equal(obj.net.layers[0].params["W"].ravel(), theta[:12])
    with pytest.raises(DataError, match=f"{obj.size} entries"):
        set_flat(obj.net, theta[:-1])



def test_flat_grads_count_a_gradient_never_accumulated_as_zero():
    net = mlp([3, 2], backend=B64, rng=0)
    net.zero_grads()
    np.testing.assert_array_equal(flat_grads(net), np.zeros(net.n_params()))


@pytest.mark.parametrize("make, error, message", [
    (lambda: Objective(Sequential([Dense(3, 2)]), "quadratic",
                       np.zeros((2, 3)), np.zeros((2, 2))), ConfigError, "build the net"),
    (lambda: Objective(mlp([3, 2], backend=B64, rng=0), "cross-entropy",
                       np.zeros((4, 3)), np.array([0, 1, 0])), DataError, "4 examples but y has 3"),
    (lambda: Objective(mlp([3, 2], backend=B64, rng=0), "cross-entropy",
                       np.zeros((0, 3)), np.zeros(0, int)), DataError, "empty"),
])
def test_objective_refuses_an_unbuilt_net_and_mismatched_or_empty_data(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_objective_penalty_uses_n_train_not_the_batch_size():
    """λ/2n with n the whole training set: these 25 examples as a batch of 100."""
    plain = small_problem()
    obj = Objective(plain.net, "log-likelihood", plain.x, np.zeros(25, int),
                    penalties=[L2(0.4)], n_train=100)
    no_penalty = Objective(plain.net, "log-likelihood", plain.x, np.zeros(25, int))
    theta = obj.theta()
    weights = sum(float((layer.params["W"] ** 2).sum()) for layer in obj.net.layers
                  if "W" in layer.params)
    assert obj.value(theta) - no_penalty.value(theta) == pytest.approx(0.4 / 200 * weights)


def test_value_and_grad_leaves_no_gradient_behind():
    """A Trainer step after it must not add this full-batch gradient to its own."""
    obj = small_problem()
    obj.value_and_grad(obj.theta())
    assert all(layer.grads[name] is None for layer, name in obj.net.parameters())

# -- curvature products ---------------------------------------------------------------
def test_hessian_vector_products_match_finite_differences_and_the_full_hessian():
    obj = small_problem(penalties=[L2(0.5)])
    theta = obj.theta()
    v = np.random.default_rng(1).standard_normal(obj.size)
    hv = obj.hessian_vector(theta, v)
    # Second differences of C itself along v: vᵀHv = d²C(θ + tv)/dt² at t = 0.
    t = 1e-4
    second = (obj.value(theta + t * v) - 2 * obj.value(theta) + obj.value(theta - t * v)) / t**2
    assert v @ hv == pytest.approx(second, rel=1e-5)
    hessian = obj.hessian(theta)
    np.testing.assert_allclose(hessian, hessian.T, atol=1e-12)
    assert relative_error(hessian @ v, hv) < 1e-7


def test_logistic_regression_hessian_has_the_closed_form():
    """One sigmoid unit, cross-entropy: H = Xᵀ diag(a(1 − a)) X / n, with X = [x 1]."""
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((40, 3)), rng.integers(0, 2, (40, 1)).astype(float)
    net = mlp([3, 1], output="sigmoid", backend=B64, rng=0)
    obj = Objective(net, "cross-entropy", x, y)
    theta = obj.theta()
    xa = np.hstack([x, np.ones((40, 1))])
    a = 1 / (1 + np.exp(-xa @ theta))
    exact = xa.T @ (xa * (a * (1 - a))[:, None]) / 40
    np.testing.assert_allclose(obj.hessian(theta), exact, atol=1e-8)
    # Its output is linear in θ, so the Gauss–Newton matrix is the Hessian itself.
    gn = obj.gauss_newton_operator(theta)
    np.testing.assert_allclose(np.stack([gn(e) for e in np.eye(4)], axis=1), exact, atol=1e-12)


@pytest.mark.parametrize("output, cost", [("softmax", "log-likelihood"),
                                          ("sigmoid", "cross-entropy"),
                                          ("linear", "quadratic")])
def test_gauss_newton_product_is_jt_hl_j_from_finite_differences(output, cost):
    obj = small_problem(output=output, cost=cost, penalties=[L2(0.2)])
    net, theta = obj.net, obj.theta()
    start = obj.start

    def z_of(th):                                       # output pre-activation zᴸ(θ)
        set_flat(net, th)
        z = obj.x
        for layer in net.layers[:start]:
            z = layer.forward(z)[0]
        return z.ravel().copy()

    eps = 1e-6
    jac = np.stack([(z_of(theta + eps * e) - z_of(theta - eps * e)) / (2 * eps)
                    for e in np.eye(obj.size)], axis=1)
    set_flat(net, theta)
    a, _ = net.forward(obj.x)
    n, k = a.shape
    blocks = [np.diag(r) - np.outer(r, r) if output == "softmax"
              else np.diag(r * (1 - r)) if output == "sigmoid" else np.eye(k) for r in a]
    h_l = np.zeros((n * k, n * k))
    for i, block in enumerate(blocks):
        h_l[i * k:(i + 1) * k, i * k:(i + 1) * k] = block / n
    weights = np.concatenate([np.full(p.size, 0.2 / n if name == "W" else 0.0)
                              for layer, name in net.parameters()
                              for p in [layer.params[name]]])
    expected = jac.T @ h_l @ jac + np.diag(weights)
    gn = obj.gauss_newton_operator(theta)
    v = np.random.default_rng(3).standard_normal(obj.size)
    assert relative_error(gn(v), expected @ v) < 1e-7
    assert v @ gn(v) > 0                                 # G is positive semi-definite



def test_curvature_products_count_and_leave_theta_installed():
    obj = small_problem(penalties=[L2(0.3)])
    theta = obj.theta()
    assert not obj.hessian_vector(theta, np.zeros(obj.size)).any()     # not 0/0 = nan
    v = np.random.default_rng(4).standard_normal(obj.size)
    obj.hessian_vector(theta, v)
    np.testing.assert_array_equal(get_flat(obj.net), theta)            # not θ − εv
    gn = obj.gauss_newton_operator(theta)
    np.testing.assert_array_equal(get_flat(obj.net), theta)            # not the penalty's 1s
    first = gn(v)
    obj.value_and_grad(theta + 1.0)                                    # moves the net's θ
    np.testing.assert_array_equal(gn(v), first)                        # still G at θ
    assert obj.n_products == 4                                         # 2 H v, 2 G v


def test_gauss_newton_l1_adds_no_curvature_and_other_layers_are_refused():
    plain = small_problem()
    l1 = small_problem(penalties=[L1(0.5)])
    v = np.random.default_rng(5).standard_normal(plain.size)
    np.testing.assert_allclose(l1.gauss_newton_operator(l1.theta())(v),
                               plain.gauss_newton_operator(plain.theta())(v))
    net = Sequential([Flatten(), Dense(None, 2), Softmax()]).build((3,), B64, 0)
    obj = Objective(net, "log-likelihood", np.zeros((4, 3)), np.array([0, 1, 0, 1]))
    with pytest.raises(ConfigError, match="not Flatten"):
        obj.gauss_newton_operator(obj.theta())(np.ones(obj.size))

def test_gauss_newton_needs_a_matched_cost():
    obj = small_problem(output="sigmoid", cost="quadratic")
    with pytest.raises(ConfigError, match="matched to the output activation"):
        obj.gauss_newton_operator(obj.theta())


# -- Newton --------------------------------------------------------------------------------
def test_newton_converges_quadratically_near_a_minimum():
    rng = np.random.default_rng(0)
    x = np.linspace(0, 1, 30)[:, None]
    y = np.sin(2 * np.pi * x) + 0.1 * rng.standard_normal((30, 1))
    net = mlp([1, 2, 1], "sigmoid", "linear", backend=B64, rng=1)
    obj = Objective(net, "quadratic", x, y, penalties=[L2(1e-2)])
    minimize(obj, "l-bfgs", max_iter=200, tol=1e-4)      # come near a minimum first
    thetas = [obj.theta()]
    for _ in range(6):                                    # pure Newton, one step at a time
        thetas.append(newton(obj, damping=0.0, tol=0.0, max_iter=1, theta0=thetas[-1]).theta)
    assert np.linalg.norm(obj.value_and_grad(thetas[-1])[1]) < 1e-12
    e = np.array([np.linalg.norm(t - thetas[-1]) for t in thetas[:-1]])
    # e_{k+1} / e_k² stays bounded while e is above the rounding floor (~1e-14); under
    # linear convergence the ratio would grow like 1/e_k.
    above = (e[:-1] < 0.1) & (e[1:] > 1e-11)
    ratios = e[1:][above] / e[:-1][above] ** 2
    assert above.sum() >= 2 and ratios.max() < 100, (e, ratios)
    assert e[3] < 1e-11                                   # 3 steps: from ~1e-3 to rounding


def test_newton_with_damping_starts_far_away_and_needs_float64():
    obj = small_problem(sizes=(2, 3, 2), n=20, penalties=[L2(0.5)])
    start = obj.value(obj.theta())
    result = newton(obj, damping=1e-2, max_iter=50, tol=1e-9)
    assert result.converged and result.cost < start
    assert np.all(np.diff(result.costs) <= 1e-12)         # each accepted step lowers C
    net32 = mlp([2, 2], backend=get_backend("cpu", "float32"), rng=0)
    with pytest.raises(ConfigError, match="float64"):
        newton(Objective(net32, "cross-entropy", np.zeros((3, 2)), np.array([0, 1, 0])))



OPTIMISERS = [lambda obj, **kw: minimize(obj, "l-bfgs", max_iter=3, **kw),
              lambda obj, **kw: minimize(obj, "bfgs", max_iter=3, **kw),
              lambda obj, **kw: newton(obj, max_iter=2, **kw),
              lambda obj, **kw: hessian_free(obj, max_iter=2, **kw)]


@pytest.mark.parametrize("run", OPTIMISERS)
def test_optimisers_start_from_theta0_and_leave_their_theta_installed(run):
    obj = small_problem(sizes=(2, 3, 2), n=20)
    start = obj.theta()
    from_net = run(obj)                               # from the θ the net holds
    assert np.abs(from_net.theta - start).max() > 1e-3
    set_flat(obj.net, start + 1.0)                    # the net elsewhere: θ0 must win
    result = run(obj, theta0=start)
    np.testing.assert_allclose(result.theta, from_net.theta, rtol=1e-10)
    np.testing.assert_array_equal(get_flat(obj.net), result.theta)


def test_minimize_counts_only_its_own_evaluations_and_needs_an_iteration():
    obj = small_problem()
    minimize(obj, "l-bfgs", max_iter=3)
    before = obj.n_evals
    result = minimize(obj, "l-bfgs", max_iter=3)
    assert result.n_evals == obj.n_evals - before > 0
    with pytest.raises(ConfigError, match="max_iter must be ≥ 1"):
        minimize(obj, "cg", max_iter=0)


def test_lbfgs_runs_until_the_gradient_tolerance():
    """scipy's default ftol stops L-BFGS-B long before ‖∇C‖∞ < gtol on this problem."""
    obj = small_problem(sizes=(3, 6, 2), n=60, penalties=[L2(1e-3)])
    result = minimize(obj, "l-bfgs", max_iter=2000, tol=1e-7)
    assert result.converged, result.message
    assert np.abs(obj.value_and_grad(result.theta)[1]).max() < 1e-7


def test_hessian_free_shortens_a_step_that_raises_the_cost():
    """Tiny damping from large weights: full CG steps overshoot; backtracking keeps going."""
    obj = small_problem(sizes=(2, 8, 2), n=20, seed=1)
    set_flat(obj.net, 3 * obj.theta())
    result = hessian_free(obj, damping=1e-4, max_iter=10)
    assert result.n_iterations == 10 and np.all(np.diff(result.costs) < 0)
    assert result.n_evals > 11                          # some steps were shortened


def test_hessian_free_stops_at_a_minimum_with_the_last_good_theta():
    obj = small_problem(penalties=[L2(0.1)])
    minimize(obj, "l-bfgs", max_iter=2000, tol=1e-10)
    result = hessian_free(obj, tol=0, max_iter=50)      # C can only fall by rounding
    assert result.message == "no step along the CG direction lowered the cost"
    assert not result.converged and np.all(np.diff(result.costs) < 0)
    np.testing.assert_array_equal(get_flat(obj.net), result.theta)   # not the rejected try


def test_gauss_newton_refuses_a_penalty_without_known_curvature():
    class Elastic(L2):
        name = "elastic"

    obj = small_problem(penalties=[Elastic(0.1)])
    with pytest.raises(ConfigError, match="no curvature known for penalty 'elastic'"):
        obj.gauss_newton_operator(obj.theta())

# -- L-BFGS, CG, BFGS and Hessian-free against plain SGD ------------------------------------
@pytest.fixture(scope="module")
def digits():
    datasets = pytest.importorskip("sklearn.datasets")
    d = datasets.load_digits()
    return d.data / 16.0, d.target


def digits_net():
    return mlp([64, 16, 10], "sigmoid", "softmax", backend=B64, rng=0)


@pytest.fixture(scope="module")
def sgd_baseline(digits):
    """Plain mini-batch SGD (η = 1, m = 10, 20 epochs) on 64-16-10: cost and gradient count."""
    x, y = digits
    net = digits_net()
    trainer = Trainer(net, "log-likelihood", SGD(1.0), batch_size=10, monitor=(), rng=1)
    trainer.fit(Dataset(x, y), 20)
    steps = 20 * int(np.ceil(len(x) / 10))
    return Objective(net, "log-likelihood", x, y).value(get_flat(net)), steps


@pytest.mark.parametrize("method", ["l-bfgs", "cg"])
def test_lbfgs_and_cg_beat_sgd_with_fewer_gradient_evaluations(digits, sgd_baseline, method):
    x, y = digits
    sgd_cost, sgd_evals = sgd_baseline
    obj = Objective(digits_net(), "log-likelihood", x, y)
    result = minimize(obj, method, max_iter=200)
    assert result.n_evals == obj.n_evals < sgd_evals      # 3600 mini-batch gradients for SGD
    assert result.cost < sgd_cost / 10
    assert result.costs == sorted(result.costs, reverse=True)
    assert np.all(obj.net.classify(x) == y)


def test_hessian_free_and_bfgs_lower_the_cost(digits, sgd_baseline):
    x, y = digits
    sgd_cost, sgd_evals = sgd_baseline
    obj = Objective(digits_net(), "log-likelihood", x, y)
    result = hessian_free(obj, max_iter=25, cg_max_iter=40)
    assert np.all(np.diff(result.costs) < 0)              # the line search keeps C falling
    assert result.cost < sgd_cost and result.n_evals < 100 < result.n_products
    small = small_problem(n=40)
    before = small.value(small.theta())
    assert minimize(small, "bfgs", max_iter=100).cost < before / 2
    with pytest.raises(ConfigError, match="unknown method"):
        minimize(small, "newton-cg")


# -- per-connection adaptive rates -----------------------------------------------------------
def full_batch_cost(optimizer, digits, epochs=40):
    x, y = digits
    net = digits_net()
    trainer = Trainer(net, "log-likelihood", optimizer, batch_size=len(x),
                      monitor=("train_cost",), rng=0)
    return trainer.fit(Dataset(x, y), epochs)["train_cost"]


def test_rprop_and_delta_bar_delta_learn_faster_than_full_batch_gd(digits):
    gd = full_batch_cost(SGD(0.5), digits)
    rprop = full_batch_cost(Rprop(0.01), digits)
    dbd = full_batch_cost(DeltaBarDelta(0.5), digits)
    assert rprop[-1] < gd[-1] / 2 and dbd[-1] < gd[-1]


def test_rprop_grows_steps_on_agreeing_signs_and_shrinks_them_on_flips():
    net = mlp([1, 1], output="linear", backend=B64, rng=0)
    opt = Rprop(0.1)
    layer = net.layers[0]
    for g in (1.0, 1.0, -1.0, -1.0):
        layer.grads["W"] = np.array([[g]])
        layer.grads["b"] = np.array([0.0])
        opt.step(net)
    # steps: 0.1 → 0.12 (agree) → 0.06 (flip, gradient forgotten) → 0.06 (no comparison)
    np.testing.assert_allclose(opt.state["step"][0], [[0.06]])
    set_flat(net, np.zeros(2))
    layer.grads["W"] = np.array([[-3.0]])
    opt.step(net)
    assert layer.params["W"][0, 0] == pytest.approx(0.06 * 1.2)   # the sign only, not the size


def test_rprop_steps_stay_between_step_min_and_step_max():
    net = mlp([1, 1], output="linear", backend=B64, rng=0)
    opt = Rprop(0.1, step_max=0.3, step_min=0.05)
    layer = net.layers[0]

    def steps(gradients):
        for g in gradients:
            layer.grads["W"] = np.array([[g]])
            layer.grads["b"] = np.array([0.0])
            opt.step(net)
        return opt.state["step"][0][0, 0]

    assert steps([1.0] * 10) == 0.3               # 0.1·1.2⁹ ≈ 0.52 without the cap
    assert steps([-1.0, 1.0] * 10) == 0.05        # 0.3·0.5¹⁰ without the floor


def test_delta_bar_delta_rates_rise_additively_and_fall_multiplicatively():
    net = mlp([1, 1], output="linear", backend=B64, rng=0)
    opt = DeltaBarDelta(0.1, kappa=0.01, phi=0.5, theta=0.0)
    layer = net.layers[0]
    for g in (1.0, 1.0, 1.0, -1.0):
        layer.grads["W"] = np.array([[g]])
        layer.grads["b"] = np.array([0.0])
        opt.step(net)
    # ε: 0.1 (no history) → 0.11 → 0.12 → 0.06 after the sign change
    np.testing.assert_allclose(opt.state["rate"][0], [[0.06]])
    with pytest.raises(ConfigError, match="0 < phi < 1"):
        DeltaBarDelta(0.1, phi=1.5)
    with pytest.raises(ConfigError, match="0 < eta_minus < 1 < eta_plus"):
        Rprop(0.1, eta_plus=0.9)


def test_delta_bar_delta_compares_with_the_running_average_of_past_gradients():
    """θ = 0.5: after g = 1, −0.8 the average δ̄ = 0.5·(0.5·1) − 0.4 = −0.15 is negative,
    so g = 1 next disagrees with it (the last gradient alone would still have)."""
    net = mlp([1, 1], output="linear", backend=B64, rng=0)
    layer = net.layers[0]
    w0 = layer.params["W"][0, 0]
    opt = DeltaBarDelta(0.1, kappa=0.01, phi=0.5, theta=0.5)
    for g in (1.0, -0.8, 1.0):
        layer.grads["W"] = np.array([[g]])
        layer.grads["b"] = np.array([0.0])
        opt.step(net)
    # ε: 0.1 (no history) → 0.05 (−0.8 against δ̄ = 0.5) → 0.025 (1 against δ̄ = −0.15)
    np.testing.assert_allclose(opt.state["rate"][0], [[0.025]])
    np.testing.assert_allclose(opt.state["bar"][0], [[0.5 * -0.15 + 0.5]])
    assert layer.params["W"][0, 0] == pytest.approx(w0 - 0.1 + 0.05 * 0.8 - 0.025)


@pytest.mark.parametrize("make", [lambda: DeltaBarDelta(0.3), lambda: Rprop(0.3)],
                         ids=["delta-bar-delta", "rprop"])
def test_a_parameter_first_stepped_after_another_starts_at_eta(make):
    """The bias has a gradient at the first step and W only at the second: W's step size
    still starts at η (its slot was a placeholder, not a state of zeros)."""
    net = mlp([1, 1], output="linear", backend=B64, rng=0)
    layer, opt = net.layers[0], make()
    layer.grads["b"] = np.array([1.0])
    opt.step(net)
    net.zero_grads()
    w0 = layer.params["W"][0, 0]
    layer.grads["W"] = np.array([[2.0]])
    opt.step(net)
    # Rprop moves by the step itself, delta-bar-delta by rate·g
    assert layer.params["W"][0, 0] == pytest.approx(w0 - 0.3 * (2.0 if opt.name != "rprop"
                                                                 else 1.0))


def test_adaptive_settings_at_their_bounds():
    DeltaBarDelta(0.1, kappa=0.0)           # decreases only: allowed
    Rprop(0.1, step_min=0.0)
    for make in (lambda: DeltaBarDelta(0.1, phi=1.0), lambda: Rprop(0.1, eta_minus=1.0),
                 lambda: Rprop(0.1, eta_plus=1.0)):
        with pytest.raises(ConfigError):
            make()


def test_delta_bar_delta_kappa_defaults_to_eta_over_20():
    net = mlp([1, 1], output="linear", backend=B64, rng=0)
    opt = DeltaBarDelta(0.1, phi=0.5, theta=0.0)
    for _ in range(2):
        net.layers[0].grads["W"] = np.array([[1.0]])
        net.layers[0].grads["b"] = np.array([0.0])
        opt.step(net)
    np.testing.assert_allclose(opt.state["rate"][0], [[0.1 + 0.1 / 20]])


@pytest.mark.parametrize("make, message", [
    (lambda: DeltaBarDelta(0.1, kappa=-0.01), "kappa must be ≥ 0"),
    (lambda: DeltaBarDelta(0.1, theta=1.0), "0 ≤ theta < 1"),
    (lambda: Rprop(0.1, step_min=1.0, step_max=1.0), "step_min < step_max"),
])
def test_adaptive_optimisers_refuse_bad_settings(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


@pytest.mark.parametrize("opt", [DeltaBarDelta(0.2, kappa=0.03, phi=0.4, theta=0.6),
                                 Rprop(0.2, eta_plus=1.3, eta_minus=0.4, step_max=9.0,
                                       step_min=1e-3)])
def test_adaptive_optimiser_config_rebuilds_the_same_optimiser(opt):
    """The checkpoint records config(): every setting must be in it."""
    config = opt.config()
    assert config.pop("name") == opt.name
    assert set(config) == set(inspect.signature(type(opt)).parameters)
    assert type(opt)(**config).config() == opt.config()
    defaults = type(opt)(0.2).config()
    assert all(config[k] != defaults[k] for k in config if k != "eta")
