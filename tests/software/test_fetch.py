"""gesture_snn.fetch against a local HTTP server on 127.0.0.1 serving small archives."""

from __future__ import annotations

import hashlib
import http.server
import io
import re
import socket
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from gesture_snn import fetch
from gesture_snn.cli import main
from gesture_snn.framing import FrameConfig, load_frames
from gesture_snn.spec.errors import UserError
from gesture_snn.fetch import Archive, fetch_dvsgesture

from conftest import write_dvs_root

CONFIG = FrameConfig(size=8, bin_ms=50, window_ms=300)


class ArchiveServer:
    """Serves ``files`` (URL path without "/" -> bytes), with ``Range: bytes=N-`` support;
    ``/redirect/<name>`` redirects to ``/<name>``.

    ``cut_after`` sends only that many body bytes (after announcing the full length) and closes the
    connection, as a dropped download does; ``honour_range=False`` answers every request in full.
    """

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.requests: list[tuple[str, str | None]] = []
        self.cut_after: int | None = None
        self.honour_range = True
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                range_header = self.headers.get("Range")
                server.requests.append((self.path, range_header))
                if self.path.startswith("/redirect/"):  # like figshare's API, which redirects to storage
                    self.send_response(302)
                    self.send_header("Location", self.path[len("/redirect") :])
                    self.end_headers()
                    return
                content = server.files.get(self.path.lstrip("/"))
                if content is None:
                    self.send_error(404, "no such file")
                    return
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
                if match and server.honour_range:
                    start = int(match.group(1))
                    if start >= len(content):
                        self.send_error(416, "range not satisfiable")
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(content) - 1}/{len(content)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(content) - start))
                self.end_headers()
                body = content[start:]
                if server.cut_after is not None:
                    body = body[: server.cut_after]
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def tar_gz(folder: Path, arcname: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=arcname)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A tiny root and its two archives, laid out like the real ones (top folder ibmGesture*)."""
    root = write_dvs_root(tmp_path_factory.mktemp("source"))
    blobs = {
        "1001": tar_gz(root / "DVSGesture" / "ibmGestureTrain", "ibmGestureTrain"),
        "1002": tar_gz(root / "DVSGesture" / "ibmGestureTest", "ibmGestureTest"),
    }
    archives = (
        Archive(train=True, file_id="1001", md5=hashlib.md5(blobs["1001"]).hexdigest()),
        Archive(train=False, file_id="1002", md5=hashlib.md5(blobs["1002"]).hexdigest()),
    )
    return root, blobs, archives


@pytest.fixture
def server(source):
    _, blobs, _ = source
    server = ArchiveServer(dict(blobs))
    yield server
    server.close()


def get(out, server, archives, **kwargs):
    return fetch_dvsgesture(out, url_base=server.url, archives=archives, progress=False, **kwargs)


def leftovers(out: Path) -> list[str]:
    """Everything under out/DVSGesture except finished archives and split folders."""
    folder = out / "DVSGesture"
    if not folder.exists():
        return []
    expected = {"ibmGestureTrain", "ibmGestureTest", "ibmGestureTrain.tar.gz", "ibmGestureTest.tar.gz"}
    return sorted(p.name for p in folder.iterdir() if p.name not in expected)


def test_download_check_extract_and_load(source, server, tmp_path):
    root, blobs, archives = source
    out = tmp_path / "real"
    assert get(out, server, archives) == {"train": "downloaded and extracted", "test": "downloaded and extracted"}
    assert (out / "DVSGesture" / "ibmGestureTrain.tar.gz").read_bytes() == blobs["1001"]  # kept for tonic
    assert leftovers(out) == []
    for train in (True, False):
        fetched = load_frames(out, train=train, config=CONFIG, progress=False)
        original = load_frames(root, train=train, config=CONFIG, progress=False)
        assert fetched.files == original.files
        np.testing.assert_array_equal(fetched.frames, original.frames)
    # a second run finds both splits complete and asks the server for nothing
    n_requests = len(server.requests)
    assert get(out, server, archives) == {"train": "already complete", "test": "already complete"}
    assert len(server.requests) == n_requests


def test_resume_from_truncated_part(source, server, tmp_path):
    _, blobs, archives = source
    out = tmp_path / "real"
    part = out / "DVSGesture" / "ibmGestureTrain.tar.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(blobs["1001"][:1000])
    assert get(out, server, archives, splits=("train",)) == {"train": "downloaded and extracted"}
    assert server.requests == [("/1001", "bytes=1000-")]
    assert (out / "DVSGesture" / "ibmGestureTrain.tar.gz").read_bytes() == blobs["1001"]
    assert leftovers(out) == []
    assert len(load_frames(out, train=True, config=CONFIG, progress=False)) == 110


def test_resume_through_redirect(source, server, tmp_path):
    _, blobs, archives = source
    out = tmp_path / "real"
    part = out / "DVSGesture" / "ibmGestureTest.tar.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(blobs["1002"][:999])
    fetch_dvsgesture(out, url_base=server.url + "redirect", archives=archives, splits=("test",), progress=False)
    assert server.requests == [("/redirect/1002", "bytes=999-"), ("/1002", "bytes=999-")]
    assert (out / "DVSGesture" / "ibmGestureTest.tar.gz").read_bytes() == blobs["1002"]


def test_interrupted_download_then_resume(source, server, tmp_path):
    _, blobs, archives = source
    out = tmp_path / "real"
    server.cut_after = 1500
    with pytest.raises(UserError, match="run the same command again to resume"):
        get(out, server, archives, splits=("train",))
    part = out / "DVSGesture" / "ibmGestureTrain.tar.gz.part"
    assert part.stat().st_size == 1500
    assert leftovers(out) == [part.name]  # only the resumable part
    server.cut_after = None
    get(out, server, archives, splits=("train",))
    assert server.requests[-1] == ("/1001", "bytes=1500-")
    assert (out / "DVSGesture" / "ibmGestureTrain.tar.gz").read_bytes() == blobs["1001"]
    assert leftovers(out) == []


def test_server_without_range_support(source, server, tmp_path):
    _, blobs, archives = source
    out = tmp_path / "real"
    part = out / "DVSGesture" / "ibmGestureTrain.tar.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 700)  # would corrupt the archive if appended to
    server.honour_range = False
    get(out, server, archives, splits=("train",))
    assert (out / "DVSGesture" / "ibmGestureTrain.tar.gz").read_bytes() == blobs["1001"]


def test_complete_part_is_not_downloaded_again(source, server, tmp_path):
    _, blobs, archives = source
    out = tmp_path / "real"
    part = out / "DVSGesture" / "ibmGestureTrain.tar.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(blobs["1001"])
    assert get(out, server, archives, splits=("train",)) == {"train": "downloaded and extracted"}
    assert server.requests == [("/1001", f"bytes={len(blobs['1001'])}-")]  # answered 416


def test_md5_mismatch_leaves_nothing(source, server, tmp_path):
    _, _, archives = source
    out = tmp_path / "real"
    wrong = (Archive(train=True, file_id="1001", md5="0" * 32),)
    with pytest.raises(UserError, match="has md5 .* expected 0{32}"):
        get(out, server, wrong)
    assert leftovers(out) == []
    assert not (out / "DVSGesture" / "ibmGestureTrain").exists()
    assert not (out / "DVSGesture" / "ibmGestureTrain.tar.gz").exists()


def test_server_down(source, tmp_path):
    _, _, archives = source
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "real"
    with pytest.raises(UserError, match=f"cannot reach http://127.0.0.1:{port}/1001"):
        fetch_dvsgesture(out, url_base=f"http://127.0.0.1:{port}", archives=archives, progress=False)
    assert leftovers(out) == []


def test_http_error(source, server, tmp_path):
    missing = (Archive(train=True, file_id="999", md5="0" * 32),)
    with pytest.raises(UserError, match="HTTP 404"):
        get(tmp_path / "real", server, missing)


def serve_single(server, tmp_path, build) -> tuple[Path, tuple[Archive]]:
    """Serve an archive made by ``build(tar)`` as file 2001; return (out, archives)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        build(tar)
    server.files["2001"] = buffer.getvalue()
    return tmp_path / "real", (Archive(train=True, file_id="2001", md5=hashlib.md5(buffer.getvalue()).hexdigest()),)


def add_bytes(tar, name, content=b"data", kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = len(content) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(content) if kind == tarfile.REGTYPE else None)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda tar: add_bytes(tar, "ibmGestureTrain/../../evil.npy"), "unsafe path"),
        (lambda tar: add_bytes(tar, "/tmp/evil.npy"), "unsafe path"),
        (
            lambda tar: add_bytes(tar, "ibmGestureTrain/link", kind=tarfile.SYMTYPE, linkname="/etc/passwd"),
            "not a regular file",
        ),
        (lambda tar: add_bytes(tar, "somethingElse/0.npy"), "no ibmGestureTrain/ folder"),
    ],
)
def test_bad_archive_is_refused(server, tmp_path, build, message):
    out, archives = serve_single(server, tmp_path, build)
    with pytest.raises(UserError, match=message):
        get(out, server, archives)
    assert leftovers(out) == []
    assert not (out / "DVSGesture" / "ibmGestureTrain").exists()
    assert not (tmp_path / "evil.npy").exists()


def test_metadata_beside_the_split_folder_is_skipped(server, tmp_path):
    def build(tar):
        add_bytes(tar, "./ibmGestureTrain/user01_lab/0.npy")
        add_bytes(tar, "._ibmGestureTrain")

    out, archives = serve_single(server, tmp_path, build)
    get(out, server, archives)
    assert (out / "DVSGesture" / "ibmGestureTrain" / "user01_lab" / "0.npy").read_bytes() == b"data"
    assert leftovers(out) == []


def test_existing_synthetic_root_is_not_touched(server, source, tmp_path):
    _, _, archives = source
    synthetic = write_dvs_root(tmp_path / "synthetic")  # placeholder archives, not the real ones
    before = sorted(p.relative_to(synthetic) for p in synthetic.rglob("*"))
    with pytest.raises(UserError, match="not written by `gesture-snn fetch`"):
        get(synthetic, server, archives)
    assert sorted(p.relative_to(synthetic) for p in synthetic.rglob("*")) == before
    assert server.requests == []


def test_foreign_archive_without_folder(server, source, tmp_path):
    _, _, archives = source
    out = tmp_path / "real"
    (out / "DVSGesture").mkdir(parents=True)
    (out / "DVSGesture" / "ibmGestureTrain.tar.gz").write_bytes(b"half of something")
    with pytest.raises(UserError, match="md5 is not the expected"):
        get(out, server, archives, splits=("train",))
    assert (out / "DVSGesture" / "ibmGestureTrain.tar.gz").read_bytes() == b"half of something"


def test_cli_fetch(source, server, tmp_path, monkeypatch, capsys):
    _, _, archives = source
    monkeypatch.setattr(fetch, "DVSGESTURE_ARCHIVES", archives)
    out = tmp_path / "real"
    assert main(["fetch", "--out", str(out), "--url-base", server.url, "--split", "test", "--no-progress"]) == 0
    assert "test split: downloaded and extracted" in capsys.readouterr().out
    assert (out / "DVSGesture" / "ibmGestureTest").is_dir()
    assert not (out / "DVSGesture" / "ibmGestureTrain").exists()


def test_cli_fetch_error_exit_code(source, tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["fetch", "--out", str(tmp_path / "x"), "--url-base", f"http://127.0.0.1:{port}/", "--no-progress"]) == 2
    assert "cannot reach" in capsys.readouterr().err


def test_default_archives_are_tonics():
    import tonic.datasets

    dvs = tonic.datasets.DVSGesture
    assert {(a.train, a.file_id, a.md5) for a in fetch.DVSGESTURE_ARCHIVES} == {
        (True, dvs.train_url.rsplit("/", 1)[1], dvs.train_md5),
        (False, dvs.test_url.rsplit("/", 1)[1], dvs.test_md5),
    }
