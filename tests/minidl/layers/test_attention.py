"""MultiHeadAttention (minidl/layers/attention.py) against Keras live from the same weights:
self- and cross-attention, separate keys, value_dim and output_shape, no biases, attention_mask,
causal mask, the inputs' own masks, return_attention_scores; plus a float64 gradient check of
every weight, its config, and its errors."""
import numpy as np
import pytest

import minidl as dl
from minidl import layers
from minidl.layers.serialization import deserialize_layer, serialize_layer

CASES = {  # name: (constructor kwargs, query shape, value shape, key shape or None, call kwargs)
    "self": ({"num_heads": 2, "key_dim": 3}, (2, 4, 6), None, None, {}),
    "cross": ({"num_heads": 3, "key_dim": 2}, (2, 3, 5), (2, 6, 4), None, {}),
    "separate-key": ({"num_heads": 2, "key_dim": 4, "value_dim": 3, "output_shape": 7},
                     (2, 3, 5), (2, 4, 2), (2, 4, 6), {}),
    "no-bias": ({"num_heads": 1, "key_dim": 5, "use_bias": False}, (3, 4, 4), None, None, {}),
    "causal": ({"num_heads": 2, "key_dim": 3}, (2, 5, 6), None, None, {"use_causal_mask": True}),
    "attention-mask": ({"num_heads": 2, "key_dim": 3}, (2, 4, 6), (2, 5, 6), None, {"attention_mask": "random"}),
    "causal-and-mask": ({"num_heads": 2, "key_dim": 3}, (2, 5, 6), None, None,
                        {"use_causal_mask": True, "attention_mask": "random"}),
}


def _arrays(rng, case):
    kwargs, q_shape, v_shape, k_shape, call = CASES[case]
    query = rng.normal(size=q_shape).astype("float32")
    value = query if v_shape is None else rng.normal(size=v_shape).astype("float32")
    key = None if k_shape is None else rng.normal(size=k_shape).astype("float32")
    call = dict(call)
    if call.get("attention_mask") == "random":
        call["attention_mask"] = rng.random((q_shape[0], q_shape[1], value.shape[1])) > 0.3
    return kwargs, query, value, key, call


def _keras_and_minidl(keras, rng, kwargs, query, value, key):
    theirs = keras.layers.MultiHeadAttention(**kwargs)
    args = (query, value) if key is None else (query, value, key)
    theirs(*args)  # builds
    weights = [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours = layers.MultiHeadAttention(**kwargs)
    ours(*args)
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in weights]  # Keras' layout and order
    ours.set_weights(weights)
    return theirs, ours, args


@pytest.mark.parametrize("case", list(CASES))
def test_multi_head_attention_matches_keras_live(rng, case):
    keras = pytest.importorskip("keras")
    kwargs, query, value, key, call = _arrays(rng, case)
    theirs, ours, args = _keras_and_minidl(keras, rng, kwargs, query, value, key)
    expected, expected_scores = theirs(*args, return_attention_scores=True, **call)
    got, scores = ours(*args, return_attention_scores=True, **call)
    np.testing.assert_allclose(got.numpy(), keras.ops.convert_to_numpy(expected), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(scores.numpy(), keras.ops.convert_to_numpy(expected_scores), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ours(*args, **call).numpy(), got.numpy())


def test_the_masks_inputs_carry_match_keras_live(rng):
    keras = pytest.importorskip("keras")
    from keras.src import backend as keras_backend
    kwargs, query, value, _, _ = _arrays(rng, "cross")
    theirs, ours, _ = _keras_and_minidl(keras, rng, kwargs, query, value, None)
    query_mask = np.array([[1, 1, 0], [1, 1, 1]], bool)
    value_mask = np.array([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0]], bool)
    keras_query, keras_value = keras.ops.convert_to_tensor(query), keras.ops.convert_to_tensor(value)
    keras_backend.set_keras_mask(keras_query, keras.ops.convert_to_tensor(query_mask))
    keras_backend.set_keras_mask(keras_value, keras.ops.convert_to_tensor(value_mask))
    # return_attention_scores keeps Keras on its explicit-softmax path, where a query with every key
    # masked gets zero weights; without it Keras 3.15 takes a fused kernel that attends uniformly
    # there instead. minidl always gives zero weights.
    expected = keras.ops.convert_to_numpy(theirs(keras_query, keras_value, return_attention_scores=True)[0])
    ours_query, ours_value = dl.Tensor(query), dl.Tensor(value)
    ours_query.mask, ours_value.mask = query_mask, value_mask
    got = ours(ours_query, ours_value)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(got.mask, query_mask)  # the output carries the query's mask
    explicit = ours(query, value, query_mask=query_mask, value_mask=value_mask)
    np.testing.assert_allclose(explicit.numpy(), got.numpy())


def test_dropout_in_training_changes_the_output_but_not_at_inference(rng):
    layer = layers.MultiHeadAttention(num_heads=2, key_dim=3, dropout=0.5)
    x = rng.normal(size=(2, 4, 6)).astype("float32")
    inference = layer(x, x).numpy()
    np.testing.assert_array_equal(layer(x, x, training=False).numpy(), inference)
    assert not np.allclose(layer(x, x, training=True).numpy(), inference)


def test_gradient_of_every_weight(rng):
    layer = layers.MultiHeadAttention(num_heads=2, key_dim=2, value_dim=3, dtype="float64")
    query, value = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 4, 5))
    mask = rng.random((2, 3, 4)) > 0.3
    layer(query, value)
    names = [w.name.split("/", 1)[1] for w in layer.weights]
    assert names == ["query/kernel", "query/bias", "key/kernel", "key/bias", "value/kernel", "value/bias",
                     "attention_output/kernel", "attention_output/bias"]
    attributes = ["query_kernel", "query_bias", "key_kernel", "key_bias", "value_kernel", "value_bias",
                  "output_kernel", "output_bias"]
    for weight in layer.weights:  # nonzero biases, so their gradients are checked on a general point
        weight.data = rng.normal(scale=0.5, size=weight.shape)

    def attend(query, value, *weights):
        for attribute, weight in zip(attributes, weights):
            setattr(layer, attribute, weight)
        return layer(query, value, attention_mask=mask, use_causal_mask=True)
    dl.gradcheck(attend, (query, value, *[w.data.copy() for w in layer.weights]))


def test_config_rebuilds_the_same_layer(rng):
    layer = layers.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=4, output_shape=5, use_bias=False)
    query, value = rng.normal(size=(2, 3, 4)).astype("float32"), rng.normal(size=(2, 2, 6)).astype("float32")
    y = layer(query, value).numpy()
    twin = deserialize_layer(serialize_layer(layer))
    twin(query, value)
    twin.set_weights(layer.get_weights())
    np.testing.assert_array_equal(twin(query, value).numpy(), y)
    assert layer.compute_output_shape((None, 3, 4), (None, 2, 6)) == (None, 3, 5)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"num_heads": 0, "key_dim": 2}, ValueError, "num_heads must be a positive int"),
    ({"num_heads": 2, "key_dim": 2, "attention_axes": (1,)}, NotImplementedError, "attention_axes is not supported"),
    ({"num_heads": 2, "key_dim": 2, "use_gate": True}, NotImplementedError, "use_gate is not supported"),
    ({"num_heads": 2, "key_dim": 2, "flash_attention": True}, NotImplementedError, "flash_attention is not supported"),
])
def test_arguments_minidl_refuses_say_why(kwargs, error, message):
    with pytest.raises(error, match=message):
        layers.MultiHeadAttention(**kwargs)


def test_call_errors_name_the_argument(rng):
    layer = layers.MultiHeadAttention(num_heads=2, key_dim=2)
    x = rng.normal(size=(2, 3, 4)).astype("float32")
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(2, 3, 3\), got \(2, 4\)"):
        layer(x, x, attention_mask=np.ones((2, 4), bool))
    with pytest.raises(NotImplementedError, match=r"only \(batch, time, features\) inputs"):
        layers.MultiHeadAttention(num_heads=2, key_dim=2)(x[0], x[0])
    layer(x, x)
    with pytest.raises(ValueError, match=r"built for queries of shape \(batch, time, 4\), got \(2, 3, 5\)"):
        layer(np.zeros((2, 3, 5), "float32"), x)
