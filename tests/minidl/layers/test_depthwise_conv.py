"""DepthwiseConv1D/2D and SeparableConv1D/2D (minidl/layers/depthwise_conv.py): outputs and weight
layouts against Keras live from the same weights, float64 gradients of every weight, the mask of
the 1-D layers, config, saving and loading, the size bound of a file, errors."""
import numpy as np
import pytest

import minidl as dl
from minidl import layers
from minidl.layers.serialization import deserialize_layer, serialize_layer

CASES = [  # (class name, constructor kwargs, input shape)
    ("DepthwiseConv2D", {"kernel_size": 3}, (2, 6, 5, 3)),
    ("DepthwiseConv2D", {"kernel_size": (2, 3), "strides": 2, "padding": "same", "depth_multiplier": 2,
                         "activation": "relu"}, (2, 7, 6, 2)),
    ("DepthwiseConv2D", {"kernel_size": 3, "padding": "same", "dilation_rate": (2, 1), "use_bias": False},
     (1, 6, 6, 4)),
    ("DepthwiseConv1D", {"kernel_size": 3}, (2, 8, 3)),
    ("DepthwiseConv1D", {"kernel_size": 4, "strides": 2, "padding": "same", "depth_multiplier": 3,
                         "activation": "tanh"}, (2, 9, 2)),
    ("DepthwiseConv1D", {"kernel_size": 2, "dilation_rate": 3, "use_bias": False}, (1, 10, 4)),
    ("SeparableConv2D", {"filters": 4, "kernel_size": 3}, (2, 6, 5, 3)),
    ("SeparableConv2D", {"filters": 5, "kernel_size": (3, 2), "strides": (1, 2), "padding": "same",
                         "depth_multiplier": 2, "activation": "sigmoid"}, (2, 7, 6, 2)),
    ("SeparableConv2D", {"filters": 2, "kernel_size": 2, "dilation_rate": 2, "use_bias": False}, (1, 6, 7, 3)),
    ("SeparableConv1D", {"filters": 4, "kernel_size": 3}, (2, 8, 3)),
    ("SeparableConv1D", {"filters": 3, "kernel_size": 5, "strides": 2, "padding": "same", "depth_multiplier": 2,
                         "activation": "relu"}, (2, 11, 2)),
    ("SeparableConv1D", {"filters": 2, "kernel_size": 3, "dilation_rate": 2, "use_bias": False}, (1, 9, 4)),
]
IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(CASES)]
WEIGHT_NAMES = {"DepthwiseConv1D": ["kernel", "bias"], "DepthwiseConv2D": ["kernel", "bias"],
                "SeparableConv1D": ["depthwise_kernel", "pointwise_kernel", "bias"],
                "SeparableConv2D": ["depthwise_kernel", "pointwise_kernel", "bias"]}


@pytest.mark.parametrize("class_name, kwargs, shape", CASES, ids=IDS)
def test_depthwise_and_separable_layers_match_keras_live(rng, class_name, kwargs, shape):
    keras = pytest.importorskip("keras")
    x = rng.normal(size=shape).astype("float32")
    theirs, ours = getattr(keras.layers, class_name)(**kwargs), getattr(layers, class_name)(**kwargs)
    theirs.build(shape)
    ours(x)
    # Keras' weight names, shapes and order
    assert [w.name.split("/")[-1] for w in ours.weights] == [w.name for w in theirs.weights] == \
        WEIGHT_NAMES[class_name][:len(theirs.weights)]
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in theirs.get_weights()]
    weights = [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    expected = keras.ops.convert_to_numpy(theirs(x))
    np.testing.assert_allclose(ours(x).numpy(), expected, rtol=1e-5, atol=1e-5)
    assert ours.compute_output_shape((None,) + shape[1:]) == (None,) + expected.shape[1:]


@pytest.mark.parametrize("class_name", ["DepthwiseConv2D", "SeparableConv2D"])
def test_initial_weights_follow_keras_initialisers(class_name):
    keras = pytest.importorskip("keras")
    kwargs = {"kernel_size": (3, 2), "depth_multiplier": 2, **({"filters": 5} if class_name[0] == "S" else {})}
    ours = getattr(layers, class_name)(**kwargs)
    ours(np.zeros((1, 6, 6, 4), "float32"))
    theirs = getattr(keras.layers, class_name)(**kwargs)
    theirs.build((1, 6, 6, 4))
    # glorot_uniform of a depthwise kernel (kh, kw, in, m): fan_in = kh·kw·in, fan_out = kh·kw·m
    limit = np.sqrt(6 / (3 * 2 * 4 + 3 * 2 * 2))
    for mine, keras_weight in zip(ours.get_weights()[:1], theirs.get_weights()[:1]):
        assert np.abs(mine).max() <= limit and np.abs(keras_weight).max() <= limit
        assert np.abs(mine).max() > 0.8 * limit  # drawn over the whole range, not a narrower one
    assert not ours.get_weights()[-1].any()  # zero bias


def _with_weights(layer, names, *values):
    """The layer applied with its weights replaced by gradcheck's tensors, so they get gradients."""
    x, *weights = values
    for name, weight in zip(names, weights):
        setattr(layer, name, weight)
    return layer(x)


@pytest.mark.parametrize("class_name, kwargs, shape", CASES, ids=IDS)
def test_layer_gradient_of_input_and_every_weight(rng, class_name, kwargs, shape):
    layer = getattr(layers, class_name)(dtype="float64", **kwargs)
    layer(np.zeros(shape))
    names = [w.name.split("/")[-1] for w in layer.weights]
    weights = [rng.normal(size=w.shape) for w in layer.weights]
    dl.gradcheck(lambda *values: _with_weights(layer, names, *values), (rng.normal(size=shape), *weights))


@pytest.mark.parametrize("class_name, kwargs", [("DepthwiseConv1D", {"kernel_size": 3, "strides": 2, "padding": "same"}),
                                                ("SeparableConv1D", {"filters": 2, "kernel_size": 3, "strides": 3,
                                                                     "padding": "same"})])
def test_a_1d_layer_passes_the_mask_as_conv1d_does(class_name, kwargs):
    lengths = np.array([10, 7, 1])
    x = dl.Tensor(np.zeros((3, 10, 2), "float32"))
    x.mask = np.arange(10)[None, :] < lengths[:, None]
    y = getattr(layers, class_name)(**kwargs)(x)
    expected = layers.Conv1D(2, **{k: v for k, v in kwargs.items() if k != "filters"})(x).mask
    stride = kwargs["strides"]
    np.testing.assert_array_equal(y.mask, expected)
    np.testing.assert_array_equal(y.mask, np.arange(y.shape[1])[None, :] < -(-lengths[:, None] // stride))
    assert layers.DepthwiseConv2D(3)(dl.Tensor(np.zeros((1, 4, 4, 1), "float32"))).mask is None


@pytest.mark.parametrize("class_name, kwargs, shape", CASES, ids=IDS)
def test_config_rebuilds_the_same_layer(rng, class_name, kwargs, shape):
    x = rng.normal(size=shape).astype("float32")
    layer = getattr(layers, class_name)(depthwise_regularizer="l2", **kwargs)
    y = layer(x).numpy()
    config = layer.get_config()
    assert type(layer)(**config).get_config() == config
    again = deserialize_layer(serialize_layer(layer))
    again(x)
    again.set_weights(layer.get_weights())
    np.testing.assert_array_equal(again(x).numpy(), y)
    assert again.regularization_loss() is not None


def test_models_with_them_save_and_load(tmp_path, rng):
    sequence = dl.Sequential([layers.Input((12, 3)), layers.SeparableConv1D(6, 3, padding="same", activation="relu"),
                              layers.DepthwiseConv1D(3, depth_multiplier=2), layers.GlobalAveragePooling1D()])
    inputs = layers.Input((8, 8, 2))
    hidden = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(inputs)
    graph = dl.Model(inputs, layers.SeparableConv2D(4, 2, strides=2)(hidden))
    for model, shape in ((sequence, (4, 12, 3)), (graph, (3, 8, 8, 2))):
        x = rng.normal(size=shape).astype("float32")
        path = tmp_path / f"{model.name}.npz"
        dl.saving.save_model(model, path)
        again = dl.load_model(path)
        assert [type(layer).__name__ for layer in again.layers] == [type(layer).__name__ for layer in model.layers]
        np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_wide_separable_layer_is_within_the_size_bound_of_its_file(tmp_path):
    # 7·7·128 + 128·1024 + 1024 weights; a full kernel 7·7·128·1024 would be 45 times more than the
    # file holds, so counting "filters" as a Conv2D's would refuse the file
    model = dl.Sequential([layers.Input((8, 8, 128)), layers.SeparableConv2D(1024, 7, padding="same")])
    dl.saving.save_model(model, tmp_path / "wide.npz")
    assert dl.load_model(tmp_path / "wide.npz").count_params() == 7 * 7 * 128 + 128 * 1024 + 1024


def test_export_to_keras_and_back_keeps_the_outputs(rng):
    keras = pytest.importorskip("keras")
    model = dl.Sequential([layers.Input((10, 3)), layers.SeparableConv1D(4, 3, depth_multiplier=2, padding="same"),
                           layers.DepthwiseConv1D(2, strides=2, activation="tanh")])
    x = rng.normal(size=(2, 10, 3)).astype("float32")
    exported = dl.export.keras(model)
    assert [type(layer).__name__ for layer in exported.layers] == ["SeparableConv1D", "DepthwiseConv1D"]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(exported(x)), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dl.from_keras(exported).predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("make, error, message", [
    (lambda: layers.DepthwiseConv2D(3, data_format="channels_first"), NotImplementedError,
     r"DepthwiseConv2D '\w+': data_format='channels_first' is not supported by minidl; only 'channels_last'"),
    (lambda: layers.SeparableConv1D(2, 3, data_format="channels_first"), NotImplementedError,
     "is not supported by minidl"),
    (lambda: layers.SeparableConv2D(2, 3, pointwise_constraint="non_neg"), NotImplementedError,
     r"pointwise_constraint is not supported by minidl"),
    (lambda: layers.DepthwiseConv1D(3, activity_regularizer="l2"), NotImplementedError,
     r"activity_regularizer is not supported by minidl"),
    (lambda: layers.DepthwiseConv1D(3, padding="causal"), ValueError, r"padding must be 'valid' or 'same', got 'causal'"),
    (lambda: layers.DepthwiseConv2D(3, depth_multiplier=0), ValueError, r"depth_multiplier must be a positive int, got 0"),
    (lambda: layers.SeparableConv2D(0, 3), ValueError, r"filters must be a positive int, got 0"),
    (lambda: layers.SeparableConv2D(2, (3, 0)), ValueError, r"kernel_size must be positive"),
    (lambda: layers.DepthwiseConv2D(3, name="d")(np.zeros((1, 5, 5), "float32")), ValueError,
     r"DepthwiseConv2D 'd' expects a 4-D input \(batch, height, width, channels\), got shape \(1, 5, 5\)"),
    (lambda: layers.SeparableConv1D(2, 5)(np.zeros((1, 3, 2), "float32")), ValueError, r"kernel spans 5 steps"),
])
def test_errors_name_the_argument(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_an_input_with_other_channels_than_built_for_is_refused():
    layer = layers.SeparableConv2D(2, 3, name="s")
    layer(np.zeros((1, 5, 5, 3), "float32"))
    with pytest.raises(ValueError, match=r"SeparableConv2D 's' was built for 3 input channels, got an input of "
                                         r"shape \(1, 5, 5, 2\)"):
        layer(np.zeros((1, 5, 5, 2), "float32"))
