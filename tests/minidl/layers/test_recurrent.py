"""SimpleRNN, LSTM, GRU layers: Keras fixtures and live Keras, gradient checks, masks, states,
configuration, bad input, and a sequence task that needs memory."""
import numpy as np
import pytest

import minidl as dl
import minidl.functional as F
from minidl.function import no_grad
from minidl.gradcheck import gradcheck
from minidl.layers.core import Dense
from minidl.layers.masking import Masking
from minidl.layers.recurrent import GRU, LSTM, SimpleRNN
from minidl.layers.wrappers import Bidirectional
from minidl.tensor import Tensor
from tests.reference.make_recurrent_fixtures import CASES, FIXTURES, case_inputs, keras_run

LAYERS = {"SimpleRNN": SimpleRNN, "LSTM": LSTM, "GRU": GRU}
ALL_CASES = [(file, name) for file, cases in CASES.items() for name in cases]


def minidl_run(case, x, mask, states, weights):
    """The minidl layer of ``case`` with ``weights``: its outputs on x as a list of arrays."""
    layer = LAYERS[case["layer"]](**case["args"])
    if "merge_mode" in case:
        layer = Bidirectional(layer, merge_mode=case["merge_mode"])
    inputs = Tensor(x)
    if case.get("masking"):
        inputs = Masking(0.0)(inputs)
    layer(inputs)
    layer.set_weights(weights)
    outputs = layer(inputs, mask=mask, initial_state=None if states is None else [Tensor(s) for s in states])
    return [y.numpy() for y in (outputs if isinstance(outputs, list) else [outputs])]


@pytest.mark.parametrize("file, name", ALL_CASES)
def test_outputs_equal_keras_fixtures(file, name):
    case = CASES[file][name]
    with np.load(FIXTURES / f"{file}.npz", allow_pickle=False) as data:
        stored = {key.split("/", 1)[1]: data[key] for key in data.files if key.startswith(name + "/")}
    count = lambda prefix: sum(key[0] == prefix and key[1:].isdigit() for key in stored)  # noqa: E731
    states = [stored[f"s{k}"] for k in range(count("s"))] or None
    weights = [stored[f"w{k}"] for k in range(count("w"))]
    outputs = minidl_run(case, stored["x"], stored.get("mask"), states, weights)
    expected = [stored[f"y{k}"] for k in range(count("y"))]
    assert len(outputs) == len(expected)
    for got, want in zip(outputs, expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("file, name", ALL_CASES)
def test_outputs_equal_live_keras(file, name):
    pytest.importorskip("keras")
    case = CASES[file][name]
    x, mask, states = case_inputs(case, seed=7)
    weights, expected = keras_run(case, x, mask, states, seed=7)
    outputs = minidl_run(case, x, mask, states, weights)
    assert len(outputs) == len(expected)
    for got, want in zip(outputs, expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# --- gradients -----------------------------------------------------------------------------------

def _weight_slots(layer):
    """(owner layer, attribute) of every weight, in the order of layer.weights."""
    slots = {}
    for owner in [layer] + [sub for sub in layer.sublayers()]:
        for attribute, value in vars(owner).items():
            if any(value is w for w in owner._own_weights):
                slots[id(value)] = (owner, attribute)
    return [slots[id(w)] for w in layer.weights]


def layer_gradcheck(layer, x, mask=None, states=None, **call_options):
    """gradcheck of every output with respect to the input, the states and every weight
    (``call_options`` go to every call of the layer, training=True for instance).

    The layer's weight attributes are pointed at gradcheck's tensors for the check, so the
    gradients land where gradcheck reads them; the weights are put back afterwards.
    """
    layer(Tensor(x))
    originals = list(layer.weights)
    slots = _weight_slots(layer)
    arrays = [x] + list(states or []) + [w.data.copy() for w in originals]
    n_states = len(states or [])

    def fn(*values):
        for (owner, attribute), value in zip(slots, values[1 + n_states:]):
            setattr(owner, attribute, value)
        kwargs = {"initial_state": list(values[1:1 + n_states])} if n_states else {}
        outputs = layer(values[0], mask=mask, **kwargs, **call_options)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        return F.concatenate([F.reshape(o, (-1,)) for o in outputs], axis=0)
    try:
        gradcheck(fn, arrays)
    finally:
        for (owner, attribute), weight in zip(slots, originals):
            setattr(owner, attribute, weight)


def _mask(batch, steps):
    lengths = np.array([steps, 2, 1][:batch])
    return np.arange(steps)[None, :] < lengths[:, None]


def layer_id(cls) -> str:
    """A test id that names the layer as its op is named ("simple_rnn", "lstm", "gru")."""
    return {"SimpleRNN": "simple_rnn"}.get(cls.__name__, cls.__name__.lower())


@pytest.mark.parametrize("shape, options, masked", [
    ((1, 1, 2), dict(), False),
    ((2, 4, 3), dict(return_sequences=True), False),
    ((3, 4, 2), dict(return_sequences=True, return_state=True), True),
    ((3, 4, 2), dict(go_backwards=True, return_state=True), True),
    ((3, 4, 2), dict(return_sequences=True, go_backwards=True, zero_output_for_mask=True), True),
], ids=["1x1x2", "2x4x3-sequences", "3x4x2-sequences-state-masked", "3x4x2-backwards-state-masked",
        "3x4x2-sequences-backwards-zero_output-masked"])
@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU], ids=layer_id)
def test_layer_gradcheck_float64(cls, shape, options, masked):
    dl.set_floatx("float64")
    x = np.random.default_rng(0).normal(size=shape)
    layer = cls(3, bias_initializer="random_normal", **options)
    layer_gradcheck(layer, x, _mask(*shape[:2]) if masked else None)


@pytest.mark.parametrize("cls, n_states", [(LSTM, 2), (GRU, 1)], ids=["lstm", "gru"])
def test_layer_gradcheck_initial_state(cls, n_states):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 2))
    states = [rng.normal(size=(2, 3)) for _ in range(n_states)]
    layer_gradcheck(cls(3, dtype="float64", return_state=True), x, _mask(2, 3), states)


def test_reference_cell_runs_for_other_activations_and_agrees():
    dl.set_floatx("float64")
    x = Tensor(np.random.default_rng(2).normal(size=(2, 5, 3)))
    fused = LSTM(4, return_sequences=True)
    reference = LSTM(4, return_sequences=True, activation=lambda a: F.tanh(a))  # not fusable
    fused(x)
    reference(x)
    reference.set_weights(fused.get_weights())
    mask = _mask(2, 5)
    np.testing.assert_allclose(reference(x, mask=mask).data, fused(x, mask=mask).data, atol=1e-12)


# --- masks, states, dropout ------------------------------------------------------------------------

def test_mask_is_passed_on_only_with_return_sequences():
    x = Tensor(np.ones((2, 4, 3), np.float32))
    mask = _mask(2, 4)
    assert LSTM(2, return_sequences=True)(x, mask=mask).mask is mask
    assert LSTM(2)(x, mask=mask).mask is None
    out, h = GRU(2, return_sequences=True, return_state=True)(x, mask=mask)
    assert out.mask is mask and h.mask is None


def test_masking_layer_feeds_the_mask():
    x = np.random.default_rng(3).normal(size=(3, 6, 2)).astype(np.float32)
    mask = _mask(3, 6)
    x[~mask] = 0.0
    layer = GRU(4, return_sequences=True)
    masked = Masking()(Tensor(x))
    np.testing.assert_array_equal(masked.mask, mask)
    np.testing.assert_array_equal(layer(masked).data, layer(Tensor(x), mask=mask).data)


def test_conv1d_front_end_mask_reaches_the_lstm():
    conv = pytest.importorskip("minidl.layers.conv")
    x = np.random.default_rng(4).normal(size=(3, 8, 2)).astype(np.float32)
    mask = _mask(3, 8)
    front = conv.Conv1D(3, 3, padding="same")
    features = front(Tensor(x), mask=mask)
    assert features.mask is not None and features.mask.shape == (3, 8)
    layer = LSTM(4)
    np.testing.assert_array_equal(layer(features).data, layer(Tensor(features.data), mask=features.mask).data)


def test_dropout_only_in_training_with_one_mask_per_sequence():
    x = Tensor(np.ones((4, 6, 8), np.float32))
    layer = SimpleRNN(3, dropout=0.5, activation=None, return_sequences=True)
    inference = layer(x).data
    np.testing.assert_array_equal(layer(x, training=False).data, inference)
    assert not np.allclose(layer(x, training=True).data, inference)


def test_unit_forget_bias_starts_forget_gate_at_one():
    layer = LSTM(3)
    layer(Tensor(np.zeros((1, 2, 4), np.float32)))
    np.testing.assert_array_equal(layer.bias.numpy(), [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    no_forget = LSTM(3, unit_forget_bias=False)
    no_forget(Tensor(np.zeros((1, 2, 4), np.float32)))
    np.testing.assert_array_equal(no_forget.bias.numpy(), np.zeros(12))


def test_weight_layouts_are_keras():
    x = Tensor(np.zeros((2, 3, 5), np.float32))
    shapes = {}
    for cls in (SimpleRNN, LSTM, GRU):
        layer = cls(4)
        layer(x)
        shapes[cls.__name__] = [w.shape for w in layer.weights]
        assert [w.name.split("/")[-1] for w in layer.weights] == ["kernel", "recurrent_kernel", "bias"]
    assert shapes == {"SimpleRNN": [(5, 4), (4, 4), (4,)], "LSTM": [(5, 16), (4, 16), (16,)],
                      "GRU": [(5, 12), (4, 12), (2, 12)]}


def test_graph_is_freed_after_a_training_step():
    layer = LSTM(4)
    out = layer(Tensor(np.ones((2, 5, 3), np.float32)))
    function = out.creator  # the fused LSTMFunction (its last h is the output)
    out.sum().backward()
    assert function.released and not hasattr(function, "A")


# --- configuration and errors ---------------------------------------------------------------------

@pytest.mark.parametrize("cls, extra", [
    (SimpleRNN, {}), (LSTM, dict(recurrent_activation="sigmoid", unit_forget_bias=False)),
    (GRU, dict(recurrent_activation="sigmoid", reset_after=True))], ids=["simple_rnn", "lstm", "gru"])
def test_get_config_holds_exactly_the_constructor_arguments(cls, extra):
    args = dict(units=3, activation="relu", use_bias=False, kernel_initializer="he_normal",
                recurrent_initializer="glorot_uniform", bias_initializer="ones", dropout=0.25,
                recurrent_dropout=0.125, return_sequences=True, return_state=True, go_backwards=True,
                stateful=True, unroll=True, zero_output_for_mask=True,
                name=f"rnn_{cls.__name__.lower()}", **extra)
    config = cls(**args).get_config()
    assert {key: config[key] for key in args} == args
    assert cls(**config).get_config() == config


def test_gru_reset_after_must_be_a_bool():
    with pytest.raises(ValueError, match=r"GRU: reset_after must be True or False, got 'no'"):
        GRU(3, reset_after="no")


def test_gru_reset_before_has_one_bias_and_its_config_round_trips():
    layer = GRU(4, reset_after=False)
    layer(Tensor(np.zeros((2, 3, 5), np.float32)))
    assert [w.shape for w in layer.weights] == [(5, 12), (4, 12), (12,)]
    config = layer.get_config()
    assert config["reset_after"] is False and GRU(**config).get_config() == config


@pytest.mark.parametrize("options", [dict(return_sequences=True, return_state=True),
                                     dict(go_backwards=True, return_sequences=True, zero_output_for_mask=True)],
                         ids=["gru_reset_before-sequences-state", "gru_reset_before-backwards-zero_output"])
def test_gru_reset_before_layer_gradcheck_float64(options):
    dl.set_floatx("float64")
    x = np.random.default_rng(5).normal(size=(3, 4, 2))
    layer_gradcheck(GRU(3, reset_after=False, bias_initializer="random_normal", **options), x, _mask(3, 4))


def test_bad_input_names_layer_expected_and_received():
    layer = LSTM(3, name="encoder")
    with pytest.raises(ValueError, match=r"LSTM 'encoder' expects a 3-D input \(batch, steps, features\), "
                                         r"got shape \(2, 5\)"):
        layer(Tensor(np.zeros((2, 5), np.float32)))
    layer(Tensor(np.zeros((2, 5, 4), np.float32)))
    with pytest.raises(ValueError, match=r"LSTM 'encoder' was built for 4 input features, .*shape \(2, 5, 6\)"):
        layer(Tensor(np.zeros((2, 5, 6), np.float32)))
    with pytest.raises(ValueError, match=r"LSTM 'encoder' expects a mask of shape \(batch, steps\) = \(2, 5\) "
                                         r".* got a mask of shape \(2, 4\)"):
        layer(Tensor(np.zeros((2, 5, 4), np.float32)), mask=np.ones((2, 4), bool))
    with pytest.raises(ValueError, match=r"LSTM 'encoder' expects 2 initial state\(s\) \(h, c\), got 1"):
        layer(Tensor(np.zeros((2, 5, 4), np.float32)), initial_state=[np.zeros((2, 3), np.float32)])
    with pytest.raises(ValueError, match=r"expects initial state c of shape \(2, 3\), got shape \(2, 4\)"):
        layer(Tensor(np.zeros((2, 5, 4), np.float32)),
              initial_state=[np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32)])
    with pytest.raises(ValueError, match="units must be a positive int, got 0"):
        SimpleRNN(0)


# --- a task that needs memory ---------------------------------------------------------------------

STEPS, SYMBOLS = 12, 4


def _recall_batch(rng, size):
    """One of 4 symbols (one-hot) at step 0, then zeros: the target is the first symbol."""
    tokens = rng.integers(0, SYMBOLS, size=size)
    x = np.zeros((size, STEPS, SYMBOLS), np.float32)
    x[:, 0] = np.eye(SYMBOLS, dtype=np.float32)[tokens]
    return x, tokens


def _train_recall(body, iterations=300, batch=64):
    from minidl.optimizers import Adam
    rng = np.random.default_rng(0)
    head, optimizer = Dense(SYMBOLS), Adam(0.03)
    for _ in range(iterations):
        x, tokens = _recall_batch(rng, batch)
        log_p = F.log_softmax(head(body(Tensor(x))))
        loss = -(log_p * np.eye(SYMBOLS, dtype=np.float32)[tokens]).sum() * (1.0 / batch)
        loss.backward()
        optimizer.apply(body.trainable_weights + head.trainable_weights)
    x, tokens = _recall_batch(np.random.default_rng(99), 512)
    with no_grad():
        return float((head(body(Tensor(x))).data.argmax(axis=-1) == tokens).mean())


class _LastStepDense:
    """A memoryless model: Dense on the features of the last step only."""

    def __init__(self):
        self.dense = Dense(16, activation="relu")

    def __call__(self, x):
        return self.dense(x[:, -1])

    @property
    def trainable_weights(self):
        return self.dense.trainable_weights


@pytest.mark.parametrize("cls", [LSTM, GRU], ids=layer_id)
def test_recurrent_layers_recall_the_first_symbol_that_a_dense_model_cannot(cls):
    pytest.importorskip("minidl.optimizers")
    assert _train_recall(cls(16)) >= 0.95  # recall after 12 steps: ≥ 95 % (chance 25 %)
    assert _train_recall(_LastStepDense(), iterations=100) <= 0.4
