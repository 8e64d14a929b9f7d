"""The features both digit recognisers read: one FeatureSettings and the functions that follow it.

    signal (8 kHz) ──trim leading and trailing silence──► (voiced samples,)
      ──audio.features.mfcc (HTK preset)──► (frames, 13)
      ──deltas──► (frames, 26) ──normalisation──► (frames, 26) float32

or, with ``kind="logmel"``, the same chain stopped before its DCT (audio.features.
log_mel_frames: the 26 log mel-filterbank energies of the same frames), then the same deltas
and normalisation: (frames, 26) ──deltas──► (frames, 52).

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
#: what the front end hands the deltas: MFCCs, or the log mel energies their DCT starts from
KINDS = ("mfcc", "logmel")


@dataclass(frozen=True)
class FeatureSettings:
    """How a recording becomes a (frames, n_features) matrix.

    HTK-preset MFCCs (python_speech_features' chain: 25 ms windows every 10 ms, 26 mel filters,
    log energy as C0), or that chain's log mel energies before the DCT (``kind``), optionally
    their HTK deltas, then a normalisation:

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
        delta_order: 0 the frames alone (MFCCs or log mels), 1 + deltas, 2 + delta-deltas.
        normalization: one of NORMALIZATIONS.
        trim_db: cut leading and trailing silence before the features (audio.silence.
            trim_silence: frames more than trim_db below the loudest are silence), so a word
            padded with silence, or recorded with a long lead-in, reads as the same word;
            None keeps every sample.
        kind: one of KINDS. "mfcc": the cepstra above. "logmel": the preset's n_mels log mel
            energies of each frame (26 for "htk"), the input of the MFCC's DCT, unliftered and
            with no log-energy column: the energy the MFCCs keep in C0 is spread over the bands
            (ln of their sum is close to it) and a column of it would only repeat them. The
            DCT decorrelates the overlapping bands and keeps the smooth envelope (its first 13
            terms); a network can learn its own mix of all 26 instead (filterbank inputs beat
            MFCCs for neural acoustic models in Mohamed, Hinton & Penn, 2012). n_mfcc then
            plays no part.

    ``to_dict`` writes ``kind`` only when it is not "mfcc", so the settings of MFCC models
    read, and key the feature caches, as they did before kinds existed; ``from_dict`` reads a
    dict without it as "mfcc".
    """

    sample_rate: int = 8000
    n_mfcc: int = 13
    preset: str = "htk"
    delta_order: int = 1
    normalization: str = "global"
    trim_db: float | None = None
    kind: str = "mfcc"

    def __post_init__(self):
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"FeatureSettings: normalization must be 'global', 'utterance' or 'none', "
                             f"got {self.normalization!r}")
        if self.trim_db is not None and not (isinstance(self.trim_db, (int, float)) and self.trim_db > 0):
            raise ValueError(f"FeatureSettings: trim_db must be a positive number of dB or None, "
                             f"got {self.trim_db!r}")
        if not isinstance(self.kind, str) or self.kind not in KINDS:
            raise ValueError(f"FeatureSettings: kind must be 'mfcc' or 'logmel' (log mel energies before the "
                             f"DCT), got {self.kind!r}")

    @property
    def n_frame_values(self) -> int:
        """Values per frame before the deltas: n_mfcc for "mfcc", the preset's n_mels for "logmel"."""
        if self.kind == "logmel":
            return audio_features.mfcc_options(self.sample_rate, self.n_mfcc, self.preset).n_mels
        return self.n_mfcc

    @property
    def n_features(self) -> int:
        """Values per frame: n_frame_values · (1 + delta_order), i.e. n_mfcc · (1 + delta_order)
        for "mfcc" and n_mels · (1 + delta_order) for "logmel"."""
        return self.n_frame_values * (1 + self.delta_order)

    def to_dict(self) -> dict:
        """The settings as JSON-able values (what a model file's metadata keeps, and what the
        augmented copies' cache key holds); ``kind`` only when it is not "mfcc"."""
        values = dataclasses.asdict(self)
        if values["kind"] == "mfcc":
            del values["kind"]   # as before kinds existed: the same metadata, the same cache keys
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "FeatureSettings":
        """Settings from ``to_dict()``'s output; keys this version does not know are ignored,
        missing ones take the defaults above."""
        known = {field.name for field in dataclasses.fields(cls)}
        given = {key: value for key, value in values.items() if key in known}
        given.setdefault("trim_db", None)   # files from before trimming existed were not trimmed
        given.setdefault("kind", "mfcc")    # files from before kinds existed read MFCCs
        return cls(**given)


def front_end(signal: np.ndarray, settings: FeatureSettings) -> np.ndarray:
    """What the chain gives before the deltas: (samples,) -> (frames, settings.n_frame_values),
    the HTK-preset MFCCs, or for kind "logmel" the same chain's log mels before its DCT."""
    if settings.kind == "logmel":
        options = audio_features.mfcc_options(settings.sample_rate, settings.n_mfcc, settings.preset)
        return audio_features.log_mel_frames(signal, options)
    return audio_features.mfcc(signal, settings.sample_rate, settings.n_mfcc, preset=settings.preset)


def finish_features(mfccs: np.ndarray, settings: FeatureSettings) -> np.ndarray:
    """Deltas (and CMVN, if chosen) of one utterance.

    Args:
        mfccs: (frames, settings.n_frame_values) from ``front_end``: MFCCs (or a stream of
            their frames), or log mels for kind "logmel".
        settings: which kind, which deltas and which normalisation.
    Returns:
        (frames, settings.n_features) float32.
    Raises:
        ValueError: frames of another width than the settings' kind makes (log mels given to
            MFCC settings, or MFCCs to log-mel ones).
    """
    if mfccs.ndim != 2 or mfccs.shape[1] != settings.n_frame_values:
        what = "log mels" if settings.kind == "logmel" else "MFCCs"
        raise ValueError(f"finish_features: kind {settings.kind!r} takes (frames, {settings.n_frame_values}) "
                         f"{what}, got shape {tuple(mfccs.shape)}")
    parts = [mfccs] + [audio_features.deltas(mfccs, order=order) for order in range(1, settings.delta_order + 1)]
    stacked = np.concatenate(parts, axis=-1) if len(parts) > 1 else mfccs
    if settings.normalization == "utterance":
        stacked = audio_features.cmvn(stacked)
    return stacked.astype(np.float32, copy=False)


def signal_features(signal: np.ndarray, settings: FeatureSettings) -> np.ndarray:
    """Features of one signal at ``settings.sample_rate``: (samples,) -> (frames, n_features)."""
    if settings.trim_db is not None:
        signal = trim_silence(signal, settings.sample_rate, top_db=settings.trim_db, keep_digital_silence=False)
    return finish_features(front_end(signal, settings), settings)


def file_features(path: str | pathlib.Path, settings: FeatureSettings) -> np.ndarray:
    """Features of one audio file (resampled to the settings' rate): (frames, n_features).

    Raises:
        audio.AudioError: the file is missing or cannot be decoded.
    """
    signal, _ = audio.load(path, sample_rate=settings.sample_rate)
    return signal_features(signal, settings)
