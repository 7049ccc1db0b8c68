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
