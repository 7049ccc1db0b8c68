"""RBM correctness on models small enough to enumerate (6 visible × 4 hidden units:
2⁶ × 2⁴ joint states), and the RBM's contracts: bad input, the update rule, training."""
import itertools

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import expit, logsumexp

from nablanet import ConfigError, DataError, DivergenceError, get_backend
from nablanet.gradcheck import numerical_gradient, relative_error
from nablanet.models.ais import exact_log_partition
from nablanet.models.rbm import RBM, ContrastiveDivergence


def states(n):
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def tiny_rbm(n_visible=6, n_hidden=4, std=2.0, seed=0, **kwargs):
    """An RBM with large weights (so Gibbs chains mix slowly and CD-1 is visibly biased)."""
    rbm = RBM(n_visible, n_hidden, backend=get_backend("cpu", "float64"), init_std=std,
              rng=seed, **kwargs)
    rng = np.random.default_rng(seed + 100)
    rbm.set_params(b_visible=0.5 * rng.standard_normal(n_visible),
                   b_hidden=0.5 * rng.standard_normal(n_hidden))
    return rbm


def joint_energies(rbm):
    """E(v, h) for every visible row × hidden column."""
    V, H = states(rbm.n_visible), states(rbm.n_hidden)
    return np.array([rbm.energy(np.repeat(v[None], len(H), 0), H) for v in V])


def exact_gradient(rbm, data):
    """∂/∂θ of the mean log-likelihood: ⟨·⟩_data − ⟨·⟩_model, the model term by enumeration."""
    W, b = rbm.W, rbm.b_hidden
    V = states(rbm.n_visible)
    log_p = -rbm.free_energy(V)
    p = np.exp(log_p - logsumexp(log_p))
    ph_model, ph_data = expit(V @ W + b), expit(data @ W + b)
    return {"W": data.T @ ph_data / len(data) - (V * p[:, None]).T @ ph_model,
            "b_visible": data.mean(0) - p @ V,
            "b_hidden": ph_data.mean(0) - p @ ph_model}


def distance(g, h):
    return float(np.sqrt(sum(((g[k] - h[k]) ** 2).sum() for k in g)))


def training_patterns(n_visible=6, n_patterns=16, repeat=1250, seed=1):
    patterns = (np.random.default_rng(seed).random((n_patterns, n_visible)) < 0.5).astype(float)
    return np.repeat(patterns, repeat, axis=0)


# -- energies and the partition function ------------------------------------------------
def test_free_energy_matches_enumeration_over_hidden_states():
    rbm = tiny_rbm()
    E = joint_energies(rbm)
    np.testing.assert_allclose(rbm.free_energy(states(6)), -logsumexp(-E, axis=1), atol=1e-10)


def test_exact_log_partition_matches_enumeration_of_all_joint_states():
    for shape in ((6, 4), (4, 6)):      # enumerates the hidden, then the visible layer
        rbm = tiny_rbm(*shape)
        assert exact_log_partition(rbm) == pytest.approx(logsumexp(-joint_energies(rbm)), abs=1e-9)


@pytest.mark.parametrize("n_hidden", [4, 8])      # enumerates the hidden, then the pixel layer
def test_exact_log_partition_with_label_units_sums_one_hot_labels(n_hidden):
    rbm = tiny_rbm(6, n_hidden, std=1.0, n_labels=2)
    V = np.vstack([np.hstack([states(4), np.tile(label, (16, 1))]) for label in np.eye(2)])
    H = states(n_hidden)
    E = np.array([rbm.energy(np.repeat(v[None], len(H), 0), H) for v in V])
    assert exact_log_partition(rbm) == pytest.approx(logsumexp(-E), abs=1e-9)


def test_exact_log_partition_with_gaussian_hidden_units_enumerates_the_visible_layer():
    rbm = tiny_rbm(6, 2, std=0.5, hidden="gaussian")
    assert exact_log_partition(rbm) == pytest.approx(logsumexp(-rbm.free_energy(states(6))),
                                                     abs=1e-9)


def test_exact_log_partition_enumerates_2_to_the_17_states_in_chunks():
    rbm = tiny_rbm(17, 17, std=0.1)         # the 17 hidden units: two chunks of 2¹⁶ states
    every_v = (np.arange(2**17)[:, None] >> np.arange(17)) & 1
    assert exact_log_partition(rbm) == pytest.approx(logsumexp(-rbm.free_energy(every_v)),
                                                     abs=1e-9)


def test_conditionals_match_the_joint_distribution():
    rbm = tiny_rbm()
    E = joint_energies(rbm)                              # rows v, columns h
    H, V = states(4), states(6)
    p_h_given_v = np.exp(-E - logsumexp(-E, axis=1, keepdims=True))
    np.testing.assert_allclose(rbm.hidden_mean(V), p_h_given_v @ H, atol=1e-10)
    p_v_given_h = np.exp(-E - logsumexp(-E, axis=0, keepdims=True))
    np.testing.assert_allclose(rbm.visible_mean(H), p_v_given_h.T @ V, atol=1e-10)


def test_gaussian_visible_free_energy_sums_out_binary_hidden_units():
    rbm = tiny_rbm(3, 4, std=0.5, visible="gaussian")
    v = np.random.default_rng(0).standard_normal((5, 3))
    H = states(4)
    E = np.array([rbm.energy(np.repeat(x[None], 16, 0), H) for x in v])
    np.testing.assert_allclose(rbm.free_energy(v), -logsumexp(-E, axis=1), atol=1e-10)
    # and log Z: Σ_h ∫ e^{−E(v,h)} dv in closed form, checked by quadrature for one unit
    one = tiny_rbm(1, 2, std=0.5, visible="gaussian")
    z = quad(lambda x: np.exp(-one.free_energy(np.array([[x]]))[0]), -30, 30)[0]
    assert exact_log_partition(one) == pytest.approx(np.log(z), abs=1e-8)


def test_gaussian_hidden_free_energy_integrates_out_linear_units():
    rbm = tiny_rbm(6, 2, std=0.5, hidden="gaussian")
    for v in states(6)[[0, 5, 63]]:
        log_z = 0.0
        for j in range(2):                      # the units are independent given v
            def weight(h, j=j):
                hid = np.zeros((1, 2))
                hid[0, j] = h
                return np.exp(-rbm.energy(v[None], hid)[0] - v @ rbm.b_visible)
            log_z += np.log(quad(weight, -40, 40)[0])
        assert rbm.free_energy(v[None])[0] == pytest.approx(-(v @ rbm.b_visible) - log_z,
                                                            abs=1e-8)


# -- the learning signal -------------------------------------------------------------------
def test_cd_k_gradient_approaches_the_exact_gradient_as_k_grows():
    rbm = tiny_rbm()
    data = training_patterns()                    # 20 000 chains, 16 distinct patterns
    exact = exact_gradient(rbm, data)
    errors = {k: distance(rbm.gradient(data, k=k, sample_visible=True, rng=k), exact)
              for k in (1, 2, 5, 25)}
    assert errors[1] > errors[2] > errors[5]
    assert errors[25] < 0.05                      # the sampling noise of 20 000 chains
    assert errors[1] > 10 * errors[25]


def test_cd_with_reconstruction_probabilities_matches_its_definition():
    # CD-1 with p(v|h₀) in place of a sampled v₁ (guide §3.2), averaged over many chains.
    rbm = tiny_rbm(std=0.5)
    data = training_patterns(n_patterns=4, repeat=5000)
    g = rbm.gradient(data, k=1, rng=0)
    W, a, b = rbm.W, rbm.b_visible, rbm.b_hidden
    ph0 = expit(data @ W + b)
    H = states(4)
    # E over h₀ ~ p(h|v₀) of v₁ = σ(a + Wh₀) and its hidden probabilities
    p_h = np.prod(np.where(H[None] == 1, ph0[:, None], 1 - ph0[:, None]), axis=2)   # n × 16
    v1 = expit(H @ W.T + a)                                                          # 16 × 6
    ph1 = expit(v1 @ W + b)
    expected_neg = np.einsum("nk,ki,kj->ij", p_h, v1, ph1) / len(data)
    expected = data.T @ ph0 / len(data) - expected_neg
    np.testing.assert_allclose(g["W"], expected, atol=0.02)


def test_persistent_chains_sample_the_model_so_pcd_gradient_is_unbiased():
    rbm = tiny_rbm()
    data = training_patterns(n_patterns=16, repeat=125)     # 2 000 persistent chains
    exact = exact_gradient(rbm, data)
    for step in range(30):                                  # burn-in of the chains
        rbm.gradient(data, persistent=True, rng=step)
    runs = [rbm.gradient(data, persistent=True, rng=100 + s) for s in range(40)]
    mean = {k: np.mean([g[k] for g in runs], axis=0) for k in exact}
    cd1 = rbm.gradient(data, k=1, sample_visible=True, rng=0)
    assert distance(mean, exact) < 0.05
    assert distance(cd1, exact) > 5 * distance(mean, exact)


def exact_conditional_gradient(rbm, data):
    """∂/∂θ of the mean of log p(pixels | label): the model term of each row is an expectation
    under p(v, h | that row's label), enumerated over the pixel states."""
    W, b = rbm.W, rbm.b_hidden
    model = {"W": 0.0, "b_visible": 0.0, "b_hidden": 0.0}
    for label in data[:, rbm.n_pixels:]:
        V = np.hstack([states(rbm.n_pixels), np.repeat(label[None], 2 ** rbm.n_pixels, 0)])
        log_p = -rbm.free_energy(V)
        p = np.exp(log_p - logsumexp(log_p))
        ph = expit(V @ W + b)
        model["W"] = model["W"] + (V * p[:, None]).T @ ph / len(data)
        model["b_visible"] = model["b_visible"] + p @ V / len(data)
        model["b_hidden"] = model["b_hidden"] + p @ ph / len(data)
    ph_data = expit(data @ W + b)
    return {"W": data.T @ ph_data / len(data) - model["W"],
            "b_visible": data.mean(0) - model["b_visible"],
            "b_hidden": ph_data.mean(0) - model["b_hidden"]}


def test_pcd_with_clamped_labels_follows_the_class_conditional_gradient():
    rbm = tiny_rbm(n_labels=2)
    pixels = training_patterns(n_visible=4, n_patterns=8, repeat=250)     # 2 000 chains
    labels = np.eye(2)[np.repeat(np.arange(8) % 2, 250)]
    data = np.hstack([pixels, labels])
    exact = exact_conditional_gradient(rbm, data)
    for step in range(30):                                  # burn-in of the chains
        rbm.gradient(data, persistent=True, clamp_labels=True, rng=step)
    runs = [rbm.gradient(data, persistent=True, clamp_labels=True, rng=100 + s)
            for s in range(40)]
    for g in runs:                                          # the labels never move
        np.testing.assert_allclose(g["b_visible"][4:], 0, atol=1e-12)
    mean = {k: np.mean([g[k] for g in runs], axis=0) for k in exact}
    assert distance(mean, exact) < 0.05
    assert distance(mean, exact_gradient(rbm, data)) > 0.2    # not the joint's gradient
    cd = rbm.gradient(data, k=1, clamp_labels=True, rng=0)
    np.testing.assert_allclose(cd["b_visible"][4:], 0, atol=1e-12)


def exact_log_likelihood(rbm, data):
    return float(-rbm.free_energy(data).mean() - exact_log_partition(rbm))


def exact_conditional_log_likelihood(rbm, data):
    """Mean of log p(pixels | label) = −F(v) − log Σ_pixels e^{−F(pixels, label)}."""
    total = 0.0
    for row in data:
        V = np.hstack([states(rbm.n_pixels),
                       np.repeat(row[None, rbm.n_pixels:], 2 ** rbm.n_pixels, 0)])
        total += -rbm.free_energy(row[None])[0] - logsumexp(-rbm.free_energy(V))
    return total / len(data)


@pytest.mark.parametrize("gradient, log_likelihood, n_labels", [
    (exact_gradient, exact_log_likelihood, 0),
    (exact_conditional_gradient, exact_conditional_log_likelihood, 2)],
    ids=["joint", "class-conditional"])
def test_exact_gradients_are_central_differences_of_the_exact_log_likelihood(
        gradient, log_likelihood, n_labels):
    """The references the CD and PCD estimates are measured against, checked themselves."""
    rbm = tiny_rbm(n_labels=n_labels)
    rng = np.random.default_rng(4)
    data = (rng.random((7, 6)) < 0.5).astype(float)
    if n_labels:
        data[:, 4:] = np.eye(2)[rng.integers(0, 2, 7)]
    exact = gradient(rbm, data)
    for name, param in rbm.params.items():
        numeric = numerical_gradient(lambda: log_likelihood(rbm, data), param)
        assert relative_error(exact[name], numeric) < 1e-6, name


@pytest.mark.parametrize("persistent", [False, True])
def test_training_raises_the_exact_log_likelihood(persistent):
    data = training_patterns(n_patterns=5, repeat=40, seed=3)
    rbm = RBM(6, 8, backend=get_backend("cpu", "float64"), init_std=0.1, rng=0)
    before = exact_log_likelihood(rbm, data)
    # No momentum: persistent chains must keep up with the weights (Tieleman 2008).
    cd = ContrastiveDivergence(k=1, persistent=persistent, learning_rate=0.05, batch_size=20,
                               weight_cost=0.0, momentum=0.0, final_momentum=0.0, n_chains=100)
    rbm.fit(data, 320, cd=cd, rng=0, monitor=())
    after = exact_log_likelihood(rbm, data)
    best = np.log(1 / 5)                        # five equally likely patterns: −1.61
    assert before < -4.0
    assert after > -2.3                          # most of the way from −4.15 to −1.61
    assert after < best + 1e-9


def test_update_rule_is_momentum_plus_epsilon_times_gradient_minus_weight_cost():
    rbm = tiny_rbm()
    data = training_patterns(n_patterns=4, repeat=5)
    W0, b0 = rbm.W.copy(), rbm.b_hidden.copy()
    rng = np.random.default_rng(0)
    for name in rbm.params:
        rbm.velocity[name][...] = rng.standard_normal(rbm.params[name].shape)
    v0 = {k: v.copy() for k, v in rbm.velocity.items()}
    g = rbm.gradient(data, rng=1)                          # the CD-1 estimate, ε = 1
    cd = ContrastiveDivergence(learning_rate=0.1, weight_cost=0.01, batch_size=len(data))
    rbm.train_step(data, np.arange(len(data)), cd, momentum=0.9, rng=np.random.default_rng(1))
    dW = 0.9 * v0["W"] + 0.1 * (g["W"] - 0.01 * W0)
    np.testing.assert_allclose(rbm.W, W0 + dW, rtol=1e-10)
    db = 0.9 * v0["b_hidden"] + 0.1 * g["b_hidden"]          # no weight cost on biases
    np.testing.assert_allclose(rbm.b_hidden, b0 + db, rtol=1e-10)


class CupyLikeGenerator:
    """A generator with CuPy's reading of ``out`` without ``size``: ONE number broadcast
    into ``out`` (NumPy fills it). Sampling must pass both, or every unit of a batch
    shares one uniform number on a GPU."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def random(self, size=None, dtype=np.float64, out=None):
        y = self.rng.random(() if size is None else size, dtype=dtype)
        if out is not None:
            out[...] = y
            return out
        return y

    def standard_normal(self, size=None, dtype=np.float64, out=None):
        y = self.rng.standard_normal(() if size is None else size, dtype=dtype)
        if out is not None:
            out[...] = y
            return out
        return y


def test_sampling_draws_one_random_number_per_unit_with_cupy_style_generators():
    from nablanet.models.units import Binary, Gaussian
    mean = np.full((200, 50), 0.5, np.float32)
    out = np.empty_like(mean)
    Binary().sample(mean, CupyLikeGenerator(0), out=out)
    assert 0.45 < out.mean() < 0.55 and out.std(axis=1).min() > 0.3
    Gaussian().sample(np.zeros_like(mean), CupyLikeGenerator(0), out=out)
    assert abs(out.std() - 1) < 0.05
    # the chain of a CD-5 step draws through views of the workspace buffers
    rbm = tiny_rbm()
    data = training_patterns(n_patterns=16, repeat=125)
    ws = rbm._workspace(len(data), len(data))
    ws.v_pos[...] = data
    rbm._gradient(ws, 5, False, True, CupyLikeGenerator(2))
    assert distance(rbm.grads, exact_gradient(rbm, data)) < 0.1


class ConstantUniforms:
    """A generator whose every uniform number is ``u``: the edges of the rule "on when u < p"."""

    def __init__(self, u):
        self.u = u

    def random(self, size=None, dtype=np.float64, out=None):
        out = np.empty(size, dtype) if out is None else out
        out[...] = self.u
        return out


def test_binary_units_fire_when_the_uniform_is_below_p_never_at_p_0():
    from nablanet.models.units import Binary
    # Generators draw u from [0, 1): u = 0 must not switch on a unit with p = 0, and the
    # largest u below 1 must switch on a unit with p = 1 (in place and into ``out``).
    for out in (None, np.empty((3, 4))):
        off = Binary().sample(np.zeros((3, 4)), ConstantUniforms(0.0), out=out)
        np.testing.assert_array_equal(off, 0)
        on = Binary().sample(np.ones((3, 4)), ConstantUniforms(np.nextafter(1.0, 0)), out=out)
        np.testing.assert_array_equal(on, 1)


@pytest.mark.parametrize("where", ["in place", "into out", "into a strided view"])
def test_gaussian_units_add_unit_variance_noise_to_their_mean(where):
    from nablanet.models.units import Gaussian
    mean = np.full((4000, 25), 3.0)
    out = {"in place": None, "into out": np.empty_like(mean),
           "into a strided view": np.empty((4000, 50))[:, ::2]}[where]
    s = Gaussian().sample(mean, np.random.default_rng(0), out=out)
    assert s is (mean if out is None else out)
    # 100 000 draws: the standard error of the mean is 0.003, of the std 0.002
    assert abs(s.mean() - 3.0) < 0.02 and abs(s.std() - 1.0) < 0.02


def test_a_softmax_group_draws_one_category_per_row_with_that_rows_probabilities():
    from nablanet.models.units import SoftmaxGroup
    p = np.array([0.6, 0.3, 0.1])
    mean = np.tile([p, p[::-1]], (10_000, 1))              # rows alternate p and reversed p
    s = SoftmaxGroup().sample(mean.copy(), np.random.default_rng(0))
    assert set(np.unique(s)) == {0.0, 1.0} and np.all(s.sum(axis=1) == 1)
    # 10 000 rows of each kind: a frequency's standard error is at most 0.005
    np.testing.assert_allclose(s[0::2].mean(axis=0), p, atol=0.02)
    np.testing.assert_allclose(s[1::2].mean(axis=0), p[::-1], atol=0.02)


def test_softmax_and_logsumexp_are_safe_for_large_inputs():
    from nablanet.models.units import SoftmaxGroup, logsumexp
    z = np.array([[1000.0, 1000.0, -1000.0]])
    np.testing.assert_allclose(SoftmaxGroup().mean(z.copy()), [[0.5, 0.5, 0.0]])
    assert logsumexp(z)[0] == pytest.approx(1000 + np.log(2))


@pytest.mark.parametrize("name", ["binary", "gaussian", "softmax"])
def test_log_partition_of_each_unit_type_sums_its_states_out(name):
    """log Σₛ exp(s z − self_energy(s)) per row: a sum over states (binary, one-hot) or an
    integral (Gaussian), against the closed forms in :mod:`nablanet.models.units`."""
    from nablanet.models.units import UNITS, SoftmaxGroup
    units = SoftmaxGroup() if name == "softmax" else UNITS[name]
    z = np.random.default_rng(0).standard_normal((2, 3))
    if name == "gaussian":
        def one_unit(zj):
            return np.log(quad(lambda s: np.exp(s * zj - units.self_energy(np.array([[s]]))[0]),
                               -40, 40)[0])
        expected = [sum(one_unit(zj) for zj in row) for row in z]
    else:
        S = np.eye(3) if name == "softmax" else states(3)
        expected = [logsumexp(S @ row - units.self_energy(S)) for row in z]
    np.testing.assert_allclose(units.log_partition(z), expected, rtol=1e-8)


def test_pseudo_log_likelihood_estimate_is_unbiased_and_exact_version_matches_definition():
    rbm = tiny_rbm(std=0.5)
    v = states(6)[::5]
    exact = rbm.pseudo_log_likelihood(v, exact=True)
    by_hand = 0.0
    for i in range(6):
        flipped = v.copy()
        flipped[:, i] = 1 - flipped[:, i]
        by_hand += np.log(expit(rbm.free_energy(flipped) - rbm.free_energy(v))).sum()
    assert exact == pytest.approx(by_hand / len(v))
    many = np.repeat(v, 2000, axis=0)
    assert rbm.pseudo_log_likelihood(many, rng=0) == pytest.approx(exact, abs=0.05)


# -- training in float32 on the default backend -----------------------------------------------
def bars(n=600, seed=0):
    """4×4 images of one horizontal or vertical bar: a classic RBM toy set."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 4, 4), np.float32)
    which = rng.integers(0, 8, n)
    for k, w in enumerate(which):
        if w < 4:
            images[k, w, :] = 1
        else:
            images[k, :, w - 4] = 1
    return images.reshape(n, 16)


def test_float32_training_lowers_reconstruction_error_and_is_reproducible():
    x = bars()
    runs = []
    for _ in range(2):
        rbm = RBM(16, 8, rng=0)
        history = rbm.fit(x, 15, cd=ContrastiveDivergence(learning_rate=0.2, batch_size=20),
                          rng=1, monitor=("reconstruction_error", "pseudo_log_likelihood"))
        runs.append(rbm.W.copy())
    assert rbm.W.dtype == np.float32
    errors = history["train_reconstruction_error"]
    assert errors[-1] < 0.5 * errors[0]
    assert history["train_pseudo_log_likelihood"][-1] > history["train_pseudo_log_likelihood"][0]
    np.testing.assert_array_equal(runs[0], runs[1])


def test_sampling_from_a_trained_rbm_gives_bar_images():
    x = bars()
    rbm = RBM(16, 8, rng=0)
    rbm.fit(x, 30, cd=ContrastiveDivergence(k=3, persistent=True, learning_rate=0.1,
                                            batch_size=20), rng=0, monitor=())
    fantasies = rbm.sample(50, steps=200, rng=0)
    assert fantasies.shape == (50, 16)
    # a bar image has exactly 4 bright pixels all in one row or one column
    images = fantasies.reshape(50, 4, 4) > 0.5
    is_bar = [(img.sum() == 4) and (img.all(axis=0).any() or img.all(axis=1).any())
              for img in images]
    assert np.mean(is_bar) > 0.7


def test_label_units_form_a_softmax_group_and_can_be_clamped():
    rbm = RBM(8, 5, n_labels=3, rng=0, init_std=1.0)
    p = rbm.visible_mean(np.random.default_rng(0).random((4, 5)).astype(np.float32))
    np.testing.assert_allclose(p[:, 5:].sum(axis=1), 1, rtol=1e-6)
    clamp = np.eye(3, dtype=np.float32)[[2, 0]]
    v, _ = rbm.gibbs(np.zeros((2, 8), np.float32), 5, np.random.default_rng(0), labels=clamp)
    np.testing.assert_array_equal(v[:, 5:], clamp)


def test_label_gain_is_gibbs_sampling_with_the_label_weights_scaled():
    rbm = tiny_rbm(n_visible=8, n_hidden=5, std=1.0, n_labels=3)
    W = rbm.W.copy()
    W[5:] *= 4.0
    scaled = tiny_rbm(n_visible=8, n_hidden=5, n_labels=3)
    scaled.set_params(W=W, b_visible=rbm.b_visible, b_hidden=rbm.b_hidden)
    start = (np.random.default_rng(0).random((6, 8)) < 0.5).astype(float)
    clamp = np.eye(3)[[0, 1, 2, 0, 1, 2]]
    v, p = rbm.gibbs(start, 7, np.random.default_rng(1), labels=clamp, label_gain=4.0)
    v_scaled, p_scaled = scaled.gibbs(start, 7, np.random.default_rng(1), labels=clamp)
    np.testing.assert_array_equal(v, v_scaled)
    np.testing.assert_allclose(p[:, :5], p_scaled[:, :5], rtol=1e-12)   # the pixels' E[v | h]
    plain, _ = rbm.gibbs(start, 7, np.random.default_rng(1), labels=clamp)
    assert not np.array_equal(plain, v)
    with pytest.raises(ConfigError, match="clamped labels"):
        rbm.gibbs(start, 1, np.random.default_rng(1), label_gain=2.0)


# -- bad input --------------------------------------------------------------------------------
def test_non_binary_data_needs_binarize_or_probabilities():
    rbm = RBM(4, 2, rng=0)
    x = np.array([[0.0, 0.3, 1.0, 0.7]] * 10, np.float32)
    with pytest.raises(DataError, match="binarize=True"):
        rbm.fit(x, 1)
    assert set(np.unique(rbm.prepare(x, binarize=True))) == {0.0, 1.0}
    assert set(np.unique(rbm.prepare(x, binarize="sample", rng=0))) <= {0.0, 1.0}
    np.testing.assert_array_equal(rbm.prepare(x, probabilities=True), x)
    rbm.fit(x, 1, probabilities=True, cd=ContrastiveDivergence(batch_size=5))
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        rbm.fit(2 * x, 1, probabilities=True)
    with pytest.raises(ConfigError):
        rbm.prepare(x, binarize=True, probabilities=True)
    with pytest.raises(ConfigError):
        rbm.prepare(x, binarize="round")


def test_inference_methods_check_the_shape_of_their_input():
    # A single example (1-D) used to broadcast into n_visible rows of hidden
    # probabilities; a wrong width failed inside matmul.
    rbm = RBM(4, 2, rng=0)
    x = (np.random.default_rng(0).random((5, 4)) > 0.5).astype(np.float32)
    for method in (rbm.transform, rbm.reconstruct, rbm.reconstruction_error,
                   rbm.free_energy, rbm.pseudo_log_likelihood, rbm.gradient):
        with pytest.raises(DataError, match=r"one example v is v\[None, :\]"):
            method(x[0])
        with pytest.raises(DataError, match=r"needs an \(n, 4\) array, got shape \(5, 3\)"):
            method(x[:, :3])
    with pytest.raises(DataError, match="4 visible"):
        rbm.energy(x[:, :3], np.zeros((5, 2)))
    # nested lists are arrays too
    rbm.fit(x.tolist(), 1)
    np.testing.assert_array_equal(rbm.transform(x.tolist()), rbm.transform(x))


def test_wrong_shapes_and_non_finite_data_are_data_errors():
    rbm = RBM(4, 2, rng=0)
    with pytest.raises(DataError, match="4 visible"):
        rbm.fit(np.zeros((3, 5), np.float32), 1)
    with pytest.raises(DataError, match="NaN"):
        rbm.fit(np.full((3, 4), np.nan, np.float32), 1)
    # Gaussian visible units accept any finite values
    RBM(4, 2, visible="gaussian", rng=0).fit(
        np.random.default_rng(0).standard_normal((10, 4)), 1, monitor=())


@pytest.mark.parametrize("kwargs, match", [
    (dict(k=0), "k ≥ 1"), (dict(learning_rate=0), "learning rate ε"),
    (dict(weight_cost=-1), "weight cost η"), (dict(momentum=1.0), "momentum ν"),
    (dict(final_momentum=-0.1), "final_momentum ν"), (dict(batch_size=0), "batch size"),
    (dict(n_chains=0), "n_chains")])
def test_invalid_training_settings_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ContrastiveDivergence(**kwargs)


def test_momentum_switches_to_its_final_value_after_momentum_switch_epochs():
    cd = ContrastiveDivergence(momentum=0.5, final_momentum=0.9, momentum_switch=2,
                               batch_size=20)
    rbm = RBM(16, 8, rng=0)
    assert rbm.fit(bars(100), 3, cd=cd, rng=0, monitor=())["momentum"] == [0.5, 0.5, 0.9]
    # counted over the RBM's whole training, not restarted by a second fit
    assert rbm.fit(bars(100), 1, cd=cd, rng=0, monitor=())["momentum"] == [0.9]


def test_chunked_transform_and_reconstruction_error_cover_every_row():
    rbm = tiny_rbm()
    x = states(6)                                          # 64 rows, chunks of 10
    np.testing.assert_allclose(rbm.transform(x, chunk_size=10), rbm.hidden_mean(x), rtol=1e-12)
    assert rbm.reconstruction_error(x, chunk_size=10) == pytest.approx(
        rbm.reconstruction_error(x), rel=1e-12)
    d = rbm.visible_mean(rbm.hidden_mean(x)) - x
    assert rbm.reconstruction_error(x) == pytest.approx((d * d).sum(axis=1).mean(), rel=1e-12)


def test_diverging_training_is_a_divergence_error_naming_the_learning_rate():
    x = np.random.default_rng(0).standard_normal((40, 4)) * 1e3
    rbm = RBM(4, 3, visible="gaussian", rng=0)
    with np.errstate(all="ignore"), pytest.raises(DivergenceError,
                                                  match=r"non-finite.*learning rate \(ε = 1000000\.0\)"):
        rbm.fit(x, 50, cd=ContrastiveDivergence(learning_rate=1e6, batch_size=10), rng=0,
                monitor=())


def test_invalid_architectures_are_config_errors():
    with pytest.raises(ConfigError):
        RBM(0, 3)
    with pytest.raises(ConfigError, match="visible units"):
        RBM(4, 3, visible="poisson")
    with pytest.raises(ConfigError):
        RBM(4, 3, n_labels=4)
    with pytest.raises(ConfigError):
        RBM(4, 3).set_params(W=np.zeros((3, 4)))
