"""Spoken digits from speech synthesisers: voices, accents and speaking rates FSDD lacks.

FSDD has six speakers. A held-out-speaker fold trains on five, so a model meets few vocal
tracts, pitches and ways of saying "seven". Text-to-speech engines from Debian's main section
say the ten words in many more: espeak-ng (formant synthesis: seven English accents, each
with any of its ~90 voice variants, at any rate and pitch) and flite (CMU's diphone and
clustergen voices). The voices are robotic next to a person, which is why they join the real
recordings in training rather than replace them; how much they buy on speakers the model has
never heard is measured by ``benchmarks/digits.py --split speaker`` (the README's ablation).
Synthetic data for small-vocabulary recognition is an old idea; Lin et al. (2020, "Training
keyword spotters with limited and synthesized speech data") measured it for keyword spotting.

    catalogue() ─► SyntheticVoice (engine, voice, rate, pitch)
      ─► synthesise(voice, word, path): the engine writes a WAV (a subprocess, no shell)
    synthetic_digits(n_voices): every digit in the first n voices, cached as WAV files under
      $MINIDL_CACHE/synthetic/, returned as fsdd.Recording objects (speaker = the voice name)

The engines are optional: ``make voices`` installs them (apt-get as root, otherwise it prints
the command), and ``missing_engines()`` says which are absent. Nothing here is committed or
downloaded: every file is made on this machine.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audio.atomic import clean_stale_temporaries, temporary_path
from audio.cache import cache_root
from audio.fsdd import Recording

#: what each digit is called (FSDD's "0" is "zero")
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
#: the programs, and the Debian packages that hold them
ENGINES = {"espeak-ng": "espeak-ng", "flite": "flite"}
INSTALL_COMMAND = "apt-get install -y espeak-ng flite"

#: espeak-ng's English voices (accents); their names are espeak-ng's own
ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd",
                  "en-029")
#: espeak-ng's voice variants (files under espeak-ng-data/voices/!v/ in 1.51), less the ones
#: that are not a voice a person has: robots, whispers, the "Demonic" and announcer effects
ESPEAK_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "adam", "Alex", "Alicia", "Andrea", "Andy", "Annie", "antonio", "aunty", "belinda", "benjamin", "boris",
    "caleb", "david", "Denis", "Diogo", "ed", "edward", "edward2", "Gene", "Gene2", "gustave", "Henrique",
    "Hugo", "iven", "iven2", "iven3", "iven4", "Jacky", "john", "kaukovalta", "Lee", "linda", "marcelo",
    "Marco", "Mario", "max", "Michael", "michel", "miguel", "Mike", "Mr", "Nguyen", "pablo", "paul", "pedro",
    "quincy", "RicishayMax", "RicishayMax2", "RicishayMax3", "rob", "robert", "steph", "steph2", "steph3",
    "Storm", "Tweaky", "zac", "anika", "AnxiousAndy", "grandpa", "grandma", "klatt", "klatt2", "klatt3",
    "klatt4", "klatt5", "klatt6", "norbert", "sandro", "shelby", "travis", "victor")
#: flite's built-in voices
FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")


@dataclass(frozen=True)
class SyntheticVoice:
    """One way to say a word: an engine, its voice, a speaking rate and a pitch.

    Args:
        engine: "espeak-ng" or "flite".
        voice: espeak-ng "accent+variant" (e.g. "en-gb-scotland+f3"), or a flite voice.
        rate: espeak-ng words per minute (80-450; 175 is its default); for flite, a duration
            stretch in percent (100 is its own pace, 120 is 20% slower).
        pitch: espeak-ng's 0-99 (50 is its default); for flite, the mean F0 in Hz.
    """

    engine: str
    voice: str
    rate: int
    pitch: int

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ValueError(f"SyntheticVoice: engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")

    @property
    def name(self) -> str:
        """A file-safe name, unique per voice: e.g. "espeak-en-gb-scotland-f3-r150-p40"."""
        engine = "espeak" if self.engine == "espeak-ng" else self.engine
        return f"{engine}-{self.voice.replace('+', '-')}-r{self.rate}-p{self.pitch}"

    def command(self, word: str, path: str | os.PathLike) -> list[str]:
        """The engine's command line that writes ``word`` spoken in this voice to ``path``."""
        if self.engine == "espeak-ng":
            return ["espeak-ng", "-v", self.voice, "-s", str(self.rate), "-p", str(self.pitch), "-w", str(path),
                    word]
        return ["flite", "-voice", self.voice, "--setf", f"duration_stretch={self.rate / 100:.2f}",
                "--setf", f"int_f0_target_mean={self.pitch}", "-t", word, "-o", str(path)]


def missing_engines() -> list[str]:
    """The engines of ENGINES whose program is not on PATH."""
    return [engine for engine in ENGINES if shutil.which(engine) is None]


def catalogue(seed: int = 0) -> list[SyntheticVoice]:
    """Every voice this module can make, in a fixed shuffled order (so the first n are a mix).

    Each espeak-ng accent with each variant, and each flite voice at three paces; the rate and
    pitch of each are drawn from a generator seeded by ``seed`` and the voice's name, around
    the engine's defaults (espeak-ng 130-210 wpm, pitch 25-75; flite 85-125%, F0 90-220 Hz),
    so a voice keeps its rate and pitch whatever else is in the catalogue.
    """
    voices = []
    for accent in ESPEAK_ACCENTS:
        for variant in ESPEAK_VARIANTS:
            rng = np.random.default_rng([seed, zlib.crc32(f"{accent}+{variant}".encode())])
            voices.append(SyntheticVoice("espeak-ng", f"{accent}+{variant}", int(rng.integers(130, 211)),
                                         int(rng.integers(25, 76))))
    for voice in FLITE_VOICES:
        for take in range(3):
            rng = np.random.default_rng([seed, zlib.crc32(f"{voice}{take}".encode())])
            voices.append(SyntheticVoice("flite", voice, int(rng.integers(85, 126)), int(rng.integers(90, 221))))
    order = np.random.default_rng(seed).permutation(len(voices))
    return [voices[i] for i in order]


def synthesise(voice: SyntheticVoice, word: str, path: str | os.PathLike) -> Path:
    """Say ``word`` in ``voice`` into the WAV file ``path`` (written to a temporary name, then
    renamed, so a killed run never leaves half a file).

    Raises:
        RuntimeError: the engine is not installed (with the command that installs it), or it
            failed (with its message).
    """
    path = Path(path)
    if shutil.which(voice.engine) is None:
        raise RuntimeError(f"synthesise: {voice.engine} is not installed; run `make voices` "
                           f"(or `{INSTALL_COMMAND}` as root)")
    temporary = temporary_path(path).with_suffix(".wav")
    try:
        done = subprocess.run(voice.command(word, temporary), capture_output=True, text=True, timeout=60)
        if done.returncode != 0 or not temporary.is_file() or temporary.stat().st_size <= 44:
            raise RuntimeError(f"synthesise: {voice.engine} could not say {word!r} in voice {voice.voice!r}: "
                               f"{(done.stderr or done.stdout).strip()[-500:] or 'no output file'}")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def synthetic_digits(n_voices: int, folder: str | os.PathLike | None = None, seed: int = 0,
                     progress: bool = True) -> list[Recording]:
    """The ten digits in each of the first ``n_voices`` voices of ``catalogue(seed)``, as
    Recordings (take 0, speaker = the voice's name), synthesised on the first call and kept in
    ``folder`` (default $MINIDL_CACHE/synthetic).

    Raises:
        ValueError: n_voices is not a whole number in 1..len(catalogue()).
        RuntimeError: an engine a chosen voice needs is missing (see synthesise).
    """
    voices = catalogue(seed)
    if isinstance(n_voices, bool) or not isinstance(n_voices, (int, np.integer)) or not 1 <= n_voices <= len(voices):
        raise ValueError(f"synthetic_digits: n_voices must be a whole number from 1 to {len(voices)}, "
                         f"got {n_voices!r}")
    folder = Path(folder) if folder is not None else cache_root() / "synthetic"
    folder.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(folder)
    wanted = [(digit, voice, folder / f"{digit}_{voice.name}_0.wav") for voice in voices[:n_voices]
              for digit in range(len(WORDS))]
    missing = [(digit, voice, path) for digit, voice, path in wanted if not path.is_file()]
    if missing:
        from tqdm import tqdm  # noqa: PLC0415 - only when there is something to make
        for digit, voice, path in tqdm(missing, desc="synthetic voices", unit="file", disable=not progress):
            synthesise(voice, WORDS[digit], path)
    return [Recording(path, digit, voice.name, 0) for digit, voice, path in wanted]


__all__ = ["ENGINES", "INSTALL_COMMAND", "WORDS", "SyntheticVoice", "catalogue", "missing_engines", "synthesise",
           "synthetic_digits"]
