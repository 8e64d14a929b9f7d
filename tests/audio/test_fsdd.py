"""audio.fsdd: lookup order, download against a local fake server, checksums, splits."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

import pytest

from audio import fsdd
from audio.fsdd import FSDD, Recording, download_fsdd, locate_fsdd
from tests.audio._helpers import fsdd_recordings, write_fake_fsdd


class _Server:
    """http.server on 127.0.0.1 in a thread, serving one folder and counting requests."""

    def __init__(self, folder: Path) -> None:
        self.requests: list[str] = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                server.requests.append(self.path)
                super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/recordings/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server(tmp_path):
    remote = tmp_path / "remote"
    checksums = write_fake_fsdd(remote / "recordings")
    running = _Server(remote)
    running.checksums = checksums
    yield running
    running.close()


@pytest.fixture()
def isolated(tmp_path, monkeypatch):
    """No MINIDL_DATA, an empty home and cache: nothing to find but what a test puts there."""
    monkeypatch.delenv("MINIDL_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MINIDL_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_download_verifies_and_is_resumable(server, tmp_path):
    folder = download_fsdd(tmp_path / "fsdd", server.url, server.checksums, workers=3)
    assert sorted(p.name for p in folder.iterdir()) == sorted(server.checksums)
    assert fsdd.read_checksums(tmp_path / "fsdd" / "SHA256SUMS") == server.checksums
    fetched = len(server.requests)
    assert fetched == len(server.checksums)
    (folder / "7_bob_49.wav").unlink()
    download_fsdd(tmp_path / "fsdd", server.url, server.checksums)
    assert len(server.requests) == fetched + 1  # only the missing file


def test_download_rejects_a_bad_checksum_and_keeps_nothing(server, tmp_path):
    checksums = dict(server.checksums)
    checksums["3_ann_0.wav"] = "0" * 64
    with pytest.raises(ValueError, match=r"3_ann_0.wav has SHA-256 .* SHA256SUMS says 0000"):
        download_fsdd(tmp_path / "fsdd", server.url, checksums, workers=1)
    folder = tmp_path / "fsdd" / "recordings"
    assert not (folder / "3_ann_0.wav").exists()
    assert not list(folder.glob(".*part"))


def test_download_reports_a_missing_file(server, tmp_path):
    checksums = dict(server.checksums, **{"9_zed_1.wav": "1" * 64})
    with pytest.raises(OSError, match="404"):
        download_fsdd(tmp_path / "fsdd", server.url, checksums, workers=1)


def test_an_unreachable_server_fails_after_one_request(server, tmp_path):
    wrong = server.url.replace("/recordings/", "/nowhere/")   # every file a 404, as offline would fail
    with pytest.raises(OSError, match="404"):
        download_fsdd(tmp_path / "fsdd", wrong, server.checksums, workers=4)
    assert len(server.requests) == 1   # not one failed request per file


def test_lookup_order(server, isolated, monkeypatch):
    monkeypatch.setattr(fsdd, "read_checksums", lambda *a: dict(server.checksums))
    # 4. nothing anywhere: download into ~/.cache/minidl/fsdd
    cache = isolated / "home" / ".cache" / "minidl" / "fsdd"
    assert locate_fsdd(base_url=server.url) == cache / "recordings"
    assert len(server.requests) == len(server.checksums)
    # 3. the complete cache is used without asking the server again
    assert locate_fsdd(base_url=server.url) == cache / "recordings"
    assert len(server.requests) == len(server.checksums)
    # 2. $MINIDL_DATA/fsdd comes before the cache
    write_fake_fsdd(isolated / "data" / "fsdd" / "recordings")
    monkeypatch.setenv("MINIDL_DATA", str(isolated / "data"))
    assert locate_fsdd() == isolated / "data" / "fsdd" / "recordings"
    # 1. an explicit root comes first, as an fsdd folder or a recordings folder
    write_fake_fsdd(isolated / "mine" / "recordings")
    assert locate_fsdd(isolated / "mine") == isolated / "mine" / "recordings"
    assert locate_fsdd(isolated / "mine" / "recordings") == isolated / "mine" / "recordings"
    with pytest.raises(FileNotFoundError, match="no recordings"):
        locate_fsdd(isolated / "nowhere")


def test_offline_without_a_copy_says_where_to_put_the_files(isolated, monkeypatch):
    monkeypatch.setattr(fsdd, "read_checksums", lambda *a: {"0_ann_0.wav": "0" * 64})
    closed = "http://127.0.0.1:9/recordings/"  # discard port: the connection is refused
    with pytest.raises(FileNotFoundError) as caught:
        FSDD(base_url=closed)
    message = str(caught.value)
    assert "MINIDL_DATA is unset" in message and "download from http://127.0.0.1:9" in message
    assert "<data>/fsdd/recordings/" in message and ".cache/minidl/fsdd/recordings" in message
    with pytest.raises(FileNotFoundError, match="download=False"):
        FSDD(download=False)


def test_recordings_splits_and_speakers(tmp_path):
    write_fake_fsdd(tmp_path / "fsdd" / "recordings")
    dataset = FSDD(tmp_path / "fsdd")
    recordings = dataset.recordings()
    assert len(recordings) == 16
    assert recordings[0] == Recording(tmp_path / "fsdd" / "recordings" / "3_ann_0.wav",
                                      3, "ann", 0)
    assert dataset.speakers() == ["ann", "bob"]
    train, test = dataset.split("official")
    assert {r.take for r in train} == {5, 49} and {r.take for r in test} == {0, 4}
    train, test = dataset.split("speaker", held_out="bob")
    assert {r.speaker for r in test} == {"bob"} and {r.speaker for r in train} == {"ann"}
    with pytest.raises(ValueError, match=r"held_out must be one of \['ann', 'bob'\], got 'eve'"):
        dataset.split("speaker", held_out="eve")
    with pytest.raises(ValueError, match="kind must be 'official' or 'speaker', got 'random'"):
        dataset.split("random")


def test_real_fsdd_layout():
    folder = fsdd_recordings()
    dataset = FSDD(folder.parent)
    assert len(dataset.recordings()) == 3000
    assert dataset.speakers() == ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]
    train, test = dataset.split("official")
    assert (len(train), len(test)) == (2700, 300)
    train, test = dataset.split("speaker", held_out="theo")
    assert (len(train), len(test)) == (2500, 500)
    shipped = fsdd.read_checksums()
    assert sorted(shipped) == sorted(r.name for r in dataset.recordings())
    for recording in dataset.recordings()[::300]:
        assert fsdd.sha256_of(recording.path) == shipped[recording.name]


# --- issue 14: say what a root is when it is no folder of recordings ---

def test_a_root_that_is_a_file_says_so(tmp_path):
    (tmp_path / "fsdd.zip").write_bytes(b"PK")
    with pytest.raises(FileNotFoundError, match=r"in .*fsdd.zip: it is a file, not a folder"):
        locate_fsdd(tmp_path / "fsdd.zip")
    with pytest.raises(FileNotFoundError, match=r"in .*nowhere: it does not exist"):
        locate_fsdd(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty: neither it nor .*empty/recordings holds"):
        locate_fsdd(tmp_path / "empty")


def test_an_unlistable_root_says_permission_denied(tmp_path, monkeypatch):
    folder = tmp_path / "fsdd" / "recordings"
    write_fake_fsdd(folder)
    folder.chmod(0o300)   # may enter, may not list
    if os.geteuid() == 0:   # root lists anything: make scandir answer as it would for others
        scandir = os.scandir

        def refuse(path="."):
            if Path(path) == folder:
                raise PermissionError(13, "Permission denied", str(path))
            return scandir(path)
        monkeypatch.setattr(os, "scandir", refuse)
    try:
        with pytest.raises(FileNotFoundError) as caught:
            locate_fsdd(tmp_path / "fsdd")
    finally:
        folder.chmod(0o755)
    assert "recordings cannot be listed (permission denied)" in str(caught.value)


def test_an_unusable_minidl_data_says_why_and_names_are_escaped(isolated, monkeypatch):
    monkeypatch.setattr(fsdd, "read_checksums", lambda *a: {"0_ann_0.wav": "0" * 64})
    data = isolated / "data\n\x1b[2J"
    data.mkdir()
    (data / "fsdd").write_bytes(b"")
    monkeypatch.setenv("MINIDL_DATA", str(data))
    with pytest.raises(FileNotFoundError) as caught:
        FSDD(download=False)
    message = str(caught.value)
    assert "data\\n\\x1b[2J/fsdd (it is a file, not a folder)" in message
    assert "\n" not in message and "\x1b" not in message
