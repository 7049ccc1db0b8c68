"""Run directories: their files, the summary's status on every ending, scoring, plots."""
import json
import math

import shutil

import numpy as np
import pytest
import safetensors.numpy

import nablanet.io
from nablanet.config import TrainConfig
from nablanet.data import Dataset
from nablanet.errors import ConfigError, DataError, DivergenceError, ModelFileError
from nablanet.net import mlp
from nablanet.plots import plot_curves
from nablanet.costs import get_cost
from nablanet.runs import MetricsWriter, RunDir, peak_rss_mb, score, to_json, train_run
from nablanet.training import Trainer
from test_cli_data import write_blocks_idx
from test_io import _dead_pid

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def blocks(tmp_path_factory):
    return write_blocks_idx(tmp_path_factory.mktemp("data") / "blocks")


def small(blocks, **overrides) -> TrainConfig:
    values = dict(dataset=str(blocks), validation_size=50, hidden=[20], epochs=2, lmbda=0.5)
    return TrainConfig(**{**values, **overrides})


def test_a_run_writes_every_file_with_its_keys(tmp_path, blocks):
    summary = train_run(small(blocks), tmp_path / "run")
    run = RunDir(tmp_path / "run")
    assert run.read_summary() == json.loads(to_json(summary))
    assert summary["status"] == "completed" and summary["epochs_run"] == 2
    for key in ("test_accuracy", "test_errors", "best_epoch", "median_epoch_seconds", "seed",
                "message", "final_validation_accuracy", "best_validation_accuracy",
                "wall_seconds", "last_test_accuracy", "peak_rss_mb"):
        assert key in summary
    assert summary["test_errors"] == round((1 - summary["test_accuracy"]) * 100)
    assert summary["blas_threads"] == 1            # batch 10 of a small net: one thread
    rows = run.read_metrics()
    assert [r["epoch"] for r in rows] == [0, 1]
    assert summary["final_validation_accuracy"] == rows[-1]["validation_accuracy"]
    assert {"epoch", "seconds", "train_cost", "train_accuracy", "validation_cost",
            "validation_accuracy", "eta"} <= set(rows[0])
    assert run.read_config() == small(blocks).resolve(784)
    for model in ("best", "last"):
        assert (run.path / model / "weights.safetensors").is_file()
    assert (run.last / "training_state.json").is_file()
    for png in ("cost.png", "accuracy.png"):
        assert (run.path / png).read_bytes()[:8] == PNG


def test_test_accuracy_is_that_of_the_best_model_on_disk(tmp_path, blocks):
    from nablanet.io import load_model
    from nablanet.config import load_splits

    summary = train_run(small(blocks, epochs=3), tmp_path)
    test = load_splits(str(blocks), validation_size=50).test
    best, cost, meta = load_model(tmp_path / "best")
    assert meta["epoch"] == summary["best_epoch"]
    s = score(best, cost, test)
    assert (s.accuracy, s.errors) == (summary["test_accuracy"], summary["test_errors"])
    last, cost, _ = load_model(tmp_path / "last")
    assert score(last, cost, test).accuracy == summary["last_test_accuracy"]


def test_an_error_while_loading_data_marks_the_run_failed(tmp_path):
    with pytest.raises(DataError):
        train_run(TrainConfig(dataset=str(tmp_path / "absent")), tmp_path / "run")
    summary = RunDir(tmp_path / "run").read_summary()
    assert summary["status"] == "failed" and "no such file or folder" in summary["message"]


def test_an_interrupt_is_recorded_and_the_run_resumes_bit_identically(tmp_path, blocks,
                                                                      monkeypatch):
    config = small(blocks, epochs=4, dropout=0.2, optimizer="momentum", eta=0.1)
    train_run(config, tmp_path / "whole")
    original = Trainer._run_epoch

    def interrupt_in_third_epoch(self, *args):
        if self.next_epoch == 2:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(Trainer, "_run_epoch", interrupt_in_third_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_run(config, tmp_path / "cut")
    summary = RunDir(tmp_path / "cut").read_summary()
    assert summary["status"] == "failed" and "interrupted during epoch 3" in summary["message"]
    assert "--resume" in summary["message"]
    monkeypatch.setattr(Trainer, "_run_epoch", original)

    resumed = train_run(config, tmp_path / "cut", resume=True)
    assert resumed["status"] == "completed" and resumed["resumed_from_epoch"] == 2
    for name in ("last/weights.safetensors", "best/weights.safetensors"):
        assert (tmp_path / "cut" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]
    assert strip(RunDir(tmp_path / "cut").read_metrics()) == strip(
        RunDir(tmp_path / "whole").read_metrics())


def test_an_interrupt_while_checkpointing_keeps_the_previous_epoch_whole(tmp_path, blocks,
                                                                         monkeypatch):
    """Weights and training state are replaced together: Ctrl-C half-way through saving
    epoch 2's checkpoint leaves epoch 1's, which resumes to the uninterrupted result."""
    config = small(blocks, optimizer="momentum", eta=0.1)
    train_run(config, tmp_path / "whole")
    real = nablanet.io.atomic_write_bytes

    def interrupt_second_state(path, data):
        if path.name == "training_state.json" and data.startswith(b'{"next_epoch": 2'):
            raise KeyboardInterrupt
        return real(path, data)

    monkeypatch.setattr(nablanet.io, "atomic_write_bytes", interrupt_second_state)
    with pytest.raises(KeyboardInterrupt):
        train_run(config, tmp_path / "cut")
    monkeypatch.setattr(nablanet.io, "atomic_write_bytes", real)
    cut = tmp_path / "cut"
    assert [p.name for p in cut.rglob(".*")] == []          # no temporary files or folders
    assert nablanet.io.load_model(cut / "last")[2] == {"epoch": 0}
    assert nablanet.io.load_training_state(cut / "last")[0]["next_epoch"] == 1

    assert train_run(config, cut, resume=True)["resumed_from_epoch"] == 1
    for name in ("last/weights.safetensors", "best/weights.safetensors",
                 "last/training_state.safetensors"):
        assert (cut / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()


def test_resume_finishes_a_checkpoint_swap_killed_between_its_renames(tmp_path, blocks):
    """A process killed (not interrupted) mid-swap leaves last/ moved aside; --resume
    puts it back and continues to the uninterrupted result."""
    config = small(blocks, optimizer="momentum", eta=0.1)
    train_run(config, tmp_path / "whole")
    cut = tmp_path / "cut"
    train_run(small(blocks, optimizer="momentum", eta=0.1, epochs=1), cut)
    (cut / "last").rename(cut / f".last.{_dead_pid()}.00c0ffee.old")

    assert train_run(config, cut, resume=True)["resumed_from_epoch"] == 1
    assert [p.name for p in cut.rglob(".*")] == []
    for name in ("last/weights.safetensors", "best/weights.safetensors"):
        assert (cut / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()


def test_divergence_after_a_good_epoch_keeps_best_and_records_diverged(tmp_path, blocks,
                                                                       monkeypatch):
    original = Trainer._run_epoch

    def poison_second_epoch(self, *args):
        original(self, *args)
        if self.next_epoch == 1:
            self.net.layers[0].params["W"][0, 0] = np.nan

    monkeypatch.setattr(Trainer, "_run_epoch", poison_second_epoch)
    with pytest.raises(DivergenceError, match="diverged in epoch 2"):
        train_run(small(blocks, epochs=4), tmp_path)
    summary = RunDir(tmp_path).read_summary()
    assert summary["status"] == "diverged" and summary["epochs_run"] == 2
    assert summary["best_epoch"] == 0 and summary["test_accuracy"] is not None
    rows = RunDir(tmp_path).read_metrics()
    assert rows[1]["train_cost"] is None                 # NaN written as JSON null
    from nablanet.io import load_model
    _, _, meta = load_model(tmp_path / "best")
    assert meta["epoch"] == 0


def test_start_fresh_clears_an_old_run_but_refuses_a_foreign_folder(tmp_path, blocks):
    train_run(small(blocks, epochs=1), tmp_path / "run")
    (tmp_path / "run" / "notes.txt").write_text("mine")
    RunDir(tmp_path / "run").start_fresh()
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.toml", "notes.txt"]
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "best").mkdir()
    with pytest.raises(ConfigError, match="not empty and holds no run"):
        RunDir(tmp_path / "foreign").start_fresh()


def test_resume_needs_a_checkpoint_and_more_epochs(tmp_path, blocks):
    with pytest.raises(ConfigError, match="not a run directory"):
        train_run(small(blocks), tmp_path, resume=True)
    train_run(small(blocks, epochs=1), tmp_path / "run")
    before = RunDir(tmp_path / "run").summary_path.read_bytes()
    with pytest.raises(ConfigError, match="already trained 1 of 1 epochs"):
        train_run(small(blocks, epochs=1), tmp_path / "run", resume=True)
    assert RunDir(tmp_path / "run").summary_path.read_bytes() == before   # left untouched
    state = tmp_path / "run" / "last" / "training_state.json"
    state.write_text(state.read_text().replace('"next_epoch": 1', '"next_epoch": null'))
    with pytest.raises(ModelFileError, match="training_state.json: next_epoch must be a whole"):
        train_run(small(blocks, epochs=2), tmp_path / "run", resume=True)
    state.write_text(state.read_text().replace('"next_epoch": null', '"next_epoch": true'))
    with pytest.raises(ModelFileError, match="next_epoch must be a whole number.*got True"):
        train_run(small(blocks, epochs=2), tmp_path / "run", resume=True)   # True is not 1
    assert RunDir(tmp_path / "run").summary_path.read_bytes() == before


@pytest.fixture(scope="module")
def one_epoch(blocks, tmp_path_factory):
    """A finished one-epoch run with momentum (so the state holds arrays) to damage."""
    directory = tmp_path_factory.mktemp("one-epoch")
    train_run(small(blocks, epochs=1, optimizer="momentum", eta=0.1), directory)
    return directory


def _damage_scalars(change):
    def damage(last):
        path = last / "training_state.json"
        scalars = json.loads(path.read_text())
        change(scalars)
        path.write_text(json.dumps(scalars))
    return damage


def _damage_arrays(change):
    def damage(last):
        path = last / "training_state.safetensors"
        arrays = safetensors.numpy.load_file(str(path))
        change(arrays)
        path.write_bytes(safetensors.numpy.save(arrays))
    return damage


@pytest.mark.parametrize("damage, match", [
    (_damage_scalars(lambda s: s.update(rng={"state": 1})), "PCG64"),
    (_damage_scalars(lambda s: s.pop("optimizer")), "KeyError: 'optimizer'"),
    (_damage_scalars(lambda s: s.update(history="epoch 0")), "'history' must be a list"),
    (_damage_scalars(lambda s: s.update(blas_threads="two")), "'blas_threads' must be"),
    (_damage_arrays(lambda a: a.update({"optimizer/velocity.0": np.zeros(3, np.float32)})),
     r"momentum state 'velocity.0' of shape \(3,\) matches no parameter"),
    (_damage_arrays(lambda a: a.update({"optimizer/velocity.99": np.zeros(3, np.float32)})),
     "'velocity.99'"),
    (_damage_arrays(lambda a: a.update({"optimizer/rate.0": np.zeros(3, np.float32)})),
     "'rate.0'"),
    # a velocity left out would restart from zeros: the resumed run would differ
    (_damage_arrays(lambda a: a.pop("optimizer/velocity.1")),
     r"momentum state at step \d+ lacks velocity.1\)$"),
], ids=["rng", "no-optimizer", "history", "threads", "shape", "index", "slot", "missing"])
def test_a_damaged_training_state_is_one_model_file_error(one_epoch, tmp_path, blocks, damage,
                                                          match):
    run = tmp_path / "run"
    shutil.copytree(one_epoch, run)
    damage(run / "last")
    with pytest.raises(ModelFileError, match=f"last: malformed training state.*{match}"):
        train_run(small(blocks, epochs=2, optimizer="momentum", eta=0.1), run, resume=True)


@pytest.mark.parametrize("change, match", [
    ({"hidden": [7]}, "the checkpoint does not match"),            # other weights' shapes
    ({"early_stopping": 3}, "the checkpoint does not match"),      # another callback's state
], ids=["net", "callbacks"])
def test_resume_refuses_a_config_that_does_not_match_the_checkpoint(one_epoch, tmp_path, blocks,
                                                                    change, match):
    shutil.copytree(one_epoch, tmp_path / "run")
    with pytest.raises(ConfigError, match=match):
        train_run(small(blocks, epochs=2, optimizer="momentum", eta=0.1, **change),
                  tmp_path / "run", resume=True)


def test_resume_drops_metrics_lines_written_after_the_checkpoint(one_epoch, tmp_path, blocks):
    run = RunDir(tmp_path / "run")
    shutil.copytree(one_epoch, run.path)
    with open(run.metrics_path, "a") as f:           # epoch 1 logged, its checkpoint lost
        f.write('{"epoch": 1, "train_cost": 9.0}\n')
    train_run(small(blocks, epochs=2, optimizer="momentum", eta=0.1), run.path, resume=True)
    assert [r["epoch"] for r in run.read_metrics()] == [0, 1]
    assert run.read_metrics()[1]["train_cost"] != 9.0


def test_run_files_that_are_missing_or_damaged(tmp_path):
    run = RunDir(tmp_path)
    assert run.read_metrics() == []                     # no epoch finished yet
    with pytest.raises(ConfigError, match="summary.json: no such file"):
        run.read_summary()
    run.summary_path.write_text("{")
    with pytest.raises(ConfigError, match="summary.json: malformed JSON"):
        run.read_summary()
    with pytest.raises(ConfigError, match="model must be 'best' or 'last', got 'middle'"):
        run.model_dir("middle")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="file: exists and is not a directory"):
        RunDir(tmp_path / "file").start_fresh()


def test_json_keys_and_peak_memory():
    assert to_json({np.int64(3): np.float32(0.5)}) == '{"3": 0.5}'
    assert 10 < peak_rss_mb() < 1_000_000           # MB: Linux reports KiB, not bytes


def test_the_summary_skips_a_nan_validation_accuracy_wherever_it_is():
    from nablanet.runs import _history_summary
    rows = [{"validation_accuracy": a, "seconds": 1.0} for a in (float("nan"), 0.7, 0.6)]
    assert _history_summary(rows, best_epoch=1)["best_validation_accuracy"] == 0.7


def test_the_summary_takes_the_best_finite_validation_accuracy_and_the_last_row():
    # A short real run improves every epoch, so best == last there; here they differ.
    from nablanet.runs import _history_summary
    rows = [{"validation_accuracy": a, "seconds": s, "train_cost": c}
            for a, s, c in [(0.8, 1.0, 0.5), (0.9, 3.0, 0.4), (0.85, 2.0, 0.45),
                            (float("nan"), 9.0, float("nan"))]]
    summary = _history_summary(rows, best_epoch=1)
    assert summary["best_validation_accuracy"] == 0.9
    assert math.isnan(summary["final_validation_accuracy"])
    assert summary["median_epoch_seconds"] == 2.5 and summary["epochs_run"] == 4


def test_model_dir_names_what_is_missing(tmp_path):
    with pytest.raises(ModelFileError, match="no such run or model directory"):
        RunDir(tmp_path / "absent").model_dir()
    with pytest.raises(ModelFileError, match="no best/ model"):
        RunDir(tmp_path).model_dir()


def test_metrics_writer_appends_one_flushed_line_per_epoch(tmp_path):
    writer = MetricsWriter(tmp_path / "metrics.jsonl")
    writer.on_epoch_end(None, 0, {"epoch": 0, "train_cost": np.float32(1.5)})
    assert (tmp_path / "metrics.jsonl").read_text() == '{"epoch": 0, "train_cost": 1.5}\n'
    writer.on_epoch_end(None, 1, {"epoch": 1, "train_cost": math.inf})
    assert RunDir(tmp_path).read_metrics() == [{"epoch": 0, "train_cost": 1.5},
                                               {"epoch": 1, "train_cost": None}]


def test_a_line_cut_short_by_a_crash_is_left_out_of_the_metrics(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 0}\n{"epoch": 1, "train_co')
    assert RunDir(tmp_path).read_metrics() == [{"epoch": 0}]
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 0}\n{"epoch": 1, "train_co\n')
    with pytest.raises(ConfigError, match="metrics.jsonl: malformed JSON line"):
        RunDir(tmp_path).read_metrics()


def test_score_counts_errors_and_rejects_labels_beyond_the_outputs():
    net = mlp([2, 3], "sigmoid", "softmax", rng=0)
    x = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    predicted = net.classify(x)
    labels = predicted.copy()
    labels[0] = (labels[0] + 1) % 3
    s = score(net, None, Dataset(x, labels))
    assert (s.errors, s.n, s.cost) == (1, 3, None) and s.accuracy == pytest.approx(2 / 3)
    with pytest.raises(DataError, match="label 3 at row 1 is out of range for a network with 3"):
        score(net, None, Dataset(x, np.array([0, 3, 1])))
    with pytest.raises(DataError, match="needs class labels to score a classifier"):
        score(net, None, Dataset(x, np.zeros((3, 3))))
    # C₀ is the mean over the examples: ½‖a − y‖² averaged for the quadratic cost
    onehot = np.eye(3)[labels]
    expected = 0.5 * ((net.predict(x) - onehot) ** 2).sum() / 3
    assert score(net, get_cost("quadratic"), Dataset(x, labels)).cost == pytest.approx(expected)


def test_plots_leave_gaps_for_diverged_epochs(tmp_path):
    rows = [{"epoch": 0, "train_cost": 1.0, "validation_cost": 1.2, "train_accuracy": 0.5,
             "validation_accuracy": 0.4},
            {"epoch": 1, "train_cost": None, "validation_cost": float("nan")}]
    paths = plot_curves(rows, tmp_path, best_epoch=0)
    assert [p.name for p in paths] == ["cost.png", "accuracy.png"]
    assert all(p.read_bytes()[:8] == PNG for p in paths)


def test_a_run_whose_learning_rate_runs_out_is_marked_early_stopped(tmp_path, blocks):
    # Nielsen's stopping rule ends the run as early stopping does; summary.json has no
    # status of its own for it, and the message says why
    summary = train_run(small(blocks, epochs=60, schedule="halve-on-plateau",
                              schedule_patience=1), tmp_path)
    assert summary["status"] == "early-stopped" and summary["epochs_run"] < 60
    assert summary["message"] == "learning rate fell to η₀/1024"
    assert RunDir(tmp_path).read_summary()["status"] == "early-stopped"


def test_a_plotting_failure_does_not_hide_the_error_that_ended_the_run(tmp_path, blocks,
                                                                       monkeypatch):
    import nablanet.plots

    original = Trainer._run_epoch

    def fail_in_second_epoch(self, *args):
        if self.next_epoch == 1:
            raise RuntimeError("the disk went away")
        original(self, *args)

    def broken_plot(*args, **kwargs):
        raise ValueError("no fonts")

    monkeypatch.setattr(Trainer, "_run_epoch", fail_in_second_epoch)
    monkeypatch.setattr(nablanet.plots, "plot_curves", broken_plot)
    with pytest.raises(RuntimeError, match="the disk went away"):
        train_run(small(blocks, epochs=3), tmp_path)
    summary = RunDir(tmp_path).read_summary()
    assert summary["status"] == "failed" and "the disk went away" in summary["message"]


def test_resume_refuses_a_run_that_stopped_early(tmp_path, blocks):
    # It trained on past the stop, into a run no uninterrupted one matches: early
    # stopping's state came back with the checkpoint, but the stop itself did not.
    config = small(blocks, epochs=30, early_stopping=1, eta=20.0)
    summary = train_run(config, tmp_path / "run")
    assert summary["status"] == "early-stopped" and summary["epochs_run"] < 30
    before = RunDir(tmp_path / "run").summary_path.read_bytes()
    with pytest.raises(ConfigError, match="stopped early, where an uninterrupted run stops too"):
        train_run(config, tmp_path / "run", resume=True)
    assert RunDir(tmp_path / "run").summary_path.read_bytes() == before


def test_without_validation_data_the_training_accuracy_chooses_best_and_stops_early(tmp_path,
                                                                                   blocks):
    # The help said "validation accuracy" only, for --early-stopping and best/.
    from test_cli_data import flag_help

    summary = train_run(small(blocks, validation_size=0, epochs=6, early_stopping=1, eta=20.0),
                        tmp_path)
    rows = RunDir(tmp_path).read_metrics()
    assert summary["monitor"] == "train_accuracy" and "validation_accuracy" not in rows[0]
    train_accuracy = [r["train_accuracy"] for r in rows]
    assert summary["best_epoch"] == int(np.argmax(train_accuracy))
    # one epoch (the patience) without a better training accuracy, then the stop
    assert summary["status"] == "early-stopped" and len(rows) == summary["best_epoch"] + 2
    assert "training accuracy with --validation-size 0" in flag_help("train", "--early-stopping")
    assert "or training accuracy where the run held none out" in flag_help("evaluate", "--model")
