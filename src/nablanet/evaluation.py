"""How good is a classifier, and is it really better than another one?

* :func:`confusion_matrix` — counts of (true class, predicted class); the diagonal
  holds the right answers. :func:`per_class_accuracy` reads each row's share on the
  diagonal; :func:`top_k_accuracy` counts an answer right when the true class is
  among the k highest outputs.
* McNemar's test for two classifiers A and B scored on the SAME test examples.
  Only the examples they disagree on carry information: with n₀₁ = "A wrong, B
  right" and n₁₀ = "A right, B wrong", under H₀ (equally good) each disagreement is
  a fair coin, n₀₁ ~ Binomial(n₀₁ + n₁₀, ½). :func:`mcnemar_test` gives the exact
  two-sided binomial p-value and the continuity-corrected statistic
  χ² = (|n₀₁ − n₁₀| − 1)² / (n₀₁ + n₁₀) with its χ²(1) p-value. Two classifiers with
  the same error counts can differ significantly or not, depending on how their
  errors overlap (the lecture's two tables).
* PNGs: :func:`plot_confusion_matrix` and :func:`plot_misclassified`, a grid of
  wrongly classified digits labelled with the true class and the two top guesses.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import binomtest, chi2

from .data.dataset import check_label_range, check_values
from .errors import ConfigError, DataError
from .utils.state import number, whole_number


# -- accuracy ------------------------------------------------------------------------------------
def confusion_matrix(y_true, y_pred, n_classes: int | None = None) -> np.ndarray:
    """(K, K) int64 counts: entry [i, j] is how many examples of class i were called j."""
    y_true, y_pred = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if len(y_true) != len(y_pred):
        raise DataError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}")
    # whole_number, not int(): int() cut n_classes=2.5 and read "3"
    k = int(max(y_true.max(initial=-1), y_pred.max(initial=-1)) + 1) if n_classes is None \
        else whole_number(n_classes, "n_classes", 1, error=ConfigError)
    if len(y_true) and max(y_true.max(), y_pred.max()) >= k:
        raise DataError(f"labels must be below n_classes={k}")
    return np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """For each true class, the fraction of its examples classified right (NaN if absent)."""
    cm = _confusion(cm)
    totals = cm.sum(axis=1)
    return np.divide(np.diag(cm), totals, out=np.full(len(cm), np.nan), where=totals > 0)


def top_k_accuracy(scores, y_true, k: int = 1) -> float:
    """Fraction of examples whose true class is among the ``k`` highest scores."""
    scores, y_true = np.asarray(scores), _labels(y_true, "y_true")
    if scores.ndim != 2 or len(scores) != len(y_true):
        raise DataError(f"scores must be (n, K) for n={len(y_true)} labels, got {scores.shape}")
    # a NaN score sorts as the largest, and a label ≥ K simply never matched: 0.0, no error
    check_values(scores, "top_k_accuracy", "scores")
    check_label_range(y_true, scores.shape[1], "top_k_accuracy")
    if not 1 <= whole_number(k, "k", None, error=ConfigError) <= scores.shape[1]:
        raise DataError(f"k must be in [1, {scores.shape[1]}], got {k}")
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return float((top == y_true[:, None]).any(axis=1).mean()) if len(y_true) else float("nan")


def format_confusion_matrix(cm: np.ndarray) -> str:
    """The matrix as text: rows are true classes, columns predictions, with per-class accuracy."""
    cm = _confusion(cm)
    width = max(5, len(str(cm.max())) + 1)
    head = "true\\pred" + "".join(f"{j:>{width}}" for j in range(len(cm))) + "   accuracy"
    rows = [f"{i:>9}" + "".join(f"{v:>{width}}" for v in row) + f"   {acc:8.2%}"
            for i, (row, acc) in enumerate(zip(cm, per_class_accuracy(cm)))]
    return "\n".join([head, *rows])


# -- McNemar ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class McNemarResult:
    """The 2×2 table and both tests. ``table`` is laid out as in the lecture:

                    B wrong   B right
        A wrong   [[ n₀₀,      n₀₁ ],
        A right    [ n₁₀,      n₁₁ ]]
    """

    table: np.ndarray
    p_exact: float          # two-sided binomial test on the n₀₁ + n₁₀ disagreements
    chi2: float             # (|n₀₁ − n₁₀| − 1)² / (n₀₁ + n₁₀)
    p_chi2: float           # P(χ²₁ ≥ chi2)
    alpha: float

    @property
    def only_b_right(self) -> int:
        return int(self.table[0, 1])

    @property
    def only_a_right(self) -> int:
        return int(self.table[1, 0])

    @property
    def significant(self) -> bool:
        """H₀ "A and B are equally accurate" rejected at level α by the exact test."""
        return self.p_exact < self.alpha

    def summary(self, names=("A", "B")) -> str:
        a, b = names
        t = self.table
        errors_a, errors_b = t[0].sum(), t[:, 0].sum()
        verdict = "significant" if self.significant else "not significant"
        return (f"McNemar: {a} {errors_a} errors, {b} {errors_b} errors of {t.sum()}; "
                f"only {a} right {self.only_a_right}, only {b} right {self.only_b_right}\n"
                f"  exact binomial p = {self.p_exact:.4g}; continuity-corrected "
                f"χ² = {self.chi2:.3f}, p = {self.p_chi2:.4g} → {verdict} at α = {self.alpha:g}")


def mcnemar_table(correct_a, correct_b) -> np.ndarray:
    """The 2×2 table of (A right?, B right?) counts, rows A wrong/right, columns B wrong/right."""
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise DataError(f"McNemar needs both classifiers scored on the same examples, got "
                        f"{a.shape} and {b.shape}")
    return np.bincount(2 * a + b, minlength=4).reshape(2, 2)


def check_alpha(alpha: float) -> float:
    """The significance level α as a float in (0, 1), or :class:`ConfigError`."""
    # α ≥ 1 calls every difference significant and α ≤ 0 none: a typo, not a test.
    if not 0 < number(alpha, "alpha", finite=False, error=ConfigError) < 1:   # and NaN
        raise ConfigError(f"alpha (the significance level) must be in (0, 1), got {alpha!r}")
    return float(alpha)


def mcnemar_test(table, alpha: float = 0.05) -> McNemarResult:
    """McNemar's test on a 2×2 table laid out as :func:`mcnemar_table` returns it."""
    alpha = check_alpha(alpha)
    table = np.asarray(table)
    # checked before the cast: int64 cut 2.5 to 2 and turned NaN into -2⁶³
    if (table.shape != (2, 2) or table.dtype.kind not in "iuf" or not np.isfinite(table).all()
            or (table < 0).any() or (table != np.round(table)).any()):
        raise DataError(f"McNemar needs a 2×2 table of counts, got {table.tolist()}")
    table = table.astype(np.int64)
    n01, n10 = int(table[0, 1]), int(table[1, 0])
    n = n01 + n10
    if n == 0:                               # they never disagree: no evidence either way
        return McNemarResult(table, 1.0, 0.0, 1.0, alpha)
    statistic = (abs(n01 - n10) - 1) ** 2 / n if n01 != n10 else 0.0
    return McNemarResult(table, float(binomtest(n01, n, 0.5).pvalue), float(statistic),
                         float(chi2.sf(statistic, df=1)), alpha)


def compare(y_true, pred_a, pred_b, alpha: float = 0.05) -> McNemarResult:
    """McNemar's test for two label vectors predicted for the same test set."""
    y_true, pred_a, pred_b = _labels(y_true, "y_true"), _labels(pred_a, "A"), _labels(pred_b, "B")
    if not len(y_true) == len(pred_a) == len(pred_b):        # NumPy broadcast them, or failed
        raise DataError(f"y_true, A and B must label the same examples, got {len(y_true)}, "
                        f"{len(pred_a)} and {len(pred_b)} labels")
    return mcnemar_test(mcnemar_table(pred_a == y_true, pred_b == y_true), alpha)


# -- pictures ------------------------------------------------------------------------------------
def plot_confusion_matrix(cm: np.ndarray, path: str | os.PathLike, title: str = "") -> Path:
    """A PNG heat map of the confusion matrix with the counts written in."""
    from .plots import _figure
    cm = np.asarray(cm)
    figure = _figure()
    axes = figure.subplots()
    # Log colour scale: the diagonal dwarfs the errors, which are what one looks at.
    axes.imshow(np.log1p(cm), cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        if v:
            axes.text(j, i, str(v), ha="center", va="center", fontsize=7,
                      color="white" if i == j else "black")
    axes.set_xticks(range(len(cm)))
    axes.set_yticks(range(len(cm)))
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(title or f"confusion matrix ({np.trace(cm)} of {cm.sum()} right)")
    return _save(figure, path)


def plot_misclassified(x, y_true, scores, path: str | os.PathLike, *, max_images: int = 60,
                       image_shape=(28, 28), columns: int = 10) -> Path:
    """A PNG grid of misclassified images: 'true t' above, the top two guesses below.

    Like the figure of Ciresan et al.'s remaining errors in the lectures: the guesses
    are ordered, so "4 9" means the net said 4, with 9 its second choice.
    """
    from .plots import _figure
    max_images = whole_number(max_images, "max_images", 0, error=ConfigError)
    columns = whole_number(columns, "columns", 1, error=ConfigError)
    scores, y_true = np.asarray(scores), _labels(y_true, "y_true")
    top2 = np.argsort(-scores, axis=1)[:, :2]
    wrong = np.flatnonzero(top2[:, 0] != y_true)[:max_images]
    rows = max(1, -(-len(wrong) // columns))
    figure = _figure()
    figure.set_size_inches(columns * 0.9, rows * 1.1)
    for k, i in enumerate(wrong):
        axes = figure.add_subplot(rows, columns, k + 1)
        axes.imshow(np.asarray(x[i]).reshape(image_shape), cmap="gray_r")
        axes.set_axis_off()
        axes.set_title(f"true {y_true[i]}", fontsize=7, pad=2)
        axes.text(0.5, -0.12, f"{top2[i, 0]} {top2[i, 1]}", transform=axes.transAxes,
                  ha="center", va="top", fontsize=7, color="tab:red")
    if not len(wrong):
        figure.text(0.5, 0.5, "no misclassified examples", ha="center")
    return _save(figure, path)


def _save(figure, path) -> Path:
    from .utils.atomic import atomic_path
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    return path


def _confusion(cm) -> np.ndarray:
    """``cm`` as a (K, K) matrix of counts ≥ 0, or a DataError (not NumPy's AxisError)."""
    cm = np.asarray(cm)
    if (cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.dtype.kind not in "iuf"
            or not np.isfinite(cm).all() or (cm < 0).any()):
        raise DataError(f"a confusion matrix must be a square (K, K) array of counts ≥ 0, "
                        f"got shape {cm.shape}, dtype {cm.dtype}")
    return cm


def _labels(y, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or (len(y) and (y.dtype.kind not in "iu" or y.min() < 0)):
        raise DataError(f"{name} must be 1-D non-negative integer class labels, got "
                        f"shape {y.shape}, dtype {y.dtype}")
    return y.astype(np.int64, copy=False)
