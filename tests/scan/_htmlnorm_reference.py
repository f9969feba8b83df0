"""The slow reference: `zerohour.scan.htmlnorm` as it was before its fast paths (commit
0c08c8b), kept unchanged for the differential test (tests/scan/test_htmlnorm_differential.py),
which checks that the optimised module's copies are byte-identical to these for every input.
Do not optimise or "fix" this file: a behaviour change belongs in both, and in the test.

The original module docstring follows.

ClamAV 1.4's HTML normalisation (`libclamav/htmlnorm.c`, `cli_html_normalise`), re-implemented.

clamscan does not match an HTML file's own bytes against body signatures: `cli_scanhtml` writes
two normalised copies and matches those, each as a layer of its own (type CL_TYPE_HTML, so
targets 0 and 3; file-hash signatures and the `.fp`/`.sfp` allow-list apply to each copy):

- `nocomment.html`: tags and text lower-cased, whitespace runs folded to one space (none after
  a tag, none inside scripts and style sheets, where `'` becomes `"`), `\\r` dropped, comments
  gone (a comment ends at the first `>`), tag attributes re-spaced, character references
  decoded (names from `_htmlentities`; code points above 0xFF as `&#xhhhh;`), `data:` URI
  contents left out;
- `notags.html`: the text only (no scripts or style sheets), tags replaced by one space, plus
  each `<a href>` and `<img src>` value (as written); character references become a space.

The aim is byte-identical copies, so that an allow-list entry for clamscan's copy works here
too: the input is read in ClamAV's 8 KiB chunks (each chunk's leading whitespace skipped, NULs
dropped), and its quirks are kept (8-bit sequences written to the text copy with their second
byte doubled, a lone 8-bit byte as NUL; both copies end where a style sheet's end tag began in
an earlier chunk, as clamscan 1.4.6 gives up there). Not reproduced: the Script-Encoder decoding of
`language="jscript.encode"` / `vbscript.encode` scripts (those are copied as plain script) and
the separate JavaScript-normalised copy (`zerohour.scan.engine` covers scripts with the text
normalisation instead).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from zerohour.scan._htmlentities import ENTITIES

#: ClamAV's `cli_readchunk` reads at most this many bytes at a time (8192 minus the NUL).
CHUNK = 8191
#: Bound of the tag, attribute, value and entity buffers (HTML_STR_LENGTH).
STR_LENGTH = 1024

_SPACE = frozenset(b"\t\n\x0b\x0c\r ")
_WS_RUN = re.compile(rb"[\t\n\x0b\x0c\r ]+")
_WS_ANY = re.compile(rb"[\t\n\x0b\x0c\r ]")
#: Bytes HTML_NORM copies without a state change (not `<`, `&`, whitespace, control or 8-bit).
_PLAIN = re.compile(rb"[\x21-\x25\x27-\x3b\x3d-\x7f]+")
#: Words of such bytes with whitespace between them (not `\r`, which is dropped, not folded).
_TEXT_RUN = re.compile(rb"[\x21-\x25\x27-\x3b\x3d-\x7f]+"
                       rb"(?:[ \t\n\x0b\x0c]+[\x21-\x25\x27-\x3b\x3d-\x7f]+)*")
_FOLD = re.compile(rb"[ \t\n\x0b\x0c]+")
#: Bytes an attribute value copies without a state change.
_VALUE = re.compile(rb"[\x00-\x08\x0e-\x1f\x21\x23-\x25\x28-\x3d\x3f-\x7f]+")
_HIGH = re.compile(rb"[\x80-\xff]+")
_ENTITY_RUN = re.compile(rb"[A-Za-z0-9_:-]+")
#: A whole character reference in text: `&name;`, `&#digits;`, `&#xhex;` (short enough that
#: ClamAV's overflow guards cannot trigger).
_REF = re.compile(rb"&(?:([A-Za-z0-9_:-]{1,1024})|#([0-9]{1,9})|#[xX]([0-9A-Fa-f]{1,8}));")
#: The rest of a tag name, and an attribute name.
_TAG_REST = re.compile(rb"[^\t\n\x0b\x0c\r >]+")
_ARG_NAME = re.compile(rb"[^\t\n\x0b\x0c\r =>]+")
#: A tag the state machine would take through TAG, TAG_ARG and TAG_ARG_VAL without a quirk
#: (no `\r`, entity, 8-bit byte, `data:` value, whitespace or other quote inside a quoted
#: value, or missing separator), outside scripts: done in one step (`_Normaliser._tag`).
_WS = rb"[ \t\n\x0b\x0c]"
_VAL = rb"[^\"'&\t\n\x0b\x0c\r >\x80-\xff]"
#: A quoted value: character references only after 6 plain bytes, where ClamAV's `data:` checks
#: (at 5 and 6 bytes of value) are over.
_QVAL = (rb"(?!data:)(?:" + _VAL + rb"{0,5}|" + _VAL + rb"{6}(?:" + _VAL
         + rb"|&(?:[A-Za-z0-9_:-]{1,1024}|#[0-9]{1,9}|#[xX][0-9A-Fa-f]{1,8});)*)")
_ATTR = (rb"(" + rb"[^\t\n\x0b\x0c\r =>]+" + rb")(?:" + _WS + rb"*=" + _WS + rb"*("
         rb"\"" + _QVAL + rb"\"|'" + _QVAL + rb"'|(?!data:)" + _VAL + rb"+))?")
_SIMPLE_TAG = re.compile(rb"<([^\t\n\x0b\x0c\r >!][^\t\n\x0b\x0c\r >]*)((?:" + _WS + rb"+"
                         + _ATTR + rb")*)" + _WS + rb"*>")
_ATTRS = re.compile(_WS + rb"+" + _ATTR)
_ENTITY_CHAR = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:-")
_DIGITS = frozenset(b"0123456789")
_HEX = frozenset(b"0123456789abcdefABCDEF")
#: UTF-8 for U+3002, U+FF0E, U+FE52 (ideographic and full-width full stops) become `.`.
_DOTS = frozenset({b"\xe3\x80\x82", b"\xef\xbc\x8e", b"\xef\xb9\x92"})

(BAD, NORM, BIT8, COMMENT, CHAR_REF, ENTITY_REF_DECODE, SKIP_WS, TRIM_WS, TAG, TAG_ARG,
 TAG_ARG_VAL, TAG_ARG_EQUAL, PROCESS_TAG, CHAR_REF_DECODE, RFC2397_TYPE, RFC2397_INIT,
 RFC2397_DATA, RFC2397_FINISH, RFC2397_ESC, ESCAPE_CHAR) = range(20)
NOT_QUOTED, SINGLE_QUOTED, DOUBLE_QUOTED = range(3)
_INT64_MAX = 0x7FFFFFFFFFFFFFFF


def _u16(cp: int) -> bytes:
    """entconv.c `u16_normalize`: 0 -> nothing, below 0xFF -> the byte, full stops -> `.`,
    anything else -> `&#xhhhh;`."""
    cp &= 0xFFFF
    if not cp:
        return b""
    if cp < 0xFF:
        return bytes((cp,))
    if cp in (0x3002, 0xFF0E, 0xFE52):
        return b"."
    return b"&#x%04x;" % cp


_ENTITY_BYTES = {name: _u16(cp) for name, cp in ENTITIES.items()}


def chunks(data: bytes) -> list[bytes]:
    """The pieces `cli_readchunk` hands the normaliser: up to 8191 bytes with NULs dropped,
    cut back after the last whitespace when the next unread byte is not whitespace."""
    out: list[bytes] = []
    n = len(data)
    off = 0
    while True:
        clen = min(n - off, CHUNK)
        if clen <= 0:
            return out
        nul = data.find(b"\0", off, off + clen)
        if nul < 0:
            chunk = data[off : off + clen]
            off += clen
            nxt = off
        else:
            parts = [data[off:nul]]
            have = nul - off
            pos = nul
            while pos < n and have < CHUNK:
                block = data[pos : pos + CHUNK - have]
                kept = block.replace(b"\0", b"")
                parts.append(kept)
                have += len(kept)
                pos += len(block)
            chunk = b"".join(parts)
            off = pos
            nxt = pos
        if nxt < n and data[nxt] not in _SPACE:
            last = max(chunk.rfind(bytes((w,))) for w in _SPACE)
            if last >= 1 and last + 1 < len(chunk):
                # ClamAV moves its read offset back by the bytes cut (NULs not counted).
                off -= len(chunk) - (last + 1)
                chunk = chunk[: last + 1]
        out.append(chunk)


def _arg_value(raw: bytes | None) -> bytes | None:
    """`html_tag_arg_add`: a C string (cut at NUL); a value that starts with `"` loses it and
    its last byte."""
    if raw is None:
        return None
    raw = raw.split(b"\0", 1)[0]
    if raw[:1] == b'"':
        return raw[1:-1]
    return raw


class _Normaliser:
    """One run of `cli_html_normalise` (no href collection, entity conversion on)."""

    def __init__(self) -> None:
        self.o2 = bytearray()  # nocomment.html
        self.text = bytearray()  # notags.html
        self.state = NORM
        self.next_state = BAD
        self.tag = bytearray()
        self.tag_arg = bytearray()
        self.tag_val = bytearray()
        self.args: list[tuple[bytes, bytes | None]] = []
        self.quoted = NOT_QUOTED
        self.escape = False
        self.value = 0
        self.hex = False
        self.length = 0
        self.entity = bytearray()
        self.in_script = False  # in <script> or <style>: squeezed into nocomment only
        self.in_style = False  # ... begun by <style> (which </style> ends; </script> ends both)
        self.tsw = False  # text_space_written
        self.binary = False
        self.mbchar = 0
        self.mbchar2 = 0
        self.aborted = False
        self._buf = bytearray()  # the chunk being read
        self.lt_here = False  # a `<` was read in this chunk (ClamAV's `ptrend`)

    # -- helpers -----------------------------------------------------------------------------

    def _tv(self, b: int) -> None:
        if len(self.tag_val) < STR_LENGTH:
            self.tag_val.append(b)

    def _add_arg(self, value: bytes | None) -> None:
        self.args.append((bytes(self.tag_arg), _arg_value(value)))

    def _arg(self, name: bytes) -> bytes | None:
        for key, value in self.args:
            if key == name:
                return value
        return None

    def _text_space(self) -> None:
        if not self.tsw and not self.in_script:
            self.text.append(0x20)
            self.tsw = True

    def _flush_mb(self, mb: int) -> None:
        """HTML_8BIT's flush of a collected 8-bit sequence (both copies)."""
        c0, c1, c2 = (mb >> 16) & 0xFF, (mb >> 8) & 0xFF, mb & 0xFF
        if c0:
            self.o2.append(c0)
            self.text.append(c0)
        if c0 or c1:
            self.o2.append(c1)
            self.text.append(c1)
        self.o2.append(c2)
        self.text.append(c1)  # sic: ClamAV writes c1, not c2, to the text copy

    def _high_run(self, buf: bytearray, p: int, end: int) -> int:
        """A run of 8-bit bytes in HTML_NORM, in ClamAV's groups of up to three, when the run
        ends inside the chunk on a byte that flushes it; returns the new position or -1 to
        take the run byte by byte."""
        q = end
        if q >= len(buf) or buf[q] == 0x0D:
            return -1
        run = bytes(buf[p:q])
        groups = [run[i : i + 3] for i in range(0, len(run), 3)]
        if groups[-1] == b"\xa1":
            return -1
        o2, text = self.o2, self.text
        for g in groups:
            if g in _DOTS:
                o2.append(0x2E)
                text.append(0x2E)
            elif len(g) == 3:
                o2 += g
                text += g[:2] + g[1:2]
            elif len(g) == 2:
                o2 += g
                text += g[:1] * 2
            else:
                o2 += g
                text.append(0)
        self.next_state = NORM
        return q

    # -- the state machine -------------------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        buf = self._buf = bytearray(chunk)
        size = len(buf)
        self.lt_here = False
        o2, text = self.o2, self.text
        p = 0
        while p < size and buf[p] in _SPACE:
            p += 1
        while p < size:
            c = buf[p]
            if not self.binary:
                if c == 0x0A:
                    buf[p] = c = 0x20
                elif c == 0x0D:
                    p += 1
                    continue
            state = self.state
            if state in (SKIP_WS, TRIM_WS):
                if c in _SPACE:
                    m = _WS_RUN.match(buf, p)
                    p = m.end() if m is not None else p + 1
                    continue
                # The run is over: the next state takes this same byte (ClamAV loops once more).
                if state == TRIM_WS and not self.in_script:
                    o2.append(0x20)
                state = self.state = self.next_state
                self.next_state = BAD
            if state == NORM:
                if c == 0x3C and not self.in_script and not self.mbchar2:
                    m = _SIMPLE_TAG.match(buf, p)
                    if m is not None and m.end() < size:
                        self._tag(m)
                        p = m.end()
                        continue
                if c == 0x3C:  # <
                    self.lt_here = True
                    o2.append(0x3C)
                    self._text_space()
                    p += 1
                    self.state, self.next_state = SKIP_WS, TAG
                    self.tag.clear()
                elif c in _SPACE:
                    self._text_space()
                    self.state, self.next_state = TRIM_WS, NORM
                elif c == 0x26:  # &
                    self._text_space()
                    m = _REF.match(buf, p)
                    if m is not None:  # CHAR_REF and back in one step
                        name, dec, hexa = m.groups()
                        if name is not None:
                            decoded = _ENTITY_BYTES.get(name)
                            o2 += decoded if decoded is not None else b"&" + name.lower() + b";"
                        else:
                            value = int(dec) if dec is not None else int(hexa, 16)
                            o2 += bytes((_lower(value),)) if value < 0x80 else _u16(value)
                        self.next_state = BAD
                        p = m.end()
                    else:
                        self.state, self.next_state = CHAR_REF, NORM
                        p += 1
                elif c >= 0x80:
                    m = _HIGH.match(buf, p)
                    q = self._high_run(buf, p, m.end()) if m and self.mbchar == 0 else -1
                    if q >= 0:
                        p = q
                    else:
                        self.state, self.next_state = BIT8, NORM
                        self.mbchar = c
                        p += 1
                else:
                    m = _TEXT_RUN.match(buf, p)
                    if m is not None:  # words, and TRIM_WS between them
                        run = m.group().lower()
                        if self.in_script:
                            o2 += _FOLD.sub(b"", run).replace(b"'", b'"')
                        else:
                            run = _FOLD.sub(b" ", run)
                            o2 += run
                            text += run
                            self.tsw = False
                        p = m.end()
                    else:  # a control byte
                        o2.append(c)
                        if not self.in_script and not self.tsw:
                            text.append(0x20)
                            self.tsw = True
                        p += 1
            elif state == BIT8:
                mb = self.mbchar
                if c < 0x80 or mb >= 0x10000:
                    if bytes(_mb_bytes(mb)) in _DOTS or (mb == 0xA1 and c in b"CDO"):
                        o2.append(0x2E)
                        text.append(0x2E)
                        if mb == 0xA1:
                            p += 1
                            self.mbchar = 0
                            continue
                    else:
                        self._flush_mb(mb)
                    self.mbchar = 0
                    self.state, self.next_state = self.next_state, NORM
                else:
                    self.mbchar = (mb << 8) | c
                    p += 1
            elif state == TAG:
                if not self.tag and c == 0x21:  # <!
                    if self.in_script:
                        o2.append(0x21)
                    elif o2:
                        o2.pop()
                    self.state, self.next_state = COMMENT, BAD
                    p += 1
                elif c == 0x3E:
                    o2.append(0x3E)
                    p += 1
                    self.state, self.next_state = SKIP_WS, PROCESS_TAG
                elif c not in _SPACE:
                    if self.tag:  # the rest of the name in one go
                        m = _TAG_REST.match(buf, p)
                        assert m is not None
                        run = m.group().lower()
                        o2 += run
                        self.tag += run[: STR_LENGTH - len(self.tag)]
                        p = m.end()
                        continue
                    lc = _lower(c)
                    o2.append(lc)
                    if self.in_script and c != 0x2F:
                        self.state = NORM
                    self.tag.append(lc)
                    p += 1
                else:
                    self.state = SKIP_WS
                    self.tag_arg.clear()
                    self.next_state = PROCESS_TAG if self.in_script else TAG_ARG
            elif state == TAG_ARG:
                if c == 0x3D:  # =
                    o2.append(0x3D)
                    p += 1
                    self._start_value()
                elif c in _SPACE:
                    p += 1
                    self.state, self.next_state = SKIP_WS, TAG_ARG_EQUAL
                elif c == 0x3E:
                    o2.append(0x3E)
                    if self.tag_arg:
                        self._add_arg(None)
                    p += 1
                    self.state, self.next_state = PROCESS_TAG, BAD
                else:
                    if not self.tag_arg:
                        o2.append(0x20)
                    m = _ARG_NAME.match(buf, p)
                    assert m is not None
                    run = m.group().lower()
                    o2 += run
                    self.tag_arg += run[: STR_LENGTH - len(self.tag_arg)]
                    p = m.end()
            elif state == TAG_ARG_EQUAL:
                if c == 0x3D:
                    o2.append(0x3D)
                    p += 1
                    self._start_value()
                else:
                    if self.tag_arg:
                        self._add_arg(None)
                    self.tag_arg.clear()
                    self.state, self.next_state = TAG_ARG, BAD
            elif state == TAG_ARG_VAL:
                p = self._value(buf, p, c)
            elif state == COMMENT:
                if self.in_script:
                    q = buf.find(b">", p)
                    stop = size if q < 0 else q + 1
                    o2 += _WS_ANY.sub(b"", bytes(buf[p:stop])).lower().replace(b"'", b'"')
                else:
                    q = buf.find(b">", p)
                    stop = size if q < 0 else q + 1
                if q >= 0:
                    self.state, self.next_state = SKIP_WS, NORM
                p = stop
            elif state == PROCESS_TAG:
                self._process_tag()
                if self.aborted:
                    return
            elif state == CHAR_REF:
                if c == 0x23:  # #
                    self.value = 0
                    self.hex = False
                    self.state = CHAR_REF_DECODE
                    p += 1
                else:
                    self.state = ENTITY_REF_DECODE
            elif state == ENTITY_REF_DECODE:
                p = self._entity(c, p)
            elif state == CHAR_REF_DECODE:
                p = self._char_ref(c, p)
            elif state == RFC2397_TYPE:
                p = self._rfc2397_type(buf, p, c)
            elif state == RFC2397_INIT:
                self.state = RFC2397_DATA
                self.binary = True
            elif state == RFC2397_DATA:
                if c == 0x26:
                    self.state, self.next_state = CHAR_REF, RFC2397_DATA
                elif c == 0x25:  # %
                    self.length = 0
                    self.value = 0
                    self.state, self.next_state = ESCAPE_CHAR, RFC2397_ESC
                elif (c == 0x27 and not self.escape and self.quoted == SINGLE_QUOTED) or (
                        c == 0x22 and not self.escape and self.quoted == DOUBLE_QUOTED) or (
                        (c in _SPACE or c == 0x3E) and self.quoted == NOT_QUOTED):
                    self.state = RFC2397_FINISH
                p += 1
                self.escape = p < size and buf[p] == 0x5C
            elif state == RFC2397_FINISH:
                self.state, self.next_state = SKIP_WS, TAG_ARG
                self.escape = False
                self.quoted = NOT_QUOTED
                self.binary = False
            elif state == RFC2397_ESC:
                self.state = RFC2397_DATA
            elif state == ESCAPE_CHAR:
                self.length += 1
                if c in _HEX:
                    self.value = self.value * 16 + int(chr(c), 16)
                else:
                    self.state = self.next_state
                if self.length == 2:
                    self.state = self.next_state
                p += 1
            else:  # HTML_BAD_STATE: ClamAV gives up (and keeps what it wrote)
                self.aborted = True
                return
        if self.next_state == self.state:
            self.next_state = BAD

    def _start_value(self) -> None:
        self.state, self.next_state = SKIP_WS, TAG_ARG_VAL
        self.escape = False
        self.quoted = NOT_QUOTED
        self.tag_val.clear()

    def _value(self, buf: bytearray, p: int, c: int) -> int:
        """HTML_TAG_ARG_VAL for the byte at `p`; returns the new position."""
        o2 = self.o2
        tv = self.tag_val
        n = len(tv)
        if (n == 5 and tv[:5] == b"data:") or (n == 6 and tv[:6] == b'"data:'):
            if o2:
                o2.pop()
            if self.quoted != NOT_QUOTED:
                o2.append(0x22)
            tv.clear()
            self.state, self.next_state = RFC2397_TYPE, TAG_ARG
        elif c == 0x26:
            self.state, self.next_state = CHAR_REF, TAG_ARG_VAL
            p += 1
        elif c == 0x27 or c == 0x22:
            mine = SINGLE_QUOTED if c == 0x27 else DOUBLE_QUOTED
            o2.append(0x22)
            self._tv(0x22)
            if n == 0:
                self.quoted = mine
            elif not self.escape and self.quoted == mine:
                self._add_arg(bytes(tv))
                self.state, self.next_state = SKIP_WS, TAG_ARG
                self.tag_arg.clear()
            p += 1
        elif c in _SPACE or c == 0x3E:
            if self.quoted == NOT_QUOTED:
                self._add_arg(bytes(tv))
                self.state, self.next_state = SKIP_WS, TAG_ARG
                self.tag_arg.clear()
            else:
                o2.append(c)
                self._tv(0x20 if c in _SPACE else 0x3E)
                self.state, self.next_state = SKIP_WS, TAG_ARG_VAL
                self.escape = False
                self.quoted = NOT_QUOTED
                p += 1
        else:
            mb = self.mbchar2
            if mb and (c < 0x80 or mb >= 0x10000):
                if bytes(_mb_bytes(mb)) in _DOTS or (mb == 0xA1 and c in b"CDO"):
                    o2.append(0x2E)
                    self._tv(0x2E)
                    if mb == 0xA1:
                        self.mbchar2 = 0
                        return p + 1  # ClamAV `continue`s: `escape` is left as it was
                else:
                    for b in _mb_bytes(mb):
                        o2.append(b)
                        self._tv(b)
                self.mbchar2 = 0
            if c >= 0x80:
                self.mbchar2 = (self.mbchar2 << 8) | c
                p += 1
            elif not self.mbchar2:
                m = _VALUE.match(buf, p)
                assert m is not None
                run = m.group()
                if n < 6:  # stop where the `data:` checks look (lengths 5 and 6)
                    run = run[: 5 - n] if n < 5 else run[:1]
                o2 += run.lower()
                room = STR_LENGTH - len(tv)
                if room > 0:
                    tv += run[:room]
                p += len(run)
            else:
                o2.append(_lower(c))
                self._tv(c)
                p += 1
        self.escape = p < len(buf) and buf[p] == 0x5C
        return p

    def _tag(self, m: re.Match[bytes]) -> None:
        """A whole `_SIMPLE_TAG`, with the output and effects of the states it would pass
        through (HTML_NORM's `<` to HTML_PROCESS_TAG)."""
        o2 = self.o2
        self.lt_here = True
        self._text_space()
        name = m.group(1).lower()
        o2 += b"<" + name
        self.tag[:] = name[:STR_LENGTH]
        for a in _ATTRS.finditer(m.group(2)):
            arg = a.group(1).lower()
            o2 += b" " + arg
            value = a.group(2)
            self.tag_arg[:] = arg[:STR_LENGTH]
            if value is None:
                self._add_arg(None)
                continue
            if value[:1] in (b'"', b"'"):
                shown, kept = _refs(value[1:-1])
                o2 += b'="' + shown + b'"'
                self._add_arg((b'"' + kept + b'"')[:STR_LENGTH])
            else:
                o2 += b"=" + value.lower()
                self._add_arg(value[:STR_LENGTH])
        o2.append(0x3E)
        self._process_tag()

    def _process_tag(self) -> None:
        self.state, self.next_state = SKIP_WS, NORM
        tag = bytes(self.tag)
        if tag[:1] == b"/":
            if tag == b"/style" and self.in_style and not self.lt_here:
                # clamscan 1.4 gives up on the whole file when a style sheet's end tag began
                # in an earlier 8 KiB chunk (its `<` pointer is gone): nothing more is written.
                self.aborted = True
                return
            if tag == b"/script" or (tag == b"/style" and self.in_style):
                self.in_script = self.in_style = False
        elif tag in (b"script", b"style"):  # clamscan 1.4 treats a style sheet as a script
            self.in_script = True
            self.in_style = tag == b"style"
        elif tag in (b"a", b"img"):
            value = self._arg(b"href" if tag == b"a" else b"src")
            if value:
                self.text += value
                self.text.append(0x20)
                self.tsw = True
        self.args.clear()

    def _entity(self, c: int, p: int) -> int:
        """HTML_ENTITY_REF_DECODE."""
        name = self.entity
        to_val = self.next_state == TAG_ARG_VAL
        if c == 0x3B:  # ;
            decoded = _ENTITY_BYTES.get(bytes(name))
            out = decoded if decoded is not None else b"&" + bytes(name).lower() + b";"
            self.o2 += out
            if to_val:
                for b in out:
                    self._tv(b)
            name.clear()
            self.state, self.next_state = self.next_state, BAD
            return p + 1
        if c in _ENTITY_CHAR and len(name) < STR_LENGTH:
            m = _ENTITY_RUN.match(self._buf, p)
            assert m is not None
            take = m.group()[: STR_LENGTH - len(name)]
            name += take
            return p + len(take)
        out = b"&" + bytes(name).lower()
        self.o2 += out
        if to_val:
            for b in out:
                self._tv(b)
        self.state, self.next_state = self.next_state, BAD
        name.clear()
        return p

    def _char_ref(self, c: int, p: int) -> int:
        """HTML_CHAR_REF_DECODE."""
        if self.value == 0 and c in b"xX":
            self.hex = True
            return p + 1
        if c == 0x3B:
            value = self.value
            if self.next_state == TAG_ARG_VAL:
                self._tv(value & 0xFF)
            if value < 0x80:
                self.o2.append(_lower(value & 0xFF))
            else:
                self.o2 += _u16(value)
            self.state, self.next_state = self.next_state, BAD
            return p + 1
        if c in _DIGITS or (self.hex and c in _HEX):
            value = self.value
            if self.hex and value < _INT64_MAX // 16:  # clamscan's overflow rule
                value *= 16
            elif value < _INT64_MAX // 10:  # sic: also for a hex reference
                value *= 10
            else:
                self.o2.append(value & 0xFF)
                self.state, self.next_state = self.next_state, BAD
                return p + 1
            inc = int(chr(c), 16)
            if value > _INT64_MAX - inc:
                self.o2.append(value & 0xFF)
                self.state, self.next_state = self.next_state, BAD
                return p + 1
            self.value = value + inc
            return p + 1
        self.o2.append(self.value & 0xFF)
        self.state, self.next_state = self.next_state, BAD
        return p

    def _rfc2397_type(self, buf: bytearray, p: int, c: int) -> int:
        """HTML_RFC2397_TYPE: the media type of a `data:` URI (into tag_val, not the copies)."""
        if c == 0x27 or c == 0x22:
            mine = SINGLE_QUOTED if c == 0x27 else DOUBLE_QUOTED
            if not self.escape and self.quoted == mine:
                self.state, self.next_state = SKIP_WS, TAG_ARG
                self.tag_arg.clear()
            else:
                self._tv(0x22)
            p += 1
        elif c in _SPACE or c == 0x3E:
            if self.quoted == NOT_QUOTED:
                self.state, self.next_state = SKIP_WS, TAG_ARG
                self.tag_arg.clear()
            else:
                self._tv(0x20 if c in _SPACE else 0x3E)
                self.state, self.next_state = SKIP_WS, RFC2397_TYPE
                self.escape = False
                self.quoted = NOT_QUOTED
                p += 1
        elif c == 0x2C:  # ,
            self.state, self.next_state = RFC2397_INIT, BAD
            self.escape = False
            p += 1
        else:
            self._tv(_lower(c))
            p += 1
        self.escape = p < len(buf) and buf[p] == 0x5C
        return p

    def finish(self) -> tuple[bytes, bytes]:
        if not self.aborted and self.entity:
            decoded = _ENTITY_BYTES.get(bytes(self.entity))
            self.o2 += decoded if decoded is not None else b"&" + bytes(self.entity).lower()
        return bytes(self.o2), bytes(self.text)


def _refs(content: bytes) -> tuple[bytes, bytes]:
    """A `_QVAL` value's bytes in nocomment.html and in tag_val: lower-cased, character
    references decoded (a numeric one keeps its low byte in tag_val, as ClamAV does)."""
    if b"&" not in content:
        return content.lower(), content
    shown, kept = bytearray(), bytearray()
    pos = 0
    for r in _REF.finditer(content):
        plain = content[pos : r.start()]
        shown += plain.lower()
        kept += plain
        name, dec, hexa = r.groups()
        if name is not None:
            decoded = _ENTITY_BYTES.get(name)
            out = decoded if decoded is not None else b"&" + name.lower() + b";"
            shown += out
            kept += out
        else:
            value = int(dec) if dec is not None else int(hexa, 16)
            shown += bytes((_lower(value),)) if value < 0x80 else _u16(value)
            kept.append(value & 0xFF)
        pos = r.end()
    shown += content[pos:].lower()
    kept += content[pos:]
    return bytes(shown), bytes(kept)


def _lower(c: int) -> int:
    return c + 0x20 if 0x41 <= c <= 0x5A else c


def _mb_bytes(mb: int) -> list[int]:
    """The bytes HTML_8BIT writes to nocomment for a collected sequence."""
    c0, c1, c2 = (mb >> 16) & 0xFF, (mb >> 8) & 0xFF, mb & 0xFF
    out = []
    if c0:
        out.append(c0)
    if c0 or c1:
        out.append(c1)
    out.append(c2)
    return out


def normalise(data: bytes, check: Callable[[], None] | None = None) -> tuple[bytes, bytes]:
    """ClamAV's (`nocomment.html`, `notags.html`) for one HTML layer; `check` (the scan's
    time check) is called before each chunk."""
    norm = _Normaliser()
    for chunk in chunks(data):
        if check is not None:
            check()
        norm.feed(chunk)
        if norm.aborted:
            break
    return norm.finish()
