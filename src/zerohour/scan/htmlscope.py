"""`@scope` without a prelude: the page with the scoping root each such rule has named.

A `<style>` that holds `@scope { :scope { display: none } }` (or `@scope to (X) {...}`)
scopes its rules to the style element's parent, so junk in `<i><style>@scope{:scope{
display:none}}</style>junk</i>` shows nowhere in Chromium (attack round 42). The readers'
sheets are the page's, read apart from their place; this module gives each such parent a
mark no element of the page has and writes the rule as `@scope ([mark])`, which they read
(`textual._flat_rules`: an `@scope (X)` block's rules under X).

Likewise `dir=auto`, whose direction the element's first strong letter decides, when a sheet
reads directions (`:dir()`, which `textual._lang_dir` reads from `dir` attributes): written as
the `dir=rtl` or `dir=ltr` it is (junk in `<i dir=auto>` that starts with a Hebrew letter,
hidden by `i:not(:dir(ltr))`, attack round 42)."""

from __future__ import annotations

import re
import unicodedata

from zerohour.scan.htmlshadow import open_elements
from zerohour.scan.textual import _unescape, css_readable

_STYLE = re.compile(rb"<style\b[^>]*+>(.*?)(?:</style|\Z)", re.I | re.S)
#: `@scope` whose block (or `to (...)` limit) follows at once: no root of its own
_PRELUDELESS = re.compile(rb"@scope(\s*+(?:/\*.*?\*/\s*+)*+)(?=\{|to\s*\()", re.I | re.S)
_MARKS = re.compile(rb"zh-scope(\d{1,9})", re.I)
#: styles past this many are left as they are
_MAX_STYLES = 64


_AUTO_DIR = re.compile(rb"""(<[a-z][^<>]*?\sdir\s*=\s*)(["']?)auto\2(?=[\s/>])""", re.I)
_TAG = re.compile(rb"<[^>]*>?")
#: the text after a `dir=auto` tag its first strong letter is looked for in
_STRONG_WINDOW = 1024


def _direction(data: bytes, at: int) -> bytes:
    """`rtl` or `ltr`: the direction of the first strong letter of the text from `at`."""
    text = _TAG.sub(b"", data[at : at + _STRONG_WINDOW])
    for ch in (_unescape(text) if b"&" in text else text).decode("utf-8", "replace"):
        kind = unicodedata.bidirectional(ch)
        if kind in ("R", "AL"):
            return b"rtl"
        if kind == "L":
            return b"ltr"
    return b"ltr"


def scoped_page(data: bytes) -> bytes | None:
    """The page with each prelude-less `@scope` named by a mark on its style's parent, and
    each `dir=auto` written as its direction when a sheet reads directions; None when it
    has neither."""
    lower = data.lower()
    edits: list[tuple[int, int, bytes]] = []  # (start, end, replacement), in order
    if b"auto" in lower and b"dir" in lower and b":dir(" in css_readable(data).lower():
        for m in _AUTO_DIR.finditer(data):
            if len(edits) >= 4 * _MAX_STYLES:
                break
            gt = data.find(b">", m.end())
            edits.append((m.start(2), m.end(), _direction(data, gt + 1) if gt >= 0 else b"ltr"))
    if b"@scope" not in lower:
        return _edited(data, edits)
    taken = [int(m.group(1)) for m in _MARKS.finditer(data)]
    n = max(taken, default=0)
    for style in _STYLE.finditer(data):
        if len(edits) >= 2 * _MAX_STYLES:
            break
        body = style.group(1)
        if b"@scope" not in body.lower():
            continue
        rules = list(_PRELUDELESS.finditer(data, style.start(1), style.end(1)))
        parents = open_elements(data, style.start()) if rules else []
        if not parents:
            continue  # (none, or its parent opened more than 16 KB before it)
        parent = parents[-1][1]
        n += 1
        mark = b"zh-scope%d" % n
        edits.append((parent - 1, parent - 1, b" " + mark))
        edits.extend((m.end(), m.end(), b"([" + mark + b"]) ") for m in rules)
    return _edited(data, edits)


def _edited(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes | None:
    """`data` with `edits` (start, end, replacement) made; None when there are none."""
    if not edits:
        return None
    out: list[bytes] = []
    at = 0
    for start, end, text in sorted(edits):
        out += [data[at:start], text]
        at = end
    out.append(data[at:])
    return b"".join(out)
