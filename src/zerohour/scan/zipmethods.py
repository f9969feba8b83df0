"""Zip compression methods beyond zipfile's (stored, deflate, bzip2, LZMA): Deflate64 (9,
the `inflate64` library), Implode (6, `scan.implode`), Zstandard (93, `zstandard`) and PPMd
(98, libarchive's zip reader, fed a one-entry zip made of the member's local header and data).
These are the methods clamscan or Windows Explorer open, so a zip using them must be read, not
only flagged. Every decoder is bounded like the others (output bound, ratio, clock).
"""

from __future__ import annotations

import io
import struct

import inflate64
import zstandard

from zerohour.scan import implode
from zerohour.scan import libarchive_read as la
from zerohour.scan.limits import ScanContext

#: Methods decoded here.
METHODS = frozenset({6, 9, 93, 98})
_DEFLATE64_FEED = 256  # compressed bytes per call: at most a few MiB of output each
_ZSTD_READ = 1 << 20


def decode(method: int, raw: bytes, ctx: ScanContext, flags: int, size: int,
           crc: int) -> tuple[bytes | None, bool]:
    """(content, whether it decoded completely) for one of `METHODS` (None otherwise)."""
    if method == 9:
        return _deflate64(raw, ctx)
    if method == 6:
        return implode.explode(raw, flags, size, ctx)
    if method == 93:
        return _zstd(raw, ctx)
    if method == 98:
        return _ppmd(raw, ctx, size, crc)
    return None, False


def _deflate64(raw: bytes, ctx: ScanContext) -> tuple[bytes, bool]:
    bound = ctx.output_bound()
    inflater = inflate64.Inflater()
    chunks: list[bytes] = []
    total = 0
    mv = memoryview(raw)
    for pos in range(0, len(raw), _DEFLATE64_FEED):
        ctx.check_time()
        try:
            piece = inflater.inflate(bytes(mv[pos : pos + _DEFLATE64_FEED]))
        except (ValueError, RuntimeError, EOFError):
            return b"".join(chunks), False
        chunks.append(piece)
        total += len(piece)
        if total > bound:
            ctx.check_output(total)
        ctx.check_ratio(len(raw), total)
        if inflater.eof:
            return b"".join(chunks), True
    return b"".join(chunks), bool(inflater.eof)


def _zstd(raw: bytes, ctx: ScanContext) -> tuple[bytes, bool]:
    bound = ctx.output_bound()
    chunks: list[bytes] = []
    total = 0
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw), read_across_frames=True)
    try:
        while True:
            ctx.check_time()
            piece = reader.read(min(_ZSTD_READ, bound + 1 - total))
            if not piece:
                break
            chunks.append(piece)
            total += len(piece)
            if total > bound:
                ctx.check_output(total)
            ctx.check_ratio(len(raw), total)
    except zstandard.ZstdError:
        return b"".join(chunks), False
    return b"".join(chunks), True


def _ppmd(raw: bytes, ctx: ScanContext, size: int, crc: int) -> tuple[bytes, bool]:
    from zerohour.scan.containers import read_bounded

    name = b"x"
    local = b"PK\x03\x04" + struct.pack("<HHHHHIIIHH", 63, 0, 98, 0, 0, crc, len(raw), size,
                                        len(name), 0) + name
    try:
        with la.open_memory(local + raw, ("zip_streamable",)) as reader:
            _code, entry = reader.next()
            if entry is None:
                return b"", False
            content, code, _message = read_bounded(reader, ctx, len(raw))
    except la.LibarchiveError:
        return b"", False
    return content, code == la.OK
