"""Sequential as the chain case of the functional machinery (minidl/sequential.py): pop, add, a
model built from its first batch, nesting."""
import numpy as np
import pytest

import minidl as dl
from minidl import layers


def test_pop_removes_the_last_layer_and_rebuilds_like_keras():
    keras = pytest.importorskip("keras")
    ours = dl.Sequential([dl.Input((4,)), layers.Dense(3, name="a"), layers.Dense(2, name="b")])
    theirs = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="a"), keras.layers.Dense(2, name="b")])
    assert ours.pop().name == theirs.pop().name == "b"
    assert ours.output_shape == theirs.output_shape == (None, 3)
    assert [layer.name for layer in ours.layers] == [layer.name for layer in theirs.layers]
    assert ours.predict(np.ones((2, 4), "float32")).shape == (2, 3)


def test_pop_of_an_empty_model_says_so():
    with pytest.raises(ValueError, match="no layers in the model"):
        dl.Sequential().pop()


def test_a_model_built_from_its_first_batch_takes_other_lengths_later():
    model = dl.Sequential([layers.Conv1D(2, 3, padding="same"), layers.GlobalMaxPooling1D()])
    assert model(np.ones((2, 10, 3), "float32")).shape == (2, 2)
    assert model(np.ones((2, 17, 3), "float32")).shape == (2, 2)   # as before: no shape check of its own


def test_a_declared_input_refuses_another_sample_shape():
    model = dl.Sequential([dl.Input((10, 3)), layers.GlobalMaxPooling1D()])
    with pytest.raises(ValueError, match=r"expected samples of shape \(10, 3\)"):
        model(np.ones((2, 17, 3), "float32"))


def test_a_layer_with_several_outputs_is_refused_with_the_way_out():
    with pytest.raises(ValueError, match="returns 3 outputs.*Model\\(inputs, outputs\\)"):
        dl.Sequential([dl.Input((5, 2)), layers.LSTM(3, return_state=True)])
