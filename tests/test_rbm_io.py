"""Saving and loading RBMs and DBNs: JSON + safetensors, round trip and damaged files."""
import json

import numpy as np
import pytest

from nablanet import ModelFileError, get_backend
from nablanet.models.dbn import DBN
from nablanet.models.persistence import load_rbm, save_rbm
from nablanet.models.rbm import RBM


def test_rbm_round_trip_keeps_weights_units_and_free_energies(tmp_path):
    rbm = RBM(12, 5, hidden="gaussian", rng=0, init_std=0.3)
    rbm.epochs_trained = 7
    save_rbm(tmp_path / "m", rbm, metadata={"note": "x"})
    loaded, meta = load_rbm(tmp_path / "m")
    assert isinstance(loaded, RBM) and loaded.hidden == "gaussian"
    assert meta == {"note": "x"} and loaded.epochs_trained == 7
    v = (np.random.default_rng(0).random((4, 12)) < 0.5).astype(np.float32)
    np.testing.assert_array_equal(loaded.free_energy(v), rbm.free_energy(v))
    assert not list(tmp_path.glob("*.new")) and not list(tmp_path.glob(".m*"))


def test_dbn_with_label_units_round_trip(tmp_path):
    dbn = DBN([10, 6, 8], n_labels=3, rng=0)
    save_rbm(tmp_path / "dbn", dbn)
    loaded, _ = load_rbm(tmp_path / "dbn")
    assert isinstance(loaded, DBN) and loaded.sizes == [10, 6, 8] and loaded.n_labels == 3
    x = np.random.default_rng(1).random((5, 10)).astype(np.float32)
    np.testing.assert_array_equal(loaded.label_free_energies(x), dbn.label_free_energies(x))


def test_damaged_files_raise_model_file_errors(tmp_path):
    save_rbm(tmp_path / "m", RBM(4, 3, rng=0))
    weights = tmp_path / "m" / "weights.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated"):
        load_rbm(tmp_path / "m")

    save_rbm(tmp_path / "m", RBM(4, 3, rng=0))
    config = tmp_path / "m" / "config.json"
    spec = json.loads(config.read_text())
    spec["rbms"][0]["n_hidden"] = 5                 # no longer matches the tensors
    config.write_text(json.dumps(spec))
    with pytest.raises(ModelFileError, match="shape"):
        load_rbm(tmp_path / "m")

    spec["rbms"][0]["n_hidden"] = 3
    spec["rbms"][0]["visible"] = "__import__('os')"
    config.write_text(json.dumps(spec))
    with pytest.raises(ModelFileError, match="visible units"):
        load_rbm(tmp_path / "m")

    config.write_text("{not json")
    with pytest.raises(ModelFileError, match="malformed"):
        load_rbm(tmp_path / "m")
    with pytest.raises(ModelFileError, match="not found"):
        load_rbm(tmp_path / "missing")


def test_mismatched_stack_in_a_file_is_a_model_file_error(tmp_path):
    dbn = DBN([6, 4, 3], rng=0)
    save_rbm(tmp_path / "d", dbn)
    config = tmp_path / "d" / "config.json"
    spec = json.loads(config.read_text())
    spec["rbms"][1]["n_visible"] = 5
    config.write_text(json.dumps(spec))
    with pytest.raises(ModelFileError):
        load_rbm(tmp_path / "d")


def _set(key, value):
    return lambda config: config.update({key: value})


@pytest.mark.parametrize("damage, match", [
    (_set("epochs_trained", ["three"]), "'epochs_trained' must list a whole number"),
    (_set("epochs_trained", [None]), "'epochs_trained' must list a whole number"),
    (_set("epochs_trained", [3, 4]), "'epochs_trained' must list a whole number .* each RBM"),
    (_set("metadata", ["note"]), "'metadata' must be a JSON object"),
    (_set("dtype", ["float32"]), "unsupported dtype"),
    (lambda config: config["rbms"][0].update(n_hidden=10**17),
     "RBM 0: the layers need far more parameters than the 19 that weights.safetensors holds"),
    (_set("format", "nablanet"), "not a saved RBM or DBN"),
    (_set("version", 2), "unsupported version 2"),
    (lambda config: config["rbms"].append(config["rbms"][0]), "'type' must be RBM or DBN"),
    (lambda config: config.update(type="DBN", rbms=[], epochs_trained=None),
     "'type' must be RBM or DBN"),
    (_set("epochs_trained", [True]), "'epochs_trained' must list a whole number"),
    (_set("epochs_trained", [-1]), "'epochs_trained' must list a whole number"),
    (lambda config: config["rbms"][0].pop("n_labels"), "must have exactly the keys"),
    (_set("untied", True), "'untied' must be true or false \\(true only for a DBN\\)"),
], ids=["epochs-text", "epochs-null", "epochs-per-rbm", "metadata-list", "dtype-list", "huge",
        "format", "version", "two-rbms-in-an-rbm", "no-rbms", "epochs-bool", "epochs-negative",
        "missing-key", "untied-rbm"])
def test_config_values_of_the_wrong_type_are_model_file_errors(tmp_path, damage, match):
    save_rbm(tmp_path / "m", RBM(4, 3, rng=0))
    config = tmp_path / "m" / "config.json"
    spec = json.loads(config.read_text())
    damage(spec)
    config.write_text(json.dumps(spec))
    with pytest.raises(ModelFileError, match=match) as info:
        load_rbm(tmp_path / "m")
    assert "config.json" in str(info.value)


def test_non_finite_weights_are_a_model_file_error(tmp_path):
    import safetensors.numpy

    save_rbm(tmp_path / "m", RBM(4, 3, rng=0))
    weights = tmp_path / "m" / "weights.safetensors"
    tensors = {k: v.copy() for k, v in safetensors.numpy.load_file(str(weights)).items()}
    tensors["rbm0.b_hidden"][1] = np.nan
    weights.write_bytes(safetensors.numpy.save(tensors))
    with pytest.raises(ModelFileError, match="weights.safetensors: rbm0.b_hidden holds non-finite"):
        load_rbm(tmp_path / "m")


def test_a_file_written_before_the_dtype_key_loads_in_float32(tmp_path):
    save_rbm(tmp_path / "m", RBM(4, 3, backend=get_backend("cpu", "float64"), rng=0))
    config = tmp_path / "m" / "config.json"
    spec = json.loads(config.read_text())
    del spec["dtype"]
    config.write_text(json.dumps(spec))
    assert load_rbm(tmp_path / "m")[0].backend.dtype == np.float32


def test_float64_models_load_in_float64(tmp_path):
    rbm = RBM(5, 3, backend=get_backend("cpu", "float64"), init_std=0.3, rng=0)
    save_rbm(tmp_path / "m", rbm)
    loaded, _ = load_rbm(tmp_path / "m")
    assert loaded.backend.dtype == np.float64
    for name, param in rbm.params.items():
        assert loaded.params[name].dtype == np.float64
        np.testing.assert_array_equal(loaded.params[name], param)


def untied_dbn_file(path):
    dbn = DBN([6, 4, 3], n_labels=2, rng=0)
    dbn.untie()
    save_rbm(path, dbn)
    return path / "config.json", path / "weights.safetensors"


@pytest.mark.parametrize("value", ["yes", 1])       # 1 == True in Python, not in the format
def test_untied_must_be_a_boolean(tmp_path, value):
    config, _ = untied_dbn_file(tmp_path / "d")
    spec = json.loads(config.read_text())
    spec["untied"] = value
    config.write_text(json.dumps(spec))
    with pytest.raises(ModelFileError, match="'untied' must be true or false"):
        load_rbm(tmp_path / "d")


@pytest.mark.parametrize("extra", ["rbm0.extra", "gen1.W"])   # gen1: the top RBM has none
def test_tensors_the_architecture_lacks_are_refused(tmp_path, extra):
    import safetensors.numpy
    _, weights = untied_dbn_file(tmp_path / "d")
    tensors = dict(safetensors.numpy.load_file(str(weights)))
    tensors[extra] = np.zeros((3, 4), np.float32)
    weights.write_bytes(safetensors.numpy.save(tensors))
    with pytest.raises(ModelFileError, match=f"unexpected tensors \\['{extra}'\\]"):
        load_rbm(tmp_path / "d")
