"""Archive members: zip (stored, deflate, bzip2, lzma, zip64, data descriptors, hidden local
entries, broken central directory), tar, gzip, bzip2, xz; mutated archives never crash."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import struct
import tarfile
import zipfile
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zerohour.errors import EncryptedContent, ScanLimitExceeded
from zerohour.scan import archive
from zerohour.scan.limits import Limits, ScanContext
from zerohour.scan.types import FileType


def members(data: bytes, ctx: ScanContext | None = None) -> dict[str | None, bytes]:
    return {c.name: c.data for c in archive.zip_children(data, ctx or ScanContext())}


def make_zip(files: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


FILES = {"a.txt": b"alpha " * 100, "dir/b.bin": bytes(range(256)) * 8, "c": b"c"}


@pytest.mark.parametrize(
    "method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
)
def test_zip_methods(method: int) -> None:
    assert members(make_zip(FILES, method)) == FILES


def test_zip64() -> None:
    buf = io.BytesIO()
    with (
        zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as z,
        z.open("big.txt", "w", force_zip64=True) as f,
    ):
        f.write(b"zip64 member")
    data = buf.getvalue()
    assert b"\x01\x00" in data  # the zip64 extra field
    assert members(data) == {"big.txt": b"zip64 member"}


def test_zip_streamed_with_data_descriptor() -> None:
    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self.buf = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: bytes) -> int:  # type: ignore[override]
            self.buf += b
            return len(b)

    out = Unseekable()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("s.txt", b"streamed " * 50)
    data = bytes(out.buf)
    assert members(data) == {"s.txt": b"streamed " * 50}
    # Without the central directory, the local header walk still finds it.
    cut = data[: data.find(b"PK\x01\x02")]
    assert b"streamed " * 50 in members(cut).values()


def test_hidden_local_entry_outside_central_directory() -> None:
    visible = make_zip({"ok.txt": b"benign"})
    hidden_data = b"hidden payload " * 10
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    raw = comp.compress(hidden_data) + comp.flush()
    name = b"evil.txt"
    lfh = (
        struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,
            20,
            0,
            8,
            0,
            0,
            zlib.crc32(hidden_data),
            len(raw),
            len(hidden_data),
            len(name),
            0,
        )
        + name
        + raw
    )
    cd = visible.find(b"PK\x01\x02")
    eocd = visible.find(b"PK\x05\x06")
    # Insert the hidden entry before the central directory and fix the CD offset.
    data = bytearray(visible[:cd] + lfh + visible[cd:])
    eocd += len(lfh)
    struct.pack_into("<I", data, eocd + 16, cd + len(lfh))
    got = list(archive.zip_children(bytes(data), ScanContext()))
    assert {c.data for c in got} == {b"benign", hidden_data}
    assert [c.origin for c in got if c.data == hidden_data] == ["zip-local"]


def test_truncated_zip_falls_back_to_local_headers() -> None:
    data = make_zip(FILES)
    got = members(data[: data.find(b"PK\x01\x02") + 10])
    assert got == FILES


def test_dedup_identical_members() -> None:
    data = make_zip({"a": b"same", "b": b"same", "c": b"other"})
    assert sorted(c.data for c in archive.zip_children(data, ScanContext())) == [b"other", b"same"]


def test_member_over_max_file_size() -> None:
    data = make_zip({"big": b"x" * 5000})
    with pytest.raises(ScanLimitExceeded) as exc:
        members(data, ScanContext(Limits(max_file_size=1000)))
    assert exc.value.which == "MaxFileSize"


def test_lying_declared_size_is_still_bounded() -> None:
    data = bytearray(make_zip({"big": b"x" * 5000}))
    cd = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, cd + 24, 10)  # central dir claims 10 bytes
    with pytest.raises(ScanLimitExceeded):
        members(bytes(data), ScanContext(Limits(max_file_size=1000)))


def test_encrypted() -> None:
    data = bytearray(make_zip({"a": b"secret"}))
    for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = data.find(sig)
        struct.pack_into("<H", data, pos + at, 1)
    with pytest.raises(EncryptedContent):
        members(bytes(data))


def test_tar() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, content in FILES.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            t.addfile(info, io.BytesIO(content))
        d = tarfile.TarInfo("emptydir")
        d.type = tarfile.DIRTYPE
        t.addfile(d)
    got = {c.name: c.data for c in archive.tar_children(buf.getvalue(), ScanContext())}
    assert got == FILES


@pytest.mark.parametrize(
    ("ft", "compress"),
    [(FileType.GZIP, gzip.compress), (FileType.BZIP2, bz2.compress), (FileType.XZ, lzma.compress)],
)
def test_streams(ft: FileType, compress: object) -> None:
    payload = b"stream payload " * 1000
    data = compress(payload)  # type: ignore[operator]
    got = list(archive.stream_children(data, ft, ScanContext(), "p.txt.gz"))
    assert [c.data for c in got] == [payload]
    # Concatenated streams are one file to every decompressor tool.
    got2 = list(archive.stream_children(data + data, ft, ScanContext(), None))
    assert got2[0].data == payload * 2
    # Truncated: what decoded before the cut is still scanned.
    got3 = list(archive.stream_children(data[: len(data) * 2 // 3], ft, ScanContext(), None))
    assert all(payload.startswith(c.data) for c in got3)


def test_gzip_name() -> None:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="inner.exe", fileobj=buf, mode="wb") as g:
        g.write(b"x")
    got = list(archive.stream_children(buf.getvalue(), FileType.GZIP, ScanContext(), None))
    assert got[0].name == "inner.exe"
    got = list(archive.stream_children(gzip.compress(b"x"), FileType.GZIP, ScanContext(), "a.tgz"))
    assert got[0].name == "a.tar"


def test_stream_output_bounded() -> None:
    data = gzip.compress(b"a" * 100_000)
    with pytest.raises(ScanLimitExceeded) as exc:
        list(
            archive.stream_children(
                data, FileType.GZIP, ScanContext(Limits(max_file_size=5000)), None
            )
        )
    assert exc.value.which == "MaxFileSize"


def _mutate(blob: bytes, data: st.DataObject) -> bytes:
    buf = bytearray(blob)
    for _ in range(data.draw(st.integers(0, 12))):
        if not buf:
            break
        pos = data.draw(st.integers(0, len(buf) - 1))
        buf[pos] = data.draw(st.integers(0, 255))
    return bytes(buf[: data.draw(st.integers(0, len(buf)))])


_OK = (ScanLimitExceeded, EncryptedContent)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_zip_never_crashes(data: st.DataObject) -> None:
    method = data.draw(
        st.sampled_from(
            [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
        )
    )
    blob = _mutate(make_zip(FILES, method), data)
    with contextlib.suppress(_OK):
        list(archive.zip_children(blob, ScanContext()))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_tar_and_streams_never_crash(data: st.DataObject) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("a")
        info.size = 600
        t.addfile(info, io.BytesIO(b"t" * 600))
    with contextlib.suppress(_OK):
        list(archive.tar_children(_mutate(buf.getvalue(), data), ScanContext()))
        for ft, comp in (
            (FileType.GZIP, gzip.compress),
            (FileType.BZIP2, bz2.compress),
            (FileType.XZ, lzma.compress),
        ):
            list(
                archive.stream_children(_mutate(comp(b"abc" * 300), data), ft, ScanContext(), None)
            )


def tnef(attachments: list[tuple[bytes, bytes]]) -> bytes:
    """A minimal TNEF stream: per attachment, RendData, Title and Data attributes."""

    def attr(level: int, attr_id: int, body: bytes) -> bytes:
        return (
            struct.pack("<BII", level, attr_id, len(body))
            + body
            + struct.pack("<H", sum(body) & 0xFFFF)
        )

    out = archive.TNEF_SIGNATURE + b"\x01\x00"
    out += attr(1, 0x00089006, b"\x01\x00\x00\x00")  # attTnefVersion-ish message attribute
    for name, data in attachments:
        out += attr(2, 0x00069002, b"\x01\x00" + b"\x00" * 12)
        out += attr(2, 0x00018010, name + b"\x00")
        out += attr(2, 0x0006800F, data)
    return out


def test_tnef_attachments() -> None:
    from zerohour.scan import decompose, filetype

    blob = tnef([(b"a.exe", b"MZ first attachment"), (b"b.txt", b"second attachment")])
    assert filetype.detect(blob) is FileType.BINARY
    got = [(c.name, c.data) for c in decompose.children(blob, FileType.BINARY, ScanContext())
           if not c.speculative]  # (`MZ first...` is a cut head: `joins` guesses a join)
    assert got == [("a.exe", b"MZ first attachment"), ("b.txt", b"second attachment")]
    # Truncated inside the second attachment: the first and the prefix of the second survive.
    cut = [c.data for c in archive.tnef_children(blob[:-10], ScanContext())]
    assert cut[0] == b"MZ first attachment"


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_tnef_never_crashes(data: st.DataObject) -> None:
    blob = _mutate(tnef([(b"a", b"x" * 100), (b"b", b"y" * 50)]), data)
    with contextlib.suppress(*_OK):
        list(archive.tnef_children(blob, ScanContext()))


# --- RAR / 7z encryption ----------------------------------------------------------------------


def _v(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _rar5_block(
    htype: int, flags: int, fields: bytes, extra: bytes = b"", data: bytes = b""
) -> bytes:
    head = _v(htype) + _v(flags | (1 if extra else 0) | (2 if data else 0))
    if extra:
        head += _v(len(extra))
    if data:
        head += _v(len(data))
    head += fields + extra
    return b"\x00\x00\x00\x00" + _v(len(head)) + head + data


def rar5(file_encrypted: bool = False, header_encrypted: bool = False) -> bytes:
    out = b"Rar!\x1a\x07\x01\x00"
    if header_encrypted:
        out += _rar5_block(4, 0, _v(0) + _v(0) + b"\x0f" + bytes(16))
        return out + bytes(64)
    out += _rar5_block(1, 0, _v(0))
    name = b"a.exe"
    fields = _v(0) + _v(5) + _v(0x20) + _v(0) + _v(0) + _v(len(name)) + name
    extra = b""
    if file_encrypted:
        rec = _v(1) + _v(0) + _v(0) + bytes(16 + 16)
        extra = _v(len(rec)) + rec
    out += _rar5_block(2, 0, fields, extra, b"hello")
    return out + _rar5_block(5, 0, _v(0))


def rar4(file_encrypted: bool = False, header_encrypted: bool = False) -> bytes:
    out = b"Rar!\x1a\x07\x00"
    out += struct.pack("<HBHH", 0, 0x73, 0x0080 if header_encrypted else 0, 13) + bytes(6)
    name = b"a.exe"
    flags = 0x8000 | (0x0004 if file_encrypted else 0)
    fixed = struct.pack("<IIBIIBBHI", 5, 5, 0, 0, 0, 20, 0x30, len(name), 0x20) + name
    out += struct.pack("<HBHH", 0, 0x74, flags, 7 + len(fixed)) + fixed + b"hello"
    return out + struct.pack("<HBHH", 0, 0x7B, 0x4000, 7)


def sevenzip(encrypted: bool) -> bytes:
    header = b"\x01\x04\x06\x00\x01\x09\x05\x00\x07\x0b\x01\x00\x01"
    header += (b"\x24" + b"\x06\xf1\x07\x01" + b"\x0a" + bytes(10)) if encrypted else b"\x21\x00"
    body = bytes(5)
    start = (
        b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 4 + struct.pack("<QQI", len(body), len(header), 0)
    )
    return start + body + header


@pytest.mark.parametrize("builder", [rar4, rar5])
def test_rar_encryption(builder: object) -> None:
    from zerohour.scan import filetype

    make = builder  # type: ignore[assignment]
    plain = make()  # type: ignore[operator]
    assert filetype.detect(plain) is FileType.RAR
    assert not archive.rar_is_encrypted(plain)
    ctx = ScanContext()
    assert list(archive.unopened_children(plain, FileType.RAR, ctx)) == []
    assert ctx.events == [("Unsupported", "RAR")]  # not encrypted, but we cannot open it
    for kw in ("file_encrypted", "header_encrypted"):
        blob = make(**{kw: True})  # type: ignore[operator]
        assert archive.rar_is_encrypted(blob), kw
        with pytest.raises(EncryptedContent) as exc:
            list(archive.unopened_children(blob, FileType.RAR, ScanContext()))
        assert exc.value.format == "RAR"


def test_7z_encryption() -> None:
    from zerohour.scan import filetype

    assert filetype.detect(sevenzip(False)) is FileType.SEVENZIP
    assert not archive.sevenzip_is_encrypted(sevenzip(False))
    with pytest.raises(EncryptedContent) as exc:
        list(archive.unopened_children(sevenzip(True), FileType.SEVENZIP, ScanContext()))
    assert exc.value.format == "7Zip"


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_rar_7z_never_crash(data: st.DataObject) -> None:
    for blob in (rar4(True), rar5(True), rar5(header_encrypted=True), sevenzip(True)):
        archive.rar_is_encrypted(_mutate(blob, data))
        archive.sevenzip_is_encrypted(_mutate(blob, data))


def test_local_header_disagreeing_with_central_directory() -> None:
    # The local header says deflate, the central directory says stored: a scanner trusting
    # the directory sees deflate bytes, an extractor trusting the local header gets the file.
    payload = b"payload seen only by local-header extractors " * 4
    data = bytearray(make_zip({"a.bin": payload}, zipfile.ZIP_DEFLATED))
    cd = data.find(b"PK\x01\x02")
    struct.pack_into("<H", data, cd + 10, 0)  # central directory: method stored
    got = {c.origin: c.data for c in archive.zip_children(bytes(data), ScanContext())}
    assert payload in got.values()


def test_local_header_encryption_flag_counts() -> None:
    data = bytearray(make_zip({"a": b"secret"}))
    struct.pack_into("<H", data, 6, 1)  # only the local header says encrypted
    with pytest.raises(EncryptedContent):
        members(bytes(data))


def test_many_entries() -> None:
    # Every member once, none twice through the local-header walk (which skips covered data).
    files = {f"f{i}": b"%d" % i for i in range(5000)}
    data = make_zip(files, zipfile.ZIP_STORED)
    got = [c.origin for c in archive.zip_children(data, ScanContext())]
    assert got == ["zip"] * 5000


def test_oversized_member_with_alerts_off_does_not_hide_siblings() -> None:
    data = make_zip({"big.bin": b"\x00" * 5000, "small.txt": b"the small one"})
    off = ScanContext(Limits(max_file_size=1000, alert_exceeds_max=False))
    assert [c.data for c in archive.zip_children(data, off)] == [b"the small one"]
    assert off.skipped == ["MaxFileSize"]
    # A member whose declared size lies is caught while inflating, and skipped the same way.
    lying = bytearray(data)
    cd = lying.find(b"PK\x01\x02")
    struct.pack_into("<I", lying, cd + 24, 10)
    off2 = ScanContext(Limits(max_file_size=1000, alert_exceeds_max=False))
    assert b"the small one" in [c.data for c in archive.zip_children(bytes(lying), off2)]
    with pytest.raises(ScanLimitExceeded):
        list(archive.zip_children(data, ScanContext(Limits(max_file_size=1000))))
