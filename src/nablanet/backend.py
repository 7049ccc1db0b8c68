"""The array namespace: NumPy on the CPU, CuPy on a GPU.

Everything numeric talks to ``backend.xp`` rather than to ``numpy`` directly, so
the same layer code runs on either. A :class:`Backend` bundles the namespace and the
floating-point dtype (float32 unless float64 is asked for).

Randomness never uses a global RNG: every random draw comes from a
``numpy.random.Generator`` that the caller seeds and passes down
(:func:`make_rng`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import BackendError, ConfigError
from .gpu_kernels import kernel, on_gpu

_DTYPES = {"float32": np.float32, "float64": np.float64}


@dataclass(frozen=True)
class Backend:
    """An array namespace plus the dtype used for parameters and activations."""

    name: str          # "cpu" or "gpu"
    xp: Any            # numpy or cupy
    dtype: Any         # np.float32 or np.float64

    def asarray(self, a, dtype=None):
        """Move ``a`` onto this backend's device with the backend dtype (or ``dtype``)."""
        return self.xp.asarray(a, dtype=self.dtype if dtype is None else dtype)

    def to_host(self, a) -> np.ndarray:
        """Return ``a`` as a NumPy array (copying from the GPU when needed)."""
        return to_host(a)

    def with_dtype(self, dtype) -> "Backend":
        return get_backend(self.name, dtype)


def to_host(a) -> np.ndarray:
    """Return ``a`` as a NumPy array, whatever device it lives on."""
    if isinstance(a, np.ndarray):
        return a
    get = getattr(a, "get", None)        # cupy.ndarray.get() copies device → host
    return get() if callable(get) else np.asarray(a)


def _dtype(dtype) -> Any:
    if dtype in (np.float32, np.float64):
        return dtype
    key = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if key not in _DTYPES:
        raise BackendError(f"dtype must be float32 or float64, got {dtype!r}")
    return _DTYPES[key]


_CACHE: dict[tuple[str, Any], Backend] = {}


def get_backend(device: str = "cpu", dtype="float32") -> Backend:
    """The backend for ``device`` ("cpu" or "gpu") and ``dtype``.

    Asking for "gpu" without CuPy or without a CUDA device raises
    :class:`BackendError` with the reason, never a bare ImportError.
    """
    dt = _dtype(dtype)
    key = (device, dt)
    if key in _CACHE:
        return _CACHE[key]
    if device == "cpu":
        backend = Backend("cpu", np, dt)
    elif device == "gpu":
        backend = Backend("gpu", _import_cupy(), dt)
    else:
        raise BackendError(f"device must be 'cpu' or 'gpu', got {device!r}")
    _CACHE[key] = backend
    return backend


def _import_cupy():
    try:
        import cupy
    except ImportError as exc:
        raise BackendError(
            "device='gpu' needs CuPy: pip install 'nablanet[gpu]' (CUDA 12) or "
            "'nablanet[gpu-cuda13]' (CUDA 13)"
        ) from exc
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise BackendError("device='gpu' asked for, but CUDA reports no GPU")
    except cupy.cuda.runtime.CUDARuntimeError as exc:
        raise BackendError(f"device='gpu' asked for, but CUDA is not usable: {exc}") from exc
    return cupy


def backend_of(a) -> Backend:
    """The backend an array lives on (used by layers built before their first call)."""
    device = "cpu" if isinstance(a, np.ndarray) else "gpu"
    return get_backend(device, a.dtype if a.dtype in (np.float32, np.float64) else "float32")


def xp_of(a):
    """The array namespace (numpy or cupy) that ``a`` belongs to."""
    return np if isinstance(a, np.ndarray) else backend_of(a).xp


def axpy(alpha: float, x, y) -> None:
    """y ← y + αx in place: the update of every SGD step and of weight decay.

    Plain ``y += alpha * x``: measured against a reused scratch array (no temporary)
    and against SciPy's BLAS ``?axpy``, it was the fastest on a 784×100 float32 matrix
    (11 µs vs 14 µs); BLAS through SciPy also brings a second OpenBLAS thread pool
    beside NumPy's, and on a 2-core machine the two pools' spinning threads stalled
    training 10–40×. On a GPU it is one fused kernel (:mod:`nablanet.gpu_kernels`).
    """
    if on_gpu(y):
        kernel("axpy")(x, alpha, y)
    elif alpha == 1.0:
        y += x
    else:
        y += alpha * x


def make_rng(seed: int | None | np.random.Generator = None) -> np.random.Generator:
    """A ``numpy.random.Generator``; pass an int for a reproducible run."""
    if isinstance(seed, np.random.Generator):
        return seed
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError):
        # NumPy's own message names SeedSequence and "entropy", not the argument
        raise ConfigError(f"a seed (rng) must be a non-negative integer, a "
                          f"numpy.random.Generator or None, got {seed!r}") from None


def device_rng(backend: Backend, rng: np.random.Generator):
    """A generator that draws directly on ``backend``'s device, seeded from ``rng``.

    On the CPU that is ``rng`` itself; on a GPU it is a CuPy generator whose seed
    comes from ``rng``, so one seed still fixes the whole run.
    """
    if backend.xp is np:
        return rng
    return backend.xp.random.default_rng(int(rng.integers(2**63)))
