"""Connected digits: strings of 2-7 spoken digits made by joining FSDD recordings.

FSDD holds isolated digits; speech recognition proper turns an utterance into a *sequence*. This
module builds such utterances reproducibly, one speaker per utterance, so a sequence model (CTC)
can be trained and tested on them:

    1. a plan, drawn once from ``seed``: for utterance i, a speaker (round robin over the
       speakers, so each gets a fair share), a length n in [min_digits, max_digits], n digits,
       and for each digit one recording of that speaker saying it, taken only from the split's
       side (official split: test strings from takes 0-4, train strings from takes 5-49; or a
       speaker split), plus n + 1 silent gaps (before, between, after the digits) of
       uniform length in ``gap_seconds``;
    2. the signal: each recording trimmed of its leading and trailing silence
       (audio.silence.trim_silence), laid end to end with the gaps, then a faint dither, then
       optional white noise at ``snr_db`` (audio.augment.add_noise with exact=False: noise
       power mean(signal²) / 10^(snr_db / 10), the mean over the whole utterance, gaps
       included, the level a listener would measure);
    3. the transcript: the digit string, e.g. "4071".

Everything random comes from ``numpy.random.default_rng`` seeded by ``seed`` (the plan) and by
``(seed, i)`` (utterance i's noise), so utterance i is the same whichever others are built.

Derived features are cached like FSDD's, in audio.cache's stacked-npz store: one ``.npz`` per
parameter set under ``$MINIDL_CACHE/connected_digits`` or ``~/.cache/minidl/connected_digits``,
never in the data folder, which may be read-only.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from audio.augment import add_noise
from audio.cache import DIGEST_INDEX, cache_key, cache_root, file_digests, load_stacked, save_stacked
from audio.features import mfcc_from_options, mfcc_options
from audio.fsdd import FSDD, Recording
from audio.io import load
from audio.silence import trim_silence  # also importable from here, as it was before

#: Gaussian dither added to every sample, about -80 dBFS: exact digital silence has zero
#: energy, whose log (the HTK preset's C0) would sit ~30 nats below speech and dominate CMVN.
DITHER = 1e-4


@dataclass(frozen=True)
class Utterance:
    """The plan of one connected-digit utterance.

    Attributes:
        transcript: the digit string, e.g. "4071".
        speaker: who says every digit.
        recordings: file names of the recordings, one per digit, in order.
        gaps: n + 1 silences in samples: before the first digit, between digits, after the last.
    """

    transcript: str
    speaker: str
    recordings: tuple[str, ...]
    gaps: tuple[int, ...]


class ConnectedDigits:
    """Reproducible utterances of 2-7 connected digits from FSDD, one speaker each.

    Args:
        root: the FSDD folder (see audio.fsdd.locate_fsdd); None follows the lookup order.
        subset: "train" or "test": which side of the split the recordings come from.
        num_utterances: how many utterances to plan.
        min_digits, max_digits: each utterance has a uniform number of digits in this range.
        gap_seconds: (shortest, longest) silence before, between and after digits, uniform.
        snr_db: white noise at this expected SNR in dB (see signal); None adds none.
        seed: the seed of the plan and of the noise.
        split: "official" (takes 0-4 test, 5-49 train) or "speaker" (held_out is the test side).
        held_out: the held-out speaker for split="speaker".
        speakers: restrict to these speakers; None takes every speaker on the subset's side.
        top_db: the trim_silence threshold applied to each recording; None keeps recordings whole.
        download: allow FSDD to be downloaded when no copy is found.
        fsdd: an FSDD instance to use instead of root and download.

    ``dataset[i]`` is ``(signal, transcript)``: float32 (samples,) at 8 kHz and a digit string.
    ``features()`` gives cached MFCCs. ``utterances`` holds the plan (Utterance).
    """

    sample_rate = FSDD.sample_rate

    def __init__(self, root: str | os.PathLike | None = None, *, subset: str = "train",
                 num_utterances: int = 1000, min_digits: int = 2, max_digits: int = 7,
                 gap_seconds: tuple[float, float] = (0.05, 0.25), snr_db: float | None = None,
                 seed: int = 0, split: str = "official", held_out: str | None = None,
                 speakers: list[str] | None = None, top_db: float | None = 30.0,
                 download: bool = True, fsdd: FSDD | None = None) -> None:
        if subset not in ("train", "test"):
            raise ValueError(f"ConnectedDigits: subset must be 'train' or 'test', got {subset!r}")
        if isinstance(num_utterances, bool) or not isinstance(num_utterances, (int, np.integer)) \
                or num_utterances < 1:
            raise ValueError(f"ConnectedDigits: num_utterances must be a positive int, "
                             f"got {num_utterances!r}")
        if not 1 <= min_digits <= max_digits:
            raise ValueError(f"ConnectedDigits: need 1 <= min_digits <= max_digits, got "
                             f"min_digits={min_digits}, max_digits={max_digits}")
        shortest, longest = (float(g) for g in gap_seconds)
        if not 0 <= shortest <= longest:
            raise ValueError(f"ConnectedDigits: gap_seconds must be (shortest, longest) with "
                             f"0 <= shortest <= longest, got {gap_seconds}")
        self.fsdd = fsdd if fsdd is not None else FSDD(root, download=download)
        self.subset = subset
        self.num_utterances = int(num_utterances)
        self.min_digits, self.max_digits = int(min_digits), int(max_digits)
        self.gap_seconds = (shortest, longest)
        self.snr_db = None if snr_db is None else float(snr_db)
        self.seed = int(seed)
        self.split, self.held_out = split, held_out
        self.top_db = None if top_db is None else float(top_db)

        train, test = self.fsdd.split(split, held_out)
        pool = train if subset == "train" else test
        available = sorted({r.speaker for r in pool})
        if speakers is not None:
            unknown = sorted(set(speakers) - set(available))
            if unknown:
                raise ValueError(f"ConnectedDigits: speakers {unknown} have no {subset} "
                                 f"recordings; available: {available}")
            available = sorted(set(speakers))
        self.speakers = available
        # by_speaker[speaker][digit] = that speaker's recordings of the digit, sorted by take
        self._by_speaker: dict[str, list[list[Recording]]] = {
            s: [[r for r in pool if r.speaker == s and r.digit == d] for d in range(10)]
            for s in self.speakers}
        missing = [f"{s}: {d}" for s in self.speakers for d in range(10)
                   if not self._by_speaker[s][d]]
        if missing:
            raise ValueError(f"ConnectedDigits: every speaker needs every digit on the {subset} "
                             f"side; missing {', '.join(missing[:5])}")
        self._paths = {r.name: r.path for r in pool}
        self.utterances = self._plan()
        self._signals: dict[str, np.ndarray] = {}

    def __repr__(self) -> str:
        return (f"ConnectedDigits(subset={self.subset!r}, num_utterances={self.num_utterances}, "
                f"seed={self.seed}, snr_db={self.snr_db}, speakers={self.speakers})")

    def __len__(self) -> int:
        return self.num_utterances

    def __getitem__(self, index: int) -> tuple[np.ndarray, str]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"ConnectedDigits: index {index} out of range for "
                             f"{len(self)} utterances")
        index %= len(self)
        return self.signal(index), self.utterances[index].transcript

    def _plan(self) -> list[Utterance]:
        rng = np.random.default_rng(self.seed)
        shortest, longest = (int(round(g * self.sample_rate)) for g in self.gap_seconds)
        plan = []
        for i in range(self.num_utterances):
            speaker = self.speakers[i % len(self.speakers)]
            count = int(rng.integers(self.min_digits, self.max_digits + 1))
            digits = rng.integers(0, 10, size=count)
            names = []
            for digit in digits:
                choices = self._by_speaker[speaker][digit]
                names.append(choices[int(rng.integers(len(choices)))].name)
            gaps = rng.integers(shortest, longest + 1, size=count + 1)
            plan.append(Utterance("".join(str(d) for d in digits), speaker, tuple(names),
                                  tuple(int(g) for g in gaps)))
        return plan

    def transcripts(self) -> list[str]:
        """Every utterance's digit string, in order."""
        return [u.transcript for u in self.utterances]

    def recording(self, name: str) -> np.ndarray:
        """One FSDD recording, loaded at 8 kHz and trimmed (kept in memory once loaded)."""
        if name not in self._signals:
            signal, _ = load(self._paths[name], sample_rate=self.sample_rate)
            if self.top_db is not None:
                signal = trim_silence(signal, self.sample_rate, self.top_db)
            self._signals[name] = signal
        return self._signals[name]

    def signal(self, index: int) -> np.ndarray:
        """Utterance ``index`` as float32 (samples,) at 8 kHz: gaps and digits, dither, noise."""
        plan = self.utterances[index]
        pieces = [np.zeros(plan.gaps[0], np.float32)]
        for name, gap in zip(plan.recordings, plan.gaps[1:]):
            pieces += [self.recording(name), np.zeros(gap, np.float32)]
        signal = np.concatenate(pieces)
        rng = np.random.default_rng([self.seed, index])
        signal = signal + (DITHER * rng.standard_normal(len(signal))).astype(np.float32)
        if self.snr_db is not None:
            # exact=False: the noise level follows the signal's mean power, and the draw is
            # the one this module has always made, so utterances stay as they were
            signal = add_noise(signal, self.snr_db, rng=rng, exact=False)
        return np.clip(signal, -1.0, 1.0).astype(np.float32, copy=False)

    def signals(self) -> list[np.ndarray]:
        """Every utterance's signal, in order (built on each call; features() caches)."""
        return [self.signal(i) for i in range(len(self))]

    def describe(self) -> dict:
        """The settings that determine every utterance, JSON-ready (a cache key's content)."""
        return {"subset": self.subset, "num_utterances": self.num_utterances,
                "min_digits": self.min_digits, "max_digits": self.max_digits,
                "gap_seconds": list(self.gap_seconds), "snr_db": self.snr_db, "seed": self.seed,
                "split": self.split, "held_out": self.held_out, "speakers": self.speakers,
                "top_db": self.top_db, "dither": DITHER}

    def features(self, *, n_mfcc: int = 13, preset: str = "htk",
                 cache_dir: str | os.PathLike | None = None, progress: bool = True,
                 **options) -> list[np.ndarray]:
        """MFCCs of every utterance, computed once per parameter set and then loaded.

        The cache is ``connected-{preset}-{key}.npz`` in ``cache_dir`` (None:
        ``$MINIDL_CACHE/connected_digits`` or ``~/.cache/minidl/connected_digits``); the key
        hashes describe(), the resolved MFCC options and the names and SHA-256 digests of the
        recordings used (audio.cache.file_digests), so changed audio is never served stale. It holds ``features`` (all frames stacked, float32), ``lengths`` and
        ``transcripts`` (audio.cache.save_stacked: written to a temporary file and renamed,
        read with allow_pickle=False).

        Args:
            n_mfcc, preset, **options: as audio.features.mfcc.
            cache_dir: folder of the cache files.
            progress: show a tqdm progress bar while computing.
        Returns:
            One float32 (frames, n_mfcc) array per utterance, in order.
        """
        resolved = mfcc_options(self.sample_rate, n_mfcc, preset, **options)
        used = sorted({name for u in self.utterances for name in u.recordings})
        folder = Path(cache_dir) if cache_dir is not None else cache_root() / "connected_digits"
        digests = file_digests([self._paths[name] for name in used], folder / DIGEST_INDEX)
        key = cache_key({"format": 2, "dataset": self.describe(), "options": asdict(resolved),
                         "files": [[name, digest] for name, digest in zip(used, digests)]})
        cache = folder / f"connected-{preset}-{key}.npz"
        transcripts = self.transcripts()
        stored = load_stacked(cache, transcripts, label_name="transcripts")
        if stored is not None:
            return stored
        computed = [mfcc_from_options(self.signal(i), resolved).astype(np.float32, copy=False)
                    for i in tqdm(range(len(self)), desc=f"connected digits ({self.subset})",
                                  unit="utt", disable=not progress)]
        save_stacked(cache, computed, transcripts, label_name="transcripts")
        return computed


__all__ = ["ConnectedDigits", "DITHER", "Utterance", "trim_silence"]
