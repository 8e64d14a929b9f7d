"""The functional API (minidl/model.py, model_graph.py, layers/symbolic.py, layers/input_layer.py):
graphs of layers built on layers.Input, trained, saved and compared with Keras from the same weights."""
import numpy as np
import pytest

import minidl as dl
from minidl import layers
from minidl.layers.serialization import LAYERS


def two_in_two_out(lib):
    """Two inputs, a layer shared by both, two outputs: the same graph in minidl or in Keras."""
    a = lib.Input((4,), name="a")
    b = lib.Input((4,), name="b")
    shared = lib.layers.Dense(5, activation="tanh", name="shared")
    ha, hb = shared(a), shared(b)
    out_a = lib.layers.Dense(3, activation="softmax", name="out_a")(ha)
    out_b = lib.layers.Dense(1, name="out_b")(lib.layers.Dense(2, activation="relu", name="mid")(hb))
    return lib.Model([a, b], [out_a, out_b])


def data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    xa, xb = rng.normal(size=(n, 4)).astype("float32"), rng.normal(size=(n, 4)).astype("float32")
    return xa, xb, (xa[:, 0] > 0).astype("int64") + (xa[:, 1] > 0), xb[:, :1] * 2


def test_a_layer_called_on_an_input_gives_a_symbolic_tensor_of_its_output_shape():
    y = layers.Dense(16)(layers.Input((20,)))   # failed with a shape message before the functional API
    assert y.shape == (None, 16) and y.dtype == "float32"


def test_a_variable_axis_stays_none_through_conv_and_pooling_but_not_past_the_rnn():
    x = dl.Input((None, 13))
    h = layers.MaxPooling1D(2)(layers.Conv1D(4, 3)(x))
    assert h.shape == (None, None, 4)
    assert layers.LSTM(5)(h).shape == (None, 5)


def test_arithmetic_on_symbolic_tensors_says_it_is_not_supported():
    x = dl.Input((3,))
    with pytest.raises(TypeError, match="not supported.*layers.Add"):
        x + x


def test_an_op_on_a_symbolic_tensor_says_it_is_not_supported():
    with pytest.raises(TypeError, match="ops of minidl.functional on symbolic tensors are not supported"):
        dl.functional.relu(dl.Input((3,)))


def test_an_output_needing_an_input_the_model_lacks_is_refused():
    a, b = dl.Input((2,), name="ina"), dl.Input((2,), name="inb")
    out = layers.Dense(1)(b)
    with pytest.raises(ValueError, match="graph disconnected.*'inb'"):
        dl.Model(a, out)


def test_a_subclassed_model_without_call_or_graph_says_what_to_do():
    with pytest.raises(NotImplementedError, match="define call"):
        dl.Model()(np.zeros((1, 2), "float32"))


def test_graph_order_and_outputs_equal_keras_from_the_same_weights():
    keras = pytest.importorskip("keras")
    ours, theirs = two_in_two_out(dl), two_in_two_out(keras)
    assert [layer.name for layer in ours.layers] == [layer.name for layer in theirs.layers]
    assert [w.shape for w in ours.get_weights()] == [tuple(w.shape) for w in theirs.get_weights()]
    ours.set_weights(theirs.get_weights())     # Keras' order is ours: weights load unchanged
    xa, xb, _, _ = data()
    for mine, keras_out in zip(ours.predict([xa, xb]), theirs.predict([xa, xb], verbose=0)):
        np.testing.assert_allclose(mine, keras_out, rtol=1e-5, atol=1e-6)
    assert ours.input_shape == [(None, 4), (None, 4)] and ours.output_shape == [(None, 3), (None, 1)]
    assert ours.output_shape == [tuple(s) for s in theirs.output_shape]


def test_a_shared_layer_counts_its_weights_once():
    model = two_in_two_out(dl)
    assert model.count_params() == (4 * 5 + 5) + (5 * 3 + 3) + (5 * 2 + 2) + (2 + 1)


def test_inputs_as_a_dict_by_name_equal_inputs_as_a_list():
    model = two_in_two_out(dl)
    xa, xb, _, _ = data()
    by_list, by_name = model.predict([xa, xb]), model.predict({"b": xb, "a": xa})
    for left, right in zip(by_list, by_name):
        np.testing.assert_array_equal(left, right)
    with pytest.raises(ValueError, match="keys"):
        model.predict({"a": xa})


def test_a_functional_chain_trains_exactly_as_the_same_sequential():
    x, _, y, _ = data(64)
    dl.random.seed(3)
    sequential = dl.Sequential([layers.Input((4,)), layers.Dense(8, activation="relu"), layers.Dense(3)])
    inputs = dl.Input((4,))
    functional = dl.Model(inputs, layers.Dense(3)(layers.Dense(8, activation="relu")(inputs)))
    functional.set_weights(sequential.get_weights())
    for model in (sequential, functional):
        model.compile(optimizer=dl.optimizers.SGD(0.1), loss=dl.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
    first = sequential.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0).history
    second = functional.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0).history
    assert first == second
    np.testing.assert_array_equal(functional.predict(x), sequential.predict(x))


def test_a_model_of_two_inputs_fits_from_lists_and_learns():
    xa, xb, y, target = data(200)
    model = two_in_two_out(dl)
    model.compile(optimizer=dl.optimizers.Adam(0.02), loss=["sparse_categorical_crossentropy", "mse"])
    history = model.fit([xa, xb], [y, target], epochs=20, batch_size=32, verbose=0, validation_split=0.2)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert set(history.history) == {"loss", "out_a_loss", "out_b_loss", "val_loss", "val_out_a_loss",
                                    "val_out_b_loss"}


def test_save_and_load_keep_the_graph_and_its_outputs(tmp_path):
    model = two_in_two_out(dl)
    xa, xb, _, _ = data()
    model.save(str(tmp_path / "graph.npz"))
    again = dl.load_model(tmp_path / "graph.npz")
    assert type(again) is dl.Model and [layer.name for layer in again.layers] == [layer.name for layer in model.layers]
    for left, right in zip(again.predict([xa, xb]), model.predict([xa, xb])):
        np.testing.assert_array_equal(left, right)


def test_a_model_is_a_layer_of_another_model():
    inner_in = dl.Input((4,))
    inner = dl.Model(inner_in, layers.Dense(2, name="inner_dense")(inner_in), name="inner")
    x = dl.Input((4,))
    outer = dl.Model(x, layers.Dense(1)(inner(x)))
    values = np.ones((3, 4), "float32")
    expected = outer.layers[2](inner.predict(values)).numpy()
    np.testing.assert_allclose(outer.predict(values), expected, rtol=1e-6)


def test_summary_lists_each_call_and_what_it_is_connected_to():
    lines = []
    two_in_two_out(dl).summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Connected to" in text and "shared[1][0]" in text and "a[0][0]" in text
    assert "Total params: 58" in text


# --- subclassing ---------------------------------------------------------------------------------
@pytest.fixture(name="Net")
def net_class():
    """The Keras guide's subclassed model: layers as attributes, the forward pass in call. Defined
    per test and taken out of the layer registry after, so tests/test_coverage.py never sees it."""

    class Net(dl.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.hidden = layers.Dense(8, activation="relu")
            self.dropout = layers.Dropout(0.5)
            self.classes = layers.Dense(3, activation="softmax")

        def call(self, x, training=False):
            return self.classes(self.dropout(self.hidden(x), training=training))

    yield Net
    LAYERS.pop("Net", None)


def test_a_subclassed_model_learns_and_passes_training_to_its_layers(Net):
    x, _, y, _ = data(200)
    model = Net()
    model.compile(optimizer=dl.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.7 * history.history["loss"][0]
    assert model.evaluate(x, y, verbose=0)[1] > 0.85       # without dropout, as evaluate runs
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Dropout", "Dense"]
    np.testing.assert_array_equal(model.predict(x[:5]), model.predict(x[:5]))       # inference: no dropout
    assert not np.array_equal(model(x[:5], training=True).numpy(), model.predict(x[:5]))
    assert model.input_shape == (None, 4) and model.output_shape == (None, 3)


def test_a_subclassed_model_equals_keras_from_the_same_weights(Net):
    keras = pytest.importorskip("keras")

    class KerasNet(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = keras.layers.Dense(8, activation="relu")
            self.dropout = keras.layers.Dropout(0.5)
            self.classes = keras.layers.Dense(3, activation="softmax")

        def call(self, x, training=False):
            return self.classes(self.dropout(self.hidden(x), training=training))

    x = data()[0]
    theirs, ours = KerasNet(), Net()
    theirs(x)
    ours.build((None, 4))
    assert [w.shape for w in ours.get_weights()] == [tuple(w.shape) for w in theirs.get_weights()]
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_a_subclassed_model_saves_its_weights_but_says_its_architecture_cannot_be_saved(tmp_path, Net):
    model, other = Net(), Net()
    x = data()[0]
    model.build((None, 4))
    other.build((None, 4))
    model.save_weights(str(tmp_path / "net.npz"))
    other.load_weights(str(tmp_path / "net.npz"))
    np.testing.assert_array_equal(other.predict(x), model.predict(x))
    with pytest.raises(NotImplementedError, match="subclassed.*saving its architecture needs.*register_serializable"):
        model.save(str(tmp_path / "whole.npz"))


def test_predict_on_batch_and_test_on_batch_take_lists_for_several_inputs_and_outputs():
    model = two_in_two_out(dl)
    model.compile(optimizer="sgd", loss=["sparse_categorical_crossentropy", "mse"])
    xa, xb, y, target = data(8)
    batch = model.predict_on_batch([xa, xb])
    for left, right in zip(batch, model.predict([xa, xb])):
        np.testing.assert_array_equal(left, right)
    logs = model.test_on_batch([xa, xb], [y, target], return_dict=True)
    assert list(logs) == ["loss", "out_a_loss", "out_b_loss"]
    assert logs["loss"] == pytest.approx(logs["out_a_loss"] + logs["out_b_loss"], rel=1e-6)


def test_a_model_inside_a_model_saves_and_loads(tmp_path):
    inner_in = dl.Input((4,))
    inner = dl.Model(inner_in, layers.Dense(3, activation="tanh")(inner_in), name="inner")
    x = dl.Input((4,))
    outer = dl.Model(x, layers.Dense(1)(inner(x)), name="outer")
    outer.save(str(tmp_path / "nested.npz"))
    again = dl.load_model(tmp_path / "nested.npz")
    assert type(again.get_layer("inner")) is dl.Model
    values = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    np.testing.assert_array_equal(again.predict(values), outer.predict(values))
    assert again.predict(values).shape == (5, 1)


# --- several inputs and outputs through the one fit loop (minidl.training) and saving v2 ---------
def compiled_two_in_two_out(dropout: bool = False):
    dl.random.seed(3)
    a, b = dl.Input((4,), name="a"), dl.Input((4,), name="b")
    shared = layers.Dense(5, activation="tanh", name="shared")
    ha = layers.Dropout(0.3)(shared(a)) if dropout else shared(a)
    model = dl.Model([a, b], [layers.Dense(3, activation="softmax", name="out_a")(ha),
                              layers.Dense(1, name="out_b")(shared(b))])
    model.compile("adam", loss={"out_a": "sparse_categorical_crossentropy", "out_b": "mse"},
                  loss_weights=[1.0, 0.5], metrics={"out_a": ["accuracy"]})
    return model


def test_steps_per_epoch_validation_split_and_evaluate_steps_hold_for_dicts_of_inputs_and_outputs():
    xa, xb, ya, yb = data(40)
    model = compiled_two_in_two_out()
    batches = []
    count = dl.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: batches.append(batch))
    history = model.fit({"b": xb, "a": xa}, {"out_b": yb, "out_a": ya}, batch_size=8, epochs=2,
                        steps_per_epoch=2, validation_split=0.2, callbacks=[count], verbose=0)
    assert batches == [0, 1, 0, 1]   # 32 training samples are 4 batches; 2 an epoch, as asked
    assert set(history.history) == {"loss", "out_a_loss", "out_b_loss", "out_a_accuracy", "val_loss",
                                    "val_out_a_loss", "val_out_b_loss", "val_out_a_accuracy"}
    held_out = model.evaluate([xa[32:], xb[32:]], [ya[32:], yb[32:]], verbose=0, return_dict=True)
    assert held_out["loss"] == pytest.approx(history.history["val_loss"][-1], rel=1e-6)
    first_batch = model.evaluate([xa, xb], [ya, yb], batch_size=8, steps=1, verbose=0, return_dict=True)
    assert first_batch == pytest.approx(model.evaluate([xa[:8], xb[:8]], [ya[:8], yb[:8]], verbose=0,
                                                       return_dict=True))


def test_a_generator_of_dict_batches_trains_a_model_of_two_inputs_as_the_arrays_do():
    xa, xb, ya, yb = data(16)
    from_arrays, from_generator = compiled_two_in_two_out(), compiled_two_in_two_out()
    from_arrays.fit([xa, xb], [ya, yb], batch_size=8, epochs=1, shuffle=False, verbose=0)
    batches = (({"a": xa[i:i + 8], "b": xb[i:i + 8]}, [ya[i:i + 8], yb[i:i + 8]]) for i in (0, 8))
    from_generator.fit(batches, epochs=1, verbose=0)
    for ours, theirs in zip(from_arrays.get_weights(), from_generator.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    predicted = from_arrays.predict({"a": xa, "b": xb}, batch_size=5, steps=2)
    assert [p.shape for p in predicted] == [(10, 3), (10, 1)]


def test_a_model_of_two_outputs_saved_after_3_epochs_resumes_to_equal_6_in_one_go(tmp_path):
    xa, xb, ya, yb = data(40)
    straight = compiled_two_in_two_out(dropout=True)
    straight.fit([xa, xb], [ya, yb], batch_size=8, epochs=6, verbose=0)
    first = compiled_two_in_two_out(dropout=True)
    first.fit([xa, xb], [ya, yb], batch_size=8, epochs=3, verbose=0)
    first.save(tmp_path / "m.npz")
    resumed = dl.saving.load_model(tmp_path / "m.npz")
    assert resumed.compiled.loss_weights == [1.0, 0.5] and resumed.metric_names == ["out_a_accuracy"]
    assert [loss.name for loss in resumed.loss] == ["sparse_categorical_crossentropy", "mean_squared_error"]
    resumed.fit([xa, xb], [ya, yb], batch_size=8, epochs=6, initial_epoch=3, verbose=0)
    for ours, theirs in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(ours, theirs)


# --- reset_states on a model of stateful recurrent layers -------------------------------------------
def stateful_models(lib):
    """The same two stateful layers (an LSTM in a Bidirectional, then a GRU) as a Sequential and
    as a functional model, batch 2 of 3 steps of 4 features."""
    def stack():
        return [lib.layers.Bidirectional(lib.layers.LSTM(3, return_sequences=True, stateful=True), name="bi"),
                lib.layers.GRU(2, stateful=True, name="gru")]
    sequential = lib.Sequential([lib.Input((3, 4), batch_size=2)] + stack())
    x = lib.Input((3, 4), batch_size=2)
    bi, gru = stack()
    return sequential, lib.Model(x, gru(bi(x)))


def test_model_reset_states_equals_keras_resetting_each_stateful_layer():
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(4)
    chunks = [rng.normal(size=(2, 3, 4)).astype("float32") for _ in range(3)]
    for ours, theirs in zip(stateful_models(dl), stateful_models(keras)):
        ours.set_weights(theirs.get_weights())
        mine, expected = [], []
        for step, chunk in enumerate(chunks + chunks):
            if step == len(chunks):  # the second pass starts from zeros again, in both
                ours.reset_states()
                for layer in theirs.layers:
                    if hasattr(layer, "reset_state"):
                        layer.reset_state()
            mine.append(ours.predict(chunk, batch_size=2))
            expected.append(keras.ops.convert_to_numpy(theirs(chunk)))
        for left, right in zip(mine, expected):
            np.testing.assert_allclose(left, right, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(mine[3], mine[0], rtol=1e-6)   # reset: as the first call
        assert np.abs(mine[1] - ours.predict(chunks[1], batch_size=2)).max() > 1e-4  # carried, not reset


def test_reset_states_reaches_a_nested_model_and_a_subclassed_models_layers():
    class Net(dl.Model):
        def __init__(self):
            super().__init__()
            self.rnn = layers.SimpleRNN(3, stateful=True)

        def call(self, x):
            return self.rnn(x)

    chunk = np.random.default_rng(5).normal(size=(2, 3, 4)).astype("float32")
    inner, _ = stateful_models(dl)
    x = dl.Input((3, 4), batch_size=2)
    outer = dl.Model(x, layers.Dense(1)(inner(x)))
    for model in (Net(), outer):
        first = model.predict(chunk, batch_size=2)
        carried = model.predict(chunk, batch_size=2)
        model.reset_states()
        np.testing.assert_allclose(model.predict(chunk, batch_size=2), first, rtol=1e-6)
        assert np.abs(carried - first).max() > 1e-4


# --- a subclassed model whose call takes a list or a dict of inputs ---------------------------------
def two_input_net(lib, as_dict: bool):
    """A subclassed model of two inputs, given as a list [a, b] or a dict {"a": ..., "b": ...}."""
    class TwoInputs(lib.Model):
        def __init__(self):
            super().__init__()
            self.from_a = lib.layers.Dense(4, activation="tanh")
            self.from_b = lib.layers.Dense(4, activation="relu")
            self.join = lib.layers.Concatenate()
            self.head = lib.layers.Dense(2)

        def call(self, inputs):
            a, b = (inputs["a"], inputs["b"]) if as_dict else inputs
            return self.head(self.join([self.from_a(a), self.from_b(b)]))

    return TwoInputs()


@pytest.mark.parametrize("as_dict", [False, True], ids=["list", "dict"])
def test_a_subclassed_model_of_a_list_or_dict_of_inputs_fits_evaluates_predicts_as_keras(as_dict):
    keras = pytest.importorskip("keras")
    xa, xb, _, target = data(40)
    target = np.concatenate([target, xa[:, 1:2]], axis=1)
    x = {"b": xb, "a": xa} if as_dict else [xa, xb]
    ours, theirs = two_input_net(dl, as_dict), two_input_net(keras, as_dict)
    theirs.predict(x, verbose=0)  # builds the weights, to be copied
    ours.predict(x)
    ours.set_weights(theirs.get_weights())
    for model, lib in ((ours, dl), (theirs, keras)):
        model.compile(optimizer=lib.optimizers.SGD(0.1), loss="mse", metrics=["mae"])
    kwargs = dict(batch_size=8, epochs=2, shuffle=False, verbose=0)
    mine = ours.fit(x, target, validation_split=0.25, **kwargs).history
    expected = theirs.fit(x, target, validation_split=0.25, **kwargs).history
    assert set(mine) == set(expected)
    for key in expected:
        np.testing.assert_allclose(mine[key], expected[key], rtol=1e-5, atol=1e-6, err_msg=key)
    np.testing.assert_allclose(ours.evaluate(x, target, batch_size=16, verbose=0),
                               theirs.evaluate(x, target, batch_size=16, verbose=0), rtol=1e-5)
    np.testing.assert_allclose(ours.predict(x, batch_size=16), theirs.predict(x, batch_size=16, verbose=0),
                               rtol=1e-5, atol=1e-6)
    batches = [({"a": xa[i:i + 10], "b": xb[i:i + 10]} if as_dict else [xa[i:i + 10], xb[i:i + 10]],
                target[i:i + 10]) for i in range(0, 40, 10)]
    np.testing.assert_allclose(ours.evaluate((b for b in batches), verbose=0),
                               theirs.evaluate((b for b in batches), verbose=0), rtol=1e-5)
