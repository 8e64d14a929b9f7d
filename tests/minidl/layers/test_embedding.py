"""Embedding (minidl/layers/embedding.py): values and mask against Keras live from the same
weights, the mask reaching an LSTM as in Keras, the gradient of the rows, and its errors."""
import numpy as np
import pytest

import minidl as dl
from minidl import layers
from minidl.layers.serialization import deserialize_layer, serialize_layer

IDS = np.array([[3, 1, 4, 0, 0], [2, 7, 1, 8, 0]])


def test_embedding_and_its_mask_match_keras_live(rng):
    keras = pytest.importorskip("keras")
    theirs = keras.layers.Embedding(9, 4, mask_zero=True)
    theirs.build(IDS.shape)
    table = rng.normal(size=(9, 4)).astype("float32")
    theirs.set_weights([table])
    ours = layers.Embedding(9, 4, mask_zero=True)
    ours(IDS)
    ours.set_weights([table])
    got = ours(IDS)
    np.testing.assert_array_equal(got.numpy(), keras.ops.convert_to_numpy(theirs(IDS)))
    np.testing.assert_array_equal(got.mask, keras.ops.convert_to_numpy(theirs.compute_mask(IDS)))
    assert layers.Embedding(9, 4)(IDS).mask is None


def test_mask_zero_reaches_an_lstm_as_in_keras_live(rng):
    keras = pytest.importorskip("keras")
    theirs = keras.Sequential([keras.layers.Embedding(9, 4, mask_zero=True), keras.layers.LSTM(3)])
    theirs(IDS)
    weights = [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours = dl.Sequential([layers.Embedding(9, 4, mask_zero=True), layers.LSTM(3)])
    ours(IDS)
    ours.set_weights(weights)
    expected = keras.ops.convert_to_numpy(theirs(IDS))
    np.testing.assert_allclose(ours(IDS).numpy(), expected, rtol=1e-5, atol=1e-6)
    unmasked = dl.Sequential([layers.Embedding(9, 4), layers.LSTM(3)])
    unmasked(IDS)
    unmasked.set_weights(weights)
    assert not np.allclose(unmasked(IDS).numpy(), expected, atol=1e-3)  # the mask changed the result


def test_gradient_adds_up_in_repeated_rows(rng):
    layer = layers.Embedding(9, 3, dtype="float64")
    layer(IDS)

    def lookup(table):
        layer.embeddings = table
        return layer(IDS)
    dl.gradcheck(lookup, (rng.normal(size=(9, 3)),))
    table = dl.Tensor(np.zeros((9, 3)), requires_grad=True)
    lookup(table).backward(np.ones((2, 5, 3)))
    np.testing.assert_array_equal(table.grad[:, 0], np.bincount(IDS.ravel(), minlength=9))


def test_config_and_the_initial_weights_argument(rng):
    table = rng.normal(size=(9, 2)).astype("float32")
    layer = layers.Embedding(9, 2, mask_zero=True, weights=[table])
    np.testing.assert_array_equal(layer(IDS).numpy(), table[IDS])
    twin = deserialize_layer(serialize_layer(layer))
    assert twin.mask_zero and twin.input_dim == 9


@pytest.mark.parametrize("ids, error, message", [
    (np.array([[1, 9]]), ValueError, r"id 9 is outside \[0, 9\) for input_dim=9"),
    (np.array([[-1, 0]]), ValueError, r"id -1 is outside"),
    (np.array([[0.5, 1.0]]), ValueError, "ids must be whole numbers"),
])
def test_bad_ids_say_what_is_wrong(ids, error, message):
    with pytest.raises(error, match=message):
        layers.Embedding(9, 2)(ids)


def test_keras_arguments_minidl_lacks_say_so():
    with pytest.raises(NotImplementedError, match="lora_rank is not supported"):
        layers.Embedding(9, 2, lora_rank=4)
