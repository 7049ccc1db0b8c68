"""Character-level language models: text loading, vocabulary, truncated-BPTT training,
nats/bits per character, the lecture's generation recipe, model files, and bad input."""
import json
import math
import os

import numpy as np
import pytest

from nablanet import ConfigError, DataError, ModelFileError, Sequential, get_backend
from nablanet.data.text import (TINY_SHAKESPEARE_SHA256, find_tinyshakespeare, load_text,
                                load_tinyshakespeare, split_text)
from nablanet.io import save_model
from nablanet.layers import Dense, Softmax
from nablanet.models.charlm import (CharLM, TrainSettings, Vocabulary, bits_per_char,
                                    char_lstm, train_char_lm)

DIGITS = "0123456789\n" * 120            # every character has exactly one successor


# -- text files -----------------------------------------------------------------------------
def test_empty_missing_and_binary_text_files_are_clear_errors(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(DataError, match="the text is empty"):
        load_text(tmp_path / "empty.txt")
    with pytest.raises(DataError, match="not found"):
        load_text(tmp_path / "nope.txt")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00abc")
    with pytest.raises(DataError, match="not UTF-8"):
        load_text(tmp_path / "bin.txt")
    (tmp_path / "ok.txt").write_text("To be, or not to be\n", encoding="utf-8")
    assert load_text(tmp_path / "ok.txt") == "To be, or not to be\n"


def test_validation_text_is_the_last_tenth():
    text = "".join(chr(ord("a") + i % 26) for i in range(1000))
    train, validation = split_text(text)
    assert train + validation == text and len(validation) == 100
    with pytest.raises(DataError, match="empty"):
        split_text("")
    with pytest.raises(DataError, match="too short"):
        split_text("abc")


def test_the_validation_tail_is_the_rounded_fraction_and_both_parts_hold_two_characters():
    assert len(split_text("x" * 1009)[1]) == 101           # 100.9 characters round to 101
    for fraction in (0.0, 1.0):
        with pytest.raises(ConfigError, match=r"validation_fraction must be in \(0, 1\)"):
            split_text("x" * 100, fraction)
    for text, fraction in (("abcd", 0.75), ("abcdefghij", 0.1)):   # 1 training / validation
        with pytest.raises(DataError, match="too short"):
            split_text(text, fraction)
    assert split_text("abcd", 0.5) == ("ab", "cd")


def test_tiny_shakespeare_is_looked_for_in_the_argument_then_the_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("NABLANET_DATA", raising=False)
    monkeypatch.setenv("NABLANET_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache" / "tinyshakespeare").mkdir(parents=True)
    (tmp_path / "cache" / "tinyshakespeare" / "input.txt").write_text("cached")
    assert find_tinyshakespeare() == tmp_path / "cache" / "tinyshakespeare" / "input.txt"
    (tmp_path / "arg" / "tinyshakespeare").mkdir(parents=True)
    (tmp_path / "arg" / "input.txt").write_text("in the folder itself")
    assert find_tinyshakespeare(tmp_path / "arg") == tmp_path / "arg" / "input.txt"
    (tmp_path / "arg" / "tinyshakespeare" / "input.txt").write_text("in its subfolder")
    assert find_tinyshakespeare(tmp_path / "arg") == (tmp_path / "arg" / "tinyshakespeare"
                                                      / "input.txt")


def test_tiny_shakespeare_is_found_through_nablanet_data_and_checked(tmp_path, monkeypatch):
    folder = tmp_path / "tinyshakespeare"
    folder.mkdir()
    (folder / "input.txt").write_text("First Citizen:\n")
    monkeypatch.setenv("NABLANET_DATA", str(tmp_path))
    monkeypatch.setenv("NABLANET_CACHE", str(tmp_path / "cache"))
    assert find_tinyshakespeare() == folder / "input.txt"
    with pytest.raises(DataError, match="SHA-256 mismatch"):
        load_tinyshakespeare()
    assert load_tinyshakespeare(verify=False) == "First Citizen:\n"
    monkeypatch.setenv("NABLANET_DATA", str(tmp_path / "elsewhere"))
    with pytest.raises(DataError, match="Tiny Shakespeare not found"):
        load_tinyshakespeare()


@pytest.mark.skipif(not os.path.isfile("/work/shared/data/tinyshakespeare/input.txt")
                    and not os.environ.get("NABLANET_DATA"), reason="Tiny Shakespeare absent")
def test_the_real_tiny_shakespeare(monkeypatch):
    if not os.environ.get("NABLANET_DATA"):
        monkeypatch.setenv("NABLANET_DATA", "/work/shared/data")
    if find_tinyshakespeare() is None:
        pytest.skip("Tiny Shakespeare absent")
    text = load_tinyshakespeare()                      # SHA-256 checked
    assert len(text) == 1_115_394 and len(Vocabulary.from_text(text)) == 65
    assert TINY_SHAKESPEARE_SHA256.startswith("86c4e6aa")


# -- vocabulary -------------------------------------------------------------------------------
def test_vocabulary_encodes_sorted_characters_and_refuses_unknown_ones():
    vocab = Vocabulary.from_text("hello, world")
    assert vocab.symbols == " ,dehlorw" and len(vocab) == 9
    ids = vocab.encode("world")
    assert ids.dtype == np.int64 and vocab.decode(ids) == "world"
    with pytest.raises(DataError, match=r"2 character\(s\) the model has never seen: 'X', 'é'"):
        vocab.encode("hello Xé", "the prime")
    with pytest.raises(DataError, match="empty"):
        Vocabulary.from_text("")
    # a character's index is its input unit: a stored vocabulary out of order would
    # silently permute them
    for symbols in ("ba", "abb"):
        with pytest.raises(DataError, match="vocabulary characters must be unique and sorted"):
            Vocabulary(symbols)


# -- training and measuring -------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits_model():
    vocab = Vocabulary.from_text(DIGITS)
    model = CharLM(char_lstm(len(vocab), 24, seq_length=20, rng=0), vocab)
    train, validation = split_text(DIGITS)
    rows = train_char_lm(model, train, validation,
                         TrainSettings(batch_size=8, seq_length=20, eta=2e-2, epochs=40,
                                       eval_every_seconds=1e9, validation_streams=4), log=None)
    return model, rows


def test_truncated_bptt_training_learns_the_text(digits_model):
    model, rows = digits_model
    final = rows[-1]
    assert final["final"] and final["epochs"] == pytest.approx(40, abs=0.01)
    assert final["validation_nats_per_char"] < 0.1 < math.log(11)    # far below guessing
    assert final["validation_bits_per_char"] == pytest.approx(
        final["validation_nats_per_char"] / math.log(2))
    assert bits_per_char(math.log(2)) == pytest.approx(1.0)
    assert all(getattr(layer, "state", None) is None for layer in model.net.layers)


def test_an_epoch_count_gives_one_run_whatever_the_clock(monkeypatch):
    """Same seed, a frozen clock and one where every reading is 1000 s later: the same
    weights and the same validation rows (one an epoch), so the same best model."""
    from types import SimpleNamespace

    from nablanet.models import charlm

    vocab = Vocabulary.from_text(DIGITS)
    train, validation = split_text(DIGITS[:300])
    runs = []
    for tick in (0.0, 1000.0):
        clock = iter(np.arange(0.0, 1e9, tick) if tick else [0.0] * 10_000)
        monkeypatch.setattr(charlm, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
        model = CharLM(char_lstm(len(vocab), 8, seq_length=10, rng=0), vocab)
        rows = train_char_lm(model, train, validation,
                             TrainSettings(batch_size=4, seq_length=10, epochs=2,
                                           eval_every_seconds=1.0, validation_streams=2),
                             log=None, rng=1)
        runs.append(([p.copy() for layer in model.net.layers for p in layer.params.values()],
                      [{k: v for k, v in r.items() if k != "seconds"} for r in rows]))
    (weights, rows), (weights_again, rows_again) = runs
    assert [r["epochs"] for r in rows] == [1.0, 2.0] and rows == rows_again
    for a, b in zip(weights, weights_again):
        np.testing.assert_array_equal(a, b)


def test_nats_per_char_does_not_depend_on_the_chunking(digits_model):
    model, _ = digits_model
    ids = model.vocabulary.encode(DIGITS[:301])
    one_pass = model.nats_per_char(ids, n_streams=1, chunk=1000)
    chunked = model.nats_per_char(ids, n_streams=1, chunk=7)          # state carried
    assert chunked == pytest.approx(one_pass, rel=1e-5)
    probs = model.net.forward(ids[None, :-1])[0][0]
    manual = -np.log(probs[np.arange(300), ids[1:]]).mean()
    assert one_pass == pytest.approx(manual, rel=1e-5)
    # three streams of 100 characters, each from the default state: a mean over all 300
    probs = model.net.forward(ids[:300].reshape(3, 100))[0]
    targets = ids[1:301].reshape(3, 100)
    manual = -np.log(np.take_along_axis(probs, targets[..., None], axis=-1)).mean()
    assert model.nats_per_char(ids, n_streams=3, chunk=7) == pytest.approx(manual, rel=1e-5)


def test_eta_decays_linearly_over_the_last_part_and_stays_at_its_floor():
    from nablanet.models.charlm import _decay
    settings = TrainSettings(epochs=1, decay_fraction=0.5, final_eta_fraction=0.1)
    assert [_decay(p, settings) for p in (0.0, 0.5, 0.75, 1.0)] == pytest.approx(
        [1.0, 1.0, 0.55, 0.1])
    assert _decay(1.3, settings) == pytest.approx(0.1)     # a time budget overrun


def test_generation_burns_in_the_prime_then_feeds_back_its_samples(digits_model):
    model, _ = digits_model
    assert model.generate("345", 12, temperature=0.01, rng=0) == "6789\n0123456"
    hot_a = model.generate("0", 200, temperature=5.0, rng=1)
    assert hot_a == model.generate("0", 200, temperature=5.0, rng=1)    # the seed fixes it
    assert hot_a != model.generate("0", 200, temperature=5.0, rng=2)
    assert len(set(hot_a)) > 5 and hot_a not in DIGITS                # high T: near uniform
    assert model.generate("12", 0, rng=0) == ""
    assert all(getattr(layer, "state", None) is None for layer in model.net.layers)


def test_generation_refuses_unknown_characters_and_bad_settings(digits_model):
    model, _ = digits_model
    with pytest.raises(DataError, match="the prime contains 1 character.*'a'"):
        model.generate("12a", 10)
    with pytest.raises(DataError, match="prime .* is empty"):
        model.generate("", 10)
    with pytest.raises(ConfigError, match="temperature"):
        model.generate("1", 10, temperature=0)


def test_model_files_round_trip_with_the_vocabulary(digits_model, tmp_path):
    model, _ = digits_model
    model.save(tmp_path / "lm", metadata={"note": "digits"})
    loaded = CharLM.load(tmp_path / "lm")
    assert loaded.vocabulary.symbols == model.vocabulary.symbols
    assert loaded.generate("7", 30, rng=3) == model.generate("7", 30, rng=3)
    net = Sequential([Dense(3, 2), Softmax()]).build((3,), get_backend(), 0)
    save_model(tmp_path / "mlp", net, "log-likelihood")
    with pytest.raises(ModelFileError, match="not a character language model"):
        CharLM.load(tmp_path / "mlp")


def test_metadata_that_is_not_an_object_is_a_model_file_error(digits_model, tmp_path):
    from nablanet.cli.generate_text import is_char_lm

    digits_model[0].save(tmp_path / "lm")
    config = json.loads((tmp_path / "lm" / "config.json").read_text())
    config["metadata"] = ["char-lm"]
    (tmp_path / "lm" / "config.json").write_text(json.dumps(config))
    assert not is_char_lm(tmp_path / "lm")
    with pytest.raises(ModelFileError, match="config.json: 'metadata' must be a JSON object"):
        CharLM.load(tmp_path / "lm")


def test_training_settings_and_texts_are_checked():
    vocab = Vocabulary.from_text("abc")
    model = CharLM(char_lstm(3, 4, rng=0), vocab)
    with pytest.raises(ConfigError, match="epochs or a time budget"):
        train_char_lm(model, "abcabc", "abc", TrainSettings(), log=None)
    with pytest.raises(DataError, match="validation text contains 1 character.*'d'"):
        train_char_lm(model, "abcabc", "abd", TrainSettings(epochs=1), log=None)
    with pytest.raises(DataError, match="too few"):
        train_char_lm(model, "ab", "abc", TrainSettings(epochs=1, batch_size=4), log=None)
    with pytest.raises(ConfigError, match="predicts 3 symbols"):
        CharLM(char_lstm(3, 4, rng=0), Vocabulary("abcd"))


# -- the preset, its run directory and the command line ------------------------------------------
@pytest.fixture
def tiny_preset(monkeypatch):
    """The char-lstm preset's code path with a tiny net; returns its settings."""
    from nablanet.presets import rnn

    small = {**rnn.RECIPES["char-lstm"], "n_hidden": 16, "batch_size": 4, "seq_length": 20,
             "eta": 2e-2, "validation_streams": 2,
             "sample": {**rnn.RECIPES["char-lstm"]["sample"], "length": 50}}
    monkeypatch.setitem(rnn.RECIPES, "char-lstm", small)
    return small


def test_preset_run_directory_feeds_nablanet_generate(tmp_path, capsys, tiny_preset):
    from nablanet.cli.main import main
    from nablanet.presets.rnn_reproduce import main as reproduce

    text_file = tmp_path / "digits.txt"
    text_file.write_text(DIGITS, encoding="utf-8")
    run = tmp_path / "run"
    assert reproduce(["char-lstm", "--epochs", "3", "--out", str(run),
                      "--text", str(text_file)]) == 0
    out = capsys.readouterr().out
    assert "nats/char" in out and "FAIL" in out            # an epochs budget is not the target
    for name in ("config.toml", "metrics.jsonl", "summary.json", "results.json", "sample.txt",
                 "best/config.json", "last/weights.safetensors"):
        assert (run / name).is_file(), name
    results = json.loads((run / "results.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and results["epochs"] == pytest.approx(3, abs=0.01)
    assert results["validation_nats_per_char"] == summary["best_validation_nats_per_char"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert summary["final_validation_nats_per_char"] == rows[-1]["validation_nats_per_char"]
    assert summary["best_validation_nats_per_char"] == min(r["validation_nats_per_char"]
                                                           for r in rows)
    assert len((run / "sample.txt").read_text()) == 40 + 50   # fallback prime: 40 chars

    assert main(["generate", str(run), "--prime", "0123", "--length", "30", "--seed", "1",
                 "--temperature", "0.5"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("0123") and len(first.rstrip("\n")) >= 34 - 1
    assert main(["generate", str(run), "--prime", "0123", "--length", "30", "--seed", "1",
                 "--temperature", "0.5"]) == 0
    assert capsys.readouterr().out == first                  # same seed, same text

    assert main(["generate", str(run), "--prime", "01x3", "--length", "5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "never seen: 'x'" in err
    assert main(["generate", str(run), "--length", "5"]) == 2
    assert "--prime TEXT is required" in capsys.readouterr().err


def test_preset_with_one_seed_trains_the_same_run_twice(tmp_path, tiny_preset):
    from nablanet.presets.rnn import train_char_lstm

    text_file = tmp_path / "digits.txt"
    text_file.write_text(DIGITS[:600], encoding="utf-8")
    for run in ("a", "b"):
        train_char_lstm(tmp_path / run, text_path=text_file, epochs=2, seed=3, log=None)
    for name in ("best/weights.safetensors", "last/weights.safetensors", "sample.txt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_preset_refuses_an_empty_text_and_a_bad_budget(tmp_path):
    from nablanet.presets.rnn import train_char_lstm

    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(DataError, match="empty"):
        train_char_lstm(tmp_path / "run", text_path=tmp_path / "empty.txt", epochs=1, log=None)
    with pytest.raises(ConfigError, match="exactly one"):
        train_char_lstm(tmp_path / "run", text_path=tmp_path / "empty.txt", log=None)
    with pytest.raises(ConfigError, match="unknown setting 'hidden'"):
        train_char_lstm(tmp_path / "run", epochs=1, overrides={"hidden": 3}, log=None)


def test_stream_restarts_put_the_flagged_streams_back_to_the_default_state():
    from nablanet.models.charlm import _restart_streams

    for initial_state in ("zeros", "learned"):
        net = char_lstm(3, 4, initial_state=initial_state, rng=0)
        lstm = net.layers[1]
        if initial_state == "learned":
            lstm.set_params(h0=np.full(4, 0.5), c0=np.full(4, -0.5))
        lstm.state = (np.ones((3, 4), np.float32), np.ones((3, 4), np.float32))
        _restart_streams(net, np.array([False, True, False]))
        h, c = lstm.state
        assert np.all(h[[0, 2]] == 1) and np.all(c[[0, 2]] == 1)
        expected = (0.5, -0.5) if initial_state == "learned" else (0, 0)
        assert np.all(h[1] == expected[0]) and np.all(c[1] == expected[1])
    with pytest.raises(ConfigError, match="reset_probability"):
        TrainSettings(epochs=1, reset_probability=1.5).check()


def test_generate_command_samples_from_the_chosen_model_as_asked(digits_model, tmp_path, capsys):
    from test_cli_data import nablanet

    trained = digits_model[0]
    untrained = CharLM(char_lstm(len(trained.vocabulary), 24, rng=5), trained.vocabulary)
    trained.save(tmp_path / "run" / "best")
    untrained.save(tmp_path / "run" / "last")
    out = tmp_path / "text.txt"
    for model, flags in ((trained, []), (untrained, ["--model", "last"])):
        result = nablanet(capsys, "generate", tmp_path / "run", "--prime", "89\\n0", "--length",
                          25, "--temperature", 0.7, "--seed", 4, "--out", out, *flags)
        # a shell's \n in the prime is a line break; the prime comes first
        expected = "89\n0" + model.generate("89\n0", 25, temperature=0.7, rng=4)
        assert result.code == 0 and result.out == expected + "\n", result.err
        assert out.read_text(encoding="utf-8") == expected


def test_generate_command_prints_nothing_when_out_cannot_be_written(digits_model, tmp_path,
                                                                    capsys):
    from test_cli_data import assert_one_error_line, nablanet

    digits_model[0].save(tmp_path / "run" / "best")
    (tmp_path / "taken").mkdir()                               # --out names a folder
    result = nablanet(capsys, "generate", tmp_path / "run", "--prime", "0", "--out",
                      tmp_path / "taken")
    assert_one_error_line(result, r"taken")
    assert result.out == ""


def test_generate_command_with_a_model_the_run_lacks(digits_model, tmp_path, capsys):
    from test_cli_data import assert_one_error_line, nablanet

    digits_model[0].save(tmp_path / "run" / "best")
    assert_one_error_line(nablanet(capsys, "generate", tmp_path / "run", "--prime", "0",
                                   "--model", "last"),
                          r"run: no character language model here")
    # the other kind's flag was ignored without a word
    assert_one_error_line(nablanet(capsys, "generate", tmp_path / "run", "--prime", "0",
                                   "--label", 3), r"run: a character language model, which "
                                                  r"takes --prime TEXT, not --label$")


@pytest.mark.parametrize("holds", ["nothing", "a classifier"])
def test_generate_text_from_a_run_without_a_char_lm_says_so(holds, tmp_path, capsys):
    # It said "--label K is required to generate digits from a DBN": the run was at fault.
    from nablanet import mlp
    from test_cli_data import assert_one_error_line, nablanet

    run = tmp_path / "run"
    if holds == "a classifier":
        save_model(run / "best", mlp([4, 3], "sigmoid", "softmax", rng=0), "log-likelihood")
    assert_one_error_line(nablanet(capsys, "generate", run, "--prime", "ROMEO:"),
                          r"run: no character language model here")
