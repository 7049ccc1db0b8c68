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


# -- linear models, second-order optimisers, PCA, the autoencoder ------------------------
def blobs(n=20, k=3):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 3)), np.arange(n) % k


@pytest.mark.parametrize("model", ["LogisticRegression", "SoftmaxRegression"])
def test_an_unfitted_classifier_says_so(model):
    from nablanet import models
    with pytest.raises(ConfigError, match=f"this {model} is not fitted"):
        getattr(models, model)().predict(np.zeros((2, 3)))


@pytest.mark.parametrize("model", ["Perceptron", "Adaline", "SoftmaxRegression"])
def test_score_with_fewer_labels_than_examples_is_a_data_error(model):
    from nablanet import models
    x, y = blobs(k=2)
    fitted = getattr(models, model)().fit(x, y)
    with pytest.raises(DataError, match="x has 20 examples but y has 19"):
        fitted.score(x, y[:-1])


@pytest.mark.parametrize("make, match", [
    (lambda m: m.LinearRegression(l2=None), "'l2' must be a non-negative finite number"),
    (lambda m: m.LinearRegression(l2=float("nan")), "'l2' must be"),
    (lambda m: m.LinearRegression("sgd", epochs=2.5), "'epochs' must be a whole number ≥ 1"),
    (lambda m: m.LinearRegression("gd", eta="0.1"), "'eta' must be"),
    (lambda m: m.Perceptron(max_epochs=2.5), "'max_epochs' must be a whole number ≥ 1"),
    (lambda m: m.Perceptron(eta=None), "'eta' must be a positive finite number"),
    (lambda m: m.SoftmaxRegression(l2=float("nan")), "'l2' must be"),
    (lambda m: m.SoftmaxRegression(max_iter=2.5), "'max_iter' must be a whole number"),
    (lambda m: m.SoftmaxRegression(tol=-1), "'tol' must be a non-negative finite number"),
    (lambda m: m.SoftmaxRegression(solver="sgd", epochs=0), "'epochs' must be a whole number"),
    (lambda m: m.LogisticRegression(solver="sgd", batch_size=2.5), "'batch size' must be"),
])
def test_linear_model_settings_are_checked(make, match):
    from nablanet import models
    x, y = blobs(k=2)
    with pytest.raises((ConfigError, DataError), match=match):
        make(models).fit(x, y)


def test_a_failed_refit_leaves_the_fitted_classifier_as_it_was():
    from nablanet.models import SoftmaxRegression
    x, y = blobs()
    model = SoftmaxRegression().fit(x, y)
    before = model.coef_
    model.max_iter = 0
    with pytest.raises(ConfigError, match="max_iter"):
        model.fit(x, y)
    np.testing.assert_array_equal(model.coef_, before)


@pytest.mark.parametrize("y, match", [
    (np.zeros((20, 1, 1)), "regression targets y must be 1-D or n × k"),
])
def test_linear_regression_targets_of_three_axes(y, match):
    from nablanet.models import LinearRegression
    with pytest.raises(DataError, match=match):
        LinearRegression().fit(blobs()[0], y)


def test_labels_that_cannot_be_ordered_are_a_data_error():
    from nablanet.models import SoftmaxRegression
    x, _ = blobs()
    with pytest.raises(DataError, match="all numbers or all strings"):
        SoftmaxRegression().fit(x, np.array([1, "a"] * 10, dtype=object))


def objective(x=None):
    from nablanet.optim import Objective
    xx, y = blobs()
    net = mlp([3, 3], output="softmax", rng=0)
    return Objective(net, "log-likelihood", xx if x is None else x, y)


@pytest.mark.parametrize("run, match", [
    (lambda o, opt: opt.minimize(o, max_iter=2.5), "'max_iter' must be a whole number"),
    (lambda o, opt: opt.minimize(o, tol=float("nan")), "'tol' must be"),
    (lambda o, opt: opt.minimize(o, theta0=np.full(12, np.nan)), "theta0 must hold 12 finite"),
    (lambda o, opt: opt.hessian_free(o, max_iter=0), "max_iter must be ≥ 1"),
    (lambda o, opt: opt.hessian_free(o, cg_max_iter=0), "'cg_max_iter' must be a whole number"),
    (lambda o, opt: opt.hessian_free(o, damping=-1), "'damping' must be a non-negative"),
    (lambda o, opt: opt.hessian_free(o, damping=float("nan")), "'damping' must be"),
])
def test_second_order_settings_are_checked_before_the_first_iteration(run, match):
    from nablanet import optim
    with pytest.raises((ConfigError, DataError), match=match):
        run(objective(), optim)


@pytest.mark.parametrize("x, match", [
    (np.full((20, 3), np.nan), "non-finite"), (np.zeros((20, 4)), r"expects inputs of shape \(3,\)"),
])
def test_an_objective_checks_its_inputs(x, match):
    with pytest.raises(DataError, match=match):
        objective(x)


def test_an_objective_needs_a_positive_n_train():
    from nablanet.optim import Objective
    x, y = blobs()
    with pytest.raises(ConfigError, match="'n_train' must be a whole number ≥ 1"):
        Objective(mlp([3, 3], rng=0), "cross-entropy", x, y, n_train=0)


@pytest.mark.parametrize("k", [2.5, "2", None, True])
def test_pca_components_must_be_a_whole_number(k):
    from nablanet.models import PCA
    with pytest.raises(ConfigError, match="'n_components' must be a whole number"):
        PCA(k)


def test_pca_refuses_nan_where_the_svd_failed_and_codes_were_nan():
    from nablanet.models import PCA
    x = blobs()[0]
    with pytest.raises(DataError, match="training data: x has 1 non-finite"):
        PCA(2).fit(np.where(np.arange(60).reshape(20, 3) == 4, np.nan, x))
    with pytest.raises(DataError, match="data: x has 3 non-finite"):
        PCA(2).fit(x).encode(np.full((1, 3), np.nan))


def test_an_autoencoder_decodes_only_once_unrolled_and_refuses_nan():
    from nablanet.models import DeepAutoencoder
    ae = DeepAutoencoder([6, 4, 2], rng=0)
    with pytest.raises(ConfigError, match="unroll"):          # was an AttributeError
        ae.decode(np.zeros((2, 2)))
    ae.unroll(rng=0)
    with pytest.raises(DataError, match="codes: x has 2 non-finite"):
        ae.decode(np.full((1, 2), np.nan))


# -- RBMs, DBNs, up-down, AIS ---------------------------------------------------------------
def binary(n=20, d=6):
    return (np.random.default_rng(0).random((n, d)) > 0.5).astype(float)


def rbm(**kwargs):
    from nablanet.models import RBM
    return RBM(6, 4, rng=0, **kwargs)


@pytest.mark.parametrize("epochs", [-1, 0, 2.5, "2", True])
def test_rbm_epochs_that_would_train_nothing_or_be_cut(epochs):
    model = rbm()
    with pytest.raises(ConfigError, match="'epochs' must be a whole number ≥ 1"):
        model.fit(binary(), epochs)
    assert model.epochs_trained == 0


@pytest.mark.parametrize("kwargs, match", [
    ({"monitor_size": 0}, "'monitor_size' must be a whole number ≥ 1"),   # ZeroDivisionError
    ({"monitor_size": 2.5}, "'monitor_size' must be"),
    ({"cd": 1}, r"cd must be a ContrastiveDivergence\(...\), got 1"),
    ({"monitor": "reconstruction_error"}, "monitor must be a sequence of names"),
])
def test_rbm_fit_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        rbm().fit(binary(), 1, **kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({"k": 2.5}, "'k' must be a whole number, got 2.5"),
    ({"k": None}, "'k' must be a whole number"),
    ({"batch_size": 2.5}, "'batch_size' must be a whole number"),
    ({"learning_rate": "0.1"}, "'learning_rate' must be a finite number"),
    ({"momentum": None}, "'momentum' must be a finite number"),
    ({"momentum_switch": -1}, "'momentum_switch' must be a whole number ≥ 0"),
    ({"n_chains": 2.5}, "'n_chains' must be a whole number ≥ 1"),
])
def test_contrastive_divergence_settings(kwargs, match):
    from nablanet.models import ContrastiveDivergence
    with pytest.raises(ConfigError, match=match):
        ContrastiveDivergence(**kwargs)


@pytest.mark.parametrize("std", [-1, float("nan"), "0.01", None])
def test_rbm_init_std(std):
    with pytest.raises(ConfigError, match="'init_std' must be a non-negative finite number"):
        rbm(init_std=std)


def test_rbm_data_methods_refuse_nan_and_empty_data():
    model = rbm()
    with pytest.raises(DataError, match="data: x has 6 non-finite"):
        model.transform(np.full((1, 6), np.nan))
    with pytest.raises(DataError, match="v: x has 6 non-finite"):
        model.free_energy(np.full((1, 6), np.nan))
    with pytest.raises(DataError, match="no examples"):        # was a ZeroDivisionError
        model.reconstruction_error(np.zeros((0, 6)))
    with pytest.raises(ConfigError, match="'chunk_size' must be a whole number ≥ 1"):
        model.transform(binary(), chunk_size=0)


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 2.5}, "'n' must be a whole number ≥ 1"), ({"n": -1}, "'n' must be"),
    ({"steps": 0}, "'steps' must be a whole number ≥ 1"),       # an uninitialised buffer
    ({"start": np.zeros((2, 5))}, r"start: an RBM with 6 visible units needs an \(n, 6\)"),
    ({"labels": [0, 1]}, r"labels must be one-hot rows of shape \(2, 0\)"),
])
def test_rbm_sample_arguments(kwargs, match):
    with pytest.raises((ConfigError, DataError), match=match):
        rbm().sample(**({"n": 2, "steps": 2, "rng": 0} | kwargs))


def dbn(**kwargs):
    from nablanet.models import DBN
    return DBN([6, 4, 3], rng=0, **kwargs)


@pytest.mark.parametrize("sizes", [[6, 2.5], [6, "4"], [6, True], "64"])
def test_dbn_sizes_must_be_whole_numbers(sizes):
    from nablanet.models import DBN
    with pytest.raises(ConfigError, match="layer sizes must be positive whole numbers"):
        DBN(sizes)


@pytest.mark.parametrize("epochs", [-1, [1, 0], [1, 2.5]])
def test_dbn_pretrain_checks_every_layers_epochs_before_the_first_trains(epochs):
    model = dbn()
    before = model.rbms[0].W.copy()
    with pytest.raises(ConfigError, match="'epochs' must be a whole number ≥ 1"):
        model.pretrain(binary(), epochs)
    np.testing.assert_array_equal(model.rbms[0].W, before)


def test_labels_for_a_dbn_without_label_units_are_refused_not_ignored():
    with pytest.raises(ConfigError, match="no label units"):
        dbn().pretrain(binary(), 1, labels=np.arange(20) % 3)


@pytest.mark.parametrize("call", [lambda m: m.up(binary(), 5), lambda m: m.up(binary(), -1),
                                  lambda m: m.down(np.zeros((2, 3)), 5)])
def test_dbn_passes_through_at_most_its_rbms(call):
    with pytest.raises(ConfigError, match="n_layers"):
        call(dbn())


def test_dbn_unroll_head_width_must_be_whole():
    with pytest.raises(ConfigError, match="positive whole-number sizes"):
        dbn().unroll(2.5)


@pytest.mark.parametrize("kwargs, match", [({"gibbs_steps": 2.5}, "'gibbs_steps' must be"),
                                           ({"label_gain": "2"}, "'label_gain' must be")])
def test_dbn_generate_settings(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        dbn(n_labels=3).generate([0], **kwargs)


def test_up_down_checks_epochs_and_rule_before_untying():
    from nablanet.models.updown import UpDown
    model = dbn(n_labels=3)
    for kwargs, match in [({"epochs": -1}, "'epochs' must be a whole number ≥ 1"),
                          ({"epochs": 1, "rule": 1}, r"rule must be an UpDown")]:
        with pytest.raises(ConfigError, match=match):
            model.up_down(binary(), np.arange(20) % 3, **kwargs)
        assert model.generative is None
    with pytest.raises(ConfigError, match="'k' must be a whole number"):
        UpDown(k=2.5)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_chains": 0}, "'n_chains' must be a whole number ≥ 1"),
    ({"n_chains": 2.5}, "'n_chains' must be"),
    ({"n_betas": 2.5}, "'n_betas' must be a whole number"),
    ({"betas": [0, float("nan"), 1]}, "betas must increase strictly"),
    ({"base_bias": np.full(6, np.nan)}, "base_bias must be 6 finite numbers"),
])
def test_ais_settings(kwargs, match):
    from nablanet.models import ais_log_partition
    with pytest.raises(ConfigError, match=match):
        ais_log_partition(rbm(), rng=0, **({"n_betas": 20} | kwargs))


@pytest.mark.parametrize("x, smoothing, match", [
    (np.full((2, 6), np.nan), 0.05, "non-finite"), (np.zeros((0, 6)), 0.05, "n ≥ 1"),
    (binary(), -1, "smoothing must be > 0"),
])
def test_base_rate_bias_inputs(x, smoothing, match):
    from nablanet.models.ais import base_rate_bias
    with pytest.raises((ConfigError, DataError), match=match):
        base_rate_bias(x, smoothing)


# -- echo-state networks --------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    ({"n_reservoir": 2.5}, "'n_reservoir' must be a whole number ≥ 1, got 2.5"),   # was cut
    ({"washout": 2.5}, "'washout' must be a whole number ≥ 0"),
    ({"input_scaling": None}, "'input_scaling' must be a finite number, got None"),  # TypeError
    ({"density": "0.1"}, "'density' must be a finite number"),
    ({"spectral_radius": float("inf")}, "'spectral_radius' must be a finite number"),
])
def test_esn_settings(kwargs, match):
    from nablanet.models import EchoStateNetwork
    with pytest.raises(ConfigError, match=match):
        EchoStateNetwork(**({"n_reservoir": 20} | kwargs))


def test_esn_generate_steps_and_start_state():
    from nablanet.models import EchoStateNetwork
    esn = EchoStateNetwork(20, washout=1, rng=0).fit(np.zeros((5, 1)), np.zeros((5, 1)))
    for n_steps in (0, 2.5):                   # 0: NumPy's "need at least one array to stack"
        with pytest.raises(ConfigError, match="'n_steps' must be a whole number ≥ 1"):
            esn.generate(np.zeros((3, 1)), n_steps)
    with pytest.raises(DataError, match=r"x0 must be a reservoir state of 20 numbers"):
        esn.predict(np.zeros((3, 1)), x0=np.zeros(3))          # was a matmul ValueError
    with pytest.raises(DataError, match="x0 contains NaN"):
        esn.predict(np.zeros((3, 1)), x0=np.full(20, np.nan))
    np.testing.assert_array_equal(esn.predict(np.ones((3, 1)), x0=np.zeros(20)),
                                  esn.predict(np.ones((3, 1))))


# -- character language models --------------------------------------------------------------
@pytest.mark.parametrize("indices, match", [
    ([5], r"symbol index 5 is outside \[0, 3\)"),             # IndexError
    ([-1], r"symbol index -1 is outside \[0, 3\)"),           # read 'c' from the end
    ([1.7], "expects integer symbol indices, got dtype float64"),     # cut to 'b'
])
def test_vocabulary_decode_refuses_what_is_not_an_index(indices, match):
    from nablanet.models.charlm import Vocabulary
    with pytest.raises(DataError, match=match):
        Vocabulary("abc").decode(indices)


def test_vocabulary_wants_strings():
    from nablanet.models.charlm import Vocabulary
    with pytest.raises(DataError, match="a vocabulary is a string of characters"):
        Vocabulary(["a", "b"])                 # accepted, and saved as an unloadable model
    with pytest.raises(DataError, match="text must be a string, got NoneType"):
        Vocabulary("ab").encode(None)          # AttributeError


@pytest.fixture(scope="module")
def char_lm():
    from nablanet.models.charlm import CharLM, Vocabulary, char_lstm
    return CharLM(char_lstm(3, 4, rng=0, seq_length=5), Vocabulary("abc"))


@pytest.mark.parametrize("call, match", [
    (lambda m: m.generate("ab", 2.5), "'length' must be a whole number ≥ 0, got 2.5"),
    (lambda m: m.generate("ab", 2, temperature="1"), "'temperature' must be a number"),
    (lambda m: m.generate(None, 2), "the prime must be a string"),
    (lambda m: m.nats_per_char([0, 1, 2, 0], n_streams=0), "'n_streams' must be a whole"),
    (lambda m: m.nats_per_char([0, 1, 2, 0], n_streams=1, chunk=0), "'chunk' must be"),
])
def test_char_lm_arguments(char_lm, call, match):
    with pytest.raises((ConfigError, DataError), match=match):
        call(char_lm)


@pytest.mark.parametrize("kwargs, match", [
    ({"eta": 0}, "'eta' must be a positive finite number"),
    ({"epochs": 0}, "'epochs' must be a whole number ≥ 1"),
    ({"epochs": 2.5}, "'epochs' must be a whole number ≥ 1"),
    ({"batch_size": 2.5}, "'batch_size' must be a whole number ≥ 1"),
    ({"decay_fraction": 1.5}, r"decay_fraction must be in \[0, 1\], got 1.5"),
    ({"reset_probability": None}, "'reset_probability' must be a finite number"),
    ({"clip": "5"}, "'clip' must be a positive finite number"),
    ({"epochs": None, "max_seconds": 0}, "'max_seconds' must be a positive"),   # never stopped
])
def test_char_lm_train_settings(kwargs, match):
    from nablanet.models.charlm import TrainSettings
    with pytest.raises(ConfigError, match=match):
        TrainSettings(**({"epochs": 1} | kwargs)).check()


@pytest.mark.parametrize("kwargs, match", [({"n_layers": 2.5}, "'n_layers' must be a whole"),
                                           ({"seq_length": 2.5}, "'seq_length' must be")])
def test_char_lstm_sizes_are_not_cut(kwargs, match):
    from nablanet.models.charlm import char_lstm
    with pytest.raises(ConfigError, match=match):
        char_lstm(3, 4, rng=0, **kwargs)


@pytest.mark.parametrize("fraction", ["0.1", None])
def test_split_text_fraction_must_be_a_number(fraction):
    from nablanet.data.text import split_text
    with pytest.raises(ConfigError, match="'validation_fraction' must be a finite number"):
        split_text("abcdefghij" * 3, fraction)


# -- ensembles ------------------------------------------------------------------------------
def members():
    return [mlp([4, 3], output="softmax", rng=i) for i in range(2)]


def no_fit(net, data, rng):
    return None


@pytest.mark.parametrize("outputs, match", [
    (np.zeros((0, 2, 3)), r"K ≥ 1 members .* got shape \(0, 2, 3\)"),     # NaN and a warning
    (np.full((2, 2, 3), np.nan), "member outputs: outputs has 12 non-finite"),  # NaN scores
    (np.array([[["a"]]]), "must be a .* array of numbers"),                    # ValueError
])
def test_combine_refuses_empty_or_non_finite_outputs(outputs, match):
    from nablanet.ensemble import combine, predict_combined
    for how in ("mean", "vote"):
        with pytest.raises(DataError, match=match):
            predict_combined(outputs, how)
    with pytest.raises(DataError, match=match):
        combine(outputs, "product")


def test_ensemble_score_and_resampling_need_a_dataset(data):
    from nablanet.ensemble import Ensemble, bootstrap, train_members
    with pytest.raises(DataError, match="data must be a Dataset, got tuple"):   # AttributeError
        Ensemble(members()).score((data.x, data.y))
    with pytest.raises(DataError, match="data must be a Dataset"):
        bootstrap((data.x, data.y), 0)
    with pytest.raises(DataError, match="train must be a Dataset"):
        train_members(lambda rng: mlp([4, 3], rng=rng), no_fit, (data.x, data.y), 2)


@pytest.mark.parametrize("k", [2.5, None, 0])
def test_train_members_k_is_a_whole_number(data, k):
    from nablanet.ensemble import train_members
    with pytest.raises(ConfigError, match="'k' must be a whole number ≥ 1"):
        train_members(lambda rng: mlp([4, 3], rng=rng), no_fit, data, k)


@pytest.mark.parametrize("weights, match", [
    (-np.ones(12), "finite and ≥ 0 with a positive sum"),        # accepted: p = w / Σw ≥ 0
    (np.r_[-1.0, np.ones(11)], "finite and ≥ 0"), (np.zeros(12), "positive sum"),
    (np.full(12, np.nan), "finite"), (np.ones(3), r"weights must be 12 numbers, one per example"),
])
def test_weighted_resample_weights(data, weights, match):
    from nablanet.ensemble import weighted_resample
    with pytest.raises(DataError, match=match):
        weighted_resample(data, weights, 0)


@pytest.mark.parametrize("n_estimators", [-1, 0, 2.5])
def test_adaboost_n_estimators(data, n_estimators):
    from nablanet.ensemble import AdaBoostSAMME
    boost = AdaBoostSAMME(lambda rng: mlp([4, 3], rng=rng), no_fit, n_estimators)
    with pytest.raises(ConfigError, match="'n_estimators' must be a whole number ≥ 1"):
        boost.fit(data)


def test_adaboost_predict_before_fit():
    from nablanet.ensemble import AdaBoostSAMME
    with pytest.raises(ConfigError, match="AdaBoostSAMME is not fitted"):    # AttributeError
        AdaBoostSAMME(None, no_fit).predict(np.zeros((2, 4)))


@pytest.mark.parametrize("kwargs, match", [({"passes": 2.5}, "'passes' must be a whole number"),
                                           ({"chunk_size": 0}, "'chunk_size' must be")])
def test_mc_dropout_counts(kwargs, match):
    from nablanet.ensemble import mc_dropout
    net = Sequential([Dense(n_out=5), Dropout(0.5), Dense(n_out=3)], input_shape=4)
    with pytest.raises(ConfigError, match=match):
        mc_dropout(net, np.zeros((3, 4)), **({"passes": 2, "rng": 0} | kwargs))


# -- evaluation -----------------------------------------------------------------------------
SCORES, LABELS = np.eye(3)[[0, 1, 2, 0]], np.array([0, 1, 2, 0])


@pytest.mark.parametrize("scores, y, k, error, match", [
    (SCORES, LABELS, 2.5, ConfigError, "'k' must be a whole number, got 2.5"),   # TypeError
    (SCORES, LABELS, None, ConfigError, "'k' must be a whole number, got None"),
    (SCORES, np.full(4, 5), 1, DataError, r"label 5 at row 0 is out of range \[0, 3\)"),  # 0.0
    (np.full((4, 3), np.nan), LABELS, 1, DataError, "scores has 12 non-finite"),        # 0.5
])
def test_top_k_accuracy_arguments(scores, y, k, error, match):
    from nablanet.evaluation import top_k_accuracy
    with pytest.raises(error, match=match):
        top_k_accuracy(scores, y, k)


def test_compare_needs_labels_for_the_same_examples():
    from nablanet.evaluation import compare
    with pytest.raises(DataError, match="got 4, 3 and 4 labels"):      # a broadcast error
        compare(LABELS, LABELS[:3], LABELS)


@pytest.mark.parametrize("n_classes", [2.5, 0, "3"])
def test_confusion_matrix_n_classes_is_a_whole_number(n_classes):
    from nablanet.evaluation import confusion_matrix
    with pytest.raises(ConfigError, match="'n_classes' must be a whole number ≥ 1"):
        confusion_matrix(LABELS, LABELS, n_classes)


@pytest.mark.parametrize("cm", [np.array([1, 2]), np.ones((2, 3)), -np.eye(2)])
def test_a_confusion_matrix_is_square_counts(cm):
    from nablanet.evaluation import format_confusion_matrix, per_class_accuracy
    for read in (per_class_accuracy, format_confusion_matrix):      # AxisError, or a number
        with pytest.raises(DataError, match=r"must be a square \(K, K\) array of counts"):
            read(cm)


@pytest.mark.parametrize("table", [[[1, np.nan], [2, 3]], [[1, 2.5], [2, 3]], [["a", 1], [2, 3]]])
def test_mcnemar_table_holds_whole_counts(table):
    from nablanet.evaluation import mcnemar_test
    with pytest.raises(DataError, match="2×2 table of counts"):      # 2.5 was cut to 2
        mcnemar_test(table)
    assert mcnemar_test([[1.0, 2.0], [3.0, 4.0]]).only_b_right == 2


@pytest.mark.parametrize("alpha", ["0.05", None])
def test_mcnemar_alpha_must_be_a_number(alpha):
    from nablanet.evaluation import mcnemar_test
    with pytest.raises(ConfigError, match="'alpha' must be a number"):
        mcnemar_test([[1, 2], [2, 3]], alpha)


# -- data augmentation ----------------------------------------------------------------------
def images(n=2, value=1.0):
    return np.full((n, 28, 28), value)


@pytest.mark.parametrize("call, error, match", [
    (lambda a: a.distort(images(), 0, "affine", rotate=3), ConfigError,       # TypeError
     "the affine distortion has no option 'rotate'; its options are rotation"),
    (lambda a: a.distort(images(1, np.nan), 0), DataError, "distort: images has 784 non-finite"),
    (lambda a: a.random_affine(images(), 0, scale=1.0), ConfigError, r"scale must be a \(low"),
    (lambda a: a.random_affine(images(), 0, rotation=None), ConfigError, "'rotation' must be a"),
    (lambda a: a.elastic_distortion(images(), 0, alpha="34"), ConfigError, "'alpha' must be"),
    (lambda a: a.shift_images(images(), 0, 2.5), ConfigError, r"a shift must be \(dy, dx\)"),
    (lambda a: a.shift_images(images(), 0, 28), ConfigError, "below the image size 28×28"),
    (lambda a: a.shift_images(images(1, np.nan), 0, 1), DataError, "784 non-finite"),
])
def test_augment_arguments(call, error, match):
    from nablanet.data import augment
    with pytest.raises(error, match=match):
        call(augment)


def test_augment_takes_an_int_seed_like_the_rest_of_the_library():
    from nablanet.data.augment import distort, random_affine, random_shift
    for kind in ("affine", "elastic", "shift"):        # was AttributeError: 'int' ... 'random'
        np.testing.assert_array_equal(distort(images(), 3, kind),
                                      distort(images(), np.random.default_rng(3), kind))
    assert random_affine(images(), None).shape == random_shift(images(), 1).shape


@pytest.mark.parametrize("kwargs, error, match", [
    ({"copies": 2.5}, ConfigError, "'copies' must be a whole number ≥ 0, got 2.5"),   # cut
    ({"copies": (1, 2)}, ConfigError, "'copies' must be a whole number"),
    ({"kind": "affine", "rotate": 2}, ConfigError, "has no option 'rotate'"),
])
def test_expand_arguments(kwargs, error, match):
    from nablanet.data.augment import expand
    with pytest.raises(error, match=match):
        expand(Dataset(images().reshape(2, -1), [0, 1]), 0, **kwargs)


@pytest.mark.parametrize("shifts", [[1, 2], [(1, 2, 3)], [(1.5, 0)], [(0, 1), (30, 0)], 3])
def test_expand_by_shifts_checks_every_shift_first(shifts):
    from nablanet.data.augment import expand_by_shifts
    with pytest.raises(ConfigError, match="shift"):
        expand_by_shifts(Dataset(images().reshape(2, -1), [0, 1]), shifts=shifts)


def test_a_distortion_layer_names_an_unknown_option():
    from nablanet.layers import RandomDistortion
    with pytest.raises(ConfigError, match="RandomDistortion: the elastic distortion has no "
                                          "option 'sigmaa'"):
        RandomDistortion("elastic", sigmaa=3)


# -- sequences and saved models -------------------------------------------------------------
@pytest.mark.parametrize("sequences, match", [
    ([np.zeros(3), np.array([1.0, np.nan])], "sequence 1 has 1 non-finite values .* row 1"),
    ([np.array(["a", "b"])], "sequence 0 must be numeric, got dtype <U1"),
])
def test_stack_sequences_refuses_what_a_net_cannot_read(sequences, match):
    from nablanet.data.sequences import stack_sequences
    with pytest.raises(DataError, match=match):
        stack_sequences(sequences)


def test_save_rbm_takes_only_rbms_and_dbns(tmp_path):
    from nablanet.models.persistence import save_rbm
    with pytest.raises(ConfigError, match="save_rbm writes an RBM or a DBN, got Sequential"):
        save_rbm(tmp_path / "m", mlp([2, 3], rng=0))           # AttributeError 'rbms'
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("metadata, match", [
    ([1, 2], "metadata must be a dict, got list"),             # saved, then refused by load
    ({"seed": {1, 2}}, "metadata must hold JSON values"),      # a TypeError from json
])
def test_saved_metadata_must_be_a_json_object(tmp_path, metadata, match):
    from nablanet.io import save_model
    from nablanet.models.persistence import save_rbm
    with pytest.raises(ConfigError, match=match):
        save_rbm(tmp_path / "rbm", rbm(), metadata)
    with pytest.raises(ConfigError, match=match):
        save_model(tmp_path / "net", mlp([2, 3], rng=0), "quadratic", metadata=metadata)
    assert not list(tmp_path.iterdir())


# -- layers and gradient checks -------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    ({"alpha": None}, "'alpha' must be a finite number, got None"),        # TypeError
    ({"beta": "0.75"}, "'beta' must be a finite number"),                  # read by float()
    ({"k": float("nan")}, "'k' must be a finite number, got nan"),        # passed k > 0
])
def test_local_response_norm_settings(kwargs, match):
    from nablanet.layers import LocalResponseNorm
    with pytest.raises(ConfigError, match=match):
        LocalResponseNorm(**kwargs)


def test_numpy_integers_are_sizes_for_image_layers_too():
    from nablanet.layers import Conv2D, MaxPool2D, Reshape
    assert Conv2D(out_channels=2, kernel_size=np.int64(3)).kernel_size == (3, 3)
    assert MaxPool2D(np.int64(2)).stride == (2, 2)
    assert Reshape((np.int64(1), 2, 2)).config() == {"shape": [1, 2, 2]}   # JSON-ready


def float64_net():
    from nablanet.backend import get_backend
    return Sequential([Dense(n_out=2), Sigmoid()]).build(3, get_backend("cpu", "float64"), 0)


XS, YS = np.random.default_rng(0).normal(size=(4, 3)), np.array([0, 1, 0, 1])


@pytest.mark.parametrize("call, error, match", [
    (lambda g: g.check_net(mlp([3, 2], rng=0), "quadratic", XS, YS), ConfigError,
     "gradient checks need float64: the net is built with float32"),       # errors ~1e-3
    (lambda g: g.check_net(float64_net(), "quadratic", XS, YS, eps=0), ConfigError,
     "'eps' must be a positive finite number"),                           # ZeroDivisionError
    (lambda g: g.check_net(float64_net(), "quadratic", XS, YS[:2]), DataError,
     "x has 4 examples but y has 2"),                                      # a broadcast error
    (lambda g: g.check_net(float64_net(), "quadratic", np.full((4, 3), np.nan), YS), DataError,
     "non-finite"),                                                        # NaN errors
    (lambda g: g.check_net(float64_net(), "quadratic", XS, YS, n_train=2.5), ConfigError,
     "'n_train' must be a whole number ≥ 1"),
    (lambda g: g.check_net(float64_net(), "quadratic", XS, YS, penalties=L2(1.0)), ConfigError,
     "penalties must be a list"),
    (lambda g: g.numerical_gradient(lambda: 0.0, [1.0, 2.0]), DataError, "x must be an array"),
])
def test_gradcheck_arguments(call, error, match):
    from nablanet import gradcheck
    with pytest.raises(error, match=match):
        call(gradcheck)


def test_check_layer_needs_float64_for_the_layer_and_its_input():
    from nablanet.gradcheck import check_layer
    layer = float64_net().layers[0]
    with pytest.raises(DataError, match="give a float64 array .* got float32"):
        check_layer(layer, XS.astype(np.float32))       # ∂L/∂x off by 6e-4: a false alarm
    with pytest.raises(ConfigError, match="Dense is built with float32"):
        check_layer(Dense(3, 2), XS)                     # unbuilt: KeyError 'W'
    assert max(check_layer(layer, XS).values()) < 1e-8


# -- values a damaged model file carried into NaN (found by the slow fuzz sweep) -----------
@pytest.mark.parametrize("forget_bias, match", [
    (1e308, "forget_bias must be within ±100"), (float("nan"), "'forget_bias' must be a finite"),
    ("1", "'forget_bias' must be a finite number"), (None, "'forget_bias' must be a finite")])
def test_lstm_forget_bias_that_overflows_or_is_not_a_number(forget_bias, match):
    from nablanet.layers import LSTM
    with pytest.raises(ConfigError, match=match):                # 1e308: an inf bias in float32
        LSTM(3, 4, forget_bias=forget_bias)
    assert LSTM(3, 4, forget_bias=-100).forget_bias == -100.0


@pytest.mark.parametrize("options, match", [
    ({"rotation": 1e308}, "rotation must be at most 180 degrees"),    # NaN angles
    ({"scale": (0.9, 1e308)}, r"affine scale must lie within \[0.001, 1000\]"),
    ({"scale": (1e-308, 1.0)}, r"affine scale must lie within"),
])
def test_affine_ranges_that_overflowed(options, match):
    from nablanet.data.augment import random_affine
    with pytest.raises(ConfigError, match=match):
        random_affine(np.zeros((2, 784)), 0, **options)
    assert np.isfinite(random_affine(np.ones((2, 784)), 0, rotation=180, scale=(1e-3, 1e3))).all()


@pytest.mark.parametrize("shape", [(784,), (1, 5, 9)])
def test_random_distortion_refuses_a_translation_of_the_whole_image(shape):
    from nablanet.backend import get_backend
    from nablanet.layers import RandomDistortion
    side = min(shape[-2:]) if len(shape) == 3 else 28
    with pytest.raises(ConfigError, match=f"affine translation of {side + 0.5} pixels must be "
                                          "at most the side"):
        RandomDistortion("affine", translation=side + 0.5).build(shape, get_backend(), None)
    RandomDistortion("affine", translation=side).build(shape, get_backend(), None)
