"""The feature cache: where derived data goes, how a parameter set is named, how it is stored.

Derived data never goes into a data folder (it may be read-only): it lives under
``cache_root()``, that is ``$MINIDL_CACHE`` or ``~/.cache/minidl``. A cache file is named by
a content key, the hash of everything that determines it (``cache_key``), and holds a list of
(frames, coefficients) arrays stacked into one ``.npz``: ``features`` (all frames, float32),
``lengths`` (frames per item) and one array of labels (names, transcripts) that says what the
items are. It is written to a temporary file and renamed into place, so a crash never leaves
half a file, and read with ``allow_pickle=False``.

``cached_features`` is that store for the MFCCs of a list of audio files (audio.fsdd.FSDD
uses it); audio.connected_digits keeps its utterances' features the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import BinaryIO

import numpy as np
from tqdm import tqdm

from audio.features import mfcc_from_options, mfcc_options
from audio.io import load


def cache_root() -> Path:
    """``$MINIDL_CACHE``, else ``~/.cache/minidl``: where minidl keeps derived data."""
    configured = os.environ.get("MINIDL_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "minidl"


def cache_key(described: dict) -> str:
    """20 hex digits of the SHA-256 of ``described`` as sorted JSON (str() for other types)."""
    text = json.dumps(described, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def feature_cache_key(paths: list[Path], sample_rate: int, options: dict) -> str:
    """The key of cached_features: the resolved options and the files' names and sizes."""
    return cache_key({"format": 1, "sample_rate": sample_rate, "options": options,
                      "files": [[path.name, path.stat().st_size] for path in paths]})


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Write ``path`` all or nothing: a temporary file beside it, renamed onto it on success.

    An exception inside the ``with`` block (a failed download, a wrong checksum) deletes the
    temporary file and leaves ``path`` as it was. The folder must exist.

        with atomic_file(folder / "SHA256SUMS") as out:
            out.write(data)
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            yield out
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


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


def load_stacked(path: str | os.PathLike, labels: list[str], *,
                 label_name: str = "names") -> list[np.ndarray] | None:
    """The arrays save_stacked stored at ``path``, if it exists and holds exactly ``labels``.

    Returns:
        One (frames_i, width) array per label, views into one stacked array; None when the
        file is missing or was written for other items (the caller recomputes).
    """
    path = Path(path)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as stored:
        stacked, lengths, names = stored["features"], stored["lengths"], stored[label_name]
    if list(names) != list(labels):
        return None
    return np.split(stacked, np.cumsum(lengths)[:-1])


def cached_features(paths: list[str | os.PathLike], sample_rate: int, *, n_mfcc: int = 13,
                    preset: str = "htk", cache_dir: str | os.PathLike | None = None,
                    progress: bool = True, **options) -> list[np.ndarray]:
    """MFCCs of audio files, computed once per parameter set and then loaded from disk.

    The cache is ``mfcc-{preset}-{key}.npz``, key from feature_cache_key, stored by
    save_stacked with the files' names as labels.

    Args:
        paths: audio files; each is loaded at ``sample_rate`` (audio.load) then passed to mfcc.
        sample_rate: Hz.
        n_mfcc, preset, **options: as audio.features.mfcc.
        cache_dir: folder of the .npz files; None is ``cache_root() / "features"``. Never the
            data folder, which may be read-only.
        progress: show a tqdm progress bar while computing.
    Returns:
        One float32 (frames, n_mfcc) array per path, in order.
    """
    paths = [Path(p) for p in paths]
    resolved = mfcc_options(sample_rate, n_mfcc, preset, **options)
    if not paths:
        return []
    folder = Path(cache_dir) if cache_dir is not None else cache_root() / "features"
    key = feature_cache_key(paths, sample_rate, asdict(resolved))
    cache = folder / f"mfcc-{preset}-{key}.npz"
    names = [p.name for p in paths]
    stored = load_stacked(cache, names)
    if stored is not None:
        return stored
    computed = []
    for path in tqdm(paths, desc=f"MFCC ({preset}) features", unit="file",
                     disable=not progress):
        signal, _ = load(path, sample_rate=sample_rate)
        computed.append(mfcc_from_options(signal, resolved).astype(np.float32, copy=False))
    save_stacked(cache, computed, names)
    return computed


__all__ = ["atomic_file", "cache_key", "cache_root", "cached_features", "feature_cache_key",
           "load_stacked", "save_stacked"]
