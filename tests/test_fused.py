"""The SGD step folded into the weight-gradient GEMM (training/fused.py)."""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from nablanet import SGD, mlp
from nablanet.backend import get_backend
from nablanet.data import Dataset
from nablanet.optimizers import Momentum
from nablanet.regularizers import L1, L2
from nablanet.training import Trainer, fused

F64 = get_backend("cpu", "float64")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
def test_gemm_update_is_beta_p_plus_alpha_ab(dtype, order):
    rng = np.random.default_rng(0)
    p = np.asarray(rng.standard_normal((7, 5)), dtype=dtype, order=order)
    x = rng.standard_normal((3, 7)).astype(dtype)          # a = xᵀ, as Dense passes it
    b = rng.standard_normal((3, 5)).astype(dtype)
    strided = rng.standard_normal((7, 6)).astype(dtype)[:, ::2]   # neither C nor F
    for a in (x.T, np.ascontiguousarray(x.T), strided[:, :3]):
        expected = 0.9 * p + (-0.1) * (a @ b)
        before = p
        fused.gemm_update(p, a, b, -0.1, 0.9)
        assert p is before
        np.testing.assert_allclose(p, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemv_update_is_beta_p_plus_alpha_row_sum(dtype):
    rng = np.random.default_rng(1)
    d = rng.standard_normal((6, 5)).astype(dtype)
    for rows in (d, np.asfortranarray(d), rng.standard_normal((6, 10)).astype(dtype)[:, ::2]):
        p = rng.standard_normal(5).astype(dtype)
        expected = 0.9 * p + (-0.1) * rows.sum(axis=0)
        before = p
        fused.gemv_update(p, rows, -0.1, 0.9, ones=np.ones(8, dtype))   # longer ones: sliced
        assert p is before
        np.testing.assert_allclose(p, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("order", ["C", "F"])
def test_fused_step_handles_any_layout(order):
    """The general layouts go through gemm_update/gemv_update; products equal a @ w."""
    rng = np.random.default_rng(2)
    p = np.asarray(rng.standard_normal((7, 5)), order=order)
    bias = rng.standard_normal(5)
    step = fused.FusedSGD(0.1, 2.0, 40, np.float64)     # α = −0.1, β = 1 − 0.1·2/40
    x, d = rng.standard_normal((3, 7)), rng.standard_normal((3, 5))
    for a, rows in ((x.T, d), (np.ascontiguousarray(x.T), np.asfortranarray(d))):
        expected_p = 0.995 * p - 0.1 * (a @ rows)
        expected_b = 0.995 * bias - 0.1 * rows.sum(axis=0)
        step.matmul(p, a, rows)
        step.row_sum(bias, rows)
        np.testing.assert_allclose(p, expected_p, rtol=1e-12)
        np.testing.assert_allclose(bias, expected_b, rtol=1e-12)
    w = np.asarray(rng.standard_normal((7, 5)), order=order)
    for a in (x, np.asfortranarray(x), x.astype(np.float32)):
        np.testing.assert_allclose(step.product(a, w), a @ w, rtol=1e-6)
    # mixed dtypes promote as matmul does (?gemm would cast float64 input to float32)
    w32 = w.astype(np.float32)
    assert fused.FusedSGD(0.1, 0.0, 40, np.float32).product(x, w32).dtype == np.float64


def _data(n=300, features=12, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return Dataset(rng.random((n, features)), rng.integers(0, classes, n), "random")


def _train(optimizer, penalties=(), fuse=True, monkeypatch=None, epochs=3, blas_threads="auto"):
    net = mlp([12, 9, 7, 4], "sigmoid", "softmax", rng=0, backend=F64)
    trainer = Trainer(net, "log-likelihood", optimizer, batch_size=10, penalties=penalties,
                      monitor=(), rng=1, blas_threads=blas_threads)
    if not fuse:
        monkeypatch.setattr(fused, "fusable_parameters", lambda t: [])
    trainer.fit(_data(), epochs)
    monkeypatch.undo()
    return trainer


@pytest.mark.parametrize("penalties", [(), (L2(5.0),), (L2(2.0), L2(3.0, include_biases=True))])
def test_fused_sgd_trains_like_the_two_step_update(penalties, monkeypatch):
    calls = []
    originals = fused.FusedSGD.matmul, fused.FusedSGD.row_sum

    def counting(original):
        def call(self, p, *args):
            calls.append(p.shape)
            original(self, p, *args)
        return call

    with threadpool_limits(1, user_api="blas"):
        plain = _train(SGD(0.5), penalties, fuse=False, monkeypatch=monkeypatch)
        monkeypatch.setattr(fused.FusedSGD, "matmul", counting(originals[0]))
        monkeypatch.setattr(fused.FusedSGD, "row_sum", counting(originals[1]))
        fast = _train(SGD(0.5), penalties, monkeypatch=monkeypatch)
    # every dense layer's weights and biases, every step (3 epochs of 30 batches)
    assert sorted(set(calls)) == [(4,), (7,), (7, 4), (9,), (9, 7), (12, 9)]
    assert len(calls) == 3 * 30 * 6
    for p, q in zip(plain.param_arrays(), fast.param_arrays()):
        np.testing.assert_allclose(q, p, rtol=1e-10, atol=1e-12)
    assert all(not layer.fused_updates for layer in fast.net.layers)   # disarmed after fit
    assert fast.optimizer.t == plain.optimizer.t == 3 * 30             # every step counted


def test_a_partly_fused_net_leaves_the_rest_to_the_optimiser(monkeypatch):
    """With only some parameters fused, the optimiser steps the others (and their
    gradients are cleared); with all fused it is skipped."""
    real = fused.fusable_parameters
    stepped = []
    real_step = SGD.step

    def counting_step(self, net):
        stepped.append(sum(layer.grads[name] is not None for layer, name in net.parameters()))
        real_step(self, net)

    with threadpool_limits(1, user_api="blas"):
        plain = _train(SGD(0.5), fuse=False, monkeypatch=monkeypatch)
        monkeypatch.setattr(fused, "fusable_parameters", lambda t: real(t)[:3])
        monkeypatch.setattr(SGD, "step", counting_step)
        part = _train(SGD(0.5), monkeypatch=monkeypatch)
        assert stepped == [3] * (3 * 30)           # 6 parameters, 3 fused: 3 left each step
        stepped.clear()
        monkeypatch.setattr(SGD, "step", counting_step)
        whole = _train(SGD(0.5), monkeypatch=monkeypatch)
        assert stepped == []
    for trainer in (part, whole):
        assert trainer.optimizer.t == 3 * 30 and not trainer._steps_fused
        assert all(g is None for layer in trainer.net.layers for g in layer.grads.values())
        for p, q in zip(plain.param_arrays(), trainer.param_arrays()):
            np.testing.assert_allclose(q, p, rtol=1e-10, atol=1e-12)


def test_fused_sgd_follows_a_learning_rate_change_between_epochs(monkeypatch):
    from nablanet.training import StepDecay

    def train(fuse):
        net = mlp([12, 9, 4], "sigmoid", "softmax", rng=0, backend=F64)
        trainer = Trainer(net, "log-likelihood", SGD(0.5), batch_size=10, monitor=(),
                          callbacks=[StepDecay(1, 0.5)], rng=1)
        if not fuse:
            monkeypatch.setattr(fused, "fusable_parameters", lambda t: [])
        trainer.fit(_data(), 3)
        monkeypatch.undo()
        return trainer.param_arrays()

    with threadpool_limits(1, user_api="blas"):
        for p, q in zip(train(False), train(True)):
            np.testing.assert_allclose(q, p, rtol=1e-10, atol=1e-12)


def _trainer(optimizer=None, penalties=(), layers=None):
    net = mlp([12, 9, 4], "sigmoid", "softmax", rng=0)
    if layers is not None:
        net.layers = layers(net.layers)
    trainer = Trainer(net, "log-likelihood", optimizer or SGD(0.5), penalties=penalties,
                      monitor=(), rng=0)
    trainer.n_train = 100
    return trainer


def test_fusing_is_left_off_where_it_would_change_more_than_speed():
    with threadpool_limits(1, user_api="blas"):
        assert len(fused.fusable_parameters(_trainer())) == 4      # W and b of 2 layers
        assert fused.fusable_parameters(_trainer(Momentum(0.1, momentum=0.9))) == []
        assert fused.fusable_parameters(_trainer(penalties=[L1(1.0)])) == []
        twice = _trainer(layers=lambda ls: [*ls, ls[-1]])
        assert fused.fusable_parameters(twice) == []


def test_fusing_leaves_out_parameters_blas_cannot_update_in_place():
    """?gemm/?gemv take float32/float64 arrays laid out C or F; anything else keeps the
    two-step update, and a net off NumPy (CuPy) is not fused at all."""
    from dataclasses import replace
    trainer = _trainer()
    first, second = [layer for layer in trainer.net.layers if layer.params]
    first.params["W"] = np.ones((2 * first.params["W"].shape[0], first.params["W"].shape[1]))[::2]
    second.params["b"] = second.params["b"].astype(np.float16)
    assert fused.fusable_parameters(trainer) == [(first, "b"), (second, "W")]
    trainer.net.backend = replace(trainer.net.backend, xp=object())     # a stand-in for CuPy
    assert fused.fusable_parameters(trainer) == []


@pytest.mark.parametrize("threads, libraries, separate, all_fused, expected", [
    (1, 2, True, False, False),        # one thread: fused, both pools held to one
    (2, 1, False, False, False),       # one library serves NumPy and SciPy: it keeps the threads
    (2, 2, True, True, True),          # two pools: SciPy's gets the threads and the products
    (2, 2, True, False, None),         # ... unless an unfused layer would lose its threads
    (2, 2, False, True, None),         # two libraries not told apart: not fused
])
def test_the_thread_plan_keeps_the_threads_where_the_work_is(monkeypatch, threads, libraries,
                                                             separate, all_fused, expected):
    monkeypatch.setattr(fused, "thread_count", lambda: threads)
    monkeypatch.setattr(fused, "library_count", lambda: libraries)
    monkeypatch.setattr(fused, "separate_pools", lambda: ("numpy", "scipy") if separate else None)
    monkeypatch.setattr(fused, "pool_threads", lambda n, s: ("held", n, s))
    trainer = _trainer()
    targets = fused.fusable_parameters(trainer)
    plan = fused.thread_plan(trainer.net, targets if all_fused else targets[:2])
    if expected is None:
        assert plan is None
    else:
        pools, products = plan
        assert products is expected
        if expected:
            assert pools == ("held", 1, threads)


def test_fused_training_on_two_threads_keeps_them_in_scipys_pool(monkeypatch):
    from nablanet.utils import blas
    if blas.separate_pools() is None:
        pytest.skip("NumPy and SciPy share one BLAS library here")
    seen = []
    real = fused.FusedSGD.product

    def product(self, a, w):
        seen.append(tuple(lib.num_threads for lib in blas.separate_pools()))
        return real(self, a, w)

    with threadpool_limits(1, user_api="blas"):
        plain = _train(SGD(0.5), (L2(5.0),), fuse=False, monkeypatch=monkeypatch)
    with threadpool_limits(2, user_api="blas"):
        monkeypatch.setattr(fused.FusedSGD, "product", product)
        # the trainer's own choice would be one thread for GEMMs this small: left as set
        fast = _train(SGD(0.5), (L2(5.0),), monkeypatch=monkeypatch, blas_threads=None)
        assert blas.thread_count() == 2                                 # restored
    assert seen and set(seen) == {(1, 2)}          # NumPy's pool at one, SciPy's at two
    for p, q in zip(plain.param_arrays(), fast.param_arrays()):
        np.testing.assert_allclose(q, p, rtol=1e-10, atol=1e-12)
