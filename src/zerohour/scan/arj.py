"""ARJ archives: a small bounded reader (libarchive 3.6 has no ARJ reader, and no maintained
Python library reads ARJ).

Layout (ARJ technote): a main header, then per file a header (`60 EA`, basic-header size,
fixed fields, name, comment, CRC-32, extended headers) followed by its compressed data; a
basic-header size of 0 ends the archive. Methods:

- 0: stored.
- 1-3: the static-Huffman LZ77 of LHA's `-lh6-`/`-lh7-` (same block layout, tables, THRESHOLD 3,
  position codes of at most 16 bits; ARJ's 26 KiB window fits in lh7's 64 KiB), so the data is
  wrapped in a one-entry LHA level-0 header and decoded by libarchive's LHA reader, block by
  block like any other libarchive member. The LHA CRC-16 is unknown (libarchive then warns at the
  entry's end); ARJ's own CRC-32 is checked instead.
- 4 ("fastest"): a simple unary-prefixed LZ77, decoded here (output bounded, clock checked).

Encrypted ("garbled") files raise `EncryptedContent("ARJ")` after every readable file; files
continued across volumes are `Heuristics.Unsupported.ARJ.Volume`; damage is
`Heuristics.Broken.ARJ`.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

from zerohour.errors import EncryptedContent
from zerohour.scan import libarchive_read as la
from zerohour.scan.containers import count_entry, read_bounded
from zerohour.scan.dedup import Dedup
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import Child, FileType, MemberMeta

_ID = b"\x60\xea"
_MAX_BASIC = 2600
_GARBLED = 0x01
_VOLUME = 0x04
_EXTFILE = 0x08
_DIRECTORY = 3
_MAX_EXT_HEADERS = 64


class _Header:
    __slots__ = ("comp_size", "crc", "data_at", "end", "file_type", "flags", "method", "name",
                 "orig_size")

    def __init__(self, data: bytes, pos: int, size: int) -> None:
        basic = data[pos + 4 : pos + 4 + size]
        first = basic[0]
        self.flags = basic[4]
        self.method = basic[5]
        self.file_type = basic[6]
        self.comp_size, self.orig_size, self.crc = struct.unpack_from("<III", basic, 12)
        name_end = basic.find(b"\x00", first)
        raw = basic[first : name_end if name_end >= 0 else len(basic)]
        self.name = raw.decode("cp437") or None
        q = pos + 4 + size + 4  # after the basic header's CRC-32
        for _ in range(_MAX_EXT_HEADERS):
            if q + 2 > len(data):
                break
            (ext,) = struct.unpack_from("<H", data, q)
            q += 2
            if not ext:
                break
            q += ext + 4
        self.data_at = q
        self.end = q + self.comp_size


def _header_at(data: bytes, pos: int) -> tuple[int, _Header | None]:
    """(basic-header size, parsed header): size 0 is the end of the archive; raises
    ValueError on damage (no id, a bad size, a CRC mismatch, a cut header)."""
    if data[pos : pos + 2] != _ID or pos + 4 > len(data):
        raise ValueError("no ARJ header")
    (size,) = struct.unpack_from("<H", data, pos + 2)
    if size == 0:
        return 0, None
    if size > _MAX_BASIC or size < 30 or pos + 4 + size + 4 > len(data):
        raise ValueError("bad basic header")
    basic = data[pos + 4 : pos + 4 + size]
    (crc,) = struct.unpack_from("<I", data, pos + 4 + size)
    if zlib.crc32(basic) != crc:
        raise ValueError("basic header CRC")
    return size, _Header(data, pos, size)


def children(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    dedup = Dedup()
    encrypted = False
    try:
        size, _main = _header_at(data, 0)
    except ValueError:
        # No main header with a valid CRC: not an ARJ archive (random data can start with
        # `60 EA`), and `arj` itself refuses it. The layer is still matched as it is.
        return
    pos = 4 + size + 4
    # Skip the main header's extended headers.
    while pos + 2 <= len(data):
        (ext,) = struct.unpack_from("<H", data, pos)
        pos += 2 + (ext + 4 if ext else 0)
        if not ext:
            break
    index = 0
    while True:
        ctx.check_time()
        try:
            size, hdr = _header_at(data, pos)
        except ValueError:
            ctx.broken("ARJ")  # damaged or truncated (no end-of-archive header)
            break
        if hdr is None:
            break
        count_entry(ctx, index)
        is_encrypted = bool(hdr.flags & _GARBLED)
        ctx.note_member(MemberMeta(FileType.ARJ, hdr.name, hdr.orig_size, hdr.comp_size,
                                   hdr.crc, is_encrypted, index))
        index += 1
        pos = hdr.end
        if hdr.file_type == _DIRECTORY or hdr.file_type in (2, 4, 5):  # no file data
            continue
        if is_encrypted:
            encrypted = True
            continue
        if hdr.flags & (_VOLUME | _EXTFILE):
            ctx.unsupported("ARJ", "Volume")  # the rest of the file is in another volume
        raw = data[hdr.data_at : hdr.end]
        if ctx.skip_oversized(hdr.orig_size):
            continue
        content, complete = _decode(hdr, raw, ctx)
        if content is None:
            ctx.unsupported("ARJ", f"Method{hdr.method}")
            continue
        if not complete or len(raw) < hdr.comp_size or zlib.crc32(content) != hdr.crc:
            ctx.broken("ARJ")
        if content and dedup.fresh(content, hdr.name):
            ctx.charge_child(len(content))
            yield Child(data=content, name=hdr.name, origin="arj")
    if encrypted:
        raise EncryptedContent("ARJ")


def _decode(hdr: _Header, raw: bytes, ctx: ScanContext) -> tuple[bytes | None, bool]:
    """(content, whether it decoded to its full size); None for an unknown method."""
    if hdr.method == 0:
        ctx.check_output(len(raw))
        return raw, len(raw) == hdr.orig_size
    if hdr.method in (1, 2, 3):
        return _decode_lh(raw, hdr.orig_size, ctx)
    if hdr.method == 4:
        return decode_fastest(raw, hdr.orig_size, ctx)
    return None, False


def lha_wrap(raw: bytes, orig_size: int, method: bytes = b"-lh7-", crc16: int = 0,
             name: bytes = b"x") -> bytes:
    """`raw` as the one entry of an LHA level-0 archive, ended by a 0 byte (the content's
    CRC-16 is 0 unless given: ARJ does not store it)."""
    fields = method + struct.pack("<IIIBBB", len(raw), orig_size, 0, 0x20, 0, len(name))
    body = fields + name + struct.pack("<H", crc16)
    return bytes([len(body), sum(body) & 0xFF]) + body + raw + b"\x00"


def _decode_lh(raw: bytes, orig_size: int, ctx: ScanContext) -> tuple[bytes, bool]:
    try:
        with la.open_memory(lha_wrap(raw, orig_size), ("lha",)) as reader:
            _code, entry = reader.next()
            if entry is None:
                return b"", False
            content, code, _message = read_bounded(reader, ctx, len(raw))
    except la.LibarchiveError:
        return b"", False
    # A WARN at the end is the (unknown) CRC-16: the caller checks ARJ's CRC-32 instead.
    return content, code in (la.OK, la.WARN) and len(content) == orig_size


class _Bits:
    """MSB-first bit reader (ARJ's getbits)."""

    __slots__ = ("acc", "data", "n", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.acc = 0
        self.n = 0

    def get(self, count: int) -> int:
        while self.n < count:
            if self.pos >= len(self.data):
                raise EOFError
            self.acc = (self.acc << 8) | self.data[self.pos]
            self.pos += 1
            self.n += 8
        self.n -= count
        value = self.acc >> self.n
        self.acc &= (1 << self.n) - 1
        return value


def _unary_value(bits: _Bits, start: int, stop: int) -> int:
    plus = 0
    pwr = 1 << start
    width = start
    while width < stop:
        if not bits.get(1):
            break
        plus += pwr
        pwr <<= 1
        width += 1
    return plus + (bits.get(width) if width else 0)


def decode_fastest(raw: bytes, orig_size: int, ctx: ScanContext) -> tuple[bytes, bool]:
    """ARJ method 4: (output, whether it reached `orig_size` without damage)."""
    bound = ctx.output_bound()
    out = bytearray()
    bits = _Bits(raw)
    steps = 0
    try:
        while len(out) < orig_size:
            steps += 1
            if not steps & 0xFFF:
                ctx.check_time()
                if len(out) > bound:
                    ctx.check_output(len(out))
                ctx.check_ratio(len(raw), len(out))
            c = _unary_value(bits, 0, 7)
            if c == 0:
                out.append(bits.get(8))
                continue
            length = c - 1 + 3
            dist = _unary_value(bits, 9, 13) + 1
            if dist > len(out):
                return bytes(out), False
            start = len(out) - dist
            if dist >= length:
                out += out[start : start + length]
            else:
                for i in range(length):
                    out.append(out[start + i])
    except EOFError:
        return bytes(out), False
    if len(out) > bound:
        ctx.check_output(len(out))
    return bytes(out[:orig_size]), True
