"""``nablanet evaluate`` and ``nablanet predict`` on a trained run, and their bad inputs."""
import json
import shutil

import numpy as np
import pytest

from nablanet.config import load_splits
from nablanet.io import load_model
from nablanet.runs import RunDir
from test_cli_data import assert_one_error_line, flag_help, nablanet, write_blocks_idx


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(run directory, data directory): 3 epochs on the blocks, trained once for the module."""
    from nablanet.cli.main import main

    root = tmp_path_factory.mktemp("trained")
    data = write_blocks_idx(root / "blocks")
    code = main(["train", "--dataset", str(data), "--validation-size", "50", "--hidden", "20",
                 "--epochs", "3", "--cost", "log-likelihood", "--out", str(root / "run"),
                 "--quiet"])
    assert code == 0
    return root / "run", data


@pytest.fixture
def test_x(trained):
    return load_splits(str(trained[1]), validation_size=0).test.x


def copy_run(trained, tmp_path):
    return shutil.copytree(trained[0], tmp_path / "run")


def test_evaluate_prints_the_summarys_test_accuracy(capsys, trained):
    run, _ = trained
    summary = RunDir(run).read_summary()
    result = nablanet(capsys, "evaluate", run)
    assert result.code == 0, result.err
    assert result.out.splitlines()[0] == (f"test accuracy: {summary['test_accuracy']:.2%} "
                                          f"({summary['test_errors']} errors of 100)")
    assert f"test cost: {summary['test_cost']:.4f} (log-likelihood" in result.out
    assert result.err == f"model: {run / 'best'}\n"


def test_evaluate_the_last_model_as_json(capsys, trained):
    run, _ = trained
    result = nablanet(capsys, "evaluate", run, "--model", "last", "--json", "--quiet")
    report = json.loads(result.out)
    summary = RunDir(run).read_summary()
    assert report["accuracy"] == summary["last_test_accuracy"] and report["examples"] == 100
    assert report["errors"] == summary["last_test_errors"]
    assert report["cost"] == pytest.approx(summary["last_test_cost"], rel=1e-6)
    assert report["model"] == str(run / "last")


def test_evaluate_a_model_directory_on_another_data_set(capsys, trained, tmp_path):
    other = write_blocks_idx(tmp_path / "other", seed=5)
    result = nablanet(capsys, "evaluate", trained[0] / "best", "--dataset", other, "--quiet")
    assert result.code == 0 and result.out.startswith("test accuracy: ")


def test_evaluate_another_split(capsys, trained):
    result = nablanet(capsys, "evaluate", trained[0], "--split", "validation", "--quiet")
    assert result.out.startswith("validation accuracy: ") and "of 50)" in result.out


def test_evaluate_loads_the_runs_data_set_holding_out_validation_only_for_that_split(
        capsys, trained, tmp_path, monkeypatch):
    # The run's data_dir belongs to the run's data set; another --dataset gets none.
    from nablanet.cli import common
    run = copy_run(trained, tmp_path)
    config = (run / "config.toml").read_text()
    (run / "config.toml").write_text(f'data_dir = "{tmp_path / "elsewhere"}"\n' + config)
    asked = []

    def loader(dataset, *, data_dir, validation_size):
        asked.append((dataset, data_dir, validation_size))
        return load_splits(str(trained[1]), validation_size=validation_size)
    monkeypatch.setattr(common, "load_splits", loader)
    for flags in ([], ["--split", "validation"], ["--dataset", "other"],
                  ["--split", "train", "--validation-size", "20"]):
        assert nablanet(capsys, "evaluate", run, *flags, "--quiet").code == 0
    assert asked == [(str(trained[1]), str(tmp_path / "elsewhere"), 0),
                     (str(trained[1]), str(tmp_path / "elsewhere"), 50), ("other", None, 0),
                     (str(trained[1]), str(tmp_path / "elsewhere"), 20)]


def test_evaluate_holds_out_the_validation_size_the_error_asks_for(capsys, trained):
    # "cannot hold out 50 of ... pass a smaller --validation-size" named a flag evaluate
    # did not have.
    run, data = trained
    other = load_splits(str(data), validation_size=0).train
    assert_one_error_line(nablanet(capsys, "evaluate", run, "--split", "validation",
                                   "--validation-size", len(other), "--quiet"),
                          r"pass a smaller --validation-size$")
    result = nablanet(capsys, "evaluate", run, "--split", "validation",
                      "--validation-size", 20, "--quiet")
    assert result.code == 0 and result.out.startswith("validation accuracy: ") \
        and "errors of 20)" in result.out


@pytest.mark.parametrize("command", ["evaluate", "compare", "ensemble"])
def test_the_help_says_the_data_set_defaults_to_the_runs_own(command):
    # The help said "'mnist' (default)" while evaluate reads the run's config.toml (the
    # test above), and so do compare and ensemble now (the tests below).
    assert "default the run's own" in flag_help(command, "--dataset")
    assert "the run's, for its own data set" in flag_help(command, "--data-dir")
    assert "default the run's own" in flag_help(command, "--validation-size")
    assert flag_help("train", "--dataset").endswith("default 'mnist'")


@pytest.mark.parametrize("command", ["compare", "ensemble"])
def test_compare_and_ensemble_score_runs_on_the_data_set_they_were_trained_on(
        capsys, trained, tmp_path, command):
    # They loaded MNIST unless --dataset was given: runs trained on another data set of
    # 784 features were scored on MNIST without a word.
    second = shutil.copytree(trained[0], tmp_path / "second")
    for split, examples in (("test", 100), ("validation", 50)):
        result = nablanet(capsys, command, trained[0], second, "--split", split, "--quiet")
        assert result.code == 0, result.err
        assert f"errors of {examples})" in result.out
    # a model directory inside a run is scored on its run's data set too
    result = nablanet(capsys, "evaluate", second / "best", "--json", "--quiet")
    assert json.loads(result.out)["dataset"] == str(trained[1])


def test_runs_trained_on_different_data_sets_need_dataset(capsys, trained, tmp_path):
    other = write_blocks_idx(tmp_path / "other", seed=5)
    second = shutil.copytree(trained[0], tmp_path / "second")
    config = (second / "config.toml").read_text()
    (second / "config.toml").write_text(config.replace(str(trained[1]), str(other)))
    assert_one_error_line(nablanet(capsys, "compare", trained[0], second),
                          r"the runs were trained with different datasets \(.*blocks, .*other\); "
                          r"choose one with --dataset$")
    result = nablanet(capsys, "compare", trained[0], second, "--dataset", other, "--quiet")
    assert result.code == 0 and "errors of 100)" in result.out


def test_runs_that_held_out_different_validation_sizes_need_it_for_that_split(capsys, trained,
                                                                             tmp_path):
    second = shutil.copytree(trained[0], tmp_path / "second")
    config = (second / "config.toml").read_text()
    (second / "config.toml").write_text(config.replace("validation_size = 50",
                                                       "validation_size = 30"))
    assert_one_error_line(nablanet(capsys, "ensemble", trained[0], second, "--split", "train",
                                   "--quiet"),
                          r"different validation sizes \(50, 30\); choose one with "
                          r"--validation-size$")
    for flags, examples in ((["--split", "test"], 100),        # no rows held out for it
                            (["--split", "validation", "--validation-size", 30], 30)):
        result = nablanet(capsys, "ensemble", trained[0], second, *flags, "--quiet")
        assert result.code == 0 and f"errors of {examples})" in result.out


def test_evaluate_a_split_the_run_did_not_hold_out(capsys, trained, tmp_path):
    run = copy_run(trained, tmp_path)
    config = (run / "config.toml").read_text()
    (run / "config.toml").write_text(config.replace("validation_size = 50", "validation_size = 0"))
    assert_one_error_line(nablanet(capsys, "evaluate", run, "--split", "validation", "--quiet"),
                          r"has no validation split$")


def test_predict_one_example_given_as_a_vector_or_an_image(capsys, trained, test_x, tmp_path):
    run, _ = trained
    expected = load_model(run / "best")[0].classify(test_x[:1])[0]
    for name, example in (("row.npy", test_x[0]), ("image.npy", test_x[0].reshape(28, 28))):
        np.save(tmp_path / name, example)
        result = nablanet(capsys, "predict", run, "--input", tmp_path / name, "--quiet")
        assert result.code == 0, result.err
        assert result.out.startswith(f"row 0: class {expected}   (") and result.out.count("\n") == 1


def test_predict_shows_a_sigmoid_nets_outputs_as_shares_of_their_sum(capsys, test_x, tmp_path):
    from nablanet import mlp
    from nablanet.io import save_model

    net = mlp([784, 6, 10], rng=3)                     # sigmoid outputs: no softmax
    save_model(tmp_path / "m", net, "cross-entropy")
    np.save(tmp_path / "x.npy", test_x[:2])
    result = nablanet(capsys, "predict", tmp_path / "m", "--input", tmp_path / "x.npy",
                      "--top", 10, "--json", "--quiet")
    outputs = net.predict(test_x[:2])
    for line, output in zip(result.out.splitlines(), outputs):
        shares = dict(json.loads(line)["top"])
        assert [shares[c] for c in range(10)] == pytest.approx(output / output.sum(), rel=1e-5)


def test_predict_rows_of_an_npy_file(capsys, trained, test_x):
    run, _ = trained
    np.save(run.parent / "five.npy", test_x[:5])
    result = nablanet(capsys, "predict", run, "--input", run.parent / "five.npy", "--quiet")
    assert result.code == 0, result.err
    net, _, _ = load_model(run / "best")
    expected = net.classify(test_x[:5])
    lines = result.out.splitlines()
    assert len(lines) == 5
    for row, (line, cls) in enumerate(zip(lines, expected)):
        assert line.startswith(f"row {row}: class {cls}   ({cls}: ")


def test_predict_json_probabilities_are_the_softmax_outputs(capsys, trained, test_x, tmp_path):
    run, _ = trained
    np.savetxt(tmp_path / "two.csv", test_x[:2], delimiter=",")
    result = nablanet(capsys, "predict", run, "--input", tmp_path / "two.csv", "--top", 10,
                      "--json", "--quiet")
    rows = [json.loads(line) for line in result.out.splitlines()]
    net, _, _ = load_model(run / "best")
    outputs = net.predict(test_x[:2])
    for row, probs in zip(rows, outputs):
        assert row["class"] == int(probs.argmax()) and len(row["top"]) == 10
        assert sum(p for _, p in row["top"]) == pytest.approx(1.0, abs=1e-5)
        assert row["top"][0][1] == pytest.approx(float(probs.max()), rel=1e-6)


def test_predict_uint8_images_and_a_png(capsys, trained, test_x, tmp_path):
    from matplotlib.image import imsave

    run, _ = trained
    pixels = np.round(test_x[:2] * 255).astype(np.uint8)
    np.save(tmp_path / "images.npy", pixels.reshape(2, 28, 28))
    imsave(tmp_path / "digit.png", pixels[0].reshape(28, 28), cmap="gray", vmin=0, vmax=255)
    from_npy = nablanet(capsys, "predict", run, "--input", tmp_path / "images.npy", "--quiet")
    from_png = nablanet(capsys, "predict", run, "--input", tmp_path / "digit.png", "--quiet")
    assert from_npy.code == from_png.code == 0
    assert from_png.out.splitlines()[0].split("(")[0] == from_npy.out.splitlines()[0].split("(")[0]
    # uint8 pixels are scaled to [0, 1] as the model was trained: the same classes as the
    # float pixels, and no "unscaled pixels" warning
    assert "warning" not in from_npy.err + from_png.err
    net, _, _ = load_model(run / "best")
    expected = net.classify(pixels.astype(np.float32) / 255)
    for row, (line, cls) in enumerate(zip(from_npy.out.splitlines(), expected)):
        assert line.startswith(f"row {row}: class {cls}   ")


def test_outputs_that_are_not_a_softmax_are_shown_as_shares_of_their_sum():
    from nablanet.cli.predict import probabilities
    sigmoid = np.array([[0.2, 0.6, 0.2], [-0.5, 0.0, -1.0]])
    np.testing.assert_allclose(probabilities(sigmoid, softmax=False),
                               [[0.2, 0.6, 0.2], [1 / 3, 1 / 3, 1 / 3]])   # nothing > 0: uniform
    softmax = np.array([[0.1, 0.7, 0.2]])
    assert probabilities(softmax, softmax=True) is softmax


def test_predict_warns_when_inputs_look_like_unscaled_pixels(capsys, trained, test_x, tmp_path):
    np.save(tmp_path / "raw.npy", test_x[:1] * 255)
    result = nablanet(capsys, "predict", trained[0], "--input", tmp_path / "raw.npy", "--quiet")
    assert result.code == 0 and "warning: " in result.err and "[0, 1]" in result.err


def test_predict_warns_about_a_single_large_value(capsys, tmp_path):
    from nablanet import mlp
    from nablanet.io import save_model

    save_model(tmp_path / "m", mlp([1, 3, 2], rng=0), "cross-entropy")     # one input
    (tmp_path / "x.csv").write_text("7\n")
    result = nablanet(capsys, "predict", tmp_path / "m", "--input", tmp_path / "x.csv", "--quiet")
    assert result.code == 0 and "values up to 7; the model was trained on pixels" in result.err


@pytest.mark.parametrize("make, match", [
    (lambda x: x[:3, :100], r"expected 784 features per example, got 100"),
    (lambda x: np.where(np.arange(784) == 5, np.nan, x[:3]), r"3 non-finite values .* first in row 0"),
    (lambda x: x[:0], r"0 examples"),
    (lambda x: np.float32(0.5), r"expected 784 features per example, got 1"),   # a 0-d array
])
def test_predict_bad_arrays(capsys, trained, test_x, tmp_path, make, match):
    np.save(tmp_path / "x.npy", make(test_x))
    assert_one_error_line(nablanet(capsys, "predict", trained[0], "--input", tmp_path / "x.npy",
                                   "--quiet"), match)


def test_predict_values_beyond_the_models_float32(capsys, trained, test_x, tmp_path):
    # Cast to float32 1e300 becomes inf: NaN probabilities and exit 0 before the check.
    x = test_x[:3].astype(np.float64)
    x[1, 7] = 1e300
    np.save(tmp_path / "x.npy", x)
    assert_one_error_line(nablanet(capsys, "predict", trained[0], "--input", tmp_path / "x.npy",
                                   "--quiet"),
                          r"x.npy: x has 1 values beyond the model's float32 range \(±3.4e\+38\), "
                          r"first in row 1")


@pytest.mark.parametrize("command", ["evaluate", "compare", "ensemble"])
def test_a_data_set_beyond_the_models_float32(capsys, trained, tmp_path, command):
    x, y = np.zeros((4, 784)), np.zeros(4, np.int64)
    x[2, 0] = -1e300
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    assert_one_error_line(nablanet(capsys, command, trained[0], "--dataset", tmp_path / "d.npz",
                                   "--quiet"), r"d.npz:train: x has 1 values beyond the model's "
                                               r"float32 range .* first in row 2")


@pytest.mark.parametrize("argv, match", [
    (["predict", "--top", "0"], r"argument --top: expected an integer ≥ 1, got '0'"),
    (["predict", "--top", "-2"], r"argument --top: expected an integer ≥ 1"),
    (["compare", "--top-k", "0"], r"argument --top-k: expected an integer ≥ 1, got '0'"),
    # every class is among the top 11 of 10: it used to report "top-11 100.00%"
    (["compare", "--top-k", "11"], r"--top-k 11 is more than the 10 classes of .*best$"),
    (["compare", "--alpha", "2"], r"alpha \(the significance level\) must be in \(0, 1\), got 2.0"),
    (["compare", "--alpha", "0"], r"must be in \(0, 1\), got 0.0"),
])
def test_meaningless_counts_and_levels(capsys, trained, test_x, tmp_path, argv, match):
    command, *flags = argv
    out = tmp_path / "pngs"
    np.save(tmp_path / "x.npy", test_x[:2])
    extra = {"predict": ["--input", tmp_path / "x.npy"],
             "compare": ["--dataset", trained[1], "--out", out]}[command]
    assert_one_error_line(nablanet(capsys, command, trained[0], *flags, *extra, "--quiet"), match)
    assert not out.exists()             # refused before any PNG is written


def test_predict_a_folder_as_input(capsys, trained, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_one_error_line(nablanet(capsys, "predict", trained[0], "--input", ".", "--quiet"),
                          r"^nablanet: error: \.: is a folder, not a data file$")


def test_evaluate_a_run_whose_config_is_empty(capsys, trained, tmp_path):
    # A corrupted run, not a bare model folder: the defaults would score it on MNIST.
    run = copy_run(trained, tmp_path)
    (run / "config.toml").write_text("")
    assert_one_error_line(nablanet(capsys, "evaluate", run, "--quiet"),
                          r"config.toml: holds no settings \(empty or damaged\)")


def test_predict_unsupported_or_missing_file(capsys, trained, tmp_path):
    (tmp_path / "x.txt").write_text("1,2")
    assert_one_error_line(nablanet(capsys, "predict", trained[0], "--input", tmp_path / "x.txt",
                                   "--quiet"), r"unsupported file type '.txt'")
    assert_one_error_line(nablanet(capsys, "predict", trained[0], "--input", tmp_path / "no.npy",
                                   "--quiet"), r"no such file")


def test_truncated_weights_file(capsys, trained, tmp_path):
    run = copy_run(trained, tmp_path)
    weights = run / "best" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    assert_one_error_line(nablanet(capsys, "evaluate", run, "--quiet"),
                          r"weights.safetensors: truncated or malformed safetensors file")


def test_model_config_that_does_not_match_the_weights(capsys, trained, tmp_path):
    run = copy_run(trained, tmp_path)
    config_path = run / "best" / "config.json"
    config = json.loads(config_path.read_text())
    config["net"]["layers"][0]["n_out"] = 21                 # the weights are 784 × 20
    config["net"]["layers"][2]["n_in"] = 21
    config_path.write_text(json.dumps(config))
    assert_one_error_line(nablanet(capsys, "evaluate", run, "--quiet"),
                          r"layer0.W has shape \(784, 20\), architecture needs \(784, 21\)")
    assert_one_error_line(nablanet(capsys, "predict", run, "--input", "x.npy", "--quiet"),
                          r"layer0.W has shape")


def test_not_a_run(capsys, tmp_path):
    assert_one_error_line(nablanet(capsys, "evaluate", tmp_path / "nothing"),
                          r"no such run or model directory")
    assert_one_error_line(nablanet(capsys, "evaluate", tmp_path), r"no best/ model")


def test_evaluate_labels_beyond_the_models_outputs(capsys, trained, tmp_path):
    def put_a_twelve(labels):
        labels[0] = 12
    data = write_blocks_idx(tmp_path / "bad", labels_edit=put_a_twelve)
    assert_one_error_line(nablanet(capsys, "evaluate", trained[0], "--dataset", data,
                                   "--split", "train", "--quiet"),
                          r"label 12 at row 0 is out of range")


@pytest.mark.parametrize("command", ["evaluate", "compare", "ensemble"])
@pytest.mark.parametrize("width, label, match", [
    (5, 0, r"d.npz:test: examples have 5 features, but the model takes 784 inputs"),
    (784, 12, r"d.npz:test: label 12 at row 0 is out of range for a network with 10 outputs"),
])
def test_a_data_set_the_model_cannot_score(capsys, trained, tmp_path, command, width, label,
                                           match):
    x, y = np.zeros((4, width), np.float32), np.full(4, label)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    assert_one_error_line(nablanet(capsys, command, trained[0], "--dataset", tmp_path / "d.npz",
                                   "--quiet"), match)
