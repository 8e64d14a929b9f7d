"""A tiny stand-in for FSDD made of generated tones, for tests that need no real speech.

Digit d is two tones (250 + 90·d Hz and 2.4 times that), 0.25-0.35 s long between 50 ms
silences, so a model can tell the digits apart; speakers shift the pitch a little.
"""
from __future__ import annotations

import pathlib

import numpy as np
import soundfile

RATE = 8000


def tone(digit: int, take: int, speaker_shift: float = 1.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    duration = 0.25 + 0.1 * rng.random()
    t = np.arange(int(duration * RATE)) / RATE
    base = (250 + 90 * digit) * speaker_shift
    voiced = 0.5 * np.sin(2 * np.pi * base * t) + 0.25 * np.sin(2 * np.pi * 2.4 * base * t)
    voiced *= np.hanning(len(t))
    silence = np.zeros(int(0.05 * RATE))  # FSDD's files are trimmed close to the speech
    signal = np.concatenate([silence, voiced, silence]) + 0.003 * rng.normal(size=len(silence) * 2 + len(t))
    return signal.astype(np.float32)


def make_fake_fsdd(folder: pathlib.Path, speakers=("alice", "bob"), takes: int = 9) -> pathlib.Path:
    """Write {digit}_{speaker}_{take}.wav files into folder/recordings; returns folder."""
    recordings = folder / "recordings"
    recordings.mkdir(parents=True, exist_ok=True)
    for s, speaker in enumerate(speakers):
        for digit in range(10):
            for take in range(takes):
                signal = tone(digit, take, 1.0 + 0.05 * s, seed=1000 * s + 10 * digit + take)
                soundfile.write(recordings / f"{digit}_{speaker}_{take}.wav", signal, RATE, subtype="PCM_16")
    return folder
