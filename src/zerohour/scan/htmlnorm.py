"""ClamAV 1.4's HTML normalisation (`libclamav/htmlnorm.c`, `cli_html_normalise`), re-implemented.

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

`_Normaliser.feed` is ClamAV's per-byte state machine, and it is the reference for every
output byte; but byte by byte in Python it is slow (a few MB/s, most of a scan of HTML mail),
so the common shapes take fast paths that write what the states would, in bulk:

- a *region* (`_REGION`, `_Normaliser._region`): outside scripts, a run of text, 8-bit
  sequences, whole character references, `<!...>` comments and tags of a plain enough form
  (see `_REGION`'s comment), turned into both copies with a few whole-run operations (folding,
  `bytes.lower`/`replace`/`translate`, a handful of regex substitutions) plus a call for each
  `<a>`/`<img>` link, 8-bit run and reference, and a walk through the tag states
  (`_walk_tag`) for each tag with an 8-bit byte (and each after one while HTML_TAG_ARG_VAL
  holds a value's last group of up to three 8-bit bytes, which it writes at the next value's
  first ASCII byte, in that tag or a later one). That is nearly all of most real HTML mail;
- text in scripts and style sheets (`_SCRIPT_RUN`), text runs, 8-bit runs (`_high_run`),
  references (`_REF`) and tags (`_SIMPLE_TAG`) that a region did not take;
- other tags without `\\r` or references (`_LOOSE_TAG`, `_Normaliser._loose_tag`), walked a
  token at a time through the tag states (`_walk_tag`): ones with 8-bit values (as an `alt`
  text in another script) a region did not take, or whitespace in a quoted value;
- anything else (`data:` URIs, broken references, `<script>`/`<style>` tags, odd quoting,
  control bytes, ...) goes through the state machine.

A fast path must leave the copies and the state (text_space_written, the script flags, the
state a chunk ends in) exactly as the states would, for every input: so each is limited to
shapes whose outcome does not depend on what follows, and ends before the last byte of a
chunk (a tag ended there, or with only `\\r` after it there, is processed in the next chunk).
The chunk boundaries and the scan clock check per chunk are the state machine's.
tests/scan/test_htmlnorm_differential.py compares the copies with the state machine alone
(`tests/scan/_htmlnorm_reference.py`) on generated documents; a change here needs it, and a
new quirk needs a case there.
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
#: The same in a script or style sheet, with `\r` (dropped there too).
_SCRIPT_RUN = re.compile(rb"[\x21-\x25\x27-\x3b\x3d-\x7f]"
                         rb"[\x21-\x25\x27-\x3b\x3d-\x7f \t\n\x0b\x0c\r]*+")
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
#: A run of text, 8-bit sequences, character references, tags and `<!...>` comments outside
#: scripts, which `_Normaliser._region` turns into both copies with whole-run byte operations
#: (the fast path for most real HTML). `\r` is dropped everywhere (as the state machine drops
#: it) but may not stand alone between attributes (where it is no separator). Its text has no
#: `<`, `&`, `>` or other control byte; each `&` begins a whole `_R_REF`, and each 8-bit run
#: is one `_high_run` takes whole. Its tags have no `<` or control byte, and are not
#: `<script>` or `<style>` (which switch to script mode); those with an 8-bit byte
#: (`_R_TAG8`) `_walk_tag` takes, the others (`_R_TAG`) have no `data:` value, no whitespace
#: around `=` and references only as `_r_qval` allows them. So in the run `<` only begins and `>`
#: only ends a tag or comment, and a quote inside a tag is a value's (nocomment.html writes
#: each as `"`). Whitespace inside a tag folds to one space: between attributes, and in a
#: quoted value, where HTML_TAG_ARG_VAL writes the first whitespace byte and takes the rest of
#: the tag as unquoted (so, there, the first must be a space or `\n` and the words after it
#: plain; `_link` reads an `<a>` or `<img>` tag's attributes as that state machine would).
_R_NAME = rb"[^\x00-\x20\x7f-\xff\"'&<=>]"
_R_VAL = rb"[^\x00-\x20\x7f-\xff\"'&<>]"
#: A reference whose decoded bytes are the same lower-cased (below U+10000, as `_u16` cuts a
#: larger one to 16 bits, where it can be an upper-case letter).
_R_REF = rb"&(?:[A-Za-z0-9_:-]{1,1024}|#[0-9]{1,4}|#[xX][0-9A-Fa-f]{1,4});"


def _r_qval(val: bytes) -> bytes:
    """A quoted value's bytes up to any whitespace: references only after 6 plain bytes, where
    ClamAV's `data:` checks (at 5 and 6 bytes of value) are over."""
    return (rb"(?!data:)(?:" + val + rb"{6}(?:" + val + rb"++|" + _R_REF + rb")*+|" + val
            + rb"{0,5})")


_R_WORDS = rb"(?:\r*+[ \n][ \t\n\x0b\x0c\r]*+[^\x00-\x20\x7f-\xff\"'&<=>]*+)*+"
_R_SEP = rb"\r*+[ \t\n\x0b\x0c][ \t\n\x0b\x0c\r]*+"


def _r_attrs(double: bytes, single: bytes) -> bytes:
    return (rb"(?:" + _R_SEP + _R_NAME + rb"++(?:=(?:\"" + double + rb"\"|'" + single
            + rb"'|(?!data:)" + _R_VAL + rb"++))?+)*+[ \t\n\x0b\x0c\r]*+>")


#: A quoted value may also hold the other quote, before any whitespace.
_R_TAG = (rb"<(?!(?i:script|style)[ \t\n\x0b\x0c\r>])(?!!)" + _R_NAME + rb"++"
          + _r_attrs(_r_qval(rb"[^\x00-\x20\x7f-\xff\"&<>]") + _R_WORDS,
                     _r_qval(rb"[^\x00-\x20\x7f-\xff'&<>]") + _R_WORDS))
#: An 8-bit run `_high_run` would take: groups of three, the last not a lone `\xa1`, then a
#: byte that flushes it (in the chunk, not `\r`).
_R_HIGH = (rb"(?:[\x80-\xff]{3})*+(?:[\x80-\xff]{2}|[\x80-\xa0\xa2-\xff])?+"
           rb"(?=[\x00-\x0c\x0e-\x7f])")
#: Text and whitespace in one class, and possessive repeats (each item ends where it must, so
#: nothing is to be tried again): the regex engine's quickest loops. The whitespace a match
#: ends with is not part of the region (`_Normaliser.feed` takes it off); group 1 is the text
#: it begins with (all of it if it is text only).
_R_TEXT = rb"[\x21-\x25\x27-\x3b\x3d\x3f-\x7f \t\n\x0b\x0c\r]*+"
#: A tag with an 8-bit byte (an `alt` text in another script): `_walk_tag` takes it, as the
#: states would (`_Normaliser._walk_region`); no `<`, `&`, `\r` or other control byte in it.
_R_TAG8 = (rb"<(?!(?i:script|style)[ \t\n\x0b\x0c\r>])[^\x00-\x20\x7f!&<>]"
           rb"[^\x00-\x08\x0e-\x1f\x7f\r&<>]*?[\x80-\xff][^\x00-\x08\x0e-\x1f\x7f\r&<>]*+>")
_REGION = re.compile(rb"(" + _R_TEXT + rb")(?:(?:" + _R_TAG + rb"|" + _R_TAG8 + rb"|<![^>]*+>|"
                     + _R_REF + rb"|(?=[\x80-\xff])" + _R_HIGH + rb")" + _R_TEXT + rb")*+")
#: In a region: its comments and tags with an 8-bit byte (`_R_TAG8`), or any tag.
_TAG8 = re.compile(rb"<![^>]*+>|<[^>]*?[\x80-\xff][^>]*+>")
_ANY_TAG = re.compile(rb"<![^>]*+>|<[^>]*+>")
#: In a region: where the nocomment.html of a tag `_walk_tag` took goes (`\x02`: an `<a>` or
#: `<img>`, for its link); no control byte is in a region's text or tags.
_WALKED = re.compile(rb"<[\x01\x02]>")
#: A tag `_Normaliser._loose_tag` walks where no region or `_SIMPLE_TAG` took it (8-bit values
#: while an 8-bit group is held, whitespace in quoted values, control bytes, ...), outside
#: scripts: no `\r` or reference in it.
_LOOSE_TAG = re.compile(rb"<[^\t\n\x0b\x0c\r !>][^\r&>]*+>")
_NOT_CR = re.compile(rb"[^\r]")
#: In `_loose_tag`, an attribute with a value TAG_ARG_VAL takes without a quirk: no whitespace,
#: quote, reference, control or 8-bit byte in it, not a `data:` URI.
_P_VAL = rb"[^\x00-\x20\x7f-\xff\"'&>]"
_PLAIN_ATTR = re.compile(rb"([^\x00-\x20\x7f-\xff\"'&<=>]++)[ \t\n\x0b\x0c]*+=[ \t\n\x0b\x0c]*+("
                         rb"\"(?!data:)" + _P_VAL + rb"*+\"|'(?!data:)" + _P_VAL + rb"*+'"
                         rb"|(?!data:)" + _P_VAL + rb"++(?=[ \t\n\x0b\x0c>]))")
#: Where `feed` tries a region: at a tag or text (a reference or 8-bit run there takes its own
#: fast path first, as most that begin no region are ones a region would not take either).
_R_START = frozenset(b"<" + bytes(range(0x21, 0x26)) + bytes(range(0x27, 0x3C)) + b"="
                     + bytes(range(0x3F, 0x80)))
#: In a region: what notags.html has one space for (tags, comments and references, and the
#: whitespace between them, which folds into that space anyway); `<a>` and `<img>` tags (and
#: comments, which may hold what looks like one); comments; tags with a quote; 8-bit runs;
#: `_Normaliser._region`'s marks (a link's NUL, an 8-bit run, or both).
_MARKUP = re.compile(rb"(?:<[^>]*+>|&[^;]*+;)(?:[ \t\n\x0b\x0c]*+(?:<[^>]*+>|&[^;]*+;))*+")
_LINK_TAG = re.compile(rb"<!([^>]*)>|<(?i:a|img)(?=[ \t\n\x0b\x0c>])[^>]*>|<\x02>")
_COMMENTS = re.compile(rb"<![^>]*>")
_QUOTING_TAG = re.compile(rb"<[^>']*'[^>]*>")
_QUOTED_VALUE = re.compile(rb"=\"([^\"]*)\"|='([^']*)'")
_HIGH_RUN = re.compile(rb"[\x80-\xff]+")
#: A mark: a link's NUL (and any 8-bit run right after it), or 8-bit runs with one space
#: between each (words in another script, taken together: see `_Normaliser._region`).
_MARKS = re.compile(rb"(\0[\x80-\xff]*+|[\x80-\xff]++(?: [\x80-\xff]++)*+)")
#: An attribute of a region's tag: name, double- or single-quoted value (without its
#: quotes), bare value.
_LINK_ATTR = re.compile(rb"[ \t\n\x0b\x0c]++([^ \t\n\x0b\x0c=>]++)"
                        rb"(?:=(?:\"([^\"]*+)\"|'([^']*+)'|([^ \t\n\x0b\x0c>]++)))?+")
#: A quoted value with whitespace: its bytes before, the word after, the rest.
_SPACED = re.compile(rb"([^ \t\n\x0b\x0c]*+)[ \t\n\x0b\x0c]++([^ \t\n\x0b\x0c]*+)(.*)", re.S)
_NAME_END = frozenset(b" \t\n\x0b\x0c>")
#: `_fold`'s tools: other whitespace to spaces, then runs of spaces to one.
_TO_SPACE = bytes.maketrans(b"\t\n\x0b\x0c", b"    ")
_SPACES = re.compile(rb"  +")
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
# `_Normaliser._region` lower-cases decoded references with the text around them.
assert all(v.lower() == v for v in _ENTITY_BYTES.values())


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
                if c in _R_START and not self.in_script and not self.mbchar2:
                    # A region in one step; it ends before the chunk's last byte (see the
                    # module docstring) and before the whitespace after it.
                    m = _REGION.match(buf, p, size - 1)
                    assert m is not None
                    run = m.group().rstrip(b" \t\n\x0b\x0c\r")
                    if run[-1:] == b">" and _NOT_CR.search(buf, p + len(run)) is None:
                        # Only `\r` after its last tag in the chunk: the states leave that
                        # tag's HTML_PROCESS_TAG to the next chunk's first byte (if any).
                        m = _REGION.match(buf, p, p + len(run) - 1)
                        assert m is not None
                        run = m.group().rstrip(b" \t\n\x0b\x0c\r")
                    walked = None
                    if run and not run.isascii():
                        walked = self._walk_region(run)
                        if walked is not None:
                            run = walked[0]
                    if run:
                        end = m.end()
                        p += len(run)
                        if walked is not None:
                            run = walked[1]
                        if b"\r" in run:
                            run = run.replace(b"\r", b"")
                        if walked is not None:
                            self._region(run, walked[2], walked[3])
                            self.mbchar2 = int.from_bytes(walked[4], "big")
                        elif m.end(1) == end:  # text only (as `_region` would take it)
                            run = _fold(run).lower()
                            o2 += run
                            text += run
                            self.tsw = False
                            self.next_state = BAD
                        else:
                            self._region(run)
                        continue
                if c == 0x3C and not self.in_script and not self.mbchar2:
                    m = _SIMPLE_TAG.match(buf, p)
                    if m is not None and m.end() < size:
                        self._tag(m)
                        p = m.end()
                        continue
                if c == 0x3C and not self.in_script:
                    # (Only where a byte other than `\r` follows in the chunk: else the states
                    # leave HTML_PROCESS_TAG to that byte, in the next chunk if any.)
                    m = _LOOSE_TAG.match(buf, p)
                    if (m is not None and _NOT_CR.search(buf, m.end()) is not None
                            and self._loose_tag(m.group())):
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
                    m = (_SCRIPT_RUN if self.in_script else _TEXT_RUN).match(buf, p)
                    if m is not None:  # words, and TRIM_WS between them
                        if self.in_script:  # where whitespace and \r write nothing
                            run = m.group().rstrip(b" \t\n\x0b\x0c\r")
                            o2 += run.translate(None, b" \t\n\x0b\x0c\r").lower().replace(
                                b"'", b'"')
                            p += len(run)
                        else:
                            run = _fold(m.group().lower())
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
            if c >= 0x80 and not self.mbchar2:
                # A run of 8-bit bytes (text in another script in an `alt` or `title`): the
                # states flush each whole group of three as the next byte comes in, and keep
                # the last group for the byte after the run; so do that in one step.
                m = _HIGH_RUN.match(buf, p)
                assert m is not None
                run = m.group()
                whole = (len(run) - 1) // 3 * 3
                if whole:
                    done = _high_value(run[:whole])
                    o2 += done
                    room = STR_LENGTH - len(tv)
                    if room > 0:
                        tv += done[:room]
                last = run[whole:]
                self.mbchar2 = int.from_bytes(last, "big")
                p += len(run)
            elif c >= 0x80:
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

    def _walk_region(self, run: bytes) -> tuple[bytes, bytes, list[bytes], list[bytes],
                                                 bytes] | None:
        """A region's tags with an 8-bit byte, and each tag after one while an 8-bit group is
        held (`_walk_tag`): the region (up to a tag `_walk_tag` does not take), the same with
        `_WALKED` marks for those tags, what each writes to nocomment.html, the links of those
        that are `<a>` or `<img>` (as `_region` adds them), and the group held at its end. None
        if it has no such tag."""
        m = _TAG8.search(run)
        while m is not None and m.group()[1] == 0x21:  # <!
            m = _TAG8.search(run, m.end())
        if m is None:
            return None
        parts: list[bytes] = []
        outs: list[bytes] = []
        links: list[bytes] = []
        held = b""
        pos = 0
        while m is not None:
            tag = m.group()
            if tag[1] != 0x21:  # not a comment
                walked = None if b"\r" in tag or b"&" in tag else _walk_tag(tag, held)
                if walked is None:  # the region ends before it
                    run = run[: m.start()].rstrip(b" \t\n\x0b\x0c\r")
                    break
                out, name, args, held = walked
                parts.append(run[pos : m.start()])
                outs.append(out)
                if name in (b"a", b"img"):
                    want = b"href" if name == b"a" else b"src"
                    link = next((v for k, v in args if k == want), None)
                    links.append(link + b" " if link else b"")
                    parts.append(b"<\x02>")
                else:
                    parts.append(b"<\x01>")
                pos = m.end()
            m = (_ANY_TAG if held else _TAG8).search(run, m.end())
        parts.append(run[pos:])
        return run, b"".join(parts), outs, links, held

    def _region(self, run: bytes, walked: list[bytes] | None = None,
                walked_links: list[bytes] | None = None) -> None:
        """A whole `_REGION` match (`\\r` taken out): what HTML_NORM, HTML_8BIT, the tag
        states, HTML_COMMENT and HTML_CHAR_REF would write for it, in whole-run operations;
        `walked`: what `_walk_region` took from it (its tags as `_WALKED` marks), in order."""
        markup = b"<" in run
        high = not run.isascii()
        # nocomment.html
        o2 = _fold(run)
        if high and (b"\xe3\x80\x82" in o2 or b"\xef\xbc\x8e" in o2 or b"\xef\xb9\x92" in o2):
            o2 = _HIGH_RUN.sub(_high_o2, o2)  # (before comments go: runs stay apart)
        if markup:
            self.lt_here = True
            # No whitespace before a tag's `>`, nor after it (SKIP_WS); a comment goes.
            o2 = o2.replace(b" >", b">").replace(b"> ", b">")
            if b"<!" in o2:
                o2 = _COMMENTS.sub(b"", o2)
            if b"'" in o2:
                o2 = _QUOTING_TAG.sub(_double_quotes, o2)
            if walked:
                # Before references are decoded (`&lt;&#1;&gt;` would make a mark); what a walk
                # wrote has no `&` and is lower-cased already.
                marks = _WALKED.split(o2)
                assert len(marks) == len(walked) + 1
                both = [b""] * (2 * len(marks) - 1)
                both[::2] = marks
                both[1::2] = walked
                o2 = b"".join(both)
        if b"&" in o2:
            # What a region's reference decodes to is the same lower-cased (`_R_REF`).
            o2 = _REF.sub(_decode_ref, o2)
        o2 = o2.lower()
        self.o2 += o2
        # notags.html: the text, a space for each tag, comment or reference (folded with the
        # whitespace around it), each `<a>` / `<img>` link after its tag's space and each 8-bit
        # run as `_high_run` writes it.
        # (A text-only region `feed` takes itself.)
        tsw = self.tsw
        words = run
        links: list[bytes] = []
        if markup and (b"<a" in o2 or b"<img" in o2):

            next_walked = iter(walked_links or ()).__next__

            def mark_link(m: re.Match[bytes]) -> bytes:
                if m.group(1) is not None:  # a comment
                    return m.group()
                tag = m.group()
                if tag == b"<\x02>":
                    links.append(next_walked())
                    return b" \0"
                link = _link(tag)
                links.append(link + b" " if link else b"")
                return b" \0"  # (no NUL is left in a chunk)

            words = _LINK_TAG.sub(mark_link, words)
        if markup or b"&" in run:
            words = _MARKUP.sub(b" ", words)
        words = _fold(words).lower()
        if not (high or links):
            if tsw and words[:1] == b" ":
                words = words[1:]
            if words:
                self.text += words
                tsw = words[-1] == 0x20
        else:
            # In order: text, and marks (a link's NUL, an 8-bit run, or both); a link sets
            # text_space_written, 8-bit bytes leave it as it was.
            if high:
                pieces = _MARKS.split(words)
            else:  # the same, quicker
                parts = words.split(b"\0")
                pieces = [b"\0"] * (2 * len(parts) - 1)
                pieces[::2] = parts
            out = []
            next_link = iter(links).__next__
            for i, piece in enumerate(pieces):
                if i & 1:
                    if piece[0] == 0:
                        out.append(next_link())
                        tsw = True
                        piece = piece[1:]
                        if piece:
                            out.append(_high_text(piece))
                        continue
                    if b" " not in piece:
                        out.append(_high_text(piece))
                        continue
                    # Runs with a space between each: as 8-bit bytes leave text_space_written
                    # as it was, only the first space can be written (if it was not set).
                    runs = piece.split(b" ")
                    get = _HIGH_TEXT.get
                    done = [get(r) or _high_text(r) for r in runs]
                    if not tsw:
                        done[0] += b" "
                        tsw = True
                    out += done
                    continue
                if tsw and piece[:1] == b" ":
                    piece = piece[1:]
                if piece:
                    out.append(piece)
                    tsw = piece[-1] == 0x20
            self.text += b"".join(out)
        self.tsw = tsw
        if run[-1] == 0x3E:  # a tag or comment: the whitespace after it is skipped
            self.state, self.next_state = SKIP_WS, NORM
        else:
            self.next_state = BAD

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

    def _loose_tag(self, t: bytes) -> bool:
        """A whole `_LOOSE_TAG`, as the states take it (`_walk_tag`), then PROCESS_TAG. Returns
        False, having changed nothing, for what `_walk_tag` does not take."""
        held = self.mbchar2.to_bytes(3, "big").lstrip(b"\0") if self.mbchar2 else b""
        walked = _walk_tag(t, held)
        if walked is None:
            return False
        out, name, args, held = walked
        self.lt_here = True
        self.o2 += out
        self._text_space()
        self.tag[:] = name[:STR_LENGTH]
        self.args = args
        self.mbchar2 = int.from_bytes(held, "big")
        self._process_tag()
        return True

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
            # as clamscan 1.4 does (measured with its --leave-temps copies): times 16 while
            # below INT64_MAX/16, else times 10 while below INT64_MAX/10 (sic: also for hex)
            if self.hex and value < _INT64_MAX // 16:
                value *= 16
            elif value < _INT64_MAX // 10:
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


def _link(tag: bytes) -> bytes | None:
    """What `<a>` (`href`) or `<img>` (`src`) in a region adds to notags.html: the first such
    attribute's value as `html_tag_arg_add` keeps it, or None. A quoted value with whitespace
    inside ends at its second whitespace (`_arg_value` then cuts its last byte), and its words
    after that are attributes without a value."""
    want = b"href" if tag[2] in _NAME_END else b"src"
    for a in _LINK_ATTR.finditer(tag):
        name, double, single, bare = a.group(1, 2, 3, 4)
        mine = name.lower() == want
        quoted = double if double is not None else single
        if quoted is None:
            if mine:
                return None if bare is None else _arg_value(bare[:STR_LENGTH])
            continue
        spaced = _SPACED.match(quoted)
        if spaced is None:
            if mine:
                return _arg_value((b'"' + _kept(quoted) + b'"')[:STR_LENGTH])
            continue
        first, second, rest = spaced.groups()
        if mine:
            raw = b'"' + _kept(first) + b" " + second + (b"" if rest else b'"')
            return _arg_value(raw[:STR_LENGTH])
        quote = b'"' if double is not None else b"'"
        if want in (rest + quote).lower().split():
            return None
    return None


def _kept(value: bytes) -> bytes:
    """A quoted value's bytes (up to any whitespace) as tag_val keeps them: quotes as `"`,
    references decoded."""
    value = value.replace(b"'", b'"')
    return _REF.sub(_kept_ref, value) if b"&" in value else value


def _kept_ref(m: re.Match[bytes]) -> bytes:
    """A `_REF` in a value as tag_val keeps it (a numeric one as its low byte)."""
    name, dec, hexa = m.groups()
    if name is not None:
        decoded = _ENTITY_BYTES.get(name)
        return decoded if decoded is not None else b"&" + name.lower() + b";"
    return bytes(((int(dec) if dec is not None else int(hexa, 16)) & 0xFF,))


def _double_quotes(m: re.Match[bytes]) -> bytes:
    """A region's (folded) tag in nocomment.html: HTML_TAG_ARG_VAL writes a quote as `"`, but
    the closing one of a value with whitespace twice inside is read as part of an attribute
    name (the tag is unquoted after the first), which is written as it is."""
    return _QUOTED_VALUE.sub(_quoted_value, m.group())


def _quoted_value(m: re.Match[bytes]) -> bytes:
    double, single = m.group(1, 2)
    if double is not None:
        return b'="' + double.replace(b"'", b'"') + b'"'
    return b'="' + single + (b"'" if single.count(b" ") > 1 else b'"')


def _walk_tag(t: bytes, held: bytes) -> tuple[bytes, bytes, list[tuple[bytes, bytes | None]],
                                             bytes] | None:
    """A tag (`<` to its first `>`, no `\\r` or `&` in it, not `<!`), walked token by token
    through TAG, TAG_ARG, TAG_ARG_EQUAL and TAG_ARG_VAL as the states walk it byte by byte:
    what they write to nocomment.html, the tag name, its arguments (as `_add_arg` keeps them)
    and the 8-bit group HTML_TAG_ARG_VAL holds (mbchar2: `held` before, the result after) until
    a byte that flushes it. None for what it does not take: a `>` in a quoted value, a `data:`
    value."""
    out = bytearray(b"<")
    m = _TAG_REST.match(t, 1)
    assert m is not None
    name = m.group().lower()
    out += name
    i = m.end()
    args: list[tuple[bytes, bytes | None]] = []
    arg = b""
    tv = b""  # the value so far (tag_val)
    quoted = NOT_QUOTED
    state = TAG_ARG
    skip = True  # SKIP_WS before the state
    while True:
        c = t[i]
        if skip:
            skip = False
            while c in _SPACE:
                i += 1
                c = t[i]
        if state == TAG_ARG:
            if c == 0x3E:  # >
                out.append(0x3E)
                if arg:
                    args.append((arg, None))
                break
            if c == 0x3D:  # =
                out.append(0x3D)
                i += 1
                state, skip, tv, quoted = TAG_ARG_VAL, True, b"", NOT_QUOTED
                continue
            if c in _SPACE:
                i += 1
                state, skip = TAG_ARG_EQUAL, True
                continue
            if not arg:
                a = _PLAIN_ATTR.match(t, i)
                if a is not None:  # a whole attribute with a plain value, in one step
                    aname, value = a.group(1, 2)
                    aname = aname.lower()
                    out += b" " + aname
                    if value[:1] in (b'"', b"'"):
                        content = value[1:-1]
                        out += b'="'
                        tv = b'"'
                        if held and content:
                            done, content = _flush_held(held, content)
                            out += done
                            tv += done
                            held = b""
                        out += content.lower() + b'"'
                        tv = (tv + content + b'"')[:STR_LENGTH]
                    else:
                        out.append(0x3D)
                        tv = b""
                        if held:
                            done, value = _flush_held(held, value)
                            out += done
                            tv = done
                            held = b""
                        out += value.lower()
                        tv = (tv + value)[:STR_LENGTH]
                    args.append((aname[:STR_LENGTH], _arg_value(tv)))
                    i = a.end()
                    skip = True
                    continue
                out.append(0x20)
            m = _ARG_NAME.match(t, i)
            assert m is not None
            run = m.group().lower()
            out += run
            arg = (arg + run)[:STR_LENGTH]
            i = m.end()
        elif state == TAG_ARG_EQUAL:
            if c == 0x3D:
                out.append(0x3D)
                i += 1
                state, skip, tv, quoted = TAG_ARG_VAL, True, b"", NOT_QUOTED
                continue
            if arg:
                args.append((arg, None))
            arg = b""
            state = TAG_ARG
        else:  # TAG_ARG_VAL
            if tv[:5] == b"data:" or tv[:6] == b'"data:':
                return None  # (where the states may turn to RFC2397_TYPE)
            if c == 0x22 or c == 0x27:
                mine = SINGLE_QUOTED if c == 0x27 else DOUBLE_QUOTED
                out.append(0x22)
                n = len(tv)
                if n < STR_LENGTH:
                    tv += b'"'
                i += 1
                if n == 0:
                    quoted = mine
                elif quoted == mine:  # (`escape` is set only on a backslash)
                    args.append((arg, _arg_value(tv)))
                    arg = b""
                    state, skip = TAG_ARG, True
            elif c in _SPACE or c == 0x3E:
                if quoted == NOT_QUOTED:
                    args.append((arg, _arg_value(tv)))
                    arg = b""
                    state, skip = TAG_ARG, True
                elif c == 0x3E:
                    return None  # the tag goes on past it
                else:
                    out.append(0x20 if c == 0x0A else c)
                    tv = (tv + b" ")[:STR_LENGTH]
                    quoted = NOT_QUOTED
                    skip = True
                    i += 1
            elif c >= 0x80:
                m = _HIGH_RUN.match(t, i)
                assert m is not None
                run = held + m.group()
                # Groups of three from the held ones on; the last (1 to 3 bytes) is held.
                whole = (len(run) - 1) // 3 * 3
                if whole:
                    done = _high_value(run[:whole])
                    out += done
                    tv = (tv + done)[:STR_LENGTH]
                held = run[whole:]
                i = m.end()
            else:
                m = _VALUE.match(t, i)
                assert m is not None
                run = m.group()
                if held:
                    done, run = _flush_held(held, run)
                    out += done
                    tv = (tv + done)[:STR_LENGTH]
                    held = b""
                out += run.lower()
                tv = (tv + run)[:STR_LENGTH]
                i = m.end()
    return bytes(out), name, args, held


def _flush_held(held: bytes, value: bytes) -> tuple[bytes, bytes]:
    """HTML_TAG_ARG_VAL's flush of a held 8-bit group at the first byte of `value` (ASCII):
    what it writes, and the rest of `value` (a lone `\\xa1` before `C`, `D` or `O` is a full
    stop that takes that byte with it)."""
    if held == b"\xa1" and value[0] in b"CDO":
        return b".", value[1:]
    return (b"." if held in _DOTS else held), value


def _high_groups(run: bytes) -> list[bytes]:
    return [run[i : i + 3] for i in range(0, len(run), 3)]


def _high_o2(m: re.Match[bytes]) -> bytes:
    """An 8-bit run in nocomment.html, as `_high_run` writes it."""
    return b"".join(b"." if g in _DOTS else g for g in _high_groups(m.group()))


def _high_value(groups: bytes) -> bytes:
    """Whole groups of three 8-bit bytes in a tag's value, as HTML_8BIT writes each to
    nocomment.html: a full stop for an ideographic or full-width one, else the group."""
    if not (b"\xe3\x80\x82" in groups or b"\xef\xbc\x8e" in groups or b"\xef\xb9\x92" in groups):
        return groups
    return b"".join(b"." if g in _DOTS else g for g in _high_groups(groups))


#: `_high_text` of words seen before: text in another script repeats its words, and each
#: costs a Python loop over its groups (bounded: emptied when full).
_HIGH_TEXT: dict[bytes, bytes] = {}
_HIGH_TEXT_MAX = 16384


def _high_text(run: bytes) -> bytes:
    """An 8-bit run in notags.html, as `_high_run` writes it."""
    n = len(run)
    if n == 2:  # the most common (a Latin letter in UTF-8), and the shortest, first
        return run[:1] * 2
    if n == 1:
        return b"\0"
    done = _HIGH_TEXT.get(run)
    if done is None:
        done = _high_text_of(run)
        if len(_HIGH_TEXT) >= _HIGH_TEXT_MAX:
            _HIGH_TEXT.clear()
        _HIGH_TEXT[run] = done
    return done


def _high_text_of(run: bytes) -> bytes:
    out = bytearray()
    for g in _high_groups(run):
        if g in _DOTS:
            out.append(0x2E)
        elif len(g) == 3:
            out += g[:2] + g[1:2]
        elif len(g) == 2:
            out += g[:1] * 2
        else:
            out.append(0)
    return bytes(out)


def _decode_ref(m: re.Match[bytes]) -> bytes:
    """A `_REF` in nocomment.html (HTML_CHAR_REF and back in one step)."""
    name, dec, hexa = m.groups()
    if name is not None:
        decoded = _ENTITY_BYTES.get(name)
        return decoded if decoded is not None else b"&" + name.lower() + b";"
    value = int(dec) if dec is not None else int(hexa, 16)
    return bytes((_lower(value),)) if value < 0x80 else _u16(value)


def _fold(run: bytes) -> bytes:
    """`run` with each whitespace run (no `\\r`) as one space (quicker than a regex
    substitution where most runs are one space already)."""
    run = run.translate(_TO_SPACE)
    return _SPACES.sub(b" ", run) if b"  " in run else run


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
