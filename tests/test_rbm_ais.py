"""Annealed importance sampling of log Z against exact enumeration, and the log-likelihood."""
import numpy as np
import pytest

from nablanet import ConfigError, get_backend
from nablanet.models.ais import (ais_log_partition, base_rate_bias, default_betas,
                                 exact_log_partition, log_likelihood)
from nablanet.models.rbm import RBM, ContrastiveDivergence


def random_rbm(n_visible, n_hidden, std, dtype="float64", seed=0):
    rbm = RBM(n_visible, n_hidden, backend=get_backend("cpu", dtype), init_std=std, rng=seed)
    rng = np.random.default_rng(seed + 1)
    rbm.set_params(b_visible=rng.standard_normal(n_visible), b_hidden=rng.standard_normal(n_hidden))
    return rbm


def test_ais_log_z_is_within_0_1_of_the_exact_value_on_the_tiny_rbm():
    rbm = random_rbm(6, 4, std=2.0)
    exact = exact_log_partition(rbm)
    estimate = ais_log_partition(rbm, n_chains=200, n_betas=2000, rng=0)
    assert abs(estimate.log_z - exact) < 0.1
    assert estimate.log_z_low <= estimate.log_z <= estimate.log_z_high


def test_ais_on_a_trained_rbm_with_a_base_rate_model_in_float32():
    # 20 visible units, 10 hidden: log Z enumerable over 2¹⁰ hidden states.
    rng = np.random.default_rng(0)
    prototypes = (rng.random((4, 20)) < 0.5)
    data = np.repeat(prototypes, 100, axis=0) ^ (rng.random((400, 20)) < 0.05)
    data = data.astype(np.float32)
    rbm = RBM(20, 10, rng=0)
    rbm.fit(data, 30, cd=ContrastiveDivergence(learning_rate=0.1, batch_size=20), rng=0,
            monitor=())
    exact = exact_log_partition(rbm)
    estimate = ais_log_partition(rbm, n_chains=100, n_betas=3000,
                                 base_bias=base_rate_bias(data), rng=1)
    assert abs(estimate.log_z - exact) < 0.1
    # the test log-likelihood it gives is the exact one up to the same error
    assert log_likelihood(rbm, data, estimate.log_z) == pytest.approx(
        log_likelihood(rbm, data, exact), abs=0.1)
    assert log_likelihood(rbm, data, exact) > -20 * np.log(2) + 5      # it learned something


def test_base_rate_model_alone_is_exact():
    # With W = 0 and the base rate's own biases, every importance weight is the same.
    x = (np.random.default_rng(0).random((50, 8)) < 0.3).astype(float)
    rbm = random_rbm(8, 3, std=0.0)
    rbm.set_params(b_visible=base_rate_bias(x), b_hidden=np.zeros(3))
    estimate = ais_log_partition(rbm, n_chains=10, n_betas=50, base_bias=base_rate_bias(x), rng=0)
    assert estimate.log_z == pytest.approx(exact_log_partition(rbm), abs=1e-9)
    np.testing.assert_allclose(estimate.log_weights, 0, atol=1e-9)


def test_default_schedule_and_bad_arguments():
    betas = default_betas(1450)
    assert betas[0] == 0 and betas[-1] == 1 and np.all(np.diff(betas) > 0)
    assert (betas >= 0.9).sum() > (betas < 0.5).sum()        # denser near β = 1
    rbm = random_rbm(6, 4, std=1.0)
    with pytest.raises(ConfigError):
        ais_log_partition(rbm, betas=[0.0, 0.7, 0.5, 1.0])
    with pytest.raises(ConfigError):
        ais_log_partition(rbm, base_bias=np.zeros(5))
    with pytest.raises(ConfigError):
        ais_log_partition(RBM(4, 3, hidden="gaussian", rng=0))
    with pytest.raises(ConfigError):
        exact_log_partition(RBM(40, 30, rng=0))


@pytest.mark.parametrize("betas", [[0.0, 1.0], [0.0, 0.5, 1.0], default_betas(50)],
                         ids=["one-step", "two-steps", "schedule"])
def test_without_weights_ais_is_exact_importance_sampling_on_any_schedule(betas):
    # With W = 0 every p_β is a product of Bernoulli pixels and each Gibbs step draws
    # from p_β exactly, so the weights estimate Z_B / Z_A without bias: the chains must
    # start from p_A, and every step's term (the base-rate and hidden parts) must count.
    rng = np.random.default_rng(3)
    rbm = random_rbm(8, 3, std=0.0)
    rbm.set_params(b_visible=rng.standard_normal(8), b_hidden=2 * rng.standard_normal(3))
    base = 1.5 * rng.standard_normal(8)
    estimate = ais_log_partition(rbm, n_chains=4000, betas=betas, base_bias=base, rng=0)
    exact = exact_log_partition(rbm)
    # 4 000 chains: the ±3σ interval is ±0.05 (schedule) to ±0.2 (one step) wide
    assert estimate.log_z_low <= exact <= estimate.log_z_high
    assert estimate.log_z == pytest.approx(exact, abs=0.15)


def test_the_estimate_is_the_mean_importance_weight_with_a_3_sigma_interval():
    rbm = random_rbm(6, 4, std=1.0)
    base = np.linspace(-1, 1, 6)
    estimate = ais_log_partition(rbm, n_chains=50, n_betas=100, base_bias=base, rng=0)
    log_w = estimate.log_weights
    assert log_w.shape == (50,) and estimate.n_betas == len(default_betas(100))
    # Z_A of the base-rate model with its 4 hidden units left out: Π(1 + e^{a_A}) · 2⁴
    assert estimate.log_z_base == pytest.approx(np.log1p(np.exp(base)).sum() + 4 * np.log(2))
    w = np.exp(log_w)
    mean, se = w.mean(), w.std(ddof=1) / np.sqrt(len(w))
    assert estimate.log_z == pytest.approx(estimate.log_z_base + np.log(mean))
    assert estimate.log_z_low == pytest.approx(estimate.log_z_base + np.log(mean - 3 * se))
    assert estimate.log_z_high == pytest.approx(estimate.log_z_base + np.log(mean + 3 * se))
    assert estimate.as_dict()["n_chains"] == 50


def test_base_rate_biases_are_the_logits_of_smoothed_pixel_means():
    x = np.array([[1, 0, 1], [1, 0, 0], [1, 0, 1], [1, 0, 0]], np.float32)
    ones = x.sum(axis=0, dtype=np.float64)
    s = 0.05                                    # pseudo-counts towards ½ on each side
    expected = np.log((ones + s) / (len(x) - ones + s))
    bias = base_rate_bias(x)
    assert bias.dtype == np.float64
    np.testing.assert_allclose(bias, expected, rtol=1e-12)
    assert bias[2] == 0.0 and np.all(np.isfinite(bias))     # p = ½, and never ±∞


def test_the_default_schedule_keeps_salakhutdinov_and_murrays_proportions():
    betas = default_betas(1450)                 # a tenth of their 500 + 4 000 + 10 000
    assert len(betas) == 1451
    assert [(betas < 0.5).sum(), ((betas >= 0.5) & (betas < 0.9)).sum(),
            (betas >= 0.9).sum()] == [50, 400, 1001]
    assert len(default_betas()) == 14_501
    with pytest.raises(ConfigError, match="at least 2"):
        default_betas(1)


@pytest.mark.parametrize("betas", [[0.1, 0.5, 1.0], [0.0, 0.5, 0.9], [0.0, 0.5, 0.5, 1.0]],
                         ids=["not-from-0", "not-to-1", "repeated"])
def test_betas_must_run_strictly_from_0_to_1(betas):
    with pytest.raises(ConfigError, match="increase strictly from 0 to 1"):
        ais_log_partition(random_rbm(6, 4, std=1.0), betas=betas)


def test_ais_refuses_label_units():
    with pytest.raises(ConfigError, match="without label units"):
        ais_log_partition(RBM(6, 3, n_labels=2, rng=0))


def test_log_likelihoods_of_every_state_are_a_distribution_and_cover_every_row():
    from test_rbm import states
    rbm = random_rbm(6, 4, std=1.0)
    log_z = exact_log_partition(rbm)
    V = states(6)
    p = np.exp([log_likelihood(rbm, v[None], log_z) for v in V])
    assert p.sum() == pytest.approx(1.0, abs=1e-9)
    # more rows than one chunk of 2 000: the mean over all of them
    many = np.tile(V, (40, 1))[:2500]
    assert log_likelihood(rbm, many, log_z) == pytest.approx(np.log(p[np.arange(2500) % 64]).mean())
