"""The GPU backend against the CPU (float64): CuPy runs the same layer code as NumPy, so
every layer's forward and backward pass, a training run of each net family, and the
energy-based and reservoir models must agree with the CPU to round-off. The CPU side is
what test_gradcheck checks against central differences, so agreement here carries that
check over to the GPU. Everything is skipped without CuPy and a CUDA device."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nablanet import L1, L2, Adam, Momentum, Nesterov, RMSprop, Sequential, get_backend, to_host
from nablanet.data import Dataset
from nablanet.errors import ConfigError
from nablanet.layers import (GRU, LSTM, AvgPool2D, Concat, Conv2D, Dense, Dropout, Embedding,
                             LastStep, LocalResponseNorm, MaxPool2D, OneHot, RandomDistortion,
                             ReLU, Reshape, Residual, Sigmoid, SimpleRNN, Softmax, Tanh,
                             TimeDistributedDense, Flatten)
from nablanet.layers.base import every_layer, layer_spec, layers_from_specs
from nablanet.training import Trainer
from test_gradcheck import ACTIVATIONS, SPECS, seeds

pytestmark = pytest.mark.gpu

CPU64 = get_backend("cpu", "float64")
RTOL, ATOL = 1e-9, 1e-12
SETTINGS = settings(max_examples=8, deadline=None)


def assert_close(gpu_value, cpu_value, rtol=RTOL, atol=ATOL, what=""):
    assert type(gpu_value).__module__.startswith("cupy"), (what, type(gpu_value))
    np.testing.assert_allclose(to_host(gpu_value), cpu_value, rtol=rtol, atol=atol, err_msg=what)


def on_device(cpu_layer, input_shape, backend):
    """A copy of ``cpu_layer`` (built) on ``backend`` with the same parameters."""
    layer = layers_from_specs([layer_spec(cpu_layer)], "layer", ConfigError)[0]
    layer.build(input_shape, backend, np.random.default_rng(0))
    if hasattr(cpu_layer, "need_input_grad"):
        layer.need_input_grad = cpu_layer.need_input_grad
    layer.set_params(**{k: backend.asarray(v) for k, v in cpu_layer.params.items()})
    return layer


def device_input(x, backend):
    """Floats in the backend dtype; symbol indices stay integers."""
    return backend.asarray(x) if x.dtype.kind == "f" else backend.xp.asarray(x)


def forward_backward(layer, x, train, dy=None):
    """(y, ∂C/∂x, {name: ∂C/∂θ}) for the cost C = Σ y ⊙ dy."""
    y, cache = layer.forward(x, train)
    if dy is None:
        dy = np.random.default_rng(7).standard_normal(y.shape)
    layer.zero_grads()
    dx = layer.backward(layer.backend.asarray(dy), cache)
    return y, dx, dict(layer.grads), dy


def stochastic(layer) -> bool:
    """Dropout draws its masks on the device, so masks differ between CPU and GPU."""
    return any(isinstance(inner, Dropout) for inner in every_layer([layer]))


def assert_layer_matches(cpu_layer, x, train, gpu64):
    gpu_layer = on_device(cpu_layer, x.shape[1:], gpu64)
    train = train and not stochastic(cpu_layer)
    y, dx, grads, dy = forward_backward(cpu_layer, x, train)
    y_gpu, dx_gpu, grads_gpu, _ = forward_backward(gpu_layer, device_input(x, gpu64), train, dy)
    assert_close(y_gpu, y, what="y")
    assert (dx is None) == (dx_gpu is None)
    if dx is not None:
        assert_close(dx_gpu, dx, what="dx")
    assert set(grads_gpu) == set(grads)
    for name, g in grads.items():
        assert_close(grads_gpu[name], g, what=name)


# -- every layer ------------------------------------------------------------------------

@pytest.mark.parametrize("name", SPECS)
@SETTINGS
@given(data=st.data(), seed=seeds, train=st.booleans())
def test_layer_matches_the_cpu(gpu64, name, data, seed, train):
    from nablanet.layers.recurrent import Recurrent
    rng = np.random.default_rng(seed)
    layer, x = SPECS[name](data.draw, rng)
    if not isinstance(layer, Recurrent):     # test_gradcheck's recurrent() builds on the CPU
        layer.build(x.shape[1:], CPU64, rng)
    assert_layer_matches(layer, x, train, gpu64)


@pytest.mark.parametrize("make", [*ACTIVATIONS.values(), lambda: Dense(n_out=5)],
                         ids=[*ACTIVATIONS, "Dense"])
@SETTINGS
@given(m=st.integers(1, 6), n=st.integers(1, 7), seed=seeds)
def test_dense_and_activations_match_the_cpu(gpu64, make, m, n, seed):
    layer = make()
    layer.build((n,), CPU64, np.random.default_rng(seed))
    x = np.random.default_rng(seed).standard_normal((m, n)) * 2
    assert_layer_matches(layer, x, True, gpu64)


@pytest.mark.parametrize("kernel, stride, padding", [(2, 2, 0), (3, 3, 1), (3, 1, 1), (2, 1, 0)])
def test_max_pooling_routes_delta_to_the_first_of_tied_maxima_as_the_cpu(gpu64, kernel, stride,
                                                                         padding):
    """After a ReLU whole windows are 0: ties everywhere. Windows apart, the GPU takes its
    own path (argmax over a view of the windows), which must pick the same unit."""
    x = np.maximum(np.round(np.random.default_rng(3).standard_normal((4, 2, 9, 9))), 0)
    layer = MaxPool2D(kernel, stride, padding)
    layer.build(x.shape[1:], CPU64, None)
    assert_layer_matches(layer, x, True, gpu64)


@pytest.mark.parametrize("layer, x", [
    (OneHot(4), np.array([[0, 3, 1], [2, 2, 0]])),
    (Embedding(5, 3), np.array([[0, 4, 4, 1], [2, 2, 0, 3]]))], ids=["OneHot", "Embedding"])
def test_symbol_layers_take_device_indices(gpu64, layer, x):
    layer.build(x.shape[1:], CPU64, np.random.default_rng(0))
    assert_layer_matches(layer, x, True, gpu64)


def test_dropout_masks_on_the_gpu_are_seeded_and_backprop_through_the_same_mask(gpu64):
    layer = Dropout(0.3)
    layer.build((1000,), gpu64, None)
    x = gpu64.asarray(np.random.default_rng(0).uniform(1, 2, (50, 1000)))

    def masked(seed):
        layer.rng = gpu64.xp.random.default_rng(seed)
        return forward_backward(layer, x, True)

    y, dx, _, dy = masked(5)
    kept = to_host(y) != 0
    assert 0.68 < kept.mean() < 0.72                        # p = 0.3 of the units dropped
    np.testing.assert_allclose(to_host(y)[kept], to_host(x)[kept] / 0.7, rtol=1e-12)
    np.testing.assert_allclose(to_host(dx), np.where(kept, dy / 0.7, 0.0), rtol=1e-12)
    np.testing.assert_array_equal(to_host(masked(5)[0]), to_host(y))          # same seed
    assert not np.array_equal(to_host(masked(6)[0]), to_host(y))
    np.testing.assert_array_equal(to_host(layer.forward(x, False)[0]), to_host(x))


@pytest.mark.parametrize("kind", ["affine", "elastic", "shift"])
@pytest.mark.parametrize("generator", ["device", "host"])
def test_random_distortion_runs_on_the_gpu_and_is_seeded(gpu64, kind, generator):
    """A net on the GPU gives the layer a CuPy generator (Sequential.set_rng); a NumPy one
    set by hand works too: the draws move to the images' device."""
    from nablanet.backend import device_rng
    layer = RandomDistortion(kind, image_shape=(8, 8))
    layer.build((64,), gpu64, None)
    x = gpu64.asarray(np.random.default_rng(0).random((3, 64)))
    draws = []
    for _ in range(2):
        rng = np.random.default_rng(1)
        layer.rng = device_rng(gpu64, rng) if generator == "device" else rng
        y, _ = layer.forward(x, train=True)
        assert type(y).__module__.startswith("cupy") and y.shape == x.shape
        draws.append(to_host(y))
    np.testing.assert_array_equal(*draws)
    assert not np.allclose(draws[0], to_host(x))
    np.testing.assert_array_equal(to_host(layer.forward(x, train=False)[0]), to_host(x))


def test_a_distorting_net_trains_on_the_gpu(gpu64):
    """lenet5-distorted's layout: RandomDistortion first, drawing from the net's generator."""
    data = _images(30)
    net = Sequential([RandomDistortion("affine", image_shape=(10, 10)), Reshape((1, 10, 10)),
                      Conv2D(1, 2, 3), ReLU(), Flatten(), Dense(n_out=2), Softmax()]).build(
        (100,), gpu64, np.random.default_rng(0))
    history = Trainer(net, "log-likelihood", Momentum(0.05, 0.9), batch_size=10, rng=1).fit(
        data, 2, data)
    assert np.isfinite(history["train_cost"]).all() and len(history["train_cost"]) == 2


# -- training runs: every net family, optimiser and penalty ------------------------------

def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 1 * 10 * 10))
    return Dataset(x, (x.reshape(n, 10, 10)[:, :5].sum(axis=(1, 2)) > 25).astype(np.int64))


def _sequences(n, seed=0, symbols=None):
    rng = np.random.default_rng(seed)
    if symbols:
        x = rng.integers(0, symbols, (n, 6))
        return Dataset(x.astype(np.float64), (x[:, 0] % 2).astype(np.int64))
    x = rng.standard_normal((n, 6, 3))      # a Dataset holds rows: Reshape unflattens them
    return Dataset(x.reshape(n, -1), (x[:, :2, 0].sum(axis=1) > 0).astype(np.int64))


NETS = {
    "cnn": (lambda: [Reshape((1, 10, 10)), Conv2D(1, 4, 3, padding=1), ReLU(),
                     MaxPool2D(2), LocalResponseNorm(3), Conv2D(4, 3, 2, stride=2), Tanh(),
                     AvgPool2D(2, stride=1), Flatten(), Dense(n_out=2), Softmax()],
            (100,), _images, lambda: Momentum(0.05, 0.9), [L2(0.5)]),
    "blocks": (lambda: [Reshape((1, 10, 10)), Conv2D(1, 3, 3), ReLU(),
                        Concat([[Conv2D(out_channels=2, kernel_size=1)],
                                [Conv2D(out_channels=2, kernel_size=3, padding=1), ReLU()],
                                [MaxPool2D(3, stride=1, padding=1)], []]),
                        Residual([Conv2D(out_channels=6, kernel_size=3, padding=1), ReLU(),
                                  Conv2D(out_channels=10, kernel_size=3, padding=1)]),
                        Flatten(), Residual([Dense(n_out=12), Sigmoid()], [Dense(n_out=12)]),
                        Dense(n_out=2), Softmax()],
               (100,), _images, lambda: Adam(0.01), [L1(0.2)]),
    "lstm-gru": (lambda: [OneHot(5), LSTM(5, 6, initial_state="learned"), GRU(6, 4), LastStep(),
                          Dense(n_out=2), Softmax()],
                 (6,), lambda n: _sequences(n, symbols=5), lambda: RMSprop(0.01), []),
    "rnn": (lambda: [Reshape((6, 3)), SimpleRNN(3, 5), TimeDistributedDense(5, 4), Tanh(), LastStep(),
                     Dense(n_out=2), Softmax()],
            (18,), _sequences, lambda: Nesterov(0.1, 0.8), [L2(0.3, include_biases=True)]),
}


@pytest.mark.parametrize("name", NETS)
def test_training_matches_the_cpu(gpu64, name):
    """Two epochs of shuffled mini-batches from the same seed: the shuffles come from the
    host generator, so CPU and GPU take the same steps and end at the same weights."""
    make_layers, input_shape, make_data, make_optimizer, penalties = NETS[name]
    data = make_data(40)
    runs = []
    for backend in (CPU64, gpu64):
        net = Sequential(make_layers()).build(input_shape, backend, np.random.default_rng(0))
        trainer = Trainer(net, "log-likelihood", make_optimizer(), batch_size=8,
                          penalties=penalties, rng=1)
        history = trainer.fit(data, 2, data)
        runs.append((net, history))
    (cpu, cpu_history), (gpu, gpu_history) = runs
    assert type(gpu.layers[-2].params["W"]).__module__.startswith("cupy")
    np.testing.assert_allclose(gpu_history["train_cost"], cpu_history["train_cost"], rtol=1e-8)
    for (a, k), (b, _) in zip(cpu.parameters(), gpu.parameters()):
        assert_close(b.params[k], a.params[k], rtol=1e-8, atol=1e-11, what=k)


def test_clipped_bptt_steps_match_the_cpu(gpu64):
    """sequence_step with gradient clipping (the char-LSTM's step): the norm is summed on
    the device, the fused LSTM kernels run forward and back; three steps, one clipped hard."""
    from nablanet.clipping import gradient_norm
    from nablanet.costs import get_cost
    from nablanet.training.bptt import sequence_step
    rng = np.random.default_rng(4)
    ids = rng.integers(0, 5, (3, 9))
    targets = np.eye(5)[ids[:, 1:]]
    nets = []
    for backend in (CPU64, gpu64):
        net = Sequential([OneHot(5), LSTM(5, 7, initial_state="learned"),
                          TimeDistributedDense(7, 5), Softmax()]).build(
            (8,), backend, np.random.default_rng(0))
        x = ids[:, :-1] if backend is CPU64 else gpu64.xp.asarray(ids[:, :-1])
        optimizer = Adam(0.05)
        for clip in (None, 0.05, 10.0):
            sequence_step(net, get_cost("log-likelihood"), optimizer, x,
                          backend.asarray(targets), clip=clip)
        for i, (layer, name) in enumerate(net.parameters()):       # known gradients
            layer.grads[name] = backend.asarray(np.full(layer.params[name].shape, i - 2.5))
        nets.append((net, gradient_norm(net)))
    (cpu, cpu_norm), (gpu, gpu_norm) = nets
    expected = np.sqrt(sum((i - 2.5) ** 2 * layer.params[name].size
                           for i, (layer, name) in enumerate(cpu.parameters())))
    assert isinstance(gpu_norm, float) and gpu_norm == pytest.approx(expected, rel=1e-12)
    assert cpu_norm == pytest.approx(expected, rel=1e-12)
    for (a, k), (b, _) in zip(cpu.parameters(), gpu.parameters()):
        assert_close(b.params[k], a.params[k], rtol=1e-8, atol=1e-11, what=k)


# -- models outside the layer stack ------------------------------------------------------

def test_rbm_deterministic_parts_match_the_cpu_and_training_is_seeded(gpu64):
    from nablanet.models import RBM
    from nablanet.models.ais import exact_log_partition
    v = (np.random.default_rng(0).random((20, 7)) > 0.5).astype(np.float64)
    cpu = RBM(7, 5, backend=CPU64, init_std=1.0, rng=0)
    gpu = RBM(7, 5, backend=gpu64, init_std=1.0, rng=0)
    gpu.set_params(**cpu.params)
    assert_close(gpu.free_energy(v), cpu.free_energy(v))
    assert_close(gpu.hidden_mean(gpu64.asarray(v)), cpu.hidden_mean(v))
    np.testing.assert_allclose(gpu.reconstruction_error(v), cpu.reconstruction_error(v),
                               rtol=RTOL)
    np.testing.assert_allclose(gpu.pseudo_log_likelihood(v, exact=True),
                               cpu.pseudo_log_likelihood(v, exact=True), rtol=RTOL)
    np.testing.assert_allclose(exact_log_partition(gpu), exact_log_partition(cpu), rtol=RTOL)
    weights = []
    for _ in range(2):
        rbm = RBM(7, 5, backend=gpu64, rng=0)
        rbm.fit(v, 3, rng=1, monitor=())
        weights.append(to_host(rbm.params["W"]))
    np.testing.assert_array_equal(*weights)
    assert not np.array_equal(weights[0], to_host(RBM(7, 5, backend=gpu64, rng=0).params["W"]))


def test_echo_state_network_matches_the_cpu(gpu64):
    from nablanet.models import EchoStateNetwork
    t = np.arange(300)
    u = np.sin(t / 5)[:, None]
    y = np.sin((t + 3) / 5)[:, None]
    fitted = [EchoStateNetwork(40, washout=50, backend=b, rng=0).fit(u, y) for b in (CPU64, gpu64)]
    np.testing.assert_allclose(fitted[1].predict(u), fitted[0].predict(u), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(fitted[1].generate(u[:100], 20), fitted[0].generate(u[:100], 20),
                               rtol=1e-6, atol=1e-8)


def test_char_language_model_scores_like_the_cpu_and_samples_reproducibly(gpu64):
    from nablanet.models.charlm import CharLM, Vocabulary, char_lstm
    text = "the quick brown fox jumps over the lazy dog " * 4
    vocab = Vocabulary.from_text(text)
    cpu = CharLM(char_lstm(len(vocab), 8, seq_length=10, backend=CPU64, rng=0), vocab)
    gpu = CharLM(char_lstm(len(vocab), 8, seq_length=10, backend=gpu64, rng=0), vocab)
    for a, b in zip(cpu.net.layers, gpu.net.layers):
        b.set_params(**{k: gpu64.asarray(v) for k, v in a.params.items()})
    ids = vocab.encode(text)
    assert gpu.nats_per_char(ids, n_streams=2, chunk=10) == pytest.approx(
        cpu.nats_per_char(ids, n_streams=2, chunk=10), rel=1e-9)
    samples = [gpu.generate("the ", 30, rng=3) for _ in range(2)]
    assert samples[0] == samples[1] and len(samples[0]) >= 30


# -- the command line and the layered models -------------------------------------------------

def test_the_command_line_trains_on_the_gpu_as_on_the_cpu_and_resumes_there(gpu64, capsys,
                                                                          tmp_path):
    """`nablanet train --device gpu`: the same steps as on the CPU (float64, no dropout);
    with dropout, an interrupted GPU run resumed to its end equals the uninterrupted one."""
    from nablanet.io import load_model
    from test_cli_data import nablanet, write_blocks_idx
    data = write_blocks_idx(tmp_path / "blocks")

    def train(out, *flags):
        result = nablanet(capsys, "train", "--dataset", data, "--validation-size", 50,
                          "--hidden", 20, "--quiet", "--out", tmp_path / out, *flags)
        assert result.code == 0, result.err
        return (tmp_path / out / "last" / "weights.safetensors").read_bytes()

    for device in ("cpu", "gpu"):
        train(device, "--epochs", 2, "--dtype", "float64", "--device", device)
    cpu, gpu = (load_model(tmp_path / device / "last")[0] for device in ("cpu", "gpu"))
    for (a, k), (b, _) in zip(cpu.parameters(), gpu.parameters()):
        np.testing.assert_allclose(b.params[k], a.params[k], rtol=1e-8, atol=1e-11)

    flags = ("--device", "gpu", "--dropout", 0.3, "--optimizer", "adam", "--eta", 0.01)
    whole = train("whole", "--epochs", 3, *flags)
    assert train("part", "--epochs", 1, *flags) != whole
    result = nablanet(capsys, "train", "--resume", tmp_path / "part", "--epochs", 3, "--quiet")
    assert result.code == 0, result.err
    assert (tmp_path / "part" / "last" / "weights.safetensors").read_bytes() == whole


def test_a_dbn_pretrains_and_fine_tunes_on_the_gpu_reproducibly(gpu64):
    """Greedy CD pretraining draws its samples on the device; one seed, the same weights."""
    from nablanet.models import DBN
    rng = np.random.default_rng(0)
    x = (rng.random((60, 12)) > 0.5).astype(np.float64)
    data = Dataset(x, (x[:, :6].sum(axis=1) > 3).astype(np.int64))
    runs = []
    for _ in range(2):
        dbn = DBN([12, 8, 6], backend=gpu64, rng=1)
        dbn.pretrain(x, 2, rng=2)
        net, history = dbn.fine_tune(data, 2, validation=data, batch_size=10, rng=3)
        assert type(net.layers[0].params["W"]).__module__.startswith("cupy")
        assert np.isfinite(history["validation_cost"]).all()
        runs.append([to_host(layer.params[k]) for layer, k in net.parameters()])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
