"""ALZip (.alz) archives: a small bounded reader. libarchive 3.6 does not read ALZ and no
maintained Python library does (unalz is an unmaintained C++ tool), so this walks the local
file headers itself, as ClamAV's `alz.c` does.

Layout: `ALZ\\x01` + 4 bytes, then records, each a 4-byte signature: `BLZ\\x01` a local file
(name length u16, attribute u8, DOS time u32, descriptor u8, u8; when `descriptor >> 4` is
1/2/4/8: method u8, u8, CRC-32 u32, compressed and original sizes of that many bytes; the
name; 12 bytes of encryption header when `descriptor & 1`; the data), `CLZ\\x01` / `CLZ\\x02`
the central directory and its end (nothing left to read). Methods: 0 stored and 2 raw deflate
(the bounded inflater of `scan.archive`). Method 1 is ALZip's own bzip2 variant (`DLZ\x01`
block and `DLZ\x02` end markers instead of bzip2's bit-aligned magics, so Python's bz2 cannot
read it): `Heuristics.Unsupported.ALZ.BZip2`, like any other method
(`Heuristics.Unsupported.ALZ.Method<n>`). Encrypted files are `Heuristics.Encrypted.ALZ`,
damage `Heuristics.Broken.ALZ`.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from zerohour.errors import EncryptedContent
from zerohour.scan import archive
from zerohour.scan.containers import count_entry
from zerohour.scan.dedup import Dedup
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import Child, FileType, MemberMeta

MAGIC = b"ALZ\x01"
_LOCAL = b"BLZ\x01"
_ENDS = (b"CLZ\x01", b"CLZ\x02")


def children(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    dedup = Dedup()
    encrypted = False
    pos = 8
    index = 0
    n = len(data)
    while True:
        ctx.check_time()
        sig = data[pos : pos + 4]
        if sig in _ENDS:
            break
        if sig != _LOCAL or pos + 13 > n:
            ctx.broken("ALZ")  # truncated, or not a record where one must be
            break
        name_len = int.from_bytes(data[pos + 4 : pos + 6], "little")
        descriptor = data[pos + 11]
        width = descriptor >> 4
        q = pos + 13
        method = crc = 0
        csize = usize = 0
        if width:
            if width not in (1, 2, 4, 8) or q + 6 + 2 * width > n:
                ctx.broken("ALZ")
                break
            method = data[q]
            crc = int.from_bytes(data[q + 2 : q + 6], "little")
            csize = int.from_bytes(data[q + 6 : q + 6 + width], "little")
            usize = int.from_bytes(data[q + 6 + width : q + 6 + 2 * width], "little")
            q += 6 + 2 * width
        name = data[q : q + name_len].decode("cp949", "replace") or None
        q += name_len
        is_encrypted = bool(descriptor & 1)
        if is_encrypted:
            q += 12
        count_entry(ctx, index)
        ctx.note_member(MemberMeta(FileType.ALZ, name, usize, csize, crc, is_encrypted, index))
        index += 1
        raw = data[q : q + csize]
        pos = q + csize
        if is_encrypted:
            encrypted = True
            continue
        if not width or (not usize and not csize):
            continue  # a directory or an empty file
        if ctx.skip_oversized(usize):
            continue
        content, complete = _decode(method, raw, ctx)
        if content is None:
            ctx.unsupported("ALZ", "BZip2" if method == 1 else f"Method{method}")
            continue
        if len(raw) < csize or not complete or zlib.crc32(content) != crc:
            ctx.broken("ALZ")
        if content and dedup.fresh(content, name):
            ctx.charge_child(len(content))
            yield Child(data=content, name=name, origin="alz")
        if len(raw) < csize:
            break
    if encrypted:
        raise EncryptedContent("ALZ")


def _decode(method: int, raw: bytes, ctx: ScanContext) -> tuple[bytes | None, bool]:
    if method == 0:
        ctx.check_output(len(raw))
        return raw, True
    if method == 2:
        out, _end, complete = archive.zlib_bounded(raw, -15, ctx)
        return out, complete
    return None, False
