"""GaussianNoise and SpatialDropout1D/2D (minidl/layers/noise.py): the identity at inference, as
Keras (live); in training, the statistics of each library's own draws (neither can replay the
other's generator), the channel-wise mask of SpatialDropout1D/2D in both, and the gradients."""
import numpy as np
import pytest

import minidl as dl
from minidl import layers


def test_noise_layers_are_the_identity_at_inference_as_keras_live(rng):
    keras = pytest.importorskip("keras")
    x = rng.normal(size=(2, 5, 3)).astype("float32")
    for class_name, kwargs in (("GaussianNoise", {"stddev": 0.5}), ("SpatialDropout1D", {"rate": 0.5})):
        expected = keras.ops.convert_to_numpy(getattr(keras.layers, class_name)(**kwargs)(x, training=False))
        np.testing.assert_array_equal(getattr(layers, class_name)(**kwargs)(x).numpy(), expected)
        np.testing.assert_array_equal(expected, x)
    images = rng.normal(size=(2, 3, 4, 2)).astype("float32")
    expected = keras.ops.convert_to_numpy(keras.layers.SpatialDropout2D(0.5)(images, training=False))
    np.testing.assert_array_equal(layers.SpatialDropout2D(0.5)(images).numpy(), expected)


def test_spatial_dropout_drops_whole_channels_as_keras_live(rng):
    keras = pytest.importorskip("keras")
    x = rng.uniform(1, 2, size=(64, 10, 8)).astype("float32")
    keras.utils.set_random_seed(0)   # the kept fraction's bound is 3 standard deviations: seeded, it cannot flake
    for y in (keras.ops.convert_to_numpy(keras.layers.SpatialDropout1D(0.3)(x, training=True)),
              layers.SpatialDropout1D(0.3)(x, training=True).numpy()):
        kept = y != 0
        np.testing.assert_array_equal(kept, np.broadcast_to(kept[:, :1], kept.shape))  # constant over time
        np.testing.assert_allclose(y[kept], x[kept] / 0.7, rtol=1e-6)
        assert abs(1 - kept.mean() - 0.3) < 0.06


def test_spatial_dropout_2d_drops_whole_feature_maps_as_keras_live(rng):
    keras = pytest.importorskip("keras")
    x = rng.uniform(1, 2, size=(64, 5, 4, 8)).astype("float32")
    keras.utils.set_random_seed(0)   # the kept fraction's bound is 3 standard deviations: seeded, it cannot flake
    for y in (keras.ops.convert_to_numpy(keras.layers.SpatialDropout2D(0.3)(x, training=True)),
              layers.SpatialDropout2D(0.3)(x, training=True).numpy()):
        kept = y != 0
        np.testing.assert_array_equal(kept, np.broadcast_to(kept[:, :1, :1], kept.shape))  # one flag a map
        np.testing.assert_allclose(y[kept], x[kept] / 0.7, rtol=1e-6)
        assert abs(1 - kept.mean() - 0.3) < 0.06


def test_spatial_dropout_2d_refuses_channels_first_and_a_wrong_rank():
    with pytest.raises(NotImplementedError, match=r"data_format='channels_first' is not supported"):
        layers.SpatialDropout2D(0.2, data_format="channels_first")
    with pytest.raises(ValueError, match=r"expects a 4-D input"):
        layers.SpatialDropout2D(0.2)(np.zeros((2, 3, 4)), training=True)


def test_spatial_dropout_2d_saves_and_loads(tmp_path, rng):
    model = dl.Sequential([layers.Input((3, 4, 2)), layers.SpatialDropout2D(0.25, seed=7), layers.Dense(2)])
    path = tmp_path / "model.npz"
    dl.saving.save_model(model, path)
    loaded = dl.load_model(path)
    assert loaded.layers[0].get_config() == model.layers[0].get_config()
    assert loaded.layers[0].rate == 0.25 and loaded.layers[0].seed == 7
    x = rng.normal(size=(2, 3, 4, 2)).astype("float32")
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


def test_gaussian_noise_statistics_as_keras_live(rng):
    keras = pytest.importorskip("keras")
    x = np.zeros((200, 50), dtype="float32")
    # both seeded, so the test cannot flake; the bounds are 5 standard errors of 10,000 draws
    # (mean: 0.4 / 100 = 0.004; standard deviation: 0.4 / sqrt(2 * 10,000) ≈ 0.0028). Unseeded,
    # Keras' mean passed 0.01 (2.5 standard errors) in one CI run.
    keras.utils.set_random_seed(0)
    dl.random.seed(0)
    for noise in (keras.ops.convert_to_numpy(keras.layers.GaussianNoise(0.4)(x, training=True)),
                  layers.GaussianNoise(0.4)(x, training=True).numpy()):
        assert abs(noise.mean()) < 0.02 and abs(noise.std() - 0.4) < 0.014


def test_noise_layer_gradients(rng):
    x = rng.normal(size=(3, 4, 2))
    noise = layers.GaussianNoise(0.3, dtype="float64")
    dl.random.seed(1)
    drawn = noise(x, training=True).numpy() - x

    def noisy(inputs):
        dl.random.seed(1)  # the same draw at every evaluation, so the finite differences see one function
        return noise(inputs, training=True)
    dl.gradcheck(noisy, (x,))
    np.testing.assert_allclose(noisy(dl.Tensor(x)).numpy() - x, drawn)
    dropout = layers.SpatialDropout1D(0.4, dtype="float64")

    def dropped(inputs):
        dl.random.seed(2)
        return dropout(inputs, training=True)
    dl.gradcheck(dropped, (x,))
    dropout_2d = layers.SpatialDropout2D(0.4, dtype="float64")

    def dropped_maps(inputs):
        dl.random.seed(3)
        return dropout_2d(inputs, training=True)
    dl.gradcheck(dropped_maps, (rng.normal(size=(3, 2, 4, 2)),))
