"""One BPTT training step of a sequence net (training/bptt.py)."""
import numpy as np
import pytest

from nablanet.backend import get_backend
from nablanet.costs import get_cost
from nablanet.gradcheck import numerical_gradient, relative_error
from nablanet.layers import Dropout, Sigmoid, SimpleRNN, TimeDistributedDense
from nablanet.net import Sequential
from nablanet.training.bptt import sequence_step

F64 = get_backend("cpu", "float64")
BATCH, STEPS = 4, 5


class Recorder:
    """An optimiser that keeps a copy of each gradient it is handed and changes nothing."""

    def __init__(self):
        self.grads = []

    def step(self, net):
        self.grads = [None if layer.grads[name] is None else layer.grads[name].copy()
                      for layer, name in net.parameters()]


def _net(*middle):
    layers = [SimpleRNN(2, 3), *middle, TimeDistributedDense(3, 1), Sigmoid()]
    return Sequential(layers).build((STEPS, 2), F64, np.random.default_rng(0))


def _sequences():
    rng = np.random.default_rng(1)
    return rng.random((BATCH, STEPS, 2)), (rng.random((BATCH, STEPS, 1)) > 0.5) * 1.0


def test_the_step_hands_the_optimiser_the_gradient_of_the_mean_over_every_output():
    """C is averaged over batch × time outputs, and δᴸ = a − y skips the sigmoid's σ′:
    both show in the gradient, checked against central differences."""
    net, (x, y) = _net(), _sequences()
    cost, recorder = get_cost("cross-entropy"), Recorder()
    a = sequence_step(net, cost, recorder, x, y)
    np.testing.assert_array_equal(a, net.forward(x)[0])       # the recorder changed nothing

    def mean_cost():
        return cost.value(net.forward(x)[0], y) / (BATCH * STEPS)

    for (layer, name), g in zip(net.parameters(), recorder.grads):
        assert relative_error(g, numerical_gradient(mean_cost, layer.params[name])) < 1e-7
    assert all(g is None for layer in net.layers for g in layer.grads.values())   # zeroed


def test_clip_shortens_the_gradient_to_the_threshold_keeping_its_direction():
    x, y = _sequences()
    cost, free, clipped = get_cost("cross-entropy"), Recorder(), Recorder()
    sequence_step(_net(), cost, free, x, y)
    sequence_step(_net(), cost, clipped, x, y, clip=1e-3)
    g, h = (np.concatenate([v.ravel() for v in r.grads]) for r in (free, clipped))
    assert np.linalg.norm(g) > 1e-3
    assert np.linalg.norm(h) == pytest.approx(1e-3)
    np.testing.assert_allclose(h, g * (1e-3 / np.linalg.norm(g)), rtol=1e-12)


def test_the_step_runs_the_net_in_training_mode():
    """With dropout inside, the outputs returned are the thinned net's, not inference's."""
    net, (x, y) = _net(Dropout(0.5)), _sequences()
    a = sequence_step(net, get_cost("cross-entropy"), Recorder(), x, y)
    assert not np.allclose(a, net.forward(x)[0])
