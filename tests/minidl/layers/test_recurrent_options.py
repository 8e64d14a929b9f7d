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

LAYERS = {"SimpleRNN": SimpleRNN, "LSTM": LSTM, "GRU": GRU}
GATES = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}
BATCH, STEPS, FEATURES, UNITS = 3, 5, 4, 3

KINDS = {"simple_rnn": ("SimpleRNN", {}), "lstm": ("LSTM", {}), "gru": ("GRU", {}),
         "gru_reset_before": ("GRU", {"reset_after": False})}
OPTIONS = {  # id: (constructor arguments, masked)
    "both": (dict(dropout=0.3, recurrent_dropout=0.4), False),
    "recurrent_only": (dict(recurrent_dropout=0.4, return_sequences=True), False),
    "input_only": (dict(dropout=0.3, return_sequences=True), False),
    "both-masked-backwards": (dict(dropout=0.3, recurrent_dropout=0.4, return_sequences=True,
                                   go_backwards=True, return_state=True), True),
}
DROPOUT_CASES = {f"{kind}-{option}": (name, {**extra, **args}, masked)
                 for kind, (name, extra) in KINDS.items() for option, (args, masked) in OPTIONS.items()}


def draw_masks(name, args, seed=0):
    """Masks as Keras draws them for these arguments (0 or 1/(1 - rate)): minidl's dict of them."""
    rng = np.random.default_rng(seed)

    def draw(shape, rate):
        return ((rng.random(shape) >= rate) / (1 - rate)).astype(np.float32)
    dropout, recurrent_dropout = args.get("dropout", 0.0), args.get("recurrent_dropout", 0.0)
    if not recurrent_dropout:
        return {"shared_input_mask": draw((BATCH, 1, FEATURES), dropout)}
    masks = {"recurrent_masks": draw((GATES[name], BATCH, UNITS), recurrent_dropout)}
    if dropout:
        masks["input_masks"] = draw((GATES[name], BATCH, FEATURES), dropout)
    return masks


def inject_into_keras(layer, masks):
    """Set the Keras cell's cached masks, which its next call uses instead of drawing (Keras
    draws them through DropoutRNNCell.get_dropout_mask only while the cache is empty)."""
    import keras  # noqa: PLC0415 (the test is skipped without it)
    cell, to_tensor = layer.cell, keras.ops.convert_to_tensor
    if "shared_input_mask" in masks:
        cell._dropout_mask = to_tensor(masks["shared_input_mask"][:, 0])
        return
    per_gate = getattr(cell, "dropout_mask_count", None) is not None  # SimpleRNN: one mask, no list
    for attribute, key in (("_dropout_mask", "input_masks"), ("_recurrent_dropout_mask", "recurrent_masks")):
        if key in masks:
            value = [to_tensor(m) for m in masks[key]] if per_gate else to_tensor(masks[key][0])
            setattr(cell, attribute, value)


@pytest.mark.parametrize("case", list(DROPOUT_CASES))
def test_dropout_with_injected_masks_equals_live_keras(case, monkeypatch):
    keras = pytest.importorskip("keras")
    name, args, masked = DROPOUT_CASES[case]
    rng = np.random.default_rng(3)
    x = rng.normal(size=(BATCH, STEPS, FEATURES)).astype(np.float32)
    mask = (np.arange(STEPS)[None, :] < np.array([STEPS, 3, 1])[:, None]) if masked else None
    reference = getattr(keras.layers, name)(UNITS, **args)
    reference(x)
    weights = [(0.5 * rng.normal(size=w.shape)).astype(np.float32) for w in reference.get_weights()]
    reference.set_weights(weights)
    masks = draw_masks(name, args)
    inject_into_keras(reference, masks)
    expected = reference(x, training=True, **({} if mask is None else {"mask": mask}))
    expected = [keras.ops.convert_to_numpy(y) for y in (expected if isinstance(expected, (list, tuple))
                                                      else [expected])]
    layer = LAYERS[name](UNITS, **args)
    layer(Tensor(x))
    layer.set_weights(weights)
    monkeypatch.setattr(layer, "_draw_dropout_masks", lambda inputs: dict(masks))
    got = layer(Tensor(x), training=True, mask=mask)
    got = [y.numpy() for y in (got if isinstance(got, list) else [got])]
    assert len(got) == len(expected)
    for ours, theirs in zip(got, expected):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    # the masks mattered: in inference (no masks) the first output differs
    inference = layer(Tensor(x), mask=mask)
    inference = inference[0] if isinstance(inference, list) else inference
    assert np.abs(inference.numpy() - got[0]).max() > 1e-2


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


@pytest.mark.parametrize("name", list(LAYERS))
def test_stateful_equals_live_keras_across_calls_and_reset(name):
    keras = pytest.importorskip("keras")
    x, first_half, second_half = _chunks(seed=8)
    mask = np.arange(STEPS)[None, :] < np.array([STEPS, 2, 0])[:, None]  # sample 2: all padding
    args = dict(return_sequences=True, return_state=True, stateful=True)
    reference = getattr(keras.layers, name)(UNITS, **args)
    reference(first_half)
    rng = np.random.default_rng(9)
    weights = [(0.5 * rng.normal(size=w.shape)).astype(np.float32) for w in reference.get_weights()]
    reference.set_weights(weights)
    reference.reset_state()
    layer = LAYERS[name](UNITS, **args)
    layer(Tensor(first_half))
    layer.set_weights(weights)
    layer.reset_states()
    for chunk, chunk_mask, reset in ((first_half, None, False), (second_half, mask, False),
                                     (first_half, mask, True), (second_half, None, False)):
        if reset:
            reference.reset_state()
            layer.reset_states()
        expected = reference(chunk, **({} if chunk_mask is None else {"mask": chunk_mask}))
        got = layer(Tensor(chunk), mask=chunk_mask)
        for ours, theirs in zip(got, expected):
            np.testing.assert_allclose(ours.numpy(), keras.ops.convert_to_numpy(theirs), rtol=1e-5, atol=1e-5)
        for ours, theirs in zip(layer.states, reference.states):
            np.testing.assert_allclose(ours.numpy(), keras.ops.convert_to_numpy(theirs), rtol=1e-5, atol=1e-5)


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
