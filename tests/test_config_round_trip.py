"""Every training setting through every way of giving it, driven by one table.

A setting reaches TrainConfig by a ``nablanet train`` flag, by its key in a ``--config``
TOML file (flags win), from a run's saved ``config.toml`` (which trains the same run
again) and through ``--resume`` (which keeps it). Each row of :data:`SETTINGS` gives a
setting's flag, a value other than its default, and a bad value of each kind; the
tests check each path against ``TrainConfig(key=value)``, and that the table and the
parser cover every field, so a flag or key that is dropped, renamed or mapped to the
wrong field fails here. The CLI tests stop at ``train_run`` (monkeypatched), so they
cost no training; one end-to-end test trains for real.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tomli_w

import nablanet.cli.train as train_cli
from nablanet.config import (CHOICES, FIELDS, LAYERS_REPLACE, TrainConfig, build_net,
                             build_trainer, load_data)
from nablanet.init import INITIALIZERS
from nablanet.layers import ACTIVATIONS
from nablanet.runs import RunDir
from nablanet.utils.wording import Parser
from test_cli_data import assert_one_error_line, nablanet, write_blocks_idx

#: settings a --config file can hold but no flag can (a net as [[layers]] tables)
TOML_ONLY = {"layers"}
#: the train command's own flags, which say where and how to run rather than what
NOT_SETTINGS = {"help", "config", "out", "resume", "quiet", "blas_threads", "preset", "text",
                "minutes"}


@dataclass(frozen=True)
class Setting:
    key: str
    argv: tuple          # the flag giving ``value`` (empty for a TOML-only setting)
    value: object        # not the default
    other: object        # another valid value, for a TOML file the flag must override
    bad_toml: object     # a value the TOML key refuses, and the error it gives
    bad_toml_match: str
    bad_argv: tuple = ()      # a flag value refused, and the error (argparse's or TrainConfig's)
    bad_argv_match: str = ""

    def __str__(self):
        return " ".join(self.argv) or self.key


LAYERS = [{"type": "Dense", "n_in": 784, "n_out": 12}, {"type": "Sigmoid"}]
SETTINGS = [
    # absolute paths: train stores a relative one made absolute (test_cli_train)
    Setting("dataset", ("--dataset", "/some/folder"), "/some/folder", "/other/folder",
            "", r"dataset must name a data set", ("--dataset", ""), r"dataset must name"),
    Setting("data_dir", ("--data-dir", "/mnist/here"), "/mnist/here", "/mnist/there",
            5, r"data_dir must be a string, got 5"),
    Setting("validation_size", ("--validation-size", "7"), 7, 3, 2.5,
            r"validation_size must be an integer", ("--validation-size", "-1"),
            r"validation_size must be ≥ 0"),
    Setting("hidden", ("--hidden", "7,5"), [7, 5], [30], [7, "a"],
            r"hidden must be a list of integers", ("--hidden", "7,0"),
            r"hidden must list positive layer widths"),
    Setting("sizes", ("--sizes", "784,7,12"), [784, 7, 12], [784, 30, 10], [784, 0],
            r"sizes must list at least two positive", ("--sizes", "784"),
            r"sizes must list at least two"),
    Setting("layers", (), LAYERS, [{"type": "Dense", "n_in": 784, "n_out": 3},
                                   {"type": "Softmax"}],
            [{"type": "Conv3D"}], r"layer 0 has unknown type 'Conv3D'"),
    Setting("classes", ("--classes", "12"), 12, 3, 1, r"classes must be ≥ 2",
            ("--classes", "1"), r"classes must be ≥ 2"),
    Setting("activation", ("--activation", "tanh"), "tanh", "relu", "softplus",
            r"activation must be one of sigmoid, ", ("--activation", "softplus"),
            r"argument --activation: invalid choice: 'softplus'"),
    Setting("output", ("--output", "softmax"), "softmax", "sigmoid", "relu",
            r"output must be one of ", ("--output", "relu"), r"argument --output: invalid choice"),
    Setting("init", ("--init", "glorot"), "glorot", "he", "zeros", r"init must be one of ",
            ("--init", "zeros"), r"argument --init: invalid choice"),
    Setting("dropout", ("--dropout", "0.25"), 0.25, 0.5, 1.0, r"dropout must be in \[0, 1\)",
            ("--dropout", "1"), r"dropout must be in \[0, 1\), got 1.0"),
    Setting("input_dropout", ("--input-dropout", "0.125"), 0.125, 0.5, -0.5,
            r"input_dropout must be in \[0, 1\)", ("--input-dropout", "-0.5"),
            r"input_dropout must be in \[0, 1\)"),
    Setting("cost", ("--cost", "quadratic"), "quadratic", "log-likelihood", "hinge",
            r"cost must be one of ", ("--cost", "hinge"), r"argument --cost: invalid choice"),
    Setting("lmbda", ("--lmbda", "0.25"), 0.25, 2.0, -1, r"lmbda must be ≥ 0",
            ("--lmbda", "-1"), r"lmbda must be ≥ 0"),
    Setting("lmbda", ("--lambda", "0.75"), 0.75, 2.0, "big", r"lmbda must be a number",
            ("--lambda", "nan"), r"lmbda must be a finite number"),
    Setting("l1", ("--l1", "0.5"), 0.5, 0.1, -1, r"l1 must be ≥ 0", ("--l1", "-1"),
            r"l1 must be ≥ 0"),
    Setting("max_norm", ("--max-norm", "3"), 3.0, 2.0, 0, r"max_norm must be > 0",
            ("--max-norm", "0"), r"max_norm must be > 0"),
    Setting("eta", ("--eta", "0.125"), 0.125, 3.0, "fast", r"eta must be a number",
            ("--eta", "inf"), r"eta must be a finite number"),
    Setting("batch_size", ("--batch-size", "25"), 25, 5, 0, r"batch_size must be ≥ 1",
            ("--batch-size", "0"), r"batch_size must be ≥ 1"),
    Setting("epochs", ("--epochs", "3"), 3, 9, 0, r"epochs must be ≥ 1", ("--epochs", "0"),
            r"argument --epochs: expected an integer ≥ 1"),
    Setting("optimizer", ("--optimizer", "nesterov"), "nesterov", "adam", "lbfgs",
            r"optimizer must be one of ", ("--optimizer", "lbfgs"),
            r"argument --optimizer: invalid choice"),
    Setting("momentum", ("--momentum", "0.5"), 0.5, 0.25, 1.0, r"momentum must be in \[0, 1\)",
            ("--momentum", "1"), r"momentum must be in \[0, 1\)"),
    Setting("schedule", ("--schedule", "step"), "step", "cosine", "linear",
            r"schedule must be one of ", ("--schedule", "linear"),
            r"argument --schedule: invalid choice"),
    Setting("schedule_patience", ("--schedule-patience", "4"), 4, 2, 0,
            r"schedule_patience must be ≥ 1", ("--schedule-patience", "0"),
            r"schedule_patience must be ≥ 1"),
    Setting("step_every", ("--step-every", "4"), 4, 2, 0, r"step_every must be ≥ 1",
            ("--step-every", "0"), r"step_every must be ≥ 1"),
    Setting("early_stopping", ("--early-stopping", "6"), 6, 2, 0,
            r"early_stopping must be ≥ 1", ("--early-stopping", "0"),
            r"early_stopping must be ≥ 1"),
    Setting("growing_patience", ("--growing-patience",), True, False, "yes",
            r"growing_patience must be true or false", ("--growing-patience=yes",),
            r"argument --growing-patience/--no-growing-patience: ignored explicit argument"),
    Setting("seed", ("--seed", "7"), 7, 2, -1, r"seed must be ≥ 0", ("--seed", "-1"),
            r"argument --seed: expected an integer ≥ 0"),
    Setting("device", ("--device", "gpu"), "gpu", "cpu", "tpu", r"device must be one of ",
            ("--device", "tpu"), r"argument --device: invalid choice"),
    Setting("dtype", ("--dtype", "float64"), "float64", "float32", "float16",
            r"dtype must be one of ", ("--dtype", "float16"), r"argument --dtype: invalid choice"),
]
FLAGGED = [s for s in SETTINGS if s.argv]
#: a flag that unsets what a TOML file sets (the table's rows set non-defaults)
NEGATIVE = Setting("growing_patience", ("--no-growing-patience",), False, True, None, "")


@pytest.fixture
def trained(monkeypatch):
    """``nablanet train`` up to ``train_run``, which records what it was given instead of
    training: (config, directory, resume) of each call."""
    calls = []

    def record(config, directory, *, resume=False, progress=None):
        calls.append((config, Path(directory), resume))
        return {"status": "completed", "test_accuracy": 1.0, "test_errors": 0}

    monkeypatch.setattr(train_cli, "train_run", record)
    return calls


def reference(setting: Setting, **more) -> TrainConfig:
    """What the Python API makes of the setting: every other path must agree with it."""
    return TrainConfig(**{setting.key: setting.value}, **more)


def toml_file(tmp_path, values: dict, name="c.toml") -> Path:
    path = tmp_path / name
    path.write_text(tomli_w.dumps(values))
    return path


# -- the table itself ------------------------------------------------------------------------

def test_the_table_covers_every_setting_and_every_training_flag_is_one():
    assert {s.key for s in SETTINGS} == set(FIELDS)
    parser = Parser(prog="nablanet")
    train_parser = train_cli.add_parser(parser.add_subparsers())
    dests = {a.dest for a in train_parser._actions} - NOT_SETTINGS
    assert dests == set(FIELDS) - TOML_ONLY
    assert {s.key for s in FLAGGED} == set(FIELDS) - TOML_ONLY


@pytest.mark.parametrize("setting", SETTINGS, ids=str)
def test_each_rows_value_differs_from_the_default_and_the_other_value(setting):
    default = getattr(TrainConfig(), setting.key)
    assert getattr(reference(setting), setting.key) == setting.value
    assert setting.value != default and setting.value != setting.other


# -- flags, TOML keys, and flags over TOML keys ------------------------------------------------

@pytest.mark.parametrize("setting", FLAGGED, ids=str)
def test_the_flag_sets_its_setting_and_nothing_else(capsys, trained, tmp_path, setting):
    result = nablanet(capsys, "train", *setting.argv, "--out", tmp_path / "run")
    assert result.code == 0, result.err
    (config, directory, resume), = trained
    assert config == reference(setting)
    assert (directory, resume) == (tmp_path / "run", False)


@pytest.mark.parametrize("setting", SETTINGS, ids=str)
def test_the_toml_key_sets_its_setting_and_nothing_else(capsys, trained, tmp_path, setting):
    path = toml_file(tmp_path, {setting.key: setting.value})
    result = nablanet(capsys, "train", "--config", path, "--out", tmp_path / "run")
    assert result.code == 0, result.err
    assert trained[0][0] == reference(setting)


@pytest.mark.parametrize("setting", [*FLAGGED, NEGATIVE], ids=str)
def test_a_flag_overrides_the_same_key_in_the_toml_file(capsys, trained, tmp_path, setting):
    path = toml_file(tmp_path, {setting.key: setting.other, "batch_size": 17})
    result = nablanet(capsys, "train", "--config", path, *setting.argv, "--out", tmp_path / "r")
    assert result.code == 0, result.err
    expected = reference(setting, **({} if setting.key == "batch_size" else {"batch_size": 17}))
    assert trained[0][0] == expected            # the flag wins; the file's other keys stay


@pytest.mark.parametrize("setting", FLAGGED, ids=str)
def test_a_flag_over_a_layer_list_is_applied_or_refused_never_ignored(capsys, trained, tmp_path,
                                                                      setting):
    path = toml_file(tmp_path, {"layers": LAYERS})
    result = nablanet(capsys, "train", "--config", path, *setting.argv, "--out", tmp_path / "r")
    if setting.key in LAYERS_REPLACE:         # what mlp() would build from it, the list says
        assert_one_error_line(result, f"command line: {setting.key} cannot change a net given "
                                      r"as \[\[layers\]\]; edit the layer list")
        assert trained == []
    else:
        assert result.code == 0, result.err
        assert trained[0][0] == reference(setting, layers=LAYERS)


# -- every setting reaches what it configures ---------------------------------------------------

#: settings that act only beside another one (μ needs a momentum optimiser, ...)
NEEDS = {"momentum": {"optimizer": "momentum"},
         "schedule_patience": {"schedule": "halve-on-plateau"}, "step_every": {"schedule": "step"},
         "growing_patience": {"early_stopping": 3}, "epochs": {"schedule": "cosine"},
         "layers": {"classes": 12}}
#: settings whose effect is outside the built objects: the seed seeds train_run's generator
#: (test_cli_train's same-seed test), the device needs a GPU
NOT_BUILT = {"seed", "device"}


def plain(obj, depth=0):
    """``obj`` as nested plain values (objects as their type and public attributes), so that
    two sets of built objects compare by what they hold."""
    if isinstance(obj, (str, int, float, bool, type(None))):
        return obj
    if isinstance(obj, (list, tuple)):
        return [plain(v, depth + 1) for v in obj]
    if isinstance(obj, dict):
        return {str(k): plain(v, depth + 1) for k, v in obj.items()}
    if hasattr(obj, "__dict__") and depth < 4 and not isinstance(obj, np.random.Generator):
        return (type(obj).__name__, plain({k: v for k, v in vars(obj).items()
                                           if not k.startswith("_") and k != "net"}, depth + 1))
    return type(obj).__name__


def built(config: TrainConfig, monkeypatch) -> dict:
    """What train_run builds from ``config``: the data it asks for, the net, the trainer."""
    asked = {}
    monkeypatch.setattr("nablanet.config.load_splits", lambda *a, **kw: asked.update(a=a, kw=kw))
    load_data(config)
    config = config.resolve(784)
    net = build_net(config, np.random.default_rng(0))
    trainer = build_trainer(config, net, rng=0)
    keep = ("cost", "optimizer", "batch_size", "penalties", "constraints", "callbacks", "monitor")
    return {"data": plain(asked), "net": net.config(), "dtype": str(net.backend.dtype),
            "trainer": plain({k: getattr(trainer, k) for k in keep})}


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.key not in NOT_BUILT], ids=str)
def test_each_setting_changes_what_is_built(monkeypatch, setting):
    context = NEEDS.get(setting.key, {})
    assert built(TrainConfig(**context, **{setting.key: setting.value}), monkeypatch) \
        != built(TrainConfig(**context), monkeypatch)


def test_every_activation_and_initialisation_is_a_choice_and_builds(monkeypatch):
    # hidden units: every activation layer but the output-only ones; init: every scheme once
    # (the other names are aliases) except all-zero weights, which no hidden unit survives
    assert set(CHOICES["activation"]) == set(ACTIVATIONS) - {"linear", "softmax"}
    assert {INITIALIZERS[name] for name in CHOICES["init"]} \
        == set(INITIALIZERS.values()) - {INITIALIZERS["zeros"]}
    for key in ("activation", "output", "init"):
        nets = [built(TrainConfig(**{key: value}, cost="quadratic"), monkeypatch)["net"]
                for value in CHOICES[key]]
        assert all(a != b for i, a in enumerate(nets) for b in nets[i + 1:]), key


# -- the run's own config.toml and --resume ------------------------------------------------------

def saved_run(tmp_path, config: TrainConfig) -> Path:
    """A run directory whose config.toml holds ``config``, with a last/ checkpoint marker."""
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.write_config(config)
    run.last.mkdir()
    (run.last / "training_state.json").write_text("{}")
    return run.path


@pytest.mark.parametrize("setting", SETTINGS, ids=str)
def test_the_saved_config_toml_trains_the_same_settings_again(capsys, trained, tmp_path,
                                                                setting):
    run = saved_run(tmp_path, reference(setting))
    result = nablanet(capsys, "train", "--config", run / "config.toml", "--out", tmp_path / "a")
    assert result.code == 0, result.err
    assert trained[0][0] == reference(setting)


@pytest.mark.parametrize("setting", SETTINGS, ids=str)
def test_resume_keeps_the_setting_and_takes_only_epochs_and_data_dir(capsys, trained, tmp_path,
                                                                       setting):
    run = saved_run(tmp_path, reference(setting))
    result = nablanet(capsys, "train", "--resume", run, "--epochs", 40, "--data-dir", "/elsewhere")
    assert result.code == 0, result.err
    (config, directory, resume), = trained
    kept = {setting.key: setting.value, "epochs": 40, "data_dir": "/elsewhere"}
    assert config == TrainConfig(**kept) and (directory, resume) == (run, True)
    if setting.key not in ("epochs", "data_dir") and setting.argv:
        flag = setting.argv[0].split("=")[0]
        if flag == "--lambda":
            flag = "--lmbda"                 # the message names a setting by its flag
        assert_one_error_line(nablanet(capsys, "train", "--resume", run, *setting.argv),
                              f"only --epochs and --data-dir may change \\(got {flag}\\)")


# -- bad values: one error line, exit status 2, nothing written ---------------------------------

@pytest.mark.parametrize("setting", [s for s in FLAGGED if s.bad_argv], ids=str)
def test_a_bad_flag_value_is_one_error_line(capsys, tmp_path, setting):
    # --dataset names nothing, so a value let through fails differently (and no data loads)
    result = nablanet(capsys, "train", "--dataset", tmp_path / "nothing", "--out",
                      tmp_path / "run", "--quiet", *setting.bad_argv)
    assert_one_error_line(result, setting.bad_argv_match)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("setting", SETTINGS, ids=str)
def test_a_bad_toml_value_is_one_error_line_naming_the_file(capsys, tmp_path, setting):
    path = toml_file(tmp_path, {"dataset": str(tmp_path / "nothing"),
                                setting.key: setting.bad_toml})
    result = nablanet(capsys, "train", "--config", path, "--out", tmp_path / "run", "--quiet")
    assert_one_error_line(result, f"error: {path}: .*{setting.bad_toml_match}")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("values, match", [
    ({"batch-size": 5}, r"unknown key 'batch-size' \(did you mean 'batch_size'\?\)"),
    ({"layers": [{"type": ["Dense"]}]}, r"layers: layer 0 has unknown type \['Dense'\]"),
    ({"lambda": 0.1}, r"unknown key 'lambda' \(did you mean 'lmbda'\?\)"),
    ({"net": {"hidden": [3]}}, r"unknown key 'net'"),
    ({"out": "run"}, r"unknown key 'out'"),      # a flag of train's, not a setting
])
def test_an_unknown_toml_key_is_one_error_line(capsys, tmp_path, values, match):
    path = toml_file(tmp_path, values)
    result = nablanet(capsys, "train", "--config", path, "--out", tmp_path / "run", "--quiet")
    assert_one_error_line(result, f"error: {path}: {match}")
    assert not (tmp_path / "run").exists()


def test_an_unknown_flag_is_one_error_line(capsys, tmp_path):
    result = nablanet(capsys, "train", "--batch_size", 5, "--out", tmp_path / "run")
    assert_one_error_line(result, r"unrecognized arguments: --batch_size")


# -- end to end: the saved config.toml retrains and resumes bit for bit ---------------------

#: every setting a CPU run on the blocks data can give at once, none at its default
#: (sizes is the alternative to hidden, device needs a GPU, layers are tested on their own
#: in test_config_layers.py); epochs and dataset are set by the test
ALL_AT_ONCE = {"data_dir": "/unused", "validation_size": 50, "hidden": [7], "classes": 12,
               "activation": "tanh", "output": "softmax", "init": "glorot", "dropout": 0.25,
               "input_dropout": 0.125, "cost": "log-likelihood", "lmbda": 0.25, "l1": 0.5,
               "max_norm": 3.0, "eta": 0.125, "batch_size": 25, "optimizer": "nesterov",
               "momentum": 0.5, "schedule": "step", "schedule_patience": 4, "step_every": 1,
               "early_stopping": 6, "growing_patience": True, "seed": 7, "dtype": "float64"}


def as_flags(values: dict) -> list[str]:
    flags = []
    for key, value in values.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            flags.append(flag)
        else:
            flags += [flag, ",".join(map(str, value)) if isinstance(value, list) else str(value)]
    return flags


def test_the_saved_config_retrains_bit_identically_and_resume_keeps_every_setting(
        capsys, tmp_path):
    assert set(ALL_AT_ONCE) == set(FIELDS) - {"sizes", "device", "layers", "epochs", "dataset"}
    blocks = write_blocks_idx(tmp_path / "blocks", n_train=150, n_test=30)
    run, again, whole = (RunDir(tmp_path / name) for name in ("run", "again", "whole"))

    def weights(r):
        return (r.last / "weights.safetensors").read_bytes()

    def train(*argv):
        result = nablanet(capsys, "train", *argv, "--quiet", "--blas-threads", 1)
        assert result.code == 0, result.err

    train("--dataset", blocks, "--epochs", 1, *as_flags(ALL_AT_ONCE), "--out", run.path)
    stored = run.read_config()
    assert {key: getattr(stored, key) for key in ALL_AT_ONCE} == ALL_AT_ONCE
    assert stored.sizes == [784, 7, 12] and stored.epochs == 1
    assert str(blocks) == stored.dataset

    train("--config", run.config_path, "--out", again.path)
    assert again.config_path.read_text() == run.config_path.read_text()
    assert weights(again) == weights(run)

    train("--config", run.config_path, "--epochs", 2, "--out", whole.path)
    train("--resume", run.path, "--epochs", 2)
    assert run.read_config() == whole.read_config()
    assert weights(run) == weights(whole) != weights(again)
