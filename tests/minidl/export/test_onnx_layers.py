"""minidl/export/onnx_layers.py: every non-recurrent layer gives minidl's outputs in ONNX Runtime."""
from __future__ import annotations

import numpy as np
import pytest

import minidl as dl
from minidl import layers
from minidl.export import ExportError
from minidl.export.onnx_layers import SELU_ALPHA, SELU_SCALE
from tests.minidl.export.onnx_check import assert_same_as_minidl, padded_batch


def model_of(input_shape, *stack):
    return dl.Sequential([layers.Input(input_shape), *stack])


@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid", "tanh", "softmax", "log_softmax",
                                        "elu", "leaky_relu"])
@pytest.mark.parametrize("input_shape", [(7,), (3, 7)])
def test_dense_and_activations(rng, activation, input_shape):
    model = model_of(input_shape, layers.Dense(5, activation=activation), layers.Dense(4, use_bias=False),
                     layers.Activation(activation))
    assert_same_as_minidl(model, rng.normal(size=(3,) + input_shape).astype(np.float32) * 3)


def test_selu_constants_are_keras():
    # keras.activations.selu's constants (Klambauer et al., 2017), to the digits Keras prints
    assert (round(SELU_ALPHA, 10), round(SELU_SCALE, 10)) == (1.6732632424, 1.0507009874)


@pytest.mark.parametrize("kernel_size, strides, dilation, padding", [
    (3, 1, 1, "valid"), (3, 2, 1, "same"), (4, 3, 1, "same"), (3, 1, 2, "same"), (3, 2, 1, "causal"),
    (2, 1, 3, "causal"), (5, 2, 1, "valid")])
def test_conv1d_with_its_mask(rng, kernel_size, strides, dilation, padding):
    model = model_of((12, 3), layers.Masking(0.0),
                     layers.Conv1D(4, kernel_size, strides=strides, dilation_rate=dilation, padding=padding,
                                   activation="relu"))
    got = assert_same_as_minidl(model, padded_batch(rng, [11, 6, 9], 3, steps=12))
    assert got["output_mask"].sum(axis=1).tolist()[0] > 0  # the strided mask came out


@pytest.mark.parametrize("kernel_size, strides, dilation, padding", [
    ((3, 3), (1, 1), (1, 1), "same"), ((3, 2), (2, 1), (1, 1), "same"), ((2, 2), (2, 2), (1, 1), "valid"),
    ((3, 3), (1, 1), (2, 2), "same"), ((3, 3), (1, 1), (1, 2), "valid")])
def test_conv2d(rng, kernel_size, strides, dilation, padding):
    model = model_of((9, 8, 2), layers.Conv2D(3, kernel_size, strides=strides, dilation_rate=dilation,
                                              padding=padding, activation="tanh"))
    assert_same_as_minidl(model, rng.normal(size=(2, 9, 8, 2)).astype(np.float32))


@pytest.mark.parametrize("pool", ["MaxPooling2D", "AveragePooling2D"])
@pytest.mark.parametrize("pool_size, strides, padding", [((2, 2), None, "valid"), ((3, 3), (2, 2), "same"),
                                                         ((2, 3), (1, 2), "same")])
def test_pooling_2d(rng, pool, pool_size, strides, padding):
    model = model_of((7, 9, 2), getattr(layers, pool)(pool_size, strides=strides, padding=padding))
    assert_same_as_minidl(model, rng.normal(size=(2, 7, 9, 2)).astype(np.float32))


@pytest.mark.parametrize("pool", ["MaxPooling1D", "AveragePooling1D"])
@pytest.mark.parametrize("pool_size, strides, padding", [(2, None, "valid"), (3, 2, "same"), (3, 1, "valid")])
def test_pooling_1d_with_its_mask(rng, pool, pool_size, strides, padding):
    model = model_of((9, 2), layers.Masking(0.0), getattr(layers, pool)(pool_size, strides=strides,
                                                                        padding=padding))
    assert_same_as_minidl(model, padded_batch(rng, [9, 4, 7], 2))


@pytest.mark.parametrize("pool", ["GlobalAveragePooling1D", "GlobalMaxPooling1D"])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_global_pooling_1d(rng, pool, keepdims, masked):
    stack = ([layers.Masking(0.0)] if masked else []) + [getattr(layers, pool)(keepdims=keepdims)]
    x = padded_batch(rng, [6, 2, 5], 3) - (2.0 if not masked else 0.0)  # all-negative rows: padding would win a max
    if masked:
        x[x != 0] -= 2.0
    assert_same_as_minidl(model_of((None, 3), *stack), x)


@pytest.mark.parametrize("pool", ["GlobalAveragePooling2D", "GlobalMaxPooling2D"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling_2d(rng, pool, keepdims):
    model = model_of((4, 5, 3), getattr(layers, pool)(keepdims=keepdims))
    assert_same_as_minidl(model, rng.normal(size=(2, 4, 5, 3)).astype(np.float32))


@pytest.mark.parametrize("axis, input_shape", [(-1, (5, 4)), (1, (5, 4)), (-1, (3, 4, 2))])
def test_batch_normalization_inference_uses_the_moving_statistics_and_eps(rng, axis, input_shape):
    layer = layers.BatchNormalization(axis=axis, epsilon=1e-3)
    model = model_of(input_shape, layer)
    size = layer.moving_mean.shape[0]
    layer.set_weights([rng.uniform(0.5, 2, size), rng.normal(size=size), rng.normal(size=size),
                       rng.uniform(1e-3, 1e-2, size)])   # small variances: ε = 1e-3 vs 1e-5 shows
    assert_same_as_minidl(model, rng.normal(size=(3,) + input_shape).astype(np.float32))


@pytest.mark.parametrize("axis, center, scale", [(-1, True, True), ((-2, -1), True, True), (-1, False, False)])
def test_layer_normalization(rng, axis, center, scale):
    layer = layers.LayerNormalization(axis=axis, center=center, scale=scale)
    model = model_of((4, 6), layer)
    if layer.weights:
        layer.set_weights([rng.normal(size=w.shape) for w in layer.weights])
    x = rng.normal(size=(3, 4, 6)).astype(np.float32) * 0.03   # σ² near ε: Keras' 1e-3 must be used
    assert_same_as_minidl(model, x)


def test_layer_normalization_over_a_leading_axis_is_refused():
    model = model_of((4, 6), layers.LayerNormalization(axis=1))
    with pytest.raises(ExportError, match=r"layer_normalization.*trailing axes"):
        dl.export.onnx(model)


def test_dropout_flatten_reshape(rng):
    model = model_of((4, 6), layers.Dropout(0.5), layers.Reshape((3, -1)), layers.Flatten(), layers.Dense(2))
    assert_same_as_minidl(model, rng.normal(size=(2, 4, 6)).astype(np.float32))


def test_masking_zeroes_masked_steps_and_gives_the_mask(rng):
    model = model_of((None, 3), layers.Masking(0.5))
    x = rng.normal(size=(2, 5, 3)).astype(np.float32)
    x[0, 3:] = 0.5
    x[1, 1, :2] = 0.5   # only some features at mask_value: kept
    got = assert_same_as_minidl(model, x)
    assert got["output_mask"].tolist() == [[True] * 3 + [False] * 2, [True] * 5]


@pytest.mark.parametrize("invert", [False, True])
def test_normalization(rng, invert):
    layer = layers.Normalization(axis=-1, invert=invert)
    layer.adapt(rng.normal(loc=3, scale=2, size=(20, 5, 4)))
    assert_same_as_minidl(model_of((None, 4), layer), rng.normal(size=(2, 5, 4)).astype(np.float32))


def test_time_distributed_dense_keeps_the_mask(rng):
    model = model_of((None, 3), layers.Masking(0.0), layers.TimeDistributed(layers.Dense(4, activation="relu")))
    got = assert_same_as_minidl(model, padded_batch(rng, [5, 3], 3))
    assert got["output_mask"].sum(axis=1).tolist() == [5, 3]


def test_time_distributed_folds_other_layers(rng):
    model = model_of((4, 6, 2), layers.TimeDistributed(layers.Conv1D(3, 3, padding="same")))
    assert_same_as_minidl(model, rng.normal(size=(2, 4, 6, 2)).astype(np.float32))


@pytest.mark.parametrize("padding, input_shape, layer", [
    ((2, 1), (None, 3), "ZeroPadding1D"), (((1, 0), (2, 1)), (4, 3, 2), "ZeroPadding2D")])
def test_zero_padding(rng, padding, input_shape, layer):
    model = model_of(input_shape, getattr(layers, layer)(padding))
    shape = (2,) + tuple(5 if n is None else n for n in input_shape)
    assert_same_as_minidl(model, rng.normal(size=shape).astype(np.float32))


def test_a_python_activation_is_refused_by_layer_name():
    model = model_of((3,), layers.Dense(2, activation=lambda x: x, name="custom_dense"))
    with pytest.raises(ExportError, match=r"Dense 'custom_dense'.*Python function"):
        dl.export.onnx(model)


@pytest.mark.parametrize("input_shape, dims", [((5, 3), (2, 1)), ((4, 3, 2), (3, 1, 2)), ((4, 3, 2), (2, 3, 1))])
def test_permute(rng, input_shape, dims):
    model = model_of(input_shape, layers.Permute(dims), layers.Dense(3))
    assert_same_as_minidl(model, rng.normal(size=(2,) + input_shape).astype(np.float32))


def test_permute_drops_the_mask_in_a_functional_model(rng):
    x = layers.Input((6, 4))
    # (batch, steps, features) -> (batch, features, steps): convolve over the features instead
    turned = layers.Permute((2, 1))(layers.Masking(0.0)(x))
    model = dl.Model(x, layers.Permute((2, 1))(layers.Conv1D(3, 2, padding="same")(turned)))
    got = assert_same_as_minidl(model, padded_batch(rng, [6, 2], 4, steps=6))
    assert "output_mask" not in got
