"""audio.stream.StreamingMFCC: any chunking gives mfcc of the whole signal."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio.features import log_mel_frames, mfcc, mfcc_options
from audio.stream import StreamingMFCC

RATE = 8000


def _signal(samples: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / RATE
    return (0.3 * np.sin(2 * np.pi * 300 * t) * np.hanning(samples)
            + 0.01 * rng.normal(size=samples)).astype(np.float32)


def _stream(stream: StreamingMFCC, signal: np.ndarray, sizes: list[int]) -> np.ndarray:
    pieces, start = [], 0
    for size in sizes:
        out = stream.push(signal[start:start + size])
        assert out.shape[1:] == (stream.width,)
        pieces.append(out)
        start += size
    pieces.append(stream.push(signal[start:]))
    pieces.append(stream.flush())
    return np.concatenate(pieces)


def _assert_same(streamed: np.ndarray, whole: np.ndarray) -> None:
    assert streamed.shape == whole.shape
    # chunked matrix products may round differently in the last float32 bit
    np.testing.assert_allclose(streamed, whole, rtol=1e-5, atol=1e-5 * np.ptp(whole))


CONFIGS = [
    ("htk", {}),
    ("librosa", {"top_db": math.inf, "n_fft": 256, "hop_length": 80, "n_mels": 40}),
    ("librosa", {"top_db": math.inf}),
    ("htk", {"pre_emphasis": 0.0, "window": "hamming", "hop_length": 33}),
]


@settings(max_examples=50, deadline=None)
@given(samples=st.integers(1, 3000),
       sizes=st.lists(st.integers(0, 700), max_size=12),
       config=st.sampled_from(range(len(CONFIGS))),
       kind=st.sampled_from(("mfcc", "logmel")))
def test_any_chunking_equals_the_whole_signal(samples, sizes, config, kind):
    preset, options = CONFIGS[config]
    signal = _signal(samples, seed=samples)
    stream = StreamingMFCC(RATE, preset, kind=kind, **options)
    resolved = mfcc_options(RATE, 13, preset, **options)
    assert stream.width == (resolved.n_mels if kind == "logmel" else 13)
    whole = (log_mel_frames(signal, resolved) if kind == "logmel"
             else mfcc(signal, RATE, preset=preset, **options))
    _assert_same(_stream(stream, signal, sizes), whole)


def test_ten_millisecond_chunks_and_reuse_after_flush():
    signal = _signal(4321)
    stream = StreamingMFCC(RATE)
    first = _stream(stream, signal, [80] * 54)
    second = _stream(stream, signal[:1000], [80] * 12)  # flush reset the state
    _assert_same(first, mfcc(signal, RATE, preset="htk"))
    _assert_same(second, mfcc(signal[:1000], RATE, preset="htk"))


def test_frames_come_out_as_soon_as_they_are_complete():
    stream = StreamingMFCC(RATE)  # htk: 200-sample frames every 80
    assert stream.push(np.zeros(199, np.float32)).shape == (0, 13)
    assert stream.push(np.zeros(1, np.float32)).shape == (1, 13)
    assert stream.push(np.zeros(160, np.float32)).shape == (2, 13)


def test_flush_without_samples_is_empty():
    assert StreamingMFCC(RATE).flush().shape == (0, 13)


def test_refuses_db_clipping_with_a_clear_error():
    with pytest.raises(ValueError, match=r"top_db=80.0 clips against the loudest frame .* "
                                         r"top_db=math.inf"):
        StreamingMFCC(RATE, preset="librosa")
    with pytest.raises(ValueError, match="top_db=60 applies to the dB log of preset 'librosa'"):
        StreamingMFCC(RATE, preset="htk", top_db=60)


def test_push_rejects_a_batch():
    with pytest.raises(ValueError, match=r"chunk must be \(samples,\), got shape \(2, 80\)"):
        StreamingMFCC(RATE).push(np.zeros((2, 80)))


def test_a_log_mel_stream_refuses_an_unknown_kind_and_flushes_empty():
    assert StreamingMFCC(RATE, kind="logmel").flush().shape == (0, 26)
    assert StreamingMFCC(RATE, kind="logmel").push(np.zeros(10, np.float32)).shape == (0, 26)
    with pytest.raises(ValueError, match="StreamingMFCC: kind must be one of 'mfcc', 'logmel', got 'mel'"):
        StreamingMFCC(RATE, kind="mel")
