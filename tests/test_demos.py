"""The lectures' demonstrations, in their quick mode: each writes its PNG and its numbers
show the lecture's point.

Most tests hide MNIST, so they run on scikit-learn's 8×8 digits (the demos' documented
fallback) whether or not the MNIST files are present. The overfitting and
initialisation effects need MNIST's 784 inputs and few examples per weight; those
claims are checked on MNIST (marked ``mnist``, skipped without the files)."""
import argparse
import struct

import numpy as np
import pytest

import nablanet.data
from nablanet.cli import demo as demo_cli
from nablanet.demos import DEMOS, get_demo
from nablanet.errors import ConfigError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def no_mnist(request, monkeypatch):
    if request.node.get_closest_marker("mnist"):
        if not nablanet.data.mnist_available():
            pytest.skip("MNIST files not found (set NABLANET_DATA)")
    else:
        monkeypatch.setattr(nablanet.data, "mnist_available", lambda *a, **k: False)


def run_demo(name, tmp_path, seed=0):
    results = get_demo(name)(tmp_path, rng=np.random.default_rng(seed), quick=True)
    for path in results["figures"]:
        with open(path, "rb") as f:
            header = f.read(24)
        assert header[:8] == PNG_MAGIC
        width, height = struct.unpack(">II", header[16:24])
        assert width > 400 and height > 300
    return results


def test_step_size_shows_too_small_good_and_diverging(tmp_path):
    r = run_demo("step-size", tmp_path)
    quartic, parabola = r["x² + x⁴/4"], r["x²"]
    assert [quartic[a]["regime"] for a in (0.1, 0.5, 0.7)] == ["too small", "good", "diverging"]
    assert abs(quartic[0.7]["x"][-1]) > 1e3
    assert abs(quartic[0.1]["x"][10]) > 0.05 and abs(quartic[0.5]["x"][5]) < 1e-3
    # On the parabola 0.7 f′ overshoots every step (1 − 2·0.7 = −0.4) but converges.
    assert parabola[0.7]["regime"] == "oscillating" and parabola[0.5]["x"][1] == 0.0
    assert (tmp_path / "step-size.png").exists()


def test_xor_perceptron_fails_and_the_2_2_1_net_succeeds(tmp_path):
    r = run_demo("xor", tmp_path)
    assert not r["perceptron_converged"] and r["perceptron_accuracy"] < 1.0
    assert r["net_accuracy"] == 1.0 and r["net_cost"] < 0.05


def test_universal_approximation_error_falls_with_hidden_units(tmp_path):
    errors = run_demo("universal-approximation", tmp_path)["errors"]
    rms = [errors[n]["rms"] for n in sorted(errors)]
    assert all(b <= a * 1.05 for a, b in zip(rms, rms[1:]))       # never clearly worse
    assert rms[-1] < rms[0] / 10 and errors[16]["max"] < 0.05


def test_vanishing_gradient_early_layers_learn_slowest_with_sigmoids(tmp_path):
    r = run_demo("vanishing-gradient", tmp_path)
    assert "digits" in r["source"]
    sigmoid = r["at_init"]["sigmoid 4 hidden"]
    assert all(a < b for a, b in zip(sigmoid, sigmoid[1:]))       # speed grows with depth
    assert sigmoid[-1] / sigmoid[0] > 20
    relu = r["at_init"]["relu 4 hidden"]
    assert max(relu) / min(relu) < 5
    speeds = np.array(r["training"]["sigmoid"]["speeds"])
    assert np.all(speeds[:, 0] < speeds[:, -1])                   # at every epoch


def test_double_descent_peaks_at_the_interpolation_threshold(tmp_path):
    r = run_demo("double-descent", tmp_path)
    n, sizes = r["n_train"], np.array(r["sizes"])
    error = np.array(r["test_error"])
    assert 0.8 <= r["peak"] / n <= 1.25
    peak = np.argmax(r["test_mse"])
    assert error[peak] > error[sizes < 0.5 * n].min() + 0.1       # first descent, then up
    assert error[-1] < error[peak] - 0.1                          # second descent
    assert np.all(np.array(r["train_error"])[sizes >= n] == 0)    # interpolation
    norm = np.array(r["weight_norm"])   # interpolating the noise takes enormous weights,
    assert norm[peak] > 3 * max(norm[sizes < 0.5 * n].max(), norm[-1])
    assert np.all(np.diff(norm[sizes > 1.25 * n]) < 0)            # the min-norm ones shrink


def test_overfitting_demos_run_on_the_fallback_data(tmp_path):
    r = run_demo("early-stopping", tmp_path)
    assert "digits" in r["source"] and r["best_epoch"] <= r["stopped_at"]
    runs = run_demo("weight-decay", tmp_path)["runs"]
    norms = [runs[lam]["weight_norm"] for lam in (0.0, 0.1, 1.0)]
    assert norms[0] > norms[1] > norms[2]                          # decay shrinks the weights
    r = run_demo("init", tmp_path)
    assert r["z"]["normal"]["std"] > 2.5 * r["z"]["normal-scaled"]["std"]


@pytest.mark.mnist
def test_early_stopping_stops_near_the_validation_minimum(tmp_path):
    r = run_demo("early-stopping", tmp_path)
    assert "MNIST" in r["source"]
    cost = r["validation_cost"]
    assert r["stopped_at"] < len(cost) - 1
    assert cost[r["best_epoch"]] == min(cost) < cost[-1]           # validation cost turned up
    assert r["with"]["test_cost"] < r["without"]["test_cost"]
    assert r["weight_norm"]["with"] < r["weight_norm"]["without"]
    assert r["stopped_at"] == r["best_epoch"] + 10                 # patience 10


@pytest.mark.mnist
def test_weight_decay_keeps_the_weights_small_and_generalises_better(tmp_path):
    runs = run_demo("weight-decay", tmp_path)["runs"]
    norms = [runs[lam]["weight_norm"] for lam in (0.0, 0.1, 1.0)]
    assert norms[0] > norms[1] > norms[2]
    assert runs[0.0]["weight_norms"][-1] > runs[0.0]["weight_norms"][0]   # no decay: growth
    assert runs[1.0]["validation_accuracy"] > runs[0.0]["validation_accuracy"] + 0.01
    assert runs[1.0]["test_accuracy"] > runs[0.0]["test_accuracy"]


@pytest.mark.mnist
def test_init_scaled_weights_keep_z_small_and_learn_faster(tmp_path):
    r = run_demo("init", tmp_path)
    large, scaled = r["z"]["normal"], r["z"]["normal-scaled"]
    assert large["std"] > 5 * scaled["std"] and large["saturated"] > 0.3 > scaled["saturated"]
    assert r["validation_accuracy"]["normal-scaled"][0] > r["validation_accuracy"]["normal"][0]


@pytest.mark.mnist
def test_demos_draw_random_subsets_of_mnist():
    from nablanet.demos._common import classification_data
    a, b = (classification_data(np.random.default_rng(seed), 50)[0] for seed in (0, 1))
    assert not np.array_equal(a.x, b.x)


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=() if name == "gradient-flow" else pytest.mark.slow)
    for name in DEMOS])
def test_one_seed_gives_the_same_numbers(name, tmp_path):
    a, b = (get_demo(name)(tmp_path / out, rng=np.random.default_rng(4), quick=True)
            for out in ("a", "b"))
    for results in (a, b):
        results.pop("figures", None)                  # their paths differ
    np.testing.assert_equal(a, b)


def test_cli_runs_a_demo_and_rejects_unknown_names(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    demo_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["demo", "step-size", "--out", str(tmp_path / "out"),
                              "--seed", "3"])
    assert args.func(args) == 0
    assert (tmp_path / "out" / "step-size.png").exists()
    assert "diverging" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "no-such-demo", "--out", str(tmp_path)])
    with pytest.raises(ConfigError, match="unknown demo"):
        get_demo("no-such-demo")
    assert set(DEMOS) >= {"step-size", "xor", "universal-approximation", "vanishing-gradient",
                          "double-descent", "early-stopping", "weight-decay", "init"}


# -- each demo's pieces, checked against what its docstring says -------------------------------
def test_step_size_regimes_are_read_from_the_path():
    from nablanet.demos.step_size import regime
    # one overshoot and then a slow creep is a step that is too small, not an oscillation
    assert regime(np.array([1.0, -0.5, -0.45, -0.4, -0.36, -0.33, -0.3])) == "too small"
    assert regime(np.array([1.0, -0.8, 0.6, -0.5, 0.4, -0.3, 0.2])) == "oscillating"
    assert regime(np.array([1.0, 0.1, 1e-2, 1e-4, 1e-6, 1e-9, 0.0])) == "good"
    assert regime(np.array([1.0, -2.0, 5.0])) == "diverging"


def test_xor_stops_at_the_first_starting_point_that_works(tmp_path):
    r = run_demo("xor", tmp_path)
    assert r["net_accuracy"] == 1.0 and 1 <= r["tries"] < 10     # 10: every start was tried


def test_universal_approximation_starts_from_steps_and_lbfgs_improves_them(monkeypatch):
    """Nielsen's construction alone (steep steps at (j + ½)/N, output weights by least
    squares) fits f better as N grows; L-BFGS then improves on it."""
    from nablanet.demos import universal_approximation as ua

    x, grid = np.linspace(0, 1, 400)[:, None], np.linspace(0, 1, 2000)[:, None]

    def rms_error(n, max_iter):
        net = ua.fit(n, x, ua.target(x), np.random.default_rng(0), max_iter=max_iter)
        return float(np.sqrt(np.mean((net.predict(grid) - ua.target(grid)) ** 2)))

    refined = rms_error(16, 1000)
    monkeypatch.setattr(ua, "minimize", lambda *args, **kwargs: None)    # the start alone
    start = {n: rms_error(n, 0) for n in (4, 16, 64)}
    assert start[4] > start[16] > start[64] and start[64] < 0.005
    assert refined < start[16] / 2


def test_speed_of_learning_is_each_hidden_layers_bias_gradient():
    """‖∂C/∂bˡ‖ of the hidden layers only, bottom first, checked by central differences."""
    from nablanet.backend import get_backend
    from nablanet.demos.vanishing_gradient import hidden_bias_gradients
    from nablanet.net import mlp
    from nablanet.optim import Objective

    rng = np.random.default_rng(0)
    net = mlp([3, 4, 4, 2], "sigmoid", "sigmoid", backend=get_backend("cpu", "float64"), rng=1)
    objective = Objective(net, "cross-entropy", rng.random((5, 3)), rng.integers(0, 2, 5))
    speeds = hidden_bias_gradients(net, objective)
    assert len(speeds) == 2
    for speed, layer in zip(speeds, (net.layers[0], net.layers[2])):
        b, h, slopes = layer.params["b"], 1e-6, []
        for j in range(b.size):
            b[j] += h
            up = objective.value_and_grad(objective.theta())[0]
            b[j] -= 2 * h
            down = objective.value_and_grad(objective.theta())[0]
            b[j] += h
            slopes.append((up - down) / (2 * h))
        assert speed == pytest.approx(np.linalg.norm(slopes), rel=1e-6)


def test_weight_norm_counts_the_weights_not_the_biases():
    from types import SimpleNamespace

    from nablanet.demos._overfitting import WeightNorm
    from nablanet.net import mlp

    net = mlp([2, 2, 1], "sigmoid", "sigmoid", rng=0)
    net.layers[0].set_params(W=np.full((2, 2), 1.0), b=np.full(2, 100.0))
    net.layers[2].set_params(W=np.full((2, 1), 2.0), b=np.full(1, 100.0))
    norms = WeightNorm()
    norms.on_train_begin(SimpleNamespace(net=net))
    assert norms.norms == [pytest.approx(np.sqrt(4 * 1.0 + 2 * 4.0))]


def test_early_stopping_reports_the_weights_it_kept(tmp_path, monkeypatch):
    """"with": the norm of the weights early stopping restored; epochs are indices from 0."""
    from types import SimpleNamespace

    from nablanet.demos import _overfitting, early_stopping

    runs = []

    def recorded(*args, **kwargs):
        runs.append(_overfitting.train(*args, **kwargs))
        return runs[-1]

    monkeypatch.setattr(early_stopping, "train", recorded)
    r = run_demo("early-stopping", tmp_path)
    (_, _, full_norms), (stopped, _, _) = runs
    kept = _overfitting.WeightNorm()
    kept.on_train_begin(SimpleNamespace(net=stopped.net))
    assert r["weight_norm"] == {"without": full_norms[-1], "with": pytest.approx(kept.norms[0])}
    cost = r["validation_cost"]
    assert r["best_epoch"] <= r["stopped_at"] < len(cost)
    assert cost[r["best_epoch"]] == min(cost[:r["stopped_at"] + 1])


def test_cli_hands_the_demo_its_folder_seed_quick_flag_and_blas_threads(tmp_path, monkeypatch):
    from nablanet.cli.main import main
    from nablanet.utils.blas import thread_count
    calls = []

    def demo(out, *, rng, quick):
        calls.append((out.is_dir(), rng.random(), quick, thread_count()))
    monkeypatch.setattr(demo_cli, "get_demo", lambda name: demo)
    out = tmp_path / "new" / "folder"
    assert main(["demo", "xor", "--out", str(out), "--seed", "5"]) == 0
    assert main(["demo", "xor", "--out", str(out), "--quick", "--blas-threads", "2"]) == 0
    assert calls == [(True, np.random.default_rng(5).random(), False, 1),
                     (True, np.random.default_rng(0).random(), True, 2)]
