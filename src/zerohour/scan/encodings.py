"""Lenient transfer-encoding decoders: base64, quoted-printable, uuencode, yEnc, BinHex 4.0.

Mail clients decode broken encodings anyway, so a scanner must too: junk characters, missing
padding, padding in the middle, bad line lengths. Where clients disagree (base64 with `=` inside
the data: stop there, or go on), `base64_variants` returns every plausible result. None of
these functions raise on any input (except what `check` raises).

Every decoder is linear in its input: block finders look for their markers once, a block ends
at the next block's start at the latest (unterminated blocks do not each decode to the end of
the text), and loops over input call `check` (the scan's `ScanContext.check_time`) as they go.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

import pybase64

from zerohour.scan.gates import Gate, Literals

Check = Callable[[], None] | None  # the scan's time check (`ScanContext.check_time`)
_CHECK_EVERY = 4096  # loop iterations between two time checks

_HQX_LIMIT = 100 * 1024 * 1024  # default bound of BinHex run-length expansion

B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_JUNK = bytes(c for c in range(256) if c not in B64_ALPHABET)  # delete table
_B64_JUNK_KEEP_PAD = bytes(c for c in range(256) if c not in B64_ALPHABET + b"=")
_B64URL = re.compile(rb"[-_]")
_PAD_RUN = re.compile(rb"=+")
#: what a plausible base64 body holds (a C-speed delete: a regex over the body cost ~10x more)
_B64_BODY_CHARS = B64_ALPHABET + b"= \t\r\n\x0b\x0c"


def _b64_clean(clean: bytes) -> bytes:
    """Decode base64 text that holds only alphabet characters, whatever its length."""
    rem = len(clean) % 4
    if rem == 1:  # a lone trailing sextet carries no whole byte
        clean = clean[:-1]
    elif rem:
        clean += b"=" * (4 - rem)
    if not clean:
        return b""
    try:
        # SIMD decoder (~40x binascii's loop on mail-sized bodies); the input is strictly valid
        # here (alphabet only, padded), so the result is the same as binascii.a2b_base64's.
        return pybase64.b64decode(clean, validate=True)
    except binascii.Error:  # pragma: no cover - cleaned input always decodes
        return b""


def is_utf8(data: bytes) -> bool:
    """Whether `data` is well-formed UTF-8 (ASCII is): a reader picks another charset if not."""
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def base64_decode(data: bytes) -> bytes:
    """Decode ignoring every non-alphabet character, padding included (the most lenient view)."""
    return _b64_clean(data.translate(None, _B64_JUNK))


def base64_variants(data: bytes, check: Check = None) -> list[bytes]:
    """Every plausible decoding of possibly broken base64, most common first, deduplicated.

    1. skip all junk and padding, decode the rest as one stream;
    2. treat each `=` run as the end of a chunk and decode chunks separately (clients that
       restart after padding), and the first chunk alone (`base64 -d` stops there);
    3. the URL-safe alphabet (`-_`), when those characters occur;
    4. only the lines that are valid base64 on their own, when other lines hold junk;
    5. a run of one line aligned to its end, when its length is no multiple of four.
    """
    clean = data.translate(None, _B64_JUNK)
    out = [_b64_clean(clean)]
    body = data.rstrip(b"= \t\r\n")
    inner_pad = b"=" in body  # padding inside the data, not just at its end
    # Usually '=' only pads the end: count it in the short tail, not the whole body.
    pads = data.count(b"=") if inner_pad else data.count(b"=", len(body))
    if inner_pad:
        kept = data.translate(None, _B64_JUNK_KEEP_PAD).rstrip(b"=")
        chunks = _PAD_RUN.split(kept)
        chunked = b"".join(_b64_clean(c) for c in _checked(chunks, check) if c)
        if chunked not in out:
            out.append(chunked)
        # what `base64 -d` writes before it stops at the data after the padding (round 20:
        # lines of junk after a file's last line, as wide as its lines, kept it a layer of
        # the file plus junk, which no hash signature matches)
        head = _b64_clean(chunks[0]) if chunks else b""
        if head and head not in out:
            out.append(head)
    if b"-" in data or b"_" in data:
        url = base64_decode(_B64URL.sub(lambda m: b"+" if m.group() == b"-" else b"/", data))
        if url not in out:
            out.append(url)
    shift = (len(clean) + pads) % 4
    if shift and not inner_pad and b"\n" not in data:
        # 5. the stream aligned to its end: letters glued before it ("Hi" + a page's base64
        # read as one run, "HiWDVP...": session 26) shift the one-stream view (a run of one
        # line: a body of lines whose count is off is decoded line by line below)
        aligned = _b64_clean(clean[shift:])
        if aligned and aligned not in out:
            out.append(aligned)
    if shift or data.translate(None, _B64_CLEAN_BODY):
        # Junk: decoders that skip invalid lines see only the clean ones, and junk made of
        # alphabet letters ("Hello") shifts the one-stream view (the count is then misaligned).
        lines = b"".join(whole_base64_lines(data))
        if lines:
            linewise = _b64_clean(lines.replace(b"=", b""))
            if linewise not in out:
                out.append(linewise)
    return out


_B64_CLEAN_BODY = B64_ALPHABET + b"=\r\n"
_B64_LINE = re.compile(rb"^[ \t]*([A-Za-z0-9+/]{4,}={0,2})[ \t]*\r?$", re.M)
_B64_WHOLE = re.compile(rb"[A-Za-z0-9+/]{4,}={0,2}")


def whole_base64_lines(data: bytes) -> list[bytes]:
    """The lines of `data` that are base64 on their own, a multiple of four characters
    (blanks around them and one CR before the LF are not part of a line), in order.

    Without a blank in `data`, a line is what lies between LFs, less one CR at its end: C
    splitting, then a length test, and the pattern only on the lines of the right length.
    The line pattern over a whole 100 KB body took 0.7 ms, and it runs on every body whose
    lines are no multiple of four (smtp-source's are 78 characters)."""
    if b" " in data or b"\t" in data:
        return [ln for ln in _B64_LINE.findall(data) if len(ln) % 4 == 0]
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    if lines[-1].endswith(b"\r"):  # (a last line without LF: `$` matches at the end too)
        lines[-1] = lines[-1][:-1]
    return [ln for ln in lines if not len(ln) % 4 and _B64_WHOLE.fullmatch(ln)]


def looks_base64(data: bytes, min_len: int = 16) -> bool:
    """Whether a body is plausibly base64 (for parts whose declared encoding is missing/wrong).

    Only base64 characters and line breaks, no spaces inside lines, one line of 16+ characters.
    """
    body = data.strip()
    if len(body) < min_len or body.translate(None, _B64_BODY_CHARS):
        return False
    head = body[:8192]
    lines = head.splitlines() or [b""]  # CRLF, LF and CR (bytes know no other line end)
    # (no blank anywhere, as in base64 from any encoder: no line to look at twice)
    if (b" " in head or b"\t" in head) and any(
            b" " in ln.strip() or b"\t" in ln.strip() for ln in lines):
        return False
    return any(len(ln.strip()) >= min_len for ln in lines)


_QP_SOFT = re.compile(rb"=[ \t]*(?:\r\n|\n|\r)")
_QP_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")


def qp_decode(data: bytes) -> bytes:
    """Quoted-printable, leniently: soft breaks with any line end, lowercase hex, bad `=` kept.

    Soft breaks go first (one C-level substitution), then binascii decodes the escapes.
    """
    if b"=" not in data:
        return data
    data = _QP_SOFT.sub(b"", data)
    body = data.rstrip(b"=")  # a2b_qp drops trailing '='; keep them literal like bad escapes
    return binascii.a2b_qp(body) + b"=" * (len(data) - len(body))


# --- uuencode -------------------------------------------------------------------------------

_LINES = re.compile(rb"\r\n|\n|\r")


@dataclass(frozen=True, slots=True)
class EmbeddedFile:
    """A file found encoded inside text (uuencode or yEnc block)."""

    data: bytes
    name: str | None
    encoding: str


def _uu_line(line: bytes) -> bytes:
    """Decode one uuencoded line, tolerating short lines and trailing junk."""
    if not line:
        return b""
    n = (line[0] - 32) & 63
    if n == 0:
        return b""
    need = (n * 4 + 2) // 3
    body = line[1 : 1 + need]
    body = body + b" " * (need - len(body))
    out = bytearray()
    for i in range(0, len(body), 4):
        quad = [(c - 32) & 63 for c in body[i : i + 4].ljust(4, b" ")]
        out.append(((quad[0] << 2) | (quad[1] >> 4)) & 0xFF)
        out.append(((quad[1] << 4) | (quad[2] >> 2)) & 0xFF)
        out.append(((quad[2] << 6) | quad[3]) & 0xFF)
    return bytes(out[:n])


# Every byte as the uuencode character of its 6-bit value: what `_uu_line` computes per char.
_UU_NORM = bytes(32 + ((c - 32) & 63) for c in range(256))


def _uu_fast(line: bytes) -> bytes:
    """`_uu_line`, in C: binascii for well-formed lines, else the line normalised (every byte
    mapped to its 6-bit value's character, cut or space-padded to its declared length) and
    then binascii (junk lines used to take the per-character Python path: ~1.5 s per MB)."""
    try:
        return binascii.a2b_uu(line)
    except binascii.Error:
        pass
    if not line:
        return b""
    norm = line.translate(_UU_NORM)
    n = norm[0] - 32
    if n == 0:
        return b""
    need = (n * 4 + 2) // 3
    body = norm[1 : 1 + need].ljust(need, b" ")
    try:
        return binascii.a2b_uu(norm[:1] + body)[:n]
    except binascii.Error:  # pragma: no cover - normalised lines always decode
        return _uu_line(line)



def _checked(items: Iterable[bytes], check: Check) -> Iterator[bytes]:
    """`items`, calling `check` every `_CHECK_EVERY` items."""
    if check is None:
        yield from items
        return
    for i, item in enumerate(items):
        if not i % _CHECK_EVERY:
            check()
        yield item


def _at_line_starts(
    pattern: re.Pattern[bytes], text: bytes, check: Check = None
) -> Iterator[re.Match[bytes]]:
    """Matches of `pattern` (which starts with a literal, so the regex engine's fast prefix
    search finds candidates) that begin a line, under any line end."""
    for n, m in enumerate(pattern.finditer(text), 1):
        if check is not None and not n % _CHECK_EVERY:
            check()
        pos = m.start()
        if pos == 0 or text[pos - 1] in (10, 13):
            yield m


class _Marks:
    """Positions of one marker line, found by one regex scan and consumed in increasing order:
    `after(pos)` is the first one at or after `pos` (amortised O(1): blocks come in order)."""

    def __init__(self, pattern: re.Pattern[bytes], text: bytes, check: Check) -> None:
        self._it = _at_line_starts(pattern, text, check)
        self._cur: int | None = -1

    def after(self, pos: int) -> int | None:
        while self._cur is not None and self._cur < pos:
            m = next(self._it, None)
            self._cur = None if m is None else m.start()
        return self._cur


# `begin MODE [NAME]`, as clients and ClamAV accept it: any case, any digits for the mode
# (ClamAV only checks for three digits), the name optional; `begin-base64` is GNU
# `uuencode -m` (base64 lines up to a `====` line).
_UU_BEGIN_AT = re.compile(
    rb"(?i:begin)(-base64)?[ \t]+([0-9]{1,6})(?:[ \t]+([^\r\n]*))?[ \t]*(?=\r|\n|\Z)"
)
_UU_GATE = Gate(rb"begin")
_UU_END_AT = re.compile(rb"(?i:end|====)[ \t]*(?=\r|\n|\Z)")
# xxencode: the same line format over another alphabet ('+' is 0, 'h' the 45-byte line).
_XX_ALPHABET = b"+-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_XX_TO_UU = bytes.maketrans(_XX_ALPHABET, b"`" + bytes(range(33, 96)))


def _uu_variants(body: bytes, check: Check) -> list[bytes]:
    """Every plausible decoding of uuencoded lines, deduplicated, the usual one first.

    Decoders disagree about damaged blocks, and attackers use that: GNU uudecode stops at the
    first zero-length line (`` ` `` or a space) and pads short lines; ClamAV (and clients that
    decode line by line) skips zero-length lines and lines shorter than their length byte
    claims, and goes on. A truncated `end` line ("e") is a 5-byte line to the first reading
    and junk to the second, so both are kept.
    """
    stop = bytearray()  # GNU
    skip = bytearray()  # ClamAV
    stopped = False
    for raw in _checked(_LINES.split(body), check):
        if not raw.strip():
            continue
        if not (raw[0] - 32) & 63:
            stopped = True  # a zero-length line: the data's end for GNU, nothing for ClamAV
            continue
        decoded = _uu_fast(raw.rstrip(b" \t"))
        if not stopped:
            stop += decoded
        if (raw[0] - 32) & 63 <= len(raw) - 1:
            skip += decoded
    out = [bytes(stop)]
    if skip != stop:
        out.append(bytes(skip))
    return out


def _looks_xx(body: bytes) -> bool:
    """Whether a block's data lines are all in the xxencode alphabet (then it is decoded as
    xxencode too: a uuencode line rarely is, and an extra decoding costs little)."""
    lines = [ln for ln in _LINES.split(body[:4096].rstrip(b" \t\r\n")) if ln.strip()][:64]
    return bool(lines) and not any(ln.rstrip(b" \t").translate(None, _XX_ALPHABET)
                                   for ln in lines)


def _block_variants(body: bytes, base64_block: bool, check: Check) -> list[bytes]:
    if base64_block:
        return [base64_decode(body)]
    out = _uu_variants(body, check)
    if _looks_xx(body):
        for v in _uu_variants(body.translate(_XX_TO_UU), check):
            if v not in out:
                out.append(v)
    return out


def uudecode_blocks(
    text: bytes, limit: int | None = None, check: Check = None
) -> Iterator[EmbeddedFile]:
    """Every `begin MODE NAME ... end` block in `text`, decoded (the first `limit` if given: no
    cap otherwise, the caller charges each file, so 64 decoy blocks no longer hide the 65th);
    a damaged block gives one `EmbeddedFile` per plausible decoding (`_uu_variants`).

    A block ends at its `end` (`====` for begin-base64) line, at the next `begin` line, or at
    the end of the text (so blocks never overlap: the work is linear in the text).
    """
    begins = _at_line_starts(_UU_BEGIN_AT, text, check)
    ends = _Marks(_UU_END_AT, text, check)
    m = next(begins, None)
    found = 0
    while m is not None and (limit is None or found < limit):
        found += 1
        nxt = next(begins, None)
        name = (m.group(3) or b"").strip().decode("utf-8", "replace") or None
        start = m.end()
        stop = len(text) if nxt is None else nxt.start()
        end = ends.after(start)
        if end is not None and end < stop:
            stop = end
        b64 = m.group(1) is not None
        for i, data in enumerate(_block_variants(text[start:stop], b64, check)):
            label = "uuencode-base64" if b64 else "uuencode" if i == 0 else f"uuencode#{i}"
            yield EmbeddedFile(data, name, label)
        m = nxt


def uudecode_variants(data: bytes, check: Check = None) -> list[bytes]:
    """Every plausible decoding of a uuencoded body (declared `x-uuencode`): its first block,
    or the whole body when it has no `begin` line."""
    blocks = list(uudecode_blocks(data, limit=1, check=check))
    if blocks:
        return [b.data for b in blocks]
    return _block_variants(data, False, check)


def uudecode(data: bytes, check: Check = None) -> bytes:
    """The usual decoding of a uuencoded body (first of `uudecode_variants`)."""
    return uudecode_variants(data, check)[0]


# --- yEnc -------------------------------------------------------------------------------

_YBEGIN = re.compile(rb"=ybegin[ \t]([^\r\n]*)(?=\r|\n|\Z)")
_YEND = re.compile(rb"=yend")
_YNAME = re.compile(rb"name=([^\r\n]*)")
_YPART = re.compile(rb"=ypart[^\r\n]*(?:\r\n|\n|\r)?")
_YTABLE = bytes((i - 42) & 0xFF for i in range(256))


def yenc_decode_body(body: bytes) -> bytes:
    """Decode yEnc data lines (no header/trailer): escapes `=c` mean `c - 64`."""
    body = body.replace(b"\r", b"").replace(b"\n", b"")
    if b"=" not in body:
        return body.translate(_YTABLE)
    out = bytearray()
    parts = body.split(b"=")
    out += parts[0].translate(_YTABLE)
    for p in parts[1:]:
        if not p:
            continue
        out.append((p[0] - 64 - 42) & 0xFF)
        out += p[1:].translate(_YTABLE)
    return bytes(out)


def ydecode_blocks(
    text: bytes, limit: int | None = None, check: Check = None
) -> Iterator[EmbeddedFile]:
    """Every `=ybegin ... =yend` block in `text`, decoded (the first `limit` if given).

    A block ends at its `=yend` line, at the next `=ybegin` line, or at the end of the text:
    64 unterminated blocks no longer each decode the rest of the text (linear work).
    """
    begins = _at_line_starts(_YBEGIN, text, check)
    ends = _Marks(_YEND, text, check)
    m = next(begins, None)
    found = 0
    while m is not None and (limit is None or found < limit):
        found += 1
        nxt = next(begins, None)
        if check is not None:
            check()
        nm = _YNAME.search(m.group(1))
        name = nm.group(1).strip().decode("utf-8", "replace") if nm else None
        start = m.end()
        if text[start : start + 2] == b"\r\n":
            start += 2
        elif text[start : start + 1] in (b"\n", b"\r"):
            start += 1
        part = _YPART.match(text, start)
        if part:
            start = part.end()
        stop = len(text) if nxt is None else max(start, nxt.start())
        end = ends.after(start)
        if end is not None and end < stop:
            stop = end
        yield EmbeddedFile(yenc_decode_body(text[start:stop]), name, "yenc")
        m = nxt


def embedded_files(
    text: bytes, check: Check = None, limit: int = _HQX_LIMIT
) -> Iterator[EmbeddedFile]:
    """uuencode, yEnc and BinHex blocks embedded in a text body (cheap when there are none).

    `limit` bounds BinHex run-length expansion (the scan's output bound); the other encodings
    never decode to more than their input."""
    if _UU_GATE(text):  # "=ybegin" contains "begin": one search rules out both
        yield from uudecode_blocks(text, check=check)
        if b"=ybegin" in text:
            yield from ydecode_blocks(text, check=check)
    if HQX_MARK in text:
        yield from binhex_blocks(text, limit, check)


# --- BinHex 4.0 -------------------------------------------------------------------------------

_HQX_ALPHABET = b"!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr"
HQX_MARK = b"(This file must be converted with BinHex"
# BinHex packs 6-bit values MSB first, exactly like base64: map each BinHex character to the
# base64 character of the same value, drop the rest, and let the C base64 decoder do the bits.
_HQX_TO_B64 = bytes.maketrans(_HQX_ALPHABET, B64_ALPHABET)
_HQX_JUNK = bytes(c for c in range(256) if c not in _HQX_ALPHABET)


def _hqx_bits(text: bytes) -> bytes:
    """The 8-bit bytes of BinHex 6-bit text (junk skipped, a trailing partial byte dropped).

    Linear and in C: the old per-character loop kept every bit in one growing integer, which
    made a 1.6 MB block cost minutes.
    """
    return _b64_clean(text.translate(_HQX_TO_B64, _HQX_JUNK))


def _hqx_unrle(data: bytes, limit: int, check: Check = None) -> bytes:
    """Undo BinHex run-length encoding (0x90 marks a run), stopping past `limit` bytes."""
    out = bytearray()
    i = 0
    n = len(data)
    runs = 0
    while i < n and len(out) <= limit:
        j = data.find(0x90, i)
        if j < 0 or j + 1 >= n:
            out += data[i:]  # no more runs (a lone trailing 0x90 is literal)
            break
        out += data[i:j]
        count = data[j + 1]
        i = j + 2
        if count == 0:
            out.append(0x90)
        elif out:
            out += bytes((out[-1],)) * (count - 1)
        runs += 1
        if check is not None and not runs % _CHECK_EVERY:
            check()
    return bytes(out[: limit + 1])


def binhex_blocks(
    text: bytes, limit: int = _HQX_LIMIT, check: Check = None
) -> Iterator[EmbeddedFile]:
    """Data (and resource) forks of BinHex 4.0 blocks in `text`; damaged blocks give a prefix."""
    pos = text.find(HQX_MARK)
    while pos >= 0:
        if check is not None:
            check()
        nl = text.find(b"\n", pos)
        start = text.find(b":", nl if nl >= 0 else pos)
        if start < 0:
            return
        end = text.find(b":", start + 1)
        body = text[start + 1 : end if end >= 0 else len(text)]
        raw = _hqx_unrle(_hqx_bits(body), limit, check)
        if len(raw) > limit:
            # Expanded past the bound: hand over the whole (over-limit) output, so that the
            # caller's size check fires (a limit finding) instead of a silent prefix.
            yield EmbeddedFile(raw, None, "binhex")
            return
        if raw:
            nlen = raw[0]
            at = 1 + nlen + 1 + 4 + 4 + 2
            name = raw[1 : 1 + nlen].decode("mac_roman", "replace") or None
            if len(raw) >= at + 8:
                dlen = int.from_bytes(raw[at : at + 4], "big")
                rlen = int.from_bytes(raw[at + 4 : at + 8], "big")
                data_at = at + 8 + 2
                data = raw[data_at : data_at + dlen]
                rsrc_at = data_at + dlen + 2
                rsrc = raw[rsrc_at : rsrc_at + rlen]
                if data:
                    yield EmbeddedFile(data, name, "binhex")
                if rsrc:
                    yield EmbeddedFile(rsrc, name, "binhex-rsrc")
        pos = text.find(HQX_MARK, (end if end >= 0 else len(text)))


# --- HTML smuggling -------------------------------------------------------------------------

# `data:[type][;param]...[;base64],DATA`: the parameters, then the data (base64 may hold
# whitespace, percent escapes and JS `\n` escapes; plain data is percent-encoded bytes).
# A URL parser drops every tab and line break before the data: "da\nta:" is "data:" to a
# browser. Everything up to the first comma is the media type and its parameters, as a
# browser reads it (the fetch standard's data: URL processor): any length, spaces, quotes,
# '%', ':', '<' and '>' included (`;name="x.exe";base64`, `;BASE64 ,`); base64 when
# "base64" is among them.
_DATA_START = re.compile(rb"d[\t\n\r]*a[\t\n\r]*t[\t\n\r]*a[\t\n\r]*:", re.I)
_DATA_URI_GATE = Gate(rb"d[\t\n\r]*a[\t\n\r]*t[\t\n\r]*a[\t\n\r]*:")


def has_script_hints(data: bytes) -> bool:
    """Whether `data` holds a word HTML smuggling builds its file with (`_HINTS`)."""
    found = _HINTS.present(data)
    return not (found.isdisjoint(_BYTE_HINT_IDS) and found.isdisjoint(_SMUGGLING_HINT_IDS))


def has_data_uri(data: bytes) -> bool:
    """Whether `data` may hold a data: URI (what `_DATA_START` finds), in one pass."""
    return _DATA_URI_GATE(data)


_URL_BLANKS = b"\t\n\r"
_DATA_B64 = re.compile(rb"[A-Za-z0-9+/=%\s\\]{16,}")
_DATA_PLAIN = re.compile(rb"[^\"'\s<>`]+")
_B64_LITERAL = re.compile(rb"([\"'`])([A-Za-z0-9+/]{80,}={0,2})\1")
# Script that turns a base64 literal into a file names one of these (atob, Blob, base64 APIs).
# ("FromBase64" APIs contain "Base64", so it needs no search of its own.)
_SMUGGLING_HINTS = (b"atob", b"Blob", b"base64", b"Base64")
# A literal cut into short pieces joined by "+" or listed in an array (["TVqQ", "AAMA"]
# .join("")): the pieces are joined. Each piece is a whole quoted string: no backtracking.
_B64_PIECES = re.compile(
    rb"(?:([\"'`])[A-Za-z0-9+/=]*\1\s*[+,]\s*)+([\"'`])[A-Za-z0-9+/=]*\2")
_PIECE = re.compile(rb"[\"'`]([A-Za-z0-9+/=]*)[\"'`]")
# Bytes listed as numbers (new Uint8Array([77, 90, 144, ...]), String.fromCharCode(77, 90...)).
_BYTE_LIST = re.compile(rb"[\[(]\s*((?:(?:0x[0-9a-fA-F]{1,2}|\d{1,3})\s*,\s*){63,}"
                        rb"(?:0x[0-9a-fA-F]{1,2}|\d{1,3}))\s*[\])]")
_BYTE_HINTS = (b"Uint8Array", b"fromCharCode")
_URI_HINTS = (b"a:", b"A:", b"\t:", b"\n:", b"\r:")
_HINTS = Literals((*_URI_HINTS, *_BYTE_HINTS, *_SMUGGLING_HINTS))
_URI_HINT_IDS = frozenset(range(len(_URI_HINTS)))
_BYTE_HINT_IDS = frozenset(range(len(_URI_HINTS), len(_URI_HINTS) + len(_BYTE_HINTS)))
_SMUGGLING_HINT_IDS = frozenset(range(len(_URI_HINTS) + len(_BYTE_HINTS), len(_HINTS.needles)))


def _data_uris(text: bytes, check: Check) -> Iterator[EmbeddedFile]:
    """The bytes each `data:` URI in `text` stands for (what a download of the link gets).

    Linear: every start before the same comma shares its data, which is decoded once (as
    base64 if the parameters from the first or from the last of those starts name base64, as
    percent-encoded bytes if either does not: "metadata: base64 <a href='data:...,%4D%5A'>").
    """
    pos = 0
    while (m := _DATA_START.search(text, pos)) is not None:
        if check is not None:
            check()
        comma = text.find(b",", m.end())
        if comma < 0:
            return  # no later start has a comma either
        last = m
        for last in _DATA_START.finditer(text, m.end(), comma):  # noqa: B007  # the last one
            pass
        flags = {b"base64" in text[start:comma].translate(None, _URL_BLANKS).lower()
                 for start in (m.end(), last.end())}
        end = comma + 1
        if True in flags:
            data, end = _data_base64(text, comma + 1)
            if data:
                yield EmbeddedFile(data, None, "data-uri")
        if False in flags:
            plain, plain_end = _data_plain(text, last.start(), comma + 1)
            end = max(end, plain_end)
            for data in plain:
                yield EmbeddedFile(data, None, "data-uri")
        # The next URI starts after this one's data (a data part holding "data:" again is
        # not searched and decoded once per occurrence: linear, not quadratic).
        pos = max(end, comma + 1)


def _data_base64(text: bytes, start: int) -> tuple[bytes, int]:
    """A base64 data part (percent escapes, whitespace and JS line escapes allowed), decoded,
    and where it ends."""
    body = _DATA_B64.match(text, start)
    if body is None:
        return b"", start
    raw = body.group().replace(b"\\n", b"").replace(b"\\r", b"")
    return base64_decode(unquote_to_bytes(raw) if b"%" in raw else raw), body.end()


#: Where a plain data part ends, by what stands before "data:": the attribute's or string's
#: closing quote (spaces and the other quote are bytes of the data: `,%4D%5A %90'`), a CSS
#: `url(` its `)`; unquoted, the first blank, quote or angle bracket.
_PLAIN_ENDS = {ord('"'): b'"', ord("'"): b"'", ord("`"): b"`", ord("("): b")"}


def _data_plain(text: bytes, start: int, body_start: int) -> tuple[list[bytes], int]:
    """A plain (percent-encoded) data part, decoded: with its tabs and line breaks (Chromium
    keeps them in the data) and without (the URL standard drops them); and where it ends."""
    before = text[max(0, start - 64) : start].rstrip()[-1:]
    closing = _PLAIN_ENDS.get(before[0]) if before else None
    if closing is not None:
        end = text.find(closing, body_start)
        end = len(text) if end < 0 else end
    else:
        m = _DATA_PLAIN.match(text, body_start)
        end = body_start if m is None else m.end()
    raw = text[body_start:end]
    if b"%" not in raw:
        return [], end  # its bytes are in the text as they are
    stripped = raw.translate(None, _URL_BLANKS)
    readings = (raw, stripped) if stripped != raw else (raw,)
    found = [decoded for r in readings if (decoded := unquote_to_bytes(r)) != r]
    return found, end


def smuggled_blobs(
    text: bytes, literals: bool = True, check: Check = None
) -> Iterator[EmbeddedFile]:
    """Payloads inside HTML/JS: `data:` URIs (base64 or percent-encoded) and long quoted
    base64 literals.

    HTML smuggling builds the malicious file in the browser from such a blob, so the mail only
    ever carries it encoded inside an HTML or script attachment. `literals=False` (plain
    text) only looks for data: URIs. No cap: the caller charges every file (256 decoys no
    longer hide the 257th).
    """
    # Any case ("DaTa:", ";BASE64,"): browsers accept it. "data:" in any case ends in "a:" or
    # "A:" (or a tab or line break and ":"): one pass over the text for these and the script
    # hints (`_HINTS`) rules most text out before any regex runs.
    hints = _HINTS.present(text)
    if not hints.isdisjoint(_URI_HINT_IDS):
        yield from _data_uris(text, check)
    if not literals:
        return
    if not hints.isdisjoint(_BYTE_HINT_IDS):
        yield from _byte_lists(text, check)
    if hints.isdisjoint(_SMUGGLING_HINT_IDS):
        return
    for m in _B64_LITERAL.finditer(text):
        if check is not None:
            check()
        data = base64_decode(m.group(2))
        if data:
            yield EmbeddedFile(data, None, "base64-literal")
    for m in _B64_PIECES.finditer(text):
        if check is not None:
            check()
        joined = b"".join(_PIECE.findall(m.group()))
        if len(joined) >= 80:
            data = base64_decode(joined)
            if data:
                yield EmbeddedFile(data, None, "base64-pieces")


def _byte_lists(text: bytes, check: Check) -> Iterator[EmbeddedFile]:
    """Arrays of byte values (64 or more) in script, as the bytes they list."""
    for m in _BYTE_LIST.finditer(text):
        if check is not None:
            check()
        values = [int(v, 0) for v in m.group(1).replace(b" ", b"").split(b",")
                  if v.strip()]
        if all(v < 256 for v in values):
            yield EmbeddedFile(bytes(values), None, "byte-list")
