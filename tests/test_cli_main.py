"""The ``nablanet`` entry point: version, dispatch, one-line errors, missing subcommands."""
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import nablanet
from nablanet.cli import main as cli_main
from nablanet.errors import DataError
from test_cli_data import assert_one_error_line, nablanet as run_cli, write_blocks_idx


def test_version(capsys):
    result = run_cli(capsys, "--version")
    assert result.code == 0 and result.out.strip() == f"nablanet {nablanet.__version__}"


def test_python_dash_m_nablanet_runs_the_cli():
    # `python -m nablanet` is what works without the installed script (a checkout on
    # PYTHONPATH, a venv whose bin/ is not on PATH).
    src = str(Path(nablanet.__file__).parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "nablanet", "--version"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"nablanet {nablanet.__version__}"


def test_help_lists_every_installed_command(capsys):
    result = run_cli(capsys, "--help")
    assert result.code == 0
    for name in cli_main.command_modules():
        assert name in result.out
    assert {"train", "evaluate", "predict", "reproduce"} <= set(cli_main.command_modules())


def test_no_command_is_a_usage_error(capsys):
    assert_one_error_line(run_cli(capsys), r"required: COMMAND")


def test_unknown_command(capsys):
    assert_one_error_line(run_cli(capsys, "fly"), r"invalid choice: 'fly'")


def test_a_missing_command_module_is_skipped_but_a_missing_dependency_is_not(monkeypatch):
    real = importlib.import_module

    def without(missing):
        def fake(name, *args):
            if name == missing:
                raise ModuleNotFoundError(f"No module named {missing!r}", name=missing)
            return real(name, *args)
        return fake

    monkeypatch.setattr(importlib, "import_module", without("nablanet.cli.demo"))
    assert "demo" not in cli_main.command_modules()
    assert "train" in cli_main.command_modules()

    def broken(name, *args):
        if name == "nablanet.cli.predict":
            raise ModuleNotFoundError("No module named 'somedep'", name="somedep")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", broken)
    with pytest.raises(ModuleNotFoundError, match="somedep"):
        cli_main.command_modules()


def test_errors_become_one_line_and_exit_status_2(capsys, monkeypatch):
    train = importlib.import_module("nablanet.cli.train")

    def fails(args):
        raise DataError("first line\nsecond line")

    monkeypatch.setattr(train, "run", fails)
    assert_one_error_line(run_cli(capsys, "train"), r"^nablanet: error: first line second line$")


def test_running_out_of_memory_is_one_line(capsys, monkeypatch):
    train = importlib.import_module("nablanet.cli.train")

    def fails(args):
        raise MemoryError("Unable to allocate 570. TiB for an array with shape (784, 10**11)")

    monkeypatch.setattr(train, "run", fails)
    assert_one_error_line(run_cli(capsys, "train"), r"^nablanet: error: out of memory: Unable to "
                                                    r"allocate 570. TiB")


def test_an_unwritable_run_directory_is_an_os_error_line(capsys, tmp_path):
    (tmp_path / "file").write_text("")
    result = run_cli(capsys, "train", "--out", tmp_path / "file" / "run", "--quiet")
    assert_one_error_line(result, r"exists and is not a directory|Not a directory")


def test_a_file_that_cannot_be_written_is_named_as_given_not_as_its_temporary(capsys,
                                                                             tmp_path):
    # The error named the atomic write's temporary file: ".sub.4242.6fceb91a.tmp: Is a
    # directory" for an --out that is a folder.
    from nablanet.utils.atomic import atomic_write_bytes

    folder, missing = tmp_path / "sub", tmp_path / "no" / "x.png"
    folder.mkdir()
    for path in (folder, missing):
        with pytest.raises(OSError) as info:
            atomic_write_bytes(path, b"x")
        assert (info.value.filename, info.value.filename2) == (str(path), None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]        # no temporary left
    blocks = write_blocks_idx(tmp_path / "blocks", n_train=30, n_test=10)
    assert_one_error_line(run_cli(capsys, "augment", "--show", folder, "--kind", "shifts",
                                  "--dataset", blocks, "--validation-size", 10),
                          f"^nablanet: error: {re.escape(str(folder))}: Is a directory$")


def test_interrupt_exits_130(capsys, monkeypatch):
    train = importlib.import_module("nablanet.cli.train")

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "run", interrupted)
    result = run_cli(capsys, "train")
    assert result.code == 130 and result.err == "nablanet: interrupted\n"


def test_sigterm_while_training_is_handled_as_an_interrupt():
    import os
    import signal
    import time

    from nablanet.cli.train import terminate_as_interrupt

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        with terminate_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)                        # the handler raises long before this ends
    assert signal.getsignal(signal.SIGTERM) is before


def test_the_shared_argument_types_take_their_edge_values_and_refuse_the_next():
    import argparse

    from nablanet.cli.common import int_list, non_negative_int, positive_int, thread_setting

    accepted = [(positive_int, "1", 1), (non_negative_int, "0", 0), (int_list, "784,30", [784, 30]),
                (int_list, " ", []), (thread_setting, "0", 0), (thread_setting, "auto", "auto")]
    for parse, text, value in accepted:
        assert parse(text) == value, (parse.__name__, text)
    for parse, text in [(positive_int, "0"), (positive_int, "1.5"), (non_negative_int, "-1"),
                        (int_list, "784,,10"), (thread_setting, "-1"), (thread_setting, "all")]:
        with pytest.raises(argparse.ArgumentTypeError, match=f"got '{re.escape(text)}'"):
            parse(text)


@pytest.mark.parametrize("command", ["evaluate", "compare", "ensemble"])
def test_split_is_test_validation_or_train(capsys, tmp_path, command):
    parser = cli_main.build_parser(cli_main.command_modules())
    for split in ("test", "validation", "train"):
        assert parser.parse_args([command, "run", "--split", split]).split == split
    assert parser.parse_args([command, "run"]).split == "test"
    result = run_cli(capsys, command, tmp_path / "run", "--split", "dev")
    assert_one_error_line(result, r"argument --split: invalid choice: 'dev'")


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "reproduce"])
def test_every_command_has_help(capsys, command):
    result = run_cli(capsys, command, "--help")
    assert result.code == 0 and result.out.startswith(f"usage: nablanet {command}")


#: flags that keep a run short should the flag under test ever be accepted again
_SMALL = ["--epochs", "1", "--fine-tune-epochs", "1", "--test-size", "50", "--ais-betas", "10",
          "--sizes", "784", "8", "8", "12"]


@pytest.mark.parametrize("argv, flag", [
    (["train", "--preset", "nielsen-ch6-fc", "--seed", "-1"], "--seed"),
    (["pretrain", "--preset", "rbm", "--out", "{out}", "--seed", "-1"], "--seed"),
    (["pretrain", "--preset", "dbn", "--out", "{out}", *_SMALL, "--train-size", "-5"],
     "--train-size"),
    (["pretrain", "--preset", "dbn-generative", "--out", "{out}", *_SMALL, "--train-size", "100",
      "--per-class", "0"], "--per-class"),
    (["pretrain", "--preset", "dbn", "--out", "{out}", *_SMALL, "--train-size", "100",
      "--fine-tune-epochs", "-1"], "--fine-tune-epochs"),
    (["demo", "xor", "--out", "{out}", "--seed", "-1"], "--seed"),
    (["augment", "--show", "{out}/grid.png", "--seed", "-1"], "--seed"),
    (["generate", "{out}", "--label", "1", "--seed", "-1"], "--seed"),
    (["reproduce", "hinton-2006", "--out", "{out}", "--only", "dbn", *_SMALL[:6],
      "--train-size", "-5"], "--train-size"),
    (["reproduce", "lenet5", "--out", "{out}", "--epochs", "0", "--train-size", "64"],
     "--epochs"),
])
def test_negative_seeds_and_counts_are_usage_errors(capsys, tmp_path, argv, flag):
    # A negative seed reached NumPy's default_rng as a traceback; a negative --train-size
    # sliced from the end of the data; --per-class 0 failed deep in a reduction.
    out = tmp_path / "run"
    result = run_cli(capsys, *[a.format(out=out) for a in argv])
    assert_one_error_line(result, rf"argument {flag}: expected an integer ≥ [01]")
    assert not out.exists()


@pytest.mark.parametrize("command", cli_main.COMMANDS)
def test_help_is_plain_text_and_explains_every_flag(capsys, command):
    # Descriptions taken from docstrings showed ``literals`` and :mod:`roles`; flags such
    # as --seed and --split had no help at all.
    result = run_cli(capsys, command, "--help")
    assert result.code == 0
    assert "``" not in result.out and not re.search(r":[a-z]+:`", result.out), result.out
    parser = cli_main.build_parser(cli_main.command_modules())
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    silent = [a.option_strings[0] for a in sub._actions if a.option_strings and not a.help]
    assert not silent, f"{command}: no help for {silent}"


def test_reproduce_help_describes_every_table(capsys):
    out = run_cli(capsys, "reproduce", "--help").out
    description = out.split("positional arguments")[0]
    for table in ("nielsen-ch3", "nielsen-ch6", "lenet5", "hinton-2006"):
        assert f"{table}:" in description, description


def test_wording_counts_and_plain_help():
    from nablanet.utils.wording import plain, plural
    assert (plural(1, "epoch"), plural(0, "epoch"), plural(30, "epoch")) == \
        ("1 epoch", "0 epochs", "30 epochs")
    assert plain("see ``--out`` and :func:`~nablanet.mlp`") == "see --out and nablanet.mlp"


@pytest.mark.parametrize("module", ["cnn_reproduce", "rnn_reproduce", "rbm_reproduce"])
def test_preset_entry_points_speak_like_the_cli(module, capsys):
    # Their --help showed raw ``markup``; a usage error is one line, exit 2.
    main = importlib.import_module(f"nablanet.presets.{module}")
    entry = getattr(main, "main", None) or main.parse_args
    with pytest.raises(SystemExit) as info:
        entry(["--help"])
    assert info.value.code == 0 and "``" not in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        entry(["--no-such-flag"])
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1 and err[0].startswith("nablanet: error:")


def test_a_commands_exit_status_is_mains(monkeypatch):
    # reproduce --check and train's divergence return 1: main must pass it on
    from nablanet.cli import evaluate

    for returned, status in ((1, 1), (None, 0)):
        monkeypatch.setattr(evaluate, "run", lambda args: returned)
        assert cli_main.main(["evaluate", "somewhere"]) == status
