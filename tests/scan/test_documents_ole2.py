"""OLE2 documents carrying other files: PowerPoint's compressed ExOleObjStg objects, Word's
ObjectPool, Outlook .msg attachments (embedded messages too), and the OOXML path
(word/embeddings/oleObject1.bin -> OLE2 -> Ole10Native), end to end through the engine, with
clamscan as the oracle on ClamAV's own samples and on the docx."""

from __future__ import annotations

import hashlib
import io
import struct
import sys
import zipfile
import zlib
from pathlib import Path

import pytest
from test_archive_ole2 import build_cfb  # type: ignore[import-not-found]
from test_documents_pdf import clamscan  # type: ignore[import-not-found]

from zerohour.errors import EncryptedContent
from zerohour.scan import Engine, load_database
from zerohour.scan.documents import ole2
from zerohour.scan.limits import ScanContext

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


def native(name: bytes, payload: bytes) -> bytes:
    """An `\\x01Ole10Native` stream (OLE Packager)."""
    temp = b"C:\\\\Temp\\\\" + name + b"\x00"
    body = (struct.pack("<H", 2) + name + b"\x00" + b"C:\\\\" + name + b"\x00"
            + struct.pack("<I", 0x30000) + struct.pack("<I", len(temp)) + temp
            + struct.pack("<I", len(payload)) + payload)
    return struct.pack("<I", len(body)) + body


def packager(payload: bytes, name: bytes = b"clam.exe") -> bytes:
    return build_cfb({"\x01Ole10Native": native(name, payload), "\x01CompObj": b"\x01\x00"})


def record(rtype: int, body: bytes, ver: int = 0, inst: int = 0) -> bytes:
    return struct.pack("<HHI", ver | inst << 4, rtype, len(body)) + body


def ppt(objects: list[bytes], compressed: bool = True) -> bytes:
    """A PowerPoint file whose 'PowerPoint Document' stream holds ExOleObjStg records (one
    inside a container, as PowerPoint writes them in ExObjList)."""
    stg = [record(0x1011, struct.pack("<I", len(o)) + zlib.compress(o), inst=1) if compressed
           else record(0x1011, o) for o in objects]
    stream = record(0x03E8, record(0x0FE9, b"\x00" * 8), ver=0xF)  # Document, DocumentAtom
    stream += record(0x0409, b"".join(stg[:1]), ver=0xF) + b"".join(stg[1:])  # ExObjList
    return build_cfb({"PowerPoint Document": stream, "Current User": b"\x14\x00\x00\x00"})


@pytest.mark.parametrize("sample", ["clam.ppt", "clam.ole.doc"])
def test_clamav_samples(engine: Engine, db: Path, sample: str) -> None:
    path = TESTFILES / sample
    report = engine.scan_bytes(path.read_bytes())
    assert set(report.names) == clamscan(db, path) == {NAME}


def test_clam_ppt_object_is_the_compressed_record(exe: bytes) -> None:
    children = list(ole2.ole2_children((TESTFILES / "clam.ppt").read_bytes(), ScanContext()))
    objects = [c for c in children if c.origin == "ppt-object"]
    assert len(objects) == 1
    assert objects[0].data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    inner = list(ole2.ole2_children(objects[0].data, ScanContext()))
    assert (exe, "clam.exe", True) in [(c.data, c.name, c.is_attachment) for c in inner]


@pytest.mark.parametrize("compressed", [True, False])
def test_powerpoint_objects(engine: Engine, exe: bytes, compressed: bool) -> None:
    doc = ppt([packager(exe), packager(b"second object " * 40, b"b.txt")], compressed)
    children = list(ole2.ole2_children(doc, ScanContext()))
    assert len([c for c in children if c.origin == "ppt-object"]) == 2
    assert NAME in engine.scan_bytes(doc).names


def test_powerpoint_object_bomb_is_a_limit(engine: Engine) -> None:
    bomb = zlib.compress(bytes(60 << 20), 9)  # 60 MiB of zeros in ~60 KB
    stream = record(0x1011, struct.pack("<I", 60 << 20) + bomb, inst=1)
    doc = build_cfb({"PowerPoint Document": stream})
    assert engine.scan_bytes(doc).names == ("Heuristics.Limits.Exceeded.CompressionRatio",)


def test_powerpoint_damaged_records(exe: bytes) -> None:
    good = record(0x1011, struct.pack("<I", 999) + zlib.compress(packager(exe))[:-40], inst=1)
    for stream in (good, good[:3], record(0x0409, good, ver=0xF)[:-10] + b"\xff" * 9,
                   struct.pack("<HHI", 0xF, 0x03E8, 0xFFFFFFFF) + good):
        ctx = ScanContext()
        list(ole2.ppt_objects(stream, ctx))  # never raises
    ctx = ScanContext()
    assert list(ole2.ppt_objects(good, ctx))
    assert ("Broken", "OLE2") in ctx.events


def test_word_object_pool(engine: Engine, exe: bytes) -> None:
    doc = build_cfb({"WordDocument": b"\xec\xa5" + bytes(100),
                     "ObjectPool": {"_1712345678": {"\x01Ole10Native": native(b"inv.exe", exe),
                                                    "\x03ObjInfo": b"\x00\x00"}}})
    ctx = ScanContext()
    children = list(ole2.ole2_children(doc, ctx))
    assert (exe, "inv.exe", True) in [(c.data, c.name, c.is_attachment) for c in children]
    assert "ObjectPool/_1712345678/\x01Ole10Native" in {m.name for m in ctx.members}
    assert NAME in engine.scan_bytes(doc).names


def _attach(name: str, data: bytes | None = None, message: dict[str, object] | None = None
            ) -> dict[str, object]:
    storage: dict[str, object] = {"__substg1.0_3707001F": name.encode("utf-16-le"),
                                  "__properties_version1.0": bytes(8)}
    if data is not None:
        storage["__substg1.0_37010102"] = data
    if message is not None:
        storage["__substg1.0_3701000D"] = message
    return storage


def test_outlook_msg_attachments_and_embedded_message(tmp_path: Path, exe: bytes) -> None:
    blob = exe * 8  # over 4096 bytes: a regular stream, stored at its exact size
    inner = {"__substg1.0_0037001F": "inner subject".encode("utf-16-le"),
             "__attach_version1.0_#00000000": _attach("deep.exe", blob[::-1])}
    msg = build_cfb({
        "__substg1.0_0037001F": "subject".encode("utf-16-le"),
        "__substg1.0_1000001F": "the body text".encode("utf-16-le"),
        "__attach_version1.0_#00000000": _attach("invoice.exe", blob),
        "__attach_version1.0_#00000001": _attach("forwarded.msg", message=inner),
    })
    children = list(ole2.ole2_children(msg, ScanContext()))
    attachments = {(c.name, c.data) for c in children if c.is_attachment}
    assert attachments == {("invoice.exe", blob), ("deep.exe", blob[::-1])}
    (tmp_path / "msg.hdb").write_text(
        f"{hashlib.md5(blob[::-1]).hexdigest()}:{len(blob)}:Zh.Test.DeepAttachment\n")
    report = Engine(load_database([tmp_path]), allmatch=True).scan_bytes(msg)
    assert report.names == ("Zh.Test.DeepAttachment",)


def docx_with_object(obj: bytes) -> bytes:
    """A docx as Word writes an embedded package: content types, rels, document, and
    word/embeddings/oleObject1.bin."""
    ct = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Types xmlns="http://schemas.'
          b'openxmlformats.org/package/2006/content-types"><Default Extension="bin" ContentType='
          b'"application/vnd.openxmlformats-officedocument.oleObject"/><Default Extension="xml" '
          b'ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType='
          b'"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
          b"</Types>")
    rels = (b'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
            b'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
            b'openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
            b'Target="word/document.xml"/></Relationships>')
    doc = (b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
           b'wordprocessingml/2006/main"><w:body><w:p/></w:body></w:document>')
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", ct)
        zf.writestr("_rels/.rels", rels)
        zf.writestr("word/document.xml", doc)
        zf.writestr("word/embeddings/oleObject1.bin", obj)
    return buf.getvalue()


def test_docx_embedded_package_end_to_end(
    tmp_path: Path, engine: Engine, db: Path, exe: bytes
) -> None:
    path = tmp_path / "invoice.docx"
    path.write_bytes(docx_with_object(packager(exe)))
    report = engine.scan_bytes(path.read_bytes())
    assert set(report.names) == clamscan(db, path) == {NAME}
    chain = [la.filetype.value for la in report.layers if la.md5 == hashlib.md5(exe).hexdigest()
             or la.filetype.value in ("ooxml", "ole2")]
    assert chain[:2] == ["ooxml", "ole2"]
    assert len(chain) == 3


def lzfu_literals(rtf: bytes) -> bytes:
    """MS-OXRTFCP compression with literals only (valid, if not small), ending with the
    end-of-stream reference to the write position."""
    body = bytearray()
    pos, wp = 0, 207
    while True:
        chunk = rtf[pos : pos + 8]
        pos += len(chunk)
        wp = (wp + len(chunk)) & 0xFFF
        if len(chunk) == 8:
            body += b"\x00" + chunk
            continue
        body += bytes([1 << len(chunk)]) + chunk + struct.pack(">H", wp << 4)
        break
    return struct.pack("<IIII", len(body) + 12, len(rtf), 0x75465A4C, 0) + bytes(body)


def test_compressed_rtf_example_from_the_specification() -> None:
    example = bytes.fromhex("2d0000002b0000004c5a4675f1c5c7a703000a007263706731323542320a"
                            "f32068656c090020627705b06c647d0a800fa0")  # MS-OXRTFCP 3.1.1
    assert ole2.lzfu_decompress(example, ScanContext()) == (
        b"{\\rtf1\\ansi\\ansicpg1252\\pard hello world}\r\n", True)
    assert ole2.lzfu_decompress(example[:30], ScanContext())[1] is False


def test_msg_compressed_rtf_body_with_an_object(engine: Engine, exe: bytes) -> None:
    rtf = (b"{\\rtf1\\ansi {\\object\\objemb{\\*\\objdata "
           + _ole1_package(exe).hex().encode() + b"}}}")
    assert ole2.lzfu_decompress(lzfu_literals(rtf), ScanContext()) == (rtf, True)
    msg = build_cfb({"__substg1.0_0037001F": "subject".encode("utf-16-le"),
                     "__substg1.0_10090102": lzfu_literals(rtf)})
    children = list(ole2.ole2_children(msg, ScanContext()))
    assert rtf in [c.data for c in children if c.origin == "msg-rtf-body"]
    assert NAME in engine.scan_bytes(msg).names


def _ole1_package(payload: bytes) -> bytes:
    """An OLE1 "Package" object (MS-OLEDS 2.2.4) around a Packager native stream."""
    data = native(b"clam.exe", payload)[4:]
    name = b"Package\x00"
    return (struct.pack("<III", 0x501, 2, len(name)) + name + struct.pack("<II", 0, 0)
            + struct.pack("<I", len(data)) + data)


def test_password_protected_docx_is_encrypted(tmp_path: Path, exe: bytes, db: Path) -> None:
    import shutil
    import subprocess

    tool = shutil.which("msoffcrypto-tool") or str(Path(sys.executable).parent / "msoffcrypto-tool")
    plain, locked = tmp_path / "plain.docx", tmp_path / "locked.docx"
    plain.write_bytes(docx_with_object(packager(exe)))
    subprocess.run([tool, "-e", "-p", "secret", str(plain), str(locked)], check=True)
    engine = Engine(load_database([db]), allmatch=True)
    assert engine.scan_bytes(locked.read_bytes()).names == ("Heuristics.Encrypted.OLE2",)
    assert clamscan(db, locked) == set()  # clamscan passes it, even with --alert-encrypted-doc


@pytest.mark.parametrize("kind", ["word", "word-xor", "excel", "powerpoint", "plain-word"])
def test_legacy_encryption_markers(kind: str) -> None:
    fib = bytearray(b"\xec\xa5\xc1\x00" + bytes(60))
    if kind == "word":
        fib[10:12] = struct.pack("<H", 0x0100)  # fEncrypted
    elif kind == "word-xor":
        fib[10:12] = struct.pack("<H", 0x8000)  # fObfuscated
    tree: dict[str, object] = {"WordDocument": bytes(fib)}
    if kind == "excel":
        bof = struct.pack("<HH", 0x0809, 16) + bytes(16)
        filepass = struct.pack("<HH", 0x002F, 54) + bytes(54)
        tree = {"Workbook": bof + struct.pack("<HH", 0x00E1, 2) + b"\x00\x00" + filepass}
    elif kind == "powerpoint":
        user = struct.pack("<HHI", 0, 0x0FF6, 20) + struct.pack("<II", 20, 0xF3D1C4DF)
        tree = {"Current User": user, "PowerPoint Document": b"\x00" * 16}
    doc = build_cfb(tree)  # type: ignore[arg-type]
    if kind == "plain-word":
        assert list(ole2.ole2_children(doc, ScanContext()))
        return
    with pytest.raises(EncryptedContent):
        list(ole2.ole2_children(doc, ScanContext()))


def test_damage_is_said_after_what_the_document_holds(db: Path, exe: bytes) -> None:
    noise = bytes((i * 7919 + i // 3) % 251 for i in range(900))  # barely compressible
    damaged = record(0x1011, struct.pack("<I", 900) + zlib.compress(noise)[:-30], inst=1)
    doc = build_cfb({"PowerPoint Document": damaged, "\x01Ole10Native": native(b"a.exe", exe)})
    first = Engine(load_database([db])).scan_bytes(doc)
    assert first.names == (NAME,)
    every = Engine(load_database([db]), allmatch=True).scan_bytes(doc)
    # the packaged file, the Ole10Native stream raw (round 31), and maybe a PE carved out of
    # that stream (PE prefixes); the damage after them
    assert every.names in ((NAME, NAME, "Heuristics.Broken.OLE2"),
                           (NAME, NAME, NAME, "Heuristics.Broken.OLE2"))


def test_mutated_documents_never_raise(exe: bytes) -> None:
    import contextlib
    import random

    from zerohour.errors import ScanLimitExceeded

    blob = exe * 8
    samples = [
        ppt([packager(exe), packager(b"x" * 5000)]),
        build_cfb({"__substg1.0_10090102": lzfu_literals(b"{\\rtf1 " + b"text " * 900 + b"}"),
                   "__attach_version1.0_#00000000": _attach("a.exe", blob)}),
        (TESTFILES / "clam.ppt").read_bytes(),
    ]
    rnd = random.Random(5)
    for _ in range(300):
        buf = bytearray(rnd.choice(samples))
        for _ in range(rnd.randint(1, 30)):
            buf[rnd.randrange(len(buf))] = rnd.randrange(256)
        cut = bytes(buf[: rnd.randrange(len(buf))] if rnd.random() < 0.3 else buf)
        with contextlib.suppress(ScanLimitExceeded, EncryptedContent):
            list(ole2.ole2_children(cut, ScanContext()))
