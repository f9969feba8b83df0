"""Single-stream compression: SZDD and KWAJ (MS-DOS `compress.exe`), zstd, lz4, .lzma and .lzma86.

Each layer has one child: its decompressed content. As in `zerohour.scan.archive`, every
decoder is incremental and bounded: output stops one byte past `ScanContext.output_bound()` (then
the exceeded limit is raised), the compression ratio is checked while it grows, and the clock is
checked in every loop, so a bomb (a gigabyte of zeros in 30 KB of zstd) stops after a few MiB.

Truncated or corrupt streams yield what decoded before the damage, then
`Heuristics.Broken.<Format>`. A KWAJ method we do not decode (3, LZ+Huffman; 4, MSZIP) is
`Heuristics.Unsupported.KWAJ.<Method>`. `.lzma` has no real magic: `filetype._is_lzma_alone`
accepts only headers that are strongly valid (what the tools write, and the range coder's
first byte, always 0), so that random binary data is never taken for a broken .lzma; a
detected stream that fails, even at its first byte, is then `Heuristics.Broken.LZMA`.
`.lzma86` (7-Zip's LZMA SDK: a filter byte, 0 or 1 for its x86 branch converter, before an
"LZMA alone" header whose size is always given) is told apart by that first byte and opened the
same way (clamscan opens neither); the x86 converter is undone by `x86_bcj_decode`.
"""

from __future__ import annotations

import lzma
import re
import struct
from collections.abc import Callable, Iterator
from typing import Protocol

import brotli  # type: ignore[import-untyped]
import lz4.block
import lz4.frame
import zstandard

from zerohour.scan.archive import zlib_bounded
from zerohour.scan.filetype import is_skippable_frame, skip_skippable
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import Child, FileType

_CHUNK = 1 << 20
_IN_CHUNK = 256 * 1024
# zstd's decompressobj has no output cap per call: one input byte can stand for a 128 KiB block
# (RLE), so input goes in slices small enough that one call yields at most ~4 MiB.
_ZSTD_IN = 128
_ZSTD_MAX_WINDOW = 1 << 27  # the library's default (128 MiB); larger frames are refused
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_LZ4_MAGIC = b"\x04\x22\x4d\x18"
_LZ4_LEGACY = b"\x02\x21\x4c\x18"
_LZ4_LEGACY_BLOCK = 8 << 20
_LZ4_LEGACY_BOUND = _LZ4_LEGACY_BLOCK + _LZ4_LEGACY_BLOCK // 255 + 16  # LZ4_compressBound
_LZMA_MAX_DICT = 1 << 28  # liblzma reserves the declared dictionary: more is refused (256 MiB)

SZDD_MAGIC = b"SZDD\x88\xf0\x27\x33"
KWAJ_MAGIC = b"KWAJ\x88\xf0\x27\xd1"
_KWAJ_METHODS = {3: "LZH", 4: "MSZIP"}


class _Decompressor(Protocol):
    """lzma.LZMADecompressor and lz4.frame.LZ4FrameDecompressor share this interface."""

    @property
    def eof(self) -> bool: ...

    @property
    def needs_input(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


class _Output:
    """Collected output, charged against the scan's bounds as it grows."""

    def __init__(self, ctx: ScanContext, compressed: int) -> None:
        self.ctx = ctx
        self.bound = ctx.output_bound()
        self.compressed = compressed
        self.parts: list[bytes] = []
        self.total = 0

    def room(self) -> int:
        """How much more to ask a decoder for (one byte past the bound shows an overrun)."""
        return max(1, min(_CHUNK, self.bound + 1 - self.total))

    def add(self, piece: bytes) -> None:
        self.parts.append(piece)
        self.total += len(piece)
        if self.total > self.bound:
            self.ctx.check_output(self.total)  # raises the limit that was exceeded
        self.ctx.check_ratio(self.compressed, self.total)

    def data(self) -> bytes:
        return b"".join(self.parts)


def frames_bounded(
    factory: Callable[[], _Decompressor], data: bytes, ctx: ScanContext, magic: bytes
) -> tuple[bytes, bool]:
    """Decompress concatenated lz4 frames / one LZMA stream with bounded output: (output,
    whether every stream was complete). Trailing bytes that do not start another stream are
    ignored, as the tools ignore padding (archive._stream_bounded's rule)."""
    out = _Output(ctx, len(data))
    mv = memoryview(data)
    n = len(data)
    pos = 0
    d = factory()
    stalls = 0
    while True:
        ctx.check_time()
        if d.eof:
            pos -= len(d.unused_data or b"")
            if pos >= n or not magic or not data.startswith(magic, pos):
                return out.data(), True
            d = factory()
            continue
        feed: bytes | memoryview = b""
        if d.needs_input:
            if pos >= n:
                return out.data(), False  # truncated
            feed = mv[pos : pos + _IN_CHUNK]
            pos += len(feed)
        try:
            piece = d.decompress(feed, out.room())  # type: ignore[arg-type]
        except (OSError, EOFError, lzma.LZMAError, RuntimeError, ValueError):
            return out.data(), False
        out.add(piece)
        stalls = stalls + 1 if not piece and not feed else 0
        if stalls > 2:
            return out.data(), False


# --- zstd -------------------------------------------------------------------------------------


def _is_zstd_frame(data: bytes, pos: int) -> bool:
    """A zstd frame or a skippable frame (magic 0x184D2A50-5F) starts at `pos`."""
    head = data[pos : pos + 4]
    return head == _ZSTD_MAGIC or (len(head) == 4 and head[1:] == b"\x2a\x4d\x18"
                                   and head[0] & 0xF0 == 0x50)


def unzstd(data: bytes, ctx: ScanContext) -> tuple[bytes, bool, str | None]:
    """All frames of a zstd stream: (output, complete, why it is unsupported if it is)."""
    dctx = zstandard.ZstdDecompressor(max_window_size=_ZSTD_MAX_WINDOW)
    out = _Output(ctx, len(data))
    n = len(data)
    pos = 0
    while pos < n and _is_zstd_frame(data, pos):
        d = dctx.decompressobj()
        while not d.eof:
            ctx.check_time()
            if pos >= n:
                return out.data(), False, None  # truncated frame
            feed = data[pos : pos + _ZSTD_IN]
            pos += len(feed)
            try:
                piece = d.decompress(feed)
            except zstandard.ZstdError as exc:
                if "memory" in str(exc).lower() or "window" in str(exc).lower():
                    return out.data(), False, "Window"
                return out.data(), False, None
            if piece:
                out.add(piece)
        pos -= len(d.unused_data)
    return out.data(), True, None


# --- brotli -----------------------------------------------------------------------------------

#: Names that say "brotli" (`brotli` writes `.br`): the format has no magic number, so only a
#: name opens it.
BROTLI_SUFFIXES = (".br", ".brotli")
_BROTLI_IN = 64 * 1024


def brotli_children(data: bytes, ctx: ScanContext, name: str) -> Iterator[Child]:
    """A layer named `x.br`, as `brotli -d` decodes it (output bounded as it grows). One that
    does not decode is `Heuristics.Broken.Brotli`: its name says what it is."""
    out, finished = _unbrotli(data, ctx)
    if not finished:
        ctx.broken("Brotli")
    if out.total:
        ctx.charge_child(out.total)
        yield Child(data=out.data(), name=name[: name.rfind(".")] or None, origin="brotli")


#: a whole stream followed by other bytes counts when it makes this much (zlib's and Python's
#: raw decoders stop at its end and return it, round 5: EICAR's raw deflate + "\x00trailer");
#: random data that decodes at all makes a few bytes (26 in 200,000 tries, none over 26)
_TRAILED_LEAST = 64


def magicless_children(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """Binary data that is a whole stream of a format without a magic number, under any name:
    brotli, raw LZMA2 (`xz --format=raw`; round 10 sent clam.exe in both, as `invoice.dat`),
    raw deflate (`zopfli --deflate`, zlib's `wbits=-15`) and raw LZMA1 (`xz --format=raw
    --lzma1`, its default lc/lp/pb; round 20 a27, a28). A decoder rejects other bytes within
    the first few (random data and real binaries: nothing decoded, ~10 microseconds; no file of
    /usr/bin or 200 random megabytes decoded to its end), so only a stream that decodes
    to the end of the data counts, or to its own end with `_TRAILED_LEAST` bytes or more made;
    nothing is said of one that does not."""
    out, finished = _unbrotli(data, ctx, probe=True)
    if finished and out.total:
        ctx.charge_child(out.total)
        yield Child(data=out.data(), name=None, origin="brotli")
    inflated, end, complete = zlib_bounded(data, -15, ctx)
    if complete and inflated and (end == len(data) or len(inflated) >= _TRAILED_LEAST):
        ctx.charge_child(len(inflated))
        yield Child(data=inflated, name=None, origin="deflate-raw")
    if not data:
        return
    if data[0] == 0:  # LZMA1's range coder always starts with a zero byte
        raw, ended, exact = _unlzma_raw(data, ctx, lzma.FILTER_LZMA1)
        if ended and raw and (exact or len(raw) >= _TRAILED_LEAST):
            ctx.charge_child(len(raw))
            yield Child(data=raw, name=None, origin="lzma1-raw")
    elif data[0] == 1 or data[0] >= 0xE0:  # LZMA2's first chunk resets the dictionary
        raw, ended, _exact = _unlzma_raw(data, ctx, lzma.FILTER_LZMA2)
        if ended and raw:
            ctx.charge_child(len(raw))
            yield Child(data=raw, name=None, origin="lzma2-raw")


def _unlzma_raw(data: bytes, ctx: ScanContext, filter_id: int) -> tuple[bytes, bool, bool]:
    """A raw LZMA1 or LZMA2 stream (xz's defaults: lc 3, lp 0, pb 2, an 8 MiB dictionary),
    bounded: (its output, whether it ended, whether exactly at the end of the data)."""
    d = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[{"id": filter_id}])
    out = _Output(ctx, len(data))
    pos, n = 0, len(data)
    try:
        while not d.eof:
            ctx.check_time()
            feed = b""
            if d.needs_input:
                if pos >= n:
                    return out.data(), False, False
                feed = data[pos : pos + _BROTLI_IN]
                pos += len(feed)
            piece = d.decompress(feed, out.room())
            if piece:
                out.add(piece)
            elif not feed and not d.needs_input and not d.eof:
                return out.data(), False, False
    except (lzma.LZMAError, EOFError):
        return out.data(), False, False
    return out.data(), True, pos >= n and not d.unused_data


def _unbrotli(data: bytes, ctx: ScanContext, probe: bool = False) -> tuple[_Output, bool]:
    """(output, whether the stream ended); `probe`: the first piece fed is small (most data
    that is not brotli fails within a few bytes, and need not be copied)."""
    d = brotli.Decompressor()
    out = _Output(ctx, len(data))
    pos, n = 0, len(data)
    view = memoryview(data)
    finished = False
    try:
        while not (finished := d.is_finished()):
            ctx.check_time()
            feed: bytes | memoryview = b""
            if d.can_accept_more_data():
                if pos >= n:
                    break  # truncated
                feed = view[pos : pos + (256 if probe and not pos else _BROTLI_IN)]
                pos += len(feed)
            piece = d.process(feed, output_buffer_limit=out.room())
            if piece:
                out.add(piece)
            elif not feed and d.can_accept_more_data() and pos >= n:
                break
    except brotli.error:
        finished = False  # (the decoder is "unhealthy" now: no more calls)
    return out, finished


# --- lz4 --------------------------------------------------------------------------------------


def unlz4(data: bytes, ctx: ScanContext) -> tuple[bytes, bool]:
    """Everything `lz4 -d` decodes: frames, legacy streams (`lz4 -l`) and skippable frames, in
    any order and number (an attacker's clam.exe behind a skippable frame, or a modern frame
    after a legacy stream, was ignored as trailing bytes). Bytes that start none of them end
    the input (ignored, as lz4 does); a cut stream is incomplete."""
    out = _Output(ctx, len(data))
    n = len(data)
    pos = 0
    while True:
        ctx.check_time()
        pos = skip_skippable(data, pos)
        if pos > n:
            return out.data(), False  # a skippable frame longer than the file
        if data.startswith(_LZ4_LEGACY, pos):
            pos, ok = _lz4_legacy_at(data, pos, ctx, out)
        elif data.startswith(_LZ4_MAGIC, pos):
            pos, ok = _lz4_frame_at(data, pos, ctx, out)
        else:
            return out.data(), True
        if not ok:
            return out.data(), False


def _lz4_frame_at(data: bytes, pos: int, ctx: ScanContext, out: _Output) -> tuple[int, bool]:
    """One lz4 frame from `pos`: (the offset after it, whether it was complete)."""
    mv = memoryview(data)
    n = len(data)
    d = lz4.frame.LZ4FrameDecompressor()
    stalls = 0
    while not d.eof:
        ctx.check_time()
        feed: bytes | memoryview = b""
        if d.needs_input:
            if pos >= n:
                return pos, False  # truncated
            feed = mv[pos : pos + _IN_CHUNK]
            pos += len(feed)
        try:
            piece = d.decompress(feed, out.room())
        except RuntimeError:
            return pos, False
        out.add(piece)
        stalls = stalls + 1 if not piece and not feed else 0
        if stalls > 2:
            return pos, False
    return pos - len(d.unused_data or b""), True


def _lz4_legacy_at(data: bytes, pos: int, ctx: ScanContext, out: _Output) -> tuple[int, bool]:
    """Legacy lz4 from its magic at `pos`: blocks of (le32 compressed size, lz4 block), each at
    most 8 MiB decompressed; another legacy magic goes on, a frame or skippable magic ends it
    (`unlz4` goes on there): (the offset after it, whether it was complete)."""
    n = len(data)
    pos += 4
    while pos + 4 <= n:
        ctx.check_time()
        if data.startswith(_LZ4_LEGACY, pos):
            pos += 4
            continue
        if data.startswith(_LZ4_MAGIC, pos) or is_skippable_frame(data, pos):
            return pos, True
        (size,) = struct.unpack_from("<I", data, pos)
        if size == 0 or size > _LZ4_LEGACY_BOUND:
            # Not a block: the end, or trailing bytes after the last stream (ignored).
            return n, True
        pos += 4
        block = data[pos : pos + size]
        if len(block) < size:
            return pos, False
        pos += size
        try:
            piece = lz4.block.decompress(block, uncompressed_size=_LZ4_LEGACY_BLOCK)
        except lz4.block.LZ4BlockError:
            return pos, False
        out.add(piece)  # at most 8 MiB: over the bound, `add` raises the limit
    return n, pos == n


# --- .lzma ------------------------------------------------------------------------------------


def unlzma(data: bytes, ctx: ScanContext) -> tuple[bytes, bool, str | None]:
    """One "LZMA alone" stream (`xz --format=lzma`, `lzma`) or .lzma86 stream: (output,
    complete, why it is unsupported if it is)."""
    lzma86 = data[:1] in (b"\x00", b"\x01")  # an LZMA alone header starts with 0x5D
    alone = data[1:] if lzma86 else data
    if len(alone) >= 5 and int.from_bytes(alone[1:5], "little") > _LZMA_MAX_DICT:
        return b"", False, "Dictionary"
    out, complete = frames_bounded(
        lambda: lzma.LZMADecompressor(lzma.FORMAT_ALONE), alone, ctx, b""
    )
    if lzma86 and data[0] == 1:
        ctx.check_time()
        out = x86_bcj_decode(out)
    return out, complete, None


_E8_E9 = re.compile(rb"[\xe8\xe9]")


def _msbyte(b: int) -> bool:
    """Test86MSByte: 0x00 or 0xFF, the top byte of a near call's displacement."""
    return b in (0x00, 0xFF)


def x86_bcj_decode(data: bytes) -> bytes:
    """Undo the x86 branch converter (BCJ) of the LZMA SDK and liblzma (start offset 0): the
    absolute targets it wrote into E8/E9 (call/jmp) instructions back to relative ones."""
    buf = bytearray(data)
    limit = len(buf) - 4
    pos = 0
    mask = 0
    while limit > 0:
        m = _E8_E9.search(buf, pos, limit)
        if m is None:
            break
        p = m.start()
        gap = p - pos
        pos = p
        if gap > 2:
            mask = 0
        else:
            mask >>= gap
            if mask and (mask > 4 or mask == 3 or _msbyte(buf[p + (mask >> 1) + 1])):
                mask = (mask >> 1) | 4
                pos += 1
                continue
        if _msbyte(buf[p + 4]):
            cur = p + 5
            v = (int.from_bytes(buf[p + 1 : p + 5], "little") - cur) & 0xFFFFFFFF
            if mask:
                sh = (mask & 6) << 2
                if _msbyte((v >> sh) & 0xFF):
                    v = ((v ^ ((0x100 << sh) - 1)) - cur) & 0xFFFFFFFF
                mask = 0
            v = (v & 0xFFFFFF) | ((-((v >> 24) & 1)) & 0xFF) << 24
            buf[p + 1 : p + 5] = v.to_bytes(4, "little")
            pos = p + 5
        else:
            mask = (mask >> 1) | 4
            pos += 1
    return bytes(buf)


# --- SZDD and KWAJ (MS-DOS compress.exe / expand.exe) -----------------------------------------


def lzss_expand(
    data: bytes | memoryview, ctx: ScanContext, start: int = 0, limit: int | None = None
) -> tuple[bytes, bool]:
    """The LZSS of SZDD and KWAJ method 2: (output, whether the input ended on a token edge).

    A 4 KiB ring initialised with spaces, written from 0xFF0; a control byte's bits (LSB
    first) say literal (1) or a 2-byte match: 12-bit ring position, 4-bit length + 3. The
    ring is kept as 4 KiB of spaces in front of the output, so a match is a slice copy. At most
    `limit` bytes (default: the scan's output bound, then one more to show the overrun).
    """
    out = _Output(ctx, max(1, len(data) - start))
    cap = out.bound + 1 if limit is None else min(limit, out.bound + 1)
    buf = bytearray(b" " * 4096)
    pos = start
    n = len(data)
    whole = True
    while pos < n and len(buf) - 4096 < cap:
        ctx.check_time()
        mark = len(buf)
        # Up to 512 control bytes per clock check (at most ~74 KiB of output).
        for _ in range(512):
            if pos >= n:
                break
            control = data[pos]
            pos += 1
            for bit in range(8):
                if pos >= n:
                    break
                if control >> bit & 1:
                    buf.append(data[pos])
                    pos += 1
                    continue
                if pos + 2 > n:
                    whole = False  # a match token cut in half
                    pos = n
                    break
                lo, hi = data[pos], data[pos + 1]
                pos += 2
                ring = lo | (hi & 0xF0) << 4
                length = (hi & 0x0F) + 3
                written = len(buf) - 4096
                back = ((0xFF0 + written - ring) & 0xFFF) or 4096
                src = len(buf) - back
                if back >= length:
                    buf += buf[src : src + length]
                else:
                    pat = bytes(buf[src:])
                    buf += (pat * (length // back + 1))[:length]
            if len(buf) - 4096 >= cap:
                break
        out.total = len(buf) - 4096
        if out.total > out.bound:
            ctx.check_output(out.total)
        ctx.check_ratio(out.compressed, out.total)
        if len(buf) == mark:
            break
    result = bytes(memoryview(buf)[4096:])
    return (result[:limit] if limit is not None else result), whole


def unszdd(data: bytes, ctx: ScanContext) -> tuple[bytes, bool, str | None]:
    """An SZDD file: (content, complete, the missing last character of its name if known).

    Header: magic, 'A', the character `compress -r` replaced with `_` in the name, le32 size.
    Complete when the input ends on a token edge and the output has the declared size.
    """
    if len(data) < 14 or data[8:9] != b"A":
        return b"", False, None
    (size,) = struct.unpack_from("<I", data, 10)
    missing = chr(data[9]) if 0x20 < data[9] < 0x7F else None
    out, whole = lzss_expand(data, ctx, start=14, limit=max(size, 0) or None)
    return out, whole and len(out) == size, missing


def unkwaj(data: bytes, ctx: ScanContext) -> tuple[bytes, bool, str | None, str | None]:
    """A KWAJ file: (content, complete, stored name, unsupported method name or None).

    Header: magic, le16 method, le16 data offset, le16 flags, then optional fields by flag:
    0x01 le32 size, 0x02 le16, 0x04 le16 n + n bytes, 0x08 name (NUL-terminated, at most 9),
    0x10 extension (at most 4), 0x20 le16 n + n bytes of text. Methods: 0 stored, 1 XOR 0xFF,
    2 SZDD's LZSS, 3 LZ+Huffman, 4 MSZIP (the last two: not decoded, so unsupported).
    """
    if len(data) < 14:
        return b"", False, None, None
    method, offset, flags = struct.unpack_from("<HHH", data, 8)
    pos = 14
    size: int | None = None
    name: str | None = None
    try:
        if flags & 0x01:
            (size,) = struct.unpack_from("<I", data, pos)
            pos += 4
        if flags & 0x02:
            pos += 2
        if flags & 0x04:
            (skip,) = struct.unpack_from("<H", data, pos)
            pos += 2 + skip
        stem = ext = ""
        if flags & 0x08:
            end = data.index(b"\x00", pos, pos + 9)
            stem = data[pos:end].decode("latin-1")
            pos = end + 1
        if flags & 0x10:
            end = data.index(b"\x00", pos, pos + 4)
            ext = data[pos:end].decode("latin-1")
            pos = end + 1
        name = (stem + ("." + ext if ext else "")) or None
    except (struct.error, ValueError):
        return b"", False, None, None
    if offset > len(data) or offset < 14:
        return b"", False, name, None
    body = memoryview(data)[offset:]
    if method in (0, 1):
        bound = ctx.output_bound()
        if len(body) > bound:
            ctx.check_output(len(body))
        out = bytes(body) if method == 0 else bytes(body).translate(_XOR_FF)
        complete = True
    elif method == 2:
        out, complete = lzss_expand(body, ctx, limit=size)
    else:
        return b"", True, name, _KWAJ_METHODS.get(method, f"Method{method}")
    if size is not None and len(out) != size:
        complete = False
        out = out[:size]
    return out, complete, name, None


_XOR_FF = bytes(b ^ 0xFF for b in range(256))


# --- dispatch ---------------------------------------------------------------------------------

_SUFFIXES = {
    FileType.ZSTD: (".zst", ".zstd", ".tzst"),
    FileType.LZ4: (".lz4", ".tlz4"),
    FileType.LZMA: (".lzma", ".tlz", ".lzma86"),
}


def _inner_name(name: str | None, ft: FileType) -> str | None:
    if not name:
        return None
    for suffix in _SUFFIXES.get(ft, ()):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] + (".tar" if suffix.startswith(".t") else "")
    return None


def stream_children(
    data: bytes, ft: FileType, ctx: ScanContext, name: str | None
) -> Iterator[Child]:
    """The decompressed content of an SZDD/KWAJ, zstd, lz4 or .lzma layer (one child)."""
    inner = _inner_name(name, ft)
    if ft is FileType.SZDD:
        if data.startswith(KWAJ_MAGIC):
            out, complete, stored, method = unkwaj(data, ctx)
            fmt, origin, inner = "KWAJ", "kwaj", stored or inner
            if method is not None:
                ctx.unsupported("KWAJ", method)
        else:
            out, complete, missing = unszdd(data, ctx)
            fmt, origin = "SZDD", "szdd"
            if name and name.endswith("_"):
                inner = name[:-1] + missing if missing else name
    elif ft is FileType.ZSTD:
        out, complete, why = unzstd(data, ctx)
        fmt, origin = "Zstd", "zstd"
        if why is not None:
            ctx.unsupported(fmt, why)
            complete = True
    elif ft is FileType.LZ4:
        out, complete = unlz4(data, ctx)
        fmt, origin = "LZ4", "lz4"
    elif ft is FileType.LZMA:
        out, complete, why = unlzma(data, ctx)
        fmt, origin = "LZMA", "lzma"
        if why is not None:
            ctx.unsupported(fmt, why)
            complete = True
    else:
        return
    if not complete:
        ctx.broken(fmt)  # truncated or corrupt: what decoded before the damage is still scanned
    if out:
        ctx.charge_child(len(out))
        yield Child(data=out, name=inner, origin=origin)
