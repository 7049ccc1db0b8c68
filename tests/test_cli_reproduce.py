"""``nablanet reproduce nielsen-ch3`` on a small synthetic data set, one epoch per run."""
import json

import pytest

from nablanet.cli.reproduce import NIELSEN_CH3
from nablanet.runs import RunDir
from test_cli_data import assert_one_error_line, nablanet, write_blocks_idx


@pytest.fixture(scope="module")
def blocks(tmp_path_factory):
    return write_blocks_idx(tmp_path_factory.mktemp("data") / "blocks", n_train=150, n_test=50)


def reproduce(capsys, blocks, out, *flags):
    return nablanet(capsys, "reproduce", "nielsen-ch3", "--dataset", blocks,
                    "--validation-size", 30, "--epochs", 1, "--out", out, *flags)


def test_the_table_matches_the_book():
    rows = {e.name: e for e in NIELSEN_CH3}
    assert [(e.hidden, e.cost, e.eta, e.lmbda, e.threshold_error) for e in NIELSEN_CH3[:6]] == [
        (30, "quadratic", 3.0, 0.0, 5.53), (30, "cross-entropy", 0.5, 0.0, 4.86),
        (30, "cross-entropy", 0.5, 5.0, 4.03), (100, "quadratic", 3.0, 0.0, 3.74),
        (100, "cross-entropy", 0.5, 0.0, 3.00), (100, "cross-entropy", 0.5, 5.0, 2.56)]
    last = rows["h100-cross-entropy-l2-eta0.1"]
    assert (last.eta, last.lmbda, last.epoch_factor, last.published_accuracy) == (0.1, 5.0, 2, 98.04)


def test_its_runs_name_their_data_by_absolute_path_as_train_does(capsys, blocks, tmp_path,
                                                                   monkeypatch):
    # A relative --dataset was stored as given: `evaluate RUN` worked only from that folder.
    monkeypatch.chdir(blocks.parent)
    result = reproduce(capsys, blocks.name, tmp_path, "--seeds", 1, "--only", "h30-quadratic",
                       "--quiet")
    assert result.code == 0, result.err
    run = tmp_path / "h30-quadratic" / "seed-0"
    assert RunDir(run).read_config().dataset == str(blocks)
    monkeypatch.chdir(tmp_path)
    evaluated = nablanet(capsys, "evaluate", run, "--quiet")
    assert evaluated.code == 0, evaluated.err


def test_runs_each_seed_into_a_run_directory_and_writes_the_report(capsys, blocks, tmp_path):
    result = reproduce(capsys, blocks, tmp_path, "--seeds", 2, "--only", "h30-quadratic")
    assert result.code == 0, result.err
    report = json.loads((tmp_path / "reproduce.json").read_text())
    (quadratic,) = report["rows"]
    assert [r["seed"] for r in quadratic["runs"]] == [0, 1]
    for entry in quadratic["runs"]:
        summary = RunDir(entry["directory"]).read_summary()
        assert summary["status"] == "completed" and summary["seed"] == entry["seed"]
        assert entry["test_error"] == pytest.approx(100 * (1 - summary["test_accuracy"]))
        config = RunDir(entry["directory"]).read_config()
        assert (config.cost, config.eta, config.hidden, config.init, config.output) == (
            "quadratic", 3.0, [30], report["init"], "sigmoid")
    errors = sorted(r["test_error"] for r in quadratic["runs"])
    assert quadratic["median"] == pytest.approx(sum(errors) / 2)
    assert quadratic["within_threshold"] == (quadratic["median"] <= 5.53)
    assert "hidden 30,  quadratic,     η=3.0" in result.out and "5.53" in result.out
    assert "[2/2]" in result.err


def test_the_long_row_reports_validation_accuracy(capsys, blocks, tmp_path):
    result = reproduce(capsys, blocks, tmp_path, "--seeds", 1, "--only",
                       "h100-cross-entropy-l2-eta0.1")
    assert result.code == 0, result.err
    (row,) = json.loads((tmp_path / "reproduce.json").read_text())["rows"]
    assert row["epochs"] == 2 and row["published"] == 98.04 and row["metric"] == "validation_accuracy"
    summary = RunDir(row["runs"][0]["directory"]).read_summary()
    assert row["median"] == row["best"] == pytest.approx(100 * summary["best_validation_accuracy"])
    assert "published single run 98.04" in result.out


def test_finished_runs_are_reused(capsys, blocks, tmp_path):
    assert reproduce(capsys, blocks, tmp_path, "--seeds", 1, "--only", "h30-cross-entropy").code == 0
    summary = tmp_path / "h30-cross-entropy" / "seed-0" / "summary.json"
    before = summary.read_bytes()
    again = reproduce(capsys, blocks, tmp_path, "--seeds", 1, "--only", "h30-cross-entropy")
    assert again.code == 0 and "(1 already done)" in again.err and summary.read_bytes() == before
    weights = summary.with_name("last") / "weights.safetensors"
    trained = weights.read_bytes()
    rerun = reproduce(capsys, blocks, tmp_path, "--seeds", 1, "--only", "h30-cross-entropy",
                      "--rerun")
    assert rerun.code == 0 and summary.read_bytes() != before     # new timings
    assert weights.read_bytes() == trained                         # the same seed's net
    longer = reproduce(capsys, blocks, tmp_path, "--seeds", 1, "--only", "h30-cross-entropy",
                       "--epochs", 2)
    assert "(0 already done)" in longer.err                        # other settings: trained again


def test_check_fails_when_a_median_is_above_its_threshold(capsys, blocks, tmp_path):
    result = reproduce(capsys, blocks, tmp_path, "--seeds", 1, "--only", "h30-quadratic",
                       "--check", "--quiet")
    report = json.loads((tmp_path / "reproduce.json").read_text())
    assert result.code == (0 if report["rows"][0]["within_threshold"] else 1)


@pytest.mark.slow      # two spawned worker processes: ~8 s on a busy 2-core machine
def test_parallel_jobs_give_the_same_numbers(capsys, blocks, tmp_path):
    flags = ("--seeds", 2, "--only", "h30-cross-entropy-l2", "--quiet")
    assert reproduce(capsys, blocks, tmp_path / "serial", *flags).code == 0
    assert reproduce(capsys, blocks, tmp_path / "parallel", *flags, "--jobs", 2).code == 0
    numbers = [[r["test_error"] for r in json.loads((tmp_path / d / "reproduce.json").read_text())
                ["rows"][0]["runs"]] for d in ("serial", "parallel")]
    assert numbers[0] == numbers[1]


def test_unknown_row(capsys, blocks, tmp_path):
    assert_one_error_line(reproduce(capsys, blocks, tmp_path, "--only", "h7"), r"unknown row 'h7'")


def _summary(test_errors, n=10_000, best_validation_accuracy=0.9, best_epoch=4):
    return {"status": "completed", "test_accuracy": 1 - test_errors / n, "test_errors": test_errors,
            "test_examples": n, "best_epoch": best_epoch,
            "best_validation_accuracy": best_validation_accuracy, "median_epoch_seconds": 1.5}


def test_defaults_are_three_seeds_of_30_epochs_from_network2s_init(capsys, tmp_path,
                                                                     monkeypatch):
    # the training itself is replaced: what is asked for, and how the answers are filed
    from nablanet.cli import reproduce as cli
    asked = []

    def execute(tasks, jobs, threads):
        for task in tasks:
            asked.append((task[0].name, task[1], task[2].epochs, task[2].init, task[2].lmbda))
            yield task, _summary(500 + 100 * task[1])
    monkeypatch.setattr(cli, "_execute", execute)
    result = nablanet(capsys, "reproduce", "nielsen-ch3", "--out", tmp_path, "--quiet",
                      "--only", "h30-cross-entropy-l2", "--only", "h100-cross-entropy-l2-eta0.1")
    assert result.code == 0, result.err
    assert sorted(asked) == sorted(
        [("h30-cross-entropy-l2", s, 30, "normal-scaled", 5.0) for s in range(3)]
        + [("h100-cross-entropy-l2-eta0.1", s, 60, "normal-scaled", 5.0) for s in range(3)])
    report = json.loads((tmp_path / "reproduce.json").read_text())
    assert (report["seeds"], report["epochs"], report["init"]) == (3, 30, "normal-scaled")
    l2, long = report["rows"]
    assert (l2["lmbda"], l2["epochs"], long["epochs"]) == (5.0, 30, 60)
    assert [r["test_error"] for r in l2["runs"]] == pytest.approx([5.0, 6.0, 7.0])
    assert "seeds 0..2;" in result.out
    again = nablanet(capsys, "reproduce", "nielsen-ch3", "--out", tmp_path / "g", "--quiet",
                     "--only", "h30-quadratic", "--seeds", 1, "--init", "glorot")
    assert again.code == 0 and asked[-1][3] == "glorot"
    assert json.loads((tmp_path / "g" / "reproduce.json").read_text())["init"] == "glorot"


def test_rows_take_the_median_and_the_best_and_compare_with_the_threshold():
    from nablanet.cli.reproduce import Experiment, _brief, _row, format_table

    e = Experiment("h", "label", 30, "quadratic", 3.0, threshold_error=5.53)
    runs = [(s, f"d{s}", _summary(n)) for s, n in enumerate((553, 420, 600))]
    row = _row(e, runs, 30)
    assert [r["test_error"] for r in row["runs"]] == pytest.approx([5.53, 4.2, 6.0])
    assert row["median"] == pytest.approx(5.53) and row["best"] == pytest.approx(4.2)
    # at the threshold is within it: 100 (1 - accuracy) made 553 errors 5.530000000000001
    assert row["within_threshold"] is True
    above = _row(e, [(0, "d0", _summary(554))], 30)
    assert above["within_threshold"] is False
    published = Experiment("p", "long", 100, "cross-entropy", 0.1, 5.0, epoch_factor=2,
                           published_accuracy=98.04)
    long = _row(published, [(s, "d", _summary(900, best_validation_accuracy=v))
                            for s, v in enumerate((0.97, 0.98))], 60)
    assert long["best"] == pytest.approx(98.0) and long["median"] == pytest.approx(97.5)
    table = format_table({"table": "t", "dataset": "mnist", "epochs": 30, "init": "normal",
                          "seeds": 3, "rows": [row, above]})
    assert "seeds 0..2;" in table
    assert table.splitlines()[2].endswith("5.53  ok")
    assert table.splitlines()[3].endswith("5.53  ABOVE")
    assert _brief(_summary(500, best_epoch=4)) == "test error 5.00%, best epoch 5, 1.5 s/epoch"
    assert _brief({"status": "diverged", "message": "NaN cost"}) == "diverged: NaN cost"


def test_an_out_folder_that_cannot_be_made_is_the_error_reported(capsys, blocks, tmp_path):
    # It was "…/seed-0/summary.json: no such file": the summary that could not be read
    # after the run's folder could not be made.
    (tmp_path / "file").write_text("")
    result = reproduce(capsys, blocks, tmp_path / "file", "--seeds", 1, "--only",
                       "h30-quadratic", "--quiet")
    assert_one_error_line(result, r"file/h30-quadratic/seed-0: Not a directory$")


@pytest.mark.parametrize("flags, match", [
    (["--seeds", 0], r"--seeds and --jobs must be ≥ 1, got 0 and 1$"),
    (["--jobs", 0], r"--seeds and --jobs must be ≥ 1, got 3 and 0$"),
    # "belongs to the hinton-2006 table" sent lenet5's and nielsen-ch6's users away
    (["--device", "gpu"], r"--device belongs to the hinton-2006, nielsen-ch6 and lenet5 tables$"),
    (["--train-size", 9], r"--train-size belongs to the hinton-2006, nielsen-ch6 and lenet5 "
                          r"tables$"),
    (["--test-size", 9], r"--test-size belongs to the hinton-2006 table$"),
    (["--members", 2], r"--members belongs to nielsen-ch6$"),
])
def test_settings_nielsen_ch3_cannot_run(capsys, blocks, tmp_path, flags, match):
    assert_one_error_line(reproduce(capsys, blocks, tmp_path / "out", *flags), match)
    assert not (tmp_path / "out").exists()


def test_runs_that_fail_are_reported_and_filed(capsys, blocks, tmp_path):
    result = nablanet(capsys, "reproduce", "nielsen-ch3", "--dataset", blocks,
                      "--validation-size", 3000, "--epochs", 1, "--seeds", 1, "--only",
                      "h30-quadratic", "--out", tmp_path, "--quiet")
    assert result.code == 1
    why = "cannot hold out 3000 of 150 training examples"
    assert result.err.startswith(f"nablanet: error: 1 run(s) did not finish: {tmp_path}/"
                                 "h30-quadratic/seed-0: failed (") and why in result.err
    (entry,) = json.loads((tmp_path / "reproduce.json").read_text())["rows"][0]["runs"]
    assert entry["status"] == "failed" and why in entry["message"]
    assert entry["test_error"] is None
