"""Structure-aware mutation for the fuzz tests (test_fuzz_*.py): hypothesis strategies
that damage a JSON/TOML document at any path, and the check every fuzz test makes.

The rule under test: a malformed or mismatched file is exactly one nablanet error
(a one-line message), never another exception, a hang or a large allocation.
"""
from __future__ import annotations

import contextlib
import copy
import math
import tracemalloc
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from nablanet.errors import NablanetError

#: bounded: each fuzz test finishes in a few seconds (derandomized: the same cases on
#: every run, so a failure here is never a fluke of one run)
FUZZ = settings(max_examples=30, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
#: the slow-marked runs of the same fuzzers
FUZZ_LONG = settings(FUZZ, max_examples=1500)

#: values that break parsers: other JSON types, sizes no machine holds, non-finite
#: floats (JSON's NaN/Infinity tokens), names of things that are not what is asked for
EXTREMES = [None, True, False, 0, -1, 1, 2, 50_000, 10**12, 2**63, -(10**12), 0.5, -0.0,
            2.5, 1e308, math.nan, math.inf, -math.inf, "", "x", "Dense", "float16",
            "os.system", [], [1], [[1]], [None], {}, {"type": "Dense"}, {"type": "Residual"},
            [0, 0], [10**9, 10**9], [2, 2, 2, 2, 2]]

_leaves = (st.none() | st.booleans() | st.integers(-3, 40) | st.sampled_from([10**12, 2**64])
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=4))
json_values = st.one_of(
    st.sampled_from(EXTREMES),
    st.recursive(_leaves, lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6))

#: the largest allocation a refused file may cause (a small model is loaded whole)
MAX_ALLOCATION = 32 << 20


def single_mutations(document):
    """Every (description, damaged copy) with one value at one path replaced by each of
    :data:`EXTREMES`, removed, or given an unknown key: the exhaustive sweep."""
    for path in json_paths(document):
        for value in [*EXTREMES, "remove", "add"]:
            if not path and value in ("remove", "add"):
                continue
            damaged = copy.deepcopy(document)
            if not path:
                yield f"root = {value!r}", value
                continue
            parent, key = _parent(damaged, path), path[-1]
            if value == "remove":
                del parent[key]
            elif value == "add":
                if not isinstance(parent[key], dict):
                    continue
                parent[key]["zz_unknown"] = 1
            else:
                parent[key] = copy.deepcopy(value)
            yield f"{'.'.join(map(str, path))} {value!r}", damaged


def json_paths(document, prefix=()):
    """Every path (a tuple of keys and indices) in a JSON document, the root first."""
    yield prefix
    if isinstance(document, dict):
        for key, value in document.items():
            yield from json_paths(value, prefix + (key,))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from json_paths(value, prefix + (index,))


def _parent(document, path):
    for step in path[:-1]:
        document = document[step]
    return document


@st.composite
def mutated(draw, document, max_mutations: int = 3):
    """``document`` after 1 to ``max_mutations`` structural damages, each at any path:
    a value replaced (another type, an extreme), a key or item removed, an unknown key
    added, a value wrapped in a list or an object, an item duplicated."""
    document = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, max_mutations))):
        path = draw(st.sampled_from(list(json_paths(document))))
        operation = draw(st.sampled_from(["replace", "replace", "remove", "add", "wrap",
                                          "duplicate"]))
        value = copy.deepcopy(draw(json_values))     # EXTREMES' lists must stay as they are
        if not path:
            if operation == "replace":
                document = value
            continue
        parent, key = _parent(document, path), path[-1]
        if operation == "replace":
            parent[key] = value
        elif operation == "remove":
            del parent[key]
        elif operation == "add" and isinstance(parent[key], dict):
            parent[key][draw(st.sampled_from(["zz_unknown", "type", "layers", "n_out"]))] = value
        elif operation == "wrap":
            parent[key] = draw(st.sampled_from([[parent[key]], {"value": parent[key]}]))
        elif operation == "duplicate" and isinstance(parent[key], list) and parent[key]:
            parent[key].append(copy.deepcopy(parent[key][0]))
    return document


@contextmanager
def bounded_allocation(limit: int = MAX_ALLOCATION):
    """Fail if the block allocates more than ``limit`` bytes at its peak, whether it
    returns or raises (NumPy reports its arrays to tracemalloc, reserved or touched)."""
    was_tracing = tracemalloc.is_tracing()
    if was_tracing:
        tracemalloc.reset_peak()
    else:
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    try:
        yield
    finally:
        peak = tracemalloc.get_traced_memory()[1] - before
        if not was_tracing:
            tracemalloc.stop()
        assert peak <= limit, f"allocated {peak} bytes for a damaged file"


def loaded_or_refused(load, *args, error=NablanetError, limit: int | None = MAX_ALLOCATION,
                      **kwargs):
    """``load(*args)``'s result, or None when it raised ``error`` with a one-line message;
    any other exception, or an allocation past ``limit`` bytes (None: no bound), fails
    the test (hypothesis then shrinks the damage)."""
    try:
        with bounded_allocation(limit) if limit is not None else contextlib.nullcontext():
            return load(*args, **kwargs)
    except error as exc:
        message = str(exc)
        assert message and "\n" not in message, f"not one line: {message!r}"
        return None


def one_error(error, load, *args, match=None):
    """Assert that ``load(*args)`` raises exactly ``error`` (one line, matching ``match``)."""
    with pytest.raises(error, match=match) as info:
        with bounded_allocation():
            load(*args)
    assert "\n" not in str(info.value)
    return info.value
