"""Saving and loading models: ``config.json`` (architecture) + ``weights.safetensors``.

Loading never executes code: the architecture is JSON, each layer is built from a
fixed registry of layer names with keyword arguments checked by its constructor,
and the weights are a safetensors file (raw tensors and a JSON header, no pickle).
Every problem — missing or truncated file, malformed JSON, an unknown layer, a
missing, extra, mis-shaped or non-finite tensor — raises :class:`ModelFileError` naming it.

Writes are atomic: a model directory is written in full beside its final name and
swapped in, so a reader sees the old model or the new one, never half of one (a process
killed between the swap's two renames is finished by the next reader,
:func:`finish_interrupted_swap`). A
checkpoint's training state goes into the same swap (``save_model(training_state=...)``),
so its weights and its optimiser, RNG and history always belong to the same epoch.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path

import numpy as np
import safetensors
import safetensors.numpy

from .backend import Backend, get_backend, to_host
from .costs import COSTS, Cost, get_cost
from .errors import ConfigError, ModelFileError, NablanetError
from .init import parameter_budget
from .layers.base import layers_from_specs
from .net import Sequential
from .utils.atomic import atomic_write_bytes

FORMAT = "nablanet-model"
VERSION = 1
CONFIG, WEIGHTS = "config.json", "weights.safetensors"
STATE, STATE_ARRAYS = "training_state.json", "training_state.safetensors"
_MAX_JSON_BYTES = 16 << 20


# -- models -----------------------------------------------------------------------------
def save_model(directory, net: Sequential, cost: Cost | str | None = None,
               metadata: dict | None = None, training_state: tuple[dict, dict] | None = None
               ) -> Path:
    """Write ``directory/config.json`` and ``directory/weights.safetensors`` atomically.

    ``training_state`` (the trainer's ``state_dict``) is written in the same directory
    swap, so a crash never pairs these weights with another epoch's state.
    """
    config = {"format": FORMAT, "version": VERSION, "net": net.config(),
              "cost": get_cost(cost).config() if cost is not None else None,
              "dtype": np.dtype(net.backend.dtype).name, "metadata": checked_metadata(metadata)}
    tensors = {f"layer{i}.{name}": np.ascontiguousarray(to_host(p))
               for i, layer in enumerate(net.layers) for name, p in layer.params.items()}
    files = {CONFIG: json.dumps(config, indent=2).encode(),
             WEIGHTS: safetensors.numpy.save(tensors)}
    if training_state is not None:
        files.update(_state_files(training_state))
    return _replace_directory(Path(directory), files)


def load_model(directory, *, backend: Backend | None = None, dtype: str | None = None):
    """Load a saved model; returns ``(net, cost, metadata)``.

    ``dtype`` overrides the stored float type (e.g. load a float32 model in float64).
    """
    directory = finish_interrupted_swap(directory)
    config = _read_json(directory / CONFIG)
    if config.get("format") != FORMAT:
        raise ModelFileError(f"{directory / CONFIG}: not a nablanet model "
                             f"(format is {config.get('format')!r})")
    if config.get("version") != VERSION:
        raise ModelFileError(f"{directory / CONFIG}: unsupported version {config.get('version')!r}")
    stored = config.get("dtype", "float32")
    if backend is None and dtype is None and stored not in ("float32", "float64"):
        raise ModelFileError(f"{directory / CONFIG}: unsupported dtype {stored!r} "
                             "(float32 or float64)")
    backend = backend or get_backend("cpu", dtype or stored)
    tensors = _read_tensors(directory / WEIGHTS)
    with parameter_budget(sum(t.size for t in tensors.values()), WEIGHTS):
        net = build_net(config.get("net"), backend, where=directory / CONFIG)
    install_weights(net, tensors, where=directory / WEIGHTS)
    cost_cfg = config.get("cost")
    cost = None
    if cost_cfg is not None:
        name = cost_cfg.get("name") if isinstance(cost_cfg, dict) else None
        if not isinstance(name, str) or name not in COSTS:
            raise ModelFileError(f"{directory / CONFIG}: unknown cost {cost_cfg!r}")
        cost = get_cost(name)
    return net, cost, _metadata(config, directory / CONFIG)


def build_net(spec, backend: Backend, where="config") -> Sequential:
    """Build a :class:`Sequential` from its JSON description, using only registered layers."""
    if not isinstance(spec, dict) or spec.get("type") != "Sequential":
        raise ModelFileError(f"{where}: 'net' must describe a Sequential network")
    layer_specs, shape = spec.get("layers"), spec.get("input_shape")
    if not isinstance(layer_specs, list) or not layer_specs:
        raise ModelFileError(f"{where}: 'layers' must be a non-empty list")
    # type(s) is int: JSON's true would pass isinstance(s, int) and be read as 1
    if not isinstance(shape, list) or not all(type(s) is int and s > 0 for s in shape):
        raise ModelFileError(f"{where}: 'input_shape' must be a list of positive integers")
    layers = layers_from_specs(layer_specs, where, ModelFileError)
    try:
        # Weights are overwritten by install_weights; the seed only fills the shapes.
        return Sequential(layers).build(tuple(shape), backend, rng=0)
    except (ValueError, MemoryError) as exc:          # ConfigError is a ValueError too
        raise ModelFileError(f"{where}: {_describe(exc)}") from None


def install_weights(net: Sequential, tensors: dict, where="weights") -> None:
    """Copy named tensors into ``net``; every parameter must be present with its shape."""
    expected = {f"layer{i}.{name}": (layer, name)
                for i, layer in enumerate(net.layers) for name in layer.params}
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise ModelFileError(f"{where}: tensors do not match the architecture "
                             f"(missing {missing or 'none'}, unexpected {extra or 'none'})")
    for key, (layer, name) in expected.items():
        layer.set_params(**{name: checked_tensor(tensors[key], key, layer.params[name].shape,
                                                 where)})


def checked_tensor(value: np.ndarray, key: str, shape: tuple, where="weights") -> np.ndarray:
    """``value``, checked to be a float tensor of ``shape`` holding only finite numbers."""
    if value.shape != tuple(shape):
        raise ModelFileError(f"{where}: {key} has shape {value.shape}, architecture needs "
                             f"{tuple(shape)}")
    if value.dtype.kind != "f":
        raise ModelFileError(f"{where}: {key} has non-float dtype {value.dtype}")
    if not np.isfinite(value).all():
        raise ModelFileError(f"{where}: {key} holds non-finite values (NaN or inf)")
    return value


# -- training state (for --resume) --------------------------------------------------------
def save_training_state(directory, state: tuple[dict, dict]) -> None:
    """Write the trainer's (scalars, arrays) beside a saved model, each file atomically.

    A checkpoint passes the state to :func:`save_model` instead, so that the weights
    and the state are replaced together.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in _state_files(state).items():
        atomic_write_bytes(directory / name, data)


def load_training_state(directory) -> tuple[dict, dict]:
    directory = finish_interrupted_swap(directory)
    return _read_json(directory / STATE), _read_tensors(directory / STATE_ARRAYS)


# -- helpers --------------------------------------------------------------------------------
def _state_files(state: tuple[dict, dict]) -> dict[str, bytes]:
    scalars, arrays = state
    host = {k: np.ascontiguousarray(to_host(v)) for k, v in arrays.items()}
    return {STATE_ARRAYS: safetensors.numpy.save(host), STATE: json.dumps(scalars).encode()}


def checked_metadata(metadata) -> dict:
    """``metadata`` to save: a dict of JSON values, or None for {}. A list was written and
    then refused by every load as "not a JSON object"; a set failed mid-way in json.dumps."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise ConfigError(f"metadata must be a dict, got {type(metadata).__name__}")
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"metadata must hold JSON values (numbers, strings, lists, dicts): "
                          f"{exc}") from None
    return metadata


def _metadata(config: dict, where: Path) -> dict:
    metadata = config.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{where}: 'metadata' must be a JSON object")
    return metadata


def _describe(exc: BaseException) -> str:
    """What went wrong building the layers a file describes, in one line."""
    if isinstance(exc, NablanetError):
        return str(exc)
    # NumPy's MemoryError or "array is too big": sizes no allocation can hold
    return f"the layers it describes are too large to allocate ({exc})"


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise ModelFileError(f"{path}: file not found")
    if path.stat().st_size > _MAX_JSON_BYTES:
        raise ModelFileError(f"{path}: too large for a model description")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:
        # ValueError: bad UTF-8, bad JSON, an integer of over 4300 digits;
        # RecursionError: arrays or objects nested thousands deep
        raise ModelFileError(f"{path}: malformed JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelFileError(f"{path}: expected a JSON object")
    return data


def _read_tensors(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise ModelFileError(f"{path}: file not found")
    try:
        return safetensors.numpy.load(path.read_bytes())
    except KeyError as exc:                 # a dtype NumPy has no type for, e.g. BF16
        raise ModelFileError(f"{path}: unsupported tensor dtype {exc}") from None
    except (safetensors.SafetensorError, ValueError, OverflowError) as exc:
        raise ModelFileError(f"{path}: truncated or malformed safetensors file ({exc})") from None


def finish_interrupted_swap(directory) -> Path:
    """``directory`` as a Path, first put back in place if a process was killed between the
    two renames of :func:`_replace_directory` (SIGKILL or power loss: an exception puts the
    old one back itself). The directory is then missing, the previous one sits in
    ``.<name>.<pid>.<hex>.old`` and the complete new one in ``.<name>.<pid>.<hex>.new`` (it is
    written in full before the first rename), so the new one is moved in, or the old one
    if the new is gone. A swap whose process is still alive is left to finish."""
    directory = Path(directory)
    if directory.exists():
        return directory
    for old in sorted(directory.parent.glob(f".{directory.name}.*.old"),
                      key=lambda p: p.stat().st_mtime, reverse=True):
        tag = old.name[len(directory.name) + 2:-len(".old")]
        if _process_alive(tag.split(".")[0]):
            continue
        new = old.with_name(f".{directory.name}.{tag}.new")
        os.replace(new if new.is_dir() else old, directory)
        shutil.rmtree(old, ignore_errors=True)
        break
    return directory


def _process_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)                # signal 0: only asks whether it exists
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:                 # it exists, another user's
        pass
    return True


def _replace_directory(target: Path, files: dict[str, bytes]) -> Path:
    """Write ``files`` into a fresh directory, then swap it in for ``target``."""
    target = finish_interrupted_swap(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}.{secrets.token_hex(4)}"
    fresh = target.with_name(f".{target.name}.{tag}.new")
    old = target.with_name(f".{target.name}.{tag}.old")
    try:
        fresh.mkdir()
        for name, data in files.items():
            atomic_write_bytes(fresh / name, data)
        if target.exists():
            # Keep files not written here (e.g. the training state) with the new model.
            for extra in target.iterdir():
                if extra.name not in files and extra.is_file():
                    shutil.copy2(extra, fresh / extra.name)
            os.replace(target, old)
        try:
            os.replace(fresh, target)
        except BaseException:
            if old.exists():                     # put the previous model back
                os.replace(old, target)
            raise
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return target
