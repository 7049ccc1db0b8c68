"""``nablanet reproduce nielsen-ch6|lenet5``: the flags they take, and a tiny MNIST run."""
import io
import json
import os
from pathlib import Path

import pytest

from nablanet.data import mnist_available
from test_cli_data import assert_one_error_line, flag_help, nablanet

DATA = os.environ.get("NABLANET_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
needs_mnist = pytest.mark.skipif(not mnist_available(DATA), reason="MNIST not available")


@pytest.mark.parametrize("argv, match", [
    (["lenet5", "--members", "3"], r"--members belongs to nielsen-ch6"),
    (["nielsen-ch3", "--members", "3"], r"--members belongs to nielsen-ch6"),
    (["lenet5", "--only", "lenet5"], r"--only belongs to nielsen-ch6$"),   # was ignored
    (["nielsen-ch6", "--members", "-1"], r"--members must be ≥ 0"),
    (["lenet5", "--gibbs-steps", "3"], r"--gibbs-steps does not apply to lenet5"),
    (["lenet5", "--seeds", "3"], r"one seed in one process"),
    (["nielsen-ch6", "--rerun"], r"one seed in one process, afresh: drop --seeds/--jobs/--rerun$"),
    (["lenet5", "--jobs", "2"], r"one seed in one process"),
    (["nielsen-ch6", "--dataset", "elsewhere"], r"--dataset must be mnist"),
])
def test_flags_that_do_not_belong_are_one_clear_error(capsys, tmp_path, argv, match):
    result = nablanet(capsys, "reproduce", *argv, "--out", tmp_path / "out")
    assert_one_error_line(result, match)
    assert not (tmp_path / "out").exists()


def test_help_says_these_tables_run_one_seed_and_write_results_json():
    # It promised reproduce.json for every table and "seeds 0..N-1 (default 3)", which
    # lenet5 and nielsen-ch6 refuse (above); they write results.json (below).
    assert "nielsen-ch6, lenet5: results.json" in flag_help("reproduce", "--out")
    assert "the other tables run seed 0 only" in flag_help("reproduce", "--seeds")


@needs_mnist
def test_unknown_ladder_step(capsys, tmp_path):
    result = nablanet(capsys, "reproduce", "nielsen-ch6", "--only", "nielsen-ch6-huge",
                      "--data-dir", DATA, "--out", tmp_path)
    assert_one_error_line(result, r"unknown ladder step.*nielsen-ch6-huge")


@needs_mnist
def test_final_net_and_its_ensemble_on_a_slice_of_mnist(capsys, tmp_path):
    result = nablanet(capsys, "reproduce", "nielsen-ch6", "--only", "nielsen-ch6-final",
                      "--members", "2", "--epochs", "1", "--train-size", "64",
                      "--data-dir", DATA, "--out", tmp_path, "--quiet", "--check")
    assert result.code == 1, result.err             # --check: a 64-image net is far off 99.5%
    results = json.loads((tmp_path / "results.json").read_text())
    final = results["nets"][0]
    # the final net's recipe trains on the validation images too: 64 + 64
    assert final["name"] == "nielsen-ch6-final" and final["train_examples"] == 128
    members = results["ensemble"]["members"]
    # The net trained as the ladder step is member 1; only member 2 is trained again.
    assert members[0]["directory"] == final["directory"] and len(members) == 2
    assert (tmp_path / "ensemble" / "nielsen-ch6-final-2" / "best").is_dir()
    assert "nielsen-ch6-final × 2" in result.out and "published 99.67% (33 errors)" in result.out
    assert results["checks"] == {"nielsen-ch6-final test accuracy >= 99.5%": False,
                                 "ensemble test errors <= 33": False}


@needs_mnist
def test_a_finished_net_is_reused_not_trained_again(tmp_path, monkeypatch):
    from nablanet.presets import cnn_reproduce

    data = cnn_reproduce.load_data(DATA, subset=64)
    first = cnn_reproduce.train_preset("lenet5", data, tmp_path / "net", epochs=1, stream=None)
    monkeypatch.setattr(cnn_reproduce, "Trainer", None)          # training again would fail
    said = io.StringIO()
    again = cnn_reproduce.train_preset("lenet5", data, tmp_path / "net", epochs=1, stream=said)
    assert again == json.loads(json.dumps(first))
    assert said.getvalue() == (f"{tmp_path / 'net'}: finished earlier with these settings and "
                               "seed; its result is reused (choose another --out to train "
                               "again)\n")
    monkeypatch.undo()
    other = cnn_reproduce.train_preset("lenet5", data, tmp_path / "net", epochs=1, seed=1,
                                       stream=None)                # another seed trains anew
    assert other["seed"] == 1 and json.loads((tmp_path / "net" / "result.json").read_text())[
        "seed"] == 1


def test_zero_epochs_is_an_error_not_the_recipes_epochs(tmp_path):
    # `epochs or recipe["epochs"]` read 0 as "not given" and trained the full recipe.
    from nablanet.errors import ConfigError
    from nablanet.presets import cnn_reproduce

    with pytest.raises(ConfigError, match=r"epochs must be ≥ 1, got 0"):
        cnn_reproduce.train_preset("lenet5", None, tmp_path / "net", epochs=0, stream=None)
    assert not (tmp_path / "net").exists()


def test_a_folder_holding_something_else_is_refused(tmp_path):
    # A preset wrote best/, last/ and metrics.jsonl into any folder: into a `nablanet
    # train` run it left that run's config.toml and summary.json describing another net.
    from nablanet.errors import ConfigError
    from nablanet.presets import cnn_reproduce

    notes, run = tmp_path / "notes", tmp_path / "run"
    notes.mkdir()
    (notes / "notes.txt").write_text("mine")
    run.mkdir()
    (run / "config.toml").write_text("epochs = 1\n")
    (run / "metrics.jsonl").write_text("")
    for out in (notes, run):
        with pytest.raises(ConfigError, match="not empty and holds no preset run"):
            cnn_reproduce.train_preset("lenet5", None, out, epochs=1, stream=None)
    assert sorted(p.name for p in notes.iterdir()) == ["notes.txt"]


@needs_mnist
def test_a_subset_must_keep_at_least_one_image():
    from nablanet.errors import ConfigError
    from nablanet.presets import cnn_reproduce

    with pytest.raises(ConfigError, match=r"--subset must be in \[1, 50000\], got 0"):
        cnn_reproduce.load_data(DATA, subset=0)


def test_the_cnn_tables_get_their_flags_and_defaults(capsys, tmp_path, monkeypatch):
    from nablanet.presets import cnn_reproduce
    calls = []

    def reproduce(target, out, **kwargs):
        calls.append((target, out, kwargs))
        return {"checks": {"accuracy": kwargs["members"] != 5}}
    monkeypatch.setattr(cnn_reproduce, "reproduce", reproduce)
    monkeypatch.setattr(cnn_reproduce, "format_report", lambda results: "the report")
    result = nablanet(capsys, "reproduce", "nielsen-ch6", "--only", "nielsen-ch6-final",
                      "--epochs", 2, "--train-size", 64, "--data-dir", tmp_path / "m",
                      "--out", tmp_path, "--quiet", "--check")
    assert result.code == 1 and result.out == "the report\n"     # --check: a check failed
    assert calls[-1] == ("nielsen-ch6", tmp_path, {
        "epochs": 2, "subset": 64, "members": 5, "steps": ["nielsen-ch6-final"],
        "device": "cpu", "data_dir": str(tmp_path / "m"), "stream": None})
    result = nablanet(capsys, "reproduce", "nielsen-ch6", "--members", 0, "--out", tmp_path,
                      "--check")
    assert result.code == 0 and calls[-1][2]["members"] == 0 and calls[-1][2]["stream"]
