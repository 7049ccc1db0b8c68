"""Up-down fine-tuning of a generative DBN (HOT06 §5): untied weights, the delta rules
checked against numerical gradients, what it improves, persistence and bad settings."""
import numpy as np
import pytest

from nablanet import ConfigError, DivergenceError, ModelFileError
from nablanet.backend import get_backend
from nablanet.gradcheck import numerical_gradient, relative_error
from nablanet.models.dbn import DBN
from nablanet.models.persistence import load_rbm, save_rbm
from nablanet.models.rbm import ContrastiveDivergence
from nablanet.models import updown
from nablanet.models.updown import UpDown, delta_rule
from test_dbn import prototypes_data
from test_rbm import ConstantUniforms

F64 = get_backend("cpu", "float64")


def pretrained(seed=0, backend=F64, sizes=(32, 24, 16)):
    x, y, protos = prototypes_data(n=600, n_classes=4, n_visible=32, noise=0.05, seed=seed)
    dbn = DBN(sizes, n_labels=4, backend=backend, rng=seed)
    dbn.pretrain(x, 5, labels=y, cd=ContrastiveDivergence(learning_rate=0.1, batch_size=20),
                 rng=seed)
    return dbn, x, y, protos


def clamped_generation_accuracy(dbn, protos, rng=1):
    """Fraction of label-clamped samples nearest to their own class's prototype."""
    labels = np.repeat(np.arange(len(protos)), 50)
    images = dbn.generate(labels, gibbs_steps=200, rng=rng)
    nearest = ((images[:, None, :] - protos[None]) ** 2).sum(-1).argmin(axis=1)
    return (nearest == labels).mean()


def test_delta_rule_is_the_gradient_of_the_log_likelihood_of_the_targets():
    rng = np.random.default_rng(0)
    inputs = (rng.random((7, 5)) < 0.5).astype(float)
    targets = (rng.random((7, 4)) < 0.5).astype(float)
    W, b = rng.standard_normal((5, 4)), rng.standard_normal(4)

    def log_likelihood():
        p = 1 / (1 + np.exp(-(inputs @ W + b)))
        return float((targets * np.log(p) + (1 - targets) * np.log(1 - p)).sum())

    dW, db = delta_rule(inputs, targets, W, b)
    assert relative_error(dW, numerical_gradient(log_likelihood, W)) < 1e-6
    assert relative_error(db, numerical_gradient(log_likelihood, b)) < 1e-6


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def reference_step(dbn, data, onehot, k, rule):
    """HOT06's up-down step written out from its equations (module docstring of
    :mod:`nablanet.models.updown`) for a generator whose uniforms are all ½, so every
    binary draw is "on" exactly when its probability exceeds ½. Returns the new
    (recognition W, c), (generative G, b) of each lower layer and the top RBM's (W, a, b)."""
    def on(p):
        return (p > 0.5).astype(float)

    lower, top = dbn.rbms[:-1], dbn.rbms[-1]
    n_pen = top.n_pixels
    wake = [data]                                   # sᵢ₊₁ ~ σ(sᵢRᵢ + cᵢ)
    for rbm in lower:
        wake.append(on(sigmoid(wake[-1] @ rbm.W + rbm.b_hidden)))
    v_pos = np.hstack([wake[-1], onehot])
    h_pos = sigmoid(v_pos @ top.W + top.b_hidden)
    h = on(h_pos)
    for _ in range(k):                              # labels stay softmax probabilities
        z = h @ top.W.T + top.b_visible
        labels = np.exp(z[:, n_pen:]) / np.exp(z[:, n_pen:]).sum(axis=1, keepdims=True)
        v_neg = np.hstack([on(sigmoid(z[:, :n_pen])), labels])
        h_neg = sigmoid(v_neg @ top.W + top.b_hidden)
        h = on(h_neg)
    dream = [v_neg[:, :n_pen]]                      # dᵢ ~ σ(dᵢ₊₁Gᵢ + bᵢ), probabilities at i = 0
    for i in reversed(range(len(lower))):
        p = sigmoid(dream[-1] @ dbn.generative[i]["W"] + dbn.generative[i]["b"])
        dream.append(p if i == 0 else on(p))
    dream.reverse()
    eps, n, cost = rule.learning_rate, len(data), rule.weight_cost
    recognition, generative = [], []
    for i, rbm in enumerate(lower):
        G, b = dbn.generative[i]["W"], dbn.generative[i]["b"]
        error = wake[i] - sigmoid(wake[i + 1] @ G + b)
        generative.append((G + eps * (wake[i + 1].T @ error / n - cost * G),
                           b + eps * error.mean(axis=0)))
        error = dream[i + 1] - sigmoid(dream[i] @ rbm.W + rbm.b_hidden)
        recognition.append((rbm.W + eps * (dream[i].T @ error / n - cost * rbm.W),
                            rbm.b_hidden + eps * error.mean(axis=0)))
    top_new = (top.W + eps * ((v_pos.T @ h_pos - v_neg.T @ h_neg) / n - cost * top.W),
               top.b_visible + eps * (v_pos - v_neg).mean(axis=0),
               top.b_hidden + eps * (h_pos - h_neg).mean(axis=0))
    return recognition, generative, top_new


def test_one_step_follows_the_wake_top_level_cd_sleep_and_delta_rule_equations():
    dbn = DBN((7, 6, 8, 6), n_labels=3, backend=F64, init_std=1.0, rng=0)
    rng = np.random.default_rng(1)
    for rbm in dbn.rbms:
        rbm.set_params(b_visible=rng.standard_normal(rbm.n_visible),
                       b_hidden=rng.standard_normal(rbm.n_hidden))
    dbn.untie()
    for g in dbn.generative:                        # generation and recognition differ
        g["W"] += rng.standard_normal(g["W"].shape)
        g["b"] += rng.standard_normal(g["b"].shape)
    data = (rng.random((20, 7)) < 0.5).astype(float)
    onehot = np.eye(3)[rng.integers(0, 3, 20)]
    rule = UpDown(learning_rate=0.1, k=2, weight_cost=0.01)
    recognition, generative, top = reference_step(dbn, data, onehot, 2, rule)
    updown._step(dbn, data, onehot, 2, rule, ConstantUniforms(0.5))
    for rbm, (W, c) in zip(dbn.rbms, recognition):
        np.testing.assert_allclose(rbm.W, W, rtol=1e-12)
        np.testing.assert_allclose(rbm.b_hidden, c, rtol=1e-12)
    for g, (G, b) in zip(dbn.generative, generative):
        np.testing.assert_allclose(g["W"], G, rtol=1e-12)
        np.testing.assert_allclose(g["b"], b, rtol=1e-12)
    for new, expected in zip((dbn.rbms[-1].W, dbn.rbms[-1].b_visible, dbn.rbms[-1].b_hidden),
                             top):
        np.testing.assert_allclose(new, expected, rtol=1e-12)


def test_each_epoch_visits_every_image_once_in_a_new_order_with_the_scheduled_k(monkeypatch):
    dbn, *_ = pretrained()
    rng = np.random.default_rng(0)
    x = rng.random((45, 32))                        # grey levels: used as probabilities
    y = rng.integers(0, 4, 45)
    row_of = {tuple(r): i for i, r in enumerate(x)}
    calls = []
    monkeypatch.setattr(updown, "_step", lambda dbn, data, onehot, k, rule, draw:
                        calls.append(([row_of[tuple(r)] for r in data], onehot, k)))
    seen = []
    rule = UpDown(k=1, k_every=1, k_step=1, k_max=3, batch_size=10)
    history = dbn.up_down(x, y, 3, rule=rule, rng=0, callback=seen.append)
    assert [row["k"] for row in history.rows] == [1, 2, 3] and seen == history.rows
    orders = []
    for epoch in range(3):
        batches = calls[5 * epoch:5 * epoch + 5]
        assert [len(rows) for rows, *_ in batches] == [10, 10, 10, 10, 5]
        assert {k for *_, k in batches} == {epoch + 1}
        order = [i for rows, *_ in batches for i in rows]
        assert sorted(order) == list(range(45))
        for rows, onehot, _ in batches:
            np.testing.assert_array_equal(onehot, np.eye(4)[y[rows]])
        orders.append(order)
    assert orders[0] != list(range(45)) and orders[0] != orders[1]


def test_non_finite_generative_weights_stop_up_down(monkeypatch):
    dbn, x, y, _ = pretrained()

    def step(dbn, *args):
        dbn.generative[0]["W"][0, 0] = np.inf
    monkeypatch.setattr(updown, "_step", step)
    with pytest.raises(DivergenceError, match="non-finite in epoch 1"):
        dbn.up_down(x, y, 1, rng=0)


def test_untying_changes_nothing_until_the_weights_are_trained_apart():
    dbn, *_ = pretrained()
    labels = np.arange(4).repeat(3)
    before = dbn.generate(labels, gibbs_steps=20, rng=3)
    h = np.random.default_rng(0).random((5, 24))
    down_before = dbn.down(h, 1)
    dbn.untie()
    assert [g["W"].shape for g in dbn.generative] == [(24, 32)]
    np.testing.assert_array_equal(dbn.generate(labels, gibbs_steps=20, rng=3), before)
    np.testing.assert_allclose(dbn.down(h, 1), down_before, rtol=1e-12)
    dbn.generative[0]["W"][:] = 0                       # a copy: the RBM keeps its W
    assert np.abs(dbn.rbms[0].W).sum() > 0
    # and the top-down pass now uses the generative weights: σ(0·h + b) on every row
    expected = 1 / (1 + np.exp(-dbn.generative[0]["b"]))
    np.testing.assert_allclose(dbn.down(h, 1), np.tile(expected, (5, 1)), rtol=1e-12)


def test_up_down_makes_label_clamped_chains_generate_the_clamped_class():
    dbn, x, y, protos = pretrained(seed=0)
    before = clamped_generation_accuracy(dbn, protos)
    recognition = dbn.rbms[0].W.copy()
    history = dbn.up_down(x, y, 20, rule=UpDown(learning_rate=0.05, k=3, batch_size=20),
                          rng=0)
    after = clamped_generation_accuracy(dbn, protos)
    assert before < 0.6 and after > before + 0.15, (before, after)
    assert len(history) == 20 and history.rows[0]["k"] == 3
    # recognition and generation were trained apart: Wᵀ no longer equals G
    assert not np.allclose(dbn.rbms[0].W, recognition)
    assert not np.allclose(dbn.rbms[0].W.T, dbn.generative[0]["W"])
    assert (dbn.classify(x) == y).mean() > 0.95


def test_same_seed_same_fine_tuned_model():
    runs = []
    for _ in range(2):
        dbn, x, y, _ = pretrained(seed=1, sizes=(32, 24, 20, 16))
        dbn.up_down(x, y, 2, rule=UpDown(batch_size=50), rng=7)
        runs.append(dbn)
    assert [g["W"].shape for g in runs[0].generative] == [(24, 32), (20, 24)]
    for a, b in zip(runs[0].generative + [r.params for r in runs[0].rbms],
                    runs[1].generative + [r.params for r in runs[1].rbms]):
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])


def test_k_schedule_and_validation_rows():
    rule = UpDown(k=3, k_every=2, k_step=3, k_max=10)
    assert [rule.k_at(e) for e in range(9)] == [3, 3, 6, 6, 9, 9, 10, 10, 10]
    assert UpDown(k=5).k_at(100) == 5
    dbn, x, y, _ = pretrained()
    from nablanet.data import Dataset
    rows = dbn.up_down(x, y, 1, rule=UpDown(batch_size=100), validation=Dataset(x, y),
                       rng=0).rows
    assert 0 <= rows[0]["validation_error"] < 0.1


def test_an_untied_dbn_survives_saving_and_loading(tmp_path):
    dbn, x, y, _ = pretrained(backend=get_backend("cpu", "float32"))
    dbn.up_down(x, y, 1, rule=UpDown(batch_size=100), rng=0)
    save_rbm(tmp_path / "dbn", dbn)
    loaded, _ = load_rbm(tmp_path / "dbn")
    for a, b in zip(dbn.generative, loaded.generative):
        np.testing.assert_array_equal(a["W"], b["W"])
        np.testing.assert_array_equal(a["b"], b["b"])
    labels = np.arange(4)
    np.testing.assert_array_equal(loaded.generate(labels, gibbs_steps=5, rng=2),
                                  dbn.generate(labels, gibbs_steps=5, rng=2))
    # a tied DBN's file has no generative tensors and loads tied
    tied, *_ = pretrained(backend=get_backend("cpu", "float32"))
    save_rbm(tmp_path / "tied", tied)
    assert load_rbm(tmp_path / "tied")[0].generative is None


def test_a_file_claiming_untied_weights_it_lacks_is_rejected(tmp_path):
    import json
    tied, *_ = pretrained(backend=get_backend("cpu", "float32"))
    save_rbm(tmp_path / "dbn", tied)
    config = tmp_path / "dbn" / "config.json"
    data = json.loads(config.read_text())
    data["untied"] = True
    config.write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match="missing tensor gen0"):
        load_rbm(tmp_path / "dbn")
    data["untied"] = "yes"
    config.write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match="'untied' must be true or false"):
        load_rbm(tmp_path / "dbn")


def test_bad_settings_and_models_are_config_errors():
    for bad in ({"learning_rate": 0}, {"k": 0}, {"k": 12, "k_max": 10}, {"batch_size": 0},
                {"weight_cost": -1}, {"k_every": -1}, {"k_step": -1}):
        with pytest.raises(ConfigError):
            UpDown(**bad)
    assert UpDown(k=10, k_max=10).k_at(5) == 10
    x = np.zeros((10, 32), np.float32)
    with pytest.raises(ConfigError, match="label units"):
        DBN([32, 16, 8]).up_down(x, np.zeros(10, int), 1)
    with pytest.raises(ConfigError, match="at least one layer below the top RBM"):
        DBN([32, 16], n_labels=4).up_down(x, np.zeros(10, int), 1)
    for units in ({"visible": "gaussian"}, {"top_hidden": "gaussian"}):
        with pytest.raises(ConfigError, match="needs binary units"):
            DBN([32, 16, 8], n_labels=4, **units).up_down(x, np.zeros(10, int), 1)
    dbn, x, y, _ = pretrained()
    dbn.untie()
    with pytest.raises(ConfigError, match="untied"):
        dbn.pretrain(x, 1, labels=y)
