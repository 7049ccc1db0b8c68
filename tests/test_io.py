"""Model files: round trips, loading that never executes code, one clear ModelFileError for
every kind of damage, and atomic replacement of a saved model."""
import io as _io
import json
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest
import safetensors.numpy

import nablanet.io
from nablanet import ModelFileError, Sequential, get_backend, mlp
from nablanet.io import load_model, load_training_state, save_model, save_training_state
from nablanet.layers import Dense, Dropout, LeakyReLU, Softmax, Tanh


def _net(dtype="float32"):
    layers = [Dropout(0.2), Dense(5, 6, init="glorot"), LeakyReLU(0.05), Dropout(0.5),
              Dense(6, 4), Tanh(), Dense(4, 3), Softmax()]
    return Sequential(layers).build((5,), get_backend("cpu", dtype), rng=3)


@pytest.fixture
def saved(tmp_path):
    """A saved model directory and the net it came from."""
    net = _net()
    return save_model(tmp_path / "model", net, "log-likelihood", metadata={"epoch": 7}), net


def _x(n=10):
    return np.random.default_rng(0).standard_normal((n, 5)).astype(np.float32)


def _config(directory):
    return json.loads((directory / "config.json").read_text())


def _write_config(directory, config):
    (directory / "config.json").write_text(json.dumps(config))


# -- round trips ----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_gives_identical_predictions(tmp_path, dtype):
    net = _net(dtype)
    save_model(tmp_path / "m", net, "log-likelihood", metadata={"epoch": 7, "note": "hi"})
    loaded, cost, meta = load_model(tmp_path / "m")
    assert loaded.backend.dtype == net.backend.dtype
    np.testing.assert_array_equal(loaded.predict(_x()), net.predict(_x()))
    assert cost.name == "log-likelihood"
    assert meta == {"epoch": 7, "note": "hi"}
    assert loaded.config() == net.config()          # LeakyReLU's α, dropout p, init names


def test_a_model_can_be_loaded_in_another_dtype(saved):
    directory, net = saved
    loaded, _, _ = load_model(directory, dtype="float64")
    assert loaded.layers[1].params["W"].dtype == np.float64
    np.testing.assert_allclose(loaded.predict(_x()), net.predict(_x()), rtol=1e-5)


def test_a_model_saved_without_a_cost_loads_with_none(tmp_path):
    save_model(tmp_path / "m", mlp([2, 3], rng=0))
    assert load_model(tmp_path / "m")[1] is None


def test_the_files_are_plain_json_and_safetensors(saved):
    directory, net = saved
    config = _config(directory)
    assert config["format"] == "nablanet-model" and config["dtype"] == "float32"
    tensors = safetensors.numpy.load_file(str(directory / "weights.safetensors"))
    np.testing.assert_array_equal(tensors["layer1.W"], net.layers[1].params["W"])
    assert set(tensors) == {"layer1.W", "layer1.b", "layer4.W", "layer4.b", "layer6.W",
                            "layer6.b"}


def test_training_state_round_trip_survives_a_model_overwrite(tmp_path):
    net = mlp([2, 3], rng=0)
    state = ({"next_epoch": 4, "history": [{"epoch": 0, "cost": float("nan")}]},
             {"optimizer/velocity.0": np.arange(6.0).reshape(2, 3)})
    save_model(tmp_path / "last", net)
    save_training_state(tmp_path / "last", state)
    save_model(tmp_path / "last", net)          # a later epoch's model keeps the state beside it
    scalars, arrays = load_training_state(tmp_path / "last")
    assert scalars["next_epoch"] == 4 and np.isnan(scalars["history"][0]["cost"])
    np.testing.assert_array_equal(arrays["optimizer/velocity.0"], state[1]["optimizer/velocity.0"])


# -- loading never executes code -------------------------------------------------------------

class _Trap:
    """Unpickling this would create a file: proof that code ran."""

    path = None

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_a_pickle_as_weights_is_refused_and_not_executed(saved, tmp_path):
    directory, _ = saved
    _Trap.path = tmp_path / "pwned"
    (directory / "weights.safetensors").write_bytes(pickle.dumps({"layer1.W": _Trap()}))
    with pytest.raises(ModelFileError, match="weights.safetensors: truncated or malformed"):
        load_model(directory)
    assert not _Trap.path.exists()


def test_an_npy_object_array_as_weights_is_refused(saved, tmp_path):
    directory, _ = saved
    _Trap.path = tmp_path / "pwned"
    buffer = _io.BytesIO()
    np.save(buffer, np.array([_Trap()], dtype=object), allow_pickle=True)
    (directory / "weights.safetensors").write_bytes(buffer.getvalue())
    with pytest.raises(ModelFileError, match="weights.safetensors"):
        load_model(directory)
    assert not _Trap.path.exists()


@pytest.mark.parametrize("payload", [os.urandom(64), b"", b"\xff" * 8 + b"{}",
                                     (10**6).to_bytes(8, "little") + b'{"a": 1}'],
                         ids=["random", "empty", "huge-header-length", "header-past-end"])
def test_garbage_weights_are_a_model_file_error(saved, payload):
    directory, _ = saved
    (directory / "weights.safetensors").write_bytes(payload)
    with pytest.raises(ModelFileError, match="weights.safetensors"):
        load_model(directory)


def test_a_dtype_numpy_cannot_hold_is_a_model_file_error(saved):
    directory, _ = saved
    header = json.dumps({"layer1.W": {"dtype": "BF16", "shape": [5, 6],
                                      "data_offsets": [0, 60]}}).encode()
    (directory / "weights.safetensors").write_bytes(
        len(header).to_bytes(8, "little") + header + bytes(60))
    with pytest.raises(ModelFileError, match="weights.safetensors: unsupported tensor dtype 'BF16'"):
        load_model(directory)


@pytest.mark.parametrize("keep", [0.3, 0.9, 0.999])
def test_truncated_weights_are_a_model_file_error(saved, keep):
    directory, _ = saved
    path = directory / "weights.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(ModelFileError, match="truncated or malformed"):
        load_model(directory)


# -- damaged config.json: each problem named ------------------------------------------------------

def _damage(config, what):
    layers = config["net"]["layers"]
    if what == "format":
        config["format"] = "keras"
    elif what == "version":
        config["version"] = 99
    elif what == "unknown-layer":
        layers[2]["type"] = "os.system"
    elif what == "unknown-kwarg":
        layers[1]["activation"] = "relu"
    elif what == "bad-kwarg-value":
        layers[0]["p"] = 1.5
    elif what == "bad-kwarg-type":
        layers[0]["p"] = "half"
    elif what == "size-mismatch":
        layers[4]["n_in"] = 7
    elif what == "no-layers":
        config["net"]["layers"] = []
    elif what == "layer-not-object":
        layers[2] = "Tanh"
    elif what == "bad-input-shape":
        config["net"]["input_shape"] = [-5]
    elif what == "zero-input-shape":
        config["net"]["input_shape"] = [0]
    elif what == "float-input-shape":
        config["net"]["input_shape"] = [5.0]
    elif what == "bool-input-shape":
        config["net"]["input_shape"] = [True]
    elif what == "not-sequential":
        config["net"]["type"] = "Graph"
    elif what == "unknown-cost":
        config["cost"] = {"name": "hinge"}
    elif what == "bad-dtype":
        config["dtype"] = "int8"
    elif what == "metadata-not-object":
        config["metadata"] = "epoch 7"
    elif what == "cost-name-not-string":
        config["cost"] = {"name": ["log-likelihood"]}
    elif what == "huge-layer":
        layers[1]["n_out"] = 10**17              # no machine can allocate it: MemoryError
    elif what == "too-big-for-numpy":
        layers[1]["n_out"] = 10**30              # NumPy's ValueError
    return config


DAMAGE = {
    "format": "not a nablanet model", "version": "unsupported version 99",
    "unknown-layer": "layer 2 has unknown type 'os.system'",
    "unknown-kwarg": "layer 1 \\(Dense\\).*activation",
    "bad-kwarg-value": "layer 0 \\(Dropout\\).*dropout probability",
    "bad-kwarg-type": "layer 0 \\(Dropout\\)",
    "size-mismatch": "cannot take 6 inputs",
    "no-layers": "'layers' must be a non-empty list",
    "layer-not-object": "layer 2 is not an object",
    "bad-input-shape": "input_shape", "zero-input-shape": "input_shape",
    "float-input-shape": "input_shape", "bool-input-shape": "input_shape",
    "not-sequential": "Sequential",
    "unknown-cost": "unknown cost", "bad-dtype": "dtype",
    "metadata-not-object": "'metadata' must be a JSON object",
    "cost-name-not-string": "unknown cost",
    # refused before allocating: the weights file holds 79 parameters, not 10¹⁷ × 3
    "huge-layer": "need far more parameters than the 79 that weights.safetensors holds",
    "too-big-for-numpy": "need far more parameters than the 79 that weights.safetensors holds",
}


@pytest.mark.parametrize("what", list(DAMAGE))
def test_damaged_config_is_a_model_file_error_naming_the_problem(saved, what):
    directory, _ = saved
    _write_config(directory, _damage(_config(directory), what))
    with pytest.raises(ModelFileError, match=DAMAGE[what]) as info:
        load_model(directory)
    assert "config.json" in str(info.value)
    # a layer's own error is passed on as it is, not reported as a size problem
    assert ("need far more parameters" in str(info.value)) == (what in ("huge-layer",
                                                                         "too-big-for-numpy"))


def test_a_config_json_too_large_for_a_model_description_is_not_parsed(saved):
    directory, _ = saved
    with open(directory / "config.json", "r+b") as f:
        f.truncate(17 << 20)                     # sparse: 17 MiB without writing them
    with pytest.raises(ModelFileError, match="config.json: too large for a model description"):
        load_model(directory)


def test_loading_uses_the_given_backend_and_float32_for_an_old_file(saved):
    directory, _ = saved
    net, _, _ = load_model(directory, backend=get_backend("cpu", "float64"))
    assert net.backend.dtype == np.float64
    config = _config(directory)
    del config["dtype"]                           # written before the key existed
    _write_config(directory, config)
    assert load_model(directory)[0].backend.dtype == np.float32


@pytest.mark.parametrize("text, match", [("{not json", "malformed JSON"),
                                         ("[1, 2]", "expected a JSON object"),
                                         (b"\xff\xfe", "malformed JSON")])
def test_malformed_config_json(saved, text, match):
    directory, _ = saved
    path = directory / "config.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ModelFileError, match=match):
        load_model(directory)


@pytest.mark.parametrize("missing", ["config.json", "weights.safetensors"])
def test_missing_file(saved, missing):
    directory, _ = saved
    (directory / missing).unlink()
    with pytest.raises(ModelFileError, match=f"{missing}: file not found"):
        load_model(directory)


def _rewrite_tensors(directory, change):
    path = directory / "weights.safetensors"
    tensors = {k: v.copy() for k, v in safetensors.numpy.load_file(str(path)).items()}
    change(tensors)
    path.write_bytes(safetensors.numpy.save(tensors))


@pytest.mark.parametrize("change, match", [
    (lambda t: t.pop("layer4.b"), r"missing \['layer4.b'\], unexpected none"),
    (lambda t: t.update({"layer9.W": np.zeros((2, 2), np.float32)}),
     r"missing none, unexpected \['layer9.W'\]"),
    (lambda t: t.update({"layer1.W": np.zeros((6, 5), np.float32)}),
     r"layer1.W has shape \(6, 5\), architecture needs \(5, 6\)"),
    (lambda t: t.update({"layer6.b": np.zeros(3, np.int32)}), "layer6.b has non-float dtype"),
    (lambda t: t["layer4.W"].__setitem__((0, 0), np.nan), "layer4.W holds non-finite values"),
    (lambda t: t["layer6.b"].__setitem__(1, -np.inf), "layer6.b holds non-finite values"),
], ids=["missing", "extra", "shape", "dtype", "nan", "inf"])
def test_tensors_that_do_not_match_the_architecture(saved, change, match):
    directory, _ = saved
    _rewrite_tensors(directory, change)
    with pytest.raises(ModelFileError, match=match):
        load_model(directory)


# -- atomic replacement ----------------------------------------------------------------------------

def _assert_untouched(directory, net):
    loaded, _, meta = load_model(directory)
    assert meta == {"epoch": 7}
    np.testing.assert_array_equal(loaded.predict(_x()), net.predict(_x()))
    leftovers = [p.name for p in directory.parent.iterdir() if p.name != directory.name]
    assert leftovers == [], leftovers


def test_failure_while_serialising_leaves_the_previous_model(saved, monkeypatch):
    directory, net = saved

    def fail(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(safetensors.numpy, "save", fail)
    with pytest.raises(OSError, match="disk full"):
        save_model(directory, _net(), "quadratic", metadata={"epoch": 8})
    _assert_untouched(directory, net)


def test_failure_half_way_through_writing_leaves_the_previous_model(saved, monkeypatch):
    directory, net = saved
    real = nablanet.io.atomic_write_bytes
    calls = []

    def fail_second(path, data):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(path, data)
    monkeypatch.setattr(nablanet.io, "atomic_write_bytes", fail_second)
    with pytest.raises(OSError, match="disk full"):
        save_model(directory, _net(), "quadratic", metadata={"epoch": 8})
    assert len(calls) == 2
    _assert_untouched(directory, net)


def test_failure_at_the_final_swap_leaves_the_previous_model(saved, monkeypatch):
    """The new directory is moved in last; if that rename fails, the old one must come back."""
    directory, net = saved
    real = os.replace

    def fail_swap_in(src, dst):
        if str(src).endswith(".new"):
            raise OSError("rename failed")
        return real(src, dst)
    monkeypatch.setattr(os, "replace", fail_swap_in)
    with pytest.raises(OSError, match="rename failed"):
        save_model(directory, _net(), "quadratic", metadata={"epoch": 8})
    monkeypatch.setattr(os, "replace", real)
    _assert_untouched(directory, net)


def _killed_mid_swap(directory, pid, keep_new=True):
    """What a process killed (SIGKILL, power loss) between the swap's two renames leaves:
    the model moved aside to .old, the complete new one still at .new; returns that net."""
    newer = _net()
    newer.layers[1].params["W"] += 1
    tag = f"{pid}.00c0ffee"
    staged = save_model(directory.with_name("staged"), newer, "quadratic", metadata={"epoch": 7})
    os.replace(directory, directory.with_name(f".{directory.name}.{tag}.old"))
    os.replace(staged, directory.with_name(f".{directory.name}.{tag}.new"))
    if not keep_new:
        shutil.rmtree(directory.with_name(f".{directory.name}.{tag}.new"))
    return newer


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_swap_killed_between_its_renames_is_finished_by_the_next_load(saved):
    directory, _ = saved
    newer = _killed_mid_swap(directory, _dead_pid())
    _assert_untouched(directory, newer)


def test_a_swap_killed_before_its_new_directory_was_kept_restores_the_old_one(saved):
    directory, net = saved
    _killed_mid_swap(directory, _dead_pid(), keep_new=False)
    _assert_untouched(directory, net)


def test_a_swap_whose_process_is_alive_is_left_to_finish(saved):
    directory, _ = saved
    # a process that any real signal would end (SIGHUP too, which nohup would ignore)
    alive = subprocess.Popen([sys.executable, "-c", "import signal, time; "
                              "signal.signal(signal.SIGHUP, signal.SIG_DFL); print(flush=True); "
                              "time.sleep(60)"], stdout=subprocess.PIPE)
    try:
        alive.stdout.readline()                     # its handlers are set
        _killed_mid_swap(directory, alive.pid)
        with pytest.raises(ModelFileError, match="file not found"):
            load_model(directory)
        assert sorted(p.suffix for p in directory.parent.iterdir()) == [".new", ".old"]
        with pytest.raises(subprocess.TimeoutExpired):    # asked whether it lives, not signalled
            alive.wait(timeout=0.2)
    finally:
        alive.kill()
        alive.wait()


def test_a_killed_swap_is_finished_before_reading_the_training_state(tmp_path):
    directory = tmp_path / "last"
    save_model(directory, mlp([2, 3], rng=0), training_state=({"next_epoch": 4}, {}))
    os.replace(directory, tmp_path / f".last.{_dead_pid()}.00c0ffee.old")   # .new never made
    assert load_training_state(directory)[0] == {"next_epoch": 4}


def test_saving_after_a_killed_swap_leaves_no_debris(saved):
    directory, _ = saved
    _killed_mid_swap(directory, _dead_pid())
    other = _net()
    save_model(directory, other, "quadratic", metadata={"epoch": 7})
    _assert_untouched(directory, other)


def test_of_two_killed_swaps_the_newest_model_is_restored(saved):
    directory, net = saved
    newer = _net()
    newer.layers[1].params["W"] += 1
    pid = _dead_pid()
    for age, model in ((100, net), (0, newer)):          # seconds before now
        # one pid: the newer one's name sorts first, so only its mtime can pick it
        tag = f"{pid}.{age:08x}"
        moved = save_model(directory.with_name("staged"), model, "log-likelihood",
                           metadata={"epoch": 7})
        old = moved.rename(directory.with_name(f".{directory.name}.{tag}.old"))
        os.utime(old, (old.stat().st_atime, old.stat().st_mtime - age))
    shutil.rmtree(directory)
    loaded, _, _ = load_model(directory)
    np.testing.assert_array_equal(loaded.predict(_x()), newer.predict(_x()))


def test_a_stray_old_directory_without_a_pid_is_restored(saved):
    """A '.model.<anything>.old' a person left is not a live swap: put it back."""
    directory, net = saved
    directory.rename(directory.with_name(f".{directory.name}.backup.old"))
    _assert_untouched(directory, net)


def test_saving_creates_missing_parents_and_ignores_subdirectories(tmp_path):
    directory = save_model(tmp_path / "a" / "b" / "model", _net(), metadata={"epoch": 7})
    (directory / "notes").mkdir()                  # not a file: not copied, not an error
    save_training_state(tmp_path / "c" / "d", ({"next_epoch": 1}, {}))
    assert load_training_state(tmp_path / "c" / "d")[0] == {"next_epoch": 1}
    other = _net()
    other.layers[1].params["W"] += 1
    save_model(directory, other, "log-likelihood", metadata={"epoch": 7})
    loaded, _, _ = load_model(directory)
    np.testing.assert_array_equal(loaded.predict(_x()), other.predict(_x()))


def test_saving_over_a_model_replaces_it(saved):
    directory, _ = saved
    other = _net("float32")
    other.layers[1].params["W"] += 1
    save_model(directory, other, "quadratic", metadata={"epoch": 8})
    loaded, cost, meta = load_model(directory)
    assert cost.name == "quadratic" and meta == {"epoch": 8}
    np.testing.assert_array_equal(loaded.predict(_x()), other.predict(_x()))
    assert [p.name for p in directory.parent.iterdir()] == [directory.name]
