"""The array backend: choosing NumPy/CuPy and the dtype, clear errors, and (on a machine with
CuPy and a CUDA GPU) the same forward/backward/training results on the GPU as on the CPU."""
import importlib.util
import sys

import numpy as np
import pytest

import nablanet.backend
from nablanet import BackendError, ConfigError, SGD, get_backend, make_rng, mlp, to_host
from nablanet.backend import backend_of, xp_of
from nablanet.costs import get_cost, output_delta
from nablanet.training import Trainer

HAS_CUPY = importlib.util.find_spec("cupy") is not None


def test_cpu_backend_defaults_to_float32_and_is_cached():
    backend = get_backend()
    assert backend.name == "cpu" and backend.xp is np and backend.dtype == np.float32
    assert get_backend("cpu", "float32") is backend
    assert get_backend("cpu", np.float64).dtype == np.float64
    assert backend.asarray([1, 2]).dtype == np.float32
    assert backend.with_dtype("float64") is get_backend("cpu", "float64")


@pytest.mark.parametrize("dtype", ["int32", "float16", np.int64, "complex128", "double-ish"])
def test_bad_dtype_is_a_backend_error(dtype):
    with pytest.raises(BackendError, match="dtype must be float32 or float64"):
        get_backend("cpu", dtype)


def test_unknown_device_is_a_backend_error():
    with pytest.raises(BackendError, match="device must be 'cpu' or 'gpu', got 'tpu'"):
        get_backend("tpu")


def test_gpu_without_cupy_names_the_fix(monkeypatch):
    """Simulated: an import of cupy fails (whether or not it is installed here)."""
    monkeypatch.setattr(nablanet.backend, "_CACHE", {})
    monkeypatch.setitem(sys.modules, "cupy", None)        # makes `import cupy` raise
    with pytest.raises(BackendError, match="needs CuPy: pip install 'nablanet\\[gpu\\]'"):
        get_backend("gpu")


@pytest.mark.skipif(HAS_CUPY, reason="CuPy is installed here")
def test_gpu_without_cupy_installed():
    with pytest.raises(BackendError, match="needs CuPy"):
        get_backend("gpu")


def test_host_helpers():
    a = np.arange(3.0)
    assert to_host(a) is a
    assert xp_of(a) is np
    assert backend_of(a.astype(np.float32)) == get_backend("cpu", "float32")
    rng = np.random.default_rng(0)
    assert make_rng(rng) is rng
    assert make_rng(5).random() == np.random.default_rng(5).random()


class _DeviceArray:
    """Stands in for a cupy.ndarray: not a NumPy array, copied to the host by .get()."""
    dtype = np.dtype(np.float64)

    def get(self):
        return np.arange(2.0)


def test_device_arrays_are_told_apart_from_host_arrays(monkeypatch):
    from types import SimpleNamespace
    from nablanet.backend import Backend, device_rng
    fake_xp = SimpleNamespace(random=np.random)             # CuPy's namespace, as far as used
    gpu = Backend("gpu", fake_xp, np.float64)
    monkeypatch.setitem(nablanet.backend._CACHE, ("gpu", _DeviceArray.dtype), gpu)
    device = _DeviceArray()
    np.testing.assert_array_equal(to_host(device), [0.0, 1.0])       # via .get()
    np.testing.assert_array_equal(to_host([1, 2]), [1, 2])
    assert backend_of(device) is gpu and xp_of(device) is fake_xp
    assert backend_of(np.arange(3)) == get_backend("cpu", "float32")  # ints: the default dtype
    assert backend_of(np.arange(3.0)) == get_backend("cpu", "float64")
    # on the CPU the caller's generator draws itself; a device one is seeded from it
    rng = np.random.default_rng(0)
    assert device_rng(get_backend(), rng) is rng
    drawn = device_rng(gpu, np.random.default_rng(0))
    assert drawn is not rng and drawn.random() == device_rng(gpu, np.random.default_rng(0)).random()
    assert (device_rng(gpu, np.random.default_rng(0)).random()            # the seed reaches it
            != device_rng(gpu, np.random.default_rng(1)).random())


def test_asarray_takes_a_dtype_over_the_backends_and_axpy_adds_alpha_x():
    from nablanet.backend import axpy
    assert get_backend().asarray([1, 2], dtype=np.int64).dtype == np.int64
    y = np.ones(3)
    axpy(1.0, np.arange(3.0), y)
    np.testing.assert_array_equal(y, [1, 2, 3])
    axpy(-0.5, np.arange(3.0), y)
    np.testing.assert_array_equal(y, [1, 1.5, 2])


def test_numpys_own_values_never_take_a_gpu_path(tmp_path):
    """NumPy scalars, 0-d arrays and memmaps stay on the host path: taken for device
    arrays, they would reach a CuPy kernel (and ``import cupy``) on a machine without one."""
    from nablanet.backend import axpy
    from nablanet.gpu_kernels import on_gpu
    weights = np.memmap(tmp_path / "w.dat", dtype=np.float32, mode="w+", shape=(3,))
    for value in (np.float32(1), np.float64(1), np.int64(1), np.array(1.0), weights):
        assert not on_gpu(value), type(value)
    assert on_gpu(_DeviceArray())
    axpy(0.5, np.arange(3, dtype=np.float32), weights)              # in place, on the CPU
    np.testing.assert_array_equal(weights, [0, 0.5, 1])


@pytest.mark.parametrize("seed", ["0", 1.5, -1, [1, -2]])
def test_a_bad_seed_is_one_config_error_naming_the_argument(seed):
    # NumPy's own TypeError/ValueError speaks of SeedSequence entropy, nine frames deep
    with pytest.raises(ConfigError, match="seed .* must be a non-negative integer"):
        make_rng(seed)
    with pytest.raises(ConfigError, match="seed"):
        mlp([2, 2], rng=seed)


# -- on a GPU ---------------------------------------------------------------------------------

def _forward_backward(net, x, labels, cost="log-likelihood"):
    """Output and every parameter gradient of the mean cost, as the trainer computes them."""
    cost = get_cost(cost)
    backend = net.backend
    x = backend.asarray(x)
    y = cost.targets(labels, net.output_shape[-1], backend)
    net.zero_grads()
    a, caches = net.forward(x, train=True)
    delta = output_delta(cost, net.output_activation, a, y, caches[-1], len(x))
    net.backward(delta, caches, start=len(net.layers) - 1)
    return to_host(a), [to_host(layer.grads[name]) for layer, name in net.parameters()]


@pytest.mark.gpu
@pytest.mark.parametrize("hidden", ["sigmoid", "relu", "tanh"])
def test_gpu_forward_and_backward_match_the_cpu(gpu64, hidden):
    rng = np.random.default_rng(0)
    x, labels = rng.standard_normal((32, 12)), rng.integers(0, 4, 32)
    cpu = mlp([12, 16, 8, 4], hidden, "softmax", backend=get_backend("cpu", "float64"), rng=1)
    gpu = mlp([12, 16, 8, 4], hidden, "softmax", backend=gpu64, rng=1)
    assert type(gpu.layers[0].params["W"]).__module__.startswith("cupy")
    a_cpu, g_cpu = _forward_backward(cpu, x, labels)
    a_gpu, g_gpu = _forward_backward(gpu, x, labels)
    np.testing.assert_allclose(a_gpu, a_cpu, rtol=1e-10, atol=1e-13)
    for g, h in zip(g_gpu, g_cpu):
        np.testing.assert_allclose(g, h, rtol=1e-9, atol=1e-12)


@pytest.mark.gpu
def test_gpu_float32_forward_matches_the_cpu(gpu64):
    x = np.random.default_rng(0).standard_normal((64, 20)).astype(np.float32)
    cpu = mlp([20, 30, 10], rng=2)
    gpu = mlp([20, 30, 10], backend=get_backend("gpu", "float32"), rng=2)
    out = gpu.predict(x)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_allclose(out, cpu.predict(x), rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
def test_gpu_training_matches_the_cpu(gpu64, make_blobs):
    """Same seed, no dropout: the shuffles come from the host generator, so the runs agree."""
    data = make_blobs(60)
    data = type(data)(data.x.astype(np.float64), data.y)
    nets = [mlp([4, 8, 3], "sigmoid", "softmax", backend=b, rng=0)
            for b in (get_backend("cpu", "float64"), gpu64)]
    histories = [Trainer(net, "log-likelihood", SGD(0.5), batch_size=7, rng=3).fit(data, 3, data)
                 for net in nets]
    np.testing.assert_allclose(histories[1]["train_cost"], histories[0]["train_cost"], rtol=1e-9)
    for (a, k), (b, _) in zip(nets[0].parameters(), nets[1].parameters()):
        np.testing.assert_allclose(to_host(b.params[k]), a.params[k], rtol=1e-9, atol=1e-12)


@pytest.mark.gpu
def test_gpu_dropout_training_is_seeded(gpu64, make_blobs):
    data = make_blobs(40)
    runs = []
    for _ in range(2):
        net = mlp([4, 8, 3], "sigmoid", "softmax", dropout=0.5, backend=gpu64, rng=0)
        Trainer(net, "log-likelihood", SGD(0.5), rng=3).fit(data, 2)
        runs.append([to_host(layer.params[k]) for layer, k in net.parameters()])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.gpu
def test_a_gpu_model_loads_on_the_cpu(gpu64, tmp_path):
    from nablanet.io import load_model, save_model
    net = mlp([5, 6, 3], backend=gpu64, rng=0)
    save_model(tmp_path / "m", net, "cross-entropy")
    loaded, _, _ = load_model(tmp_path / "m")
    assert loaded.backend.name == "cpu"
    x = np.random.default_rng(0).standard_normal((4, 5))
    np.testing.assert_allclose(loaded.predict(x), net.predict(x), rtol=1e-12)


@pytest.mark.gpu
def test_gpu_dropout_run_resumes_bitwise(gpu64, make_blobs, tmp_path):
    """The GPU dropout generator is re-seeded from the checkpointed host generator each epoch."""
    from nablanet import Momentum
    from nablanet.io import load_model, load_training_state
    from nablanet.training import Checkpoint

    data = make_blobs(40)

    def trainer(net, directory):
        return Trainer(net, "log-likelihood", Momentum(0.3), batch_size=8, rng=4,
                       callbacks=[Checkpoint(directory)])

    def net():
        return mlp([4, 8, 3], "sigmoid", "softmax", dropout=0.5, backend=gpu64, rng=0)

    whole = net()
    trainer(whole, tmp_path / "whole").fit(data, 4, data)
    trainer(net(), tmp_path / "run").fit(data, 2, data)
    resumed_net, _, _ = load_model(tmp_path / "run" / "last", backend=gpu64)
    resumed = trainer(resumed_net, tmp_path / "run")
    resumed.load_state_dict(*load_training_state(tmp_path / "run" / "last"))
    resumed.fit(data, 4, data)
    for (a, k), (b, _) in zip(whole.parameters(), resumed_net.parameters()):
        np.testing.assert_array_equal(to_host(b.params[k]), to_host(a.params[k]))
