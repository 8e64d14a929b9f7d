"""minidl.apps.ctc_digits: labels, lengths through the Conv1D, batches, the training loop,
forced alignment, transcribe. The story end to end is tests/examples/test_connected_digits_ctc.py."""

from __future__ import annotations

import ast
import inspect
import json

import numpy as np
import pytest
import soundfile

import minidl as dl
from minidl.apps import ctc_digits
from minidl.apps.ctc_digits import (BLANK, FEATURES, ModelSettings, build_model, decode_labels,
                                    encode, forced_alignment)
from minidl.apps.features import FeatureSettings, signal_features
from minidl.functional.ctc import ctc_loss
from minidl.optimizers import Adam

TINY = ModelSettings(filters=8, kernel_size=3, strides=2, units=8)


def test_labels_put_the_blank_at_zero():
    assert encode("4071") == [5, 1, 8, 2]
    assert decode_labels([5, 1, 8, 2]) == "4071"
    assert decode_labels([]) == ""
    with pytest.raises(ValueError, match="string of digits 0-9, got '4a'"):
        encode("4a")
    with pytest.raises(ValueError, match=r"0 is the blank\), got \[0\]"):
        decode_labels([3, 0])


@pytest.mark.parametrize("strides", [1, 2, 3])
def test_output_lengths_follow_the_mask_through_the_conv(strides):
    model = build_model(4, ModelSettings(filters=4, kernel_size=3, strides=strides, units=3))
    lengths = np.array([10, 7, 1, 4])
    x = np.random.default_rng(0).normal(size=(4, 10, 4)).astype(np.float32)
    mask = np.arange(10)[None, :] < lengths[:, None]
    log_probs, out_lengths = ctc_digits.log_probabilities(model, x, mask)
    assert log_probs.shape == (4, -(-10 // strides), 11)
    np.testing.assert_array_equal(out_lengths, ctc_digits.output_lengths(lengths, strides))
    np.testing.assert_array_equal(out_lengths, np.ceil(lengths / strides).astype(int))
    np.testing.assert_allclose(np.exp(log_probs.data).sum(-1), 1.0, rtol=1e-5)


def test_make_batch_pads_masks_and_encodes():
    features = [np.full((n, 2), n, np.float32) for n in (3, 5, 2)]
    batch = ctc_digits.make_batch(features, ["12", "9", "345"], np.array([0, 1, 2]))
    assert batch.x.shape == (3, 5, 2)
    np.testing.assert_array_equal(batch.mask.sum(1), [3, 5, 2])
    assert np.all(batch.x[0, 3:] == 0) and np.all(batch.x[1] == 5)
    np.testing.assert_array_equal(batch.targets, [[2, 3, 0], [10, 0, 0], [4, 5, 6]])
    np.testing.assert_array_equal(batch.target_lengths, [2, 1, 3])


def test_batches_visit_every_utterance_once_with_little_padding():
    rng = np.random.default_rng(0)
    features = [np.zeros((int(n), 1), np.float32) for n in rng.integers(5, 100, size=103)]
    seen = []
    for batch in ctc_digits.batches(features, ["1"] * 103, 10, np.random.default_rng(1)):
        seen += batch.indices.tolist()
        assert len(batch.indices) <= 10
    assert sorted(seen) == list(range(103))
    ordered = [b.indices for b in ctc_digits.batches(features, ["1"] * 103, 10)]
    lengths = np.array([len(f) for f in features])
    assert all(lengths[a].max() <= lengths[b].min() for a, b in zip(ordered, ordered[1:]))


def synthetic_set(count: int, seed: int = 0):
    """Feature sequences in which digit d is a burst of feature d (plus noise) between quiet
    gaps: a task CTC can learn in a few steps. Returns (features, transcripts)."""
    rng = np.random.default_rng(seed)
    features, transcripts = [], []
    for _ in range(count):
        digits = rng.integers(0, 10, size=rng.integers(1, 4))
        frames = [rng.normal(scale=0.1, size=(3, 10))]
        for d in digits:
            burst = rng.normal(scale=0.1, size=(5, 10))
            burst[:, d] += 2.0
            frames += [burst, rng.normal(scale=0.1, size=(int(rng.integers(2, 5)), 10))]
        features.append(np.concatenate(frames).astype(np.float32))
        transcripts.append("".join(str(d) for d in digits))
    return features, transcripts


def test_training_loop_lowers_the_ctc_loss():
    dl.random.seed(0)
    features, transcripts = synthetic_set(32)
    model = build_model(10, ModelSettings(filters=16, kernel_size=3, strides=1, units=16))
    optimizer = Adam(learning_rate=0.02, clipnorm=5.0)
    batch = ctc_digits.make_batch(features, transcripts, np.arange(32))

    def loss_now() -> float:
        with dl.no_grad():
            log_probs, lengths = ctc_digits.log_probabilities(model, batch.x, batch.mask)
            return float(ctc_loss(log_probs, batch.targets, lengths, batch.target_lengths).data)

    before = loss_now()
    rng = np.random.default_rng(0)
    losses = [ctc_digits.train_epoch(model, optimizer, features, transcripts, 8, rng)
              for _ in range(8)]
    after = loss_now()
    assert np.all(np.isfinite(losses))
    assert after < 0.5 * before, (before, after, losses)
    assert losses[-1] < losses[0]


def test_forced_alignment_reads_the_transcript():
    rng = np.random.default_rng(0)
    log_probs = np.log(rng.dirichlet(np.ones(11), size=12))
    for transcript in ("5", "11", "3070", "909"):
        path = forced_alignment(log_probs, transcript)
        assert path.shape == (12,)
        collapsed = [k for i, k in enumerate(path) if k != BLANK and (i == 0 or k != path[i - 1])]
        assert decode_labels(collapsed) == transcript
    # a confident network: the alignment is its best path
    best = np.array([0, 2, 2, 0, 0, 2, 0, 5, 5, 0])
    confident = np.log(np.full((10, 11), 1e-4))
    confident[np.arange(10), best] = 0.0
    np.testing.assert_array_equal(forced_alignment(confident, "114"), best)
    with pytest.raises(ValueError, match="2 frames cannot hold the 2 digits of '11'"):
        forced_alignment(log_probs[:2], "11")


def test_evaluate_scores_greedy_and_beam():
    dl.random.seed(0)
    features, transcripts = synthetic_set(6)
    model = build_model(10, TINY)
    results = ctc_digits.evaluate(model, features, transcripts, beam_width=4)
    for kind in ("greedy", "beam"):
        assert set(results[kind]) == {"sequence_accuracy", "wer"}
        assert 0.0 <= results[kind]["sequence_accuracy"] <= 1.0 and results[kind]["wer"] >= 0.0
    assert len(results["beam_strings"]) == 6
    score = ctc_digits.score(["12", "345"], ["12", "355"])
    assert score == {"sequence_accuracy": 0.5, "wer": 0.2}


def test_ctc_digits_reads_features_from_apps_features_never_from_apps_digits():
    tree = ast.parse(inspect.getsource(ctc_digits))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert "minidl.apps.features" in imported
    assert not any(name == "minidl.apps.digits" or name.startswith("minidl.apps.digits.") for name in imported)
    assert not any(node.module == "minidl.apps" and any(a.name == "digits" for a in node.names)
                   for node in ast.walk(tree) if isinstance(node, ast.ImportFrom))


def test_the_ctc_features_are_normalised_per_utterance():
    assert FEATURES == FeatureSettings(normalization="utterance")
    assert FEATURES.n_features == 26


def test_a_model_file_without_a_normalization_key_reads_as_per_utterance(tmp_path):
    model = build_model(FEATURES.n_features, TINY)
    features = {key: value for key, value in FEATURES.to_dict().items() if key != "normalization"}
    model.save(tmp_path / "model.npz", metadata={"task": ctc_digits.TASK, "features": features})
    assert ctc_digits.Transcriber(tmp_path / "model.npz").features == FEATURES


def test_transcribe_a_wav_file(tmp_path):
    dl.random.seed(0)
    settings = FEATURES
    model = build_model(settings.n_features, TINY)
    ctc_digits.save(model, tmp_path / "model.npz", settings, TINY)
    t = np.arange(6000) / 16000  # at 16 kHz: transcribe resamples to the model's 8 kHz
    signal = (0.3 * np.sin(2 * np.pi * 440 * t) * (t > 0.1)).astype(np.float32)
    soundfile.write(tmp_path / "tone.wav", signal, 16000)
    text = ctc_digits.transcribe(tmp_path / "model.npz", tmp_path / "tone.wav", beam_width=4)
    assert isinstance(text, str) and (text == "" or text.isdigit())
    # the same as decoding the model's output by hand
    resampled, _ = ctc_digits.audio.load(tmp_path / "tone.wav", sample_rate=8000)
    log_probs = ctc_digits.predict_log_probs(model, [signal_features(resampled, settings)])
    assert text == ctc_digits.decode(log_probs, 4)[0]
    model.save(tmp_path / "plain.npz")
    with pytest.raises(ValueError, match="not a connected-digit CTC model"):
        ctc_digits.transcribe(tmp_path / "plain.npz", tmp_path / "tone.wav")
    with pytest.raises(ctc_digits.audio.AudioError):
        ctc_digits.transcribe(tmp_path / "model.npz", tmp_path / "missing.wav")


@pytest.mark.cupy
def test_train_step_and_decoding_on_the_gpu():
    dl.backend.use("cupy")
    dl.random.seed(0)
    features, transcripts = synthetic_set(8)
    model = build_model(10, TINY)
    batch = ctc_digits.make_batch(features, transcripts, np.arange(8))
    loss = ctc_digits.train_step(model, Adam(1e-2), batch)
    assert np.isfinite(loss)
    assert len(ctc_digits.evaluate(model, features, transcripts, beam_width=2)["beam_strings"]) == 8


# --- a saved model's metadata is checked on load (issue 14) -------------------------------------

def copy_with_config(source, target, change) -> None:
    """Copy the model file ``source`` to ``target`` with ``change(document)`` applied to its JSON."""
    with np.load(source, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    document = json.loads(arrays["config"].tobytes().decode("utf-8"))
    change(document)
    arrays["config"] = np.frombuffer(json.dumps(document).encode("utf-8"), dtype=np.uint8)
    np.savez(target, **arrays)


def features_changed(**values):
    return lambda document: document["metadata"]["features"].update(values)


@pytest.mark.parametrize("change, reason", [
    (lambda document: document.update(metadata=None), "not a connected-digit CTC model"),
    (lambda document: document["metadata"].pop("features"), "features"),
    (lambda document: document["metadata"].update(features=[]), "features"),
    (features_changed(sample_rate=10 ** 7), "sample_rate"),
    (features_changed(sample_rate=1), "sample_rate"),
    (features_changed(sample_rate="fast"), "sample_rate"),
    (features_changed(n_mfcc=10 ** 9), "n_mfcc"),
    (features_changed(n_mfcc=20), "40 features per frame"),
    (features_changed(preset="mel"), "preset"),
    (features_changed(delta_order=-1), "delta_order"),
], ids=["no metadata", "no features", "features a list", "sample_rate 1e7", "sample_rate 1",
        "sample_rate a string", "n_mfcc 1e9", "n_mfcc not the model's", "unknown preset", "delta_order -1"])
def test_transcriber_refuses_bad_metadata_naming_the_file(change, reason, tmp_path):
    ctc_digits.save(build_model(FEATURES.n_features, TINY), tmp_path / "good.npz", FEATURES, TINY)
    copy_with_config(tmp_path / "good.npz", tmp_path / "hostile.npz", change)
    with pytest.raises(dl.saving.ModelFileError) as refused:
        ctc_digits.Transcriber(tmp_path / "hostile.npz")
    assert repr(str(tmp_path / "hostile.npz")) in str(refused.value) and reason in str(refused.value)


def test_transcribe_bounds_the_length_of_a_file(tmp_path):
    ctc_digits.save(build_model(FEATURES.n_features, TINY), tmp_path / "model.npz", FEATURES, TINY)
    soundfile.write(tmp_path / "long.wav", np.zeros(3 * 8000, dtype=np.float32), 8000)
    assert ctc_digits.MAX_TRANSCRIBE_SECONDS == 600
    transcriber = ctc_digits.Transcriber(tmp_path / "model.npz")
    with pytest.raises(ctc_digits.audio.AudioError, match="over the limit of 2 s"):
        transcriber.transcribe_file(tmp_path / "long.wav", max_seconds=2.0)


def test_dataset_features_refuses_log_mels_naming_the_kind():
    class EightKilohertz:  # never asked for its features: the kind is refused first
        sample_rate = 8000

        def features(self, **options):
            raise AssertionError("features read before the kind was checked")
    with pytest.raises(ValueError, match="caches MFCCs only; expected FeatureSettings.kind 'mfcc', got 'logmel'"):
        ctc_digits.dataset_features(EightKilohertz(), FeatureSettings(kind="logmel", normalization="utterance"))
