"""The training loop on small synthetic problems: learning, seeding, bit-identical resume,
callbacks (early stopping, schedules, divergence guard, checkpoints), monitoring, batching
and bad input."""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from nablanet import (L2, SGD, Adam, ConfigError, DataError, MaxNorm, ModelFileError, Momentum,
                      Sequential, get_backend, mlp)
from nablanet.data import Dataset
from nablanet.io import load_model, load_training_state
from nablanet.layers import GRU, Dense, Embedding, LastStep, OneHot, Sigmoid, Softmax
from nablanet.training import (BoldDriver, Callback, Checkpoint, EarlyStopping, HalveOnPlateau,
                               CosineDecay, Progress, StepDecay, Trainer, fit)

F64 = get_backend("cpu", "float64")


def params(net):
    return [layer.params[name].copy() for layer, name in net.parameters()]


def assert_same_params(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def without_timing(rows):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


# -- learning ---------------------------------------------------------------------------

@pytest.mark.parametrize("output, cost, opt", [
    ("sigmoid", "cross-entropy", lambda: SGD(1.0)),
    ("softmax", "log-likelihood", lambda: Adam(0.02)),
    ("sigmoid", "quadratic", lambda: Momentum(1.0, 0.5)),
])
def test_learns_separable_blobs(make_blobs, output, cost, opt):
    train, val = make_blobs(300, seed=0), make_blobs(150, seed=1, name="validation")
    net = mlp([4, 10, 3], "sigmoid", output, rng=0)
    history = Trainer(net, cost, opt(), batch_size=10, rng=0).fit(train, 10, val)
    assert history["validation_accuracy"][-1] > 0.95
    assert history["train_cost"][-1] < history["train_cost"][0]


def test_hidden_layer_learns_xor():
    """Not linearly separable: only the hidden layer makes it learnable."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (400, 2))
    x = x[np.abs(x).min(axis=1) > 0.1]                     # a margin around the axes
    y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(np.int64)
    data = Dataset(x.astype(np.float32), y)
    net = mlp([2, 16, 2], "tanh", "softmax", rng=1)
    history = Trainer(net, "log-likelihood", Adam(0.02), batch_size=10, rng=0).fit(data, 40)
    assert history["train_accuracy"][-1] > 0.95


# -- seeding ----------------------------------------------------------------------------------

def _train(data, seed, epochs=3):
    net = mlp([4, 12, 12, 3], "relu", "softmax", dropout=0.5, input_dropout=0.2, rng=seed)
    Trainer(net, "log-likelihood", Momentum(0.1), batch_size=7, rng=seed).fit(data, epochs)
    return params(net)


def test_same_seed_gives_bitwise_identical_weights_with_dropout(blobs_split):
    assert_same_params(_train(blobs_split[0], 5), _train(blobs_split[0], 5))


def test_different_seeds_give_different_weights(blobs_split):
    a, b = _train(blobs_split[0], 5), _train(blobs_split[0], 6)
    assert not np.array_equal(a[0], b[0])


def test_trainer_seed_alone_changes_the_run(blobs_split):
    """Same initial weights, different shuffles and dropout masks."""
    runs = []
    for seed in (1, 2):
        net = mlp([4, 8, 3], "sigmoid", "softmax", dropout=0.5, rng=0)
        Trainer(net, "log-likelihood", SGD(0.5), rng=seed).fit(blobs_split[0], 1)
        runs.append(params(net))
    assert not np.array_equal(runs[0][0], runs[1][0])


# -- resume --------------------------------------------------------------------------------

SCENARIOS = {
    "momentum+dropout+early-stopping+halving": dict(
        opt=lambda: Momentum(0.5, 0.9),
        callbacks=lambda: [EarlyStopping(patience=10), HalveOnPlateau(patience=1)]),
    "adam+bold-driver": dict(opt=lambda: Adam(0.01), callbacks=lambda: [BoldDriver()]),
    "sgd+l2+max-norm+step-decay": dict(
        opt=lambda: SGD(0.5), callbacks=lambda: [StepDecay(2)],
        penalties=lambda: [L2(1.0)], constraints=lambda: [MaxNorm(1.5)]),
    # one BLAS thread: the SGD step runs inside the weight-gradient GEMM (training/fused.py)
    "fused-sgd+l2+cosine": dict(
        opt=lambda: SGD(0.5), callbacks=lambda: [CosineDecay(6, floor=0.05)],
        penalties=lambda: [L2(1.0)], blas_threads=1),
}


def _trainer(net, scenario, directory, seed=3):
    s = SCENARIOS[scenario]
    return Trainer(net, "log-likelihood", s["opt"](), batch_size=8,
                   penalties=s.get("penalties", list)(), constraints=s.get("constraints", list)(),
                   callbacks=[Checkpoint(directory), *s["callbacks"]()], rng=seed)


def _net():
    return mlp([4, 9, 3], "sigmoid", "softmax", dropout=0.3, input_dropout=0.1, rng=1)


def test_early_stopping_best_weights_of_another_net_are_refused_on_resume(tmp_path, blobs_split):
    scenario = "momentum+dropout+early-stopping+halving"
    _trainer(_net(), scenario, tmp_path).fit(blobs_split[0], 1, blobs_split[1])
    scalars, arrays = load_training_state(tmp_path / "last")
    key = next(k for k in arrays if k.endswith("best_params.0"))
    shape = arrays[key].shape
    arrays[key] = np.zeros((2, 2), np.float32)
    with pytest.raises(ModelFileError, match="early-stopping best weights do not match the net"):
        _trainer(_net(), scenario, tmp_path).load_state_dict(scalars, arrays)
    arrays[key] = np.zeros(shape, np.float32)
    arrays[key.replace("best_params.0", "best_params.4")] = np.zeros(shape, np.float32)
    with pytest.raises(ModelFileError, match="early-stopping best weights do not match the net"):
        _trainer(_net(), scenario, tmp_path).load_state_dict(scalars, arrays)


@pytest.mark.parametrize("keep", [(), (0, 1, 2)], ids=["none", "some"])
def test_early_stopping_state_without_its_best_weights_is_refused(tmp_path, blobs_split, keep):
    """The state names a best epoch: without its weights a resumed run would end on its
    last weights where the uninterrupted one restores the best."""
    scenario = "momentum+dropout+early-stopping+halving"
    _trainer(_net(), scenario, tmp_path).fit(blobs_split[0], 1, blobs_split[1])
    scalars, arrays = load_training_state(tmp_path / "last")
    best = sorted(k for k in arrays if "best_params." in k)
    assert len(best) == 4
    for key in best:
        if int(key.rpartition(".")[2]) not in keep:
            del arrays[key]
    with pytest.raises(ModelFileError, match="early-stopping state lacks the best weights "
                                             + ("best_params.3$" if keep else
                                                "best_params.0, best_params.1, best_params.2, "
                                                "best_params.3$")):
        _trainer(_net(), scenario, tmp_path).load_state_dict(scalars, arrays)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_resume_from_last_checkpoint_is_bitwise_identical(tmp_path, blobs_split, scenario):
    with threadpool_limits(SCENARIOS[scenario].get("blas_threads"), user_api="blas"):
        _resume_is_bitwise_identical(tmp_path, blobs_split, scenario)


def _resume_is_bitwise_identical(tmp_path, blobs_split, scenario):
    train, val = blobs_split
    whole_net = _net()
    whole = _trainer(whole_net, scenario, tmp_path / "whole")
    whole.fit(train, 6, val)

    first = _trainer(_net(), scenario, tmp_path / "run")
    first.fit(train, 3, val)
    # A new process: the model and the training state come only from the files.
    net, _, _ = load_model(tmp_path / "run" / "last")
    resumed = _trainer(net, scenario, tmp_path / "run", seed=12345)
    resumed.load_state_dict(*load_training_state(tmp_path / "run" / "last"))
    assert resumed.next_epoch == 3
    resumed.fit(train, 6, val)

    assert_same_params(params(net), params(whole_net))
    assert without_timing(resumed.history.rows) == without_timing(whole.history.rows)
    assert len(resumed.history) == 6
    assert resumed.optimizer.eta == whole.optimizer.eta
    # the checkpoints written after resuming match too
    for kind in ("best", "last"):
        assert_same_params(params(load_model(tmp_path / "run" / kind)[0]),
                           params(load_model(tmp_path / "whole" / kind)[0]))


def test_a_schedule_actually_changed_eta_in_the_resume_scenarios(tmp_path, blobs_split):
    """The resume test above is only meaningful if η moved within the 6 epochs."""
    trainer = _trainer(_net(), "momentum+dropout+early-stopping+halving", tmp_path)
    history = trainer.fit(*blobs_split[:1], 6, blobs_split[1])
    assert len(set(history["eta"])) > 1


# -- early stopping ---------------------------------------------------------------------------

def _stub_trainer():
    """A real trainer whose net's single weight records the 'epoch' it was set at."""
    net = Sequential([Dense(1, 1), Sigmoid()]).build((1,), F64, rng=0)
    return Trainer(net, "cross-entropy", SGD(1.0))


def _drive(trainer, callbacks, values, key="validation_accuracy"):
    """Feed a fixed metric sequence to callbacks as the training loop would; returns the
    number of epochs run before a stop."""
    for cb in callbacks:
        cb.on_train_begin(trainer)
    epochs = 0
    for epoch, value in enumerate(values):
        trainer.net.layers[0].params["W"][...] = epoch
        metrics = {"epoch": epoch, "eta": trainer.optimizer.eta, key: value}
        for cb in callbacks:
            cb.on_epoch_end(trainer, epoch, metrics)
        epochs += 1
        if trainer.stopping:
            break
    for cb in callbacks:
        cb.on_train_end(trainer)
    return epochs


def test_early_stopping_after_patience_epochs_without_improvement_restores_the_best():
    trainer = _stub_trainer()
    es = EarlyStopping(patience=3)
    # best at epoch 1; equal is not better; epochs 2, 3, 4 bring nothing → stop at 4
    epochs = _drive(trainer, [es], [0.5, 0.7, 0.6, 0.7, 0.65, 0.9, 0.95])
    assert epochs == 5 and trainer.status == "early-stopped"
    # the message counts epochs from 1, as the progress line does: index 1 is "epoch 2"
    assert trainer.message == ("no improvement in validation_accuracy for 3 epochs "
                               "(best 0.7000 at epoch 2)")
    assert trainer.net.layers[0].params["W"][0, 0] == 1.0       # epoch 1's weights
    assert trainer.restored_epoch == 1


def test_early_stopping_on_a_cost_uses_min_mode():
    trainer = _stub_trainer()
    epochs = _drive(trainer, [EarlyStopping(patience=2, monitor="validation_cost")],
                    [1.0, 0.5, 0.6, 0.4, 0.45, 0.41, 0.3], key="validation_cost")
    assert epochs == 6 and trainer.restored_epoch == 3


def test_best_takes_its_mode_from_the_metric_name_unless_told():
    from nablanet.training.callbacks import Best
    assert Best("validation_accuracy").mode == "max"
    assert Best("validation_cost").mode == Best("val_loss").mode == "min"
    assert Best("validation_accuracy", mode="min").mode == "min"
    with pytest.raises(ConfigError, match="'maximum'"):
        Best("validation_accuracy", mode="maximum")


def test_early_stopping_passes_its_mode_on():
    """An explicit mode wins over the name: 'min' on an accuracy makes its fall the
    improvement, so the lowest epoch is the best one restored."""
    trainer = _stub_trainer()
    es = EarlyStopping(patience=2, mode="min")
    _drive(trainer, [es], [0.9, 0.5, 0.7, 0.8])
    assert es.best.value == 0.5 and trainer.restored_epoch == 1


def test_an_equal_cost_is_no_improvement():
    trainer = _stub_trainer()
    es = EarlyStopping(patience=2, monitor="validation_cost")
    epochs = _drive(trainer, [es], [0.5, 0.5, 0.5, 0.4], key="validation_cost")
    assert epochs == 3 and trainer.restored_epoch == 0


def test_early_stopping_patience_must_be_positive():
    EarlyStopping(patience=1)
    with pytest.raises(ConfigError, match="patience"):
        EarlyStopping(patience=0)


def test_early_stopping_state_resumes_the_count_and_the_grown_patience():
    """Stopped and resumed after epoch 3, the run stops where the uninterrupted one does:
    the best epoch and a grown patience come back from the state."""
    values = [0.1, 0.2, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]
    whole = _stub_trainer()
    epochs = _drive(whole, [EarlyStopping(patience=2, growing=True, factor=2.0)], values)
    assert epochs == 9                     # best at epoch 2 → patience max(2, 2·3) = 6

    first = EarlyStopping(patience=2, growing=True, factor=2.0)
    _drive(_stub_trainer(), [first], values[:4])
    resumed = EarlyStopping(patience=2, growing=True, factor=2.0)
    resumed.load_state_dict(first.state_dict())
    resumed.load_state_arrays(first.state_arrays(), _stub_trainer())
    trainer = _stub_trainer()
    for epoch in range(4, len(values)):
        resumed.on_epoch_end(trainer, epoch, {"validation_accuracy": values[epoch]})
        if trainer.stopping:
            break
    resumed.on_train_end(trainer)
    assert epoch + 1 == epochs and trainer.message == whole.message
    assert trainer.restored_epoch == 2 and trainer.net.layers[0].params["W"][0, 0] == 2.0


def test_growing_patience_uses_its_factor_and_never_shrinks():
    trainer = _stub_trainer()
    es = EarlyStopping(patience=2, growing=True, factor=1.5)
    _drive(trainer, [es], [0.1, 0.2, 0.3] + [0.3] * 10)
    assert es.patience == 5                 # ⌈1.5 · 3⌉ after the best at epoch 2
    early = EarlyStopping(patience=5, growing=True, factor=2.0)
    _drive(_stub_trainer(), [early], [0.5] + [0.4] * 10)
    assert early.patience == 5              # a best at epoch 0 (2 · 1 = 2) keeps 5


def test_early_stopping_without_restore_keeps_no_copies_and_the_last_weights():
    trainer = _stub_trainer()
    es = EarlyStopping(patience=2, restore_best=False)
    _drive(trainer, [es], [0.5, 0.7, 0.6, 0.6])
    assert es.state_arrays() == {} and trainer.restored_epoch is None
    assert trainer.net.layers[0].params["W"][0, 0] == 3.0


def test_a_non_finite_first_value_is_never_the_best():
    # A NaN cost in epoch 0 must not become the "best" that later epochs have to beat
    # (NaN < x is always False: nothing would ever improve on it).
    trainer = _stub_trainer()
    es = EarlyStopping(patience=2, monitor="validation_cost")
    epochs = _drive(trainer, [es], [float("nan"), 0.9, 0.8, 0.85, 0.9],
                    key="validation_cost")
    assert epochs == 5 and trainer.status == "early-stopped"
    assert es.best.value == 0.8 and trainer.restored_epoch == 2


def test_growing_patience_extends_with_late_improvements():
    trainer = _stub_trainer()
    es = EarlyStopping(patience=2, growing=True, factor=2.0)
    # improvements through epoch 5 → patience max(2, 2·6) = 12; fixed patience would stop at 7
    values = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6] + [0.6] * 20
    epochs = _drive(trainer, [es], values)
    assert es.patience == 12
    assert epochs == 6 + 12
    fixed = _drive(_stub_trainer(), [EarlyStopping(patience=2)], values)
    assert fixed == 8


def test_early_stopping_in_a_real_run_restores_the_best_checkpointed_weights(tmp_path,
                                                                            blobs_split):
    train, val = blobs_split
    net = mlp([4, 8, 3], "sigmoid", "softmax", rng=0)
    trainer = Trainer(net, "log-likelihood", SGD(2.0),
                      callbacks=[EarlyStopping(patience=2), Checkpoint(tmp_path)], rng=0)
    history = trainer.fit(train, 200, val)
    assert trainer.status == "early-stopped"
    best = history.best("validation_accuracy")
    assert len(history) == best["epoch"] + 1 + 2
    assert trainer.restored_epoch == best["epoch"]
    assert_same_params(params(net), params(load_model(tmp_path / "best")[0]))


# -- learning-rate schedules ------------------------------------------------------------------

def test_halve_on_plateau_halves_eta_and_stops_at_eta0_over_1024():
    trainer = _stub_trainer()
    trainer.optimizer.eta = 0.5
    schedule = HalveOnPlateau(patience=2)
    epochs = _drive(trainer, [schedule], [0.9] * 100)
    # epoch 0 sets the best; then one halving every 2 epochs, the 10th at epoch 20
    assert epochs == 21
    assert trainer.optimizer.eta == pytest.approx(0.5 / 1024)
    assert trainer.status == "eta-exhausted"


def test_halve_on_plateau_waits_while_improving():
    trainer = _stub_trainer()
    schedule = HalveOnPlateau(patience=2)
    _drive(trainer, [schedule], [0.1, 0.2, 0.2, 0.3, 0.3, 0.3])
    # plateaus of one epoch are forgiven; the second epoch of the last plateau halves η
    assert trainer.optimizer.eta == 0.5 and not trainer.stopping
    # an improvement restarts the count: one flat epoch before it and one after is no plateau
    trainer = _stub_trainer()
    _drive(trainer, [HalveOnPlateau(patience=2)], [0.1, 0.2, 0.2, 0.3, 0.3])
    assert trainer.optimizer.eta == 1.0


def test_halve_on_plateau_uses_its_factor_and_floor_ratio():
    trainer = _stub_trainer()
    epochs = _drive(trainer, [HalveOnPlateau(patience=1, factor=0.1, floor_ratio=100.0)],
                    [0.9] * 10)
    # best at epoch 0, then η × 0.1 each flat epoch: 0.1, 0.01 = η₀/100 stops it at epoch 2
    assert epochs == 3 and trainer.status == "eta-exhausted"
    assert trainer.optimizer.eta == pytest.approx(0.01)


def test_halve_on_plateau_state_carries_the_count_and_eta0_across_a_resume():
    """A resumed run is a new fit: its on_train_begin must not take the halved η for η₀,
    and an epoch of a plateau counted before the checkpoint still counts after it."""
    values = [0.5, 0.5, 0.5, 0.5, 0.5]
    whole = _stub_trainer()
    _drive(whole, [HalveOnPlateau(patience=2, floor_ratio=4.0)], values)

    first = _stub_trainer()
    schedule = HalveOnPlateau(patience=2, floor_ratio=4.0)
    _drive(first, [schedule], values[:4])           # halved once (epoch 2), one flat since
    assert (first.optimizer.eta, schedule.since) == (0.5, 1)
    resumed = _stub_trainer()
    resumed.optimizer.eta = first.optimizer.eta
    again = HalveOnPlateau(patience=2, floor_ratio=4.0)
    again.load_state_dict(schedule.state_dict())
    again.on_train_begin(resumed)
    again.on_epoch_end(resumed, 4, {"validation_accuracy": values[4]})
    # epoch 4 completes the second plateau: η = η₀/4, the floor of η₀ = 1, not of 0.5
    assert resumed.optimizer.eta == whole.optimizer.eta == 0.25
    assert resumed.status == whole.status == "eta-exhausted"


def test_halve_on_plateau_in_a_real_run(blobs_split):
    train, val = blobs_split
    net = mlp([4, 8, 3], "sigmoid", "softmax", rng=0)
    trainer = Trainer(net, "log-likelihood", SGD(1.0), callbacks=[HalveOnPlateau(patience=1)],
                      rng=0)
    history = trainer.fit(train, 500, val)
    assert trainer.status == "eta-exhausted"
    etas = history["eta"]
    assert all(b in (a, a / 2) for a, b in zip(etas, etas[1:]))
    assert trainer.optimizer.eta == pytest.approx(1 / 1024)


def test_bold_driver_grows_eta_while_the_cost_falls_and_halves_it_when_it_rises():
    trainer = _stub_trainer()
    _drive(trainer, [BoldDriver(increase=1.1, decrease=0.5)], [1.0, 0.8, 0.9, 0.7],
           key="train_cost")
    assert trainer.optimizer.eta == pytest.approx(1.0 * 1.1 * 0.5 * 1.1)


def test_bold_driver_cuts_eta_when_the_cost_does_not_fall():
    trainer = _stub_trainer()
    _drive(trainer, [BoldDriver(increase=1.1, decrease=0.5)], [1.0, 1.0], key="train_cost")
    assert trainer.optimizer.eta == 0.5


def test_bold_driver_reads_the_metric_it_is_given():
    trainer = _stub_trainer()
    _drive(trainer, [BoldDriver(increase=1.1, decrease=0.5, monitor="validation_cost")],
           [1.0, 0.8], key="validation_cost")
    assert trainer.optimizer.eta == pytest.approx(1.1)


def test_bold_driver_needs_the_train_cost():
    with pytest.raises(ConfigError, match="train_cost"):
        _drive(_stub_trainer(), [BoldDriver()], [0.5])


def test_step_decay(blobs_split):
    net = mlp([4, 5, 3], rng=0)
    history = Trainer(net, "cross-entropy", SGD(1.0), callbacks=[StepDecay(2, 0.1)],
                      monitor=(), rng=0).fit(blobs_split[0], 6)
    # a row records the η used during its epoch
    np.testing.assert_allclose(history["eta"], [1.0, 1.0, 0.1, 0.1, 0.01, 0.01], rtol=1e-15)


def test_schedule_settings_at_their_bounds():
    StepDecay(1, factor=1.0)                  # factor 1 keeps η: allowed, a no-op schedule
    BoldDriver(increase=1.0)                  # only ever cuts η: allowed
    CosineDecay(1, floor=0.0)
    for make in (lambda: StepDecay(0), lambda: StepDecay(2, factor=0.0),
                 lambda: StepDecay(2, factor=1.5), lambda: CosineDecay(4, floor=-0.1),
                 lambda: HalveOnPlateau(patience=0), lambda: HalveOnPlateau(factor=1.0),
                 lambda: HalveOnPlateau(factor=0.0), lambda: HalveOnPlateau(floor_ratio=1.0),
                 lambda: BoldDriver(decrease=1.0), lambda: BoldDriver(increase=0.9)):
        with pytest.raises(ConfigError):
            make()


def test_cosine_decay_follows_half_a_cosine_and_resumes(blobs_split):
    net = mlp([4, 5, 3], rng=0)
    history = Trainer(net, "cross-entropy", SGD(1.0), callbacks=[CosineDecay(4, floor=0.1)],
                      monitor=(), rng=0).fit(blobs_split[0], 6)
    # ηₑ = 0.1 + 0.9·½(1 + cos πe/4), held at the floor after the last planned epoch
    # (not carried on up the cosine's next half: the sixth epoch still trains at 0.1)
    expected = [1.0, 0.1 + 0.45 * (1 + np.cos(np.pi / 4)), 0.55,
                0.1 + 0.45 * (1 - np.cos(np.pi / 4)), 0.1, 0.1]
    np.testing.assert_allclose(history["eta"], expected, rtol=1e-12)
    resumed = CosineDecay(4)
    resumed.load_state_dict(CosineDecay(4).state_dict() | {"eta0": 2.0})
    assert resumed.eta0 == 2.0
    with pytest.raises(ConfigError, match="cosine"):
        CosineDecay(0)


# -- divergence ----------------------------------------------------------------------------

def test_huge_learning_rate_diverges_and_stops(blobs_split):
    net = mlp([4, 8, 3], "sigmoid", "linear", rng=0)
    trainer = Trainer(net, "quadratic", SGD(1e4), rng=0)
    with np.errstate(all="ignore"):
        history = trainer.fit(blobs_split[0], 50)
    assert trainer.status == "diverged"
    assert "diverged" in trainer.message and "eta=10000" in trainer.message
    assert len(history) < 50


class _PoisonWeights(Callback):
    """Turn the weights into NaN at the end of one epoch, before the guard looks."""

    priority = -20

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, epoch, metrics):
        if epoch == self.epoch:
            trainer.param_arrays()[0][0, 0] = np.nan


def test_divergence_keeps_the_pre_divergence_checkpoints(tmp_path, blobs_split):
    train, val = blobs_split
    net = mlp([4, 8, 3], "sigmoid", "softmax", rng=0)
    trainer = Trainer(net, "log-likelihood", SGD(0.5), rng=0,
                      callbacks=[Checkpoint(tmp_path, monitor="validation_cost"),
                                 _PoisonWeights(epoch=2)])
    trainer.fit(train, 10, val)
    assert trainer.status == "diverged"
    assert "weights became non-finite" in trainer.message
    assert len(trainer.history) == 3
    for kind in ("best", "last"):
        saved, _, meta = load_model(tmp_path / kind)
        assert all(np.isfinite(p).all() for p in params(saved))
        assert meta["epoch"] <= 1


@pytest.mark.parametrize("cost", [float("nan"), float("inf"), -float("inf")])
def test_any_non_finite_cost_is_divergence(cost):
    """NaN or ±inf, in the validation cost too (the training cost may still be finite)."""
    from nablanet.training import DivergenceGuard
    trainer = _stub_trainer()
    DivergenceGuard().on_epoch_end(trainer, 3, {"train_cost": 0.5, "validation_cost": cost})
    assert trainer.status == "diverged"
    assert trainer.message.startswith(f"training diverged in epoch 4: cost became {cost}")


def test_a_checkpoint_whose_metric_is_not_monitored_saves_every_epoch_as_best(tmp_path,
                                                                          blobs_split):
    trainer = Trainer(mlp([4, 5, 3], rng=0), "cross-entropy", SGD(0.5), monitor=(), rng=0,
                      callbacks=[Checkpoint(tmp_path)])
    trainer.fit(blobs_split[0], 2)
    assert load_model(tmp_path / "best")[2]["epoch"] == 1
    assert_same_params(params(load_model(tmp_path / "best")[0]), params(trainer.net))


def test_a_checkpoint_passes_its_mode_on(tmp_path):
    """mode='min' on an accuracy: best/ is the epoch with the lowest one."""
    trainer = _stub_trainer()
    _drive(trainer, [Checkpoint(tmp_path, mode="min")], [0.9, 0.5, 0.7])
    assert load_model(tmp_path / "best")[2]["epoch"] == 1
    assert load_model(tmp_path / "last")[2]["epoch"] == 2


def _never_improving(callback):
    """``callback`` with a best accuracy of 2 recorded at epoch 0: nothing beats it."""
    callback.best.load_state_dict({"value": 2.0, "epoch": 0})
    return callback


@pytest.mark.parametrize("runs_out", [
    lambda: _never_improving(EarlyStopping(patience=2)),
    lambda: _never_improving(HalveOnPlateau(patience=3, floor_ratio=2.0)),
], ids=["early-stopping", "halve-on-plateau"])
def test_divergence_in_the_epoch_another_callback_stops_is_still_divergence(tmp_path,
                                                                            blobs_split,
                                                                            runs_out):
    """Both stop at epoch 2, the epoch the weights turn NaN: the guard's verdict stands,
    so the run is reported diverged and no checkpoint saves the NaN weights."""
    train, val = blobs_split
    trainer = Trainer(mlp([4, 8, 3], "sigmoid", "softmax", rng=0), "log-likelihood", SGD(0.5),
                      rng=0, callbacks=[runs_out(), Checkpoint(tmp_path, monitor="validation_cost"),
                                        _PoisonWeights(epoch=2)])
    trainer.fit(train, 10, val)
    assert trainer.status == "diverged" and "weights became non-finite" in trainer.message
    assert len(trainer.history) == 3
    assert load_model(tmp_path / "last")[2]["epoch"] == 1


# -- monitoring, history, batching --------------------------------------------------------------

def test_progress_prints_one_line_per_epoch_with_costs_and_percentages():
    import io
    stream = io.StringIO()
    metrics = {"epoch": 4, "seconds": 0.256, "eta": 0.05, "train_cost": 0.12345,
               "validation_accuracy": 0.9731}
    Progress(stream, total_epochs=10).on_epoch_end(_stub_trainer(), 4, metrics)
    assert stream.getvalue() == ("[##########..........]  epoch 5/10  train_cost 0.1235  "
                                 "validation_accuracy 97.31%  eta 0.05  0.26s\n")
    stream = io.StringIO()
    Progress(stream).on_epoch_end(_stub_trainer(), 0, {**metrics, "train_accuracy": 0.5,
                                                       "validation_cost": 0.25})
    assert stream.getvalue() == ("epoch 1  train_cost 0.1235  train_accuracy 50.00%  "
                                 "validation_cost 0.2500  validation_accuracy 97.31%  "
                                 "eta 0.05  0.26s\n")


def test_history_columns(blobs_split):
    history = Trainer(mlp([4, 5, 3], rng=0), "cross-entropy", SGD(0.5), rng=0).fit(
        blobs_split[0], 3, blobs_split[1])
    assert len(history) == 3
    assert history["epoch"] == [0, 1, 2]
    for key in ("train_cost", "train_accuracy", "validation_cost", "validation_accuracy"):
        assert len(history[key]) == 3
    assert all(0 <= a <= 1 for a in history["validation_accuracy"])
    assert history.best("train_cost", mode="min")["train_cost"] == min(history["train_cost"])


def test_history_columns_skip_epochs_without_the_metric_and_best_picks_by_mode():
    from nablanet.training.history import History
    rows = [{"epoch": 0, "cost": 3.0}, {"epoch": 1}, {"epoch": 2, "cost": 1.0, "acc": 0.5}]
    history = History(rows)
    rows.append({"epoch": 3})                       # the caller's list is copied, not shared
    assert len(history) == 3
    assert history["cost"] == [3.0, 1.0] and history["acc"] == [0.5]   # epoch 1 had none
    assert history.best("cost")["epoch"] == 0
    assert history.best("cost", mode="min")["epoch"] == 2
    assert history.best("missing") is None


@pytest.mark.parametrize("monitor", [(), ("validation_accuracy",), ("train_cost",),
                                     ("train_cost", "validation_cost"),
                                     ("train_accuracy", "validation_accuracy")])
def test_monitor_flags_select_the_metrics(blobs_split, monitor):
    history = Trainer(mlp([4, 5, 3], rng=0), "cross-entropy", SGD(0.5), monitor=monitor,
                      rng=0).fit(blobs_split[0], 1, blobs_split[1])
    assert set(history.rows[0]) == {"epoch", "seconds", "eta", *monitor}


def test_unknown_monitor_name_is_a_config_error():
    with pytest.raises(ConfigError, match="val_acc"):
        Trainer(mlp([4, 3], rng=0), "cross-entropy", SGD(0.5), monitor=("val_acc",))


def test_reported_cost_includes_the_penalty(blobs_split):
    net = mlp([4, 5, 3], rng=0)
    plain = Trainer(net, "cross-entropy", SGD(0.5))
    penalised = Trainer(net, "cross-entropy", SGD(0.5), penalties=[L2(3.0)])
    penalised.n_train = 90
    w2 = sum(float((layer.params["W"] ** 2).sum()) for layer in net.layers if layer.params)
    assert penalised.evaluate(blobs_split[0])[0] == pytest.approx(
        plain.evaluate(blobs_split[0])[0] + 0.5 * 3.0 * w2 / 90, rel=1e-6)


def test_evaluation_in_chunks_counts_every_example(blobs_split):
    """eval_chunk = 7 splits the 90 examples into 13 chunks, the last one short: the cost
    and the accuracy must be those of one pass over all of them."""
    net = mlp([4, 5, 3], rng=0)
    Trainer(net, "cross-entropy", SGD(0.5), monitor=(), rng=0).fit(blobs_split[0], 1)
    whole = Trainer(net, "cross-entropy", SGD(0.5)).evaluate(blobs_split[0])
    chunked = Trainer(net, "cross-entropy", SGD(0.5), eval_chunk=7).evaluate(blobs_split[0])
    assert chunked[0] == pytest.approx(whole[0], rel=1e-6)
    assert chunked[1] == whole[1]
    assert 0 < whole[1] < 1         # neither all right nor all wrong: a lost chunk would show


def test_max_norm_caps_the_weights_after_every_step_of_a_run(blobs_split):
    # Large steps grow the columns past the bound; the constraint must pull them back.
    def column_norms(constraints):
        net = mlp([4, 6, 3], "sigmoid", "sigmoid", rng=0)
        Trainer(net, "cross-entropy", SGD(5.0), constraints=constraints, monitor=(),
                rng=0).fit(blobs_split[0], 3)
        return np.concatenate([np.linalg.norm(layer.params["W"], axis=0)
                               for layer in net.layers if layer.params])

    assert column_norms([]).max() > 1.0           # the bound below really binds
    assert column_norms([MaxNorm(1.0)]).max() <= 1.0 + 1e-6


def test_partial_last_mini_batch_is_used_with_its_own_size():
    """n = 13, m = 5: batches of 5, 5 and 3, each step η xᵀ(a − y)/|B| (sigmoid +
    cross-entropy, one layer), so the last 3 examples are neither dropped nor scaled by 1/5."""
    rng = np.random.default_rng(0)
    x, labels = rng.standard_normal((13, 4)), rng.integers(0, 3, 13)
    net = Sequential([Dense(4, 3), Sigmoid()]).build((4,), F64, rng=0)
    w, b = net.layers[0].params["W"].copy(), net.layers[0].params["b"].copy()
    eta, seed = 0.7, 9
    Trainer(net, "cross-entropy", SGD(eta), batch_size=5, monitor=(), rng=seed).fit(
        Dataset(x, labels), 1)
    y = np.eye(3)[labels]
    order = np.random.default_rng(seed).permutation(13)
    for batch in (order[:5], order[5:10], order[10:]):
        a = 1 / (1 + np.exp(-(x[batch] @ w + b)))
        w = w - eta * x[batch].T @ (a - y[batch]) / len(batch)
        b = b - eta * (a - y[batch]).sum(axis=0) / len(batch)
    np.testing.assert_allclose(net.layers[0].params["W"], w, rtol=1e-12)
    np.testing.assert_allclose(net.layers[0].params["b"], b, rtol=1e-12)


def test_fit_function(blobs_split):
    net = mlp([4, 6, 3], rng=0)
    history = fit(net, blobs_split[0], optimizer=SGD(1.0), epochs=2, validation=blobs_split[1],
                  rng=0)
    assert len(history) == 2 and "validation_accuracy" in history.rows[0]


# -- bad input ------------------------------------------------------------------------------

def test_empty_training_data_is_a_data_error():
    with pytest.raises(DataError, match="0 examples"):
        Dataset(np.empty((0, 4)), np.empty(0, dtype=np.int64))


def test_wrong_feature_count_is_a_data_error(make_blobs):
    trainer = Trainer(mlp([5, 4, 3], rng=0), "cross-entropy", SGD(0.5))
    with pytest.raises(DataError, match="expects 5 features, got 4"):
        trainer.fit(make_blobs(20), 1)


def test_wrong_feature_count_in_validation_is_a_data_error(make_blobs):
    trainer = Trainer(mlp([4, 4, 3], rng=0), "cross-entropy", SGD(0.5))
    with pytest.raises(DataError, match="expects 4 features, got 5"):
        trainer.fit(make_blobs(20), 1, make_blobs(10, n_features=5))


def test_labels_beyond_the_output_units_are_a_data_error(make_blobs):
    trainer = Trainer(mlp([4, 4, 2], rng=0), "cross-entropy", SGD(0.5))
    with pytest.raises(DataError, match=r"labels must be in \[0, 2\)"):
        trainer.fit(make_blobs(20, n_classes=3), 1)


def test_bad_batch_size_is_a_data_error():
    with pytest.raises(DataError, match="batch size"):
        Trainer(mlp([4, 3], rng=0), "cross-entropy", SGD(0.5), batch_size=0)


def test_bare_arrays_instead_of_a_dataset_are_a_data_error(make_blobs):
    data = make_blobs(20)
    trainer = Trainer(mlp([4, 4, 3], rng=0), "cross-entropy", SGD(0.5))
    with pytest.raises(DataError, match="train must be a Dataset, got tuple"):
        trainer.fit((data.x, data.y), 1)
    with pytest.raises(DataError, match="validation must be a Dataset"):
        trainer.fit(data, 1, (data.x, data.y))
    with pytest.raises(DataError, match="must be a Dataset"):
        trainer.evaluate((data.x, data.y))


def test_an_optimizer_name_instead_of_an_optimizer_is_a_config_error():
    with pytest.raises(ConfigError, match="optimizer must be an Optimizer.*'sgd'"):
        Trainer(mlp([4, 3], rng=0), "cross-entropy", "sgd")


def test_an_optimizer_that_stepped_another_net_is_refused(blobs_split):
    # Adam's moments and step count from net a would silently steer net b (same shapes),
    # or fail deep in a broadcast (other shapes).
    adam = Adam(0.01)
    a = mlp([4, 5, 3], rng=0)
    Trainer(a, "cross-entropy", adam, monitor=(), rng=0).fit(blobs_split[0], 1)
    for b in (mlp([4, 5, 3], rng=0), mlp([4, 7, 3], rng=0)):
        with pytest.raises(ConfigError, match="another net; give each net its own optimizer"):
            Trainer(b, "cross-entropy", adam)
    # the same net may take a new trainer (more epochs, other callbacks)
    Trainer(a, "cross-entropy", adam, monitor=(), rng=0).fit(blobs_split[0], 1)
    assert adam.t > 0


@pytest.mark.parametrize("first", [lambda: Embedding(5, 3), lambda: OneHot(5)])
def test_nets_reading_symbol_indices_predict_and_train(first):
    # predict and the trainer cast every input to the net's float dtype, which
    # Embedding and OneHot refuse ("expects integer symbol indices, got float32")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, (60, 4))
    y = (x[:, 0] > 2).astype(np.int64)
    net = Sequential([first(), GRU(None, 8), LastStep(), Dense(8, 2), Softmax()]).build((4,), rng=0)
    assert net.predict(x[:3]).shape == (3, 2)
    trainer = Trainer(net, "log-likelihood", Adam(0.05), batch_size=10,
                      monitor=("train_accuracy",), rng=0)
    assert trainer.fit(Dataset(x, y), 15).rows[-1]["train_accuracy"] > 0.9
    with pytest.raises(DataError, match="whole numbers"):
        net.predict(x[:3] + 0.5)
