"""Conv1D, Conv2D, ZeroPadding1D/2D: Keras values, gradients, masks, errors, config."""
import numpy as np
import pytest

import minidl as dl
from minidl.layers.conv import Conv1D, Conv2D, ZeroPadding1D, ZeroPadding2D
from minidl.tensor import Tensor
from tests.reference.make_conv_fixtures import CASES, generate, load

LAYERS = {"Conv1D": Conv1D, "Conv2D": Conv2D, "ZeroPadding1D": ZeroPadding1D, "ZeroPadding2D": ZeroPadding2D}


def _run(file, case, data):
    class_name, kwargs, _, _ = CASES[file][case]
    layer = LAYERS[class_name](**kwargs)
    layer(Tensor(data["x"]))  # build
    layer.set_weights([data[f"w{i}"] for i in range(len(layer.weights))])
    return layer(Tensor(data["x"])).numpy()


@pytest.mark.parametrize("file, case", [(f, c) for f in ("conv_conv2d", "conv_conv1d") for c in CASES[f]]
                         + [("conv_pooling", "zeropad1d"), ("conv_pooling", "zeropad2d")])
def test_layer_matches_keras_fixture(file, case):
    data = load(file)[case]
    y = _run(file, case, data)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, data["y"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("file", ["conv_conv2d", "conv_conv1d"])
def test_layer_matches_keras_live(file):
    pytest.importorskip("keras")
    live = generate(file)
    for case in CASES[file]:
        data = {k.split("/")[1]: v for k, v in live.items() if k.startswith(case + "/")}
        np.testing.assert_allclose(_run(file, case, data), data["y"], atol=1e-5, rtol=1e-5, err_msg=case)


def test_weights_have_keras_shapes_and_initialisers():
    pytest.importorskip("keras")
    import keras
    layer, reference = Conv2D(5, (3, 2)), keras.layers.Conv2D(5, (3, 2))
    layer(Tensor(np.zeros((1, 6, 6, 4), "float32")))
    reference.build((1, 6, 6, 4))
    assert [w.shape for w in layer.weights] == [tuple(w.shape) for w in reference.get_weights()]
    limit = np.sqrt(6 / (3 * 2 * 4 + 3 * 2 * 5))  # glorot_uniform, receptive field 3·2
    assert np.abs(layer.kernel.numpy()).max() <= limit and not layer.bias.numpy().any()


# --- gradients (float64) ---------------------------------------------------------------------------
def _with_weights(layer, x, kernel, bias):
    """The layer applied with its weights replaced by gradcheck's tensors, so they get gradients."""
    layer.kernel, layer.bias = kernel, bias
    return layer(x)


@pytest.mark.parametrize("kwargs, shape", [
    pytest.param(dict(filters=3, kernel_size=3, activation="tanh"), (1, 5, 5, 2), id="Conv2D-tanh-batch-1"),
    pytest.param(dict(filters=2, kernel_size=2, strides=2, padding="same"), (2, 5, 4, 2), id="Conv2D-strides2-same"),
    pytest.param(dict(filters=2, kernel_size=3, dilation_rate=2, padding="same"), (1, 5, 6, 1),
                 id="Conv2D-dilation2-same"),
])
def test_conv2d_layer_gradient(rng, kwargs, shape):
    layer = Conv2D(dtype="float64", **kwargs)
    layer(Tensor(np.zeros(shape)))
    kernel, bias = rng.normal(size=layer.kernel.shape), rng.normal(size=layer.bias.shape)
    dl.gradcheck(lambda x, k, b: _with_weights(layer, x, k, b), (rng.normal(size=shape), kernel, bias))


@pytest.mark.parametrize("kwargs, shape", [
    pytest.param(dict(filters=3, kernel_size=3, activation="sigmoid"), (1, 6, 2), id="Conv1D-sigmoid-batch-1"),
    pytest.param(dict(filters=2, kernel_size=4, strides=2, padding="same"), (2, 7, 3), id="Conv1D-strides2-same"),
    pytest.param(dict(filters=2, kernel_size=2, dilation_rate=2, padding="causal"), (2, 5, 2),
                 id="Conv1D-dilation2-causal"),
    pytest.param(dict(filters=2, kernel_size=1), (2, 1, 3), id="Conv1D-length-1"),
])
def test_conv1d_layer_gradient(rng, kwargs, shape):
    dl.set_floatx("float64")
    layer = Conv1D(**kwargs)
    layer(Tensor(np.zeros(shape)))
    kernel, bias = rng.normal(size=layer.kernel.shape), rng.normal(size=layer.bias.shape)
    dl.gradcheck(lambda x, k, b: _with_weights(layer, x, k, b), (rng.normal(size=shape), kernel, bias))


def test_zero_padding_gradient(rng):
    dl.gradcheck(ZeroPadding2D(((1, 0), (2, 1)), dtype="float64"), (rng.normal(size=(2, 3, 2, 2)),))
    dl.gradcheck(ZeroPadding1D(2, dtype="float64"), (rng.normal(size=(2, 3, 2)),))


# --- masks through time --------------------------------------------------------------------------------
def _mask(lengths, steps):
    return np.arange(steps)[None, :] < np.asarray(lengths)[:, None]


@pytest.mark.parametrize("kwargs", [dict(padding="same", strides=2), dict(padding="same", strides=3),
                                    dict(padding="causal", strides=2), dict(padding="same")])
def test_conv1d_passes_the_mask_with_lengths_ceil_length_over_stride(kwargs):
    lengths = np.array([10, 7, 1, 4])
    x = Tensor(np.zeros((4, 10, 2), "float32"))
    x.mask = _mask(lengths, 10)
    y = Conv1D(3, 3, **kwargs)(x)
    stride = kwargs.get("strides", 1)
    np.testing.assert_array_equal(y.mask, _mask(-(-lengths // stride), y.shape[1]))


def test_conv1d_valid_keeps_steps_whose_window_starts_in_the_valid_part():
    x = Tensor(np.zeros((2, 9, 1), "float32"))
    x.mask = _mask([9, 5], 9)
    y = Conv1D(1, 3, strides=2)(x)   # out_steps = 4; windows start at 0, 2, 4, 6
    np.testing.assert_array_equal(y.mask, [[1, 1, 1, 1], [1, 1, 1, 0]])
    assert Conv2D(1, 3)(Tensor(np.zeros((1, 4, 4, 1)), )).mask is None


def test_zero_padding1d_pads_the_mask_with_false():
    x = Tensor(np.zeros((1, 3, 1), "float32"))
    x.mask = np.array([[True, True, False]])
    np.testing.assert_array_equal(ZeroPadding1D((1, 2))(x).mask, [[False, True, True, False, False, False]])


# --- errors and config -------------------------------------------------------------------------------
def test_conv2d_errors_name_layer_expected_and_received():
    layer = Conv2D(2, 3, name="c")
    with pytest.raises(ValueError, match=r"Conv2D 'c' expects a 4-D input \(batch, height, width, channels\), "
                                         r"got shape \(1, 5, 5\)"):
        layer(Tensor(np.zeros((1, 5, 5), "float32")))
    layer(Tensor(np.zeros((1, 5, 5, 3), "float32")))
    with pytest.raises(ValueError, match=r"Conv2D 'c' was built for 3 input channels, got an input of "
                                         r"shape \(1, 5, 5, 2\)"):
        layer(Tensor(np.zeros((1, 5, 5, 2), "float32")))
    with pytest.raises(ValueError, match=r"kernel spans 3 steps along spatial axis 0 but the input has only 2"):
        layer(Tensor(np.zeros((1, 2, 5, 3), "float32")))
    with pytest.raises(ValueError, match=r"Conv2D 'd': strides must be positive, got \(1, 0\)"):
        Conv2D(2, 3, strides=(1, 0), name="d")
    with pytest.raises(ValueError, match=r"Conv1D 'e': padding must be one of 'valid', 'same', 'causal', "
                                         r"got 'full'"):
        Conv1D(2, 3, padding="full", name="e")
    with pytest.raises(ValueError, match=r"Conv1D 'f' expects a 3-D input"):
        Conv1D(2, 3, name="f")(Tensor(np.zeros((1, 5, 5, 3), "float32")))
    with pytest.raises(ValueError, match=r"filters must be a positive int, got 0"):
        Conv1D(0, 3)


@pytest.mark.parametrize("layer", [
    Conv2D(4, (3, 2), strides=2, padding="same", activation="relu", use_bias=False, name="conv"),
    Conv1D(3, 5, padding="causal", dilation_rate=2, kernel_regularizer="l2"),
    ZeroPadding1D((1, 2)), ZeroPadding2D(((1, 0), (2, 3)))])
def test_get_config_rebuilds_the_layer(layer):
    config = layer.get_config()
    assert type(layer)(**config).get_config() == config


# --- a small CNN learns ---------------------------------------------------------------------------------
def _blob_images(count, rng, size=12):
    """Noisy images with one bright 3x3 blob; the label is the quadrant that holds it."""
    images = rng.normal(0, 0.3, size=(count, size, size, 1)).astype("float32")
    labels = rng.integers(0, 4, size=count)
    half = size // 2
    rows = (labels // 2) * half + rng.integers(0, half - 2, size=count)
    cols = (labels % 2) * half + rng.integers(0, half - 2, size=count)
    for offset_r in range(3):
        for offset_c in range(3):
            images[np.arange(count), rows + offset_r, cols + offset_c, 0] += 2.0
    return images, labels


def test_small_cnn_learns_which_quadrant_holds_the_blob(rng):
    """Conv2D -> MaxPooling2D -> Conv2D -> MaxPooling2D -> Flatten -> Dense reaches >= 95 % held-out
    accuracy after 60 Adam steps on batches of 32 (it reaches 100 % by step 50 here; chance is 25 %)."""
    import minidl.functional as F
    from minidl.layers.core import Dense, Flatten
    from minidl.layers.pooling import MaxPooling2D
    from minidl.optimizers import Adam

    layers = [Conv2D(8, 3, activation="relu", padding="same"), MaxPooling2D(2),
              Conv2D(16, 3, activation="relu"), MaxPooling2D(2), Flatten(), Dense(4)]

    def forward(x):
        for layer in layers:
            x = layer(x)
        return x

    train_x, train_y = _blob_images(60 * 32, rng)
    test_x, test_y = _blob_images(400, rng)
    forward(Tensor(train_x[:1]))
    params = [w for layer in layers for w in layer.trainable_weights]
    optimizer = Adam(0.01)
    for step in range(60):
        batch = slice(step * 32, (step + 1) * 32)
        loss = F.mean(F.sparse_categorical_crossentropy(train_y[batch], forward(Tensor(train_x[batch])),
                                                        from_logits=True))
        loss.backward()
        optimizer.apply(params)
    with dl.no_grad():
        accuracy = (forward(Tensor(test_x)).numpy().argmax(-1) == test_y).mean()
    assert accuracy >= 0.95, f"accuracy {accuracy:.3f}"
