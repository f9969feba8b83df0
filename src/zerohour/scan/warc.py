"""Web archives (WARC, ISO 28500): each record's content as a layer (round 18).

A crawl keeps what it fetched whole: a `resource` record holds a file as it is (bsdtar writes
those out), a `response` record the HTTP response as received (a replay tool such as pywb
serves its body: the file the crawler saved). Both are read here, the response's body without
its HTTP head and with a chunked transfer coding undone; any other record (request, metadata,
a `revisit` pointing elsewhere) is scanned as its block. A `.warc.gz` is a gzip member per
record, which the gzip reader already joins. Written here rather than through libarchive,
whose WARC reader skips response records (wget writes each fetched file as one).

A block cut short (a Content-Length past the end) is `Heuristics.Broken.WARC`, never clean.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from zerohour.scan.limits import ScanContext
from zerohour.scan.types import Child

_MAX_RECORDS = 100_000
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_LENGTH = re.compile(rb"^content-length\s*:\s*(\d{1,15})\s*$", re.I | re.M)
_TYPE = re.compile(rb"^warc-type\s*:\s*([\w-]+)", re.I | re.M)
_URI = re.compile(rb"^warc-target-uri\s*:\s*<?([^\s>]+)", re.I | re.M)
_CHUNKED = re.compile(rb"^transfer-encoding\s*:[^\r\n]*chunked", re.I | re.M)


def records(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """Each record's content (see the module docstring)."""
    pos = 0
    for n in range(_MAX_RECORDS):
        if not n % 256:
            ctx.check_time()
        while pos < len(data) and data[pos] in b"\r\n":
            pos += 1
        if pos >= len(data):
            return
        if not data.startswith(b"WARC/", pos):
            ctx.broken("WARC")
            return
        end = _HEADER_END.search(data, pos)
        if end is None:
            ctx.broken("WARC")
            return
        head = data[pos : end.start()]
        lengths = {int(v) for v in _LENGTH.findall(head)}
        if len(lengths) != 1 or head.count(b"\n") != head.count(b"\r\n"):
            # none, or readers that disagree on it (a second header in other case, a line
            # behind a bare LF: libarchive reads only CRLF lines of the exact name, round 19)
            ctx.broken("WARC")
            if not lengths:
                return
        length = max(lengths)
        if len(lengths) > 1:  # (each reading's block too: the shortest first)
            for other in sorted(lengths)[:-1]:
                if end.end() + other <= len(data):
                    ctx.charge_child(other)
                    yield Child(data=data[end.end() : end.end() + other], name=None,
                                origin="warc-record")
        start, stop = end.end(), end.end() + length
        if stop > len(data):
            ctx.broken("WARC")
            return
        block = data[start:stop]
        pos = stop
        kind = _TYPE.search(head)
        uri = _URI.search(head)
        name = uri.group(1).decode("latin-1").rsplit("/", 1)[-1] or None if uri else None
        if kind is not None and kind.group(1).lower() == b"response":
            body = _http_body(block)
            if body is None:
                ctx.broken("WARC")
            else:
                block = body
        if block:
            ctx.charge_child(len(block))
            yield Child(data=block, name=name, origin="warc-record")


def _http_body(block: bytes) -> bytes | None:
    """An HTTP response's body (its head gone, a chunked coding undone); the block itself when
    it is no HTTP response; None when its chunks are damaged."""
    if not block.startswith(b"HTTP/"):
        return block
    end = _HEADER_END.search(block)
    if end is None:
        return block
    if _CHUNKED.search(block, 0, end.start()):
        return _dechunked(block[end.end() :])
    return block[end.end() :]


def _dechunked(body: bytes) -> bytes | None:
    out = bytearray()
    pos = 0
    while pos < len(body):
        line_end = body.find(b"\n", pos)
        if line_end < 0:
            break
        size_text = body[pos:line_end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return None
        if size == 0:
            break
        out += body[line_end + 1 : line_end + 1 + size]
        pos = line_end + 1 + size
        while pos < len(body) and body[pos] in b"\r\n":
            pos += 1
    return bytes(out)
