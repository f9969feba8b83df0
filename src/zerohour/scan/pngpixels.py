"""A PNG's pixel bytes, when they are a file (round 20's a62).

`Image.frombytes("L", (w, h), payload).save("x.png")` makes a valid image whose pixels are
the payload; `Image.open("x.png").tobytes()` (or `convert x.png gray:-`) gives it back. The
PNG's own bytes hold it deflated and filtered row by row (each row predicted from its left
and upper neighbours), so neither the raw image nor its inflated IDAT shows it.

Decoding every image of every newsletter would cost more than the rest of the scan, so first
only the first rows (about 1 KiB of pixels, 8 rows at least) are decoded, by Pillow from a
small PNG of those rows, and the whole image only when those pixels, from their start or
from the start of one of those rows, sniff as a file type, text, a DOS header or a zlib
header. An interlaced or animated image, or one whose first 64 KiB of IDAT bytes
make no whole row, is decoded whatever it starts with (its first rows are not its first
pixels, or are not there yet). Chunks are walked as `pngtext.chunks` walks them, all of
them. Every frame of an animation is a layer. The pixel bytes are
speculative children: only signatures count in them (pixels that happen to start with `PK`
are no `Broken.Zip`).

Bounded: of an image of more than `_MAX_PIXEL_BYTES` of pixels only the first rows that
many bytes hold are decoded (round 21: a payload at the start of a 4096 x 8193 image; an
interlaced or animated one that big is the size limit), and a scan decodes `BUDGET` bytes
of pixels at most (a mail of interlaced bombs); an image past it is the size limit, a
finding, not passed unread.

Round 21 (a subagent attacking this reader): narrow images, 1- and 16-bit samples, APNG
frames, a flat first row, 4,100 chunks or 500 empty deflate blocks before the pixels, zlib
data as pixels, a PDF in a chunk (the file sniffs as a PDF: `decompose` reads a PNG by its
signature, whatever it sniffs as).
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NoReturn

from PIL import Image

from zerohour.errors import ScanLimitExceeded
from zerohour.scan import filetype, pngtext
from zerohour.scan.limits import MAX_SCAN_SIZE, ScanContext
from zerohour.scan.types import Child, FileType

SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: colour type -> samples per pixel
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_MAX_PIXEL_BYTES = 32 * 1024 * 1024
BUDGET = 64 * 1024 * 1024
#: pixels of the first rows decoded to decide, and rows whose starts are sniffed
_HEAD = 1024
_SNIFF_ROWS = 8
#: compressed pixel bytes looked at for those rows
_PROBE = 64 * 1024
_MAX_FRAMES = 16
#: zlib headers of a 32 KiB window (any level, with or without a dictionary)
_ZLIB = frozenset({b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda",
                   b"\x78\x20", b"\x78\x7d", b"\x78\xbb", b"\x78\xf9"})


@dataclass
class _Png:
    ihdr: bytes  # its 13 bytes
    width: int
    height: int
    row: int  # bytes of one row, filter byte left out
    interlaced: bool
    kept: list[bytes] = field(default_factory=list)  # PLTE, tRNS: what the pixels need
    idat: list[memoryview] = field(default_factory=list)
    animated: bool = False


def children(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """Each frame's pixel bytes, row after row, when they may be a file."""
    png = _read(data, ctx)
    if png is None:
        return
    size = png.row * png.height
    if size > _MAX_PIXEL_BYTES:  # (its first rows only, as many as the bound holds)
        if png.interlaced or png.animated:
            _over_budget("an interlaced or animated image over 32 MiB of pixels")
        if _sniffs(png, ctx):
            _charge(ctx, _MAX_PIXEL_BYTES)
            head, _rows = _first_rows(png, _MAX_PIXEL_BYTES // (1 + png.row), ctx, None)
            if head:
                ctx.charge_child(len(head))
                yield Child(data=head, name=None, origin="png-pixels", speculative=True)
        return
    if not (png.interlaced or png.animated or _sniffs(png, ctx)):
        return
    ctx.check_time()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (DecompressionBombWarning: sized above)
            with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
                frames = min(getattr(image, "n_frames", 1), _MAX_FRAMES)
                for n in range(frames):
                    _charge(ctx, size)
                    if n:
                        image.seek(n)
                    pixels = image.tobytes()
                    ctx.check_time()
                    if pixels:
                        ctx.charge_child(len(pixels))
                        yield Child(data=pixels, name=None, origin="png-pixels",
                                    speculative=True)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        return  # damaged: the recipient's tobytes() fails too


def _charge(ctx: ScanContext, size: int) -> None:
    """Count pixels about to be decoded against the scan's budget: past it, the image is
    the size limit (a finding), never passed unread (round 21's gateway attack: two images
    spent the budget, the third held the payload)."""
    if ctx.pixel_bytes + size > BUDGET:
        _over_budget(f"images' pixels over {BUDGET} bytes")
    ctx.pixel_bytes += size


def _over_budget(what: str) -> NoReturn:
    raise ScanLimitExceeded(MAX_SCAN_SIZE, what)


def _read(data: bytes, ctx: ScanContext) -> _Png | None:
    if data[12:16] != b"IHDR" or len(data) < 33:
        return None
    width, height, depth, colour, _comp, _filter, interlace = struct.unpack_from(
        ">IIBBBBB", data, 16)
    channels = _CHANNELS.get(colour)
    if channels is None or depth not in (1, 2, 4, 8, 16) or not width or not height:
        return None
    png = _Png(data[16:29], width, height, -(-width * channels * depth // 8), interlace == 1)
    view = memoryview(data)
    for kind, start, length in pngtext.chunks(data, ctx):
        if kind == b"IDAT":  # (a view: a large image's pixels are not copied)
            png.idat.append(view[start : start + length])
        elif kind in (b"PLTE", b"tRNS"):
            png.kept.append(data[start - 8 : start + length + 4])
        elif kind == b"acTL":
            png.animated = True
    return png


def _sniffs(png: _Png, ctx: ScanContext) -> bool:
    """Whether the first rows' pixels, from their start or a row's, may be a file."""
    rows = min(png.height, max(_SNIFF_ROWS, -(-_HEAD // png.row)),
               max(1, _PROBE // (1 + png.row)))
    pixels, rows = _first_rows(png, rows, ctx, _PROBE)
    if pixels is None:
        return rows < 0  # (no whole row in the first 64 KiB: decoded whole, to see)
    step = len(pixels) // rows
    return any(_looks_like_a_file(pixels[at : at + 256])
               for at in range(0, min(rows, _SNIFF_ROWS) * step, step or 1))


def _first_rows(png: _Png, rows: int, ctx: ScanContext, probe: int | None
                ) -> tuple[bytes | None, int]:
    """The pixels of the first `rows` rows (fewer if the image has fewer), as Pillow gives
    them, from a small PNG of those rows; `probe`: compressed bytes read at most. (None, -1)
    when no whole row came out of them, (None, 0) when they are damaged."""
    ctx.check_time()
    need = min(rows, png.height) * (1 + png.row)
    inflater = zlib.decompressobj()
    out = bytearray()
    read = 0
    try:
        for piece in png.idat:
            out += inflater.decompress(piece, need - len(out))
            read += len(piece)
            if len(out) >= need or inflater.eof or (probe is not None and read >= probe):
                break
            ctx.check_time()
    except zlib.error:
        return None, 0  # damaged: Pillow will not decode it either
    got = len(out) // (1 + png.row)
    if not got:
        return None, -1
    ihdr = struct.pack(">II", png.width, got) + png.ihdr[8:]
    small = (SIGNATURE + _chunk(b"IHDR", ihdr) + b"".join(png.kept)
             + _chunk(b"IDAT", zlib.compress(bytes(out[: got * (1 + png.row)]), 1))
             + _chunk(b"IEND", b""))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(small), formats=["PNG"]) as image:
                return image.tobytes(), got
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        return None, 0


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(
        ">I", zlib.crc32(kind + body))


def _looks_like_a_file(head: bytes) -> bool:
    if len(head) < 16 or len(set(head[:64])) < 4:
        return False  # (a flat run: a background)
    # (a PE's header is past these bytes: its DOS header says enough)
    return (head[:2] == b"MZ" or head[:2] in _ZLIB
            or filetype.detect(head) is not FileType.BINARY)
