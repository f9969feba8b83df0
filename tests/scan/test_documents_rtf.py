"""RTF: embedded OLE objects and packaged files, through Word's obfuscation tricks; malformed
RTF is text; pathological inputs stay linear. clam.exe.rtf (from ClamAV's corpus) is the
real-tool sample and clamscan the oracle on it."""

from __future__ import annotations

import hashlib
import re
import struct
from pathlib import Path

import pytest
from test_archive_ole2 import MACRO, macro_doc  # type: ignore[import-not-found]
from test_documents_pdf import clamscan  # type: ignore[import-not-found]

from helpers import cpu
from zerohour.scan import Engine, filetype, load_database
from zerohour.scan.documents import rtf
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import FileType

TESTFILES = Path("/usr/share/clamav-testfiles")
NAME = "ClamAV-Test-File"
pytestmark = pytest.mark.skipif(not (TESTFILES / "clam.exe.rtf").exists(),
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


@pytest.fixture(scope="module")
def clam_rtf() -> bytes:
    return (TESTFILES / "clam.exe.rtf").read_bytes()


def objdata_hex(doc: bytes) -> bytes:
    m = re.search(rb"\\objdata\s*([0-9a-fA-F\s]+)\}", doc)
    assert m is not None
    return re.sub(rb"\s", b"", m.group(1))


def wrap(hexdata: bytes, header: bytes = b"{\\rtf1\\ansi ") -> bytes:
    return header + b"{\\object\\objemb{\\*\\objclass Package}{\\*\\objdata " + hexdata + b"}}}"


def ole1(class_name: bytes, native: bytes) -> bytes:
    """An OLE1 embedded object (MS-OLEDS 2.2.4): version, format 2, class, topic, item, data."""
    name = class_name + b"\x00"
    return (struct.pack("<III", 0x501, 2, len(name)) + name + struct.pack("<II", 0, 0)
            + struct.pack("<I", len(native)) + native)


def test_clam_exe_rtf(engine: Engine, db: Path, clam_rtf: bytes) -> None:
    assert filetype.detect(clam_rtf) is FileType.RTF
    report = engine.scan_bytes(clam_rtf)
    assert set(report.names) == clamscan(db, TESTFILES / "clam.exe.rtf") == {NAME}
    [child] = rtf.rtf_children(clam_rtf, ScanContext())
    assert (child.name, child.origin, child.is_attachment) == ("Clam.exe", "rtf-package", True)


@pytest.mark.parametrize(
    "trick",
    ["whitespace", "odd-digit", "quote-eats-digit", "control-words", "bin", "rtvpn-header",
     "nested-groups", "unclosed"],
)
def test_obfuscated_objdata(engine: Engine, exe: bytes, clam_rtf: bytes, trick: str) -> None:
    hexdata = objdata_hex(clam_rtf)
    half = len(hexdata) // 2 & ~1
    header = b"{\\rtf1\\ansi "
    if trick == "whitespace":
        body = b"\r\n \t".join(hexdata[i : i + 7] for i in range(0, len(hexdata), 7))
    elif trick == "odd-digit":
        body = hexdata + b"f"
    elif trick == "quote-eats-digit":
        # Word drops the digit before \'hh when an odd count was read: "a" vanishes here.
        body = hexdata[:half] + b"a\\'41" + hexdata[half:]
    elif trick == "control-words":
        body = hexdata[:half] + b"\\par\\fs20 " + hexdata[half:]
    elif trick == "bin":
        raw = bytes.fromhex(hexdata[half:].decode())
        body = hexdata[:half] + b"\\bin%d " % len(raw) + raw
    elif trick == "rtvpn-header":
        header, body = b"{\\rtvpn ", hexdata
    elif trick == "nested-groups":
        body = hexdata[:half] + b"{\\*\\junk}{}" + hexdata[half:]
    else:  # unclosed: the file ends inside the object
        data = b"{\\rtf1{\\object{\\*\\objdata " + hexdata
        assert NAME in engine.scan_bytes(data).names
        return
    data = wrap(body, header)
    assert filetype.detect(data) is FileType.RTF
    got = [c.data for c in rtf.rtf_children(data, ScanContext())]
    assert exe in got, trick
    assert NAME in engine.scan_bytes(data).names


def test_embedded_word_document_with_macro(engine: Engine) -> None:
    doc = macro_doc()
    data = wrap(ole1(b"Word.Document.8", doc).hex().encode())
    [child] = rtf.rtf_children(data, ScanContext())
    assert child.data == doc
    assert child.origin == "rtf-object"
    layers = engine.scan_bytes(data).layers
    assert [la.filetype for la in layers][:2] == [FileType.RTF, FileType.OLE2]
    assert any(la.md5 == hashlib.md5(MACRO).hexdigest() for la in layers)


def test_malformed_rtf_is_text(engine: Engine) -> None:
    data = b"{\\rtf1\\ansi {\\b bold}}}}} \\'zz \\bin-5 {{{\\unknownword123 text\\"
    # no object, no damage: only the text a reader sees (`rtf_text`)
    assert [c.origin for c in rtf.rtf_children(data, ScanContext())] == ["rtf-text"]
    report = engine.scan_bytes(data)
    assert report.names == ()
    assert report.errors == ()


def test_object_that_is_not_ole1_is_broken(engine: Engine, exe: bytes) -> None:
    data = wrap(exe.hex().encode())  # an executable straight in the hex: no OLE1 header
    assert engine.scan_bytes(data).names == (NAME, "Heuristics.Broken.RTF")


@pytest.mark.parametrize(
    "data",
    [
        b"{\\rtf1 " + b"a\\par " * 300_000 + b"}",  # text runs: quadratic in oletools' parser
        b"{\\rtf1{\\object{\\*\\objdata " + b"0a\\'41" * 200_000 + b"}}}",  # re-filtered per \'
        b"{\\rtf1{\\object{\\*\\objdata " + b"0a\\x " * 300_000 + b"}}}",
        b"{\\rtf1" + b"{" * 500_000,
    ],
    ids=["text-runs", "quotes-in-object", "words-in-object", "deep-groups"],
)
def test_pathological_rtf_is_linear(data: bytes) -> None:
    t0 = cpu.process_time()
    list(rtf.rtf_children(data, ScanContext()))
    assert cpu.process_time() - t0 < 8


def test_parser_checks_the_clock() -> None:
    from zerohour.errors import ScanLimitExceeded

    now = [0.0]
    ctx = ScanContext(clock=lambda: now[0])
    now[0] = 10_000.0  # past the deadline: the first clock check must stop the parse
    with pytest.raises(ScanLimitExceeded):
        list(rtf.rtf_children(b"{\\rtf1 " + b"\\par " * 5000 + b"}", ctx))


def test_mutated_rtf_never_raises(clam_rtf: bytes) -> None:
    import random

    rnd = random.Random(3)
    for _ in range(200):
        buf = bytearray(clam_rtf)
        for _ in range(rnd.randint(1, 40)):
            buf[rnd.randrange(len(buf))] = rnd.choice(b"{}\\'0123456789abcdef \r\n*")
        list(rtf.rtf_children(bytes(buf[: rnd.randrange(1, len(buf))]), ScanContext()))
