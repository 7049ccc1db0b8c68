"""Fuzzing what ``nablanet train --resume`` reads back: last/training_state.json damaged at
any JSON path and last/training_state.safetensors with retyped, reshaped or non-finite
optimiser slots. The resumed run must finish or stop at once with one nablanet error,
never with a traceback from the training loop an epoch later.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
from fuzzing import FUZZ, FUZZ_LONG, mutated
from hypothesis import given, settings
from hypothesis import strategies as st
from test_cli_data import write_blocks_idx

from nablanet.config import TrainConfig
from nablanet.errors import ModelFileError, NablanetError
from nablanet.runs import train_run

STATE = Path("last") / "training_state.json"
ARRAYS = Path("last") / "training_state.safetensors"


@pytest.fixture(scope="module")
def blocks(tmp_path_factory):
    return write_blocks_idx(tmp_path_factory.mktemp("data") / "blocks", n_train=80, n_test=20)


def _config(blocks, epochs: int) -> TrainConfig:
    # Adam (two slots per parameter), a schedule and early stopping: every kind of state
    return TrainConfig(dataset=str(blocks), validation_size=20, hidden=[4], epochs=epochs,
                       optimizer="adam", eta=0.01, schedule="halve-on-plateau",
                       early_stopping=3)


@pytest.fixture(scope="module")
def one_epoch(blocks, tmp_path_factory):
    directory = tmp_path_factory.mktemp("run") / "run"
    train_run(_config(blocks, 1), directory)
    return directory


def _resumes_or_is_one_error(blocks, one_epoch, *, state=None, arrays=None) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        run = Path(scratch) / "run"
        shutil.copytree(one_epoch, run)
        if state is not None:
            (run / STATE).write_text(json.dumps(state))
        if arrays is not None:
            (run / ARRAYS).write_bytes(safetensors.numpy.save(arrays))
        try:
            summary = train_run(_config(blocks, 2), run, resume=True)
        except NablanetError as exc:
            assert "\n" not in str(exc)
            return
        assert summary["status"] in ("completed", "early-stopped", "diverged")
        assert json.loads((run / "summary.json").read_text())["epochs_run"] == 2


def _check_damaged_state(blocks, one_epoch, data) -> None:
    state = json.loads((one_epoch / STATE).read_text())
    _resumes_or_is_one_error(blocks, one_epoch, state=data.draw(mutated(state)))


@settings(FUZZ, max_examples=25)
@given(data=st.data())
def test_a_damaged_training_state_resumes_or_is_one_error(blocks, one_epoch, data):
    _check_damaged_state(blocks, one_epoch, data)


@pytest.mark.slow
@settings(FUZZ_LONG, max_examples=300)         # ~0.1 s each: a resumed epoch
@given(data=st.data())
def test_a_damaged_training_state_resumes_or_is_one_error_long(blocks, one_epoch, data):
    _check_damaged_state(blocks, one_epoch, data)


def _set(path, value):
    def change(state):
        parent = state
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = value
    return change


def _drop(path):
    def change(state):
        parent = state
        for step in path[:-1]:
            parent = parent[step]
        del parent[path[-1]]
    return change


# Each was a traceback: at load (OverflowError, TypeError) or an epoch later in the loop.
@pytest.mark.parametrize("change, match", [
    (_set(("callbacks", 1, "since"), None), "'since' must be a whole number"),
    (_set(("callbacks", 1, "best", "value"), "x"), "'best value' must be a finite number"),
    (_set(("callbacks", 2, "patience"), None), "'patience' must be a whole number ≥ 1"),
    (_set(("callbacks", 4, "best", "epoch"), []), "'best epoch' must be a whole number"),
    (_set(("optimizer", "t"), -1), "'t' must be a whole number ≥ 0"),          # ZeroDivision
    (_set(("optimizer", "eta"), -1), "'eta' must be a non-negative finite number"),
    (_set(("history", 0), {}), "'history epoch' must be a whole number"),        # KeyError
    (_drop(("history", 0, "seconds")), "'history seconds' must be a finite number"),
    (_set(("history", 0, "train_cost"), "low"), "history 'train_cost' must be a number"),
    (_set(("history",), []), r"'history' must hold epochs 0 to 0 in order, got \[\]"),
    (_set(("rng", "state", "state"), -1), "OverflowError"),
    (_set(("blas_threads",), True), "'blas_threads' must be a whole number ≥ 1"),
], ids=["since", "best-value", "patience", "best-epoch", "t", "eta", "row", "seconds",
        "metric", "rows", "rng", "threads"])
def test_damaged_training_state_values_are_one_model_file_error(blocks, one_epoch, change,
                                                                match):
    state = json.loads((one_epoch / STATE).read_text())
    change(state)
    with tempfile.TemporaryDirectory() as scratch:
        run = Path(scratch) / "run"
        shutil.copytree(one_epoch, run)
        (run / STATE).write_text(json.dumps(state))
        with pytest.raises(ModelFileError, match=f"malformed training state.*{match}"):
            train_run(_config(blocks, 2), run, resume=True)


def test_callbacks_that_are_not_a_list_are_one_model_file_error(blocks, one_epoch, tmp_path):
    state = json.loads((one_epoch / STATE).read_text())
    state["callbacks"] = None                     # was len(None): TypeError
    run = tmp_path / "run"
    shutil.copytree(one_epoch, run)
    (run / STATE).write_text(json.dumps(state))
    with pytest.raises(ModelFileError, match="'callbacks' must be a list of callback states"):
        train_run(_config(blocks, 2), run, resume=True)


@pytest.mark.parametrize("retype, match", [
    (lambda a: a.astype(np.int32), "must hold finite float32 numbers, got int32"),  # mid-epoch
    (lambda a: a.astype(np.float16), "must hold finite float32 numbers, got float16"),
    (lambda a: np.full_like(a, np.inf), "must hold finite float32 numbers, got float32 with NaN"),
])
def test_optimizer_slots_of_another_type_or_non_finite_are_one_error(blocks, one_epoch,
                                                                     tmp_path, retype, match):
    arrays = safetensors.numpy.load_file(str(one_epoch / ARRAYS))
    arrays["optimizer/m.0"] = np.ascontiguousarray(retype(arrays["optimizer/m.0"]))
    run = tmp_path / "run"
    shutil.copytree(one_epoch, run)
    (run / ARRAYS).write_bytes(safetensors.numpy.save(arrays))
    with pytest.raises(ModelFileError, match=f"adam state 'm.0' {match}"):
        train_run(_config(blocks, 2), run, resume=True)
