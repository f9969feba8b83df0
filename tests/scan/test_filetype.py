"""True-type detection from content, and outbreak-scope categories."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import struct
import tarfile
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zerohour.notices.model import FILE_TYPE_CATEGORIES
from zerohour.scan.filetype import category, detect
from zerohour.scan.types import FileType


def _pe() -> bytes:
    dos = bytearray(0x80)
    dos[:2] = b"MZ"
    struct.pack_into("<I", dos, 0x3C, 0x40)
    dos[0x40:0x44] = b"PE\x00\x00"
    return bytes(dos) + b"\x00" * 256


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        info = tarfile.TarInfo("a.txt")
        info.size = 5
        t.addfile(info, io.BytesIO(b"hello"))
    return buf.getvalue()


def _v7_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        info = tarfile.TarInfo("a.txt")
        info.size = 5
        t.addfile(info, io.BytesIO(b"hello"))
    raw = bytearray(buf.getvalue())
    raw[257:265] = b"\x00" * 8  # no magic: only the checksum identifies it
    chk = sum(raw[:148]) + 8 * 32 + sum(raw[156:512])
    raw[148:156] = b"%06o\x00 " % chk
    return bytes(raw)


OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504
CASES = [
    (_pe(), FileType.PE),
    (b"MZ" + b"\x00" * 200, FileType.BINARY),  # MZ without a PE header
    (b"\x7fELF\x02\x01\x01" + b"\x00" * 60, FileType.ELF),
    (b"\xcf\xfa\xed\xfe" + b"\x00" * 60, FileType.MACHO),
    (b"\xca\xfe\xba\xbe\x00\x00\x00\x02" + b"\x00" * 60, FileType.MACHO),
    (b"\xca\xfe\xba\xbe\x00\x00\x00\x34" + b"\x00" * 60, FileType.BINARY),  # Java class
    (_zip({"a.txt": b"x"}), FileType.ZIP),
    (_zip({"[Content_Types].xml": b"<x/>", "word/document.xml": b"<x/>"}), FileType.OOXML),
    (_tar(), FileType.TAR),
    (_v7_tar(), FileType.TAR),
    (gzip.compress(b"hello", mtime=0), FileType.GZIP),
    (bz2.compress(b"hello"), FileType.BZIP2),
    (lzma.compress(b"hello"), FileType.XZ),
    (b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 30, FileType.SEVENZIP),
    (b"Rar!\x1a\x07\x01\x00" + b"\x00" * 30, FileType.RAR),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", FileType.PDF),
    (OLE2, FileType.OLE2),
    (b"<!DOCTYPE html><html><body>hi</body></html>", FileType.HTML),
    (b"  \n<HTML>\n<HEAD><TITLE>x</TITLE></HEAD></HTML>", FileType.HTML),
    (b"From: a@b.c\r\nTo: d@e.f\r\nSubject: hi\r\n\r\nbody", FileType.MAIL),
    (b"Received: from x\r\n\tby y\r\nMessage-ID: <1@x>\r\n\r\nbody", FileType.MAIL),
    (b"From a@b Mon Jan 1 00:00:00 2024\nFrom: a@b\n\nbody", FileType.MAIL),
    (b"Name: value\nOther: thing\n\ntext", FileType.TEXT),  # not mail headers
    (
        b"X-A: " + b"v" * 70 + b"\r\n" * 1 + b"X-B: w\r\n" * 2000 + b"Subject: s\r\n\r\nb",
        FileType.MAIL,
    ),
    (b"#!/bin/sh\necho hi\n", FileType.SCRIPT),
    (b"<?php echo 1; ?>", FileType.SCRIPT),
    (b"@ECHO OFF\r\ndel x\r\n", FileType.SCRIPT),
    (b'Set s = CreateObject("WScript.Shell")\r\n', FileType.SCRIPT),
    (b"Hello, this is plain text.\nNothing else.\n", FileType.TEXT),
    ("Grüße aus Köln\n".encode(), FileType.TEXT),
    (b"", FileType.TEXT),
    (bytes(range(256)) * 4, FileType.BINARY),
]


@pytest.mark.parametrize(
    ("data", "expected"), CASES, ids=[f"{i}-{ft.value}" for i, (_, ft) in enumerate(CASES)]
)
def test_detect(data: bytes, expected: FileType) -> None:
    assert detect(data) is expected


def test_categories() -> None:
    assert category(FileType.PE, b"") == {"executable"}
    assert category(FileType.ELF, b"") == {"executable"}
    assert category(FileType.ZIP, b"") == {"archive"}
    assert category(FileType.GZIP, b"") == {"archive"}
    assert category(FileType.SCRIPT, b"") == {"script"}
    assert category(FileType.PDF, b"") == {"pdf"}
    assert category(FileType.HTML, b"") == {"html"}
    assert category(FileType.TEXT, b"") == frozenset()
    docm = _zip({"[Content_Types].xml": b"<x/>", "word/vbaProject.bin": b"\x00"})
    docx = _zip({"[Content_Types].xml": b"<x/>", "word/document.xml": b"<x/>"})
    assert category(detect(docm), docm) == {"office-macro"}
    assert category(detect(docx), docx) == frozenset()
    xls = OLE2 + "_VBA_PROJECT".encode("utf-16-le")
    assert category(detect(xls), xls) == {"office-macro"}
    assert category(detect(OLE2), OLE2) == frozenset()


@settings(deadline=None)
@given(st.binary(max_size=2048))
def test_any_bytes_have_a_type_in_scope(data: bytes) -> None:
    ft = detect(data)
    assert isinstance(ft, FileType)
    assert category(ft, data) <= FILE_TYPE_CATEGORIES
