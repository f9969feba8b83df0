"""Make a message's bytes final before it is scanned: the bytes we deliver are the bytes we scan.

Two rewrites used to happen after the scan, and each was a way past it:
- Folding lines longer than 998 octets for the next hop. A crafted long line can hold a
  boundary, a part header and `Content-Transfer-Encoding: base64` at 998-byte offsets: one text
  line to the scanner, a real attachment after folding. So lines are folded here, before the
  scan, exactly as delivery would have folded them (`fold_long_lines`); delivery no longer
  rewrites anything but the trace header it prepends.
- Trace headers a sender forged. Incoming `X-Zerohour-*` header fields of the top-level header
  section are removed, so the only `X-Zerohour-Scan` a recipient sees is ours.

Lines longer than `smtp.max_line_length` never get here: the SMTP receiver refuses them.
"""

from __future__ import annotations

import re

LINE_LIMIT = 998  # RFC 5321 4.5.3.1.6, Postfix smtp_line_length_limit
_OWN_HEADER = re.compile(rb"^x-zerohour-[!-9;-~]*[ \t]*:", re.I)
# Literal-first, so the regex engine jumps from CR to CR (LF to LF): ~40 us per 100 KB each,
# where counting CRLF, LF and CR to compare them took ~150 us (a 2-byte `count` is slow).
_BARE_CR = re.compile(rb"\r(?!\n)")
_BARE_LF = re.compile(rb"\n(?<!\r\n)")
#: a line's leading dot in CRLF text (sre finds it in ~35 us per 100 KB, `bytes.find` in ~90)
LF_DOT = re.compile(rb"\n\.")


def fold_long_lines(body: bytes) -> bytes:
    """Break lines longer than 998 octets as Postfix's SMTP client does: header lines continue
    with CRLF SPACE, body lines are split with CRLF. Messages without such lines (nearly all)
    are returned unchanged."""
    if not piece_longer_than(body, LINE_LIMIT + 1):  # the CR of CRLF counts in a piece
        return body
    end = body.find(b"\r\n\r\n")
    head_end = len(body) if end < 0 else end + 2
    pos = 0
    pieces: list[bytes] = []
    for line in body.split(b"\r\n"):
        header = pos < head_end
        pos += len(line) + 2
        while len(line) > LINE_LIMIT:
            pieces.append(line[:LINE_LIMIT])
            line = (b" " if header else b"") + line[LINE_LIMIT:]
        pieces.append(line)
    return b"\r\n".join(pieces)


def strip_own_headers(data: bytes) -> bytes:
    """Remove `X-Zerohour-*` fields (with their continuation lines) from the top header section."""
    end = data.find(b"\r\n\r\n")
    head_end = len(data) if end < 0 else end + 2
    if data[:head_end].lower().find(b"x-zerohour-") < 0:
        return data
    lines = data[:head_end].split(b"\r\n")
    kept: list[bytes] = []
    dropping = False
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        dropping = _OWN_HEADER.match(line) is not None
        if not dropping:
            kept.append(line)
    return b"\r\n".join(kept) + data[head_end:]


def end_orphan_folds(content: bytes) -> bytes:
    """`content` that starts with a continuation line (SP or HTAB first: a fold of no header
    field, where RFC 5322 wants a header field) behind an empty line: all of it is body, and
    nothing is lost. Kept as it came, that line would continue the `Received:` field we put
    in front of it (a sender appending its own text to our trace header)."""
    if content[:1] in (b" ", b"\t"):
        return b"\r\n" + content
    return content


def bare_line_end(data: bytes) -> re.Match[bytes] | None:
    """The first CR not followed by LF or LF not preceded by CR in `data`, if any."""
    cr, lf = _BARE_CR.search(data), _BARE_LF.search(data)
    if cr is None or lf is None:
        return cr or lf
    return cr if cr.start() < lf.start() else lf


def prepare(data: bytes) -> bytes:
    """The message as it will be spooled, scanned and delivered."""
    return fold_long_lines(strip_own_headers(data))


def longest_line(data: bytes) -> int:
    """Length of the longest CRLF-delimited line (without its CRLF)."""
    return max(map(len, data.split(b"\r\n")))


def piece_longer_than(data: bytes, limit: int) -> bool:
    """Whether a `\n`-separated piece of `data` (a line with its CR, if any) is longer than
    `limit` bytes: `max(map(len, data.split(b"\n"))) > limit` without a list of every line.

    Each step looks for the last LF in the next `limit + 1` bytes: none means the piece that
    starts there is too long, one means every piece before it fits. A 100 KB message takes
    ~50 `rfind`s of 2 KB (memrchr) instead of one bytes object per line (split and max: ~80 us
    per 100 KB, twice per message on the gateway's single event loop)."""
    size = len(data)
    start = 0
    while size - start > limit:
        end = data.rfind(b"\n", start, start + limit + 1)
        if end < 0:
            return True
        start = end + 1
    return False
