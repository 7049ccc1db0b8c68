"""A small synthetic IDX data set for the command-line tests, and a check that it is learnable.

Other ``test_cli*`` files import :func:`write_blocks_idx` from here.
"""
from pathlib import Path

import numpy as np

from nablanet.data import load_idx_dir, write_idx

SIDE = 28


def blocks(n: int, rng, n_classes: int = 10):
    """(images, labels): class c lights its own 7 × 7 block of a 28 × 28 image, plus noise."""
    labels = rng.integers(0, n_classes, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, SIDE, SIDE)).astype(np.uint8)
    for c in range(n_classes):
        r, k = divmod(c, 4)
        images[labels == c, 7 * r:7 * r + 7, 7 * k:7 * k + 7] = 255
    return images, labels


def write_blocks_idx(directory, n_train: int = 300, n_test: int = 100, seed: int = 0,
                     labels_edit=None) -> Path:
    """Write the four standard IDX files of a blocks data set into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    train_x, train_y = blocks(n_train, rng)
    test_x, test_y = blocks(n_test, rng)
    if labels_edit is not None:
        labels_edit(train_y)
    for name, array in (("train-images-idx3-ubyte", train_x), ("train-labels-idx1-ubyte", train_y),
                        ("t10k-images-idx3-ubyte", test_x), ("t10k-labels-idx1-ubyte", test_y)):
        write_idx(directory / f"{name}.gz", array)
    return directory


def test_blocks_data_set_has_every_class_and_mnist_shape(tmp_path):
    train, _, test = load_idx_dir(write_blocks_idx(tmp_path))
    assert train.x.shape == (300, 784) and test.x.shape == (100, 784)
    assert set(train.y) == set(range(10))
    assert 0 <= train.x.min() and train.x.max() == 1.0


class Result:
    """What one in-process ``nablanet`` call returned and printed."""

    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("nablanet: error:")]


def nablanet(capsys, *argv) -> Result:
    """Run ``nablanet ARGV`` in this process (``main``), capturing its output."""
    from nablanet.cli.main import main

    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return Result(code, out, err)


def assert_one_error_line(result: Result, match: str) -> None:
    """Exit status 2 and the whole of stderr one ``nablanet: error:`` line containing ``match``."""
    import re

    assert result.code == 2, result.err
    assert result.err.count("\n") == 1 and len(result.error_lines) == 1, result.err
    assert re.search(match, result.error_lines[0]), result.error_lines[0]


def flag_help(command: str, flag: str) -> str:
    """The help text of ``flag`` in ``nablanet COMMAND --help`` (unwrapped)."""
    from nablanet.cli.main import build_parser, command_modules

    parser = build_parser(command_modules())
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return next(a.help for a in sub._actions if flag in a.option_strings)
