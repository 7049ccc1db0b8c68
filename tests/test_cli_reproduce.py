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
