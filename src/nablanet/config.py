"""Training configuration: one dataclass, its TOML form, and the builders that use it.

The ``train`` flags, a ``--config`` TOML file, ``reproduce`` and the tests all pass
through :class:`TrainConfig`, so every default and every check lives here once.
The defaults are the default MNIST network of ``make run``: Nielsen's network2
``Network([784, 100, 10])`` with sigmoid units, the cross-entropy cost, η = 0.5,
λ = 5.0, mini-batches of 10 for 30 epochs, weights drawn from N(0, 1/n_in).

A TOML file uses the flags' names with underscores (``batch_size = 10``); flags
given on the command line win over the file (:meth:`TrainConfig.merged_with`).
A value that is unset (``sizes``, ``output``, ``max_norm``, ...) is ``None`` in
Python and simply absent from the TOML file.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import tomli_w

from .costs import COSTS, Cost, get_cost
from .errors import ConfigError
from .optimizers import OPTIMIZERS, Optimizer, get_optimizer
from .regularizers import L1, L2, MaxNorm
from .training.schedules import SCHEDULES

#: the accepted values of each string setting (the CLI offers the same lists)
CHOICES: dict[str, tuple[str, ...]] = {
    "activation": ("sigmoid", "tanh", "relu", "leaky-relu"),
    "output": ("sigmoid", "softmax", "linear"),
    "cost": tuple(COSTS),
    "init": ("normal", "normal-scaled", "uniform", "glorot", "he"),
    "optimizer": tuple(OPTIMIZERS),
    "schedule": tuple(SCHEDULES),
    "device": ("cpu", "gpu"),
    "dtype": ("float32", "float64"),
}
#: outputs each cost can read: cross-entropy and log-likelihood take ln a, so a ∈ (0, 1)
_COST_OUTPUTS = {"quadratic": CHOICES["output"], "cross-entropy": ("sigmoid", "softmax"),
                 "log-likelihood": ("softmax", "sigmoid")}
#: optimisers that take the momentum coefficient μ
_MOMENTUM_OPTIMIZERS = ("momentum", "nesterov")
#: settings read only beside certain values of another: {setting: (other, its values)}
_READ_ONLY_BESIDE = {"momentum": ("optimizer", _MOMENTUM_OPTIMIZERS),
                     "step_every": ("schedule", ("step",)),
                     "schedule_patience": ("schedule", ("halve-on-plateau",))}
MNIST = "mnist"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (and nothing about where it is written)."""

    # -- data -------------------------------------------------------------------------
    dataset: str = MNIST              # "mnist" or a folder of the four IDX files
    data_dir: str | None = None       # where to look for MNIST (see nablanet.data.mnist)
    validation_size: int = 10_000     # held out from the END of the training set
    # -- architecture -----------------------------------------------------------------
    hidden: list[int] = field(default_factory=lambda: [100])
    sizes: list[int] | None = None    # the whole net, e.g. [784, 30, 10]; wins over hidden
    # Any net as a list of layers, [[layers]] tables in TOML: {type = "Conv2D",
    # out_channels = 20, kernel_size = 5} (input sizes come from the layer below; blocks:
    # {type = "Residual", layers = [...]}); replaces the settings in LAYERS_REPLACE (flags
    # that give one are refused).
    layers: list[dict] | None = None
    classes: int = 10                 # output units; sizes[-1] when sizes is given
    activation: str = "sigmoid"       # hidden units
    output: str | None = None         # None: softmax for log-likelihood, else sigmoid
    init: str = "normal-scaled"
    dropout: float = 0.0              # p of dropping a hidden unit
    input_dropout: float = 0.0        # p of dropping an input pixel
    # -- cost and regularisation ----------------------------------------------------
    cost: str = "cross-entropy"
    lmbda: float = 5.0                # L2: λ/2n Σ w²
    l1: float = 0.0                   # L1: λ₁/n Σ |w|
    max_norm: float | None = None     # ‖w‖ ≤ c for each unit's incoming weights
    # -- optimisation ----------------------------------------------------------------
    eta: float = 0.5
    batch_size: int = 10
    epochs: int = 30
    optimizer: str = "sgd"
    momentum: float = 0.9             # μ, for momentum and nesterov
    schedule: str = "constant"
    schedule_patience: int = 10       # halve-on-plateau: epochs without improvement
    step_every: int = 10              # step: halve η every this many epochs
    early_stopping: int | None = None  # stop after this many epochs without improvement
    growing_patience: bool = False    # patience grows to 2 × the epoch of each new best
    # -- reproducibility and hardware ---------------------------------------------
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _coerce(f.name, getattr(self, f.name)))
        if self.sizes:                          # the output layer's width is the class count
            object.__setattr__(self, "classes", self.sizes[-1])
        _check_ranges(self)

    # -- construction ---------------------------------------------------------------
    @classmethod
    def from_dict(cls, values: Mapping[str, Any], where: str = "config") -> "TrainConfig":
        """A config from ``{key: value}``; unknown keys and wrong types name the key."""
        _check_keys(values, where)
        _check_classes(values, where)
        try:
            return cls(**values)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    @classmethod
    def from_toml(cls, path: str | os.PathLike, *, allow_empty: bool = True) -> "TrainConfig":
        """Read a TOML file of ``key = value`` lines (the flags' names with underscores).

        An empty file means the defaults, unless ``allow_empty=False``: a file nablanet
        wrote itself lists every setting, so an empty one is a damaged file.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read ({exc})") from None
        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: malformed TOML: {exc}") from None  # says "(at line N, ...)"
        except RecursionError:
            raise ConfigError(f"{path}: malformed TOML: arrays or tables nested too deep") from None
        if not values and not allow_empty:
            raise ConfigError(f"{path}: holds no settings (empty or damaged)")
        return cls.from_dict(values, where=str(path))

    def merged_with(self, flags: Mapping[str, Any], where: str = "command line") -> "TrainConfig":
        """This config with ``flags`` (the settings given explicitly) laid over it.

        Giving ``hidden`` without ``sizes`` drops ``sizes`` from below, so
        ``--hidden 30`` overrides a file's ``sizes = [784, 100, 10]``.
        """
        _check_keys(flags, where)
        values = {**self.to_dict(), **flags}
        ignored = [key for key in LAYERS_REPLACE if key in flags]
        if values["layers"] is not None and ignored:
            # Accepted, they would be written to config.toml and never used.
            raise ConfigError(f"{where}: {', '.join(ignored)} cannot change a net given as "
                              "[[layers]]; edit the layer list instead")
        if "hidden" in flags and "sizes" not in flags:
            values["sizes"] = None
        if "sizes" in flags and "classes" not in flags:
            del values["classes"]               # follows the new sizes
        return TrainConfig.from_dict(values, where)

    def resolve(self, n_features: int) -> "TrainConfig":
        """The config with every derived value filled in, as written to a run's config.toml.

        ``sizes`` becomes [n_features, *hidden, classes] (or is checked against the
        data when given), ``hidden`` and ``classes`` follow from it, and ``output``
        gets its default.
        """
        if self.layers is not None:             # the layers say the rest
            sizes = [int(n_features), self.sizes[-1] if self.sizes else self.classes]
            return dataclasses.replace(self, sizes=sizes, hidden=[], classes=sizes[-1],
                                       output=self.output_activation)
        sizes = self.sizes or [int(n_features), *self.hidden, self.classes]
        if sizes[0] != n_features:
            raise ConfigError(f"sizes {sizes} start with {sizes[0]} inputs, "
                              f"but the data has {n_features} features per example")
        return dataclasses.replace(self, sizes=sizes, hidden=sizes[1:-1], classes=sizes[-1],
                                   output=self.output_activation)

    # -- views ------------------------------------------------------------------------
    @property
    def output_activation(self) -> str:
        """The output units: as set, else softmax for log-likelihood and sigmoid otherwise."""
        if self.output is not None:
            return self.output
        return "softmax" if self.cost == "log-likelihood" else "sigmoid"

    @property
    def n_classes(self) -> int:
        return self.sizes[-1] if self.sizes else self.classes

    def idle_settings(self, keys) -> list[str]:
        """Of the settings ``keys`` (those given explicitly), the ones this config never
        reads, each with why: μ without a momentum optimiser, a schedule's parameter under
        another schedule, growing patience without early stopping. Not an error: a config
        file may hold them all, and one flag may switch between them."""
        idle = []
        for key, (other, readers) in _READ_ONLY_BESIDE.items():
            value = getattr(self, other)
            if key in keys and value not in readers:
                idle.append(f"{key} is read only with {other} {' or '.join(map(str, readers))}"
                            f" (this run: {value})")
        if "growing_patience" in keys and self.growing_patience and self.early_stopping is None:
            idle.append("growing_patience is read only with early_stopping (this run: off)")
        return idle

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _copy(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_toml_dict(self) -> dict[str, Any]:
        """The settings TOML can hold: everything except the unset (None) values."""
        return {k: v for k, v in self.to_dict().items() if v is not None}


FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(TrainConfig))
#: the settings of a net made by mlp(), which a [[layers]] list describes itself (its
#: output width is ``classes``)
LAYERS_REPLACE = ("hidden", "sizes", "activation", "init", "dropout", "input_dropout")
_HINTS = typing.get_type_hints(TrainConfig)


# -- builders: config → the objects nablanet.training needs -------------------------------
def build_net(config: TrainConfig, rng):
    """The network ``config.layers`` or ``config.sizes`` describes (resolve the config first)."""
    from .backend import get_backend
    from .errors import NablanetError
    from .io import _describe

    if config.sizes is None:
        raise ConfigError("build_net needs a resolved config (sizes unset); call resolve()")
    try:
        return _net_of(config, get_backend(config.device, config.dtype), rng)
    except NablanetError:           # ConfigError is a ValueError: already one clear line
        raise
    except (ValueError, MemoryError) as exc:
        # NumPy's MemoryError or "array is too big": widths no machine can hold
        where = "layers" if config.layers is not None else "sizes"
        raise ConfigError(f"{where}: {_describe(exc)}") from None


def _net_of(config: TrainConfig, backend, rng):
    from .layers.base import layers_from_specs
    from .net import Sequential, mlp

    if config.layers is not None:
        net = Sequential(layers_from_specs(config.layers, "layers", ConfigError)).build(
            (config.sizes[0],), backend, rng)
        if tuple(net.output_shape) != (config.sizes[-1],):
            raise ConfigError(f"layers end in output shape {tuple(net.output_shape)}, but the "
                              f"data has {config.sizes[-1]} classes")
        last = net.output_activation
        units = type(last).__name__.lower() if last is not None else "linear"
        if units != config.output_activation:
            raise ConfigError(f"layers end in {units} units, but cost {config.cost!r} is set up "
                              f"for {config.output_activation} outputs: end the list with a "
                              f"{config.output_activation.capitalize()} layer or set output")
        return net
    return mlp(config.sizes, config.activation, config.output_activation, init=config.init,
               dropout=config.dropout, input_dropout=config.input_dropout,
               backend=backend, rng=rng)


def build_cost(config: TrainConfig) -> Cost:
    return get_cost(config.cost)


def build_optimizer(config: TrainConfig) -> Optimizer:
    extra = {"momentum": config.momentum} if config.optimizer in _MOMENTUM_OPTIMIZERS else {}
    return get_optimizer(config.optimizer, config.eta, **extra)


def build_penalties(config: TrainConfig) -> list:
    """L2 (weight decay, λ) and L1 (λ₁) terms; a zero strength adds nothing."""
    return ([L2(config.lmbda)] if config.lmbda else []) + ([L1(config.l1)] if config.l1 else [])


def build_constraints(config: TrainConfig) -> list:
    return [MaxNorm(config.max_norm)] if config.max_norm is not None else []


def build_callbacks(config: TrainConfig, monitor: str = "validation_accuracy") -> list:
    """The learning-rate schedule and early stopping, both watching ``monitor``."""
    from .training import BoldDriver, CosineDecay, EarlyStopping, HalveOnPlateau, StepDecay

    callbacks = []
    if config.schedule == "step":
        callbacks.append(StepDecay(config.step_every))
    elif config.schedule == "cosine":
        callbacks.append(CosineDecay(config.epochs))
    elif config.schedule == "halve-on-plateau":
        callbacks.append(HalveOnPlateau(config.schedule_patience, monitor=monitor))
    elif config.schedule == "bold-driver":
        callbacks.append(BoldDriver())
    if config.early_stopping is not None:
        # restore_best=False: the best model is on disk in best/, not copied in memory.
        callbacks.append(EarlyStopping(config.early_stopping, monitor=monitor,
                                       restore_best=False, growing=config.growing_patience))
    return callbacks


def build_trainer(config: TrainConfig, net, *, rng, callbacks=(),
                  monitor: str = "validation_accuracy"):
    """A :class:`~nablanet.training.Trainer` for ``net`` with everything ``config`` asks for.

    ``callbacks`` (checkpoints, loggers) join the schedule and early stopping;
    ``monitor`` is the metric the schedule and early stopping watch.
    """
    from .training import Trainer

    return Trainer(net, build_cost(config), build_optimizer(config),
                   batch_size=config.batch_size, penalties=build_penalties(config),
                   constraints=build_constraints(config),
                   callbacks=[*build_callbacks(config, monitor), *callbacks], rng=rng)


def load_splits(dataset: str = MNIST, *, data_dir=None, validation_size: int = 10_000,
                dtype: str = "float32"):
    """``Splits(train, validation, test)`` of MNIST, of a folder of the four IDX files, of
    an ``.npz`` archive (x_train, y_train, x_test, y_test) or of a folder with
    ``train.csv`` and ``test.csv``.

    The validation set is the last ``validation_size`` training examples (Nielsen's
    split); MNIST files are checked against their SHA-256.
    """
    from .data import (Dataset, check_representable, hold_out_last, load_idx_dir, load_mnist,
                       load_train_test)
    from .data.dataset import Splits
    from .errors import DataError

    if dataset == MNIST:
        return load_mnist(data_dir, validation_size=validation_size, dtype=dtype)
    path = Path(dataset).expanduser()
    if not path.is_dir() and path.suffix.lower() != ".npz":
        problem = "not a folder or an .npz archive" if path.exists() else "no such file or folder"
        raise DataError(f"{dataset}: {problem} (a data set is 'mnist', a folder of the four IDX "
                        "files or of train.csv and test.csv, or an .npz archive)")
    if path.suffix.lower() == ".npz" or (path / "train.csv").is_file():
        full, test = load_train_test(path)
        for d in (full, test):      # before the cast turns 1e300 into an unexplained inf
            check_representable(d.x, dtype, d.name)
        full, test = (Dataset(d.x.astype(dtype, copy=False), d.y, d.name) for d in (full, test))
    else:
        full, _, test = load_idx_dir(path, dtype=dtype)
    if test.n_features != full.n_features:
        # Caught here, not after a whole run has trained on the training set.
        raise DataError(f"{dataset}: test examples have {test.n_features} features but "
                        f"training examples have {full.n_features}")
    if validation_size >= len(full):
        raise DataError(f"{dataset}: cannot hold out {validation_size} of {len(full)} training "
                        "examples for validation; pass a smaller --validation-size")
    train, validation = hold_out_last(full, validation_size)
    return Splits(train, validation, test)


def load_data(config: TrainConfig):
    """The splits ``config`` names, loaded in its float type."""
    return load_splits(config.dataset, data_dir=config.data_dir,
                       validation_size=config.validation_size, dtype=config.dtype)


# -- checks ----------------------------------------------------------------------------------
def _check_keys(values: Mapping[str, Any], where: str) -> None:
    for key in values:
        if key not in FIELDS:
            close = difflib.get_close_matches(str(key).replace("-", "_"), FIELDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint}")


def _check_classes(values: Mapping[str, Any], where: str) -> None:
    """``classes`` only counts without ``sizes`` (whose last entry is the output layer): one
    that the sizes contradict would be ignored silently (TrainConfig sets it to sizes[-1])."""
    sizes, classes = values.get("sizes"), values.get("classes")
    if classes is not None and isinstance(sizes, list) and sizes and sizes[-1] != classes:
        raise ConfigError(f"{where}: classes = {classes!r} disagrees with sizes = {sizes!r}, "
                          f"whose last entry is the number of output units; set one of them")


def _coerce(key: str, value: Any) -> Any:
    """``value`` checked against the annotation of ``key`` (an int is a valid float)."""
    hint = _HINTS[key]
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) and type(None) in args:
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
    if hint == list[dict]:
        return _layer_specs(value)
    if typing.get_origin(hint) is list:
        if isinstance(value, (list, tuple)) and all(_is_int(v) for v in value):
            return [int(v) for v in value]
        raise ConfigError(f"{key} must be a list of integers, got {value!r}")
    ok = {bool: isinstance(value, bool), int: _is_int(value), str: isinstance(value, str),
          float: _is_int(value) or isinstance(value, float)}[hint]
    if not ok:
        raise ConfigError(f"{key} must be {_TYPE_NAMES[hint]}, got {value!r}")
    if hint is float and not math.isfinite(value):
        # inf passes "> 0" and "≥ 0", then shows up as a diverged run blaming η.
        raise ConfigError(f"{key} must be a finite number, got {value!r}")
    return hint(value)


def _layer_specs(value) -> list[dict]:
    """A ``layers`` list, checked by building each layer once (unknown types, bad arguments)."""
    from .layers.base import layers_from_specs

    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"layers must be a non-empty list of tables, got {value!r}")
    specs = [dict(spec) if isinstance(spec, dict) else spec for spec in value]
    layers_from_specs(specs, "layers", ConfigError)
    try:
        tomli_w.dumps({"layers": specs})
    except TypeError as exc:
        # A run writes its config.toml before training; say so here, not in a traceback there.
        raise ConfigError(f"layers must hold only values a TOML file can (a run saves them "
                          f"in config.toml): {exc}") from None
    return specs


_TYPE_NAMES = {bool: "true or false", int: "an integer", str: "a string", float: "a number"}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_ranges(c: TrainConfig) -> None:
    for key, choices in CHOICES.items():
        value = getattr(c, key)
        if value is not None and value not in choices:
            raise ConfigError(f"{key} must be one of {', '.join(choices)}; got {value!r}")
    rules = [
        ("dataset", bool(c.dataset), "must name a data set"),
        ("validation_size", c.validation_size >= 0, "must be ≥ 0"),
        ("hidden", all(h >= 1 for h in c.hidden), "must list positive layer widths"),
        ("sizes", c.sizes is None or (len(c.sizes) >= 2 and min(c.sizes) >= 1),
         "must list at least two positive layer widths (inputs ... outputs)"),
        ("classes", c.classes >= 2, "must be ≥ 2"),
        ("dropout", 0 <= c.dropout < 1, "must be in [0, 1)"),
        ("input_dropout", 0 <= c.input_dropout < 1, "must be in [0, 1)"),
        ("lmbda", c.lmbda >= 0, "must be ≥ 0"),
        ("l1", c.l1 >= 0, "must be ≥ 0"),
        ("max_norm", c.max_norm is None or c.max_norm > 0, "must be > 0"),
        ("eta", c.eta > 0, "must be > 0"),
        ("batch_size", c.batch_size >= 1, "must be ≥ 1"),
        ("epochs", c.epochs >= 1, "must be ≥ 1"),
        ("momentum", 0 <= c.momentum < 1, "must be in [0, 1)"),
        ("schedule_patience", c.schedule_patience >= 1, "must be ≥ 1"),
        ("step_every", c.step_every >= 1, "must be ≥ 1"),
        ("early_stopping", c.early_stopping is None or c.early_stopping >= 1, "must be ≥ 1"),
        ("seed", c.seed >= 0, "must be ≥ 0"),
    ]
    for key, ok, rule in rules:
        if not ok:
            raise ConfigError(f"{key} {rule}, got {getattr(c, key)!r}")
    if c.output_activation not in _COST_OUTPUTS[c.cost]:
        raise ConfigError(f"cost {c.cost!r} needs outputs in (0, 1), which {c.output!r} units "
                          f"do not give; use output {' or '.join(_COST_OUTPUTS[c.cost])}")


def _copy(value):
    return copy.deepcopy(value) if isinstance(value, list) else value
