"""The text chunks of a PNG (tEXt, zTXt, iTXt), each a text layer of its own.

A PNG's metadata is text any script reads (`PIL.Image.open(f).text`, `exiftool`, a zlib
one-liner), and round 20 delivered clam.exe's base64 in a zTXt chunk: the image's own bytes
showed only compressed noise. The chunks are walked from the signature (length, type, data,
CRC; every one of them: `chunks`), compressed text is inflated under the scan's bounds.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from zerohour.scan import archive
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import Child

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunks(data: bytes, ctx: ScanContext) -> Iterator[tuple[bytes, int, int]]:
    """A PNG's chunks, up to IEND or its end: (type, where its data starts, its length).
    Every chunk, however many come first (round 21: 4,100 empty chunks before the pixels
    went past a cap of 4,096); the scan's clock is read every 4,096."""
    pos = len(SIGNATURE)
    n = 0
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        yield kind, pos + 8, length
        if kind == b"IEND":
            return
        pos += 12 + length
        n += 1
        if not n % 4096:
            ctx.check_time()


def texts(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """The text of each tEXt, zTXt and iTXt chunk (keyword dropped), inflated if need be."""
    for kind, start, length in chunks(data, ctx):
        if kind not in (b"tEXt", b"zTXt", b"iTXt"):
            continue
        text = _text(kind, data[start : start + length], ctx)
        if text:
            ctx.charge_child(len(text))
            yield Child(data=text, name=None, origin="png-text")


def _text(kind: bytes, body: bytes, ctx: ScanContext) -> bytes | None:
    keyword_end = body.find(b"\x00")
    if keyword_end < 0:
        return None
    rest = body[keyword_end + 1 :]
    if kind == b"tEXt":
        return rest
    if kind == b"zTXt":
        return _inflated(rest[1:], ctx) if rest[:1] == b"\x00" else None
    # iTXt: compression flag, method, language tag\0, translated keyword\0, text
    if len(rest) < 2:
        return None
    flag, method = rest[0], rest[1]
    lang_end = rest.find(b"\x00", 2)
    tkey_end = rest.find(b"\x00", lang_end + 1) if lang_end >= 0 else -1
    if tkey_end < 0:
        return None
    text = rest[tkey_end + 1 :]
    if flag == 1:
        return _inflated(text, ctx) if method == 0 else None
    return text


def _inflated(data: bytes, ctx: ScanContext) -> bytes:
    out, _end = archive.inflate(data, ctx)
    return out
