"""The page as a browser lays it out: text that CSS makes or moves, in the order it is shown.

Round 16: base64 pieces that only the layout puts in order, or that only CSS writes: flex
`order` and `*-reverse` directions, grid placement, absolutely positioned boxes, right floats,
`<bdo dir=rtl>` and `unicode-bidi: bidi-override`; `::before` / `::after` / `::marker` content
(strings and `attr()`), string list markers; an image's `alt` text (mail clients show it when
they block images) and an input field's value. Printed by Chromium and read by pdftotext, the
pieces are the file. One more HTML page for the HTML readers, made once per page (never of a
page this module made: the caller keeps those).

Round 17: grids by named areas (`grid-template-areas`), named lines (`[c1] auto [c2]`),
negative and spanned lines and the auto-placement of the items without a place; right to
left (`direction: rtl`, `dir=rtl`, `dir=auto`, `<bdi>`): flex rows and grid columns
mirrored, table columns right to left, and a block's lines as the bidi algorithm shows them
(inline boxes and isolated runs right to left: `bidi`); boxes placed by `right`, `bottom`,
`inset`, `calc()`, also when other elements wrap them (read with the other boxes of their
containing block); boxes moved by `position: relative` offsets, `transform: translate()`,
`translate` and negative margins, read by where each ends up (its place in the line, in a
monospace font, plus its offset); boxes moved off the page left out, and the offsets renamed
in the laid-out page (its readers take no box moved back from far for a hidden one); a table's
parts as shown: captions (`caption-side`), the first header group (`<thead>`,
`display: table-header-group`), rows, the first footer group; content a table's parser moves
before it (foster parenting). `X > *` and `X *` rules style the elements inside an X.

Round 18: text that counters write (`counter()`, `counters()`, `counter-reset`,
`counter-increment`, `counter-set`, scoped as Chromium scopes them; the page's
`@counter-style` rules and the predefined styles: `counterstyles`), list markers in a page's
counter style, quotation marks (`quotes` with `open-quote` / `close-quote`, and `<q>`); a
`<select>`'s chosen option, an empty field's placeholder; `isolate-override` and `<bdo>`
right to left by a class. A transform moves no inline box (only boxes and flex or grid
items).

A small tree of our own (not an HTML5 parser): a closing tag closes what was opened since its
own opening tag, as `textual` reads pages (and a table cell, row or row group what its
predecessor left open). Styles are the element's own and those of the page's rules whose
subject matches it (`textual`'s selector matching), the later winning; lengths are in pixels
(`cssvalues`). Over-reading is safe: the page's own order is read too.

Speed (a newsletter is laid out on every scan of it: most HTML mail): what a page repeats is
read once. A short tag's attributes (`_attr`, `_attr_names`) and a short style text's
declarations (`_declarations`) are kept in bounded tables across pages (their values are
shared: read only); elements that match the same rules with the same style attribute share
one cascade (`_Layout.styles`); whether the page names an offset is a hyperscan gate.
"""

from __future__ import annotations

import contextvars
import html
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from typing import cast

from zerohour.errors import ScanLimitExceeded
from zerohour.scan import counterstyles
from zerohour.scan.bidi import (
    _PLAIN_R_BYTES,
    ON,
    L,
    R,
    first_strong,
    mirrored,
    text_runs,
    visual_order,
)
from zerohour.scan.cssvalues import (
    CH,
    PAGE_WIDTH,
    SHORTHANDS,
    area_lines,
    areas,
    auto_place,
    extent,
    font_size,
    length,
    offset,
    split,
    start_line,
    tracks,
)
from zerohour.scan.encodings import is_utf8
from zerohour.scan.gates import Gate
from zerohour.scan.htmltree import _CLOSES, _MAX_TREE_DEPTH, _PAGE_PARTS, _OpenElements
from zerohour.scan.htmltree import raw_text_end as _raw_text_end
from zerohour.scan.limits import MAX_SCAN_TIME
from zerohour.scan.textual import (
    _ATTRS,
    _ELEMENT,
    _HEAD_ONLY,
    _IMPLIED,
    _PART_PLACES,
    _RAW_TEXT,
    _ROOT_FIRST,
    _TOO_MANY_MATCHES,
    _VOID,
    Place,
    _all_sheet_rules,
    _any_element,
    _attributes,
    _Compound,
    _compound,
    _css_text,
    _matches,
    _selector_text,
    _selectors,
    _specificity,
    _unescape,
    css_readable,
    page_part_attributes,
    steps_above,
)

#: CSS that moves or makes text (then the page is laid out as a tree; otherwise only the
#: `alt` and `value` texts are put in, by one substitution: most mail has images).
_LAYOUT_CSS = Gate(rb"[^\w-]order\s*:|grid-(?:row|column|area|template)|[^\w-]grid\s*:|position\s*:"
                   rb"\s*(?:absolute|fixed)|-reverse|<bdo|"
                   rb"bidi-override|[^\w-]content\s*:|list-style(?:-type)?\s*:\s*[\"']|"
                   rb"direction\s*:\s*rtl|[\s\"']dir\s*=\s*[\"']?\s*rtl|translate|matrix|<thead|<tfoot|"
                   # counters, counter styles, quotation marks (round 18)
                   rb"isolate-override|@counter-style|[^\w-]quotes\s*:|"
                   # drawn before what is written before them: a fieldset's legend, a
                   # details' summary, ruby annotations and MathML over-scripts (round 18)
                   rb"<legend|<summary|<rt\b|<mover|<munderover|"
                   # a box mirrored left to right: its text read backwards (round 18)
                   rb"scalex\(\s*-|scale\(\s*-|rotatey\(|scale\s*:\s*-|"
                   rb"<caption|table-(?:header|footer)-group|table-caption|caption-side|"
                   rb"margin(?:-left|-right|-inline[\w-]*)?\s*:[^;\"'>}]*-\s*[\d.]|"
                   # content a table's parser moves before the table (foster parenting)
                   rb"(?:<(?:table|tbody|thead|tfoot|tr)\b[^>]*>|</(?:t[dhr]|tbody|thead|tfoot|"
                   rb"caption)>)\s*(?:[^<\s]|<(?:[abdeg-su-z]|ce|fon))")
#: Right floats: a run of them shows right to left; one alone stays where it is written.
#: Newsletters float an image right in most of their items, so a page whose only layout is
#: right floats written in style attributes is laid out only when two stand side by side.
#: (`inline-end` is right in a left-to-right block, `inline-start` in a right-to-left one)
_FLOAT_RIGHT = Gate(rb"float\s*:\s*(?:right|inline-(?:end|start))")
_FLOAT_RIGHT_RE = re.compile(rb"float\s*:\s*(?:right|inline-(?:end|start))", re.I)
_FLOAT_RIGHT_LOWER = re.compile(rb"float\s*:\s*(?:right|inline-(?:end|start))")  # (in lower case)
#: Boxes that show one line of their text as far as they are wide (`_clip`): newsletters
#: hide overflow often, so only with text kept on one line or a width in characters.
_CLIPS = Gate(rb"overflow(?:-x|-inline)?\s*:\s*(?:hidden|clip|auto|scroll|visible\s+[a-z])|"
              rb"contain\s*:[^;\"'}]*(?:paint|strict|content)")
_ONE_LINE = Gate(rb"white-space\s*:\s*(?:nowrap|pre)|text-wrap(?:-mode)?\s*:\s*nowrap|"
                 rb"width\s*:\s*[\d.]+ch")
#: Form controls that show a text of their own: a `<select>`'s chosen option, an empty
#: field's placeholder (round 18).
_CONTROLS = Gate(rb"<select|placeholder\s*=")
#: `position: relative` moves a box only by an offset that is not zero (both on the page).
_RELATIVE = Gate(rb"position\s*:\s*relative")
_OFFSET = Gate(rb"[^\w-](?:left|right|top|bottom|inset[\w-]*)\s*:\s*(?:[^\s0;\"'}]|0*\.?0*[1-9])")
_ALT_OR_VALUE_GATE = Gate(rb"<(?:img|input)[\s/][^>]*(?:alt|value)\s*=")
_ALT_OR_VALUE = re.compile(rb"<(img|input)\b([^>]*)>", re.I)
_PROPS = frozenset({b"order", b"grid-row-start", b"grid-row-end", b"grid-column-start",
                    b"grid-column-end", b"grid-template-areas", b"grid-template-rows",
                    b"grid-template-columns", b"grid-auto-flow", b"position", b"top", b"left",
                    b"right", b"bottom", b"display", b"flex-direction", b"flex-wrap",
                    b"float", b"direction", b"unicode-bidi", b"list-style-type",
                    b"list-style", b"content", b"transform", b"translate", b"scale", b"width",
                    b"height", b"margin-left", b"margin-right", b"margin-top",
                    b"margin-bottom", b"font-size", b"caption-side", b"inset-inline-start",
                    b"inset-inline-end", b"margin-inline-start", b"margin-inline-end",
                    b"counter-reset", b"counter-increment", b"counter-set", b"quotes",
                    *(k for k in SHORTHANDS if k != b"padding")})
#: What `_clip` reads, kept only on a page that clips (`_CLIPS` and `_ONE_LINE`): newsletters
#: set these everywhere, and keeping them cost a 125 KB one 5 % of its scan.
_CLIP_PROPS = _PROPS | {b"overflow", b"overflow-x", b"overflow-y", b"overflow-inline",
                        b"white-space", b"text-wrap", b"text-wrap-mode", b"max-width",
                        b"inline-size", b"contain", b"box-sizing", b"padding",
                        b"padding-left", b"padding-right", b"text-indent", b"letter-spacing",
                        b"max-height", b"line-height"}
#: the properties the page being laid out keeps (`laid_out`)
_KEPT: contextvars.ContextVar[frozenset[bytes]] = contextvars.ContextVar("_KEPT",
                                                                         default=_PROPS)
#: What an element takes from its parent (`dir` and a table's direction besides).
#: `var(--name)` and `var(--name, fallback)` (round 21: `--o:3;order:var(--o)`)
_VAR = re.compile(rb"var\(\s*(--[\w-]+)\s*(?:,\s*([^()]*))?\)")
_INHERITED = (b"list-style-type", b"list-style", b"direction", b"caption-side", b"quotes",
              b"white-space", b"text-wrap", b"text-wrap-mode")
#: (from its `!`: a pattern starting with `\s*` was tried at every blank of a long run, round 4)
_IMPORTANT = re.compile(rb"!\s*important\s*$", re.I)
_PSEUDO_ELEMENT = re.compile(rb"::?(before|after|marker)\s*$", re.I)
_DECL = re.compile(rb"(?<![\w-])([\w-]++)\s*:\s*([^;]*)")  # (a name from its start, read once)
_CONTENT_TOKEN = re.compile(rb"\"((?:[^\"\\]|\\.)*)\"|'((?:[^'\\]|\\.)*)'|attr\(\s*([\w:-]+)"
                            rb"\s*\)|(counters?)\(([^()]*)\)|(no-)?(open|close)-quote", re.I | re.S)
#: A function's argument: a string or a word (`counters(n, ".", upper-alpha)`).
_ARGUMENT = re.compile(rb"\s*(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[^,\s]+)\s*(?:,|$)", re.S)
_QUOTE_STRINGS = re.compile(rb"\"((?:[^\"\\]|\\.)*)\"|'((?:[^'\\]|\\.)*)'", re.S)
_COUNTER_OPS = (b"counter-reset", b"counter-increment", b"counter-set")
#: `quotes: auto` (an English page's): the quotation marks of each depth.
_AUTO_QUOTES = (("\u201c".encode(), "\u201d".encode()), ("\u2018".encode(), "\u2019".encode()))
_BLANKS = re.compile(rb"\s+")
_NO_VALUE_INPUTS = frozenset({b"hidden", b"password", b"checkbox", b"radio", b"file",
                              b"image", b"range", b"color"})
#: The tree is built as Chromium's parser builds it: an element opened deeper than 512 is
#: its parent's sibling (kMaximumHTMLParserDOMTreeDepth). At 256 a flex row whose `order`
#: puts the pieces in place, inside 300 divs, was read in the markup's order. (`_MAX_TREE_DEPTH`,
#: `htmltree`)
#: How deep the walks of the tree go (an override's content, a line's inline boxes, boxes
#: `display: contents` opens, placed boxes gathered, a rule's ancestors): as deep as the
#: tree, no less. At 256 of a 512-deep tree, an override, `display: contents` or an
#: ancestor's rule 300 levels up went unread: pieces shown joined read apart (round 36).
#: (Recursive walks: below Python's 1000 frames, `test_walks_read_as_deep_as_the_tree`.
#: The tree is one deeper than the bound at most: an element opened at it, `_OpenElements`.)
_MAX_DEPTH = _MAX_TREE_DEPTH + 1
_MAX_TRIES = 1_000_000  # rule-against-element tries per page

#: How elements show without a `display` of their own.
_BLOCK_TAGS = frozenset({b"address", b"article", b"aside", b"blockquote", b"body", b"center",
                         b"dd", b"details", b"dialog", b"dir", b"div", b"dl", b"dt",
                         b"fieldset", b"figcaption", b"figure", b"footer", b"form", b"h1",
                         b"h2", b"h3", b"h4", b"h5", b"h6", b"header", b"hgroup", b"hr",
                         b"html", b"legend", b"listing", b"main", b"menu", b"nav", b"ol",
                         b"optgroup", b"p", b"plaintext", b"pre", b"search", b"section",
                         b"summary", b"ul", b"xmp"})
_TAG_DISPLAY = {b"table": b"table", b"tr": b"table-row", b"td": b"table-cell",
                b"th": b"table-cell", b"thead": b"table-header-group",
                b"tbody": b"table-row-group", b"tfoot": b"table-footer-group",
                b"caption": b"table-caption", b"col": b"table-column",
                b"colgroup": b"table-column-group", b"li": b"list-item"}
#: Replaced and widget elements: boxes of their own in a line (bidi: one neutral character).
_ATOMIC_TAGS = frozenset({b"img", b"input", b"button", b"select", b"textarea", b"video",
                          b"audio", b"canvas", b"iframe", b"object", b"embed", b"svg",
                          b"math", b"meter", b"progress"})
_INLINE_LEVEL = frozenset({b"inline", b"inline-block", b"inline-flex", b"inline-grid",
                           b"inline-table", b"contents", b"ruby", b"inline-list-item"})
_TABLES = frozenset({b"table", b"inline-table"})
#: Boxes whose content is laid out in lines of its own (a paragraph for the bidi algorithm).
_BIDI_BLOCKS = frozenset({b"block", b"inline-block", b"list-item", b"table-cell",
                          b"table-caption", b"flow-root", b"inline-list-item"})
_OUT_OF_FLOW = frozenset({b"absolute", b"fixed"})
#: What a table's parser keeps inside it, its row groups and rows; any other content is
#: "foster parented": shown before the table (`<table><tr><td>B</td></tr>A</table>`: A, B).
_IN_TABLE = frozenset({b"caption", b"colgroup", b"col", b"tbody", b"thead", b"tfoot", b"tr",
                       b"td", b"th", b"script", b"style", b"template", b"form"})
_IN_GROUP = frozenset({b"tr", b"td", b"th", b"script", b"style", b"template", b"form"})
_IN_ROW = frozenset({b"td", b"th", b"script", b"style", b"template", b"form"})
_BREAK = -1  # (a token that ends a line of the bidi reordering)


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
    #: `X > *` (children) and `X *` (descendants): every element inside an X
    inside: bool = False
    children_only: bool = False
    #: its place in the cascade: (!important, cascade layer, specificity, order)
    rank: tuple[int, ...] = ()
    #: a rule's compounds before its subject, nearest first, each with the combinator after
    #: it (b">", b" ", b"+", b"~") (misc18: `.m li::marker` styles the markers of an `.m`'s
    #: items, no others; session 24: a decoy `.none div{flex-direction:row-reverse}` turns
    #: no row round)
    ancestors: tuple[tuple[bytes, _Compound], ...] = ()


def _declarations(text: bytes, important: bool = False) -> dict[bytes, bytes]:
    """The properties of interest (the `!important` ones, or the others), shorthands as
    their longhands, in order (the later winning). Read once per distinct short text (a
    newsletter repeats its style attributes in every item); the dict is shared: read only."""
    kept = _KEPT.get()
    if len(text) > 2048:
        return _declarations_of(text, important, kept)
    key = (text, important, kept)
    known = _DECLARATIONS.get(key)
    if known is None:
        if len(_DECLARATIONS) >= 4096:
            _DECLARATIONS.clear()
        known = _DECLARATIONS[key] = _declarations_of(text, important, kept)
    return known


_DECLARATIONS: dict[tuple[bytes, bool, frozenset[bytes]], dict[bytes, bytes]] = {}


def _declarations_of(text: bytes, important: bool, kept: frozenset[bytes]
                     ) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    custom: dict[bytes, bytes] = {}
    for m in _DECL.finditer(text):
        name = m.group(1).lower()
        if name not in kept:
            if name[:2] == b"--":
                custom[m.group(1)] = m.group(2).strip()
            continue
        value = m.group(2).strip()
        if b"var(" in value:  # (custom properties of the same block: `--o:3;order:var(--o)`)
            value = _VAR.sub(lambda v: custom.get(v.group(1), v.group(2) or b""), value)
        if (b"!" in value and _IMPORTANT.search(value) is not None) != important:
            continue
        if important:
            value = _IMPORTANT.sub(b"", value).rstrip()
        expand = SHORTHANDS.get(name)
        if expand is not None:
            out.update(expand(value))
        else:
            out[name] = value
    return out


def _display(tag: bytes, own: dict[bytes, bytes]) -> bytes:
    """An element's display type (two keywords as one: `inline flex` is `inline-flex`)."""
    given = own.get(b"display") if own else None
    if not given:
        return _TAG_DISPLAY.get(tag) or (b"block" if tag in _BLOCK_TAGS else b"inline-block"
                                         if tag in _ATOMIC_TAGS else b"inline")
    known = _DISPLAYS.get((tag, given))
    if known is None:
        if len(_DISPLAYS) > 4096:
            _DISPLAYS.clear()
        known = _DISPLAYS[tag, given] = _display_of(tag, given)
    return known


_DISPLAYS: dict[tuple[bytes, bytes], bytes] = {}


def _display_of(tag: bytes, given: bytes) -> bytes:
    value = given.strip().lower()
    words = value.split()
    if len(words) == 2 and b"inline" in words:
        inner = words[1] if words[0] == b"inline" else words[0]
        value = b"inline-block" if inner == b"flow-root" else b"inline-" + inner
    elif len(words) == 2 and words[0] in (b"block", b"run-in"):
        value = words[1]
    if value and value[:1].isalpha() and value not in (b"inherit", b"initial", b"unset",
                                                       b"revert", b"revert-layer"):
        return value
    return _display(tag, _NOTHING)


def _attr(attrs: bytes, name: bytes) -> bytes | None:
    """The value of a tag's first attribute of that (lower-case) name. A short tag is read
    once into a table of its attributes: the layout asks an element's tag several times, and
    a newsletter repeats its tags (`<td style=... dir=rtl>` in every item)."""
    if len(attrs) > 1024:
        for m in _ATTRS.finditer(attrs):
            if m.group(1).lower() == name:
                value = m.group(2) or m.group(3) or m.group(4) or b""
                return _unescape(value) if b"&" in value else value
        return None
    values = _ATTR_VALUES.get(attrs)
    if values is None:
        values = {}
        for m in _ATTRS.finditer(attrs):
            key = m.group(1).lower()
            if key not in values:
                values[key] = m.group(2) or m.group(3) or m.group(4) or b""
        if len(_ATTR_VALUES) >= 4096:
            _ATTR_VALUES.clear()
        _ATTR_VALUES[attrs] = values
    value = values.get(name)
    if value is None:
        return None
    return _unescape(value) if b"&" in value else value


_ATTR_VALUES: dict[bytes, dict[bytes, bytes]] = {}


def _parse(data: bytes, check: Callable[[], None] | None) -> _El:
    root = _El(b"", b"", b"")
    stack = [root]
    opened = _OpenElements()
    where = opened.where
    at = 0
    for n, m in enumerate(_ELEMENT.finditer(data), 1):
        if check is not None and not n % 4096:
            check()
        start, end = m.span()
        if start < at:
            continue  # inside a raw-text element's content
        if start > at:
            stack[-1].kids.append(data[at:start])
        at = end
        closing, name, attrs = m.groups()  # (one call for the three groups)
        if name is None:
            continue  # a comment: not shown
        tag = name.lower()
        if closing:
            if tag == b"br" or (tag == b"p" and not opened.p_in_button_scope()):
                # (the parser makes `</br>` a `<br>`, and a `</p>` with no `<p>` to close
                # an empty `<p>`: session 24, `p::before` content, a sibling counted)
                parent = len(stack) - 1 if len(stack) < _MAX_TREE_DEPTH else opened.parent()
                stack[parent].kids.append(_El(tag, b"", m.group(), b""))
            elif where.get(tag):  # (the calls only where they do something: a newsletter's
                depth = opened.close(tag)  # thousands of tags)
                if depth is not None:
                    stack[depth].close_tag = m.group()
                    del stack[depth:]
            continue
        if tag in _CLOSES:
            depth = opened.implied(tag)
            if depth is not None:
                del stack[depth:]
        el = _El(tag, attrs, m.group())
        # (`_OpenElements.parent`: past the bound only when it may be, <html>, <body> counted)
        parent = len(stack) - 1 if len(stack) < _MAX_TREE_DEPTH else opened.parent()
        stack[parent].kids.append(el)
        if tag in _RAW_TEXT:
            end, after = _raw_text_end(data, tag, at)
            el.kids.append(data[at:end])
            el.close_tag = data[end:after]
            at = after
        elif tag not in _VOID and not attrs.rstrip().endswith(b"/"):
            opened.push(tag, parent)
            stack.append(el)
    if at < len(data):
        stack[-1].kids.append(data[at:])
    return root


def _rules(data: bytes) -> tuple[list[_Rule], dict[bytes, counterstyles.Style]]:
    """The page's rules of interest, each with its rank in the cascade (round 17: a rule
    of more specificity wins over a later one, `!important` over both, by layers), and its
    counter styles (`@counter-style`, round 18)."""
    out: list[_Rule] = []
    sheet = _all_sheet_rules(data)
    styles = [(r.selectors, r.declarations) for r in sheet
              if r.selectors[:14].lower() == b"@counter-style"]
    counter_styles = counterstyles.sheet_styles(styles, _css_text) if styles else {}
    for order, rule in enumerate(r for r in sheet if r.selectors[:1] != b"@"):
        kinds = [(important, decls) for important in (False, True)
                 if (decls := _declarations(rule.declarations, important))]
        if not kinds:
            continue
        for listed in _selectors(_selector_text(rule.selectors)):
            pseudo = _PSEUDO_ELEMENT.search(listed)
            selector = listed[: pseudo.start()] if pseudo else listed
            subject = _compound(selector) or _any_element(selector or b"*")
            if subject is None:
                continue
            for important, decls in kinds:
                if important:  # (layers: the first's !important wins, unlayered ones lose)
                    layer = 0 if rule.layer < 0 else rule.layers - rule.layer
                else:
                    layer = rule.layers if rule.layer < 0 else rule.layer
                out.append(_Rule(subject, pseudo.group(1).lower() if pseudo else b"", decls,
                                 subject.children, _CHILDREN.search(selector) is not None,
                                 (int(important), layer, *_specificity(selector), order),
                                 _ancestors(selector)))
    return out, counter_styles


_BRACKETED = re.compile(rb"\([^()]*(?:\([^()]*\)[^()]*)*\)|\[[^\[\]]*+\]")
_STEP = re.compile(rb"\s*([>+~])\s*|\s+")


def _ancestors(selector: bytes) -> tuple[tuple[bytes, _Compound], ...]:
    """The compounds before a selector's subject, nearest first, each with the combinator
    that follows it; one not read, `*`, or a bare tag the parser makes where the page writes
    none (`tr`, `tbody`) is any element."""
    text = selector.strip()
    if b"(" in text or b"[" in text:  # (blanks and `>` inside brackets are no combinators)
        text = _BRACKETED.sub(lambda m: m.group().replace(b" ", b"\x00").replace(
            b">", b"\x01").replace(b"+", b"\x02").replace(b"~", b"\x03"), text)
        parts = [p if p is None else p.replace(b"\x00", b" ").replace(b"\x01", b">").replace(
            b"\x02", b"+").replace(b"\x03", b"~") for p in _STEP.split(text)]
    else:
        parts = _STEP.split(text)
    # parts: compound, combinator (None for blanks), compound, ...
    compounds = parts[0::2]
    if len(compounds) < 2:
        return ()
    out: list[tuple[bytes, _Compound]] = []
    for k in range(len(compounds) - 2, -1, -1):
        combinator = parts[2 * k + 1] or b" "
        part = _ROOT_FIRST.sub(b"html", compounds[k] or b"")  # (`:root`)
        compound = _compound(part) if part not in (b"", b"*") else None
        if compound is None or compound.children or (
                compound.tag in _IMPLIED and compound.tag not in _PAGE_PARTS and not (
                    compound.ids or compound.classes or compound.attrs)):
            compound = _ANY
        out.append((combinator, compound))
    return tuple(out)


_ANY = _Compound(None, frozenset(), frozenset(), ())


def _body_part(kids: list[_El | bytes]) -> list[_El | bytes]:
    """The top of a page without its leading `<style>`, `<meta>`... (the parser puts them in
    `<head>`: `p:first-child` is the first `<p>` after a style sheet)."""
    for i, kid in enumerate(kids):
        if (isinstance(kid, _El) and kid.tag in _HEAD_ONLY) or (
                isinstance(kid, bytes) and not kid.strip()):
            continue
        return kids[i:] if i else kids
    return []


def _places(kids: list[_El | bytes]) -> dict[int, Place]:
    """Each element's place among its sibling elements: (its index, its index among those
    of its tag, how many there are, how many of its tag), counted from 1."""
    elements = [k for k in kids if isinstance(k, _El) and k.tag]
    totals: dict[bytes, int] = {}
    for k in elements:
        totals[k.tag] = totals.get(k.tag, 0) + 1
    seen: dict[bytes, int] = {}
    out: dict[int, Place] = {}
    for i, k in enumerate(elements, 1):
        seen[k.tag] = seen.get(k.tag, 0) + 1
        out[id(k)] = (i, seen[k.tag], len(elements), totals[k.tag])
    return out


_CHILDREN = re.compile(rb">\s*\*\s*$")


def _cascaded(rules: list[_Rule], el: _El) -> dict[bytes, dict[bytes, bytes]]:
    """The properties the rules an element matches and its style attribute give it, per
    pseudo-element, in the cascade's order (the style attribute after the rules, but
    before their `!important` declarations)."""
    out: dict[bytes, dict[bytes, bytes]] = {}
    style = _attr(el.attrs, b"style") if b"style" in el.attrs.lower() else None
    text = _css_text(style) if style else b""
    inline = False
    for rule in sorted(rules, key=lambda r: r.rank):
        if rule.rank[0] and not inline and text:
            out.setdefault(b"", {}).update(_declarations(text))
            inline = True
        out.setdefault(rule.pseudo, {}).update(rule.decls)
    if text:
        if not inline:
            out.setdefault(b"", {}).update(_declarations(text))
        important = _declarations(text, True)
        if important:
            out.setdefault(b"", {}).update(important)
    return out


def _lower(value: bytes | None) -> bytes:
    return value.strip().lower() if value else b""


class _Layout:
    def __init__(self, rules: list[_Rule], check: Callable[[], None] | None,
                 counter_styles: dict[bytes, counterstyles.Style] | None = None,
                 data: bytes = b"") -> None:
        self.rules = [r for r in rules if not r.inside]
        self.data = data  # (the page: the attributes of its `<html>`, `<body>` tags)
        self.parts: dict[tuple[int, bytes], bool] = {}  # (`_page_part`, per compound)
        #: (`page_part_attributes`, per tag, and as `_attributes` reads them)
        self.part_attrs: dict[bytes, tuple[bytes, dict[bytes, bytes], set[bytes]]] = {}
        #: CSS counters (round 18): each name's instances, outermost first; per element
        #: being laid out, the names its children instantiated (their scope ends with it)
        self.counter_styles = counter_styles or {}
        self.counters: dict[bytes, list[int]] = {}
        self.scopes: list[set[bytes]] = [set()]
        self.nested: list[set[bytes]] = [set()]
        self.quote_depth = 0
        self.quote_pairs: dict[bytes, tuple[tuple[bytes, bytes], ...]] = {}
        self.written = 0  # characters that `content` wrote
        self.represented: dict[tuple[int, bytes], bytes] = {}  # (counter texts, once)
        #: `X > *`, `X *` rules: they style an element by where it stands, not its tag
        self.inside = [r for r in rules if r.inside]
        # rules by what their subject needs (an id, a class, else a tag, else nothing), in
        # order: an element tries only the rules that could match it
        self.index: dict[bytes, list[int]] = {}
        for i, rule in enumerate(self.rules):
            c = rule.subject
            key = (b"#" + min(c.ids).lower() if c.ids else b"." + min(c.classes).lower()
                   if c.classes else c.tag or b"*")
            self.index.setdefault(key, []).append(i)
        self.check = check
        self.tries = 0
        #: the elements being laid out, outermost first (a rule's ancestors are among them)
        #: where each element stands: (its parent, the parent's elements, its index there)
        self.where: dict[int, tuple[_El, list[_El], int]] = {}
        self.selected: dict[tuple[int, int, int], bool] = {}  # (selector, step, element)
        #: rules whose subject has a structural pseudo-class (`li:nth-child(2)::marker`,
        #: `.f > :nth-child(3){order:1}`): matched by the element's place among its siblings
        self.nth = [r for r in rules if r.subject.nth and not r.inside]
        self.prefixed = bool(self.nth) or any(r.ancestors for r in rules)
        self.seen = 0
        # (elements alike style alike: a page of 40k equal `<p>`s matches the rules once)
        self.cache: dict[tuple[bytes, bytes], dict[bytes, dict[bytes, bytes]]] = {}
        self.matched: dict[tuple[bytes, bytes], list[_Rule]] = {}
        self.cascades: dict[tuple[tuple[int, ...], bytes | None],
                            dict[bytes, dict[bytes, bytes]]] = {}
        #: each laid-out element's own properties (with the `X > *` rules it takes)
        #: (the element kept with them: an element laid out and then dropped, `<select>`'s
        #: content not chosen, freed its id for a copy made later, which read its properties)
        self.own: dict[int, tuple[_El, dict[bytes, bytes]]] = {}
        self.placed = 0  # boxes placed by offsets, laid out so far
        #: right-to-left overrides laid out so far, and which elements they are
        self.overrides = 0
        self.rtl_overrides: set[int] = set()
        self.chars: dict[int, int] = {}  # (an element's text length, once it is laid out)
        #: each properties dict's inherited part (`_passed`), by id, with the dict
        self.passing: dict[int, tuple[dict[bytes, bytes], dict[bytes, bytes]]] = {}

    def _passed(self, own: dict[bytes, bytes]) -> dict[bytes, bytes]:
        """What of an element's own properties its content inherits (`_INHERITED`), once per
        properties dict (shared by the elements that cascade alike; kept with it, so that
        its id names no other dict while the layout lasts): read only."""
        known = self.passing.get(id(own))
        if known is not None and known[0] is own:
            return known[1]
        out = {k: v if k.startswith((b"list", b"quotes")) else _lower(v)
               for k, v in own.items() if k in _INHERITED}
        self.passing[id(own)] = (own, out)
        return out

    def own_of(self, el: _El) -> dict[bytes, bytes]:
        """An element's own properties (those it took by where it stands too)."""
        kept = self.own.get(id(el)) if self.own else None
        own = kept[1] if kept is not None and kept[0] is el else None
        return own if own is not None else self.styles(el).get(b"", _NOTHING)

    def _in_context(self, el: _El, rules: tuple[_Rule, ...]
                    ) -> dict[bytes, dict[bytes, bytes]]:
        """The element's styles with those of the `X > *`, `X *` rules it stands under."""
        self.styles(el)
        return _cascaded([*self.matched[el.tag, el.attrs], *rules], el)

    def styles(self, el: _El) -> dict[bytes, dict[bytes, bytes]]:
        """The element's properties of interest, per pseudo-element (b"": its own)."""
        known = self.cache.get((el.tag, el.attrs))
        if known is not None:
            return known
        matched: list[_Rule] = []
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
                matched.append(rule)
        self.matched[el.tag, el.attrs] = matched
        # (elements alike but for other attributes, `<img src=...>`s, cascade alike: the
        # cascade reads only the rules matched and the style attribute; shared, read only)
        style = _attr(el.attrs, b"style") if b"style" in el.attrs.lower() else None
        key = (tuple(map(id, matched)), style)
        out = self.cascades.get(key)
        if out is None:
            out = self.cascades[key] = _cascaded(matched, el)
        self.cache[el.tag, el.attrs] = out
        return out

    def lay_out(self, el: _El, inherited: dict[bytes, bytes], font: float = 16.0,
                item: bool = False, descendants: tuple[_Rule, ...] = (),
                context: tuple[_Rule, ...] = (), place: Place | None = None) -> None:
        """Lay out an element and what it holds (`item`: a flex or grid item, a block;
        `descendants`: the `X *` rules of its ancestors, `context`: those and the `X > *`
        rules of its parent; `place`: where it stands among its siblings, when a rule asks)."""
        self.seen += 1
        if self.check is not None and not self.seen % 4096:
            self.check()
        styles = (self._in_context(el, context) if context else self.cache.get(
            (el.tag, el.attrs)) or self.styles(el)) if el.tag else {}
        its_own = False
        if el.tag and self.prefixed:
            # rules only under the ancestors they name (misc18, session 24), and structural
            # pseudo-element rules by the element's place
            styles, its_own = self._placed_styles(el, styles, context, place)
        own = styles.get(b"", _NOTHING)
        if context or its_own:
            self.own[id(el)] = (el, own)
        here = inherited  # (a copy only where it changes)
        dir_attr = b"dir" in el.attrs.lower()
        if own or dir_attr or el.tag == b"bdi":
            passed = self._passed(own) if own else _NOTHING
            way: bytes | None = None  # (the direction the element sets, if it sets one)
            if b"direction" not in own and dir_attr:
                given = _lower(_attr(el.attrs, b"dir"))
                if given in (b"rtl", b"ltr"):  # (the attribute is a presentational hint)
                    way = given
                elif given == b"auto":
                    way = _auto_direction(el, b"ltr")
            elif el.tag == b"bdi" and b"direction" not in own:  # (`dir=auto` by default)
                way = _auto_direction(el, b"ltr")
            if b"unicode-bidi" in own and _lower(own[b"unicode-bidi"]) == b"plaintext":
                way = _auto_direction(el, way if way is not None else passed.get(
                    b"direction", inherited.get(b"direction", b"ltr")))
            if passed:
                here = {**inherited, **passed}
            if way is not None and here.get(b"direction") != way:
                if here is inherited:
                    here = dict(inherited)
                here[b"direction"] = way
            if b"font-size" in own:
                font = font_size(own[b"font-size"], font)
        display = _display(el.tag, own) if el.tag else b"block"
        if display in _TABLES:
            here = {**here, b"-table-direction": here.get(b"direction", b"ltr")}
        if self.inside and el.tag:
            self.tries += len(self.inside)
            if self.tries > _MAX_TRIES:
                raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_MANY_MATCHES)
            matched = [r for r in self.inside if _matches(r.subject, el.tag, el.attrs)]
            if matched:
                descendants = (*descendants, *(r for r in matched if not r.children_only))
                context = (*descendants, *(r for r in matched if r.children_only))
            else:
                context = descendants
        grid_or_flex = b"flex" in display or b"grid" in display
        # counters (round 18): the element's own, then its ::marker's and ::before's (in
        # its scope), what they write, its content, then its ::after
        siblings = self.scopes[-1]
        nested: set[bytes] = set()  # (counters of its own nested in an ancestor's)
        if el.tag in _LISTS:
            self._count(b"counter-reset", b"list-item %d" % _list_start(el), siblings, nested)
        if own or el.tag == b"li":
            for op in _COUNTER_OPS:
                if op in own:
                    self._count(op, own[op], siblings, nested)
            if el.tag == b"li" and b"list-item" not in own.get(b"counter-increment", b""):
                value = _attr(el.attrs, b"value") if b"value" in el.attrs.lower() else None
                if value is not None and _INTEGER.match(value.strip()):
                    self._count(b"counter-set", b"list-item " + value.strip(), siblings, nested)
                else:
                    self._count(b"counter-increment", b"list-item", siblings, nested)
        mine: set[bytes] = set()
        self.scopes.append(mine)
        self.nested.append(nested)
        quoted = el.tag == b"q"
        # (any list item has a marker: `display: list-item`, a `<summary>`, misc18)
        listed = el.tag in (b"li", b"summary") or display in (b"list-item",
                                                                b"inline-list-item")
        marker = self._content(styles.get(b"marker"), el, here) if listed else b""
        if listed and not marker:
            marker = self._marker(here)
        before = self._content(styles.get(b"before"), el, here, b"open-quote" if quoted else None
                               ) if quoted or styles.get(b"before") else b""
        placed = self.placed
        overrides = self.overrides
        kids = _body_part(el.kids) if el.tag in (b"", b"html") else el.kids
        places = _places(kids) if self.nth else {}
        if self.prefixed:
            elements = [k for k in kids if isinstance(k, _El) and k.tag]
            for i, k in enumerate(elements):
                self.where[id(k)] = (el, elements, i)
        for kid in el.kids:
            if isinstance(kid, _El) and kid.tag not in _RAW_TEXT:
                self.lay_out(kid, here, font, grid_or_flex, descendants, context,
                             places.get(id(kid)) if places else None)
            elif isinstance(kid, _El) and kid.tag == b"textarea" and b"placeholder" in (
                    kid.attrs.lower()) and b"".join(
                        k for k in kid.kids if isinstance(k, bytes)) in (b"", b"\n", b"\r\n"):
                # an empty text area shows its placeholder (after it: a text area's text
                # is no part of the page's for the readers)
                kid.close_tag += _attr(kid.attrs, b"placeholder") or b""
        inside = self.placed - placed  # placed boxes inside it
        if b"position" in own and _placed_box(own, font):
            self.placed += 1
        # (`_content` writes nothing without declarations or a default: not called)
        after = self._content(styles.get(b"after"), el, here, b"close-quote" if quoted else None
                              ) if quoted or styles.get(b"after") else b""
        if mine or nested:
            for name in (*mine, *nested):  # (the scope of the counters its children made
                instances = self.counters.get(name)  # ends here, and of those nested in
                if instances:  # its own)
                    instances.pop()
        self.scopes.pop()
        self.nested.pop()
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
            elif kind == b"image":  # (an image button shows its alt text, round 18)
                kids.append(_attr(el.attrs, b"alt") or b"")
            elif not value and kind in _TEXT_INPUTS:  # an empty field shows its placeholder
                kids.append(_attr(el.attrs, b"placeholder") or b"")
        elif el.tag == b"select":
            el.kids = kids = _chosen(el)
        if el.tag in _DRAWN_FIRST:
            kids = el.kids = _drawn_first(el.tag, kids)
        if font == 0:  # (round 20: `li{font-size:0} li::marker{font-size:12px}` shows the
            # marker alone; its text is written outside the element, which hides its own)
            if (marker or before) and (_sized(styles.get(b"marker"), listed)
                                       or _sized(styles.get(b"before"), True)):
                el.open_tag = marker + before + el.open_tag
                marker = before = b""
            if after and _sized(styles.get(b"after"), True):
                el.close_tag += after
                after = b""
        if before or marker:
            kids.insert(0, marker + before)
        if after:
            kids.append(after)
        fostered = _foster(el) if el.tag == b"table" else None
        ordered = self._ordered(el, el.kids, own, here, font, display, item,
                                self.overrides > overrides)
        el.kids = fostered + ordered if fostered is not None else ordered
        if not own and el.tag and el.tag != b"bdo":
            return  # (what follows needs properties of its own, a `<bdo>` or the root)
        if (b"overflow" in own or b"overflow-x" in own or b"overflow-inline" in own
                or b"contain" in own) and display not in (b"inline", b"contents"):
            _clip(el, own, here, font)
        if inside and _containing_block(el, own):
            self._gather_placed(el, own, font, here.get(b"direction") == b"rtl")
        # an override (`<bdo>`, `unicode-bidi: bidi-override | isolate-override`, by a
        # class too: round 18) right to left: its content reversed, its structure kept
        # (hidden elements in it stay out of the readings: misc18)
        if (el.tag == b"bdo" or b"unicode-bidi" in own) and here.get(
                b"direction") == b"rtl" and _unicode_bidi(el, own).endswith(b"override"):
            self.overrides += 1
            self.rtl_overrides.add(id(el))
            self._overridden(el, 0)
        elif (b"transform" in own or b"scale" in own) and (
                item or display not in (b"inline", b"contents")) and _mirrored_box(own):
            self._overridden(el, 0)  # (a mirrored box: its glyphs read right to left)

    def _overridden(self, el: _El, depth: int) -> None:
        """A right-to-left override's content as it shows (misc18): each line's pieces last
        to first, its text mirrored, and so the text of the plain inline elements in it; an
        element with a direction of its own (an isolate, an override, an inline block: its
        content is shown in its own order, already laid out) kept as it is, as are hidden
        elements (the readers of the laid-out page still leave them out). A block or `<br>`
        in it ends a line: the lines keep their order."""
        out: list[_El | bytes] = []
        line: list[_El | bytes] = []
        for kid in (*el.kids, None):
            if kid is not None and (isinstance(kid, bytes) or kid.tag in _RAW_TEXT):
                line.append(mirrored(kid) if isinstance(kid, bytes) else kid)
                continue
            own = self.own_of(kid) if kid is not None else _NOTHING
            display = _display(kid.tag, own) if kid is not None else b""
            if kid is None or kid.tag == b"br" or (display not in _INLINE_LEVEL
                                                   and display != b"none"):
                out += line[::-1]
                line = []
                if kid is not None:
                    out.append(kid)
                continue
            if (display in (b"inline", b"contents") and kid.tag not in _ATOMIC_TAGS
                    and _unicode_bidi(kid, own) == b"normal"
                    and _lower(own.get(b"position")) not in _OUT_OF_FLOW
                    and _lower(own.get(b"float")) not in _FLOATS
                    and depth < _MAX_DEPTH):
                self._overridden(kid, depth + 1)
            line.append(kid)
        el.kids = out

    def _placed_styles(self, el: _El, styles: dict[bytes, dict[bytes, bytes]],
                       context: tuple[_Rule, ...], place: Place | None
                       ) -> tuple[dict[bytes, dict[bytes, bytes]], bool]:
        """The element's styles from the rules whose ancestors it stands under only (a decoy
        `.none li::marker` rule matches no item, `.none div{order:1}` no div), and from the
        pseudo-element rules whose structural pseudo-classes its place among its siblings
        matches; and whether they are its own (not those of every element alike)."""
        self.tries += len(self.nth)
        nth = [r for r in self.nth if place is not None and _matches(
            r.subject, el.tag, el.attrs, place)]
        matched = [*self.matched.get((el.tag, el.attrs), ()), *context, *nth]
        if not nth and not any(r.ancestors for r in matched):
            return styles, False
        self.tries += len(matched)
        if self.tries > _MAX_TRIES:
            raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_MANY_MATCHES)
        kept = [r for r in matched if not r.ancestors or self._selects(r.ancestors, 0, el)]
        return _cascaded(kept, el), True

    def _selects(self, steps: tuple[tuple[bytes, _Compound], ...], k: int, el: _El) -> bool:
        """Whether the elements around `el` match a selector's compounds `steps[k:]` (nearest
        first) as their combinators ask (each answer kept: linear in the page's elements)."""
        if k == len(steps):
            return True
        key = (id(steps), k, id(el))
        known = self.selected.get(key)
        if known is not None:
            return known
        combinator, compound = steps[k]
        if compound.tag in _PAGE_PARTS and combinator in (b" ", b">"):
            # (the parser's one `<html>`, `<body>`, written or not, stand above the page's
            # elements: matched by the attributes the page gives them; as a parent, `<body>`
            # is the top's, `<html>` only `<body>`'s and `<head>`'s)
            up = self.where.get(id(el))
            above = up[0].tag if up is not None else b""
            found = self._page_part(compound) and steps_above(
                steps, k + 1, compound.tag or b"", self._page_part) and ((combinator == b" " and (
                    compound.tag != b"head" or any(
                        a.tag == b"head" for a in self._around(el, b" ")))) or (
                compound.tag == b"body" and above in (b"", b"html", b"body")) or (
                compound.tag == b"html" and el.tag in (b"head", b"body")) or (
                compound.tag == b"head" and above == b"head"))
            self.selected[key] = found
            return found
        found = False
        where = self.where.get(id(el))
        if combinator in (b" ", b">") and where is not None and not where[0].tag and _matches(
                compound, b"body", b""):
            found = True  # (at the top of `_parse`'s tree: under the parser's `<body>`)
        for other in () if found else self._around(el, combinator):
            self.tries += 1
            if self.tries > _MAX_TRIES:
                raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_MANY_MATCHES)
            place = self._place(other) if compound.nth else None
            if _matches(compound, other.tag, other.attrs, place) and self._selects(
                    steps, k + 1, other):
                found = True
                break
        self.selected[key] = found
        return found

    def _page_part(self, compound: _Compound, tag: bytes | None = None) -> bool:
        """Whether the parser's `<html>`, `<head>` or `<body>` (`tag`, else the compound's)
        matches `compound`: it has the attributes of every such tag the page writes (none
        when it writes none), and its place among its siblings."""
        tag = tag or compound.tag or b""
        known = self.parts.get((id(compound), tag))
        if known is None:
            parsed = self.part_attrs.get(tag)
            if parsed is None:  # (its attributes parsed once, not per rule)
                merged = page_part_attributes(self.data, tag)
                parsed = self.part_attrs[tag] = (merged, *_attributes(merged))
            self.tries += 1
            known = self.parts[id(compound), tag] = compound.tag in (None, tag) and _matches(
                compound, tag, parsed[0], _PART_PLACES[tag], parsed[1], parsed[2])
        return known

    def _around(self, el: _El, combinator: bytes) -> list[_El]:
        """The elements a combinator leads to from `el`: its parent (`>`), its ancestors
        (a blank), the sibling before it (`+`), those before it (`~`)."""
        where = self.where.get(id(el))
        if where is None:
            return []
        parent, siblings, i = where
        if combinator == b">":
            return [parent] if parent.tag else []
        if combinator == b"+":
            return siblings[i - 1 : i] if i else []
        if combinator == b"~":
            return siblings[:i][::-1]
        out: list[_El] = []
        while where is not None and where[0].tag and len(out) < _MAX_DEPTH:
            out.append(where[0])
            where = self.where.get(id(where[0]))
        return out

    def _place(self, el: _El) -> Place | None:
        where = self.where.get(id(el))
        if where is None:
            return None
        self.tries += len(where[1])
        return _places(list(where[1])).get(id(el))

    def _count(self, op: bytes, value: bytes, scope: set[bytes], nested: set[bytes]) -> None:
        """`counter-reset`, `counter-increment` or `counter-set` (`scope`: the names the
        element's parent's children instantiated: a sibling's reset takes the place of an
        earlier sibling's counter, and the siblings after it take it; one nested in an
        ancestor's counter of the name is the element's and its content's only, `nested`,
        as Chromium counts)."""
        words = split(value.strip())
        if not words or words[0].lower() == b"none":
            return
        default = 1 if op == b"counter-increment" else 0
        i = 0
        while i < len(words):
            name = words[i]
            if name.lower().startswith(b"reversed("):
                name = name[9:].rstrip(b")").strip()
            amount = default
            if i + 1 < len(words) and _INTEGER.match(words[i + 1]):
                amount = int(words[i + 1])
                i += 1
            i += 1
            if not _COUNTER_NAME.match(name):
                continue
            instances = self.counters.setdefault(name, [])
            if op == b"counter-reset" or not instances:
                if (name in scope or name in nested) and instances:
                    instances[-1] = 0
                else:
                    (nested if instances else scope).add(name)
                    instances.append(0)
            if op == b"counter-increment":
                instances[-1] += amount
            else:
                instances[-1] = amount
            instances[-1] = max(-_COUNTER_LIMIT - 1, min(_COUNTER_LIMIT, instances[-1]))

    def _content(self, decls: dict[bytes, bytes] | None, el: _El, here: dict[bytes, bytes],
                 default: bytes | None = None) -> bytes:
        """What a pseudo-element's `content` writes (`default`: `<q>`'s quotes, without
        one of its own): strings, attributes, counters, quotation marks."""
        if not decls and default is None:
            return b""
        content = decls.get(b"content") if decls else None
        if content is None:
            content = default or None
        if not content:
            return b""
        if decls:
            for op in _COUNTER_OPS:
                if op in decls:
                    self._count(op, decls[op], self.scopes[-1], self.nested[-1])
        out = []
        size = 0
        for m in _CONTENT_TOKEN.finditer(content):
            if m.group(3) is not None:
                out.append(_attr(el.attrs, m.group(3).lower()) or b"")
            elif m.group(4) is not None:
                out.append(self._counter(m.group(4).lower() == b"counters", m.group(5)))
            elif m.group(7) is not None:
                out.append(self._quote(m.group(7).lower() == b"open", m.group(6) is not None,
                                       (decls or {}).get(b"quotes") or here.get(b"quotes")))
            else:
                out.append(_css_text(m.group(1) if m.group(1) is not None else m.group(2)))
            size += len(out[-1])  # (a running total: summed again after each token, quadratic)
            if size > _MAX_CONTENT:  # (what is past it may be the payload: not cut, a limit)
                raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_MUCH_CONTENT)
        text = b"".join(out)
        self.written += len(text)
        if self.written > _MAX_WRITTEN:
            raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_MUCH_CONTENT)
        return text

    def _counter(self, every: bool, arguments: bytes) -> bytes:
        """`counter(name, style)`, `counters(name, "separator", style)`."""
        args = [m.group(1) for m in _ARGUMENT.finditer(arguments)]
        if not args or not _COUNTER_NAME.match(args[0]):
            return b""
        instances = self.counters.get(args[0]) or [0]
        separator = b""
        if every:
            if len(args) < 2 or args[1][:1] not in (b'"', b"'"):
                return b""
            separator = _css_text(args[1][1:-1])
            args = args[:1] + args[2:]
        style = args[1] if len(args) > 1 else b"decimal"
        if style.lower() == b"decimal" and style not in self.counter_styles:
            return separator.join(map(b"%d".__mod__, instances if every else instances[-1:]))
        shown = []
        for value in (instances if every else instances[-1:]):
            text = self.represented.get((value, style))
            if text is None:
                if len(self.represented) > 1 << 16:
                    self.represented.clear()
                text = self.represented[value, style] = counterstyles.represent(
                    value, style, self.counter_styles)
            shown.append(text)
        return separator.join(shown)

    def _quote(self, opening: bool, silent: bool, quotes: bytes | None) -> bytes:
        """`open-quote` / `close-quote` (`no-...`: the depth changes, nothing shows)."""
        if not opening:
            if not self.quote_depth:
                return b""
            self.quote_depth -= 1
        depth = self.quote_depth
        if opening:
            self.quote_depth += 1
        if silent:
            return b""
        value = (quotes or b"auto").strip()
        pairs = self.quote_pairs.get(value)
        if pairs is None:
            strings = [_css_text(m.group(1) if m.group(1) is not None else m.group(2))
                       for m in _QUOTE_STRINGS.finditer(value)]
            pairs = () if value.lower() == b"none" else tuple(
                (strings[i], strings[i + 1]) for i in range(0, len(strings) - 1, 2)
            ) if len(strings) >= 2 else _AUTO_QUOTES
            if len(self.quote_pairs) < 4096:
                self.quote_pairs[value] = pairs
        if not pairs:
            return b""
        pair = pairs[min(depth, len(pairs) - 1)]
        return pair[0] if opening else pair[1]

    def _marker(self, styles: dict[bytes, bytes]) -> bytes:
        """A list item's marker from its `list-style-type`: a string, or a counter style
        of the page's (round 18; the predefined styles' markers are no text of a file)."""
        found = _marker(styles)
        if found or not self.counter_styles:
            return found
        for prop in (b"list-style-type", b"list-style"):
            for word in split(styles.get(prop, b"")):
                if word in self.counter_styles:
                    value = (self.counters.get(b"list-item") or [1])[-1]
                    return counterstyles.marker(value, word, self.counter_styles)
        return b""

    def _ordered(self, el: _El, kids: list[_El | bytes], own: dict[bytes, bytes],
                 here: dict[bytes, bytes], font: float, display: bytes, item: bool,
                 overridden: bool = False) -> list[_El | bytes]:
        """The element's content in the order it shows, left to right, top to bottom
        (`overridden`: right-to-left overrides are laid out inside it)."""
        rtl = here.get(b"direction") == b"rtl"
        # (an override's own content is not reordered: `lay_out` reverses it whole, round 18)
        if (rtl or overridden) and (display in _BIDI_BLOCKS or (
                display in (b"inline", b"contents") and (
                    item or _has_dir(el.attrs) or _lower(own.get(
                        b"unicode-bidi")) in (b"isolate", b"isolate-override", b"plaintext")))
                ) and not (el.tag and (el.tag == b"bdo" or b"unicode-bidi" in own)
                           and _unicode_bidi(el, own).endswith(b"override")):
            # (an override only by its own `unicode-bidi` or as a `<bdo>`: `_unicode_bidi`)
            kids = self._bidi(kids, rtl)  # (a block's lines, before its boxes move)
        elements = [k for k in kids if isinstance(k, _El)]
        if not elements:
            return kids
        kid_styles = {id(k): self.own_of(k) for k in elements}  # (by element)
        styled = [s for s in kid_styles.values() if s]
        if not styled and (display in _BIDI_BLOCKS or display == b"inline"):
            return kids  # (nothing to reorder)
        rows: dict[int, int] | None = None
        if (b"flex" in display or b"grid" in display) and any(
                s.get(b"display") and _display(k.tag, s) == b"contents"
                for k in elements if (s := kid_styles[id(k)])):
            kids = self._contents_opened(kids, kid_styles)
            styled = [s for s in kid_styles.values() if s]
        if display in _TABLES:
            kids = _table_parts(kids, kid_styles, here)
        elif display == b"table-row":
            if here.get(b"-table-direction") == b"rtl":  # columns right to left
                kids = kids[::-1]
        elif b"flex" in display:
            kids = sorted(kids, key=lambda k: _order(kid_styles, k))
            way = _lower(own.get(b"flex-direction"))
            reverse = way.endswith(b"-reverse")
            if rtl and not way.startswith(b"column"):
                reverse = not reverse
            # (lines stacked bottom to top: one piece a line shows last to first)
            if reverse or _lower(own.get(b"flex-wrap")) == b"wrap-reverse":
                kids = kids[::-1]
        elif b"grid" in display:
            kids, rows = _grid_cells(kids, kid_styles, own, rtl, font)
        # (which of the three may move a box: the properties the kids have, in one pass)
        names: set[bytes] = set()
        for s in styled:
            names.update(s)
        if not _SHIFTING.isdisjoint(names):
            kids = self._shifted(kids, kid_styles, own, font, display, rows, rtl)
        if b"position" in names:
            kids = self._placed(kids, kid_styles, own, font, _containing_block(el, own), rtl)
        if b"float" in names:
            kids = _floats_right(kids, kid_styles, rtl)
        return kids

    def _contents_opened(self, kids: list[_El | bytes],
                         kid_styles: dict[int, dict[bytes, bytes]]) -> list[_El | bytes]:
        """A flex or grid container's content with the `display: contents` boxes opened:
        what they hold are the items (each in a copy of them), ordered and placed by their
        own styles (`kid_styles` gets those under the copies)."""
        out: list[_El | bytes] = []
        for kid in kids:
            if not isinstance(kid, _El) or _display(kid.tag, kid_styles[id(kid)]) != (
                    b"contents"):
                out.append(kid)
                continue
            stack: list[tuple[_El | bytes, tuple[_El, ...]]] = [
                (inner, (kid,)) for inner in reversed(kid.kids)]
            while stack:
                inner, chain = stack.pop()
                own = self.own_of(inner) if isinstance(inner, _El) else _NOTHING
                if isinstance(inner, _El) and _display(inner.tag, own) == b"contents" and len(
                        chain) < _MAX_DEPTH:
                    stack += [(deeper, (*chain, inner)) for deeper in reversed(inner.kids)]
                    continue
                if isinstance(inner, bytes) and not inner.strip():
                    continue
                last = chain[-1]
                box = _El(last.tag, last.attrs, last.open_tag, last.close_tag, [inner])
                for outer in reversed(chain[:-1]):
                    box = _El(outer.tag, outer.attrs, outer.open_tag, outer.close_tag, [box])
                kid_styles[id(box)] = own
                out.append(box)
        return out

    # -- right to left ------------------------------------------------------------------------

    def _bidi(self, kids: list[_El | bytes], rtl: bool = True) -> list[_El | bytes]:
        """A right-to-left block's lines in the order they show (`bidi`): the inline boxes
        and isolated runs between left-to-right text right to left; in a block of either
        direction, adjacent right-to-left overrides last to first (misc18: they make one
        run at an odd level, reversed as a whole). Unchanged when what could hold a file's
        text (all but blanks and right-to-left letters) keeps its order: a reordering keeps
        every run between the same two others."""
        if all(type(k) is bytes and _quiet(k) for k in kids):
            return kids  # (only blanks and right-to-left letters: nothing telling, below)
        tokens: list[tuple[tuple[_El, ...], _El | bytes, int]] = []
        self._inline_tokens(kids, (), tokens)
        # what could hold a file's text (elements, and text but blanks and right-to-left
        # runs); and whether each line (the tokens between two breaks) holds one of those at
        # most, no text of it that a mirroring would change (then the order below keeps
        # every line's telling token in place and mirrors nothing: unchanged, as tested last)
        telling: list[int] = []
        alone = True
        count = 0
        for i, (_c, node, kind) in enumerate(tokens):
            if kind == _BREAK:
                telling.append(i)
                count = 0
                continue
            if isinstance(node, bytes):
                if kind == R:
                    continue
                if len(node) > 1 and alone and mirrored(node) != node:
                    alone = False
                if not node.strip():
                    continue
            telling.append(i)
            count += 1
            if count > 1:
                alone = False
        if len(telling) < 2 and not any(tokens[i][2] == ON for i in telling):
            return kids
        if alone:
            return kids
        order: list[int] = []
        texts: dict[int, bytes] = {}
        start = 0
        for i in range(len(tokens) + 1):
            if i < len(tokens) and tokens[i][2] != _BREAK:
                continue
            if i == start + 1 and (tokens[start][2] == R or not isinstance(tokens[start][1],
                                                                           bytes)):
                order.append(start)  # (one run: in place, and no text of it mirrored)
            elif i > start:
                shown, mirror = visual_order([t[2] for t in tokens[start:i]], rtl)
                order += [start + k for k in shown]
                for k, turned in enumerate(mirror):
                    node = tokens[start + k][1]
                    if turned and isinstance(node, bytes) and len(node) > 1 and tokens[
                            start + k][2] != R and mirrored(node) != node:
                        texts[start + k] = mirrored(node)  # (neutrals shown right to left)
            if i < len(tokens):
                order.append(i)
            start = i + 1
        kept = set(telling)
        if not texts and [i for i in order if i in kept] == telling:
            return kids
        out: list[_El | bytes] = []
        open_: list[tuple[_El, _El]] = []  # (element, its clone being filled)
        last: tuple[_El, ...] = ()
        for i in order:
            chain, node, _kind = tokens[i]
            if chain is not last:
                same = 0
                while same < len(open_) and same < len(chain) and open_[same][0] is chain[
                        same]:
                    same += 1
                del open_[same:]
                for outer in chain[same:]:  # an inline element split by the reordering
                    clone = _El(outer.tag, outer.attrs, outer.open_tag, outer.close_tag)
                    (open_[-1][1].kids if open_ else out).append(clone)
                    open_.append((outer, clone))
                last = chain
            (open_[-1][1].kids if open_ else out).append(texts.get(i, node))
        return out

    def _inline_tokens(self, kids: list[_El | bytes], chain: tuple[_El, ...],
                       out: list[tuple[tuple[_El, ...], _El | bytes, int]]) -> None:
        """A block's inline content as bidi runs: text by class, a box of its own (inline
        block, image, isolated or out-of-flow element) a neutral, a block or `<br>` a break,
        plain inline elements looked into."""
        for kid in kids:
            if isinstance(kid, bytes):
                out += [(chain, text, kind) for text, kind in text_runs(kid)]
                continue
            own = self.own_of(kid)
            display = _display(kid.tag, own)
            if kid.tag == b"br" or (display not in _INLINE_LEVEL and display != b"none"):
                out.append((chain, kid, _BREAK))
                continue
            bidi = _unicode_bidi(kid, own)  # (read only where it tells: a pure function)
            if (display not in (b"inline", b"contents") or kid.tag in _RAW_TEXT
                  or bidi.startswith((b"isolate", b"plain"))
                  or _lower(own.get(b"position")) in _OUT_OF_FLOW
                  or _lower(own.get(b"float")) in _FLOATS):
                out.append((chain, kid, ON))
            elif bidi == b"bidi-override":
                out.append((chain, kid, R if id(kid) in self.rtl_overrides else L))
            elif bidi == b"embed":
                out.append((chain, kid, R if _lower(own.get(b"direction")) != b"ltr" else L))
            elif len(chain) < _MAX_DEPTH:
                self._inline_tokens(kid.kids, (*chain, kid), out)
            else:
                out.append((chain, kid, ON))

    # -- moved by offsets ---------------------------------------------------------------------

    def _width(self, el: _El, own: dict[bytes, bytes], font: float) -> float:
        """A box's width: its `width` if it takes one, else its text's in a monospace font."""
        if _display(el.tag, own) not in (b"inline", b"contents"):
            given = length(own.get(b"width"), font)
            if given is not None:
                return given
        return self._text_chars(el) * CH * font

    def _text_chars(self, el: _El) -> int:
        """How many characters an element's text shows (its content laid out already)."""
        known = self.chars.get(id(el))
        if known is None:
            known = 0
            for kid in el.kids:
                if isinstance(kid, bytes):
                    known += _chars(kid)
                elif kid.tag not in _RAW_TEXT:
                    known += self._text_chars(kid)
            self.chars[id(el)] = known
        return known

    def _shifted(self, kids: list[_El | bytes], kid_styles: dict[int, dict[bytes, bytes]],
                 own: dict[bytes, bytes], font: float, display: bytes,
                 rows: dict[int, int] | None, rtl: bool) -> list[_El | bytes]:
        """Boxes that `position: relative` offsets, `transform: translate()`, `translate`
        or negative margins move, in the order they show (round 17: shuffled inline blocks
        moved into order): by where each stands in its line plus its offset."""
        # (a margin that is not set is no negative one: only those set are read)
        if not any(s.get(b"transform") or s.get(b"translate") or _lower(s.get(
                b"position")) == b"relative" or any(
                    b"-" in v for m, v in s.items() if m in _MARGINS_SET)
                for s in kid_styles.values()):
            return kids
        moves: dict[int, tuple[float, float, float, float, float, bool]] = {}
        items = b"flex" in display or b"grid" in display  # (boxes whatever their display)
        moved = False
        high = max(font, 1.0)
        for kid in kids:
            if not isinstance(kid, _El):
                continue
            s = kid_styles[id(kid)]
            if _lower(s.get(b"position")) in _OUT_OF_FLOW:
                continue
            size = font_size(s.get(b"font-size"), font) if b"font-size" in s else font
            high = max(high, size)
            width = self._width(kid, s, size)
            if items or _display(kid.tag, s) not in (b"inline", b"contents") or _lower(
                    s.get(b"float")) in _FLOATS:
                dx, dy = offset(s.get(b"transform"), s.get(b"translate"), size, width,
                                size * 1.2)
            else:  # (transforms move no inline box: round 18, `<span>` moved off the page)
                dx = dy = 0.0
            if _lower(s.get(b"position")) == b"relative":
                own_rtl = _rtl_of(kid, s, rtl)
                left = length(_side(s, b"left", own_rtl), size)
                right = length(_side(s, b"right", own_rtl), size)
                top, bottom = length(s.get(b"top"), size, 0), length(s.get(b"bottom"), size, 0)
                dx += left if left is not None else -right if right is not None else 0.0
                dy += top if top is not None else -bottom if bottom is not None else 0.0
            own_rtl = _rtl_of(kid, s, rtl)
            before = length(_side(s, b"margin-left", own_rtl), size) or 0.0
            after = length(_side(s, b"margin-right", own_rtl), size) or 0.0
            block = kid.tag == b"br" or _display(kid.tag, s) not in _INLINE_LEVEL
            moves[id(kid)] = (dx, dy, before, after, width, block)
            moved = moved or bool(dx or dy or before < 0 or after < 0)
        if not moved:
            return kids
        flex = b"flex" in display
        column = flex and _lower(own.get(b"flex-direction")).startswith(b"column")
        step = high * 1.2  # a line's height
        x, line = 0.0, 0
        row: int | None = None
        keyed: list[tuple[float, float, int, _El | bytes]] = []
        for n, kid in enumerate(kids):
            move = moves.get(id(kid)) if isinstance(kid, _El) else None
            if move is None:  # text, or a box placed on its own
                keyed.append((line * step, x, n, kid))
                if isinstance(kid, bytes) and not flex and rows is None:
                    x += _chars(_BLANKS.sub(b" ", kid)) * CH * font
                continue
            dx, dy, before, after, width, block = move
            if rows is not None and rows.get(id(kid)) != row:
                row = rows.get(id(kid))
                line, x = line + 1, 0.0
            if column or (block and not flex and rows is None):
                line += 1 if x else 0
                if _on_page(before + dx, line * step + dy, width, step, dx):
                    keyed.append((line * step + dy, before + dx, n, kid))
                line, x = line + 1, 0.0
                continue
            x += before
            if _on_page(x + dx, line * step + dy, width, step, dx):
                keyed.append((line * step + dy, x + dx, n, kid))
            x += width + after
        return [k for _y, _x, _n, k in _rows_read(keyed, step / 2)]

    def _placed(self, kids: list[_El | bytes], kid_styles: dict[int, dict[bytes, bytes]],
                own: dict[bytes, bytes], font: float, containing: bool, rtl: bool
                ) -> list[_El | bytes]:
        """Boxes taken out of the flow and placed by offsets (`top`, `left`, `right`,
        `bottom`, `inset`), read top to bottom, left to right, after the flow. (Not in a
        containing block, those its containing block reads, `_gather_placed`.)"""
        # (a box without offsets takes no room in the line either: out of the way too)
        placed = [k for k in kids if isinstance(k, _El) and _lower(kid_styles[id(k)].get(
            b"position")) in _OUT_OF_FLOW and (containing or not _placed_box(
                kid_styles[id(k)], font))]
        if not placed:
            return kids
        chosen = {id(k) for k in placed}
        return [k for k in kids if id(k) not in chosen] + self._read_placed(
            [(k, k) for k in placed], own, font, rtl)

    def _gather_placed(self, block: _El, own: dict[bytes, bytes], font: float, rtl: bool
                       ) -> None:
        """A containing block's boxes placed by offsets that other elements wrap (`<p><span
        style="position:absolute;top:2em">`): taken out of their wrappers (each in copies
        of them) and read with its own, by where they are placed."""
        found: list[tuple[_El | bytes, _El]] = []

        def walk(parent: _El, chain: tuple[_El, ...]) -> None:
            keep: list[_El | bytes] = []
            for kid in parent.kids:
                if not isinstance(kid, _El) or kid.tag in _RAW_TEXT:
                    keep.append(kid)
                    continue
                kid_own = self.own_of(kid)
                if chain and _placed_box(kid_own, font):
                    box: _El | bytes = kid
                    for outer in reversed(chain):
                        box = _El(outer.tag, outer.attrs, outer.open_tag, outer.close_tag,
                                  [box])
                    found.append((box, kid))
                    continue
                keep.append(kid)
                if not _containing_block(kid, kid_own) and len(chain) < _MAX_DEPTH:
                    walk(kid, (*chain, kid))
            parent.kids = keep

        walk(block, ())
        if not found:
            return
        direct = [k for k in block.kids if isinstance(k, _El) and _placed_box(
            self.own_of(k), font)]
        chosen = {id(k) for k in direct}
        block.kids = [k for k in block.kids if id(k) not in chosen] + self._read_placed(
            [(k, k) for k in direct] + found, own, font, rtl)

    def _read_placed(self, placed: list[tuple[_El | bytes, _El]], own: dict[bytes, bytes],
                     font: float, rtl: bool) -> list[_El | bytes]:
        """Placed boxes (each as shown, and the box whose offsets place it) top to bottom,
        left to right."""
        room = length(own.get(b"width"), font) or PAGE_WIDTH
        height = length(own.get(b"height"), font) or 0.0
        keyed: list[tuple[float, float, int, _El | bytes]] = []
        high = max(font, 1.0)
        for n, (shown, kid) in enumerate(placed):
            s = self.own_of(kid)
            size = font_size(s.get(b"font-size"), font) if b"font-size" in s else font
            high = max(high, size)
            own_rtl = _rtl_of(kid, s, rtl)
            left = length(_side(s, b"left", own_rtl), size, room)
            right = length(_side(s, b"right", own_rtl), size, room)
            top, bottom = (length(s.get(b"top"), size, height),
                           length(s.get(b"bottom"), size, height))
            width = self._width(kid, s, size)
            x = left if left is not None else (
                room - right - width) if right is not None else 0.0
            y = top if top is not None else (
                height - bottom - size * 1.2) if bottom is not None else 0.0
            if _on_page(x, y, width, size * 1.2):
                keyed.append((y, x, n, shown))
        return [k for _y, _x, _n, k in _rows_read(keyed, high * 0.6)]


_SIDES = (b"top", b"left", b"right", b"bottom", b"inset-inline-start", b"inset-inline-end")
_MARGINS = (b"margin-left", b"margin-right", b"margin-inline-start", b"margin-inline-end")
_MARGINS_SET = frozenset(_MARGINS)
#: What a kid needs for `_shifted` to be asked (transforms, offsets, margins)
_SHIFTING = _MARGINS_SET | {b"transform", b"translate", b"position"}
_LOGICAL = {b"left": (b"inset-inline-start", b"inset-inline-end"),
            b"right": (b"inset-inline-end", b"inset-inline-start"),
            b"margin-left": (b"margin-inline-start", b"margin-inline-end"),
            b"margin-right": (b"margin-inline-end", b"margin-inline-start")}


def _rtl_of(el: _El, own: dict[bytes, bytes], parent_rtl: bool) -> bool:
    """Whether a box is right to left (its `direction`, `dir`, else its parent's)."""
    if b"direction" in own:
        return _lower(own[b"direction"]) == b"rtl"
    if b"dir" in el.attrs.lower():
        way = _lower(_attr(el.attrs, b"dir"))
        if way in (b"rtl", b"ltr"):
            return way == b"rtl"
    return parent_rtl


def _side(own: dict[bytes, bytes], side: bytes, rtl: bool) -> bytes | None:
    """A physical side's value, or the logical one's that is that side (the start is the
    left in a left-to-right box, the right in a right-to-left one: the box's own)."""
    value = own.get(side)
    if value is None:
        start, end = _LOGICAL[side]
        value = own.get(end if rtl else start)
    return value
#: Where a box moved by offsets is off the page: its right edge this far left of where its
#: container starts, its bottom this far above, its left edge this far right (a printed
#: page shows nothing past its right edge, ~800px; a guess of a box's place is rough).
_FAR_LEFT, _FAR_UP, _FAR_RIGHT = 1000.0, 1000.0, 4000.0


def _on_page(x: float, y: float, width: float, height: float, moved: float | None = None
              ) -> bool:
    """Whether a box at (x, y) in its container is on the page. `moved`: how far an offset
    moved a box of the flow to the right (lines are not wrapped here: its x may be far more
    than it is, so only the offset tells that it is past the page's right edge)."""
    right = x if moved is None else moved
    return x + width > -_FAR_LEFT and y + height > -_FAR_UP and right < _FAR_RIGHT
_NOTHING: dict[bytes, bytes] = {}  # (no properties: shared, never written to)


def _placed_box(own: dict[bytes, bytes], font: float) -> bool:
    """Whether a box is absolutely placed by an offset of its own."""
    return _lower(own.get(b"position")) in _OUT_OF_FLOW and any(
        length(own.get(side), font) is not None for side in _SIDES)


def _containing_block(el: _El, own: dict[bytes, bytes]) -> bool:
    """Whether an element is the box its absolutely placed descendants are placed in."""
    return not el.tag or _lower(own.get(b"position")) in (
        b"relative", b"absolute", b"fixed", b"sticky") or _lower(
            own.get(b"transform")) not in (b"", b"none") or _lower(
            own.get(b"translate")) not in (b"", b"none")


def _auto_direction(el: _El, otherwise: bytes) -> bytes:
    """`dir=auto`: the direction of the first strong letter of the element's text."""
    stack: list[_El | bytes] = [el]
    seen = 0
    while stack and seen < 1 << 16:
        node = stack.pop()
        if isinstance(node, bytes):
            seen += len(node)
            found = first_strong(node)
            if found is not None:
                return b"rtl" if found == R else b"ltr"
        elif node.tag not in _RAW_TEXT and (node is el or (node.tag != b"bdi" and not
                                            _has_dir(node.attrs))):
            stack.extend(reversed(node.kids))
    return otherwise


def _unicode_bidi(el: _El, own: dict[bytes, bytes]) -> bytes:
    """An element's `unicode-bidi`: its own (an author's rule wins over the browser's
    sheet: `<span dir=rtl style="unicode-bidi: bidi-override">`s are not isolated, misc18),
    else `isolate-override` for a `<bdo>`, `isolate` for a `<bdi>` or an element with a
    `dir`, else `normal`."""
    given = _lower(own.get(b"unicode-bidi"))
    if given and given[:1].isalpha() and given not in (b"inherit", b"initial", b"unset",
                                                       b"revert", b"revert-layer"):
        return given
    if el.tag == b"bdo":
        return b"isolate-override"
    if el.tag == b"bdi" or _has_dir(el.attrs):
        return b"isolate"
    return b"normal"


def _attr_names(attrs: bytes) -> frozenset[bytes]:
    """The names of a tag's attributes, lower-cased (once per distinct short tag: the
    bidi readers ask each element's several times)."""
    if b"=" not in attrs and not attrs.strip():
        return _NO_NAMES
    known = _ATTR_NAMES.get(attrs)
    if known is None:
        known = frozenset(m.group(1).lower() for m in _ATTRS.finditer(attrs))
        if len(attrs) <= 1024:
            if len(_ATTR_NAMES) >= 4096:
                _ATTR_NAMES.clear()
            _ATTR_NAMES[attrs] = known
    return known


def _has_dir(attrs: bytes) -> bool:
    """Whether a tag has a `dir` attribute (none without the letters: most tags)."""
    return b"dir" in attrs.lower() and b"dir" in _attr_names(attrs)


_NO_NAMES: frozenset[bytes] = frozenset()
_ATTR_NAMES: dict[bytes, frozenset[bytes]] = {}


def _quiet(text: bytes) -> bool:
    """Whether a text's bidi runs (`text_runs`) are all blanks and right-to-left runs (none
    that `_bidi` calls telling): blanks alone (blank neutral runs), or blanks around a core
    that starts and ends with a right-to-left letter and holds those (two-byte, well formed)
    and ASCII neutrals alone: `bidi._plain_r` reads that core as one R run, the blanks
    around it as blank neutral runs."""
    core = text.strip()
    if not core:
        return True
    return (core[0] >= 0x80 and core[-1] >= 0x80 and not core.translate(None, _PLAIN_R_BYTES)
            and is_utf8(core))


def _blank(node: _El | bytes) -> bool:
    return isinstance(node, bytes) and not node.strip()


def _chars(text: bytes) -> int:
    """How many characters a text shows (its blanks collapsed)."""
    text = _BLANKS.sub(b" ", text)
    return len(text) - sum(1 for c in text if 0x80 <= c < 0xC0)


def _rows_read(keyed: list[tuple[float, float, int, _El | bytes]], near: float
               ) -> list[tuple[float, float, int, _El | bytes]]:
    """Boxes by (y, x): in lines (y within `near` of the line's first), each left to right."""
    out: list[tuple[float, float, int, _El | bytes]] = []
    line: list[tuple[float, float, int, _El | bytes]] = []
    for box in sorted(keyed, key=lambda b: (b[0], b[2])):
        if line and box[0] - line[0][0] > near:
            out += sorted(line, key=lambda b: (b[1], b[2]))
            line = []
        line.append(box)
    return out + sorted(line, key=lambda b: (b[1], b[2]))


def _clip(el: _El, own: dict[bytes, bytes], here: dict[bytes, bytes], font: float) -> None:
    """A box of a set width that clips its overflow shows as many characters of one line as
    it is wide, in a monospace font (round 20: `width: 4ch; overflow: hidden; white-space:
    nowrap` round each base64 piece and the decoys after it).

    Clips: `overflow` (or `overflow-x`/`-inline`) `hidden`, `clip`, `auto`, `scroll` (a
    printed page has no scroll bar), `visible` beside another value (it computes to `auto`),
    and `contain: paint`. One line: text that may not wrap (`nowrap`, `pre`: each of its
    lines), or a word with no break in it (a no-break space is none). The width left for
    text: `width`/`max-width`, less the padding in a `border-box`, shifted by `text-indent`,
    each character wider by its `letter-spacing`. Only a box whose content is text and
    phrasing elements (round 21: a piece in a `<span>`); an ellipsis (`text-overflow`) takes
    a character or two more, read as the clip (the page's whole text is read too)."""
    if not _clips(own) or font <= 0:
        return
    widths = [w for w in (length(own.get(b"width"), font), length(own.get(b"max-width"), font),
                          length(own.get(b"inline-size"), font)) if w is not None]
    if not widths or not _phrasing(el):
        return
    raw = html.unescape(_text(el).decode("utf-8", "replace"))
    space = here.get(b"white-space", b"")
    pre = space.startswith(b"pre") or space == b"break-spaces"
    lines = raw.split("\n") if pre else [" ".join(_BREAKABLE.split(raw)).strip()]
    one_line = pre or space.startswith(b"nowrap") or b"nowrap" in (
        here.get(b"text-wrap", b"") + here.get(b"text-wrap-mode", b""))
    width = min(widths)
    whole = "\n".join(lines)
    if not one_line and " " in lines[0]:
        wrapped = _wrapped_lines(lines[0], own, width, font)
        if wrapped is None:
            return
        lines = wrapped
    if _lower(own.get(b"box-sizing")) == b"border-box":
        width -= sum(length(own.get(side), font) or 0.0 for side in _PADDING_SIDES)
    indent = length(own.get(b"text-indent"), font) or 0.0
    step = CH * font + (length(own.get(b"letter-spacing"), font) or 0.0)
    if step <= 0:
        return
    first = max(0, math.floor(-indent / step + 1e-6))
    # (a glyph more than half clipped away is not in the printed text: round 21's
    # `width: 2.41rem` at 16px shows four characters and a sliver)
    last = max(first, math.floor((width - indent) / step + 0.5))
    shown = "\n".join(line[first:last] for line in lines)
    if shown != whole:
        el.kids = [html.escape(shown, quote=False).encode("utf-8")]


def _wrapped_lines(text: str, own: dict[bytes, bytes], width: float, font: float
                   ) -> list[str] | None:
    """The lines a box that also clips its height shows of text that wraps (round 21: a
    piece and its decoy on two lines of a one-line box), words wrapped as they fit in a
    monospace font; None when the height does not clip."""
    both = _lower(own.get(b"overflow", b"")).split()
    y = _lower(own.get(b"overflow-y") or b"") or (both[-1] if both else b"")
    heights = [h for h in (length(own.get(b"height"), font),
                           length(own.get(b"max-height"), font)) if h is not None]
    if (y not in _CLIPPING and not _PAINT_CONTAINED.search(own.get(b"contain", b""))) or (
            not heights):
        return None
    given = own.get(b"line-height", b"").strip()
    try:
        line = float(given) * font if given and given[:1].isdigit() and given.replace(
            b".", b"", 1).isdigit() else (length(given, font) or 1.2 * font)
    except ValueError:
        line = 1.2 * font
    if line <= 0:
        return None
    shown = max(1, math.floor(min(heights) / line + 0.5))
    per_line = max(1, math.floor(width / (CH * font) + 1e-6))
    out: list[str] = []
    for word in text.split(" "):
        if out and len(out[-1]) + 1 + len(word) <= per_line:
            out[-1] += " " + word
        else:
            out.append(word)
        if len(out) > shown:
            break
    return out[:shown]


def _clips(own: dict[bytes, bytes]) -> bool:
    """Whether a box's own style clips what overflows it sideways."""
    both = _lower(own.get(b"overflow", b"")).split()
    x = _lower(own.get(b"overflow-x") or own.get(b"overflow-inline") or b"") or (
        both[0] if both else b"")
    y = _lower(own.get(b"overflow-y") or b"") or (both[-1] if both else b"")
    if x == b"visible" and y not in (b"", b"visible", b"clip"):
        x = b"auto"  # (`visible` beside `hidden` computes to `auto`)
    return x in _CLIPPING or bool(_PAINT_CONTAINED.search(own.get(b"contain", b"")))


def _phrasing(el: _El) -> bool:
    """Whether an element holds only text and phrasing elements (no box of its own)."""
    stack: list[_El | bytes] = list(el.kids)
    while stack:
        node = stack.pop()
        if isinstance(node, _El):
            if node.tag not in _PHRASING:
                return False
            stack.extend(node.kids)
    return True


_CLIPPING = frozenset({b"hidden", b"clip", b"auto", b"scroll"})
_PAINT_CONTAINED = re.compile(rb"\b(?:paint|strict|content)\b", re.I)
_BREAKABLE = re.compile(r"[ \t\n\r\f]+")  # (not U+00A0: a no-break space breaks no line)
_PADDING_SIDES = (b"padding-left", b"padding-right")
_PHRASING = frozenset({b"", b"span", b"b", b"i", b"u", b"s", b"em", b"strong", b"a", b"font",
                       b"small", b"big", b"code", b"tt", b"kbd", b"samp", b"var", b"mark",
                       b"sub", b"sup", b"abbr", b"cite", b"del", b"ins", b"nobr", b"wbr",
                       b"bdi", b"data", b"time", b"dfn", b"strike"})


def _order(kid_styles: dict[int, dict[bytes, bytes]], kid: _El | bytes) -> float:
    """A flex or grid item's `order`: an integer, or `calc()`/`min()`/`max()`/`clamp()` of
    numbers rounded to one (Chromium); anything else (`2.5`, `1e1`) is invalid, so 0."""
    if not isinstance(kid, _El):
        return 0.0
    value = order_value(kid_styles.get(id(kid), {}).get(b"order", b"0"))
    return 0.0 if value is None else value


def order_value(value: bytes) -> float | None:
    """An `order` value (`_order`; `htmlparsed`): None where it is invalid (a browser drops
    the declaration)."""
    value = value.strip().lower()
    whole = _ANY_INTEGER.fullmatch(value)
    if whole is not None:  # (Chromium clamps it to an int: `-99999999999` is first)
        digits = whole.group(2).lstrip(b"0")[:11] or b"0"
        if whole.group(1) == b"-":
            return float(max(-int(digits), -_COUNTER_LIMIT - 1))
        return float(min(int(digits), _COUNTER_LIMIT))
    number = length(value, 16.0) if value[:1].isalpha() else None
    return float(math.floor(number + 0.5)) if number is not None else None



def _grid_cells(kids: list[_El | bytes], kid_styles: dict[int, dict[bytes, bytes]],
                own: dict[bytes, bytes], rtl: bool, font: float
                ) -> tuple[list[_El | bytes], dict[int, int]]:
    """A grid's items in the order its cells show (rows top to bottom, columns left to
    right, or right to left in a right-to-left grid), and each item's row: placed by line
    numbers, named lines (`[c1]`), named areas (`grid-template-areas`), else by the
    auto-placement, in `order`."""
    room = length(own.get(b"width"), font) or PAGE_WIDTH
    columns = tracks(own.get(b"grid-template-columns"), font, room)
    rows = tracks(own.get(b"grid-template-rows"), font, room)
    cells = areas(own.get(b"grid-template-areas"))
    if cells:
        area_lines(cells, rows[1], columns[1])
        columns = (max(columns[0], max(len(r) for r in cells)), columns[1])
        rows = (max(rows[0], len(cells)), rows[1])
    flow = _lower(own.get(b"grid-auto-flow"))
    by_column = b"column" in flow
    rest: list[_El | bytes] = []
    items: list[_El | bytes] = []
    wanted: list[tuple[int | None, int | None]] = []
    sizes: list[tuple[int, int]] = []
    for kid in sorted(kids, key=lambda k: _order(kid_styles, k)):
        s = kid_styles.get(id(kid), {}) if isinstance(kid, _El) else {}
        if (isinstance(kid, bytes) and not kid.strip()) or _lower(
                s.get(b"position")) in _OUT_OF_FLOW:
            rest.append(kid)
            continue
        row = start_line(s.get(b"grid-row-start"), s.get(b"grid-row-end"), rows)
        col = start_line(s.get(b"grid-column-start"), s.get(b"grid-column-end"), columns)
        items.append(kid)
        wanted.append((col, row) if by_column else (row, col))
        high = extent(s.get(b"grid-row-start"), s.get(b"grid-row-end"), rows)
        wide = extent(s.get(b"grid-column-start"), s.get(b"grid-column-end"), columns)
        sizes.append((wide, high) if by_column else (high, wide))
    found = auto_place(wanted, rows[0] if by_column else columns[0], sizes, b"dense" in flow)
    cells_at = [(b, a) if by_column else (a, b) for a, b in found]
    shown = sorted(range(len(items)), key=lambda i: (cells_at[i][0], -cells_at[i][1] if rtl
                                                     else cells_at[i][1], i))
    return rest + [items[i] for i in shown], {id(items[i]): cells_at[i][0] for i in shown}


def _table_parts(kids: list[_El | bytes], kid_styles: dict[int, dict[bytes, bytes]],
                 here: dict[bytes, bytes]) -> list[_El | bytes]:
    """A table's parts in the order they show: its captions (`caption-side: top`), its
    first header group (`<thead>`, `display: table-header-group`) wherever it is written,
    its rows and other groups, its first footer group, then `caption-side: bottom`
    captions."""
    top: list[_El | bytes] = []
    head: list[_El | bytes] = []
    rows: list[_El | bytes] = []
    foot: list[_El | bytes] = []
    bottom: list[_El | bytes] = []
    for kid in kids:
        if not isinstance(kid, _El):
            rows.append(kid)
            continue
        s = kid_styles[id(kid)]
        display = _display(kid.tag, s)
        if display == b"table-caption":
            side = _lower(s.get(b"caption-side") or here.get(b"caption-side"))
            (bottom if side in (b"bottom", b"block-end") else top).append(kid)
        elif display == b"table-header-group" and not head:
            head.append(kid)
        elif display == b"table-footer-group" and not foot:
            foot.append(kid)
        else:
            rows.append(kid)
    return top + head + rows + foot + bottom


def _foster(table: _El) -> list[_El | bytes]:
    """Take out what a table holds outside its cells and parts (text, other elements), in
    the order written: an HTML parser puts it before the table."""
    out: list[_El | bytes] = []

    def take(part: _El, allowed: frozenset[bytes]) -> None:
        keep: list[_El | bytes] = []
        for kid in part.kids:
            if isinstance(kid, bytes):
                (keep if not kid.strip() else out).append(kid)
            elif kid.tag in allowed or (kid.tag == b"input" and _lower(
                    _attr(kid.attrs, b"type")) == b"hidden"):
                keep.append(kid)
                if kid.tag in (b"tbody", b"thead", b"tfoot"):
                    take(kid, _IN_GROUP)
                elif kid.tag == b"tr":
                    take(kid, _IN_ROW)
            else:
                out.append(kid)
        part.kids = keep

    take(table, _IN_TABLE)
    return out


_FLOATS = frozenset({b"left", b"right", b"inline-start", b"inline-end"})


def _floats_right(kids: list[_El | bytes], kid_styles: dict[int, dict[bytes, bytes]],
                  rtl: bool = False) -> list[_El | bytes]:
    """A run of right floats shows right to left: the first one rightmost (`inline-end`
    floats right in a left-to-right block, `inline-start` in a right-to-left one)."""
    right = {b"right", b"inline-start" if rtl else b"inline-end"}
    if not any(_lower(s.get(b"float")) in right for s in kid_styles.values() if b"float" in s):
        return kids  # (no right float among the kids: each kept where it is)
    out: list[_El | bytes] = []
    run: list[_El | bytes] = []
    for kid in kids:
        if isinstance(kid, _El) and _lower(kid_styles.get(id(kid), {}).get(
                b"float")) in right:
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
        m = _QUOTE_STRINGS.search(styles.get(prop, b""))
        if m is not None:
            return _css_text(m.group(1) if m.group(1) is not None else m.group(2))
    return b""


_LISTS = frozenset({b"ol", b"ul", b"menu"})
_INTEGER = re.compile(rb"[-+]?\d{1,10}$")
_ANY_INTEGER = re.compile(rb"([-+]?)(\d+)")
_COUNTER_NAME = re.compile(rb"-?[A-Za-z_\x80-\xff][\w\x80-\xff-]*$")
_COUNTER_LIMIT = (1 << 31) - 1
#: Characters one pseudo-element writes, at most; more is a limit finding (the text was cut
#: here, silently: 70,000 spaces, then EICAR's base64 in CSS escapes, scanned clean; a print
#: sheet's `a::after{content:attr(href)}` of a long link stays far below).
_MAX_CONTENT = 1 << 20
#: ...and all of a page's: a page whose style sheet writes more is a limit finding
_MAX_WRITTEN = 16 << 20
_TOO_MUCH_CONTENT = "more text written by style sheets than a page needs"
_TEXT_INPUTS = frozenset({b"text", b"search", b"email", b"url", b"tel", b"number",
                          b"password"})  # (fields that show a placeholder)


def _list_start(el: _El) -> int:
    """The `list-item` counter's value before an ordered list's first item."""
    if el.tag == b"ol" and b"start" in el.attrs.lower():
        start = (_attr(el.attrs, b"start") or b"").strip()
        if _INTEGER.match(start):
            return int(start) - 1
    return 0


def _chosen(select: _El) -> list[_El | bytes]:
    """What a closed `<select>` shows: its selected option's label or text (the last
    option marked `selected`, else its first option not disabled); a list box (`multiple`,
    `size` above 1) shows them all (round 18)."""
    names = _attr_names(select.attrs)
    size = (_attr(select.attrs, b"size") or b"").strip() if b"size" in names else b""
    if b"multiple" in names or (size.isdigit() and int(size) > 1):
        return _listed(select)
    options: list[_El] = []
    stack: list[_El | bytes] = list(reversed(select.kids))
    while stack:
        node = stack.pop()
        if isinstance(node, _El):
            if node.tag == b"option":
                options.append(node)
            elif node.tag == b"optgroup":
                stack.extend(reversed(node.kids))
    if not options:
        return []
    chosen = [o for o in options if b"selected" in _attr_names(o.attrs)]
    if chosen:
        option = chosen[-1]
    else:
        usable = [o for o in options if b"disabled" not in _attr_names(o.attrs)]
        option = usable[0] if usable else options[0]
    label = _attr(option.attrs, b"label") if b"label" in _attr_names(option.attrs) else None
    return [label if label else _BLANKS.sub(b" ", _text(option)).strip()]


def _listed(select: _El) -> list[_El | bytes]:
    """What a list box shows: each option's label, else its text, and each option group's
    label above its options, each as an option of its own (round 21: options labelled with
    the base64 pieces, their text decoys)."""
    out: list[_El | bytes] = []
    stack: list[_El | bytes] = list(reversed(select.kids))
    while stack:
        node = stack.pop()
        if not isinstance(node, _El):
            continue
        names = _attr_names(node.attrs)
        label = _attr(node.attrs, b"label") if b"label" in names else None
        if node.tag == b"option":
            shown = label.replace(b"<", b"&lt;") if label else _BLANKS.sub(
                b" ", _text(node)).strip()
            out.append(b"<option>%s</option>" % shown)
        elif node.tag == b"optgroup":
            if label:
                out.append(b"<option>%s</option>" % label.replace(b"<", b"&lt;"))
            stack.extend(reversed(node.kids))
        elif node.tag in (b"hr", b"div", b"span", b"p"):  # (what a parser keeps in a select)
            stack.extend(reversed(node.kids))
    return out


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


#: Elements that draw a part of what they hold first, whatever its place (round 18: base64
#: pieces put in order only by that): a fieldset's first legend (in its border), a details'
#: first summary, a ruby's annotations (printed above their base: a reading of the printed
#: page takes them first), a MathML over-script (above its base) and under-over script.
_DRAWN_FIRST = frozenset({b"fieldset", b"details", b"ruby", b"mover", b"munderover"})


def _drawn_first(tag: bytes, kids: list[_El | bytes]) -> list[_El | bytes]:
    elements = [i for i, k in enumerate(kids) if isinstance(k, _El) and k.tag]
    if tag in (b"fieldset", b"details"):
        first = b"legend" if tag == b"fieldset" else b"summary"
        for i in elements:
            if kids[i].tag == first:  # type: ignore[union-attr]
                return [kids[i], *kids[:i], *kids[i + 1 :]] if i else kids
        return kids
    if tag == b"ruby":  # each annotation before the base it follows
        out: list[_El | bytes] = []
        base: list[_El | bytes] = []
        for kid in kids:
            if isinstance(kid, _El) and kid.tag == b"rt":
                out += [kid, *base]
                base = []
            else:
                base.append(kid)
        return out + base
    if len(elements) >= 2:  # mover: base, over; munderover: base, under, over
        order = ([elements[1], elements[0]] if tag == b"mover"
                 else [*elements[2:3], elements[0], elements[1]])
        rest = [k for i, k in enumerate(kids) if i not in set(elements[:3])]
        return [kids[i] for i in order] + rest
    return kids


_MIRRORING = re.compile(rb"scalex\(\s*(-[\d.]+)|scale\(\s*(-[\d.]+)\s*(?:,\s*([-\d.]+))?\)|"
                        rb"rotatey\(\s*(-?[\d.]+)(deg|turn|rad)?\)|matrix\(\s*(-[\d.]+)\s*,\s*"
                        rb"([-\d.e]+)\s*,\s*([-\d.e]+)\s*,\s*([-\d.e]+)", re.I)


def _mirrored_box(own: dict[bytes, bytes]) -> bool:
    """Whether a box's transform mirrors it left to right (`scaleX(-1)`, `scale(-1, 1)`,
    `rotateY(180deg)`, a matrix with a negative x scale and none on y), not turned upside
    down as well (`scale(-1)`: a half turn, read in order by a reader of the printed page)."""
    value = own.get(b"transform", b"") + b" " + own.get(b"scale", b"")
    if b"scale" in own:
        parts = own[b"scale"].split()
        try:
            if len(parts) >= 2 and float(parts[0]) < 0 < float(parts[1]):
                return True  # (`scale: -1` alone: both axes, a half turn)
        except ValueError:
            pass
    for m in _MIRRORING.finditer(value):
        if m.group(1) is not None:
            return True
        if m.group(2) is not None:
            return m.group(3) is not None and not m.group(3).startswith(b"-")
        try:
            if m.group(4) is not None:
                unit = (m.group(5) or b"deg").lower()
                turns = float(m.group(4)) / {b"deg": 360.0, b"turn": 1.0,
                                             b"rad": 6.283185}[unit]
                return abs(abs(turns) % 1.0 - 0.5) < 0.01
            if m.group(6) is not None:
                return float(m.group(9)) > 0
        except ValueError:  # (`rotateY(1.2.3deg)`: no angle; not mirrored)
            return False
    return False


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
    if kind == b"image":
        return m.group() + (_attr(attrs, b"alt") or b"")
    return m.group() + (b"" if kind in _NO_VALUE_INPUTS else _attr(attrs, b"value") or b"")


def laid_out(data: bytes, check: Callable[[], None] | None = None) -> bytes | None:
    """The page with CSS layout and generated text applied; None when nothing applies."""
    if not _layout_applies(data, data, check) and not (
            (view := css_readable(data)) is not data and _layout_applies(data, view, check)):
        if not _ALT_OR_VALUE_GATE(data):
            return None
        page = _ALT_OR_VALUE.sub(_shown_value, data)
        return page if page != data else None
    lower = data.lower()
    clips = _CLIPS(data) and _ONE_LINE(data)
    if not clips and (readable := css_readable(data)) is not data:
        clips = _CLIPS(readable) and _ONE_LINE(readable)
    kept = _KEPT.set(_CLIP_PROPS if clips else _PROPS)
    try:
        rules, counter_styles = _rules(data) if b"<style" in lower or b"text/css" in lower else (
            [], {})
        root = _parse(data, check)
        _Layout(rules, check, counter_styles, data).lay_out(root, {})
    finally:
        _KEPT.reset(kept)
    if _OFFSET_NAME_GATE(data):
        _offsets_applied(root)
    page = _serialise(root)
    return page if page != data else None


def _layout_applies(data: bytes, view: bytes, check: Callable[[], None] | None) -> bool:
    """Whether CSS in the page (`view`: it as the gates read it) may move or make text."""
    return bool(_LAYOUT_CSS(view) or (_RELATIVE(view) and _OFFSET(view)) or _CONTROLS(view)
                or (_CLIPS(view) and _ONE_LINE(view))
                or (_FLOAT_RIGHT(view) and _floats_side_by_side(data, check, view)))


def _floats_side_by_side(data: bytes, check: Callable[[], None] | None,
                         view: bytes | None = None) -> bool:
    """Whether two right floats may stand side by side (`_floats_right` would turn them
    round). True unless every right float in the page is one an element's style attribute
    sets (a style sheet's rule may float any element; text in other places is counted as a
    float too), and no two such elements are siblings with only blanks between them.

    This gate reads every page that floats something right (as most newsletters float
    their pictures), so it first reads the tags alone, without `_parse`'s tree (which was
    60 % of a 100 KB newsletter's layout time). A float has no float as the sibling before
    it when text stands between, or when the tag before it (comments aside) opens an
    element that does not float: the float is then its first child, or (a void element,
    one past the depth bound) that element is the sibling before. A table part closes
    elements when it opens, and past the depth bound text may stand in another element than
    the floats (`_OpenElements`): a page whose floats are not all of those kinds, or that
    may nest past the bound, is walked in full (`_floats_beside`).

    The tags are `_ELEMENT`'s matches (the same spans: `_TAGS` is it in lower case, whose
    case it ignores), read from one `split` of the lower-case page rather than one match
    object each (a 100 KB newsletter's 1300 tags: the match objects were most of this
    gate's time); a tag's place is summed from the lengths of the texts and tags before it.
    Only a tag in which `_float_marks` finds a mark is read for floats (`_floats` finds
    none in the others)."""
    lower = data.lower()  # (`re` searches a lower-case pattern for its first bytes, fast)
    written = len(_FLOAT_RIGHT_LOWER.findall(
        lower if view is None or view is data else view.lower()))
    marks = _float_marks(lower)  # (last first: the next one is popped)
    mark = marks.pop()
    found = 0
    end = 0  # where the last tag ends
    skip = -1  # where a raw-text element's content ends while its tags are skipped
    after_other = True  # whether the last child so far of the open element is no float
    # How many elements may be open, at most (by tag: a closing tag closes one only when one
    # of its tag may be open): past the depth bound an element is its parent's sibling,
    # though text stands before it in the element opened last (`_OpenElements`). (-1: a
    # void or raw-text element, which no tag closes)
    open_ = 0
    open_tags = dict(_NOT_OPENED)
    for text, tag_text, closing, tag, attrs in _tags(lower, check):
        if skip < 0:
            end += len(text) + len(tag_text)
        else:
            start = end + len(text)
            end = start + len(tag_text)
            if start < skip:
                continue  # inside a raw-text element's content
            text = lower[skip:start]  # (what a tag in its content ran past counts as text)
            skip = -1
        if not after_other and text and text.strip():
            after_other = True
        if tag is None:
            continue  # a comment: no child
        if closing:
            after_other = False  # (the element it closes, or none: not known here)
            if open_tags.get(tag, 0) > 0:
                open_tags[tag] -= 1
                open_ -= 1
            continue
        floats = 0
        if mark < end:
            start = end - len(tag_text)
            while mark < start:
                mark = marks.pop()
            if mark < end:
                floats = _floats(data[start + 1 + len(tag) : end - 1])  # (its own case)
                if floats:
                    if not after_other or tag in _CLOSES:
                        return _floats_beside(data, check, written)
                    found += floats
        after_other = not floats
        opened = open_tags.get(tag, 0)
        if opened < 0:
            if tag in _RAW_TEXT:
                skip = _raw_text_end(data, tag, end)[1]
        elif not attrs or attrs[-1] not in _SLASH_OR_BLANK or not attrs.rstrip().endswith(b"/"):
            open_ += 1
            open_tags[tag] = opened + 1
            if open_ + 2 > _MAX_TREE_DEPTH:  # (an <html> and <body> put in may count)
                return _floats_beside(data, check, written)
    return found != written


#: `_ELEMENT` in lower case (the same matches in the lower-case page), each tag whole
#: (its length), a closing tag's slash, its name, its attributes; a comment whole.
_TAGS = re.compile(rb"(<(?:(/?)([a-z][\w:-]*+)([^>]*+)>|!--.*?(?:-->|\Z)))", re.S)
#: Pages up to this size are split at once (the parts of a page of only `<a>`: 40 MB); a
#: longer one's tags are read one match at a time.
_SPLIT_MAX = 1 << 20
_CHECK_EVERY = 4096  # tags read between two calls of the scan's clock
_NOT_OPENED = dict.fromkeys(_VOID | _RAW_TEXT, -1)
_SLASH_OR_BLANK = frozenset(b"/ \t\n\r\x0b\x0c")  # (a self-closing tag's last bytes)
_FLOAT_WORD = re.compile(rb"float")


_Tag = tuple[bytes, bytes, bytes | None, bytes | None, bytes | None]


def _tags(lower: bytes, check: Callable[[], None] | None) -> Iterator[_Tag]:
    """`_TAGS`' matches in the lower-case page, each with the text before it: (text, the
    tag, its slash, its name, its attributes; None for a comment's parts). `check` is
    called every `_CHECK_EVERY` of them."""
    if len(lower) > _SPLIT_MAX:
        return _tags_one_by_one(lower, check)
    parts = _TAGS.split(lower)
    return chain.from_iterable(_tags_split(parts, check))


def _tags_split(parts: list[bytes | None], check: Callable[[], None] | None,
                ) -> Iterator[Iterator[_Tag]]:
    step = 5 * _CHECK_EVERY
    for lo in range(0, len(parts) - 1, step):
        if check is not None and lo:
            check()
        hi = lo + step
        # (the texts one more: the page's end; the tags and texts never None)
        yield cast(Iterator[_Tag], zip(parts[lo:hi:5], parts[lo + 1 : hi : 5],
                                       parts[lo + 2 : hi : 5], parts[lo + 3 : hi : 5],
                                       parts[lo + 4 : hi : 5], strict=False))


def _tags_one_by_one(lower: bytes, check: Callable[[], None] | None) -> Iterator[_Tag]:
    end = 0
    for n, m in enumerate(_TAGS.finditer(lower), 1):
        if check is not None and not n % _CHECK_EVERY:
            check()
        yield lower[end : m.start()], m[1], m[2], m[3], m[4]
        end = m.end()


def _float_marks(lower: bytes) -> list[int]:
    """Where the lower-case page has the word "float", a reference, an escape or a comment's
    start (`_floats`' first test: a tag without one sets no float), last first, under the
    page's length. (`bytes.find` for the signs: a regular expression, tried at
    each byte, was 0.35 ms of a 100 KB newsletter.)"""
    marks = [m.start() for m in _FLOAT_WORD.finditer(lower)]
    for sign in (b"&", b"\\"):
        at = lower.find(sign)
        while at >= 0:
            marks.append(at)
            at = lower.find(sign, at + 1)
    at = lower.find(b"*")  # ("/*": `find` is slow for it, a "/" in every closing tag)
    while at >= 0:
        if at and lower[at - 1] == 47:  # "/"
            marks.append(at - 1)
        at = lower.find(b"*", at + 1)
    marks.sort(reverse=True)
    marks.insert(0, len(lower))
    return marks


def _floats(attrs: bytes) -> int:
    """How many right floats a tag's style attribute sets."""
    lower = attrs.lower()
    # (no float without the word, a reference, an escape or a comment: most tags)
    if b"style" not in lower or not (
            b"float" in lower or b"&" in lower or b"\\" in lower or b"/*" in lower):
        return 0
    m = _FIRST_STYLE.match(attrs)  # (`_attr(attrs, b"style")` in one match)
    if m is None or not (style := m[1] or m[2] or m[3]):
        return 0
    if b"&" in style:
        style = _unescape(style)
    return len(_FLOAT_RIGHT_LOWER.findall(_css_text(style).lower()))


#: A tag's first style attribute, as `_attr` finds it (`_ATTRS`' matches one after another,
#: each between runs of bytes no name starts with), its value in group 1, 2 or 3: an
#: attribute is matched whole at once (atomic), as `finditer` leaves it. (`_attr`'s table of
#: a tag's attributes, made cold for each float of a newsletter, was 3.7 us of its 4.)
_FIRST_STYLE = re.compile(
    rb"(?:[^A-Za-z_:]*+(?>(?!(?i:style)(?![\w:.-]))[A-Za-z_:][\w:.-]*"
    rb"(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>]+))?))*+"
    rb"[^A-Za-z_:]*+(?i:style)(?![\w:.-])(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+)))?")


def _floats_beside(data: bytes, check: Callable[[], None] | None, written: int) -> bool:
    """`_floats_side_by_side` over `_parse`'s tree, walked as it is made: each open element
    keeps only whether its last child so far floats."""
    found = 0
    opened = _OpenElements()  # (as `_parse`'s)
    last = [False]  # whether each open element's last child so far is a right float
    at = 0
    for n, m in enumerate(_ELEMENT.finditer(data), 1):
        if check is not None and not n % 4096:
            check()
        start, end = m.span()
        if start < at:
            continue  # inside a raw-text element's content
        if start > at and last[-1] and data[at:start].strip():
            last[-1] = False  # (a text child: blanks leave two floats side by side)
        at = end
        closing, tag, attrs = m.groups()
        if tag is None:
            continue  # a comment: no child
        tag = tag.lower()
        if closing:
            if tag == b"br" or (tag == b"p" and not opened.p_in_button_scope()):
                # (an element, no float, as `_parse` makes it)
                last[len(last) - 1 if len(last) < _MAX_TREE_DEPTH else opened.parent()] = False
                continue
            depth = opened.close(tag)
            if depth is not None:
                del last[depth:]
            continue
        if tag in _CLOSES:
            depth = opened.implied(tag)
            if depth is not None:
                del last[depth:]
        parent = len(last) - 1 if len(last) < _MAX_TREE_DEPTH else opened.parent()
        floats = _floats(attrs)
        if floats and last[parent]:
            return True
        found += floats
        last[parent] = floats > 0
        if tag in _RAW_TEXT:
            at = _raw_text_end(data, tag, at)[1]
        elif tag not in _VOID and not attrs.rstrip().endswith(b"/"):
            opened.push(tag, parent)
            last.append(False)
    return found != written


#: Offsets (`left: -2000px`...): renamed in the laid-out page, where they are applied (the
#: boxes they put off the page left out), so that no reader of the page takes a box they
#: move far for one they hide (nor a box whose position gives them no effect).
_OFFSET_NAME = re.compile(rb"(?<![\w-])(left|top|right|bottom|inset(?:-[a-z-]+)?)(\s*:)", re.I)
#: Whether the page has one (`_OFFSET_NAME.search`: its look-behind is tried at every byte, in
#: Python's regex engine 2.7 ms of a 100 KB newsletter's 21 ms layout), as a gate: hyperscan,
#: which takes no look-behind, reads it as "at the start or after another byte" (the same
#: matches; `re` reads the same pattern where hyperscan is missing).
_OFFSET_NAME_GATE = Gate(rb"(?:^|[^\w-])(?:left|top|right|bottom|inset(?:-[a-z-]+)?)"
                         rb"[ \t\n\r\x0b\x0c]*:")


def _offsets_applied(root: _El) -> None:
    stack: list[_El | bytes] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, bytes):
            continue
        if node.tag == b"style" and node.kids and isinstance(node.kids[0], bytes):
            node.kids[0] = _OFFSET_NAME.sub(rb"applied-\1\2", node.kids[0])
        elif b"style" in node.open_tag.lower() and b":" in node.open_tag:
            node.open_tag = _STYLE_ATTR.sub(lambda m: _OFFSET_NAME.sub(
                rb"applied-\1\2", m.group()), node.open_tag)
        if node.tag not in _RAW_TEXT:
            stack.extend(node.kids)


_STYLE_ATTR = re.compile(rb"\sstyle\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>]+)", re.I)


def _sized(decls: dict[bytes, bytes] | None, applies: bool) -> bool:
    """Whether a pseudo-element's rule gives it a font size that shows its text."""
    return bool(applies and decls and b"font-size" in decls
                and font_size(decls[b"font-size"], 16.0) > 0)
