"""Atomic file writes: a save killed half-way leaves the previous file whole.

A file is written to a temporary file ``.<name>.minidl-tmp-<pid>-<random>`` in the destination
folder, synced to disk, then ``os.replace`` puts it in place in one step (a rename within one
folder is atomic). The next write into that folder removes such leftovers whose process is gone
or that nobody has touched for STALE_TEMP_SECONDS. A file written over keeps its permission bits;
a new one gets the usual ``0o666 & ~umask``.
"""
from __future__ import annotations

import os
import re
import secrets
import stat
import time

import numpy as np

STALE_TEMP_SECONDS = 600            # a temp file of ours untouched this long is a dead save's
_TEMP_NAME = re.compile(r"\..+\.minidl-tmp-(\d+)-[0-9a-f]+")


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True      # exists, under another user (or we cannot tell): keep its file
    return True


def remove_stale_temp_files(folder: str, now: float | None = None) -> list[str]:
    """Delete leftovers of killed saves in ``folder``: temp files named as ours whose writer is gone.

    A file ``.<name>.minidl-tmp-<pid>-<hex>`` is removed when process ``pid`` no longer exists,
    or when it has not been written to for STALE_TEMP_SECONDS (a pid from another machine on a
    shared folder, or one reused since). A save in progress (live pid, recent mtime) is left
    alone; other files are never touched.

    Returns:
        The names removed.
    """
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.fullmatch(entry.name)
        if match is None:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode):
                continue
            if _process_alive(int(match.group(1))) and now - info.st_mtime < STALE_TEMP_SECONDS:
                continue
            os.unlink(entry.path)
            removed.append(entry.name)
        except OSError:  # gone already (another cleaner), or not ours to delete
            continue
    return removed


def _create_temp(folder: str, name: str) -> tuple[int, str]:
    """An exclusively created, empty temp file next to the target: (file descriptor, path)."""
    for _ in range(100):
        temporary = os.path.join(folder, f".{name}.minidl-tmp-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            # 0o666: the kernel applies the umask, as for any new file (mkstemp would give 0o600)
            return os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                           0o666), temporary
        except FileExistsError:
            continue
    raise FileExistsError(f"saving {os.path.join(folder, name)!r}: no free temporary file name in {folder!r}")


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable; folders cannot be opened on every platform (Windows)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def atomic_savez(path, arrays: dict[str, np.ndarray], compressed: bool = False) -> None:
    """``np.savez(path, **arrays)``, but to a temporary file in the same folder, synced, then
    renamed over ``path``: whoever reads ``path`` sees the old file or the new one, never half.

    Args:
        path: the file to write (used as given; ".npz" is not appended).
        arrays: member name -> array, as for ``np.savez``.
        compressed: deflate the members (``np.savez_compressed``), as the int8 model file does.
    """
    save = np.savez_compressed if compressed else np.savez
    atomic_write(path, lambda f: save(f, **arrays))  # a file object: numpy adds no ".npz"


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` as atomic_savez writes arrays: all of it or nothing."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_write(path, write) -> None:
    """Call ``write(binary_file)`` on a temporary file beside ``path``, sync it, rename it over
    ``path``; the temporary file is removed if ``write`` fails. A file saved over keeps its
    permission bits."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    remove_stale_temp_files(folder)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)  # saving over a file keeps its permission bits
    except OSError:
        mode = None
    handle, temporary = _create_temp(folder, os.path.basename(path))
    try:
        with os.fdopen(handle, "wb") as f:
            write(f)
            f.flush()
            if mode is not None and hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)
            elif mode is not None:  # Windows has no fchmod
                os.chmod(temporary, mode)
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    _fsync_folder(folder)
