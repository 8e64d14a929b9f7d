"""audio.io.load: formats, mono, resampling, and one AudioError for every damaged file."""

from __future__ import annotations

import os
import struct
from pathlib import Path

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


# --- issue 14: bounds checked on the header, messages that say what is wrong, escaped names ---

def _wav_claiming_rate(path, claimed_rate, samples=4000):
    """A PCM_16 WAV of ``samples`` samples (8 KB for 4,000) whose header says ``claimed_rate``."""
    soundfile.write(path, np.zeros(samples, np.float32), RATE, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    assert data[12:16] == b"fmt "   # soundfile writes the fmt chunk first
    struct.pack_into("<II", data, 24, claimed_rate, 2 * claimed_rate & 0xFFFFFFFF)  # rate, bytes/s
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("claimed", [1, 999, 384_001, 10_000_000])
def test_a_header_rate_out_of_range_is_refused_before_decoding(tmp_path, monkeypatch, claimed):
    path = _wav_claiming_rate(tmp_path / "odd.wav", claimed)
    assert path.stat().st_size < 9000
    monkeypatch.setattr(soundfile.SoundFile, "read",
                        lambda *a, **k: pytest.fail("decoded before checking the header"))
    monkeypatch.setattr(audio.io, "resample_poly",
                        lambda *a, **k: pytest.fail("resampled before checking the header"))
    for target in (None, 8000):
        with pytest.raises(AudioError, match=rf"odd.wav: its header claims a sample rate of "
                                             rf"{claimed} Hz, outside the supported 1000-384000"):
            load(path, sample_rate=target)


def test_rates_at_the_limits_load(tmp_path):
    assert (audio.io.MIN_SAMPLE_RATE, audio.io.MAX_SAMPLE_RATE) == (1_000, 384_000)
    for rate in (1_000, 384_000):
        soundfile.write(tmp_path / "edge.wav", np.zeros(100, np.float32), rate)
        assert load(tmp_path / "edge.wav")[1] == rate
    soundfile.write(tmp_path / "edge.wav", np.full(1000, 0.5, np.float32), 1_000)
    signal, rate = load(tmp_path / "edge.wav", sample_rate=384_000)
    assert rate == 384_000 and signal.shape == (384_000,)


def test_max_seconds_is_checked_on_the_header(tmp_path, monkeypatch, tone):
    path = tmp_path / "long.wav"
    soundfile.write(path, np.tile(tone, 3), RATE, subtype="PCM_16")  # 3 s
    assert load(path, max_seconds=3)[0].shape == (3 * RATE,)
    assert load(path, max_seconds=None)[0].shape == (3 * RATE,)   # the default: unbounded
    monkeypatch.setattr(soundfile.SoundFile, "read",
                        lambda *a, **k: pytest.fail("decoded before checking the duration"))
    with pytest.raises(AudioError, match=r"long.wav: it is 3.0 s long, over the limit of 2.5 s"):
        load(path, max_seconds=2.5)


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "600", True])
def test_bad_max_seconds_argument(bad):
    with pytest.raises(ValueError, match="max_seconds must be a positive number"):
        load("whatever.wav", max_seconds=bad)


@pytest.mark.parametrize("bad", [999, 384_001, 10**7])
def test_a_target_rate_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match=rf"sample_rate must be from 1000 to 384000 Hz, got {bad}"):
        load("whatever.wav", sample_rate=bad)


def test_a_flac_header_claiming_2_36_frames_allocates_what_is_there(tmp_path, monkeypatch, tone):
    path = tmp_path / "liar.flac"
    soundfile.write(path, tone, RATE, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    # STREAMINFO (the first metadata block, at 8): total samples are the low 36 bits of 18..26
    field = int.from_bytes(data[21:26], "big")
    data[21:26] = (field | (1 << 36) - 1).to_bytes(5, "big")
    path.write_bytes(bytes(data))
    read = soundfile.SoundFile.read
    asked = []
    monkeypatch.setattr(soundfile.SoundFile, "read",
                        lambda self, frames=-1, **k: asked.append(frames) or read(self, frames, **k))
    with pytest.raises(AudioError, match="liar.flac"):
        load(path)
    assert asked and all(0 < frames <= 1 << 18 for frames in asked)  # never all 2**36 at once
    with pytest.raises(AudioError, match=r"liar.flac: it is \d+.\d s long, over the limit of 600 s"):
        load(path, max_seconds=600)


def test_a_directory_says_it_is_a_directory(tmp_path):
    (tmp_path / "take.wav").mkdir()
    with pytest.raises(AudioError, match="take.wav: it is a directory, not an audio file"):
        load(tmp_path / "take.wav")


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    os.mkfifo(tmp_path / "pipe.wav")
    with pytest.raises(AudioError, match=r"pipe.wav: it is a named pipe \(FIFO\)"):
        load(tmp_path / "pipe.wav")


def test_an_unreadable_file_says_permission_denied(tmp_path, monkeypatch, tone):
    path = tmp_path / "locked.wav"
    soundfile.write(path, tone, RATE)
    path.chmod(0)
    if os.geteuid() == 0:   # root reads any file: make open() answer as it would for others
        def refuse(name, *args, **kwargs):
            raise PermissionError(13, "Permission denied", str(name))
        monkeypatch.setattr(audio.io, "open", refuse, raising=False)
    try:
        with pytest.raises(AudioError) as caught:
            load(path)
    finally:
        path.chmod(0o644)
    message = str(caught.value)
    assert "locked.wav: permission denied" in message and "fetch it again" not in message


def test_printable_escapes_what_could_forge_a_line_or_reach_the_terminal():
    from audio.io import printable
    assert printable("7_jackson_32.wav") == "7_jackson_32.wav"
    assert printable(Path("dir") / "café ünï 数字.wav") == "dir/café ünï 数字.wav"
    assert printable("a\nb\rc\td") == "a\\nb\\rc\\td"
    assert printable("\x1b[31mred\x1b[0m") == "\\x1b[31mred\\x1b[0m"
    assert printable("left\u202eright\u200b") == "left\\u202eright\\u200b"
    assert printable("back\\slash") == "back\\\\slash"   # unambiguous: one text, one name
    assert printable(b"raw\xff.wav") == "raw\\xff.wav"   # an undecodable byte as itself
    assert printable(os.fsdecode(b"raw\xff.wav")) == "raw\\xff.wav"
    assert printable("\x00\x7f\x85") == "\\x00\\x7f\\x85"
    assert printable("\U000e0001") == "\\U000e0001"
    for text in ("a\nb", "\x1b]0;title\x07", "\u2028x", "\x9b31m"):
        escaped = printable(text)
        assert escaped.isprintable() and "\n" not in escaped and "\x1b" not in escaped


@pytest.mark.parametrize("damage", ["missing", "not audio", "directory"])
def test_audio_errors_escape_the_file_name(tmp_path, damage):
    path = tmp_path / "evil\n\x1b[2Jminidl-digits: ok.wav"
    if damage == "not audio":
        path.write_bytes(b"not a recording " * 10)
    elif damage == "directory":
        path.mkdir()
    with pytest.raises(AudioError) as caught:
        load(path)
    message = str(caught.value)
    assert "\n" not in message and "\x1b" not in message, message
    assert "evil\\n\\x1b[2Jminidl-digits: ok.wav" in message
