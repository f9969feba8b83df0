"""Elements a browser hides by default, shown again by the page's own CSS (round 18).

A browser's own style sheet hides `<title>`, `<script>`, `<rp>`, `<datalist>`, a closed
`<dialog>` or `<details>`, `<noframes>`, elements with the `hidden` attribute...; a page's
rule that gives one of them a `display` (`body title{display:inline}`,
`[hidden]{display:inline}`, `script{display:block}`, `details::details-content{display:
contents}`) shows its text. Round 18 put base64 pieces in such elements and decoys in
`display:none` ones: Chromium showed the pieces whole, the readings that take those
elements for hidden showed only decoys.

When a style sheet names such an element (or `[hidden]`, or every element with `*`) in a
rule that sets `display` to anything but `none`, the page is written again with those
elements as custom elements (`<zh-title>`: inline, matched by no rule of the page) and the
`hidden` attribute renamed, and that page is one more HTML layer: its readings (what shows,
the layout) see the pieces. Over-reading is safe: the page's own readings stay.
"""

from __future__ import annotations

import html
import re

from zerohour.scan.textual import _css_text

#: Elements the browser's style sheet hides that a page's `display` can show (not
#: `<template>`, whose content is never rendered, nor `<style>`: written as text it would no
#: longer hide the decoys).
_DEFAULT_HIDDEN = (b"title", b"script", b"rp", b"datalist", b"dialog", b"details",
                   b"noframes", b"noembed", b"noscript", b"option", b"area", b"param")
_SHEET = re.compile(rb"<style\b[^>]*+(?:>(.*?)(?:</style|\Z)|\Z)", re.I | re.S)  # (1 or none)
#: A rule: its selector and declarations (one pass, each byte read once: no nesting).
_RULE = re.compile(rb"(?<![^{}])([^{}]*)\{([^{}]*)\}")
_SHOWS = re.compile(rb"(?<![\w-])(?:display\s*:\s*(?!none)[a-z]|content-visibility\s*:\s*"
                    rb"visible)", re.I)
_TAG_NAMES = re.compile(rb"(?<![\w-])(" + b"|".join(_DEFAULT_HIDDEN) + rb")(?![\w-])", re.I)
_HIDDEN_ATTRIBUTE = re.compile(rb"(<[A-Za-z][^<>]*?\s)hidden(?=[\s=/>])", re.I)  # (no `<`: one
# long tag of many `<a ` was read to its far `>` from each, quadratic)


def shown_page(data: bytes) -> bytes | None:
    """The page with the elements its CSS shows again as plain elements (see the module's
    docstring); None when no rule of the page shows one."""
    lower = data.lower()
    if b"display" not in lower and b"content-visibility" not in lower:
        return None
    named: set[bytes] = set()
    everything = attribute = False
    sheets = b"".join(_css_text(m.group(1)) + b"}" for m in _SHEET.finditer(data)
                      if m.group(1) is not None)
    for m in _RULE.finditer(sheets):
        if not _SHOWS.search(m.group(2)):
            continue
        selector = m.group(1)[-2048:].lower()  # (a selector's end: what a rule names)
        named.update(t.lower() for t in _TAG_NAMES.findall(selector))
        everything = everything or b"*" in selector
        attribute = attribute or b"hidden" in selector or b"details-content" in selector
    own = _shown_by_attribute(data, lower)  # (round 20: `style="display:inline"` too)
    named.update(t for t, _s, _e in own if t in _DEFAULT_HIDDEN)
    if not (named or everything or attribute or own):
        return None
    tags = set(_DEFAULT_HIDDEN) if everything else named
    if b"details-content" in lower:
        tags.add(b"details")
    page = data
    if any(t == b"style" or b"hidden" in _attr_names(data[s:e]) for t, s, e in own):
        page = _plain_in_place(page, own)  # (offsets into `data`: before the renames)
    if tags:
        pattern = re.compile(rb"<(/?)(" + b"|".join(sorted(tags)) + rb")(?![\w-])", re.I)
        page = pattern.sub(lambda m: b"<" + m.group(1) + b"zh-" + m.group(2), page)
    if attribute or everything:
        page = _HIDDEN_ATTRIBUTE.sub(rb"\1data-zh-hidden", page)
    return page if page != data else None


#: Conditional group rules: what they hold applies only when their condition holds (a
#: screen, a width, a feature, a container's size), to some elements only (`@scope (.a) to
#: (.b)`: not inside the limit; the readings take its rules for the whole page, round 20).
#: (`@starting-style` is not one: Chromium prints an element in its starting style.)
_CONDITIONAL = re.compile(rb"@(?:media|supports|container|scope)\b[^{};@]*+\{", re.I)  # (no `@`)
#: What in a conditional block may hide text (as `textual`'s readings take it).
_HIDES = re.compile(rb"display\s*:\s*none|visibility\s*:\s*(?:hidden|collapse)|(?:font-size|"
                    rb"opacity|width|height|max-width|max-height)\s*:\s*0(?![.\d]*[1-9])|"
                    rb"scale|clip|:\s*-\s*\d{3}|hidden", re.I)


def unconditional_page(data: bytes) -> bytes | None:
    """The page without the rules its style sheets hold under a condition (`@media`,
    `@supports`, `@container`) that may hide or move text (round 18: pieces hidden only
    under a false `@media (max-width: 1px)`, `@supports (display: no-such-value)`, a
    container's size, or `@media screen` (a printed page shows them), decoys hidden
    always: the readings, which take every condition for true, showed only decoys). The
    page's own readings stay (a condition may hold): this is one more. None when no
    conditional rule may hide text."""
    if b"@" not in data or not _CONDITIONAL.search(data):
        return None
    out = bytearray()
    at = 0
    for sheet in _SHEET.finditer(data):
        if sheet.group(1) is None:
            continue  # (an opening without its `>`)
        body_start, body_end = sheet.span(1)
        out += data[at:body_start]
        out += _without_conditions(data[body_start:body_end])
        at = body_end
    out += data[at:]
    page = bytes(out)
    return page if page != data else None


def block_end(sheet: bytes, i: int) -> int:
    """Where the CSS block whose `{` ends just before `i` ends (past its `}`), its nested
    rules with it; the sheet's end if it is never closed."""
    depth = 1
    while depth and i < len(sheet):
        j = min((k for k in (sheet.find(b"{", i), sheet.find(b"}", i)) if k >= 0), default=-1)
        if j < 0:
            return len(sheet)
        depth += 1 if sheet[j] == 0x7B else -1
        i = j + 1
    return i


def _without_conditions(sheet: bytes) -> bytes:
    out = bytearray()
    at = 0
    while True:  # (every block: one left as it is may be the one hiding the pieces)
        m = _CONDITIONAL.search(sheet, at)
        if m is None:
            break
        i = block_end(sheet, m.end())
        block = sheet[m.start() : i]
        out += sheet[at : m.start()]
        if not _HIDES.search(block, m.end() - m.start()):
            out += block  # (nothing in it hides text: kept)
        at = i
    out += sheet[at:]
    return bytes(out)


_STYLED_TAG = re.compile(rb"<([a-z][\w-]*)(\s[^>]*?\bstyle\s*=[^>]*)>", re.I)
_STYLE_VALUE = re.compile(rb"\bstyle\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+))", re.I)
_ATTR_NAME = re.compile(rb"\s([a-z][\w:-]*)", re.I)
_DEFAULT_HIDDEN_TAG = re.compile(rb"<(?:" + b"|".join((*_DEFAULT_HIDDEN, b"style")) + rb")\b")


def _attr_names(tag: bytes) -> set[bytes]:
    return {m.group(1).lower() for m in _ATTR_NAME.finditer(tag)}


def _shown_by_attribute(data: bytes, lower: bytes) -> list[tuple[bytes, int, int]]:
    """Elements a browser hides by default (or by their `hidden` attribute, or `<style>`)
    whose own `style` attribute gives them a display: (tag, start, end of the opening
    tag)."""
    if b"style" not in lower:
        return []
    # Only the opening tags of those elements or holding "hidden" are read (`_STYLED_TAG` on
    # every tag of a 74 KB newsletter cost 0.8 ms): found by a literal-first regex and `find`.
    starts = {m.start() for m in _DEFAULT_HIDDEN_TAG.finditer(lower)}
    at = lower.find(b"hidden")
    while at >= 0:
        starts.add(lower.rfind(b"<", 0, at))
        at = lower.find(b"hidden", at + 6)
    out = []
    inside = -1  # (the `>` of the tag read last: the openings before it are in that tag)
    for start in sorted(starts - {-1}):
        if start < inside:
            continue
        inside = lower.find(b">", start)
        if inside < 0:
            break  # (no tag ends after it: reading to the end for each was quadratic)
        m = _STYLED_TAG.match(data, start, inside + 1)
        if m is None:
            continue
        tag = m.group(1).lower()
        attrs = m.group(2)
        if tag not in _DEFAULT_HIDDEN and tag != b"style" and b"hidden" not in attrs.lower():
            continue
        value = _STYLE_VALUE.search(attrs)
        if value is None:
            continue
        css = _css_text(html.unescape(next(g for g in value.groups() if g is not None)
                                      .decode("latin-1")).encode("latin-1", "replace"))
        if _SHOWS.search(css) and (tag in _DEFAULT_HIDDEN or tag == b"style"
                                   or b"hidden" in _attr_names(attrs)):
            out.append((tag, m.start(), m.end()))
    return out


def _plain_in_place(data: bytes, own: list[tuple[bytes, int, int]]) -> bytes:
    """`data` with each `<style>` of `own` written as a custom element (its text shows; the
    page's other style sheets still apply) and each `hidden` attribute of `own` renamed."""
    out, at = [], 0
    for tag, start, end in sorted(own, key=lambda t: t[1]):
        if start < at:
            continue
        opening = data[start:end]
        if b"hidden" in _attr_names(opening):
            opening = _HIDDEN_ATTRIBUTE.sub(rb"\1data-zh-hidden", opening)
        if tag == b"style":
            close = data.lower().find(b"</style", end)
            close = len(data) if close < 0 else close
            out += [data[at:start], b"<zh-style" + opening[6:], data[end:close], b"</zh-style"]
            at = close + len(b"</style") if close < len(data) else close
        else:
            out += [data[at:start], opening]
            at = end
    out.append(data[at:])
    return b"".join(out)
