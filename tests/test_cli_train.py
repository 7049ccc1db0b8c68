"""``nablanet train`` end to end on a small synthetic IDX data set, in process."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nablanet.data import mnist_available, write_idx
from nablanet.runs import RunDir
from test_cli_data import assert_one_error_line, nablanet, write_blocks_idx

REAL_DATA = os.environ.get("NABLANET_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def blocks(tmp_path_factory):
    return write_blocks_idx(tmp_path_factory.mktemp("data") / "blocks")


def train(capsys, blocks, out, *flags):
    return nablanet(capsys, "train", "--dataset", blocks, "--validation-size", 50,
                    "--hidden", 20, "--epochs", 2, "--out", out, *flags)


def weights(run) -> bytes:
    return (Path(run) / "last" / "weights.safetensors").read_bytes()


def test_train_writes_the_run_directory_and_prints_test_accuracy(capsys, blocks, tmp_path):
    result = train(capsys, blocks, tmp_path / "run")
    assert result.code == 0, result.err
    run = RunDir(tmp_path / "run")
    summary = run.read_summary()
    assert summary["status"] == "completed"
    assert result.out.splitlines()[-1] == (f"test accuracy: {summary['test_accuracy']:.2%} "
                                           f"({summary['test_errors']} errors)")
    assert summary["test_accuracy"] > 0.5                        # the blocks are learnable
    epoch_lines = [line for line in result.err.splitlines() if "epoch " in line and "/2" in line]
    assert len(epoch_lines) == 2
    # the terminal counts epochs from 1 (progress lines, "best epoch"); the JSON from 0
    assert f"best epoch {summary['best_epoch'] + 1}; " in result.err
    assert {p.name for p in run.path.iterdir()} >= {"config.toml", "metrics.jsonl", "summary.json",
                                                    "best", "last", "cost.png", "accuracy.png"}
    assert len(run.read_metrics()) == 2


def test_training_into_an_earlier_run_says_it_replaces_it(capsys, blocks, tmp_path):
    first = train(capsys, blocks, tmp_path / "run")
    assert first.code == 0 and "replacing" not in first.err
    again = train(capsys, blocks, tmp_path / "run", "--seed", 1)
    assert again.code == 0
    assert f"run directory: {tmp_path / 'run'} (replacing the run that was there)" in again.err
    assert RunDir(tmp_path / "run").read_config().seed == 1


def test_quiet_prints_only_the_result(capsys, blocks, tmp_path):
    result = train(capsys, blocks, tmp_path / "run", "--quiet")
    assert result.code == 0 and result.err == ""
    assert result.out.startswith("test accuracy: ") and result.out.count("\n") == 1


def test_log_likelihood_on_sigmoid_outputs_trains_with_a_note(capsys, blocks, tmp_path):
    # a valid pair (each sigmoid is a probability) that a student may pick by mistake: only
    # softmax lowers the wrong classes' outputs
    result = train(capsys, blocks, tmp_path / "ll", "--cost", "log-likelihood", "--output",
                   "sigmoid")
    assert result.code == 0, result.err
    assert "note: log-likelihood with sigmoid outputs" in result.err
    result = train(capsys, blocks, tmp_path / "ce", "--cost", "log-likelihood")   # softmax
    assert result.code == 0 and "note:" not in result.err


@pytest.mark.parametrize("flags, needed, note", [
    (("--momentum", 0.5), ("--optimizer", "nesterov"),
     "--momentum is read only with optimizer momentum or nesterov (this run: sgd)"),
    (("--step-every", 3), ("--schedule", "step"),
     "--step-every is read only with schedule step (this run: constant)"),
    (("--schedule-patience", 3, "--schedule", "step"), ("--schedule", "halve-on-plateau"),
     "--schedule-patience is read only with schedule halve-on-plateau (this run: step)"),
    (("--growing-patience",), ("--early-stopping", 3),
     "--growing-patience is read only with early-stopping (this run: off)")])
def test_a_flag_the_run_never_reads_gets_a_note(capsys, blocks, tmp_path, flags, needed, note):
    # Saved to config.toml and silently ignored before: --momentum with plain SGD is SGD.
    result = train(capsys, blocks, tmp_path / "idle", *flags)
    assert result.code == 0, result.err
    assert f"note: {note}; it has no effect" in result.err.splitlines()
    result = train(capsys, blocks, tmp_path / "read", *flags, *needed)
    assert result.code == 0 and "note:" not in result.err


def test_a_config_file_may_hold_settings_the_run_never_reads(capsys, blocks, tmp_path):
    # A run's own config.toml holds every setting: retraining it with another optimiser
    # keeps its μ, and only flags given on the command line are noted.
    config = tmp_path / "c.toml"
    config.write_text('optimizer = "momentum"\nmomentum = 0.5\nstep_every = 3\n')
    result = nablanet(capsys, "train", "--config", config, "--dataset", blocks, "--hidden", 20,
                      "--validation-size", 50, "--epochs", 1, "--optimizer", "sgd",
                      "--out", tmp_path / "run")
    assert result.code == 0 and "note:" not in result.err


def test_config_file_with_flags_overriding_it(capsys, blocks, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('hidden = [12]\neta = 0.3\nbatch_size = 25\nepochs = 1\n'
                      'optimizer = "momentum"\nmomentum = 0.5\n')
    result = nablanet(capsys, "train", "--config", config, "--dataset", blocks,
                      "--validation-size", 50, "--eta", 0.2, "--out", tmp_path / "run", "--quiet")
    assert result.code == 0, result.err
    stored = RunDir(tmp_path / "run").read_config()
    assert (stored.sizes, stored.eta, stored.batch_size, stored.epochs) == ([784, 12, 10], 0.2, 25, 1)
    assert (stored.optimizer, stored.momentum) == ("momentum", 0.5)


def test_hidden_flag_repeated_or_comma_separated(capsys, blocks, tmp_path):
    for name, flags in (("a", ["--hidden", "16,8"]), ("b", ["--hidden", "16", "--hidden", "8"])):
        result = nablanet(capsys, "train", "--dataset", blocks, "--validation-size", 50,
                          "--epochs", 1, "--out", tmp_path / name, "--quiet", *flags)
        assert result.code == 0, result.err
        assert RunDir(tmp_path / name).read_config().sizes == [784, 16, 8, 10]


def test_same_seed_gives_identical_weights_and_another_seed_does_not(capsys, blocks, tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        assert train(capsys, blocks, tmp_path / name, "--seed", seed, "--quiet",
                     "--dropout", 0.3).code == 0
    assert weights(tmp_path / "a") == weights(tmp_path / "b")
    assert weights(tmp_path / "a") != weights(tmp_path / "c")


def test_resume_to_more_epochs_equals_the_uninterrupted_run(capsys, blocks, tmp_path):
    flags = ("--optimizer", "adam", "--eta", 0.01, "--dropout", 0.2, "--quiet")
    assert train(capsys, blocks, tmp_path / "whole", "--epochs", 4, *flags).code == 0
    assert train(capsys, blocks, tmp_path / "part", *flags).code == 0
    assert weights(tmp_path / "part") != weights(tmp_path / "whole")
    result = nablanet(capsys, "train", "--resume", tmp_path / "part", "--epochs", 4, "--quiet")
    assert result.code == 0, result.err
    assert weights(tmp_path / "part") == weights(tmp_path / "whole")
    part, whole = RunDir(tmp_path / "part"), RunDir(tmp_path / "whole")
    assert [r["train_cost"] for r in part.read_metrics()] == [r["train_cost"] for r in whole.read_metrics()]
    assert part.read_summary()["test_accuracy"] == whole.read_summary()["test_accuracy"]


def test_resume_keeps_the_runs_settings(capsys, blocks, tmp_path):
    assert train(capsys, blocks, tmp_path / "run", "--quiet").code == 0
    assert_one_error_line(nablanet(capsys, "train", "--resume", tmp_path / "run", "--eta", 1,
                                   "--epochs", 3, "--quiet"),
                          "only --epochs and --data-dir may change .got --eta")
    assert_one_error_line(nablanet(capsys, "train", "--resume", tmp_path / "run", "--quiet"),
                          "already trained 2 of 2 epochs")
    assert_one_error_line(nablanet(capsys, "train", "--resume", tmp_path / "nothing", "--quiet"),
                          "not a run directory")


def test_resume_refuses_out_and_config(capsys, tmp_path):
    # the run is continued in place with its own config.toml: another place or config
    # would be silently ignored (checked before the run directory is read)
    for flags in (("--out", tmp_path / "elsewhere"), ("--config", tmp_path / "c.toml")):
        assert_one_error_line(nablanet(capsys, "train", "--resume", tmp_path / "run", *flags),
                              "--resume continues RUN in place .* drop --out and --config")


def test_preset_refuses_resume_and_config(capsys, tmp_path, monkeypatch):
    import nablanet.cli.train as train_cli

    def trains(*args):          # without the check the preset would train LeNet-5 here
        raise AssertionError("the preset ran")

    monkeypatch.setattr(train_cli, "run_preset", trains)
    for flags in (("--resume", tmp_path / "run"), ("--config", tmp_path / "c.toml")):
        assert_one_error_line(nablanet(capsys, "train", "--preset", "lenet5", *flags),
                              "--preset cannot be combined with --resume or --config")


def test_a_diverging_run_is_marked_diverged_and_exits_non_zero(capsys, blocks, tmp_path):
    result = train(capsys, blocks, tmp_path / "run", "--eta", 1e6, "--cost", "quadratic",
                   "--output", "linear", "--quiet")
    assert_one_error_line(result, "training diverged in epoch 1: cost became nan")
    assert result.out == ""
    summary = RunDir(tmp_path / "run").read_summary()
    assert summary["status"] == "diverged" and summary["test_accuracy"] is None


# -- bad input: exit status 2, one error line, no summary marked completed --------------------------
@pytest.mark.parametrize("flags, match", [
    (["--cost", "foo"], r"argument --cost: invalid choice: 'foo'"),
    (["--activation", "softplus"], r"argument --activation: invalid choice"),
    (["--hidden", "3x"], r"argument --hidden: expected comma-separated integers"),
    (["--sizes", "784,,10"], r"argument --sizes: expected comma-separated integers"),
    (["--eta", "inf"], r"eta must be a finite number, got inf"),
    (["--eta", "-1"], r"eta must be > 0"),
    (["--hidden", "5", "--sizes", "784,5,10"], r"not allowed with argument"),
    (["--cost", "cross-entropy", "--output", "linear"], r"needs outputs in \(0, 1\)"),
])
def test_bad_flags(capsys, blocks, tmp_path, flags, match):
    result = train(capsys, blocks, tmp_path / "run", "--quiet", *flags)
    assert_one_error_line(result, match)
    summary = tmp_path / "run" / "summary.json"
    assert not summary.exists() or json.loads(summary.read_text())["status"] == "failed"


@pytest.mark.parametrize("text, match", [
    ('eta = 0.5\nbatch_size = \n', r"malformed TOML.*line 2"),
    ('batchsize = 3\n', r"unknown key 'batchsize' \(did you mean 'batch_size'\?\)"),
    ('epochs = "many"\n', r"epochs must be an integer, got 'many'"),
])
def test_bad_config_files(capsys, blocks, tmp_path, text, match):
    (tmp_path / "c.toml").write_text(text)
    result = nablanet(capsys, "train", "--config", tmp_path / "c.toml", "--dataset", blocks,
                      "--out", tmp_path / "run", "--quiet")
    assert_one_error_line(result, match)
    assert not (tmp_path / "run").exists()


def failed_run(capsys, dataset, tmp_path, match, *flags):
    result = nablanet(capsys, "train", "--dataset", dataset, "--validation-size", 10,
                      "--epochs", 1, "--out", tmp_path / "run", "--quiet", *flags)
    assert_one_error_line(result, match)
    summary = RunDir(tmp_path / "run").read_summary()
    assert summary["status"] == "failed" and summary["message"]
    return summary


def test_sizes_that_do_not_fit_the_data(capsys, blocks, tmp_path):
    failed_run(capsys, blocks, tmp_path, r"start with 100 inputs, but the data has 784",
               "--sizes", "100,5,10")


def test_label_out_of_range(capsys, tmp_path):
    def put_a_twelve(labels):
        labels[7] = 12
    data = write_blocks_idx(tmp_path / "data", labels_edit=put_a_twelve)
    failed_run(capsys, data, tmp_path, r"train: label 12 at row 7 is out of range \[0, 10\)")


def test_empty_data_set(capsys, tmp_path):
    data = write_blocks_idx(tmp_path / "data")
    write_idx(data / "train-images-idx3-ubyte.gz", np.zeros((0, 28, 28), np.uint8))
    write_idx(data / "train-labels-idx1-ubyte.gz", np.zeros(0, np.uint8))
    failed_run(capsys, data, tmp_path, r"0 examples")


def test_idx_file_with_a_bad_magic_number(capsys, tmp_path):
    data = write_blocks_idx(tmp_path / "data")
    # Labels where images belong: uint8 1-D instead of uint8 3-D.
    write_idx(data / "train-images-idx3-ubyte.gz", np.zeros(300, np.uint8))
    failed_run(capsys, data, tmp_path, r"train-images-idx3-ubyte.gz: bad magic number 0x00000801")


def test_truncated_idx_file(capsys, tmp_path):
    data = write_blocks_idx(tmp_path / "data")
    images = data / "t10k-images-idx3-ubyte.gz"
    images.unlink()
    write_idx(data / "t10k-images-idx3-ubyte", np.zeros((100, 28, 28), np.uint8), compress=False)
    raw = data / "t10k-images-idx3-ubyte"
    raw.write_bytes(raw.read_bytes()[:-500])
    failed_run(capsys, data, tmp_path, r"data is shorter than the header says")


def test_mnist_folder_with_a_wrong_checksum(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("NABLANET_CACHE", str(tmp_path / "cache"))
    fake = write_blocks_idx(tmp_path / "data" / "mnist")        # MNIST's names, not its bytes
    assert fake.name == "mnist"
    failed_run(capsys, "mnist", tmp_path, r"SHA-256 mismatch", "--data-dir", tmp_path / "data")


def test_gpu_without_cupy_is_one_clear_line(capsys, blocks, tmp_path):
    try:
        import cupy  # noqa: F401
        pytest.skip("CuPy is installed")
    except ImportError:
        pass
    failed_run(capsys, blocks, tmp_path, r"device='gpu' needs CuPy", "--device", "gpu")


@pytest.mark.slow
@pytest.mark.mnist
@pytest.mark.skipif(not mnist_available(REAL_DATA), reason="MNIST files not found")
def test_make_run_default_command_for_one_epoch_on_mnist(tmp_path):
    # A child process, as `make run` starts it: the peak RSS it records is its own, not
    # this test session's (a process's peak never goes down).
    env = {**os.environ, "NABLANET_DATA": str(REAL_DATA)}
    done = subprocess.run([sys.executable, "-m", "nablanet.cli.main", "train", "--out",
                           str(tmp_path / "default"), "--epochs", "1", "--quiet"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("test accuracy: ")
    summary = RunDir(tmp_path / "default").read_summary()
    assert summary["status"] == "completed" and summary["sizes"] == [784, 100, 10]
    assert (summary["train_examples"], summary["validation_examples"],
            summary["test_examples"]) == (50_000, 10_000, 10_000)
    assert summary["test_accuracy"] > 0.93                       # Nielsen: ~95% after one epoch
    assert summary["peak_rss_mb"] < 600


def test_blas_threads_are_limited_while_training(capsys, blocks, tmp_path, monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import nablanet.cli.train as train_command
    import nablanet.training.trainer as trainer_module

    def blas_threads():
        return {i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"}

    command, epochs = [], []
    real_run, real_epoch = train_command.train_run, trainer_module.Trainer._run_epoch

    def spy_run(*args, **kwargs):
        command.append(blas_threads())
        return real_run(*args, **kwargs)

    def spy_epoch(self, *args):
        epochs.append(blas_threads())
        return real_epoch(self, *args)

    monkeypatch.setattr(train_command, "train_run", spy_run)
    monkeypatch.setattr(trainer_module.Trainer, "_run_epoch", spy_epoch)
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        for run, flags in (("auto", ()), ("one", ("--blas-threads", 1)),
                           ("default", ("--blas-threads", 0))):
            assert train(capsys, blocks, tmp_path / run, "--epochs", 1, "--quiet", *flags).code == 0
        after = blas_threads()
    # auto leaves the command alone and holds the small (batch-10) epoch to one thread
    assert command == [{2}, {1}, {2}] and epochs == [{1}, {1}, {1}] and after == {2}
    assert_one_error_line(train(capsys, blocks, tmp_path / "c", "--quiet", "--blas-threads", -1),
                          r"--blas-threads: expected a thread count ≥ 0 or 'auto'")


def test_an_early_stopped_run_says_why_and_reports_both_models(capsys, tmp_path, monkeypatch):
    import nablanet.cli.train as train_command

    summary = {"status": "early-stopped", "message": "no better validation accuracy in 3 epochs",
               "best_epoch": 4, "test_accuracy": 0.9, "test_errors": 10,
               "last_test_accuracy": 0.875, "last_test_errors": 12}
    monkeypatch.setattr(train_command, "train_run", lambda *args, **kwargs: summary)
    result = nablanet(capsys, "train", "--out", tmp_path / "run")
    assert result.code == 0
    assert "stopped early: no better validation accuracy in 3 epochs\n" in result.err
    assert "best epoch 5; last model's test accuracy 87.50% (12 errors)" in result.err
    assert result.out == "test accuracy: 90.00% (10 errors)\n"
    assert nablanet(capsys, "train", "--out", tmp_path / "run", "--quiet").err == ""


def test_resume_refuses_to_stretch_a_cosine_schedule(capsys, blocks, tmp_path):
    """A cosine's length is the run's epochs; resumed to more, the run would match no
    uninterrupted one, so only the run's own --epochs is accepted."""
    assert train(capsys, blocks, tmp_path / "run", "--schedule", "cosine", "--quiet").code == 0
    before = (tmp_path / "run" / "summary.json").read_bytes()
    assert_one_error_line(nablanet(capsys, "train", "--resume", tmp_path / "run", "--epochs", 4,
                                   "--quiet"),
                          r"keeps the run's cosine schedule, which decays η over its 2 epochs; "
                          r"--epochs 4 would change it mid-run")
    assert (tmp_path / "run" / "summary.json").read_bytes() == before
    assert_one_error_line(nablanet(capsys, "train", "--resume", tmp_path / "run", "--epochs", 2,
                                   "--quiet"), "already trained 2 of 2 epochs")


def test_a_run_names_its_data_by_absolute_path_so_it_works_from_any_folder(
        capsys, blocks, tmp_path, monkeypatch):
    import shutil
    (tmp_path / "here").mkdir()
    shutil.copytree(blocks, tmp_path / "here" / "data")
    monkeypatch.chdir(tmp_path / "here")
    result = nablanet(capsys, "train", "--dataset", "data", "--data-dir", "mnist-files",
                      "--validation-size", 50, "--hidden", 20, "--epochs", 1, "--out", "run",
                      "--quiet")
    assert result.code == 0, result.err
    stored = RunDir(tmp_path / "here" / "run").read_config()
    assert stored.dataset == str(tmp_path / "here" / "data")
    assert stored.data_dir == str(tmp_path / "here" / "mnist-files")
    monkeypatch.chdir(tmp_path)                       # elsewhere: the run still finds its data
    evaluated = nablanet(capsys, "evaluate", "here/run")
    assert evaluated.code == 0, evaluated.err
    resumed = nablanet(capsys, "train", "--resume", "here/run", "--epochs", 2, "--quiet")
    assert resumed.code == 0, resumed.err


def test_a_runs_data_path_holds_no_dot_dot_that_a_removed_folder_would_break(
        capsys, blocks, tmp_path, monkeypatch):
    # "went-away/../data" was stored as it was, and failed once went-away was removed.
    import shutil
    shutil.copytree(blocks, tmp_path / "data")
    (tmp_path / "went-away").mkdir()
    monkeypatch.chdir(tmp_path / "went-away")
    result = nablanet(capsys, "train", "--dataset", "../data", "--validation-size", 50,
                      "--hidden", 20, "--epochs", 1, "--out", tmp_path / "run", "--quiet")
    assert result.code == 0, result.err
    assert RunDir(tmp_path / "run").read_config().dataset == str(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "went-away").rmdir()
    evaluated = nablanet(capsys, "evaluate", tmp_path / "run", "--quiet")
    assert evaluated.code == 0, evaluated.err
