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
