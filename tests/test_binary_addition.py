"""Binary addition: the data encoding, a 2-3-1 recurrent net that learns the automaton and
adds unseen 8-bit and 32-bit numbers, the feed-forward net that cannot, and the demo."""
import numpy as np
import pytest

from nablanet.demos import DEMOS, get_demo
from nablanet.demos.binary_addition import (automaton, exact_accuracy, is_clean, random_pairs,
                                            sequences, to_bits, train_adder)


def test_sequences_hold_columns_least_significant_first_and_the_final_carry():
    pairs = np.array([[5, 3], [255, 255]], dtype=np.uint64)      # 101 + 011 = 1000
    x, y = sequences(pairs, 8)
    assert x.shape == (2, 9, 2) and y.shape == (2, 9, 1)
    np.testing.assert_array_equal(x[0, :3, 0], [1, 0, 1])
    np.testing.assert_array_equal(x[0, :3, 1], [1, 1, 0])
    np.testing.assert_array_equal(y[0, :, 0], to_bits(np.array([8], np.uint64), 9)[0])
    assert y[1, 8, 0] == 1 and np.all(x[:, 8] == 0)             # 510: carry out of bit 7
    sums = (y[..., 0] * 2 ** np.arange(9)).sum(axis=1)
    np.testing.assert_array_equal(sums, [8, 510])


def test_random_pairs_are_distinct_and_avoid_the_excluded_ones():
    rng = np.random.default_rng(0)
    train = random_pairs(rng, 500, 8)
    seen = {tuple(p) for p in train.tolist()}
    assert len(seen) == 500
    test = random_pairs(rng, 500, 8, exclude=seen)
    assert not seen & {tuple(p) for p in test.tolist()}
    assert random_pairs(rng, 10, 32).max() >= 2 ** 8          # really 32-bit numbers


def test_random_pairs_can_use_up_every_pair_but_no_more():
    rng = np.random.default_rng(0)
    every = random_pairs(rng, 16, 2)                          # 4 × 4 pairs of 2-bit numbers
    assert sorted(map(tuple, every.tolist())) == [(a, b) for a in range(4) for b in range(4)]
    with pytest.raises(ValueError, match="only 15 unused 2-bit pairs"):
        random_pairs(rng, 16, 2, exclude={(0, 0)})


@pytest.fixture(scope="module")
def trained():
    """The first seed that learns the training set with a clean automaton (restarts
    allowed, as in the lecture)."""
    rng = np.random.default_rng(0)
    train = random_pairs(rng, 1000, 8)
    x, y = sequences(train, 8)
    probe = random_pairs(np.random.default_rng(2), 100, 32)
    for seed in range(10):
        net, _, acc = train_adder(np.random.default_rng(seed), x, y, max_epochs=40)
        if acc == 1.0 and is_clean(fsa := automaton(net, probe, 32)):
            return net, {tuple(p) for p in train.tolist()}, fsa
    pytest.fail("no seed of 10 learned binary addition with a clean automaton")


def test_recurrent_net_adds_unseen_8_bit_and_32_bit_numbers(trained):
    net, seen, _ = trained
    rng = np.random.default_rng(1)
    for n_bits, exclude in ((8, seen), (32, None)):
        x, y = sequences(random_pairs(rng, 1000, n_bits, exclude=exclude), n_bits)
        assert exact_accuracy(net.forward(x)[0], y) == 1.0, n_bits


def test_hidden_states_form_the_addition_automaton(trained):
    """Each hidden pattern is a state (carry c, prints s); reading column (a, b) must lead to
    the state with carry ⌊(a + b + c)/2⌋ that prints (a + b + c) mod 2."""
    _, _, fsa = trained
    meaning = {s["pattern"]: (s["carry"], s["prints"]) for s in fsa["states"]}
    assert set(meaning.values()) == {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert len(fsa["transitions"]) >= 4 * 4                    # every state × every column
    for move in fsa["transitions"]:
        a, b = map(int, move["input"])
        total = a + b + meaning[move["from"]][0]
        assert meaning[move["to"]] == (total // 2, total % 2), move


def test_exact_accuracy_counts_whole_sums():
    y = np.array([[[1], [0]], [[1], [1]]], dtype=float)
    out = np.array([[[0.9], [0.2]], [[0.9], [0.4]]])
    assert exact_accuracy(out, y) == 0.5


def test_demo_is_registered_and_reports_its_numbers(tmp_path, capsys):
    assert "binary-addition" in DEMOS
    results = get_demo("binary-addition")(tmp_path, rng=np.random.default_rng(0), quick=True)
    out = capsys.readouterr().out
    assert f"{results['seeds_succeeded']} of {results['seeds']} seeds succeed" in out
    assert results["seeds_succeeded"] >= 1
    assert results["accuracy_8bit"] == 1.0 and results["accuracy_32bit"] == 1.0
    assert results["feedforward_32bit"] < 0.05           # never trained above bit 8
    # ... though it did learn something from the 8-bit sums it was trained on
    assert results["feedforward_8bit"] > results["feedforward_32bit"] + 0.05
    assert results["clean_automaton"] and "finite-state automaton" in out and "--11-->" in out
    assert (tmp_path / "binary_addition_states.png").stat().st_size > 10_000
