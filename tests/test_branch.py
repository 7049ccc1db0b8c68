"""Branching blocks (layers/branch.py): residual sums and inception-style concatenation.

Each block's gradients are checked in test_gradcheck.py and its model files in
test_model_round_trip.py. Here: what the blocks compute, that the rest of the library
(optimisers, penalties, max-norm, dropout's generator, checkpoints, configs) reaches the
layers inside them, sizes taken from the layer below, and the blocks' errors.
"""
import numpy as np
import pytest

from nablanet import (L1, L2, SGD, Adam, ConfigError, DataError, MaxNorm, ModelFileError,
                      Sequential, get_backend)
from nablanet.data import Dataset
from nablanet.gradcheck import check_net
from nablanet.io import load_model, load_training_state
from nablanet.layers import (LSTM, AvgPool2D, Concat, Conv2D, Dense, Dropout, MaxPool2D, ReLU,
                             Reshape, Residual, Sigmoid, Softmax, Tanh)
from nablanet.layers.base import layers_from_specs
from nablanet.runs import RunDir
from nablanet.training import Checkpoint, Trainer, fused
from test_cli_data import assert_one_error_line, nablanet, write_blocks_idx
from test_gradcheck import assert_net_small

F64 = get_backend("cpu", "float64")


def built(layer, shape, seed=0):
    layer.build(shape, F64, np.random.default_rng(seed))
    return layer


def run(layers, x, train=False):
    for layer in layers:
        x, _ = layer.forward(x, train)
    return x


def block_net(dropout=0.0, backend=F64, seed=0):
    """4 → 8 → residual(8) → concat(3 + 8 + 2) → 3 classes."""
    body = [Dense(n_out=6), Sigmoid()] + ([Dropout(dropout)] if dropout else []) + [Dense(n_out=8)]
    return Sequential([Dense(n_out=8), Tanh(), Residual(body),
                       Concat([[Dense(n_out=3), Tanh()], [], [Dense(n_out=2)]]),
                       Dense(n_out=3), Softmax()]).build((4,), backend, seed)


# -- what the blocks compute --------------------------------------------------------------

def test_a_residual_block_adds_its_body_to_the_input_or_its_projection():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 4))
    block = built(Residual([Dense(n_out=3), Tanh(), Dense(n_out=4)]), (4,))
    body = block.branches[0]
    np.testing.assert_allclose(block.forward(x)[0], run(body, x) + x, rtol=1e-15)
    projected = built(Residual([Dense(n_out=2), ReLU()], shortcut=[Dense(n_out=2)]), (4,))
    body, shortcut = projected.branches
    np.testing.assert_allclose(projected.forward(x)[0], run(body, x) + run(shortcut, x),
                               rtol=1e-15)


def test_concat_joins_features_or_channels_in_branch_order():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 4))
    block = built(Concat([[Dense(n_out=3)], [], [Dense(n_out=1), Sigmoid()]]), (4,))
    y = block.forward(x)[0]
    assert block.joined_shape([(3,), (4,), (1,)]) == (8,) and y.shape == (5, 8)
    np.testing.assert_array_equal(y[:, :3], run(block.branches[0], x))
    np.testing.assert_array_equal(y[:, 3:7], x)
    np.testing.assert_array_equal(y[:, 7:], run(block.branches[2], x))

    images = rng.standard_normal((2, 2, 5, 6))
    inception = built(Concat([[Conv2D(out_channels=3, kernel_size=1)],
                              [Conv2D(out_channels=1, kernel_size=3, padding=1), ReLU()],
                              [MaxPool2D(3, stride=1, padding=1)]]), (2, 5, 6))
    y = inception.forward(images)[0]
    assert y.shape == (2, 6, 5, 6)
    for branch, (lo, hi) in zip(inception.branches, [(0, 3), (3, 4), (4, 6)]):
        np.testing.assert_array_equal(y[:, lo:hi], run(branch, images))


def test_gradients_through_blocks_with_penalties_and_dropout():
    net = block_net(dropout=0.4)
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((7, 4)), rng.integers(0, 3, 7)
    errors = check_net(net, "log-likelihood", x, y, penalties=[L2(0.7), L1(0.3)], n_train=20,
                       train=True)
    assert any(key.count(".") > 2 for key in errors)          # the blocks' layers were checked
    assert_net_small(net, errors)


def test_below_a_leading_block_no_layer_computes_an_input_gradient():
    net = Sequential([Residual([Dropout(0.2), Dense(n_out=4), Tanh(), Dense(n_out=4)],
                               shortcut=[Dense(n_out=4)]),
                      Residual([Dense(n_out=4)]), Softmax()]).build((3,), F64, 0)
    first, second = net.layers[:2]
    assert first.need_input_grad is False
    body, shortcut = first.branches
    assert (body[1].need_input_grad, body[3].need_input_grad) == (False, True)  # the first only
    assert shortcut[0].need_input_grad is False
    assert second.branches[0][0].need_input_grad is True           # its input is the first's
    x = np.random.default_rng(0).standard_normal((2, 3))
    out, caches = first.forward(x, train=True)
    assert first.backward(np.ones_like(out), caches) is None
    assert all(g is not None for g in first.grads.values())        # every weight still learns
    # an identity branch hands δ down too; with nothing below to take it, it is dropped
    concat = Sequential([Concat([[Dense(n_out=2)], []])]).build((3,), F64, 0).layers[0]
    out, caches = concat.forward(x, train=True)
    assert concat.backward(np.ones_like(out), caches) is None


def test_a_block_told_before_it_is_built_needs_no_input_gradient_only_at_its_first_layers():
    block = Residual([Dense(n_out=4), Tanh(), Dense(n_out=3)], shortcut=[Dense(n_out=3)])
    block.need_input_grad = False                    # which layers are first shows at build
    built(block, (3,))
    body, shortcut = block.branches
    assert (body[0].need_input_grad, body[2].need_input_grad) == (False, True)
    assert shortcut[0].need_input_grad is False
    x = np.random.default_rng(5).standard_normal((2, 3))
    out, caches = block.forward(x, train=True)
    block.backward(np.ones_like(out), caches)
    assert all(g is not None for g in block.grads.values())


def test_a_block_reports_its_largest_gemm_and_installs_parameters_through_its_layers():
    block = built(Concat([[Dense(n_out=3)], [Dense(n_out=9), Tanh()]]), (5,))
    assert block.gemm_work() == 5 * 9 == block.branches[1][0].gemm_work()
    x = np.random.default_rng(6).standard_normal((2, 5))
    out, caches = block.forward(x, train=True)
    block.backward(np.ones_like(out), caches)
    block.set_params(**{"1.0.W": np.ones((5, 9), np.float32)})   # as a model file loads it
    dense = block.branches[1][0]
    assert dense.params["W"].dtype == np.float64 and dense.grads["W"] is None
    assert block.params["1.0.W"] is dense.params["W"]
    with pytest.raises(KeyError):
        block.set_params(**{"1.1.W": np.ones(1)})


def test_concat_joins_images_in_the_channel_major_layout_the_image_layers_use():
    block = built(Concat([[Conv2D(out_channels=2, kernel_size=1)], []]), (3, 4, 4))
    y = block.forward(np.random.default_rng(7).standard_normal((2, 3, 4, 4)))[0]
    assert y.shape == (2, 5, 4, 4) and y.transpose(1, 0, 2, 3).flags.c_contiguous


# -- the rest of the library reaches the layers inside ----------------------------------

def test_optimiser_max_norm_and_zeroing_act_on_the_layers_inside_blocks():
    net = block_net()
    inner = [(layer, key) for layer, key in net.parameters() if "." in key]
    assert len(inner) == 8 and len(net.parameters()) == 12
    before = {key: layer.params[key].copy() for layer, key in inner}
    data_x = np.random.default_rng(4).standard_normal((20, 4)).astype(np.float64)
    Trainer(net, "log-likelihood", SGD(0.5), batch_size=5, rng=0, monitor=()).fit(
        Dataset(data_x, np.arange(20) % 3), 1)
    for layer, key in inner:
        assert not np.array_equal(layer.params[key], before[key]), key
        assert layer.grads[key] is None                              # zeroed after each step
    residual = net.layers[2]
    assert residual.params["0.0.W"] is residual.branches[0][0].params["W"]
    MaxNorm(0.05).apply(net)
    for layer, key in net.parameters():
        if key.endswith("W"):
            assert np.linalg.norm(layer.params[key], axis=0).max() <= 0.05 * (1 + 1e-12), key


def test_a_net_of_blocks_learns_and_trains_the_same_fused_or_not(make_blobs, monkeypatch):
    """SGD's step inside the GEMM (training/fused.py) takes the top-level Dense layers; the
    optimiser steps the blocks' layers, and the two together train as the plain update."""
    data = make_blobs(150)

    def train():
        net = block_net(seed=1)
        history = Trainer(net, "log-likelihood", SGD(0.5), batch_size=10, rng=2).fit(data, 8)
        return net, history

    fusable = []
    real = fused.fusable_parameters
    monkeypatch.setattr(fused, "fusable_parameters", lambda t: fusable.extend(real(t)) or real(t))
    net, history = train()
    assert history["train_accuracy"][-1] >= 0.95
    top_level = {(id(layer), key) for layer in (net.layers[0], net.layers[4]) for key in "Wb"}
    assert {(id(layer), key) for layer, key in fusable} == top_level
    monkeypatch.setattr(fused, "fusable_parameters", lambda t: [])
    plain, _ = train()
    for (a, key), (b, _) in zip(net.parameters(), plain.parameters(), strict=True):
        np.testing.assert_allclose(a.params[key], b.params[key], rtol=1e-10, atol=1e-12)


def test_training_with_dropout_in_a_block_is_seeded_and_resumes_bitwise(make_blobs, tmp_path):
    data = make_blobs(60)

    def trainer(net, directory):
        return Trainer(net, "log-likelihood", Adam(0.01), batch_size=8, rng=4,
                       callbacks=[Checkpoint(directory)])

    whole, again = block_net(dropout=0.5), block_net(dropout=0.5)
    trainer(whole, tmp_path / "whole").fit(data, 4, data)
    trainer(again, tmp_path / "again").fit(data, 4, data)
    trainer(block_net(dropout=0.5), tmp_path / "run").fit(data, 2, data)
    resumed_net, _, _ = load_model(tmp_path / "run" / "last")
    resumed = trainer(resumed_net, tmp_path / "run")
    resumed.load_state_dict(*load_training_state(tmp_path / "run" / "last"))
    resumed.fit(data, 4, data)
    for (a, key), (b, _), (c, _) in zip(whole.parameters(), again.parameters(),
                                        resumed_net.parameters(), strict=True):
        np.testing.assert_array_equal(b.params[key], a.params[key])
        np.testing.assert_array_equal(c.params[key], a.params[key])


# -- configs, sizes from the layer below ------------------------------------------------------

RESIDUAL_NET = """
cost = "log-likelihood"
batch_size = 16
eta = 0.1
epochs = 2

[[layers]]
type = "Dense"
n_out = 20

[[layers]]
type = "Residual"
layers = [{type = "Dense", n_out = 20}, {type = "ReLU"}, {type = "Dense", n_out = 20}]

[[layers]]
type = "Concat"
branches = [[{type = "Dense", n_out = 5}, {type = "Sigmoid"}], []]

[[layers]]
type = "Dense"
n_out = 10

[[layers]]
type = "Softmax"
"""


def test_a_toml_layer_list_with_blocks_trains_and_its_run_config_retrains_it(capsys, tmp_path):
    data = write_blocks_idx(tmp_path / "data")
    (tmp_path / "net.toml").write_text(RESIDUAL_NET)
    first = nablanet(capsys, "train", "--config", tmp_path / "net.toml", "--dataset", data,
                     "--validation-size", 50, "--out", tmp_path / "run", "--quiet")
    assert first.code == 0, first.err
    assert RunDir(tmp_path / "run").read_summary()["status"] == "completed"
    net, _, _ = load_model(tmp_path / "run" / "last")
    assert [type(layer).__name__ for layer in net.layers] == [
        "Dense", "Residual", "Concat", "Dense", "Softmax"]
    assert net.layers[0].params["W"].shape == (784, 20)             # n_in from the data
    assert net.layers[3].params["W"].shape == (25, 10)              # 5 + 20 joined
    again = nablanet(capsys, "train", "--config", tmp_path / "run" / "config.toml", "--dataset",
                     data, "--validation-size", 50, "--out", tmp_path / "again", "--quiet")
    assert again.code == 0, again.err
    assert ((tmp_path / "run" / "last" / "weights.safetensors").read_bytes()
            == (tmp_path / "again" / "last" / "weights.safetensors").read_bytes())


def test_a_block_in_a_toml_config_with_the_wrong_shape_is_one_clear_error(capsys, tmp_path):
    data = write_blocks_idx(tmp_path / "data")
    text = RESIDUAL_NET.replace('{type = "Dense", n_out = 20}]', '{type = "Dense", n_out = 7}]')
    assert text != RESIDUAL_NET
    (tmp_path / "net.toml").write_text(text)
    result = nablanet(capsys, "train", "--config", tmp_path / "net.toml", "--dataset", data,
                      "--validation-size", 50, "--out", tmp_path / "run", "--quiet")
    assert_one_error_line(result, r"Residual cannot add F\(x\) of shape \(7,\) to the "
                                  r"identity shortcut's \(20,\)")


@pytest.mark.parametrize("layer, shape, params", [
    (Dense(n_out=5), (7,), {"W": (7, 5), "b": (5,)}),
    (Conv2D(out_channels=2, kernel_size=3), (4, 6, 6), {"W": (2, 4, 3, 3), "b": (2,)}),
    (LSTM(n_hidden=3), (5, 6), {"W": (6, 12), "U": (3, 12), "b": (12,)}),
])
def test_sizes_left_out_are_taken_from_the_input(layer, shape, params):
    built(layer, shape)
    assert {k: v.shape for k, v in layer.params.items()} == params
    twin = built(type(layer)(**layer.config()), shape)        # the model file states them
    assert {k: v.shape for k, v in twin.params.items()} == params


# -- errors --------------------------------------------------------------------------------

@pytest.mark.parametrize("make, shape, match", [
    (lambda: Residual([Dense(n_out=3)]), (4,),
     r"Residual cannot add F\(x\) of shape \(3,\) to the identity shortcut's \(4,\)"),
    (lambda: Residual([Dense(n_out=3)], shortcut=[Dense(n_out=2)]), (4,),
     r"F\(x\) of shape \(3,\) to the shortcut's \(2,\)"),
    (lambda: Concat([[Dense(n_out=2)], [Reshape([2, 2])]]), (4,),
     r"Concat joins outputs that differ only in their first axis.*\(2,\), \(2, 2\)"),
    (lambda: Concat([[Conv2D(out_channels=1, kernel_size=3)], []]), (1, 5, 5),
     r"\(1, 3, 3\), \(1, 5, 5\)"),
    (lambda: Concat([[AvgPool2D(2)], [Conv2D(out_channels=1, kernel_size=1)]]), (1, 4, 4),
     r"\(1, 2, 2\), \(1, 4, 4\)"),
    (lambda: Concat([[], []]), (3, 4), r"Concat joins outputs .*\(3, 4\), \(3, 4\)"),
])
def test_blocks_whose_branches_do_not_fit_are_a_config_error(make, shape, match):
    with pytest.raises(ConfigError, match=match):
        built(make(), shape)


@pytest.mark.parametrize("make, match", [
    (lambda: Residual([]), r"Residual needs a non-empty list of layers"),
    (lambda: Residual("Dense"), r"Residual branch 0 must be a list of layers, got 'Dense'"),
    (lambda: Concat([]), r"Concat needs a non-empty list of branch"),
    (lambda: Concat([Dense(n_out=2)]), r"Concat branch 0 must be a list of layers"),
    (lambda: Residual([{"type": "Dense", "n_outt": 3}]),
     r"branch 0: layer 0 \(Dense\): .*n_outt"),
    (lambda: Concat([[], [{"type": "Densely"}]]), r"branch 1: layer 0 has unknown type 'Densely'"),
    (lambda: Dense(4), r"Dense needs n_out"),
    (lambda: Conv2D(1), r"Conv2D needs out_channels"),
    (lambda: LSTM(3), r"LSTM needs n_hidden"),
])
def test_bad_block_or_layer_arguments_are_one_config_error(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_a_model_file_with_a_bad_nested_layer_is_a_model_file_error():
    spec = [{"type": "Residual", "layers": [{"type": "Dense", "n_out": "3"}], "shortcut": []}]
    with pytest.raises(ModelFileError, match=r"net: layer 0 \(Residual\): branch 0: layer 0 "
                                             r"\(Dense\): Dense needs positive whole-number"):
        layers_from_specs(spec, "net", ModelFileError)


def test_concat_refuses_a_batch_that_is_neither_vectors_nor_images():
    block = built(Concat([[], []]), (4,))
    with pytest.raises(DataError, match=r"Concat expects a batch of vectors or images"):
        block.forward(np.zeros((2, 3, 4)))


def test_the_recurrent_layers_inside_a_block_are_reached():
    from nablanet.layers import reset_states, set_stateful
    net = Sequential([Residual([LSTM(n_hidden=3)]), LSTM(n_hidden=2)]).build((4, 3), F64, 0)
    inner = net.layers[0].branches[0][0]
    set_stateful(net, True)
    assert inner.stateful and net.layers[1].stateful
    net.forward(np.ones((2, 4, 3)))
    assert inner.state is not None
    reset_states(net)
    assert inner.state is None


def test_mc_dropout_samples_dropout_inside_a_block_and_nothing_else():
    from nablanet.ensemble import mc_dropout
    x = np.random.default_rng(0).standard_normal((40, 4))
    net = block_net(dropout=0.3)
    mean, std = mc_dropout(net, x, passes=400, rng=1)
    again, _ = mc_dropout(net, x, passes=400, rng=1)
    np.testing.assert_array_equal(mean, again)                              # seeded
    assert (std > 1e-3).all()                                               # it samples
    # inverted dropout: the thinned nets average to about the whole net
    assert np.abs(mean - net.predict(x)).max() < 0.05
    # p = 0 inside the block: every pass is the whole net exactly, so training mode
    # changed nothing but the dropout
    whole = block_net(dropout=0.0)
    silent = Sequential([whole.layers[0], whole.layers[1],
                         Residual([*whole.layers[2].branches[0], Dropout(0.0)]),
                         *whole.layers[3:]]).build((4,), F64, 0)
    for a, b in zip(whole.parameters(), silent.parameters()):
        b[0].params[b[1]][...] = a[0].params[a[1]]
    mean, std = mc_dropout(silent, x, passes=3, rng=1)
    np.testing.assert_allclose(mean, whole.predict(x), rtol=1e-12)
    np.testing.assert_allclose(std, 0, atol=1e-7)        # √(E[a²] − E[a]²) of round-off


def test_mc_dropout_refuses_a_block_whose_training_mode_would_also_distort():
    from nablanet.ensemble import mc_dropout
    from nablanet.layers import RandomDistortion
    net = Sequential([Residual([RandomDistortion("affine", image_shape=(2, 2)), Dropout(0.5)]),
                      Dense(n_out=2), Softmax()]).build((4,), F64, 0)
    with pytest.raises(ConfigError, match="would also switch on its RandomDistortion"):
        mc_dropout(net, np.zeros((2, 4)))


def test_mc_dropout_reaches_dropout_in_a_block_nested_in_a_block():
    """The inner block is stochastic but is not itself the Dropout: what decides is the
    leaves, however deep (a walk of one level saw no Dropout and sampled nothing)."""
    from nablanet.ensemble import mc_dropout
    from nablanet.layers import RandomDistortion
    x = np.random.default_rng(0).standard_normal((30, 4))

    def nested(*inner):
        return Sequential([Residual([Dense(n_out=4), Residual([*inner, Dense(n_out=4)])]),
                           Dense(n_out=3), Softmax()]).build((4,), F64, 0)

    net = nested(Dropout(0.3))
    mean, std = mc_dropout(net, x, passes=200, rng=1)
    assert (std.max(axis=1) > 1e-4).all()           # every example's outputs vary (0 unsampled)
    assert np.abs(mean - net.predict(x)).max() < 0.05
    with pytest.raises(ConfigError, match="would also switch on its RandomDistortion$"):
        mc_dropout(nested(RandomDistortion("affine", image_shape=(2, 2)), Dropout(0.3)), x)
    # inside a Concat beside an identity branch; p = 0 there gives the whole net every pass
    for p in (0.5, 0.0):
        concat = Concat([[Dense(n_out=3), Dropout(p)], []])
        net = Sequential([Dense(n_out=4), Tanh(), Residual([concat, Dense(n_out=4)]),
                          Dense(n_out=3), Softmax()]).build((4,), F64, 0)
        mean, std = mc_dropout(net, x, passes=50, rng=1)
        if p:
            assert (std > 1e-3).all()
        else:
            np.testing.assert_allclose(mean, net.predict(x), rtol=1e-12)
            np.testing.assert_allclose(std, 0, atol=1e-7)


EXAMPLE_NETS = {
    "deep-sigmoid": ["Dense", "Sigmoid"] * 9 + ["Dense", "Softmax"],
    "deep-residual": ["Dense", "Sigmoid"] + ["Residual"] * 8 + ["Dense", "Softmax"],
    "inception-cnn": ["Reshape", "Conv2D", "ReLU", "MaxPool2D", "Concat", "Residual", "ReLU",
                      "MaxPool2D", "Flatten", "Dense", "Softmax"],
}


@pytest.mark.parametrize("name", EXAMPLE_NETS)
def test_the_example_configs_of_docs_branching_build_the_nets_they_describe(name):
    from pathlib import Path

    from nablanet.config import TrainConfig, build_net, build_trainer
    examples = Path(__file__).parent.parent / "docs" / "examples"
    assert {p.stem for p in examples.glob("*.toml")} == set(EXAMPLE_NETS)
    config = TrainConfig.from_toml(examples / f"{name}.toml").resolve(784)
    net = build_net(config, rng=0)
    assert [type(layer).__name__ for layer in net.layers] == EXAMPLE_NETS[name]
    rng = np.random.default_rng(0)
    data = Dataset(rng.random((20, 784), dtype=np.float32), np.arange(20) % 10)
    history = build_trainer(config, net, rng=0).fit(data, epochs=1)
    assert np.isfinite(history["train_cost"][0])


@pytest.mark.parametrize("make", [
    lambda d: [d, Sigmoid(), d],
    lambda d: [d, Residual([d])],
    lambda d: [Concat([[d], [d]])],
], ids=["top level", "in a block and above it", "in two branches"])
def test_one_layer_object_in_two_places_is_refused(make):
    """Listed twice, its parameters would take two optimiser steps per batch (2η)."""
    with pytest.raises(ConfigError, match=r"the same Dense layer object appears twice"):
        Sequential(make(Dense(n_out=4))).build((4,), F64, 0)
