"""Load audio files (WAV, FLAC, OGG) into float32 signals, mono, at a chosen sample rate.

Decoding is soundfile's (libsndfile). Everything that can go wrong with a file - missing, not a
regular file, unreadable, empty, truncated, corrupt, not audio at all, holding no samples, or
claiming a sample rate or a length past the limits - is raised as one exception type,
AudioError, whose message names the path (escaped by ``printable``) and the reason. Nothing is
returned half-loaded, and the limits are checked on the header, before any sample is decoded
or resampled: a small file cannot make load allocate gigabytes.
"""

from __future__ import annotations

import math
import os
import stat
import struct
from math import gcd
from pathlib import Path

import numpy as np
import soundfile
from scipy.signal import resample_poly

#: the lowest sample rate, Hz, that load accepts in a file's header or as its argument
MIN_SAMPLE_RATE = 1_000
#: the highest sample rate, Hz, that load accepts in a file's header or as its argument
MAX_SAMPLE_RATE = 384_000
#: frames decoded per read: memory grows with what the file really holds, not what it claims
_BLOCK_FRAMES = 1 << 18

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


class AudioError(Exception):
    """A file could not be loaded as audio; the message names the file and the reason."""


def printable(name: str | bytes | os.PathLike) -> str:
    """``name`` safe to print on one terminal line: control characters escaped as repr does.

    Printable characters (letters of any script, digits, punctuation, space) stay as they are;
    newlines, carriage returns, tabs, ESC (the start of an ANSI escape sequence), other control
    and format characters (bidirectional overrides, zero-width spaces) become ``\\n``, ``\\r``,
    ``\\t``, ``\\x1b``, ``\\u202e``. A byte that is not valid in the file system's encoding
    (a lone surrogate after os.fsdecode) becomes ``\\xNN``, the byte itself. A backslash is
    doubled, as in repr, so that the escaped text names exactly one file.

        printable("evil\\n\\x1b[31m.wav")   ->  'evil\\\\n\\\\x1b[31m.wav'  (prints: evil\\n\\x1b[31m.wav)

    Args:
        name: a path or any text (bytes are decoded with os.fsdecode).
    Returns:
        The escaped text, without surrounding quotes.
    """
    text = os.fsdecode(name) if isinstance(name, (bytes, os.PathLike)) else str(name)
    out = []
    for char in text:
        code = ord(char)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif 0xDC80 <= code <= 0xDCFF:   # os.fsdecode's surrogateescape of an undecodable byte
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


def load(
    path: str | os.PathLike, sample_rate: int | None = None, mono: bool = True, *,
    max_seconds: float | None = None,
) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 samples in [-1, 1].

    The header is read first: a sample rate outside MIN_SAMPLE_RATE..MAX_SAMPLE_RATE, or a
    duration over ``max_seconds``, is refused before anything is decoded or resampled.

    Args:
        path: a WAV, FLAC or OGG file.
        sample_rate: Hz to resample to (scipy.signal.resample_poly), an integer from
            MIN_SAMPLE_RATE to MAX_SAMPLE_RATE; None keeps the file's rate.
        mono: average the channels into one if True.
        max_seconds: the longest file accepted, in seconds; None accepts any length.
    Returns:
        (signal, sample_rate): signal is float32 numpy, (samples,) if mono else
        (samples, channels); sample_rate is the rate of the returned signal in Hz.
    Raises:
        AudioError: the file is missing, a folder or other non-file, unreadable, empty,
            truncated, corrupt, not audio, has no samples, or its rate or length is out of
            bounds.
        ValueError: sample_rate is not an integer in range, or max_seconds is not positive.
    """
    if sample_rate is not None and (
        isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer))
        or sample_rate <= 0
    ):
        raise ValueError(f"load: sample_rate must be a positive integer (Hz) or None, "
                         f"got {sample_rate!r}")
    if sample_rate is not None and not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise ValueError(f"load: sample_rate must be from {MIN_SAMPLE_RATE} to "
                         f"{MAX_SAMPLE_RATE} Hz, got {sample_rate}")
    if max_seconds is not None and (
        isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float, np.number))
        or not math.isfinite(max_seconds) or max_seconds <= 0
    ):
        raise ValueError(f"load: max_seconds must be a positive number of seconds or None, "
                         f"got {max_seconds!r}")
    path = Path(path)
    where = printable(path)
    _check_readable_file(path, where)
    try:
        with soundfile.SoundFile(str(path)) as sound:
            expected = sound.frames
            file_rate = sound.samplerate
            kind = sound.format
            _check_header(where, file_rate, expected, max_seconds)
            blocks = []
            read = 0
            finite = True
            # Block by block: a header that claims more frames than the file holds (FLAC's
            # STREAMINFO can claim 2**36) must not allocate them all up front, as one read does.
            while read < expected:
                block = sound.read(min(_BLOCK_FRAMES, expected - read), dtype="float32",
                                   always_2d=True)
                if block.shape[0] == 0:
                    break
                read += block.shape[0]
                finite = finite and bool(np.all(np.isfinite(block)))
                blocks.append(block.mean(axis=1, dtype=np.float32) if mono else block)
    except (RuntimeError, ValueError, TypeError, OSError, EOFError) as error:
        # soundfile's LibsndfileError is a RuntimeError; a damaged header can also surface as
        # ValueError or OSError from its wrappers. All of them mean the same thing here.
        reason = "empty file" if path.stat().st_size == 0 else printable(str(error))
        raise AudioError(f"cannot decode {where} as audio ({reason}); if it came from a "
                         f"download, delete it and fetch it again") from error
    if read != expected:
        raise AudioError(f"cannot load {where}: truncated, the header promises {expected} "
                         f"samples but only {read} could be read")
    if kind == "WAV":
        _check_wav_complete(path, where)
    if read == 0:
        raise AudioError(f"cannot load {where}: it holds zero samples")
    if not finite:
        raise AudioError(f"cannot load {where}: it holds NaN or infinite samples")
    signal = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)

    if sample_rate is not None and sample_rate != file_rate:
        common = gcd(int(sample_rate), int(file_rate))
        signal = resample_poly(signal, int(sample_rate) // common, int(file_rate) // common,
                               axis=0).astype(np.float32)
        file_rate = int(sample_rate)
    # Float files may hold values past full scale, and resampling rings past it too.
    signal = np.clip(signal, -1.0, 1.0, out=signal)
    return signal, int(file_rate)


def _check_readable_file(path: Path, where: str) -> None:
    """Raise AudioError unless ``path`` is a regular file this process may read.

    Each reason gets its own message: "no such file" for a folder, or "delete it and fetch it
    again" for a file the user may not read, would send the user the wrong way.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise AudioError(f"cannot load {where}: no such file") from None
    except PermissionError:
        raise AudioError(f"cannot load {where}: permission denied on a folder of its path; "
                         f"check the folders' permissions") from None
    except OSError as error:   # a name too long, a loop of symbolic links, a file as a folder
        raise AudioError(f"cannot load {where}: {printable(error.strerror or str(error))}") \
            from None
    if stat.S_ISDIR(mode):
        raise AudioError(f"cannot load {where}: it is a directory, not an audio file")
    if not stat.S_ISREG(mode):
        kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a socket"
                if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or
                stat.S_ISBLK(mode) else "not a regular file")
        # Reading a FIFO would wait for a writer, and a device may never end.
        raise AudioError(f"cannot load {where}: it is {kind}, not an audio file")
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        raise AudioError(f"cannot load {where}: permission denied; the file exists but this "
                         f"user may not read it (check its permissions)") from None


def _check_header(where: str, file_rate: int, frames: int, max_seconds: float | None) -> None:
    """Raise AudioError if the header's rate or duration is past the limits of load."""
    if not MIN_SAMPLE_RATE <= file_rate <= MAX_SAMPLE_RATE:
        raise AudioError(f"cannot load {where}: its header claims a sample rate of "
                         f"{file_rate} Hz, outside the supported {MIN_SAMPLE_RATE}-"
                         f"{MAX_SAMPLE_RATE} Hz (a damaged or hostile header?)")
    if max_seconds is not None and frames > max_seconds * file_rate:
        raise AudioError(f"cannot load {where}: it is {frames / file_rate:.1f} s long, over "
                         f"the limit of {max_seconds:g} s")


def _check_wav_complete(path: Path, where: str) -> None:
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
                    raise AudioError(f"cannot load {where}: truncated, its data chunk declares "
                                     f"{chunk_size} bytes but only {available} are present")
                return
            offset += 8 + chunk_size + (chunk_size & 1)  # chunks are padded to even sizes


__all__ = ["AudioError", "MAX_SAMPLE_RATE", "MIN_SAMPLE_RATE", "load", "printable"]
