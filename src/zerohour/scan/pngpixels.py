"""A PNG's pixel bytes, when they are a file (round 20's a62).

`Image.frombytes("L", (w, h), payload).save("x.png")` makes a valid image whose pixels are
the payload; `Image.open("x.png").tobytes()` (or `convert x.png gray:-`) gives it back. The
PNG's own bytes hold it deflated and filtered row by row (each row predicted from its left
and upper neighbours), so neither the raw image nor its inflated IDAT shows it.

Decoding every image of every newsletter would cost more than the rest of the scan, so the
first bytes of the first row are unfiltered here (cheap: the row above is all zero, so Sub,
Avg and Paeth only look left) and the whole image is decoded (by Pillow, in C) only when
they sniff as a file type or as text. An interlaced image's first row is not its first
pixels, so it is always decoded. The pixel bytes are a speculative child: only signatures
count in it (pixels that happen to start with `PK` are no `Broken.Zip`).

8-bit samples only (grey, grey+alpha, RGB, RGBA, palette: what `frombytes` makes and
`tobytes` gives back byte for byte); images over `_MAX_PIXEL_BYTES` are not decoded.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from collections.abc import Iterator
from itertools import accumulate

from PIL import Image

from zerohour.scan import filetype
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import Child, FileType

SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: colour type -> samples per pixel
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
#: bytes of the first row that decide whether the image is decoded
_HEAD = 256
_MAX_PIXEL_BYTES = 32 * 1024 * 1024
_MAX_CHUNKS = 4096


def children(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """The image's pixel bytes, row after row, when they may be a file."""
    if data[12:16] != b"IHDR" or len(data) < 33:
        return
    width, height, depth, colour, _comp, _filter, interlace = struct.unpack_from(
        ">IIBBBBB", data, 16)
    channels = _CHANNELS.get(colour)
    if channels is None or depth != 8 or not width or not height:
        return
    bpp = channels
    size = width * bpp * height
    if size > min(_MAX_PIXEL_BYTES, ctx.output_bound()):
        return
    if not interlace and not _looks_like_a_file(_first_row(data, width * bpp, bpp)):
        return
    ctx.check_time()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (DecompressionBombWarning: sized above)
            with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
                pixels = image.tobytes()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return  # damaged: the recipient's tobytes() fails too
    ctx.check_time()
    if pixels:
        ctx.charge_child(len(pixels))
        yield Child(data=pixels, name=None, origin="png-pixels", speculative=True)


def _first_row(data: bytes, row: int, bpp: int) -> bytes:
    """The first `_HEAD` bytes of the first row, unfiltered."""
    idat = bytearray()
    pos = len(SIGNATURE)
    for _ in range(_MAX_CHUNKS):
        if pos + 8 > len(data) or len(idat) > 4 * _HEAD + 1024:
            break
        length, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        elif idat or kind == b"IEND":
            break
        pos += 12 + length
    try:
        head = zlib.decompressobj().decompress(bytes(idat), 1 + min(row, _HEAD))
    except zlib.error:
        return b""
    if not head:
        return b""
    kind, raw = head[0], bytearray(head[1:])
    if kind in (1, 3, 4):  # Sub, Average, Paeth over a row of zeros: the left byte only
        step = _average if kind == 3 else _sub
        for c in range(bpp):
            sums: list[int] = list(accumulate(raw[c::bpp], step))
            raw[c::bpp] = bytes(sums)
    elif kind not in (0, 2):
        return b""
    return bytes(raw)


def _sub(left: int, byte: int) -> int:
    return (left + byte) & 0xFF


def _average(left: int, byte: int) -> int:
    return (byte + (left >> 1)) & 0xFF


def _looks_like_a_file(head: bytes) -> bool:
    if len(head) < 16 or len(set(head)) < 4:
        return False  # (a flat row: a background)
    # (a PE's header is past these bytes: its DOS header says enough)
    return head[:2] == b"MZ" or filetype.detect(head) is not FileType.BINARY
