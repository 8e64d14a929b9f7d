"""Hostile and unlucky model files: each is refused, naming the file and the member, before it
can take the machine (nothing huge is allocated), and saves leave nothing of theirs behind."""
import io
import json
import os
import stat
import struct
import subprocess
import sys
import time
import tracemalloc
import warnings
import zipfile
import zlib

import numpy as np
import pytest

from minidl import saving
from minidl.layers import symbolic
from minidl.layers.core import Dense, Input
from minidl.layers.serialization import MAX_CONFIG_INT
from minidl.models import Sequential
from minidl.saving import ModelFileError


def _config(layers=None, input_shape=(None, 5), **changes) -> bytes:
    document = {"format": "minidl", "version": 1, "class_name": "Sequential",
                "input_shape": None if input_shape is None else list(input_shape), "metadata": None,
                "model": {"name": "m", "layers": layers or [{"class_name": "Dense", "config": {"units": 3}}]}}
    document.update(changes)
    return json.dumps(document).encode()


def _npy(array: np.ndarray) -> bytes:
    f = io.BytesIO()
    np.save(f, array, allow_pickle=False)
    return f.getvalue()


def _npy_header(shape: tuple, descr: str = "<f4") -> bytes:
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False, "shape": shape})
    return f.getvalue()


def _good_entries(config: bytes | None = None) -> list:
    return [("config.npy", _npy(np.frombuffer(config or _config(), np.uint8))),
            ("weight_0000.npy", _npy(np.ones((5, 3), np.float32))),
            ("weight_0001.npy", _npy(np.zeros(3, np.float32)))]


def _write_zip(path, entries) -> None:
    """A zip written by zipfile (stored), duplicates and all."""
    with zipfile.ZipFile(path, "w") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile's "Duplicate name"
        for name, data in entries:
            archive.writestr(name, data)


def _raw_zip(path, entries) -> None:
    """A zip written byte by byte: (name, method, payload, crc, uncompressed size) per entry, so
    that a test can declare sizes zipfile would never write."""
    out, central = bytearray(), bytearray()
    for name, method, payload, crc, size in entries:
        name = name.encode()
        offset = len(out)
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(payload), size, len(name), 0)
        out += name + payload
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc, len(payload),
                               size, len(name), 0, 0, 0, 0, 0, offset) + name
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), len(out), 0)
    with open(path, "wb") as f:
        f.write(bytes(out + central + end))


def _stored(name, data):
    return (name, zipfile.ZIP_STORED, data, zlib.crc32(data), len(data))


def _refused(path, *words, **kwargs):
    with pytest.raises(ModelFileError) as info:
        saving.load_model(path, **kwargs)
    message = str(info.value)
    assert os.path.basename(str(path)) in message
    for word in words:
        assert word in message, message
    return message


@pytest.fixture
def no_big_allocation():
    """Asserts that the test allocated at most 64 MiB through Python or NumPy."""
    tracemalloc.start()
    yield
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 64 << 20, f"peak allocation {peak:,} bytes"


def test_a_deflated_member_that_inflates_to_4_gib_is_refused_unread(tmp_path, no_big_allocation):
    # a 4 MB file: a .npy header, then 4 GiB of zeros as 256 identical deflate blocks (a full
    # flush resets the window, so each 16 MiB of zeros deflates to the same 16 KB)
    count = (1 << 30) - 64  # float32 values: 4 GiB less 256 bytes, so that no zip64 is needed
    header = _npy_header((count,))
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(header) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(bytes(1 << 24)) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.compress(bytes(4 * count - (255 << 24))) + compressor.flush()
    payload = head + block * 255 + tail
    assert len(payload) < 5 << 20
    path = tmp_path / "bomb.npz"
    config = _npy(np.frombuffer(_config(), np.uint8))
    # the CRC is not that of the data: this minidl refuses the entry before reading any of it
    _raw_zip(path, [_stored("config.npy", config),
                    ("weight_0000.npy", zipfile.ZIP_DEFLATED, payload, 0, len(header) + 4 * count),
                    _stored("weight_0001.npy", _npy(np.zeros(3, np.float32)))])
    _refused(path, "'weight_0000'", "zip bomb")


def test_a_header_declaring_2_to_the_40_floats_is_refused_unread(tmp_path, no_big_allocation):
    path = tmp_path / "huge.npz"
    entries = _good_entries()
    entries[1] = ("weight_0000.npy", _npy_header((1 << 40,)) + b"\0" * 64)
    _write_zip(path, entries)
    _refused(path, "'weight_0000'", "1099511627776")


def test_many_small_bombs_add_up(tmp_path, no_big_allocation):
    # each entry inflates 1,000x but stays under 1 MiB: the ratio is over all deflated entries
    zeros = zlib.compressobj(9, zlib.DEFLATED, -15)
    header = _npy_header(((1 << 18) - 64,))
    payload = zeros.compress(header + bytes(4 * ((1 << 18) - 64))) + zeros.flush()
    size = len(header) + 4 * ((1 << 18) - 64)
    entries = [_stored("config.npy", _npy(np.frombuffer(_config(), np.uint8)))]
    entries += [(f"weight_{i:04d}.npy", zipfile.ZIP_DEFLATED, payload, 0, size) for i in range(64)]
    path = tmp_path / "bombs.npz"
    _raw_zip(path, entries)
    _refused(path, "zip bomb")


def test_a_stored_member_larger_than_the_file_is_refused(tmp_path):
    data = _npy(np.ones((5, 3), np.float32))
    path = tmp_path / "forged.npz"
    _raw_zip(path, [_stored("config.npy", _npy(np.frombuffer(_config(), np.uint8))),
                    ("weight_0000.npy", zipfile.ZIP_STORED, data, zlib.crc32(data), len(data) + (1 << 30)),
                    _stored("weight_0001.npy", _npy(np.zeros(3, np.float32)))])
    _refused(path, "'weight_0000'")


def test_a_truncated_member_is_refused_naming_it(tmp_path):
    entries = _good_entries()
    entries[1] = ("weight_0000.npy", entries[1][1][:-8])  # header says 15 floats, 13 follow
    path = tmp_path / "short.npz"
    _write_zip(path, entries)
    _refused(path, "'weight_0000'", "declares shape (5, 3)")


def test_duplicate_member_names_are_refused(tmp_path):
    entries = _good_entries() + [("weight_0000.npy", _npy(np.full((5, 3), 7, np.float32)))]
    path = tmp_path / "twice.npz"
    _write_zip(path, entries)
    _refused(path, "duplicate", "'weight_0000.npy'")


def test_nonfinite_weights_are_refused_unless_allowed(tmp_path):
    path = tmp_path / "nan.npz"
    model = Sequential([Input((5,)), Dense(3)])
    weights = model.get_weights()
    weights[0][2, 1] = np.nan
    weights[1][0] = np.inf
    model.set_weights(weights)
    model.save(str(path))
    _refused(path, "weight_0000", "kernel", "1 NaN or infinite")
    again = saving.load_model(path, allow_nonfinite=True)
    assert np.isnan(again.get_weights()[0][2, 1])
    other = Sequential([Input((5,)), Dense(3)])
    with pytest.raises(ModelFileError, match="weight_0000"):
        saving.load_weights(other, path)
    saving.load_weights(other, path, allow_nonfinite=True)


def test_integer_weights_load_only_when_asked(tmp_path):
    path = tmp_path / "ints.npz"
    entries = _good_entries()
    entries[1] = ("weight_0000.npy", _npy(np.ones((5, 3), np.int64)))
    _write_zip(path, entries)
    _refused(path, "weight_0000", "int64", "allow_non_float=True")
    model = saving.load_model(path, allow_non_float=True)
    assert model.weights[0].dtype == np.float32 and model.get_weights()[0].sum() == 15


@pytest.mark.parametrize("version", [0, -1, True])  # read as version 1 before; 2, "1", None were refused
def test_unknown_format_versions_are_refused(tmp_path, version):
    path = tmp_path / "version.npz"
    _write_zip(path, _good_entries(_config(version=version)))
    _refused(path, "format version", "not supported")


def test_units_of_a_billion_are_refused_before_anything_is_built(tmp_path, monkeypatch, no_big_allocation):
    built = []
    monkeypatch.setattr(Dense, "build", lambda self, shape: built.append(self))
    path = tmp_path / "billion.npz"
    _write_zip(path, _good_entries(_config([{"class_name": "Dense", "config": {"units": 10 ** 9}}])))
    _refused(path, "units", "1000000000", f"{MAX_CONFIG_INT:,}")
    assert not built


@pytest.mark.parametrize("layer, input_shape, words", [
    ({"class_name": "Dense", "config": {"units": 4_000_000}}, (None, 5), ["units=4000000", "weight values"]),
    ({"class_name": "Conv1D", "config": {"filters": 1024, "kernel_size": 4096}}, (None, 8, 2),
     ["filters=1024", "weight values"]),
    ({"class_name": "ZeroPadding2D", "config": {"padding": 1 << 20}}, (None, 2, 2, 1), ["padding", "values a sample"]),
    ({"class_name": "Dense", "config": {"units": 3}}, (None, 1 << 14, 1 << 14), ["values a sample"]),
    ({"class_name": "UpSampling2D", "config": {"size": [1 << 20, 1 << 20]}}, (None, 2, 2, 1), ["values a sample"]),
    ({"class_name": "Conv2DTranspose", "config": {"filters": 1, "kernel_size": 1, "strides": [1 << 20, 1 << 20]}},
     (None, 2, 2, 1), ["filters=1", "values a sample"]),
    ({"class_name": "Bidirectional", "config": {"layer": {"class_name": "LSTM", "config": {"units": 1 << 20,
                                                                                        "return_sequences": True}}}},
     (None, 4, 5), ["weight values"]),
])
def test_sizes_the_config_implies_are_refused_before_they_are_allocated(tmp_path, layer, input_shape, words,
                                                                        no_big_allocation):
    path = tmp_path / "big.npz"
    _write_zip(path, _good_entries(_config([layer], input_shape=input_shape)))
    _refused(path, *words)


def test_a_folder_is_named_as_a_folder(tmp_path):
    folder = tmp_path / "model.npz"
    folder.mkdir()
    _refused(folder, "it is a folder, not a file")


def test_metadata_is_checked_by_the_callers_hook_before_the_model_is_built(tmp_path, monkeypatch):
    path = tmp_path / "rate.npz"
    Sequential([Input((5,)), Dense(3)]).save(str(path), metadata={"sample_rate": 1e7})

    def sane_rate(metadata):
        rate = (metadata or {}).get("sample_rate")
        if not (isinstance(rate, (int, float)) and 1_000 <= rate <= 384_000):
            raise ValueError(f"sample_rate {rate!r} Hz is outside 1 kHz to 384 kHz")

    built = []
    monkeypatch.setattr(Dense, "build", lambda self, shape: built.append(self))
    _refused(path, "metadata refused", "10000000.0 Hz", validate_metadata=sane_rate)
    assert not built
    with pytest.raises(ModelFileError, match="rate.npz.*10000000.0 Hz"):
        saving.read_metadata(path, validate_metadata=sane_rate)
    monkeypatch.undo()
    Sequential([Input((5,)), Dense(3)]).save(str(path), metadata={"sample_rate": 8000})
    assert saving.load_model(path, validate_metadata=sane_rate).count_params() == 18


def test_a_file_with_2000_layers_is_built_once(tmp_path, monkeypatch):
    path = tmp_path / "deep.npz"
    Sequential([Input((2,))] + [Dense(2) for _ in range(2000)]).save(str(path))
    builds, trials = [], []
    original_build, original_trial = Sequential.build, symbolic.trial_shapes
    monkeypatch.setattr(Sequential, "build", lambda self, shape: builds.append(shape) or original_build(self, shape))
    monkeypatch.setattr(symbolic, "trial_shapes", lambda layer, *args: trials.append(layer) or original_trial(layer, *args))
    model = saving.load_model(path)
    assert len(model.layers) == 2000   # the InputLayer is left out of model.layers, as in Keras
    assert len(builds) == 1            # was 2,001: one per layer appended
    assert len(trials) == 2000         # one trial call per layer (was 2,001,000 in all)


# --- saving: temp files and permission bits ------------------------------------------------------
def _small():
    return Sequential([Input((5,)), Dense(3)])


def test_temp_files_have_recognisable_names(tmp_path, monkeypatch):
    seen = []
    savez = np.savez

    def watching(file, **arrays):
        seen.extend(os.listdir(tmp_path))
        savez(file, **arrays)

    monkeypatch.setattr(np, "savez", watching)
    saving.save_model(_small(), tmp_path / "model.npz")
    assert len(seen) == 1
    assert seen[0].startswith(f".model.npz.minidl-tmp-{os.getpid()}-")
    assert os.listdir(tmp_path) == ["model.npz"]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temp_files_of_ours_are_cleaned_on_the_next_write(tmp_path):
    dead = tmp_path / f".model.npz.minidl-tmp-{_dead_pid()}-0a1b2c3d"
    old = tmp_path / f".ckpt-01.npz.minidl-tmp-{os.getppid()}-deadbeef"      # a live pid, untouched for an hour
    writing = tmp_path / f".model.npz.minidl-tmp-{os.getppid()}-feedf00d"  # a concurrent save, in progress
    others = [tmp_path / ".model.npz.x1y2.tmp", tmp_path / "notes.minidl-tmp-1-ab", tmp_path / "data.npz"]
    for path in [dead, old, writing] + others:
        path.write_bytes(b"half a save")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    saving.save_model(_small(), tmp_path / "model.npz")
    left = set(os.listdir(tmp_path))
    assert dead.name not in left and old.name not in left
    assert {writing.name, "model.npz"} | {p.name for p in others} == left


def test_a_saved_over_file_keeps_its_permission_bits(tmp_path):
    path = tmp_path / "model.npz"
    saving.save_model(_small(), path)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask   # a new file: as open() makes it
    os.chmod(path, 0o640)
    saving.save_model(_small(), path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640            # was 0o600 after every save
    saving.save_weights(_small(), path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
