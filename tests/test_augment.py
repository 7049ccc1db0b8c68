"""Data augmentation: Nielsen's shifts, affine maps, elastic distortions, the on-the-fly layer."""
import numpy as np
import pytest

from nablanet import ConfigError, DataError, Sequential, get_backend
from nablanet.data import Dataset
from nablanet.data.augment import (ONE_PIXEL_SHIFTS, distort, elastic_distortion, expand,
                                   expand_by_shifts, random_affine, random_shift, shift_images)
from nablanet.io import load_model, save_model
from nablanet.layers import Dense, RandomDistortion, Softmax


def digits(n=6, seed=0):
    """Blocky random 'digits': a bright rectangle per image on a dark 28 × 28 background."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28), dtype=np.float32)
    for i in range(n):
        r, c = rng.integers(6, 12, 2)
        x[i, r:r + 10, c:c + 6] = 1.0
    return x


def test_shift_moves_pixels_and_fills_with_zeros():
    x = np.arange(9, dtype=np.float32).reshape(1, 3, 3)
    np.testing.assert_array_equal(shift_images(x, 1, 0, (3, 3))[0],
                                  [[0, 0, 0], [0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(shift_images(x, 0, -1, (3, 3))[0],
                                  [[1, 2, 0], [4, 5, 0], [7, 8, 0]])
    flat = x.reshape(1, 9)
    assert shift_images(flat, 1, 1, (3, 3)).shape == (1, 9)


def test_flat_rows_of_non_square_images_are_shifted_in_their_own_shape():
    x = np.arange(6, dtype=np.float32).reshape(1, 6)              # one 2 × 3 image
    np.testing.assert_array_equal(shift_images(x, 0, 1, (2, 3)), [[0, 0, 1, 0, 3, 4]])


class Draws:
    """A stand-in generator: call k of ``random`` returns ``values[k]`` (broadcast to the
    size asked for); 1 is the top of a range U(−a, a) and 0 its bottom."""

    def __init__(self, *values):
        self.values = list(values)

    def random(self, size, dtype=np.float64):
        return np.broadcast_to(np.asarray(self.values.pop(0), dtype), size).copy()


def _affine(x, *draws, rotation=0.0, translation=0.0, shear=0.0, scale=(1.0, 1.0)):
    """random_affine with its four draws (angle, shear, zoom, (Δrow, Δcol)) fixed."""
    return random_affine(x, Draws(*draws), rotation=rotation, translation=translation,
                         shear=shear, scale=scale)


def test_rotation_by_minus_90_degrees_turns_clockwise():
    x = digits()
    out = _affine(x, 0.0, 0.5, 0.5, 0.5, rotation=90)             # bottom of ±90°
    np.testing.assert_allclose(out, np.rot90(x, k=-1, axes=(1, 2)), atol=1e-5)


def test_translation_moves_rows_and_columns_by_their_own_draws():
    x = digits()
    out = _affine(x, 0.5, 0.5, 0.5, [[1.0], [0.5]], translation=2.0)   # Δrow = 2, Δcol = 0
    np.testing.assert_allclose(out, shift_images(x, 2, 0), atol=1e-6)


def test_a_half_pixel_translation_interpolates_between_neighbours():
    x = np.zeros((1, 5, 5), np.float32)
    x[0, 2, 2] = 1.0
    out = _affine(x, 0.5, 0.5, 0.5, [[0.75], [0.5]], translation=1.0)  # Δrow = 0.5
    np.testing.assert_allclose(out[0, 2:4, 2], [0.5, 0.5], atol=1e-6)   # bilinear
    assert out.sum() == pytest.approx(1.0)


def test_pixels_from_outside_the_image_are_zero():
    out = _affine(np.ones((1, 5, 5), np.float32), 0.5, 0.5, 0.5, 1.0, translation=1.0)
    np.testing.assert_allclose(out[0], shift_images(np.ones((1, 5, 5)), 1, 1, (5, 5))[0],
                               atol=1e-6)
    assert out[0, 0].sum() == 0 and out[0, :, 0].sum() == 0


def test_shear_slides_each_column_by_its_distance_from_the_centre():
    """φ = 45° with no rotation or zoom: A = [[1, tan φ], [0, 1]] on (row, col), so output
    (r, c) reads input (r − (c − 4), c) on a 9 × 9 image (centre 4)."""
    x = np.random.default_rng(0).random((1, 9, 9)).astype(np.float32)
    out = _affine(x, 0.5, 1.0, 0.5, 0.5, shear=45.0)
    expected = np.zeros_like(x)
    for r in range(9):
        for c in range(9):
            if 0 <= r - (c - 4) < 9:
                expected[0, r, c] = x[0, r - (c - 4), c]
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_zoom_draws_from_the_whole_scale_range_and_magnifies():
    """Zoom 2 about the centre of a 9 × 9 image: output (4, 5) reads input (4, 4.5)."""
    x = np.zeros((1, 9, 9), np.float32)
    x[0, 4, 4] = 1.0
    out = _affine(x, 0.5, 0.5, 1.0, 0.5, scale=(1.0, 2.0))        # top of the range: ×2
    np.testing.assert_allclose(out[0, 4, 3:7], [0.5, 1.0, 0.5, 0.0], atol=1e-6)


def test_elastic_field_is_two_independent_smooth_zero_mean_displacements():
    """On ramps (value = row, value = column) bilinear warping is exact inside the image,
    so out − ramp is α times the displacement field, Δy and Δx separately."""
    n, h = 4, 24
    r, c = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(h, dtype=np.float64),
                       indexing="ij")
    inner = (slice(None), slice(3, -3), slice(3, -3))

    def field(ramp):
        ramps = np.broadcast_to(ramp, (n, h, h)).copy()
        return (elastic_distortion(ramps, np.random.default_rng(0), alpha=1.0, sigma=2.0)
                - ramps)[inner]

    dy, dx = field(r), field(c)
    for d in (dy, dx):
        assert abs(d.mean()) < 0.03 and d.min() < 0 < d.max()       # U(−1, 1), smoothed
        # smoothed along both image axes: neighbours differ by far less than raw U(−1, 1)
        assert np.abs(np.diff(d, axis=1)).mean() < 0.05
        assert np.abs(np.diff(d, axis=2)).mean() < 0.05
    assert np.abs(dy - dx).mean() > 0.05                             # not one field twice


def test_expand_by_shifts_is_nielsens_five_fold_set():
    x = digits(4).reshape(4, 784)
    data = Dataset(x, np.arange(4))
    big = expand_by_shifts(data)
    assert len(big) == 20
    np.testing.assert_array_equal(big.x[:4], x)                 # originals first
    np.testing.assert_array_equal(big.y, np.tile(np.arange(4), 5))
    up = big.x[4:8].reshape(4, 28, 28)
    np.testing.assert_array_equal(up[:, :-1], x.reshape(4, 28, 28)[:, 1:])


def test_random_shift_draws_each_image_from_nielsens_five_versions():
    rng = np.random.default_rng(0)
    x = rng.random((500, 784), dtype=np.float32)
    y = random_shift(x, np.random.default_rng(1))
    versions = np.stack([x] + [shift_images(x, dy, dx) for dy, dx in ONE_PIXEL_SHIFTS])
    matches = (versions == y[None]).all(axis=2)          # (5 versions, 500 images)
    assert matches.any(axis=0).all()                     # every image is one of the five
    counts = matches.argmax(axis=0)
    assert np.bincount(counts, minlength=5).min() > 60      # all five drawn, about equally
    np.testing.assert_array_equal(y, random_shift(x, np.random.default_rng(1)))
    assert y.dtype == x.dtype and not np.shares_memory(x, y)
    for pixels in (-1, True, 1.0):
        with pytest.raises(ConfigError, match="pixels"):
            random_shift(x, rng, pixels=pixels)
    np.testing.assert_array_equal(random_shift(x, rng, pixels=0), x)     # 0: no move


def test_random_shift_moves_by_the_pixels_asked_for():
    x = np.random.default_rng(0).random((200, 784), dtype=np.float32)
    y = random_shift(x, np.random.default_rng(1), pixels=2)
    versions = np.stack([x] + [shift_images(x, 2 * dy, 2 * dx) for dy, dx in ONE_PIXEL_SHIFTS])
    matches = (versions == y[None]).all(axis=2)
    assert matches.any(axis=0).all() and matches[1:].any()
    # distort(kind="shift") is the same draw
    np.testing.assert_array_equal(distort(x, np.random.default_rng(1), "shift", pixels=2), y)


def test_identity_affine_leaves_images_unchanged():
    x = digits()
    out = random_affine(x, np.random.default_rng(0), rotation=0, translation=0, shear=0,
                        scale=(1, 1))
    np.testing.assert_allclose(out, x, atol=1e-6)


def test_pure_translation_matches_a_shift():
    """A translation of exactly one pixel down is shift_images(x, 1, 0)."""
    x = digits()

    class Fixed:                     # a generator whose draws hit the top of every range
        def random(self, size, dtype=np.float64):
            return np.ones(size, dtype=dtype)

    out = random_affine(x, Fixed(), rotation=0, shear=0, scale=(1, 1), translation=1.0)
    np.testing.assert_allclose(out, shift_images(x, 1, 1), atol=1e-6)


def test_rotation_by_plus_90_degrees_turns_counter_clockwise_like_rot90():
    x = digits()

    class Fixed:
        def __init__(self):
            self.calls = 0

        def random(self, size, dtype=np.float64):
            self.calls += 1          # first draw: rotation angle (top of the range)
            return np.ones(size, dtype) if self.calls == 1 else np.full(size, 0.5, dtype)

    out = random_affine(x, Fixed(), rotation=90, shear=0, scale=(1, 1), translation=1.0)
    np.testing.assert_allclose(out, np.rot90(x, k=1, axes=(1, 2)), atol=1e-5)


@pytest.mark.parametrize("distort", [random_affine, elastic_distortion])
def test_distortions_are_seeded_per_image_and_keep_shape(distort):
    x = digits(8)
    a = distort(x, np.random.default_rng(1))
    b = distort(x, np.random.default_rng(1))
    c = distort(x, np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert a.shape == x.shape and a.dtype == np.float32
    assert np.abs(a - x).mean() > 0.01                       # it really moved something
    # every image gets its own map: two copies of one digit come out different
    twins = distort(np.stack([x[0], x[0]]), np.random.default_rng(3))
    assert not np.allclose(twins[0], twins[1])


def test_elastic_distortion_scales_with_alpha_and_is_smooth_in_sigma():
    x = digits(8)
    small = elastic_distortion(x, np.random.default_rng(0), alpha=2.0, sigma=4.0)
    large = elastic_distortion(x, np.random.default_rng(0), alpha=34.0, sigma=4.0)
    assert np.abs(small - x).mean() < np.abs(large - x).mean()
    assert np.allclose(elastic_distortion(x, np.random.default_rng(0), alpha=0.0), x)
    # Each image is warped alone: blank images stay blank whatever their neighbours hold.
    batch = np.concatenate([x[:2], np.zeros((2, 28, 28), np.float32)])
    assert (elastic_distortion(batch, np.random.default_rng(0))[2:] == 0).all()


def test_expand_adds_distorted_copies():
    data = Dataset(digits(5).reshape(5, 784), np.arange(5))
    big = expand(data, 0, copies=2, kind="affine")
    assert len(big) == 15
    np.testing.assert_array_equal(big.x[:5], data.x)
    assert not np.allclose(big.x[5:10], data.x)
    assert not np.allclose(big.x[10:], big.x[5:10])              # each copy drawn afresh
    np.testing.assert_array_equal(big.y, np.tile(np.arange(5), 3))
    np.testing.assert_array_equal(expand(data, 0, copies=0).x, data.x)


def test_bad_arguments():
    x = digits(2)
    with pytest.raises(ConfigError, match="alpha"):
        elastic_distortion(x, np.random.default_rng(0), sigma=0)
    with pytest.raises(ConfigError, match="scale"):
        random_affine(x, np.random.default_rng(0), scale=(1.2, 0.8))
    for shear in (-1.0, 90.0):
        with pytest.raises(ConfigError, match="shear"):
            random_affine(x, np.random.default_rng(0), shear=shear)
    # NaN and inf passed the checks and distorted every digit into a black image
    nan, inf = float("nan"), float("inf")
    for bad in ({"rotation": nan}, {"translation": nan}, {"shear": nan}, {"rotation": inf},
                {"scale": (0.9, inf)}):
        with pytest.raises(ConfigError, match="affine ranges must be finite"):
            random_affine(x, np.random.default_rng(0), **bad)
    for bad in ({"alpha": nan}, {"alpha": inf}, {"sigma": inf}):
        with pytest.raises(ConfigError, match="needs finite alpha"):
            elastic_distortion(x, np.random.default_rng(0), **bad)
    with pytest.raises(DataError, match="784"):
        random_affine(np.zeros((2, 100)), np.random.default_rng(0))
    with pytest.raises(ConfigError, match="unknown distortion"):
        expand(Dataset(x.reshape(2, -1), [0, 1]), 0, kind="swirl")
    with pytest.raises(ConfigError, match="RandomDistortion"):
        RandomDistortion("elastic", sigmaa=3)


def test_distortion_layer_trains_on_fresh_distortions_and_tests_on_originals(tmp_path):
    net = Sequential([RandomDistortion("elastic", alpha=20.0), Dense(None, 3),
                      Softmax()]).build((784,), get_backend(), rng=0)
    x = digits(4).reshape(4, 784)
    net.set_rng(np.random.default_rng(5))
    first, _ = net.layers[0].forward(x, train=True)
    second, _ = net.layers[0].forward(x, train=True)
    assert not np.allclose(first, x) and not np.allclose(first, second)
    np.testing.assert_array_equal(net.layers[0].forward(x, train=False)[0], x)
    assert net.layers[0].backward(np.ones_like(x), None) is None
    save_model(tmp_path / "m", net)
    loaded, _, _ = load_model(tmp_path / "m")
    assert loaded.layers[0].config() == net.layers[0].config()
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))


def test_distortion_layer_takes_its_image_shape_from_the_net():
    # a net on 12 × 10 single-channel images distorts them as 12 × 10, whatever the default
    layer = RandomDistortion("affine", rotation=10.0)
    assert layer.build((1, 12, 10), get_backend(), None) == (1, 12, 10)
    assert layer.image_shape == (12, 10)
    layer.rng = np.random.default_rng(0)
    x = np.zeros((2, 1, 12, 10), dtype=np.float32)
    x[:, :, 3:9, 4:6] = 1.0
    y, _ = layer.forward(x, train=True)
    assert y.shape == x.shape and not np.allclose(y, x)


@pytest.mark.parametrize("shape", [(3, 28, 28), (2, 1, 28, 28), (100,)])
def test_distortion_layer_refuses_what_is_not_one_channel_image(shape):
    with pytest.raises(ConfigError, match="single-channel images"):
        RandomDistortion("affine").build(shape, get_backend(), None)


@pytest.mark.parametrize("shape, pixels", [((784,), 28), ((1, 6, 9), 6), ((9, 5), 5)])
def test_random_distortion_refuses_a_shift_of_the_whole_image(shape, pixels):
    """Only build knows the real image size; a shift that large blanked every image it moved."""
    with pytest.raises(ConfigError, match=f"shift of {pixels} pixels must be smaller"):
        RandomDistortion("shift", pixels=pixels).build(shape, get_backend(), None)
    # one pixel less moves the images and keeps a strip of each
    assert RandomDistortion("shift", pixels=pixels - 1).build(shape, get_backend(), None) == shape
