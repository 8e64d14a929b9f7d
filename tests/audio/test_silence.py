"""audio.silence: the frame-energy rule that trims leading and trailing silence."""

from __future__ import annotations

import numpy as np
import pytest

from audio import connected_digits
from audio.silence import trim_silence

RATE = 8000


def test_trim_silence_rule():
    tone = 0.5 * np.sin(np.arange(4000) * 0.3)
    signal = np.concatenate([np.zeros(1000), tone, np.zeros(3000)]).astype(np.float32)
    kept = trim_silence(signal, RATE, top_db=30, margin_seconds=0.0)
    assert 4000 <= len(kept) <= 4000 + 2 * 160
    assert np.abs(kept).max() == np.abs(signal).max()
    assert len(trim_silence(signal, RATE, margin_seconds=0.02)) >= len(kept) + 2 * 80
    short = np.ones(10, np.float32)
    assert trim_silence(short, RATE) is short                           # shorter than a frame
    silent = np.zeros(1000, np.float32)
    assert len(trim_silence(silent, RATE)) == 1000
    with pytest.raises(ValueError, match=r"trim_silence: signal must be \(samples,\)"):
        trim_silence(np.zeros((2, 100)), RATE)
    with pytest.raises(ValueError, match="top_db must be > 0 dB, got 0"):
        trim_silence(signal, RATE, top_db=0)


def test_trimmed_bounds_are_frame_starts_plus_margin():
    signal = np.zeros(4000, np.float32)
    signal[1234:2345] = 0.5                      # sound in frames 113..233 (hop 10 ms = 80)
    kept = trim_silence(signal, RATE, margin_seconds=0.0)
    # from the start of frame 14, the first with sound, to the end of frame 29, the last
    np.testing.assert_array_equal(kept, signal[80 * 14:80 * 29 + 160])
    assert np.shares_memory(kept, signal)                             # a view, not a copy


def test_still_importable_from_connected_digits():
    assert connected_digits.trim_silence is trim_silence


def test_the_margin_can_stop_at_digital_silence():
    rate = 8000
    word = (0.3 * np.sin(np.arange(2000) * 0.3)).astype(np.float32)
    padded = np.concatenate([np.zeros(4000, np.float32), word, np.zeros(4000, np.float32)])
    kept = trim_silence(padded, rate, top_db=30.0)
    assert len(kept) > len(word) and not kept[0] and not kept[-1]      # the margin holds zeros
    tight = trim_silence(padded, rate, top_db=30.0, keep_digital_silence=False)
    np.testing.assert_array_equal(tight, word[np.flatnonzero(word)[0]:np.flatnonzero(word)[-1] + 1])
    # a recording with low noise where the zeros were keeps its margin
    noisy = padded + 1e-4 * np.random.default_rng(0).standard_normal(len(padded)).astype(np.float32)
    assert len(trim_silence(noisy, rate, top_db=30.0, keep_digital_silence=False)) == len(
        trim_silence(noisy, rate, top_db=30.0))
