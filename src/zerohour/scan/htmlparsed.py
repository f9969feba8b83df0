"""The text a reader sees of a page as a conforming HTML parser builds it (lexbor, through
selectolax), under the page's hiding rules with every selector matched whole by lexbor's
selector engine on that tree.

Why a second reading: `textual.html_visible` models the parser by hand (implied end tags, the
depth bound, some of the table and formatting rules) and checks a selector's context on that
model. Where the model and the parser part, or where a selector asks what the hand reader
cannot answer, a rule is read on one side, and a hostile page picks the other (attack round
38, 15 shapes delivered):

- the adoption agency opens a formatting element again (`<p><b class=x></p>junk`: the junk
  is in a copy of `b.x`, and `.x .j{display:none}` hides it);
- table content is fostered out before its table, and `<tbody>` is put into a table
  (`table > tr` never holds);
- `<svg><font color>` leaves the image; `<span class=j/>` is no empty element;
- `:has()`, `:empty`, `:not(div *)`.

Here the parser's own tree decides, so none of these is a guess. The hand readings stay:
they model Chromium's depth bound and feed the layout readings, and this one is a layer
beside them (a decoy that fools one reading leaves the others whole). lexbor is a
well-kept C parser of the WHATWG algorithm: writing the adoption agency and foster
parenting again by hand is what the hand model already does partly, and wrongly.

lexbor's selector matcher backtracks without memory: `.z div div div span` costs each span
every choice of three `<div>` ancestors (100 nested divs: 6 s a selector), and nested
`:has()` a power of the tree's depth. So each selector's cost is estimated from the tree's
shape first (`_Shape`); one past the budget is matched here instead, compound by compound
(lexbor matches each alone), the combinators joined in one pass over the elements per step
(`_linear_match`): slower per element, linear in all.

Flex and grid items show in the order of their `order` (a flex row reversed by
`flex-direction`): base64 cut into items written shuffled reads whole only so. The hand
layout reading (`htmllayout`) counts `.f > :nth-child(3){order:1}` on its own model of the
parser and weighs `:has()` by guess (round 38: `order_foster_nth`, a `.f:has(.zz) .s3
{order:-3}` decoy); here those rules are matched on lexbor's tree too (`_Layout`), and a
container whose items move is read as its items' text in their order. Only on a page that
sets `order` or a reversed direction: no other page pays for it.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

from zerohour.errors import ScanLimitExceeded
from zerohour.scan import textual
from zerohour.scan.encodings import is_utf8
from zerohour.scan.gates import Gate
from zerohour.scan.htmllayout import _DECL, _IMPORTANT, _VAR, order_value
from zerohour.scan.limits import MAX_SCAN_TIME

#: Selectors matched against the tree, past which the page is a limit finding (each is a
#: walk of the tree in C; a sheet of 60,000 hiding rules is an attack, round 21).
_MAX_SELECTORS = 200_000
#: Elements matched by the hiding and showing selectors in all, past which the page is a
#: limit finding (each is remembered in Python).
_MAX_PAIRS = 2_000_000
#: Elements walked, past which the page is a limit finding.
_MAX_ELEMENTS = 1 << 20

#: Pseudo-classes Chromium reads and lexbor does not: a selector with one is left out (its
#: rule stands for its other selectors); any other selector lexbor cannot read is invalid,
#: and drops its whole rule, as in a browser.
_UNREAD_PSEUDO = re.compile(
    rb":(?:lang|dir|state|host|host-context|heading|slotted|part)\(|:(?:open|closed|defined|"
    rb"scope|host|"
    rb"modal|fullscreen|popover-open|autofill|-webkit-autofill|user-valid|user-invalid|valid|"
    rb"invalid|picture-in-picture|playing|paused|seeking|buffering|stalled|muted|"
    rb"volume-locked|target|target-within|target-current|focus-visible|focus-within|current|"
    rb"past|future|default|in-range|out-of-range|indeterminate|visited|xr-overlay|heading|"
    rb"has-slotted|active-view-transition|-webkit-[\w-]+|-moz-[\w-]+)(?![\w-])", re.I)
_ANY = re.compile(rb":(?:-webkit-any|-moz-any|matches)\(", re.I)
#: Where an element's text never shows (`textual._NEVER_RENDERED` but the openable ones,
#: decided by their `open`): skipped whole.
_SHOWS_ONLY = {"svg": frozenset({"text", "foreignobject"}),
               "math": frozenset({"mi", "mn", "mo", "ms", "mtext"})}
#: SVG's and MathML's elements that draw no text of theirs even inside a `<text>` or an
#: `<mtext>` (Chromium reads no `<tref>`; an `<mglyph>` is an image): attack round 43.
_NEVER_DRAWN_FOREIGN = frozenset({"tref", "mglyph", "malignmark"})
_CHARS_PAST_LATIN1 = re.compile("[^\x00-\xff]+")


def parsed_visible(data: bytes, check_time: Callable[[], None] | None = None) -> bytes | None:
    """The page's visible text as a browser shows it (text of hidden elements left out), when
    the page has style sheets that hide or show, or inline SVG or MathML (where the parser
    may move content out); None otherwise. The bytes of the page's text are its own (read as
    UTF-8 when they are, else as Latin-1, written back so); characters the page writes by
    reference past U+00FF are UTF-8.
    """
    readings = parsed_readings(data, check_time)
    return None if readings is None else readings[0]


def parsed_readings(data: bytes, check_time: Callable[[], None] | None = None
                    ) -> tuple[bytes, bytes | None] | None:
    """`parsed_visible`'s text, and the same with a line break before each block when the
    text shows a run of base64 letters (text before a block glues to it in the first, not on
    the screen: session 26)."""
    token = _UTF8.set(is_utf8(data))
    page_vars = textual.PAGE_VARS.set(textual.page_vars(data))
    try:
        return _readings(data, check_time)
    finally:
        textual.PAGE_VARS.reset(page_vars)
        _UTF8.reset(token)


#: Whether the page being read is UTF-8 (else Latin-1): a class `jé` written in UTF-8 read
#: as Latin-1 was `jÃ©`, and lexbor reads no selector with a `©` in it (attack round 40).
_UTF8: ContextVar[bool] = ContextVar("parsed_utf8", default=False)


def _readings(data: bytes, check_time: Callable[[], None] | None
              ) -> tuple[bytes, bytes | None] | None:
    lower = data.lower()
    foreign = b"<svg" in lower or b"<math" in lower
    sheets = b"<style" in lower or b"text/css" in lower
    styled = _ORDERS(data) and _STYLED_ORDER(data)  # (a style attribute that moves items)
    inline = _INLINE_HIDING(data)
    if not foreign and not sheets and not styled and not inline:
        return None
    rules: list[textual._Rule] | None = None
    ordered = styled  # (items that may move: `_Layout`; "Your order: 12" is text)
    if not ordered and sheets and _ORDERS(data):
        rules = textual._sheet_rules(data)
        ordered = any(_ORDER_DECLARATION.search(r.declarations) for r in rules)
    if not foreign and not ordered and not inline and not (sheets and any(
            textual._css_kinds(r.declarations)
            for r in (textual._sheet_rules(data) if rules is None else rules))):
        return None  # (nothing that hides or shows: `html_rendered` reads it)
    most_open = -1  # (known once counted: `_Shape` counts it when a selector needs it)
    tags = data.count(b"<")
    if tags * tags // 2 > _PARSE_STEPS:  # (fewer tags cost little however they nest)
        cost, most_open = _parse_cost(data)
        if cost > _PARSE_STEPS:
            raise ScanLimitExceeded(MAX_SCAN_TIME, "a page nested deeper than the parser "
                                    "reads in time")
    tree = LexborHTMLParser(data.decode("utf-8" if _UTF8.get() else "latin-1"))
    root = tree.root
    if root is None:
        return None
    layout = _Layout() if ordered else None
    matched = _matched_rules(data, tree, most_open, check_time, layout)
    text = _shown_text(tree, matched, check_time, layout)
    blocks = None
    if _BASE64_RUN.search(text):
        for node in tree.css(_BLOCKS):
            node.insert_before("\n")
        blocks = _bytes(root.text(deep=True))
    return _bytes(text), blocks


_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{16}")
#: Elements a browser shows as blocks by default (`textual`'s block-boundary list).
_BLOCKS = ("p, div, li, tr, td, th, h1, h2, h3, h4, h5, h6, table, tbody, section, article, "
           "blockquote, pre, ul, ol, dl, dt, dd, hr, header, footer, nav, form, fieldset, "
           "address, figure, main, aside, center, br")


#: What the parser may spend on a page (`_parse_cost`), past which it is a limit finding:
#: lexbor walks its stack of open elements for a scope at many start and end tags, and does
#: not flatten a deep tree as Chromium does (past 512): 20,000 nested `<dl><dd><dt>` cost
#: it 7 s, `<ul><li>` 2.9 s, `<b><b><b></p>` 4.1 s; 50,000,000 steps is about 0.2 s.
_PARSE_STEPS = 50_000_000
#: Elements a start tag of the same name closes (an over-estimate of the open elements is
#: enough; these keep sloppy pages of unclosed cells and paragraphs flat).
_SELF_CLOSING = frozenset((b"p", b"li", b"td", b"th", b"tr", b"option", b"dd", b"dt"))
#: ...when only these stand above it (a list, a table, a `<div>` between keeps it open).
_CLOSED_OVER = _SELF_CLOSING | frozenset((
    b"a", b"abbr", b"b", b"bdi", b"bdo", b"big", b"cite", b"code", b"data", b"dfn", b"em",
    b"font", b"i", b"kbd", b"label", b"mark", b"q", b"s", b"samp", b"small", b"span",
    b"strike", b"strong", b"sub", b"sup", b"time", b"tt", b"u", b"var"))


def _parse_cost(data: bytes) -> tuple[int, int]:
    """An over-estimate of the parser's walks (no implied end tags but a tag closing an open
    one of its own name, `_SELF_CLOSING`), and of the tree's depth: an end tag and a start
    tag that looks for an element in scope (`_WALKS`) walk the open elements; a formatting
    element's start tag the list of formatting elements (of one tag and attributes, at most
    3 count: the parser keeps no more); another start tag costs one. (200,000 unclosed
    `<span>`s parse in 0.13 s, 100,000 `<span>x</b>` in 47 s.)"""
    stack: list[bytes] = []
    counts: dict[bytes, int] = {}
    formatting: dict[bytes, int] = {}  # open formatting elements, by their whole tag
    listed = 0  # (the list's length: the sum of min(count, 3))
    cost = most = 0
    if b"<!--" in data or textual._RAW_HINT.search(data):
        data = textual._NOT_TAGS.sub(b"", data)
    for m in _TAG_WITH_ATTRIBUTES.finditer(data.lower()):
        close, name = m.group(1), m.group(2)
        if not close and name in _SELF_CLOSING and counts.get(name):
            at = len(stack) - 1
            while stack[at] != name and stack[at] in _CLOSED_OVER:
                at -= 1
            if stack[at] == name:  # (only inline content and such parts above it)
                for top in stack[at:]:
                    counts[top] -= 1
                del stack[at:]
        if close:
            cost += len(stack)
            if counts.get(name):
                while (top := stack.pop()) != name:
                    counts[top] -= 1
                counts[name] -= 1
        elif name not in textual._VOID:
            if name in _FORMATTING:
                key = m.group()
                seen = formatting.get(key, 0)
                formatting[key] = seen + 1
                listed += seen < 3
                cost += listed
            elif name in _WALKS:
                cost += len(stack)
            else:
                cost += 1
            stack.append(name)
            counts[name] = counts.get(name, 0) + 1
        most = max(most, len(stack))
    return cost, most


_TAG_WITH_ATTRIBUTES = re.compile(rb"<(/?)([a-z][^\s/>]*+)[^>]*+")
_FORMATTING = frozenset((b"a", b"b", b"big", b"code", b"em", b"font", b"i", b"nobr", b"s",
                         b"small", b"strike", b"strong", b"tt", b"u"))
#: Start tags that look for an element in scope down the open elements (a `<p>` to close,
#: a list item, a cell, a form, a heading...).
_WALKS = frozenset((
    b"address", b"article", b"aside", b"blockquote", b"center", b"details", b"dialog", b"dir",
    b"div", b"dl", b"fieldset", b"figcaption", b"figure", b"footer", b"header", b"hgroup",
    b"main", b"menu", b"nav", b"ol", b"p", b"search", b"section", b"summary", b"ul", b"h1",
    b"h2", b"h3", b"h4", b"h5", b"h6", b"pre", b"listing", b"form", b"plaintext", b"xmp",
    b"hr", b"li", b"dd", b"dt", b"table", b"button", b"td", b"th", b"tr", b"tbody", b"thead",
    b"tfoot", b"caption", b"col", b"colgroup", b"select", b"option", b"optgroup", b"rb",
    b"rp", b"rt", b"rtc", b"math", b"svg", b"body", b"html", b"frameset", b"image",
    b"isindex", b"textarea", b"iframe", b"noembed", b"noscript", b"template", b"marquee",
    b"object", b"applet", b"frame", b"head"))


def _sheets(tree: LexborHTMLParser) -> list[bytes]:
    """The text of the page's style sheets as the parser makes them, in order: `<style>`
    elements of HTML and SVG (not MathML's, which is no style sheet, attack round 39: `<math>
    <style>`, `<annotation-xml>`, `<mglyph>`); not in `<noscript>`, which a browser with
    scripts reads as text; not an alternate set's (`<style title>` other than the first
    title, or the one `<meta http-equiv=default-style>` names); `<template>` content is no
    part of the document."""
    preferred: str | None = None
    for meta in tree.css("meta[http-equiv]"):
        if (meta.attributes.get("http-equiv") or "").strip().lower() == "default-style":
            preferred = (meta.attributes.get("content") or "").strip()
            break
    sheets: list[bytes] = []
    for node in tree.css("style"):
        up = node.parent
        while up is not None and up.tag != "noscript":
            up = up.parent
        if up is not None or _namespace(node) == "math":
            continue
        title = (node.attributes.get("title") or "").strip()
        if title:
            if preferred is None:
                preferred = title
            if title != preferred:
                continue  # (an alternate style sheet: disabled)
        sheets.append(_bytes(node.text(deep=True)))
    return sheets


_TEXT_POINTS = frozenset(("mi", "mo", "mn", "ms", "mtext"))
_HTML_POINTS = frozenset(("foreignobject", "desc", "title"))


def _namespace(node: LexborNode) -> str:
    """"html", "svg" or "math": the namespace the parser gives an element, from its
    ancestors (an integration point's children are HTML: a MathML token element's but
    `<mglyph>`, `<annotation-xml encoding=text/html>`'s, SVG `<foreignObject>`'s)."""
    chain: list[LexborNode] = []
    up: LexborNode | None = node
    while up is not None and up.is_element_node:
        chain.append(up)
        up = up.parent
    space = "html"
    above: LexborNode | None = None
    for el in reversed(chain):
        tag = (el.tag or "").lower()
        if space == "math" and above is not None:
            parent = (above.tag or "").lower()
            if parent in _TEXT_POINTS and tag not in ("mglyph", "malignmark"):
                space = "html"
            elif parent == "annotation-xml" and (tag == "svg" or (
                    above.attributes.get("encoding") or "").strip().lower() in (
                    "text/html", "application/xhtml+xml")):
                space = "svg" if tag == "svg" else "html"
        elif space == "svg" and above is not None and (above.tag or "").lower() in _HTML_POINTS:
            space = "html"
        if space == "html" and tag in ("svg", "math"):
            space = tag
        above = el
    return space


def _css_selector(selector: bytes) -> str:
    """A selector of `textual`'s for lexbor: escaped punctuation in a name (kept as 0xFF and
    the character + 0x80, `textual._PROTECTED`) escaped again (`.j\\;x`: attack round 41,
    where a UTF-8 page's selector with one made the reading fail)."""
    if b"\xff" in selector:
        selector = textual._PROTECTED.sub(lambda m: b"\\" + bytes([m.group(1)[0] - 0x80]),
                                          selector)
    return selector.decode("utf-8", "replace") if _UTF8.get() else selector.decode("latin-1")


#: `textual._lang_dir`'s "on the element or an ancestor" (`textual.INHERITED_ATTRIBUTE`) is
#: here the attribute the nearest ancestor that sets one gives (`_mark_inherited`): lexbor
#: weighed the descendant form as a costly selector (a limit finding on a page of 4,000
#: elements), and a `lang=en` between them did not count (attack round 43's decoys).
_ANCESTOR_ATTRIBUTE = textual.INHERITED_ATTRIBUTE


def _mark_inherited(tree: LexborHTMLParser) -> None:
    """Every element gets `zh-lang` and `zh-dir`: its language and direction, its own
    attribute's or its nearest ancestor's (`dir=auto`: `htmlscope` writes it out)."""
    todo: list[tuple[LexborNode, str, str]] = [] if tree.root is None else [
        (tree.root, "", "ltr")]
    while todo:
        node, lang, direction = todo.pop()
        attributes = node.attributes
        if "lang" in attributes:
            lang = (attributes["lang"] or "").strip().lower()
        own = (attributes.get("dir") or "").strip().lower()
        if own in ("ltr", "rtl"):
            direction = own
        node.attrs["zh-lang"] = lang
        node.attrs["zh-dir"] = direction
        child = node.child
        while child is not None:
            if child.is_element_node:
                todo.append((child, lang, direction))
            child = child.next


_CHECKER: list[LexborHTMLParser] = []


def valid_selector(selector: bytes) -> bool:
    """Whether a browser keeps a rule of this selector (list): lexbor reads it, or what it
    does not read is a pseudo-class or -element Chromium reads (`textual._import_region`:
    an import after a rule the browser drops still counts)."""
    if not _CHECKER:
        _CHECKER.append(LexborHTMLParser("<p></p>"))
    try:
        _CHECKER[0].css(_css_selector(_ANY.sub(b":is(", selector)))
    except (SelectolaxError, ValueError):
        return bool(_UNREAD_PSEUDO.search(selector)
                    or textual._PSEUDO_ELEMENT_SELECTOR.search(selector))
    return True


def _bytes(text: str) -> bytes:
    """Text of the tree as the page's bytes (`_UTF8`)."""
    if _UTF8.get():
        return text.encode("utf-8", "replace")
    return _CHARS_PAST_LATIN1.sub(lambda m: m.group().encode().decode("latin-1"),
                                  text).encode("latin-1")


#: per element (lexbor's mem_id): the element and the ranked compounds of the rules that
#: match it, strongest first
_Matched = dict[int, tuple[LexborNode, list["textual._Compound"]]]
_ANY_ELEMENT = textual._Compound(None, frozenset(), frozenset(), ())


def _matched_rules(data: bytes, tree: LexborHTMLParser, most_open: int,
                   check_time: Callable[[], None] | None, layout: _Layout | None = None
                   ) -> _Matched:
    """Per element (by lexbor's node id): the ranked compounds (`textual.kind_compounds`) of
    every hiding or showing rule whose selector matches it, strongest first; and into
    `layout`, the ranked `display`, `order` and flex direction declarations of the rules
    that match it."""
    sheets = _sheets(tree)
    sheets += textual._data_sheets(data, sheets)
    matched: _Matched = {}
    tried = 0
    shape = _Shape(tree, most_open=most_open, data=data)
    written = [m.group(1) for m in textual._STYLE_BLOCK.finditer(data) if m.group(1) is not None]
    written += textual._data_sheets(data, written)
    # (the sheets as the tags write them, most often: the rules the other readings read,
    # remembered, not read again)
    rules = textual._all_sheet_rules(data, None if sheets == written else sheets)
    last = {(r.selectors, r.declarations, r.layer): n for n, r in enumerate(rules, 1)}
    pairs = 0  # (elements matched, by all selectors)
    inherited = False  # (`_mark_inherited` done)
    for order, rule in enumerate(rules, 1):
        if rule.selectors[:1] == b"@":
            continue  # (`@counter-style`, `@font-face`: no selector)
        if last[rule.selectors, rule.declarations, rule.layer] != order:
            continue  # (a rule written again later: the later one decides alike)
        kinds = textual._css_kinds(rule.declarations)
        laid = _layout_declarations(rule.declarations) if layout is not None else []
        if not kinds and not laid:
            continue
        important = b"!important" in rule.declarations.replace(b" ", b"").lower()
        hits: list[tuple[bytes, list[LexborNode]]] = []
        for selector in textual._selectors(textual._selector_text(rule.selectors)):
            if textual._PSEUDO_ELEMENT_SELECTOR.search(selector):
                continue  # (a pseudo-element's box, not the element's own content)
            tried += 1
            if tried > _MAX_SELECTORS:
                raise ScanLimitExceeded(MAX_SCAN_TIME, f"more than {_MAX_SELECTORS} "
                                        f"selectors that hide or show")
            if check_time is not None and not tried % 64:
                check_time()
            if b" i] *" in selector and _ANCESTOR_ATTRIBUTE.search(selector):
                if not inherited:
                    _mark_inherited(tree)
                    inherited = True
                selector = _ANCESTOR_ATTRIBUTE.sub(rb"[zh-\1 i]", selector)
            text = _css_selector(_ANY.sub(b":is(", selector))
            try:
                nodes = shape.matched(text, check_time)
            except (SelectolaxError, ValueError):
                if _UNREAD_PSEUDO.search(selector):
                    continue  # (valid in a browser, unread here: this selector only)
                hits = []  # (invalid: the browser drops the whole rule)
                break
            hits.append((selector, nodes))
        for selector, nodes in hits:
            if not nodes:
                continue
            pairs += len(nodes)
            if pairs > _MAX_PAIRS:  # (50,000 rules of one class over 50,000 elements)
                raise ScanLimitExceeded(MAX_SCAN_TIME, f"style rules that match more than "
                                        f"{_MAX_PAIRS} elements in all")
            if laid and layout is not None:
                ranks = [textual._ranked(_ANY_ELEMENT, rule, selector, False, order).rank,
                         textual._ranked(_ANY_ELEMENT, rule, selector, True, order).rank]
                declared = [(ranks[i], name, value) for name, value, i in laid]
                for node in nodes:
                    layout.declared.setdefault(node.mem_id, (node, []))[1].extend(declared)
            if not kinds:
                continue
            ranked = list(textual.kind_compounds(_ANY_ELEMENT, rule, selector, kinds,
                                                 important, order))
            for node in nodes:
                matched.setdefault(node.mem_id, (node, []))[1].extend(ranked)
    for _node, compounds in matched.values():
        compounds.sort(key=lambda c: c.rank, reverse=True)
    return matched


def _attrs(node: LexborNode) -> bytes:
    """The element's attributes that may hide it (`_STYLING`), written back as a tag's
    (what `textual._hides` reads; a link's `href` or an image's `alt` hide nothing, and
    elements alike are weighed once); SVG's presentation attributes as declarations before
    the style attribute's (which beats them): `font-size="0"` is `font-size:0`."""
    out = b""
    for name, value in sorted(node.attributes.items(), key=lambda a: a[0] == "style"):
        name = name.lower()
        if name not in _STYLING:
            continue
        text = _bytes(value or "").replace(b"&", b"&amp;").replace(b'"', b"&quot;")
        if name in _PRESENTATION:
            if _in_svg(node):  # (an HTML element's `display` attribute is no style)
                out += b' x-%s="%s:%s;"' % (name.encode(), name.encode(), text)
        else:
            out += b' %s="%s"' % (name.encode(), text)
    return out


def _foreign(node: LexborNode) -> bool:
    """Whether an element is SVG's or MathML's: inside an `<svg>` (a `<foreignObject>`
    itself included) or a `<math>`, not in HTML content of theirs."""
    up = node.parent
    while up is not None:
        tag = (up.tag or "").lower()
        if tag in ("svg", "math"):
            return True
        if tag in ("foreignobject", "body", "html", "annotation-xml"):
            return False
        up = up.parent
    return False


def _in_svg(node: LexborNode | None) -> bool:
    """Whether an element is SVG's: in an `<svg>`, not in a `<foreignObject>` of it."""
    while node is not None:
        tag = (node.tag or "").lower()
        if tag == "svg":
            return True
        if tag in ("foreignobject", "body", "html"):
            return False
        node = node.parent
    return False


_PRESENTATION = frozenset(("display", "visibility", "opacity", "font-size", "transform",
                           "clip-path", "mask"))
_STYLING = frozenset(("style", "hidden", "popover", "open", "width", "height", "size",
                      # SVG's presentation attributes
                      "display", "visibility", "opacity", "font-size", "transform",
                      "clip-path", "mask"))


def _shown_text(tree: LexborHTMLParser, matched: _Matched,
                check_time: Callable[[], None] | None, layout: _Layout | None = None) -> str:
    """The text of the page's shown elements, in order: the elements that may hide (a rule
    matches them, an attribute may hide them, their tag never renders) weighed by
    `textual._hides`, what hides taken out of the tree, and the rest read by lexbor (a walk
    in Python over every element cost 30 ms a newsletter). With a `layout`: the flex and
    grid containers whose items move, their content read in the order it shows."""
    root = tree.root
    if root is None:
        return ""
    weigh = {m: node for m, (node, _c) in matched.items()}
    styles: dict[str, bool] = {}  # (a style attribute's text -> whether it may hide)
    for node in [*tree.css(_WEIGHED), *tree.css("[style]")]:
        if node.mem_id in weigh:
            continue
        attributes = node.attributes
        style = attributes.get("style")
        if style is not None and not _WEIGHED_OTHERWISE.intersection(attributes) and (
                (node.tag or "").lower() not in _NEVER_RENDERED):
            # (only its style attribute: weighed if that may hide or show again; a
            # newsletter's hundred `display:block` images and `font-size:14px` cells not)
            may = styles.get(style)
            if may is None:
                may = styles[style] = "var(" in style.lower() or bool(textual._css_kinds(
                    textual.declared(textual._css_text(_bytes(style)))) & _WEIGHED_KINDS)
            if not may:
                continue
        weigh[node.mem_id] = node
    hidden: dict[int, LexborNode] = {}
    closed: list[LexborNode] = []  # closed `<details>`: only the summary shows
    invisible: dict[int, LexborNode] = {}
    again: set[int] = set()
    known: dict[tuple[str, bytes, tuple[int, ...], bool | None], int] = {}  # (alike: once)
    for key, node in weigh.items():
        how = _how(node, matched, known)
        if how == textual.HIDDEN:
            if (node.tag or "").lower() == "details":
                closed.append(node)
            else:
                hidden[key] = node
        elif how == textual.INVISIBLE:
            invisible[key] = node
        elif how == textual.VISIBLE_AGAIN:
            again.add(key)
    if check_time is not None:
        check_time()

    def under(node: LexborNode | None, keys: dict[int, LexborNode]) -> bool:
        while node is not None:
            if node.mem_id in keys:
                return True
            node = node.parent
        return False

    # (decided while the tree is whole: what is taken out is never touched again)
    drop: dict[int, LexborNode] = dict(hidden)  # (and text nodes no reader sees)
    for node in closed:
        if not under(node, hidden):
            summary = False
            for child in _children(node):
                if not summary and (child.tag or "").lower() == "summary":
                    summary = True
                else:
                    drop[child.mem_id] = child
    foreign = {n.mem_id: n for n in tree.css("svg, math")}
    starts = [n for n in invisible.values() if not under(n.parent, invisible)]
    starts += [n for n in foreign.values() if not under(n.parent, foreign)]
    for start in starts:
        if not under(start, hidden):
            _drop_unseen(start, hidden, invisible, again, drop)
    moved = layout.moved(tree, drop, check_time) if layout is not None else []
    for node in [n for n in drop.values() if not under(n.parent, drop)]:
        node.decompose()
    spent = 0
    for box in moved:  # (the deepest first: a box's items hold those inside it laid out)
        if check_time is not None:
            check_time()
        spent += box.lay_out()
        if spent > _MAX_LAID_OUT:
            raise ScanLimitExceeded(MAX_SCAN_TIME, "flex items nested deeper than their "
                                    "text is read in time")
    return root.text(deep=True)


#: What may hide an element without a style sheet (the hand readings' tree may differ from
#: the parser's there too, attack round 39: a duplicate `style` attribute, a NUL in a tag's
#: name, a nested `<form>`, an end tag the parser ignores, a quirks-mode doctype): a hiding
#: declaration, a reference or escape that may spell one, an attribute or an element that
#: hides (not the `<title>`, `<style>`, `<script>` every page has).
_INLINE_HIDING = Gate(
    rb"(?i)(?:display|visibility)\s*[:=]\s*[\"']?\s*(?:none|hidden|collapse|var)|\\|&#|&colon|"
    rb"\s(?:hidden|popover)[\s=>/]|display\s*:\s*inherit|font-size\s*:\s*0|font\s*:|opacity\s*:\s*0|clip|scale\s*[:(]|"
    rb"matrix|rotate[xy]|mask|text-security|content-visibility|contain\s*:|:\s*-\s*\d{3}|"
    rb"overflow\s*:\s*(?:hidden|clip)|<(?:template|noscript|iframe|audio|video|canvas|details|"
    rb"dialog|object|textarea|datalist|rp|noembed|noframes|meter|progress|fencedframe|svg|math|"
    rb"annotation|desc)[\s/>]")
#: A page that may show items in an order of their own (`htmllayout._LAYOUT_CSS`'s words).
_ORDERS = Gate(rb"[^\w-]order\s*:|(?:row|column)-reverse")
_STYLED_ORDER = Gate(rb"style\s*=\s*[\"']?(?:[^\"'>]*[^\w-])?order\s*:|"
                     rb"style\s*=\s*[\"']?[^\"'>]*(?:row|column)-reverse")
_ORDER_DECLARATION = re.compile(rb"(?<![\w-])order\s*:|(?:row|column)-reverse", re.I)
#: Characters of item text the containers whose items move may copy (each reads its items'
#: text, those of the containers inside it laid out already), past which the page is a
#: limit finding.
_MAX_LAID_OUT = 64 << 20
#: The properties `_Layout` reads (`flex-flow` as its `flex-direction`).
_LAYOUT_PROPERTIES = re.compile(rb"(?<![\w-])(?:display|order|flex-direction|flex-flow)\s*:",
                                re.I)
_DIRECTIONS = frozenset((b"row", b"row-reverse", b"column", b"column-reverse"))
_WRAPS = frozenset((b"wrap", b"nowrap", b"wrap-reverse"))
_WIDE = frozenset((b"initial", b"unset", b"revert", b"revert-layer", b"inherit"))
_DISPLAY_WORDS = textual.DISPLAY_KEYWORDS
_ASCII_BLANKS = " \t\n\r\f"
#: (the cascade's place of a style attribute's declarations: past every rule's but an
#: !important one, for a normal declaration)
_STYLE_ATTRIBUTE = 1 << 30


def _layout_declarations(text: bytes) -> list[tuple[bytes, bytes, int]]:
    """The valid `display`, `order` and flex direction (`flex-direction`, `flex-flow`)
    declarations of a block, in order: (property, value, 1 if !important else 0); the
    block's own custom properties resolved (`--o:3;order:var(--o)`). An invalid value is
    no declaration (a browser drops it: a `.f .s3{order:2.5}` leaves `.s3{order:3}`)."""
    if not _LAYOUT_PROPERTIES.search(text):
        return []
    if b"/*" in text or b"\\" in text:
        text = textual._css_text(text)
    custom: dict[bytes, bytes] = {}
    out: list[tuple[bytes, bytes, int]] = []
    for m in _DECL.finditer(text):
        name = m.group(1).lower()
        value = m.group(2).strip()
        if name[:2] == b"--":
            custom[m.group(1)] = value
            continue
        if name not in (b"display", b"order", b"flex-direction", b"flex-flow"):
            continue
        if b"var(" in value:
            value = _VAR.sub(lambda v: custom.get(v.group(1), v.group(2) or b""), value)
        important = b"!" in value and _IMPORTANT.search(value) is not None
        if important:
            value = _IMPORTANT.sub(b"", value).rstrip()
        value = value.lower()
        words = value.split()
        if not words:
            continue
        if words[0] in _WIDE and len(words) == 1:
            pass  # (the initial value: 0, `row`; `inherit` read so too)
        elif name == b"display":
            if len(words) > 3 or not _DISPLAY_WORDS.issuperset(words):
                continue
        elif name == b"order":
            if order_value(value) is None:
                continue
        elif name == b"flex-direction":
            if len(words) != 1 or value not in _DIRECTIONS:
                continue
        else:  # `flex-flow`: a direction and a wrap, each at most once, in any order
            ways = [w for w in words if w in _DIRECTIONS]
            if len(ways) > 1 or len(words) - len(ways) > 1 or not _WRAPS.issuperset(
                    w for w in words if w not in _DIRECTIONS):
                continue
            name, value = b"flex-direction", ways[0] if ways else b"row"
        out.append((name, value, int(important)))
    return out


@dataclass
class _Box:
    """A flex or grid container whose items move: its items (element children and runs
    of text not taken out, those in `display: contents` children in their place), each
    with its `order`; and whether its row (column) is reversed."""

    node: LexborNode
    depth: int
    items: list[tuple[LexborNode, float]]
    reverse: bool

    def lay_out(self) -> int:
        """Its content as one text, its items' text in the order they show (a run of text
        is an anonymous item of order 0; a blank run is none): the characters read."""
        shown: list[tuple[float, str]] = []
        for item, order in self.items:
            text = item.text(deep=item.is_element_node).strip(_ASCII_BLANKS)
            if text:
                shown.append((order, text))
        shown.sort(key=lambda item: item[0])  # (stable: in the order written, equal ones)
        if self.reverse:
            shown.reverse()
        text = "".join(text for _order, text in shown)
        for kid in _children(self.node):  # (none is touched after: freed with its content)
            kid.decompose()
        if text:
            self.node.insert_child(text)
        return len(text)


@dataclass
class _Layout:
    """The `display`, `order` and flex direction declarations the page's rules set on its
    elements (by lexbor's node id: the element, and (rank, property, value) of each, the
    rank `textual._ranked`'s), to find the flex and grid containers whose items move."""

    declared: dict[int, tuple[LexborNode, list[tuple[tuple[int, ...], bytes, bytes]]]] = (
        dataclasses.field(default_factory=dict))

    def cascaded(self, node: LexborNode) -> dict[bytes, bytes]:
        """The element's `display`, `order` and `flex-direction` that win the cascade (the
        style attribute's after the rules', but for the rules' !important ones)."""
        won: dict[bytes, tuple[tuple[int, ...], bytes]] = {}
        declared = self.declared.get(node.mem_id)
        for rank, name, value in declared[1] if declared is not None else ():
            if name not in won or rank >= won[name][0]:
                won[name] = (rank, value)
        style = node.attributes.get("style") if node.is_element_node else None
        if style and _LAYOUT_PROPERTIES.search(_bytes(style)):
            for name, value, important in _layout_declarations(_bytes(style)):
                rank = (important, _STYLE_ATTRIBUTE)
                if name not in won or rank >= won[name][0]:
                    won[name] = (rank, value)
        return {name: value for name, (_rank, value) in won.items()}

    def moved(self, tree: LexborHTMLParser, drop: dict[int, LexborNode],
              check_time: Callable[[], None] | None) -> list[_Box]:
        """The flex and grid containers not taken out whose items show in another order
        than written (an item's `order` not 0, a flex direction reversed), the deepest first.
        Read while the tree is whole: elements a rule sets `display` on, and those of a
        style attribute that may say flex or grid (lexbor finds them); only their children
        in Python."""
        candidates = {m: node for m, (node, declared) in self.declared.items()
                      if any(name == b"display" for _rank, name, _value in declared)}
        for node in tree.css('[style*="flex" i], [style*="grid" i]'):
            candidates.setdefault(node.mem_id, node)
        places: dict[int, tuple[int, bool]] = {}  # mem_id -> (depth, taken out)
        boxes: list[_Box] = []
        for tried, node in enumerate(candidates.values()):
            if check_time is not None and not tried % 256:
                check_time()
            style = self.cascaded(node)
            words = style.get(b"display", b"").split()
            flex = any(w.endswith(b"flex") for w in words)
            if not flex and not any(w.endswith(b"grid") for w in words):
                continue
            depth, out = _place(node, drop, places)
            if out:
                continue
            reverse = flex and style.get(b"flex-direction", b"").endswith(b"-reverse")
            moves = reverse
            items: list[tuple[LexborNode, float]] = []
            todo = _children(node)[::-1]
            while todo:
                kid = todo.pop()
                if kid.mem_id in drop:
                    continue
                if kid.is_text_node:
                    items.append((kid, 0.0))
                elif kid.is_element_node:
                    own = self.cascaded(kid)
                    if own.get(b"display") == b"contents":  # (its content: items in its place)
                        todo += _children(kid)[::-1]
                        continue
                    value = own.get(b"order")
                    number = (order_value(value) if value is not None else None) or 0.0
                    moves = moves or number != 0
                    items.append((kid, number))
            if moves:
                boxes.append(_Box(node, depth, items, reverse))
        boxes.sort(key=lambda box: box.depth, reverse=True)
        return boxes


def _place(node: LexborNode, drop: dict[int, LexborNode],
           places: dict[int, tuple[int, bool]]) -> tuple[int, bool]:
    """The element's depth, and whether it is taken out (it or an element above it in
    `drop`), remembered in `places` for each element walked (each is walked once)."""
    chain: list[LexborNode] = []
    up: LexborNode | None = node
    depth, out = -1, False
    while up is not None:
        known = places.get(up.mem_id)
        if known is not None:
            depth, out = known
            break
        chain.append(up)
        up = up.parent
    for above in reversed(chain):
        depth += 1
        out = out or above.mem_id in drop
        places[above.mem_id] = (depth, out)
    return places[node.mem_id]


def _drop_unseen(start: LexborNode, hidden: dict[int, LexborNode],
                 invisible: dict[int, LexborNode], again: set[int],
                 drop: dict[int, LexborNode]) -> None:
    """Into `drop`, the text nodes under `start` no reader sees: of invisible elements (not
    inside one `visibility: visible` again), and in SVG or MathML outside the elements
    whose text shows there. Hidden elements' content is skipped (taken out whole)."""
    todo: list[tuple[LexborNode, bool, frozenset[str] | None, bool]] = [
        (start, False, None, False)]
    while todo:
        node, unseen, shows, foreign = todo.pop()
        if node.is_text_node:
            if unseen or shows is not None:
                drop[node.mem_id] = node
            continue
        if not node.is_element_node or node.mem_id in hidden:
            continue
        tag = (node.tag or "").lower()
        if shows is _SHOWS_ONLY["svg"] and textual.undrawn_svg(tag.encode("latin-1", "replace"),
                                                               _attrs(node)):
            drop[node.mem_id] = node  # (a `<foreignObject>` in `<defs>` shows nothing, not
            continue  # even `visibility: visible`: round 41)
        if foreign and tag in _NEVER_DRAWN_FOREIGN:
            drop[node.mem_id] = node
            continue
        if tag in _SHOWS_ONLY:
            shows = _SHOWS_ONLY[tag]
            foreign = True
        elif shows is not None and tag in shows:
            shows = None  # (`<text>`, `<foreignObject>`, `<mi>`: shown within)
        if tag in ("foreignobject", "annotation-xml"):
            foreign = False  # (HTML inside)
        if node.mem_id in invisible:
            unseen = True
        elif node.mem_id in again:
            unseen = False
        todo.extend((c, unseen, shows, foreign) for c in _children(node))


def _children(node: LexborNode) -> list[LexborNode]:
    out: list[LexborNode] = []
    child = node.child
    while child is not None:
        out.append(child)
        child = child.next
    return out


def _how(node: LexborNode, matched: _Matched,
         known: dict[tuple[str, bytes, tuple[int, ...], bool | None], int]) -> int:
    """How the element hides its content (`textual._hides`, with the rules that match it
    here; an inline element a transform or size hides as a box, if its parent is a flex or
    grid container). `known`: the answers for elements alike (tag, attributes, rules)."""
    name = (node.tag or "").lower()
    compounds = tuple(matched[node.mem_id][1]) if node.mem_id in matched else ()
    attrs = _attrs(node)
    tag = name.encode("latin-1", "replace")
    foreign = _foreign(node) if (tag in textual._CONTENTS_NONE_FOREIGN
                                 or tag in textual._NEVER_RENDERED_FOREIGN) else None
    key = (name, attrs, tuple(id(c) for c in compounds), foreign)
    how = known.get(key)
    if how is None:
        how = known[key] = textual._hides(tag, attrs, compounds, foreign=foreign)
    if how != textual.HIDDEN and textual._contents_none(tag, foreign) and (
            _INHERIT_WORD(attrs) or any(c.kind & textual.INHERITS for c in compounds)) and (
            textual.display_flags(tag, attrs, compounds) & textual.INHERITS
            and _unboxed(node.parent, matched)):
        return textual.HIDDEN  # (`display: inherit` under `display: contents`: contents)
    if how == textual.IF_ITEM:
        parent = node.parent
        if parent is None or not parent.is_element_node:
            return textual.SHOWN
        up = tuple(matched[parent.mem_id][1]) if parent.mem_id in matched else ()
        return textual.HIDDEN if textual._flex_or_grid(
            (parent.tag or "").lower().encode("latin-1", "replace"), _attrs(parent),
            up) else textual.SHOWN
    return how


#: A style attribute that may say `inherit` (also escaped, or by a character reference).
_INHERIT_WORD = Gate(rb"(?i)inherit|\\|&")


def _unboxed(node: LexborNode | None, matched: _Matched) -> bool:
    """Whether the element's `display` is `contents`: its own, or through `display: inherit`
    its nearest ancestor's that declares another."""
    while node is not None and node.is_element_node:
        compounds = tuple(matched[node.mem_id][1]) if node.mem_id in matched else ()
        flags = textual.display_flags((node.tag or "").lower().encode("latin-1", "replace"),
                                      _attrs(node), compounds)
        if not flags & textual.INHERITS:
            return bool(flags & textual.CONTENTS)
        node = node.parent
    return False


_NEVER_RENDERED = frozenset(t.decode() for t in textual._NEVER_RENDERED)
#: (attributes but `style` that make `_shown_text` weigh an element; and the kinds of a
#: style attribute that do)
_WEIGHED_OTHERWISE = frozenset(("hidden", "popover", "display", "visibility", "opacity",
                                "font-size", "transform", "clip-path", "mask"))
_WEIGHED_KINDS = (textual.HIDE_DISPLAY | textual.HIDE_VISIBILITY | textual.HIDE_OTHER
                  | textual.HIDE_BOX | textual.HIDE_PLACED | textual.SHOW_VISIBILITY
                  | textual.CONTENTS | textual.INHERITS)  # (`contents` hides an `<svg>`)
#: Elements `_shown_text` weighs without a rule: a tag that never renders, an attribute
#: that may hide (the words `textual` looks for in a tag; lexbor has decoded references).
_WEIGHED = ", ".join((
    *sorted(t.decode() for t in textual._NEVER_RENDERED), "[hidden]", "[popover]",
    "[display]", "[visibility]", "[opacity]", "[font-size]", "[transform]", "[clip-path]",
    "[mask]", "svg[width]", "svg[height]", "foreignObject[width]", "foreignObject[height]"))
# (and every `[style]`, weighed by what it declares)


#: Steps of lexbor's matcher a selector may cost by the estimate (`_Shape.cost`): past it,
#: `_linear_match`. Past `_PAGE_BUDGET` in all (both kinds of steps), a limit finding.
_LEXBOR_STEPS = 2_000_000
_PAGE_BUDGET = 200_000_000
#: ...and a compound of `_linear_match` (nesting its own selectors) past which the page is a
#: limit finding (lexbor spends about 3 ns a step: 0.15 s).
_COMPOUND_STEPS = 50_000_000
#: A functional pseudo-class (masked to its parenthesis) before a combinator.
_CONTEXT_FUNCTION = re.compile(r"\(_*(?=\s*[>+~]|\s+\S)")
#: Elements times steps `_linear_match` may walk on a page (in Python: about 3 s), past
#: which the page is a limit finding.
_LINEAR_STEPS = 8_000_000
_LIST_SPACES = re.compile(r"(?<!\s)\s*+,\s*+|\(\s++|(?<!\s)\s++\)")


def _loose(text: str) -> int:
    """How many descendant and later-sibling combinators `text` holds."""
    return sum(1 for m in _COMBINATOR.finditer(text) if (m.group(1) or " ") in " ~")
#: Combinators outside parentheses and brackets (what `_linear_match` joins).
_COMBINATOR = re.compile(r"(?<!\s)\s*+([>+~])\s*+|(?<!\s)\s++")  # (tried at a run's
# start only: a blank run of 80,000 read from each of its places was quadratic)
_MASK = re.compile(r"\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)|\[[^\[\]]*\]|\"[^\"]*\"|'[^']*'")


@dataclass
class _Shape:
    """The tree's shape, for what a selector costs lexbor (elements, the deepest nesting,
    the most children of one element, the sum of the elements' depths and of the siblings
    after each), and the elements in order with their parents and previous siblings (for
    `_linear_match`), walked once when a selector first needs them."""

    tree: LexborHTMLParser
    walked: bool = False
    elements: int = 0
    depth: int = 0
    width: int = 0
    depths: int = 0  # (what one `:has(X)` costs lexbor over the whole tree)
    siblings: int = 0  # (and one `:has(~ X)`)
    ids: list[int] | None = None  # mem_id of each element, in order
    nodes: list[LexborNode] | None = None  # ...and the element
    index: dict[int, int] | None = None
    parent: list[int] | None = None  # index of the parent element (-1: none)
    previous: list[int] | None = None  # index of the previous sibling element (-1: none)
    spent: int = 0
    count: int = -1  # (elements, counted by lexbor, when no walk is needed)
    linear: int = 0  # (elements times steps `_linear_match` walked)
    most_open: int = -1  # (`_parse_cost`'s deepest nesting, when known)
    data: bytes = b""  # (the page, for `_parse_cost`)

    def _walk(self) -> None:
        root = self.tree.root
        ids: list[int] = []
        nodes: list[LexborNode] = []
        parent: list[int] = []
        previous: list[int] = []
        todo: list[tuple[LexborNode, int, int]] = [] if root is None else [(root, -1, 0)]
        while todo:
            node, up, depth = todo.pop()
            at = len(ids)
            ids.append(node.mem_id)
            nodes.append(node)
            parent.append(up)
            previous.append(-1)
            self.depth = max(self.depth, depth)
            self.depths += depth
            kids: list[LexborNode] = []
            child = node.child
            while child is not None:
                if child.is_element_node:
                    kids.append(child)
                child = child.next
            self.width = max(self.width, len(kids))
            self.siblings += len(kids) * (len(kids) - 1) // 2
            todo.extend((k, at, depth + 1) for k in reversed(kids))
            if len(ids) > _MAX_ELEMENTS:
                raise ScanLimitExceeded(MAX_SCAN_TIME, f"a page of more than {_MAX_ELEMENTS} "
                                        f"elements")
        # (previous siblings: the last child seen of each parent, in document order)
        last: dict[int, int] = {}
        for at, up in enumerate(parent):
            previous[at] = last.get(up, -1)
            last[up] = at
        self.ids, self.nodes, self.parent, self.previous = ids, nodes, parent, previous
        self.index = {m: i for i, m in enumerate(ids)}
        self.elements = len(ids)
        self.walked = True

    def cost(self, selector: str) -> int:
        """What lexbor may spend on `selector`, over-estimated: each candidate element tries
        every choice of ancestors (siblings) for its descendant (`~`) steps, and each
        `:has()` level walks the subtrees (sibling runs) under every element."""
        flat = _LIST_SPACES.sub(lambda m: m.group().strip(), selector.strip())
        masked = _MASK.sub(lambda m: "_" * len(m.group()), flat)
        top = _loose(masked)
        if not top and "(" not in flat:
            if self.count < 0:  # (linear: no walk of the tree's shape needed)
                self.count = len(self.tree.css("*"))
            return self.count
        if "(" not in flat and "~" not in masked:
            if self.most_open < 0:
                self.most_open = _parse_cost(self.data)[1]
            # (descendant steps only: the depth over-estimated from the tags, no walk)
            if self.count < 0:
                self.count = len(self.tree.css("*"))
            return self.count * math.comb(self.most_open + top, top)
        if not self.walked:
            self._walk()
        reach = max(self.depth, self.width, 1)
        cost = self.elements * math.comb(reach + top, top)
        if "(" in flat:
            inner = math.comb(reach + _loose(flat) - top, _loose(flat) - top)
            has = flat.lower().count(":has(")
            cost += inner * ((self.depths + self.siblings + self.elements)
                             * reach ** (has - 1) if has else self.elements)
        return cost

    def matched(self, selector: str, check_time: Callable[[], None] | None
                ) -> list[LexborNode]:
        """The elements `selector` matches: by lexbor where its estimate is
        within `_LEXBOR_STEPS`, else by `_linear_match`; and by `_linear_match` where a
        compound before the subject has a functional pseudo-class: lexbor tries only the
        nearest ancestor (sibling) for it (`:not(.b) ~ .b` misses a `.b` after a `p.a`,
        `:not(.b) :not(.b)` a `<b>` in a `p.b` in an `<i>`: 214 of 12,000 random pages)."""
        cost = self.cost(selector)
        if cost <= _LEXBOR_STEPS and not _CONTEXT_FUNCTION.search(
                _MASK.sub(lambda m: "(" + "_" * (len(m.group()) - 1), selector.strip())):
            self._spend(cost)
            return self.tree.css(selector)
        return self._linear_match(selector, check_time)

    def _spend(self, cost: int) -> None:
        self.spent += cost
        if self.spent > _PAGE_BUDGET:
            raise ScanLimitExceeded(MAX_SCAN_TIME, "selectors that cost more than "
                                    f"{_PAGE_BUDGET} steps to match")

    def _linear_match(self, selector: str, check_time: Callable[[], None] | None
                      ) -> list[LexborNode]:
        """`selector` matched compound by compound (each by lexbor, alone: one walk), the
        combinators joined left to right in one pass over the elements each: `A B` holds
        where an ancestor holds `A`, `A ~ B` where a sibling before does. A compound that
        itself nests selectors past the budget (`:is(.z div div div span)`, nested `:has()`)
        is a limit finding."""
        if not self.walked:
            self._walk()
        assert self.ids is not None
        assert self.nodes is not None
        assert self.index is not None
        assert self.parent is not None
        assert self.previous is not None
        masked = _MASK.sub(lambda m: "_" * len(m.group()), selector.strip())
        parts: list[tuple[str, str]] = []  # (the combinator before it, the compound)
        at, combinator = 0, ""
        for m in _COMBINATOR.finditer(masked):
            parts.append((combinator, selector.strip()[at : m.start()]))
            at, combinator = m.end(), m.group(1) or " "
        parts.append((combinator, selector.strip()[at:]))
        n = len(self.ids)
        held = [False] * n
        for k, (combinator, compound) in enumerate(parts):
            if check_time is not None:
                check_time()
            cost = self.cost(compound)
            if cost > _COMPOUND_STEPS:
                raise ScanLimitExceeded(MAX_SCAN_TIME, "a selector that costs more than "
                                        f"{_COMPOUND_STEPS} steps to match")
            self._spend(cost)
            self.linear += n
            if self.linear > _LINEAR_STEPS:
                raise ScanLimitExceeded(MAX_SCAN_TIME, "selectors that cost more than "
                                        f"{_LINEAR_STEPS} steps to match one by one")
            here = [False] * n
            for node in self.tree.css(compound):
                i = self.index.get(node.mem_id)
                if i is not None:
                    here[i] = True
            if k == 0:
                held = here
                continue
            links = self.parent if combinator in " >" else self.previous
            if combinator in " ~":  # (some ancestor / sibling before: carried down in order)
                reach = [False] * n
                for i in range(n):
                    j = links[i]
                    reach[i] = j >= 0 and (held[j] or reach[j])
            else:
                reach = [j >= 0 and held[j] for j in links]
            held = [a and b for a, b in zip(here, reach, strict=True)]
        return [self.nodes[i] for i in range(n) if held[i]]
