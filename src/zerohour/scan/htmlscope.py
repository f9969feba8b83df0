"""`@scope` without a prelude and `dir=auto`: the page with what they depend on written out.

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
from zerohour.scan.textual import _ELEMENT, _css_text, _tree, _unescape, css_readable

_STYLE = re.compile(rb"<style\b[^>]*+>(.*?)(?:</style|\Z)", re.I | re.S)
#: `@scope` whose block (or `to (...)` limit) follows at once: no root of its own
_PRELUDELESS = re.compile(rb"@scope(\s*+(?:/\*.*?\*/\s*+)*+)(?=\{|to\s*\()", re.I | re.S)
_MARKS = re.compile(rb"zh-scope(\d{1,9})", re.I)
#: styles (and `dir=auto` elements) past this many are left as they are
_MAX_STYLES = 64
_MAX_AUTO = 256
#: how far back a style's parent is looked for by a walk (`open_elements`), and how many
#: times the page's nesting may be read for one farther back (each reads the whole page)
_WINDOW = 16384
_MAX_TREES = 4


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
            if len(edits) >= _MAX_AUTO:
                break
            gt = data.find(b">", m.end())
            edits.append((m.start(2), m.end(), _direction(data, gt + 1) if gt >= 0 else b"ltr"))
    if b"@scope" not in lower and not (b"\\" in data
                                       and b"@scope" in css_readable(data).lower()):
        return _edited(data, edits)
    taken = [int(m.group(1)) for m in _MARKS.finditer(data)]
    n = max(taken, default=0)
    trees = _MAX_TREES
    scoped = 0
    for style in _STYLE.finditer(data):
        if scoped >= _MAX_STYLES:
            break
        body = style.group(1)
        if b"\\" in body or b"/*" in body:  # (`@sc\6f pe`: the sheet as CSS reads it)
            body = _css_text(body)
        rules = list(_PRELUDELESS.finditer(body)) if b"@scope" in body.lower() else []
        if not rules:
            continue
        parents = open_elements(data, style.start())
        if not parents and style.start() > _WINDOW and trees > 0:
            # (its parent opened more than 16 KB before it: the page's nesting says which)
            trees -= 1
            parent_at = _tree(data).parents.get(style.start(), -1)
            opened = _ELEMENT.match(data, parent_at) if parent_at >= 0 else None
            if opened is not None and opened.group(2) is not None:
                parents = [(opened.group(2).lower(), opened.end())]
        if not parents:
            continue
        parent = parents[-1][1]
        scoped += 1
        n += 1
        mark = b"zh-scope%d" % n
        edits.append((parent - 1, parent - 1, b" " + mark))
        edits.append((style.start(1), style.end(1), _PRELUDELESS.sub(
            lambda m, mark=mark: m.group() + b"([" + mark + b"]) ", body)))
    return _edited(data, edits)


def _edited(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes | None:
    """`data` with `edits` (start, end, replacement) made, one inside another's span left
    out (a `dir=auto` in a style's text that is written anew); None when there are none."""
    if not edits:
        return None
    out: list[bytes] = []
    at = 0
    for start, end, text in sorted(edits):
        if start < at:
            continue
        out += [data[at:start], text]
        at = end
    out.append(data[at:])
    return b"".join(out)
