"""benchmarks/digits_keras.py: the Keras anchor of a recipe has minidl's CRNN (same parameter count,
same outputs for the same weights)."""
from __future__ import annotations

import numpy as np
import pytest

from minidl.apps import digits

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


def test_predictions_come_back_in_the_given_order(rng):
    net = digits_keras.keras_crnn(N_FEATURES, None, filters=4, units=4)
    features = [rng.normal(size=(n, N_FEATURES)).astype(np.float32) for n in (12, 3, 20, 7, 3)]
    one_by_one = np.concatenate([np.asarray(net.predict_on_batch(f[None])) for f in features])
    np.testing.assert_allclose(digits_keras.predict_keras(net, features, batch_size=2), one_by_one,
                               rtol=0, atol=1e-5)
