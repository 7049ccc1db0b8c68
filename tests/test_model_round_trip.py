"""Every registered layer through a model file, driven by one table over the registry.

Each entry of :data:`NETS` is a small net holding one registered layer type, built with
constructor arguments other than the defaults where it has any; saving and loading it
must give the same config and the same inference outputs, and each of its tensors
missing, extra, mis-shaped or of an integer dtype, an unknown layer type or an unknown
argument must be one ModelFileError naming it. A layer registered without an entry
here fails :func:`test_every_registered_layer_has_a_net`.
"""
from __future__ import annotations

import inspect
import json
import re

import numpy as np
import pytest
import safetensors.numpy

from nablanet import ModelFileError, Sequential, get_backend
from nablanet.io import load_model, save_model
from nablanet.layers import (GRU, LSTM, AvgPool2D, Concat, Conv2D, Dense, Dropout, Embedding,
                             Flatten, LastStep, LeakyReLU, Linear, LocalResponseNorm, MaxPool2D,
                             OneHot, RandomDistortion, ReLU, Reshape, Residual, Sigmoid,
                             SimpleRNN, Softmax, Tanh, TimeDistributedDense)
from nablanet.layers.base import LAYERS

SYMBOLS = 5


def images(shape):
    return lambda rng: rng.standard_normal((4, *shape))


def symbols(steps):
    return lambda rng: rng.integers(0, SYMBOLS, (4, steps)).astype(np.float64)


# name → (a function making the layers of a net holding it, per-example input shape,
# a batch of inputs)
NETS = {
    "Dense": (lambda: [Dense(4, 3, init="glorot")], (4,), images((4,))),
    "Sigmoid": (lambda: [Dense(4, 3), Sigmoid()], (4,), images((4,))),
    "Tanh": (lambda: [Dense(4, 3), Tanh()], (4,), images((4,))),
    "ReLU": (lambda: [Dense(4, 3), ReLU()], (4,), images((4,))),
    "LeakyReLU": (lambda: [Dense(4, 3), LeakyReLU(0.3)], (4,), images((4,))),
    "Linear": (lambda: [Dense(4, 3), Linear()], (4,), images((4,))),
    "Softmax": (lambda: [Dense(4, 3), Softmax()], (4,), images((4,))),
    "Dropout": (lambda: [Dropout(0.3), Dense(4, 3), Dropout(0.6)], (4,), images((4,))),
    "Conv2D": (lambda: [Conv2D(None, 2, kernel_size=(3, 2), stride=(1, 2), padding=(1, 0),
                               init="he")],
               (2, 5, 6), images((2, 5, 6))),
    "MaxPool2D": (lambda: [Conv2D(1, 2, 3, padding=1), MaxPool2D((2, 3), stride=(1, 2), padding=1)],
                  (1, 5, 6), images((1, 5, 6))),
    "AvgPool2D": (lambda: [Conv2D(1, 2, 3, padding=1), AvgPool2D(3, stride=2, padding=1)],
                  (1, 5, 6), images((1, 5, 6))),
    "LocalResponseNorm": (lambda: [Conv2D(1, 4, 3),
                                   LocalResponseNorm(3, alpha=0.5, beta=0.5, k=1.5)],
                          (1, 5, 5), images((1, 5, 5))),
    "Flatten": (lambda: [Conv2D(1, 2, 3), Flatten(), Dense(None, 3)], (1, 4, 4), images((1, 4, 4))),
    "Reshape": (lambda: [Dense(4, 6), Reshape([1, 2, 3]), Conv2D(1, 2, (1, 2))], (4,),
                images((4,))),
    "RandomDistortion": (lambda: [RandomDistortion("affine", image_shape=(4, 4), rotation=5.0,
                                           scale=(0.8, 1.2)), Dense(16, 3)],
                         (16,), images((16,))),
    "SimpleRNN": (lambda: [SimpleRNN(2, 3, initial_state="learned", init="normal-scaled")],
                  (3, 2), images((3, 2))),
    "LSTM": (lambda: [LSTM(2, 3, initial_state="learned", forget_bias=0.5)], (3, 2),
             images((3, 2))),
    "GRU": (lambda: [GRU(2, 3, initial_state="learned", init="he")], (3, 2), images((3, 2))),
    "TimeDistributedDense": (lambda: [SimpleRNN(2, 3), TimeDistributedDense(3, 2, init="glorot")],
                             (3, 2), images((3, 2))),
    "LastStep": (lambda: [GRU(2, 3), LastStep(), Dense(3, 2)], (3, 2), images((3, 2))),
    "Embedding": (lambda: [Embedding(SYMBOLS, 3, init="glorot"), LSTM(3, 2)], (4,), symbols(4)),
    "OneHot": (lambda: [OneHot(SYMBOLS), SimpleRNN(SYMBOLS, 2)], (4,), symbols(4)),
    # the identity shortcut is Concat's entry (below); here each Residual has a projection
    "Residual": (lambda: [Dense(4, 3), Residual([Dense(n_out=2), Tanh(), Dropout(0.4),
                                                 Dense(n_out=2, init="he")],
                                                shortcut=[Dense(n_out=2)]),
                          Residual([Dense(n_out=3)], shortcut=[Dense(n_out=3)])],
                 (4,), images((4,))),
    "Concat": (lambda: [Conv2D(1, 2, 3, padding=1),
                        Concat([[Conv2D(out_channels=1, kernel_size=1)], [],
                                [Residual([Conv2D(out_channels=2, kernel_size=3, padding=1)])],
                                [MaxPool2D(3, stride=1, padding=1)]]),
                        Flatten(), Concat([[Dense(n_out=2), ReLU()], [Dense(n_out=1)]])],
               (1, 4, 4), images((1, 4, 4))),
}


def test_every_registered_layer_has_a_net():
    assert set(NETS) == set(LAYERS)
    for name, (make, _, _) in NETS.items():
        assert name in {type(layer).__name__ for layer in make()}, name


def built(name, dtype="float32"):
    """NETS[name] built afresh (not remade from config(), which is under test),
    every parameter drawn at random so that each tensor shows in the outputs."""
    make, shape, _ = NETS[name]
    rng = np.random.default_rng(1)
    net = Sequential(make()).build(shape, get_backend("cpu", dtype), rng)
    for layer, param in net.parameters():
        layer.set_params(**{param: rng.standard_normal(layer.params[param].shape)})
    return net


def inputs(name):
    return NETS[name][2](np.random.default_rng(2))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", NETS)
def test_a_saved_net_loads_with_the_same_config_weights_and_outputs(tmp_path, name, dtype):
    net = built(name, dtype)
    loaded, _, _ = load_model(save_model(tmp_path / "m", net))
    assert loaded.config() == net.config()
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in net.layers]
    assert loaded.backend.dtype == net.backend.dtype
    for (layer, param), (twin, _) in zip(net.parameters(), loaded.parameters(), strict=True):
        np.testing.assert_array_equal(twin.params[param], layer.params[param])
        assert twin.params[param].dtype == layer.params[param].dtype
    x = inputs(name)
    expected = net.predict(x)
    assert np.isfinite(expected).all()
    np.testing.assert_array_equal(loaded.predict(x), expected)


@pytest.mark.parametrize("name", NETS)
def test_the_table_gives_the_layer_arguments_other_than_its_defaults(name):
    # A config() that dropped an optional argument would round-trip the default unseen.
    for layer in NETS[name][0]():
        cls = type(layer)
        required = {k: v for k, v in layer.config().items() if k in _required(cls)}
        if type(layer).__name__ == name and len(required) < len(layer.config()):
            assert layer.config() != cls(**required).config(), name


@pytest.mark.parametrize("name", NETS)
def test_a_layer_made_from_its_config_is_the_layer(name):
    # what a model file restores: every constructor argument, not only those that show in
    # the outputs (LSTM's forget_bias only sets the initial b)
    for layer in NETS[name][0]():
        twin = type(layer)(**layer.config())
        assert _state(twin) == _state(layer), type(layer).__name__


def _state(layer) -> dict:
    state = {k: v for k, v in vars(layer).items() if k not in ("backend", "rng", "_rng")}
    if "branches" in state:          # a block: its layers' states, not the objects
        state["branches"] = [[(type(child).__name__, _state(child)) for child in branch]
                             for branch in state["branches"]]
    return state


def _required(cls) -> list[str]:
    # a size left None (Dense's n_in, n_out) is taken from the input or must be given
    return [p.name for p in inspect.signature(cls).parameters.values()
            if (p.default is inspect.Parameter.empty or p.default is None)
            and p.kind is p.POSITIONAL_OR_KEYWORD]


# -- damage, for every layer type --------------------------------------------------------------

def tensors_of(directory):
    return dict(safetensors.numpy.load_file(str(directory / "weights.safetensors")))


def rewrite(directory, tensors):
    (directory / "weights.safetensors").write_bytes(safetensors.numpy.save(tensors))


def config_of(directory):
    return json.loads((directory / "config.json").read_text())


PARAMS = [(name, key) for name in NETS for key in sorted(
    f"layer{i}.{p}" for i, layer in enumerate(built(name).layers) for p in layer.params)]


@pytest.mark.parametrize("name, key", PARAMS)
def test_a_missing_mis_shaped_or_integer_tensor_is_a_model_file_error(tmp_path, name, key):
    directory = save_model(tmp_path / "m", built(name))
    good = tensors_of(directory)
    damage = {
        "missing": ({k: v for k, v in good.items() if k != key},
                    rf"missing \['{key}'\], unexpected none"),
        "shape": ({**good, key: np.zeros(good[key].shape + (1,), np.float32)},
                  re.escape(f"{key} has shape {good[key].shape + (1,)}, architecture needs "
                            f"{good[key].shape}")),
        "dtype": ({**good, key: good[key].astype(np.int32)}, rf"{key} has non-float dtype int32"),
        "nan": ({**good, key: np.full_like(good[key], np.nan)}, rf"{key} holds non-finite"),
    }
    for tensors, match in damage.values():
        rewrite(directory, tensors)
        with pytest.raises(ModelFileError, match=f"weights.safetensors: .*{match}"):
            load_model(directory)


@pytest.mark.parametrize("name", NETS)
def test_an_extra_tensor_an_unknown_type_or_argument_is_a_model_file_error(tmp_path, name):
    directory = save_model(tmp_path / "m", built(name))
    good_tensors, good_config = tensors_of(directory), config_of(directory)
    last = len(good_config["net"]["layers"])
    rewrite(directory, {**good_tensors, f"layer{last}.W": np.zeros(2, np.float32)})
    with pytest.raises(ModelFileError, match=rf"unexpected \['layer{last}.W'\]"):
        load_model(directory)
    rewrite(directory, good_tensors)
    i = next(i for i, spec in enumerate(good_config["net"]["layers"]) if spec["type"] == name)
    for edit, match in ((lambda spec: spec.update(type=name + "3D"),
                         rf"layer {i} has unknown type '{name}3D'"),
                        (lambda spec: spec.update(type=[name]),
                         rf"layer {i} has unknown type \['{name}'\]"),
                        (lambda spec: spec.update(colour="red"),
                         rf"layer {i} \({name}\): .*colour")):
        config = json.loads(json.dumps(good_config))
        edit(config["net"]["layers"][i])
        (directory / "config.json").write_text(json.dumps(config))
        with pytest.raises(ModelFileError, match=f"config.json: {match}"):
            load_model(directory)


# -- constructor arguments a file may get wrong ------------------------------------------------

@pytest.mark.parametrize("spec, match", [
    ({"type": "Dense", "n_in": 4, "n_out": 2.5}, r"Dense needs positive whole-number sizes"),
    ({"type": "Dense", "n_in": True, "n_out": 3}, r"n_in=True"),
    ({"type": "Dense", "n_in": 4, "n_out": "3"}, r"n_out='3'"),
    ({"type": "TimeDistributedDense", "n_in": 3, "n_out": 2.5}, r"whole-number sizes"),
    ({"type": "SimpleRNN", "n_in": 2, "n_hidden": 2.5}, r"SimpleRNN needs positive whole"),
    ({"type": "LSTM", "n_in": 2.5, "n_hidden": 3}, r"LSTM needs positive whole"),
    ({"type": "GRU", "n_in": 2, "n_hidden": False}, r"GRU needs positive whole"),
    ({"type": "Embedding", "n_symbols": 5.5, "n_dims": 3}, r"n_symbols=5.5"),
    ({"type": "Embedding", "n_symbols": 5, "n_dims": 3, "init": "bogus"}, r"unknown init 'bogus'"),
    ({"type": "OneHot", "n_symbols": 5.5}, r"OneHot needs a whole number n_symbols"),
    ({"type": "Conv2D", "in_channels": 1, "out_channels": 2.0}, r"out_channels must be a posi"),
    ({"type": "LocalResponseNorm", "size": True}, r"size must be a positive integer"),
    ({"type": "RandomDistortion", "kind": "affine", "image_shape": [4.5, 4]}, r"image_shape"),
    ({"type": "RandomDistortion", "kind": "affine", "image_shape": 16}, r"image_shape must be two"),
], ids=lambda v: str(v) if isinstance(v, dict) else "")
def test_a_size_that_is_not_a_whole_number_is_refused_not_cut(tmp_path, spec, match):
    # int(2.5) == 2: a file asking for 2.5 units once loaded as a net of 2
    from nablanet.config import TrainConfig
    from nablanet.errors import ConfigError

    with pytest.raises(ConfigError, match=f"layer 0 \\({spec['type']}\\): .*{match}"):
        TrainConfig(layers=[spec])
    directory = save_model(tmp_path / "m", built("Dense"))
    config = config_of(directory)
    config["net"]["layers"] = [spec]
    (directory / "config.json").write_text(json.dumps(config))
    where = f"config.json: layer 0 \\({spec['type']}\\): "
    with pytest.raises(ModelFileError, match=f"{where}.*{match}"):
        load_model(directory)


def test_a_numpy_integer_is_a_whole_number_and_saves_as_a_plain_one(tmp_path):
    layers = [Conv2D(np.int64(1), np.int64(2), 3), LocalResponseNorm(np.int32(3)), Flatten(),
              Dense(None, np.int64(3))]
    net = Sequential(layers).build((1, 4, 4), get_backend("cpu", "float32"), rng=0)
    loaded, _, _ = load_model(save_model(tmp_path / "m", net))      # JSON needs plain ints
    assert loaded.config() == net.config()


# -- RBMs and DBNs (models/persistence.py) --------------------------------------------------------

def _rbm_models():
    """name → a fresh RBM or DBN: every unit type on each side, label units, untied weights."""
    from nablanet.models.dbn import DBN
    from nablanet.models.rbm import RBM
    from nablanet.models.units import UNITS

    models = {f"RBM-{v}-{h}": lambda v=v, h=h: RBM(6, 4, visible=v, hidden=h, rng=0, init_std=0.5)
              for v in UNITS for h in UNITS}
    models["RBM-labels"] = lambda: RBM(6, 4, n_labels=2, rng=0, init_std=0.5)
    models["DBN-labels"] = lambda: DBN([6, 5, 4], n_labels=3, top_hidden="gaussian", rng=0,
                                       init_std=0.5)

    def untied():
        dbn = DBN([6, 5, 4, 3], rng=0, init_std=0.5)
        dbn.untie()
        for layer in dbn.generative:          # generative weights of their own, not Wᵀ
            layer["W"] = layer["W"] * 2 + 0.25
        return dbn

    models["DBN-untied"] = untied
    return models


RBM_MODELS = _rbm_models()


def rbms_of(model):
    return [model] if not hasattr(model, "rbms") else list(model.rbms)


def made(name, dtype):
    from nablanet.models.dbn import DBN

    model = RBM_MODELS[name]()
    if dtype == "float64":
        backend = get_backend("cpu", dtype)
        rbms = [type(r)(**r.config(), backend=backend, rng=0) for r in rbms_of(model)]
        model = rbms[0] if len(rbms) == 1 else DBN.from_rbms(rbms)
    for i, rbm in enumerate(rbms_of(model)):
        rbm.epochs_trained = i + 3
        for key, value in rbm.params.items():     # biases away from zero: each one shows
            rbm.set_params(**{key: value + np.arange(value.size).reshape(value.shape) / 7})
    return model


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", RBM_MODELS)
def test_a_saved_rbm_or_dbn_loads_with_the_same_units_weights_and_energies(tmp_path, name, dtype):
    from nablanet.models.persistence import _RBM_KEYS, load_rbm, save_rbm

    model = made(name, dtype)
    loaded, meta = load_rbm(save_rbm(tmp_path / "m", model, metadata={"k": 1}))
    assert type(loaded) is type(model) and meta == {"k": 1}
    for rbm, twin in zip(rbms_of(model), rbms_of(loaded), strict=True):
        assert {k: twin.config()[k] for k in _RBM_KEYS} == {k: rbm.config()[k] for k in _RBM_KEYS}
        assert twin.epochs_trained == rbm.epochs_trained and twin.backend.dtype == rbm.backend.dtype
        for key, value in rbm.params.items():
            np.testing.assert_array_equal(twin.params[key], value)
            assert twin.params[key].dtype == value.dtype
        v = np.random.default_rng(0).random((3, rbm.n_visible)).astype(dtype)
        np.testing.assert_array_equal(twin.free_energy(v), rbm.free_energy(v))
    generative = getattr(model, "generative", None)
    assert (getattr(loaded, "generative", None) is None) == (generative is None)
    for layer, twin in zip(generative or (), getattr(loaded, "generative", None) or (),
                           strict=True):
        for key in layer:
            np.testing.assert_array_equal(twin[key], layer[key])


@pytest.mark.parametrize("name", RBM_MODELS)
def test_each_damaged_rbm_tensor_is_a_model_file_error(tmp_path, name):
    from nablanet.models.persistence import load_rbm, save_rbm

    directory = save_rbm(tmp_path / "m", made(name, "float32"))
    good = tensors_of(directory)
    for key in good:
        for tensors, match in (
                ({k: v for k, v in good.items() if k != key}, rf"missing tensor {key}"),
                ({**good, key: good[key][..., None]}, rf"{key} has shape"),
                ({**good, key: good[key].astype(np.int64)}, rf"{key} has non-float dtype"),
                ({**good, key: np.full_like(good[key], np.inf)}, rf"{key} holds non-finite")):
            rewrite(directory, tensors)
            with pytest.raises(ModelFileError, match=f"weights.safetensors: {match}"):
                load_rbm(directory)
    rewrite(directory, {**good, "rbm9.W": np.zeros(2, np.float32)})
    with pytest.raises(ModelFileError, match=r"unexpected tensors \['rbm9.W'\]"):
        load_rbm(directory)
