"""Streaming MFCC: push chunks of any size, get the frames that are complete, the same frames
mfcc would compute from the whole signal.

    stream = StreamingMFCC(8000, preset="htk")
    for chunk in microphone_chunks:            # e.g. 80 samples = 10 ms
        frames = stream.push(chunk)            # (new_frames, 13), often 0 or 1 rows
        ...
    last = stream.flush()                      # the zero-padded tail, then ready for the next one

``kind="logmel"`` stops each frame at the log mels (audio.features.frames_to_log_mel), before
the DCT: (new_frames, n_mels) instead of (new_frames, n_mfcc), equal to log_mel_frames of the
whole signal.

What cannot stream: a dB log with ``top_db`` clips every value against the loudest one of the
whole utterance, which is unknown until the end. StreamingMFCC refuses it with ValueError;
pass ``top_db=math.inf`` (no clipping) with preset "librosa", or use preset "htk" (natural log).
"""

from __future__ import annotations

import math

import numpy as np

from audio.backend import Array, array_module
from audio.features import (MFCCOptions, frame_signal, frames_to_log_mel, frames_to_mfcc, mfcc_options,
                            num_frames)

#: what a stream's frames hold: MFCCs (frames_to_mfcc) or the log mels before the DCT
KINDS = ("mfcc", "logmel")


class StreamingMFCC:
    """Incremental audio.features.mfcc over a signal that arrives in chunks.

    It keeps the last raw sample (for pre-emphasis across chunk edges) and the samples not yet
    covered by a complete frame; each push cuts every frame that has all its samples and runs
    the same chain (audio.features.frames_to_mfcc) on them. Centred padding ("librosa") is
    n_fft // 2 zeros before the first chunk and after the last; end padding ("htk") zero-fills
    the last partial frame on flush. Concatenating the outputs of every push and the flush
    equals mfcc of the concatenated chunks with the same options.

    Args:
        sample_rate: Hz.
        preset: "htk" or "librosa", as mfcc.
        n_mfcc: coefficients per frame, as mfcc.
        kind: one of KINDS: "mfcc", or "logmel" for the (n_mels) log mel energies of each
            frame, before the DCT (then n_mfcc, lifter and append_energy change nothing).
        **options: every other keyword of audio.features.mfcc (n_fft, hop_length, ...).
    Raises:
        ValueError: an unknown kind; options that ask for a dB log clipped by top_db, or are
            out of range.
    """

    def __init__(self, sample_rate: int, preset: str = "htk", n_mfcc: int = 13,
                 kind: str = "mfcc", **options) -> None:
        if kind not in KINDS:
            raise ValueError(f"StreamingMFCC: kind must be one of {', '.join(map(repr, KINDS))}, "
                             f"got {kind!r}")
        resolved = mfcc_options(sample_rate, n_mfcc, preset, **options)
        if resolved.log == "db" and resolved.top_db is not None \
                and not math.isinf(resolved.top_db):
            raise ValueError(
                f"StreamingMFCC: a dB log with top_db={resolved.top_db} clips against the "
                f"loudest frame of the whole utterance, which a stream has not seen yet; pass "
                f"top_db=math.inf to keep the full range, or use preset='htk' (natural log)")
        self.options: MFCCOptions = resolved
        self.kind = kind
        # values per frame, and the stage that makes them from cut frames
        self.width = resolved.n_mels if kind == "logmel" else resolved.n_mfcc
        self._features = frames_to_log_mel if kind == "logmel" else frames_to_mfcc
        self.reset()

    def reset(self) -> None:
        """Forget the current utterance (flush does this after returning the tail)."""
        self._buffer: Array | None = None   # pre-emphasised samples from the next frame start
        self._last: Array | None = None     # last raw sample pushed (1,), for pre-emphasis
        self._received = 0                  # raw samples pushed since the utterance began
        self._emitted = 0                   # frames returned since the utterance began

    def push(self, chunk: Array) -> Array:
        """Add samples; return the frames that became complete.

        Args:
            chunk: (samples,) float, numpy or cupy; any length, including 0.
        Returns:
            (new_frames, width) in the chunk's module and float dtype, width n_mfcc (or
            n_mels for kind "logmel"); new_frames may be 0.
        """
        xp = array_module(chunk)
        chunk = xp.asarray(chunk)
        if chunk.ndim != 1:
            raise ValueError(f"StreamingMFCC.push: chunk must be (samples,), "
                             f"got shape {tuple(chunk.shape)}")
        if chunk.dtype.kind != "f":
            chunk = chunk.astype(np.float32)
        o = self.options
        if self._buffer is None:
            lead = o.frame_length // 2 if o.padding == "center" else 0
            self._buffer = xp.zeros(lead, dtype=chunk.dtype)
        if chunk.shape[0]:
            chunk = chunk.astype(self._buffer.dtype, copy=False)
            emphasised = chunk
            if o.pre_emphasis:
                # y[n] = x[n] - a·x[n-1]; before the first sample x is 0, so y[0] = x[0]
                last = xp.zeros(1, chunk.dtype) if self._last is None else self._last
                previous = xp.concatenate([last, chunk[:-1]])
                emphasised = chunk - chunk.dtype.type(o.pre_emphasis) * previous
            self._last = chunk[-1:].copy()
            self._buffer = xp.concatenate([self._buffer, emphasised])
            self._received += chunk.shape[0]
        return self._cut(self._complete_frames())

    def flush(self) -> Array:
        """Zero-pad the tail as mfcc does, return its frames, and start a new utterance.

        Returns:
            (remaining_frames, width); (0, width) if nothing was pushed.
        """
        if self._buffer is None or self._received == 0:
            self.reset()
            return np.zeros((0, self.width), dtype=np.float32)
        o = self.options
        remaining = num_frames(self._received, o) - self._emitted
        needed = (remaining - 1) * o.hop_length + o.frame_length
        xp = array_module(self._buffer)
        if self._buffer.shape[0] < needed:
            padding = xp.zeros(needed - self._buffer.shape[0], dtype=self._buffer.dtype)
            self._buffer = xp.concatenate([self._buffer, padding])
        tail = self._cut(remaining)
        self.reset()
        return tail

    def _complete_frames(self) -> int:
        o = self.options
        available = self._buffer.shape[0]
        return 0 if available < o.frame_length else 1 + (available - o.frame_length) // o.hop_length

    def _cut(self, count: int) -> Array:
        o = self.options
        xp = array_module(self._buffer)
        if count <= 0:
            return xp.zeros((0, self.width), dtype=self._buffer.dtype)
        used = (count - 1) * o.hop_length + o.frame_length
        frames = frame_signal(self._buffer[:used], o.frame_length, o.hop_length)
        features = self._features(frames, o)
        self._buffer = self._buffer[count * o.hop_length:].copy()  # drop what no frame needs
        self._emitted += count
        return features
