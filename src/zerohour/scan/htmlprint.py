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

`printed_page` writes the page again as Chromium's print applies it: inert sheets written
as text, comments dropped, `@media` evaluated for a printed Letter page (print, light,
portrait, 740 px wide), `@supports` for the properties a browser has, invalid rules and
declarations dropped. That page is one more HTML layer; the page's own readings stay
(another reader may apply more).
"""

from __future__ import annotations

import re

from zerohour.scan.gates import Gate
from zerohour.scan.htmlunhidden import block_end
from zerohour.scan.textual import _css_text

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
_STYLE = re.compile(rb"<style\b([^>]*+)(?:>(.*?)(</style\s*>|\Z)|\Z)", re.I | re.S)  # (see
# textual._STYLE_BLOCK: an opening without its `>` matches to the end, with no group 2)
_LINK = re.compile(rb"<link\b[^>]*+(?:>|\Z)", re.I)  # (to the end without a `>`: see _STYLE)
_ATTR = re.compile(rb"(?<![\w-])(type|media|rel|disabled)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|"
                   rb"([^\s>]+)))?", re.I)
_AT_BLOCK = re.compile(rb"@(media|supports)\b([^{};@]*+)\{", re.I)  # (no `@`: linear)
_IMPORT = re.compile(rb"@import\b[^;{}]*;?", re.I)
_RULE = re.compile(rb"(?<![^{}@;])([^{}@;]+)\{([^{}]*)\}")

#: The printed page: Letter, portrait, Chromium's default margins.
_WIDTH, _HEIGHT = 740.0, 980.0


#: What may hide text (as `textual`'s readings take it): a page whose printing drops none
#: of it reads as its own readings do, and makes no layer (most mail has `@media` rules).
_HIDES = re.compile(rb"display\s*:\s*none|visibility\s*:\s*(?:hidden|collapse)|(?:font-size|"
                    rb"font|opacity|width|height|max-width|max-height)\s*:\s*0(?![.\d]*[1-9])|"
                    rb"scale|clip|mask|:\s*-\s*\d{3}|hidden|content-visibility|"
                    rb"text-security|line-clamp|text-overflow|transform|position|order|"
                    rb"float|direction|unicode-bidi|content\s*:|text-transform", re.I)


def printed_page(data: bytes) -> bytes | None:
    """The page as Chromium prints it (see the module's docstring); None if that drops
    nothing that may hide or move text."""
    lower = data.lower()
    if b"<style" not in lower and b"<link" not in lower:
        return None
    dropped: list[bytes] = []
    page = _COMMENT.sub(b"", data) if b"<!--" in data else data
    if page is not data and page.count(b"<style") + page.count(b"<STYLE") < data.count(
            b"<style") + data.count(b"<STYLE"):
        dropped.append(b"hidden")  # (a style sheet in a comment: it applies nowhere)
    page = _INERT.sub(_inert_content, page)
    if _LT_IN_TAG(page):  # (a tag holds a "<": calling back on every tag costs 3x)
        page = _TAG.sub(_quiet_attributes, page)
    page = _LINK.sub(lambda m: _live_link(m, dropped), page)
    page = _STYLE.sub(lambda m: _live_style(m, dropped), page)
    if page == data:
        return None
    if page.count(b"&lt;style") + page.count(b"&lt;link") > lower.count(b"&lt;style") + (
            lower.count(b"&lt;link")):
        dropped.append(b"hidden")  # (a sheet written as text: it may have hidden anything)
    return page if any(_HIDES.search(d) for d in dropped) else None


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
    return {m.group(1).lower(): next((g for g in m.groups()[1:] if g is not None), b"")
            for m in _ATTR.finditer(text)}


def _live_link(m: re.Match[bytes], dropped: list[bytes]) -> bytes:
    if not m.group().endswith(b">"):
        return m.group()
    attrs = _attrs(m.group())
    rel = attrs.get(b"rel", b"").lower().split()
    if b"stylesheet" in rel and (b"alternate" in rel or b"disabled" in attrs or not media_holds(
            attrs.get(b"media", b"all"))):
        dropped.append(b"hidden")  # (what the sheet it loads holds is not looked at here)
        return b""
    return m.group()


def _live_style(m: re.Match[bytes], dropped: list[bytes]) -> bytes:
    if m.group(2) is None:
        return m.group()
    attrs = _attrs(m.group(1))
    kind = attrs.get(b"type", b"text/css").strip().lower()
    if kind not in (b"", b"text/css") or not media_holds(attrs.get(b"media", b"all")):
        dropped.append(m.group(2))
        return b""
    return b"<style" + m.group(1) + b">" + _printed_sheet(m.group(2), dropped) + m.group(3)


def _printed_sheet(sheet: bytes, dropped: list[bytes]) -> bytes:
    """A style sheet with its conditions decided for print and what no browser applies
    left out (into `dropped`)."""
    sheet = _css_text(sheet)

    def importing(m: re.Match[bytes]) -> bytes:
        if _import_applies(m.group()):
            return m.group()
        dropped.append(b"hidden")
        return b""
    sheet = _IMPORT.sub(importing, sheet)
    out = bytearray()
    at = 0
    while True:  # (every block: one left undecided may be the one hiding the pieces)
        m = _AT_BLOCK.search(sheet, at)
        if m is None:
            break
        i = block_end(sheet, m.end())
        out += _valid_rules(sheet[at : m.start()], dropped)
        kind, condition = m.group(1).lower(), m.group(2)
        holds = media_holds(condition) if kind == b"media" else supports_holds(condition)
        if holds:
            out += _printed_sheet(sheet[m.end() : max(m.end(), i - 1)], dropped)
        else:
            dropped.append(sheet[m.start() : i])
        at = i
    out += _valid_rules(sheet[at:], dropped)
    return bytes(out)


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


def _valid_rules(text: bytes, dropped: list[bytes]) -> bytes:
    """`text` without the rules a browser drops: a selector list with an invalid selector
    (an unknown pseudo-class, stray punctuation), declarations with junk after the value."""
    def one(m: re.Match[bytes]) -> bytes:
        selectors, body = m.group(1), m.group(2)
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


_FEATURE = re.compile(rb"\(\s*([\w-]+)\s*(?::\s*([^()]*+))?\)")  # (to the next bracket, round 4)
_LENGTH = re.compile(rb"([\d.]+)\s*(px|em|rem|in|cm|mm|pt)?", re.I)
_UNITS = {b"px": 1.0, b"em": 16.0, b"rem": 16.0, b"in": 96.0, b"cm": 96 / 2.54,
          b"mm": 96 / 25.4, b"pt": 4 / 3}


def media_holds(query: bytes) -> bool:
    """Whether a media query list holds on the printed page."""
    return any(_one_query(q) for q in query.lower().split(b","))


def _one_query(query: bytes) -> bool:
    words = _FEATURE.sub(b" ", query).split()
    negated = b"not" in words[:1]
    kinds = [w for w in words if w not in (b"not", b"only", b"and")]
    kind_ok = not kinds or kinds[0] in (b"all", b"print")
    result = kind_ok and all(_feature(f.group(1), f.group(2)) for f in _FEATURE.finditer(query))
    return result != negated


def _feature(name: bytes, value: bytes | None) -> bool:
    value = (value or b"").strip()
    if name == b"prefers-color-scheme":
        return value == b"light"
    if name == b"orientation":
        return value == b"portrait"
    if name in (b"hover", b"any-hover", b"pointer", b"any-pointer"):
        return value == b"none"
    if name == b"prefers-reduced-motion":
        return value == b"no-preference"
    if name.endswith((b"width", b"height")):
        m = _LENGTH.match(value)
        if m is None:
            return True
        px = float(m.group(1)) * _UNITS.get((m.group(2) or b"px").lower(), 1.0)
        size = _HEIGHT if name.endswith(b"height") else _WIDTH
        if name.startswith(b"min-"):
            return size >= px
        if name.startswith(b"max-"):
            return size <= px
        return size == px
    return True


_SUPPORTED = frozenset(
    b"""display position float clear color background background-color border margin padding
    width height min-width max-width min-height max-height top left right bottom transform
    opacity visibility font font-size font-family font-weight text-align text-transform
    flex flex-direction flex-wrap order grid grid-template-columns grid-template-rows gap
    columns column-count content overflow z-index clip-path filter transition animation
    writing-mode direction unicode-bidi white-space word-break line-height text-decoration
    box-shadow border-radius outline cursor contain container-type aspect-ratio inset
    backdrop-filter mask appearance""".split())
_DISPLAYS = frozenset(
    b"""none block inline inline-block flex inline-flex grid inline-grid contents table
    table-row table-cell table-caption table-column table-row-group table-header-group
    table-footer-group list-item flow-root ruby math inherit initial unset revert""".split())


_MAX_NESTING = 32  # `@supports` conditions nested deeper are taken as true (round 4 of the
# CPU hunt: 1,600 nested brackets, or a chain of `not`, ran out of Python's recursion)


def supports_holds(condition: bytes, depth: int = 0) -> bool:
    """Whether a `@supports` condition holds in Chromium (declarations of known properties;
    `display` by its keywords)."""
    if depth > _MAX_NESTING:
        return True
    text = condition.strip().lower()
    if text.startswith(b"not"):
        return not supports_holds(text[3:], depth + 1)
    for word in (b"or", b"and"):
        parts = _top_level_split(text, word)
        if len(parts) > 1:
            held = (supports_holds(part, depth + 1) for part in parts)
            return any(held) if word == b"or" else all(held)
    inner = text[1:-1].strip() if text.startswith(b"(") and text.endswith(b")") else text
    if inner.startswith((b"(", b"not")):
        return supports_holds(inner, depth + 1)
    if inner.startswith((b"selector", b"font-tech", b"font-format")):
        return True
    prop, _, value = inner.partition(b":")
    prop, value = prop.strip(), value.strip()
    if prop.startswith(b"--"):
        return True
    if prop == b"display":
        return all(w in _DISPLAYS for w in value.split())
    return prop in _SUPPORTED


def _top_level_split(text: bytes, word: bytes) -> list[bytes]:
    """`text` split at ` word ` outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text[:4096]):
        if c == 0x28:
            depth += 1
        elif c == 0x29:
            depth -= 1
        elif depth == 0 and text.startswith(b" " + word + b" ", i):
            parts.append(text[start:i])
            start = i + len(word) + 2
    return [*parts, text[start:]] if parts else [text]


_IMPORT_SUPPORTS = re.compile(rb"supports\s*\((.*)\)", re.I | re.S)


def _import_applies(rule: bytes) -> bool:
    m = _IMPORT_SUPPORTS.search(rule)
    return m is None or supports_holds(m.group(1))
