"""NSIS (Nullsoft) installers: the files and install script inside the data block.

An NSIS installer is a PE stub followed, at a 512-byte boundary, by a "first header" (flags,
0xDEADBEEF, "NullsoftInst", header size, archive length) and the archive. Non-solid archives
are a run of blocks (le32 length, bit 31 set when compressed), the install header first; solid
archives are one compressed stream of such (uncompressed) records. The compressor is told by
the first byte, as in clamscan (libclamav/nsis): 0x5D is LZMA (5 property bytes, then raw LZMA;
0xDD adds NSIS's x86 call filter), 0x31 NSIS's own header-less bzip2 variant (decoded by
`zerohour.scan.unpack.nsis_bzip2`), anything else raw deflate. Every block is scanned as a
file, the header too (it holds the install script), as clamscan does; file names would need
the script to be interpreted, so children are unnamed.

Bounded like every decompression (`ScanContext.output_bound`, ratio, clock, files). Damage is
`Heuristics.Broken.NSIS` after what was read.
"""

from __future__ import annotations

import contextlib
import lzma
import struct
import zlib
from collections.abc import Iterator

from zerohour.scan.limits import ScanContext
from zerohour.scan.streams import frames_bounded
from zerohour.scan.types import Child
from zerohour.scan.unpack import nsis_bzip2

SIGNATURE = b"\xef\xbe\xad\xdeNullsoftInst"
_NO_CRC = 0x4
_MAX_BLOCKS = 100_000
_CHUNK = 1 << 20
_IN_CHUNK = 256 * 1024


def find_first_header(data: bytes) -> int | None:
    """Offset of the first header (512-aligned, its signature 4 bytes in), or None."""
    at = data.find(SIGNATURE, 4)
    for _ in range(64):
        if at < 0:
            return None
        if (at - 4) % 512 == 0 and at + 24 <= len(data):
            return at - 4
        at = data.find(SIGNATURE, at + 1)
    return None


def _method(first: int) -> str:
    if first & 0x7F == 0x5D:
        return "lzma"
    if first == 0x31:
        return "bzip2"
    return "zlib"


def _inflate(raw: bytes, ctx: ScanContext) -> tuple[bytes, bool]:
    """Raw deflate with bounded output: (output, whether the stream ended undamaged)."""
    bound = ctx.output_bound()
    d = zlib.decompressobj(-15)
    parts: list[bytes] = []
    total = 0
    mv = memoryview(raw)
    pos = 0
    pending: bytes | memoryview = b""
    stalls = 0
    while True:
        ctx.check_time()
        if not pending:
            if pos >= len(raw):
                with contextlib.suppress(zlib.error):
                    parts.append(d.flush(bound + 1 - total))
                total = sum(map(len, parts))
                if total > bound:
                    ctx.check_output(total)
                return b"".join(parts), d.eof
            pending = mv[pos : pos + _IN_CHUNK]
            pos += len(pending)
        try:
            piece = d.decompress(pending, min(_CHUNK, bound + 1 - total))
        except zlib.error:
            return b"".join(parts), False
        parts.append(piece)
        total += len(piece)
        if total > bound:
            ctx.check_output(total)
        ctx.check_ratio(len(raw), total)
        if d.eof:
            return b"".join(parts), True
        pending = d.unconsumed_tail
        stalls = stalls + 1 if not piece and pending else 0
        if stalls > 2:
            return b"".join(parts), False


def _unlzma(raw: bytes, ctx: ScanContext) -> tuple[bytes, bool]:
    """NSIS LZMA: a properties byte (bit 7: x86 filter), le32 dictionary size, raw LZMA."""
    if len(raw) < 5:
        return b"", False
    props = raw[0] & 0x7F
    lc, lp, pb = props % 9, props // 9 % 5, props // 45
    if pb > 4:
        return b"", False
    lzma1 = {"id": lzma.FILTER_LZMA1, "dict_size": max(4096, min(int.from_bytes(raw[1:5],
             "little"), 1 << 28)), "lc": lc, "lp": lp, "pb": pb}
    filters: list[dict[str, int]] = [{"id": lzma.FILTER_X86}, lzma1] if raw[0] & 0x80 else [lzma1]
    return frames_bounded(lambda: lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=filters),
                          raw[5:], ctx, b"")


def _unbzip2(raw: bytes, ctx: ScanContext) -> tuple[bytes, bool]:
    bound = ctx.output_bound()
    out, complete = nsis_bzip2.decompress(raw, bound, ctx.check_time)
    if len(out) > bound:
        ctx.check_output(len(out))
    ctx.check_ratio(len(raw), len(out))
    return out, complete


def _decode(method: str, raw: bytes, ctx: ScanContext) -> tuple[bytes, bool]:
    if method == "lzma":
        return _unlzma(raw, ctx)
    if method == "bzip2":
        return _unbzip2(raw, ctx)
    return _inflate(raw, ctx)


def _blocks(data: bytes, start: int, end: int) -> tuple[list[tuple[bool, int, int]], bool]:
    """Non-solid layout: (compressed, offset, size) of the whole blocks from `start`, and
    whether they tile [start, end) exactly (False: the last one is cut short, or junk)."""
    out: list[tuple[bool, int, int]] = []
    pos = start
    while pos + 4 <= end and len(out) < _MAX_BLOCKS:
        (n,) = struct.unpack_from("<I", data, pos)
        size = n & 0x7FFFFFFF
        if pos + 4 + size > end:
            break
        out.append((bool(n & 0x80000000), pos + 4, size))
        pos += 4 + size
    return out, pos == end


def nsis_children(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """The install header and every file of an NSIS installer (nothing if it is not one)."""
    fh = find_first_header(data)
    if fh is None:
        return
    flags, _sig, _magic, header_size, length = struct.unpack_from("<II12sII", data, fh)
    start = fh + 28
    end = fh + length - (0 if flags & _NO_CRC else 4)
    if length < 28 or end > len(data) or end <= start:
        ctx.broken("NSIS")  # truncated (or a lying length): read what is there
        end = len(data)
        if end <= start:
            return
    seen: set[bytes] = set()

    def child(content: bytes) -> Iterator[Child]:
        if content and content not in seen:
            seen.add(content)
            ctx.charge_child(len(content))
            yield Child(data=content, name=None, origin="nsis")

    # Non-solid when the first block is the install header (stored, or decompressing to
    # exactly its size); solid archives start with compressed data instead of a length.
    blocks, exact = _blocks(data, start, end)
    header: bytes | None = None
    method = _method(data[start])
    if blocks:
        compressed, off, size = blocks[0]
        if not compressed:
            header = data[off : off + size] if size == header_size else None
        else:
            method = _method(data[off])
            out, _ok = _decode(method, data[off : off + size], ctx)
            header = out if len(out) == header_size else None
            if header is None:
                method = _method(data[start])
    if header is not None:
        yield from child(header)
        for compressed, off, size in blocks[1:]:
            ctx.check_time()
            raw = data[off : off + size]
            if not compressed:
                yield from child(raw)
                continue
            out, complete = _decode(method, raw, ctx)
            if not complete:
                ctx.broken("NSIS")
            yield from child(out)
        if not exact:
            ctx.broken("NSIS")
        return
    stream, complete = _decode(method, data[start:end], ctx)  # solid
    pos = 0
    for _ in range(_MAX_BLOCKS):
        ctx.check_time()
        if pos + 4 > len(stream):
            break
        size = int.from_bytes(stream[pos : pos + 4], "little") & 0x7FFFFFFF
        body = stream[pos + 4 : pos + 4 + size]
        if len(body) < size:
            complete = False
        yield from child(body)
        pos += 4 + size
    if not complete or pos != len(stream):
        ctx.broken("NSIS")
