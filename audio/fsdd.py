"""The Free Spoken Digit Dataset (FSDD): find it, download and verify it, split it.

FSDD (Jakobovski et al., CC BY-SA 4.0, attribution required) holds 3,000 mono 8 kHz WAVs:
6 speakers x 10 digits x 50 takes, named ``{digit}_{speaker}_{take}.wav``. Its folder is
looked for in this order (ARCHITECTURE.md, "Data"):

    1. the ``root`` argument,
    2. ``$MINIDL_DATA/fsdd``,
    3. ``~/.cache/minidl/fsdd``,
    4. a download of ``recordings/`` at the dataset's commit 26eb9aa into ``~/.cache/minidl/fsdd``,
       each file checked against SHA256SUMS (names relative to ``recordings/``; a copy ships
       with this package as ``fsdd_SHA256SUMS``).

Derived data never goes into the data folder (it may be read-only): FSDD.features keeps its
MFCCs in the feature cache of audio.cache.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# sha256_of lives in audio.cache (the content keys need it); it stays importable from here
from audio.atomic import atomic_file
from audio.cache import cached_features, sha256_of
from audio.io import printable

FSDD_COMMIT = "26eb9aaf76e81b692f806f9140c2d2777410d7a1"
FSDD_URL = ("https://raw.githubusercontent.com/Jakobovski/free-spoken-digit-dataset/"
            f"{FSDD_COMMIT}/recordings/")
FSDD_SAMPLE_RATE = 8000
#: SHA-256 of every recording at FSDD_COMMIT, "hash  name" per line, names relative to recordings/
FSDD_SHA256SUMS = Path(__file__).resolve().parent / "fsdd_SHA256SUMS"

_NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")


@dataclass(frozen=True)
class Recording:
    """One FSDD file: its path and what its name says (digit 0-9, speaker, take 0-49)."""

    path: Path
    digit: int
    speaker: str
    take: int

    @property
    def name(self) -> str:
        """File name without the folder, e.g. "7_jackson_32.wav"."""
        return self.path.name


def read_checksums(path: str | os.PathLike = FSDD_SHA256SUMS) -> dict[str, str]:
    """Parse a SHA256SUMS file ("<hex>  <name>" lines) into {name: hex}."""
    checksums = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or len(parts[0]) != 64:
            raise ValueError(f"{path}, line {number}: expected '<sha256 hex>  <name>', "
                             f"got {line!r}")
        checksums[parts[1].lstrip("*")] = parts[0].lower()
    return checksums


def _recordings_folder(folder: Path) -> tuple[Path | None, str]:
    """(folder/recordings or folder itself if it holds FSDD WAVs, else None; why not).

    The reason says what the folder is when it is no folder of recordings - missing, a file,
    unreadable - so that a permission problem does not read like an empty folder.
    """
    try:
        mode = os.stat(folder).st_mode
    except FileNotFoundError:
        return None, "it does not exist"
    except OSError as error:  # PermissionError on a folder above it, a loop of links, ...
        return None, f"it cannot be reached ({printable(error.strerror or str(error))})"
    if not stat.S_ISDIR(mode):
        return None, "it is a file, not a folder"
    for candidate in (folder / "recordings", folder):
        if not candidate.is_dir():
            continue
        try:
            os.scandir(candidate).close()  # glob below would read an unlistable folder as empty
        except OSError as error:
            return None, (f"{printable(candidate)} cannot be listed "
                          f"({printable(error.strerror or str(error)).lower()})")
        if any(candidate.glob("*_*_*.wav")):
            return candidate, ""
    return None, f"neither it nor {printable(folder / 'recordings')} holds any"


def download_fsdd(destination: str | os.PathLike, base_url: str = FSDD_URL,
                  checksums: dict[str, str] | None = None, workers: int = 8,
                  timeout: float = 30.0) -> Path:
    """Fetch every recording named in ``checksums`` into ``destination/recordings``.

    Each file is written to a temporary name, checked against its SHA-256 and only then
    renamed into place, so an interrupted download never leaves a bad file behind and a
    second call fetches only what is missing. SHA256SUMS is written beside the recordings.

    Args:
        destination: the fsdd folder to fill (``recordings/`` is made inside).
        base_url: URL of the ``recordings/`` folder, ending in "/"; FSDD_URL pins commit 26eb9aa.
        checksums: {name: sha256 hex}; None reads the copy shipped with this package.
        workers: parallel downloads.
        timeout: seconds to wait for each connection.
    Returns:
        The recordings folder.
    Raises:
        OSError: a file could not be fetched (urllib.error.URLError is an OSError).
        ValueError: a fetched file does not match its checksum (it is deleted).
    """
    checksums = read_checksums() if checksums is None else checksums
    folder = Path(destination) / "recordings"
    folder.mkdir(parents=True, exist_ok=True)
    missing = [name for name in sorted(checksums) if not (folder / name).is_file()]

    def fetch(name: str) -> None:
        url = base_url + name
        digest = hashlib.sha256()
        # atomic_file: a failure (here a wrong checksum) deletes the partial file
        with atomic_file(folder / name) as out, \
                urllib.request.urlopen(url, timeout=timeout) as response:
            while block := response.read(1 << 16):
                out.write(block)
                digest.update(block)
            if digest.hexdigest() != checksums[name]:
                raise ValueError(f"download_fsdd: {url} has SHA-256 {digest.hexdigest()}, but "
                                 f"SHA256SUMS says {checksums[name]}; the file was discarded")

    if missing:  # one file first: offline, or a wrong URL, fails here once rather than 3,000 times
        fetch(missing[0])
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(fetch, name) for name in missing[1:]]
        try:
            for future in futures:
                future.result()  # re-raises the first failure, naming its URL
        except BaseException:
            for future in futures:  # don't wait for the rest to fail one by one
                future.cancel()
            raise
    sums = "".join(f"{checksums[name]}  {name}\n" for name in sorted(checksums))
    with atomic_file(Path(destination) / "SHA256SUMS") as out:
        out.write(sums.encode())
    return folder


def locate_fsdd(root: str | os.PathLike | None = None, download: bool = True,
                base_url: str = FSDD_URL) -> Path:
    """The FSDD recordings folder, by the lookup order of this module's docstring.

    Args:
        root: an fsdd folder (holding ``recordings/``) or a recordings folder; when given, it
            is the only place looked at.
        download: allow step 4, the download into ``~/.cache/minidl/fsdd``.
        base_url: where step 4 downloads from.
    Returns:
        The folder that holds the WAVs.
    Raises:
        FileNotFoundError: no copy was found and none could be downloaded; the message says
            where to put the files.
    """
    if root is not None:
        found, why = _recordings_folder(Path(root))
        if found is None:
            raise FileNotFoundError(f"FSDD: no recordings ({{digit}}_{{speaker}}_{{take}}.wav) "
                                    f"in {printable(root)}: {why}")
        return found
    looked = []
    data = os.environ.get("MINIDL_DATA")
    if data:
        found, why = _recordings_folder(Path(data) / "fsdd")
        if found is not None:
            return found
        looked.append(f"$MINIDL_DATA/fsdd = {printable(Path(data) / 'fsdd')} ({why})")
    else:
        looked.append("$MINIDL_DATA/fsdd (MINIDL_DATA is unset)")
    cache = Path.home() / ".cache" / "minidl" / "fsdd"
    checksums = read_checksums()
    if all((cache / "recordings" / name).is_file() for name in checksums):
        return cache / "recordings"
    looked.append(f"{cache} (absent or incomplete)")
    reason = "download=False"
    if download:
        try:
            return download_fsdd(cache, base_url, checksums)
        except (OSError, ValueError) as error:
            reason = f"the download from {base_url} failed: {printable(str(error))}"
    raise FileNotFoundError(
        "FSDD recordings not found; looked in " + "; ".join(looked) + f"; {reason}. "
        "Put the 3,000 WAVs of https://github.com/Jakobovski/free-spoken-digit-dataset "
        f"(commit {FSDD_COMMIT[:7]}, folder recordings/) in <data>/fsdd/recordings/ and set "
        f"MINIDL_DATA=<data>, or put them in {cache / 'recordings'}")


class FSDD:
    """The Free Spoken Digit Dataset: recordings, splits, speakers, cached features.

    Args:
        root: see locate_fsdd; None follows the lookup order (argument, $MINIDL_DATA/fsdd,
            ~/.cache/minidl/fsdd, download).
        download: allow the download when no copy is found.
        base_url: where to download from (tests point it at a local server).
    """

    sample_rate = FSDD_SAMPLE_RATE

    def __init__(self, root: str | os.PathLike | None = None, *, download: bool = True,
                 base_url: str = FSDD_URL) -> None:
        self.folder = locate_fsdd(root, download=download, base_url=base_url)

    def __repr__(self) -> str:
        return f"FSDD(root={str(self.folder)!r})"

    def recordings(self) -> list[Recording]:
        """Every ``{digit}_{speaker}_{take}.wav`` in the folder, sorted by speaker, digit, take."""
        found = []
        for path in self.folder.glob("*.wav"):
            match = _NAME.match(path.name)
            if match:
                digit, speaker, take = match.groups()
                found.append(Recording(path, int(digit), speaker, int(take)))
        return sorted(found, key=lambda r: (r.speaker, r.digit, r.take))

    def speakers(self) -> list[str]:
        """Speaker names, sorted: the loop of a leave-one-speaker-out evaluation."""
        return sorted({recording.speaker for recording in self.recordings()})

    def split(self, kind: str = "official", held_out: str | None = None
              ) -> tuple[list[Recording], list[Recording]]:
        """(train, test) lists of recordings.

        Args:
            kind: "official" (the dataset's README: takes 0-4 test, 5-49 train) or "speaker"
                (every recording of ``held_out`` in test, everyone else in train).
            held_out: the speaker to hold out, for kind="speaker".
        """
        recordings = self.recordings()
        if kind == "official":
            if held_out is not None:
                raise ValueError(f"FSDD.split: held_out={held_out!r} applies to kind='speaker', "
                                 f"not 'official'")
            return ([r for r in recordings if r.take >= 5], [r for r in recordings if r.take < 5])
        if kind == "speaker":
            speakers = sorted({r.speaker for r in recordings})
            if held_out not in speakers:
                raise ValueError(f"FSDD.split: held_out must be one of {speakers}, "
                                 f"got {held_out!r}")
            return ([r for r in recordings if r.speaker != held_out],
                    [r for r in recordings if r.speaker == held_out])
        raise ValueError(f"FSDD.split: kind must be 'official' or 'speaker', got {kind!r}")

    def features(self, recordings: list[Recording] | None = None, *, n_mfcc: int = 13,
                 preset: str = "htk", cache_dir: str | os.PathLike | None = None,
                 progress: bool = True, **options) -> list[np.ndarray]:
        """MFCCs (or log mels) of some recordings, from the feature cache of the whole data set.

        The first call with a parameter set computes every recording's features (with a
        progress bar) and writes one .npz; later calls load it. See audio.cache.cached_features.

        Args:
            recordings: which ones, in this order; None means all of recordings().
            n_mfcc, preset, **options: as audio.features.mfcc.
            cache_dir, progress, trim_db and kind (in options): as audio.cache.cached_features.
        Returns:
            One float32 (frames, n_mfcc) array per recording ((frames, n_mels) for kind "logmel").
        """
        everything = self.recordings()
        table = cached_features([r.path for r in everything], self.sample_rate, n_mfcc=n_mfcc,
                                preset=preset, cache_dir=cache_dir, progress=progress, **options)
        by_name = dict(zip((r.name for r in everything), table))
        wanted = everything if recordings is None else recordings
        return [by_name[r.name] for r in wanted]


__all__ = ["FSDD", "FSDD_COMMIT", "FSDD_SAMPLE_RATE", "FSDD_SHA256SUMS", "FSDD_URL", "Recording",
           "download_fsdd", "locate_fsdd", "read_checksums", "sha256_of"]
