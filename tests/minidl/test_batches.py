"""minidl.batches: fit walks every kind of data exactly as Keras 3 does.

(The case "lr_scheduler" also checks callbacks.LearningRateScheduler and LambdaCallback against
Keras: the learning rates, the losses they give, and the order of the hooks called.)

Each case of tests/reference/make_fit_fixtures.py runs one small fit whose data counts what is
taken from it. minidl's record must equal the one Keras 3.15 (torch backend) produced, stored in
tests/reference/fixtures/fit_loop_keras.json, and, when Keras is installed, the one Keras
produces live. Two Keras habits are left out on purpose (minidl/batches.py says why): the
extra fetch of a Sequence's or DataLoader's first batch before training, and the extra
``on_epoch_end`` before the first epoch and before each validation; ``expected_record`` takes
them out of Keras' record, and nothing else.
"""
import json
import warnings

import numpy as np
import pytest

import minidl as dl
from minidl import layers
from minidl.batches import GENERATOR_PEEK, data_batches, is_batch_source
from tests.reference.make_fit_fixtures import CASES, OUT as FIXTURE, counting_generator, numbered, run_case

FIXTURES = json.loads(FIXTURE.read_text())

EXACT = ("steps", "test_steps", "train_batches", "test_batches", "history_keys", "epochs_run", "hooks")


def expected_record(name: str, keras_record: dict) -> dict:
    """Keras' record without its build probe and its extra on_epoch_end calls."""
    record = json.loads(json.dumps(keras_record))
    kind = CASES[name][0][0]
    if kind == "sequence":  # [first batch fetched to build the model, the reset's on_epoch_end, ...]
        record["pulls"] = record["pulls"][2:]
    elif kind == "loader":  # the items of the first batch, fetched to build the model
        record["pulls"] = record["pulls"][4:]
    # before each validation Keras' evaluate calls on_epoch_end once more
    record["val_pulls"] = [p for i, p in enumerate(record["val_pulls"])
                           if not (p == "end" and (i == 0 or record["val_pulls"][i - 1] == "end"))]
    return record


def compare(name: str, mine: dict, theirs: dict) -> None:
    shuffled = name == "sequence_shuffled"
    for key in EXACT:
        if not (shuffled and key == "train_batches"):
            assert mine[key] == theirs[key], f"{name}: {key}"
    if shuffled:  # each pass in a random order: the same batches, each once
        def passes(pulls):
            out, current = [], []
            for p in pulls:
                if p == "end":
                    out.append(sorted(current))
                    current = []
                else:
                    current.append(p)
            return out
        assert passes(mine["pulls"]) == passes(theirs["pulls"]) == [list(range(5))] * 2
        in_order = [[i, i + 1, i + 2, i + 3] for i in range(0, 20, 4)]
        assert sorted(mine["train_batches"][:5]) == sorted(mine["train_batches"][5:]) == in_order
        assert mine["train_batches"] != in_order * 2
        return
    assert mine["pulls"] == theirs["pulls"], f"{name}: pulls"
    assert mine["val_pulls"] == theirs["val_pulls"], f"{name}: val_pulls"
    np.testing.assert_allclose(mine["loss"], theirs["loss"], rtol=2e-5, err_msg=name)
    for key in ("val_loss", "learning_rate"):  # Keras' learning rate is a float32
        if key in theirs:
            np.testing.assert_allclose(mine[key], theirs[key], rtol=2e-5, err_msg=f"{name}: {key}")


def minidl_record(name: str) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_case("minidl", name)


def test_the_fixture_was_written_by_keras_3():
    assert FIXTURES["keras_version"].startswith("3.") and FIXTURES["backend"] == "torch"
    assert set(FIXTURES["cases"]) == set(CASES)


# The case: 3 epochs of steps_per_epoch=3 pull a generator 9 times, not 12.
def test_a_generator_with_steps_per_epoch_is_pulled_steps_times_epochs():
    record = FIXTURES["cases"]["generator_steps"]
    assert len(record["pulls"]) == 9 and record["steps"] == [3, 3, 3]
    assert minidl_record("generator_steps")["pulls"] == record["pulls"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_fit_walks_the_data_as_the_keras_fixture(name):
    compare(name, minidl_record(name), expected_record(name, FIXTURES["cases"][name]))


@pytest.mark.parametrize("name", sorted(CASES))
def test_fit_walks_the_data_as_keras_live(name):
    pytest.importorskip("keras")
    pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keras_record = run_case("keras", name)
    compare(name, minidl_record(name), expected_record(name, keras_record))


# --- the parts one by one ------------------------------------------------------------------------
def linear_model():
    dl.random.seed(0)
    model = dl.Sequential([layers.Input((2,)), layers.Dense(1, kernel_initializer="ones")])
    model.compile(optimizer=dl.optimizers.SGD(0.001), loss="mse")
    return model


def test_a_finite_generator_replays_its_first_batches_each_later_epoch_and_warns():
    pulls = []
    model = linear_model()
    with pytest.warns(UserWarning, match="got 2 batches where 5 were asked"):
        history = model.fit(counting_generator(pulls, 0, 5), epochs=3, verbose=0)
    assert len(pulls) == 5 and len(history.history["loss"]) == 3


def test_steps_per_epoch_beyond_the_arrays_warns_and_starts_a_new_pass():
    x, y, _ = numbered(range(8))
    model = linear_model()
    with pytest.warns(UserWarning, match="got 2 batches where 3 were asked"):
        model.fit(x, y, batch_size=4, steps_per_epoch=3, epochs=1, verbose=0)


def test_validation_data_with_sample_weights_weighs_the_validation_loss():
    x, y, w = numbered(range(6))
    model = linear_model()
    history = model.fit(x, y, batch_size=3, epochs=1, shuffle=False, validation_data=(x, y, w), verbose=0)
    weighted = model.evaluate(x, y, sample_weight=w, batch_size=3, verbose=0)
    plain = model.evaluate(x, y, batch_size=3, verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(weighted, rel=1e-6)
    assert weighted != pytest.approx(plain, rel=1e-3)


def test_evaluate_and_predict_take_steps_and_a_torch_dataloader():
    torch = pytest.importorskip("torch")
    x, y, _ = numbered(range(10))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
                                         batch_size=4)
    model = linear_model()
    assert model.evaluate(loader, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0), rel=1e-6)
    assert model.evaluate(loader, steps=1, verbose=0) == pytest.approx(
        model.evaluate(x[:4], y[:4], verbose=0), rel=1e-6)
    np.testing.assert_allclose(model.predict(loader), model.predict(x), rtol=1e-6)
    assert model.predict(x, batch_size=4, steps=2).shape == (8, 1)


def test_a_generator_is_peeked_twice_when_it_is_given():
    pulls = []
    data_batches(linear_model(), counting_generator(pulls, 0, None), where="fit")
    assert len(pulls) == GENERATOR_PEEK == 2


@pytest.mark.parametrize("value", [0, -1, 1.5, "2", [0, 2], None])
def test_validation_freq_must_be_a_positive_int_or_a_list_of_epochs(value):
    x, y, _ = numbered(range(4))
    with pytest.raises(ValueError, match="validation_freq"):
        linear_model().fit(x, y, validation_data=(x, y), validation_freq=value, verbose=0)


@pytest.mark.parametrize("argument", ["validation_steps", "validation_batch_size", "steps_per_epoch"])
def test_step_and_batch_arguments_must_be_positive_ints(argument):
    x, y, _ = numbered(range(4))
    with pytest.raises(ValueError, match=argument):
        linear_model().fit(x, y, validation_data=(x, y), verbose=0, **{argument: 0})


@pytest.mark.parametrize("bad", [(1, 2, 3, 4), 3.0, "data"])
def test_validation_data_of_the_wrong_form_is_refused_by_name(bad):
    x, y, _ = numbered(range(4))
    with pytest.raises(ValueError, match="validation_data must be"):
        linear_model().fit(x, y, validation_data=bad, verbose=0)


def test_a_source_of_batches_refuses_y_and_validation_split():
    x, y, _ = numbered(range(4))
    with pytest.raises(ValueError, match="y and sample_weight must be None"):
        linear_model().fit(iter([(x, y)]), y, verbose=0)
    with pytest.raises(ValueError, match="validation_split needs arrays"):
        linear_model().fit(iter([(x, y)]), validation_split=0.5, verbose=0)


def test_what_counts_as_a_source_of_batches():
    x, _, _ = numbered(range(4))
    assert is_batch_source(iter([x])) and is_batch_source(dl.data.Sequence())
    assert not any(is_batch_source(v) for v in (x, [x], (x,), dl.Tensor(x)))
