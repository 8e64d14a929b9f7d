"""Merge layers (minidl/layers/merge.py): float64 gradient checks, values against live Keras,
masks by Keras' rules, and errors that name the layer and the shapes."""
import numpy as np
import pytest

import minidl as dl
from minidl import gradcheck, layers

rng = np.random.default_rng(0)
SHAPES = [(2, 3), (1, 4, 3)]
ELEMENTWISE = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]
# (class name, constructor arguments, input shapes): each compared with Keras and gradient-checked
CASES = [(name, {}, [shape, shape]) for name in ELEMENTWISE for shape in SHAPES] + [
    ("Add", {}, [(2, 3), (2, 3), (2, 3)]),
    ("Maximum", {}, [(2, 4), (2, 4), (2, 4)]),
    ("Concatenate", {}, [(2, 3), (2, 5)]),
    ("Concatenate", {"axis": 1}, [(2, 3, 4), (2, 2, 4)]),
    ("Dot", {"axes": 1}, [(3, 4), (3, 4)]),
    ("Dot", {"axes": (2, 2)}, [(2, 3, 4), (2, 5, 4)]),
    ("Dot", {"axes": (1, 1)}, [(2, 3, 4), (2, 3, 5)]),
    ("Dot", {"axes": 1}, [(2, 3), (2, 3, 4)]),
    ("Dot", {"axes": -1, "normalize": True}, [(3, 4), (3, 4)]),
    ("Dot", {"axes": (2, 1), "normalize": True}, [(2, 3, 4), (2, 4, 5)]),
]


def inputs_for(shapes, dtype="float64"):
    return [rng.normal(size=shape).astype(dtype) for shape in shapes]


@pytest.mark.parametrize("name, arguments, shapes", CASES)
def test_merge_layer_gradient(name, arguments, shapes):
    layer = getattr(layers, name)(dtype="float64", **arguments)
    gradcheck(lambda *xs: layer(list(xs)), inputs_for(shapes))


def test_merge_layers_match_keras_live():
    keras = pytest.importorskip("keras")
    for name, arguments, shapes in CASES:
        xs = inputs_for(shapes, "float32")
        ours = getattr(layers, name)(**arguments)(xs).numpy()
        theirs = keras.ops.convert_to_numpy(getattr(keras.layers, name)(**arguments)(xs))
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6, err_msg=f"{name}({arguments}) on {shapes}")


def test_branches_merged_in_a_graph_match_keras_from_the_same_weights():
    keras = pytest.importorskip("keras")

    def build(lib):
        x = lib.Input((6,), name="features")  # named: auto names count every Input made before
        left = lib.layers.Dense(4, activation="tanh", name="left")(x)
        right = lib.layers.Dense(4, activation="relu", name="right")(x)
        joined = lib.layers.Concatenate(name="joined")([lib.layers.Add(name="sum")([left, right]),
                                                        lib.layers.Multiply(name="product")([left, right]),
                                                        lib.layers.Dot(axes=1, normalize=True, name="cosine")([left, right])])
        return lib.Model(x, lib.layers.Dense(2, name="out")(joined))

    ours, theirs = build(dl), build(keras)
    assert [layer.name for layer in ours.layers] == [layer.name for layer in theirs.layers]
    ours.set_weights(theirs.get_weights())
    x = inputs_for([(5, 6)], "float32")[0]
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert ours.get_layer("joined").count_params() == 0 and ours.output_shape == (None, 2)


def test_elementwise_masks_are_ored_and_dropped_when_one_is_missing():
    a, b = dl.Tensor(np.ones((2, 3, 4), "float32")), dl.Tensor(np.ones((2, 3, 4), "float32"))
    a.mask = np.array([[True, False, False], [True, True, False]])
    b.mask = np.array([[False, True, False], [True, False, False]])
    np.testing.assert_array_equal(layers.Add()([a, b]).mask, a.mask | b.mask)
    assert layers.Add()([a, dl.Tensor(np.ones((2, 3, 4), "float32"))]).mask is None


def test_concatenate_joins_masks_along_time_and_keeps_unmasked_features():
    a, b = dl.Tensor(np.ones((2, 3, 4), "float32")), dl.Tensor(np.ones((2, 2, 4), "float32"))
    a.mask = np.array([[True, False, False], [True, True, False]])
    joined = layers.Concatenate(axis=1)([a, b])
    np.testing.assert_array_equal(joined.mask, np.concatenate([a.mask, np.ones((2, 2), bool)], axis=1))
    c = dl.Tensor(np.ones((2, 3, 5), "float32"))       # unmasked: every step counts
    assert layers.Concatenate()([a, c]).mask.all()


@pytest.mark.parametrize("layer, xs, message", [
    (layers.Add(), [np.ones((2, 3))], "list of at least 2 inputs, got a list of 1"),
    (layers.Subtract(), [np.ones((2, 3))] * 3, "exactly 2 inputs"),
    (layers.Add(), [np.ones((2, 3)), np.ones((2, 4))], r"incompatible shapes \[\(2, 3\), \(2, 4\)\]"),
    (layers.Concatenate(), [np.ones((2, 3, 1)), np.ones((2, 4, 1))], "agree but on a non-batch axis -1"),
    (layers.Dot(axes=1), [np.ones((2, 3)), np.ones((2, 4))], "axes must be non-batch axes of one size"),
    (layers.Dot(axes=1), [np.ones((2, 3, 1, 1)), np.ones((2, 3))], "rank 2 or 3 are supported"),
])
def test_bad_inputs_name_the_layer_and_the_shapes(layer, xs, message):
    with pytest.raises(ValueError, match=message):
        layer([x.astype("float32") for x in xs])


def test_merge_layers_round_trip_through_their_config():
    for layer in (layers.Concatenate(axis=1), layers.Dot(axes=(1, 2), normalize=True), layers.Average()):
        again = type(layer).from_config(layer.get_config())
        assert again.get_config() == layer.get_config()
