"""Load audio files (WAV, FLAC, OGG) into float32 signals, mono, at a chosen sample rate.

Decoding is soundfile's (libsndfile). Everything that can go wrong with a file - missing, empty,
truncated, corrupt, not audio at all, or holding no samples - is raised as one exception type,
AudioError, whose message names the path and the reason. Nothing is returned half-loaded.
"""

from __future__ import annotations

import os
import struct
from math import gcd
from pathlib import Path

import numpy as np
import soundfile
from scipy.signal import resample_poly


class AudioError(Exception):
    """A file could not be loaded as audio; the message names the file and the reason."""


def load(
    path: str | os.PathLike, sample_rate: int | None = None, mono: bool = True
) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 samples in [-1, 1].

    Args:
        path: a WAV, FLAC or OGG file.
        sample_rate: Hz to resample to (scipy.signal.resample_poly); None keeps the file's rate.
        mono: average the channels into one if True.
    Returns:
        (signal, sample_rate): signal is float32 numpy, (samples,) if mono else
        (samples, channels); sample_rate is the rate of the returned signal in Hz.
    Raises:
        AudioError: the file is missing, empty, truncated, corrupt, not audio, or has no samples.
        ValueError: sample_rate is not a positive integer.
    """
    if sample_rate is not None and (
        isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer))
        or sample_rate <= 0
    ):
        raise ValueError(f"load: sample_rate must be a positive integer (Hz) or None, "
                         f"got {sample_rate!r}")
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"cannot load {path}: no such file")
    try:
        with soundfile.SoundFile(str(path)) as sound:
            expected = sound.frames
            file_rate = sound.samplerate
            kind = sound.format
            samples = sound.read(dtype="float32", always_2d=True)
    except (RuntimeError, ValueError, TypeError, OSError, EOFError) as error:
        # soundfile's LibsndfileError is a RuntimeError; a damaged header can also surface as
        # ValueError or OSError from its wrappers. All of them mean the same thing here.
        reason = "empty file" if path.stat().st_size == 0 else str(error)
        raise AudioError(f"cannot decode {path} as audio ({reason}); if it came from a "
                         f"download, delete it and fetch it again") from error
    if samples.shape[0] != expected:
        raise AudioError(f"cannot load {path}: truncated, the header promises {expected} "
                         f"samples but only {samples.shape[0]} could be read")
    if kind == "WAV":
        _check_wav_complete(path)
    if samples.shape[0] == 0:
        raise AudioError(f"cannot load {path}: it holds zero samples")
    if not np.all(np.isfinite(samples)):
        raise AudioError(f"cannot load {path}: it holds NaN or infinite samples")

    signal = samples.mean(axis=1, dtype=np.float32) if mono else samples
    if sample_rate is not None and sample_rate != file_rate:
        common = gcd(int(sample_rate), int(file_rate))
        signal = resample_poly(signal, int(sample_rate) // common, int(file_rate) // common,
                               axis=0).astype(np.float32)
        file_rate = int(sample_rate)
    # Float files may hold values past full scale, and resampling rings past it too.
    signal = np.clip(signal, -1.0, 1.0, out=signal)
    return signal, int(file_rate)


def _check_wav_complete(path: Path) -> None:
    """Raise AudioError if a RIFF/WAVE file's data chunk is shorter than its header says.

    libsndfile quietly shortens a truncated WAV to the bytes it finds, so a file cut off by a
    failed download would load as a shorter signal; the header's chunk sizes tell the truth.
    """
    size = path.stat().st_size
    with open(path, "rb") as file:
        head = file.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return  # RF64, W64 and friends: libsndfile checked what it could
        offset = 12
        while offset + 8 <= size:
            file.seek(offset)
            chunk_id, chunk_size = struct.unpack("<4sI", file.read(8))
            if chunk_id == b"data":
                available = size - offset - 8
                # 0 and 0xFFFFFFFF are placeholders written by streaming encoders
                if chunk_size not in (0, 0xFFFFFFFF) and chunk_size > available:
                    raise AudioError(f"cannot load {path}: truncated, its data chunk declares "
                                     f"{chunk_size} bytes but only {available} are present")
                return
            offset += 8 + chunk_size + (chunk_size & 1)  # chunks are padded to even sizes
