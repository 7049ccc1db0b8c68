"""The presets against the sources they cite: layer by layer, recipe by recipe.

Each expected table below is written out from the source (LeCun et al. 1998 fig. 2;
Nielsen ch. 6 and network3.py; Hinton & Salakhutdinov's rbm.m and rbmhidlinear.m;
Salakhutdinov & Murray 2008), so an accidental edit of a preset fails here rather than
in a published figure hours later."""
import json

import numpy as np
import pytest

from nablanet.errors import ConfigError
from nablanet.presets import PRESETS, PUBLISHED, RECIPES, lenet5
from nablanet.presets import rbm as energy
from nablanet.presets.cnn import MILD_AFFINE


def layers_of(net) -> list[str]:
    """One short line per layer: kind, sizes, and the initialiser of parameterised ones."""
    out = []
    for layer in net.layers:
        kind, c = type(layer).__name__, layer.config()
        if kind == "Conv2D":
            out.append(f"conv {c['in_channels']}->{c['out_channels']} k{c['kernel_size'][0]} "
                       f"p{c['padding'][0]} {c['init']}")
        elif kind == "Dense":
            out.append(f"dense {c['n_in']}->{c['n_out']} {c['init']}")
        elif kind in ("MaxPool2D", "AvgPool2D"):
            out.append(f"{kind[:3].lower()}pool {c['kernel_size'][0]}")
        elif kind == "Dropout":
            out.append(f"dropout {c['p']}")
        elif kind in ("Reshape", "Flatten"):
            continue                                        # plumbing, not architecture
        else:
            out.append(kind.lower())
    return out


LENET5 = ["conv 1->6 k5 p2 he", "maxpool 2", "relu", "conv 6->16 k5 p0 he", "maxpool 2", "relu",
          "dense 400->120 he", "relu", "dense 120->84 he", "relu", "dense 84->10 glorot",
          "softmax"]


def _conv_ladder(act, init, convs=2):
    layers = ["conv 1->20 k5 p0 " + init, "maxpool 2", act]
    if convs == 2:
        layers += ["conv 20->40 k5 p0 " + init, "maxpool 2", act]
    return layers


NIELSEN_CH6 = {                 # network3.py's nets, in the order the chapter climbs
    "nielsen-ch6-fc": ["dense 784->100 normal-scaled", "sigmoid",
                       "dense 100->10 normal-scaled", "softmax"],
    "nielsen-ch6-conv": _conv_ladder("sigmoid", "normal-scaled", 1)
    + ["dense 2880->100 normal-scaled", "sigmoid", "dense 100->10 normal-scaled", "softmax"],
    "nielsen-ch6-conv2": _conv_ladder("sigmoid", "normal-scaled")
    + ["dense 640->100 normal-scaled", "sigmoid", "dense 100->10 normal-scaled", "softmax"],
    "nielsen-ch6-relu": _conv_ladder("relu", "he")
    + ["dense 640->100 he", "relu", "dense 100->10 he", "softmax"],
    "nielsen-ch6-fc2": _conv_ladder("relu", "he")
    + ["dense 640->100 he", "relu", "dense 100->100 he", "relu", "dense 100->10 he", "softmax"],
    # network3 drops the inputs of every fully connected layer and of the softmax layer
    "nielsen-ch6-dropout": _conv_ladder("relu", "he")
    + ["dropout 0.5", "dense 640->1000 he", "relu", "dropout 0.5", "dense 1000->1000 he", "relu",
       "dropout 0.5", "dense 1000->10 he", "softmax"],
}
NIELSEN_CH6["nielsen-ch6-expanded"] = NIELSEN_CH6["nielsen-ch6-relu"]
# the same net, its conv features not dropped, behind random affine maps
NIELSEN_CH6["nielsen-ch6-final"] = (["randomdistortion"] + NIELSEN_CH6["nielsen-ch6-dropout"][:6]
                                    + NIELSEN_CH6["nielsen-ch6-dropout"][7:])


def test_lenet5_has_the_papers_layers():
    assert layers_of(lenet5(rng=0)) == LENET5
    distorted = PRESETS["lenet5-distorted"](rng=0)
    assert layers_of(distorted) == ["randomdistortion"] + LENET5


def test_lenet5_pools_after_tanh_but_before_relu():
    # max-pooling commutes with a monotone σ (so it may go first, on fewer numbers);
    # averaging does not: tanh(mean z) ≠ mean tanh(z), and 1998's S2 follows C1's squashing
    assert layers_of(lenet5(activation="tanh", pool="avg", rng=0))[:6] == [
        "conv 1->6 k5 p2 glorot", "tanh", "avgpool 2", "conv 6->16 k5 p0 glorot", "tanh",
        "avgpool 2"]


@pytest.mark.parametrize("name", sorted(NIELSEN_CH6))
def test_nielsen_ch6_nets_have_network3s_layers(name):
    assert layers_of(PRESETS[name](rng=0)) == NIELSEN_CH6[name]


def test_the_final_net_distorts_with_the_mild_affine_maps():
    distortion = PRESETS["nielsen-ch6-final"](rng=0).layers[0].config()
    assert {k: distortion[k] for k in MILD_AFFINE} == json.loads(json.dumps(MILD_AFFINE))


# Nielsen ch. 6: (η, epochs, network3's λ, expanded data, published test accuracy); the
# mini-batch is 10 throughout and TrainConfig's λ is network3's times the mini-batch.
NIELSEN_SETTINGS = {
    "nielsen-ch6-fc": (0.1, 60, 0.0, False, 0.9780),
    "nielsen-ch6-conv": (0.1, 60, 0.0, False, 0.9878),
    "nielsen-ch6-conv2": (0.1, 60, 0.0, False, 0.9906),
    "nielsen-ch6-relu": (0.03, 60, 0.1, False, 0.9923),
    "nielsen-ch6-expanded": (0.03, 60, 0.1, True, 0.9937),
    "nielsen-ch6-fc2": (0.03, 60, 0.1, True, 0.9943),
    "nielsen-ch6-dropout": (0.03, 40, 0.0, True, 0.9960),
}


@pytest.mark.parametrize("name", sorted(NIELSEN_SETTINGS))
def test_nielsen_ch6_recipes_are_the_chapters(name):
    eta, epochs, lmbda, expand, published = NIELSEN_SETTINGS[name]
    recipe = RECIPES[name]
    assert (recipe["cost"], recipe["optimizer"], recipe["batch_size"]) == (
        "log-likelihood", "sgd", 10)
    assert (recipe["eta"], recipe["epochs"], recipe["expand"]) == (eta, epochs, expand)
    assert recipe["lmbda"] == pytest.approx(lmbda * recipe["batch_size"])
    assert "schedule" not in recipe                         # network3: a constant η
    assert PUBLISHED[name] == published


def test_lenet5_published_errors_are_the_papers():
    # LeCun et al. 1998, fig. 9 / table: 0.95% plain, 0.8% with distortions
    assert (1 - PUBLISHED["lenet5"], 1 - PUBLISHED["lenet5-distorted"]) == pytest.approx(
        (0.0095, 0.008))


# -- energy-based presets ------------------------------------------------------------------------
def test_rbm_rule_is_hinton_and_salakhutdinovs():
    # rbm.m: ε 0.1, weightcost 0.0002, momentum 0.5 while epoch ≤ 5 then 0.9, batches of
    # 100, maxepoch 50; rbmhidlinear.m: ε 0.001 for the linear code layer
    assert energy.HS_CD == {"k": 1, "learning_rate": 0.1, "weight_cost": 0.0002,
                            "momentum": 0.5, "final_momentum": 0.9, "momentum_switch": 5,
                            "batch_size": 100}
    for name in ("rbm", "dbn", "dbn-generative", "deep-autoencoder"):
        settings = energy.recipe(name)
        assert settings["epochs"] == 50 and settings["cd"] == energy.HS_CD, name
    top = energy.recipe("deep-autoencoder")["cd_top"]
    assert top == {**energy.HS_CD, "learning_rate": 0.001}
    assert energy.recipe("dbn")["sizes"] == [784, 500, 500, 2000]
    assert energy.recipe("deep-autoencoder")["sizes"] == [784, 1000, 500, 250, 30]


def test_rbm_preset_follows_salakhutdinov_and_murray():
    # 100 AIS runs; β spaced 1/1000 on [0, 0.5), 1/10 000 on [0.5, 0.9), 1/100 000 on
    # [0.9, 1]: 500 + 4000 + 10 000 intermediate distributions
    settings = energy.recipe("rbm")
    assert settings["sizes"] == [784, 500] and settings["binarize"] == "sample"
    assert settings["ais"] == {"n_chains": 100, "n_betas": 500 + 4000 + 10_000}


def test_an_rbm_recipe_needs_exactly_two_layer_sizes():
    settings = {**energy.recipe("rbm"), "sizes": [784, 500, 10]}
    with pytest.raises(ConfigError, match=r"an RBM has two layer sizes, got \[784, 500, 10\]"):
        energy.build(settings)
    with pytest.raises(ConfigError, match="unknown model kind 'dbm'"):
        energy.build({**settings, "model": "dbm"})


# -- the char-lstm preset -----------------------------------------------------------------------
def test_char_lstm_builds_the_net_its_recipe_describes():
    from nablanet.models.charlm import Vocabulary
    from nablanet.presets import rnn

    settings = rnn.recipe("char-lstm", {"n_hidden": 12, "seq_length": 7})
    assert rnn.RECIPES["char-lstm"]["n_hidden"] == 256         # the recipe itself is copied
    model = rnn.build(Vocabulary.from_text("hello world"), settings, rng=0)
    assert model.net.input_shape == (7,) and model.net.output_shape == (7, 8)
    lstm = model.net.layers[1].config()
    assert (lstm["n_hidden"], lstm["initial_state"], lstm["init"]) == (12, "zeros", "glorot")
    full = rnn.build(Vocabulary.from_text("ab"), rnn.recipe(), rng=0)
    assert full.net.layers[1].config()["n_hidden"] == 256 and full.net.input_shape == (100,)
    with pytest.raises(ConfigError, match="unknown recurrent preset 'char-gru'"):
        rnn.recipe("char-gru")


def test_char_lstm_hands_the_budget_left_and_its_settings_to_training(tmp_path, monkeypatch):
    """--minutes bounds the whole call: training gets it less the margin and the time
    already spent; a training error leaves summary.json saying the run failed."""
    from nablanet.presets import rnn

    seen = {}

    def fail(model, train_text, validation_text, settings, **kwargs):
        seen.update(settings=settings, n_train=len(train_text), n_validation=len(validation_text),
                    n_hidden=model.net.layers[1].config()["n_hidden"])
        raise ConfigError("diverged")

    monkeypatch.setattr(rnn, "train_char_lm", fail)
    text = tmp_path / "t.txt"
    text.write_text("to be or not to be\n" * 20)
    with pytest.raises(ConfigError, match="diverged"):
        rnn.train_char_lstm(tmp_path / "run", text_path=text, minutes=0.5, log=None,
                            overrides={"eta": 0.01, "n_hidden": 8, "validation_fraction": 0.25})
    settings = seen["settings"]
    assert settings.eta == 0.01 and settings.epochs is None and seen["n_hidden"] == 8
    assert (seen["n_train"], seen["n_validation"]) == (285, 95)     # the last quarter held out
    assert 30 - rnn.MARGIN_S - 5 < settings.max_seconds <= 30 - rnn.MARGIN_S
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["message"] == "diverged"
    with pytest.raises(ConfigError, match="--minutes must leave more than 8 s, got 0.1"):
        rnn.train_char_lstm(tmp_path / "other", text_path=text, minutes=0.1, log=None)
    assert not (tmp_path / "other").exists()


# -- cnn_reproduce: every recipe reaches the trainer ---------------------------------------------
class _Stop(Exception):
    pass


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_train_preset_trains_with_the_recipe(name, tmp_path, monkeypatch):
    """What train_preset hands the trainer, for each recipe: optimiser, η, momentum, L2,
    schedule, mini-batch, and the training data (5× when expanded, training plus
    validation images when the recipe keeps no validation set)."""
    from nablanet.data import Dataset
    from nablanet.optimizers import SGD
    from nablanet.presets import cnn_reproduce
    from nablanet.regularizers import L2
    from nablanet.training import CosineDecay, StepDecay

    seen = {}

    class SpyTrainer:
        def __init__(self, net, cost, optimizer, **kwargs):
            seen.update(cost=cost, optimizer=optimizer, **kwargs)

        def fit(self, train, epochs, validation):
            seen.update(train=train, epochs=epochs, validation=validation)
            raise _Stop

    monkeypatch.setattr(cnn_reproduce, "Trainer", SpyTrainer)
    rng = np.random.default_rng(0)
    data = [Dataset(rng.random((n, 784), dtype=np.float32), np.arange(n) % 10)
            for n in (6, 4, 3)]
    with pytest.raises(_Stop):
        cnn_reproduce.train_preset(name, data, tmp_path / name, stream=None)
    recipe = RECIPES[name]
    optimizer = seen["optimizer"]
    assert optimizer.name == recipe["optimizer"] and optimizer.eta == recipe["eta"]
    assert getattr(optimizer, "momentum", None) == recipe.get("momentum")
    assert seen["cost"] == recipe["cost"] and seen["batch_size"] == recipe["batch_size"]
    assert seen["epochs"] == recipe["epochs"]
    l2 = [p.lmbda for p in seen["penalties"] if isinstance(p, L2)]
    assert l2 == ([recipe["lmbda"]] if recipe["lmbda"] else []) == [
        p.lmbda for p in seen["penalties"]]
    steps = [(c.every, c.factor) for c in seen["callbacks"] if isinstance(c, StepDecay)]
    cosine = [c.epochs for c in seen["callbacks"] if isinstance(c, CosineDecay)]
    schedule = recipe.get("schedule")
    assert steps == ([(recipe["step_every"], 0.5)] if schedule == "step" else [])
    assert cosine == ([recipe["epochs"]] if schedule == "cosine" else [])
    n_train = 6 + 4 if recipe.get("validation_in_training") else 6
    assert len(seen["train"]) == n_train * (5 if recipe["expand"] else 1)
    if recipe.get("validation_in_training"):
        assert seen["validation"] is None and seen["monitor"] == ()
    else:
        assert len(seen["validation"]) == 4 and seen["monitor"] == ("validation_accuracy",)
    assert type(optimizer) is not SGD or recipe["optimizer"] == "sgd"


def test_char_lstm_keeps_the_best_model_and_reports_the_last_pass_too(tmp_path, monkeypatch):
    """Two validation passes, the second worse: best/ and best_* are the first's, final_*
    and last/ the second's."""
    from nablanet.models.charlm import CharLM
    from nablanet.presets import rnn

    def two_passes(model, train_text, validation_text, settings, *, on_evaluation, **kwargs):
        for step, nats in ((10, 2.0), (20, 2.5)):
            on_evaluation({"step": step, "epochs": step / 20, "chars": 100 * step,
                           "validation_nats_per_char": nats,
                           "validation_bits_per_char": nats / np.log(2)}, model)
            model.net.layers[1].params["U"] *= 0.5            # the second pass's model differs
        return []

    monkeypatch.setattr(rnn, "train_char_lm", two_passes)
    text = tmp_path / "t.txt"
    text.write_text("to be or not to be\n" * 20)
    summary = rnn.train_char_lstm(tmp_path / "run", text_path=text, epochs=1, log=None,
                                  overrides={"n_hidden": 4, "sample": {
                                      **rnn.RECIPES["char-lstm"]["sample"], "length": 5}})
    assert (summary["best_validation_nats_per_char"], summary["final_validation_nats_per_char"],
            summary["steps"]) == (2.0, 2.5, 20)
    best, last = (CharLM.load(tmp_path / "run" / name) for name in ("best", "last"))
    u = [m.net.layers[1].params["U"] for m in (best, last)]
    np.testing.assert_allclose(u[1], u[0] * 0.25, rtol=1e-6)   # best/ saved at the first pass


# -- rnn_reproduce: the verdict at the target's edges -----------------------------------------
@pytest.mark.parametrize("budget, nats, passed", [
    (["--minutes", "30"], 1.65, True),          # the target exactly, in exactly its time
    (["--minutes", "30"], 1.651, False),
    (["--minutes", "30.5"], 1.2, False),         # good enough, but not in the target's budget
    (["--epochs", "3"], 1.2, False),
])
def test_rnn_reproduce_passes_only_at_the_target_within_its_budget(budget, nats, passed,
                                                                   tmp_path, monkeypatch, capsys):
    from nablanet.presets import rnn_reproduce

    def trained(out_dir, **kwargs):             # what train_char_lstm leaves and returns
        out_dir.mkdir(parents=True)
        (out_dir / "sample.txt").write_text("ROMEO:\nsome words", encoding="utf-8")
        return {"best_validation_nats_per_char": nats, "best_validation_bits_per_char": 2.0,
                "final_validation_nats_per_char": nats + 0.25, "seconds": 12.0, "steps": 7,
                "epochs": 0.5}

    monkeypatch.setattr(rnn_reproduce, "train_char_lstm", trained)
    assert rnn_reproduce.main(["char-lstm", *budget, "--out", str(tmp_path / "run")]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["passed"] is passed
    assert results["validation_nats_per_char"] == nats                   # the best, not the last
    assert results["final_validation_nats_per_char"] == nats + 0.25
    assert capsys.readouterr().out.count("PASS" if passed else "FAIL") == 1


def test_rnn_reproduce_refuses_a_negative_thread_count(tmp_path, monkeypatch, capsys):
    # It was passed to threadpoolctl, which left the thread count as it was.
    from nablanet.presets import rnn_reproduce

    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(rnn_reproduce, "train_char_lstm", no_training)
    with pytest.raises(SystemExit) as info:
        rnn_reproduce.main(["char-lstm", "--epochs", "1", "--out", str(tmp_path / "run"),
                            "--blas-threads", "-2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1 and "--blas-threads" in err[0]
    assert not (tmp_path / "run").exists()
