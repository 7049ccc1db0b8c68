"""Architectures as a TOML list of layers: ``[[layers]]`` tables in a ``--config`` file."""
import pytest

from nablanet.config import TrainConfig, build_net
from nablanet.errors import ConfigError
from nablanet.layers.conv import Conv2D
from nablanet.runs import RunDir
from test_cli_data import assert_one_error_line, nablanet, write_blocks_idx

CONV_NET = """
cost = "log-likelihood"
batch_size = 16
eta = 0.05
epochs = 2
lmbda = 0.0

[[layers]]
type = "Reshape"
shape = [1, 28, 28]

[[layers]]
type = "Conv2D"
in_channels = 1
out_channels = 4
kernel_size = 5
init = "he"

[[layers]]
type = "MaxPool2D"
kernel_size = 4

[[layers]]
type = "ReLU"

[[layers]]
type = "Flatten"

[[layers]]
type = "Dense"
n_in = 144
n_out = 10

[[layers]]
type = "Softmax"
"""


@pytest.fixture(scope="module")
def blocks(tmp_path_factory):
    return write_blocks_idx(tmp_path_factory.mktemp("data") / "blocks")


def config_file(tmp_path, text=CONV_NET):
    path = tmp_path / "net.toml"
    path.write_text(text)
    return path


def test_a_layer_list_builds_that_net(tmp_path):
    config = TrainConfig.from_toml(config_file(tmp_path)).resolve(784)
    net = build_net(config, rng=0)
    kinds = [type(layer).__name__ for layer in net.layers]
    assert kinds == ["Reshape", "Conv2D", "MaxPool2D", "ReLU", "Flatten", "Dense", "Softmax"]
    assert isinstance(net.layers[1], Conv2D) and net.layers[1].params["W"].shape == (4, 1, 5, 5)
    assert net.output_shape == (10,)


def test_train_from_a_layer_list_and_resume_from_its_config_toml(capsys, blocks, tmp_path):
    run = tmp_path / "run"
    first = nablanet(capsys, "train", "--config", config_file(tmp_path), "--dataset", blocks,
                     "--validation-size", 50, "--out", run)
    assert first.code == 0, first.err
    stored = TrainConfig.from_toml(run / "config.toml")
    assert stored.layers[1] == {"type": "Conv2D", "in_channels": 1, "out_channels": 4,
                                "kernel_size": 5, "init": "he"}
    assert RunDir(run).read_summary()["status"] == "completed"
    # The run's own config.toml trains the same net again, bit for bit.
    again = nablanet(capsys, "train", "--config", run / "config.toml", "--dataset", blocks,
                     "--validation-size", 50, "--out", tmp_path / "again")
    assert again.code == 0, again.err
    assert ((run / "last" / "weights.safetensors").read_bytes()
            == (tmp_path / "again" / "last" / "weights.safetensors").read_bytes())


@pytest.mark.parametrize("edit, match", [
    (('type = "Conv2D"', 'type = "Convolution"'), r"layer 1 has unknown type 'Convolution'"),
    (("kernel_size = 5", "kernel_size = 0"), r"layer 1 \(Conv2D\): kernel_size must be"),
    (("kernel_size = 5", "kernel_sise = 5"), r"layer 1 \(Conv2D\).*kernel_sise"),
    (("n_out = 10", "n_out = 7"), r"output shape \(7,\).*10 classes"),
    (('[[layers]]\ntype = "Softmax"', ""), r"end in linear units.*Softmax layer"),
    (("n_in = 144", "n_in = 100"), r"Dense"),
])
def test_bad_layer_lists_are_one_clear_error(capsys, blocks, tmp_path, edit, match):
    text = CONV_NET.replace(*edit)
    assert text != CONV_NET
    result = nablanet(capsys, "train", "--config", config_file(tmp_path, text), "--dataset",
                      blocks, "--validation-size", 50, "--out", tmp_path / "run", "--quiet")
    assert_one_error_line(result, match)
    if (tmp_path / "run").exists():                   # shape errors show once the data is read
        assert RunDir(tmp_path / "run").read_summary()["status"] == "failed"


def test_layers_must_be_a_list_of_tables():
    with pytest.raises(ConfigError, match="layers must be a non-empty list"):
        TrainConfig(layers=[])
    with pytest.raises(ConfigError, match="layer 0 is not an object"):
        TrainConfig(layers=["Dense"])


def test_a_layer_list_that_config_toml_cannot_hold_is_refused_before_a_run_starts():
    # TOML has no null: train_run would fail writing the run's config.toml
    with pytest.raises(ConfigError, match=r"layers must hold only values a TOML file can "
                                          r"\(a run saves them in config.toml\).*NoneType"):
        TrainConfig(layers=[{"type": "Dense", "n_in": None, "n_out": 10}, {"type": "Sigmoid"}])
