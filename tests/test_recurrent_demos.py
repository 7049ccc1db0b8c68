"""The gradient-flow demo: a plain RNN's error vanishes or explodes over 100 steps back,
an LSTM with its keep gate open carries it."""
import numpy as np

from nablanet.demos import DEMOS, get_demo


def test_gradient_flow_demo_shows_vanishing_exploding_and_kept_errors(tmp_path, capsys):
    assert "gradient-flow" in DEMOS
    results = get_demo("gradient-flow")(tmp_path, rng=np.random.default_rng(0), quick=True)
    norms = results["norms"]
    small, large = norms["plain RNN, ρ(U) = 0.9"], norms["plain RNN, ρ(U) = 3"]
    lstm_open = norms["LSTM, forget bias 3"]
    assert small[99] < 1e-8 * small[1]            # vanishing: geometric decay
    assert large[99] > 1e6 * large[1]             # exploding: geometric growth
    assert 0.1 < lstm_open[99] / lstm_open[1] < 100   # kept within two orders of magnitude
    assert norms["LSTM, forget bias 1"][99] < lstm_open[99]
    assert "steps back" in capsys.readouterr().out
    assert (tmp_path / "gradient_flow.png").stat().st_size > 10_000


def test_the_cost_on_the_last_step_reaches_every_input_the_last_one_included():
    from nablanet.backend import get_backend
    from nablanet.demos.gradient_flow import gradient_reaching_each_step
    from nablanet.layers import SimpleRNN

    rng = np.random.default_rng(0)
    layer = SimpleRNN(2, 3)
    layer.build((4, 2), get_backend("cpu", "float64"), rng)
    curve = gradient_reaching_each_step(layer, rng.standard_normal((5, 4, 2)), rng)
    assert curve.shape == (4,) and np.all(curve > 0)      # curve[0]: x_T, 0 steps back
