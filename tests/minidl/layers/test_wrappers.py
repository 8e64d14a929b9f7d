"""Bidirectional and TimeDistributed: gradient checks for every merge mode, Keras' weight order
and naming, configuration round trips. (Keras value checks live in test_recurrent.py, which runs
the Bidirectional fixtures and live Keras for every merge mode.)"""
import numpy as np
import pytest

import minidl as dl
from minidl.layers.core import Dense
from minidl.layers.recurrent import GRU, LSTM, SimpleRNN
from minidl.layers.wrappers import Bidirectional, TimeDistributed
from minidl.tensor import Tensor
from tests.minidl.layers.test_recurrent import layer_gradcheck


def ragged_mask(batch, steps):
    return np.arange(steps)[None, :] < np.array([steps, 2, 1][:batch])[:, None]


@pytest.mark.parametrize("return_sequences", [False, True], ids=["last-step", "sequences"])
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None],
                         ids=lambda mode: f"Bidirectional-GRU-{mode or 'list'}")
def test_bidirectional_gradcheck_every_merge_mode(merge_mode, return_sequences):
    dl.set_floatx("float64")
    x = np.random.default_rng(0).normal(size=(3, 4, 2))
    layer = Bidirectional(GRU(2, return_sequences=return_sequences, bias_initializer="random_normal"),
                          merge_mode=merge_mode)
    layer_gradcheck(layer, x, ragged_mask(3, 4))


def test_bidirectional_gradcheck_return_state_and_initial_state():
    dl.set_floatx("float64")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 2))
    states = [rng.normal(size=(2, 2)) for _ in range(4)]
    layer = Bidirectional(LSTM(2, return_sequences=True, return_state=True))
    layer_gradcheck(layer, x, ragged_mask(2, 3), states)


def test_bidirectional_names_weights_and_zero_output_like_keras():
    layer = Bidirectional(LSTM(3, return_sequences=True, name="encoder"))
    out = layer(Tensor(np.ones((2, 5, 4), np.float32)))
    assert out.shape == (2, 5, 6)
    assert [w.name for w in layer.weights] == [
        f"{d}_encoder/{n}" for d in ("forward", "backward") for n in ("kernel", "recurrent_kernel", "bias")]
    assert not layer.forward_layer.go_backwards and layer.backward_layer.go_backwards
    assert layer.forward_layer.zero_output_for_mask and layer.backward_layer.zero_output_for_mask
    last = Bidirectional(SimpleRNN(3))
    assert not last.forward_layer.zero_output_for_mask


def test_bidirectional_passes_the_mask_on_with_return_sequences():
    mask = ragged_mask(3, 4)
    x = Tensor(np.ones((3, 4, 2), np.float32))
    assert Bidirectional(GRU(2, return_sequences=True))(x, mask=mask).mask is mask
    assert Bidirectional(GRU(2))(x, mask=mask).mask is None
    y, y_rev = Bidirectional(GRU(2, return_sequences=True), merge_mode=None)(x, mask=mask)
    assert y.mask is mask and y_rev.mask is mask


def test_bidirectional_config_round_trip():
    layer = Bidirectional(LSTM(3, return_sequences=True, name="lstm_x"), merge_mode="sum", name="bi")
    config = layer.get_config()
    assert config["merge_mode"] == "sum" and config["layer"]["class_name"] == "LSTM"
    rebuilt = Bidirectional(**config)
    assert rebuilt.get_config() == config
    assert rebuilt.forward_layer.name == "forward_lstm_x" and rebuilt.backward_layer.name == "backward_lstm_x"


def test_bidirectional_bad_arguments():
    with pytest.raises(ValueError, match=r"merge_mode must be one of .* got 'max'"):
        Bidirectional(LSTM(2), merge_mode="max")
    with pytest.raises(ValueError, match="expected a recurrent layer .* got Dense"):
        Bidirectional(Dense(2))
    with pytest.raises(ValueError, match="must differ in go_backwards"):
        Bidirectional(LSTM(2), backward_layer=LSTM(2))


def test_time_distributed_dense_equals_dense_on_every_step():
    x = Tensor(np.random.default_rng(2).normal(size=(2, 5, 3)).astype(np.float32))
    layer = TimeDistributed(Dense(4, activation="relu"))
    out = layer(x)
    assert out.shape == (2, 5, 4)
    assert layer.weights == layer.layer.weights and len(layer.weights) == 2
    for t in range(5):
        np.testing.assert_allclose(out.data[:, t], layer.layer(x[:, t]).data, rtol=1e-6)


def test_time_distributed_gradcheck_mask_and_config():
    dl.set_floatx("float64")
    layer = TimeDistributed(Dense(2))
    layer_gradcheck(layer, np.random.default_rng(3).normal(size=(2, 3, 4)))
    mask = ragged_mask(2, 3)
    assert layer(Tensor(np.ones((2, 3, 4))), mask=mask).mask is mask
    assert TimeDistributed(**layer.get_config()).get_config() == layer.get_config()
    with pytest.raises(ValueError, match=r"TimeDistributed '.*' expects an input of shape \(batch, steps, \.\.\.\)"):
        TimeDistributed(Dense(2))(Tensor(np.ones((2, 4))))


def test_time_distributed_matches_live_keras():
    keras = pytest.importorskip("keras")
    x = np.random.default_rng(4).normal(size=(2, 5, 3)).astype(np.float32)
    reference = keras.layers.TimeDistributed(keras.layers.Dense(4))
    expected = keras.ops.convert_to_numpy(reference(x))
    layer = TimeDistributed(Dense(4))
    layer(Tensor(x))
    layer.set_weights(reference.get_weights())
    np.testing.assert_allclose(layer(Tensor(x)).data, expected, rtol=1e-5, atol=1e-5)


def test_masked_bidirectional_model_trains_saves_and_loads(tmp_path):
    models = pytest.importorskip("minidl.models")
    saving = pytest.importorskip("minidl.saving")
    from minidl.layers.core import Input
    from minidl.layers.masking import Masking
    rng = np.random.default_rng(5)
    x = rng.normal(size=(16, 7, 3)).astype(np.float32)
    x[:8, 5:] = 0.0  # padding that Masking turns into a mask
    y = rng.integers(0, 3, size=16)
    model = models.Sequential([Input((7, 3)), Masking(), Bidirectional(LSTM(4, return_sequences=True)),
                               GRU(5), Dense(3)])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert model.count_params() == 2 * (3 * 16 + 4 * 16 + 16) + (8 * 15 + 5 * 15 + 2 * 15) + (5 * 3 + 3)
    path = tmp_path / "model.npz"
    model.save(path)
    np.testing.assert_array_equal(saving.load_model(path).predict(x, verbose=0), model.predict(x, verbose=0))


def test_time_distributed_hands_each_step_its_mask():
    """An LSTM over the frames of each step: every (sample, step) has its own ragged frame mask,
    and the result equals running the LSTM on each step alone with that step's mask."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 5, 4)).astype("float32")            # (batch, steps, frames, features)
    mask = np.arange(5)[None, None, :] < rng.integers(1, 6, size=(2, 3))[..., None]
    layer = TimeDistributed(LSTM(6))
    y = layer(Tensor(x), mask=mask).numpy()
    inner = layer.layer
    for t in range(3):
        alone = inner(Tensor(x[:, t]), mask=mask[:, t]).numpy()
        np.testing.assert_allclose(y[:, t], alone, rtol=1e-6, atol=1e-6)
    unmasked = layer(Tensor(x)).numpy()
    assert not np.allclose(unmasked, y)  # the mask changed the result
    with pytest.raises(ValueError, match=r"mask whose first two axes are \(batch, steps\) = \(2, 3\).*got a mask of shape \(2, 4\)"):
        layer(Tensor(x), mask=np.ones((2, 4), bool))


def test_time_distributed_masked_lstm_matches_keras_live():
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 5, 4)).astype("float32")
    mask = np.arange(5)[None, None, :] < rng.integers(1, 6, size=(2, 3))[..., None]
    theirs = keras.layers.TimeDistributed(keras.layers.LSTM(6, return_sequences=True))
    theirs.build(x.shape)
    ours = TimeDistributed(LSTM(6, return_sequences=True))
    ours(Tensor(x))
    ours.set_weights(theirs.get_weights())
    expected = keras.ops.convert_to_numpy(theirs(x, mask=mask))
    np.testing.assert_allclose(ours(Tensor(x), mask=mask).numpy(), expected, atol=1e-5, rtol=1e-5)
