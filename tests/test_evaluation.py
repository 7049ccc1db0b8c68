"""Confusion matrix, per-class and top-k accuracy, McNemar's test, and the two PNGs."""
import numpy as np
import pytest

from nablanet import ConfigError, DataError
from nablanet.evaluation import (compare, confusion_matrix, format_confusion_matrix,
                                 mcnemar_table, mcnemar_test, per_class_accuracy,
                                 plot_confusion_matrix, plot_misclassified, top_k_accuracy)


def test_confusion_matrix_counts_true_rows_against_predicted_columns():
    cm = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], n_classes=4)
    np.testing.assert_array_equal(cm, [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]])
    acc = per_class_accuracy(cm)
    np.testing.assert_allclose(acc[:3], [0.5, 1.0, 2 / 3])
    assert np.isnan(acc[3])                                   # no examples of class 3
    text = format_confusion_matrix(cm)
    assert "66.67%" in text and len(text.splitlines()) == 5


@pytest.mark.parametrize("y_true, y_pred", [([0, 3], [0, 1]), ([0, 1], [3, 1])],
                         ids=["true", "predicted"])
def test_a_label_equal_to_n_classes_is_a_data_error(y_true, y_pred):
    # label K would land in the next row of the flattened K×K counts, silently
    with pytest.raises(DataError, match="labels must be below n_classes=3"):
        confusion_matrix(y_true, y_pred, n_classes=3)


@pytest.mark.parametrize("labels", [[0, -1, 2], [0.0, 1.0, 2.0], [[0, 1, 2]]],
                         ids=["negative", "float", "2-D"])
def test_labels_must_be_1d_non_negative_integers(labels):
    with pytest.raises(DataError, match="y_true must be 1-D non-negative integer class labels"):
        confusion_matrix(labels, [0, 1, 2], n_classes=3)


def test_confusion_matrix_size_comes_from_the_largest_label_of_either_vector():
    # the predictions name class 3, which no true label does: a 4 × 4 matrix
    np.testing.assert_array_equal(confusion_matrix([0, 1], [3, 1]),
                                  [[0, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    with pytest.raises(DataError, match="y_true has 2 labels but y_pred has 1"):
        confusion_matrix([0, 1], [0])


def test_confusion_matrix_text_keeps_wide_counts_in_their_columns():
    cm = np.array([[123456, 7], [89, 1000000]])
    rows = format_confusion_matrix(cm).splitlines()
    assert len({len(row) for row in rows}) == 1                  # aligned
    assert rows[1].split() == ["0", "123456", "7", "99.99%"]
    assert rows[2].split() == ["1", "89", "1000000", "99.99%"]


def test_confusion_matrix_matches_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 10, 500), rng.integers(0, 10, 500)
    np.testing.assert_array_equal(confusion_matrix(y, p, 10),
                                  metrics.confusion_matrix(y, p, labels=range(10)))


def test_top_k_accuracy():
    scores = np.array([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1], [0.2, 0.3, 0.5]])
    y = np.array([2, 0, 0])
    assert top_k_accuracy(scores, y, 1) == pytest.approx(1 / 3)
    assert top_k_accuracy(scores, y, 2) == pytest.approx(2 / 3)
    assert top_k_accuracy(scores, y, 3) == 1.0
    for k in (0, 4):
        with pytest.raises(DataError, match="k must be"):
            top_k_accuracy(scores, y, k)
    with pytest.raises(DataError, match="scores must be"):
        top_k_accuracy(scores, y[:2], 1)
    assert np.isnan(top_k_accuracy(np.zeros((0, 3)), np.zeros(0, int), 1))   # no examples


# -- McNemar: the lecture's two tables ------------------------------------------------------------
# Rows: A wrong / A right; columns: B wrong / B right. In both tables A makes 30 errors and
# B 40 of 10 000 (0.30% against 0.40%): whether that is a real difference depends on how
# the errors overlap.

def test_lecture_table_one_is_significant():
    result = mcnemar_test([[29, 1], [11, 9959]])
    assert result.table[0].sum() == 30 and result.table[:, 0].sum() == 40
    assert result.only_b_right == 1 and result.only_a_right == 11
    assert result.p_exact == pytest.approx(0.006, abs=0.0005)    # 2·13/2¹² = 0.00635
    assert result.p_exact == pytest.approx(26 / 4096)
    assert result.chi2 == pytest.approx((11 - 1 - 1) ** 2 / 12)
    assert result.significant


def test_lecture_table_two_is_not_significant():
    result = mcnemar_test([[15, 15], [25, 9945]])
    assert result.table[0].sum() == 30 and result.table[:, 0].sum() == 40
    assert result.p_exact == pytest.approx(0.15, abs=0.01)
    assert result.chi2 == pytest.approx(81 / 40)
    assert result.p_chi2 == pytest.approx(0.1547, abs=1e-3)
    assert not result.significant
    assert "not significant" in result.summary()


def test_significance_is_the_exact_tests_verdict_at_a_strict_alpha():
    # table one: exact p = 0.00635, χ² p = 0.0094; at α = 0.008 only the exact test rejects
    assert mcnemar_test([[29, 1], [11, 9959]], alpha=0.008).significant
    # 0 against 5 disagreements: p = 2/2⁵ = 0.0625 exactly, not below α = 0.0625
    result = mcnemar_test([[10, 0], [5, 10]], alpha=0.0625)
    assert result.p_exact == 0.0625 and not result.significant


def test_equal_disagreements_give_chi2_zero_not_the_overcorrected_one_over_n():
    result = mcnemar_test([[5, 3], [3, 5]])
    assert result.chi2 == 0.0 and result.p_chi2 == 1.0 and result.p_exact == 1.0


def test_summary_names_each_classifiers_error_count():
    summary = mcnemar_test([[29, 1], [11, 9959]]).summary(("ours", "theirs"))
    assert "ours 30 errors, theirs 40 errors of 10000" in summary
    assert "only ours right 11, only theirs right 1" in summary
    assert "→ significant" in summary


def test_mcnemar_from_predictions():
    y = np.zeros(100, dtype=int)
    a = y.copy()
    b = y.copy()
    a[:3] = 1                                # A wrong on 0..2
    b[2:20] = 1                              # B wrong on 2..19
    table = mcnemar_table(a == y, b == y)
    np.testing.assert_array_equal(table, [[1, 2], [17, 80]])
    result = compare(y, a, b)
    np.testing.assert_array_equal(result.table, table)
    assert result.significant                # 2 against 17 disagreements
    assert compare(y, a, a).p_exact == 1.0   # identical classifiers: no evidence
    assert compare(y, a, b, alpha=0.0001).alpha == 0.0001
    assert not compare(y, a, b, alpha=0.0001).significant
    # every example in one cell: still a 2 × 2 table
    np.testing.assert_array_equal(mcnemar_table([False, False], [False, False]),
                                  [[2, 0], [0, 0]])


def test_mcnemar_bad_input():
    with pytest.raises(DataError, match="2×2"):
        mcnemar_test([[1, 2, 3], [4, 5, 6]])
    with pytest.raises(DataError, match="same examples"):
        mcnemar_table([True, False], [True])
    with pytest.raises(DataError, match="same examples"):
        mcnemar_table([[True, False]], [[True, True]])
    with pytest.raises(DataError, match="2×2 table of counts"):
        mcnemar_test([[1, -2], [3, 4]])


@pytest.mark.parametrize("alpha", [0, -0.05, 1, 2, float("nan")])
def test_mcnemar_alpha_must_be_a_probability(alpha):
    with pytest.raises(ConfigError, match=r"alpha \(the significance level\) must be in \(0, 1\)"):
        mcnemar_test([[1, 2], [3, 4]], alpha)


# -- pictures -------------------------------------------------------------------------------------

def test_pngs_are_written(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 50)
    scores = rng.random((50, 10))
    cm = confusion_matrix(y, scores.argmax(1), 10)
    path = plot_confusion_matrix(cm, tmp_path / "confusion.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    grid = plot_misclassified(rng.random((50, 784)), y, scores, tmp_path / "sub" / "wrong.png",
                              max_images=12)
    assert grid.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*tmp"))                   # atomic: no temporary left


@pytest.fixture
def figures(monkeypatch):
    """The matplotlib figures the plotting functions draw, kept for inspection."""
    from nablanet import plots
    drawn, make = [], plots._figure

    def keep():
        drawn.append(make())
        return drawn[-1]

    monkeypatch.setattr(plots, "_figure", keep)
    return drawn


def test_misclassified_grid_shows_the_wrong_ones_with_their_two_top_guesses(tmp_path, figures):
    scores = np.array([[0.1, 0.7, 0.2],      # true 1: right
                       [0.5, 0.2, 0.3],      # true 2: guessed 0, then 2
                       [0.1, 0.3, 0.6],      # true 2: right
                       [0.2, 0.5, 0.3],      # true 0: guessed 1, then 2
                       [0.6, 0.1, 0.3]])     # true 1: guessed 0, then 2
    y = np.array([1, 2, 2, 0, 1])
    plot_misclassified(np.zeros((5, 4)), y, scores, tmp_path / "w.png", image_shape=(2, 2),
                       max_images=2)
    shown = [(axes.get_title(), axes.texts[0].get_text()) for axes in figures[0].axes]
    assert shown == [("true 2", "0 2"), ("true 0", "1 2")]


def test_confusion_matrix_picture_is_on_a_log_scale(tmp_path, figures):
    cm = np.array([[900, 3], [0, 50]])
    plot_confusion_matrix(cm, tmp_path / "cm.png")
    axes = figures[0].axes[0]
    np.testing.assert_allclose(axes.images[0].get_array(), np.log1p(cm))
    assert sorted(t.get_text() for t in axes.texts) == ["3", "50", "900"]   # zeros unwritten
