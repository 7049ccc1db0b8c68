"""Ensembles: vote / mean / product, bagging, AdaBoost (SAMME) and MC-dropout."""
import numpy as np
import pytest

from nablanet import SGD, ConfigError, DataError, Sequential, mlp
from nablanet.data import Dataset
from nablanet.layers import Dense, Dropout, RandomDistortion, Softmax
from nablanet.ensemble import (AdaBoostSAMME, Ensemble, bootstrap, combine, mc_dropout,
                               member_outputs, predict_combined, train_members,
                               weighted_resample)
from nablanet.training import fit
from test_training import assert_same_params, params

# Three members, one example: two say "class 0, fairly sure", one finds class 0 very
# unlikely. The vote and the mixture pick 0; the geometric mean lets the dissenter veto it.
OUTPUTS = np.array([[[0.6, 0.3, 0.1]], [[0.6, 0.3, 0.1]], [[0.01, 0.54, 0.45]]])


def test_three_ways_to_combine():
    np.testing.assert_allclose(combine(OUTPUTS, "vote"), [[2 / 3, 1 / 3, 0]])
    np.testing.assert_allclose(combine(OUTPUTS, "mean"), [[1.21 / 3, 1.14 / 3, 0.65 / 3]])
    geometric = np.cbrt(OUTPUTS.prod(axis=0))
    np.testing.assert_allclose(combine(OUTPUTS, "product"), geometric / geometric.sum())
    assert [predict_combined(OUTPUTS, how)[0] for how in ("vote", "mean", "product")] == [0, 0, 1]
    for how in ("vote", "mean", "product"):
        np.testing.assert_allclose(combine(OUTPUTS, how).sum(axis=1), 1)


def test_tied_vote_goes_to_the_larger_mean_probability():
    outputs = np.array([[[0.5, 0.4, 0.1]], [[0.45, 0.55, 0.0]]])       # one vote each for 0, 1
    assert predict_combined(outputs, "vote")[0] == 0                    # mean 0.475 vs 0.475…
    outputs = np.array([[[0.5, 0.4, 0.1]], [[0.3, 0.7, 0.0]]])
    assert predict_combined(outputs, "vote")[0] == 1                    # mean 0.40 vs 0.55
    # a single extra vote always beats any probability margin
    outputs = np.array([[[0.34, 0.66]], [[0.51, 0.49]], [[0.51, 0.49]]])
    assert predict_combined(outputs, "vote")[0] == 0


def test_product_survives_zero_probabilities():
    p = combine(np.array([[[1.0, 0.0]], [[0.0, 1.0]]]), "product")
    assert np.isfinite(p).all() and p.sum() == pytest.approx(1)


def test_unknown_combination_and_empty_ensemble():
    with pytest.raises(ConfigError, match="vote, mean, product"):
        combine(OUTPUTS, "median")
    with pytest.raises(ConfigError, match="at least one"):
        Ensemble([], "vote")


def _trainer(epochs=30, eta=0.5):
    def fit_net(net, data, rng):
        fit(net, data, cost="log-likelihood", optimizer=SGD(eta), epochs=epochs, batch_size=10,
            monitor=(), rng=rng)
    return fit_net


def _make_net(rng):
    return mlp([4, 6, 3], "sigmoid", "softmax", rng=rng)


def test_ensemble_of_trained_nets(make_blobs):
    train, test = make_blobs(150, spread=1.2, seed=0), make_blobs(300, spread=1.2, seed=1)
    nets = train_members(_make_net, _trainer(), train, 3, rng=0)
    assert len({float(n.layers[0].params["W"][0, 0]) for n in nets}) == 3   # different seeds
    outputs = member_outputs(nets, test.x)
    assert outputs.shape == (3, 300, 3)
    for how in ("vote", "mean", "product"):
        ensemble = Ensemble(nets, how)
        np.testing.assert_array_equal(ensemble.predict(test.x), predict_combined(outputs, how))
        assert ensemble.score(test) >= min(float((o.argmax(1) == test.y).mean())
                                           for o in outputs)


def test_members_that_disagree_on_the_output_shape_are_a_data_error():
    x = np.zeros((2, 4), np.float32)
    with pytest.raises(DataError, match="disagree on the output shape"):
        member_outputs([mlp([4, 3], rng=0), mlp([4, 2], rng=0)], x)


def test_bagging_trains_each_member_on_its_own_bootstrap_resample(make_blobs):
    data = make_blobs(40)
    seen = []
    train_members(_make_net, lambda net, d, rng: seen.append(d), data, 2, bagging=True, rng=0)
    train_members(_make_net, lambda net, d, rng: seen.append(d), data, 1, rng=0)
    first, second, plain = seen
    assert plain is data                                        # no bagging: the data itself
    for resample in (first, second):
        assert len(resample) == 40 and len({tuple(r) for r in resample.x}) < 40
    assert not np.array_equal(first.x, second.x)                # one resample per member


def test_bootstrap_and_bagging_are_seeded_resamples(make_blobs):
    data = make_blobs(50)
    a, b = bootstrap(data, 1), bootstrap(data, 1)
    np.testing.assert_array_equal(a.x, b.x)
    rows = {tuple(r) for r in a.x}
    assert len(a) == 50 and len(rows) < 50                   # drawn with replacement
    assert rows <= {tuple(r) for r in data.x}
    heavy = weighted_resample(data, np.r_[np.ones(49), 1e6], 2)
    assert (heavy.y == data.y[-1]).mean() > 0.9 and np.allclose(heavy.x, data.x[-1])


class _Stub:
    """A 'network' that always answers with a fixed label vector, for checking the formulas."""

    def __init__(self, labels):
        self.labels = np.asarray(labels)

    def classify(self, x):
        return self.labels[: len(x)]


def test_adaboost_samme_weights_and_says():
    y = np.array([0, 0, 1, 1, 2, 2, 0, 1, 2, 0])
    data = Dataset(np.arange(10.0)[:, None], y)
    answers = iter([np.where(np.arange(10) < 3, (y + 1) % 3, y),     # wrong on 0, 1, 2
                    np.where(np.arange(10) < 3, y, (y + 1) % 3)])    # right only on 0, 1, 2
    first = np.where(np.arange(10) < 3, (y + 1) % 3, y)
    boost = AdaBoostSAMME(lambda rng: _Stub(next(answers)), lambda net, d, rng: None,
                          n_estimators=2, rng=0).fit(data)
    err1 = 0.3
    alpha1 = np.log((1 - err1) / err1) + np.log(2)
    # After round 1 the three misclassified examples weigh e^{α₁} each, the rest 1.
    w = np.where(np.arange(10) < 3, np.exp(alpha1), 1.0)
    err2 = w[3:].sum() / w.sum()
    assert boost.errors_ == pytest.approx([err1, err2])
    assert boost.alphas_[0] == pytest.approx(alpha1)
    assert boost.alphas_[1] == pytest.approx(np.log((1 - err2) / err2) + np.log(2))
    scores = boost.decision_function(data.x)
    assert scores.sum(axis=1) == pytest.approx(sum(boost.alphas_))
    # α₁ = ln(14/3) > α₂ = ln 4, and the two disagree on every example: the first decides
    assert boost.alphas_[0] > boost.alphas_[1]
    np.testing.assert_array_equal(boost.predict(data.x), first)


def test_adaboost_stops_at_chance_level():
    y = np.array([0, 1, 2] * 4)
    data = Dataset(np.zeros((12, 1)), y)
    boost = AdaBoostSAMME(lambda rng: _Stub((y + 1) % 3), lambda net, d, rng: None,
                          n_estimators=3)
    with pytest.raises(DataError, match="the first network was no better than chance"):
        boost.fit(data)


def test_adaboost_keeps_the_rounds_before_a_learner_at_chance_level():
    y = np.array([0, 1, 2] * 4)
    data = Dataset(np.zeros((12, 1)), y)
    answers = iter([np.where(np.arange(12) < 2, (y + 1) % 3, y), (y + 1) % 3, y])
    boost = AdaBoostSAMME(lambda rng: _Stub(next(answers)), lambda net, d, rng: None,
                          n_estimators=3).fit(data)
    assert len(boost.estimators_) == 1 and boost.errors_ == pytest.approx([2 / 12])


def test_adaboost_with_networks(make_blobs):
    train = make_blobs(150, spread=1.0, seed=2)
    boost = AdaBoostSAMME(_make_net, _trainer(epochs=10), n_estimators=3, rng=1).fit(train)
    assert 1 <= len(boost.estimators_) <= 3
    assert (boost.predict(train.x) == train.y).mean() > 0.85


def test_mc_dropout_mean_and_spread(make_blobs):
    data = make_blobs(60, seed=3)
    net = mlp([4, 20, 3], "sigmoid", "softmax", dropout=0.5, rng=0)
    fit(net, data, cost="log-likelihood", optimizer=SGD(0.5), epochs=20, batch_size=10,
        monitor=(), rng=0)
    mean, std = mc_dropout(net, data.x, passes=30, rng=1, chunk_size=25)
    again, _ = mc_dropout(net, data.x, passes=30, rng=1, chunk_size=25)
    other, _ = mc_dropout(net, data.x, passes=30, rng=2, chunk_size=25)
    np.testing.assert_array_equal(mean, again)              # seeded
    assert not np.allclose(mean, other)
    np.testing.assert_allclose(mean.sum(axis=1), 1, rtol=1e-5)
    assert (std > 0).any() and (std < 0.5).all()
    # The average of thinned nets is close to the scaled full net (the lecture's claim).
    assert np.abs(mean - net.predict(data.x)).mean() < 0.1
    with pytest.raises(ConfigError, match="Dropout"):
        mc_dropout(mlp([4, 3], rng=0), data.x)


def test_mc_dropout_leaves_the_other_stochastic_layers_in_inference_mode():
    # With p = 0 every pass is the same net, unless the input distortion (a training-only
    # layer) is switched on as well: then the passes would spread.
    net = Sequential([RandomDistortion("affine", image_shape=(3, 3)), Dense(None, 4),
                      Dropout(0.0), Softmax()]).build((9,), rng=0)
    x = np.random.default_rng(0).random((5, 9), dtype=np.float32)
    mean, std = mc_dropout(net, x, passes=4, rng=1)
    np.testing.assert_allclose(mean, net.predict(x), rtol=1e-6)
    np.testing.assert_allclose(std, 0, atol=1e-6)


def test_bagged_members_and_boosted_nets_are_seeded(make_blobs):
    train = make_blobs(60, seed=4)
    runs = []
    for _ in range(2):
        members = train_members(_make_net, _trainer(epochs=2), train, 2, bagging=True, rng=3)
        boost = AdaBoostSAMME(_make_net, _trainer(epochs=2), n_estimators=2, rng=3).fit(train)
        runs.append(([p for net in members + boost.estimators_ for p in params(net)],
                     boost.alphas_))
    assert_same_params(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
