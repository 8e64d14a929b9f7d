"""The recurrent layers' Keras options beyond the defaults: dropout and recurrent_dropout against
live Keras with the same masks injected into both, gradient checks with masks, stateful layers
carried across batches and reset, and unroll."""
import numpy as np
import pytest

import minidl as dl
from minidl.layers.recurrent import GRU, LSTM, SimpleRNN
from minidl.layers.wrappers import Bidirectional
from minidl.tensor import Tensor
from tests.minidl.layers.test_recurrent import layer_gradcheck

from tests.reference.make_recurrent_options_fixtures import (BATCH, DROPOUT_CASES, FEATURES, FILE, KINDS,
                                                             MASK_KEYS, STATEFUL_ARGS, STATEFUL_CALLS, STEPS,
                                                             UNITS, draw_masks, dropout_inputs, keras_dropout_run,
                                                             keras_stateful_run, stateful_inputs)

LAYERS = {"SimpleRNN": SimpleRNN, "LSTM": LSTM, "GRU": GRU}


def _stored(prefix: str) -> dict:
    with np.load(FILE, allow_pickle=False) as data:
        return {key.split("/", 1)[1]: data[key] for key in data.files if key.startswith(prefix + "/")}


def _numbered(stored: dict, prefix: str) -> list:
    return [stored[f"{prefix}{k}"] for k in range(sum(key.startswith(prefix) and key[len(prefix):].isdigit()
                                                       for key in stored))]


# --- dropout and recurrent_dropout -------------------------------------------------------------------

def minidl_dropout_run(case, x, mask, masks, weights, monkeypatch) -> list:
    """The minidl layer of a dropout case with ``weights``, in training, given ``masks``."""
    name, args, _ = DROPOUT_CASES[case]
    layer = LAYERS[name](UNITS, **args)
    layer(Tensor(x))
    layer.set_weights(weights)
    monkeypatch.setattr(layer, "_draw_dropout_masks", lambda inputs: dict(masks))
    outputs = layer(Tensor(x), training=True, mask=mask)
    # the masks mattered: in inference (no masks) the first output differs
    inference = layer(Tensor(x), mask=mask)
    inference = inference[0] if isinstance(inference, list) else inference
    outputs = [y.numpy() for y in (outputs if isinstance(outputs, list) else [outputs])]
    assert np.abs(inference.numpy() - outputs[0]).max() > 1e-2
    return outputs


def _assert_all_close(got, expected):
    assert len(got) == len(expected)
    for ours, theirs in zip(got, expected):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", list(DROPOUT_CASES))
def test_dropout_with_injected_masks_equals_keras_fixture(case, monkeypatch):
    stored = _stored(case)
    masks = {key: stored[key] for key in MASK_KEYS if key in stored}
    got = minidl_dropout_run(case, stored["x"], stored.get("mask"), masks, _numbered(stored, "w"), monkeypatch)
    _assert_all_close(got, _numbered(stored, "y"))


@pytest.mark.parametrize("case", list(DROPOUT_CASES))
def test_dropout_with_injected_masks_equals_live_keras(case, monkeypatch):
    pytest.importorskip("keras")
    x, mask, masks = dropout_inputs(case, seed=13)
    weights, expected = keras_dropout_run(case, x, mask, masks, seed=14)
    _assert_all_close(minidl_dropout_run(case, x, mask, masks, weights, monkeypatch), expected)


@pytest.mark.parametrize("kind", list(KINDS))
def test_layer_gradcheck_with_dropout_masks_float64(kind, monkeypatch):
    dl.set_floatx("float64")
    name, extra = KINDS[kind]
    layer = LAYERS[name](UNITS, dropout=0.3, recurrent_dropout=0.4, return_sequences=True, return_state=True,
                         bias_initializer="random_normal", **extra)
    masks = {key: value.astype(np.float64) for key, value in draw_masks(name, layer.get_config()).items()}
    monkeypatch.setattr(layer, "_draw_dropout_masks", lambda inputs: dict(masks))
    x = np.random.default_rng(4).normal(size=(BATCH, STEPS, FEATURES))
    mask = np.arange(STEPS)[None, :] < np.array([STEPS, 3, 1])[:, None]
    layer_gradcheck(layer, x, mask, training=True)


def test_recurrent_dropout_draws_fresh_masks_per_call_fixed_over_the_steps():
    dl.random.seed(0)
    x = Tensor(np.ones((4, 6, 2), np.float32))
    layer = SimpleRNN(8, recurrent_dropout=0.5, activation=None, use_bias=False, return_sequences=True,
                      kernel_initializer="ones", recurrent_initializer=lambda shape: np.eye(shape[0]))
    first, second = layer(x, training=True).numpy(), layer(x, training=True).numpy()
    assert not np.allclose(first, second)  # a new mask each call
    # U = I, linear: h_t = x_t·W + h_{t-1} ⊙ n, so a unit dropped by n restarts at every step
    dropped = np.isclose(first[:, 1], first[:, 0])
    assert dropped.any() and (~dropped).any()
    np.testing.assert_allclose(first[:, 5][dropped], first[:, 0][dropped])  # dropped at every step
    np.testing.assert_array_equal(layer(x).numpy(), layer(x, training=False).numpy())  # inference: none


# --- stateful, unroll ----------------------------------------------------------------------------

def _chunks(seed=6):
    """A sequence of 2·STEPS steps and its two halves, float32."""
    x = np.random.default_rng(seed).normal(size=(BATCH, 2 * STEPS, FEATURES)).astype(np.float32)
    return x, x[:, :STEPS], x[:, STEPS:]


@pytest.mark.parametrize("kind", list(KINDS))
def test_stateful_layer_continues_each_sample_across_calls_until_reset(kind):
    name, extra = KINDS[kind]
    x, first_half, second_half = _chunks()
    whole = LAYERS[name](UNITS, return_sequences=True, **extra)
    expected = whole(Tensor(x)).numpy()
    layer = LAYERS[name](UNITS, return_sequences=True, stateful=True, **extra)
    assert layer.states is None
    layer(Tensor(first_half))
    layer.set_weights(whole.get_weights())
    layer.reset_states()
    first = layer(Tensor(first_half)).numpy()
    second = layer(Tensor(second_half)).numpy()
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.states[0].numpy(), expected[:, -1], rtol=1e-5, atol=1e-6)
    layer.reset_state()  # Keras 3's name
    assert all(not state.numpy().any() for state in layer.states)
    np.testing.assert_allclose(layer(Tensor(first_half)).numpy(), first, atol=1e-7)
    # not stateful, a call starts from zeros: the second half alone gives other outputs
    assert not np.allclose(whole(Tensor(second_half)).numpy(), second, atol=1e-3)


def minidl_stateful_run(name, chunks, mask, weights) -> list:
    """minidl's stateful layer fed STATEFUL_CALLS, as keras_stateful_run: [(outputs, states)]."""
    layer = LAYERS[name](**STATEFUL_ARGS)
    layer(Tensor(chunks[0]))
    layer.set_weights(weights)
    layer.reset_states()
    results = []
    for chunk, masked, reset in STATEFUL_CALLS:
        if reset:
            layer.reset_states()
        outputs = layer(Tensor(chunks[chunk]), mask=mask if masked else None)
        results.append(([y.numpy() for y in outputs], [state.numpy() for state in layer.states]))
    return results


def _assert_same_calls(got, expected):
    assert len(got) == len(expected)
    for (outputs, states), (want_outputs, want_states) in zip(got, expected):
        _assert_all_close(outputs, want_outputs)
        _assert_all_close(states, want_states)


@pytest.mark.parametrize("name", list(LAYERS))
def test_stateful_equals_keras_fixture_across_calls_and_reset(name):
    stored = _stored(f"stateful_{name}")
    expected = [(_numbered(stored, f"y{call}_"), _numbered(stored, f"s{call}_")) for call in range(len(STATEFUL_CALLS))]
    got = minidl_stateful_run(name, _numbered(stored, "c"), stored["mask"], _numbered(stored, "w"))
    _assert_same_calls(got, expected)


@pytest.mark.parametrize("name", list(LAYERS))
def test_stateful_equals_live_keras_across_calls_and_reset(name):
    pytest.importorskip("keras")
    chunks, mask = stateful_inputs(seed=18)
    weights, expected = keras_stateful_run(name, chunks, mask, seed=19)
    _assert_same_calls(minidl_stateful_run(name, chunks, mask, weights), expected)


def test_stateful_gradient_stops_at_the_carried_state():
    """As Keras (states assigned to variables), training on a chunk does not backpropagate into
    the chunk before it: the gradient is that of a fresh layer started from the carried values."""
    dl.set_floatx("float64")
    x, first_half, second_half = _chunks()
    layer = LSTM(UNITS, stateful=True)
    layer(Tensor(first_half.astype(np.float64)))
    carried = [state.numpy().copy() for state in layer.states]
    assert not any(state.requires_grad for state in layer.states)
    layer(Tensor(second_half.astype(np.float64))).sum().backward()
    fresh = LSTM(UNITS)
    fresh(Tensor(second_half.astype(np.float64)))
    fresh.set_weights(layer.get_weights())
    fresh(Tensor(second_half.astype(np.float64)), initial_state=[Tensor(s) for s in carried]).sum().backward()
    for ours, theirs in zip(layer.weights, fresh.weights):
        np.testing.assert_allclose(ours.grad, theirs.grad, atol=1e-12)


def test_stateful_layer_keeps_its_batch_size():
    layer = GRU(UNITS, stateful=True, name="streaming")
    layer(Tensor(np.zeros((3, 2, 4), np.float32)))
    with pytest.raises(ValueError, match=r"GRU 'streaming' is stateful: it carries states for a batch of 3, "
                                         r"got an input of shape \(2, 2, 4\)"):
        layer(Tensor(np.zeros((2, 2, 4), np.float32)))
    # an initial state given explicitly is used instead, and its final state is carried on
    out = layer(Tensor(np.zeros((3, 2, 4), np.float32)), initial_state=[np.ones((3, UNITS), np.float32)])
    np.testing.assert_array_equal(layer.states[0].numpy(), out.numpy())


def test_bidirectional_stateful_carries_both_directions_and_resets_both():
    x, first_half, second_half = _chunks()
    layer = Bidirectional(LSTM(UNITS, return_sequences=True, stateful=True))
    assert layer.stateful and layer.backward_layer.stateful and layer.states is None
    first = layer(Tensor(first_half)).numpy()
    assert len(layer.states) == 4
    assert not np.allclose(layer(Tensor(first_half)).numpy(), first, atol=1e-4)  # started from the carried states
    layer.reset_states()
    np.testing.assert_allclose(layer(Tensor(first_half)).numpy(), first, atol=1e-7)
    with pytest.raises(AttributeError, match="reset_states\\(\\) needs a stateful layer"):
        Bidirectional(LSTM(UNITS)).reset_states()


@pytest.mark.parametrize("name", list(LAYERS))
def test_unroll_is_accepted_and_changes_nothing(name):
    x = Tensor(_chunks()[0])
    rolled, unrolled = LAYERS[name](UNITS, return_sequences=True), LAYERS[name](UNITS, return_sequences=True,
                                                                                  unroll=True)
    rolled(x)
    unrolled(x)
    unrolled.set_weights(rolled.get_weights())
    np.testing.assert_array_equal(unrolled(x).numpy(), rolled(x).numpy())
    assert unrolled.get_config()["unroll"] is True


def test_a_stateful_layer_keeps_no_state_from_the_trial_that_builds_it_in_a_graph():
    # called on layers.Input, a layer runs once on a zero batch of 1 to learn its shape; had it
    # kept that batch's states, the first real batch of 2 would be refused as a new batch size
    layer = GRU(3, stateful=True)
    symbolic = layer(dl.Input((4, 2)))
    assert symbolic.shape == (None, 3) and layer.states is None
    chunk = np.random.default_rng(0).normal(size=(2, 4, 2)).astype("float32")
    first = layer(chunk).numpy()
    assert layer.states[0].shape == (2, 3)
    layer(dl.Input((4, 2)))  # a second graph built on it later neither uses nor replaces them
    assert np.abs(layer(chunk).numpy() - first).max() > 1e-4   # carried from the first call
