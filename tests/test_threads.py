"""The BLAS thread policy of a training epoch (training/threads.py)."""
import numpy as np
import pytest

from nablanet import SGD, mlp
from nablanet.data import Dataset
from nablanet.errors import ConfigError
from nablanet.layers import Conv2D, Dense, Embedding, Flatten
from nablanet.net import Sequential
from nablanet.training import Trainer, threads
from nablanet.utils import blas


def test_a_layer_reports_its_largest_gemm_per_example():
    net = Sequential([Conv2D(1, 6, 5), Flatten(), Dense(None, 10)], input_shape=(1, 28, 28))
    conv, _, dense = net.layers
    assert conv.gemm_work() == 6 * 1 * 5 * 5 * 24 * 24          # kernels × output positions
    assert dense.gemm_work() == 6 * 24 * 24 * 10
    assert threads.largest_gemm(net, 10) == 10 * conv.gemm_work()         # the larger
    assert Sequential([Embedding(5000, 64)], input_shape=(7,)).layers[0].gemm_work() == 0


@pytest.mark.parametrize("batch, idle, blas_now, expected", [
    (10, 1, 2, 1),              # 784·100·10 = 0.8 M multiply-adds: one thread
    (44, 1, 2, 1),              # 3.45 M, just under 3.5 M: still one
    (45, 1, 2, None),           # 3.53 M, just over: the idle cores decide
    (128, 1, 2, None),          # 10 M, one idle core besides ours: the BLAS's own two
    (128, 0, 2, 1),             # every other core busy: one
    (128, 2.6, 8, 3),           # 2 idle of 8: ours and those two
    (128, None, 2, None),       # no load figures: the BLAS's own setting
    (128, -1.5, 2, 1),          # more threads runnable than cores: still one, never fewer
])
def test_auto_picks_one_thread_for_small_gemms_and_idle_cores_for_large(
        monkeypatch, batch, idle, blas_now, expected):
    monkeypatch.setattr(threads, "idle_cores", lambda: idle)
    monkeypatch.setattr(threads, "thread_count", lambda: blas_now)
    net = mlp([784, 100, 10], "sigmoid", "softmax", rng=0)
    assert threads.epoch_thread_limit("auto", net, batch) == expected


def test_a_fixed_setting_is_kept_and_a_bad_one_refused():
    net = mlp([784, 100, 10], "sigmoid", "softmax", rng=0)
    assert threads.epoch_thread_limit(3, net, 10) == 3
    assert threads.epoch_thread_limit(None, net, 10) is None
    for good in ("auto", None, 1, 4):                   # None: leave the BLAS as it is
        assert Trainer(net, "log-likelihood", SGD(0.1), blas_threads=good).blas_threads == good
    for bad in (0, -1, 1.5, "two", True):
        with pytest.raises(ConfigError, match="blas_threads"):
            Trainer(net, "log-likelihood", SGD(0.1), blas_threads=bad)


def _thread_counts_seen_by(monkeypatch, method: str) -> list:
    """The BLAS thread count at each call of ``Trainer.<method>`` (filled as it runs)."""
    pytest.importorskip("threadpoolctl")
    seen = []
    real = getattr(Trainer, method)

    def spy(self, *args):
        seen.append(blas.thread_count())
        return real(self, *args)

    monkeypatch.setattr(Trainer, method, spy)
    return seen


def _small_problem():
    rng = np.random.default_rng(0)
    data = Dataset(rng.random((60, 12)), rng.integers(0, 3, 60))
    return data, mlp([12, 8, 3], "sigmoid", "softmax", rng=0)


def test_the_limit_holds_during_the_epochs_only(monkeypatch):
    seen = _thread_counts_seen_by(monkeypatch, "_run_epoch")
    data, net = _small_problem()
    with blas.limited(2):
        before = blas.thread_count()
        Trainer(net, "log-likelihood", SGD(0.1), monitor=(), rng=0).fit(data, 2)
        assert blas.thread_count() == before
    assert seen == [1, 1]



@pytest.mark.parametrize("setting, during_monitoring", [(1, 3), (2, 2)])
def test_monitoring_stays_on_a_multithreaded_plan(monkeypatch, setting, during_monitoring):
    """On several threads evaluation runs under the steps' limit (another pool's spinning
    worker slowed the next epoch); on one it keeps the library's threads."""
    seen = _thread_counts_seen_by(monkeypatch, "_monitor")
    data, net = _small_problem()
    with blas.limited(3):
        Trainer(net, "log-likelihood", SGD(0.1), blas_threads=setting, rng=0).fit(data, 2, data)
    assert seen == [during_monitoring] * 2


def test_the_count_auto_picked_is_kept_for_the_trainer_and_its_checkpoints(monkeypatch):
    rng = np.random.default_rng(0)
    data = Dataset(rng.random((60, 12)), rng.integers(0, 3, 60))

    def trainer():
        return Trainer(mlp([12, 8, 3], "sigmoid", "softmax", rng=0), "log-likelihood",
                       SGD(0.1), monitor=(), rng=0)

    first = trainer()
    first.fit(data, 1)
    assert first.threads_used == 1                       # tiny GEMMs: one thread
    scalars, arrays = first.state_dict(0)
    assert scalars["blas_threads"] == 1
    # a resumed trainer keeps the count even where a fresh decision would differ
    monkeypatch.setattr(threads, "SMALL_GEMM", 0)
    monkeypatch.setattr(threads, "idle_cores", lambda: 7)
    monkeypatch.setattr(threads, "thread_count", lambda: 8)
    resumed = trainer()
    resumed.load_state_dict(scalars, arrays)
    resumed.fit(data, 2)
    assert resumed.threads_used == 1
    fresh = trainer()
    assert threads.epoch_thread_limit("auto", fresh.net, fresh.batch_size) is None
