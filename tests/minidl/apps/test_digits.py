"""minidl.apps.digits: data shaping, the four models, a training run's files, the Recogniser."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile

import audio
import minidl as dl
from minidl import layers
from minidl.apps import digits
from minidl.apps.features import FeatureSettings
from tests.minidl.apps.fake_fsdd import RATE, tone

METRIC_FIELDS = {"model", "split", "test_accuracy", "train_accuracy", "per_class", "confusion_matrix",
                 "training_seconds", "settings", "features", "versions", "history", "parameters"}


def test_cnn_run_writes_every_file_and_learns_the_tones(trained_cnn):
    for name in ("model.npz", "metrics.json", "confusion.png", "training_curves.png"):
        assert (trained_cnn / name).is_file()
    metrics = json.loads((trained_cnn / "metrics.json").read_text())
    assert METRIC_FIELDS <= set(metrics)
    assert np.array(metrics["confusion_matrix"]).sum() == 100      # takes 0-4 of 2 speakers x 10 digits
    assert metrics["test_accuracy"] > 0.8
    assert len(metrics["history"]["loss"]) == 12 and "val_accuracy" in metrics["history"]


@pytest.mark.parametrize("kind", ["lstm", "crnn", "gapcnn"])
def test_variable_length_models_train_end_to_end(kind, fake_data, tmp_path):
    settings = digits.TrainSettings(model=kind, epochs=1)
    metrics = digits.train(settings, tmp_path, fsdd=audio.fsdd.FSDD(fake_data), verbose=0)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert METRIC_FIELDS <= set(saved) and saved["model"] == kind and saved["frames"] is None
    assert saved["test_accuracy"] == metrics["test_accuracy"]
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    recogniser = digits.Recogniser(tmp_path / "model.npz")   # the saved file loads and predicts
    assert recogniser.kind == kind and recogniser.frames is None
    label, probability = recogniser.classify(tone(3, 0, seed=1))
    assert label in digits.LABELS and 0 < probability <= 1


def test_gapcnn_maps_any_length_to_ten_probabilities():
    model = digits.build_model("gapcnn", FeatureSettings())
    assert [type(layer).__name__ for layer in model.layers] == [
        "Masking", "Normalization", "Conv1D", "Conv1D", "GlobalMaxPooling1D", "Dropout", "Dense"]
    rng = np.random.default_rng(0)
    for frames in (5, 40):
        p = model.predict(rng.normal(size=(3, frames, 26)).astype(np.float32))
        assert p.shape == (3, 10)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    # 26·5·64 + 64 and 64·5·64 + 64 for the convolutions, 64·10 + 10 for the classifier
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 8384 + 20544 + 650


def _pattern_clips(rng, n: int, length: int = 12):
    """n clips of two classes of (length, 26) frames: class 1 has a loud bump in coefficients
    0-3 in its middle 4 frames, class 0 in coefficients 10-13; low noise elsewhere, so every
    frame is real (no frame is all zeros)."""
    clips, labels = [], rng.integers(0, 2, n)
    for label in labels:
        clip = rng.normal(0.0, 0.1, size=(length, 26)).astype(np.float32)
        first = 0 if label == 1 else 10
        clip[length // 2 - 2:length // 2 + 2, first:first + 4] += 3.0
        clips.append(clip)
    return clips, labels


def _in_silence(clip: np.ndarray, before: int, after: int) -> np.ndarray:
    """``clip`` with ``before`` and ``after`` all-zero frames around it (what Masking masks)."""
    return np.pad(clip, ((before, after), (0, 0)))


def test_gapcnn_learns_and_does_not_care_where_the_pattern_sits_in_the_padding():
    dl.random.seed(0)
    rng = np.random.default_rng(0)
    train_x, train_y = _pattern_clips(rng, 96)
    model = digits.build_model("gapcnn", FeatureSettings())
    digits.adapt_normalization(model, train_x)
    settings = digits.TrainSettings(model="gapcnn", epochs=6, batch_size=16, seed=0)
    history = digits.fit_model("gapcnn", model, train_x, train_y, settings, None, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    test_x, test_y = _pattern_clips(rng, 20)
    assert np.mean(digits.predict_probabilities("gapcnn", model, test_x, None).argmax(1) == test_y) >= 0.9

    # the same clip 4 frames from either end of a short clip, and deep inside a long one:
    # every real frame sees the same values in its 9-frame field, and the rest is padding
    clip = test_x[0]
    short, long = _in_silence(clip, 4, 4), _in_silence(clip, 37, 41)
    p_short, p_long = (model.predict(x[None]) for x in (short, long))
    np.testing.assert_allclose(p_short, p_long, rtol=1e-5, atol=1e-6)

    # that holds because the mask reaches the pooling: without it the long clip's padding
    # frames (which the short one lacks) would win some filter's maximum
    x = dl.Tensor(long[None])
    for layer in model.layers[:4]:
        x = layer(x)
    real = (np.arange(len(long)) >= 37) & (np.arange(len(long)) < 37 + len(clip))
    np.testing.assert_array_equal(x.mask[0], real)
    frames = x.numpy()[0]
    pooled = model.layers[4](x).numpy()[0]
    np.testing.assert_allclose(pooled, frames[real].max(axis=0), rtol=1e-6)
    assert np.any(frames.max(axis=0) > pooled + 1e-3)


def test_same_seed_gives_the_same_model_and_accuracy(fake_data, tmp_path):
    runs = []
    for name in ("a", "b"):
        metrics = digits.train(digits.TrainSettings(model="cnn", epochs=1, seed=3), tmp_path / name,
                               fsdd=audio.fsdd.FSDD(fake_data), verbose=0)
        runs.append((metrics["test_accuracy"], dl.load_model(tmp_path / name / "model.npz").get_weights()))
    assert runs[0][0] == runs[1][0]
    for first, second in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(first, second)


def test_recogniser_classifies_a_signal_and_predict_files_names_a_bad_one(trained_cnn, tmp_path):
    recogniser = digits.Recogniser(trained_cnn / "model.npz")
    assert recogniser.kind == "cnn" and recogniser.features == FeatureSettings()
    label, probability = recogniser.classify(tone(7, 0, seed=5))
    assert label == "7" and 0 < probability <= 1
    good, broken = tmp_path / "seven.wav", tmp_path / "broken.wav"
    soundfile.write(good, tone(7, 0, seed=5), RATE)
    broken.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt not really")
    first, second = digits.predict_files(trained_cnn / "model.npz", [good, broken])
    assert first["digit"] == "7" and first["path"] == str(good)
    assert set(second) == {"path", "error"} and "broken.wav" in second["error"]


def test_a_log_mel_model_keeps_its_kind_in_the_file_and_predicts_with_it(trained_logmel_cnn, fake_data):
    from minidl.saving import read_metadata
    path = trained_logmel_cnn / "model.npz"
    assert read_metadata(path)["features"]["kind"] == "logmel"
    recogniser = digits.Recogniser(path)
    assert recogniser.features == FeatureSettings(kind="logmel")
    assert recogniser.model.built_input_shape[-1] == 52               # 26 log mels + their deltas
    metrics = json.loads((trained_logmel_cnn / "metrics.json").read_text())
    assert metrics["features"]["kind"] == "logmel" and metrics["test_accuracy"] > 0.8
    assert recogniser.classify(tone(7, 0, seed=5))[0] == "7"
    fsdd = audio.fsdd.FSDD(fake_data)
    _, test = fsdd.split("official")
    p = recogniser.recording_probabilities(fsdd, test[:20], progress=False)
    assert np.mean(p.argmax(axis=1) == [r.digit for r in test[:20]]) > 0.8


def test_recogniser_refuses_a_model_without_digit_metadata(tmp_path):
    model = dl.Sequential([layers.Dense(2, input_shape=(3,))])
    model.save(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="not a spoken-digit model"):
        digits.Recogniser(tmp_path / "other.npz")


def test_coverage_length_holds_the_stated_share():
    lengths = np.arange(1, 101)
    assert digits.coverage_length(lengths, 0.98) == 99
    assert np.mean(lengths <= digits.coverage_length(lengths, 0.98)) >= 0.98


def test_fixed_length_pads_and_cuts_at_the_end():
    a, b = np.ones((3, 2)), np.full((6, 2), 2.0)
    out = digits.fixed_length([a, b], 4)
    assert out.shape == (2, 4, 2)
    np.testing.assert_array_equal(out[0, 3], 0)
    np.testing.assert_array_equal(out[1], 2.0)


def test_padded_batches_pad_each_batch_to_its_own_longest():
    features = [np.ones((n, 3)) for n in (5, 2, 9, 3)]
    batches = digits.PaddedBatches(features, np.arange(4), batch_size=2, shuffle=False)
    shapes = sorted(batches[i][0].shape for i in range(len(batches)))
    assert shapes == [(2, 3, 3), (2, 9, 3)]


def test_recurrent_predictions_come_back_in_the_order_given():
    rng = np.random.default_rng(0)
    features = [rng.normal(size=(n, 26)).astype(np.float32) for n in (9, 3, 14, 5, 7)]
    model = digits.build_lstm(26, units=4)
    together = digits.predict_probabilities("lstm", model, features, None, batch_size=2)
    alone = np.concatenate([digits.predict_probabilities("lstm", model, [f], None) for f in features])
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kind", digits.MODEL_KINDS)
def test_build_model_normalises_in_the_model_only_for_global_features(kind):
    def has_normalization(features):
        model = digits.build_model(kind, features, frames=20)
        return any(isinstance(layer, layers.Normalization) for layer in model.layers)
    assert has_normalization(FeatureSettings())
    assert not has_normalization(FeatureSettings(normalization="utterance"))


def test_build_model_names_the_kinds_it_knows():
    with pytest.raises(ValueError, match="unknown model 'rnn'; choose one of cnn, lstm, crnn, gapcnn"):
        digits.build_model("rnn", FeatureSettings())


def test_adapt_normalization_learns_the_training_frames():
    frames = [np.full((4, 26), 2.0, np.float32), np.full((6, 26), 4.0, np.float32)]
    model = digits.build_crnn(26)
    digits.adapt_normalization(model, frames)
    normalization = next(layer for layer in model.layers if isinstance(layer, layers.Normalization))
    np.testing.assert_allclose(normalization.mean.numpy().ravel(), 3.2, rtol=1e-5)


# --- a saved model's metadata is checked on load (issue 14) -------------------------------------

def copy_with_config(source, target, change) -> None:
    """Copy the model file ``source`` to ``target`` with ``change(document)`` applied to its JSON."""
    with np.load(source, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    document = json.loads(arrays["config"].tobytes().decode("utf-8"))
    change(document)
    arrays["config"] = np.frombuffer(json.dumps(document).encode("utf-8"), dtype=np.uint8)
    np.savez(target, **arrays)


def metadata(**values):
    return lambda document: document["metadata"].update(values)


def features(**values):
    return lambda document: document["metadata"]["features"].update(values)


def popped(key):
    return lambda document: document["metadata"].pop(key)


BAD_METADATA = {
    "none": (lambda document: document.update(metadata=None), "not a spoken-digit model"),
    "a list": (lambda document: document.update(metadata=[1, 2]), "not a spoken-digit model"),
    "wrong task": (metadata(task="connected-digits-ctc"), "not a spoken-digit model"),
    "no model kind": (popped("model"), "model kind"),
    "unknown model kind": (metadata(model="rnn"), "model kind 'rnn'"),
    "another kind's shape": (metadata(model="lstm"), "input shape"),
    "no features": (popped("features"), "features"),
    "features a list": (metadata(features=[]), "features"),
    "sample_rate 1e7": (features(sample_rate=10 ** 7), "sample_rate"),
    "sample_rate 1e7 as a float": (features(sample_rate=1e7), "sample_rate"),
    "sample_rate 1": (features(sample_rate=1), "sample_rate"),
    "sample_rate 8000.5": (features(sample_rate=8000.5), "sample_rate"),
    "sample_rate a string": (features(sample_rate="fast"), "sample_rate"),
    "n_mfcc 1e9": (features(n_mfcc=10 ** 9), "n_mfcc"),
    "n_mfcc not the model's": (features(n_mfcc=20), "40 features per frame"),
    "unknown preset": (features(preset="mel"), "preset"),
    "delta_order 7": (features(delta_order=7), "delta_order"),
    "unknown normalization": (features(normalization="loud"), "normalization"),
    "negative trim_db": (features(trim_db=-3), "trim_db"),
    "frames 0": (metadata(frames=0), "frames"),
    "frames -5": (metadata(frames=-5), "frames"),
    "frames 1e9": (metadata(frames=10 ** 9), "frames"),
    "frames a string": (metadata(frames="x"), "frames"),
    "frames 2.5": (metadata(frames=2.5), "frames"),
    "frames true": (metadata(frames=True), "frames"),
    "frames null for a cnn": (metadata(frames=None), "frames"),
    "frames not the model's": (metadata(frames=10), "input shape"),
    "nine labels": (metadata(labels=[str(d) for d in range(9)]), "labels"),
    "eleven labels": (metadata(labels=[str(d) for d in range(11)]), "labels"),
    "labels a string": (metadata(labels="0123456789"), "labels"),
    "labels not strings": (metadata(labels=list(range(10))), "labels"),
    "an empty label": (metadata(labels=[""] + [str(d) for d in range(1, 10)]), "labels"),
    "a long label": (metadata(labels=["x" * 1000] + [str(d) for d in range(1, 10)]), "labels"),
    "an ANSI label": (metadata(labels=["\x1b[31m0"] + [str(d) for d in range(1, 10)]), "labels"),
    "a newline label": (metadata(labels=["0\nfake"] + [str(d) for d in range(1, 10)]), "labels"),
}


@pytest.mark.parametrize("case", BAD_METADATA)
def test_recogniser_refuses_bad_metadata_naming_the_file(case, trained_cnn, tmp_path):
    change, reason = BAD_METADATA[case]
    path = tmp_path / "hostile.npz"
    copy_with_config(trained_cnn / "model.npz", path, change)
    with pytest.raises(dl.saving.ModelFileError) as refused:
        digits.Recogniser(path)
    message = str(refused.value)
    assert repr(str(path)) in message and reason in message
    assert "\x1b" not in message and "\n" not in message


def test_a_model_file_without_labels_reads_the_digits(trained_cnn, tmp_path):
    copy_with_config(trained_cnn / "model.npz", tmp_path / "old.npz", popped("labels"))
    assert digits.Recogniser(tmp_path / "old.npz").labels == digits.LABELS


def test_predict_files_bounds_the_length_of_a_file(trained_cnn, tmp_path):
    path = tmp_path / "two_seconds.wav"
    soundfile.write(path, np.concatenate([tone(4, 0)] * 6), RATE)
    recogniser = digits.Recogniser(trained_cnn / "model.npz")
    assert recogniser.predict_file(path)["digit"] == "4"
    with pytest.raises(audio.AudioError, match="over the limit of 1 s"):
        recogniser.predict_file(path, max_seconds=1.0)
    [result] = digits.predict_files(recogniser, [path], max_seconds=1.0)
    assert set(result) == {"path", "error"}


def test_recogniser_refuses_a_model_with_more_outputs_than_labels(tmp_path):
    model = digits.build_cnn(20, 26, classes=11)
    digits.save_model(model, tmp_path / "eleven.npz", "cnn", FeatureSettings(), 20)
    with pytest.raises(dl.saving.ModelFileError, match=r"eleven.npz.*\(None, 11\).*implies 10 "):
        digits.Recogniser(tmp_path / "eleven.npz")
