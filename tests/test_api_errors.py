"""Bad arguments and bad data given to the Python API: one nablanet error at the call,
naming the argument and the value, never a TypeError from int(), an AttributeError or a
silent run that trains nothing (the API audit; the CLI and file readers have their own)."""
import numpy as np
import pytest

from nablanet import SGD, Adam, L2, MaxNorm, Momentum, Sequential, mlp
from nablanet.data.dataset import Dataset
from nablanet.errors import ConfigError, DataError
from nablanet.layers import Dense, Dropout, Sigmoid
from nablanet.optim import DeltaBarDelta, Rprop
from nablanet.training import Trainer
from nablanet.training.callbacks import EarlyStopping, Progress
from nablanet.training.schedules import BoldDriver, CosineDecay, HalveOnPlateau, StepDecay


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return Dataset(rng.normal(size=(12, 4)), rng.integers(0, 3, 12))


def trainer(**kwargs):
    return Trainer(mlp([4, 5, 3], rng=0), "cross-entropy", SGD(0.1), **kwargs)


# -- the trainer --------------------------------------------------------------------------
@pytest.mark.parametrize("epochs", [-1, 0, 2.5, "3", None, True])
def test_epochs_that_would_train_nothing_or_fail_in_range_are_refused(data, epochs):
    t = trainer(monitor=())
    with pytest.raises(ConfigError, match=r"'epochs' must be a whole number ≥ 1, got"):
        t.fit(data, epochs)
    assert len(t.history) == 0


def test_a_numpy_integer_is_a_whole_number_of_epochs(data):
    assert len(trainer(monitor=()).fit(data, np.int64(2))) == 2


@pytest.mark.parametrize("batch_size", [2.5, "10", None, True])
def test_batch_size_must_be_a_whole_number_not_cut_by_int(batch_size):
    with pytest.raises(DataError, match=r"'batch size' must be a whole number ≥ 1"):
        trainer(batch_size=batch_size)


@pytest.mark.parametrize("eval_chunk", [0, -1, 2.5, None])
def test_eval_chunk_is_checked_when_the_trainer_is_made(eval_chunk):
    with pytest.raises(ConfigError, match="'eval_chunk' must be a whole number ≥ 1"):
        trainer(eval_chunk=eval_chunk)


@pytest.mark.parametrize("kwargs, match", [
    ({"callbacks": EarlyStopping(2)}, r"callbacks must be a list such as \[EarlyStopping"),
    ({"callbacks": [1]}, "callbacks must hold objects such as EarlyStopping"),
    ({"penalties": L2(1.0)}, r"penalties must be a list such as \[L2"),
    ({"penalties": ["l2"]}, "penalties must hold objects such as L2"),
    ({"constraints": [3.0]}, "constraints must hold objects such as MaxNorm"),
    ({"monitor": "train_cost"}, r"monitor must be a sequence of names such as \('train_cost',\)"),
])
def test_trainer_arguments_of_the_wrong_kind(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        trainer(**kwargs)


def test_a_trainer_needs_a_sequential_net():
    with pytest.raises(ConfigError, match="Trainer needs a Sequential net"):
        Trainer(None, "quadratic", SGD(0.1))


# -- optimisers, penalties, schedules, callbacks ------------------------------------------
@pytest.mark.parametrize("make, match", [
    (lambda: SGD("0.1"), "'eta' must be a positive finite number, got '0.1'"),
    (lambda: SGD(None), "'eta' must be a positive finite number, got None"),
    (lambda: SGD(True), "'eta' must be"),
    (lambda: Momentum(0.1, None), "'momentum' must be a finite number"),
    (lambda: Adam(0.1, beta1="0.9"), "'beta1' must be"),
    (lambda: L2(float("nan")), "'lmbda' must be a finite number, got nan"),
    (lambda: L2(None), "'lmbda' must be"),
    (lambda: MaxNorm("3"), "'c' must be"),
    (lambda: DeltaBarDelta(0.1, phi=None), "'phi' must be"),
    (lambda: Rprop(eta_plus="1.2"), "'eta_plus' must be"),
    (lambda: Dropout("0.5"), "'p' must be a finite number"),
    (lambda: StepDecay(2.5), "'every' must be a whole number, got 2.5"),
    (lambda: StepDecay(2, None), "'factor' must be"),
    (lambda: CosineDecay(None), "'epochs' must be a whole number"),
    (lambda: CosineDecay(3, floor=float("nan")), "'floor' must be a finite number"),
    (lambda: HalveOnPlateau(2.5), "'patience' must be a whole number"),
    (lambda: BoldDriver(decrease=None), "'decrease' must be"),
    (lambda: EarlyStopping("3"), "'patience' must be a whole number, got '3'"),
    (lambda: EarlyStopping(3, growing=True, factor=float("nan")), "'factor' must be"),
    (lambda: Progress(total_epochs="a"), "'total_epochs' must be a whole number ≥ 1"),
])
def test_settings_of_the_wrong_type_are_config_errors(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


# -- nets -----------------------------------------------------------------------------------
@pytest.mark.parametrize("sizes", [[4, 2.5, 3], [4, "5", 3], [True, 3], "4,3", None])
def test_mlp_sizes_must_be_whole_numbers(sizes):
    with pytest.raises(ConfigError, match="sizes must list at least two positive layer widths"):
        mlp(sizes)


def test_mlp_takes_numpy_sizes():
    assert mlp(np.array([4, 5, 3]), rng=0).output_shape == (3,)


@pytest.mark.parametrize("layers, match", [
    (Dense(4, 3), "Sequential takes a list of layers"),
    ([Dense(4, 3), "sigmoid"], "layer 1 of the network is not a layer: 'sigmoid'"),
])
def test_sequential_needs_a_list_of_layers(layers, match):
    with pytest.raises(ConfigError, match=match):
        Sequential(layers)


@pytest.mark.parametrize("shape", ["a", 0, (4, 0), 2.5, ()])
def test_input_shape_must_be_positive_whole_numbers(shape):
    with pytest.raises(ConfigError, match="input_shape must hold positive whole numbers"):
        Sequential([Dense(n_out=3), Sigmoid()], input_shape=shape)


@pytest.mark.parametrize("x, match", [
    (np.array([[1.0, np.nan, 0.0, 0.0]]), r"inputs: x has 1 non-finite values .* row 0"),
    (np.array([["a"] * 4]), "inputs: x must be numeric, got dtype <U1"),
    (np.array([[1, 2, None, 4]], dtype=object), "must be numeric, got dtype object"),
    (np.ones((2, 4), dtype=complex), "must be numeric, got dtype complex128"),
])
def test_predict_refuses_inputs_that_are_not_finite_real_numbers(x, match):
    with pytest.raises(DataError, match=match):
        mlp([4, 3], rng=0).predict(x)


@pytest.mark.parametrize("chunk_size", [0, -1, 2.5])
def test_predict_chunk_size_must_be_positive(chunk_size):
    with pytest.raises(ConfigError, match="'chunk_size' must be a whole number ≥ 1"):
        mlp([4, 3], rng=0).classify(np.zeros((3, 4)), chunk_size=chunk_size)
