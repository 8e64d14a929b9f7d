"""minidl.apps.streaming: the energy endpointer alone, then digits found in a streamed file."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile

import audio
from minidl.apps.digits import Recogniser
from minidl.apps.streaming import EndpointRule, Endpointer, frame_levels, stream_file
from tests.minidl.apps.fake_fsdd import RATE, tone


def segments(levels, rule=EndpointRule()):
    endpointer = Endpointer(rule)
    found = [endpointer.push(level) for level in levels]
    return [s for s in found if s is not None] + ([endpointer.finish()] if endpointer.finish() else [])


def test_a_digit_ends_after_the_minimum_silence():
    levels = [-80.0] * 10 + [-20.0] * 30 + [-80.0] * 25    # 10 ms frames
    endpointer = Endpointer()
    ends = [t for t, level in enumerate(levels) if endpointer.push(level)]
    assert ends == [40 + 20 - 1]            # the 20th silent frame makes 200 ms
    assert segments(levels) == [(10, 40)]


def test_a_click_is_dropped_and_speech_at_the_end_is_closed():
    click = [-80.0] * 10 + [-20.0] * 5 + [-80.0] * 30      # 50 ms < min_speech_ms
    assert segments(click) == []
    open_at_end = [-80.0] * 10 + [-20.0] * 30 + [-80.0] * 3
    assert segments(open_at_end) == [(10, 40)]


def test_the_floor_follows_the_quietest_frame_but_not_below_minus_100_db():
    endpointer = Endpointer(EndpointRule(threshold_db=15.0))
    for level in (-200.0, -90.0):            # -90 dB would be speech above a -200 dB floor
        endpointer.push(level)
    assert endpointer.floor == -100.0 and endpointer.start is None
    endpointer.push(-84.0)                   # 16 dB above the floor: speech starts at frame 2
    assert endpointer.start == 2


def test_frame_levels_are_the_energy_of_each_whole_frame():
    samples = np.concatenate([np.full(80, 0.1), np.full(80, 1.0), np.full(30, 1.0)])
    np.testing.assert_allclose(frame_levels(samples, 80), [-20.0, 0.0], atol=1e-6)
    assert frame_levels(np.zeros(10), 80).shape == (0,)


def test_stream_finds_each_digit_in_a_sequence(trained_cnn, tmp_path):
    gap = (0.003 * np.random.default_rng(0).normal(size=RATE // 3)).astype(np.float32)  # a quiet room
    signal = np.concatenate([gap, tone(3, 0, seed=1), gap, tone(8, 0, seed=2), gap])
    path = tmp_path / "three_eight.wav"
    soundfile.write(path, signal, RATE)
    found = list(stream_file(trained_cnn / "model.npz", path))
    assert [f["digit"] for f in found] == ["3", "8"]
    assert all(0 < f["latency_s"] < 0.5 for f in found)
    assert found[0]["end_s"] < found[1]["start_s"]


def test_stream_of_a_missing_file_is_an_audio_error(trained_cnn, tmp_path):
    with pytest.raises(audio.AudioError):
        list(stream_file(trained_cnn / "model.npz", tmp_path / "missing.wav"))


@pytest.mark.parametrize("chunk_ms", [0, -5, 1e-9, float("nan"), float("inf"), 1e9])
def test_stream_refuses_a_chunk_length_out_of_range(chunk_ms, trained_cnn, tmp_path):
    soundfile.write(tmp_path / "tone.wav", tone(3, 0), RATE)
    with pytest.raises(ValueError, match=r"chunk_ms must be a number of milliseconds from 1 to 60000"):
        list(stream_file(trained_cnn / "model.npz", tmp_path / "tone.wav", chunk_ms=chunk_ms))


def test_stream_takes_a_recogniser_already_loaded(trained_cnn, tmp_path):
    gap = (0.003 * np.random.default_rng(0).normal(size=RATE // 3)).astype(np.float32)
    soundfile.write(tmp_path / "four.wav", np.concatenate([gap, tone(4, 0, seed=1), gap]), RATE)
    recogniser = Recogniser(trained_cnn / "model.npz")
    assert [f["digit"] for f in stream_file(recogniser, tmp_path / "four.wav")] == ["4"]


def test_a_log_mel_model_streams_log_mels(trained_logmel_cnn, tmp_path, monkeypatch):
    gap = (0.003 * np.random.default_rng(0).normal(size=RATE // 3)).astype(np.float32)
    soundfile.write(tmp_path / "three_eight.wav",
                    np.concatenate([gap, tone(3, 0, seed=1), gap, tone(8, 0, seed=2), gap]), RATE)
    recogniser = Recogniser(trained_logmel_cnn / "model.npz")
    widths = []
    real = recogniser.mfcc_probabilities
    monkeypatch.setattr(recogniser, "mfcc_probabilities", lambda frames: widths.extend(f.shape[1] for f in frames)
                        or real(frames))
    found = list(stream_file(recogniser, tmp_path / "three_eight.wav"))
    assert [f["digit"] for f in found] == ["3", "8"]
    assert widths == [26, 26]                               # the model's log mels, not 13 MFCCs
