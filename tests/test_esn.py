"""Echo-state networks: the reservoir's spectral radius, the closed-form ridge readout,
memory of past inputs, closed-loop generation, the echo-state property, bad input."""
import numpy as np
import pytest

from nablanet import ConfigError, DataError
from nablanet.models.esn import EchoStateNetwork, nrmse


def signal(n=1500):
    t = np.arange(n)
    return 0.5 * np.sin(2 * np.pi * t / 25) + 0.3 * np.sin(2 * np.pi * t / 7.3)


@pytest.mark.parametrize("radius", [0.5, 0.9, 1.2])
def test_reservoir_is_scaled_to_the_chosen_spectral_radius(radius):
    u = np.zeros((120, 1))
    esn = EchoStateNetwork(60, spectral_radius=radius, density=0.2, washout=10,
                           rng=0).fit(u, u)
    assert np.abs(np.linalg.eigvals(esn.W_)).max() == pytest.approx(radius, rel=1e-9)
    nonzero = np.count_nonzero(esn.W_) / esn.W_.size
    assert 0.12 < nonzero < 0.28                     # sparse, near the chosen density


def test_readout_is_the_ridge_regression_solution():
    """W_out = argmin ‖F W − Y‖² + λ‖W‖², checked as the least-squares solution of the
    augmented system [F; √λ I] W = [Y; 0]."""
    rng = np.random.default_rng(1)
    u, y = rng.uniform(-1, 1, (300, 2)), rng.standard_normal((300, 3))
    esn = EchoStateNetwork(40, ridge=0.5, washout=20, rng=2).fit(u, y)
    f = esn._features(u[None], esn.states(u[None]))[0, 20:]
    augmented = np.vstack([f, np.sqrt(0.5) * np.eye(f.shape[1])])
    rhs = np.vstack([y[20:], np.zeros((f.shape[1], 3))])
    expected = np.linalg.lstsq(augmented, rhs, rcond=None)[0]
    np.testing.assert_allclose(esn.W_out_, expected, rtol=1e-6, atol=1e-9)


def test_reservoir_remembers_recent_inputs_and_forgets_old_ones():
    rng = np.random.default_rng(3)
    u = rng.uniform(-0.5, 0.5, (4, 600, 1))
    errors = {}
    for delay in (1, 5, 40):
        y = np.roll(u, delay, axis=1)
        esn = EchoStateNetwork(150, spectral_radius=0.95, input_scaling=0.2, washout=50,
                               rng=4).fit(u[:3], y[:3])
        errors[delay] = nrmse(esn.predict(u[3])[50:], y[3][50:])
    assert errors[1] < 0.02 and errors[5] < 0.05, errors
    assert errors[40] > 0.5, errors                   # fading memory: echoes die out


def test_closed_loop_generation_continues_a_signal():
    s = signal()
    esn = EchoStateNetwork(150, spectral_radius=0.9, input_scaling=0.5, ridge=1e-8,
                           washout=100, rng=0)
    esn.fit(s[:1000, None], s[1:1001, None])
    generated = esn.generate(s[:1001, None], 200)
    assert generated.shape == (200, 1)
    assert nrmse(generated[:, 0], s[1001:1201]) < 0.01


@pytest.mark.parametrize("alpha", [1.0, 0.3])
def test_states_follow_the_leaky_tanh_recurrence(alpha):
    """x_t = (1 − α) x_{t−1} + α tanh([1, u_t] W_in + x_{t−1} W), with its bias row."""
    rng = np.random.default_rng(7)
    u = rng.uniform(-1, 1, (2, 6, 3))
    esn = EchoStateNetwork(10, leak_rate=alpha, washout=1, rng=8).fit(u, u)
    x = np.zeros((2, 10))
    for t in range(6):
        x = (1 - alpha) * x + alpha * np.tanh(np.hstack([np.ones((2, 1)), u[:, t]]) @ esn.W_in_
                                              + x @ esn.W_)
        np.testing.assert_allclose(esn.states(u)[:, t], x, rtol=1e-12, atol=1e-15)
    assert np.abs(esn.W_in_[0]).max() > 0                    # a bias row that matters


def test_echo_state_property_and_leak_rate():
    """With ρ < 1 two different starting states converge under the same input; leaky units
    (α < 1) converge more slowly."""
    rng = np.random.default_rng(5)
    u = rng.uniform(-1, 1, (1, 200, 1))
    gaps = {}
    for alpha in (1.0, 0.2):
        esn = EchoStateNetwork(80, spectral_radius=0.8, leak_rate=alpha, washout=10,
                               rng=6).fit(u, u)
        a = esn.states(u, np.full((1, 80), 0.9))
        b = esn.states(u, np.full((1, 80), -0.9))
        gaps[alpha] = np.abs(a - b).max(axis=-1)[0]
        assert gaps[alpha][-1] < 1e-6 * gaps[alpha][0]
    assert gaps[0.2][10] > gaps[1.0][10]


def test_bad_settings_and_input_are_clear_errors():
    with pytest.raises(ConfigError, match="spectral_radius"):
        EchoStateNetwork(spectral_radius=0)
    with pytest.raises(ConfigError, match="leak_rate"):
        EchoStateNetwork(leak_rate=1.5)
    with pytest.raises(DataError, match="50 steps leave nothing after a washout of 50"):
        EchoStateNetwork(20, washout=50).fit(np.zeros((50, 1)), np.zeros((50, 1)))
    with pytest.raises(DataError, match=r"u has \(batch, time\) \(1, 50\) but y has \(1, 49\)"):
        EchoStateNetwork(20, washout=5).fit(np.zeros((50, 1)), np.zeros((49, 1)))
    with pytest.raises(DataError, match="NaN"):
        EchoStateNetwork(20, washout=1).fit(np.full((5, 1), np.nan), np.zeros((5, 1)))
    with pytest.raises(ConfigError, match="not fitted"):
        EchoStateNetwork(20).predict(np.zeros((5, 1)))
    esn = EchoStateNetwork(20, washout=1, rng=0).fit(np.zeros((5, 2)), np.zeros((5, 1)))
    with pytest.raises(DataError, match="2 inputs"):
        esn.predict(np.zeros((5, 3)))


def test_same_rng_seed_same_reservoir_and_readout():
    u = signal(300)[:, None]
    a, b = (EchoStateNetwork(40, washout=20, rng=5).fit(u[:-1], u[1:])
            for _ in range(2))
    for name in ("W_in_", "W_", "W_out_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
