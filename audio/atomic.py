"""Writes that are never half done: a temporary file beside the target, fsync, rename.

A file written by ``atomic_file`` goes to a temporary file beside it named
``.<name>.minidl-tmp-<pid>-<random>``, is flushed to disk (fsync), then renamed into place, so
a crash or a kill -9 never leaves half a file under the real name, and an existing file keeps
its permission bits. Temporary files a killed writer left behind (its process is gone, or the
file is over an hour old) are removed by the next write into the same folder. The feature
cache (audio.cache) and the FSDD download (audio.fsdd) write through it.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

#: what marks a temporary file of atomic_file: ``.<name>.minidl-tmp-<pid>-<8 hex digits>``
TEMPORARY_MARK = ".minidl-tmp-"
#: a temporary file older than this, in seconds, is stale even if its process seems alive
STALE_SECONDS = 3600

_TEMPORARY = re.compile(r"^\..*\.minidl-tmp-(\d+)-[0-9a-f]{8}$", re.DOTALL)
# atomic_file's names before issue 14 (tempfile.mkstemp's 8 random characters, ".part")
_OLD_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.part$", re.DOTALL)
_cleaned_folders: set[str] = set()


# --- writing: temporary file, fsync, rename -----------------------------------------------------
def temporary_path(path: str | os.PathLike) -> Path:
    """A fresh temporary name beside ``path``: ``.<name>.minidl-tmp-<pid>-<8 hex digits>``."""
    path = Path(path)
    # Keep the temporary name within NAME_MAX (255 bytes) whatever the target's name is.
    name = path.name if len(os.fsencode(path.name)) <= 160 else path.name[:32]
    return path.with_name(f".{name}{TEMPORARY_MARK}{os.getpid()}-{secrets.token_hex(4)}")


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists here (True when that cannot be told)."""
    if os.name == "nt":
        return True  # os.kill would terminate it on Windows; there only the age rule applies
    try:
        os.kill(pid, 0)  # signal 0: no signal, only the check that the process exists
    except ProcessLookupError:
        return False
    except (OverflowError, ValueError):
        return False  # no process can have that number
    except OSError:
        return True  # PermissionError: it exists, and belongs to another user
    return True


def clean_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of atomic_file in ``folder`` whose writer is gone.

    A temporary file is stale when the process named in it no longer exists, or when it was
    last written over STALE_SECONDS ago (a process number can be reused). Older minidl wrote
    ``.<name>.<8 characters>.part``; those are removed after STALE_SECONDS. Nothing else is
    touched, and a file that cannot be removed is left where it is.

    Returns:
        The files removed.
    """
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        ours = _TEMPORARY.match(entry.name)
        if ours is None and _OLD_TEMPORARY.match(entry.name) is None:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            old = now - entry.stat(follow_symlinks=False).st_mtime > STALE_SECONDS
            if old or (ours is not None and not _process_alive(int(ours.group(1)))):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue  # gone already, or not ours to remove: leave it
    return removed


def _fsync_folder(folder: Path) -> None:
    """Flush a folder's entries to disk, so that a rename in it survives a power cut."""
    if os.name == "nt":
        return  # folders cannot be opened for fsync on Windows
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the rename itself has happened
    finally:
        os.close(handle)


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Write ``path`` all or nothing: a temporary file beside it, fsynced, renamed onto it.

    The temporary file is named by temporary_path; stale ones in the folder are removed first
    (clean_stale_temporaries, once per folder and process). An existing ``path`` keeps its
    permission bits; a new one gets those of open() (0o666 less the umask). An exception
    inside the ``with`` block (a failed download, a wrong checksum) deletes the temporary file
    and leaves ``path`` as it was. The folder must exist.

        with atomic_file(folder / "SHA256SUMS") as out:
            out.write(data)
    """
    path = Path(path)
    folder = path.parent
    if str(folder) not in _cleaned_folders:  # once: a download writes 3,000 files in one folder
        clean_stale_temporaries(folder)
        _cleaned_folders.add(str(folder))
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        temporary = temporary_path(path)
        try:
            handle = os.open(temporary, flags, 0o666)  # the umask applies, as for open()
            break
        except FileExistsError:
            continue  # 32 random bits collided: draw again
    try:
        with os.fdopen(handle, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
        _fsync_folder(folder)
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)


__all__ = ["STALE_SECONDS", "TEMPORARY_MARK", "atomic_file", "clean_stale_temporaries", "temporary_path"]
