"""Double descent: test error against model size across the interpolation threshold.

Random-features regression (Belkin et al. 2019): p random ReLU features
φ(x) = max(0, xV), V ~ N(0, 1/d), and a linear read-out fitted to one-hot targets
by *minimum-norm* least squares, W = Φ⁺Y. With p < n it is ordinary least squares;
at p = n it can just interpolate the training set, label noise included, and needs
enormous weights to do so — the test error peaks; beyond, among the many
interpolating solutions the pseudo-inverse picks the smallest, whose norm falls as p
grows, and the test error descends a second time.

Data: an MNIST subset with 20% of the training labels replaced by random ones (the
noise that the interpolating model is forced to fit).
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from ._common import classification_data, figure, heading, save


def random_features(x, v):
    """ReLU random features φ(x) = max(0, x V)."""
    return np.maximum(x @ v, 0.0)


def run(out_dir, *, rng=None, quick: bool = False) -> dict:
    rng = np.random.default_rng(rng)
    n = 200 if quick else 400
    repeats = 1 if quick else 3
    train, _, test, source = classification_data(rng, n, 0, n_test=1000 if quick else 2000)
    n = len(train)
    noise = 0.2
    heading(f"double descent: random ReLU features, min-norm least squares, n = {n}")
    print(f"data: {source}; {noise:.0%} of the training labels randomised")
    ratios = np.unique(np.concatenate([np.geomspace(0.05, 12, 18),
                                       [0.8, 0.875, 0.95, 1.0, 1.05, 1.125, 1.25]]))
    sizes = np.unique(np.maximum(1, np.round(ratios * n).astype(int)))
    d, k = train.n_features, 10
    test_error = np.zeros((repeats, len(sizes)))
    test_mse, train_error, norm = (np.zeros_like(test_error) for _ in range(3))
    for r in range(repeats):
        labels = train.y.copy()
        flip = rng.random(n) < noise
        labels[flip] = rng.integers(0, k, flip.sum())
        targets = np.eye(k)[labels]
        v = rng.standard_normal((d, sizes[-1])) / np.sqrt(d)
        phi_train = random_features(train.x.astype(np.float64), v)
        phi_test = random_features(test.x.astype(np.float64), v)
        for i, p in enumerate(sizes):
            # gelsd returns the minimum-norm solution when p > n (many interpolants).
            w = scipy.linalg.lstsq(phi_train[:, :p], targets, lapack_driver="gelsd")[0]
            out = phi_test[:, :p] @ w
            test_error[r, i] = np.mean(out.argmax(1) != test.y)
            test_mse[r, i] = np.mean(np.sum((out - np.eye(k)[test.y]) ** 2, axis=1))
            train_error[r, i] = np.mean((phi_train[:, :p] @ w).argmax(1) != labels)
            norm[r, i] = np.linalg.norm(w)
    test_error, test_mse = test_error.mean(0), test_mse.mean(0)
    train_error, norm = train_error.mean(0), norm.mean(0)
    peak = int(sizes[np.argmax(test_mse)])
    print(f"{'features p':>10} {'p/n':>6} {'train err':>9} {'test err':>8} {'test MSE':>9} "
          f"{'‖W‖':>9}")
    for p, a, b, c, w in zip(sizes, train_error, test_error, test_mse, norm):
        print(f"{p:>10} {p / n:>6.2f} {a:>9.3f} {b:>8.3f} {c:>9.3g} {w:>9.3g}")
    best_under = float(test_error[sizes < n].min())
    print(f"test MSE peaks at p = {peak} (p/n = {peak / n:.2f}); test error there "
          f"{test_error[np.argmax(test_mse)]:.3f}, best below the threshold "
          f"{best_under:.3f}, at the largest p {test_error[-1]:.3f}")

    fig, axes = figure(1, 3, size=(15, 4.5))
    for ax, values, label in ((axes[0, 0], test_error, "test error (0–1)"),
                              (axes[0, 1], test_mse, "test squared error"),
                              (axes[0, 2], norm, "‖W‖ (Frobenius)")):
        ax.plot(sizes / n, values, "o-", ms=3, label=label)
        if ax is axes[0, 0]:
            ax.plot(sizes / n, train_error, "s-", ms=3, color="tab:gray",
                    label="training error (noisy labels)")
        ax.axvline(1.0, color="tab:red", ls="--", lw=1, label="interpolation threshold p = n")
        ax.set(xscale="log", xlabel="features per training example, p/n", ylabel=label)
        ax.legend(fontsize=8)
    axes[0, 1].set_yscale("log")
    axes[0, 2].set_yscale("log")
    fig.suptitle(f"double descent — random ReLU features, min-norm least squares; "
                 f"{source}, {noise:.0%} label noise", fontsize=10)
    path = save(fig, out_dir, "double-descent.png")
    return {"n_train": n, "sizes": sizes.tolist(), "test_error": test_error.tolist(),
            "test_mse": test_mse.tolist(), "train_error": train_error.tolist(),
            "weight_norm": norm.tolist(), "peak": peak, "source": source,
            "figures": [str(path)]}
