"""The page as a printer applies its style sheets (round 20): one consistent medium.

The page's readings take every style sheet for applied and every condition for true
(`textual`), and `htmlunhidden.unconditional_page` reads it once with every conditional
block left out. A sender used what lies between: rules a browser never applies (a
`<style>` inside `<template>`, `<noscript>`, `<title>`, a comment or an attribute value; a
`<style type=text/plain>` or `media="not all"`; an alternate or disabled `<link>`; an
`@import ... supports(false)`; a rule with an invalid selector; a declaration with junk
after its value) hid the base64 pieces from our readings while the real rules hid the
decoys; and pairs of exclusive conditions (`@media screen` and `print`, light and dark,
portrait and landscape, `@supports X` and `not X`), all true for our readings and all
false for the unconditional one, showed the pieces to a printer only.

`client_pages` writes the page again as Chromium applies it: inert sheets written as
text, comments dropped, invalid rules and declarations dropped, and `@media` / `@supports`
decided. Round 36: decided once for print was not enough (`@media screen` hid what `print`
showed; `(max-width: 600px)` and `(min-width: 601px)` split the pieces; a `@supports` this
module read wrongly kept a rule Chromium drops). So they are decided for each client the
page's own conditions tell apart (`mediaquery.readings`: print and screen, each width range
its breakpoints make, light and dark...; what is not read, both ways), and each distinct
page that drops a rule that may hide, show or move text is one more HTML layer. The page's
own readings stay (another reader may apply more).
"""

from __future__ import annotations

import functools
import hashlib
import html
import re
from collections.abc import Callable, Iterator

from zerohour.errors import ScanLimitExceeded
from zerohour.scan import htmllayout, mediaquery, textual
from zerohour.scan.gates import Gate
from zerohour.scan.htmlunhidden import block_end
from zerohour.scan.limits import MAX_RECURSION
from zerohour.scan.textual import _CSS_COMMENT, _css_text, css_readable

_COMMENT = re.compile(rb"<!--.*?(?:-->|\Z)", re.S)
#: Elements whose content no style sheet of comes from: not rendered, raw or escapable text.
_INERT = re.compile(rb"<(template|noscript|noembed|noframes|script|title|xmp|textarea|"
                    rb"plaintext|iframe)\b[^>]*>(.*?)(?:</\1\s*>|\Z)", re.I | re.S)
#: A start tag as the HTML tokenizer reads it: its name, then attributes (a name, `=` may
#: be its first byte; a value quoted or not; to the end when a quote is not closed), to its
#: `>` or the end. Every part optional and possessive: it never fails after `<` and a
#: letter, so each tag is read once (a pattern that could fail was retried at each `<` of a
#: long tag, and read on to its far end each time: 40 KB of `<style` cost 6 s).
_TAG = re.compile(rb"<[a-zA-Z][^\s/>]*+(?:[\s/]++(?:[^\s/>][^\s/>=]*+(?:\s*+=\s*+(?:\"[^\"]*+\"?"
                  rb"|'[^']*+'?|[^\s>]*+))?+)?+)*+>?")
#: A tag with a `<` after its first byte, outside quotes or in them (or an unclosed quote):
#: where `_quiet_attributes` may have work.
#: (a hyperscan gate, 0.3 ms of `re` per 100 KB newsletter: without possessive quantifiers,
#: which it lacks, the same tags, as each step takes one kind of byte; a quote that starts a
#: value ends the search there when a "<" or the end comes before its closing quote)
_LT_IN_TAG = Gate(rb"<[a-zA-Z](?:[^<>\"']|\"[^\"<]*\"|'[^'<]*')*"
                  rb"(?:<|\"[^\"<]*(?:<|\Z)|'[^'<]*(?:<|\Z))", caseless=False)
#: A tag's attributes up to its `>`: a quote opens a value only after `=` (round 36: a
#: `>` in `title="a>b"` ended the tag early, and the `media` after it was never read).
_IN_TAG = rb"(?:[^>\"'=]++|=\s*+(?:\"[^\"]*+\"|'[^']*+')?|[\"'])*+"
_STYLE = re.compile(rb"<style\b(" + _IN_TAG + rb")(?:>(.*?)(</style\s*>|\Z)|\Z)",
                    re.I | re.S)  # (see textual._STYLE_BLOCK: an opening without its `>`
# matches to the end, with no group 2)
_LINK = re.compile(rb"<link\b" + _IN_TAG + rb"(?:>|\Z)", re.I)  # (to the end without `>`)
#: One attribute as the tokenizer reads it: a name, then `=` and a value (quoted or not).
_ATTR = re.compile(rb"([^\s/>=][^\s/>=]*+)(?:\s*+=\s*+(?:\"([^\"]*+)\"?|'([^']*+)'?|"
                   rb"([^\s>]*+)))?")
#: At-rules whose block holds rules that apply whatever the client (`@layer`, `@scope`
#: without a limit), and those whose block holds
#: descriptors, kept as they are. Chromium drops any other at-rule with what it holds
#: (round 36: `@-moz-document url-prefix(){.j{display:inline}}` showed the junk to every
#: reading while Chromium hid it).
_GROUPING = frozenset((b"layer", b"scope"))
_DESCRIPTORS = frozenset(
    b"""font-face keyframes -webkit-keyframes page property counter-style font-feature-values
    font-palette-values view-transition position-try color-profile""".split())
_IMPORT = re.compile(rb"@import\b[^;{}]*;?", re.I)
_RULE = re.compile(rb"(?<![^{}@;])([^{}@;]+)\{([^{}]*)\}")

#: Declarations that change no reading: `textual`'s readings take no colour, border or
#: font face into account (a dark-mode block of colours tells no reading apart).
_COSMETIC = frozenset(
    b"""color background background-color background-image background-position
    background-repeat background-size border border-color border-style border-width
    border-top border-right border-bottom border-left border-radius border-collapse
    border-spacing outline outline-color outline-style outline-width box-shadow text-shadow
    text-decoration text-decoration-color text-decoration-line text-decoration-style
    cursor transition animation font-family font-weight font-style caret-color
    accent-color -webkit-font-smoothing -moz-osx-font-smoothing -webkit-text-size-adjust
    -ms-text-size-adjust text-size-adjust mso-line-height-rule mso-table-lspace
    mso-table-rspace -ms-interpolation-mode""".split())
_BODY = re.compile(rb"\{([^{}]*)\}")
_MAX_READINGS = 16  # pages read whole (each an HTML layer); past them, visible text only

_DECIDED = frozenset((b"media", b"supports", b"container"))  # (by the client)
#: Read both ways, as if a condition the module cannot read (round 36): `@starting-style`
#: (an element's style before a transition: Chromium lays it out without, yet was seen to
#: print an element in it), a `@scope` with a limit (`to (.j)`: its rules do not style
#: the limit and what is inside it; the readings take them for the whole page), a
#: `display`, `visibility` or `opacity` whose value is a function the readings do not
#: read (`attr()`, `if()`, a custom `--f()`), an animation of one of them (`@keyframes`):
#: each as the readings take it, and as hiding the element.
_LIMITED = re.compile(rb"(?:^|\))\s*to\s*\(", re.I)
_FUNCTION_VALUE = re.compile(rb"(?<![\w-])(display|visibility|opacity)\s*:", re.I)
_UNREAD_FUNCTION = re.compile(rb"(?<![\w-])(?!var\()(-?[\w-]+)\(", re.I)
_FUNCTION_GATE = Gate(rb"(?:display|visibility|opacity)\s*:[^;{}<>]*\(")
_STYLE_ATTRIBUTE = re.compile(rb"(?<![\w-])(style\s*=\s*)(\"[^\"]*\"|'[^']*'|[^\s>\"']+)", re.I)
_HIDING_VALUE = {b"display": b"none", b"visibility": b"hidden", b"opacity": b"0"}
_KEYFRAMES = re.compile(rb"@(?:-webkit-)?keyframes\s+([\w-]+|\"[^\"]*\"|'[^']*')\s*\{", re.I)
_ANIMATED = re.compile(rb"(?<![\w-])(?:display|visibility|opacity|content)\s*:", re.I)
_ANIMATION = re.compile(rb"(?<![\w-])animation(?:-name)?\s*:([^;]*)", re.I)
#: How a page's conditions are decided: (kind, condition, what it holds) -> holds.
Decide = Callable[[bytes, bytes, bytes], bool]


def client_pages(data: bytes, check: Callable[[], None] = lambda: None
                 ) -> tuple[list[bytes], list[bytes]]:
    """`client_readings` as two lists: the pages, then the texts."""
    pages: list[bytes] = []
    texts: list[bytes] = []
    for whole, reading in client_readings(data, check):
        (pages if whole else texts).append(reading)
    return pages, texts


def client_readings(data: bytes, check: Callable[[], None] = lambda: None
                    ) -> Iterator[tuple[bool, bytes]]:
    """The page as Chromium applies its style sheets, once for each way the clients the
    page's conditions tell apart decide them (see the module's docstring): (True, page)
    for the pages that drop a rule that may hide, show or move text, each once; past
    `_MAX_READINGS` of them, (False, its visible text) for each further page (a page of
    many independent toggles, width, dark, motion, hover..., is read every way, at a
    bounded cost). One at a time: up to 4,096 of them."""
    lower = data.lower()
    if b"<style" not in lower and b"<link" not in lower and not _FUNCTION_GATE(
            css_readable(data)):
        return
    dropped: list[bytes] = []
    page = _COMMENT.sub(b"", data) if b"<!--" in data else data
    if page is not data and page.count(b"<style") + page.count(b"<STYLE") < data.count(
            b"<style") + data.count(b"<STYLE"):
        dropped.append(b"hidden")  # (a style sheet in a comment: it applies nowhere)
    page = _INERT.sub(_inert_content, page)
    if _LT_IN_TAG(page):  # (a tag holds a "<": calling back on every tag costs 3x)
        page = _TAG.sub(_quiet_attributes, page)
    if page.count(b"&lt;style") + page.count(b"&lt;link") > lower.count(b"&lt;style") + (
            lower.count(b"&lt;link")):
        dropped.append(b"hidden")  # (a sheet written as text: it may have hidden anything)
    conditions: dict[tuple[bytes, bytes], bool] = {}  # (kind, condition) -> holds rules
    names = functools.cache(lambda: _page_names(page))  # (only for pages that drop a rule)

    def survey(kind: bytes, condition: bytes, held: bytes) -> bool:
        key = (kind, condition.strip().lower())
        conditions[key] = conditions.get(key, False) or _matters(held, names())
        return True  # (every block read: the ones nested in it too)
    if b"@" in page or b"media" in lower or _FUNCTION_GATE(
            _css_text(page) if b"\\" in page or b"/*" in page else page):
        _applied(page, [], survey)
    keys = [key for key, matters in conditions.items() if matters]
    nodes = [mediaquery.parse(c) if k == b"media" else mediaquery.parse_supports(c)
             if k == b"supports" else mediaquery.Free(b"@" + k + b" " + c) for k, c in keys]
    pages: set[bytes] = set()
    read: set[bytes] = set()  # (digests of the pages past the 16, and of their texts)
    for way in mediaquery.readings(nodes):
        check()  # (the scan's time budget: up to 4,096 ways)
        lost = list(dropped)
        shown = _applied(page, lost, _deciding(dict(zip(keys, way, strict=True))))
        if shown == data or not any(_matters(d, names()) for d in lost):
            continue
        if len(pages) < _MAX_READINGS:
            if shown not in pages:
                pages.add(shown)
                yield True, shown
        elif shown not in pages and (key := _digest(b"page", shown)) not in read:
            read.add(key)
            laid = htmllayout.laid_out(shown, check)  # (laid out too: flex `order`, floats,
            # `::before`, as decompose reads a page's layout; round 37)
            for text in (textual.html_visible(shown), laid and (
                    textual.html_visible(laid) or textual.html_rendered(laid))):
                if text and text.strip() and (seen := _digest(b"text", text)) not in read:
                    read.add(seen)
                    yield False, text


def _digest(kind: bytes, data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16, person=kind).digest()


def _deciding(decided: dict[tuple[bytes, bytes], bool]) -> Decide:
    """A client's decisions; a condition whose rules change no reading holds."""
    return lambda kind, condition, _: decided.get((kind, condition.strip().lower()), True)


def _applied(page: bytes, dropped: list[bytes], decide: Decide) -> bytes:
    """`page` with its `<link>` and `<style>` sheets as `decide` decides their conditions."""
    page = _LINK.sub(lambda m: _live_link(m, dropped, decide), page)
    animations = _hiding_animations(page) if b"keyframes" in page.lower() else frozenset()
    page = _STYLE.sub(lambda m: _live_style(m, dropped, decide, animations), page)
    if animations or _FUNCTION_GATE(page):  # (style attributes: `style="display:if(...)"`)
        page = _STYLE_ATTRIBUTE.sub(lambda m: _style_attribute(m, dropped, decide, animations),
                                    page)
    return page


def _style_attribute(m: re.Match[bytes], dropped: list[bytes], decide: Decide,
                     animations: frozenset[bytes]) -> bytes:
    value = m.group(2)
    quote = value[:1] if value[:1] in (b'"', b"'") else b""
    inner = value[len(quote) : len(value) - len(quote)]
    return m.group(1) + quote + _unread_values(b"*", inner, dropped, decide, animations) + quote


def _hiding_animations(page: bytes) -> frozenset[bytes]:
    """The names of the page's `@keyframes` that set `display`, `visibility`, `opacity` or
    `content` (Chromium animates them; the readings do not), lower-cased."""
    names: set[bytes] = set()
    text = _css_text(page)
    for m in _KEYFRAMES.finditer(text):
        if _ANIMATED.search(text, m.end(), block_end(text, m.end())):
            names.add(m.group(1).strip(b"\"'").lower())
    return frozenset(names)


def _matters(dropped: bytes, names: frozenset[bytes]) -> bool:
    """Whether what a reading drops may change what a reading shows: a sheet not read
    (`hidden`), or a declaration other than a colour, a border, a font face, in a rule
    whose selector may match an element of the page (`names`: its tags, classes and ids;
    a framework's sheet holds hundreds of breakpoint rules for classes a page never uses,
    each of which would double the ways to read it)."""
    if dropped == b"hidden" or _LAYER.search(dropped):  # (a layer's place in the order)
        return True
    if b"{" not in dropped:
        return _declares(dropped)
    return any(_declares(m.group(2)) and _may_match(m.group(1), names)
               for m in _SELECTED.finditer(dropped))


_LAYER = re.compile(rb"@layer\b", re.I)
_SELECTED = re.compile(rb"(?<![^{}])([^{}]*+)\{([^{}]*+)\}")  # (from a brace: linear)
_PLAIN_PARTS = re.compile(rb"([.#]?)(-?[_a-zA-Z\x80-\xff][\w\x80-\xff-]*)")  # (8-bit too)
_SIMPLE_PSEUDO = re.compile(rb"::?[\w-]+(?![\w(-])")
_COMPOUND_END = re.compile(rb"[\s>+~]")


def _declares(body: bytes) -> bool:
    for declaration in body.split(b";"):
        prop, colon, _ = declaration.partition(b":")
        if colon and prop.strip().lower() not in _COSMETIC:
            return True
    return False


def _may_match(selectors: bytes, names: frozenset[bytes]) -> bool:
    """Whether a selector of the list may match an element: False only when its last
    compound names a tag, class or id the page never has (anything else read: it may)."""
    for selector in selectors.lower().split(b","):
        selector = _SIMPLE_PSEUDO.sub(b"", selector)  # (`:hover`, `::before`: any element)
        if any(c in selector for c in b"\\([:|&"):
            return True  # (escapes, functions, attributes, namespaces, nesting: not read)
        compound = _COMPOUND_END.split(selector.strip())[-1]
        if all((kind + name) in names for kind, name in _PLAIN_PARTS.findall(compound)):
            return True
    return False


_CLASS_OR_ID = re.compile(rb"(?<![\w-])(class|id)\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+))",
                          re.I)
_TAG_NAME = re.compile(rb"<([a-zA-Z][^\s/>]*)")


def _page_names(page: bytes) -> frozenset[bytes]:
    """The tags (`p`), classes (`.c`) and ids (`#i`) of `page`'s elements, lower-cased (a
    quirks-mode page matches classes in any case)."""
    names = {b"html", b"head", b"body", b"tbody", b"tr", b"colgroup"}  # (the parser's own
    # too: a `<td>` with no `<tr>` gets one, round 37)
    names.update(m.group(1).lower() for m in _TAG_NAME.finditer(page))
    lower = page.lower()
    names.update(t for t in (b"p", b"br") if b"</" + t in lower)  # (a stray `</p>`, `</br>`
    # is an element: session 24)
    for m in _CLASS_OR_ID.finditer(page):
        value = (m.group(2) or m.group(3) or m.group(4) or b"").lower()
        if b"&" in value:  # (`class=j&#101;` is the class `je`: round 36)
            value = html.unescape(value.decode("utf-8", "surrogateescape")).encode(
                "utf-8", "surrogateescape").lower()
        mark = b"." if m.group(1).lower() == b"class" else b"#"
        names.update(mark + word for word in value.split())
    return frozenset(names)


_SHEET_TAG = re.compile(rb"<(?=(?:style|link)\b)", re.I)


def _inert_content(m: re.Match[bytes]) -> bytes:
    """An inert element with the `<style>`/`<link>` tags in its content written as text."""
    whole, start, end = m.group(0), m.start(2) - m.start(), m.end(2) - m.start()
    return whole[:start] + _SHEET_TAG.sub(b"&lt;", whole[start:end]) + whole[end:]


def _quiet_attributes(m: re.Match[bytes]) -> bytes:
    """A tag whose attribute values hold `<style`: the values are text, not markup."""
    tag = m.group()
    if b"<" not in tag[1:]:
        return tag
    return tag[:1] + tag[1:].replace(b"<", b"&lt;")


def _attrs(text: bytes) -> dict[bytes, bytes]:
    """A tag's attributes (after its name), as the HTML tokenizer reads them: the first of
    a name wins (round 36: `media="print" media="all"`), character references decoded."""
    out: dict[bytes, bytes] = {}
    for m in _ATTR.finditer(text):
        value = next((g for g in m.groups()[1:] if g is not None), b"")
        if b"&" in value:
            value = html.unescape(value.decode("utf-8", "surrogateescape")).encode(
                "utf-8", "surrogateescape")
        out.setdefault(m.group(1).lower(), value)
    return out


def _live_link(m: re.Match[bytes], dropped: list[bytes], decide: Decide) -> bytes:
    if not m.group().endswith(b">"):
        return m.group()
    attrs = _attrs(m.group()[5:])
    rel = attrs.get(b"rel", b"").lower().split()
    if b"stylesheet" in rel and (b"alternate" in rel or b"disabled" in attrs or not decide(
            b"media", attrs.get(b"media", b"all"), b"hidden")):
        dropped.append(b"hidden")  # (what the sheet it loads holds is not looked at here)
        return b""
    return m.group()


def _live_style(m: re.Match[bytes], dropped: list[bytes], decide: Decide,
                animations: frozenset[bytes] = frozenset()) -> bytes:
    if m.group(2) is None:
        return m.group()
    attrs = _attrs(m.group(1))
    kind = attrs.get(b"type", b"text/css").lower()  # (exactly: `"text/css "` is no sheet)
    if kind not in (b"", b"text/css") or not decide(b"media", attrs.get(b"media", b"all"),
                                                    _css_text(m.group(2))):
        dropped.append(m.group(2))
        return b""
    return b"<style" + m.group(1) + b">" + _printed_sheet(m.group(2), dropped, decide,
                                                          animations) + m.group(3)


def _printed_sheet(sheet: bytes, dropped: list[bytes], decide: Decide,
                   animations: frozenset[bytes] = frozenset()) -> bytes:
    """A style sheet with its conditions decided by `decide` and what no browser applies
    left out (into `dropped`). Its structure is read before escapes are decoded, as CSS
    does (round 36: `@media \\28 hover\\29` is a media type, not `(hover)`; a prelude with
    an escape is a condition this module does not read), and decoded once."""
    return _decided(_CSS_COMMENT.sub(b"", sheet) if b"/*" in sheet else sheet, dropped, decide,
                    animations)


def _decided(sheet: bytes, dropped: list[bytes], decide: Decide,
             animations: frozenset[bytes] = frozenset(), depth: int = 0) -> bytes:
    if depth > _MAX_BLOCK_DEPTH:
        raise ScanLimitExceeded(MAX_RECURSION, _TOO_DEEP)
    def importing(m: re.Match[bytes]) -> bytes:
        rule = _css_text(m.group())
        parts = _IMPORT_PARTS.match(rule)
        supports, media = (parts.group(1), parts.group(2).strip()) if parts else (None, b"")
        if (supports is None or decide(b"supports", supports, b"hidden")) and (
                not media or decide(b"media", media, b"hidden")):
            return m.group()
        dropped.append(b"hidden")
        return b""
    if b"@" not in sheet:
        return _valid_rules(_css_text(sheet), dropped, decide, animations)
    sheet = _IMPORT.sub(importing, sheet)
    out = bytearray()
    at = find = 0
    while True:  # (every block: one left undecided may be the one hiding the pieces)
        m = _AT_RULE.search(sheet, find)
        if m is None:
            break
        if m.group(3) != b"{":  # (a statement, `@charset`, `@layer a, b;`: left in place)
            find = max(m.end(), m.start() + 1)
            continue
        i = block_end(sheet, m.end())
        out += _valid_rules(_css_text(sheet[at : m.start()]), dropped, decide, animations)
        block = sheet[m.end() : max(m.end(), i - 1)]
        kind = _css_text(m.group(1)).lower()
        prelude = m.group(2)
        condition = b"\\" + prelude if b"\\" in prelude else prelude  # (unread: free)
        if kind in _DESCRIPTORS:
            out += _css_text(sheet[m.start() : i])
        elif kind == b"scope" and _LIMITED.search(_css_text(prelude)) and not decide(
                kind, condition, block):
            dropped.append(_css_text(block))
        elif kind in _GROUPING:
            out += b"@" + kind + _css_text(prelude) + b"{" + _decided(
                block, dropped, decide, animations, depth + 1) + b"}"
        elif (kind in _DECIDED and decide(kind, condition, block)) or (
                kind == b"starting-style" and decide(kind, b"", block)):
            out += _decided(block, dropped, decide, animations, depth + 1)
        elif kind in _DECIDED or b"{" in block:  # (rules, or declarations nested in a rule)
            dropped.append(_css_text(block))
        at = find = i
    out += _valid_rules(_css_text(sheet[at:]), dropped, decide, animations)
    return bytes(out)


_MAX_BLOCK_DEPTH = 256  # at-rule blocks in blocks (as `textual` reads them; past it, a limit)
_TOO_DEEP = f"CSS at-rules nested more than {_MAX_BLOCK_DEPTH} deep"
#: An at-rule: its name (escapes allowed), its prelude (quoted strings may hold `@`, `{`,
#: `;`: round 36's `@media (x: "@")` was read as no at-rule at all), then `{`, `;`, `}`.
_AT_RULE = re.compile(rb"@((?:[\w-]|\\[0-9a-fA-F]{1,6}\s?|\\[^\n0-9a-fA-F])++)"
                      rb"((?:[^{};\"']|\"[^\"\n]*+(?:\"|(?=\n)|\Z)|'[^'\n]*+(?:'|(?=\n)|\Z))*+)"
                      rb"([{;}]|\Z)")  # (a string not closed ends at its line: a bad string)
#: An `@import`'s conditions after its URL: `layer(..)`, `supports(..)`, a media list.
_IMPORT_PARTS = re.compile(rb"@import\s*(?:url\(\s*(?:\"[^\"]*\"|'[^']*'|[^)]*)\s*\)|\"[^\"]*\""
                           rb"|'[^']*')\s*(?:layer(?:\([^()]*\))?\s*)?(?:supports\s*\(("
                           rb"(?:[^()]|\([^()]*\))*)\)\s*)?([^;]*)", re.I | re.S)


def _unread_values(selectors: bytes, body: bytes, dropped: list[bytes], decide: Decide,
                   animations: frozenset[bytes]) -> bytes:
    """`body` with each `display`, `visibility`, `opacity` of a function the readings do
    not read, and each animation of `animations`, as `decide` decides it: as it is, or
    hiding the element (see `_LIMITED`'s comment)."""
    out = bytearray()
    at = read = 0
    for m in _FUNCTION_VALUE.finditer(body):
        if m.start() < read:
            continue  # (inside a value already read: each byte read once)
        end, depth = m.end(), 0
        while end < len(body) and not (depth <= 0 and body[end] == 59):  # (";" outside ())
            depth += {40: 1, 41: -1}.get(body[end], 0)
            end += 1
        read = end
        value = body[m.end() : end]
        if b"(" not in value or not _UNREAD_FUNCTION.search(value):
            continue
        prop = m.group(1).lower()
        hiding = prop + b":" + _HIDING_VALUE[prop]
        if not decide(b"value", prop + b":" + value, selectors + b"{" + hiding + b"}"):
            out += body[at : m.start()] + hiding
            at = end
            dropped.append(selectors + b"{" + hiding + b"}")
    body = bytes(out + body[at:]) if at else body
    if animations:
        for m in _ANIMATION.finditer(body):
            for name in set(re.findall(rb"[\w-]+|\"[^\"]*\"|'[^']*'", m.group(1).lower())):
                name = name.strip(b"\"'")
                held = selectors + b"{display:none}"
                if name in animations and not decide(b"animation", name, held):
                    body += b";display:none!important"
                    dropped.append(held)
    return body


_KNOWN_PSEUDO = frozenset(
    b"""hover active focus focus-within focus-visible visited link any-link target root empty
    first-child last-child only-child first-of-type last-of-type only-of-type nth-child
    nth-last-child nth-of-type nth-last-of-type not is where has lang dir checked disabled
    enabled required optional read-only read-write placeholder-shown default indeterminate
    valid invalid in-range out-of-range defined autofill modal open closed popover-open
    fullscreen scope host host-context before after first-line first-letter marker selection
    placeholder backdrop file-selector-button cue part slotted -webkit-any -moz-any
    -webkit-scrollbar -webkit-details-marker -webkit-input-placeholder -moz-placeholder
    -ms-input-placeholder target-text spelling-error grammar-error playing paused
    picture-in-picture user-invalid user-valid""".split())
_PSEUDO = re.compile(rb"::?([a-zA-Z-][\w-]*)")
_BAD_SELECTOR = re.compile(rb"[!$%;{}@\\^`]|,\s*,|^\s*,|,\s*$|[>+~]\s*$")


def _valid_rules(text: bytes, dropped: list[bytes], decide: Decide | None = None,
                 animations: frozenset[bytes] = frozenset()) -> bytes:
    """`text` without the rules a browser drops: a selector list with an invalid selector
    (an unknown pseudo-class, stray punctuation), declarations with junk after the value;
    values the readings do not read decided by `decide` (`_unread_values`)."""
    def one(m: re.Match[bytes]) -> bytes:
        selectors, body = m.group(1), m.group(2)
        if decide is not None and (b"(" in body or animations):
            body = _unread_values(selectors, body, dropped, decide, animations)
        if _BAD_SELECTOR.search(selectors.strip()) or selectors.count(b"(") != selectors.count(
                b")") or selectors.count(b"[") != selectors.count(b"]") or any(
                p.group(1).lower() not in _KNOWN_PSEUDO for p in _PSEUDO.finditer(selectors)):
            dropped.append(body)
            return b""
        kept = [d for d in body.split(b";") if _valid(d)]
        if len(kept) != body.count(b";") + 1:
            dropped.append(body)
        return selectors + b"{" + b";".join(kept) + b"}"
    return _RULE.sub(one, text)


_BANG = re.compile(rb"!\s*(\S*)")


def _valid(declaration: bytes) -> bool:
    """A declaration a browser keeps: `!` only as `!important`, at its end."""
    bangs = _BANG.findall(declaration)
    return not bangs or (len(bangs) == 1 and bangs[0].lower() == b"important")


def media_holds(query: bytes) -> bool:
    """Whether a media query list holds on the printed page (what `mediaquery` cannot
    read taken as holding)."""
    return mediaquery.holds(query)


def supports_holds(condition: bytes) -> bool:
    """Whether a `@supports` condition holds in Chromium, what `mediaquery` cannot decide
    taken as holding."""
    return mediaquery.evaluate(mediaquery.parse_supports(condition), mediaquery.PRINTED,
                               mediaquery.EVERY)


