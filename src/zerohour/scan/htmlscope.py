"""`@scope` without a prelude: the page with the scoping root each such rule has named.

A `<style>` that holds `@scope { :scope { display: none } }` (or `@scope to (X) {...}`)
scopes its rules to the style element's parent, so junk in `<i><style>@scope{:scope{
display:none}}</style>junk</i>` shows nowhere in Chromium (attack round 42). The readers'
sheets are the page's, read apart from their place; this module gives each such parent a
mark no element of the page has and writes the rule as `@scope ([mark])`, which they read
(`textual._flat_rules`: an `@scope (X)` block's rules under X)."""

from __future__ import annotations

import re

from zerohour.scan.htmlshadow import open_elements

_STYLE = re.compile(rb"<style\b[^>]*+>(.*?)(?:</style|\Z)", re.I | re.S)
#: `@scope` whose block (or `to (...)` limit) follows at once: no root of its own
_PRELUDELESS = re.compile(rb"@scope(\s*+(?:/\*.*?\*/\s*+)*+)(?=\{|to\s*\()", re.I | re.S)
_MARKS = re.compile(rb"zh-scope(\d{1,9})", re.I)
#: styles past this many are left as they are
_MAX_STYLES = 64


def scoped_page(data: bytes) -> bytes | None:
    """The page with each prelude-less `@scope` named by a mark on its style's parent;
    None when it has none."""
    if b"@scope" not in data.lower():
        return None
    edits: list[tuple[int, int, bytes]] = []  # (start, end, replacement), in order
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
    if not edits:
        return None
    out: list[bytes] = []
    at = 0
    for start, end, text in sorted(edits):
        out += [data[at:start], text]
        at = end
    out.append(data[at:])
    return b"".join(out)
