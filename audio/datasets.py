"""The Free Spoken Digit Dataset (FSDD): find it, download and verify it, split it, and cache
its features.

FSDD (Jakobovski et al., CC BY-SA 4.0, attribution required) holds 3,000 mono 8 kHz WAVs:
6 speakers x 10 digits x 50 takes, named ``{digit}_{speaker}_{take}.wav``. Its folder is
looked for in this order (ARCHITECTURE.md, "Data"):

    1. the ``root`` argument,
    2. ``$MINIDL_DATA/fsdd``,
    3. ``~/.cache/minidl/fsdd``,
    4. a download of ``recordings/`` at the dataset's commit 26eb9aa into ``~/.cache/minidl/fsdd``,
       each file checked against SHA256SUMS (names relative to ``recordings/``; a copy ships
       with this package as ``fsdd_SHA256SUMS``).

Derived data never goes into the data folder (it may be read-only): feature caches live under
``$MINIDL_CACHE/features`` or ``~/.cache/minidl/features``, one ``.npz`` per parameter set.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from audio.features import mfcc_from_options, mfcc_options
from audio.io import load

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


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_root() -> Path:
    """``$MINIDL_CACHE``, else ``~/.cache/minidl``: where minidl keeps derived data."""
    configured = os.environ.get("MINIDL_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "minidl"


def _recordings_folder(folder: Path) -> Path | None:
    """folder/recordings, or folder itself, if it holds FSDD WAVs; else None."""
    for candidate in (folder / "recordings", folder):
        if candidate.is_dir() and any(candidate.glob("*_*_*.wav")):
            return candidate
    return None


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
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
        try:
            with os.fdopen(handle, "wb") as out, \
                    urllib.request.urlopen(url, timeout=timeout) as response:
                while block := response.read(1 << 16):
                    out.write(block)
            got = sha256_of(temporary)
            if got != checksums[name]:
                raise ValueError(f"download_fsdd: {url} has SHA-256 {got}, but SHA256SUMS says "
                                 f"{checksums[name]}; the file was discarded")
            os.replace(temporary, folder / name)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)

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
    _write_atomically(Path(destination) / "SHA256SUMS", sums.encode())
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
        found = _recordings_folder(Path(root))
        if found is None:
            raise FileNotFoundError(f"FSDD: no recordings ({{digit}}_{{speaker}}_{{take}}.wav) "
                                    f"in {root} or {Path(root) / 'recordings'}")
        return found
    looked = []
    data = os.environ.get("MINIDL_DATA")
    if data:
        found = _recordings_folder(Path(data) / "fsdd")
        if found is not None:
            return found
        looked.append(f"$MINIDL_DATA/fsdd = {Path(data) / 'fsdd'}")
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
            reason = f"the download from {base_url} failed: {error}"
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
        """MFCCs of some recordings, from the feature cache of the whole data set.

        The first call with a parameter set computes every recording's features (with a
        progress bar) and writes one .npz; later calls load it. See cached_features.

        Args:
            recordings: which ones, in this order; None means all of recordings().
            n_mfcc, preset, **options: as audio.features.mfcc.
            cache_dir, progress: as cached_features.
        Returns:
            One float32 (frames, n_mfcc) array per recording.
        """
        everything = self.recordings()
        table = cached_features([r.path for r in everything], self.sample_rate, n_mfcc=n_mfcc,
                                preset=preset, cache_dir=cache_dir, progress=progress, **options)
        by_name = dict(zip((r.name for r in everything), table))
        wanted = everything if recordings is None else recordings
        return [by_name[r.name] for r in wanted]


def feature_cache_key(paths: list[Path], sample_rate: int, options: dict) -> str:
    """Hex digest naming a feature cache: the resolved options and the files' names and sizes."""
    described = {"format": 1, "sample_rate": sample_rate, "options": options,
                 "files": [[path.name, path.stat().st_size] for path in paths]}
    text = json.dumps(described, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def cached_features(paths: list[str | os.PathLike], sample_rate: int, *, n_mfcc: int = 13,
                    preset: str = "htk", cache_dir: str | os.PathLike | None = None,
                    progress: bool = True, **options) -> list[np.ndarray]:
    """MFCCs of audio files, computed once per parameter set and then loaded from disk.

    The cache is one .npz per parameter set, named by feature_cache_key, written to a
    temporary file and renamed (a crash never leaves half a cache), read with
    allow_pickle=False. It holds ``features`` (all frames stacked, float32), ``lengths`` (frames
    per file) and ``names``.

    Args:
        paths: audio files; each is loaded at ``sample_rate`` (audio.load) then passed to mfcc.
        sample_rate: Hz.
        n_mfcc, preset, **options: as audio.features.mfcc.
        cache_dir: folder of the .npz files; None is ``$MINIDL_CACHE/features`` or
            ``~/.cache/minidl/features``. Never the data folder, which may be read-only.
        progress: show a tqdm progress bar while computing.
    Returns:
        One float32 (frames, n_mfcc) array per path, in order.
    """
    paths = [Path(p) for p in paths]
    resolved = mfcc_options(sample_rate, n_mfcc, preset, **options)
    folder = Path(cache_dir) if cache_dir is not None else cache_root() / "features"
    key = feature_cache_key(paths, sample_rate, asdict(resolved))
    cache = folder / f"mfcc-{preset}-{key}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as stored:
            stacked, lengths, names = stored["features"], stored["lengths"], stored["names"]
        if list(names) == [p.name for p in paths]:
            return np.split(stacked, np.cumsum(lengths)[:-1])
    from tqdm import tqdm

    computed = []
    for path in tqdm(paths, desc=f"MFCC ({preset}) features", unit="file",
                     disable=not progress):
        signal, _ = load(path, sample_rate=sample_rate)
        computed.append(mfcc_from_options(signal, resolved).astype(np.float32, copy=False))
    lengths = np.array([len(f) for f in computed], dtype=np.int64)
    stacked = np.concatenate(computed) if computed else np.zeros((0, n_mfcc), np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".mfcc-", suffix=".npz")
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, features=stacked, lengths=lengths,
                     names=np.array([p.name for p in paths], dtype=str))
        os.replace(temporary, cache)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return computed


def _write_atomically(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


# Connected-digit utterances are built from FSDD; imported last because that module imports this one.
from audio.connected_digits import ConnectedDigits  # noqa: E402,F401 (re-exported)
