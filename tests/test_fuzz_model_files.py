"""Fuzzing every model file nablanet reads back: config.json damaged at any JSON path,
weights.safetensors with wrong, missing, extra or non-finite tensors, a lying header or
flipped bytes. Each load must give a working model or exactly one ModelFileError, and
never allocate more than a few megabytes for a damaged file.

The models are every net of test_model_round_trip.NETS (one per registered layer: MLPs,
CNNs with pooling and LRN, Residual/Concat blocks, RNN/LSTM/GRU nets, embeddings), an
RBM, an untied DBN and a character language model.
"""
from __future__ import annotations

import json
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
from fuzzing import FUZZ, loaded_or_refused, mutated, one_error, single_mutations
from hypothesis import given
from hypothesis import strategies as st
from test_model_round_trip import NETS, built

from nablanet import ModelFileError
from nablanet.errors import NablanetError
from nablanet.io import load_model, save_model
from nablanet.models.charlm import CharLM, Vocabulary, char_lstm
from nablanet.models.dbn import DBN
from nablanet.models.persistence import load_rbm, save_rbm
from nablanet.models.rbm import RBM


def _load_net(directory):
    return load_model(directory)[0]


def _load_rbm(directory):
    return load_rbm(directory)[0]


def _load_char_lm(directory):
    return CharLM.load(directory).net


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """name → (model directory, loader returning what to run a batch through)."""
    root = tmp_path_factory.mktemp("models")
    models = {name: (save_model(root / name, built(name), "cross-entropy",
                                metadata={"epoch": 3}), _load_net) for name in NETS}
    dbn = DBN([6, 4, 3], n_labels=2, rng=0)
    dbn.untie()
    models["RBM"] = (save_rbm(root / "rbm", RBM(6, 4, hidden="gaussian", rng=0)), _load_rbm)
    models["DBN"] = (save_rbm(root / "dbn", dbn), _load_rbm)
    vocabulary = Vocabulary("abc")
    models["char-LM"] = (CharLM(char_lstm(3, 4, seq_length=5, rng=0), vocabulary)
                         .save(root / "char-lm"), _load_char_lm)
    return models


def _damaged_copy(source: Path, into: Path, **files: bytes) -> Path:
    target = into / "model"
    shutil.copytree(source, target)
    for name, data in files.items():
        (target / name.replace("_", ".")).write_bytes(data)
    return target


def _runs(model) -> None:
    """A model that loads must run, or say in one line why it cannot (a OneHot layer
    a damaged file moved above float inputs is found by the first batch)."""
    try:
        if isinstance(model, (RBM, DBN)):
            rbm = model if isinstance(model, RBM) else model.rbms[0]
            rbm.free_energy(np.zeros((2, rbm.n_visible), np.float32))
        else:
            model.predict(np.zeros((2, *model.input_shape)))
    except NablanetError as exc:
        assert "\n" not in str(exc)


def _modest(document) -> bool:
    """Whether every number in ``document`` is below 10⁴. A file may declare geometry
    whose forward pass needs more memory than any machine has (an input_shape of 10¹²,
    a Conv2D padding of 50 000, which PyTorch accepts too): found at the first batch,
    like data too large for the machine, and not run here."""
    if isinstance(document, dict):
        return all(_modest(v) for v in document.values())
    if isinstance(document, list):
        return all(_modest(v) for v in document)
    return not isinstance(document, (int, float)) or not abs(document) >= 10**4


MODELS = sorted([*NETS, "RBM", "DBN", "char-LM"])


def _config_loads_or_is_one_error(directory: Path, load, config) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        # allow_nan: JSON's NaN and Infinity tokens are part of the fuzz
        text = json.dumps(config).encode()
        model = loaded_or_refused(load, _damaged_copy(directory, Path(scratch),
                                                      config_json=text),
                                  error=ModelFileError)
        if model is not None and _modest(config):
            _runs(model)


@pytest.mark.parametrize("name", MODELS)
@FUZZ
@given(data=st.data())
def test_a_damaged_config_json_loads_a_working_model_or_is_one_error(saved, name, data):
    directory, load = saved[name]
    config = json.loads((directory / "config.json").read_text())
    _config_loads_or_is_one_error(directory, load, data.draw(mutated(config)))


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_every_single_damage_to_config_json_loads_or_is_one_error(saved, name):
    """Exhaustive: each value of each path replaced by each extreme, removed, extended."""
    directory, load = saved[name]
    config = json.loads((directory / "config.json").read_text())
    for what, damaged in single_mutations(config):
        try:
            _config_loads_or_is_one_error(directory, load, damaged)
        except Exception as exc:
            raise AssertionError(f"{name}: config.json with {what}") from exc


def _tensor_damage():
    """A change to one tensor, or to the set of tensors."""
    return st.sampled_from(["drop", "extra", "int32", "uint8", "bool", "float16", "float64",
                            "nan", "inf", "transpose", "flatten", "add-axis", "empty",
                            "rename"])


def _cast(value, dtype):
    """``value`` as an integer type; a NaN or huge weight casts to some integer (the damage
    wanted), with a RuntimeWarning that says nothing about nablanet."""
    with np.errstate(invalid="ignore", over="ignore"):
        return value.astype(dtype)


def _damage_tensors(tensors: dict, key: str, how: str) -> dict:
    tensors = dict(tensors)
    value = tensors[key]
    changes = {
        "int32": lambda: _cast(value, np.int32), "uint8": lambda: _cast(value, np.uint8),
        "bool": lambda: value > 0, "float16": lambda: value.astype(np.float16),
        "float64": lambda: value.astype(np.float64),
        "nan": lambda: np.where(np.arange(value.size).reshape(value.shape) == 0, np.nan, value),
        "inf": lambda: np.full_like(value, np.inf),
        "transpose": lambda: value.T, "flatten": lambda: value.reshape(-1),
        "add-axis": lambda: value[None], "empty": lambda: value[:0],
    }
    if how == "drop":
        del tensors[key]
    elif how == "extra":
        tensors[key + "_extra"] = value
    elif how == "rename":
        tensors["layer99." + key.rpartition(".")[2]] = tensors.pop(key)
    else:
        tensors[key] = np.ascontiguousarray(changes[how]())
    return tensors


@pytest.mark.parametrize("name", MODELS)
@FUZZ
@given(data=st.data())
def test_damaged_weights_load_or_are_one_error(saved, name, data):
    directory, load = saved[name]
    tensors = safetensors.numpy.load_file(str(directory / "weights.safetensors"))
    if not tensors:
        return                                    # a net without parameters
    for _ in range(data.draw(st.integers(1, 2))):
        if tensors:
            key = data.draw(st.sampled_from(sorted(tensors)), label="tensor")
            tensors = _damage_tensors(tensors, key, data.draw(_tensor_damage(), label="how"))
    with tempfile.TemporaryDirectory() as scratch:
        model = loaded_or_refused(
            load, _damaged_copy(directory, Path(scratch),
                                weights_safetensors=safetensors.numpy.save(tensors)),
            error=ModelFileError)
    if model is not None:
        _runs(model)


def _header_and_body(blob: bytes) -> tuple[dict, bytes]:
    (length,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8:8 + length]), blob[8 + length:]


@pytest.mark.parametrize("name", ["Dense", "Concat", "LSTM", "DBN"])
@FUZZ
@given(data=st.data())
def test_a_lying_safetensors_header_or_flipped_bytes_are_one_error(saved, name, data):
    directory, load = saved[name]
    blob = (directory / "weights.safetensors").read_bytes()
    how = data.draw(st.sampled_from(["header", "length", "flip", "truncate"]), label="how")
    if how == "header":
        header, body = _header_and_body(blob)
        text = json.dumps(data.draw(mutated(header), label="header")).encode()
        blob = struct.pack("<Q", len(text)) + text + body
    elif how == "length":
        blob = struct.pack("<Q", data.draw(st.sampled_from([0, 1, 2**63, 2**64 - 1])
                                           | st.integers(0, len(blob) + 64))) + blob[8:]
    elif how == "flip":
        data_bytes = bytearray(blob)
        for _ in range(data.draw(st.integers(1, 4))):
            at = data.draw(st.integers(0, len(data_bytes) - 1))
            data_bytes[at] = data.draw(st.integers(0, 255))
        blob = bytes(data_bytes)
    else:
        blob = blob[:data.draw(st.integers(0, len(blob) - 1))]
    with tempfile.TemporaryDirectory() as scratch:
        model = loaded_or_refused(load, _damaged_copy(directory, Path(scratch),
                                                      weights_safetensors=blob),
                                  error=ModelFileError)
    if model is not None:
        _runs(model)


@FUZZ
@given(text=st.sampled_from(["[" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000,
                             '{"format": ' + "7" * 5000 + "}", "\ufeff{}", "\x00", "\xff",
                             "NaN", "[]", '"nablanet-model"'])
       | st.text(max_size=40))
def test_unparseable_config_json_is_one_error(saved, text):
    """JSON nested 100 000 deep was a RecursionError and an integer of 5000 digits a
    ValueError (Python's limit on int parsing), each a traceback."""
    directory, load = saved["Dense"]
    with tempfile.TemporaryDirectory() as scratch:
        damaged = _damaged_copy(directory, Path(scratch),
                                config_json=text.encode("utf-8", "surrogatepass"))
        one_error(ModelFileError, load, damaged)
        one_error(ModelFileError, _load_rbm, damaged)


# -- regressions found by the fuzzers above ---------------------------------------------------
@pytest.mark.parametrize("name, path, value", [
    ("Dense", ("net", "layers", 0, "n_out"), 10**6),       # 4 × 10⁶ floats, the file holds 15
    ("Dense", ("net", "input_shape"), [10**6]),
    ("RBM", ("rbms", 0, "n_hidden"), 10**6),
    ("LSTM", ("net", "layers", 0, "n_hidden"), 10**5),
])
def test_sizes_the_weights_file_cannot_hold_are_refused_before_allocating(saved, tmp_path,
                                                                          name, path, value):
    """A width of 10⁶ in config.json took 27 s and 11 GB before the weights' check said
    it did not match; now the layers may not draw more than the file holds."""
    directory, load = saved[name]
    config = json.loads((directory / "config.json").read_text())
    parent = config
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    if path[-1] == "input_shape":
        parent["layers"][0]["n_in"] = None              # taken from the input
    damaged = _damaged_copy(directory, tmp_path, config_json=json.dumps(config).encode())
    one_error(ModelFileError, load, damaged, match="far more parameters than the \\d+ that "
                                                   "weights.safetensors holds")


@pytest.mark.parametrize("change, match", [
    ({"n_visible": float("inf")}, "positive whole-number sizes"),      # OverflowError
    ({"n_hidden": 2.5}, "positive whole-number sizes"),                # cut to 2 before
    ({"n_visible": "6"}, "positive whole-number sizes"),               # parsed before
    ({"n_labels": float("inf")}, "n_labels must be in"),
])
def test_rbm_sizes_must_be_whole_numbers(saved, tmp_path, change, match):
    directory, _ = saved["RBM"]
    config = json.loads((directory / "config.json").read_text())
    config["rbms"][0].update(change)
    damaged = _damaged_copy(directory, tmp_path, config_json=json.dumps(config).encode())
    one_error(ModelFileError, _load_rbm, damaged, match=match)


@pytest.mark.parametrize("change, match", [
    ({"image_shape": [10**9, 10**9]}, None),                  # was MemoryError in __init__
    ({"scale": ""}, "scale must be a \\(low, high\\) pair"),   # was IndexError
    ({"scale": [0.5]}, "scale must be a \\(low, high\\) pair"),
])
def test_random_distortion_options_are_checked_without_large_images(saved, tmp_path, change,
                                                                     match):
    directory, _ = saved["RandomDistortion"]
    config = json.loads((directory / "config.json").read_text())
    config["net"]["layers"][0].update(change)
    damaged = _damaged_copy(directory, tmp_path, config_json=json.dumps(config).encode())
    one_error(ModelFileError, _load_net, damaged, match=match)
