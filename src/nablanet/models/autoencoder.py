"""Deep autoencoders (Hinton & Salakhutdinov, "Reducing the dimensionality of data with
neural networks", Science 2006), and PCA as the linear baseline.

Pretraining: a stack of RBMs 784-1000-500-250-30 trained greedily (:class:`DBN`);
the top RBM has linear code units — Gaussian hidden units of unit variance whose
mean is the input — and a learning rate 100 times smaller (0.001 instead of 0.1).
Unrolling: the encoder uses the recognition weights W, the decoder the same
weights transposed, Wᵀ, with the visible biases. Fine-tuning: backpropagation of
the reconstruction error through the whole 784-…-30-…-784 net, with logistic output
units and the cross-entropy cost (or the squared error), trained with the ordinary
:class:`~nablanet.training.Trainer` on the regression targets y = x.

The paper's figure of merit is the average squared reconstruction error per test
image, Σᵢ (xᵢ − x̂ᵢ)² averaged over images: 3.00 for the 30-d autoencoder and 13.87
for PCA with 30 components. A denoising autoencoder corrupts the input while
training only; here by input dropout (each pixel zeroed with probability p).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..backend import Backend, make_rng, to_host
from ..data.dataset import Dataset, check_values
from ..errors import ConfigError, DataError
from ..layers import Dropout
from ..net import Sequential
from ..utils.state import whole_number
from .dbn import DBN, unroll
from .rbm import ContrastiveDivergence

#: Hinton & Salakhutdinov's MNIST autoencoder
MNIST_SIZES = (784, 1000, 500, 250, 30)
_CHUNK = 2000


class DeepAutoencoder:
    """An autoencoder pretrained as a stack of RBMs, then unrolled and fine-tuned.

    After :meth:`unroll` (or :meth:`from_net`), ``net`` is the whole
    encoder + decoder and ``code_end`` the index of its first decoder layer.
    """

    def __init__(self, sizes: Sequence[int] = MNIST_SIZES, *, visible: str = "binary",
                 backend: Backend | None = None, rng=None):
        self.dbn = DBN(sizes, visible=visible, top_hidden="gaussian", backend=backend, rng=rng)
        self.sizes = self.dbn.sizes
        self.backend = self.dbn.backend
        self.net: Sequential | None = None
        self.code_end: int | None = None

    @classmethod
    def from_net(cls, net: Sequential, code_end: int) -> "DeepAutoencoder":
        """Wrap an unrolled net (e.g. loaded with :func:`nablanet.io.load_model`)."""
        if not 0 < int(code_end) < len(net.layers):
            raise ConfigError(f"code_end must index a layer of the net, got {code_end}")
        ae = cls.__new__(cls)
        ae.dbn, ae.net, ae.code_end, ae.backend = None, net, int(code_end), net.backend
        ae.sizes = None
        return ae

    def _need_rbms(self, what: str) -> None:
        if self.dbn is None:            # made by from_net: a net, no RBM stack behind it
            raise ConfigError(f"cannot {what} an autoencoder wrapped with from_net (it has no "
                              "RBMs); fine_tune trains it")

    # -- training -------------------------------------------------------------------------
    def pretrain(self, x, epochs: int | Sequence[int] = 10, *,
                 cd: ContrastiveDivergence | None = None,
                 cd_top: ContrastiveDivergence | None = None, binarize=False,
                 probabilities: bool = True, callback=None, rng=None) -> list:
        """Greedy RBM pretraining; ``cd_top`` for the linear-code RBM (default: ε = 0.001).

        Pixel intensities in [0, 1] are used as probabilities by default, as in the
        paper's code."""
        self._need_rbms("pretrain")
        cd = cd or ContrastiveDivergence()
        cd_top = cd_top or ContrastiveDivergence(
            **{**cd.config(), "learning_rate": cd.learning_rate / 100})
        n = len(self.dbn.rbms)
        return self.dbn.pretrain(x, epochs, cd=[cd] * (n - 1) + [cd_top], binarize=binarize,
                                 probabilities=probabilities and not binarize,
                                 callback=callback, rng=rng)

    def unroll(self, *, input_dropout: float = 0.0, rng=None) -> Sequential:
        """Build ``net`` = encoder (W) + decoder (Wᵀ) from the pretrained RBMs.

        ``input_dropout`` > 0 gives a denoising autoencoder: the input is corrupted
        while training, while the target stays the clean x."""
        self._need_rbms("unroll")
        first = [Dropout(input_dropout)] if input_dropout else []
        self.net, self.code_end = unroll(self.dbn.rbms, mirror=True, input_layers=first, rng=rng)
        return self.net

    def fine_tune(self, x, epochs: int, *, validation=None, cost: str = "cross-entropy",
                  optimizer=None, batch_size: int = 100, callbacks=(), rng=None):
        """Backpropagate the reconstruction error of y = x through the unrolled net.

        ``cost``: "cross-entropy" (logistic outputs, the paper's MNIST choice) or
        "quadratic". ``optimizer`` defaults to momentum SGD (η = 0.01, ν = 0.9).
        Returns the :class:`~nablanet.training.History`.
        """
        from ..optimizers import Momentum
        from ..training import Trainer

        if cost not in ("cross-entropy", "quadratic"):
            raise ConfigError(f"cost must be 'cross-entropy' or 'quadratic', got {cost!r}")
        if self.net is None:
            self.unroll(rng=rng)
        train = _as_targets(x, "training data")
        val = None if validation is None else _as_targets(validation, "validation data")
        trainer = Trainer(self.net, cost, optimizer or Momentum(0.01, 0.9),
                          batch_size=batch_size, callbacks=callbacks,
                          monitor=("validation_cost",) if val is not None else (),
                          rng=make_rng(rng))
        return trainer.fit(train, epochs, val)

    # -- use ------------------------------------------------------------------------------
    def encode(self, x) -> np.ndarray:
        """The codes (n × code size) of the rows of ``x``."""
        return self._run(x, 0, self.code_end)

    def decode(self, codes) -> np.ndarray:
        return self._run(codes, self.code_end)

    def reconstruct(self, x) -> np.ndarray:
        return self._run(x, 0)

    def reconstruction_error(self, x) -> float:
        """Average squared reconstruction error per image, mean over rows of Σᵢ (xᵢ − x̂ᵢ)²."""
        x = getattr(x, "x", x)
        return squared_error_per_image(x, self.reconstruct(x))

    def _run(self, x, start: int, stop: int | None = None) -> np.ndarray:
        if self.net is None:
            raise ConfigError("unroll (or fine-tune) the autoencoder first")
        stop = len(self.net.layers) if stop is None else stop
        x = getattr(x, "x", x)
        x = x if hasattr(x, "ndim") else np.asarray(x)   # a CuPy array stays on its device
        check_values(x, "codes" if start else "data")    # NaN rows gave NaN codes
        outs = []
        for i in range(0, len(x), _CHUNK):
            h = self.backend.asarray(x[i:i + _CHUNK])
            for layer in self.net.layers[start:stop]:
                h, _ = layer.forward(h, train=False)
            outs.append(to_host(h))
        return np.concatenate(outs)


class PCA:
    """Principal components by the SVD of the centred training data, X − x̄ = U S Vᵀ:
    the code is (x − x̄) V_k, the reconstruction x̄ + code V_kᵀ (the best rank-k linear
    reconstruction in squared error)."""

    def __init__(self, n_components: int):
        if whole_number(n_components, "n_components", None, error=ConfigError) < 1:
            raise ConfigError(f"n_components must be ≥ 1, got {n_components}")
        self.n_components = int(n_components)

    def fit(self, x) -> "PCA":
        x = _real_values(x, "training data")
        if x.ndim != 2 or self.n_components > min(x.shape):
            raise DataError(f"PCA with {self.n_components} components needs an (n, d) array "
                            f"with n, d ≥ {self.n_components}, got shape {x.shape}")
        self.mean_ = x.mean(axis=0)
        _, s, vt = np.linalg.svd(x - self.mean_, full_matrices=False)
        self.components_ = vt[:self.n_components]                  # k × d, orthonormal rows
        self.explained_variance_ = s[:self.n_components] ** 2 / (len(x) - 1)
        return self

    def encode(self, x) -> np.ndarray:
        if not hasattr(self, "components_"):
            raise ConfigError("this PCA is not fitted yet; call fit(x) first")
        x = _real_values(x, "data")
        d = len(self.mean_)
        if x.ndim != 2 or x.shape[1] != d:
            raise DataError(f"PCA fitted on {d} features needs an (n, {d}) array, got shape "
                            f"{x.shape}")
        return (x - self.mean_) @ self.components_.T

    def reconstruct(self, x) -> np.ndarray:
        return self.mean_ + self.encode(x) @ self.components_

    def reconstruction_error(self, x) -> float:
        x = getattr(x, "x", x)
        return squared_error_per_image(x, self.reconstruct(x))


def squared_error_per_image(x, x_hat) -> float:
    """Mean over rows of Σᵢ (xᵢ − x̂ᵢ)²: Hinton & Salakhutdinov's reconstruction error."""
    x, x_hat = np.asarray(x, dtype=np.float64), np.asarray(x_hat, dtype=np.float64)
    if x.shape != x_hat.shape:
        raise DataError(f"reconstruction of shape {x_hat.shape} does not match data {x.shape}")
    return float(((x - x_hat) ** 2).sum(axis=1).mean())


def _real_values(x, name: str) -> np.ndarray:
    """x (an array or a Dataset) as float64 after the value checks: NaN made the SVD fail
    to converge (LinAlgError) and gave NaN codes."""
    x = np.asarray(getattr(x, "x", x))
    check_values(x, name)
    return x.astype(np.float64, copy=False)


def _as_targets(x, name: str) -> Dataset:
    """An autoencoder's training set: inputs x, regression targets y = x."""
    x = getattr(x, "x", x)
    return Dataset(x, x, name)
