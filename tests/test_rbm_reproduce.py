"""Energy-based presets and their reproduce entry point (tiny MNIST runs), and the
``nablanet pretrain`` / ``nablanet generate`` commands."""
import json
import os
from pathlib import Path

import numpy as np
import pytest

from nablanet import ConfigError
from nablanet.data import mnist_available
from nablanet.models.autoencoder import DeepAutoencoder
from nablanet.models.dbn import DBN
from nablanet.models.rbm import RBM
from nablanet.presets import rbm as presets
from nablanet.models.persistence import load_rbm
from nablanet.presets.rbm_reproduce import main as reproduce_main
from nablanet.presets.rbm_reproduce import run_experiment
from nablanet.runs import to_json

REAL_DATA = os.environ.get("NABLANET_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
needs_mnist = pytest.mark.skipif(not mnist_available(REAL_DATA), reason="MNIST files not found")
PNG = b"\x89PNG\r\n\x1a\n"
TINY = dict(epochs=1, fine_tune_epochs=1, train_size=300, validation_size=200, test_size=200,
            data_dir=REAL_DATA, stream=None)


def test_recipes_build_the_papers_models():
    assert isinstance(presets.build("rbm", rng=0), RBM)
    dbn = presets.build("dbn-generative", rng=0)
    assert isinstance(dbn, DBN) and dbn.sizes == [784, 500, 500, 2000] and dbn.n_labels == 10
    ae = presets.build("deep-autoencoder", rng=0)
    assert isinstance(ae, DeepAutoencoder) and ae.sizes == [784, 1000, 500, 250, 30]
    assert ae.dbn.rbms[-1].hidden == "gaussian"
    assert presets.build("deep-autoencoder-2d", rng=0).sizes[-1] == 2
    rules = presets.layer_rules(presets.recipe("dbn-generative"), 3)
    assert [r.persistent for r in rules] == [False, False, True]
    top = presets.layer_rules(presets.recipe("deep-autoencoder"), 4)[-1]
    assert top.learning_rate == pytest.approx(0.001)          # the linear code layer
    assert presets.recipe("dbn", epochs=3)["epochs"] == 3
    assert presets.recipe("dbn")["epochs"] == 50               # recipes are copied, not shared


def test_bad_preset_settings_are_config_errors():
    with pytest.raises(ConfigError, match="unknown preset"):
        presets.recipe("dbm")
    with pytest.raises(ConfigError, match="no setting"):
        presets.recipe("dbn", epoch=3)
    with pytest.raises(ConfigError, match="cd settings"):
        presets.contrastive_divergence({"k": 1, "lr": 0.1})
    with pytest.raises(ConfigError):
        run_experiment("dbm", "unused")
    with pytest.raises(ConfigError, match="not trained by"):
        run_experiment("dbn", "unused", preset="deep-autoencoder")


@pytest.mark.mnist
@needs_mnist
@pytest.mark.parametrize("experiment, sizes, expected", [
    ("rbm", [784, 32], {"test_log_likelihood", "log_z"}),
    ("dbn", [784, 32, 16], {"test_error", "best_epoch"}),
    ("generate", [784, 32, 16], {"generated_as_clamped", "free_energy_test_error",
                                 "free_energy_test_error_greedy"}),
    ("autoencoder", [784, 32, 16, 2], {"reconstruction_error", "pca_reconstruction_error"}),
])
def test_each_experiment_writes_results_metrics_pngs_and_models(tmp_path, experiment, sizes,
                                                                expected):
    summary = run_experiment(experiment, tmp_path, sizes=sizes, gibbs_steps=5, per_class=3,
                             ais_betas=50, **TINY)
    saved = json.loads((tmp_path / "results.json").read_text())
    # the file holds the summary returned (saved == json.loads(json.dumps(saved)) was true
    # of anything read from JSON)
    assert saved["results"].keys() >= expected and saved == json.loads(to_json(summary))
    assert summary["data"] == {"train": 300, "validation": 200, "test": 200}
    assert saved["settings"]["sizes"] == sizes and saved["published"]
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {row["phase"] for row in rows} >= {"pretrain"}
    for name in saved["results"]["files"]:
        assert (tmp_path / name).read_bytes()[:8] == PNG
    model = {"rbm": "rbm", "dbn": "best", "generate": "dbn", "autoencoder": "autoencoder"}
    assert (tmp_path / model[experiment] / "weights.safetensors").is_file()
    if experiment == "generate":           # fine-tuned by up-down: saved with untied weights
        assert {"pretrain", "up-down"} <= {row["phase"] for row in rows}
        assert load_rbm(tmp_path / "dbn")[0].generative is not None
    _check_results(experiment, saved, tmp_path)


def _check_results(experiment, saved, out):
    """The numbers in results.json are those of the models the run left, on the test images,
    and the flags reached the settings."""
    from nablanet.io import load_model
    from nablanet.models.autoencoder import PCA
    from nablanet.presets.rbm_reproduce import load_data

    results, settings = saved["results"], saved["settings"]
    train, _, test = load_data(REAL_DATA, train_size=300, validation_size=200, test_size=200)
    if experiment == "rbm":
        assert settings["ais"]["n_betas"] == 50
        # scored on the test images, not a second time on the training ones
        assert results["test_log_likelihood"] != results["train_log_likelihood"]
    if experiment == "dbn":
        assert settings["fine_tune"]["epochs"] == 1
        best = load_model(out / "best")[0]
        assert results["test_error"] == float((best.classify(test.x) != test.y).mean())
    if experiment == "generate":
        assert settings["up_down"]["epochs"] == 1       # --fine-tune-epochs: up-down's epochs
        assert (settings["generate"]["gibbs_steps"], settings["generate"]["per_class"]) == (5, 3)
        dbn = load_rbm(out / "dbn")[0]                   # after up-down
        assert results["free_energy_test_error"] == float((dbn.classify(test.x) != test.y).mean())
    if experiment == "autoencoder":
        pca = PCA(2).fit(train.x)                        # the same code size as the net's
        assert results["pca_reconstruction_error"] == pytest.approx(
            pca.reconstruction_error(test.x))
        assert results["pca_over_autoencoder"] == pytest.approx(
            results["pca_reconstruction_error"] / results["reconstruction_error"])
        assert results["best_epoch"] == 0                # early stopping watched validation


@pytest.mark.mnist
@needs_mnist
def test_code_size_and_input_dropout_reach_the_autoencoder(tmp_path):
    from nablanet.io import load_model

    summary = run_experiment("autoencoder", tmp_path, sizes=[784, 32, 16], code_size=3,
                             input_dropout=0.25, **TINY)
    assert summary["settings"]["sizes"] == [784, 32, 3]
    net = load_model(tmp_path / "autoencoder")[0]
    dropout = net.layers[0]            # a denoising autoencoder: its input is corrupted
    assert type(dropout).__name__ == "Dropout" and dropout.p == 0.25
    assert summary["results"]["files"] == ["reconstructions.png"]       # no 2-d code plots


@pytest.mark.mnist
@needs_mnist
@pytest.mark.parametrize("experiment, sizes", [
    pytest.param("rbm", [784, 32], marks=pytest.mark.slow),
    pytest.param("dbn", [784, 32, 16], marks=pytest.mark.slow),
    ("generate", [784, 32, 16]),
    ("autoencoder", [784, 32, 16, 2]),
])
def test_one_seed_gives_the_same_models_and_results(tmp_path, experiment, sizes):
    runs = []
    for out in ("a", "b"):
        summary = run_experiment(experiment, tmp_path / out, sizes=sizes, gibbs_steps=5,
                                 per_class=3, ais_betas=50, seed=1, **TINY)
        summary["results"] = {k: v for k, v in summary["results"].items() if "seconds" not in k}
        weights = {p.relative_to(tmp_path / out): p.read_bytes()
                   for p in sorted((tmp_path / out).rglob("*.safetensors"))}
        runs.append(({k: v for k, v in summary.items() if k != "seconds"}, weights))
    assert runs[0][1] and runs[0] == runs[1]


@pytest.mark.mnist
@needs_mnist
def test_pretrain_then_generate_from_the_command_line(tmp_path, capsys):
    from nablanet.cli.main import main
    common = ["--epochs", "1", "--train-size", "300", "--validation-size", "200",
              "--test-size", "100", "--data-dir", str(REAL_DATA), "--quiet"]
    assert main(["pretrain", "--preset", "dbn-generative", "--out", str(tmp_path / "g"),
                 "--sizes", "784", "16", "16", "--gibbs-steps", "2", "--per-class", "2",
                 *common]) == 0
    assert "generated digits classified as clamped" in capsys.readouterr().out
    assert main(["generate", str(tmp_path / "g"), "--label", "3", "7", "--n", "2",
                 "--gibbs-steps", "5"]) == 0
    assert (tmp_path / "g" / "generated-3-7.png").read_bytes()[:8] == PNG
    # a DBN without label units cannot generate a chosen class: one error line, exit 2
    assert main(["pretrain", "--preset", "dbn", "--out", str(tmp_path / "d"), "--sizes", "784",
                 "16", "--fine-tune-epochs", "1", *common]) == 0
    capsys.readouterr()
    assert main(["generate", str(tmp_path / "d"), "--label", "3"]) == 2
    assert "not a generative DBN" in capsys.readouterr().err
    # the module entry point reports bad settings as one line, exit 2
    assert reproduce_main(["dbn", "--out", str(tmp_path / "x"), "--sizes", "784", "0",
                           *common]) == 2
    assert "positive" in capsys.readouterr().err


def test_generate_with_one_seed_draws_the_same_digits(tmp_path, capsys):
    from nablanet.cli.main import main
    from nablanet.models.persistence import save_rbm

    save_rbm(tmp_path / "run" / "dbn", DBN([784, 8, 6], n_labels=3, init_std=0.5, rng=0))
    for name in ("a.png", "b.png"):
        assert main(["generate", str(tmp_path / "run"), "--label", "0", "2", "--n", "2",
                     "--gibbs-steps", "3", "--gain-steps", "2", "--seed", "5",
                     "--out", str(tmp_path / name), "--quiet"]) == 0
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


@pytest.mark.mnist
@needs_mnist
def test_reproduce_hinton_2006_prints_ours_beside_the_published(tmp_path, capsys):
    from test_cli_data import nablanet
    result = nablanet(capsys, "reproduce", "hinton-2006", "--out", tmp_path, "--only", "dbn",
                      "--only", "autoencoder", "--epochs", 1, "--fine-tune-epochs", 1,
                      "--train-size", 300, "--validation-size", 200, "--test-size", 100,
                      "--data-dir", REAL_DATA, "--quiet")
    assert result.code == 0, result.err
    report = json.loads((tmp_path / "reproduce.json").read_text())
    assert [s["experiment"] for s in report["experiments"]] == ["dbn", "autoencoder"]
    dbn, autoencoder = report["experiments"]
    assert dbn["data"] == {"train": 300, "validation": 200, "test": 100}
    assert (tmp_path / "dbn" / "results.json").is_file() and not (tmp_path / "generate").exists()
    ours = f"{dbn['results']['test_error']:.2%}"
    assert f"ours {ours:>8s}   published 1.20%" in result.out
    assert "published 3.00" in result.out and "published 13.87" in result.out
    assert f"{autoencoder['results']['pca_reconstruction_error']:.2f}" in result.out
    assert "FAIL  test_error <= 1.3%" in result.out           # one RBM epoch cannot reach it


def test_reproduce_refuses_flags_of_the_other_table(capsys, tmp_path):
    from test_cli_data import assert_one_error_line, nablanet
    assert_one_error_line(nablanet(capsys, "reproduce", "hinton-2006", "--out", tmp_path,
                                   "--seeds", 3), "one seed")
    assert_one_error_line(nablanet(capsys, "reproduce", "hinton-2006", "--out", tmp_path,
                                   "--init", "glorot"), "nielsen-ch3")
    assert_one_error_line(nablanet(capsys, "reproduce", "hinton-2006", "--out", tmp_path,
                                   "--only", "rbm"), "choose from dbn, generate, autoencoder")
    assert_one_error_line(nablanet(capsys, "reproduce", "nielsen-ch3", "--out", tmp_path,
                                   "--train-size", 100), "--train-size belongs to the hinton-2006")
    assert_one_error_line(nablanet(capsys, "reproduce", "hinton-2006", "--out", tmp_path,
                                   "--members", 3), "--members belongs to nielsen-ch6$")
    assert_one_error_line(nablanet(capsys, "reproduce", "hinton-2006", "--out", tmp_path,
                                   "--dataset", "elsewhere"), "--dataset must be mnist$")
    assert_one_error_line(nablanet(capsys, "reproduce", "hinton-2006", "--out", tmp_path,
                                   "--rerun"), "--rerun belongs to nielsen-ch3")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("preset", ["rbm", "dbn", "dbn-generative"])
@pytest.mark.parametrize("flag, value", [("--input-dropout", 0.2), ("--code-size", 10)])
def test_pretrain_refuses_autoencoder_flags_for_other_presets(capsys, tmp_path, preset, flag,
                                                              value):
    # --input-dropout was a KeyError traceback for rbm and dbn-generative and silently
    # unused by dbn; --code-size resized the top layer of an RBM or DBN
    from test_cli_data import assert_one_error_line, nablanet
    assert_one_error_line(nablanet(capsys, "pretrain", "--preset", preset, "--out",
                                   tmp_path / "run", flag, value),
                          f"{flag} applies to the deep-autoencoder presets, not {preset}$")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("preset, flag, value, stage", [
    ("rbm", "--gibbs-steps", 5, "generate"), ("dbn", "--per-class", 2, "generate"),
    ("dbn-generative", "--ais-betas", 100, "ais"),
    ("rbm", "--fine-tune-epochs", 1, "fine-tune or up-down"),
])
def test_pretrain_refuses_a_flag_for_a_stage_its_preset_lacks(capsys, tmp_path, preset, flag,
                                                              value, stage):
    # the run went ahead and ignored it
    from test_cli_data import assert_one_error_line, nablanet
    assert_one_error_line(nablanet(capsys, "pretrain", "--preset", preset, "--out",
                                   tmp_path / "run", flag, value),
                          f"{flag} does not apply to {preset}, which has no {stage} stage$")
    assert not (tmp_path / "run").exists()
    from nablanet.presets import rbm_reproduce
    assert rbm_reproduce.main([preset.replace("dbn-generative", "generate"), "--out",
                               str(tmp_path / "m"), flag, str(value)]) == 2
    assert f"{flag} does not apply" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_the_stage_flags_pass_where_their_stage_exists():
    from nablanet.presets.rbm_reproduce import check_stage_flags
    check_stage_flags("dbn-generative", {"gibbs_steps": 5, "per_class": 2,
                                         "fine_tune_epochs": 1})
    check_stage_flags("rbm", {"ais_betas": 100})
    check_stage_flags("dbn", {"fine_tune_epochs": 1, "gibbs_steps": None})


def test_help_names_the_energy_based_presets_and_tables(capsys):
    from test_cli_data import nablanet
    listing = nablanet(capsys, "--help").out
    assert "rbm|dbn|dbn-generative|deep-autoencoder" in listing and "hinton-2006" in listing
    assert "nablanet pretrain --preset NAME" in " ".join(nablanet(capsys, "train", "--help").out.split())
    # argparse wraps lines at spaces and after hyphens: undo both
    pretrain = " ".join(nablanet(capsys, "pretrain", "--help").out.split()).replace("- ", "-")
    assert all(name + ":" in pretrain for name in presets.PRESETS)
    assert "--blas-threads" in pretrain
    assert "hinton-2006" in nablanet(capsys, "reproduce", "--help").out


def test_pretrain_help_gives_the_generate_recipe_defaults(capsys):
    """--gibbs-steps and --per-class say the defaults run_experiment actually uses."""
    from test_cli_data import nablanet
    sampler = presets.RECIPES["dbn-generative"]["generate"]
    # argparse wraps lines at spaces and after hyphens: undo both
    text = " ".join(nablanet(capsys, "pretrain", "--help").out.split()).replace("- ", "-")
    assert f"after the label-gain start (default {sampler['gibbs_steps']})" in text
    assert f"digits generated per class (default {sampler['per_class']})" in text


def test_pretrain_looks_for_mnist_where_every_command_does():
    # Its help said "(default $NABLANET_DATA)"; load_mnist also looks in the cache.
    from test_cli_data import flag_help
    assert flag_help("pretrain", "--data-dir") == flag_help("train", "--data-dir")


def test_run_log_prints_epochs_from_1_and_stores_indices_from_0(tmp_path):
    import io

    from nablanet.presets.rbm_reproduce import RunLog

    shown = io.StringIO()
    log = RunLog(tmp_path, stream=shown)
    log.phase = "pretrain"
    log.epoch({"epoch": 0, "seconds": 0.5}, layer=1)
    assert shown.getvalue() == "phase pretrain  layer 1  epoch 1  seconds 0.5\n"
    row = json.loads((tmp_path / "metrics.jsonl").read_text())
    assert row == {"phase": "pretrain", "layer": 1, "epoch": 0, "seconds": 0.5}


# -- the acceptance checks: pure functions, at their edges -----------------------------------------

def test_rbm_acceptance_checks_hold_at_the_targets_and_need_every_class():
    from nablanet.presets.rbm_reproduce import _per_class, all_checks_pass, checks
    assert checks("dbn", {"test_error": 0.013}, {}) == {"test_error <= 1.3%": True}
    sizes = presets.RECIPES["deep-autoencoder"]["sizes"]
    ae = {"reconstruction_error": 3.3, "pca_over_autoencoder": 3.0}
    assert all(checks("autoencoder", ae, {"sizes": sizes}).values())
    assert checks("autoencoder", ae, {"sizes": [784, 30]}) == {}     # not the paper's net
    generated = {"generated_as_clamped": 0.95, "generated_as_clamped_per_class": [1.0, 0.5]}
    assert checks("generate", generated, {}) == {">= 90% classified as clamped": True,
                                                 ">= 90% in every class": False}
    # class k: of the digits generated as k, the share classified as k
    assert _per_class(np.array([0, 1, 1, 1]), np.array([0, 0, 1, 1]), 2) == [0.5, 1.0]
    assert not all_checks_pass([{"checks": {"a": True}}, {"checks": {"b": False}}])


def test_the_sampler_description_mentions_gain_only_when_it_changes_something():
    from nablanet.presets.rbm_reproduce import _describe
    assert _describe({"gain_steps": 5, "label_gain": 1.0, "gibbs_steps": 3}).startswith(
        "no label gain")
    assert _describe({"gain_steps": 5, "label_gain": 2.0, "gibbs_steps": 3}) == \
        "5 steps with label gain 2, then 3 Gibbs steps"


def test_cnn_acceptance_checks_hold_at_the_targets(tmp_path):
    from nablanet.presets.cnn_reproduce import RESULT, _finished, checks
    results = {"nets": [{"name": "lenet5", "test_accuracy": 0.99}],
               "ensemble": {"test_errors": 33}}
    assert list(checks(results).values()) == [True, True]
    stored = {"name": "lenet5", "seed": 0, "device": "cpu", "status": "completed",
              "settings": {"eta": 0.1}, "train_examples": 100}
    (tmp_path / RESULT).write_text(json.dumps(stored))
    assert _finished(tmp_path, "lenet5", {"eta": 0.1}, 0, 100, "cpu") == stored
    assert _finished(tmp_path, "lenet5", {"eta": 0.1}, 0, 50, "cpu") is None   # other subset
    (tmp_path / RESULT).write_text(json.dumps({**stored, "status": "failed"}))
    assert _finished(tmp_path, "lenet5", {"eta": 0.1}, 0, 100, "cpu") is None


def test_pretrain_runs_the_presets_experiment_with_its_flags(capsys, tmp_path, monkeypatch):
    from nablanet.presets import rbm_reproduce
    from test_cli_data import nablanet
    calls = []

    def run_experiment(name, out, **kwargs):
        calls.append((name, out, kwargs))
        return {"experiment": name}
    monkeypatch.setattr(rbm_reproduce, "run_experiment", run_experiment)
    monkeypatch.setattr(rbm_reproduce, "summary_lines", lambda s: [f"ran {s['experiment']}"])
    result = nablanet(capsys, "pretrain", "--preset", "deep-autoencoder-2d", "--out",
                      tmp_path / "ae", "--epochs", 2, "--seed", 7, "--code-size", 3, "--quiet")
    assert result.code == 0 and result.out == "ran autoencoder\n", result.err
    ((name, out, kwargs),) = calls
    assert (name, out) == ("autoencoder", tmp_path / "ae")
    assert {k: kwargs[k] for k in ("preset", "epochs", "seed", "code_size", "stream")} == {
        "preset": "deep-autoencoder-2d", "epochs": 2, "seed": 7, "code_size": 3, "stream": None}


def test_reproduce_hinton_2006_passes_its_flags_and_check_fails_on_a_failed_check(
        capsys, tmp_path, monkeypatch):
    from nablanet.presets import rbm_reproduce
    from test_cli_data import nablanet
    calls = []

    def reproduce_hinton_2006(out, *, only, stream, **kwargs):
        calls.append((out, only, stream, kwargs))
        return [{"checks": {"a": True}}, {"checks": {"b": False}}]
    monkeypatch.setattr(rbm_reproduce, "reproduce_hinton_2006", reproduce_hinton_2006)
    flags = ["reproduce", "hinton-2006", "--out", tmp_path, "--only", "dbn", "--epochs", 2,
             "--train-size", 300, "--validation-size", 100, "--quiet"]
    assert nablanet(capsys, *flags).code == 0
    assert nablanet(capsys, *flags, "--check").code == 1
    out, only, stream, kwargs = calls[0]
    assert (out, only, stream) == (tmp_path, ["dbn"], None)
    assert {k: kwargs[k] for k in ("epochs", "train_size", "validation_size", "test_size")} == {
        "epochs": 2, "train_size": 300, "validation_size": 100, "test_size": None}
