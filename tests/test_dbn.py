"""Deep belief nets: greedy stacking, label units and clamped generation, unrolling and
fine-tuning with the ordinary Trainer, and the errors for stacks that do not fit."""
import numpy as np
import pytest

from nablanet import ConfigError, DataError
from nablanet.data import Dataset
from nablanet.layers import Dense, Sigmoid, Softmax
from nablanet.models.dbn import DBN
from nablanet.models.rbm import RBM, ContrastiveDivergence
from test_training import assert_same_params, params, without_timing

CD = ContrastiveDivergence(learning_rate=0.1, batch_size=20)


def prototypes_data(n=800, n_classes=4, n_visible=32, noise=0.05, seed=0):
    """Binary images: one random prototype per class with ``noise`` of the pixels flipped."""
    rng = np.random.default_rng(seed)
    protos = rng.random((n_classes, n_visible)) < 0.5
    y = rng.integers(0, n_classes, n)
    x = protos[y] ^ (rng.random((n, n_visible)) < noise)
    return x.astype(np.float32), y, protos.astype(np.float32)


def test_stacking_rbms_whose_sizes_do_not_match_is_a_config_error():
    with pytest.raises(ConfigError, match="sizes must match"):
        DBN.from_rbms([RBM(20, 10, rng=0), RBM(12, 6, rng=0)])
    with pytest.raises(ConfigError, match="only the top"):
        DBN.from_rbms([RBM(20, 10, n_labels=2, rng=0), RBM(10, 6, rng=0)])
    with pytest.raises(ConfigError):
        DBN([784])
    with pytest.raises(ConfigError):
        DBN([784, 0, 10])
    with pytest.raises(ConfigError, match="2 values for 3 layers"):
        DBN([8, 6, 4, 2]).pretrain(np.zeros((4, 8), np.float32), epochs=[1, 1])
    ok = DBN.from_rbms([RBM(20, 10, rng=0), RBM(10 + 3, 6, n_labels=3, rng=0)])
    assert ok.sizes == [20, 10, 6] and ok.n_labels == 3


def test_each_layer_trains_on_the_hidden_probabilities_of_the_layer_below(monkeypatch):
    seen = []
    original = RBM.fit

    def recording_fit(self, x, *args, **kwargs):
        seen.append(np.array(x))
        return original(self, x, *args, **kwargs)

    monkeypatch.setattr(RBM, "fit", recording_fit)
    x, _, _ = prototypes_data(200)
    dbn = DBN([32, 16, 8], rng=0)
    dbn.pretrain(x, 2, cd=CD, rng=0)
    np.testing.assert_array_equal(seen[0], x)
    np.testing.assert_allclose(seen[1], dbn.rbms[0].transform(x), rtol=1e-6)
    assert dbn.rbms[0].epochs_trained == 2 and dbn.rbms[1].epochs_trained == 2


def test_unrolled_net_computes_the_stack_s_upward_probabilities():
    x, _, _ = prototypes_data(100)
    dbn = DBN([32, 16, 8], rng=0)
    dbn.pretrain(x, 1, cd=CD, rng=0)
    features = dbn.unroll(None)
    assert [type(layer) for layer in features.layers] == [Dense, Sigmoid, Dense, Sigmoid]
    np.testing.assert_allclose(features.predict(x), dbn.up(x), rtol=1e-5, atol=1e-6)
    classifier = dbn.unroll(4, rng=0)
    assert isinstance(classifier.layers[-1], Softmax) and classifier.output_shape == (4,)
    # the net holds copies: training it leaves the generative weights alone
    classifier.layers[0].params["W"][...] = 0
    assert np.abs(dbn.rbms[0].W).max() > 0


def test_pretrained_then_fine_tuned_dbn_classifies_with_the_trainer():
    x, y, _ = prototypes_data(1000, noise=0.15)
    dbn = DBN([32, 24, 16], rng=0)
    dbn.pretrain(x, 5, cd=CD, rng=0)
    net, history = dbn.fine_tune(Dataset(x[:800], y[:800]), 5,
                                 validation=Dataset(x[800:], y[800:]), eta=0.1, rng=0)
    assert history["validation_accuracy"][-1] > 0.95
    assert (net.classify(x[800:]) == y[800:]).mean() == history["validation_accuracy"][-1]


def test_generative_dbn_classifies_by_free_energy_and_generates_the_clamped_class():
    x, y, protos = prototypes_data(1200, noise=0.05)
    dbn = DBN([32, 24, 24], n_labels=4, rng=0)
    dbn.pretrain(x, 15, labels=y, cd=CD, rng=0)
    assert (dbn.classify(x[:400]) == y[:400]).mean() > 0.95
    labels = np.repeat(np.arange(4), 25)
    images = dbn.generate(labels, gibbs_steps=200, rng=0)
    assert images.shape == (100, 32) and 0 <= images.min() and images.max() <= 1
    # each generated image is nearest to the prototype of its clamped class
    nearest = np.abs(images[:, None, :] - protos[None]).sum(axis=2).argmin(axis=1)
    assert (nearest == labels).mean() > 0.9
    # a start from the label alone (its weights counted 3 times), then the model's own chain
    guided = dbn.generate(labels, gibbs_steps=10, label_gain=3.0, gain_steps=50, rng=0)
    nearest = np.abs(guided[:, None, :] - protos[None]).sum(axis=2).argmin(axis=1)
    assert (nearest == labels).mean() > 0.9 and not np.allclose(guided, images)
    with pytest.raises(ConfigError, match="at least one Gibbs step"):
        dbn.generate(labels, gibbs_steps=0)
    with pytest.raises(ConfigError, match="label_gain > 0"):
        dbn.generate(labels, label_gain=0.0, gain_steps=5)
    for gain in (float("nan"), float("inf")):      # NaN passed "<= 0" and gave blank digits
        with pytest.raises(ConfigError, match="finite label_gain > 0"):
            dbn.generate(labels, label_gain=gain, gain_steps=5)


def test_label_free_energy_is_the_top_rbms_free_energy_with_that_label_on():
    x, y, _ = prototypes_data(200)
    dbn = DBN([32, 12, 10], n_labels=4, rng=0)
    dbn.pretrain(x, 2, labels=y, cd=CD, rng=0)
    top = dbn.rbms[-1]
    top.set_params(b_visible=np.r_[top.b_visible[:12], [0.5, -1.0, 2.0, 0.0]])  # label biases
    h = dbn.up(x[:5])
    expected = np.stack([top.free_energy(np.hstack([h, np.tile(np.eye(4)[k], (5, 1))]))
                         for k in range(4)], axis=1)
    np.testing.assert_allclose(dbn.label_free_energies(x[:5]), expected, rtol=1e-5, atol=1e-5)


def test_label_errors():
    x, y, _ = prototypes_data(40)
    dbn = DBN([32, 8, 8], n_labels=4, rng=0)
    with pytest.raises(DataError, match="needs the labels"):
        dbn.pretrain(x, 1)
    with pytest.raises(DataError, match=r"labels must lie in \[0, 4\), got \[0, 4\]"):
        dbn.pretrain(x, 1, labels=np.where(np.arange(40) == 3, 4, y))   # one label = K
    with pytest.raises(DataError, match=r"labels must be integers in \[0, 4\), got 7$"):
        dbn.generate(np.repeat([7], 10))        # named once, as --label 7 --n 10 asks
    with pytest.raises(DataError, match=r"labels must be integers in \[0, 4\), got -1, 5$"):
        dbn.generate([5, 1, -1, 5])
    # a non-integer label is named once, not the whole array; 3.0 is label 3
    with pytest.raises(DataError, match=r"^labels: class labels must be integers, got 2.5 at row 0$"):
        dbn.generate(np.full(1000, 2.5))
    with pytest.raises(DataError, match=r"^labels: class labels must be integers, got dtype <U1$"):
        dbn.generate(["a"])
    assert dbn.generate([3.0], gibbs_steps=1).shape == (1, 32)
    with pytest.raises(ConfigError, match="label units"):
        DBN([32, 8]).generate([1])


def test_same_seed_same_pretrained_generated_and_fine_tuned_dbn():
    x, y, _ = prototypes_data(n=120, n_classes=3, n_visible=16)
    runs = []
    for _ in range(2):
        dbn = DBN([16, 12, 8], n_labels=3, rng=1)
        dbn.pretrain(x, 2, labels=y, cd=CD, rng=2)
        images = dbn.generate(np.arange(3), gibbs_steps=5, rng=3)
        net, history = dbn.fine_tune(Dataset(x, y), 2, n_outputs=3, batch_size=20, rng=4)
        runs.append(([p for rbm in dbn.rbms for p in rbm.params.values()] + [images]
                     + params(net), without_timing(history.rows)))
    assert_same_params(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]


@pytest.mark.parametrize("flags, match", [
    (["--label-gain", "nan"], r"finite label_gain > 0 and steps ≥ 0, got label_gain=nan,"),
    (["--label-gain", "0"], r"got label_gain=0.0,"),
    (["--gain-steps", "0", "--gibbs-steps", "0"], r"needs at least one Gibbs step$"),
    (["--gibbs-steps", "-1"], r"steps ≥ 0, .*gibbs_steps=-1$"),
    (["--n", "0"], r"--n must be at least 1, got 0$"),
])
def test_generate_command_refuses_sampler_settings_before_it_starts(capsys, tmp_path, flags,
                                                                     match):
    # NaN gave a PNG of blank digits and exit 0; the others failed only after the
    # "generating ..." line, so stderr held two lines
    from nablanet.models.persistence import save_rbm
    from test_cli_data import assert_one_error_line, nablanet

    save_rbm(tmp_path / "dbn", DBN([32, 8, 8], n_labels=4, rng=0))
    assert_one_error_line(nablanet(capsys, "generate", tmp_path / "dbn", "--label", "1",
                                   *flags), match)
    assert not list(tmp_path.glob("dbn/*.png"))


def test_generate_command_needs_a_label_for_a_dbn(capsys, tmp_path):
    from nablanet.models.persistence import save_rbm
    from test_cli_data import assert_one_error_line, nablanet

    save_rbm(tmp_path / "dbn", DBN([32, 8, 8], n_labels=4, rng=0))
    assert_one_error_line(nablanet(capsys, "generate", tmp_path / "dbn"),
                          r"--label K is required to generate digits from a DBN$")
    # the other kind's flag was ignored without a word
    assert_one_error_line(nablanet(capsys, "generate", tmp_path / "dbn", "--label", 1,
                                   "--prime", "ROMEO:"), r"--prime belongs to a character")


def test_generate_command_refuses_a_label_beyond_the_label_units(capsys, tmp_path):
    from nablanet.models.persistence import save_rbm
    from test_cli_data import assert_one_error_line, nablanet

    x, y, _ = prototypes_data(40)
    dbn = DBN([32, 8, 8], n_labels=4, rng=0)
    dbn.pretrain(x, 1, labels=y, cd=CD, rng=0)
    save_rbm(tmp_path / "dbn", dbn)
    result = nablanet(capsys, "generate", tmp_path / "dbn", "--label", "1", "12", "--n", "5")
    # one line naming 12 once, and no "generating 10 digits" announced before it
    assert_one_error_line(result, r"labels must be integers in \[0, 4\), got 12$")
    assert not list(tmp_path.glob("dbn/*.png"))


def test_generate_command_passes_its_flags_to_the_sampler_and_the_grid(capsys, tmp_path,
                                                                       monkeypatch):
    from nablanet.models import plots_rbm
    from nablanet.models.persistence import save_rbm
    from test_cli_data import nablanet

    save_rbm(tmp_path / "run" / "dbn", DBN([32, 8, 8], n_labels=4, rng=0))
    sampled, grids = [], []

    def generate(self, labels, **kwargs):
        sampled.append((labels.tolist(), kwargs))
        return np.zeros((len(labels), 32))
    monkeypatch.setattr(DBN, "generate", generate)
    monkeypatch.setattr(plots_rbm, "save_grid",
                        lambda path, images, **kwargs: grids.append((path, len(images), kwargs)))
    result = nablanet(capsys, "generate", tmp_path / "run", "--label", "3", "1", "-n", "3",
                      "--gibbs-steps", "7", "--gain-steps", "5", "--label-gain", "2.5",
                      "--seed", "9", "--quiet")
    assert result.code == 0, result.err
    # each label's digits side by side: one row per label, --n columns
    assert sampled == [([3, 3, 3, 1, 1, 1], {"gibbs_steps": 7, "label_gain": 2.5, "gain_steps": 5,
                                             "rng": 9})]
    out = tmp_path / "run" / "generated-3-1.png"
    assert grids == [(out, 6, {"n_cols": 3, "row_labels": ["3", "1"],
                               "title": "label clamped to 3, 1"})]
    assert result.out == f"{out}\n"
