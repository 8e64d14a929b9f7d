"""The checks of an untrusted model file's archive, made before any of its data is read.

A minidl model file is a NumPy ``.npz``: a zip of ``.npy`` members. A small file must not be able
to take the machine, so each member is checked from the zip's directory first (names, count, no
duplicates, sizes that the file can hold: deflated members together may not inflate more than
MAX_INFLATION times, a zip bomb), then by its ``.npy`` header read without its data (dtype, shape,
size; never an object array, which would need pickle). Only then may ``read_data`` read a
member, into memory of the size its header declared. What the members mean (the JSON config, the
weights) is ``minidl.saving``'s business. Every problem is a ``ModelFileError`` (a ValueError)
naming the file and, where there is one, the member.
"""
from __future__ import annotations

import collections
import math
import re
import zipfile
from dataclasses import dataclass

import numpy as np

from minidl.layers.serialization import short_repr

MAX_MEMBERS = 1 << 20               # weight arrays in one file (a 100,000-layer model has 200,000)
MAX_CONFIG_BYTES = 64 << 20         # the JSON config; 2,000 Dense layers take about 0.5 MB
MAX_WEIGHT_BYTES = 8 << 30          # all weight data together, as the headers declare it
MAX_INFLATION = 20                  # deflated entries, over 1 MiB inflated, may inflate at most 20x:
INFLATION_FLOOR = 1 << 20           # float weights deflate to ~90%; 20x is zeros, i.e. a zip bomb
_MEMBER_NAME = re.compile(r"weight_\d{4,7}|optimizer_\d{4,7}|config")
# np.save's header for a plain array, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (5, 3), }
_PLAIN_HEADER = re.compile(rb"\{'descr': '([<>|=]?[fiub]\d{1,2})', 'fortran_order': (True|False), "
                           rb"'shape': \(((?:\d{1,20}, ?)*\d{0,20})\), \} *\n")


class ModelFileError(ValueError):
    """A model or weights file minidl refuses to read; the message names the file and the member."""


@dataclass
class Member:
    """One ``.npy`` member of a model file, as its zip entry and header declare it."""

    name: str                   # without ".npy": "config", "weight_0000", ...
    info: zipfile.ZipInfo
    shape: tuple
    dtype: np.dtype
    fortran_order: bool
    data_offset: int            # bytes of magic and header before the data, inside the member

    @property
    def size(self) -> int:
        return math.prod(self.shape)  # Python ints: 2**40 * 2**40 cannot overflow

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize


def refuse(where: str, message: str) -> ModelFileError:
    """The error to raise for a problem in model file ``where`` (``repr`` of its path)."""
    return ModelFileError(f"model file {where}: {message}")


def _plain_header(f) -> tuple[tuple, bool, np.dtype, int] | None:
    """The header np.save writes for a plain array, parsed by a regular expression; None for any
    other (numpy's own reader, which evaluates the header as a Python literal, then decides)."""
    start = f.read(10)
    if len(start) < 10 or start[:8] != b"\x93NUMPY\x01\x00":
        return None
    length = int.from_bytes(start[8:10], "little")
    match = _PLAIN_HEADER.fullmatch(f.read(length))
    if match is None:
        return None
    shape = tuple(int(n) for n in match.group(3).split(b",") if n.strip())
    return shape, match.group(2) == b"True", np.dtype(match.group(1).decode("ascii")), 10 + length


def _read_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, where: str) -> Member:
    """The member's .npy header (shape, dtype, order), read without reading its data."""
    try:
        with archive.open(info) as f:
            plain = _plain_header(f)  # ast.literal_eval of each header dominated loading deep models
        if plain is not None:
            shape, fortran_order, dtype, offset = plain
        else:
            with archive.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise ValueError(f".npy format version {version} is not supported")
                offset = f.tell()
    except (ValueError, SyntaxError, EOFError, OSError, zipfile.BadZipFile, RuntimeError, NotImplementedError) as error:
        raise refuse(where, f"entry {name!r} is not a readable .npy array ({error})") from None
    if dtype.hasobject:
        raise refuse(where, f"entry {name!r} cannot be read without pickle (an object array of "
                            f"dtype {dtype}); refusing it")
    if not all(isinstance(n, int) and n >= 0 for n in shape):
        raise refuse(where, f"entry {name!r} declares shape {short_repr(shape, 80)}")
    return Member(name, info, tuple(shape), dtype, bool(fortran_order), offset)


def open_members(archive: zipfile.ZipFile, where: str, file_size: int) -> dict[str, Member]:
    """Every member of ``archive`` checked by the zip directory and its header, no data read:
    names, count, no duplicates, compression, sizes the file can hold, the inflation of deflated
    members together, dtypes (no object arrays) and declared array bytes.

    Args:
        archive: the open zip file.
        where: the file's name as messages give it (``repr`` of the path).
        file_size: the file's size in bytes, which no member may claim to reach past.
    Returns:
        Member name (without ".npy") -> Member.
    Raises:
        ModelFileError: the first problem found, naming the member.
    """
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS + 1:
        raise refuse(where, f"{len(infos):,} entries, more than the {MAX_MEMBERS:,} weights a file may hold")
    names = collections.Counter(info.filename for info in infos)
    duplicates = sorted(name for name, count in names.items() if count > 1)
    if duplicates:
        raise refuse(where, f"duplicate entries {', '.join(map(repr, duplicates[:5]))}: refusing an "
                            f"ambiguous file")
    members = {}
    declared = 0
    deflated, inflated = 0, 0  # over all deflated entries: many small bombs add up
    for info in infos:
        name = info.filename[:-4] if info.filename.endswith(".npy") else None
        if name is None or not _MEMBER_NAME.fullmatch(name):
            raise refuse(where, f"unexpected entry {short_repr(info.filename, 80)}; a minidl file holds "
                                f"only 'config', weight_0000 ... and optimizer_0000 ... (as .npy)")
        if info.flag_bits & 0x1:
            raise refuse(where, f"entry {name!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise refuse(where, f"entry {name!r} uses zip compression method {info.compress_type}; "
                                f"only stored and deflated entries are read")
        if info.header_offset + info.compress_size > file_size:
            raise refuse(where, f"entry {name!r} claims {info.compress_size:,} bytes past the end of the "
                                f"file ({file_size:,} bytes): truncated or forged")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise refuse(where, f"entry {name!r} is stored as {info.compress_size:,} bytes but declares "
                                f"{info.file_size:,}: damaged or forged")
        if info.compress_type == zipfile.ZIP_DEFLATED:
            deflated, inflated = deflated + info.compress_size, inflated + info.file_size
            if inflated > INFLATION_FLOOR and inflated > MAX_INFLATION * deflated:
                raise refuse(where, f"entry {name!r} would inflate from {info.compress_size:,} to "
                                    f"{info.file_size:,} bytes (the deflated entries so far, {deflated:,} to "
                                    f"{inflated:,}: more than {MAX_INFLATION}x); refusing a zip bomb")
        member = _read_header(archive, info, name, where)
        if member.data_offset + member.nbytes != info.file_size:
            raise refuse(where, f"entry {name!r} declares shape {member.shape} of {member.dtype} "
                                f"({member.nbytes:,} bytes), but holds {info.file_size - member.data_offset:,} bytes")
        declared += member.nbytes
        if declared > MAX_WEIGHT_BYTES:
            raise refuse(where, f"the entries declare more than {MAX_WEIGHT_BYTES:,} bytes of arrays "
                                f"(entry {name!r} of shape {member.shape} passes it)")
        members[name] = member
    return members


def read_data(archive: zipfile.ZipFile, member: Member, where: str) -> np.ndarray:
    """The member's array, read into memory whose size the header declared and the checks bounded."""
    flat = np.empty(member.size, dtype=member.dtype)
    try:
        with archive.open(member.info) as f:
            f.read(member.data_offset)
            buffer = memoryview(flat.view(np.uint8)) if member.nbytes else memoryview(b"")
            done = 0
            while done < member.nbytes:
                count = f.readinto(buffer[done:])
                if not count:
                    break
                done += count
            trailing = f.read(1)  # reaching the end makes zipfile check the CRC
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as error:
        raise refuse(where, f"entry {member.name!r} is damaged ({error})") from None
    if done != member.nbytes or trailing:
        held = "more" if trailing else f"{done:,}"
        raise refuse(where, f"entry {member.name!r} holds {held} bytes of data where its header "
                            f"declares {member.nbytes:,}")
    return flat.reshape(member.shape, order="F" if member.fortran_order else "C")
