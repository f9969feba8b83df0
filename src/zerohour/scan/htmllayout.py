"""The page as a browser lays it out: text that CSS makes or moves, in the order it is shown.

Round 16: base64 pieces that only the layout puts in order, or that only CSS writes: flex
`order` and `*-reverse` directions, grid placement, absolutely positioned boxes, right floats,
`<bdo dir=rtl>` and `unicode-bidi: bidi-override`; `::before` / `::after` / `::marker` content
(strings and `attr()`), string list markers; an image's `alt` text (mail clients show it when
they block images) and an input field's value. Printed by Chromium and read by pdftotext, the
pieces are the file. One more HTML page for the HTML readers, made once per page (never of a
page this module made: the caller keeps those).

A small tree of our own (not an HTML5 parser): a closing tag closes what was opened since its
own opening tag, as `textual` reads pages. Styles are the element's own and those of the
page's rules whose subject matches it (`textual`'s selector matching), the later winning;
lengths are compared in rough pixels. Over-reading is safe: the page's own order is read too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from zerohour.errors import ScanLimitExceeded
from zerohour.scan.gates import Gate
from zerohour.scan.limits import MAX_SCAN_TIME
from zerohour.scan.textual import (
    _ATTRS,
    _ELEMENT,
    _RAW_TEXT,
    _TOO_MANY_MATCHES,
    _VOID,
    _any_element,
    _Compound,
    _compound,
    _css_text,
    _matches,
    _selector_text,
    _selectors,
    _sheet_rules,
    _unescape,
)

#: CSS that moves or makes text (then the page is laid out as a tree; otherwise only the
#: `alt` and `value` texts are put in, by one substitution: most mail has images).
_LAYOUT_CSS = Gate(rb"[^\w-]order\s*:|grid-(?:row|column|area)\s*:|position\s*:\s*(?:absolute|"
                   rb"fixed)|-reverse|float\s*:\s*right|<bdo|bidi-override|[^\w-]content\s*:|"
                   rb"list-style(?:-type)?\s*:\s*[\"']")
_ALT_OR_VALUE_GATE = Gate(rb"<(?:img|input)[\s/][^>]*(?:alt|value)\s*=")
_ALT_OR_VALUE = re.compile(rb"<(img|input)\b([^>]*)>", re.I)
_PROPS = frozenset({b"order", b"grid-row", b"grid-column", b"grid-area", b"position", b"top",
                    b"left", b"display", b"flex-direction", b"flex-flow", b"float",
                    b"direction", b"unicode-bidi", b"list-style-type", b"list-style",
                    b"content"})
_PSEUDO_ELEMENT = re.compile(rb"::?(before|after|marker)\s*$", re.I)
_DECL = re.compile(rb"([\w-]+)\s*:\s*([^;]*)")
_CONTENT_TOKEN = re.compile(rb"\"((?:[^\"\\]|\\.)*)\"|'((?:[^'\\]|\\.)*)'|attr\(\s*([\w:-]+)"
                            rb"\s*\)", re.I | re.S)
_LENGTH = re.compile(rb"(-?\d+(?:\.\d+)?)\s*([a-z%]*)", re.I)
_UNITS = {b"": 1.0, b"px": 1.0, b"em": 16.0, b"rem": 16.0, b"ch": 8.0, b"ex": 8.0,
          b"pt": 4 / 3, b"pc": 16.0, b"in": 96.0, b"cm": 37.8, b"mm": 3.78, b"%": 10.0,
          b"vw": 10.0, b"vh": 10.0}
_NO_VALUE_INPUTS = frozenset({b"hidden", b"password", b"checkbox", b"radio", b"file",
                              b"image", b"range", b"color"})
_MAX_DEPTH = 256
_MAX_TRIES = 1_000_000  # rule-against-element tries per page


@dataclass(slots=True)
class _El:
    tag: bytes
    attrs: bytes
    open_tag: bytes
    close_tag: bytes = b""
    kids: list[_El | bytes] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Rule:
    subject: _Compound
    pseudo: bytes  # b"", b"before", b"after", b"marker"
    decls: dict[bytes, bytes]


def _declarations(text: bytes) -> dict[bytes, bytes]:
    return {m.group(1).lower(): m.group(2).strip() for m in _DECL.finditer(text)
            if m.group(1).lower() in _PROPS}


def _attr(attrs: bytes, name: bytes) -> bytes | None:
    for m in _ATTRS.finditer(attrs):
        if m.group(1).lower() == name:
            value = m.group(2) or m.group(3) or m.group(4) or b""
            return _unescape(value) if b"&" in value else value
    return None


def _parse(data: bytes, check: Callable[[], None] | None) -> _El:
    root = _El(b"", b"", b"")
    stack = [root]
    at = 0
    for n, m in enumerate(_ELEMENT.finditer(data), 1):
        if check is not None and not n % 4096:
            check()
        if m.start() < at:
            continue  # inside a raw-text element's content
        if m.start() > at:
            stack[-1].kids.append(data[at : m.start()])
        at = m.end()
        if m.group(2) is None:
            continue  # a comment: not shown
        tag = m.group(2).lower()
        if m.group(1):
            for depth in range(len(stack) - 1, 0, -1):
                if stack[depth].tag == tag:
                    stack[depth].close_tag = m.group()
                    del stack[depth:]
                    break
            continue
        el = _El(tag, m.group(3), m.group())
        stack[-1].kids.append(el)
        if tag in _RAW_TEXT:
            close = re.compile(rb"</" + re.escape(tag) + rb"\b[^>]*>", re.I).search(data, at)
            end = len(data) if close is None else close.start()
            el.kids.append(data[at:end])
            el.close_tag = b"" if close is None else close.group()
            at = end if close is None else close.end()
        elif tag not in _VOID and not m.group(3).rstrip().endswith(b"/") and (
                len(stack) < _MAX_DEPTH):
            stack.append(el)
    if at < len(data):
        stack[-1].kids.append(data[at:])
    return root


def _rules(data: bytes) -> list[_Rule]:
    out: list[_Rule] = []
    for rule in _sheet_rules(data):
        decls = _declarations(rule.declarations)
        if not decls:
            continue
        for listed in _selectors(_selector_text(rule.selectors)):
            pseudo = _PSEUDO_ELEMENT.search(listed)
            selector = listed[: pseudo.start()] if pseudo else listed
            subject = _compound(selector) or _any_element(selector or b"*")
            if subject is not None and not subject.children:
                out.append(_Rule(subject, pseudo.group(1).lower() if pseudo else b"", decls))
    return out


class _Layout:
    def __init__(self, rules: list[_Rule], check: Callable[[], None] | None) -> None:
        self.rules = rules
        # rules by what their subject needs (an id, a class, else a tag, else nothing), in
        # order: an element tries only the rules that could match it
        self.index: dict[bytes, list[int]] = {}
        for i, rule in enumerate(rules):
            c = rule.subject
            key = (b"#" + min(c.ids).lower() if c.ids else b"." + min(c.classes).lower()
                   if c.classes else c.tag or b"*")
            self.index.setdefault(key, []).append(i)
        self.check = check
        self.tries = 0
        self.seen = 0
        # (elements alike style alike: a page of 40k equal `<p>`s matches the rules once)
        self.cache: dict[tuple[bytes, bytes], dict[bytes, dict[bytes, bytes]]] = {}

    def styles(self, el: _El) -> dict[bytes, dict[bytes, bytes]]:
        """The element's properties of interest, per pseudo-element (b"": its own)."""
        known = self.cache.get((el.tag, el.attrs))
        if known is not None:
            return known
        out: dict[bytes, dict[bytes, bytes]] = {}
        self.cache[el.tag, el.attrs] = out
        keys = [b"*", el.tag]
        if b"id" in el.attrs.lower() or b"class" in el.attrs.lower():
            keys.append(b"#" + (_attr(el.attrs, b"id") or b"").strip().lower())
            keys += [b"." + c for c in (_attr(el.attrs, b"class") or b"").lower().split()]
        tried = sorted({i for key in keys for i in self.index.get(key, ())})
        self.tries += len(tried)
        if self.tries > _MAX_TRIES:
            raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_MANY_MATCHES)
        for i in tried:
            rule = self.rules[i]
            if _matches(rule.subject, el.tag, el.attrs):
                out.setdefault(rule.pseudo, {}).update(rule.decls)
        if b"style" in el.attrs.lower():
            style = _attr(el.attrs, b"style")
            if style:
                out.setdefault(b"", {}).update(_declarations(_css_text(style)))
        return out

    def lay_out(self, el: _El, inherited: dict[bytes, bytes]) -> None:
        self.seen += 1
        if self.check is not None and not self.seen % 4096:
            self.check()
        styles = self.styles(el) if el.tag else {}
        own = styles.get(b"", {})
        here = {**inherited, **{k: v for k, v in own.items()
                                if k in (b"list-style-type", b"list-style", b"direction")}}
        for kid in el.kids:
            if isinstance(kid, _El) and kid.tag not in _RAW_TEXT:
                self.lay_out(kid, here)
        kids = el.kids
        if el.tag == b"img":
            alt = _attr(el.attrs, b"alt")
            if alt:
                kids.append(alt)
        elif el.tag == b"input":
            kind = (_attr(el.attrs, b"type") or b"text").lower()
            value = _attr(el.attrs, b"value")
            if value and kind not in _NO_VALUE_INPUTS:
                kids.append(value)
        before = self._content(styles.get(b"before"), el)
        after = self._content(styles.get(b"after"), el)
        marker = self._content(styles.get(b"marker"), el) if el.tag == b"li" else b""
        if el.tag == b"li" and not marker:
            marker = _marker(here)
        if before or marker:
            kids.insert(0, marker + before)
        if after:
            kids.append(after)
        el.kids = self._ordered(kids, own)
        if (el.tag == b"bdo" and (_attr(el.attrs, b"dir") or b"").lower() == b"rtl") or (
                own.get(b"unicode-bidi", b"").lower().startswith(b"bidi-override")
                and here.get(b"direction", b"").lower() == b"rtl"):
            el.kids = [_text(el)[::-1]]

    def _content(self, decls: dict[bytes, bytes] | None, el: _El) -> bytes:
        if not decls or b"content" not in decls:
            return b""
        out = []
        for m in _CONTENT_TOKEN.finditer(decls[b"content"]):
            if m.group(3) is not None:
                out.append(_attr(el.attrs, m.group(3).lower()) or b"")
            else:
                out.append(_css_text(m.group(1) if m.group(1) is not None else m.group(2)))
        return b"".join(out)

    def _ordered(self, kids: list[_El | bytes], own: dict[bytes, bytes]) -> list[_El | bytes]:
        display = own.get(b"display", b"").lower()
        elements = [k for k in kids if isinstance(k, _El)]
        if not elements:
            return kids
        kid_styles = {id(k): self.styles(k).get(b"", {}) for k in elements}  # (by element)
        if b"flex" in display:
            flow = (own.get(b"flex-direction", b"") + b" " + own.get(b"flex-flow", b"")).lower()
            kids = sorted(kids, key=lambda k: _number(
                kid_styles.get(id(k), {}).get(b"order")) if isinstance(k, _El) else 0.0)
            if b"reverse" in flow:
                kids = kids[::-1]
        elif b"grid" in display:
            kids = sorted(kids, key=lambda k: _grid_place(kid_styles.get(id(k), {}))
                          if isinstance(k, _El) else (0.0, 0.0))
        # boxes taken out of the flow, read top to bottom, left to right
        placed = [k for k in kids if isinstance(k, _El) and kid_styles.get(id(k), {}).get(
            b"position", b"").lower() in (b"absolute", b"fixed")]
        if placed:
            kids = [k for k in kids if not (isinstance(k, _El) and k in placed)] + sorted(
                placed, key=lambda k: (_number(kid_styles[id(k)].get(b"top")),
                                       _number(kid_styles[id(k)].get(b"left"))))
        return _floats_right(kids, kid_styles)


def _floats_right(kids: list[_El | bytes], kid_styles: dict[int, dict[bytes, bytes]]
                  ) -> list[_El | bytes]:
    """A run of right floats shows right to left: the first one rightmost."""
    out: list[_El | bytes] = []
    run: list[_El | bytes] = []
    for kid in kids:
        if isinstance(kid, _El) and kid_styles.get(id(kid), {}).get(
                b"float", b"").lower() == b"right":
            run.append(kid)
        elif isinstance(kid, bytes) and not kid.strip() and run:
            continue
        else:
            out += run[::-1]
            run = []
            out.append(kid)
    return out + run[::-1]


def _marker(styles: dict[bytes, bytes]) -> bytes:
    for prop in (b"list-style-type", b"list-style"):
        m = _CONTENT_TOKEN.search(styles.get(prop, b""))
        if m is not None and m.group(3) is None:
            return _css_text(m.group(1) if m.group(1) is not None else m.group(2))
    return b""


def _number(value: bytes | None) -> float:
    if not value:
        return 0.0
    m = _LENGTH.match(value.strip())
    if m is None:
        return 0.0
    return float(m.group(1)) * _UNITS.get(m.group(2).lower(), 1.0)


def _grid_place(styles: dict[bytes, bytes]) -> tuple[float, float]:
    area = styles.get(b"grid-area", b"").split(b"/")
    row = styles.get(b"grid-row", area[0] if area[0].strip() else b"").split(b"/")[0]
    col = styles.get(b"grid-column", area[1] if len(area) > 1 else b"").split(b"/")[0]
    inf = float("inf")
    return (_number(row) if row.strip() else inf, _number(col) if col.strip() else inf)


def _text(el: _El) -> bytes:
    out: list[bytes] = []
    stack: list[_El | bytes] = [el]
    while stack:
        node = stack.pop()
        if isinstance(node, bytes):
            out.append(node)
        elif node.tag not in _RAW_TEXT:
            stack.extend(reversed(node.kids))
    return b"".join(out)


def _serialise(el: _El) -> bytes:
    out: list[bytes] = []
    stack: list[_El | bytes] = [el]
    while stack:
        node = stack.pop()
        if isinstance(node, bytes):
            out.append(node)
            continue
        out.append(node.open_tag)
        stack.append(node.close_tag)
        stack.extend(reversed(node.kids))
    return b"".join(out)


def _shown_value(m: re.Match[bytes]) -> bytes:
    tag, attrs = m.group(1).lower(), m.group(2)
    if tag == b"img":
        return m.group() + (_attr(attrs, b"alt") or b"")
    kind = (_attr(attrs, b"type") or b"text").lower()
    return m.group() + (b"" if kind in _NO_VALUE_INPUTS else _attr(attrs, b"value") or b"")


def laid_out(data: bytes, check: Callable[[], None] | None = None) -> bytes | None:
    """The page with CSS layout and generated text applied; None when nothing applies."""
    if not _LAYOUT_CSS(data):
        if not _ALT_OR_VALUE_GATE(data):
            return None
        page = _ALT_OR_VALUE.sub(_shown_value, data)
        return page if page != data else None
    lower = data.lower()
    rules = _rules(data) if b"<style" in lower or b"text/css" in lower else []
    root = _parse(data, check)
    _Layout(rules, check).lay_out(root, {})
    page = _serialise(root)
    return page if page != data else None
