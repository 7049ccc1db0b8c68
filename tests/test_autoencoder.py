"""Deep autoencoders: unrolling (W up, Wᵀ down, linear code), fine-tuning by backprop with
targets y = x, PCA, the denoising variant, saving, and the PNGs."""
import numpy as np
import pytest

from nablanet import ConfigError, DataError
from nablanet.io import load_model, save_model
from nablanet.layers import Dense, Dropout, Linear, Sigmoid
from nablanet.models.autoencoder import PCA, DeepAutoencoder, squared_error_per_image
from nablanet.models.plots_rbm import save_code_scatter, save_filters, save_grid, \
    save_reconstructions
from nablanet.models.rbm import ContrastiveDivergence
from test_training import assert_same_params, params

PNG = b"\x89PNG\r\n\x1a\n"


def curve_images(n=600, d=36, seed=0):
    """Intensities in [0, 1] that lie near a 2-D nonlinear manifold (blurred bumps at a
    random position and width), with their positions as two 'classes'."""
    rng = np.random.default_rng(seed)
    centre, width = rng.random(n), 0.05 + 0.15 * rng.random(n)
    grid = np.linspace(0, 1, d)
    x = np.exp(-0.5 * ((grid[None] - centre[:, None]) / width[:, None]) ** 2)
    return x.astype(np.float32), (centre > 0.5).astype(np.int64)


@pytest.fixture(scope="module")
def pretrained():
    x, _ = curve_images()
    ae = DeepAutoencoder((36, 24, 12, 2), rng=0)
    ae.pretrain(x, 8, cd=ContrastiveDivergence(learning_rate=0.1, batch_size=20), rng=0)
    return ae, x


def test_unrolled_autoencoder_mirrors_the_rbm_stack(pretrained):
    ae, x = pretrained
    net = ae.unroll()
    kinds = [type(layer) for layer in net.layers]
    assert kinds == [Dense, Sigmoid, Dense, Sigmoid, Dense, Linear,        # encoder, linear code
                     Dense, Sigmoid, Dense, Sigmoid, Dense, Sigmoid]       # decoder
    assert ae.code_end == 6
    rbms = ae.dbn.rbms
    np.testing.assert_array_equal(net.layers[0].params["W"], rbms[0].W)
    np.testing.assert_array_equal(net.layers[6].params["W"], rbms[2].W.T)
    np.testing.assert_array_equal(net.layers[10].params["b"], rbms[0].b_visible)
    # before fine-tuning the code is the top RBM's E[h | v] and decoding is the mean-field down pass
    codes = ae.encode(x[:50])
    np.testing.assert_allclose(codes, ae.dbn.up(x[:50]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ae.decode(codes), ae.dbn.down(codes, 3), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cost", ["cross-entropy", "quadratic"])
def test_fine_tuning_lowers_the_reconstruction_error(pretrained, cost):
    ae, x = pretrained
    ae.unroll()
    before = ae.reconstruction_error(x)
    from nablanet.optimizers import Momentum
    history = ae.fine_tune(x[:500], 15, validation=x[500:], cost=cost,
                           optimizer=Momentum(0.05 if cost == "quadratic" else 0.01, 0.9),
                           batch_size=20, rng=0)
    after = ae.reconstruction_error(x)
    assert after < 0.6 * before
    assert history["validation_cost"][-1] < history["validation_cost"][0]
    # the pretrained RBMs are untouched by fine-tuning (the net holds copies)
    assert not np.array_equal(ae.net.layers[0].params["W"], ae.dbn.rbms[0].W)


@pytest.mark.parametrize("cost", ["cross-entropy", "quadratic"])
def test_fine_tuning_is_the_ordinary_trainer_on_targets_y_equal_x(pretrained, cost):
    from nablanet.backend import make_rng
    from nablanet.data import Dataset
    from nablanet.optimizers import Momentum
    from nablanet.training import Trainer
    ae, x = pretrained
    ae.unroll()
    ae.fine_tune(x[:100], 1, cost=cost, batch_size=7, rng=0)    # default: momentum 0.01, 0.9
    fine_tuned = params(ae.net)
    net = ae.unroll()
    Trainer(net, cost, Momentum(0.01, 0.9), batch_size=7, rng=make_rng(0)).fit(
        Dataset(x[:100], x[:100]), 1)
    assert_same_params(fine_tuned, params(net))


def test_fine_tuning_unrolls_a_pretrained_autoencoder_itself_and_takes_its_two_costs():
    x, _ = curve_images(n=60)
    ae = DeepAutoencoder((36, 12, 2), rng=0)
    ae.pretrain(x, 1, cd=ContrastiveDivergence(learning_rate=0.1, batch_size=20), rng=0)
    ae.fine_tune(x, 1, batch_size=20, rng=0)
    assert ae.net is not None and ae.code_end == 4
    with pytest.raises(ConfigError, match="'cross-entropy' or 'quadratic', got 'log-likelihood'"):
        ae.fine_tune(x, 1, cost="log-likelihood")


def test_pretraining_on_binarized_pixels():
    x, _ = curve_images(n=60)
    ae = DeepAutoencoder((36, 12, 2), rng=0)
    ae.pretrain(x, 1, binarize=True, cd=ContrastiveDivergence(batch_size=20), rng=0)
    assert [rbm.epochs_trained for rbm in ae.dbn.rbms] == [1, 1]


def test_a_2d_code_beats_pca_with_2_components_on_a_curved_manifold(pretrained):
    ae, x = pretrained
    ae.unroll()
    from nablanet.optimizers import Momentum
    ae.fine_tune(x, 40, optimizer=Momentum(0.01, 0.9), batch_size=20, rng=0)
    pca = PCA(2).fit(x)
    assert ae.reconstruction_error(x) < 0.7 * pca.reconstruction_error(x)   # 0.55 vs 1.17


def test_pca_is_the_best_linear_reconstruction():
    x, _ = curve_images(300)
    errors = [PCA(k).fit(x).reconstruction_error(x) for k in (1, 2, 5, 36)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 1e-8
    pca = PCA(5).fit(x)
    np.testing.assert_allclose(pca.components_ @ pca.components_.T, np.eye(5), atol=1e-10)
    sklearn = pytest.importorskip("sklearn.decomposition")
    theirs = sklearn.PCA(5).fit(x)
    ours = pca.reconstruct(x)
    np.testing.assert_allclose(ours, theirs.inverse_transform(theirs.transform(x)), atol=1e-4)
    # the sample variance along each component (n − 1 in the denominator)
    np.testing.assert_allclose(pca.explained_variance_, theirs.explained_variance_, rtol=1e-4)
    with pytest.raises(DataError, match="PCA with 50 components needs .* n, d ≥ 50"):
        PCA(50).fit(x)
    with pytest.raises(ConfigError, match="n_components must be ≥ 1"):
        PCA(0)


def test_pca_use_before_fit_or_on_other_widths_is_one_clear_error():
    # were AttributeError 'mean_' and a NumPy broadcast error
    x = np.random.default_rng(0).random((20, 6))
    with pytest.raises(ConfigError, match="not fitted"):
        PCA(2).encode(x)
    pca = PCA(2).fit(x)
    for bad in (x[:, :5], x[0]):
        with pytest.raises(DataError, match=r"fitted on 6 features needs an \(n, 6\) array"):
            pca.reconstruct(bad)


def test_encoding_and_reconstructing_in_chunks_covers_every_row(pretrained, monkeypatch):
    import nablanet.models.autoencoder as autoencoder
    ae, x = pretrained
    ae.unroll()
    whole_codes, whole = ae.encode(x[:50]), ae.reconstruct(x[:50])
    monkeypatch.setattr(autoencoder, "_CHUNK", 7)               # 50 rows: 7 full chunks + 1
    np.testing.assert_allclose(ae.encode(x[:50]), whole_codes, rtol=1e-6)
    np.testing.assert_allclose(ae.reconstruct(x[:50]), whole, rtol=1e-6)


def test_denoising_autoencoder_corrupts_only_while_training(pretrained):
    ae, x = pretrained
    net = ae.unroll(input_dropout=0.3)
    assert isinstance(net.layers[0], Dropout) and ae.code_end == 7
    np.testing.assert_array_equal(ae.encode(x[:10]), ae.encode(x[:10]))     # deterministic
    net.set_rng(np.random.default_rng(0))
    noisy, _ = net.layers[0].forward(x[:10], train=True)
    assert (noisy == 0).mean() > 0.2
    ae.fine_tune(x, 2, batch_size=20, rng=0)


def test_fine_tuned_autoencoder_saves_as_an_ordinary_model(tmp_path, pretrained):
    ae, x = pretrained
    ae.unroll()
    save_model(tmp_path / "ae", ae.net, "cross-entropy", metadata={"code_end": ae.code_end})
    net, _, meta = load_model(tmp_path / "ae")
    again = DeepAutoencoder.from_net(net, meta["code_end"])
    np.testing.assert_array_equal(again.encode(x[:20]), ae.encode(x[:20]))
    for outside in (0, len(net.layers), 99):       # the code needs an encoder and a decoder
        with pytest.raises(ConfigError, match="code_end must index a layer"):
            DeepAutoencoder.from_net(net, outside)


def test_the_code_is_the_output_of_the_layer_before_code_end():
    # a wrapped net may end its encoder with a nonlinearity: the code includes it
    from nablanet import Sequential
    net = Sequential([Dense(4, 2), Sigmoid(), Dense(2, 4), Sigmoid()], 4)
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    W, b = net.layers[0].params["W"], net.layers[0].params["b"]
    ae = DeepAutoencoder.from_net(net, 2)
    np.testing.assert_allclose(ae.encode(x), 1 / (1 + np.exp(-(x @ W + b))), rtol=1e-6)
    np.testing.assert_allclose(ae.decode(ae.encode(x)), ae.reconstruct(x), rtol=1e-6)
    # no RBMs behind a wrapped net: one clear error, not an AttributeError on None
    for what, call in (("pretrain", lambda: ae.pretrain(x, 1)), ("unroll", ae.unroll)):
        with pytest.raises(ConfigError, match=f"cannot {what} an autoencoder wrapped with "
                                              "from_net"):
            call()


def test_squared_error_per_image_is_summed_over_pixels_and_averaged_over_images():
    x = np.zeros((2, 3))
    assert squared_error_per_image(x, np.array([[1, 1, 0], [0, 0, 0.0]])) == 1.0
    assert squared_error_per_image(x, np.array([[0.5, 0, 0], [0, -2, 0]])) == (0.25 + 4) / 2
    with pytest.raises(DataError):
        squared_error_per_image(x, np.zeros((2, 4)))


def test_pngs_are_written(tmp_path, pretrained):
    ae, x = pretrained
    ae.unroll()
    paths = [save_filters(tmp_path / "filters.png", ae.dbn.rbms[0], n=24, image_shape=(6, 6)),
             save_reconstructions(tmp_path / "rec.png", x, [ae.reconstruct(x[:10]), x[:10]],
                                  n=10, image_shape=(6, 6), labels=("data", "ae", "copy")),
             save_code_scatter(tmp_path / "codes.png", ae.encode(x), curve_images()[1]),
             save_grid(tmp_path / "grid.png", x[:7], image_shape=(6, 6), n_cols=3, title="t")]
    for path in paths:
        assert path.read_bytes()[:8] == PNG


def test_same_seed_same_pretrained_and_fine_tuned_denoising_autoencoder():
    x, _ = curve_images(n=100)
    runs = []
    for _ in range(2):
        ae = DeepAutoencoder((36, 12, 2), rng=1)
        ae.pretrain(x, 1, cd=ContrastiveDivergence(learning_rate=0.1, batch_size=20), rng=2)
        ae.unroll(input_dropout=0.2, rng=3)
        ae.fine_tune(x, 2, batch_size=20, rng=4)
        runs.append(params(ae.net))
    assert_same_params(*runs)
