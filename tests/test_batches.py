"""minibatches: the same batches in the same order, gathered ahead or not."""
import os

import numpy as np
import pytest

from nablanet import SGD, mlp
from nablanet.data import Dataset
from nablanet.training import Trainer, batches


@pytest.mark.parametrize("n, m", [(103, 10), (64, 64), (5, 8)])
def test_prefetched_batches_equal_plain_ones(n, m):
    rng = np.random.default_rng(0)
    x, y = rng.random((n, 7)), rng.integers(0, 3, n)
    order = rng.permutation(n)
    plain = list(batches.minibatches(x, y, order, m, prefetch=False))
    ahead = list(batches.minibatches(x, y, order, m, prefetch=True))
    assert len(plain) == len(ahead) == -(-n // m)
    for (xa, ya), (xb, yb), start in zip(plain, ahead, range(0, n, m)):
        np.testing.assert_array_equal(xa, x[order[start:start + m]])
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


@pytest.mark.parametrize("gather_rows", [30, 35, 7])
def test_batches_gathered_several_at_a_time_are_the_ordered_chunks(monkeypatch, gather_rows):
    """With GATHER_BYTES of 30 or 35 rows, batches of 10 are gathered three at a time (the
    103 rows in four gathers, the last one short); with 7 rows, one batch at a time. The
    batches must be the chunks of ``order`` whatever the gather size."""
    rng = np.random.default_rng(2)
    x, y = rng.random((103, 7)), rng.integers(0, 3, 103)
    order = rng.permutation(103)
    monkeypatch.setattr(batches, "GATHER_BYTES", gather_rows * x[:1].nbytes)
    got = list(batches.minibatches(x, y, order, 10, prefetch=False))
    assert [len(xb) for xb, _ in got] == [10] * 10 + [3]
    for (xb, yb), start in zip(got, range(0, 103, 10)):
        np.testing.assert_array_equal(xb, x[order[start:start + 10]])
        np.testing.assert_array_equal(yb, y[order[start:start + 10]])


@pytest.mark.parametrize("layout", ["C", "F", "strided", "float32"])
@pytest.mark.parametrize("prefetch", [False, True])
def test_batches_are_the_ordered_rows_whatever_the_layout(layout, prefetch):
    """The gather (``take``) copies the rows x[order[...]] exactly, as C-ordered arrays of
    x's dtype, from any memory layout of x."""
    rng = np.random.default_rng(1)
    base = rng.random((50, 12))
    x = {"C": base, "F": np.asfortranarray(base), "strided": base[:, ::2],
         "float32": base.astype(np.float32)}[layout]
    y, order = rng.integers(0, 3, 50), rng.permutation(50)
    got = list(batches.minibatches(x, y, order, 7, prefetch=prefetch))
    for (xb, yb), start in zip(got, range(0, 50, 7)):
        rows = order[start:start + 7]
        np.testing.assert_array_equal(xb, x[rows])
        np.testing.assert_array_equal(yb, y[rows])
        assert xb.dtype == x.dtype and xb.flags.c_contiguous


def test_only_large_batches_are_gathered_ahead(monkeypatch):
    seen = []
    real = batches.ThreadPoolExecutor

    def spy(*args, **kwargs):
        seen.append(True)
        return real(*args, **kwargs)

    monkeypatch.setattr(batches, "ThreadPoolExecutor", spy)
    monkeypatch.setattr(batches, "spare_core", lambda: True)
    x = np.zeros((100, 784), np.float32)              # 3 136 bytes an example
    list(batches.minibatches(x, np.zeros(100), np.arange(100), 10))
    assert not seen
    monkeypatch.setattr(batches, "PREFETCH_MIN_BYTES", 10 * 3136)
    monkeypatch.setattr(batches, "spare_core", lambda: False)     # every core busy
    list(batches.minibatches(x, np.zeros(100), np.arange(100), 10))
    assert not seen
    monkeypatch.setattr(batches, "spare_core", lambda: True)
    list(batches.minibatches(x, np.zeros(100), np.arange(100), 10))
    assert seen


@pytest.mark.parametrize("cores, runnable, blas, spare", [
    (2, 1, 1, True), (2, 2, 1, False), (1, 1, 1, False), (16, 14, 1, True),
    (2, 1, 2, False),           # the second core is the BLAS's second thread's
    (16, 13, 4, False), (16, 12, 4, True)])
def test_a_spare_core_is_one_no_thread_is_waiting_for(monkeypatch, tmp_path, cores, runnable,
                                                      blas, spare):
    monkeypatch.setattr(batches.os, "sched_getaffinity", lambda pid: set(range(cores)),
                        raising=False)
    monkeypatch.setattr(batches, "blas_thread_count", lambda: blas)
    monkeypatch.setattr(batches, "_last_reading", None)           # no reading reused
    monkeypatch.setattr(batches, "_own_running_threads", lambda: 1)
    fake = tmp_path / "loadavg"
    fake.write_text(f"1.00 1.00 1.00 {runnable}/300 4242\n")
    real_open = open
    monkeypatch.setattr("builtins.open", lambda path, *a, **k: real_open(
        fake if path == "/proc/loadavg" else path, *a, **k))
    assert batches.spare_core() is spare


def test_training_with_prefetch_is_bit_identical(monkeypatch):
    rng = np.random.default_rng(1)
    data = Dataset(rng.random((300, 20), dtype=np.float32), rng.integers(0, 4, 300))

    def weights(prefetch_bytes):
        monkeypatch.setattr(batches, "PREFETCH_MIN_BYTES", prefetch_bytes)
        monkeypatch.setattr(batches, "spare_core", lambda: True)
        net = mlp([20, 16, 4], "sigmoid", "softmax", rng=0)
        Trainer(net, "log-likelihood", SGD(0.5), batch_size=32, monitor=(), rng=3).fit(data, 3)
        return [p.copy() for layer, name in net.parameters() for p in [layer.params[name]]]

    for a, b in zip(weights(1 << 40), weights(1)):
        np.testing.assert_array_equal(a, b)


def test_the_blas_thread_count_follows_threadpool_limits():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        assert batches.blas_thread_count() == 1
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        assert batches.blas_thread_count() in (1, 2)     # a 1-thread BLAS build stays at 1


def test_a_load_reading_is_reused_for_a_second(monkeypatch):
    if not os.path.exists("/proc/loadavg"):
        pytest.skip("no /proc/loadavg here")
    monkeypatch.setattr(batches, "_last_reading", None)
    reads, real_open = [], open

    def counting_open(path, *args, **kwargs):
        if path == "/proc/loadavg":
            reads.append(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", counting_open)
    first = batches.idle_cores()
    assert batches.idle_cores() == first and len(reads) == 3        # one reading of 3 reads
    monkeypatch.setattr(batches, "LOAD_READING_SECONDS", 0.0)
    batches.idle_cores()
    assert len(reads) == 6
