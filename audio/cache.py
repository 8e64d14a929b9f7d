"""The feature cache: where derived data goes, how a parameter set is named, how it is stored.

Derived data never goes into a data folder (it may be read-only): it lives under
``cache_root()``, that is ``$MINIDL_CACHE`` or ``~/.cache/minidl``. A cache file is named by
a content key, the hash of everything that determines it (``cache_key``), and holds a list of
(frames, coefficients) arrays stacked into one ``.npz``: ``features`` (all frames, float32),
``lengths`` (frames per item) and one array of labels (names, transcripts) that says what the
items are. It is read with ``allow_pickle=False``; one that cannot be read, or whose arrays do
not fit together, is named in a warning, moved aside to ``<name>.damaged`` and rebuilt.

Every file here is written by ``audio.atomic.atomic_file`` (temporary file, fsync, rename), so
a crash or a kill -9 never leaves half a file under the real name.

``cached_features`` is that store for the MFCCs (or, with ``kind="logmel"``, the log mels
before the DCT) of a list of audio files (audio.fsdd.FSDD uses it); its key holds each file's
name and the SHA-256 of its bytes, so the key is the same in every run, on every machine and
after a copy, and changes whenever a recording's audio does, even at the same size. The
digests are remembered in ``file-digests.json`` beside the cache files by (path, size, mtime,
ctime), so a file is hashed again only when it changed.
audio.connected_digits keeps its utterances' features with save_stacked and load_stacked too.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
import zipfile
import zlib
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from audio.atomic import STALE_SECONDS, TEMPORARY_MARK, atomic_file, clean_stale_temporaries, temporary_path
from audio.features import log_mel_frames, mfcc_from_options, mfcc_options
from audio.io import load, printable
from audio.silence import trim_silence

#: the digest index of cached_features, in the folder of the cache files
DIGEST_INDEX = "file-digests.json"

#: what cached_features stores per frame: the MFCCs, or the log mels their DCT starts from
FEATURE_KINDS = ("mfcc", "logmel")

# A file changed within this many seconds may change again within the file system's time
# resolution without a new mtime (coarse clocks: 2 s on FAT, 1 s on some network file
# systems), so its digest is not remembered; the next run hashes it again.
_SETTLING_SECONDS = 2.0


def cache_root() -> Path:
    """``$MINIDL_CACHE``, else ``~/.cache/minidl``: where minidl keeps derived data."""
    configured = os.environ.get("MINIDL_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "minidl"


def cache_key(described: dict) -> str:
    """20 hex digits of the SHA-256 of ``described`` as sorted JSON (str() for other types)."""
    text = json.dumps(described, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- the stacked store --------------------------------------------------------------------------
def save_stacked(path: str | os.PathLike, arrays: list[np.ndarray], labels: list[str], *,
                 label_name: str = "names") -> None:
    """Store arrays of equal width as one atomically written ``.npz`` (see the module doc).

    Args:
        path: the cache file; its folder is made if missing.
        arrays: (frames_i, width) each, at least one.
        labels: one string per array, stored as ``label_name``.
        label_name: "names" for files, "transcripts" for utterances.
    """
    if len(arrays) != len(labels) or not arrays:
        raise ValueError(f"save_stacked: need one label per array and at least one array, "
                         f"got {len(arrays)} arrays and {len(labels)} labels")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    with atomic_file(path) as out:
        np.savez(out, features=np.concatenate(arrays), lengths=lengths,
                 **{label_name: np.array(labels, dtype=str)})


def _stacked_problem(stacked: np.ndarray, lengths: np.ndarray, names: np.ndarray) -> str | None:
    """What does not fit together in a stored stack, or None if it is whole."""
    if stacked.ndim != 2 or stacked.dtype.kind != "f":
        return f"'features' is {stacked.dtype} of shape {stacked.shape}, expected 2-D floats"
    if lengths.ndim != 1 or lengths.dtype.kind not in "iu" or (lengths < 0).any():
        return f"'lengths' is {lengths.dtype} of shape {lengths.shape}, expected counts"
    if int(lengths.sum()) != stacked.shape[0]:
        return f"'lengths' add up to {int(lengths.sum())} frames, 'features' holds {len(stacked)}"
    if names.ndim != 1 or names.dtype.kind != "U" or len(names) != len(lengths):
        return f"{len(lengths)} lengths but labels of shape {names.shape} ({names.dtype})"
    return None


def _move_aside(path: Path, problem: str) -> None:
    """Rename a damaged cache file to ``<name>.damaged`` (replacing an older one), warning."""
    aside = path.with_name(path.name + ".damaged")
    try:
        os.replace(path, aside)
        done = f"moved it to {printable(aside.name)}"
    except OSError as error:
        done = f"could not move it aside ({printable(str(error))})"
    warnings.warn(f"the cache file {printable(path)} is damaged ({printable(problem)}); {done}; "
                  f"it will be rebuilt", stacklevel=3)


def load_stacked(path: str | os.PathLike, labels: list[str], *,
                 label_name: str = "names") -> list[np.ndarray] | None:
    """The arrays save_stacked stored at ``path``, if it exists and holds exactly ``labels``.

    A file that cannot be read (empty, truncated, not an .npz, a member missing) or whose
    arrays do not fit together is damaged: a warning names it, it is renamed to
    ``<name>.damaged`` and None is returned, so the caller rebuilds it.

    Returns:
        One (frames_i, width) array per label, views into one stacked array; None when the
        file is missing, damaged, or was written for other items (the caller recomputes).
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        stored = np.load(path, allow_pickle=False)
        if not isinstance(stored, np.lib.npyio.NpzFile):
            problem = "a single .npy array, not an .npz archive"
        else:
            with stored:
                stacked, lengths, names = stored["features"], stored["lengths"], stored[label_name]
            problem = _stacked_problem(stacked, lengths, names)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        # BadZipFile: empty or truncated; KeyError: a member missing; ValueError: an object
        # array (pickle is refused) or a garbled .npy header; EOFError: a member cut short.
        problem = f"{type(error).__name__}: {error}"
    if problem is not None:
        _move_aside(path, problem)
        return None
    if list(names) != list(labels):
        return None
    return np.split(stacked, np.cumsum(lengths)[:-1])


# --- content keys -------------------------------------------------------------------------------
def _read_index(index: Path) -> dict[str, list]:
    """{absolute path: [size, mtime_ns, ctime_ns, sha256]} from a digest index; {} if none."""
    try:
        document = json.loads(index.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:  # UnicodeDecodeError and JSONDecodeError are too
        warnings.warn(f"the digest index {printable(index)} cannot be read ({printable(str(error))}); "
                      f"hashing the files again", stacklevel=3)
        return {}
    files = document.get("files") if isinstance(document, dict) else None
    if not isinstance(files, dict):
        return {}
    return {name: entry for name, entry in files.items()
            if isinstance(entry, list) and len(entry) == 4 and isinstance(entry[3], str)
            and all(isinstance(n, int) for n in entry[:3])}


def file_digests(paths: list[str | os.PathLike], index: str | os.PathLike | None = None
                 ) -> list[str]:
    """The SHA-256 (hex) of each file's bytes, remembered in ``index`` between runs.

    A digest is reused while the file's absolute path, size, mtime and ctime (both in ns) are
    those it was computed at; ctime changes on every write, even one that restores the mtime.
    A file whose mtime is under two seconds old is hashed but not remembered (a coarse clock
    could hide a second change). ``index`` is JSON, written with atomic_file when it gained entries;
    one that cannot be read is replaced, and one that cannot be written is left as it is.

    Args:
        paths: files to hash.
        index: the JSON file that remembers digests; None hashes every file every time.
    Returns:
        One 64-hex-digit string per path, in order.
    """
    remembered = _read_index(Path(index)) if index is not None else {}
    now_ns = time.time_ns()
    digests, changed = [], False
    for path in paths:
        info = os.stat(path)
        name = os.path.abspath(path)
        signature = [info.st_size, info.st_mtime_ns, info.st_ctime_ns]
        entry = remembered.get(name)
        if entry is not None and entry[:3] == signature:
            digests.append(entry[3])
            continue
        digest = sha256_of(path)
        digests.append(digest)
        settled = now_ns - info.st_mtime_ns > _SETTLING_SECONDS * 1e9
        if settled:
            remembered[name] = signature + [digest]
            changed = True
        elif remembered.pop(name, None) is not None:
            changed = True
    if index is not None and changed:
        # entries of files that are gone would only grow the index
        kept = {name: entry for name, entry in remembered.items() if os.path.exists(name)}
        text = json.dumps({"format": "minidl-file-digests", "version": 1, "files": kept},
                          sort_keys=True)
        try:
            Path(index).parent.mkdir(parents=True, exist_ok=True)
            with atomic_file(index) as out:
                out.write(text.encode("utf-8"))
        except OSError:
            pass  # a read-only cache still serves what it holds; the digests were computed
    return digests


def feature_cache_key(paths: list[Path], sample_rate: int, options: dict, *,
                      index: str | os.PathLike | None = None) -> str:
    """The key of cached_features: the resolved options and each file's name and SHA-256.

    The same files (by name and content) with the same options give the same key in every
    run and on every machine; a file whose audio changes gives a new one, whatever its size.
    (Format 2: before issue 14 the key held the files' sizes, format 1.)

    Args:
        paths: the audio files, in order.
        sample_rate: Hz.
        options: the resolved MFCC options, as a dict.
        index: where file_digests remembers the digests; None hashes every file.
    """
    digests = file_digests(paths, index)
    return cache_key({"format": 2, "sample_rate": sample_rate, "options": options,
                      "files": [[Path(path).name, digest] for path, digest in zip(paths, digests)]})


def cached_per_file(paths: list[str | os.PathLike], kind: str, described: dict,
                    compute: Callable[[Path], np.ndarray], *,
                    cache_dir: str | os.PathLike | None = None, progress: bool = True,
                    description: str | None = None) -> list[np.ndarray]:
    """One array per file, computed once per (files, parameters) and then loaded from disk.

    The cache is ``{kind}-{key}.npz``: the key covers ``described`` (every parameter the arrays
    depend on, JSON-able) and each file's name and SHA-256, so new audio or new parameters make
    a new file. It is written by save_stacked (temporary file, fsync, rename) with the files'
    names as labels; a damaged one is moved aside with a warning and rebuilt (load_stacked).

    Args:
        paths: the files.
        kind: a short name for what is stored, the start of the cache file's name.
        described: the parameters of ``compute``.
        compute: path -> one array (any shape whose first axis may vary between files).
        cache_dir: folder of the .npz files; None is ``cache_root() / "features"``. Never the
            data folder, which may be read-only.
        progress: show a tqdm progress bar while computing.
        description: the progress bar's label; None uses ``kind``.
    Returns:
        One array per path, in order.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        return []
    folder = Path(cache_dir) if cache_dir is not None else cache_root() / "features"
    digests = file_digests(paths, folder / DIGEST_INDEX)
    key = cache_key({**described, "files": [[path.name, digest] for path, digest in zip(paths, digests)]})
    cache = folder / f"{kind}-{key}.npz"
    names = [p.name for p in paths]
    stored = load_stacked(cache, names)
    if stored is not None:
        return stored
    computed = [compute(path) for path in tqdm(paths, desc=description or kind, unit="file",
                                               disable=not progress)]
    save_stacked(cache, computed, names)
    return computed


def cached_features(paths: list[str | os.PathLike], sample_rate: int, *, n_mfcc: int = 13,
                    preset: str = "htk", cache_dir: str | os.PathLike | None = None,
                    progress: bool = True, trim_db: float | None = None, kind: str = "mfcc",
                    **options) -> list[np.ndarray]:
    """MFCCs (or log mels) of audio files, computed once per parameter set and then loaded from disk.

    The cache is ``{kind}-{preset}-{key}.npz`` (``mfcc-htk-...``, ``logmel-htk-...``), the key
    covering the resolved options, the trimming and the kind, and each file's name and SHA-256
    (digests remembered in DIGEST_INDEX in the same folder); see cached_per_file for how it is
    stored.

    Args:
        paths: audio files; each is loaded at ``sample_rate`` (audio.load) then passed to mfcc.
        sample_rate: Hz.
        n_mfcc, preset, **options: as audio.features.mfcc.
        cache_dir, progress: as cached_per_file.
        trim_db: cut leading and trailing silence first (audio.silence.trim_silence with this
            top_db); None keeps every sample.
        kind: one of FEATURE_KINDS: "mfcc" (mfcc_from_options), or "logmel" for the chain
            stopped before its DCT (audio.features.log_mel_frames: n_mels values per frame).
    Returns:
        One float32 (frames, n_mfcc) array per path, in order; (frames, n_mels) for "logmel".
    Raises:
        ValueError: an unknown kind, or options out of range (as mfcc).
    """
    if kind not in FEATURE_KINDS:
        raise ValueError(f"cached_features: kind must be one of {', '.join(map(repr, FEATURE_KINDS))}, "
                         f"got {kind!r}")
    resolved = mfcc_options(sample_rate, n_mfcc, preset, **options)
    described = {"format": 2, "sample_rate": sample_rate, "options": asdict(resolved)}
    if trim_db is not None:
        described["trim_db"] = float(trim_db)   # absent when None: older keys stay valid
        described["trim_rule"] = 2              # the margin stops at digital silence
    if kind != "mfcc":
        described["kind"] = kind                # absent for MFCCs: their keys stay those of before
    chain = log_mel_frames if kind == "logmel" else mfcc_from_options

    def compute(path: Path) -> np.ndarray:
        signal, _ = load(path, sample_rate=sample_rate)
        if trim_db is not None:
            signal = trim_silence(signal, sample_rate, top_db=trim_db, keep_digital_silence=False)
        return chain(signal, resolved).astype(np.float32, copy=False)

    what = "log mel" if kind == "logmel" else "MFCC"
    return cached_per_file(paths, f"{kind}-{preset}", described, compute, cache_dir=cache_dir,
                           progress=progress, description=f"{what} ({preset}) features")


__all__ = ["DIGEST_INDEX", "FEATURE_KINDS", "STALE_SECONDS", "TEMPORARY_MARK", "atomic_file", "cache_key",
           "cache_root", "cached_features", "cached_per_file", "clean_stale_temporaries",
           "feature_cache_key",
           "file_digests", "load_stacked", "save_stacked", "sha256_of", "temporary_path"]
