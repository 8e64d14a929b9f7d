"""Voices the data set does not have: augmented copies of each recording, drawn anew each epoch.

Six speakers teach a model six vocal tracts, six rooms and six microphones. Each augmented copy
of a recording changes what a new speaker or a new room would change, at the stage of the chain
where it happens:

    signal ─trim─► ─speed perturbation─► ─noise at a random SNR─► power spectrum
      ─mel filterbank warped by α (VTLP)─► log mels ─SpecAugment masks─► DCT ─► deltas, CMVN

* speed perturbation (Ko et al., 2015): play the word up to 10% faster or slower, which moves
  both its duration and its pitch;
* noise: white Gaussian noise at an SNR drawn from a range, so a quiet room is not the only
  room;
* VTLP (Jaitly & Hinton, 2013): draw the mel filters for a vocal tract 1/α as long
  (``audio.features.vtlp_warp``), the cheapest new speaker there is;
* SpecAugment (Park et al., 2019): blank a few bands of log mels (before the DCT, where a band
  is a band, filled with the utterance's mean) and a few runs of frames.

Features of kind "logmel" (FeatureSettings.kind) leave the chain at the log mels: the masks
then blank the very values the model reads, and no DCT follows.

A recording gets ``copies`` such versions, drawn once per seed and kept in the feature cache
(``audio.cache.cached_per_file``), so every held-out-speaker fold of one seed reuses them. Each
epoch (``EpochDraws``) hears every training recording once: clean with probability
``clean_fraction``, otherwise one of its copies; ``epoch_draws=False`` instead trains on the
clean set and every copy each epoch (the recipe before issue 13: one copy, speed and noise).
Which of these buys what on unheard speakers is measured by ``benchmarks/digits.py --split
speaker`` and reported in the README.
"""
from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass

import numpy as np

import audio
from audio import augment as audio_augment
from audio import features as audio_features
from audio.silence import trim_silence
from minidl.apps.features import FeatureSettings, finish_features
from minidl.data import Sequence, pad_sequences


def _range(name: str, value, low: float, high: float) -> tuple[float, float] | None:
    if value is None:
        return None
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(v, (int, float)) and np.isfinite(v) for v in value)
            or not low <= value[0] <= value[1] <= high):
        raise ValueError(f"AugmentSettings: {name} must be None or (low, high) with "
                         f"{low} <= low <= high <= {high}, got {value!r}")
    return (float(value[0]), float(value[1]))


@dataclass(frozen=True)
class AugmentSettings:
    """What each augmented copy of a recording may change, and how epochs draw them.

    Args:
        copies: augmented versions of each recording, drawn once per seed (>= 1).
        clean_fraction: chance that an epoch hears a recording as it is, in [0, 1].
        speed: (low, high) speed factor range, or None for no speed perturbation.
        snr_db: (low, high) SNR range of white noise in dB, or None for no noise.
        speed_factors: fixed speed factors instead of a drawn one: copy k is played at
            speed_factors[k % len(speed_factors)] (Ko et al., 2015: 0.9, 1.0, 1.1); overrides
            ``speed``. None: off.
        pitch_semitones: (low, high) range of a pitch shift in semitones that keeps the
            duration (``audio.augment.pitch_shift``), or None for none.
        reverb_rt60: (low, high) range of a synthetic room's reverberation time in seconds
            (``audio.augment.reverberate``), or None for no room.
        noise_colours: colours of the noise (keys of ``audio.augment.NOISE_COLOURS``), each copy
            drawing one, at the SNR of ``snr_db``; None: white noise.
        band_hz: (low_min, low_max, high_min, high_max): a band-pass channel whose lower edge
            is drawn in low_min-low_max Hz and upper edge in high_min-high_max Hz
            (``audio.augment.band_limit``, order drawn in 2-4: a telephone line or a cheap
            microphone), or None for the full band.
        gain_db: (low, high) range of a change of level in dB (``audio.augment.gain``), or
            None for none.
        vtlp: (low, high) range of the VTLP warp factor α, or None for no warp.
        spec_augment: mask log mel bands and frames (2 masks each, up to 3 bands, 5 frames).
        epoch_draws: True: each epoch hears one version of each recording (EpochDraws);
            False: the clean set plus every copy, every epoch.
    """

    copies: int = 4
    clean_fraction: float = 0.25
    speed: tuple[float, float] | None = (0.9, 1.1)
    snr_db: tuple[float, float] | None = (0.0, 30.0)
    vtlp: tuple[float, float] | None = (0.9, 1.1)
    spec_augment: bool = False
    epoch_draws: bool = True
    # the levers of issue 13 (recipes.LEVERS); each off by default, and off draws nothing
    speed_factors: tuple[float, ...] | None = None
    pitch_semitones: tuple[float, float] | None = None
    gain_db: tuple[float, float] | None = None
    reverb_rt60: tuple[float, float] | None = None
    noise_colours: tuple[str, ...] | None = None
    band_hz: tuple[float, float, float, float] | None = None

    def __post_init__(self):
        if isinstance(self.copies, bool) or not isinstance(self.copies, int) or not 1 <= self.copies <= 64:
            raise ValueError(f"AugmentSettings: copies must be an integer in 1-64, got {self.copies!r}")
        if not (isinstance(self.clean_fraction, (int, float)) and 0 <= self.clean_fraction <= 1):
            raise ValueError(f"AugmentSettings: clean_fraction must be in [0, 1], got {self.clean_fraction!r}")
        object.__setattr__(self, "speed", _range("speed", self.speed, 0.5, 2.0))
        object.__setattr__(self, "snr_db", _range("snr_db", self.snr_db, -20.0, 100.0))
        object.__setattr__(self, "vtlp", _range("vtlp", self.vtlp, 0.7, 1.3))
        if self.speed_factors is not None:
            factors = self.speed_factors
            if (not isinstance(factors, (tuple, list)) or not factors
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0.5 <= v <= 2.0
                               for v in factors)):
                raise ValueError(f"AugmentSettings: speed_factors must be None or a non-empty tuple of "
                                 f"speed factors in [0.5, 2.0], got {factors!r}")
            object.__setattr__(self, "speed_factors", tuple(float(v) for v in factors))
        object.__setattr__(self, "pitch_semitones", _range("pitch_semitones", self.pitch_semitones, -12.0, 12.0))
        object.__setattr__(self, "gain_db", _range("gain_db", self.gain_db, -40.0, 40.0))
        object.__setattr__(self, "reverb_rt60", _range("reverb_rt60", self.reverb_rt60, 0.01, 3.0))
        if self.band_hz is not None:
            edges = self.band_hz
            if (not isinstance(edges, (tuple, list)) or len(edges) != 4
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in edges)
                    or not 0 < edges[0] <= edges[1] < edges[2] <= edges[3]):
                raise ValueError(f"AugmentSettings: band_hz must be None or (low_min, low_max, high_min, high_max) "
                                 f"in Hz with 0 < low_min <= low_max < high_min <= high_max, got {edges!r}")
            object.__setattr__(self, "band_hz", tuple(float(v) for v in edges))
        if self.noise_colours is not None:
            colours = self.noise_colours
            if (not isinstance(colours, (tuple, list)) or not colours
                    or not all(isinstance(c, str) and c in audio_augment.NOISE_COLOURS for c in colours)):
                raise ValueError(f"AugmentSettings: noise_colours must be None or a non-empty tuple of "
                                 f"{sorted(audio_augment.NOISE_COLOURS)}, got {colours!r}")
            if self.snr_db is None:
                raise ValueError("AugmentSettings: noise_colours needs an snr_db range to add the noise at")
            object.__setattr__(self, "noise_colours", tuple(colours))

    def to_dict(self) -> dict:
        """JSON-able values (what metrics.json and the cache key record)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "AugmentSettings":
        """Settings from ``to_dict()``; lists become tuples, unknown keys are refused."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"AugmentSettings: unknown settings {sorted(unknown)}; known: {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


_LEVER_DEFAULTS = {"speed_factors": None, "pitch_semitones": None, "gain_db": None, "reverb_rt60": None, "noise_colours": None,
                   "band_hz": None}

#: what ``--augment`` meant before recipes: the clean set plus one copy of each recording with
#: its speed changed and white noise added (the default of TrainSettings.augmentation)
SPEED_AND_NOISE_COPY = AugmentSettings(copies=1, clean_fraction=0.0, vtlp=None, epoch_draws=False)


def augmented_features(signal: np.ndarray, features: FeatureSettings, settings: AugmentSettings,
                       rng: np.random.Generator, copy: int = 0) -> np.ndarray:
    """One augmented version of one recording: (samples,) at features.sample_rate ->
    (frames, features.n_features), the same chain as ``signal_features`` with the draws of
    ``settings`` between its stages (with every draw off, the two are equal). ``copy`` is the
    copy's index k, which picks its factor from ``settings.speed_factors``.

    A setting that is off draws no random number, so adding one leaves the draws, features
    and cache entries of every other setting as they were. For ``features.kind == "logmel"``
    the chain stops after the SpecAugment masks, at the (masked) log mels."""
    if features.trim_db is not None:
        signal = trim_silence(signal, features.sample_rate, top_db=features.trim_db, keep_digital_silence=False)
    if settings.speed_factors is not None:
        signal = audio_augment.speed_perturb(signal, settings.speed_factors[copy % len(settings.speed_factors)])
    elif settings.speed is not None:
        # factors and warps on a 1% grid: each distinct one designs a filter (bank) once
        signal = audio_augment.speed_perturb(signal, round(float(rng.uniform(*settings.speed)), 2))
    if settings.pitch_semitones is not None:
        # a new voice's pitch, its tempo kept; on a 0.1 semitone grid, as speed on a 1% one
        signal = audio_augment.pitch_shift(signal, round(float(rng.uniform(*settings.pitch_semitones)), 1))
    # What the speaker said (speed, pitch) then passes the room and the microphone, in that
    # order, and the recorder's level scales it all; noise comes last, its level set against
    # the signal the listener hears (the SNR of a take is that of its recording, whatever the
    # room or the level did before).
    if settings.reverb_rt60 is not None:
        signal = audio_augment.reverberate(signal, float(rng.uniform(*settings.reverb_rt60)), features.sample_rate,
                                           rng=rng)
    if settings.band_hz is not None:
        low_min, low_max, high_min, high_max = settings.band_hz
        if high_max >= features.sample_rate / 2:
            raise ValueError(f"AugmentSettings: band_hz's upper edge {high_max:g} Hz must be below the Nyquist "
                             f"frequency {features.sample_rate / 2:g} Hz of the features' sample rate")
        signal = audio_augment.band_limit(signal, float(rng.uniform(low_min, low_max)),
                                          float(rng.uniform(high_min, high_max)), features.sample_rate,
                                          order=int(rng.integers(2, 5)))
    if settings.gain_db is not None:
        signal = audio_augment.gain(signal, float(rng.uniform(*settings.gain_db)))
    if settings.snr_db is not None and np.any(signal):
        snr_db, noise = float(rng.uniform(*settings.snr_db)), None
        if settings.noise_colours is not None:
            colour = settings.noise_colours[int(rng.integers(len(settings.noise_colours)))]
            noise = audio_augment.coloured_noise(len(signal), colour, rng)
        signal = audio_augment.add_noise(signal, snr_db, noise=noise, rng=rng)
    o = audio_features.mfcc_options(features.sample_rate, features.n_mfcc, features.preset)
    power = audio_features.power_frames(signal, o)
    alpha = round(float(rng.uniform(*settings.vtlp)), 2) if settings.vtlp is not None else 1.0
    weights = audio_features.mel_filterbank(o.sample_rate, o.n_fft, o.n_mels, o.fmin, o.fmax, o.mel_scale,
                                            o.mel_norm, o.bin_rounded, dtype=power.dtype, vtlp_alpha=alpha)
    logs = audio_features.log_mel(power @ weights.T, o.log, top_db=o.top_db)
    if settings.spec_augment:
        logs = audio_augment.spec_augment(logs, rng, num_time_masks=2, max_time_width=5,
                                          num_freq_masks=2, max_freq_width=3, value=None)
    if features.kind == "logmel":
        return finish_features(logs, features)
    cepstra = audio_features.mfcc(S=logs, n_mfcc=o.n_mfcc, preset=features.preset, append_energy=False)
    if o.append_energy:
        energy = power.sum(axis=-1)
        cepstra[:, 0] = np.log(np.maximum(energy, audio_features.EPS))
    return finish_features(cepstra, features)


def _cache_key(settings: AugmentSettings) -> dict:
    """settings.to_dict() less the levers that are off, so the copies of every recipe cached
    before the levers existed keep their key (an off lever changes nothing in them)."""
    values = settings.to_dict()
    return {k: v for k, v in values.items() if k not in _LEVER_DEFAULTS or v != _LEVER_DEFAULTS[k]}


def augmented_copies(fsdd, recordings, features: FeatureSettings, settings: AugmentSettings,
                     seed: int, progress: bool = True) -> list[list[np.ndarray]]:
    """``settings.copies`` augmented versions of each recording: copies[k][i] is
    (frames, n_features) for recordings[i].

    The draws of copy k of a file come from a generator seeded by (seed, k, the file's name),
    so they do not depend on which other files are asked for; the copies of every FSDD
    recording are computed once per (seed, settings, features) and cached.
    """
    everything = fsdd.recordings()
    known = {r.name for r in everything}
    # FSDD's files are cached as one set (every fold reuses it); any others (synthetic voices)
    # as a set of their own, so adding them never recomputes FSDD's copies
    groups = [everything] + ([others] if (others := [r for r in recordings if r.name not in known]) else [])
    copies = []
    for k in range(settings.copies):
        def compute(path, k=k):
            rng = np.random.default_rng([seed, k, zlib.crc32(path.name.encode())])
            signal, _ = audio.load(path, sample_rate=features.sample_rate)
            return augmented_features(signal, features, settings, rng, k)
        # features.to_dict() names the kind only for "logmel": MFCC copies keep their old keys
        described = {"format": 2, "features": features.to_dict(), "augment": _cache_key(settings),
                     "seed": seed, "copy": k}
        by_name = {}
        for group in groups:
            table = audio.cache.cached_per_file([r.path for r in group], "augmented", described, compute,
                                                progress=progress,
                                                description=f"augmented copy {k + 1}/{settings.copies}")
            by_name.update(zip((r.name for r in group), table))
        copies.append([by_name[r.name] for r in recordings])
    return copies


class EpochDraws(Sequence):
    """Training batches where every epoch hears one version of each recording.

    Each epoch draws, per recording, its clean features (probability ``clean_fraction``) or
    one of its augmented copies, then groups the drawn versions by length into padded batches
    (``frames`` given: each cut or padded to that many frames, for the CNN) in a shuffled order.
    Item i is (x (batch, frames, n_features) float32, labels (batch,)).
    """

    def __init__(self, clean: list[np.ndarray], copies: list[list[np.ndarray]], labels: np.ndarray,
                 batch_size: int = 32, clean_fraction: float = 0.25, seed: int = 0,
                 frames: int | None = None):
        if any(len(c) != len(clean) for c in copies) or len(labels) != len(clean):
            raise ValueError(f"EpochDraws: {len(clean)} clean recordings need as many labels and copies "
                             f"each, got {len(labels)} labels and copies of {[len(c) for c in copies]}")
        self.versions = [clean] + list(copies)
        self.labels = np.asarray(labels)
        self.batch_size, self.clean_fraction, self.frames = batch_size, clean_fraction, frames
        self.rng = np.random.default_rng(seed)
        self.on_epoch_end()

    def on_epoch_end(self) -> None:
        n = len(self.labels)
        clean = self.rng.random(n) < self.clean_fraction
        chosen = np.where(clean, 0, 1 + self.rng.integers(0, len(self.versions) - 1, size=n))
        self.drawn = [self.versions[v][i] for i, v in enumerate(chosen)]
        order = np.argsort([len(f) for f in self.drawn], kind="stable")
        batches = [order[i:i + self.batch_size] for i in range(0, n, self.batch_size)]
        self.batches = [batches[i] for i in self.rng.permutation(len(batches))]

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int):
        chosen = self.batches[index]
        x = pad_sequences([self.drawn[i] for i in chosen], maxlen=self.frames, dtype="float32",
                          padding="post", truncating="post")
        return x, self.labels[chosen]


__all__ = ["SPEED_AND_NOISE_COPY", "AugmentSettings", "EpochDraws", "augmented_copies", "augmented_features"]
