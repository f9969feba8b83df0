"""Web archives (WARC, ISO 28500): a crawl's records hold the fetched files whole (round 18:
clam.exe in a `.warc` and a per-record gzipped `.warc.gz` was delivered; bsdtar writes the
records out). Real files: wget crawls clam.exe from a local HTTP server into a WARC; bsdtar is
the oracle that the archive holds it."""

from __future__ import annotations

import functools
import hashlib
import http.server
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from scan.test_containers import CLAM, FOUND, dbdir, engine, tool
from zerohour.scan import Engine, filetype
from zerohour.scan.types import FileType

__all__ = ["dbdir", "engine"]  # (fixtures)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """clam.exe behind an HTTP server on 127.0.0.1: its URL."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "clam.exe").write_bytes(CLAM.read_bytes())

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/clam.exe"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _resource_warc(payload: bytes) -> bytes:
    """A WARC of one `resource` record, as ISO 28500 writes it (bsdtar reads these)."""
    head = (b"WARC/1.0\r\nWARC-Type: resource\r\nWARC-Record-ID: <urn:uuid:0000>\r\n"
            b"WARC-Date: 2026-12-05T17:00:00Z\r\nWARC-Target-URI: http://example.test/clam.exe"
            b"\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n"
            % len(payload))
    return head + payload + b"\r\n\r\n"


def test_a_resource_record_is_scanned(engine: Engine, tmp_path: Path) -> None:
    warc = tmp_path / "crawl.warc"
    warc.write_bytes(_resource_warc(CLAM.read_bytes()))
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run([tool("bsdtar"), "-xf", str(warc), "-C", str(out)], check=True)
    want = hashlib.sha256(CLAM.read_bytes()).hexdigest()
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*")
            if p.is_file()] == [want]
    assert filetype.detect(warc.read_bytes()) is FileType.WARC
    assert engine.scan_bytes(warc.read_bytes(), warc.name).names == FOUND
    cut = warc.read_bytes()[:-200]  # (Content-Length past the end)
    assert engine.scan_bytes(cut, warc.name).names == ("Heuristics.Broken.WARC",)


@pytest.mark.parametrize("compressed", [False, True])
def test_a_crawled_response_is_scanned(engine: Engine, tmp_path: Path, served: str,
                                       compressed: bool) -> None:
    """wget keeps each fetched file as a `response` record (the HTTP response as received):
    the body, the file wget saved, is what a replay tool serves."""
    flags = [] if compressed else ["--no-warc-compression"]
    subprocess.run([tool("wget"), "-q", "--no-proxy", f"--warc-file={tmp_path / 'crawl'}",
                    *flags, "-O", str(tmp_path / "fetched"), served], check=True,
                   cwd=tmp_path)
    assert (tmp_path / "fetched").read_bytes() == CLAM.read_bytes()
    warc = tmp_path / ("crawl.warc.gz" if compressed else "crawl.warc")
    data = warc.read_bytes()
    assert engine.scan_bytes(data, warc.name).names == FOUND
    if not compressed:
        assert filetype.detect(data) is FileType.WARC
        i = data.index(b"WARC-Type: response")
        assert CLAM.read_bytes() in data[i:]


@pytest.mark.parametrize("how", ["second-length-other-case", "length-behind-bare-lf"])
def test_headers_readers_disagree_on_are_broken(engine: Engine, tmp_path: Path,
                                                 how: str) -> None:
    """Round 19: a record whose length one reader takes from a header another does not see
    (a `content-length` in other case, a line behind a bare LF: libarchive reads only CRLF
    lines of the exact name). bsdtar writes clam.exe; the engine finds it or calls the
    archive damaged."""
    clam = CLAM.read_bytes()
    if how == "second-length-other-case":
        head = (b"WARC/1.0\r\ncontent-length: %d\r\nWARC-Date: 2026-01-01T00:00:00Z\r\n"
                b"WARC-Type: resource\r\nWARC-Target-URI: http://e.test/clam.exe\r\n"
                b"Content-Length: %d\r\n\r\n" % (len(clam) + 4, len(clam)))
    else:
        head = (b"WARC/1.0\r\nWARC-Date: 2026-01-01T00:00:00Z\r\nWARC-Type: resource\r\n"
                b"WARC-Target-URI: http://e.test/clam.exe\r\nX-A: a\nContent-Length: %d\r\n"
                b"Content-Length: %d\r\n\r\n" % (len(clam) + 4, len(clam)))
    data = head + clam + b"\r\n\r\n"
    warc = tmp_path / "crawl.warc"
    warc.write_bytes(data)
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run([tool("bsdtar"), "-xf", str(warc), "-C", str(out)], check=False,
                   capture_output=True)
    want = hashlib.sha256(clam).hexdigest()
    assert want in [hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*")
                    if p.is_file()]
    names = engine.scan_bytes(data, warc.name).names
    assert names in (FOUND, ("Heuristics.Broken.WARC",)), names
