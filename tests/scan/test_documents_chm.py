"""CHM: the directory and section 0 in Python, LZX (section 1) through libmspack, bounded before
libmspack runs. clam.chm (ClamAV's corpus, made by Microsoft's HTML Help compiler) keeps
clam.exe LZX-compressed; clamscan is the oracle."""

from __future__ import annotations

import contextlib
import hashlib
import random
import struct
from pathlib import Path

import pytest
from test_documents_pdf import clamscan  # type: ignore[import-not-found]

from zerohour.errors import ScanLimitExceeded
from zerohour.scan import Engine, filetype, load_database
from zerohour.scan.documents import chm
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import FileType

TESTFILES = Path("/usr/share/clamav-testfiles")
CLAM_CHM = TESTFILES / "clam.chm"
NAME = "ClamAV-Test-File"
pytestmark = pytest.mark.skipif(not CLAM_CHM.exists(), reason="clamav-testfiles not installed")
needs_lzx = pytest.mark.skipif(not chm.lzx_available(), reason="libmspack0 not installed")


@pytest.fixture(scope="module")
def exe() -> bytes:
    return (TESTFILES / "clam.exe").read_bytes()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, exe: bytes) -> Path:
    folder = tmp_path_factory.mktemp("db")
    (folder / "clam.hdb").write_text(f"{hashlib.md5(exe).hexdigest()}:{len(exe)}:{NAME}\n")
    return folder


@pytest.fixture(scope="module")
def engine(db: Path) -> Engine:
    return Engine(load_database([db]), allmatch=True)


@pytest.fixture(scope="module")
def clam_chm() -> bytes:
    return CLAM_CHM.read_bytes()


@needs_lzx
def test_clam_chm(engine: Engine, db: Path, clam_chm: bytes, exe: bytes) -> None:
    assert filetype.detect(clam_chm) is FileType.CHM
    assert set(engine.scan_bytes(clam_chm).names) == clamscan(db, CLAM_CHM) == {NAME}
    ctx = ScanContext()
    children = {c.name: c for c in chm.chm_children(clam_chm, ctx)}
    assert children["/clam.exe.txt"].data == exe
    assert children["/clam.exe.txt"].origin == "chm-lzx"
    assert children["/#SYSTEM"].origin == "chm"  # section 0
    assert ctx.events == []
    assert "/clam.exe.txt" in {m.name for m in ctx.members}


def test_directory_and_section0_without_libmspack(
    monkeypatch: pytest.MonkeyPatch, clam_chm: bytes
) -> None:
    monkeypatch.setattr(chm, "_libmspack", lambda: None)
    ctx = ScanContext()
    names = {c.name for c in chm.chm_children(clam_chm, ctx)}
    assert "/#SYSTEM" in names
    assert "/clam.exe.txt" not in names
    assert ctx.events == [("Unsupported", "CHM.LZX")]


def _encint(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def with_length(data: bytes, name: str, length: int, offset: int | None = None) -> bytes:
    """clam.chm with one directory entry's length (and offset) rewritten (the PMGL chunk
    re-encoded)."""
    entries, _off, _whole = chm.parse_directory(data, ScanContext())
    (dir_off,) = struct.unpack_from("<Q", data, 0x48)
    itsp_len, _u, chunk_size = struct.unpack_from("<III", data, dir_off + 8)
    start = next(dir_off + itsp_len + i * chunk_size for i in range(8)
                 if data[dir_off + itsp_len + i * chunk_size:][:4] == b"PMGL")
    body = b"".join(
        _encint(len(e.name.encode())) + e.name.encode() + _encint(e.section)
        + _encint(offset if e.name == name and offset is not None else e.offset)
        + _encint(length if e.name == name else e.length) for e in entries)
    free = chunk_size - 20 - len(body)
    chunk = data[start : start + 4] + struct.pack("<I", free) + data[start + 8 : start + 20] + body
    chunk = chunk.ljust(chunk_size - 2, b"\x00") + struct.pack("<H", len(entries))
    return data[:start] + chunk + data[start + chunk_size :]


@needs_lzx
def test_lzx_bomb_is_stopped_before_libmspack(engine: Engine, clam_chm: bytes) -> None:
    bomb = with_length(clam_chm, "/clam.exe.txt", 1 << 30)
    with pytest.raises(ScanLimitExceeded) as exc:
        list(chm.chm_children(bomb, ScanContext()))
    assert exc.value.which == "CompressionRatio"
    assert "Heuristics.Limits.Exceeded.CompressionRatio" in engine.scan_bytes(bomb).names


@needs_lzx
def test_entry_past_the_lzx_data_is_broken(engine: Engine, clam_chm: bytes) -> None:
    # libmspack pads the last LZX frame with zeros (a length a little past the end is read as
    # such); an entry frames beyond the content does not extract.
    data = with_length(clam_chm, "/#STRINGS", 100, offset=1 << 20)
    assert "Heuristics.Broken.CHM" in engine.scan_bytes(data).names
    assert NAME in engine.scan_bytes(data).names  # its siblings still are scanned


def test_truncated_and_mutated_chm_never_crash(clam_chm: bytes) -> None:
    rnd = random.Random(10)
    for cut in (0x30, 0x80, 0x200, 4300, 6000, len(clam_chm) - 100):
        ctx = ScanContext()
        list(chm.chm_children(clam_chm[:cut], ctx))
        assert ctx.events, cut  # broken or unsupported, never silently clean
    for _ in range(400):
        buf = bytearray(clam_chm)
        for _ in range(rnd.randint(1, 20)):
            buf[rnd.randrange(len(buf))] = rnd.randrange(256)
        with contextlib.suppress(ScanLimitExceeded):
            list(chm.chm_children(bytes(buf), ScanContext()))
