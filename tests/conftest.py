"""Shared fixtures for the core-engine tests: a float64 backend and small synthetic data."""
import numpy as np
import pytest
import threadpoolctl

import nablanet
from nablanet.data import Dataset


def blobs(n: int = 120, n_features: int = 4, n_classes: int = 3, *, spread: float = 0.5,
          seed: int = 0, name: str = "blobs") -> Dataset:
    """``n_classes`` Gaussian clusters around well separated centres: linearly separable
    with high probability, so a small net must reach ~100% accuracy on it."""
    rng = np.random.default_rng(seed)
    centres = 3.0 * np.eye(n_classes, n_features)
    y = np.arange(n) % n_classes
    rng.shuffle(y)
    x = centres[y] + spread * rng.standard_normal((n, n_features))
    return Dataset(x.astype(np.float32), y.astype(np.int64), name)


@pytest.fixture(autouse=True, scope="session")
def one_blas_thread():
    """Tests use tiny matrices, which run fastest on one BLAS thread; several threads
    spinning on a busy 2-core machine slow them down many times over."""
    with threadpoolctl.threadpool_limits(1):
        yield


@pytest.fixture
def backend64():
    """The CPU backend in float64, as gradient checks need."""
    return nablanet.get_backend("cpu", "float64")


@pytest.fixture
def make_blobs():
    """The :func:`blobs` factory, for tests that need their own size or seed."""
    return blobs


@pytest.fixture
def blobs_split():
    """(train, validation): 90 + 30 examples, 4 features, 3 classes."""
    data = blobs(120)
    return (Dataset(data.x[:90], data.y[:90], "train"),
            Dataset(data.x[90:], data.y[90:], "validation"))


@pytest.fixture(scope="session")
def gpu64():
    """The GPU backend in float64 (CuPy); the test is skipped without CuPy and a CUDA device."""
    cupy = pytest.importorskip("cupy")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no CUDA device")
    except cupy.cuda.runtime.CUDARuntimeError as exc:
        pytest.skip(f"CUDA not usable: {exc}")
    return nablanet.get_backend("gpu", "float64")
