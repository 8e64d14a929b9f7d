"""The features both digit recognisers read: one FeatureSettings and the functions that follow it.

    signal (8 kHz) ──trim leading and trailing silence──► (voiced samples,)
      ──audio.features.mfcc (HTK preset)──► (frames, 13)
      ──deltas──► (frames, 26) ──normalisation──► (frames, 26) float32

The isolated-digit models (``minidl.apps.digits``) standardise each coefficient over the whole
training set ("global", a Normalization layer in the model); the connected-digit CTC model
(``minidl.apps.ctc_digits``) normalises each utterance by its own statistics ("utterance").
A saved model carries ``FeatureSettings.to_dict()`` as metadata, and ``from_dict`` reads it
back, so a model file needs nothing else to turn a recording into what it was trained on.
"""
from __future__ import annotations

import dataclasses
import pathlib
from dataclasses import dataclass

import numpy as np

import audio
from audio import features as audio_features
from audio.silence import trim_silence

NORMALIZATIONS = ("global", "utterance", "none")


@dataclass(frozen=True)
class FeatureSettings:
    """How a recording becomes a (frames, n_features) matrix.

    HTK-preset MFCCs (python_speech_features' chain: 25 ms windows every 10 ms, 26 mel filters,
    log energy as C0), optionally their HTK deltas, then a normalisation:

    * "global": each coefficient standardised with the mean and variance of every training
      frame, by a ``layers.Normalization`` adapted on the training set and saved in the model
      (the features themselves stay raw here);
    * "utterance": cepstral mean and variance normalisation per recording (CMVN), which removes
      the speaker's and microphone's average colour, and with it the loudness and tilt cues;
    * "none": raw coefficients, whose scales differ by orders of magnitude.

    Args:
        sample_rate: Hz; recordings are resampled to it.
        n_mfcc: cepstral coefficients per frame, C0 (log energy) included.
        preset: "htk" or "librosa", as ``audio.features.mfcc``.
        delta_order: 0 MFCCs only, 1 + deltas, 2 + delta-deltas.
        normalization: one of NORMALIZATIONS.
        trim_db: cut leading and trailing silence before the features (audio.silence.
            trim_silence: frames more than trim_db below the loudest are silence), so a word
            padded with silence, or recorded with a long lead-in, reads as the same word;
            None keeps every sample.
    """

    sample_rate: int = 8000
    n_mfcc: int = 13
    preset: str = "htk"
    delta_order: int = 1
    normalization: str = "global"
    trim_db: float | None = None

    def __post_init__(self):
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"FeatureSettings: normalization must be 'global', 'utterance' or 'none', "
                             f"got {self.normalization!r}")
        if self.trim_db is not None and not (isinstance(self.trim_db, (int, float)) and self.trim_db > 0):
            raise ValueError(f"FeatureSettings: trim_db must be a positive number of dB or None, "
                             f"got {self.trim_db!r}")

    @property
    def n_features(self) -> int:
        """Values per frame: n_mfcc · (1 + delta_order)."""
        return self.n_mfcc * (1 + self.delta_order)

    def to_dict(self) -> dict:
        """The settings as JSON-able values (what a model file's metadata keeps)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "FeatureSettings":
        """Settings from ``to_dict()``'s output; keys this version does not know are ignored,
        missing ones take the defaults above."""
        known = {field.name for field in dataclasses.fields(cls)}
        given = {key: value for key, value in values.items() if key in known}
        given.setdefault("trim_db", None)   # files from before trimming existed were not trimmed
        return cls(**given)


def finish_features(mfccs: np.ndarray, settings: FeatureSettings) -> np.ndarray:
    """Deltas (and CMVN, if chosen) of one utterance.

    Args:
        mfccs: (frames, n_mfcc) from ``audio.features.mfcc`` (or a stream of its frames).
        settings: which deltas and which normalisation.
    Returns:
        (frames, settings.n_features) float32.
    """
    parts = [mfccs] + [audio_features.deltas(mfccs, order=order) for order in range(1, settings.delta_order + 1)]
    stacked = np.concatenate(parts, axis=-1) if len(parts) > 1 else mfccs
    if settings.normalization == "utterance":
        stacked = audio_features.cmvn(stacked)
    return stacked.astype(np.float32, copy=False)


def signal_features(signal: np.ndarray, settings: FeatureSettings) -> np.ndarray:
    """Features of one signal at ``settings.sample_rate``: (samples,) -> (frames, n_features)."""
    if settings.trim_db is not None:
        signal = trim_silence(signal, settings.sample_rate, top_db=settings.trim_db, keep_digital_silence=False)
    mfccs = audio_features.mfcc(signal, settings.sample_rate, settings.n_mfcc, preset=settings.preset)
    return finish_features(mfccs, settings)


def file_features(path: str | pathlib.Path, settings: FeatureSettings) -> np.ndarray:
    """Features of one audio file (resampled to the settings' rate): (frames, n_features).

    Raises:
        audio.AudioError: the file is missing or cannot be decoded.
    """
    signal, _ = audio.load(path, sample_rate=settings.sample_rate)
    return signal_features(signal, settings)
