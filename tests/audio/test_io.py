"""audio.io.load: formats, mono, resampling, and one AudioError for every damaged file."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

import audio
from audio import AudioError, load
from tests.audio._helpers import fsdd_subset

RATE = 8000


@pytest.fixture()
def tone():
    t = np.arange(RATE) / RATE
    return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.mark.parametrize("suffix,subtype", [(".wav", "PCM_16"), (".wav", "FLOAT"),
                                            (".flac", "PCM_16"), (".ogg", "VORBIS")])
def test_load_formats(tmp_path, tone, suffix, subtype):
    path = tmp_path / f"tone{suffix}"
    soundfile.write(path, tone, RATE, subtype=subtype)
    signal, rate = load(path)
    assert rate == RATE and signal.dtype == np.float32 and signal.shape == tone.shape
    tolerance = 0.05 if subtype == "VORBIS" else 1e-4  # lossy codec
    assert np.max(np.abs(signal - tone)) < tolerance


def test_load_mixes_down_and_keeps_channels(tmp_path, tone):
    path = tmp_path / "stereo.wav"
    soundfile.write(path, np.stack([tone, np.zeros_like(tone)], axis=1), RATE, subtype="FLOAT")
    mono, _ = load(path)
    np.testing.assert_allclose(mono, tone / 2, atol=1e-7)
    both, _ = load(path, mono=False)
    assert both.shape == (RATE, 2)


def test_load_resamples_with_resample_poly(tmp_path, tone):
    path = tmp_path / "tone.wav"
    soundfile.write(path, tone, RATE, subtype="FLOAT")
    signal, rate = load(path, sample_rate=16000)
    assert rate == 16000 and signal.shape == (2 * RATE,) and signal.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(signal))
    assert abs(np.argmax(spectrum) * 16000 / signal.size - 440) < 2  # still 440 Hz
    assert np.max(np.abs(signal)) <= 1.0


def test_load_clips_float_files_to_full_scale(tmp_path):
    path = tmp_path / "loud.wav"
    soundfile.write(path, np.array([0.5, 1.5, -2.0], np.float32), RATE, subtype="FLOAT")
    np.testing.assert_array_equal(load(path)[0], [0.5, 1.0, -1.0])


def _damaged(tmp_path, tone):
    good = tmp_path / "good.wav"
    soundfile.write(good, tone, RATE, subtype="PCM_16")
    data = good.read_bytes()
    files = {
        "missing": (tmp_path / "missing.wav", None),
        "empty": (tmp_path / "empty.wav", b""),
        "truncated": (tmp_path / "truncated.wav", data[: len(data) // 2]),
        "header only": (tmp_path / "header.wav", data[:30]),
        "not audio": (tmp_path / "notes.wav", b"these are my notes, not a recording\n" * 20),
        "corrupt header": (tmp_path / "corrupt.wav", data[:20] + b"\xff" * 16 + data[36:]),
    }
    for path, content in files.values():
        if content is not None:
            path.write_bytes(content)
    zero = tmp_path / "zero.wav"
    soundfile.write(zero, np.zeros(0, np.float32), RATE)
    files["zero samples"] = (zero, None)
    return files


def test_every_damaged_file_raises_audio_error_naming_it(tmp_path, tone):
    for reason, (path, _) in _damaged(tmp_path, tone).items():
        with pytest.raises(AudioError) as caught:
            load(path)
        assert str(path) in str(caught.value), reason


def test_audio_error_reasons(tmp_path, tone):
    files = _damaged(tmp_path, tone)
    with pytest.raises(AudioError, match="no such file"):
        load(files["missing"][0])
    with pytest.raises(AudioError, match="empty file"):
        load(files["empty"][0])
    with pytest.raises(AudioError, match="truncated, its data chunk declares"):
        load(files["truncated"][0])
    with pytest.raises(AudioError, match="zero samples"):
        load(files["zero samples"][0])


def test_truncated_flac_is_an_audio_error(tmp_path, tone):
    path = tmp_path / "tone.flac"
    soundfile.write(path, np.tile(tone, 4), RATE, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match="tone.flac"):
        load(path)


def test_bad_sample_rate_argument():
    with pytest.raises(ValueError, match="sample_rate must be a positive integer .* got -1"):
        load("whatever.wav", sample_rate=-1)


def test_package_exports():
    assert audio.AudioError is AudioError and audio.load is load
    assert issubclass(AudioError, Exception) and not issubclass(AudioError, RuntimeError)


def test_fsdd_files_load_as_8k_mono():
    for path in fsdd_subset(20):
        signal, rate = load(path)
        assert rate == 8000 and signal.ndim == 1 and signal.dtype == np.float32
        assert 0 < np.abs(signal).max() <= 1.0
