"""Digits as they are heard: endpointing on frame energy, then the recogniser on each segment.

    chunks (100 ms) ──StreamingMFCC──► MFCC frames as they complete
          └──energy of each 10 ms frame──► Endpointer ──(start, end) of a digit──►
             that segment's frames (+ context) ──Recogniser──► digit, probability, latency

The recogniser is ``minidl.apps.digits.Recogniser`` or an ``minidl.apps.ensemble.Ensemble``; it
sees the same features as in training (``mfcc_probabilities``: deltas and normalisation on the
streamed MFCCs, which equal the whole file's). A model of features kind "logmel" streams log mels
instead (StreamingMFCC's kind, from the model's saved settings), so the frames are what it was
trained on either way.
This is the ``minidl-digits stream`` command.
"""
from __future__ import annotations

import pathlib
import time
from dataclasses import dataclass
from typing import Iterator

import numpy as np

import audio
from audio.stream import StreamingMFCC
from minidl.apps.digits import Recogniser
from minidl.apps.ensemble import Ensemble, load_recogniser

FLOOR_DB = -100.0   # the noise floor never goes below this: digital silence has no level
# A chunk is what a microphone hands over at once: under 1 ms is a sample or two (and a decision
# per chunk costs more than it), over a minute is no longer streaming.
MIN_CHUNK_MS = 1.0
MAX_CHUNK_MS = 60_000.0


@dataclass(frozen=True)
class EndpointRule:
    """Energy-based endpointing, frame by frame (10 ms frames):

    * the noise floor is the lowest frame energy seen so far (dB), never below -100 dB;
    * a frame is speech when its energy is more than ``threshold_db`` above the floor;
    * a digit ends after ``min_silence_ms`` of non-speech frames; segments shorter than
      ``min_speech_ms`` are dropped as clicks.

    The floor starts from the first frames, so a recording should begin with some silence
    (FSDD's do); a digit's latency is then about min_silence_ms plus one chunk.
    """

    threshold_db: float = 15.0
    min_silence_ms: float = 200.0
    min_speech_ms: float = 80.0
    frame_ms: float = 10.0
    context_ms: float = 50.0   # kept on each side of the speech, as FSDD's trimmed files have


class Endpointer:
    """EndpointRule applied one frame energy at a time; frames are counted from 0.

    ``push(level)`` returns (start, end) frame indices (end exclusive) when a segment has just
    ended and is long enough to be a digit, else None; ``finish()`` closes a segment still open
    at the end of the signal.
    """

    def __init__(self, rule: EndpointRule = EndpointRule()):
        self.rule = rule
        self.floor: float | None = None
        self.start: int | None = None   # first frame of the segment in progress
        self.silence_run = 0            # non-speech frames since its last speech frame
        self.frames_seen = 0

    def push(self, level: float) -> tuple[int, int] | None:
        """Take one frame's energy in dB; the segment that this frame ends, if any."""
        rule = self.rule
        self.floor = max(level if self.floor is None else min(self.floor, level), FLOOR_DB)
        ended = None
        if level > self.floor + rule.threshold_db:
            self.silence_run = 0
            self.start = self.frames_seen if self.start is None else self.start
        elif self.start is not None:
            self.silence_run += 1
            if self.silence_run * rule.frame_ms >= rule.min_silence_ms:
                ended = self._long_enough(self.start, self.frames_seen - self.silence_run + 1)
                self.start, self.silence_run = None, 0
        self.frames_seen += 1
        return ended

    def finish(self) -> tuple[int, int] | None:
        """The segment still open when the signal ends (its trailing silence cut), if any."""
        if self.start is None:
            return None
        return self._long_enough(self.start, self.frames_seen - self.silence_run)

    def _long_enough(self, start: int, end: int) -> tuple[int, int] | None:
        return None if (end - start) * self.rule.frame_ms < self.rule.min_speech_ms else (start, end)


def frame_levels(samples: np.ndarray, frame: int) -> np.ndarray:
    """Energy in dB of each whole frame of ``frame`` samples: (samples,) -> (samples // frame,)."""
    blocks = samples[:len(samples) // frame * frame].reshape(-1, frame)
    return 10 * np.log10(np.mean(blocks.astype(np.float64) ** 2, axis=1) + 1e-10)


def check_chunk_ms(chunk_ms: float) -> float:
    """``chunk_ms`` as a float, if it is a number of milliseconds from MIN_CHUNK_MS to MAX_CHUNK_MS.

    Raises:
        ValueError: anything else (zero, negative, NaN, infinite, not a number).
    """
    valid = (isinstance(chunk_ms, (int, float, np.number)) and not isinstance(chunk_ms, bool)
             and MIN_CHUNK_MS <= chunk_ms <= MAX_CHUNK_MS)   # NaN compares False: refused too
    if not valid:
        raise ValueError(f"chunk_ms must be a number of milliseconds from {MIN_CHUNK_MS:g} to "
                         f"{MAX_CHUNK_MS:g}, got {chunk_ms!r}")
    return float(chunk_ms)


def stream_file(model: Recogniser | Ensemble | str | pathlib.Path, path: str | pathlib.Path, chunk_ms: float = 100.0,
                rule: EndpointRule = EndpointRule()) -> Iterator[dict]:
    """Feed a file through StreamingMFCC in chunks; yield one dict per digit found:
    {digit, probability, start_s, end_s, latency_s} where latency is from the end of speech
    (in audio time) to the decision, plus the compute time of the decision.

    Args:
        model: a Recogniser or an Ensemble (minidl.apps.ensemble), or the path of either.
        path: the audio file, of any length (no max_seconds: it is fed in chunks).
        chunk_ms: milliseconds per chunk, from MIN_CHUNK_MS to MAX_CHUNK_MS.
    Raises:
        ValueError: chunk_ms out of range (at the first next()).
        minidl.saving.ModelFileError, FileNotFoundError: the model file (as Recogniser).
        audio.AudioError: the audio file cannot be read.
    """
    chunk_ms = check_chunk_ms(chunk_ms)
    recogniser = model if isinstance(model, (Recogniser, Ensemble)) else load_recogniser(model)
    settings = recogniser.features
    signal, rate = audio.load(path, sample_rate=settings.sample_rate)
    stream = StreamingMFCC(rate, preset=settings.preset, n_mfcc=settings.n_mfcc, kind=settings.kind)
    endpointer = Endpointer(rule)
    frame = int(round(rate * rule.frame_ms / 1000))
    chunk = int(round(rate * chunk_ms / 1000))   # >= 1 sample: rates are >= 1 kHz, chunks >= 1 ms
    mfcc_frames = []
    pending = np.zeros(0, dtype=np.float32)   # samples not yet in a whole 10 ms frame
    for start in range(0, len(signal), chunk):
        piece = signal[start:start + chunk]
        mfcc_frames.extend(stream.push(piece))
        pending = np.concatenate([pending, piece])
        levels = frame_levels(pending, frame)
        pending = pending[len(levels) * frame:]
        for level in levels:   # one decision per 10 ms frame: this is the endpointer's clock
            segment = endpointer.push(level)
            found = decide(recogniser, mfcc_frames, segment, rule, (start + len(piece)) / rate)
            if found:
                yield found
    mfcc_frames.extend(stream.flush())
    found = decide(recogniser, mfcc_frames, endpointer.finish(), rule, len(signal) / rate)
    if found:
        yield found


def decide(recogniser: Recogniser | Ensemble, mfcc_frames: list[np.ndarray], segment: tuple[int, int] | None,
           rule: EndpointRule, heard_s: float) -> dict | None:
    """Classify the frames of ``segment`` (start, end) of the MFCCs so far, plus
    ``rule.context_ms`` each side.

    Args:
        mfcc_frames: the (n_mfcc,) MFCC frames streamed so far ((n_mels,) log mels for a model
            of features kind "logmel").
        segment: (start, end) frame indices from the Endpointer, or None (nothing ended).
        heard_s: audio time at which the decision is made (the end of the last chunk).
    Returns:
        {digit, probability, start_s, end_s, latency_s}, or None for no segment or one that
        has no MFCC frame yet.
    """
    if segment is None:
        return None
    start, end = segment
    tick = time.perf_counter()
    pad = int(round(rule.context_ms / rule.frame_ms))
    segment = np.asarray(mfcc_frames[max(0, start - pad):min(len(mfcc_frames), end + pad)], dtype=np.float32)
    if len(segment) == 0:
        return None
    p = recogniser.mfcc_probabilities([segment])[0]
    compute = time.perf_counter() - tick
    end_s = end * rule.frame_ms / 1000
    return {"digit": recogniser.labels[int(p.argmax())], "probability": round(float(p.max()), 4),
            "start_s": round(start * rule.frame_ms / 1000, 3), "end_s": round(end_s, 3),
            "latency_s": round(heard_s - end_s + compute, 3)}
