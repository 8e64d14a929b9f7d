"""What a model shows of its structure (minidl/model_structure.py), against Keras where it has it:
layers (a Sequential's without the InputLayer), input_shape, output_shape, get_layer."""
import pytest

import minidl as dl
from minidl import layers


def chain(lib):
    return lib.Sequential([lib.Input((5,)), lib.layers.Dense(4, name="first"), lib.layers.Dense(2, name="second")])


def branches(lib):
    x = lib.Input((None, 3), name="frames")
    pooled = lib.layers.GlobalAveragePooling1D(name="pool")(x)
    return lib.Model(x, [lib.layers.Dense(2, name="left")(pooled), lib.layers.Dense(1, name="right")(pooled)])


def test_layers_and_shapes_are_keras_own():
    keras = pytest.importorskip("keras")
    for build in (chain, branches):
        ours, theirs = build(dl), build(keras)
        assert [layer.name for layer in ours.layers] == [layer.name for layer in theirs.layers]
        assert ours.input_shape == theirs.input_shape
        shapes = theirs.output_shape
        assert ours.output_shape == (list(map(tuple, shapes)) if isinstance(shapes, list) else tuple(shapes))


def test_a_sequential_leaves_its_input_layer_out_of_layers():
    model = chain(dl)
    assert [layer.name for layer in model.layers] == ["first", "second"]
    assert model.input_shape == (None, 5) and model.output_shape == (None, 2)


def test_get_layer_by_name_or_index():
    model = branches(dl)
    assert model.get_layer("pool") is model.layers[1]
    assert model.get_layer(index=-1).name == "right"
    with pytest.raises(ValueError, match=r"no layer named 'nope'; the layers are \['frames', 'pool'"):
        model.get_layer("nope")
    with pytest.raises(ValueError, match="out of range for a model of 4 layers"):
        model.get_layer(index=4)
    with pytest.raises(ValueError, match="exactly one of name= or index="):
        model.get_layer("pool", index=1)


def test_an_unbuilt_model_says_it_has_no_shape_yet():
    with pytest.raises(AttributeError, match="not built"):
        dl.Sequential([layers.Dense(2)]).input_shape
