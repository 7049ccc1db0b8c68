"""Recurrent layers: gradient checks (BPTT, learned and carried initial states, truncation),
sequence outputs, symbol inputs, clipping, the bad-input errors, and saving a model."""
import numpy as np
import pytest

from nablanet import ConfigError, DataError, Sequential, get_backend
from nablanet.clipping import clip_gradient_norm, gradient_norm
from nablanet.data.sequences import stack_sequences
from nablanet.gradcheck import check_layer, numerical_gradient, relative_error
from nablanet.io import load_model, save_model
from nablanet.layers import (GRU, LSTM, Embedding, LastStep, OneHot, SimpleRNN, Softmax,
                             TimeDistributedDense, reset_states, set_stateful)

F64 = get_backend("cpu", "float64")
TOL = 1e-7
FAMILIES = [SimpleRNN, LSTM, GRU]


def build(layer, shape, seed=0):
    layer.build(shape, F64, np.random.default_rng(seed))
    return layer


def recurrent(cls, n_in=3, n_hidden=4, steps=5, seed=0, **kwargs):
    layer = build(cls(n_in, n_hidden, **kwargs), (steps, n_in), seed)
    rng = np.random.default_rng(seed + 100)
    for name in layer.params:                # non-zero biases and initial states everywhere
        if name not in ("W", "U"):
            layer.params[name][...] = 0.5 * rng.standard_normal(layer.params[name].shape)
    return layer


def assert_small(errors, layer, with_x=True):
    assert set(errors) == set(layer.params) | ({"x"} if with_x else set()), errors
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("cls", FAMILIES)
@pytest.mark.parametrize("initial_state", ["zeros", "learned"])
def test_bptt_gradients_match_central_differences(cls, initial_state):
    layer = recurrent(cls, initial_state=initial_state)
    x = np.random.default_rng(1).standard_normal((2, 5, 3))
    errors = check_layer(layer, x)
    assert_small(errors, layer)
    if initial_state == "learned":
        assert {f"{n}0" for n in layer.state_names} <= set(errors)


@pytest.mark.parametrize("cls", FAMILIES)
def test_truncated_gradients_with_a_carried_state_are_exact(cls):
    """At a truncation point the carried state is a constant: the chunk's gradients are the
    exact gradients of the chunk's loss, and nothing flows into the (unused) h₀ parameter."""
    layer = recurrent(cls, initial_state="learned")
    rng = np.random.default_rng(2)
    layer.state = tuple(rng.standard_normal((3, 4)) for _ in layer.state_names)
    errors = check_layer(layer, rng.standard_normal((3, 4, 3)))
    unused_h0 = {f"{n}0" for n in layer.state_names}
    assert all(layer.grads[name] is None for name in unused_h0)      # no gradient reaches h₀
    for name in unused_h0:
        assert not numerical_gradient(lambda: float(layer.forward(np.ones((3, 4, 3)))[0].sum()),
                                      layer.params[name]).any()       # and none should
    checked = {k: v for k, v in errors.items() if k not in unused_h0}
    assert set(checked) == {"x"} | set(layer.params) - unused_h0
    assert max(checked.values()) < TOL, errors


@pytest.mark.parametrize("cls", FAMILIES)
def test_chunks_with_carried_state_reproduce_the_whole_sequence(cls):
    layer = recurrent(cls, steps=6)
    x = np.random.default_rng(3).standard_normal((2, 6, 3))
    whole, _ = layer.forward(x)
    layer.stateful = True
    parts = [layer.forward(x[:, i:i + 2])[0] for i in range(0, 6, 2)]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), whole, rtol=1e-12, atol=1e-12)
    layer.reset_state()
    np.testing.assert_allclose(layer.forward(x[:, :2])[0], whole[:, :2], rtol=1e-12)


@pytest.mark.parametrize("cls", FAMILIES)
def test_truncation_cuts_the_gradient_at_the_chunk_boundary(cls):
    """Truncated BPTT: the loss on chunk 2 sends no gradient into chunk 1's inputs, while
    backprop through the whole sequence does."""
    layer = recurrent(cls, steps=6)
    x = np.random.default_rng(4).standard_normal((2, 6, 3))
    weights = np.zeros((2, 6, 4))
    weights[:, 3:] = 1.0                                       # loss on steps 3..5 only
    y, cache = layer.forward(x)
    dx_whole = layer.backward(weights, cache)
    assert np.abs(dx_whole[:, :3]).max() > 1e-6                 # full BPTT reaches step 0

    layer.zero_grads()
    layer.stateful = True
    _, first = layer.forward(x[:, :3])
    _, second = layer.forward(x[:, 3:])
    dx_second = layer.backward(weights[:, 3:], second)
    np.testing.assert_allclose(dx_second, dx_whole[:, 3:], rtol=1e-10)  # same within the chunk
    # and chunk 1 receives nothing: its forward cache is never backpropagated (the cut)


@pytest.mark.parametrize("cls", FAMILIES)
def test_gradients_accumulate_over_calls(cls):
    layer = recurrent(cls)
    x = np.random.default_rng(5).standard_normal((2, 5, 3))
    y, cache = layer.forward(x)
    dy = np.ones_like(y)
    layer.backward(dy, cache)
    once = {k: v.copy() for k, v in layer.grads.items()}
    layer.backward(dy, cache)
    for k in once:
        np.testing.assert_allclose(layer.grads[k], 2 * once[k], rtol=1e-12)


def test_lstm_starts_with_the_keep_gate_open():
    layer = build(LSTM(3, 4), (5, 3))                   # forget_bias 1 by default
    b = layer.params["b"]
    assert np.all(b[4:8] == 1.0) and np.all(b[:4] == 0) and np.all(b[8:] == 0)


@pytest.mark.parametrize("cls", FAMILIES)
def test_fresh_biases_and_learned_initial_states_start_at_zero(cls):
    """A learned h₀ starts where the default zeros are, so until it has learned anything
    the two nets compute the same."""
    learned = build(cls(3, 4, initial_state="learned"), (5, 3))
    for name, value in learned.params.items():
        if name not in ("W", "U") and not (cls is LSTM and name == "b"):   # LSTM's b: above
            np.testing.assert_array_equal(value, 0, err_msg=name)
    zeros = build(cls(3, 4), (5, 3))
    x = np.random.default_rng(0).standard_normal((2, 5, 3))
    np.testing.assert_array_equal(learned.forward(x)[0], zeros.forward(x)[0])


@pytest.mark.parametrize("cls", FAMILIES)
@pytest.mark.parametrize("initial_state", ["zeros", "learned"])
def test_float32_layers_stay_float32(cls, initial_state):
    # outputs, ∂C/∂x and every gradient in the backend's dtype: a float64 array anywhere
    # would double the memory and the time of every layer above
    layer = cls(3, 4, initial_state=initial_state)
    layer.build((5, 3), get_backend("cpu", "float32"), np.random.default_rng(0))
    y, cache = layer.forward(np.ones((2, 5, 3), dtype=np.float32))
    dx = layer.backward(np.ones_like(y), cache)
    assert y.dtype == dx.dtype == np.float32
    assert {name: g.dtype for name, g in layer.grads.items()} == \
        {name: np.float32 for name in layer.params}


@pytest.mark.parametrize("cls", FAMILIES)
def test_glorot_fans_are_one_gates_width(cls):
    """Each gate is its own layer of H units: W and U draw U(±√(6/(fan_in + H))), not with
    fan_out = G·H."""
    n_in, h = 300, 100
    layer = build(cls(n_in, h), (2, n_in))
    for name, fan_in in (("W", n_in), ("U", h)):
        limit = np.sqrt(6 / (fan_in + h))
        assert 0.98 * limit < np.abs(layer.params[name]).max() <= limit, name


def test_sequence_to_one_and_time_distributed_gradients():
    net = Sequential([LSTM(3, 4), TimeDistributedDense(4, 2), LastStep()]).build((5, 3), F64, 0)
    x = np.random.default_rng(6).standard_normal((2, 5, 3))
    y, caches = net.forward(x)
    assert y.shape == (2, 2)
    r = np.random.default_rng(7).standard_normal(y.shape)
    net.zero_grads()
    net.backward(r, caches)

    def loss():
        return float((net.forward(x)[0] * r).sum())

    for layer in net.layers:
        for name, p in layer.params.items():
            assert relative_error(layer.grads[name], numerical_gradient(loss, p)) < TOL, name


def test_one_hot_and_embedding_inputs():
    idx = np.array([[0, 2, 1], [3, 3, 0]])
    onehot = build(OneHot(4), (3,))
    y, _ = onehot.forward(idx)
    assert y.shape == (2, 3, 4) and y.dtype == np.float64
    np.testing.assert_array_equal(y.argmax(-1), idx)
    assert y.sum() == 6

    emb = build(Embedding(4, 5), (3,))
    e, cache = emb.forward(idx)
    np.testing.assert_array_equal(e, emb.params["E"][idx])
    dy = np.random.default_rng(8).standard_normal(e.shape)
    assert emb.backward(dy, cache) is None
    expected = np.einsum("btk,btd->kd", y, dy)                  # one-hot ᵀ · δ
    np.testing.assert_allclose(emb.grads["E"], expected, rtol=1e-12)


def test_symbol_index_out_of_range_is_one_clear_error():
    with pytest.raises(DataError, match="symbol index 7 is outside"):
        build(OneHot(4), (3,)).forward(np.array([[1, 7, 0]]))
    # −1 would silently index the last symbol's row
    for layer in (OneHot(4), Embedding(4, 2)):
        with pytest.raises(DataError, match=r"symbol index -1 is outside \[0, 4\)"):
            build(layer, (3,)).forward(np.array([[1, -1, 0]]))
    with pytest.raises(DataError, match="integer symbol indices"):
        build(Embedding(4, 2), (3,)).forward(np.array([[0.5, 1.0]]))
    for layer in (OneHot(4), Embedding(4, 2)):            # n_symbols itself is one too far
        with pytest.raises(DataError, match=r"symbol index 4 is outside \[0, 4\)"):
            build(layer, (3,)).forward(np.array([[1, 4, 0]]))


def test_symbol_layers_keep_the_backend_dtype():
    f32 = get_backend("cpu", "float32")
    onehot, emb = OneHot(4), Embedding(4, 3)
    for layer in (onehot, emb):
        layer.build((3,), f32, np.random.default_rng(0))
    idx = np.array([[0, 3, 1]])
    assert onehot.forward(idx)[0].dtype == np.float32
    assert emb.forward(idx)[0].dtype == np.float32


def test_embedding_rows_have_unit_length_on_average():
    # one symbol is one active input unit: the scale comes from n_dims (N(0, 1/d) entries),
    # not from a fan_in of 1, which would make every row √d times too long
    emb = build(Embedding(200, 64), (3,))
    assert emb.params["E"].std() == pytest.approx(1 / 8, rel=0.03)


def test_sequences_of_unequal_length_without_padding_are_refused():
    ragged = [np.zeros((3, 2)), np.zeros((5, 2))]
    with pytest.raises(DataError, match="unequal lengths.*pad="):
        stack_sequences(ragged)
    layer = build(SimpleRNN(2, 3), (5, 2))
    with pytest.raises(DataError, match="unequal lengths"):
        layer.forward(ragged)
    padded = stack_sequences(ragged, pad="pre")
    assert padded.shape == (2, 5, 2)
    assert np.all(padded[0, :2] == 0)
    y, _ = layer.forward(padded)
    assert y.shape == (2, 5, 3)


@pytest.mark.parametrize("pad, first", [("pre", [9, 9, 1, 2, 3]), ("post", [1, 2, 3, 9, 9])])
def test_padding_goes_before_or_after_the_steps(pad, first):
    # distinct step values, so a sequence written at the wrong end shows
    seqs = [np.array([[1.0], [2.0], [3.0]]), np.arange(4.0, 9.0)[:, None]]
    padded = stack_sequences(seqs, pad=pad, value=9)
    np.testing.assert_array_equal(padded[:, :, 0], [first, [4, 5, 6, 7, 8]])


def test_sequences_with_different_step_shapes_are_refused():
    with pytest.raises(DataError, match=r"differ in their per-step shape: \[\(2,\), \(3,\)\]"):
        stack_sequences([np.zeros((4, 2)), np.zeros((4, 3))], pad="post")


def test_stacking_refuses_unknown_padding_no_sequences_and_scalars():
    with pytest.raises(DataError, match="pad must be None, 'pre' or 'post', got 'both'"):
        stack_sequences([np.zeros((2, 1)), np.zeros((3, 1))], pad="both")
    with pytest.raises(DataError, match="no sequences to stack"):
        stack_sequences([])
    with pytest.raises(DataError, match="needs a time axis"):
        stack_sequences([np.zeros(3), np.float64(1.0)], pad="post")


def test_stacked_sequences_take_the_type_that_holds_them_all():
    out = stack_sequences([np.array([1, 2]), np.array([0.5, 1.5])])    # int64 and float64
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [[1, 2], [0.5, 1.5]])


def test_equal_length_lists_are_stacked_and_bad_shapes_refused():
    layer = build(SimpleRNN(2, 3), (4, 2))
    y, _ = layer.forward([np.ones((4, 2)), np.zeros((4, 2))])
    assert y.shape == (2, 4, 3)
    with pytest.raises(DataError, match=r"\(batch, time, features\)"):
        layer.forward(np.ones((4, 2)))
    with pytest.raises(DataError, match="expects 2 features"):
        layer.forward(np.ones((1, 4, 5)))
    layer.state = (np.zeros((3, 3)),)
    with pytest.raises(DataError, match="reset_state"):
        layer.forward(np.ones((2, 4, 2)))
    layer.state = None
    with pytest.raises(DataError, match="no time steps"):
        layer.forward(np.ones((2, 0, 2)))
    with pytest.raises(ConfigError, match=r"SimpleRNN\(2, 3\) cannot take 5 input features"):
        layer.build((4, 5), F64, np.random.default_rng(0))


def test_gradient_clipping_rescales_to_the_threshold():
    net = Sequential([GRU(3, 4), TimeDistributedDense(4, 2)]).build((5, 3), F64, 0)
    x = np.random.default_rng(9).standard_normal((2, 5, 3))
    y, caches = net.forward(x)
    net.backward(100 * np.ones_like(y), caches)
    before = [layer.grads[n].copy() for layer, n in net.parameters()]
    norm = clip_gradient_norm(net, 1.0)
    assert norm > 1.0
    assert gradient_norm(net) == pytest.approx(1.0)
    for g0, (layer, n) in zip(before, net.parameters()):       # direction unchanged
        np.testing.assert_allclose(layer.grads[n], g0 / norm, rtol=1e-12)
    assert clip_gradient_norm(net, 10.0) == pytest.approx(1.0)  # below: untouched
    assert gradient_norm(net) == pytest.approx(1.0)
    # a norm only just above the threshold is clipped too
    assert clip_gradient_norm(net, 0.9) == pytest.approx(1.0)
    assert gradient_norm(net) == pytest.approx(0.9)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ConfigError, match="clipping threshold must be > 0"):
            clip_gradient_norm(net, bad)


@pytest.mark.parametrize("device_sum", [False, True], ids=["host-sum", "device-sum"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gradient_norm_is_the_norm_of_every_gradient(monkeypatch, device_sum, dtype):
    """Known gradients, one of them None (counted as zero). The clipping test above only
    holds the norm to itself; this holds it to a value. device_sum runs the GPU's branch
    (squares summed on the device) under NumPy: it is plain array code."""
    import nablanet.clipping as clipping
    monkeypatch.setattr(clipping, "on_gpu", lambda a: device_sum)
    net = Sequential([GRU(3, 4), TimeDistributedDense(4, 2)]).build(
        (5, 3), get_backend("cpu", dtype), 0)
    expected = 0.0
    for i, (layer, name) in enumerate(net.parameters()):
        if i == 1:
            layer.grads[name] = None
            continue
        layer.grads[name] = np.full(layer.params[name].shape, i - 2.5, dtype=dtype)
        expected += (i - 2.5) ** 2 * layer.params[name].size
    norm = gradient_norm(net)
    assert isinstance(norm, float)
    assert norm == pytest.approx(np.sqrt(expected), rel=1e-6)


@pytest.mark.parametrize("cell", [SimpleRNN, LSTM, GRU])
def test_a_carried_state_does_not_alias_the_output(cell):
    # h_T is the last step of the returned outputs: a caller (or a layer above) writing
    # into them must not change the state the next call starts from
    layer = build(cell(2, 3), (4, 2))
    layer.stateful = True
    y, _ = layer.forward(np.random.default_rng(0).standard_normal((2, 4, 2)))
    kept = [s.copy() for s in layer.state]
    y[...] = 0
    for s, k in zip(layer.state, kept):
        np.testing.assert_array_equal(s, k)


def test_stateful_helpers_and_model_files_round_trip(tmp_path):
    net = Sequential([OneHot(5), LSTM(5, 6, initial_state="learned"), GRU(6, 4),
                      SimpleRNN(4, 3), TimeDistributedDense(3, 5), Softmax()])
    net.build((7,), get_backend("cpu", "float32"), 0)
    idx = np.random.default_rng(10).integers(0, 5, (2, 7))
    y, _ = net.forward(idx)
    save_model(tmp_path / "m", net, "log-likelihood", metadata={"vocabulary": "abcde"})
    loaded, cost, meta = load_model(tmp_path / "m")
    assert meta["vocabulary"] == "abcde" and cost.name == "log-likelihood"
    np.testing.assert_array_equal(loaded.forward(idx)[0], y)

    set_stateful(loaded, True)
    parts = [loaded.forward(idx[:, i:i + 1])[0] for i in range(7)]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), y, rtol=1e-5, atol=1e-6)
    reset_states(loaded)
    assert all(getattr(layer, "state", None) is None for layer in loaded.layers)


def test_the_gradient_norm_adds_the_squared_norms_one_at_a_time_in_parameter_order():
    # 1e16 + 1 + 1 is 1e16 added one float at a time but 1e16 + 2 when compensated
    # (Python ≥ 3.12's sum()): the clipped steps must not depend on the Python version.
    from nablanet.layers import Dense, Tanh
    net = Sequential([Dense(n_out=2), Dense(n_out=2)]).build((2,), F64, 0)
    (first, w1), (_, b1), (second, w2), (_, b2) = net.parameters()
    first.grads[w1] = np.array([[1e8, 0.0], [0.0, 0.0]])
    first.grads[b1] = np.array([1.0, 0.0])
    second.grads[w2] = np.array([[0.0, 0.0], [0.0, -1.0]])
    total = 0.0
    for squared in (1e16, 1.0, 1.0):
        total += squared
    assert gradient_norm(net) == np.sqrt(total) == 1e8
    net.zero_grads()
    assert gradient_norm(net) == 0.0                     # every gradient None: zero
    assert gradient_norm(Sequential([Tanh()]).build((2,), F64, 0)) == 0.0   # no parameters
