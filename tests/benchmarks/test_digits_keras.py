"""benchmarks/digits_keras.py: the Keras anchor of a recipe trains on minidl's batches, in minidl's
order, with minidl's CRNN (same parameter count, same outputs for the same weights)."""
from __future__ import annotations

import numpy as np
import pytest

import audio
from minidl.apps import digit_data, digits
from minidl.apps.augmentation import EpochDraws
from minidl.apps.digit_data import PaddedBatches
from minidl.apps.recipes import recipe

keras = pytest.importorskip("keras", reason="the Keras anchor needs keras (reference extra)")
digits_keras = pytest.importorskip("benchmarks.digits_keras")

N_FEATURES = 26


def padded(rng, lengths):
    x = rng.normal(size=(len(lengths), max(lengths), N_FEATURES)).astype(np.float32) * 3
    for row, length in enumerate(lengths):
        x[row, length:] = 0
    return x


def test_crnn_has_minidl_parameter_count_and_outputs_on_padded_batches(rng):
    frames = rng.normal(loc=-2, scale=3, size=(1, 200, N_FEATURES)).astype(np.float32)
    ours = digits.build_crnn(N_FEATURES)
    digits.adapt_normalization(ours, [frames[0]])
    theirs = digits_keras.keras_crnn(N_FEATURES, frames)
    assert theirs.count_params() == ours.count_params()
    theirs.set_weights(ours.get_weights())
    # padding in the batch: the GRU must skip it in Keras as in minidl (the mask passes Conv1D)
    x = padded(rng, [30, 11, 4, 30])
    np.testing.assert_allclose(np.asarray(theirs.predict_on_batch(x)), ours.predict(x), rtol=0, atol=1e-5)


def test_crnn_without_normalization_for_cmvn_features(rng):
    ours = digits.build_crnn(N_FEATURES, normalize=False)
    theirs = digits_keras.keras_crnn(N_FEATURES, None)
    assert theirs.count_params() == ours.count_params()
    theirs.set_weights(ours.get_weights())
    x = padded(rng, [9, 17])
    np.testing.assert_allclose(np.asarray(theirs.predict_on_batch(x)), ours.predict(x), rtol=0, atol=1e-5)


def test_same_epochs_refuses_a_single_batch():
    one_batch = PaddedBatches([np.ones((3, N_FEATURES), np.float32)], np.zeros(1, dtype=int), 32)
    with pytest.raises(ValueError, match="at least 2 batches"):
        digits_keras.SameEpochs(one_batch)


def test_predictions_come_back_in_the_given_order(rng):
    net = digits_keras.keras_crnn(N_FEATURES, None, filters=4, units=4)
    features = [rng.normal(size=(n, N_FEATURES)).astype(np.float32) for n in (12, 3, 20, 7, 3)]
    one_by_one = np.concatenate([np.asarray(net.predict_on_batch(f[None])) for f in features])
    np.testing.assert_allclose(digits_keras.predict_keras(net, features, batch_size=2), one_by_one,
                               rtol=0, atol=1e-5)


def record_training_batches(monkeypatch) -> list:
    """Every training batch that a fit takes from EpochDraws or a shuffled PaddedBatches
    (validation batches are unshuffled), as (x, labels) copies in the order taken."""
    taken = []
    for kind in (EpochDraws, PaddedBatches):
        original = kind.__getitem__

        def getitem(self, index, original=original):
            x, y = original(self, index)
            if getattr(self, "shuffle", True):
                taken.append((x.copy(), np.array(y)))
            return x, y
        monkeypatch.setattr(kind, "__getitem__", getitem)
    return taken


@pytest.mark.parametrize("name, epochs", [("trim", 2), ("draws", 3)])
def test_keras_trains_on_the_batches_minidl_trains_on(name, epochs, fake_data, monkeypatch):
    fsdd = audio.fsdd.FSDD(fake_data)
    settings, features = recipe(name, split="speaker", held_out="bob", seed=3, epochs=epochs)
    train_x, train_y, *_ = digit_data.load_data(settings, features, fsdd, progress=False)
    copies = digit_data.training_copies(settings, features, fsdd, progress=False)
    taken = record_training_batches(monkeypatch)

    ours = digits.build_crnn(features.n_features, filters=4, units=4)
    digits.adapt_normalization(ours, train_x)
    digits.fit_model("crnn", ours, train_x, train_y, settings, None, verbose=0, copies=copies)
    minidl_batches, taken[:] = list(taken), []
    theirs = digits_keras.keras_crnn(features.n_features, np.concatenate(train_x)[None], filters=4, units=4)
    digits_keras.fit_keras(theirs, train_x, train_y, settings, copies)

    per_epoch = len(minidl_batches) // epochs
    # the fake FSDD's "alice": 90 files, 81 after the 10% validation cut, with their copies
    versions = 1 if settings.augmentation.epoch_draws else 1 + settings.augmentation.copies
    assert per_epoch == int(np.ceil(81 * versions / settings.batch_size))
    assert len(minidl_batches) == epochs * per_epoch
    # Keras looks at batch 0 once before training (to build its optimizer and metrics): that look
    # changes nothing, and every batch after it is one it trains on
    peek, trained = taken[0], taken[1:]
    np.testing.assert_array_equal(peek[0], trained[0][0])
    assert len(trained) == len(minidl_batches)
    for (their_x, their_y), (our_x, our_y) in zip(trained, minidl_batches):
        np.testing.assert_array_equal(their_x, our_x)
        np.testing.assert_array_equal(their_y, our_y)
    # the epochs differ (a new batch order, and with epoch draws new versions), so equal lists
    # above mean each epoch was matched, not one epoch repeated
    first, second = minidl_batches[:per_epoch], minidl_batches[per_epoch:2 * per_epoch]
    assert any(a[0].shape != b[0].shape or not np.array_equal(a[0], b[0]) for a, b in zip(first, second))
