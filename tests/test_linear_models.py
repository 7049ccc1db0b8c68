"""One-layer nets: linear regression, perceptron, ADALINE, logistic and softmax regression."""
import numpy as np
import pytest

from nablanet.errors import ConfigError, DataError
from nablanet.models import (Adaline, LinearRegression, LogisticRegression, Perceptron,
                             SoftmaxRegression)
from test_training import assert_same_params, params

# The lecture's five fish: length x, weight y.
FISH_X = np.array([1, 3, 2, 1.5, 4])
FISH_Y = np.array([1, 2.2, 2, 1.9, 3.1])
XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
XOR_Y = np.array([0, 1, 1, 0])


def fish_formula():
    """w = Σ(x − x̄)(y − ȳ) / Σ(x − x̄)², b = ȳ − w x̄."""
    dx, dy = FISH_X - FISH_X.mean(), FISH_Y - FISH_Y.mean()
    w = (dx * dy).sum() / (dx * dx).sum()
    return w, FISH_Y.mean() - w * FISH_X.mean()


# -- linear regression -----------------------------------------------------------------
def test_closed_form_gives_the_lecture_formula_on_the_fish():
    w, b = fish_formula()
    model = LinearRegression().fit(FISH_X, FISH_Y)
    assert model.coef_[0] == pytest.approx(w, abs=1e-12)
    assert model.intercept_ == pytest.approx(b, abs=1e-12)
    assert w == pytest.approx(0.584483, abs=1e-6)          # the numbers themselves


@pytest.mark.parametrize("method, kwargs", [("gd", dict(eta=0.1, epochs=2000)),
                                            ("sgd", dict(eta=0.05, epochs=2000, rng=0))])
def test_gradient_descent_and_delta_rule_reach_the_closed_form(method, kwargs):
    w, b = fish_formula()
    model = LinearRegression(method, **kwargs).fit(FISH_X, FISH_Y)
    assert model.coef_[0] == pytest.approx(w, abs=1e-4)
    assert model.intercept_ == pytest.approx(b, abs=1e-4)


@pytest.mark.parametrize("seed", range(5))
def test_closed_form_matches_numpy_lstsq_on_random_problems(seed):
    rng = np.random.default_rng(seed)
    n, d, k = rng.integers(20, 60), rng.integers(1, 8), rng.integers(1, 3)
    x = rng.standard_normal((n, d)) * rng.uniform(0.1, 10, d)
    y = rng.standard_normal((n, k))
    model = LinearRegression().fit(x, y)
    expected = np.linalg.lstsq(np.hstack([x, np.ones((n, 1))]), y, rcond=None)[0]
    np.testing.assert_allclose(model.coef_.reshape(d, k), expected[:d], atol=1e-6)
    np.testing.assert_allclose(np.reshape(model.intercept_, k), expected[d], atol=1e-6)
    np.testing.assert_allclose(model.predict(x).reshape(n, k),
                               np.hstack([x, np.ones((n, 1))]) @ expected, atol=1e-6)


def test_score_of_several_outputs_is_r2_around_each_outputs_own_mean():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((30, 2))
    # outputs with far apart means: one overall mean would inflate the total variance
    y = x @ rng.standard_normal((2, 2)) + [5.0, -40.0] + rng.standard_normal((30, 2))
    model = LinearRegression().fit(x, y)
    assert model.score(x, y) == pytest.approx(
        metrics.r2_score(y, model.predict(x), multioutput="variance_weighted"), rel=1e-12)


def test_ridge_matches_the_regularised_normal_equations_and_gradient_descent():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((40, 3)), rng.standard_normal(40)
    lam = 5.0
    model = LinearRegression(l2=lam).fit(x, y)
    xc, yc = x - x.mean(0), y - y.mean()                  # the bias absorbs the means
    w = np.linalg.solve(xc.T @ xc + lam * np.eye(3), xc.T @ yc)
    np.testing.assert_allclose(model.coef_, w, atol=1e-10)
    gd = LinearRegression("gd", l2=lam, eta=0.3, epochs=3000).fit(x, y)
    np.testing.assert_allclose(gd.coef_, w, atol=1e-6)


def test_singular_design_matrix_is_a_clear_error_that_suggests_ridge():
    x = np.column_stack([FISH_X, 2 * FISH_X])               # second feature = 2 × first
    with pytest.raises(DataError, match=r"singular.*rank 2 < 3.*ridge"):
        LinearRegression().fit(x, FISH_Y)
    LinearRegression(l2=1e-3).fit(x, FISH_Y)               # ridge makes it solvable
    with pytest.raises(DataError, match="rank"):
        LinearRegression().fit(np.ones((5, 1)), FISH_Y)   # a constant feature


def test_bad_input_is_reported_clearly():
    with pytest.raises(DataError, match="5 examples but y has 4"):
        LinearRegression().fit(FISH_X, FISH_Y[:4])
    with pytest.raises(DataError, match="non-finite"):
        LinearRegression().fit(FISH_X, np.array([1, 2, np.nan, 4, 5]))
    with pytest.raises(DataError, match="4 examples but y has 3"):
        Perceptron().fit(XOR_X, XOR_Y[:3])
    with pytest.raises(ConfigError, match="unknown method"):
        LinearRegression("normal").fit(FISH_X, FISH_Y)
    with pytest.raises(ConfigError, match="not fitted"):
        LinearRegression().predict(FISH_X)


@pytest.mark.parametrize("model", [Perceptron, Adaline])
def test_an_unfitted_binary_classifier_says_so(model):
    # predict read classes_ before decision_function's check: AttributeError 'classes_'
    with pytest.raises(ConfigError, match=f"this {model.__name__} is not fitted"):
        model().predict(XOR_X)


# -- perceptron and ADALINE ------------------------------------------------------------
def separable(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2))
    margin = x @ np.array([1.0, -2.0]) + 0.3
    keep = np.abs(margin) > 0.2                             # a positive margin γ
    return x[keep], np.where(margin[keep] > 0, 1, -1)


def test_perceptron_converges_in_finitely_many_updates_on_separable_data():
    x, y = separable()
    model = Perceptron(rng=0).fit(x, y)
    assert model.converged_ and model.errors_[-1] == 0
    assert 0 < model.n_updates_ < 1000
    assert model.score(x, y) == 1.0
    # Novikoff's bound: updates ≤ (R/γ)², with R = max‖(x, 1)‖ and γ the margin of a
    # separating unit vector (here (1, −2, 0.3)/‖·‖ normalised).
    u = np.array([1.0, -2.0, 0.3]) / np.linalg.norm([1.0, -2.0, 0.3])
    xa = np.hstack([x, np.ones((len(x), 1))])
    gamma = np.min(np.where(y > 0, 1, -1) * (xa @ u))
    assert model.n_updates_ <= (np.linalg.norm(xa, axis=1).max() / gamma) ** 2
    assert "converged after" in model.message_


def test_perceptron_reports_non_convergence_on_xor():
    model = Perceptron(max_epochs=50, rng=0).fit(XOR_X, XOR_Y)
    assert not model.converged_
    assert model.n_epochs_ == 50 and min(model.errors_) > 0
    assert "not linearly separable" in model.message_
    assert model.score(XOR_X, XOR_Y) < 1.0


def test_perceptron_learns_and_and_keeps_the_given_labels():
    y = np.array(["no", "no", "no", "yes"])
    model = Perceptron(rng=0).fit(XOR_X, y)
    assert model.converged_
    assert model.predict(XOR_X).tolist() == y.tolist()


def test_adaline_minimises_squared_error_on_overlapping_classes():
    rng = np.random.default_rng(3)
    x = np.vstack([rng.normal(-1, 1, (100, 2)), rng.normal(1, 1, (100, 2))])
    y = np.repeat([0, 1], 100)
    model = Adaline(eta=0.01, epochs=100, rng=0).fit(x, y)
    # LMS minimises Σ(t − z)² for t = ±1: the least-squares fit of the ±1 targets.
    exact = LinearRegression().fit(x, 2 * y - 1)
    np.testing.assert_allclose(model.coef_, exact.coef_, atol=1e-3)
    assert model.score(x, y) > 0.85
    with pytest.raises(DataError, match="two classes"):
        Adaline().fit(x, np.arange(200) % 3)


# -- logistic and softmax regression ---------------------------------------------------
def blobs(n=300, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    return 2.0 * np.eye(k, 4)[y] + rng.standard_normal((n, 4)), y


def test_softmax_regression_matches_scikit_learn():
    linear_model = pytest.importorskip("sklearn.linear_model")
    x, y = blobs()
    ours = SoftmaxRegression(l2=1.0, tol=1e-8).fit(x, y)
    theirs = linear_model.LogisticRegression(C=1.0, tol=1e-10, max_iter=1000).fit(x, y)
    np.testing.assert_allclose(ours.predict_proba(x), theirs.predict_proba(x), atol=1e-5)
    assert ours.score(x, y) == theirs.score(x, y)


def test_binary_logistic_regression_matches_scikit_learn():
    linear_model = pytest.importorskip("sklearn.linear_model")
    x, y = blobs(k=2)
    ours = LogisticRegression(l2=0.5, tol=1e-8).fit(x, y)
    theirs = linear_model.LogisticRegression(C=2.0, tol=1e-10, max_iter=1000).fit(x, y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_[0], atol=1e-5)
    assert ours.intercept_ == pytest.approx(theirs.intercept_[0], abs=1e-5)
    # columns in the order of classes_: P(y = 0), then P(y = 1)
    np.testing.assert_allclose(ours.predict_proba(x), theirs.predict_proba(x), atol=1e-5)


def test_one_vs_rest_logistic_and_sgd_solver_learn_the_blobs():
    x, y = blobs(seed=1)
    lbfgs = LogisticRegression(l2=0.1).fit(x, y)
    sgd = SoftmaxRegression(l2=0.1, solver="sgd", eta=0.1, epochs=20, rng=0).fit(x, y)
    assert lbfgs.net_.output_shape == (3,)
    assert lbfgs.score(x, y) > 0.8 and sgd.score(x, y) > 0.8
    assert abs(lbfgs.score(x, y) - sgd.score(x, y)) < 0.05


@pytest.fixture(scope="module")
def mnist64():
    from nablanet.data import load_mnist, mnist_available
    if not mnist_available():
        pytest.skip("MNIST files not found (set NABLANET_DATA)")
    train, _, test = load_mnist(download=False)
    return train.x.astype(np.float64), train.y, test.x.astype(np.float64), test.y


@pytest.mark.slow
@pytest.mark.mnist
def test_softmax_regression_on_mnist_is_within_0_3_percent_of_scikit_learn(mnist64):
    linear_model = pytest.importorskip("sklearn.linear_model")
    x, y, xt, yt = mnist64
    ours = SoftmaxRegression(l2=1.0, max_iter=1000, tol=1e-4).fit(x, y).score(xt, yt)
    theirs = linear_model.LogisticRegression(C=1.0, max_iter=1000).fit(x, y).score(xt, yt)
    print(f"MNIST test accuracy: nablanet SoftmaxRegression {ours:.4f}, "
          f"scikit-learn LogisticRegression {theirs:.4f}")
    assert abs(ours - theirs) <= 0.003


@pytest.mark.slow
@pytest.mark.mnist
def test_one_vs_rest_logistic_regression_on_mnist_is_within_0_3_percent(mnist64):
    linear_model = pytest.importorskip("sklearn.linear_model")
    multiclass = pytest.importorskip("sklearn.multiclass")
    x, y, xt, yt = mnist64
    ours = LogisticRegression(l2=1.0, max_iter=1000, tol=1e-4).fit(x, y).score(xt, yt)
    theirs = multiclass.OneVsRestClassifier(
        linear_model.LogisticRegression(C=1.0, max_iter=1000)).fit(x, y).score(xt, yt)
    print(f"MNIST test accuracy: nablanet LogisticRegression (one-vs-rest) {ours:.4f}, "
          f"scikit-learn OneVsRestClassifier(LogisticRegression) {theirs:.4f}")
    assert abs(ours - theirs) <= 0.003


@pytest.mark.parametrize("make", [
    lambda: LinearRegression("sgd", epochs=3, rng=1), lambda: Perceptron(max_epochs=3, rng=1),
    lambda: Adaline(epochs=3, rng=1), lambda: LogisticRegression(solver="sgd", epochs=2, rng=1),
    lambda: SoftmaxRegression(solver="sgd", epochs=2, rng=1)],
    ids=["delta-rule", "perceptron", "adaline", "logistic-sgd", "softmax-sgd"])
def test_the_shuffling_solvers_are_seeded(make):
    x, y = blobs(60, seed=2)
    y = (y == 0).astype(int)
    assert_same_params(params(make().fit(x, y).net_), params(make().fit(x, y).net_))
