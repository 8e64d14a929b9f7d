"""Graph's absorbed pairs: a MaxPooling2D after a Conv2D runs as one op (Conv2DMaxPoolFunction)
exactly where that changes nothing a user can see, and the model computes what the layers one by
one compute."""
import numpy as np
import pytest

import minidl as dl
from minidl import layers
from minidl.tensor import Tensor


def ops_of(model, x, training=True):
    with dl.trace() as trace:
        model(Tensor(x), training=training)
    return [record["op"] for record in trace.records]


def cnn(conv_options=None, pool_options=None, dtype="float64"):
    dl.random.seed(3)
    model = dl.Sequential([
                          layers.Conv2D(4, 3, padding="same", dtype=dtype, **(conv_options or {"activation": "relu"})),
                          layers.MaxPooling2D(2, dtype=dtype, **(pool_options or {})),
                          layers.Conv2D(3, 2, activation="relu", dtype=dtype), layers.MaxPooling2D(2, dtype=dtype),
                          layers.Flatten(dtype=dtype), layers.Dense(5, dtype=dtype)])
    model.build((None, 9, 11, 2))   # float64 throughout (an Input would be float32)
    return model


def test_a_sequential_cnn_runs_each_conv_and_pool_as_one_op_and_computes_the_layers_values(rng):
    model = cnn()
    x = rng.normal(size=(3, 9, 11, 2)).astype(np.float32).astype(np.float64)  # the model casts to float32
    ops = ops_of(model, x)
    assert ops.count("Conv2DMaxPoolFunction") == 2
    assert "Conv2DFunction" not in ops and "MaxPool2DFunction" not in ops
    # the model's values and gradients are those of the layers called one by one
    y = model(Tensor(x), training=True)
    (y * y).sum().backward()
    fused_grads = [w.grad.copy() for w in model.trainable_weights]
    for w in model.trainable_weights:
        w.grad = None
    h = Tensor(x)
    for layer in model.layers:
        h = layer(h, training=True)
    (h * h).sum().backward()
    np.testing.assert_allclose(y.data, h.data, rtol=1e-12, atol=1e-12)
    for got, expected in zip(fused_grads, [w.grad for w in model.trainable_weights]):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("conv_options, pool_options", [
    ({"activation": "tanh"}, {}),                       # tanh's gradient needs the full output
    ({"activation": "relu"}, {"strides": 1}),           # overlapping windows
    ({"activation": "relu"}, {"padding": "same"}),
], ids=["tanh", "overlapping-pool", "same-pool"])
def test_pairs_the_fusion_does_not_cover_run_as_two_ops(rng, conv_options, pool_options):
    ops = ops_of(cnn(conv_options, pool_options), rng.normal(size=(2, 9, 11, 2)))
    assert ops.count("Conv2DMaxPoolFunction") == 1   # the second pair still fuses
    assert "MaxPool2DFunction" in ops


def test_a_convolution_whose_output_is_used_twice_or_returned_is_not_fused(rng):
    inputs = layers.Input((8, 8, 1))
    conv = layers.Conv2D(2, 3, activation="relu")(inputs)
    pooled = layers.MaxPooling2D(2)(conv)
    both = dl.Model(inputs, [conv, pooled])
    assert "Conv2DMaxPoolFunction" not in ops_of(both, rng.normal(size=(1, 8, 8, 1)).astype("float32"))
    summed = layers.Add()([layers.Flatten()(layers.MaxPooling2D(2)(conv)), layers.Flatten()(
        layers.MaxPooling2D(2)(conv))])
    twice = dl.Model(inputs, summed)
    assert "Conv2DMaxPoolFunction" not in ops_of(twice, rng.normal(size=(1, 8, 8, 1)).astype("float32"))
    alone = dl.Model(inputs, layers.MaxPooling2D(2)(layers.Conv2D(2, 3)(inputs)))
    assert ops_of(alone, rng.normal(size=(1, 8, 8, 1)).astype("float32")) == ["Conv2DMaxPoolFunction"]


def test_an_input_too_small_for_the_pool_gets_the_two_ops_error(rng):
    dl.random.seed(0)
    model = dl.Sequential([layers.Conv2D(2, 3), layers.MaxPooling2D(4)])
    model(Tensor(rng.normal(size=(1, 8, 8, 1)).astype("float32")))   # built: 6x6 -> 1x1
    with pytest.raises(ValueError, match="max_pool2d"):
        model(Tensor(rng.normal(size=(1, 5, 5, 1)).astype("float32")))


def test_a_subclassed_or_patched_layer_is_not_fused(rng):
    class ScaledPool(layers.MaxPooling2D):
        def call(self, inputs):
            return super().call(inputs) * 10.0

    x = rng.normal(size=(2, 8, 8, 1)).astype("float32")
    dl.random.seed(0)
    conv = layers.Conv2D(2, 3)
    model = dl.Sequential([layers.Input((8, 8, 1)), conv, ScaledPool(2)])
    assert "Conv2DMaxPoolFunction" not in ops_of(model, x)
    np.testing.assert_allclose(model(Tensor(x)).numpy(), 10 * layers.MaxPooling2D(2)(conv(Tensor(x))).numpy(),
                               rtol=1e-6)
    calls = []
    plain = dl.Sequential([layers.Input((8, 8, 1)), layers.Conv2D(2, 3), layers.MaxPooling2D(2)])
    original = plain.layers[0].call
    plain.layers[0].call = lambda inputs: calls.append(1) or original(inputs)   # a hand-made hook
    assert "Conv2DMaxPoolFunction" not in ops_of(plain, x) and calls == [1]
