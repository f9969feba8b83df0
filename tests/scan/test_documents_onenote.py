"""OneNote sections: every FileDataStoreObject is an attachment. No Debian tool writes .one, so
the sample is built here after MS-ONESTORE (2.3.1 header, 2.6.13 FileDataStoreObject);
clamscan 1.4, which parses OneNote, is the oracle on it."""

from __future__ import annotations

import hashlib
import struct
import uuid
from pathlib import Path

import pytest
from test_documents_pdf import clamscan  # type: ignore[import-not-found]

from helpers import cpu
from zerohour.scan import Engine, filetype, load_database
from zerohour.scan.documents import onenote
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import FileType

TESTFILES = Path("/usr/share/clamav-testfiles")
NAME = "ClamAV-Test-File"
pytestmark = pytest.mark.skipif(not (TESTFILES / "clam.exe").exists(),
                                reason="clamav-testfiles not installed")


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


def _guid(text: str) -> bytes:
    return uuid.UUID(text).bytes_le


FCR32_NIL = struct.pack("<II", 0xFFFFFFFF, 0)
FCR32_ZERO = struct.pack("<II", 0, 0)
FCR64X32_NIL = struct.pack("<QI", 0xFFFFFFFFFFFFFFFF, 0)
FCR64X32_ZERO = struct.pack("<QI", 0, 0)


def one_header(total: int) -> bytes:
    """The 1024-byte revision-store header (MS-ONESTORE 2.3.1) of a .one section."""
    head = (
        _guid("7B5C52E4-D88C-4DA7-AEB1-5378D02996D3")  # guidFileType: .one
        + _guid("2E3F1A10-5B7C-4D11-9A22-0123456789AB")  # guidFile
        + bytes(16)  # guidLegacyFileVersion
        + _guid("109ADD3F-911B-49F5-A5D0-1791EDC8AED8")  # guidFileFormat
        + struct.pack("<IIII", 0x2A, 0x2A, 0x2A, 0x2A)  # ffv* (OneNote 2010+)
        + FCR32_ZERO + FCR32_NIL  # fcrLegacyFreeChunkList, fcrLegacyTransactionLog
        + struct.pack("<IIQ", 0, 0, 0)  # cTransactionsInLog, cbLegacyExpected..., placeholder
        + FCR32_NIL  # fcrLegacyFileNodeListRoot
        + struct.pack("<IBBBB", 0, 0, 0, 0, 0)  # free space, fNeedsDefrag ... fHasNoEmbedded...
        + bytes(16) + struct.pack("<I", 0)  # guidAncestor, crcName
        + FCR64X32_ZERO + FCR64X32_ZERO + FCR64X32_NIL + FCR64X32_ZERO  # hashed, log, root, free
        + struct.pack("<QQ", total, 0)  # cbExpectedFileLength, cbFreeSpaceInFreeChunkList
        + _guid("6F1B9C20-1111-2222-3333-444455556666") + struct.pack("<Q", 1)  # file version
        + bytes(16) + struct.pack("<I", 0)  # guidDenyReadFileVersion, grfDebugLogFlags
        + FCR64X32_ZERO + FCR64X32_ZERO  # fcrDebugLog, fcrAllocVerificationFreeChunkList
        + struct.pack("<IIII", 0, 0, 0, 0)  # bn* build numbers
    )
    return head.ljust(1024, b"\x00")  # rgbReserved


def file_data(payload: bytes, declared: int | None = None) -> bytes:
    """A FileDataStoreObject: header GUID, cbLength, unused, reserved, data, padding, footer."""
    length = len(payload) if declared is None else declared
    return (onenote.FILE_DATA_HEADER + struct.pack("<QIQ", length, 0, 0) + payload
            + bytes(-len(payload) % 8) + onenote.FILE_DATA_FOOTER)


def one_file(*blocks: bytes) -> bytes:
    body = b"".join(blocks)
    return one_header(1024 + len(body)) + body


def test_embedded_file_matches_clamscan(tmp_path: Path, exe: bytes, engine: Engine,
                                        db: Path) -> None:
    picture = b"\x89PNG\r\n\x1a\n button picture"
    data = one_file(file_data(picture), file_data(exe))
    assert filetype.detect(data) is FileType.ONENOTE
    path = tmp_path / "invoice.one"
    path.write_bytes(data)
    assert set(engine.scan_bytes(data).names) == clamscan(db, path) == {NAME}
    ctx = ScanContext()
    children = list(onenote.onenote_children(data, ctx))
    assert [c.data for c in children] == [picture, exe]
    assert all(c.is_attachment for c in children)
    assert [(m.container, m.size, m.index) for m in ctx.members] == [
        (FileType.ONENOTE, len(picture), 0), (FileType.ONENOTE, len(exe), 1)]


def test_block_inside_a_block_is_found(exe: bytes) -> None:
    data = one_file(file_data(b"cover " + file_data(exe) + b" more"))
    assert exe in [c.data for c in onenote.onenote_children(data, ScanContext())]


def test_truncated_block_is_broken_after_its_prefix(exe: bytes, engine: Engine) -> None:
    data = one_file(file_data(exe))[: 1024 + 36 + 300]
    ctx = ScanContext()
    assert [c.data for c in onenote.onenote_children(data, ctx)] == [exe[:300]]
    assert ("Broken", "OneNote") in ctx.events
    huge = one_file(file_data(exe, declared=1 << 62))
    names = engine.scan_bytes(huge).names  # (the file the block holds whole is also found,
    assert names[-1] == "Heuristics.Broken.OneNote"  # carved out of the raw bytes: the PE
    assert set(names[:-1]) <= {"ClamAV-Test-File"}  # prefix hashes)
    cut_header = one_header(2000) + onenote.FILE_DATA_HEADER + b"\x01\x02"
    assert engine.scan_bytes(cut_header).names == ("Heuristics.Broken.OneNote",)


def test_many_blocks_are_bounded() -> None:
    data = one_file(*(file_data(b"") for _ in range(50_000)))
    ctx = ScanContext()
    t0 = cpu.process_time()
    assert list(onenote.onenote_children(data, ctx)) == []
    assert cpu.process_time() - t0 < 5
    assert ("Unsupported", "OneNote.Blocks") in ctx.events
