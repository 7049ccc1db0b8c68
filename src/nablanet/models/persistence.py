"""Saving and loading RBMs and deep belief nets: ``config.json`` + ``weights.safetensors``.

The same safe format as :mod:`nablanet.io` (JSON architecture, raw tensors, no
pickle, atomic directory swap), with its own format tag so a model directory says
what it holds. Tensors are named ``rbm{i}.W``, ``rbm{i}.b_visible``,
``rbm{i}.b_hidden``, and for a DBN fine-tuned by up-down (``"untied": true``) also
``gen{i}.W``, ``gen{i}.b``: the generative weights of each layer below the top. A fine-tuned (unrolled) net is an ordinary
:class:`~nablanet.net.Sequential` and is saved with :func:`nablanet.io.save_model`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import safetensors.numpy

from ..backend import Backend, get_backend, to_host
from ..errors import ConfigError, ModelFileError
from ..init import parameter_budget
from ..io import (
    CONFIG,
    WEIGHTS,
    _describe,
    _metadata,
    _read_json,
    _read_tensors,
    _replace_directory,
    checked_metadata,
    checked_tensor,
    finish_interrupted_swap,
)
from .dbn import DBN
from .rbm import RBM

FORMAT = "nablanet-rbm"
VERSION = 1
_RBM_KEYS = ("n_visible", "n_hidden", "visible", "hidden", "n_labels")


def save_rbm(directory, model: RBM | DBN, metadata: dict | None = None) -> Path:
    """Write an :class:`RBM` or a :class:`DBN` (its RBMs, bottom first) atomically."""
    if not isinstance(model, (RBM, DBN)):
        raise ConfigError(f"save_rbm writes an RBM or a DBN, got {type(model).__name__}; "
                          "save a net with nablanet.io.save_model")
    rbms = [model] if isinstance(model, RBM) else list(model.rbms)
    config = {"format": FORMAT, "version": VERSION, "type": type(model).__name__,
              "rbms": [{k: r.config()[k] for k in _RBM_KEYS} for r in rbms],
              "epochs_trained": [r.epochs_trained for r in rbms],
              "dtype": np.dtype(rbms[0].backend.dtype).name,
              "metadata": checked_metadata(metadata)}
    tensors = {f"rbm{i}.{name}": np.ascontiguousarray(to_host(p))
               for i, r in enumerate(rbms) for name, p in r.params.items()}
    generative = getattr(model, "generative", None)
    config["untied"] = generative is not None
    for i, layer in enumerate(generative or ()):
        tensors.update({f"gen{i}.{name}": np.ascontiguousarray(to_host(p))
                        for name, p in layer.items()})
    return _replace_directory(Path(directory), {
        CONFIG: json.dumps(config, indent=2).encode(),
        WEIGHTS: safetensors.numpy.save(tensors)})


def load_rbm(directory, *, backend: Backend | None = None) -> tuple[RBM | DBN, dict]:
    """Load what :func:`save_rbm` wrote; returns ``(model, metadata)``."""
    directory = finish_interrupted_swap(directory)
    where = directory / CONFIG
    config = _read_json(where)
    if config.get("format") != FORMAT:
        raise ModelFileError(f"{where}: not a saved RBM or DBN (format is "
                             f"{config.get('format')!r})")
    if config.get("version") != VERSION:
        raise ModelFileError(f"{where}: unsupported version {config.get('version')!r}")
    kind, specs = config.get("type"), config.get("rbms")
    if kind not in ("RBM", "DBN") or not isinstance(specs, list) or not specs \
            or (kind == "RBM" and len(specs) != 1):
        raise ModelFileError(f"{where}: 'type' must be RBM or DBN with a list of RBMs")
    dtype = config.get("dtype", "float32")
    if backend is None and dtype not in ("float32", "float64"):
        raise ModelFileError(f"{where}: unsupported dtype {dtype!r} (float32 or float64)")
    backend = backend or get_backend("cpu", dtype)
    trained = config.get("epochs_trained")
    if trained is not None and not (
            isinstance(trained, list) and len(trained) == len(specs)
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in trained)):
        raise ModelFileError(f"{where}: 'epochs_trained' must list a whole number of epochs "
                             "for each RBM")
    tensors = _read_tensors(directory / WEIGHTS)
    rbms = []
    with parameter_budget(sum(t.size for t in tensors.values()), WEIGHTS):
        for i, spec in enumerate(specs):
            if not isinstance(spec, dict) or set(spec) != set(_RBM_KEYS):
                raise ModelFileError(f"{where}: RBM {i} must have exactly the keys {_RBM_KEYS}")
            try:
                rbm = RBM(**spec, backend=backend, rng=0)
            except (TypeError, ValueError, MemoryError) as exc:  # ConfigError is a ValueError
                raise ModelFileError(f"{where}: RBM {i}: {_describe(exc)}") from None
            _install(rbm, tensors, f"rbm{i}.", directory / WEIGHTS)
            if trained is not None:
                rbm.epochs_trained = trained[i]
            rbms.append(rbm)
    untied = config.get("untied", False)
    if not isinstance(untied, bool) or (untied and kind != "DBN"):    # JSON 1 is no boolean
        raise ModelFileError(f"{where}: 'untied' must be true or false (true only for a DBN)")
    expected = {f"rbm{i}.{n}" for i in range(len(rbms)) for n in rbms[0].params}
    if untied:
        expected |= {f"gen{i}.{n}" for i in range(len(rbms) - 1) for n in ("W", "b")}
    extra = sorted(set(tensors) - expected)
    if extra:
        raise ModelFileError(f"{directory / WEIGHTS}: unexpected tensors {extra}")
    try:
        model = rbms[0] if kind == "RBM" else DBN.from_rbms(rbms)
    except ConfigError as exc:
        raise ModelFileError(f"{where}: {exc}") from None
    if untied:
        _install_generative(model, tensors, directory / WEIGHTS)
    return model, _metadata(config, where)


def _install_generative(dbn: DBN, tensors: dict, where) -> None:
    dbn.untie()
    for i, layer in enumerate(dbn.generative):
        for name, param in layer.items():
            layer[name] = dbn.backend.asarray(_tensor(tensors, f"gen{i}.{name}", param, where))


def _install(rbm: RBM, tensors: dict, prefix: str, where) -> None:
    for name, param in rbm.params.items():
        rbm.set_params(**{name: _tensor(tensors, prefix + name, param, where)})


def _tensor(tensors: dict, key: str, like, where):
    """Tensor ``key``, checked to be a finite float array of ``like``'s shape."""
    if key not in tensors:
        raise ModelFileError(f"{where}: missing tensor {key}")
    return checked_tensor(tensors[key], key, like.shape, where)
