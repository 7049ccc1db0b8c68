"""TrainConfig: defaults, TOML reading and its errors, flag merging, and the builders."""
import numpy as np
import pytest

from nablanet.config import (TrainConfig, build_callbacks, build_constraints, build_net,
                             build_optimizer, build_penalties, build_trainer, load_splits)
from nablanet.errors import ConfigError, DataError
from nablanet.layers import Dropout, Sigmoid, Softmax
from nablanet.optimizers import Momentum
from nablanet.regularizers import L1, L2, MaxNorm
from nablanet.runs import RunDir
from nablanet.training import CosineDecay, EarlyStopping, HalveOnPlateau, StepDecay
from test_cli_data import write_blocks_idx


def write(tmp_path, text, name="c.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_are_the_make_run_network():
    c = TrainConfig().resolve(784)
    assert c.sizes == [784, 100, 10] and c.activation == "sigmoid" and c.output == "sigmoid"
    assert (c.cost, c.eta, c.lmbda, c.batch_size, c.epochs) == ("cross-entropy", 0.5, 5.0, 10, 30)
    assert (c.init, c.seed, c.dtype, c.device) == ("normal-scaled", 0, "float32", "cpu")
    assert c.early_stopping is None and c.max_norm is None


def test_output_defaults_to_softmax_only_for_log_likelihood():
    assert TrainConfig(cost="log-likelihood").output_activation == "softmax"
    assert TrainConfig(cost="quadratic").output_activation == "sigmoid"
    assert TrainConfig(cost="quadratic", output="linear").output_activation == "linear"


def test_a_cost_that_takes_logs_refuses_linear_outputs():
    with pytest.raises(ConfigError, match="cross-entropy.*use output sigmoid or softmax"):
        TrainConfig(cost="cross-entropy", output="linear")


def test_toml_file_sets_keys_and_an_int_is_a_valid_float(tmp_path):
    c = TrainConfig.from_toml(write(tmp_path, 'batch_size = 20\neta = 3\nhidden = [30, 20]\n'
                                              'cost = "quadratic"\ngrowing_patience = true\n'))
    assert (c.batch_size, c.eta, c.hidden, c.cost, c.growing_patience) == (20, 3.0, [30, 20],
                                                                           "quadratic", True)
    assert isinstance(c.eta, float)


@pytest.mark.parametrize("text, match", [
    ('batchsize = 3\n', r"unknown key 'batchsize' \(did you mean 'batch_size'\?\)"),
    ('batch-size = 3\n', r"unknown key 'batch-size' \(did you mean 'batch_size'\?\)"),
    ('[net]\nhidden = 3\n', r"unknown key 'net'"),
    ('batch_size = "ten"\n', r"batch_size must be an integer, got 'ten'"),
    ('batch_size = 2.5\n', r"batch_size must be an integer"),
    ('eta = true\n', r"eta must be a number, got True"),
    ('hidden = [30, 1.5]\n', r"hidden must be a list of integers"),
    ('growing_patience = 1\n', r"growing_patience must be true or false"),
    ('cost = "foo"\n', r"cost must be one of quadratic, cross-entropy, log-likelihood; got 'foo'"),
    ('eta = 0\n', r"eta must be > 0, got 0.0"),
    ('lmbda = inf\n', r"lmbda must be a finite number, got inf"),
    ('dropout = 1.0\n', r"dropout must be in \[0, 1\)"),
    ('epochs = 0\n', r"epochs must be ≥ 1"),
    ('sizes = [784]\n', r"sizes must list at least two"),
    ('init = "xavier"\n', r"init must be one of normal, "),
    ('dtype = "float16"\n', r"dtype must be one of float32, float64; got 'float16'"),
])
def test_bad_toml_values_name_the_file_and_the_key(tmp_path, text, match):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=match) as info:
        TrainConfig.from_toml(path)
    assert str(path) in str(info.value)


# (key, the value at the edge that is allowed, the nearest value that is not)
EDGES = [("dataset", "blocks", ""), ("validation_size", 0, -1), ("hidden", [1], [0]),
         ("sizes", [1, 2], [784, 0, 10]), ("classes", 2, 1), ("dropout", 0.0, -0.1),
         ("input_dropout", 0.0, 1.0), ("lmbda", 0.0, -1e-9), ("l1", 0.0, -1e-9),
         ("max_norm", 1e-9, 0.0), ("eta", 1e-9, 0.0), ("batch_size", 1, 0), ("epochs", 1, 0),
         ("momentum", 0.0, 1.0), ("momentum", 0.99, -0.1), ("schedule_patience", 1, 0),
         ("step_every", 1, 0), ("early_stopping", 1, 0), ("seed", 0, -1)]


@pytest.mark.parametrize("key, edge, beyond", EDGES)
def test_each_setting_takes_its_edge_value_and_refuses_the_next_one_out(key, edge, beyond):
    assert getattr(TrainConfig(**{key: edge}), key) == edge
    with pytest.raises(ConfigError, match=f"^{key} must"):
        TrainConfig(**{key: beyond})


def test_a_tuple_is_a_valid_list_and_to_dict_hands_out_copies():
    c = TrainConfig(hidden=(30, 20))
    assert c.hidden == [30, 20]
    c.to_dict()["hidden"].append(5)                    # the frozen config must not change
    assert c.hidden == [30, 20]


def test_an_empty_toml_file_is_the_defaults_unless_settings_are_required(tmp_path):
    path = write(tmp_path, "")
    assert TrainConfig.from_toml(path) == TrainConfig()
    with pytest.raises(ConfigError, match="holds no settings"):
        TrainConfig.from_toml(path, allow_empty=False)


def test_a_toml_file_that_is_not_utf8_is_a_config_error(tmp_path):
    path = tmp_path / "c.toml"
    path.write_bytes(b"eta = 0.5 # \xff\n")
    with pytest.raises(ConfigError, match="c.toml: cannot read"):
        TrainConfig.from_toml(path)


def test_malformed_toml_reports_the_line(tmp_path):
    path = write(tmp_path, 'eta = 0.5\nbatch_size = \nepochs = 3\n')
    with pytest.raises(ConfigError, match=r"malformed TOML.*line 2"):
        TrainConfig.from_toml(path)


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        TrainConfig.from_toml(tmp_path / "absent.toml")


def test_flags_override_the_file_and_hidden_replaces_sizes(tmp_path):
    base = TrainConfig.from_toml(write(tmp_path, 'sizes = [784, 50, 10]\neta = 0.1\n'))
    merged = base.merged_with({"eta": 2.0, "hidden": [30]})
    assert merged.eta == 2.0 and merged.sizes is None and merged.resolve(784).sizes == [784, 30, 10]
    assert base.merged_with({"epochs": 3}).sizes == [784, 50, 10]
    with pytest.raises(ConfigError, match="command line: unknown key 'bogus'"):
        base.merged_with({"bogus": 1})


def test_classes_follows_sizes_and_a_contradicting_one_is_refused(tmp_path):
    # classes only counts without sizes: --sizes 784,30,10 --classes 5 used to train 10
    # outputs and write classes = 5 beside them... or 10, silently
    assert TrainConfig(sizes=[784, 30, 5]).classes == 5
    base = TrainConfig.from_toml(write(tmp_path, 'sizes = [784, 50, 5]\n'))
    assert base.merged_with({"eta": 0.1}).classes == 5
    assert base.merged_with({"sizes": [784, 50, 7]}).classes == 7   # the new sizes decide
    assert TrainConfig().merged_with({"classes": 3}).n_classes == 3
    for source in (lambda: base.merged_with({"classes": 3}),
                   lambda: TrainConfig().merged_with({"sizes": [784, 30, 10], "classes": 5}),
                   lambda: TrainConfig.from_toml(write(tmp_path, "sizes = [784, 30, 10]\n"
                                                                 "classes = 5\n"))):
        with pytest.raises(ConfigError, match=r"classes = \d disagrees with sizes = \[784, \d+, "
                                              r"\d+\], whose last entry is the number of output"):
            source()


def test_resolve_checks_sizes_against_the_data():
    c = TrainConfig(sizes=[100, 20, 5]).resolve(100)
    assert (c.hidden, c.classes, c.n_classes) == ([20], 5, 5)
    with pytest.raises(ConfigError, match="start with 100 inputs, but the data has 784"):
        TrainConfig(sizes=[100, 20, 5]).resolve(784)


def test_resolved_config_round_trips_through_toml(tmp_path):
    c = TrainConfig(hidden=[30, 20], max_norm=3.0, early_stopping=4, seed=7,
                    cost="log-likelihood").resolve(784)
    run = RunDir(tmp_path)
    run.write_config(c)
    assert run.read_config() == c
    assert "max_norm = 3.0" in run.config_path.read_text()
    assert "data_dir" not in run.config_path.read_text()      # unset values are left out


def test_build_net_follows_the_config():
    c = TrainConfig(hidden=[30], cost="log-likelihood", dropout=0.5, input_dropout=0.2,
                    dtype="float64").resolve(784)
    net = build_net(c, np.random.default_rng(0))
    assert isinstance(net.layers[0], Dropout) and net.layers[0].p == 0.2
    assert [layer.p for layer in net.layers if isinstance(layer, Dropout)] == [0.2, 0.5]
    assert isinstance(net.layers[-1], Softmax) and net.output_shape == (10,)
    assert net.backend.dtype == np.float64 and net.n_params() == 784 * 30 + 30 + 30 * 10 + 10
    assert isinstance(build_net(TrainConfig().resolve(784), 0).layers[-1], Sigmoid)


def test_build_net_needs_a_resolved_config():
    with pytest.raises(ConfigError, match="resolve"):
        build_net(TrainConfig(), 0)


def test_penalties_constraints_and_optimizer():
    c = TrainConfig(lmbda=2.0, l1=0.5, max_norm=3.0, optimizer="momentum", momentum=0.7)
    penalties = build_penalties(c)
    assert [type(p) for p in penalties] == [L2, L1] and penalties[0].lmbda == 2.0
    assert isinstance(build_constraints(c)[0], MaxNorm) and build_constraints(c)[0].c == 3.0
    opt = build_optimizer(c)
    assert isinstance(opt, Momentum) and opt.momentum == 0.7 and opt.eta == 0.5
    assert build_penalties(TrainConfig(lmbda=0.0)) == [] and build_constraints(TrainConfig()) == []


def test_schedules_and_early_stopping_watch_the_given_metric():
    assert build_callbacks(TrainConfig()) == []
    step = build_callbacks(TrainConfig(schedule="step", step_every=4))
    assert isinstance(step[0], StepDecay) and step[0].every == 4
    cosine = build_callbacks(TrainConfig(schedule="cosine", epochs=7))
    assert [type(cb).__name__ for cb in build_callbacks(TrainConfig(schedule="bold-driver"))] \
        == ["BoldDriver"]
    assert isinstance(cosine[0], CosineDecay) and cosine[0].epochs == 7
    plateau, stopping = build_callbacks(TrainConfig(schedule="halve-on-plateau",
                                                    schedule_patience=3, early_stopping=5,
                                                    growing_patience=True), "train_accuracy")
    assert isinstance(plateau, HalveOnPlateau) and plateau.patience == 3
    assert plateau.best.monitor == "train_accuracy"
    assert isinstance(stopping, EarlyStopping) and stopping.patience == 5 and stopping.growing
    assert not stopping.restore_best        # a run's best model is in best/, not a copy in memory
    assert stopping.best.monitor == "train_accuracy"          # both watch the same metric


def test_build_trainer_wires_everything():
    c = TrainConfig(hidden=[5], lmbda=1.0, batch_size=7, early_stopping=2).resolve(784)
    trainer = build_trainer(c, build_net(c, 0), rng=0)
    assert trainer.batch_size == 7 and trainer.cost.name == "cross-entropy"
    assert [type(p) for p in trainer.penalties] == [L2]
    assert any(isinstance(cb, EarlyStopping) for cb in trainer.callbacks)


def test_load_splits_holds_out_the_last_training_examples(tmp_path):
    directory = write_blocks_idx(tmp_path / "blocks", n_train=60, n_test=20)
    train, validation, test = load_splits(str(directory), validation_size=15)
    assert (len(train), len(validation), len(test)) == (45, 15, 20)
    with pytest.raises(DataError, match="cannot hold out 60 of 60.*--validation-size"):
        load_splits(str(directory), validation_size=60)


def write_npz(path, x_train, x_test, **extra):
    np.savez(path, x_train=x_train, y_train=np.arange(len(x_train)) % 2,
             x_test=x_test, y_test=np.arange(len(x_test)) % 2, **extra)
    return path


def test_load_splits_reads_an_npz_and_refuses_values_the_float_type_cannot_hold(tmp_path):
    x = np.random.default_rng(0).random((20, 3))
    train, validation, test = load_splits(str(write_npz(tmp_path / "d.npz", x, x[:4])),
                                          validation_size=5)
    assert (len(train), len(validation), len(test)) == (15, 5, 4)
    assert train.x.dtype == np.float32
    x[3, 1] = 1e300                                     # inf in float32
    path = write_npz(tmp_path / "big.npz", x, x[:4])
    with pytest.raises(DataError, match="beyond the model's float32 range"):
        load_splits(str(path), validation_size=5)
    assert len(load_splits(str(path), validation_size=5, dtype="float64").train) == 15


def test_load_splits_refuses_a_test_set_with_other_features(tmp_path):
    x = np.zeros((20, 3))
    with pytest.raises(DataError, match="test examples have 2 features but training "
                                        "examples have 3"):
        load_splits(str(write_npz(tmp_path / "d.npz", x, np.zeros((4, 2)))), validation_size=5)
