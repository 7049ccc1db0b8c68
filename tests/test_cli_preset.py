"""``nablanet train --preset``: named nets train through the ordinary train command."""
import json

import numpy as np

from test_cli_data import assert_one_error_line, nablanet


def test_char_lstm_preset_trains_a_run_that_generate_reads(capsys, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("".join(f"ROMEO: the quick brown fox {i}.\n" for i in range(60)))
    run = tmp_path / "run"
    result = nablanet(capsys, "train", "--preset", "char-lstm", "--text", text,
                      "--epochs", 1, "--out", run, "--quiet")
    assert result.code == 0 and "nats/char" in result.out, result.err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed"
    result = nablanet(capsys, "generate", run, "--prime", "ROMEO:", "--length", 20, "--seed", 1)
    assert result.code == 0 and result.out.startswith("ROMEO:"), result.err
    assert len(result.out.strip()) >= 20


def test_preset_refuses_flags_its_recipe_owns(capsys, tmp_path):
    result = nablanet(capsys, "train", "--preset", "lenet5", "--eta", 0.1, "--out", tmp_path / "r")
    assert_one_error_line(result, "--eta cannot be combined")


def test_text_without_char_lstm_preset_is_an_error(capsys, tmp_path):
    result = nablanet(capsys, "train", "--text", tmp_path / "t.txt", "--out", tmp_path / "r")
    assert_one_error_line(result, "belong to --preset char-lstm")


def test_commands_for_classifier_runs_say_what_a_preset_run_is(capsys, tmp_path):
    # Before: evaluate blamed config.toml ("unknown key 'preset'"), predict the input
    # width, and --resume said "no last/ checkpoint" or "not a run directory".
    text = tmp_path / "t.txt"
    text.write_text("".join(f"to be or not to be {i}\n" for i in range(40)))
    lm = tmp_path / "lm"
    assert nablanet(capsys, "train", "--preset", "char-lstm", "--text", text, "--epochs", 1,
                    "--out", lm, "--quiet").code == 0
    rows = tmp_path / "x.npy"
    np.save(rows, np.zeros((2, 784), np.float32))
    for argv in (["evaluate", lm], ["predict", lm, "--input", rows], ["compare", lm]):
        assert_one_error_line(nablanet(capsys, *argv),
                              r"a character language model, not a classifier.*generate")
    cnn = tmp_path / "cnn"                      # what a CNN preset leaves: result.json, models
    cnn.mkdir()
    (cnn / "result.json").write_text("{}")
    for run in (lm, cnn):
        assert_one_error_line(nablanet(capsys, "train", "--resume", run, "--epochs", 5),
                              r"a --preset run, which --resume cannot continue")


def test_train_help_sends_every_energy_based_preset_to_pretrain(capsys):
    # The list was written out by hand and had left out deep-autoencoder-2d.
    from nablanet.presets.rbm_reproduce import PRESET_EXPERIMENTS

    result = nablanet(capsys, "train", "--help")
    text = " ".join(result.out.split())            # argparse wraps at hyphens and spaces
    sent = text.split("the energy-based presets ", 1)[1].split(": nablanet pretrain", 1)[0]
    assert result.code == 0
    assert sorted(sent.replace("- ", "-").split(", ")) == sorted(PRESET_EXPERIMENTS)


def test_a_cnn_preset_trains_with_the_given_epochs_seed_and_data_dir(capsys, tmp_path,
                                                                      monkeypatch):
    # MNIST stands in as the blocks (the preset's own loader is what is replaced)
    from nablanet.config import load_splits
    from nablanet.presets import cnn_reproduce
    from test_cli_data import write_blocks_idx

    blocks = load_splits(str(write_blocks_idx(tmp_path / "blocks", n_train=80, n_test=30)),
                         validation_size=20)
    asked = []
    monkeypatch.setattr(cnn_reproduce, "load_data",
                        lambda data_dir: asked.append(data_dir) or blocks)
    run = tmp_path / "run"
    result = nablanet(capsys, "train", "--preset", "lenet5", "--epochs", 1, "--seed", 4,
                      "--data-dir", tmp_path / "mnist", "--out", run, "--quiet")
    assert result.code == 0, result.err
    assert asked == [str(tmp_path / "mnist")] and result.err == ""
    stored = json.loads((run / "result.json").read_text())
    assert (stored["seed"], stored["epochs"]) == (4, 1)
    assert result.out == (f"test accuracy: {stored['test_accuracy']:.2%} "
                          f"({stored['test_errors']} errors)\n")


def test_char_lstm_trains_30_minutes_unless_given_epochs_or_minutes(capsys, tmp_path,
                                                                    monkeypatch):
    from nablanet.presets import rnn
    calls = []

    def train_char_lstm(directory, **kwargs):
        calls.append(kwargs)
        return {"best_validation_nats_per_char": 1.23456}
    monkeypatch.setattr(rnn, "train_char_lstm", train_char_lstm)
    for flags in ([], ["--epochs", 2, "--seed", 3], ["--minutes", 0.5]):
        result = nablanet(capsys, "train", "--preset", "char-lstm", *flags,
                          "--out", tmp_path / "lm", "--quiet")
        assert result.code == 0 and result.out == "validation: 1.235 nats/char\n"
    assert [(c["minutes"], c["epochs"], c["seed"]) for c in calls] == [
        (30.0, None, 0), (None, 2, 3), (0.5, None, 0)]
    assert all(c["log"] is None for c in calls)          # --quiet


def test_text_and_minutes_belong_to_char_lstm_not_to_other_presets(capsys, tmp_path):
    for flag, value in (("--text", tmp_path / "t.txt"), ("--minutes", 1)):
        assert_one_error_line(nablanet(capsys, "train", "--preset", "lenet5", flag, value,
                                       "--out", tmp_path / "r"),
                              "--text and --minutes belong to --preset char-lstm")
    assert not (tmp_path / "r").exists()
