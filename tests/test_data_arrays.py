"""Dataset checks (validate_dataset) and user files: npy, npz, csv, png."""
import dataclasses

import numpy as np
import pytest

from nablanet.data import (Dataset, check_representable, hold_out_last, load_array,
                           load_labelled_csv, load_train_test, validate_dataset)
from nablanet.data import arrays
from nablanet.errors import ConfigError, DataError


def xy(n=4, d=3):
    return np.arange(n * d, dtype=np.float64).reshape(n, d), np.arange(n) % 2


# --- validate_dataset --------------------------------------------------------------------------

@pytest.mark.parametrize("given, kept", [(np.uint8, np.float32), (np.int64, np.float32),
                                         (np.float16, np.float32), (np.float32, np.float32),
                                         (np.float64, np.float64)])
def test_x_becomes_float32_unless_already_float64(given, kept):
    x, y = xy()
    assert validate_dataset(x.astype(given), y).x.dtype == kept


def test_images_are_flattened_when_n_features_asks():
    data = validate_dataset(np.zeros((2, 28, 28), np.uint8), [1, 2], n_features=784, n_classes=10)
    assert data.x.shape == (2, 784) and len(data) == 2 and data.n_features == 784


def test_wrong_feature_count():
    with pytest.raises(DataError, match="^validation: expected 784 features per example, got 783$"):
        validate_dataset(np.zeros((2, 783)), [0, 1], n_features=784, name="validation")
    with pytest.raises(DataError, match=r"expected 784 features per example, got 900 "
                                        r"\(shape \(2, 30, 30\)\)"):
        validate_dataset(np.zeros((2, 30, 30)), [0, 1], n_features=784)


def test_images_without_n_features_are_not_2d():
    with pytest.raises(DataError, match=r"must be 2-D .* got shape \(2, 28, 28\); pass n_features=784"):
        validate_dataset(np.zeros((2, 28, 28)), [0, 1])


def test_empty():
    with pytest.raises(DataError, match="train: x has 0 examples"):
        validate_dataset(np.zeros((0, 3)), np.zeros(0, int), name="train")


def test_examples_without_features():
    with pytest.raises(DataError, match="x has 0 features per example"):
        validate_dataset(np.zeros((3, 0)), [0, 1, 2])


def test_nan_and_inf_in_x_report_count_and_first_row():
    x, y = xy()
    x[2, 1], x[3, 0], x[3, 2] = np.nan, np.inf, -np.inf
    with pytest.raises(DataError, match=r"x has 3 non-finite values \(NaN or inf\), first in row 2"):
        validate_dataset(x, y)


def test_length_mismatch():
    x, y = xy()
    with pytest.raises(DataError, match="x has 4 examples but y has 3"):
        validate_dataset(x, y[:3])


def test_integral_float_labels_become_int64():
    x, _ = xy()
    assert validate_dataset(x, np.array([0.0, 1.0, 2.0, 1.0])).y.dtype == np.int64


def test_non_integral_labels():
    x, _ = xy()
    with pytest.raises(DataError, match=r"class labels must be integers, got 2.5 at row 2"):
        validate_dataset(x, [0, 1, 2.5, 1])


def test_nan_labels():
    x, _ = xy()
    with pytest.raises(DataError, match=r"y has 1 non-finite values \(NaN or inf\), first in row 1"):
        validate_dataset(x, [0, np.nan, 1, 1])


def test_label_out_of_range_names_value_and_row():
    x, _ = xy()
    with pytest.raises(DataError, match=r"^train: label 10 at row 3 is out of range \[0, 10\)$"):
        validate_dataset(x, [0, 9, 1, 10], n_classes=10, name="train")


def test_negative_labels_are_refused_even_without_n_classes():
    x, _ = xy()
    with pytest.raises(DataError, match="label -1 at row 1 is negative"):
        validate_dataset(x, [0, -1, 1, 1])


@pytest.mark.parametrize("y, match", [
    ([0, 1e30, 1, 1], r"label 1e\+30 at row 1 is out of range"),
    (np.array([0, 2 ** 63 + 5, 1, 1], np.uint64),
     r"label 9223372036854775813 at row 1 is out of range"),
    ([0, 2.0 ** 63, 1, 1], r"label 9.223372036854776e\+18 at row 1 is out of range"),  # wraps too
])
def test_labels_beyond_int64_are_out_of_range_not_negative(y, match):
    # The int64 cast wraps them around to negative numbers.
    with pytest.raises(DataError, match=match):
        validate_dataset(xy()[0], y)


@pytest.mark.parametrize("x, y, what", [([[1, 2], [3]], [0, 1], "x"),
                                        ([[1, 2], [3, 4]], [[0.5], [1, 2]], "y")])
def test_ragged_rows_are_a_data_error(x, y, what):
    with pytest.raises(DataError, match=rf"^train: {what} rows have different lengths"):
        validate_dataset(x, y, name="train")
    with pytest.raises(DataError, match=rf"^train: {what} rows have different lengths"):
        Dataset(x, y, name="train")


def test_regression_targets_are_float_and_checked_for_finiteness():
    x, _ = xy()
    targets = np.ones((4, 2), dtype=np.float64)
    assert validate_dataset(x, targets).y.dtype == np.float64
    targets[3, 1] = np.inf
    with pytest.raises(DataError, match="y has 1 non-finite values"):
        validate_dataset(x, targets)


def test_2d_targets_with_n_classes_are_refused():
    x, _ = xy()
    with pytest.raises(DataError, match=r"n_classes=2 needs 1-D integer labels"):
        validate_dataset(x, np.zeros((4, 2)), n_classes=2)


def test_non_numeric_x():
    with pytest.raises(DataError, match="x must be numeric, got dtype <U1"):
        validate_dataset(np.array([["a"]]), [0])


def test_dataset_is_checked_on_construction_and_frozen():
    with pytest.raises(DataError, match="x must be 2-D"):
        Dataset(np.zeros(3), np.zeros(3, int))
    data = Dataset(*xy())
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.x = np.zeros((1, 1))


def test_hold_out_last_takes_the_last_rows():
    data = Dataset(*xy(n=5))
    train, validation = hold_out_last(data, 2)
    np.testing.assert_array_equal(validation.x, data.x[3:])
    assert (len(train), validation.name) == (3, "validation")
    with pytest.raises(DataError, match="cannot hold out 5 of 5 examples"):
        hold_out_last(data, 5)
    with pytest.raises(DataError, match="cannot hold out -1 of 5 examples"):
        hold_out_last(data, -1)
    assert train.name == "train"
    whole, none = hold_out_last(data, 0, names=("fit", "check"))
    assert none is None and whole.name == "fit" and len(whole) == 5


def test_values_beyond_float32_are_reported_with_their_sign_count_and_first_row():
    x = np.zeros((4, 2))
    x[2, 1], x[3, 0] = -1e300, 1e300
    with pytest.raises(DataError, match=r"^d: x has 2 values beyond the model's float32 range "
                                        r"\(±3.4e\+38\), first in row 2$"):
        check_representable(x, np.float32, "d")
    check_representable(x, np.float64, "d")             # fits
    # float32's largest value itself fits; integers always do
    check_representable(np.array([[np.finfo(np.float32).max]], np.float64), np.float32, "d")
    check_representable(np.array([[2 ** 62]]), np.float32, "d")


def test_boolean_x_is_numeric_and_one_dimensional_x_is_not_flattened():
    assert Dataset(np.array([[True, False]]), [0]).x.dtype == np.float32
    with pytest.raises(DataError, match="x must be 2-D"):
        validate_dataset(np.zeros(3), [0, 1, 0], n_features=3)


def test_label_and_target_types():
    assert Dataset(np.zeros((2, 1)), np.array([True, False])).y.tolist() == [1, 0]
    targets = Dataset(np.zeros((2, 1)), np.array([[1], [2]], np.int64)).y
    assert targets.dtype == np.float32 and targets.tolist() == [[1.0], [2.0]]
    with pytest.raises(DataError, match="class labels must be integers, got dtype <U1"):
        Dataset(np.zeros((2, 1)), np.array(["a", "b"]))
    for y in (np.zeros((2, 1, 1)), np.int64(1)):
        with pytest.raises(DataError, match="y must be 1-D class labels or 2-D targets"):
            Dataset(np.zeros((2, 1)), y)


def test_non_numeric_2d_targets():
    with pytest.raises(DataError, match="y must be numeric, got dtype <U1"):
        Dataset(np.zeros((2, 1)), np.array([["a"], ["b"]]))


# --- npy / npz ---------------------------------------------------------------------------------

def test_npy_round_trip(tmp_path):
    np.save(tmp_path / "a.npy", np.eye(3, dtype=np.float32))
    np.testing.assert_array_equal(load_array(tmp_path / "a.npy"), np.eye(3))


def test_extensions_are_read_whatever_their_case(tmp_path):
    np.save(tmp_path / "a.npy", np.eye(2))
    (tmp_path / "a.npy").rename(tmp_path / "A.NPY")
    np.testing.assert_array_equal(load_array(tmp_path / "A.NPY"), np.eye(2))
    (tmp_path / "t.CSV").write_text("0.5,1\n2,0\n")
    assert load_labelled_csv(tmp_path / "t.CSV").y.tolist() == [1, 0]


def test_an_npz_renamed_npy_is_named_as_such(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.ones(2))
    (tmp_path / "a.npz").rename(tmp_path / "a.npy")
    with pytest.raises(DataError, match="a.npy: is an .npz archive, not a .npy array"):
        load_array(tmp_path / "a.npy")


def test_npy_with_python_objects_is_refused(tmp_path):
    np.save(tmp_path / "evil.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="evil.npy: not a plain numeric .npy array"):
        load_array(tmp_path / "evil.npy")


@pytest.mark.parametrize("content", [b"", b"not numbers at all", b"\x93NUMP"])
def test_a_file_that_is_no_npy_at_all_is_named_so_not_called_pickled(tmp_path, content):
    (tmp_path / "junk.npy").write_bytes(content)
    with pytest.raises(DataError, match=r"junk.npy: not a .npy file \(it does not start with "
                                        r"NumPy's header\)$"):
        load_array(tmp_path / "junk.npy")


def test_npz_prefers_x_then_a_single_array(tmp_path):
    np.savez(tmp_path / "named.npz", x=np.ones(2), y=np.zeros(2))
    np.savez(tmp_path / "single.npz", pixels=np.full(2, 7.0))
    assert load_array(tmp_path / "named.npz").tolist() == [1.0, 1.0]
    assert load_array(tmp_path / "single.npz").tolist() == [7.0, 7.0]


def test_npz_with_several_arrays_and_no_x(tmp_path):
    np.savez(tmp_path / "two.npz", a=np.ones(2), b=np.zeros(2))
    with pytest.raises(DataError, match="two.npz: holds arrays a, b; expected one named 'x'"):
        load_array(tmp_path / "two.npz")


def test_corrupt_npz(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="bad.npz: not a readable .npz"):
        load_array(tmp_path / "bad.npz")


@pytest.mark.parametrize("load, names", [(load_array, ["x"]),
                                         (load_train_test, ["x_train", "y_train", "x_test",
                                                            "y_test"])])
def test_npz_with_damaged_compressed_data(tmp_path, load, names):
    x = np.random.default_rng(0).random((50, 4))
    np.savez_compressed(tmp_path / "c.npz", **dict.fromkeys(names, x))
    data = bytearray((tmp_path / "c.npz").read_bytes())
    data[60:400] = bytes(b ^ 0x55 for b in data[60:400])      # inside the first member's deflate
    (tmp_path / "c.npz").write_bytes(bytes(data))
    with pytest.raises(DataError, match="c.npz: not a readable .npz"):
        load(tmp_path / "c.npz")


def test_unknown_extension_lists_supported(tmp_path):
    (tmp_path / "data.txt").write_text("1,2\n")
    with pytest.raises(DataError, match=r"data.txt: unsupported file type '.txt' \(supported: .csv, .npy, .npz, .png\)"):
        load_array(tmp_path / "data.txt")


def test_a_folder_is_named_as_such(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=r"^\.: is a folder, not a data file$"):
        load_array(".")
    (tmp_path / "x.npy").mkdir()
    with pytest.raises(DataError, match=r"x.npy: is a folder, not a data file$"):
        load_array(tmp_path / "x.npy")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="gone.npy: no such file"):
        load_array(tmp_path / "gone.npy")


# --- csv ---------------------------------------------------------------------------------------

def test_csv_without_and_with_header(tmp_path):
    (tmp_path / "plain.csv").write_text("1,2.5\n3,-4e2\n")
    (tmp_path / "header.csv").write_text("a,b\n1,2\n")
    np.testing.assert_array_equal(load_array(tmp_path / "plain.csv"), [[1, 2.5], [3, -400]])
    np.testing.assert_array_equal(load_array(tmp_path / "header.csv"), [[1, 2]])


def test_csv_single_column_stays_2d(tmp_path):
    (tmp_path / "col.csv").write_text("1\n2\n3\n")
    assert load_array(tmp_path / "col.csv").shape == (3, 1)


def test_csv_non_numeric_cell_reports_row_and_column(tmp_path):
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,oops\n")
    with pytest.raises(DataError, match="bad.csv: non-numeric value 'oops' at row 3, column 2"):
        load_array(tmp_path / "bad.csv")


def test_csv_bad_cell_after_a_blank_line_is_located(tmp_path):
    # loadtxt skips blank lines; so does the scan that locates the problem
    (tmp_path / "gap.csv").write_text("1,2\n\n3,x\n")
    with pytest.raises(DataError, match="gap.csv: non-numeric value 'x' at row 3, column 2"):
        load_array(tmp_path / "gap.csv")


def test_csv_ragged_row(tmp_path):
    (tmp_path / "ragged.csv").write_text("1,2\n3\n")
    with pytest.raises(DataError, match="ragged.csv: row 2 has 1 columns, expected 2"):
        load_array(tmp_path / "ragged.csv")


@pytest.mark.parametrize("text, phrase", [("", "empty CSV file"), ("a,b\n", "no data rows")])
def test_csv_without_data(tmp_path, text, phrase):
    (tmp_path / "empty.csv").write_text(text)
    with pytest.raises(DataError, match=phrase):
        load_array(tmp_path / "empty.csv")


def test_csv_from_a_spreadsheet_byte_order_mark_and_quoted_numbers(tmp_path):
    (tmp_path / "excel.csv").write_text('1,"2.5"\n3,4\n', encoding="utf-8-sig")
    np.testing.assert_array_equal(load_array(tmp_path / "excel.csv"), [[1, 2.5], [3, 4]])


@pytest.mark.parametrize("text, match", [
    ("1,,3\n4,5,6\n", r"^gap.csv: empty cell at row 1, column 2$"),      # not taken as a header
    ("1,2,\n", r"^gap.csv: empty cell at row 1, column 3$"),              # a trailing comma
])
def test_csv_first_row_with_a_missing_value_is_data_not_a_header(tmp_path, text, match):
    (tmp_path / "gap.csv").write_text(text)
    with pytest.raises(DataError, match=match):
        load_array(tmp_path / "gap.csv")


def test_csv_that_is_not_utf8_text(tmp_path):
    (tmp_path / "latin.csv").write_bytes(b"1,2\n3,\xe94\n")
    with pytest.raises(DataError, match=r"^latin.csv: not a UTF-8 text CSV file .*0xE9"):
        load_array(tmp_path / "latin.csv")


def test_labelled_csv_by_index_and_by_name(tmp_path):
    (tmp_path / "d.csv").write_text("label,f1,f2\n1,0.5,0\n0,1.0,2\n")
    by_name = load_labelled_csv(tmp_path / "d.csv", "label")
    by_index = load_labelled_csv(tmp_path / "d.csv", 0, n_classes=2)
    for data in (by_name, by_index):
        assert data.y.tolist() == [1, 0] and data.y.dtype == np.int64
        np.testing.assert_array_equal(data.x, [[0.5, 0], [1.0, 2]])
    assert load_labelled_csv(tmp_path / "d.csv").y.tolist() == [0, 2]   # default: last column
    with pytest.raises(DataError, match="label 2 at row 1 is out of range \\[0, 2\\)"):
        load_labelled_csv(tmp_path / "d.csv", n_classes=2)
    np.save(tmp_path / "d.npy", np.eye(2))
    with pytest.raises(DataError, match="load_labelled_csv reads .csv files, got '.npy'"):
        load_labelled_csv(tmp_path / "d.npy")


def test_labelled_csv_name_errors(tmp_path):
    (tmp_path / "plain.csv").write_text("1,2\n")
    (tmp_path / "named.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="has no header line, so label_column must be an index"):
        load_labelled_csv(tmp_path / "plain.csv", "label")
    with pytest.raises(DataError, match=r"no column named 'label' \(columns: a, b\)"):
        load_labelled_csv(tmp_path / "named.csv", "label")
    with pytest.raises(DataError, match="label_column 5 is out of range for 2 columns"):
        load_labelled_csv(tmp_path / "named.csv", 5)
    assert load_labelled_csv(tmp_path / "named.csv", np.int64(0)).y.tolist() == [1]
    for column in (1.0, True):          # integers only, as for integer settings in a config
        with pytest.raises(ConfigError, match=r"label_column must be a column index \(an integer\) "
                                              r"or a column name, got (1.0|True)"):
            load_labelled_csv(tmp_path / "named.csv", column)


def test_labelled_csv_header_may_hold_numeric_column_names(tmp_path):
    """One name in the first line makes it a header: 'label,0,1' (pixel columns by index)."""
    (tmp_path / "d.CSV").write_text(" label ,0,1\n3,0.5,1\n")
    data = load_labelled_csv(tmp_path / "d.CSV", "label")          # names are stripped
    assert data.y.tolist() == [3]
    np.testing.assert_array_equal(data.x, [[0.5, 1]])


def test_labelled_csv_column_index_just_past_the_end(tmp_path):
    (tmp_path / "d.csv").write_text("1,2\n")
    assert load_labelled_csv(tmp_path / "d.csv", -2).y.tolist() == [1]
    for column in (2, -3):
        with pytest.raises(DataError, match=f"label_column {column} is out of range for 2"):
            load_labelled_csv(tmp_path / "d.csv", column)


def test_labelled_csv_needs_a_feature_column(tmp_path):
    (tmp_path / "labels.csv").write_text("1\n0\n")
    with pytest.raises(DataError, match="labels.csv: needs at least one feature column besides "
                                        "the label column"):
        load_labelled_csv(tmp_path / "labels.csv")


def test_labelled_csv_fractional_label(tmp_path):
    (tmp_path / "d.csv").write_text("0.5,1\n1.5,2.5\n")
    with pytest.raises(DataError, match=r"^d.csv: class labels must be integers, got 2.5 at row 1$"):
        load_labelled_csv(tmp_path / "d.csv")


# --- png ---------------------------------------------------------------------------------------

@pytest.fixture
def Image():
    pytest.importorskip("matplotlib")
    return pytest.importorskip("PIL.Image")


def digit(side):
    """A bright vertical bar on black, like a white '1' in MNIST."""
    image = np.zeros((side, side), dtype=np.uint8)
    image[side // 4: -side // 4, side // 2 - side // 14: side // 2 + side // 14] = 255
    return image


def test_png_28x28_grey_is_kept_as_is(tmp_path, Image):
    Image.fromarray(digit(28)).save(tmp_path / "one.png")
    row = load_array(tmp_path / "one.png")
    assert row.shape == (1, 784) and row.dtype == np.float32
    np.testing.assert_array_equal(row.reshape(28, 28), digit(28) / 255)


def test_png_dark_on_light_rgb_is_inverted_and_resized(tmp_path, Image):
    rgb = np.repeat(255 - digit(112)[..., None], 3, axis=2)      # black bar on white paper
    Image.fromarray(rgb).save(tmp_path / "paper.png")
    image = load_array(tmp_path / "paper.png").reshape(28, 28)
    assert image[0].max() < 0.05 and image[14, 14] > 0.9          # black background, white ink
    assert 0.0 <= image.min() and image.max() <= 1.0


def test_png_strokes_on_transparent_background(tmp_path, Image):
    rgba = np.zeros((28, 28, 4), dtype=np.uint8)                   # black ink, alpha marks it
    rgba[..., 3] = digit(28)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "ink.png")
    np.testing.assert_allclose(load_array(tmp_path / "ink.png").reshape(28, 28), digit(28) / 255)


def test_png_non_square_is_padded_not_squashed(tmp_path, Image):
    wide = np.zeros((28, 56), dtype=np.uint8)
    wide[10:18, 24:32] = 255                                       # an 8 × 8 square blob
    Image.fromarray(wide).save(tmp_path / "wide.png")
    image = load_array(tmp_path / "wide.png").reshape(28, 28)
    rows, cols = np.nonzero(image > 0.5)
    assert abs((rows.max() - rows.min()) - (cols.max() - cols.min())) <= 1
    # padded on both sides: the blob in the middle of the picture stays in the middle
    centre = [(image.sum(axis=1 - axis) * np.arange(28)).sum() / image.sum() for axis in (0, 1)]
    np.testing.assert_allclose(centre, [13.5, 13.5], atol=0.5)


def test_png_grey_with_alpha_is_read_by_its_alpha(tmp_path, Image):
    la = np.zeros((28, 28, 2), dtype=np.uint8)                     # grey + alpha ("LA")
    la[..., 1] = digit(28)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    np.testing.assert_allclose(load_array(tmp_path / "la.png").reshape(28, 28), digit(28) / 255)


@pytest.mark.parametrize("rows, columns, inverted", [
    (0.4, 1.0, True),       # dark top and bottom, white sides: the border is mostly light
    (1.0, 0.2, True),       # the other way round
    (0.7, 0.7, True),       # light grey paper
    (0.3, 0.3, False),
], ids=["sides", "top-bottom", "grey-paper", "dark"])
def test_png_background_is_judged_on_the_whole_border(tmp_path, Image, rows, columns, inverted):
    image = np.zeros((28, 28))
    image[:, [0, -1]] = columns
    image[[0, -1], :] = rows
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(tmp_path / "b.png")
    centre = load_array(tmp_path / "b.png").reshape(28, 28)[14, 14]
    assert centre == (1.0 if inverted else 0.0)


@pytest.mark.parametrize("pixels, message", [
    (np.zeros((28, 28, 5), np.uint8), r"unsupported image shape \(28, 28, 5\)"),
    (np.zeros((2, 28, 28, 3), np.uint8), "unsupported image shape"),
])
def test_png_with_an_unknown_layout_is_a_data_error(tmp_path, monkeypatch, Image, pixels,
                                                    message):
    from matplotlib import image as mpimg
    monkeypatch.setattr(mpimg, "imread", lambda path: pixels)
    Image.fromarray(digit(28)).save(tmp_path / "odd.png")     # a real header: its size is read
    with pytest.raises(DataError, match=message):
        load_array(tmp_path / "odd.png")


def test_png_read_as_16_bit_integers_is_scaled_by_their_own_range(tmp_path, monkeypatch, Image):
    from matplotlib import image as mpimg
    pixels = digit(28).astype(np.uint16) * 257                     # 255 → 65535
    monkeypatch.setattr(mpimg, "imread", lambda path: pixels)
    Image.fromarray(digit(28)).save(tmp_path / "deep.png")    # a real header: its size is read
    np.testing.assert_allclose(load_array(tmp_path / "deep.png").reshape(28, 28),
                               digit(28) / 255)


def test_png_enlarging_is_linear_interpolation(tmp_path, Image):
    """14 → 28: output i reads input i·13/27 (corners aligned); a lone white pixel becomes
    the bilinear tent max(0, 1 − |i·13/27 − 7|) in each direction, with no spline ringing."""
    dot = np.zeros((14, 14), dtype=np.uint8)
    dot[7, 7] = 255
    Image.fromarray(dot).save(tmp_path / "dot.png")
    tent = np.maximum(0, 1 - abs(np.arange(28) * 13 / 27 - 7))
    np.testing.assert_allclose(load_array(tmp_path / "dot.png").reshape(28, 28),
                               np.outer(tent, tent), atol=1e-6)


def test_png_colour_becomes_luminance(tmp_path, Image):
    rgb = np.zeros((28, 28, 3), dtype=np.uint8)
    rgb[7:21, 12:16, 0] = 255                                      # a pure red bar on black
    Image.fromarray(rgb).save(tmp_path / "red.png")
    image = load_array(tmp_path / "red.png").reshape(28, 28)
    assert image[14, 14] == pytest.approx(0.299, abs=1e-6)        # ITU-R 601 weight of red


def test_png_shrinking_keeps_strokes_thinner_than_the_factor(tmp_path, Image):
    # 112 → 28 reads every ~4th pixel: column 55 lies between two samples, so a 1-pixel
    # stroke there vanishes unless the image is blurred before shrinking
    thin = np.zeros((112, 112), dtype=np.uint8)
    thin[20:92, 55] = 255
    Image.fromarray(thin).save(tmp_path / "thin.png")
    image = load_array(tmp_path / "thin.png").reshape(28, 28)
    assert image.max() > 0.1
    assert image.sum() * 16 == pytest.approx(72, rel=0.25)         # its ink, spread out


def test_not_a_png(tmp_path, Image):
    (tmp_path / "fake.png").write_bytes(b"definitely not an image")
    with pytest.raises(DataError, match="fake.png: not a readable PNG image"):
        load_array(tmp_path / "fake.png")


def test_half_precision_labels_are_checked_without_a_warning():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # the 2⁶³ bound cast to float16 overflowed
        d = Dataset(np.zeros((3, 2), np.float32), np.array([0, 1, 2], np.float16))
    np.testing.assert_array_equal(d.y, [0, 1, 2])
    big = np.array([2 ** 63 - 1], np.uint64)   # fits int64: not out of range
    assert Dataset(np.zeros((1, 2), np.float32), big).y[0] == 2 ** 63 - 1


@pytest.mark.parametrize("height, width", [(2240, 2240), (28, 8000), (3000, 1000)])
def test_png_large_pictures_are_box_shrunk_before_the_blur(tmp_path, Image, monkeypatch,
                                                            height, width):
    """A phone photo is shrunk by block means first: blurring it at full size took 8 s at
    4096 × 4096, and a 28 × 8000 strip, padded to 8000 × 8000, a minute."""
    from scipy import ndimage
    blurred = []
    gaussian_filter = ndimage.gaussian_filter
    monkeypatch.setattr(ndimage, "gaussian_filter",
                        lambda a, **kw: blurred.append(a.shape) or gaussian_filter(a, **kw))
    picture = np.zeros((height, width), dtype=np.uint8)
    picture[height // 4: -(height // 4) or None, width // 2 - width // 14: width // 2 + width // 14] = 255
    Image.fromarray(picture).save(tmp_path / "big.png")
    image = load_array(tmp_path / "big.png").reshape(28, 28)
    assert blurred and all(max(shape) <= 8 * 28 for shape in blurred)
    assert 0.0 <= image.min() and image.max() <= 1.0
    # as the same picture drawn 8 times smaller, resized without the box step
    small = np.asarray(Image.fromarray(picture).resize((max(1, width // 8), max(1, height // 8)),
                                                       Image.BOX), dtype=float) / 255
    monkeypatch.setattr(arrays, "SHRINK_FIRST_ABOVE", 10 ** 9)
    np.testing.assert_allclose(image, arrays._resize_square(small, 28), atol=0.2)
    assert abs(image.sum() - arrays._resize_square(small, 28).sum()) < 0.05 * image.sum() + 0.5
