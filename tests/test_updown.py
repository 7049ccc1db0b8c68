"""Up-down fine-tuning of a generative DBN (HOT06 §5): untied weights, the delta rules
checked against numerical gradients, what it improves, persistence and bad settings."""
import numpy as np
import pytest

from nablanet import ConfigError, ModelFileError
from nablanet.backend import get_backend
from nablanet.gradcheck import numerical_gradient, relative_error
from nablanet.models.dbn import DBN
from nablanet.models.persistence import load_rbm, save_rbm
from nablanet.models.rbm import ContrastiveDivergence
from nablanet.models.updown import UpDown, delta_rule
from test_dbn import prototypes_data

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
    with pytest.raises(ModelFileError, match="untied"):
        load_rbm(tmp_path / "dbn")


def test_bad_settings_and_models_are_config_errors():
    for bad in ({"learning_rate": 0}, {"k": 0}, {"k": 12, "k_max": 10}, {"batch_size": 0},
                {"weight_cost": -1}, {"k_every": -1}):
        with pytest.raises(ConfigError):
            UpDown(**bad)
    x = np.zeros((10, 32), np.float32)
    with pytest.raises(ConfigError, match="label units"):
        DBN([32, 16, 8]).up_down(x, np.zeros(10, int), 1)
    dbn, x, y, _ = pretrained()
    dbn.untie()
    with pytest.raises(ConfigError, match="untied"):
        dbn.pretrain(x, 1, labels=y)
