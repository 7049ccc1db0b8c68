"""Training data from the user's own files: an .npz archive or a folder of CSV files."""
import numpy as np
import pytest

from nablanet.config import load_splits
from nablanet.data import load_train_test
from nablanet.errors import DataError


def _images(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 4, 4), dtype=np.uint8), rng.integers(0, 3, n)


def test_npz_archive_in_keras_layout_is_flattened_and_scaled(tmp_path):
    (xtr, ytr), (xte, yte) = _images(30, 0), _images(10, 1)
    np.savez(tmp_path / "d.npz", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    train, test = load_train_test(tmp_path / "d.npz")
    assert train.x.shape == (30, 16) and test.x.shape == (10, 16)
    np.testing.assert_allclose(train.x, xtr.reshape(30, 16) / 255, rtol=1e-6)
    assert train.y.dtype == np.int64 and list(test.y) == list(yte)


def test_npz_archive_with_an_upper_case_extension(tmp_path):
    (xtr, ytr), (xte, yte) = _images(6, 0), _images(4, 1)
    np.savez(tmp_path / "d.npz", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    (tmp_path / "d.npz").rename(tmp_path / "D.NPZ")
    assert len(load_train_test(tmp_path / "D.NPZ")[0]) == 6


def test_npz_archive_with_one_dimensional_x_is_refused(tmp_path):
    """A vector per split is not n examples of features: no guess at its shape."""
    y = np.zeros(5, int)
    np.savez(tmp_path / "d.npz", x_train=np.ones(5), y_train=y, x_test=np.ones(5), y_test=y)
    with pytest.raises(DataError, match="x must be 2-D"):
        load_train_test(tmp_path / "d.npz")


def test_npz_missing_array_is_named(tmp_path):
    x, y = _images(5, 0)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x)
    with pytest.raises(DataError, match="missing arrays y_test"):
        load_train_test(tmp_path / "d.npz")


def test_csv_folder_gives_splits_with_a_validation_hold_out(tmp_path):
    rng = np.random.default_rng(0)
    for part, n in (("train", 40), ("test", 12)):
        table = np.column_stack([rng.random((n, 3)), rng.integers(0, 2, n)])
        np.savetxt(tmp_path / f"{part}.csv", table, delimiter=",", header="a,b,c,label",
                   comments="")
    splits = load_splits(str(tmp_path), validation_size=10)
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (30, 10, 12)
    assert splits.train.x.dtype == np.float32 and splits.train.x.shape[1] == 3


def test_neither_npz_nor_csv_folder_is_a_clear_error(tmp_path):
    (tmp_path / "d.txt").write_text("1,2\n")
    with pytest.raises(DataError, match="expected an .npz archive"):
        load_train_test(tmp_path / "d.txt")


def test_test_set_with_another_width_is_refused_before_training(tmp_path):
    (xtr, ytr), (xte, yte) = _images(30, 0), _images(10, 1)
    np.savez(tmp_path / "d.npz", x_train=xtr, y_train=ytr, x_test=xte[:, :3], y_test=yte)
    with pytest.raises(DataError, match="d.npz: test examples have 12 features but training "
                                        "examples have 16"):
        load_splits(str(tmp_path / "d.npz"), validation_size=5)


@pytest.mark.parametrize("name, problem", [("absent", "no such file or folder"),
                                           ("x.npy", "not a folder or an .npz archive")])
def test_a_dataset_path_that_names_no_data_set(tmp_path, name, problem):
    np.save(tmp_path / "x.npy", np.zeros((2, 3)))
    with pytest.raises(DataError, match=f"{name}: {problem} \\(a data set is 'mnist'"):
        load_splits(str(tmp_path / name))
