"""RTF: embedded OLE objects (`\\objdata`) and `\\datastore` blobs.

Tokenising is oletools' `RtfParser`, which follows MS Word's own leniency (the obfuscations
malicious RTF relies on: odd hex digit counts, `\\'hh` eating a digit, `\\bin` runs, whitespace
and junk inside hex, unclosed groups). Its stock `RtfObjParser` is not used: it appends every
text run to a growing `bytes` (quadratic: 100k text runs took 0.8 s, 50k 0.14 s) and re-filters
the whole object on each `\\'hh`. Here the hex digits of an object are collected once, in a
bytearray, and every token checks the scan's clock.

Each object is an OLE1 object (oletools' `OleObject`): its native data is a child (an OLE2 file
for embedded documents, which the engine opens in turn), and an OLE Packager object gives up its
file, named, as an attachment. An object whose hex does not parse as OLE1 is scanned as decoded
bytes and is `Heuristics.Broken.RTF` (Word would not render it, exploits use exactly that).
A malformed RTF without such objects is just text: the engine scans it as such.
"""

from __future__ import annotations

import binascii
import functools
import re
from collections.abc import Iterator
from typing import Any

from zerohour.scan.dedup import Dedup
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import Child

_NOT_HEX = re.compile(rb"[^0-9A-Fa-f]")
_OBJECT_DESTINATIONS = (b"objdata", b"datastore")
_MAX_OBJECTS = 10_000


class _Object:
    __slots__ = ("kind", "raw")

    def __init__(self, kind: bytes, raw: bytes) -> None:
        self.kind = kind
        self.raw = raw


@functools.cache
def _parser_type() -> type[Any]:
    """The tokenising class, built on first use: importing oletools costs ~0.1-0.2 s, which
    every scan worker would otherwise pay at start."""
    from oletools import rtfobj

    class _Parser(rtfobj.RtfParser):  # type: ignore[misc]
        """Word's RTF tokenising (oletools), collecting object hex in linear time."""

        def __init__(self, data: bytes, ctx: ScanContext) -> None:
            super().__init__(data)
            self.ctx = ctx
            self.ticks = 0
            self.found: list[_Object] = []
            self.hex: dict[int, bytearray] = {}  # id(destination) -> hex digits so far

        def _tick(self) -> None:
            self.ticks += 1
            if not self.ticks & 0x3FF:
                self.ctx.check_time()

        def _collecting(self) -> bytearray | None:
            return self.hex.get(id(self.current_destination))

        def open_group(self) -> None:
            self._tick()

        def open_destination(self, destination: Any) -> None:
            if destination.cword in _OBJECT_DESTINATIONS:
                self.hex[id(destination)] = bytearray()

        def close_destination(self, destination: Any) -> None:
            digits = self.hex.pop(id(destination), None)
            if digits is None:
                return
            if len(digits) & 1:
                del digits[-1]  # Word accepts an extra hex digit
            if len(self.found) < _MAX_OBJECTS:
                self.found.append(_Object(destination.cword, binascii.unhexlify(digits)))
            elif len(self.found) == _MAX_OBJECTS:
                self.found.append(_Object(b"", b""))  # a marker: said once
                self.ctx.unsupported("RTF", "Objects")

        def _text(self, matchobject: Any) -> None:  # the base appends to a bytes: quadratic
            self._tick()
            digits = self._collecting()
            if digits is not None:
                digits += _NOT_HEX.sub(b"", matchobject.group())

        def bin(self, bindata: bytes) -> None:
            digits = self._collecting()
            if digits is not None:
                digits += binascii.hexlify(bindata)

        def control_word(self, matchobject: Any, cword: bytes, param: Any) -> None:
            self._tick()

        def control_symbol(self, matchobject: Any) -> None:
            self._tick()
            if matchobject.group()[1:2] != b"'":
                return
            # `\'hh`: the two characters after it are skipped, whatever they are; inside an object,
            # Word's parser also drops the last hex digit read so far when their count is odd.
            self.index += 2
            digits = self._collecting()
            if digits is not None and len(digits) & 1:
                del digits[-1]

    return _Parser


def _ole1(raw: bytes) -> tuple[bytes, str | None, bool] | None:
    """(payload, file name, whether it is a packaged file) of an OLE1 object, or None."""
    from oletools import oleobj

    obj = oleobj.OleObject()
    try:
        obj.parse(raw)
    except Exception:  # oletools raises assorted errors on what is not OLE1
        return None
    data: bytes = obj.data or b""
    class_name: bytes = obj.class_name or b""
    if class_name.lower().rstrip(b"\x00") == b"package":
        try:
            pkg = oleobj.OleNativeStream(bindata=data, package=True)
        except Exception:  # a damaged package header: scan the native data as it is
            return data, None, False
        name = pkg.filename if isinstance(pkg.filename, str) else None
        return (pkg.data or b""), name or None, True
    return data, None, False


def rtf_children(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """The embedded objects of an RTF document (see the module docstring)."""
    # oletools' tokeniser stops with a RuntimeError at a lone backslash at the very end (no
    # control word, symbol or text can match it); a backslash there carries nothing.
    parser = _parser_type()(data.rstrip(b"\\"), ctx)
    broken = False
    try:
        parser.parse()
    except RuntimeError:  # any other dead end of the tokeniser: keep what it found
        broken = True
    dedup = Dedup()
    for obj in parser.found:
        ctx.check_time()
        if not obj.raw:
            continue
        if obj.kind == b"datastore":
            found: list[Child] = [Child(data=obj.raw, name=None, origin="rtf-datastore")]
        else:
            parsed = _ole1(obj.raw)
            if parsed is None:
                broken = True
                found = [Child(data=obj.raw, name=None, origin="rtf-object")]
            else:
                payload, name, packaged = parsed
                found = [Child(data=payload, name=name,
                               origin="rtf-package" if packaged else "rtf-object",
                               is_attachment=packaged)]
        for child in found:
            if child.data and dedup.fresh(child.data, child.name):
                ctx.charge_child(len(child.data))
                yield child
    text = rtf_text(data, ctx)
    if text is not None and text.strip():
        ctx.charge_child(len(text))
        yield Child(data=text, name=None, origin="rtf-text")
    if _HIDDEN_TEXT.search(data):  # what Word shows: the text without its hidden runs
        shown = rtf_text(data, ctx, shown_only=True)
        if shown is not None and shown.strip() and shown != text:
            ctx.charge_child(len(shown))
            yield Child(data=shown, name=None, origin="rtf-text")
    if broken:  # said after the objects, so that what they hold is named first
        ctx.broken("RTF")


# -- the text a reader sees ---------------------------------------------------------------------

_RTF_TOKEN = re.compile(rb"\\'([0-9A-Fa-f]{2})|\\([A-Za-z]{1,32})(-?\d{1,10})? ?|\\([^A-Za-z])"
                        rb"|([{}])|([^\\{}\r\n]+)|[\r\n]+")
#: Destinations whose text is not shown (tables, metadata, pictures, field codes, objects).
_HIDDEN_DESTINATIONS = frozenset({
    b"fonttbl", b"colortbl", b"stylesheet", b"info", b"pict", b"object", b"objdata",
    b"datastore", b"themedata", b"colorschememapping", b"latentstyles", b"listtable",
    b"listoverridetable", b"rsidtbl", b"generator", b"xmlnstbl", b"fldinst", b"filetbl",
    b"revtbl", b"pgdsctbl", b"mmathPr", b"wgrffmtfilter", b"docvar", b"bkmkstart", b"bkmkend",
    b"template", b"shppict", b"nonshppict", b"blipuid", b"sp", b"sn", b"sv", b"atnid",
    b"atnauthor", b"xe", b"tc",
})
_BREAKS = {b"par": b"\n", b"line": b"\n", b"sect": b"\n", b"page": b"\n", b"row": b"\n",
           b"tab": b"\t", b"cell": b"\t", b"emdash": b"-", b"endash": b"-", b"bullet": b"*"}
#: Breaks that are characters of the text (hidden with it); a paragraph mark stays a line.
_INLINE = frozenset({b"tab", b"emdash", b"endash", b"bullet"})
#: Groups whose text is not the body's as Word and pandoc show it (round 14): the text of
#: a list item's number, headers, footers.
_APART = frozenset({b"listtext", b"header", b"headerl", b"headerr", b"headerf", b"footer",
                    b"footerl", b"footerr", b"footerf", b"pntext", b"pn", b"pntxta",
                    b"pntxtb"})
_HIDDEN_TEXT = re.compile(rb"\\(?:v(?![A-Za-z0])|listtext|header|footer|pn|s?caps(?![A-Za-z])"
                          rb"|stylesheet)")
_SYMBOLS = {b"\\": b"\\", b"{": b"{", b"}": b"}", b"~": b" ", b"_": b"-", b"-": b""}


_Style = tuple[bool | None, bool | None, int | None]  # (hidden, caps, based on) as set


def _stylesheet(data: bytes, ctx: ScanContext) -> dict[tuple[bytes, int], tuple[bool, bool]]:
    """The hidden text (`\\v`) and capitals (`\\caps`, `\\scaps`) each style of the
    document's `{\\stylesheet ...}` sets, its `\\sbasedon` chain followed (round 20: decoys
    in runs of a character style `\\cs10` defined with `\\v`, capitals from a paragraph style
    `\\s1` defined with `\\caps`; LibreOffice applies them). Keyed by (`s` or `cs`,
    number); the first definition of a key counts."""
    start = data.find(b"\\stylesheet")
    if start < 0:
        return {}
    defined: dict[tuple[bytes, int], _Style] = {}
    depth, key = 0, None
    hidden: bool | None = None
    caps: bool | None = None
    based: int | None = None
    steps, pos, n = 0, start + len(b"\\stylesheet"), len(data)
    while pos < n:
        steps += 1
        if not steps % 4096:
            ctx.check_time()
        m = _RTF_TOKEN.match(data, pos)
        if m is None:
            pos += 1
            continue
        pos = m.end()
        _, word, arg, _, brace, _ = m.groups()
        if brace == b"{":
            depth += 1
            if depth == 1:
                key, hidden, caps, based = None, None, None, None
            continue
        if brace == b"}":
            if depth == 1 and key is not None:
                defined.setdefault(key, (hidden, caps, based))
            depth -= 1
            if depth < 0:
                break  # the stylesheet's own group closed
            continue
        if depth != 1 or word is None:
            continue
        on = arg != b"0"
        if word in (b"s", b"cs") and arg and arg.lstrip(b"-").isdigit():
            key = (word, int(arg))
        elif word == b"v":
            hidden = on
        elif word in (b"caps", b"scaps"):
            caps = on
        elif word == b"sbasedon" and arg and arg.lstrip(b"-").isdigit():
            based = int(arg)
    out: dict[tuple[bytes, int], tuple[bool, bool]] = {}
    for key in defined:  # each chain walked once: what a style resolved to is kept
        chain: list[tuple[bytes, int]] = []
        at: tuple[bytes, int] | None = key
        seen: set[tuple[bytes, int]] = set()
        while at is not None and at in defined and at not in out and at not in seen:
            seen.add(at)
            chain.append(at)
            based = defined[at][2]
            at = (at[0], based) if based is not None else None
        inherited = out.get(at, (False, False)) if at is not None else (False, False)
        for link in reversed(chain):  # from the base up
            h, c, _ = defined[link]
            inherited = (inherited[0] if h is None else h, inherited[1] if c is None else c)
            out[link] = inherited
    return out


#: Control words that change what is hidden or in capitals (in the shown reading).
_STYLED = frozenset({b"v", b"caps", b"scaps", b"plain", b"pard", b"s", b"cs"})


def _shown_as(styles: dict[tuple[bytes, int], tuple[bool, bool]], hidden: bool | None,
              caps: bool | None, pstyle: int, cstyle: int | None) -> tuple[bool, bool]:
    """Whether a run is hidden and in capitals: as it sets, else as its character style
    sets, else as its paragraph style does."""
    para = styles.get((b"s", pstyle), (False, False))
    char = styles.get((b"cs", cstyle), para) if cstyle is not None else para
    return (char[0] or para[0] if hidden is None else hidden,
            char[1] or para[1] if caps is None else caps)


def rtf_text(data: bytes, ctx: ScanContext, shown_only: bool = False) -> bytes | None:
    """The text of an RTF document as `unrtf --text` shows it: paragraphs as lines, `\\'hh`
    and `\\uN` characters (as UTF-8), hidden destinations (font and colour tables, metadata,
    pictures, field codes, objects) left out. Base64 in paragraphs, one `\\par` a line,
    read as text showed `TVqQ...\\par` (round 9). `shown_only`: hidden text (`\\v`) left out
    too, as Word shows the document (round 13: base64 cut by hidden junk), and `\\caps` text
    in capitals, as Word and LibreOffice show and print it (round 18: base64's capitals
    written lower-case in `{\\caps ...}` groups), small capitals (`\\scaps`) too, and the
    hidden text and capitals a paragraph (`\\sN`) or character (`\\csN`) style of the
    stylesheet sets (`_stylesheet`), where the run sets none itself (round 20). None when it
    has no text."""
    styles = _stylesheet(data, ctx) if shown_only else {}
    out = bytearray()
    # (skipping, \uc, hidden, caps, paragraph style, character style) of the open groups;
    # hidden and caps as the run sets them (None: as its styles do)
    stack: list[tuple[bool, int, bool | None, bool | None, int, int | None]] = []
    skipping, uc, skip_next = False, 1, 0
    direct_hidden: bool | None = None
    direct_caps: bool | None = None
    pstyle, cstyle = 0, None
    hidden = caps = False
    first_in_group = False
    pos, n = 0, len(data)
    steps = 0
    while pos < n:
        steps += 1
        if not steps % 4096:
            ctx.check_time()
        m = _RTF_TOKEN.match(data, pos)
        if m is None:
            pos += 1
            continue
        pos = m.end()
        hexa, word, arg, symbol, brace, text = m.groups()
        if brace == b"{":
            stack.append((skipping, uc, direct_hidden, direct_caps, pstyle, cstyle))
            first_in_group = True
            continue
        if brace == b"}":
            skipping, uc, direct_hidden, direct_caps, pstyle, cstyle = (
                stack.pop() if stack else (False, 1, None, None, 0, None))
            hidden, caps = _shown_as(styles, direct_hidden, direct_caps, pstyle, cstyle)
            first_in_group = False
            continue
        starts = first_in_group
        first_in_group = False
        if symbol == b"*" and starts:
            skipping = True  # `{\\* ...}`: an optional destination a reader does not show
            continue
        if word is not None:
            if shown_only and word in _STYLED:
                if word == b"v":
                    direct_hidden = arg != b"0"
                elif word in (b"caps", b"scaps"):
                    direct_caps = arg != b"0"
                elif word == b"plain":
                    direct_hidden = direct_caps = cstyle = None
                elif word == b"pard":
                    pstyle = 0
                elif word == b"s" and arg:
                    pstyle = int(arg)
                elif word == b"cs" and arg:
                    cstyle = int(arg)
                hidden, caps = _shown_as(styles, direct_hidden, direct_caps, pstyle, cstyle)
            elif shown_only and word in _APART:
                skipping = True  # a list number's text, a header: not in the body's text
            elif word in _HIDDEN_DESTINATIONS:
                skipping = True
            elif word == b"bin" and arg:
                pos += max(0, int(arg))  # raw bytes
            elif word == b"uc" and arg:
                uc = max(0, int(arg))
            elif word == b"u" and arg and not skipping and not hidden:
                out += chr(int(arg) % 65536).encode("utf-8", "replace")
                skip_next = uc
            elif word in _BREAKS and not skipping and not (hidden and word in _INLINE):
                out += _BREAKS[word]
            continue
        if skipping or hidden:
            continue
        if skip_next:  # the fallback characters after a \\uN
            if hexa is not None or symbol is not None:
                skip_next -= 1
                continue
            if text is not None:
                cut = min(skip_next, len(text))
                skip_next -= cut
                text = text[cut:]
        if hexa is not None:
            out.append(int(hexa, 16))
        elif symbol is not None:
            out += _SYMBOLS.get(symbol, b"")
        elif text:
            out += text.upper() if caps else text
    return bytes(out) if out.strip() else None
