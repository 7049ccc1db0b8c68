"""Fuzzing the TOML configurations (``nablanet train --config``, a run's config.toml,
docs/examples/*.toml): any key given a value of another type, an extreme or a nested
table, keys removed or unknown. Each file must give a config that builds its net or
be exactly one ConfigError; so must TOML text that does not parse.
"""
from __future__ import annotations

import tempfile
import tomllib
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from fuzzing import FUZZ, loaded_or_refused, mutated, one_error
from hypothesis import assume, given
from hypothesis import strategies as st

from nablanet.config import TrainConfig, build_net
from nablanet.errors import ConfigError

EXAMPLES = sorted((Path(__file__).parents[1] / "docs" / "examples").glob("*.toml"))
#: the examples, the defaults as a run writes them, and a recurrent and an augmenting net
BASES = {
    **{path.name: tomllib.loads(path.read_text()) for path in EXAMPLES},
    "defaults": TrainConfig().to_toml_dict(),
    "lstm": {"cost": "log-likelihood", "layers": [
        {"type": "Reshape", "shape": [28, 28]}, {"type": "LSTM", "n_hidden": 8},
        {"type": "LastStep"}, {"type": "Dense", "n_out": 10}, {"type": "Softmax"}]},
    "distortion": {"layers": [
        {"type": "RandomDistortion", "kind": "affine", "rotation": 5.0, "scale": [0.9, 1.1]},
        {"type": "Dense", "n_out": 10}, {"type": "Sigmoid"}]},
}


def test_the_bases_include_every_documented_example():
    assert len(EXAMPLES) >= 3 and all(path.name in BASES for path in EXAMPLES)


def _config_and_net(path: Path):
    config = TrainConfig.from_toml(path).resolve(784)
    return config, build_net(config, np.random.default_rng(0))


def _small(config: dict) -> bool:
    """Whether the net ``config`` describes stays small: a width of 50 000 asked for in a
    config is a big net on purpose, not a damaged file, and is not built here."""
    def small(value) -> bool:
        if isinstance(value, dict):
            return all(small(v) for v in value.values())
        if isinstance(value, list):
            return all(small(v) for v in value)
        return not isinstance(value, int) or value < 1000 or value >= 10**12
    return all(small(config.get(key)) for key in ("layers", "hidden", "sizes", "classes"))


@pytest.mark.parametrize("name", sorted(BASES))
@FUZZ
@given(data=st.data())
def test_a_damaged_toml_config_builds_its_net_or_is_one_error(name, data):
    damaged = data.draw(mutated(BASES[name]))
    assume(isinstance(damaged, dict) and _small(damaged))
    try:
        text = tomli_w.dumps(damaged)
    except (TypeError, ValueError):
        assume(False)                   # None, or a key TOML cannot write: no such file exists
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "config.toml"
        path.write_text(text)
        # no bound on allocation: a width of 10¹² is asked for, and refused by NumPy
        built = loaded_or_refused(_config_and_net, path, error=ConfigError, limit=None)
    if built is not None:
        config, net = built
        assert net.output_shape == (config.n_classes,)


@pytest.mark.parametrize("text, match", [
    ("a = " + "[" * 100_000 + "]" * 100_000, "nested too deep"),     # was RecursionError
    ("eta = 0.1\neta = 0.2\n", "malformed TOML"),
    ("\ufffe = 1", "malformed TOML"),
    ("[layers]\ntype = 'Dense'", "layers must be a non-empty list"),
    ("epochs = 1e400", "epochs must be an integer, got inf"),
    ("eta = nan", "eta must be a finite number"),
])
def test_toml_that_does_not_parse_or_fit_is_one_config_error(tmp_path, text, match):
    path = tmp_path / "config.toml"
    path.write_text(text)
    one_error(ConfigError, TrainConfig.from_toml, path, match=match)


@pytest.mark.parametrize("layers, match", [
    ([{"type": "Conv2D", "out_channels": 10**12, "kernel_size": 5}], "too large to allocate"),
    ([{"type": "Dense", "n_out": 2**63 - 1}], "too large to allocate"),
])
def test_a_net_too_large_for_any_machine_is_one_config_error(layers, match):
    """Was NumPy's MemoryError or "Maximum allowed dimension exceeded" ValueError."""
    config = TrainConfig(layers=[{"type": "Reshape", "shape": [1, 28, 28]}, *layers]
                         if layers[0]["type"] == "Conv2D" else layers).resolve(784)
    with pytest.raises(ConfigError, match=match):       # asked for: no bound on allocation
        build_net(config, np.random.default_rng(0))
