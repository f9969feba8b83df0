"""OLE2 documents: VBA macro source is decompressed (MS-OVBA) and scanned, Packager objects give
up their embedded file, other streams are scanned raw; damaged files never crash."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zerohour.errors import EncryptedContent, ScanLimitExceeded
from zerohour.scan import decompose, filetype
from zerohour.scan.documents import ole2
from zerohour.scan.filetype import category
from zerohour.scan.limits import Limits, ScanContext
from zerohour.scan.types import FileType

SECTOR = 512
END, FREE, FATSECT, DIFSECT = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFC


def ovba_compress(data: bytes) -> bytes:
    """MS-OVBA compression (greedy matches), the inverse of `ole2.ovba_decompress`."""
    out = bytearray(b"\x01")
    for cstart in range(0, len(data), 4096):
        chunk = data[cstart : cstart + 4096]
        body = bytearray()
        p = 0
        while p < len(chunk):
            flags = 0
            group = bytearray()
            for bit in range(8):
                if p >= len(chunk):
                    break
                bitcount = max((p - 1).bit_length(), 4) if p > 1 else 4
                max_len = (0xFFFF >> bitcount) + 3
                max_off = 1 << (16 - bitcount)
                best_len = best_off = 0
                for off in range(1, min(p, max_off) + 1):
                    n = 0
                    while n < max_len and p + n < len(chunk) and chunk[p + n - off] == chunk[p + n]:
                        n += 1
                    if n > best_len:
                        best_len, best_off = n, off
                if best_len >= 3:
                    flags |= 1 << bit
                    token = ((best_off - 1) << (16 - bitcount)) | (best_len - 3)
                    group += struct.pack("<H", token)
                    p += best_len
                else:
                    group.append(chunk[p])
                    p += 1
            body.append(flags)
            body += group
        if len(body) > 4096:  # incompressible: a stored chunk of exactly 4096 bytes
            out += struct.pack("<H", 0x3FFF) + chunk.ljust(4096, b"\x00")
        else:
            out += struct.pack("<H", 0xB000 | (len(body) + 2 - 3)) + body
    return bytes(out)


def _dir_entry(name: str, kind: int, child: int, right: int, start: int, size: int,
               left: int = FREE) -> bytes:
    raw = name.encode("utf-16-le") + b"\x00\x00"
    return (
        raw.ljust(64, b"\x00")
        + struct.pack("<HBBIII", len(raw), kind, 1, left, right, child)
        + bytes(16 + 4 + 16)
        + struct.pack("<IQ", start, size)
    )


Tree = dict[str, "Tree | bytes"]


def build_cfb(tree: Tree) -> bytes:
    """A CFB v3 file: root -> storages (nested to any depth) and streams. Streams are padded to
    4096 bytes so that none lives in the mini stream; as many FAT sectors as needed (the first
    109 listed in the header, the rest in DIFAT sectors)."""
    entries: list[tuple[str, int, list[int], bytes]] = []  # name, kind, children idx, data

    def add(name: str, kind: int, data: bytes = b"") -> int:
        entries.append((name, kind, [], data))
        return len(entries) - 1

    def fill(parent: int, sub: Tree) -> None:
        for name, value in sub.items():
            if isinstance(value, dict):
                idx = add(name, 1)
                entries[parent][2].append(idx)
                fill(idx, value)
            else:
                entries[parent][2].append(add(name, 2, value.ljust(4096, b"\x00")))

    root = add("Root Entry", 5)
    fill(root, tree)
    ndir = (len(entries) * 128 + SECTOR - 1) // SECTOR
    sectors_for = [(len(e[3]) + SECTOR - 1) // SECTOR for e in entries]
    nfat, ndifat = 1, 0
    while nfat * 128 < nfat + ndifat + ndir + sum(sectors_for):
        nfat += 1
        ndifat = max(0, nfat - 109 + 126) // 127  # 127 FAT sector numbers in each
    head = nfat + ndifat  # FAT sectors, then DIFAT sectors, then the directory
    fat = ([FATSECT] * nfat + [DIFSECT] * ndifat
           + [s + 1 for s in range(head, head + ndir - 1)] + [END])
    starts: list[int] = []
    nxt = head + ndir
    for n in sectors_for:
        starts.append(nxt if n else END)
        fat += [nxt + i + 1 for i in range(n - 1)] + ([END] if n else [])
        nxt += n
    fat += [FREE] * (nfat * 128 - len(fat))
    dir_bytes = bytearray()
    # Siblings: a balanced tree of left and right pointers (olefile walks it recursively, as
    # real files' red-black trees keep it shallow); a parent points at its middle child.
    left: dict[int, int] = {}
    right: dict[int, int] = {}

    def balance(kids: list[int]) -> int:
        if not kids:
            return FREE
        mid = len(kids) // 2
        left[kids[mid]], right[kids[mid]] = balance(kids[:mid]), balance(kids[mid + 1 :])
        return kids[mid]

    top = [balance(children) for _n, _k, children, _d in entries]
    for i, (name, kind, _children, data) in enumerate(entries):
        dir_bytes += _dir_entry(
            name,
            kind,
            top[i],
            right.get(i, FREE),
            starts[i] if data else END,
            len(data),
            left.get(i, FREE),
        )
    dir_bytes = dir_bytes.ljust(ndir * SECTOR, b"\x00")
    header = bytearray(SECTOR)
    header[:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    struct.pack_into("<HHHHH", header, 24, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<IIIIIIII", header, 40, 0, nfat, head, 0, 4096, END, 0, END)
    struct.pack_into("<I", header, 68, nfat if ndifat else END)  # the first DIFAT sector
    struct.pack_into("<I", header, 72, ndifat)
    for k in range(109):  # DIFAT: the FAT lives in sectors 0 .. nfat-1
        struct.pack_into("<I", header, 76 + 4 * k, k if k < nfat else FREE)
    difat = b""
    for d in range(ndifat):
        listed = [k for k in range(109 + 127 * d, 109 + 127 * (d + 1)) if k < nfat]
        listed += [FREE] * (127 - len(listed))
        difat += struct.pack("<128I", *listed, nfat + d + 1 if d + 1 < ndifat else END)
    body = struct.pack(f"<{len(fat)}I", *fat) + difat + bytes(dir_bytes)
    for _n, _k, _c, data in entries:
        body += data.ljust((len(data) + SECTOR - 1) // SECTOR * SECTOR, b"\x00")
    return bytes(header) + body


def dir_stream(modules: list[str]) -> bytes:
    """A `dir` stream with the records MS-OVBA 2.3.4.2 lists, in order (ClamAV is strict)."""
    rec = bytearray()

    def r(rid: int, body: bytes) -> None:
        rec.extend(struct.pack("<HI", rid, len(body)) + body)

    r(0x0001, struct.pack("<I", 1))  # PROJECTSYSKIND: win32
    r(0x0002, struct.pack("<I", 0x409))  # PROJECTLCID
    r(0x0014, struct.pack("<I", 0x409))  # PROJECTLCIDINVOKE
    r(0x0003, struct.pack("<H", 1252))  # PROJECTCODEPAGE
    r(0x0004, b"Project")  # PROJECTNAME
    r(0x0005, b"")  # PROJECTDOCSTRING
    r(0x0040, b"")
    r(0x0006, b"")  # PROJECTHELPFILEPATH
    r(0x003D, b"")
    r(0x0007, struct.pack("<I", 0))  # PROJECTHELPCONTEXT
    r(0x0008, struct.pack("<I", 0))  # PROJECTLIBFLAGS
    rec.extend(struct.pack("<HIIH", 0x0009, 4, 1, 0))  # PROJECTVERSION (its size lies: 6 bytes)
    r(0x000F, struct.pack("<H", len(modules)))  # PROJECTMODULES
    r(0x0013, struct.pack("<H", 0xFFFF))  # PROJECTCOOKIE
    for m in modules:
        r(0x0019, m.encode())  # MODULENAME
        r(0x0047, m.encode("utf-16-le"))  # MODULENAMEUNICODE
        r(0x001A, m.encode())  # MODULESTREAMNAME
        r(0x0032, m.encode("utf-16-le"))
        r(0x001C, b"")  # MODULEDOCSTRING
        r(0x0048, b"")
        r(0x0031, struct.pack("<I", 4096))  # MODULEOFFSET
        r(0x001E, struct.pack("<I", 0))  # MODULEHELPCONTEXT
        r(0x002C, struct.pack("<H", 0xFFFF))  # MODULECOOKIE
        r(0x0021, b"")  # MODULETYPE: procedural
        r(0x002B, b"")  # terminator
    rec.extend(struct.pack("<HI", 0x0010, 0))  # dir terminator
    return ovba_compress(bytes(rec))


MACRO = (
    b'Attribute VB_Name = "Module1"\r\nSub AutoOpen()\r\n'
    b'  Set s = CreateObject("WScript.Shell")\r\n  s.Run "calc.exe"\r\nEnd Sub\r\n'
)


def macro_doc() -> bytes:
    module = bytes(4096) + ovba_compress(MACRO)  # performance cache, then the source
    return build_cfb(
        {
            "VBA": {"dir": dir_stream(["Module1"]), "Module1": module, "_VBA_PROJECT": b"\xcc\x61"},
            "WordDocument": b"plain document stream",
        }
    )


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=9000) | st.text(alphabet="ab \r\n", max_size=9000).map(str.encode))
def test_ovba_round_trip(data: bytes) -> None:
    out = ole2.ovba_decompress(ovba_compress(data))
    assert out[: len(data)] == data  # stored chunks are padded to 4096 bytes
    assert not out[len(data) :].strip(b"\x00")


def test_vba_source_is_extracted() -> None:
    doc = macro_doc()
    assert filetype.detect(doc) is FileType.OLE2
    assert category(FileType.OLE2, doc) == {"office-macro"}
    got = {c.origin: c for c in decompose.children(doc, FileType.OLE2, ScanContext())}
    assert got["vba"].data == MACRO
    assert got["vba"].name == "Module1"
    assert got["ole2"].data.startswith(b"plain document stream")


def test_packager_object() -> None:
    payload = b"MZ embedded executable"
    native = (
        struct.pack("<IH", 0, 2)
        + b"evil.exe\x00"
        + b"C:\\evil.exe\x00"
        + struct.pack("<I", 0x30000)
        + struct.pack("<I", 12)
        + b"C:\\tmp\\e.exe"
        + struct.pack("<I", len(payload))
        + payload
    )
    doc = build_cfb({"\x01Ole10Native": native})
    got = [c for c in decompose.children(doc, FileType.OLE2, ScanContext())]
    assert (payload, "evil.exe", True) in [(c.data, c.name, c.is_attachment) for c in got]


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_ole2_never_crashes(data: st.DataObject) -> None:
    buf = bytearray(macro_doc())
    for _ in range(data.draw(st.integers(1, 20))):
        pos = data.draw(st.integers(0, len(buf) - 1))
        buf[pos] = data.draw(st.integers(0, 255))
    cut = bytes(buf[: data.draw(st.integers(0, len(buf)))])
    with contextlib.suppress(ScanLimitExceeded, EncryptedContent):
        list(ole2.ole2_children(cut, ScanContext()))
    ole2.ovba_decompress(cut[4096:])


# -- round 31 (helper 87): streams no layer held ------------------------------------------------


def _raw_streams(doc: bytes) -> list[bytes]:
    return [c.data for c in decompose.children(doc, FileType.OLE2, ScanContext())
            if c.origin == "ole2"]


def test_vba_streams_are_scanned_raw_too() -> None:
    """R31-F3, F4: a module's p-code cache (before its source: Office runs it in place of the
    source) and the project's own streams were never a layer; each is scanned raw now."""
    module = b"p-code cache".ljust(4096, b"\x00") + ovba_compress(MACRO)
    doc = build_cfb({"VBA": {"dir": dir_stream(["Module1"]), "Module1": module,
                             "_VBA_PROJECT": b"project marker", "PROJECT": b"ID=marker"},
                     "WordDocument": b"plain document stream"})
    got = {c.origin: c for c in decompose.children(doc, FileType.OLE2, ScanContext())}
    assert got["vba"].data == MACRO  # the source, as before
    raw = _raw_streams(doc)
    for marker in (b"p-code cache", b"project marker", b"ID=marker"):
        assert any(d.startswith(marker) for d in raw), marker
    assert any(d.startswith(dir_stream(["Module1"])) for d in raw)  # `dir`, compressed


def test_packager_stream_is_scanned_raw_too() -> None:
    """R31-F5: bytes after the file an `\\x01Ole10Native` stream declares were in no layer."""
    payload, tail = b"MZ embedded executable", b"what follows the packaged file"
    native = (struct.pack("<IH", 0, 2) + b"a.exe\x00" + b"C:\\a.exe\x00"
              + struct.pack("<II", 0x30000, 10) + b"C:\\t\\a.exe"
              + struct.pack("<I", len(payload)) + payload + tail)
    doc = build_cfb({"\x01Ole10Native": native})
    children = list(decompose.children(doc, FileType.OLE2, ScanContext()))
    assert payload in [c.data for c in children]
    assert any(tail in d for d in _raw_streams(doc))


def test_names_that_differ_in_case_and_unlisted_kinds_are_broken() -> None:
    """R31-F1: olefile opens the first of two names that differ only in case for both (7-Zip
    extracts both: each is read by its own entry now); entries of kind 3 or 4 are in no
    listing. Either is Broken.OLE2."""
    def broken(doc: bytes) -> bool:
        ctx = ScanContext()
        list(ole2.ole2_children(doc, ctx))
        return ("Broken", "OLE2") in ctx.events

    def kind(tree: Tree, name: str, kind: int) -> bytes:
        doc = bytearray(build_cfb(tree))
        at = doc.find(name.encode("utf-16-le") + b"\x00\x00")
        doc[at + 66] = kind  # the entry's object type
        return bytes(doc)

    assert not broken(build_cfb({"Payload": b"one", "Other": b"two"}))
    twins = build_cfb({"Payload": b"decoy", "payload": b"what olefile never opens"})
    assert broken(twins)
    assert any(d.startswith(b"what olefile never opens") for d in _raw_streams(twins))  # (read)
    assert broken(build_cfb({"S": {"x": b"a"}, "s": {"x": b"b"}}))
    for k in (3, 4):
        assert broken(kind({"Odd": b"in no listing", "Other": b"two"}, "Odd", k)), k
    # R32-F6: what olefile's listing leaves out with everything below it: a storage turned
    # into a second root or an empty entry, and entries below a stream
    for k in (0, 5, 2):
        assert broken(kind({"Box": {"inner": b"payload"}, "Other": b"two"}, "Box", k)), k


def test_every_stream_is_read_however_many() -> None:
    """R31-F2: streams past the 2,000th were dropped; each is a file of MaxFiles now. (And
    read through its own directory entry: R32-F3, olefile's lookup by path walked one
    storage's entries three times a stream, 50 s for 20,000.)"""
    tree: Tree = {f"s{i:04d}": b"filler %d" % i for i in range(2050)}
    tree["zz-last"] = b"the last stream"
    doc = build_cfb(tree)  # (8 MB: 129 FAT sectors, DIFAT sectors)
    raw = _raw_streams(doc)
    assert len(raw) == 2051
    assert any(d.startswith(b"the last stream") for d in raw)
    with pytest.raises(ScanLimitExceeded, match="MaxFiles"):
        list(decompose.children(doc, FileType.OLE2, ScanContext(Limits(max_files=1000))))
