"""One-layer nets: linear regression, the perceptron, ADALINE, logistic and softmax regression.

Each model is a single layer of weights, kept in a :class:`~nablanet.net.Sequential`
(``net_``: a Dense layer, plus the output activation where there is one), so a fitted
model can be saved, loaded and evaluated like any other net. The estimators follow
scikit-learn's conventions: constructor arguments stored as given, ``fit(x, y)``
returns the model, fitted state in attributes ending in ``_``.

Learning rules, in the lectures' words:

* linear regression — least squares, C = 1/2n Σ (y − o)²: the normal equations
  XᵀX w = Xᵀy solved by a least-squares solver, batch gradient descent, or the delta
  rule w ← w + η (y − o) x one example at a time (SGD);
* perceptron (Rosenblatt) — o = step(w·x + b); on a mistake w ← w + η (t − o) x; stop
  after an epoch with no mistake;
* ADALINE (Widrow & Hoff 1960) — the delta rule on the *linear* output for targets ±1,
  classifying by the sign of w·x + b (the least-mean-squares rule);
* logistic regression — sigmoid units with the cross-entropy cost (one unit per class
  beyond two: one-vs-rest), softmax regression — a softmax layer with the
  log-likelihood cost; both with L2 weight decay λ/2n Σw², fitted by L-BFGS on the
  full batch or by mini-batch SGD.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from ..backend import get_backend, make_rng
from ..data.dataset import Dataset
from ..errors import ConfigError, DataError
from ..layers import Dense, Sigmoid, Softmax
from ..net import Sequential
from ..optim import Objective, minimize
from ..optimizers import SGD
from ..regularizers import L2
from ..training import StepDecay, Trainer
from ..utils.state import number, whole_number

_F64 = "float64"


def _as_design(x, y=None, *, name: str = "data"):
    """(x as an n × d float64 matrix, y as an array) after the checks every model needs.

    A 1-D x is one feature per example (the lecture's fish lengths). x's shape and
    finiteness are checked by :class:`Dataset`, so the messages match the rest of the
    library; y may hold any labels (−1/+1, strings) or float targets.
    """
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[:, None]
    if x.dtype.kind in "iub":
        x = x.astype(np.float64)
    x = Dataset(x, np.zeros((len(x) if x.ndim else 0, 1)), name).x.astype(np.float64, copy=False)
    if y is None:
        return x
    y = np.asarray(y)
    if y.ndim == 0 or len(y) != len(x):
        raise DataError(f"{name}: x has {len(x)} examples but y has "
                        f"{'no length' if y.ndim == 0 else len(y)}")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        bad = ~np.isfinite(y).reshape(len(y), -1).all(axis=1)
        raise DataError(f"{name}: y has {int((~np.isfinite(y)).sum())} non-finite values "
                        f"(NaN or inf), first in row {int(np.argmax(bad))}")
    return x, y


def _l2(value) -> float:
    """λ ≥ 0 (NaN would pass ``λ < 0`` and make every weight NaN)."""
    return number(value, "l2", non_negative=True, error=ConfigError)


def _classes(y, who: str):
    """``np.unique(y, return_inverse=True)``: labels that cannot be ordered (3 beside "a")
    are one DataError, not NumPy's TypeError."""
    try:
        return np.unique(y, return_inverse=True)
    except TypeError:
        raise DataError(f"{who}: the class labels must be all numbers or all strings, got "
                        f"{y[:5].tolist()}...") from None


def _float_targets(y) -> np.ndarray:
    """Regression targets as float64, or a DataError naming what was given."""
    try:
        return np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"regression targets y must be numbers, got "
                        f"{np.asarray(y).dtype} values") from None


def _one_layer(n_in: int, n_out: int, activation=None) -> Sequential:
    """Dense(n_in → n_out) with zero weights (the lectures' starting point), in float64."""
    layers = [Dense(n_in, n_out, init="zeros")] + ([activation()] if activation else [])
    return Sequential(layers).build((n_in,), get_backend("cpu", _F64))


class _OneLayer:
    """Shared by every model: the weights live in ``net_``'s Dense layer."""

    net_: Sequential

    @property
    def coef_(self) -> np.ndarray:
        """w, shape (d,) for one output unit, else (d, k)."""
        w = self.net_.layers[0].params["W"]
        return w[:, 0].copy() if w.shape[1] == 1 else w.copy()

    @property
    def intercept_(self):
        """b, a float for one output unit, else shape (k,)."""
        b = self.net_.layers[0].params["b"]
        return float(b[0]) if b.shape[0] == 1 else b.copy()

    def decision_function(self, x) -> np.ndarray:
        """z = x·w + b for every row of x (before any output activation)."""
        self._check_fitted()
        x = _as_design(x)
        z = self.net_.layers[0].forward(x)[0]
        return z[:, 0] if z.shape[1] == 1 else z

    def _check_fitted(self) -> None:
        if getattr(self, "net_", None) is None:
            raise ConfigError(f"this {type(self).__name__} is not fitted yet; call fit(x, y) first")


# --------------------------------------------------------------------------------------
class LinearRegression(_OneLayer):
    """Least-squares linear regression o = w·x + b, fitted three ways (``method``):

    * ``"lstsq"`` — the normal equations XᵀX w = Xᵀy solved by ``scipy.linalg.lstsq``
      on the design matrix [X 1]; a rank-deficient X (singular XᵀX) is reported as a
      :class:`DataError` that suggests ridge (``l2 > 0``);
    * ``"gd"`` — batch gradient descent on C = 1/2n Σ (y − o)², w ← w + (η/n) Σ (y − o) x;
    * ``"sgd"`` — the delta rule, one example at a time: w ← w + η (y − o) x, with η
      halved every ``epochs // 10`` epochs so the iterates settle on the minimum
      instead of hovering around it.

    ``l2`` = λ adds λ/2n Σ w² (ridge; the bias is not penalised). ``y`` may be 1-D
    (one output) or n × k.
    """

    METHODS = ("lstsq", "gd", "sgd")

    def __init__(self, method: str = "lstsq", *, l2: float = 0.0, eta: float = 0.01,
                 epochs: int = 1000, rng=None):
        self.method, self.l2, self.eta, self.epochs, self.rng = method, l2, eta, epochs, rng

    def fit(self, x, y) -> "LinearRegression":
        if self.method not in self.METHODS:
            raise ConfigError(f"unknown method {self.method!r}; choose one of "
                              f"{', '.join(self.METHODS)}")
        _l2(self.l2)
        x, y = _as_design(x, _float_targets(y), name="training data")
        if y.ndim > 2:
            raise DataError(f"training data: regression targets y must be 1-D or n × k, got "
                            f"shape {y.shape}")
        targets = y[:, None] if y.ndim == 1 else y
        # installed once fitted: a fit that fails leaves the model as it was, not zeroed
        net = _one_layer(x.shape[1], targets.shape[1])
        if self.method == "lstsq":
            self._fit_lstsq(net, x, targets)
        else:
            self.epochs_run_ = self._fit_descent(net, x, targets)
        self.net_ = net
        return self

    def _fit_lstsq(self, net, x, targets) -> None:
        n, d = x.shape
        design = np.hstack([x, np.ones((n, 1))])
        rhs = targets
        if self.l2:
            # Ridge as least squares: extra rows √λ·[I 0] add λ‖w‖² and leave b free.
            design = np.vstack([design, np.hstack([np.sqrt(self.l2) * np.eye(d),
                                                   np.zeros((d, 1))])])
            rhs = np.vstack([targets, np.zeros((d, targets.shape[1]))])
        solution, _, rank, _ = scipy.linalg.lstsq(design, rhs)
        if rank < d + 1:
            raise DataError(
                f"XᵀX is singular: the design matrix [X 1] ({n} examples × {d} features + "
                f"bias) has rank {rank} < {d + 1}, so the least-squares weights are not "
                f"unique (a constant or duplicated feature, a feature that is a linear "
                f"combination of others, or fewer examples than parameters); remove "
                f"those features or use ridge regression (l2 > 0)")
        net.layers[0].set_params(W=solution[:d], b=solution[d])

    def _fit_descent(self, net, x, targets) -> int:
        online = self.method == "sgd"
        epochs = whole_number(self.epochs, "epochs", 1, error=ConfigError)
        callbacks = [StepDecay(every=max(1, epochs // 10))] if online else []
        # Linear unit + quadratic cost: δ = o − y, so SGD is exactly the delta rule.
        trainer = Trainer(net, "quadratic", SGD(self.eta),
                          batch_size=1 if online else len(x),
                          penalties=[L2(self.l2)] if self.l2 else [], callbacks=callbacks,
                          monitor=(), rng=make_rng(self.rng))
        trainer.fit(Dataset(x, targets, "training data"), epochs)
        if trainer.status == "diverged":
            raise ConfigError(f"{trainer.message}")
        return len(trainer.history)

    def predict(self, x) -> np.ndarray:
        return self.decision_function(x)

    def score(self, x, y) -> float:
        """R² = 1 − Σ(y − o)² / Σ(y − ȳ)²."""
        x, y = _as_design(x, _float_targets(y))
        o = self.predict(x).reshape(y.shape)
        return float(1 - ((y - o) ** 2).sum() / ((y - y.mean(axis=0)) ** 2).sum())


# --------------------------------------------------------------------------------------
class _BinaryClassifier(_OneLayer):
    """Two classes, any labels: ``classes_[1]`` is the positive one (z ≥ 0)."""

    def _binary_targets(self, y) -> np.ndarray:
        if y.ndim != 1:
            raise DataError(f"{type(self).__name__} needs 1-D class labels, got y of shape "
                            f"{y.shape}")
        self.classes_ = _classes(y, type(self).__name__)[0]
        if len(self.classes_) != 2:
            raise DataError(f"{type(self).__name__} separates two classes; the labels hold "
                            f"{len(self.classes_)}: {self.classes_[:10].tolist()}")
        return (y == self.classes_[1]).astype(np.float64)

    def predict(self, x) -> np.ndarray:
        positive = self.decision_function(x) >= 0   # first: it says when nothing is fitted
        return self.classes_[positive.astype(int)]

    def score(self, x, y) -> float:
        """Accuracy: the fraction of examples classified correctly."""
        x, y = _as_design(x, y)            # one length, or a DataError (not a broadcast error)
        return float((self.predict(x) == y).mean())


class Perceptron(_BinaryClassifier):
    """Rosenblatt's perceptron: o = 1 if w·x + b ≥ 0 else 0; on each mistake
    w ← w + η (t − o) x and b ← b + η (t − o).

    Training stops after the first epoch in which every example is classified
    correctly (``converged_ = True``); the perceptron convergence theorem guarantees
    that epoch comes after finitely many updates when the classes are linearly
    separable. When ``max_epochs`` pass without one, ``converged_`` is False and
    ``message_`` says that the data are probably not linearly separable (XOR is not).
    """

    def __init__(self, eta: float = 1.0, max_epochs: int = 100, shuffle: bool = True, rng=None):
        self.eta, self.max_epochs, self.shuffle, self.rng = eta, max_epochs, shuffle, rng

    def fit(self, x, y) -> "Perceptron":
        number(self.eta, "eta", positive=True, error=ConfigError)
        whole_number(self.max_epochs, "max_epochs", 1, error=ConfigError)
        x, y = _as_design(x, y, name="training data")
        t = self._binary_targets(y)
        rng = make_rng(self.rng)
        w, b = np.zeros(x.shape[1]), 0.0
        self.n_updates_, self.converged_, self.errors_ = 0, False, []
        for epoch in range(int(self.max_epochs)):
            order = rng.permutation(len(x)) if self.shuffle else range(len(x))
            mistakes = 0
            for i in order:                        # the rule is online: one example at a time
                o = 1.0 if x[i] @ w + b >= 0 else 0.0
                if o != t[i]:
                    w += self.eta * (t[i] - o) * x[i]
                    b += self.eta * (t[i] - o)
                    mistakes += 1
            self.n_updates_ += mistakes
            self.errors_.append(mistakes)
            if mistakes == 0:
                self.converged_ = True
                break
        self.n_epochs_ = epoch + 1
        self.message_ = (
            f"converged after {self.n_updates_} updates in {self.n_epochs_} epochs"
            if self.converged_ else
            f"did not converge: no error-free epoch in max_epochs={self.max_epochs} "
            f"({self.errors_[-1]} mistakes in the last); the classes are probably not "
            f"linearly separable (XOR is not), so no perceptron can separate them")
        self.net_ = _one_layer(x.shape[1], 1)
        self.net_.layers[0].set_params(W=w[:, None], b=np.array([b]))
        return self


class Adaline(_BinaryClassifier):
    """ADALINE (Widrow & Hoff 1960): the least-mean-squares delta rule
    w ← w + η (t − z) x on the *linear* output z = w·x + b with targets t = ±1,
    then classification by the sign of z. It minimises 1/2n Σ (t − z)², so it settles
    even when the classes overlap (where the perceptron would cycle for ever).
    """

    def __init__(self, eta: float = 0.01, epochs: int = 50, rng=None):
        self.eta, self.epochs, self.rng = eta, epochs, rng

    def fit(self, x, y) -> "Adaline":
        x, y = _as_design(x, y, name="training data")
        t = 2 * self._binary_targets(y) - 1
        fit = LinearRegression("sgd", eta=self.eta, epochs=self.epochs, rng=self.rng).fit(x, t)
        self.net_ = fit.net_
        self.mean_squared_error_ = float(np.mean((t - fit.predict(x)) ** 2))
        return self


# --------------------------------------------------------------------------------------
class _OneLayerClassifier(_OneLayer):
    """A Dense layer and an output activation trained with the cost that cancels its σ′."""

    activation: type
    cost: str

    def __init__(self, l2: float = 1.0, *, solver: str = "lbfgs", max_iter: int = 500,
                 tol: float = 1e-6, eta: float = 0.5, epochs: int = 30, batch_size: int = 10,
                 rng=None):
        self.l2, self.solver, self.max_iter, self.tol = l2, solver, max_iter, tol
        self.eta, self.epochs, self.batch_size, self.rng = eta, epochs, batch_size, rng

    def _n_outputs(self, n_classes: int) -> int:
        return n_classes

    def _targets(self, index: np.ndarray, n_out: int):
        return index                       # integer labels; the cost makes them one-hot

    def fit(self, x, y) -> "_OneLayerClassifier":
        if self.solver not in ("lbfgs", "sgd"):
            raise ConfigError(f"unknown solver {self.solver!r}; choose lbfgs or sgd")
        _l2(self.l2)
        x, y = _as_design(x, y, name="training data")
        if y.ndim != 1:
            raise DataError(f"{type(self).__name__} needs 1-D class labels, got y of shape "
                            f"{y.shape}")
        classes, index = _classes(y, type(self).__name__)
        if len(classes) < 2:
            raise DataError(f"{type(self).__name__} needs at least two classes in y")
        n_out = self._n_outputs(len(classes))
        # installed once fitted: a fit that fails (max_iter=0, epochs=-1) leaves the model
        # as it was instead of holding the zero weights it started from
        net = _one_layer(x.shape[1], n_out, self.activation)
        targets = self._targets(index, n_out)
        penalties = [L2(self.l2)] if self.l2 else []
        if self.solver == "lbfgs":
            objective = Objective(net, self.cost, x, targets, penalties=penalties)
            self.result_ = minimize(objective, "l-bfgs", max_iter=self.max_iter, tol=self.tol)
            self.cost_ = self.result_.cost
        else:
            trainer = Trainer(net, self.cost, SGD(self.eta), batch_size=self.batch_size,
                              penalties=penalties, monitor=("train_cost",),
                              rng=make_rng(self.rng))
            history = trainer.fit(Dataset(x, targets, "training data"), self.epochs)
            self.cost_ = history["train_cost"][-1]
        self.classes_, self.net_ = classes, net
        return self

    def predict_proba(self, x) -> np.ndarray:
        self._check_fitted()
        return self.net_.predict(_as_design(x))

    def predict(self, x) -> np.ndarray:
        index = self.predict_proba(x).argmax(axis=1)     # first: it says when nothing is fitted
        return self.classes_[index]

    def score(self, x, y) -> float:
        """Accuracy: the fraction of examples classified correctly."""
        x, y = _as_design(x, y)
        return float((self.predict(x) == y).mean())


class LogisticRegression(_OneLayerClassifier):
    """Logistic regression: sigmoid output units, cross-entropy cost, L2 weight decay λ.

    Two classes: one unit, P(y = classes_[1] | x) = σ(w·x + b). More classes: one
    independent logistic unit per class (one-vs-rest; the cross-entropy of the K units
    is the sum of K binary costs, so fitting them together is fitting K separate
    models). ``l2`` = λ in λ/2n Σ w² equals scikit-learn's C = 1/λ.
    """

    activation, cost = Sigmoid, "cross-entropy"

    def _n_outputs(self, n_classes):
        return 1 if n_classes == 2 else n_classes

    def _targets(self, index, n_out):
        return index[:, None].astype(np.float64) if n_out == 1 else index

    def predict_proba(self, x) -> np.ndarray:
        p = super().predict_proba(x)
        return np.hstack([1 - p, p]) if p.shape[1] == 1 else p


class SoftmaxRegression(_OneLayerClassifier):
    """Softmax (multinomial logistic) regression: aⱼ = e^{zⱼ}/Σₖe^{zₖ}, log-likelihood cost
    −ln a_y, L2 weight decay λ (scikit-learn's ``LogisticRegression`` with C = 1/λ)."""

    activation, cost = Softmax, "log-likelihood"
