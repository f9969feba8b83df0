"""Text as a reader sees it, where that differs from the bytes: HTML as a browser renders it
(comments and tags gone, character references decoded), HTML attribute values with their
references decoded (what a link or a download gets), UTF-16 / UTF-32 text as UTF-8, and the
inline attachments of calendar invitations and vCards.

Byte signatures match the bytes; an attacker writes `X5O!P%&#64;AP`, `&#x58;`, `<b></b>` in
the middle of a string, or the whole text in UTF-16, and the bytes no longer hold the string
that the reader gets. These views are extra layers (the raw bytes are scanned as well), each
linear in its input, and only produced when they differ from the bytes.
"""

from __future__ import annotations

import bisect
import codecs
import copy as copy_module
import dataclasses
import functools
import html
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, SupportsIndex
from urllib.parse import unquote_to_bytes

import tinycss2

from zerohour.errors import ScanLimitExceeded
from zerohour.scan.encodings import base64_decode
from zerohour.scan.gates import Gate, Literals
from zerohour.scan.htmltree import (
    _CLOSES,
    _MAX_TREE_DEPTH,
    _PAGE_PARTS,
    _OpenElements,
    raw_text_end,
)
from zerohour.scan.limits import MAX_RECURSION, MAX_SCAN_TIME

_COMMENT = re.compile(rb"<!--(?:-?>|.*?(?:--!?>|\Z))", re.S)  # (`<!-->`: an empty one)
# A tag starts with "<" and a letter, "/", "!" or "?" (anything else after "<" is text to a
# browser); it ends at the next ">".
_TAG = re.compile(rb"<[A-Za-z/!?][^>]*(?:>|\Z)")
_MARKUP = re.compile(rb"[<&]")


# html.unescape's own reference pattern (but "&amp;", decoded last); each distinct reference
# is decoded once by html.unescape itself.
_CHARREF = re.compile(r"&(?!amp;)(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)")
_OTHER_REF = re.compile(rb"&(?!amp;)[#A-Za-z]")
# The references mail is full of, replaced in C first (no replacement holds "&", so nothing is
# decoded twice; "&amp;" goes last for the same reason).
_COMMON = tuple((ref.encode(), html.unescape(ref).encode()) for ref in (
    "&nbsp;", "&lt;", "&gt;", "&quot;", "&#39;", "&apos;", "&#160;", "&#8217;", "&#8216;",
    "&#8220;", "&#8221;", "&#8211;", "&#8212;", "&rsquo;", "&lsquo;", "&rdquo;", "&ldquo;",
    "&ndash;", "&mdash;", "&copy;", "&reg;", "&hellip;", "&#x27;", "&zwnj;", "&#847;",
))


@functools.lru_cache(maxsize=4096)
def _ref(ref: str) -> str:
    return html.unescape(ref)


def _unescape(data: bytes) -> bytes:
    """Character references decoded (named, decimal, hex; with or without `;`, as HTML5),
    faster than html.unescape on reference-heavy mail (newsletters are full of `&nbsp;` and
    `&#8217;`): common ones in C, the rest once per distinct reference. Odd nestings such as
    `&ampamp;` decode once more than in a browser (more text is seen, never less)."""
    for ref, text in _COMMON:
        if ref in data:
            data = data.replace(ref, text)
    if _OTHER_REF.search(data):
        s = _CHARREF.sub(lambda m: _ref(m.group()), data.decode("utf-8", "surrogateescape"))
        data = s.encode("utf-8", "surrogateescape")
    return data.replace(b"&amp;", b"&")


# References that only ever stand for typography: decoding them cannot make a "data:" link,
# a quote or a base64 character, so a document holding no other kind needs no decoded copy.
_SMUGGLING_REF = re.compile(
    rb"&(?!(?:nbsp|amp|lt|gt|rsquo|lsquo|rdquo|ldquo|ndash|mdash|hellip|copy|reg|trade|zwnj"
    rb"|#160|#8217|#8216|#8220|#8221|#8211|#8212|#8230|#847|#8203);)[#A-Za-z]")


def html_unescaped(data: bytes) -> bytes | None:
    """`data` with its character references decoded (attribute values are what a link or a
    download uses, `&quot;` ends a script string), or None when it has no reference that could
    change a link or a script literal."""
    if b"&" not in data or not _SMUGGLING_REF.search(data):
        return None
    out = _unescape(data)
    return out if out != data else None


#: Characters a browser renders as nothing: zero-width space, non-joiner, joiner, word joiner,
#: soft hyphen, BOM (UTF-8).
_INVISIBLE = tuple(c.encode() for c in ("\u200b", "\u200c", "\u200d", "\u2060", "\u00ad",
                                        "\ufeff"))


_TITLE_END = re.compile(rb"</title\s*>", re.I)


#: A tag, end tag, comment or declaration opening: the tokenizer leaves its data state there.
_TAG_OPEN = re.compile(rb"<[A-Za-z!/?]")
#: Elements whose content is text to their end tag (`<plaintext>`: to the end of the page).
_RAW_TEXT_ELEMENTS = (b"plaintext", b"xmp", b"textarea", b"title", b"style", b"script",
                      b"iframe", b"noembed", b"noframes", b"noscript")


def tag_spans(lower: bytes, opener: bytes) -> Iterator[tuple[int, int]]:
    """Each `opener` (`b"<style"`) in the lower-cased page and the `>` that ends its tag (-1:
    none, the tag runs to the end), each tag once: an opener inside a tag already read is
    skipped (a pattern `<x[^>]*...` tried at each of many read on to one far `>` or the end
    from every one: quadratic)."""
    at = lower.find(opener)
    while at >= 0:
        gt = lower.find(b">", at)
        yield at, gt
        if gt < 0:
            return
        at = lower.find(opener, gt)


#: Where a browser reads a NUL as U+FFFD: a tag (its name, its attributes), a comment or a
#: declaration, and the text of an element the tokenizer does not read for tags.
_NUL_AS_REPLACEMENT = re.compile(
    rb"<!--(?:-?>|.*?(?:--!?>|\Z))|"  # (a comment first: a `<style>` in it opens nothing)
    rb"<(style|script|textarea|title|xmp|iframe|noembed|noframes)(?![a-z0-9])"
    rb"(?:[^>\"']|\"[^\"]*+\"|'[^']*+')*+>.*?(?:</\1(?=[\t\n\f\r />])|\Z)|"
    # (a quoted value may hold a `>`: `<span title=">" class="j\0">`, attack round 40)
    rb"<[a-z/!?](?:[^>\"']|\"[^\"]*+\"|'[^']*+')*+>?", re.I | re.S)
_REPLACEMENT = "\ufffd".encode()


def nuls_as_parsed(data: bytes) -> bytes:
    """`data` with its NULs as a browser's tokenizer and tree builder read them: dropped
    from the page's text, U+FFFD in markup and in raw text (`.a\0b` is no class `ab`). The
    readers read a page's text as written: one NUL between two halves of a word hid it."""
    if b"\x00" not in data:
        return data
    kept = _NUL_AS_REPLACEMENT.sub(lambda m: m.group().replace(b"\x00", _REPLACEMENT), data)
    return kept.replace(b"\x00", b"")


def closed_tail(data: bytes) -> bytes:
    """`data` as a browser reads the part after its last `>`: from the first tag opening
    there on, nothing (a tag, comment or declaration the page's end cuts off: the tokenizer
    drops it); inside a raw-text element left open (`<xmp>`, `<plaintext>`...), its text
    with each `<` written `&lt;`. A tag pattern tried at each of those openings read on to
    the end every time: 40 KB of `<style` cost 10 s of CPU, quadratic."""
    tail = data.rfind(b">") + 1
    first = _TAG_OPEN.search(data, tail)
    if first is None:
        return data
    head = data[:tail].lower()
    for name in _RAW_TEXT_ELEMENTS:
        opened = head.rfind(b"<" + name)
        if opened >= 0 and (name == b"plaintext" or head.find(b"</" + name, opened) < 0):
            return data[:tail] + data[tail:].replace(b"<", b"&lt;")
    return data[: first.start()]


def html_rendered(data: bytes) -> bytes | None:
    """The text a browser shows: comments and tags removed (text split by `<b></b>` or
    `<!-- -->` joins up again), character references decoded, characters that render as
    nothing (zero-width, soft hyphen) dropped. None when that is `data` itself."""
    if not _MARKUP.search(data):
        return None
    if b"</title" in data or b"</TITLE" in data:  # a title is no part of the body's text
        data = _TITLE_END.sub(b"\n", data)
    out = _TAG.sub(b"", _COMMENT.sub(b"", data)) if b"<" in data else data
    if b"&" in out:
        out = _unescape(out)
    if b"\xe2\x80" in out or b"\xc2\xad" in out or b"\xef\xbb\xbf" in out or b"\xe2\x81\xa0" in out:
        for invisible in _INVISIBLE:  # render as nothing, yet split the bytes
            out = out.replace(invisible, b"")
    return out if out != data else None


#: A token of text long enough to be a file's base64 with junk between its characters: in a
#: run of text between tags (not a tag's attributes: long URLs), one C-speed pass each.
_LONG_TEXT_RUN = re.compile(rb">[^<]{200,}")  # (a literal first: searched for, not tried at
# every byte; a run's tokens by `bytes.split`, not by a regex: 0.8 -> 0.06 ms a 74 KB page)


def long_text_token(data: bytes) -> bool:
    """Whether the page's text holds a token of 200 bytes or more (no space, `<` or `>`)."""
    for m in _LONG_TEXT_RUN.finditer(b">" + data):
        for token in m.group().split():
            if len(token) >= 200 and any(len(part) >= 200 for part in token.split(b">")):
                return True
    return False
_BLOCK_TAG = re.compile(rb"<(?:br|/?(?:p|div|li|tr|td|th|h[1-6]|table|tbody|section|article|"
                        rb"blockquote|pre|ul|ol|dl|dt|dd|hr|header|footer|nav|form|fieldset|"
                        rb"address|figure|main|aside|center|body))\b[^>]*>", re.I)


def html_block_text(data: bytes) -> bytes | None:
    """The page's text with a line break where a block starts or ends (what a printed page
    and `pdftotext` keep apart: a paragraph of prose, then one of base64 with junk)."""
    return html_rendered(_BLOCK_TAG.sub(b"\n<b></b>", data))


def block_breaks(data: bytes) -> bytes:
    """The page with a line break before each block's tags (its elements kept)."""
    return _BLOCK_TAG.sub(lambda m: b"\n" + m.group(), data)


#: A line of 16 base64 letters or more after a line ending in one (`html_block_text`): joined
#: without the break, the two decode letters off.
BLOCK_JOIN = re.compile(rb"[A-Za-z0-9+/=][ \t\r]*\n\s*[A-Za-z0-9+/]{16}")
#: Whether the page may hold one (a block's tag between a base64 letter and a run of 16:
#: one hyperscan pass, not `html_block_text`'s millisecond on every page).
_BLOCK_BOUNDARY = (rb"[A-Za-z0-9+/=][ \t\r\n]*(?:<[^>]*>[ \t\r\n]*)*<(?:br|/?(?:p|div|li|tr|td|"
                   rb"th|h[1-6]|table|tbody|section|article|blockquote|pre|ul|ol|dl|dt|dd|hr|"
                   rb"header|footer|nav|form|fieldset|address|figure|main|aside|center|body))"
                   rb"\b[^>]*>[ \t\r\n]*(?:<[^>]*>[ \t\r\n]*)*")
BLOCK_JOIN_PAGE = Gate(_BLOCK_BOUNDARY + rb"[A-Za-z0-9+/]{16}")
#: ...or a short run of them cut by a tag (pieces of base64 between hidden junk, session
#: 25: `<div>Key</div><div>TVq<span hidden>..</span>QAA...`; `html_visible` decides).
BLOCK_PIECES_PAGE = Gate(_BLOCK_BOUNDARY + rb"[A-Za-z0-9+/]{1,15}<")


#: What can hide an element's text from the reader: a style, an attribute, an element that
#: never renders, a class a style sheet hides. (A gate: most HTML holds none of these.)
#: Elements whose content a browser does not show: never rendered, fallback content of
#: media a browser plays (`<video>junk</video>`), an iframe's text, a closed `<dialog>` or
#: `<details>` (its `<summary>` stays), ruby fallback, SVG descriptions.
_NEVER_RENDERED = frozenset({b"template", b"noscript", b"script", b"style", b"title", b"head",
                             b"audio", b"video", b"canvas", b"iframe", b"datalist", b"rp",
                             b"desc", b"dialog", b"details", b"noembed", b"noframes",
                             b"annotation", b"annotation-xml",
                             # a text field's text: shown in its box, never in a copy of the
                             # page's text around it (round 13: junk inside zero-size fields)
                             b"textarea",
                             # an object's fallback content, shown only when its data fails
                             # (round 14: junk in zero-size objects of a data: URL)
                             b"object",
                             # MathML that takes room but shows nothing (round 15)
                             b"mphantom",
                             # widgets that never show what they hold, and a fenced frame's
                             # fallback (round 18)
                             b"meter", b"progress", b"fencedframe"})
_OPENABLE = frozenset({b"dialog", b"details"})
_HIDING = re.compile(rb"display|visibility|\s(?:hidden|popover)[\s=>/]|font-size|font\s*:|"
                     rb"text-security|opacity|"
                     rb"overflow\s*:\s*(?:hidden|clip)|scale|clip|matrix|rotate[xy]|contain\s*:|mask|:\s*-\s*\d{3}|<(?:"
                     + b"|".join(sorted(_NEVER_RENDERED | {b"svg", b"math"})) + rb")\b", re.I)
_ELEMENT = re.compile(rb"<(/?)([A-Za-z][\w:-]*)([^>]*)>|<!--(?:-?>|.*?(?:--!?>|\Z))", re.S)
_VOID = frozenset({b"area", b"base", b"br", b"col", b"embed", b"hr", b"img", b"input",
                   b"link", b"meta", b"param", b"source", b"track", b"wbr"})
#: (`display:var(--d)`: a custom property can hold "none"; counted as hiding.)
_DISPLAY = re.compile(rb"(?<![\w-])display\s*[:=]\s*[\"']?\s*([\w-]+(?:[ \t]+[\w-]+)?)", re.I)
_VISIBILITY = re.compile(rb"(?<![\w-])visibility\s*[:=]\s*[\"']?\s*([\w-]+)", re.I)
_OTHER_HIDING = re.compile(rb"(?:^|[\s/])(?:hidden|popover)(?:[\s=/]|$)|"
                           rb"font-size\s*:\s*0(?![.\d]*[1-9])|opacity\s*:\s*0(?![.\d]*[1-9])|"
                           # round 20: the `font` shorthand's size, content not rendered,
                           # characters drawn as bullets
                           rb"(?<![\w-])font\s*:\s*(?:[\w-]+\s+){0,3}?[0.]+(?:[a-z]+|%)?"
                           rb"(?=\s*/|\s+[\w\"'])|content-visibility\s*:\s*hidden|"
                           rb"text-security\s*:\s*(?:disc|circle|square)", re.I)
#: Round 16: what "visually hidden" CSS does without display or visibility: scaled to
#: nothing, clipped away (`clip-path: inset(50%)`, `clip: rect(0 0 0 0)`), moved far off
#: screen, a box of no size that hides its overflow. Chromium paints none of it (a printed
#: page's text has none of it). Over-reading is safe: the page's whole text is read too.
_SCALED_AWAY = re.compile(rb"transform\s*:[^;:\"']*+\bscale(?:x|y|3d)?\(\s*0(?![.\d]*[1-9])|"
                          rb"(?<![\w-])scale\s*:\s*0(?![.\d]*[1-9])", re.I)
_CLIPPED_AWAY = re.compile(rb"clip-path\s*:\s*(?:inset\(\s*(?:[5-9]\d|\d{3,})(?:\.\d*)?%|"
                           rb"(?:circle|ellipse)\(\s*0(?![.\d]*[1-9])|polygon\(\s*\))", re.I)
_CLIP_RECT = re.compile(rb"(?<![\w-])clip\s*:\s*rect\(\s*(-?[\d.]+)[a-z]*[\s,]+(-?[\d.]+)[a-z]*"
                        rb"[\s,]+(-?[\d.]+)[a-z]*[\s,]+(-?[\d.]+)", re.I)
_OFF_SCREEN = re.compile(rb"(?<![\w-])(left|top|right|bottom|text-indent|margin-left|margin-top|"
                         rb"inset)\s*:\s*-\s*(?:\d{4,}|\d{3,}(?:\.\d*)?(?:r?em|v[wh]|%|ch|ex|pt))",
                         re.I)
#: (offsets move only positioned elements, `text-indent` and `margin-top` only boxes)
_POSITIONED = re.compile(rb"position\s*:\s*(?:absolute|fixed|relative|sticky)", re.I)
_ZERO_BOX = re.compile(rb"(?<![\w-])(?:max-)?(?:width|height|block-size|inline-size)\s*:\s*0"
                       rb"(?![.\d]*[1-9])", re.I)
#: (paint containment clips like `overflow: clip`: `contain: strict | content | paint`)
_OVERFLOW_HIDDEN = re.compile(rb"overflow(?:-[xy])?\s*:\s*(?:hidden|clip)|(?<![\w-])contain\s*:"
                              rb"[^;:\"']*\b(?:paint|strict|content)\b", re.I)  # (no `:`: linear)
#: Round 18: transforms that flatten a box to a line or a point (a `matrix()` or
#: `matrix3d()` of no area, `scale(1, 0)`, `rotateX(90deg)`) or move it far off the page
#: (a matrix's translation); size containment (`contain: size | strict`) that makes a box
#: of no height and clips what it holds.
_TRANSFORM_FUNCTIONS = re.compile(rb"(?<![\w-])(matrix3d|matrix|scale3d|scale[xy]?|rotate[xy])\s*\("
                                  rb"([^()]*)\)", re.I)
_TRANSFORM_VALUE = re.compile(rb"(?<![\w-])(transform|scale)\s*:\s*([^;\"']*)", re.I)
_SIZE_CONTAINED = re.compile(rb"(?<![\w-])contain\s*:[^;:\"']*\b(?:size|strict)\b", re.I)
_SIZED = re.compile(rb"(?<![\w-])(?:min-)?(?:height|block-size)\s*:\s*(?!0(?![.\d]*[1-9])|auto|"
                    rb"none|inherit|initial|unset)[\d.]|contain-intrinsic", re.I)
#: A mask of gradients that are transparent through (round 18: `mask: linear-gradient(
#: transparent, transparent)`): nothing of the element is painted.
_MASK = re.compile(rb"(?<![\w-])(?:-webkit-)?mask(?:-image)?\s*:\s*([^;\"']*)", re.I)
_TRANSPARENT = re.compile(rb"transparent|#[0-9a-f]{3}0(?![0-9a-f])|#[0-9a-f]{6}00(?![0-9a-f])|"
                          rb"(?:rgb|hsl|hwb|lab|lch|oklab|oklch)a?\([^()]*[,/]\s*0*(?:\.0*)?%?\s*\)",
                          re.I)
_GRADIENT = re.compile(rb"(?:-webkit-)?(?:repeating-)?(?:linear|radial|conic)-gradient\s*\(", re.I)
_GRADIENT_WORDS = frozenset({b"to", b"left", b"right", b"top", b"bottom", b"center", b"at",
                             b"circle", b"ellipse", b"closest-side", b"closest-corner",
                             b"farthest-side", b"farthest-corner", b"from", b"in", b"srgb",
                             b"srgb-linear", b"oklab", b"oklch", b"lab", b"lch", b"hsl", b"hwb",
                             b"xyz", b"shorter", b"longer", b"increasing", b"decreasing",
                             b"hue", b"no-repeat", b"repeat", b"repeat-x", b"repeat-y",
                             b"space", b"round", b"border-box", b"padding-box",
                             b"content-box", b"alpha", b"luminance", b"add", b"subtract",
                             b"intersect", b"exclude", b"match-source", b"auto", b"cover",
                             b"contain", b"deg", b"turn", b"rad", b"grad"})
_WORD = re.compile(rb"[A-Za-z][\w-]*|#|\(")


def _masked_away(text: bytes) -> bool:
    """Whether a `mask` (`mask-image`) is gradients transparent through (nothing shows)."""
    for m in _MASK.finditer(text):
        value = m.group(1)
        if not _GRADIENT.search(value):
            continue
        rest = _TRANSPARENT.sub(b" ", _GRADIENT.sub(b" ", value)).replace(b")", b" ")
        if all(w.lower() in _GRADIENT_WORDS for w in _WORD.findall(rest)):
            return True
    return False


_ANGLE_VALUE = re.compile(rb"\s*(-?[\d.]+)\s*(deg|grad|rad|turn)?\s*$", re.I)
#: Elements a browser makes boxes of (transforms and sizes apply to them), without a
#: `display` of their own: blocks, table parts, list items, replaced elements and widgets.
_BOX_TAGS = frozenset({b"address", b"article", b"aside", b"blockquote", b"center", b"dd",
                       b"dir", b"div", b"dl", b"dt", b"fieldset", b"figcaption", b"figure",
                       b"footer", b"form", b"h1", b"h2", b"h3", b"h4", b"h5", b"h6",
                       b"header", b"hgroup", b"hr", b"legend", b"li", b"listing", b"main",
                       b"menu", b"nav", b"ol", b"p", b"pre", b"search", b"section",
                       b"summary", b"table", b"caption", b"td", b"th", b"tr", b"tbody",
                       b"thead", b"tfoot", b"ul", b"xmp", b"img", b"input", b"button",
                       b"select", b"textarea", b"video", b"canvas", b"iframe", b"object",
                       b"embed", b"svg", b"meter", b"progress", b"marquee"})
#: Displays that make no box of their own (width, height and transforms do not apply).
_NO_BOX = frozenset({b"inline", b"contents", b"ruby", b"ruby-text", b"none"})
_MAKES_BOX = re.compile(rb"position\s*:\s*(?:absolute|fixed)|(?<![\w-])float\s*:\s*(?:left|right|"
                        rb"inline-start|inline-end)", re.I)


def _numbers(args: bytes) -> list[float]:
    out = []
    for arg in args.replace(b",", b" ").split():
        try:
            out.append(float(arg.rstrip(b"%").rstrip(b"px")))
        except ValueError:
            return []
    return out


def _degrees(arg: bytes) -> float | None:
    m = _ANGLE_VALUE.match(arg)
    if m is None:
        return None
    try:
        value = float(m.group(1))
    except ValueError:
        return None
    unit = (m.group(2) or b"deg").lower()
    return value * {b"deg": 1.0, b"grad": 0.9, b"rad": 57.29577951308232, b"turn": 360.0}[unit]


def _transformed_away(text: bytes) -> bool:
    """Whether a `transform` (or `scale`) flattens the box to nothing or moves it far off
    the page."""
    for value in _TRANSFORM_VALUE.finditer(text):
        if value.group(1).lower() == b"scale":
            scale = _numbers(value.group(2))
            if any(v == 0 for v in scale[:2]):
                return True
            continue
        for m in _TRANSFORM_FUNCTIONS.finditer(value.group(2)):
            name = m.group(1).lower()
            if name.startswith(b"rotate"):
                angle = _degrees(m.group(2))
                if angle is not None and abs(abs(angle) % 180.0 - 90.0) < 0.01:
                    return True  # edge on: a line
                continue
            args = _numbers(m.group(2))
            if not args:
                continue
            if name == b"matrix" and len(args) == 6:
                a, b, c, d, e, f = args
            elif name == b"matrix3d" and len(args) == 16:
                a, b, c, d, e, f = args[0], args[1], args[4], args[5], args[12], args[13]
            elif name in (b"scale", b"scale3d"):
                if any(v == 0 for v in args[:2]):
                    return True
                continue
            elif name in (b"scalex", b"scaley"):
                if args[0] == 0:
                    return True
                continue
            else:
                continue
            if abs(a * d - b * c) < 1e-9 or abs(e) >= 5000 or abs(f) >= 5000:
                return True
    return False


# What a style's declarations do to an element (`_css_kinds`): hide it by `display`, by
# `visibility`, by other properties (opacity, clipping, offsets, font size), by properties
# that act only on a box (transforms, sizes: `_BOX_TAGS`); show it by `display` or
# `visibility`; make it a box (a `display` other than inline, absolute positions, floats);
# keep it inline (`display: inline`).
HIDE_DISPLAY, HIDE_VISIBILITY, HIDE_OTHER, HIDE_BOX = 1, 2, 4, 8
SHOW_DISPLAY, SHOW_VISIBILITY, MAKES_BOX, INLINE = 16, 32, 64, 128
HIDE_PLACED, POSITIONED = 256, 512  # moved away by offsets (if positioned); positioned
ITEMS = 1024  # a flex or grid container (its children are boxes whatever their display)
CONTENTS = 2048  # `display: contents`: no box, unless the element is one of `_CONTENTS_NONE`
INHERITS = 4096  # `display: inherit`: the parent's display (`contents` too: `display_flags`)
REVERTS = 8192  # `display: revert`: the browser's own (`none` for `[hidden]`, a box for `<div>`)
#: (flags on a ranked compound's kind, not kinds of their own)
_KIND_FLAGS = MAKES_BOX | ITEMS | CONTENTS | INHERITS | REVERTS
#: Elements `display: contents` does not unbox but hides, as `none` (CSS Display 3, appendix
#: B; SVG 2; MathML): junk in `<svg class=j>`, `<select class=j>` with `.j{display:
#: contents}` shows nowhere in Chromium (session 27, attack round 42). A nested `<svg>`
#: unboxes in Chromium; read as hidden here (the outer one's rule).
_CONTENTS_NONE = frozenset({
    b"svg", b"math", b"select", b"textarea", b"input", b"img", b"video", b"audio", b"canvas",
    b"object", b"embed", b"iframe", b"meter", b"progress", b"br", b"wbr", b"frame",
    b"frameset", b"option"})
#: ...and these when they are SVG's or MathML's (`_hides(foreign=True)`: the parsed reading
#: knows; an HTML `<foreignObject>` or `<annotation>` outside them unboxes, attack round
#: 43). Not here, though Chromium hides it too: SVG's `<a>` (g, tspan and use unbox).
_CONTENTS_NONE_FOREIGN = frozenset({
    b"text", b"foreignobject", b"switch", b"textpath",
    b"maction", b"annotation", b"annotation-xml", b"menclose", b"merror", b"mfrac", b"mi",
    b"mmultiscripts", b"mn", b"mo", b"mover", b"mpadded", b"mphantom", b"mprescripts",
    b"mroot", b"mrow", b"ms", b"mspace", b"msqrt", b"mstyle", b"msub", b"msubsup", b"msup",
    b"mtable", b"mtd", b"mtext", b"mtr", b"munder", b"munderover", b"semantics", b"mstack",
    b"mlongdiv", b"msgroup", b"msrow", b"mscarries", b"mscarry", b"msline", b"mglyph",
    b"mlabeledtr", b"none"})


#: Names `_NEVER_RENDERED` holds for SVG's and MathML's elements: an HTML element of the
#: name (outside `<svg>` and `<math>`) shows (attack round 43's decoy `<annotation>`).
_NEVER_RENDERED_FOREIGN = frozenset({b"desc", b"annotation", b"annotation-xml"})


def _contents_none(tag: bytes, foreign: bool | None) -> bool:
    """Whether `display: contents` hides the element (`_CONTENTS_NONE`)."""
    return tag in _CONTENTS_NONE or (foreign is True and tag in _CONTENTS_NONE_FOREIGN)
_HIDING_KINDS = HIDE_DISPLAY | HIDE_VISIBILITY | HIDE_OTHER | HIDE_BOX | HIDE_PLACED


def _css_kinds(text: bytes) -> int:
    """What a style attribute (or a rule's declarations) does to an element's text (a sum
    of the kinds above; the last `display` and `visibility` declared count)."""
    kinds = 0
    display = None
    for m in _DISPLAY.finditer(text):
        display = m.group(1).lower()
    if display is not None:
        words = display.split()
        if words[0] in (b"none", b"var", b"revert-layer"):  # (`revert-layer`: a layer below
            kinds |= HIDE_DISPLAY  # decides, read as hiding; see `_layerless` and `_own_style`)
        elif words[0] == b"revert" or all(  # (`revert`: the browser's own display)
                w in _NO_BOX or w in (b"inherit", b"unset", b"initial", b"flow") for w in words):
            kinds |= SHOW_DISPLAY | INLINE | (CONTENTS if words == [b"contents"] else
                                              INHERITS if words == [b"inherit"] else
                                              REVERTS if words[0] == b"revert" else 0)
        else:
            kinds |= SHOW_DISPLAY | MAKES_BOX
            if any(w.endswith((b"flex", b"grid")) for w in words):
                kinds |= ITEMS
    visibility = None
    for m in _VISIBILITY.finditer(text):
        visibility = m.group(1).lower()
    if visibility in (b"hidden", b"collapse"):
        kinds |= HIDE_VISIBILITY
    elif visibility in (b"visible", b"initial", b"revert"):  # (the initial value, and the
        kinds |= SHOW_VISIBILITY  # browser's: `visible`; attack round 45)
    if _MAKES_BOX.search(text):
        kinds |= MAKES_BOX
    if _OTHER_HIDING.search(text) or _CLIPPED_AWAY.search(text) or (
            b"mask" in text.lower() and _masked_away(text)):
        kinds |= HIDE_OTHER
    if _POSITIONED.search(text):
        kinds |= POSITIONED
    for m in _OFF_SCREEN.finditer(text):
        side = m.group(1).lower()
        if side == b"margin-left":
            kinds |= HIDE_OTHER
        elif side in (b"text-indent", b"margin-top"):
            kinds |= HIDE_BOX
        else:
            kinds |= HIDE_OTHER if kinds & POSITIONED else HIDE_PLACED
    for m in _CLIP_RECT.finditer(text):
        try:
            top, right, bottom, left = (float(g) for g in m.groups())
        except ValueError:
            continue
        if top >= bottom or left >= right:
            kinds |= HIDE_OTHER
    if (b"scale" in text or b"transform" in text.lower()) and (
            _SCALED_AWAY.search(text) or _transformed_away(text)):
        kinds |= HIDE_BOX
    if (_ZERO_BOX.search(text) or (_SIZE_CONTAINED.search(text) and not _SIZED.search(text))
            ) and _OVERFLOW_HIDDEN.search(text):
        kinds |= HIDE_BOX
    return kinds


#: What makes a block's `display`/`visibility` other than its last one written: another of
#: them, `!`, a string, a function or block, an at-rule, an escape (attack round 39).
_ODD_DECLARATIONS = re.compile(rb"[!\"'(){}@\\]")
DISPLAY_KEYWORDS = _DISPLAY_KEYWORDS = frozenset((
    b"block", b"inline", b"run-in", b"flow", b"flow-root", b"table", b"flex", b"grid",
    b"ruby", b"list-item", b"contents", b"none", b"inline-block", b"inline-table",
    b"inline-flex", b"inline-grid", b"inline-list-item", b"table-row-group",
    b"table-header-group", b"table-footer-group", b"table-row", b"table-cell",
    b"table-column-group", b"table-column", b"table-caption", b"ruby-base", b"ruby-text",
    b"ruby-base-container", b"ruby-text-container", b"math", b"-webkit-box",
    b"-webkit-inline-box", b"-webkit-flex", b"-webkit-inline-flex", b"masonry",
    b"inline-masonry"))
#: (the keywords a multi-keyword `display` combines: `inline flex`, `block flow list-item`)
_DISPLAY_PARTS = frozenset((b"block", b"inline", b"run-in", b"flow", b"flow-root", b"table",
                            b"flex", b"grid", b"ruby", b"math", b"list-item"))
_WIDE_KEYWORDS = frozenset((b"initial", b"inherit", b"unset", b"revert", b"revert-layer"))
_VISIBILITY_KEYWORDS = frozenset((b"visible", b"hidden", b"collapse"))


_NAMED_IN_VALUE = re.compile(rb"display|visibility", re.I)
_IMPORTANT_MARKS = re.compile(rb"!\s*important\b", re.I)
_ONE_DECLARATION = re.compile(rb"(?<![\w-])(display|visibility)\s*:([^;]*)", re.I)


def _valid_value(name: str, value: bytes) -> bool:
    """Whether a browser keeps a `display` or `visibility` value (one it cannot read is no
    declaration: `display:none; display:inln` stays none)."""
    words = value.lower().split()
    if not words or b"var(" in value.lower() or b"env(" in value.lower():
        return bool(words)
    if len(words) == 1 and words[0] in _WIDE_KEYWORDS:
        return True
    if name == "visibility":
        return len(words) == 1 and words[0] in _VISIBILITY_KEYWORDS
    if len(words) == 1:
        return words[0] in _DISPLAY_KEYWORDS
    return len(set(words)) == len(words) <= 3 and _DISPLAY_PARTS.issuperset(words)


def declared(text: bytes) -> bytes:
    """`_declared`, remembered for the last texts (a page repeats its style attributes)."""
    if len(text) > 4096:
        return _declared(text)
    return _declared_cached(text)


def _declared(text: bytes) -> bytes:
    """A declaration block as a browser keeps it, where the last `display` or `visibility`
    written may not be the one that counts (attack round 39: `display:none !important;
    display:inline` is none; `display:inln`, `display:inline !ie`, `display:inline }` are
    dropped; `content:';display:inline'`, `url(x;display:inline)`, `color:red(;
    display:inline`, `x{display:inline}` declare no display): parsed by tinycss2 (CSS Syntax
    3, a well-kept parser, rather than more regular expressions), each property's winning
    declaration kept (an !important one over later normal ones), in order. Other blocks as
    they are (the readings' regular expressions read them right, and fast)."""
    lower = text.lower()
    hits = lower.count(b"display") + lower.count(b"visibility")
    if not hits:
        return text
    plain = _IMPORTANT_MARKS.sub(b"", text) if b"!" in text else text
    if hits == 1 and not _ODD_DECLARATIONS.search(plain):
        one = _ONE_DECLARATION.search(text)
        if one is None or _valid_value(one.group(1).lower().decode(), _IMPORTANT_MARKS.sub(
                b"", one.group(2)).strip()):
            return text  # (the common block: one valid value, read as it is)
    items: list[tuple[str, bool, bytes]] = []  # (name, !important, value)
    if not _ODD_DECLARATIONS.search(plain) and b"/*" not in text:
        for part in text.split(b";"):  # (no string, function or block: split, no parse)
            name_, colon, value_ = part.partition(b":")
            if colon and name_.strip():
                name = name_.strip().decode("latin-1")
                important = b"!" in value_ and _IMPORTANT_MARKS.search(value_) is not None
                items.append((name if name[:2] == "--" else name.lower(), important,
                              _IMPORTANT_MARKS.sub(b"", value_).strip()))
    else:
        for item in tinycss2.parse_blocks_contents(text.decode("latin-1"), skip_comments=True,
                                                  skip_whitespace=True):
            if item.type != "declaration":
                continue  # (a nested rule or an at-rule declares nothing here)
            items.append((item.name if item.name[:2] == "--" else item.lower_name,  # (`--H`
                          bool(item.important),  # is not `--h`)
                          tinycss2.serialize(item.value).strip().encode("latin-1", "replace")))
    won: dict[str, tuple[bool, bytes]] = {}
    for name, important, value in items:
        if name in ("display", "visibility"):
            if not _valid_value(name, value):
                continue
        elif b"isplay" in value.lower() or b"isibility" in value.lower():
            value = _NAMED_IN_VALUE.sub(b"x", value)  # (a string's, a function's: no
            # declaration of its own for the readings' regular expressions)
        if name in won and won[name][0] and not important:
            continue
        won.pop(name, None)  # (the winner's place: last)
        won[name] = (important, value)
    return b";".join(name.encode("latin-1", "replace") + b":" + value + (
        b" !important" if important else b"") for name, (important, value) in won.items())


_declared_cached = functools.lru_cache(maxsize=4096)(_declared)


def declared_style(attrs: bytes) -> bytes:
    """An opening tag's attributes with its style attribute's declarations as a browser
    keeps them (`declared`; of two style attributes the first, as the parser keeps it)."""
    lower = attrs.lower()
    if b"style" not in lower or (b"display" not in lower and b"visibility" not in lower
                                 and lower.count(b"style") < 2):
        return attrs
    kept: list[bytes] = []
    style: bytes | None = None
    for m in _ATTRS.finditer(attrs):
        name = m.group(1).lower()
        if name == b"style":
            if style is None:
                style = m.group(2) if m.group(2) is not None else m.group(3) if m.group(
                    3) is not None else m.group(4) or b""
            continue
        kept.append(m.group())
    if style is None:
        return attrs
    return b" " + b" ".join(kept) + b' style="' + declared(style).replace(b'"', b"'") + b'"'


def _hiding_css(text: bytes) -> bool:
    """Whether a style attribute (or a rule's declarations) hides the element's text (a
    box's: transforms and sizes hide only boxes)."""
    return bool(_css_kinds(text) & _HIDING_KINDS)


#: (An opening without a `>` after it matches to the end, with no group 1: retried at each of
#: many such openings, `[^>]*` read the rest of the text each time, quadratic.)
_STYLE_BLOCK = re.compile(rb"<style[^>]*+(?:>(.*?)(?:</style|\Z)|\Z)", re.I | re.S)
_CSS_COMMENT = re.compile(rb"/\*.*?(?:\*/|\Z)", re.S)
_CSS_ESCAPE = re.compile(rb"\\([0-9A-Fa-f]{1,6})\s?|\\(.)", re.S)
#: The subject of a selector: its last compound (after the last combinator), pseudo-classes
#: and pseudo-elements dropped (`q:not(.x)` is `q`: an over-approximation).
_COMBINATOR = re.compile(rb"\s*[>+~]\s*|\s+")
#: (A bracket's reads stop at the next bracket of either kind: `[a=` or `:a(` repeated
#: without their closing one was read to the end from each opening, quadratic, and the two
#: overlapping reads of an attribute's value and tail made it cubic: round 4 of the CPU hunt.)
_PSEUDO = re.compile(rb"::?[\w-]+(?:\([^()]*+\))?")
_SIMPLE = re.compile(rb"([#.])((?:[\w-]|[\x80-\xff])+)|\[\s*([\w:-]+)\s*(?:([~|^$*]?=)\s*"
                     rb"(?:\"([^\"]*+)\"|'([^']*+)'|([^\[\]\s]*+)))?[^\[\]]*+\]"
                     rb"|^([A-Za-z][\w-]*)")
_BRACKETS = re.compile(rb"\[[^\[\]]*+\]")
#: `:is(X)`, `:where(X)`, `:matches(X)`, `:-webkit-any(X)` match what X matches.
_IS = re.compile(rb":(?:is|where|matches|-webkit-any|-moz-any)\(((?:[^()]|\([^()]*\))*)\)",
                 re.I)


@dataclass(frozen=True, slots=True)
class _Compound:
    """`tag#id.class[attr op value]`: an element it matches has all of these."""

    tag: bytes | None
    ids: frozenset[bytes]
    classes: frozenset[bytes]
    attrs: tuple[tuple[bytes, bytes, bytes], ...]  # (name, operator or b"", value)
    #: `X *`, `X > *`: not the element itself but every element inside it (its own text
    #: stays on screen)
    children: bool = False
    #: `:not(A, B)`: an element matching one of these does not match (round 13)
    negated: tuple[_Compound, ...] = ()
    #: `:nth-child(2n+1)`, `:last-of-type`...: (counted from the end, among its type, a, b)
    #: (round 13)
    nth: tuple[tuple[bool, bool, int, int], ...] = ()
    #: The cascade (round 13: `span{display:none} span:nth-child(odd){display:inline}`):
    #: whether its rule hides or shows, and what decides between rules an element matches:
    #: (!important, cascade layer, ids, classes and attributes, tags), then the rule's order.
    hides: bool = True
    rank: tuple[int, ...] = (0, 0, 0, 0, 0, 0)
    #: what its rule does (round 18: `_css_kinds`; a rule that shows an element by
    #: `display` undoes only a `display: none`): one of the kinds
    kind: int = HIDE_DISPLAY
    #: What the element's ancestors (and siblings before it) must match (round 36:
    #: `.j{display:none} div .j{display:inline}` on a page with no div): (the combinator,
    #: the compound, None for any element), nearest first; hiding and showing rules
    #: (`_ancestor_steps`, `_Page.inside`)
    ancestors: tuple[tuple[bytes, _Compound | None], ...] = ()

    def word(self) -> bytes:
        """The most telling word a matching element's opening tag holds (for the candidate
        search: `td[class=hide]` by "hide", not by every "<td")."""
        for _name, _op, value in self.attrs:
            if value:
                return value.lower()
        if self.ids or self.classes:
            return min((*self.ids, *self.classes), key=len).lower()
        return self.attrs[0][0] if self.attrs else b"<" + (self.tag or b"")


_ATTR_OPS: dict[bytes, Callable[[bytes, bytes], bool]] = {
    b"": lambda have, want: True,
    b"=": lambda have, want: have == want,
    b"~=": lambda have, want: want in have.split(),
    b"|=": lambda have, want: have == want or have.startswith(want + b"-"),
    b"^=": lambda have, want: have.startswith(want),
    b"$=": lambda have, want: have.endswith(want),
    b"*=": lambda have, want: want in have,
}
_ATTRS = re.compile(rb"([A-Za-z_:][\w:.-]*)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+)))?")


def _css_char(hex_digits: bytes) -> str:
    """The character of a CSS escape `\\HHHHHH`: U+FFFD for zero, a surrogate or one past
    U+10FFFF, as CSS Syntax says (`\\FFFFFF` once raised here, and its page failed to scan)."""
    code = int(hex_digits, 16)
    return "\ufffd" if code == 0 or 0xD800 <= code <= 0xDFFF or code > 0x10FFFF else chr(code)


def _css_text(text: bytes) -> bytes:
    """CSS as a browser reads it: comments gone, escapes (`d\\69 splay`) decoded."""
    if b"/*" in text:
        text = _CSS_COMMENT.sub(b"", text)
    if b"\\" in text:
        text = _CSS_ESCAPE.sub(lambda m: (_css_char(m.group(1)).encode("utf-8", "replace")
                                          if m.group(1) else m.group(2)), text)
    return text


def css_readable(data: bytes) -> bytes:
    """The page as CSS reads it, for the gates that decide whether a reading applies: an
    HTML parser decodes character references in attributes before CSS reads a style
    attribute (`o&#114;der:2`), and CSS decodes escapes (`\\6f rder`) and drops comments
    (`or/**/der`) everywhere. Done on the whole page (text too: a gate may only open more
    often), and only where there is something to decode: else `data` itself (the same
    object, so that a caller knows there is nothing more to try)."""
    view = _unescape(data) if b"&" in data else data
    if b"\\" in view or b"/*" in view:
        view = _css_text(view)
    return view


#: An escaped character of a selector that is no name character (`.a\\:b` is the class
#: "a:b"): kept inside the name as 0xFF and the character + 0x80 (bytes UTF-8 never holds)
#: while the selector is parsed, then put back.
_PROTECTED = re.compile(rb"\xff([\x80-\xff])")


def _selector_text(text: bytes) -> bytes:
    """A selector with its escapes decoded (escaped punctuation stays part of the name), and
    `:lang()` / `:dir()` as the attributes they read (`_LANG_DIR`)."""
    def one(m: re.Match[bytes]) -> bytes:
        ch = _css_char(m.group(1)) if m.group(1) else m.group(2).decode("latin-1")
        if ch.isascii() and not (ch.isalnum() or ch in "_-"):
            return b"\xff" + bytes([ord(ch) + 0x80])
        return ch.encode("utf-8", "replace") if m.group(1) else m.group(2)
    if b"\\" in text:
        text = _CSS_ESCAPE.sub(one, text)
    if b"(" in text and (b":lang(" in text.lower() or b":dir(" in text.lower()):
        text = _LANG_DIR.sub(_lang_dir, text)
    return text


#: `:lang(de)` and `:dir(rtl)`: lexbor reads neither, and `_compound` took a subject of one
#: alone for any element, so `:lang(de){display:none}` over junk in `<i lang=de>` hid
#: nothing in any reading (session 27). Read as the attribute, on the element or an
#: ancestor (`[lang|=de i]` is `de` and `de-AT`, in any case; an ancestor of another
#: language between them is not looked at); `:dir()` likewise (`dir=auto`, whose direction
#: its text decides, is read as neither). A value other than a plain tag (`*-CH`) is left
#: as it is.
_LANG_DIR = re.compile(rb":(lang|dir)\(\s*([^()]*?)\s*\)", re.I)
_LANGUAGE_TAG = re.compile(rb"[A-Za-z0-9-]+")
#: What `_lang_dir` writes for "the attribute on the element or an ancestor"
#: (`[lang|=de i],[lang|=de i] *`, `[dir=rtl i],[dir=rtl i] *`; group 1 the attribute test),
#: which the parsed reading reads as its nearest ancestor's (`htmlparsed._mark_inherited`).
INHERITED_ATTRIBUTE = re.compile(rb"\[(lang\|=[\w-]+|dir=rtl) i\],\[\1 i\] \*")


def _lang_dir(m: re.Match[bytes]) -> bytes:
    values = [v.strip().strip(b"\"'") for v in m.group(2).split(b",")]
    if not values or not all(_LANGUAGE_TAG.fullmatch(v) for v in values):
        return m.group()
    if m.group(1).lower() == b"lang":
        return b":is(" + b",".join(b"[lang|=%s i],[lang|=%s i] *" % (v, v)
                                   for v in values) + b")"
    value = values[0].lower()
    if len(values) > 1 or value not in (b"ltr", b"rtl"):
        return m.group()
    return (b":is([dir=rtl i],[dir=rtl i] *)" if value == b"rtl"
            else b":not([dir=rtl i],[dir=rtl i] *)")


def _unprotect(name: bytes) -> bytes:
    if b"\xff" not in name:
        return name
    return _PROTECTED.sub(lambda m: bytes([m.group(1)[0] - 0x80]), name)


def _universal_subject(selector: bytes) -> int | None:
    """Where the combinator before a last `*` starts (`X *`, `X > *`), as the regex
    `(\\s*>\\s*|\\s+)\\*$` searched: from the end, not tried at every blank of a long run."""
    if not selector.endswith(b"*"):
        return None
    head = selector[:-1]
    kept = head.rstrip()
    if kept.endswith(b">"):
        return len(kept[:-1].rstrip())
    return len(kept) if len(kept) < len(head) else None


#: What only a shadow tree's sheet matches (`htmlshadow` reads them there): in the page's,
#: nothing; its `:not(b)` read as the subject's hid every element (session 27).
_SHADOW_ONLY = re.compile(rb":host(?![\w-])|:host-context\(|::slotted\(", re.I)


def _compound(selector: bytes) -> _Compound | None:
    if b":" in selector and _SHADOW_ONLY.search(selector):
        return None
    if b"[" in selector:  # `[data-k="V" i]`: its blanks are no combinator (its `i` or `s`
        # flag dropped: values are compared without case)
        selector = _BRACKETS.sub(lambda m: re.sub(rb"\s+", b"", _FLAG.sub(b"]", m.group())),
                                 selector)
    if b"(" in selector:  # `:is(.n)` is `.n` (its first alternative), `:not(:not(.n))` too
        selector = _NOT_NOT.sub(rb":is(\1)", selector)
        for _ in range(_MAX_IS_DEPTH):  # (innermost first, one level each time)
            was = selector
            selector = _IS.sub(functools.partial(_is_alternative, selector=was), selector)
            if selector == was:
                break
        selector = _PARENS.sub(lambda m: re.sub(rb"\s+", b"", m.group()), selector)
    negated: list[_Compound] = []
    nth: list[tuple[bool, bool, int, int]] = []
    pseudo_only = False  # a subject of pseudo-classes alone (`div :not(i)`): any element
    if b":" in selector:  # the subject's :not() and structural pseudo-classes (round 13)
        selector = selector.strip()
        masked = _PARENS.sub(lambda m: b"(" + b"_" * (len(m.group()) - 2) + b")", selector)
        tail = selector[max((m.end() for m in _COMBINATOR.finditer(masked)), default=0):]
        pseudo_only = not _PSEUDO.sub(b"", tail).strip()
        for m in _NOT.finditer(tail):
            negated += [c for c in map(_compound, m.group(1).split(b",")) if c is not None]
        for m in _STRUCTURAL.finditer(_NOT.sub(b"", tail)):  # (not those a :not() holds)
            arg, _of, among = (m.group(2) or b"").partition(b"of")
            nth.append(_nth(m.group(1).lower(), arg))
            if among:  # `:nth-child(An+B of S)`: an S (its place counted among all siblings)
                inner = _compound(among)
                if inner is not None:
                    negated.append(_Compound(None, frozenset(), frozenset(), (),
                                             negated=(inner,)))
    selector = _PSEUDO.sub(b"", selector.strip()).strip()
    universal = None if nth or negated else _universal_subject(selector)
    if universal is not None:  # `X *`, `X > *`: every element inside an X
        inside = _compound(selector[:universal])
        if inside is None or inside.children:
            return None
        return _Compound(inside.tag, inside.ids, inside.classes, inside.attrs, children=True)
    last = b"" if pseudo_only else _last_compound(selector)
    if (not last or last == b"*") and not negated and not nth:
        return None  # everything (or a pseudo-element only): not a hiding we can place
    tag, ids, classes, attrs = None, set(), set(), []
    for m in _SIMPLE.finditer(last):
        if m.group(1) == b"#":
            ids.add(_unprotect(m.group(2)))
        elif m.group(1) == b".":
            classes.add(_unprotect(m.group(2)))
        elif m.group(3):
            value = _unprotect(m.group(5) or m.group(6) or m.group(7) or b"")
            attrs.append((m.group(3).lower(), m.group(4) or b"", value))
        elif m.group(8):
            tag = m.group(8).lower()
    if tag is None and not ids and not classes and not attrs and not negated and not nth:
        return None
    return _Compound(tag, frozenset(ids), frozenset(classes), tuple(attrs),
                     negated=tuple(negated), nth=tuple(nth))


_PARENS = re.compile(rb"\([^()]*\)")
_FLAG = re.compile(rb"\s+[iIsS]\s*\]$")
_NOT_NOT = re.compile(rb":not\(\s*:not\(([^()]*)\)\s*\)", re.I)
_MAX_IS_DEPTH = 32


def _is_alternative(m: re.Match[bytes], selector: bytes) -> bytes:
    """What stands for `:is(X)` in its compound: X's first alternative, its own compounds
    before a combinator left out (`.j:is(div > *)` is a `.j`), and its tag too where the
    compound names something first (`.j:is(span)`: not the class `jspan`)."""
    first = _last_compound(_selectors(m.group(1))[0].strip())
    if first == b"*":
        return b""
    if first[:1].isalpha():
        start = max((c.end() for c in _COMBINATOR.finditer(selector, 0, m.start())), default=0)
        if start < m.start():
            return first[len(_TAG_FIRST.match(first).group()):]  # type: ignore[union-attr]
    return first


_TAG_FIRST = re.compile(rb"[A-Za-z][\w-]*")


def _last_compound(selector: bytes) -> bytes:
    """The text after the last combinator, blanks and `~` inside brackets or parentheses
    being no combinator (`[class~=j]`)."""
    masked = _BRACKETS.sub(lambda m: b"_" * len(m.group()), selector) if (
        b"[" in selector) else selector
    cuts = list(_COMBINATOR.finditer(masked))
    return selector[cuts[-1].end():] if cuts else selector
_NOT = re.compile(rb":not\(([^()]*)\)", re.I)
_STRUCTURAL = re.compile(rb":((?:nth|nth-last)-(?:child|of-type)|(?:first|last|only)-"
                         rb"(?:child|of-type))(?:\(([^()]*)\))?", re.I)
_AN_B = re.compile(rb"([-+]?\d*)n([-+]\d+)?|([-+]?\d+)")


def _nth(kind: bytes, arg: bytes) -> tuple[bool, bool, int, int]:
    """A structural pseudo-class as (from the end, among its type, a, b): the element is
    the (a*n+b)-th for some n >= 0; b = -1 for `only-*` (one of its kind, `_counted`)."""
    of_type = kind.endswith(b"of-type")
    last = kind.startswith(b"nth-last") or kind.startswith(b"last")
    if kind.startswith((b"first", b"last")):
        return last, of_type, 0, 1
    if kind.startswith(b"only"):
        return False, of_type, 0, -1  # b = -1: only one of them
    word = arg.lower()
    if word in (b"odd", b"even"):
        return last, of_type, 2, 1 if word == b"odd" else 0
    m = _AN_B.fullmatch(word)
    if m is None:
        return last, of_type, 0, 0  # never matches: no such position
    if m.group(3) is not None:
        return last, of_type, 0, int(m.group(3))
    a = m.group(1)
    return (last, of_type, -1 if a == b"-" else 1 if a in (b"", b"+") else int(a),
            int(m.group(2) or 0))


_COMMA_OR_PAREN = re.compile(rb"[(),]")


def _selectors(text: bytes) -> list[bytes]:
    r"""A selector list's selectors (`div :not(i, u), b`: two): split at each comma outside
    parentheses, one level (no `)` before the next `(`, as `,(?![^()]*\))` says), the next
    parenthesis after each known from one pass right to left (that regex's look-ahead read
    on to it from every comma: quadratic, 40 KB of `a, ` cost 1.4 s). All of them: a list
    is linear in the sheet's text, and a browser applies its 65th selector as its first (a
    cut list left the hiding rule's `.h` unread, so the junk it hides cut the base64)."""
    if b"(" not in text and b")" not in text:
        return text.split(b",")
    cuts: list[int] = []
    closing = False  # whether the next parenthesis to the right is a `)`
    for m in reversed(list(_COMMA_OR_PAREN.finditer(text))):
        c = text[m.start()]
        if c == 44:  # ","
            if not closing:
                cuts.append(m.start())
        else:
            closing = c == 41  # ")"
    out, at = [], 0
    for cut in reversed(cuts):
        out.append(text[at:cut])
        at = cut + 1
    out.append(text[at:])
    return out


_BRACE = re.compile(rb"[{}]")
#: Rules kept of a page's sheets; past it, a limit finding (a rule left out may be the one
#: that hides the junk between a payload's pieces). Newsletters have a few hundred.
_MAX_RULES = 100_000
#: Selectors a nested rule resolves to (its parent's times its own: `.a,.b{.c,.d{}}` is
#: four); past it, a limit finding, as the product grows with each level of nesting.
_MAX_NESTED_SELECTORS = 4096
#: Blocks (`@media`, nested rules) open at once; deeper is a limit finding. At 32 the
#: block past it was left unopened and its `}` closed the one around it: a `.h{display:
#: none}` inside 40 `@media all{` was lost (Chromium applies it), and the junk it hides
#: cut the base64. (A nested rule's selector grows with its depth: the bound keeps that
#: quadratic cost small.)
_MAX_BLOCK_DEPTH = 256
#: Bytes of selectors nested rules resolve to, per sheet (each copies its parent's list);
#: past it, a limit finding.
_MAX_RESOLVED = 32 << 20


_LAYER_STATEMENT = re.compile(rb"@layer\s+([^{};@]+);", re.I)  # (no `@`: not quadratic)
_SCOPE = re.compile(rb"@scope\s*\(([^()]*)\)", re.I)


def _flat_rules(sheet: bytes, layers: list[bytes] | None = None
                ) -> list[tuple[bytes, bytes, bytes | None]]:
    """A style sheet's rules as (selector, declarations, cascade layer or None), nested rules
    flattened (round 14: `.d{div &{display:none}}` is `div .d{display:none}`), the rules of
    `@media`, `@supports`... as if at the top, of `@layer x{}` in layer x and of
    `@scope (.d){}` under .d (round 15); an `@property` block under its prelude. `layers`
    gets the layers in the order the sheet names them (`@layer b, a;` first)."""
    out: list[tuple[bytes, bytes, bytes | None]] = []
    order = layers if layers is not None else []
    for m in _LAYER_STATEMENT.finditer(sheet):
        for name in m.group(1).split(b","):
            if name.strip() and name.strip() not in order:
                order.append(name.strip())
    # open blocks: (resolved selector, declarations, layer)
    stack: list[tuple[bytes, bytearray, bytes | None]] = []
    start = 0
    anonymous = 0
    made = 0  # bytes of nested rules' selectors written
    stray = False  # (a `}` with no block open: part of the next rule's prelude)
    # (braces and semicolons read outside strings and `url()`, `<!--`/`-->` as blanks: the
    # review of session 25, `.a{content:'}'}` and `<!-- @import url(a;b);` broke rules)
    scan = _SHEET_MASKED.sub(lambda m: b" " * len(m.group()), sheet) if (
        b"'" in sheet or b'"' in sheet or b"(" in sheet or b"<!" in sheet or b"->" in sheet
        or b"\\" in sheet) else sheet  # (and escapes: `.j\{x` is the class "j{x")
    for m in _BRACE.finditer(scan):
        if m.group() == b"{":
            cut = scan.rfind(b";", start, m.start())
            _semi = cut >= 0
            head = sheet[start:cut] if _semi else b""
            prelude = sheet[cut + 1 if _semi else start : m.start()]
            if stack and head:
                stack[-1][1].extend(head + b";")
            prelude = prelude.strip()
            parent = stack[-1][0] if stack else b""
            layer = stack[-1][2] if stack else None
            if not stack and (stray or (_semi and not all(
                    part.strip()[:1] == b"@" for part in scan[start:cut].split(b";")))):
                # (at the top a `;` ends only an at-rule's statement: `.a{} ;.j{}` is one
                # rule of the selector `;.j`, none; so is `}.j` after a stray `}`: attack
                # round 39's decoys)
                parent, prelude = _INERT, _INERT
            stray = False
            if parent.startswith(_INERT):
                resolved = _INERT  # (inside a block that holds no style rules)
            elif prelude[:6].lower() == b"@layer" and not _LAYER_NAME.fullmatch(
                    prelude[6:].strip()):
                resolved = _INERT  # (`@layer 1a{}`, `@layer a, b{}`: invalid, dropped)
            elif prelude[:6].lower() == b"@layer":
                name = prelude[6:].strip() or b"#%d" % anonymous
                anonymous += 1
                layer = name if layer is None else layer + b"." + name
                if layer not in order:
                    order.append(layer)
                resolved = parent
            elif prelude[:6].lower() == b"@scope":
                scope = _SCOPE.match(prelude)
                resolved = scope.group(1).strip() if scope is not None else parent
            elif prelude.startswith(b"@"):
                at = _AT_NAME.match(prelude)
                name = at.group().lower() if at is not None else b""
                resolved = prelude if name in (b"@property", b"@counter-style") else (
                    parent if name in _GROUPING_RULES else _INERT)  # (`@page`,
                # `@font-face`, `@keyframes`, an unknown at-rule: no style rule inside)
            elif parent.startswith(b"@"):
                resolved = _INERT  # (a rule inside `@property`, `@counter-style`)
            elif parent and not parent.startswith(b"@"):
                outers, children = _selectors(parent), _selectors(prelude)
                if len(outers) * len(children) > _MAX_NESTED_SELECTORS:
                    raise ScanLimitExceeded(MAX_SCAN_TIME, f"a nested rule of more than "
                                            f"{_MAX_NESTED_SELECTORS} selectors")
                resolved = b",".join(
                    (child.replace(b"&", outer).replace(b":scope", outer)
                     if b"&" in child or b":scope" in child else outer + b" " + child)
                    for outer in outers for child in children)
                made += len(resolved)
                if made > _MAX_RESOLVED:
                    raise ScanLimitExceeded(MAX_SCAN_TIME, f"nested rules' selectors over "
                                            f"{_MAX_RESOLVED} bytes")
            else:
                resolved = prelude
            if len(stack) >= _MAX_BLOCK_DEPTH:
                raise ScanLimitExceeded(MAX_SCAN_TIME, f"style blocks nested more than "
                                        f"{_MAX_BLOCK_DEPTH} deep")
            stack.append((resolved, bytearray(), layer))
        elif stack:
            selector, declarations, layer = stack.pop()
            declarations.extend(sheet[start : m.start()])
            if selector and declarations.strip() and not selector.startswith(_INERT):
                if len(out) >= _MAX_RULES:
                    raise ScanLimitExceeded(MAX_SCAN_TIME, f"more than {_MAX_RULES} style rules")
                out.append((selector, bytes(declarations), layer))
        else:
            stray = True
        start = m.end()
    return out


#: (a block whose rules apply nowhere: `_flat_rules`)
_INERT = b"@inert"
_AT_NAME = re.compile(rb"@[\w-]+")
#: At-rules whose style rules apply as if outside them (conditions are `htmlprint`'s).
_GROUPING_RULES = frozenset((b"@media", b"@supports", b"@container", b"@layer", b"@scope",
                             b"@starting-style"))
#: A layer's name: identifiers joined by dots (escapes, non-ASCII, `--x` too); `1a` and
#: `a, b` are none.
_LAYER_NAME = re.compile(rb"(?:(?:--|-?(?:[A-Za-z_\x80-\xff]|\\.))(?:[\w\x80-\xff-]|\\.)*"
                         rb"(?:\.(?:--|-?(?:[A-Za-z_\x80-\xff]|\\.))(?:[\w\x80-\xff-]|\\.)*)*)?",
                         re.S)
#: What `_flat_rules` reads no brace or semicolon in: strings, `url()`, `<!--`, `-->`, an
#: escaped character.
_SHEET_MASKED = re.compile(rb"\"(?:[^\"\\\n]|\\.)*\"?|'(?:[^'\\\n]|\\.)*'?|"
                           rb"url\(\s*(?=[^\s\"')])(?:[^)\\]|\\.)*+(?:\)|\Z)|<!--|-->|\\.",
                           re.I | re.S)


@dataclass(frozen=True, slots=True)
class _Rule:
    """A style rule of the page: its selector list, declarations (comments, escapes and
    `var()` resolved) and its cascade layer's place (-1: unlayered)."""

    selectors: bytes
    declarations: bytes
    layer: int
    layers: int  # how many layers the page has


def _sheet_rules(data: bytes) -> list[_Rule]:
    """The page's style rules (`_all_sheet_rules` but `@counter-style` blocks)."""
    return [r for r in _all_sheet_rules(data) if r.selectors[:14].lower() != b"@counter-style"]


def _all_sheet_rules(data: bytes, sheets: list[bytes] | None = None) -> list[_Rule]:
    """`_read_sheet_rules`, remembered for the last pages (every reading of a page reads
    its sheets: 50,000 rules were read five times)."""
    return list(_sheet_rules_cached(data, None if sheets is None else tuple(sheets)))


@functools.lru_cache(maxsize=4)
def _sheet_rules_cached(data: bytes, sheets: tuple[bytes, ...] | None) -> tuple[_Rule, ...]:
    return tuple(_read_sheet_rules(data, None if sheets is None else list(sheets)))


def _read_sheet_rules(data: bytes, sheets: list[bytes] | None = None) -> list[_Rule]:
    """Every rule of the page's style sheets (`<style>` elements and data: URLs), in order,
    with custom properties resolved in their declarations (round 15: `display:var(--h)`,
    `var(--a, var(--b, none))`, an @property's initial value). `sheets`: the `<style>`
    elements' text as a parser reads them (`htmlparsed`), else found by their tags."""
    if sheets is None:
        sheets = [m.group(1) for m in _STYLE_BLOCK.finditer(data) if m.group(1) is not None]
    else:
        sheets = list(sheets)
    sheets += _data_sheets(data, sheets)
    flat: list[tuple[bytes, bytes, bytes | None]] = []
    order: list[bytes] = []
    for sheet in sheets:
        if b"/*" in sheet:
            sheet = _CSS_COMMENT.sub(b"", sheet)
        flat += ((sel, declared(_css_text(decl)), layer)
                 for sel, decl, layer in _flat_rules(sheet, order))
    custom: dict[bytes, bytes] = {}
    own: dict[bytes, dict[bytes, bytes]] = {}  # selector -> its not-inherited properties
    initials, local = _registered(flat)
    if b"--" in data:
        custom.update(initials)
        for selectors, declarations, _layer in flat:
            for name, value in _CUSTOM.findall(declarations):
                if name in local:
                    own.setdefault(selectors.strip(), {})[name] = value.strip()
                else:
                    custom[name] = value.strip()
    places = {name: i for i, name in enumerate(order)}
    if not order:
        flat = [(sel, _layerless(decl), layer) for sel, decl, layer in flat]
    return [_Rule(sel, _with_vars(decl, {**custom, **own.get(sel.strip(), {})} if local
                                  else custom) if b"var(" in decl else decl,
                  places.get(layer, -1) if layer is not None else -1, len(order))
            for sel, decl, layer in flat]


_REVERT_LAYER = re.compile(rb"(?<![\w-])revert-layer(?![\w-])", re.I)


def _layerless(declarations: bytes) -> bytes:
    """A rule's declarations on a page without cascade layers, where `revert-layer` is
    `revert` (no layer below: the browser's own value). Attack round 44: B64's pieces in
    `.r{display:revert-layer}` show in Chromium; read as hiding, they were taken out."""
    if b"revert-layer" not in declarations.lower():
        return declarations
    return _REVERT_LAYER.sub(b"revert", declarations)


def _own_style(attrs: bytes) -> bytes:
    """A tag's attributes as `_hides` weighs them: character references decoded, CSS
    comments and escapes read, declarations as a browser keeps them (`declared_style`),
    `var()` resolved (`_own_vars`), and a style attribute's `display: revert-layer` (the
    last `display` it declares) taken out with the rest of its `display`s: the page's rules
    decide (a style attribute is above every layer of the page's sheets)."""
    if b"&" in attrs:
        attrs = _unescape(attrs)
    if b"/*" in attrs or b"\\" in attrs:
        attrs = _css_text(attrs)
    attrs = _own_vars(declared_style(attrs))
    if b"revert-layer" not in attrs.lower():
        return attrs
    displays = list(_DISPLAY.finditer(attrs))
    if not displays or not displays[-1].group(1).lower().startswith(b"revert-layer"):
        return attrs
    return _DISPLAY.sub(b"zh-reverted:", attrs)


_NOT_INHERITED = re.compile(rb"inherits\s*:\s*false", re.I)


def _registered(flat: list[tuple[bytes, bytes, bytes | None]]
                ) -> tuple[dict[bytes, bytes], set[bytes]]:
    """The @property registrations: initial values, and the names that do not inherit
    (round 15: `@property --t {inherits: false; initial-value: lowercase}`: an element
    takes `--t` only from rules of its own (here: of the same selector), else the initial
    value, never from `:root`)."""
    initials: dict[bytes, bytes] = {}
    local: set[bytes] = set()
    for selectors, declarations, _layer in flat:
        if selectors[:9].lower() == b"@property":
            name = selectors[9:].strip()
            initial = _INITIAL.search(declarations)
            if initial is not None:
                initials.setdefault(name, initial.group(1))
            if _NOT_INHERITED.search(declarations):
                local.add(name)
    return initials, local


_VAR = re.compile(rb"var\(\s*(--[\w-]+)\s*(?:,\s*((?:[^()]|\([^()]*\))*))?\)", re.I)


def _with_vars(declarations: bytes, custom: Mapping[bytes, bytes], depth: int = 0) -> bytes:
    """`var(--x, fallback)` replaced by the custom property's value, else its fallback, else
    `unset` (invalid at computed-value time: the declaration still wins the cascade, with
    the property's inherited or initial value; attack round 45: a style attribute's
    `display: var(--u)` over a rule's `none` shows)."""
    if depth > 8 or b"var(" not in declarations.lower():
        return declarations
    return _with_vars(_VAR.sub(lambda m: custom.get(m.group(1)) or (
        m.group(2).strip() if m.group(2) is not None else b"unset"), declarations),
        custom, depth + 1)


#: The custom properties of the page being read (`page_vars`), for `var()` in its style
#: attributes (set by `html_visible` and the parsed reading).
PAGE_VARS: ContextVar[Mapping[bytes, bytes] | None] = ContextVar("page_vars", default=None)
_VAR_CALL = re.compile(rb"var\(", re.I)
_STYLE_ATTRIBUTE = re.compile(rb"""(?<![\w-])style\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""",
                              re.I)


@functools.lru_cache(maxsize=4)  # (the regex and the parsed readings of a page ask alike)
def page_vars(data: bytes) -> Mapping[bytes, bytes]:
    """The page's custom properties for `var()` in style attributes: each name's value as
    its style sheets declare it, then as its style attributes do, the last one written
    winning (as `_read_sheet_rules` reads them for rules; not by element: a property a page
    sets to other values on other elements is read as its last). Attack round 44:
    `visibility: var(--h)` in a style attribute, `--h: hidden` on `:root`, hid junk
    Chromium hides; `display: var(--s)`, `--s: inline`, was read as hiding the text."""
    if not _VAR_CALL.search(data) and b"\\" not in data:  # (`v\61r(` is `var(`)
        return {}
    values: dict[bytes, bytes] = {}
    if b"@property" in data.lower():  # (registered initial values first: round 45)
        for m in _PROPERTY_RULE.finditer(data):
            initial = _INITIAL.search(m.group(2))
            if initial is not None:
                values[m.group(1)] = initial.group(1)
    if _CUSTOM.search(data):
        for rule in _sheet_rules(data):
            for name, value in _CUSTOM.findall(rule.declarations):
                values[name] = value.strip()
        for m in _STYLE_ATTRIBUTE.finditer(data):
            style = m.group(1) or m.group(2) or m.group(3) or b""
            if b"--" not in style:
                continue
            if b"&" in style:
                style = _unescape(style)
            for name, value in _CUSTOM.findall(_css_text(style)):
                values[name] = value.strip()
    return MappingProxyType(values)


_PROPERTY_RULE = re.compile(rb"@property\s+(--[\w-]+)\s*\{([^{}]*)\}", re.I)


def _own_vars(attrs: bytes) -> bytes:
    """A tag's attributes with `var()` in them replaced by the page's custom properties
    (`PAGE_VARS`; an unknown one by its fallback, else `unset`, as for rules). A reader
    that did not set the page's (`html_visible` and the parsed reading do) keeps `var()`
    as written, read as before: a `display` of it hides."""
    custom = PAGE_VARS.get()
    if custom is None or b"var(" not in attrs.lower():
        return attrs
    return _with_vars(attrs, custom)


def _specificity(selector: bytes) -> tuple[int, int, int]:
    """A selector's specificity (ids, classes/attributes/pseudo-classes, types), the whole
    selector's, not its subject's (round 15: `div q` beats a later `q`); `:where()` counts
    nothing."""
    selector = _WHERE.sub(b"", selector)
    ids = selector.count(b"#")
    classes = len(_CLASS_LIKE.findall(selector))
    types = len(_TYPE_SELECTOR.findall(selector))
    return ids, classes, types


_WHERE = re.compile(rb":where\((?:[^()]|\([^()]*\))*\)", re.I)
_CLASS_LIKE = re.compile(rb"\.[\w-]|\[|(?<!:):(?!not\(|is\(|where\(|:)[\w-]")
_TYPE_SELECTOR = re.compile(rb"(?:^|[\s>+~(,])([A-Za-z][\w-]*)")


def _ranked(compound: _Compound, rule: _Rule, selector: bytes, important: bool, order: int,
            **fields: object) -> _Compound:
    """`compound` with its cascade rank: (!important, layer, specificity, order); a normal
    declaration outside layers beats layered ones, an !important one loses to them
    (round 15)."""
    if important:
        layer = 0 if rule.layer < 0 else rule.layers - rule.layer
    else:
        layer = rule.layers if rule.layer < 0 else rule.layer
    return dataclasses.replace(compound, rank=(int(important), layer, *_specificity(selector),
                                               order), **fields)  # type: ignore[arg-type]


#: Alternatives one selector's `:is()` lists expand to; past it (or lists nested deeper than
#: `_MAX_IS_LISTS`), a limit finding: an alternative left out may be the hiding one
#: (`:is(.a0, ..., .a15, .h)`), and each costs a copy of the selector.
_MAX_ALTERNATIVES = 256
_MAX_IS_LISTS = 8
_MAX_EXPANDED = 16 << 20  # bytes of the copies


def _expanded(selector: bytes) -> list[bytes]:
    """A selector with each `:is()` / `:where()` list expanded into its alternatives
    (round 15: `:where(.zz, b, .yy)` hides b too)."""
    out = [selector]
    for _ in range(_MAX_IS_LISTS + 1):
        grown: list[bytes] = []
        for s in out:
            m = _IS_LIST.search(s)
            if m is None or b"," not in m.group(2):
                grown.append(s)
                continue
            grown += [s[: m.start()] + m.group(1) + b"(" + alt.strip() + b")" + s[m.end() :]
                      for alt in _selectors(m.group(2))]
        if grown == out:
            return out
        if len(grown) > _MAX_ALTERNATIVES or len(grown) * len(selector) > _MAX_EXPANDED:
            break
        out = grown
    raise ScanLimitExceeded(MAX_SCAN_TIME, f"a selector of more than {_MAX_ALTERNATIVES} "
                            f"alternatives or {_MAX_IS_LISTS} lists")


_IS_LIST = re.compile(rb"(:(?:is|where|matches|-webkit-any|-moz-any))\(((?:[^()]|\([^()]*\))*)\)",
                      re.I)


#: A selector of a pseudo-element (`::marker`, `::-webkit-details-marker`, the single-colon
#: `:before`, `:after`, `:first-letter`, `:first-line` of CSS 2).
_PSEUDO_ELEMENT_SELECTOR = re.compile(rb"::|:(?:before|after|first-letter|first-line)(?![\w-])",
                                      re.I)


def _hidden_compounds(data: bytes) -> tuple[_Compound, ...]:
    """What the page's style sheets hide (`.x`, `#k`, `span[id^=k]`, `p>em`, `a+s`...), each
    selector by its subject compound; then, when some hide, what rules show again (a
    `display` other than none, `visibility:visible`) and what rules make boxes, ranked as
    the cascade ranks them. A rule gives one compound per kind of what it does (`_css_kinds`:
    round 18, `.h{visibility:hidden} .h{display:inline}` stays hidden)."""
    out: dict[tuple[_Compound, tuple[tuple[bytes, _Compound | None], ...], int, bool, bool],
              _Compound] = {}  # the last of equal rules
    tables = b"<table" in data.lower()
    rules = _sheet_rules(data)
    # Of equal rules only the last counts: each key it gives replaces an earlier equal
    # rule's, and ranks end with the order, so nothing else moves (50,000 copies of one
    # rule were read 50,000 times: ~4 s).
    last = {rule: order for order, rule in enumerate(rules, 1)}
    for order, rule in enumerate(rules, 1):
        if last[rule] != order:
            continue
        declarations = rule.declarations
        kinds = _css_kinds(declarations)
        if not kinds:
            continue
        important = b"!important" in declarations.replace(b" ", b"").lower()
        for listed in _selectors(_selector_text(rule.selectors)):
            if _PSEUDO_ELEMENT_SELECTOR.search(listed):
                continue  # (it styles a pseudo-element, not the element's own content:
                # `summary::-webkit-details-marker{display:none}` hides a marker, round 18)
            for selector in _expanded(listed):
                compound = _compound(selector)
                if compound is None:
                    continue
                # (a rule matches only inside the ancestors its selector names: round 36 for
                # rules that show; session 24 for rules that hide, as read by their subject
                # alone `.none div{display:none}` hid every div, and the text in them, on a
                # page with no `.none`)
                steps = _ancestor_steps(selector, tables)
                for ranked in kind_compounds(compound, rule, selector, kinds, important, order,
                                             steps):
                    out[compound, steps, ranked.kind & ~_KIND_FLAGS, ranked.hides,
                        important] = ranked
    if not any(c.hides or c.kind & (MAKES_BOX | CONTENTS | INHERITS) or c.rank[0]
               for c in out.values()):
        return ()  # (rules that make boxes: for transforms and sizes of style attributes;
        # !important ones: for a style attribute's `display: none` they show, round 20)
    # strongest first: the first rule of a kind an element matches decides (`_hides`)
    return tuple(sorted(out.values(), key=lambda c: c.rank, reverse=True))


def kind_compounds(compound: _Compound, rule: _Rule, selector: bytes, kinds: int,
                   important: bool, order: int,
                   steps: tuple[tuple[bytes, _Compound | None], ...] = ()
                   ) -> Iterator[_Compound]:
    """`compound` ranked once per kind of what its rule does (`kinds`: `_css_kinds` of its
    declarations): what `_hides` weighs. A rule that shows an element by `display` undoes
    only a `display: none` (round 18)."""
    for kind in _KINDS:
        if not kinds & kind or (kind == MAKES_BOX and not _MAKES_BOX.search(
                rule.declarations)):
            continue  # (a display that makes a box: the display's compound)
        hides = bool(kind & _HIDING_KINDS)
        if not hides and compound.children:
            continue
        if kind in (SHOW_DISPLAY, HIDE_DISPLAY):
            kind_of = HIDE_DISPLAY
        elif kind in (SHOW_VISIBILITY, HIDE_VISIBILITY):
            kind_of = HIDE_VISIBILITY
        else:
            kind_of = kind
        box = kind == SHOW_DISPLAY and not kinds & INLINE
        yield _ranked(compound, rule, selector, important, order, hides=hides,
                      kind=kind_of | (MAKES_BOX if box else 0) | (
                          kinds & (ITEMS | CONTENTS | INHERITS | REVERTS) if kind == SHOW_DISPLAY
                          else 0),
                      ancestors=steps)


#: Elements an HTML parser makes when the page leaves them out (`<body>`, `<tbody>` in a
#: table...): a step that names one is taken as matched.
_IMPLIED = frozenset((b"html", b"head", b"body", b"tbody", b"tr", b"colgroup"))
_ANCESTOR_STEP = re.compile(rb"\s*([>+~])\s*|\s+")
_MASKED = re.compile(rb"\((?:[^()]|\([^()]*\))*\)|\[[^\[\]]*+\]")
_MAX_ANCESTOR_STEPS = 256
_ROOT_FIRST = re.compile(rb"^:root(?![\w-])", re.I)


def _ancestor_steps(selector: bytes, tables: bool = True, root: bytes = b"html"
                    ) -> tuple[tuple[bytes, _Compound | None], ...]:
    """The compounds a selector's subject must have as ancestors or siblings before it
    (`div .j`: a div; `p > .j`: a p parent; `b + .j`: a b just before), nearest first; a
    compound not read, `*`, or an element the parser may make (`_IMPLIED`) is None, any
    element (`tables`: whether the page has a table, where the parser makes `<tr>`s and
    `<tbody>`s). Past `_MAX_ANCESTOR_STEPS`, a limit finding."""
    text = selector.strip()
    masked = _MASKED.sub(lambda m: b"_" * len(m.group()), text) if (
        b"(" in text or b"[" in text) else text
    cuts = list(_ANCESTOR_STEP.finditer(masked))
    if not cuts:
        return ()
    if len(cuts) > _MAX_ANCESTOR_STEPS:
        raise ScanLimitExceeded(MAX_SCAN_TIME, f"a selector of more than "
                                f"{_MAX_ANCESTOR_STEPS} compounds")
    out: list[tuple[bytes, _Compound | None]] = []
    for k in range(len(cuts) - 1, -1, -1):
        combinator = cuts[k].group(1) or b" "
        start = cuts[k - 1].end() if k else 0
        part = _ROOT_FIRST.sub(root, text[start : cuts[k].start()].strip())  # (`:root`)
        compound = _compound(part) if part not in (b"", b"*") else None
        if compound is not None and (compound.children or (
                compound.tag in _IMPLIED and compound.tag not in _PAGE_PARTS and tables and not (
                    compound.ids or compound.classes or compound.attrs))):
            compound = None  # (a bare `tr`: the parser makes one where none is written; a
            # parser-made one has no attributes, so `tr.x` is only a written one; `<html>` and
            # `<body>`: `_Page._is`)
        out.append((combinator, compound))
    return tuple(out)


_KINDS = (HIDE_DISPLAY, SHOW_DISPLAY, HIDE_VISIBILITY, SHOW_VISIBILITY, HIDE_OTHER, HIDE_BOX,
          MAKES_BOX, HIDE_PLACED, POSITIONED)


_PREFIXED_STYLE = re.compile(rb"<(/?)[\w.-]+:style(?=[\s>/])", re.I)
_STYLE_ELEMENT = re.compile(rb"(<style[^>]*+>)(.*?)(</style|\Z)", re.I | re.S)


def xml_style_text(data: bytes) -> bytes:
    """`data` with each `<style>` element's text as an XML parser (or HTML's, for SVG in a
    page) gives it: CDATA sections, comments and the DOCTYPE's internal entities as
    `xml_plain` resolves them, a prefixed `<x:style>` as `<style>`, character references
    decoded (round 5: `.d{display&#58;none}`, `.d{dis<![CDATA[play:none}]]>`, a rule in an
    entity hid decoys in librsvg and Chromium and not here)."""
    if b"<!" in data:
        data = xml_plain(data)  # (CDATA becomes escaped text, decoded below with the rest)
    if b":style" in data.lower():
        data = _PREFIXED_STYLE.sub(rb"<\1style", data)

    def text(m: re.Match[bytes]) -> bytes:
        body = m.group(2)
        if b"&" not in body:
            return m.group()
        plain = html.unescape(body.decode("utf-8", "surrogateescape"))
        return m.group(1) + plain.encode("utf-8", "surrogateescape") + m.group(3)
    return _STYLE_ELEMENT.sub(text, data) if b"<style" in data.lower() else data


class SheetStyles:
    """The declarations of a document's style rules, by the elements they match: for
    documents whose own reader applies them (SVG images, `svgtext`), not HTML pages. Each
    selector is taken by its subject compound, with what it asks of the element's ancestors
    and siblings (`_ancestor_steps`) for the reader to check (`of`'s `context`: a decoy
    `.none text{display:none}` hid every text, session 24); only rules setting a property
    `wanted` finds are kept, at most `limit` selectors."""

    def __init__(self, data: bytes, wanted: re.Pattern[bytes], limit: int = 20_000,
                 xml: bool = False) -> None:
        #: (rank, compound, declarations), normal and !important ones apart
        self.entries: list[tuple[tuple[int, ...], _Compound, bytes]] = []
        #: a cap cut the sheets short (the caller must not read with part of them: round 5
        #: pushed the hiding rule past the caps)
        self.truncated = False
        if xml and b"style" in data.lower():
            data = xml_style_text(data)
        if b"<style" not in data.lower():
            return
        rules = _sheet_rules(data)
        self.truncated = len(rules) >= _MAX_RULES
        for order, rule in enumerate(rules, 1):
            if not wanted.search(rule.declarations):
                continue
            normal, important = [], []
            for piece in rule.declarations.split(b";"):
                if _IMPORTANT_MARK.search(piece):
                    important.append(_IMPORTANT_MARK.sub(b"", piece))
                else:
                    normal.append(piece)
            for listed in _selectors(_selector_text(rule.selectors)):
                if _PSEUDO_ELEMENT_SELECTOR.search(listed):
                    continue
                for selector in _expanded(listed):
                    compound = _compound(selector)
                    if compound is None or compound.children:
                        continue
                    steps = _ancestor_steps(selector, root=b"svg" if xml else b"html")
                    if steps:
                        compound = dataclasses.replace(compound, ancestors=steps)
                    for pieces, flag in ((normal, False), (important, True)):
                        if pieces and len(self.entries) >= limit:
                            self.truncated = True
                        elif pieces:
                            ranked = _ranked(compound, rule, selector, flag, order)
                            self.entries.append((ranked.rank, compound, b";".join(pieces)))
        latest: dict[tuple[_Compound, bool, bytes], tuple[int, ...]] = {}
        for rank, compound, declarations in self.entries:  # (a rule repeated: its last copy)
            latest[compound, bool(rank[0]), declarations] = rank
        self.entries = sorted(((rank, c, d) for (c, _i, d), rank in latest.items()),
                              key=lambda e: e[0])  # weakest first: the last one set wins

    def __bool__(self) -> bool:
        return bool(self.entries)

    def _index(self) -> None:
        """Entries by the id, class or tag a matching element must have (one look-up per
        element, not a comparison with every selector)."""
        self._keyed: dict[tuple[str, bytes], list[tuple[int, _Compound]]] = {}
        self._other: list[tuple[int, _Compound]] = []
        for i, (_rank, c, _declarations) in enumerate(self.entries):
            key = (("id", min(c.ids).lower()) if c.ids else ("class", min(c.classes).lower())
                   if c.classes else ("tag", c.tag) if c.tag else None)
            (self._keyed.setdefault(key, []) if key else self._other).append((i, c))

    def of(self, tag: bytes, attrs: bytes, context: Callable[[_Compound], bool] | None = None
           ) -> tuple[tuple[bytes, bytes] | None, int]:
        """The declarations of the rules an element matches, weakest first: (normal ones,
        !important ones), None when none matches; and how many selectors were compared.
        `context`: whether the element has the ancestors and siblings a compound's selector
        names (`_Compound.ancestors`; without it, taken as there)."""
        if not hasattr(self, "_keyed"):
            self._index()
        have, classes = _attributes(attrs)
        candidates = list(self._other)
        ident = have.get(b"id")
        if ident is not None:
            candidates += self._keyed.get(("id", ident), ())
        for name in classes:
            candidates += self._keyed.get(("class", name), ())
        candidates += self._keyed.get(("tag", tag), ())
        matched = sorted(i for i, c in candidates
                         if _matches(c, tag, attrs, None, have, classes) and (
                             context is None or not c.ancestors or context(c)))
        if not matched:
            return None, len(candidates)
        normal: list[bytes] = []
        important: list[bytes] = []
        for i in matched:
            rank, _c, declarations = self.entries[i]
            (important if rank[0] else normal).append(declarations)
        return (b";".join(normal), b";".join(important)), len(candidates)


#: A tag, its quoted values whole (`href="data:text/css,p>.j{}"`; a `<link` inside another
#: tag's value is part of that tag)
_QUOTED_TAG = re.compile(rb"""<(/?)([A-Za-z][\w:-]*)((?:[^>"']++|"[^"]*+"|'[^']*+')*+)>?""")
#: A CSS string or an unquoted `url()` (escapes kept: `_css_text` decodes them; one ends at
#: the end of the sheet as at its quote or parenthesis).
_CSS_ESCAPED = rb"\\(?:[0-9A-Fa-f]{1,6}[ \t\r\n\f]?|.)"
_CSS_URL = re.compile(rb""""((?:[^"\\\n]|""" + _CSS_ESCAPED + rb""")*+)(?:"|\Z)|'((?:[^'\\\n]|"""
                      + _CSS_ESCAPED + rb""")*+)(?:'|\Z)|url\(\s*((?:[^)\\\s"']|"""
                      + _CSS_ESCAPED + rb""")*+)\s*(?:\)|\Z)""", re.I | re.S)
_URL_DROPPED = re.compile(rb"[\t\n\r]")  # (a URL parser removes them anywhere)
_DATA_BASE64 = re.compile(rb";\s*base64\s*$", re.I)
_STANDARDS = re.compile(rb"(?:\xef\xbb\xbf)?\s*+(?:<!--.*?-->\s*+)*+<!doctype\s+html", re.I | re.S)
#: Where a `<link>` is no sheet of the page: inert (`<template>`), text (raw-text elements,
#: comments), or another language's element (SVG's and MathML's `<link>`, attack round 43).
_NO_LINKS = re.compile(rb"<!--.*?(?:-->|\Z)|<(template|script|textarea|title|xmp|iframe|"
                       rb"noembed|noframes|svg|math)\b.*?(?:</\1\s*>|\Z)", re.I | re.S)
_XML_SHEET = re.compile(rb"<\?xml-stylesheet\b([^>]*)\?>", re.I)
_B64_STRICT = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
#: Sheets loaded from data: URLs (an import of an import...), past which the page is a
#: limit finding.
_MAX_DATA_SHEETS = 256


def quirks_mode(page: bytes) -> bool:
    """Whether a browser lays the page out in quirks mode (roughly: no `<!doctype html>`
    first), where a linked sheet of any type applies."""
    return not _STANDARDS.match(page[:16384])


def _forgiving_base64(raw: bytes) -> bytes | None:
    """A data: URL's base64 as the Fetch standard decodes it: blanks dropped, at most two
    `=` at the end; anything else (an `=` inside, a `*`) fails, and no sheet is loaded
    (attack round 43: a decoy sheet `base64_decode` read past its junk)."""
    raw = bytes(raw).translate(None, b" \t\n\f\r")
    if len(raw) % 4 == 0 and raw.endswith(b"="):
        raw = raw[:-2] if raw.endswith(b"==") else raw[:-1]
    if len(raw) % 4 == 1 or not _B64_STRICT.fullmatch(raw) or b"=" in raw:
        return None
    return base64_decode(raw)


def _data_url_sheet(url: bytes, any_type: bool) -> bytes | None:
    """The sheet a `data:` URL holds, read as a browser reads one (session 27, attack rounds
    42-43): tabs and newlines dropped, blanks around it trimmed, no fragment (`#...`), a MIME
    type of `text/css` with parameters (`;charset=utf-8`) and blanks around it, `;base64`
    after them (decoded strictly); None for another type unless `any_type` (a page in
    quirks mode applies any linked sheet)."""
    url = _URL_DROPPED.sub(b"", url).strip(bytes(range(33))).partition(b"#")[0]
    if url[:5].lower() != b"data:":
        return None
    meta, comma, payload = url[5:].partition(b",")
    if not comma:
        return None
    m = _DATA_BASE64.search(meta)
    if m is not None:
        meta = meta[: m.start()]
    if meta.split(b";", 1)[0].strip().lower() != b"text/css" and not any_type:
        return None
    raw = unquote_to_bytes(payload)
    return _forgiving_base64(raw) if m is not None else raw


def _linked_sheets(data: bytes, quirks: bool) -> list[bytes]:
    """The sheets the page's `<link rel=stylesheet>` tags load from data: URLs: the tags a
    parser makes (not in a comment, a template, raw text or SVG; not in another tag's
    attribute), of a stylesheet that applies (`rel` holds the word, not `alternate`; no
    `disabled`; a `type` of CSS or none); the `href` as the parser decodes it. In an XML or
    SVG document, its `<?xml-stylesheet?>` instructions too."""
    found: list[bytes] = []
    lower = data.lower()
    if b"<?xml-stylesheet" in lower and lower.lstrip()[:5] in (b"<?xml", b"<svg "):
        found += [sheet for m in _XML_SHEET.finditer(data)
                  if (sheet := _data_url_sheet(_attrs_of(m.group(1)).get(b"href", b""),
                                               False)) is not None]
    if b"<link" not in lower:
        return found
    text = _NO_LINKS.sub(b"", data) if b"<" in data else data
    for tag in _QUOTED_TAG.finditer(text):
        if tag.group(1) or tag.group(2).lower() != b"link":
            continue
        attrs = _attrs_of(tag.group(3))
        rel = attrs.get(b"rel", b"").lower().split()
        kind = attrs.get(b"type", b"").strip().lower()
        if (b"stylesheet" not in rel or b"alternate" in rel or b"disabled" in attrs
                or kind not in (b"", b"text/css")):
            continue
        href = attrs.get(b"href")
        if href is not None:
            sheet = _data_url_sheet(_unescape(href) if b"&" in href else href, quirks)
            if sheet is not None:
                found.append(sheet)
    return found


def _attrs_of(text: bytes) -> dict[bytes, bytes]:
    """A tag's attributes (lower-cased names, the first of a name wins, as in a parser)."""
    out: dict[bytes, bytes] = {}
    for m in _ATTRS.finditer(text):
        out.setdefault(m.group(1).lower(), m.group(2) or m.group(3) or m.group(4) or b"")
    return out


def _import_region(text: bytes) -> int:
    """Where a sheet's imports end: at its first rule a browser keeps (a style rule of a
    valid selector, a known at-rule); a rule it drops (`1{}`, `:bogus{}`, `@foo{}`) does not
    end them (attack round 43), as before: an import after a kept rule is none (round 39)."""
    masked = _SHEET_MASKED.sub(lambda m: b" " * len(m.group()), text)
    at = 0
    for _ in range(64):
        brace = masked.find(b"{", at)
        if brace < 0:
            return len(text)
        head = max(masked.rfind(b";", at, brace), masked.rfind(b"}", at, brace)) + 1
        prelude = text[max(head, at) : brace].strip()
        if _kept_rule(prelude):
            return brace
        depth, at = 0, brace
        while at < len(masked):  # (past the dropped rule's block)
            ch = masked[at]
            depth += ch == 0x7B
            depth -= ch == 0x7D
            at += 1
            if depth == 0:
                break
    return at


_KNOWN_AT = frozenset((b"@media", b"@supports", b"@font-face", b"@keyframes", b"@page",
                       b"@layer", b"@container", b"@scope", b"@property", b"@counter-style",
                       b"@font-feature-values", b"@font-palette-values", b"@starting-style",
                       b"@position-try", b"@view-transition", b"@-webkit-keyframes"))


def _kept_rule(prelude: bytes) -> bool:
    """Whether a browser keeps a rule of this prelude (a known at-rule; a selector lexbor
    reads, or one with a pseudo-class Chromium reads and lexbor does not)."""
    if not prelude:
        return False
    if prelude[:1] == b"@":
        name = _AT_NAME.match(_css_text(prelude))
        return name is not None and name.group().lower() in _KNOWN_AT
    from zerohour.scan import htmlparsed  # (it reads selectors with lexbor; it imports us)
    return htmlparsed.valid_selector(_selector_text(_css_text(prelude)))


def _data_sheets(data: bytes, sheets: list[bytes], quirks: bool | None = None) -> list[bytes]:
    """Style sheets a page loads from data: URLs (`<link rel=stylesheet href="data:text/css,
    ...">`, `@import url("data:text/css,...")`, and the imports of those), decoded. A
    sheet's `@import` counts only before its first rule a browser keeps, as in a browser
    (attack round 39: one after a rule imported a decoy); the page's own text is searched
    outside its `<style>` elements for links. An import's URL is a CSS string or `url()`
    with its escapes decoded (`text\\/css`, `\\(`). `quirks`: whether the page is in quirks
    mode (None: `data` is the page, and says). Past `_MAX_DATA_SHEETS`, a limit finding."""
    if quirks is None:
        quirks = quirks_mode(data)
    if b"<style" in data.lower():
        data = _STYLE_BLOCK.sub(b"", data)
    found = _linked_sheets(data, quirks)
    todo = list(sheets) + found
    while todo:
        text = todo.pop(0)
        if b"data" not in text.lower() and b"\\" not in text:
            continue
        masked = _CSS_COMMENT.sub(lambda m: b" " * len(m.group()), text)
        for m in _CSS_URL.finditer(masked, 0, _import_region(masked)):
            url = m.group(1) or m.group(2) or m.group(3) or b""
            sheet = _data_url_sheet(_css_text(url) if b"\\" in url else url, quirks)
            if sheet is None:
                continue
            if len(found) >= _MAX_DATA_SHEETS:
                raise ScanLimitExceeded(MAX_RECURSION, f"more than {_MAX_DATA_SHEETS} style "
                                        f"sheets loaded from data: URLs")
            found.append(sheet)
            todo.append(sheet)
    return found


#: Where an element stands among its siblings: (n-th child, n-th of its type, children,
#: children of its type), all from 1.
Place = tuple[int, int, int, int]


def _counted(nth: tuple[bool, bool, int, int], place: Place) -> bool:
    last, of_type, a, b = nth
    index, total = (place[1], place[3]) if of_type else (place[0], place[2])
    if b == -1:  # only-child / only-of-type
        return total == 1
    if last:
        index = total - index + 1
    if a == 0:
        return index == b
    return (index - b) % a == 0 and (index - b) // a >= 0


def _matches(c: _Compound, tag: bytes, attrs: bytes, place: Place | None = None,
             have: dict[bytes, bytes] | None = None, classes: set[bytes] | None = None) -> bool:
    """Whether an element matches, values compared without case (quirks-mode pages match
    classes so, and `[a=v i]` too: an over-approximation elsewhere). `place`: where it stands
    among its siblings (a compound with a structural pseudo-class matches nothing without).
    `have`, `classes`: the element's attributes (`_attributes`), when known already."""
    if c.tag is not None and c.tag != tag:
        return False
    if c.nth and (place is None or not all(_counted(n, place) for n in c.nth)):
        return False
    if have is None or classes is None:
        have, classes = _attributes(attrs)
    if c.negated and any(_matches(n, tag, attrs, place, have, classes) for n in c.negated):
        return False
    if c.classes and not {k.lower() for k in c.classes} <= classes:
        return False
    if c.ids and have.get(b"id") not in {i.lower() for i in c.ids}:
        return False
    return all(name in have and _ATTR_OPS[op](have[name], value.lower())
               for name, op, value in c.attrs)


def _attributes(attrs: bytes) -> tuple[dict[bytes, bytes], set[bytes]]:
    """An element's attributes (names and values lower-cased; of one written twice, the
    first, as the parser keeps it) and its classes."""
    have: dict[bytes, bytes] = {}
    for m in _ATTRS.finditer(attrs):
        have.setdefault(m.group(1).lower(),
                        (m.group(2) or m.group(3) or m.group(4) or b"").lower())
    return have, set(have.get(b"class", b"").split())


def _attr_names(attrs: bytes) -> set[bytes]:
    return {m.group(1).lower() for m in _ATTRS.finditer(attrs)}


_ROOTS = frozenset({b"html", b"body"})
#: Style rules tried against elements, per page and reading: a page of thousands of rules
#: that each need an element's place among its siblings, against tens of thousands of
#: elements, is a limit finding, not minutes of a scan (round 14).
_MAX_MATCHES = 4_000_000
_TOO_MANY_MATCHES = "more style rules tried against elements than a page needs"


#: What `_hides` finds: shown, hidden with all it holds, hidden by `visibility` (what it
#: holds that is `visibility: visible` shows), hidden if it is a flex or grid item (an inline
#: element that transforms or sizes would hide if it were a box), shown by an explicit
#: `visibility: visible`.
SHOWN, HIDDEN, INVISIBLE, IF_ITEM, VISIBLE_AGAIN = 0, 1, 2, 3, 4


#: SVG's boxes that clip what they hold (the UA sheet's `overflow: hidden` on an inner
#: `<svg>` and a `<foreignObject>`): of no width or no height, they show nothing.
_CLIPS = frozenset({b"svg", b"foreignobject"})
_SVG_SIZE = re.compile(rb"(?<![\w-])(width|height)\s*([:=])\s*[\"']?\s*([^\s\"';>]*)", re.I)
_NO_SIZE = re.compile(rb"\+?0*\.?0+(?:[a-z]+|%)?|\+?0+\.(?:[a-z]+|%)?", re.I)


def _clipped_to_nothing(attrs: bytes) -> bool:
    """An `<svg>` or `<foreignObject>` of no width or no height, by its attribute or by its
    style's declaration (which wins): round 39's junk in a 0x0 image's `<foreignObject>`."""
    css: dict[bytes, bool] = {}
    attribute: dict[bytes, bool] = {}
    for m in _SVG_SIZE.finditer(attrs):
        (css if m.group(2) == b":" else attribute)[m.group(1).lower()] = bool(
            _NO_SIZE.fullmatch(m.group(3)))
    return any(css.get(side, attribute.get(side, False)) for side in (b"width", b"height"))


def _hides(tag: bytes, attrs: bytes, compounds: tuple[_Compound, ...],
           place: Place | None = None, foreign: bool | None = None) -> int:
    """Whether (how) an element hides its content: one of `SHOWN`... above. `foreign`:
    whether it is SVG's or MathML's (the parsed reading knows, for the names of
    `_CONTENTS_NONE_FOREIGN` and `_NEVER_RENDERED_FOREIGN`; None: not known)."""
    if tag in _NEVER_RENDERED and not (foreign is False and tag in _NEVER_RENDERED_FOREIGN) and (
            tag not in _UA_NONE or not _shown_by_author(tag, attrs, compounds, place)):
        # (an "open" attribute, not the word in another's value)
        return SHOWN if tag in _OPENABLE and b"open" in _attr_names(attrs) else HIDDEN
    if tag in _ROOTS:  # (a page hidden whole shows no text: no reading to make)
        return SHOWN
    attrs = _own_style(attrs)  # (`display&#58;none`, `displ\61y`, `var()`...)
    own = _css_kinds(attrs)
    if own & HIDE_OTHER and _UA_HIDING.search(attrs) and _author_display(
            tag, attrs, own, compounds, place):
        own = _css_kinds(_UA_HIDING.sub(b" ", attrs))
    if own & HIDE_OTHER and _UNTIL_FOUND.search(attrs) and _inline_level(
            tag, attrs, own, compounds, place):
        own = _css_kinds(_UNTIL_FOUND.sub(b" ", attrs))
    if own & HIDE_OTHER or (tag in _CLIPS and _clipped_to_nothing(attrs)):
        return HIDDEN
    if own & CONTENTS and _contents_none(tag, foreign):
        own |= HIDE_DISPLAY
    if own & HIDE_DISPLAY:
        if not _shown_by_important_rule(tag, attrs, compounds, place, foreign):
            return HIDDEN
        own &= ~HIDE_DISPLAY  # (round 20: an !important rule beats a style attribute's none)
    box_only = bool(own & HIDE_BOX)
    if not compounds and not box_only and not own & HIDE_PLACED:
        return INVISIBLE if own & HIDE_VISIBILITY else VISIBLE_AGAIN if (
            own & SHOW_VISIBILITY) else SHOWN
    # the strongest rule of each kind that matches (`_hidden_compounds`: strongest first);
    # a style attribute's `display` or `visibility` beats rules that are not !important
    decided: dict[int, _Compound] = {}
    have, classes = _attributes(attrs)
    for c in compounds:
        kind = c.kind & ~_KIND_FLAGS
        if kind in decided or (kind == HIDE_BOX and box_only):
            continue
        if not _matches(c, tag, attrs, place, have, classes):
            continue
        decided[kind] = c
        if kind == HIDE_OTHER:
            return True
        if kind == HIDE_BOX:
            box_only = True
    display = decided.get(HIDE_DISPLAY)
    if display is not None and (display.hides or (
            display.kind & CONTENTS and _contents_none(tag, foreign))) and not (
            own & SHOW_DISPLAY and not display.rank[0]):
        return HIDDEN
    if (own & HIDE_PLACED or HIDE_PLACED in decided) and (own & POSITIONED
                                                          or POSITIONED in decided):
        return HIDDEN  # (round 18: `left: -9999px` moves no element of the flow)
    visibility = decided.get(HIDE_VISIBILITY)
    if visibility is not None and visibility.rank[0]:
        seen = SHOWN if not visibility.hides else INVISIBLE
    elif own & (HIDE_VISIBILITY | SHOW_VISIBILITY):
        seen = INVISIBLE if own & HIDE_VISIBILITY else VISIBLE_AGAIN
    else:
        seen = SHOWN if visibility is None else INVISIBLE if visibility.hides else VISIBLE_AGAIN
    if not box_only:
        return seen
    # transforms and sizes act on boxes only (round 18: an inline `<span>` of
    # `transform: scale(0)` or `width: 0; overflow: hidden` shows its text): absolutely
    # placed and floated elements, a `display` that makes a box, else the element's own
    if _MAKES_BOX.search(attrs) or MAKES_BOX in decided:
        return HIDDEN
    if own & SHOW_DISPLAY and not (display is not None and display.rank[0]):
        box = not own & INLINE
    elif display is not None:
        box = bool(display.kind & MAKES_BOX)
    else:
        box = tag in _BOX_TAGS
    return HIDDEN if box else seen if seen == INVISIBLE else IF_ITEM


def _relevant(compounds: tuple[_Compound, ...], tag: bytes, attrs: bytes
              ) -> tuple[_Compound, ...]:
    """The compounds an element may match, in their order: those keyed by one of its
    classes, its id or its tag, and those with no such key (round 21: 60,000 rules tried
    against every candidate element were 3 million matches for 51 elements)."""
    if len(compounds) <= _FEW_COMPOUNDS:
        return compounds
    return tuple(compounds[i] for i in _relevant_indices(compounds, tag, attrs))


def _relevant_indices(compounds: tuple[_Compound, ...], tag: bytes, attrs: bytes) -> list[int]:
    """Where in `compounds` those an element may match are (its attributes read as they
    are and as `_hides` reads them: the keys of both)."""
    readings = [attrs]
    if b"&" in attrs:
        readings.append(_unescape(attrs))
    if b"/*" in readings[-1] or b"\\" in readings[-1]:
        readings.append(_css_text(readings[-1]))
    index = _compound_index(compounds)
    found: list[int] = list(index.get(None, ()))
    for reading in readings:
        have, classes = _attributes(reading)
        for key in (*((b"c", k) for k in classes), (b"i", have.get(b"id", b"")), (b"t", tag)):
            found += index.get(key, ())
    return sorted(set(found))


_FEW_COMPOUNDS = 64
_INDEXED: list[tuple[tuple[_Compound, ...], dict[tuple[bytes, bytes] | None, list[int]]]] = []


def _compound_index(compounds: tuple[_Compound, ...]
                    ) -> dict[tuple[bytes, bytes] | None, list[int]]:
    """Compounds by what an element must have to match them: a class, an id, a tag name."""
    for known, index in _INDEXED:
        if known is compounds:
            return index
    index = {}
    for i, c in enumerate(compounds):
        key: tuple[bytes, bytes] | None
        if c.classes:
            key = (b"c", min(k.lower() for k in c.classes))
        elif len(c.ids) == 1:
            key = (b"i", next(iter(c.ids)).lower())
        elif c.tag is not None:
            key = (b"t", c.tag)
        else:
            key = None
        index.setdefault(key, []).append(i)
    _INDEXED[:] = [*_INDEXED[-3:], (compounds, index)]
    return index


_DISPLAY_VALUE = re.compile(rb"(?<![\w-])display\s*:([^;]*)", re.I)


#: The attributes a browser's own sheet hides by `display: none` (not `hidden=until-found`:
#: `content-visibility`), which an author's `display` beats.
_UA_HIDING = re.compile(rb"(?:^|[\s/])(?:hidden(?!\s*=\s*[\"']?\s*until-found)|popover)"
                        rb"(?=[\s=/]|$)", re.I)


#: `hidden=until-found`: the browser's sheet gives it `content-visibility: hidden`, which
#: hides the content of a box, not of an inline element (`<span hidden=until-found>` shows
#: in Chromium: attack round 44).
_UNTIL_FOUND = re.compile(rb"(?:^|[\s/])hidden\s*=\s*[\"']?\s*until-found[\"']?(?=[\s/]|$)",
                          re.I)


#: Elements the browser's sheet hides by `display: none` alone, which an author's
#: `display` shows (`<datalist class=r>` with `.r{display:inline}`: attack round 45); not
#: `<template>` (its content is not in the page) or replaced elements' fallback content.
_UA_NONE = frozenset({b"script", b"style", b"title", b"datalist", b"rp", b"noframes",
                      b"dialog"})  # (not `<noembed>`: Chromium shows none of it either way)


def _shown_by_author(tag: bytes, attrs: bytes, compounds: tuple[_Compound, ...],
                     place: Place | None) -> bool:
    """Whether an author's `display` (not `none`) holds for an element of `_UA_NONE`."""
    attrs = _own_style(attrs)
    return _author_display(tag, attrs, _css_kinds(attrs), compounds, place)


def _display_rule(tag: bytes, attrs: bytes, compounds: tuple[_Compound, ...],
                  place: Place | None) -> _Compound | None:
    """The strongest rule that declares a `display` and matches the element (`compounds`:
    strongest first)."""
    have, classes = _attributes(attrs)
    for c in compounds:
        if c.kind & ~_KIND_FLAGS == HIDE_DISPLAY and _matches(c, tag, attrs, place, have,
                                                               classes):
            return c
    return None


def _important_display(attrs: bytes) -> bool:
    """Whether the style attribute's last `display` is !important."""
    last = b""
    for m in _DISPLAY_VALUE.finditer(attrs):
        last = m.group(1)
    return b"!" in last and _IMPORTANT_MARK.search(last) is not None


def _rule_holds(attrs: bytes, own: int, rule: _Compound | None) -> bool:
    """Whether `rule`'s `display` holds over the style attribute's (`own`): when the
    attribute declares none, or the rule's is !important and the attribute's is not."""
    return rule is not None and (not own & (SHOW_DISPLAY | HIDE_DISPLAY) or (
        bool(rule.rank[0]) and not _important_display(attrs)))


def _inline_level(tag: bytes, attrs: bytes, own: int, compounds: tuple[_Compound, ...],
                  place: Place | None) -> bool:
    """Whether the element is inline (no box of its own): by the `display` that holds
    (`revert`: the tag's), else its tag (`_BOX_TAGS`); a float or an absolute position
    makes a box."""
    if _MAKES_BOX.search(attrs):
        return False
    rule = _display_rule(tag, attrs, compounds, place)
    if rule is not None and _rule_holds(attrs, own, rule):
        shows, kind = not rule.hides, rule.kind  # (a rule's kind is HIDE_DISPLAY's either way)
    else:
        shows, kind = bool(own & SHOW_DISPLAY), own
    if shows and not kind & REVERTS:
        return not kind & MAKES_BOX
    return tag not in _BOX_TAGS


def _author_display(tag: bytes, attrs: bytes, own: int, compounds: tuple[_Compound, ...],
                    place: Place | None) -> bool:
    """Whether a `display` of the page's (its style attribute's or a rule's, whichever
    holds) other than `none` holds for the element: `<span hidden class=r>` with
    `.r{display:inline}` shows in Chromium (attack round 44; the UA sheet's `[hidden]
    {display: none}` loses to any author rule)."""
    popover = b"popover" in attrs.lower()  # (a rule of the browser's sheet: `revert` keeps
    # it; `hidden` is a presentational hint in Chromium, which `revert` undoes)
    rule = _display_rule(tag, attrs, compounds, place)
    if rule is not None and _rule_holds(attrs, own, rule):
        return not rule.hides and not (popover and rule.kind & REVERTS)
    return bool(own & SHOW_DISPLAY) and not (popover and own & REVERTS)


def _shown_by_important_rule(tag: bytes, attrs: bytes, compounds: tuple[_Compound, ...],
                             place: Place | None, foreign: bool | None = None) -> bool:
    """Whether a style sheet's `display: ... !important` that shows the element beats its
    style attribute's `display: none` (not itself !important): an author's !important
    declaration outranks every normal one, inline ones too (CSS Cascade 4, 6.1)."""
    if not compounds or _important_display(attrs):
        return False
    rule = _display_rule(tag, attrs, compounds, place)
    return rule is not None and bool(rule.rank[0]) and not rule.hides and not (
        rule.kind & CONTENTS and _contents_none(tag, foreign))


_IMPORTANT_MARK = re.compile(rb"!\s*important", re.I)


def display_flags(tag: bytes, attrs: bytes, compounds: tuple[_Compound, ...]) -> int:
    """`CONTENTS` or `INHERITS` when the `display` that holds for the element is `contents`
    or `inherit`, else 0: its style attribute's, unless a rule that matches it declares one
    !important and the attribute's is not (as `_hides` weighs them). The parsed reading
    follows `inherit` up the tree: under a parent of `display: contents`, an `<svg>` of
    `display: inherit` hides as `none` (attack round 42's leftover)."""
    attrs = _own_style(attrs)
    own = _css_kinds(attrs)
    rule = _display_rule(tag, attrs, compounds, None)
    if rule is not None and _rule_holds(attrs, own, rule):
        return 0 if rule.hides else rule.kind & (CONTENTS | INHERITS)
    return own & (CONTENTS | INHERITS)
    have, classes = _attributes(attrs)
    for c in compounds:  # (strongest first: the first display rule that matches decides)
        if c.kind & ~_KIND_FLAGS != HIDE_DISPLAY or not _matches(c, tag, attrs, None, have,
                                                                  classes):
            continue
        if c.rank[0] or not own & (SHOW_DISPLAY | HIDE_DISPLAY):
            return 0 if c.hides else c.kind & (CONTENTS | INHERITS)
        break
    return own & (CONTENTS | INHERITS)


def _flex_or_grid(tag: bytes, attrs: bytes, compounds: tuple[_Compound, ...]) -> bool:
    """Whether an element is a flex or grid container (its children are boxes)."""
    if b"&" in attrs:
        attrs = _unescape(attrs)
    if b"/*" in attrs or b"\\" in attrs:
        attrs = _css_text(attrs)
    own = _css_kinds(attrs)
    have, classes = _attributes(attrs)
    for c in compounds:
        if c.kind & ~_KIND_FLAGS == HIDE_DISPLAY and _matches(c, tag, attrs, None, have,
                                                                      classes):
            if not c.rank[0] and own & SHOW_DISPLAY:
                break
            return bool(c.kind & ITEMS)
    return bool(own & ITEMS)


_PARENT_WINDOW = 1 << 16  # how far back an element's parent is looked for
_PARENT_BUDGET = 1 << 24  # ...and how much of a page, in all


#: What an opening tag that may hide its content holds: a never-rendered element's name, a
#: hiding property, a CSS comment or escape, a character reference, or what a hiding
#: selector of the page names (then `_hides` decides). Found by C-speed searches of the
#: lower-cased page: a regex over every tag of a 100 KB page cost milliseconds.
_HIDING_WORDS = (*(b"<" + t for t in sorted(_NEVER_RENDERED | {b"svg", b"math"})), b"popover",
                 b"display",
                 b"visibility", b"hidden", b"opacity", b"font-size", b"/*", b"\\", b"&#", b"&colon",
                 b"scale", b"clip", b"matrix", b"rotate", b"contain", b"mask", b"font:",
                 b"font :", b"text-security")

_HIDING_LITERALS = Literals(_HIDING_WORDS)


def _candidate_tags(data: bytes, lower: bytes, compounds: tuple[_Compound, ...]) -> list[int]:
    """Start offsets of the opening tags holding one of `_HIDING_WORDS` or a word a hiding
    selector names, sorted."""
    present = _HIDING_LITERALS.present(lower)  # (one pass, not a find a word: 3.1 -> 1.3 ms)
    starts = _tags_with(data, lower, {*(_HIDING_WORDS[i] for i in present),
                                      *(c.word() for c in compounds)})
    if b"-" in data:  # far off screen (`left: -9999px`): a large negative value in a tag
        found = set(starts)
        for m in _NEGATIVE_VALUE.finditer(data):
            tag = lower.rfind(b"<", 0, m.start())
            if tag >= 0 and lower.find(b">", tag, m.start()) < 0 and tag not in found:
                found.add(tag)
        if len(found) > len(starts):
            starts = sorted(found)
    return starts


_NEGATIVE_VALUE = re.compile(rb":\s*-\s*\d{3}")


_RAW_TEXT = frozenset({b"script", b"style", b"title", b"textarea", b"iframe", b"noembed",
                       b"noframes"})
_SUMMARY = re.compile(rb"<summary\b[^>]*+(?:>(.*?)(?:</summary\s*>|\Z)|\Z)", re.I | re.S)


def _hidden_end(data: bytes, tag: bytes, start: int) -> int:
    """Where the element opened just before `start` ends, as a parser closes it: at its own
    closing tag, at a closing tag of an element around it (any closing tag its content
    does not open), at a start tag that implies its end (round 37: `<div>` closes an open
    `<p>`, `<li>` an open `<li>`, `<dd>` a `<dd>`, in the open elements' scope as
    `htmltree._OpenElements` reads it), else at the end of the page."""
    if tag in _RAW_TEXT:  # its content is text, not tags
        m = re.compile(rb"</" + re.escape(tag) + rb"\b[^>]*>", re.I).search(data, start)
        return len(data) if m is None else m.end()
    opened = _OpenElements()
    opened.push(tag, 0)  # (index 1: the element; its own ancestors are not needed)
    pos = start
    while (m := _ELEMENT.search(data, pos)) is not None:
        pos = m.end()
        if m.group(2) is None:
            continue  # a comment
        name = m.group(2).lower()
        if m.group(1):
            depth = opened.close(name)
            if depth is None and len(opened.tags) > 2 and name not in _TABLE_ENDS:
                opened.cut(len(opened.tags) - 1)  # (one it does not open: its innermost)
            elif depth is None or depth <= 1:
                return m.end() if depth is not None and name == tag else m.start()
            continue
        if name in _CLOSES:
            cut = opened.implied(name)
            if cut is not None and cut <= 1:
                return m.start()
        elif name == b"table" and tag == b"p" and len(opened.tags) == 2 and _standards(data):
            return m.start()  # (out of quirks mode a table closes an open <p>)
        if name in _RAW_TEXT:  # its text is no markup (round 15: `<x>` in a style sheet)
            close = re.compile(rb"</" + re.escape(name) + rb"\b[^>]*>", re.I).search(data, pos)
            pos = len(data) if close is None else close.end()
        elif name not in _VOID and not m.group(3).rstrip().endswith(b"/"):
            opened.push(name, 0)
    return len(data)


_DOCTYPE = re.compile(rb"\s*<!doctype\s+html\b([^>]*)>", re.I)
_QUIRKS_DOCTYPE = re.compile(rb"//(?:W3C|IETF)//DTD HTML (?:[23]|4\.0?1? (?:Transitional|Frameset)"
                             rb"(?![^>]*[\"']\s+[\"']))", re.I)


def _standards(data: bytes) -> bool:
    """Whether a page is read out of quirks mode (a doctype `html`, none of the old ones
    that keep quirks)."""
    m = _DOCTYPE.match(data, 3 if data.startswith(b"\xef\xbb\xbf") else 0)
    return m is not None and _QUIRKS_DOCTYPE.search(m.group(1)) is None


#: Closing tags that close what a table holds open, opened around it or not.
_TABLE_ENDS = frozenset({b"table", b"tbody", b"thead", b"tfoot", b"tr", b"td", b"th"})
#: Elements the parser makes itself in a table (`<table><td>`: a `<tbody>` and a `<tr>`).
_IMPLIED_PARTS = frozenset({b"tr", b"tbody"})
_GROUPS = frozenset({b"tbody", b"thead", b"tfoot"})
_CELLS = frozenset({b"td", b"th"})


def _implied_rows(data: bytes) -> dict[int, tuple[bytes, ...]]:
    """Where the parser puts in a `<tbody>` and/or `<tr>` of its own (round 37 h05:
    `<table><td>junk</table>` with `tr{display:none}`: Chromium hides the junk), by the
    offset of the tag they hold first, outermost first."""
    implied: dict[int, tuple[bytes, ...]] = {}
    stack = _Stack()  # the open table parts, tables and cells
    pos = 0
    for m in _ELEMENT.finditer(data):
        if m.start() < pos or m.group(2) is None:
            continue
        name = m.group(2).lower()
        if m.group(1):
            if name in _TABLE_ENDS and (depth := stack.last(name)) >= 0:
                stack.cut(depth)
            continue
        if name in _RAW_TEXT:
            pos = raw_text_end(data, name, m.end())[1]
            continue
        if name == b"table":
            stack.append(name)
            continue
        if name not in _TABLE_ENDS or not stack:
            continue
        if name in _CELLS or name == b"tr":  # (a cell or row closes the one open)
            while stack and stack[-1] in (_CELLS if name in _CELLS else _CELLS | {b"tr"}):
                stack.pop()
        elif name in _GROUPS:
            while stack and stack[-1] != b"table":
                stack.pop()
        top = stack[-1] if stack else b""
        made: tuple[bytes, ...] = ()
        if name in _CELLS and top in (b"table", *_GROUPS):
            made = (b"tbody", b"tr") if top == b"table" else (b"tr",)
        elif name == b"tr" and top == b"table":
            made = (b"tbody",)
        if made:
            implied[m.start()] = made
            stack.extend(made)
        stack.append(name)
    return implied


class _Stack(list[bytes]):
    """Open elements by tag, with where each tag is open: finding the innermost of a tag
    costs one look, not a walk down the stack (a page of 20,000 unclosed tables)."""

    def __init__(self) -> None:
        super().__init__()
        self.at: dict[bytes, list[int]] = {}

    def append(self, name: bytes) -> None:
        self.at.setdefault(name, []).append(len(self))
        super().append(name)

    def pop(self, index: SupportsIndex = -1) -> bytes:
        name = super().pop(index)
        self.at[name].pop()
        return name

    def extend(self, names: Iterable[bytes]) -> None:
        for name in names:
            self.append(name)

    def last(self, name: bytes) -> int:
        """Where the innermost open `name` is, -1 if none."""
        where = self.at.get(name)
        return where[-1] if where else -1

    def cut(self, depth: int) -> None:
        """Close what is open from `depth` in."""
        while len(self) > depth:
            self.pop()


_TAG_NAME = re.compile(rb"<(/?)([a-z][^\s/>]*+)")
_RAW_HINT = re.compile(rb"<(?:script|style|textarea|title|xmp|iframe|noembed|noframes)\b", re.I)


_MAX_DEEP_NESTING = 64
_TOO_DEEP_PAST_BOUND = (f"hidden elements past the parser's depth bound nested "
                        f"{_MAX_DEEP_NESTING} deep")
#: Comments and raw text, where a closing tag is text (it closes nothing).
_NOT_TAGS = re.compile(rb"<!--.*?(?:-->|\Z)|<(script|style|textarea|title|xmp|iframe|noembed|"
                       rb"noframes)\b.*?(?:</\1\s*>|\Z)", re.I | re.S)


#: Up to and including the `_MAX_TREE_DEPTH`-th `<` of a page (`_Page._deep_from`).
_NTH_TAG = re.compile(rb"(?:[^<]*+<){%d}" % _MAX_TREE_DEPTH)


def _most_open(data: bytes) -> int:
    """At least as many elements as the parser ever holds open (no implied end tags; a
    closing tag closes what it names, if open): `_past_the_bound` is most often none."""
    stack: list[bytes] = []
    counts: dict[bytes, int] = {}
    most = 0
    if b"<!--" in data or _RAW_HINT.search(data):  # (a `</span>` there closes nothing)
        data = _NOT_TAGS.sub(b"", data)
    for close, name in _TAG_NAME.findall(data.lower()):
        if close:
            if counts.get(name):
                while (top := stack.pop()) != name:
                    counts[top] -= 1
                counts[name] -= 1
        elif name not in _VOID:
            stack.append(name)
            counts[name] = counts.get(name, 0) + 1
            most = max(most, len(stack))
    return most


def _past_the_bound(data: bytes) -> frozenset[int]:
    """The offsets of the opening tags of elements the parser opens with more than
    `_MAX_TREE_DEPTH` open (Chromium: each is its parent's sibling; what it opens is its
    sibling too, only text stays in it). None on a page of fewer tags: one count."""
    if data.count(b"<") <= _MAX_TREE_DEPTH or _most_open(data) <= _MAX_TREE_DEPTH:
        return frozenset()
    deep: set[int] = set()
    opened = _OpenElements()
    pos = 0
    for m in _ELEMENT.finditer(data):
        if m.start() < pos or m.group(2) is None:
            continue
        name = m.group(2).lower()
        if m.group(1):
            opened.close(name)
            continue
        if name in _CLOSES:
            opened.implied(name)
        if name in _RAW_TEXT:
            pos = raw_text_end(data, name, m.end())[1]
            continue
        if name in _VOID or m.group(3).rstrip().endswith(b"/"):
            continue
        parent = opened.parent()
        if parent != len(opened.tags) - 1:
            deep.add(m.start())
        opened.push(name, parent)
    return frozenset(deep)


def _own_text(data: bytes, start: int, end: int) -> list[bytes]:
    """The text of an element's content between `start` and `end` outside every element
    inside it (what shows when `X *` hides all of them)."""
    out: list[bytes] = []
    at = start
    while at < end:
        m = _ELEMENT.search(data, at, end)
        if m is None:
            break
        out.append(data[at : m.start()])
        at = m.end()
        if m.group(2) is None or m.group(1):
            continue  # a comment, a closing tag
        child = m.group(2).lower()
        if child not in _VOID and not m.group(3).rstrip().endswith(b"/"):
            at = max(at, min(_hidden_end(data, child, m.end()), end))
    out.append(data[at:end])
    return out


def _has_text(piece: bytes) -> bool:
    return bool(_TAG.sub(b"", _COMMENT.sub(b"", piece)).strip())


def _places(data: bytes) -> dict[int, Place]:
    """Every element's place among its siblings, by the offset of its opening tag (for
    structural pseudo-classes), in the tree `_tree` reads: implied end tags, the parser's
    depth bound, a stray `</p>` or `</br>` that makes an element (session 24: each moved
    every sibling after it one place on)."""
    places: dict[int, Place] = {}
    children: dict[int, list[tuple[int, bytes]]] = {}
    tree = _tree(data)
    for at, parent in tree.parents.items():  # (in the page's order)
        children.setdefault(parent, []).append((at, tree.elements[at][0]))
    for kids in children.values():
        totals: dict[bytes, int] = {}
        for _at, tag in kids:
            totals[tag] = totals.get(tag, 0) + 1
        seen: dict[bytes, int] = {}
        for i, (at, tag) in enumerate(kids, 1):
            seen[tag] = seen.get(tag, 0) + 1
            places[at] = (i, seen[tag], len(kids), totals[tag])
    return places


#: Formatting elements: the parser opens them again after a misnested close (`<b><p>x</b>y`
#: puts y in a second b), so an element may be inside one the page's tags do not open.
_FORMATTING = frozenset((b"a", b"b", b"big", b"code", b"em", b"font", b"i", b"nobr", b"s",
                         b"small", b"strike", b"strong", b"tt", b"u"))
#: Elements whose opening closes an open one of the same group (`<li>` after `<li>`), up to
#: the first of the boundary (the list, the table) above it.
_CLOSES_OPEN: dict[bytes, tuple[frozenset[bytes], frozenset[bytes]]] = {
    **dict.fromkeys((b"li",), (frozenset((b"li",)), frozenset((b"ul", b"ol", b"menu")))),
    **dict.fromkeys((b"dt", b"dd"), (frozenset((b"dt", b"dd")), frozenset((b"dl",)))),
    **dict.fromkeys((b"td", b"th"), (frozenset((b"td", b"th")), frozenset((b"table", b"tr")))),
    b"tr": (frozenset((b"tr", b"td", b"th")), frozenset((b"table", b"tbody", b"thead",
                                                         b"tfoot"))),
    **dict.fromkeys((b"option", b"optgroup"), (frozenset((b"option",)), frozenset(
        (b"select", b"datalist", b"optgroup")))),
    # (a second `<a>`, `<nobr>`, `<button>`, `<select>` closes the open one: round 38)
    **{t: (frozenset((t,)), frozenset((b"applet", b"caption", b"html", b"table", b"td",
                                       b"th", b"marquee", b"object", b"template")))
       for t in (b"a", b"button", b"nobr", b"select")},
}
#: Elements whose opening closes an open `<p>` (not inside a table cell or button).
_CLOSES_P = frozenset(b"""address article aside blockquote center details dialog dir div dl
    fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6 header hgroup hr main menu nav
    ol p pre section summary table ul li dd dt""".split())
_TABLE_PARTS = frozenset((b"table", b"tbody", b"thead", b"tfoot", b"tr"))
#: What a table holds where it stands (not moved out before it as other content is).
_TABLE_STRUCTURE = frozenset((b"tbody", b"thead", b"tfoot", b"tr", b"td", b"th", b"caption",
                              b"col", b"colgroup", b"script", b"style", b"template"))
_P_SCOPE = (b"td", b"th", b"button", b"table")  # (a `<p>` outside them is closed)


@dataclass(slots=True)
class _Tree:
    """The page's elements as a parser nests them (close enough for ancestors: implied
    closings of `<p>`, `<li>`, cells; misnested formatting elements and foster-parented
    table content are not modelled, and `_Page.inside` counts them as matching)."""

    parents: dict[int, int]  # an element's opening tag -> its parent's (-1: none)
    previous: dict[int, int]  # -> its sibling element's before it (-1: none)
    elements: dict[int, tuple[bytes, bytes]]  # -> (tag, attributes)
    formatting: list[int]  # openings of formatting elements closed by another's tag, in order


def _tree(data: bytes) -> _Tree:
    parents: dict[int, int] = {}
    previous: dict[int, int] = {}
    last: dict[int, int] = {}  # an element's (-1: the page's) last child so far
    elements: dict[int, tuple[bytes, bytes]] = {}
    formatting: list[int] = []
    stack: list[int] = []  # the openings of the open elements
    tags = _Stack()  # their tags (where each is open: no walk down the stack)
    parts: list[int] = []  # how many `<html>`, `<head>`, `<body>` are open up to each
    standards = _standards(data)  # (a `<table>` closes an open `<p>` only then)

    def innermost(names: frozenset[bytes] | tuple[bytes, ...]) -> int:
        return max((tags.last(n) for n in names), default=-1)

    def cut(depth: int, own: bool = False) -> None:
        # (`own`: the element at `depth` ends at its end tag; a formatting element closed
        # any other way, the parser may open again: `_Page.inside` counts it in)
        formatting.extend(at for at in stack[depth + own :] if elements[at][0] in _FORMATTING)
        del stack[depth:], parts[depth:]
        tags.cut(depth)

    head = [True]  # before the body starts (where the parser puts what goes in `<head>`)

    def add(at: int, tag: bytes, attrs: bytes) -> int:
        # (Chromium's depth bound, as `htmltree._OpenElements.parent`: opened with more than
        # `_MAX_TREE_DEPTH` open, an element is its parent's sibling)
        if head[0] and (not stack or parts[-1] == len(stack)):  # (only html, head open)
            if tag in _HEAD_ONLY:
                parents[at], previous[at], elements[at] = -2, -1, (tag, attrs)
                return -2  # (in the parser's `<head>`: no sibling of the body's elements,
                # `p:first-child` after a `<style>`)
            if tag not in (b"html", b"head"):
                head[0] = False
        if tag not in _PAGE_PARTS and (depth := tags.last(b"head")) >= 0 and not (
                tag in _HEAD_ONLY and head[0]):
            cut(depth)  # (a written `<head>` ends where the body's content starts)
        if not stack and tag == b"html":
            parent = -3  # (the document's: no sibling of the body's elements)
        elif not stack or (tag not in _PAGE_PARTS and elements[stack[-1]][0] == b"html"):
            parent = -1  # (at the top, or under a written `<html>`: in the parser's `<body>`)
        elif len(stack) + 2 - parts[-1] > _MAX_TREE_DEPTH:
            parent = parents[stack[-1]]
        else:
            parent = stack[-1]
        parents[at] = parent
        previous[at] = last.get(parent, -1)
        last[parent] = at
        elements[at] = (tag, attrs)
        return parent
    pos = 0  # (past a raw text element's content)
    for m in _ELEMENT.finditer(data):
        if m.start() < pos:
            continue
        if head[0] and m.start() > pos and _NOT_TEXT.sub(b"", data[pos : m.start()]).strip():
            head[0] = False  # (text starts the body; a doctype, `&#32;` do not)
        pos = m.end()
        if m.group(2) is None:
            continue
        tag = m.group(2).lower()
        if m.group(1):
            if tag == b"br":  # (the parser reads `</br>` as a `<br>`)
                add(m.start(), tag, b"")
            elif tag == b"p" and tags.last(b"p") <= innermost(_P_SCOPE):
                add(m.start(), tag, b"")  # (no `<p>` to close: an empty one is made)
            elif (depth := tags.last(tag)) >= 0:
                cut(depth, own=True)
            continue
        if (tag in _TABLE_ONLY and tags.last(b"table") < 0 and tags.last(b"template") < 0) or (
                tag == b"head" and not head[0]) or (tag == b"form" and tags.last(b"form") >= 0):
            continue  # (a table's part with no table open, a `<head>` in the body, a `<form>`
            # in a form: ignored)
        closes = _CLOSES_OPEN.get(tag)
        if closes is not None and stack and (depth := innermost(closes[0])) > innermost(
                closes[1]):
            cut(depth)
        if tag in _CLOSES_P and (standards or tag != b"table") and (
                depth := tags.last(b"p")) > innermost(_P_SCOPE):
            cut(depth)
        at = m.start()
        add(at, tag, m.group(3))
        if tag in _RAW_TEXT or (tag == b"noscript" and parents[at] == -2):
            pos = raw_text_end(data, tag, m.end())[1]
        elif tag not in _VOID and not m.group(3).rstrip().endswith(b"/") and (
                parents[at] != -2 or tag == b"template"):
            stack.append(at)
            tags.append(tag)
            parts.append((parts[-1] if parts else 0) + (tag in _PAGE_PARTS))
    formatting.sort()
    return _Tree(parents, previous, elements, formatting)


def page_part_attributes(data: bytes, tag: bytes) -> bytes:
    """The attributes the parser gives its one `<html>` or `<body>`: of every such tag the
    page writes (outside `<template>`s, where it ignores them), the first of each name."""
    if b"<template" in data.lower():
        data = _TEMPLATE_BLOCK.sub(b"", data)
    seen: set[bytes] = set()
    kept: list[bytes] = []
    for m in re.finditer(rb"<" + tag + rb"(?=[\s/>])([^>]*+)", data, re.I):
        for a in _ATTRS.finditer(m.group(1)):
            if a.group(1).lower() not in seen:
                seen.add(a.group(1).lower())
                kept.append(a.group())
    return b" ".join(kept)


_TEMPLATE_BLOCK = re.compile(rb"<template(?=[\s/>]).*?(?:</template\s*>|\Z)", re.I | re.S)
#: What before the body's first tag is no text: a doctype, a processing instruction, the
#: references of blanks.
_NOT_TEXT = re.compile(rb"<[!?][^>]*+>?|&#(?:0*(?:9|10|12|13|32)|[xX]0*(?:9|[aAcCdD]|20));")


def steps_above(steps: Sequence[tuple[bytes, _Compound | None]], k: int, part: bytes,
                is_part: Callable[[_Compound, bytes], bool]) -> bool:
    """Whether a selector's `steps[k:]` hold from the parser's `<html>`, `<head>` or `<body>`
    (`part`): above them only `<html>`; before `<body>` only `<head>`; `is_part(compound,
    tag)` says whether the parser's element of `tag` matches a compound (None: any)."""
    while k < len(steps):
        combinator, want = steps[k]
        if part == b"body" and combinator in (b"+", b"~"):
            part = b"head"
        elif part in (b"body", b"head") and combinator in (b" ", b">"):
            part = b"html"
        else:
            return False
        if want is not None and not is_part(want, part):
            return False
        k += 1
    return True


#: The places of the parser's `<html>`, `<head>`, `<body>` among their siblings.
_PART_PLACES: dict[bytes, Place] = {b"html": (1, 1, 1, 1), b"head": (1, 1, 2, 1),
                                    b"body": (2, 1, 2, 1)}
#: Start tags the parser ignores outside a table (the parts) or in the body (`head`).
_TABLE_ONLY = frozenset((b"td", b"th", b"tr", b"tbody", b"thead", b"tfoot", b"caption", b"col",
                         b"colgroup"))
_IGNORED_OUTSIDE = _TABLE_ONLY | {b"head", b"form"}


#: What the parser puts in `<head>` when it comes before the body's first element or text.
_HEAD_ONLY = frozenset((b"base", b"basefont", b"bgsound", b"link", b"meta", b"noframes",
                        b"noscript", b"script", b"style", b"template", b"title"))


_VISIBLE = re.compile(rb"visibility\s*[:=]\s*[\"']?\s*visible")


def html_visible(data: bytes) -> bytes | None:
    """The text a browser shows when elements hide some (`display:none`, `hidden`, a class a
    style sheet hides, `<template>`, text straight inside `<svg>`...): base64 cut by hidden
    junk (`TVq<span style=display:none>junk</span>QAA...`) reads whole on screen, and a
    recipient copies it. None when nothing hides text after text a reader sees (then
    `html_rendered` is the reader's view; a page's title and style sheet, a hidden preview
    line at its top, are not worth a layer).

    Only the hiding elements are walked, tag by tag through their content: a page of
    thousands of ordinary tags costs one C-speed search. Linear: an element inside content
    already hidden is not looked at again."""
    if b"<" not in data or not (_HIDING.search(data) or b"text/css" in data.lower()):
        return None
    token = PAGE_VARS.set(page_vars(data))
    try:
        return _visible_text(data)
    finally:
        PAGE_VARS.reset(token)


def _visible_text(data: bytes) -> bytes | None:
    lower = data.lower()
    compounds = _hidden_compounds(data) if b"<style" in lower or b"text/css" in lower else ()
    structural = any(c.nth or any(n.nth for n in c.negated) for c in compounds)
    page = _Page(data, _candidate_tags(data, lower, tuple(c for c in compounds if c.hides)),
                 tuple(c for c in compounds if not c.children),
                 tuple(c for c in compounds if c.children),
                 _places(data) if structural else {})
    page.visible_again = b"visible" in lower and _VISIBLE.search(lower) is not None
    if b"<t" in lower and any(c.tag in _IMPLIED_PARTS for c in compounds if c.hides):
        page.implied = _implied_rows(data)
        page.starts = sorted({*page.starts, *page.implied})
    kept, between = page.visible(0, len(data))
    if not between:
        return None
    text = _TAG.sub(b"", _COMMENT.sub(b"", b"".join(kept)))
    if b"&" in text:
        text = _unescape(text)
    return text


_TRANSFORM = re.compile(rb"text-transform\s*:\s*(uppercase|lowercase|capitalize|none|initial|"
                        rb"inherit|unset|revert-layer|revert|var\("
                        rb"\s*(--[\w-]+)\s*(?:,\s*([\w-]+))?\s*\))([^;]*)", re.I)
_CUSTOM = re.compile(rb"(?<![\w-])(--[\w-]++)\s*:\s*([^;{}!]*)")
_INITIAL = re.compile(rb"initial-value\s*:\s*([\w-]+)", re.I)
_WORD_START = re.compile(rb"(?<![A-Za-z0-9'])[a-z]")
_MODES = frozenset({b"uppercase", b"lowercase", b"capitalize", b"none", b"initial",
                    b"inherit", b"unset", b"revert", b"revert-layer"})
#: Values that give an element its parent's transform (round 15: `q{none} q{revert}`).
_INHERITED = frozenset({b"inherit", b"unset", b"revert", b"revert-layer"})


def _mode(m: re.Match[bytes], custom: dict[bytes, bytes]) -> bytes | None:
    """A `text-transform` declaration's value, a custom property's resolved (round 14:
    `var(--u)` set on :root or as an @property's initial value)."""
    value = m.group(1).lower()
    if m.group(2) is not None:
        value = (custom.get(m.group(2)) or m.group(3) or b"").lower()
    return value if value in _MODES else None


def html_transformed(data: bytes) -> bytes | None:
    """The page with CSS `text-transform` applied to the text it styles (round 13: base64
    whose letters an `uppercase` class turns into the file's; a recipient copies what the
    browser shows), its `text-transform` properties renamed so that the copy is not read
    again; None when nothing is transformed. Each element takes the transform the cascade
    gives it (round 14): inline style over the style sheets' rules unless one is
    `!important`, rules ranked by importance, specificity and order (subject compounds, as
    `html_visible` reads them; pseudo-classes alone, `:lang(en)`, match any element),
    `var()` resolved through the page's custom properties; an element inside one transforms
    its own part, `none` gives it back its own letters."""
    lower = data.lower()
    if b"transform" not in lower and b"transform" not in css_readable(data).lower():
        return None
    custom: dict[bytes, bytes] = {}
    rules: list[tuple[_Compound, bytes, bool]] = []  # (ranked subject, mode, important)
    firsts: list[tuple[_Compound, bytes, bool]] = []  # the same, of `::first-letter` rules
    tables = b"<table" in lower
    if b"<style" in lower or b"text/css" in lower:
        sheet_rules = _sheet_rules(data)
        # (for inline styles: vars are resolved in the rules; one that does not inherit is
        # its initial value there)
        initials, local = _registered([(r.selectors, r.declarations, None)
                                       for r in sheet_rules])
        custom.update(initials)
        for rule in sheet_rules:
            for name, value in _CUSTOM.findall(rule.declarations):
                if name not in local:
                    custom[name] = value
        for order, rule in enumerate(sheet_rules, 1):
            found = _TRANSFORM.search(rule.declarations)
            mode = _mode(found, custom) if found is not None else None
            if found is None or mode is None:
                continue
            important = b"!important" in found.group(4).replace(b" ", b"").lower()
            for listed in _selectors(_selector_text(rule.selectors)):
                pseudo = _PSEUDO_ELEMENT_SELECTOR.search(listed)
                first = pseudo is not None and _FIRST_LETTER.search(listed) is not None
                if pseudo is not None and not first:
                    continue  # (another pseudo-element's text: not the element's own)
                for selector in _expanded(listed[: pseudo.start()] if pseudo else listed):
                    compound = _compound(selector) or _any_element(selector)
                    if compound is not None and not compound.children:
                        # (only inside the ancestors it names: a decoy `.none i{text-
                        # transform:none}` undid every <i>'s uppercase, session 25)
                        (firsts if first else rules).append(
                            (_ranked(compound, rule, selector, important, order,
                                     ancestors=_ancestor_steps(selector, tables)), mode,
                             important))
    rules.sort(key=lambda r: r[0].rank, reverse=True)
    firsts.sort(key=lambda r: r[0].rank, reverse=True)
    rules_of = {False: rules, True: firsts}
    subjects = {False: tuple(r[0] for r in rules), True: tuple(r[0] for r in firsts)}
    universal = any(not r[0].word().strip(b"<") for r in (*rules, *firsts))
    words = {b"transform", b"tran\\", *(r[0].word() for r in (*rules, *firsts))}
    out = bytearray(data)
    done = False
    starts = _tags_with(data, lower, {b"<"} if universal else words)
    places = _places(data) if any(r[0].nth for r in (*rules, *firsts)) else {}
    decided: dict[tuple[bytes, bytes, Place | None, bool, frozenset[int]],
                  tuple[_Compound, bytes, bool] | None] = {}
    budget = [_MAX_MATCHES]
    contextual = tuple(r[0] for r in (*rules, *firsts) if r[0].ancestors)
    page = _Page(data, [], (), (), {}) if contextual else None
    checks = [_MAX_CONTEXT_CHECKS]
    for start, first in [(s, False) for s in starts] + (
            [(s, True) for s in starts] if firsts else []):
        el = _ELEMENT.match(data, start)
        if el is None or el.group(2) is None:
            continue
        tag, attrs = el.group(2).lower(), el.group(3)
        if tag in _VOID or tag in _RAW_TEXT:
            continue
        failing: frozenset[int] = frozenset()
        if page is not None:  # (the rules whose subject it is but not their context)
            subjects_of = [c for c in contextual if _matches(c, tag, attrs, places.get(start))]
            checks[0] -= len(subjects_of)
            if checks[0] < 0:  # (the review of session 25: 60 rules over 30,000 cells)
                raise ScanLimitExceeded(MAX_SCAN_TIME, f"more than {_MAX_CONTEXT_CHECKS} "
                                        f"elements' contexts of text-transform rules")
            failing = frozenset(id(c) for c in subjects_of if not page.inside(c, start))
        key = (tag, attrs, places.get(start), first, failing)
        if key not in decided:  # (elements alike decide alike: a page of 40k <p>, round 14)
            ranked = rules_of[first]
            if len(ranked) > _FEW_COMPOUNDS:  # (the rules keyed by its classes, id, tag)
                ranked = [ranked[i] for i in _relevant_indices(subjects[first], tag, attrs)]
            budget[0] -= len(ranked)
            if budget[0] < 0:
                raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_MANY_MATCHES)
            decided[key] = _cascaded(ranked, tag, attrs, key[2], failing)
        sheet = decided[key]
        if first:  # (round 18: `::first-letter` transforms the first letter alone)
            if sheet is not None and sheet[1] not in _INHERITED:
                letter = _first_letter(data, el.end(), _hidden_end(data, tag, el.end()))
                if letter is not None:
                    _transform(out, data, letter, letter + 1,
                               b"none" if sheet[1] == b"initial" else sheet[1])
                    done = True
            continue
        inline = None
        if b"tran" in attrs.lower():
            css = _css_text(_unescape(attrs) if b"&" in attrs else attrs)
            found = _TRANSFORM.search(css)
            if found is not None:
                inline = _mode(found, custom), b"!important" in found.group(4).replace(
                    b" ", b"").lower()
        if inline is not None and inline[0] is not None and inline[0] != b"revert-layer" and (
                sheet is None or inline[1] or not sheet[2]):
            mode = inline[0]
        elif sheet is not None:
            mode = sheet[1]
        else:
            continue
        if mode in _INHERITED:
            continue  # its parent's transform, applied already
        _transform(out, data, el.end(), _hidden_end(data, tag, el.end()),
                   b"none" if mode == b"initial" else mode)
        done = True
    if not done:
        return None
    return re.sub(rb"text-transform", b"text-transfxrm", bytes(out), flags=re.I)


#: Elements times text-transform rules whose context is checked on a page, past which it is
#: a limit finding (about 2 s).
_MAX_CONTEXT_CHECKS = 200_000


def _cascaded(rules: list[tuple[_Compound, bytes, bool]], tag: bytes, attrs: bytes,
              place: Place | None, failing: frozenset[int] = frozenset()
              ) -> tuple[_Compound, bytes, bool] | None:
    """The winning `text-transform` rule for an element (`rules` ranked, best first; not
    those in `failing`, by id: their context does not hold); `revert-layer` gives the
    element what the layers below its rule's say (round 15: `@layer a{q{text-transform:
    uppercase}} @layer b{q{text-transform:revert-layer}}`)."""
    reverted: tuple[int, ...] | None = None
    for rule in rules:
        if reverted is not None and rule[0].rank[:2] == reverted:
            continue
        if id(rule[0]) in failing:
            continue
        if not _matches(rule[0], tag, attrs, place):
            continue
        if rule[1] == b"revert-layer":
            reverted = rule[0].rank[:2]
            continue
        return rule
    return None


def _any_element(selector: bytes) -> _Compound | None:
    """A subject of pseudo-classes or `*` alone (`:lang(en)`, `*`): any element."""
    tail = _COMBINATOR.split(_PSEUDO.sub(b"", selector.strip()).strip())[-1]
    return _Compound(None, frozenset(), frozenset(), ()) if tail in (b"", b"*") else None


def _tags_with(data: bytes, lower: bytes, words: set[bytes]) -> list[int]:
    """Start offsets of the opening tags holding one of `words`, sorted."""
    if len(words) > _FEW_WORDS:
        return _tags_with_many(lower, words)
    starts: set[int] = set()
    for word in words:
        at = lower.find(word)
        while at >= 0:
            tag = at if word[0] == 60 else lower.rfind(b"<", 0, at)  # 60: "<"
            if tag >= 0 and lower.find(b">", tag, at) < 0 and data[tag + 1 : tag + 2].isalpha():
                starts.add(tag)
            nxt = at + len(word)
            if word[0] != 60:
                # Every later find before the next "<" has the same last "<", so the same
                # answer: skip to it (each find looked back to the last "<": 50,000 classes
                # in a style sheet looked back over the sheet, ~1.2 s per 800 KB).
                nxt = lower.find(b"<", at)
                if nxt < 0:
                    break
            at = lower.find(word, nxt)
    return sorted(starts)


#: Words looked for over the whole page one by one, at most: past them, only in the text of
#: its opening tags (round 21: 60,000 hiding rules in a sheet of 2 MB were one search of the
#: page each, 69 s).
_FEW_WORDS = 64
#: Searches of the tags' text (words x bytes) a page may cost (a few seconds at C speed):
#: past it, the page is the time limit.
_MAX_TAG_SEARCH = 4_000_000_000
_OPEN_TAG = re.compile(rb"<[a-z][^>]*+", re.I)


def _tags_with_many(lower: bytes, words: set[bytes]) -> list[int]:
    """`_tags_with` for many words: each is looked for in the page's opening tags only, put
    end to end (a word inside one tag), each found tag by where it starts."""
    spans = [(m.start(), m.end()) for m in _OPEN_TAG.finditer(lower)]
    if not spans:
        return []
    text = b"\x00".join(lower[a:b] for a, b in spans)
    if len(words) * len(text) > _MAX_TAG_SEARCH:
        raise ScanLimitExceeded(MAX_SCAN_TIME, f"{len(words)} selectors over {len(spans)} tags")
    at_text: list[int] = []
    pos = 0
    for a, b in spans:
        at_text.append(pos)
        pos += b - a + 1
    starts: set[int] = set()
    for word in words:
        at = text.find(word)
        while at >= 0:
            i = bisect.bisect_right(at_text, at) - 1
            starts.add(spans[i][0])
            at = text.find(word, at_text[i + 1]) if i + 1 < len(at_text) else -1
    return sorted(starts)


_FIRST_LETTER = re.compile(rb":first-letter(?![\w-])", re.I)
_LETTER = re.compile(rb"[A-Za-z0-9]")


def _first_letter(data: bytes, lo: int, hi: int) -> int | None:
    """Where an element's first letter or digit is, outside tags (what `::first-letter`
    styles, its leading punctuation aside); None when it has none."""
    pos = lo
    for m in (*_TAG.finditer(data, lo, hi), None):
        end = m.start() if m is not None else hi
        found = _LETTER.search(data, pos, end)
        if found is not None:
            return found.start()
        if m is None:
            return None
        pos = m.end()
    return None


def _transform(out: bytearray, data: bytes, lo: int, hi: int, mode: bytes) -> None:
    """Apply a text-transform to the text between `lo` and `hi` (tags left as they are; an
    ASCII letter's case only, so offsets stay; `none`: the page's own letters back)."""
    pos = lo
    for m in (*_TAG.finditer(data, lo, hi), None):
        end = m.start() if m is not None else hi
        piece = data[pos:end]
        if mode == b"uppercase":
            piece = piece.upper()
        elif mode == b"lowercase":
            piece = piece.lower()
        elif mode == b"capitalize":
            piece = _WORD_START.sub(lambda w: w.group().upper(), piece)
        out[pos:end] = piece
        if m is not None:
            pos = m.end()


#: Elements that show no text of their own, only the text of some elements inside them:
#: SVG shows `<text>` (with its `<tspan>`s) and `<foreignObject>`'s HTML; MathML its token
#: elements. Text straight inside them (or inside a `<g>`) is not rendered.
_SHOWS_ONLY = {b"svg": frozenset({b"text", b"foreignobject"}),
               b"math": frozenset({b"mi", b"mn", b"mo", b"ms", b"mtext"})}
#: SVG elements never drawn where they stand (definitions, paint servers, clips, masks,
#: filters, metadata): a `<foreignObject>` in one shows nothing (attack round 41).
UNDRAWN_SVG = frozenset({b"defs", b"symbol", b"marker", b"mask", b"pattern", b"clippath",
                         b"metadata", b"lineargradient", b"radialgradient", b"filter"})
_REQUIRED_EXTENSIONS = re.compile(rb"(?:^|\s)requiredextensions\s*=\s*(?:\"\s*[^\"\s]|'\s*[^'\s]|"
                                  rb"[^\s\"'>])", re.I)


def undrawn_svg(tag: bytes, attrs: bytes) -> bool:
    """Whether an element inside an `<svg>` is never drawn: `UNDRAWN_SVG`, or one that
    requires an extension (Chromium supports none: `<switch><g requiredExtensions=x>`)."""
    return tag in UNDRAWN_SVG or (b"equiredextensions" in attrs.lower()
                                  and _REQUIRED_EXTENSIONS.search(attrs) is not None)


@dataclass(slots=True)
class _Page:
    data: bytes
    starts: list[int]  # the candidate tags (`_candidate_tags`)
    whole: tuple[_Compound, ...]  # hiding selectors' subjects
    kids: tuple[_Compound, ...]  # `X *` subjects
    places: dict[int, Place]  # elements' places among siblings (`_places`), when needed
    decided: dict[tuple[bytes, bytes, Place | None], int] = dataclasses.field(
        default_factory=dict)  # `_hides` of elements alike, once
    scanned: list[int] = dataclasses.field(default_factory=lambda: [_PARENT_BUDGET])
    items: dict[int, bool] = dataclasses.field(default_factory=dict)  # `_an_item`s
    budget: list[int] = dataclasses.field(default_factory=lambda: [_MAX_MATCHES])
    deep_nesting: int = 0  # (`visible` within `visible` for elements past the depth bound)
    open_groups: set[bytes] = dataclasses.field(default_factory=set)  # `<details name>`
    visible_again: bool = False  # whether the page says `visibility: visible` anywhere
    #: the `<tr>`/`<tbody>` the parser puts in itself (`_implied_rows`), by the offset of
    #: the tag they hold first, when a rule hides those tags
    implied: dict[int, tuple[bytes, ...]] = dataclasses.field(default_factory=dict)
    deep: frozenset[int] | None = None  # `_past_the_bound`, once an element hides
    deep_from: int = -1  # (`_deep_from`, once)

    def _deep_from(self) -> int:
        """Where an element may be past the parser's depth bound: after `_MAX_TREE_DEPTH`
        tags (the page's end if it has fewer)."""
        if self.deep_from < 0:
            m = _NTH_TAG.match(self.data)  # (one C-speed match, not 512 finds)
            self.deep_from = len(self.data) if m is None else m.end() - 1
        return self.deep_from

    def _deep(self) -> frozenset[int]:
        if self.deep is None:
            self.deep = _past_the_bound(self.data)
        return self.deep
    tree: _Tree | None = None  # the page's nesting (`_tree`), once a rule needs ancestors
    tree_places: dict[int, Place] | None = None  # (`_places`, once an ancestor needs one)
    #: the attributes the parser gives its `<html>`, `<body>` (`page_part_attributes`)
    page_parts: dict[bytes, tuple[bytes, dict[bytes, bytes], set[bytes]]] = (
        dataclasses.field(default_factory=dict))
    #: whether a compound matches the parser's `<html>`, `<head>` or `<body>` (`_is`)
    page_hits: dict[tuple[int, bytes], bool] = dataclasses.field(default_factory=dict)
    #: per element alike: the rules that match it by their subject and name ancestors
    placed: dict[tuple[bytes, bytes, Place | None], tuple[_Compound, ...]] = (
        dataclasses.field(default_factory=dict))
    #: `inside`'s answers, per compound (by id): (step, element) -> whether the steps from
    #: there hold (the review of session 25: asked again per element, 60 rules over 30,000
    #: cells cost 25 s)
    held: dict[int, dict[tuple[int, int], bool]] = dataclasses.field(default_factory=dict)

    def hides(self, tag: bytes, attrs: bytes, place: Place | None, start: int = -1) -> bool:
        return self.how(tag, attrs, place, start) in (HIDDEN, INVISIBLE)

    def how(self, tag: bytes, attrs: bytes, place: Place | None, start: int = -1) -> int:
        """How an element hides its content (`_hides`; `IF_ITEM` decided)."""
        if tag == b"details" and b"name" in attrs.lower():
            # exclusive accordions (round 15): of the open details of one name, the parser
            # keeps the first open
            named = {m.group(1).lower(): (m.group(2) or m.group(3) or m.group(4) or b"")
                     for m in _ATTRS.finditer(attrs)}
            group = named.get(b"name")
            if group and b"open" in named:
                if group in self.open_groups:
                    return HIDDEN
                self.open_groups.add(group)
        key = (tag, attrs, place)
        if key in self.decided:
            found = self.decided[key]
        else:
            relevant = _relevant(self.whole, tag, attrs)
            self.budget[0] -= len(relevant)
            if self.budget[0] < 0:
                raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_MANY_MATCHES)
            found = self.decided[key] = _hides(tag, attrs, relevant, place)
            # (round 36) the rules that show it by its own tag if its ancestors match: where
            # the element stands decides
            self.placed[key] = tuple(c for c in relevant if c.ancestors
                                     and _matches(c, tag, attrs, place))
        placed = self.placed.get(key)
        if start >= 0 and placed:
            failing = frozenset(c for c in placed if not self.inside(c, start))
            if failing:
                return self._decided(tag, attrs, place, start, tuple(
                    c for c in _relevant(self.whole, tag, attrs) if c not in failing))
        return self._decided(tag, attrs, place, start, None, found)

    def _decided(self, tag: bytes, attrs: bytes, place: Place | None, start: int,
                 relevant: tuple[_Compound, ...] | None, found: int = SHOWN) -> int:
        if relevant is not None:
            found = _hides(tag, attrs, relevant, place)
        if found == IF_ITEM:  # an inline element that a transform or size hides as a box
            item = self.items.get(start)
            if item is None:
                item = self.items[start] = self._an_item(start)
            return HIDDEN if item else SHOWN
        return found

    def inside(self, c: _Compound, start: int) -> bool:
        """Whether the element whose opening tag is at `start` has the ancestors `c` names
        (`c.ancestors`); where the parser may nest otherwise than `_tree` reads (a
        formatting element opened again, table content moved out of its table), yes."""
        if self.tree is None:
            self.tree = _tree(self.data)
        tree = self.tree
        if start not in tree.elements:
            return True
        steps = c.ancestors
        memo = self.held.setdefault(id(c), {})  # (kept: elements share their ancestors)

        def holds(step: int, at: int) -> bool:  # steps[step:] hold from the element at `at`
            if step == len(steps):
                return True
            if (step, at) in memo:
                return memo[step, at]
            combinator, want = steps[step]
            links = tree.previous if combinator in (b"+", b"~") else tree.parents
            parent = links.get(at, -1)  # (the parent, or the sibling before it)
            if want is not None and want.tag in _PAGE_PARTS and combinator in (b" ", b">"):
                # (the parser's one `<html>`, `<body>`, written or not, stand above the
                # page's elements: matched by the attributes the page gives them; as a
                # parent, `<body>` is the top's, `<html>` only `<body>`'s and `<head>`'s)
                up = tree.parents.get(at, -1)
                where = tree.elements[up][0] if up >= 0 else b""
                memo[step, at] = self._is(want, -1, want.tag, b"") and (
                    (combinator == b" " and (want.tag != b"head" or self._in_head(at))) or (
                        want.tag == b"html" and (
                        tree.elements[at][0] in (b"head", b"body") or up == -2)) or (
                        want.tag == b"body" and up != -2 and (
                            where in (b"", b"html", b"body") or (
                                where in _TABLE_PARTS and tree.elements[at][0] not in
                                _TABLE_STRUCTURE))) or (  # (moved out of its table)
                        want.tag == b"head" and (up == -2 or where == b"head"))) and (
                    self._above(steps, step + 1, want.tag))
                return memo[step, at]
            if parent < 0 and want is None and combinator in (b" ", b">"):
                memo[step, at] = True  # (at the top of `_tree`: under the parser's `<body>`)
                return True
            found = False
            path: list[int] = []  # (for `A B`, `A ~ B`: the elements tried, remembered as
            # (-1 - step, element): whether one from there up holds, shared by all below)
            while parent >= 0:
                if combinator not in (b">", b"+"):
                    known = memo.get((-1 - step, parent))
                    if known is not None:
                        found = known
                        break
                    path.append(parent)
                self.budget[0] -= 1
                if self.budget[0] < 0:
                    raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_MANY_MATCHES)
                tag, attrs = tree.elements[parent]
                if b"&" in attrs:
                    attrs = _unescape(attrs)
                if (want is None or self._is(want, parent, tag, attrs)) and holds(
                        step + 1, parent):
                    found = True
                    break
                if combinator in (b">", b"+"):
                    break
                parent = links.get(parent, -1)
            for tried in path:
                memo[-1 - step, tried] = found
            if not found and combinator in (b" ", b">") and (
                    want is None or want.tag is None or want.tag in _FORMATTING):
                # (a formatting element before it, the parser may have opened again)
                self.budget[0] -= len(tree.formatting)
                if self.budget[0] < 0:
                    raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_MANY_MATCHES)
                found = any(_matches(want, *tree.elements[f]) if want is not None else True
                            for f in tree.formatting[: bisect.bisect_left(tree.formatting, at)]
                            if want is None or want.tag is None or tree.elements[f][0] == want.tag)
            if not found and combinator != b" " and tree.elements[at][0] not in (
                    _TABLE_STRUCTURE) and tree.elements.get(
                    tree.parents.get(at, -1), (b"",))[0] in _TABLE_PARTS:
                found = True  # (content of a table outside its cells: moved before it)
            memo[step, at] = found
            return found
        return holds(0, start)

    def an_element(self, start: int) -> bool:
        """Whether the tag at `start` makes an element (`_tree`: the parser ignores some)."""
        if self.tree is None:
            self.tree = _tree(self.data)
        return start in self.tree.elements

    def _in_head(self, at: int) -> bool:
        """Whether the element at `at` in `_tree` is in the parser's `<head>`."""
        tree = self.tree
        assert tree is not None
        while at >= 0:
            up = tree.parents.get(at, -1)
            if up == -2 or (up >= 0 and tree.elements[up][0] == b"head"):
                return True
            at = up
        return False

    def _above(self, steps: tuple[tuple[bytes, _Compound | None], ...], k: int,
               part: bytes) -> bool:
        return steps_above(steps, k, part, lambda want, part: self._is(want, -1, part, b""))

    def _is(self, want: _Compound, at: int, tag: bytes, attrs: bytes) -> bool:
        """Whether the element at `at` in `_tree` matches a compound of a selector's context:
        by its place among its siblings where the compound asks (`.x:first-child div`), and
        an `<html>` or `<body>` by the attributes of every such tag the page writes (the
        parser gives its one element the attributes of all)."""
        if tag in _PAGE_PARTS and at < 0:  # (the parser's own, by the attributes written)
            known = self.page_hits.get((id(want), tag))
            if known is None:
                parsed = self.page_parts.get(tag)
                if parsed is None:  # (its attributes parsed once, not per rule)
                    merged = page_part_attributes(self.data, tag)
                    parsed = self.page_parts[tag] = (merged, *_attributes(merged))
                self.budget[0] -= 1
                known = self.page_hits[id(want), tag] = (want.tag in (None, tag)) and _matches(
                    want, tag, parsed[0], _PART_PLACES[tag], parsed[1], parsed[2])
            return known
        place = None
        if want.nth or any(n.nth for n in want.negated):
            if self.tree_places is None:
                self.tree_places = _places(self.data)
            place = self.tree_places.get(at)
        return _matches(want, tag, attrs, place)

    def _an_item(self, start: int) -> bool:
        """Whether the element whose opening tag is at `start` is a flex or grid item (its
        parent, found back from it, a flex or grid container: one whose parent is not
        found counts as one; a sibling's answer is its own)."""
        if start < 0:
            return True
        for window in (1 << 10, 1 << 13, _PARENT_WINDOW):  # (a parent is most often near)
            lo = max(0, start - window)
            self.scanned[0] -= start - lo
            if self.scanned[0] < 0:
                return self._an_item_in_tree(start)
            depth = 0
            for m in reversed(list(_ELEMENT.finditer(self.data, lo, start))):
                if m.group(2) is None:
                    continue
                name = m.group(2).lower()
                if m.group(1):
                    depth += 1
                elif name in _VOID or m.group(3).rstrip().endswith(b"/"):
                    continue
                elif depth:
                    depth -= 1
                    if not depth and m.start() in self.items:  # a sibling looked up already
                        return self.items[m.start()]
                else:
                    return _flex_or_grid(name, m.group(3), self.whole)
            if not lo:
                return False  # (at the top of the page)
        return self._an_item_in_tree(start)

    def _an_item_in_tree(self, start: int) -> bool:
        """`_an_item` by the page's nesting (`_tree`, built once), for a parent farther back
        than the window or past the walks' budget: no guess either way (a parent 64 KB back
        was taken for a flex container, and an inline `transform: scale(0)` span, which
        Chromium shows, for hidden: base64 pieces in such spans were read as hidden)."""
        if self.tree is None:
            self.tree = _tree(self.data)
        parent = self.tree.parents.get(start)
        if parent is None:
            return True  # (no element the parser opens: as before)
        if parent < 0:
            return False  # (at the top of the page)
        return _flex_or_grid(*self.tree.elements[parent], self.whole)

    def visible(self, lo: int, hi: int) -> tuple[list[bytes], bool]:
        """The pieces of `data[lo:hi]` a reader sees, and whether something hidden follows
        text a reader sees."""
        data = self.data
        kept: list[bytes] = []
        pos = lo  # end of the last hidden range
        between = False
        for start in self.starts[bisect.bisect_left(self.starts, lo):]:
            if start >= hi:
                break
            if start < pos:
                continue  # inside hidden content already
            parts = self.implied.get(start)
            if parts is not None and (part := next((t for t in parts if self.hides(
                    t, b"", None)), None)) is not None:
                kept.append(data[pos:start])
                between = between or _has_text(kept[-1])
                pos = min(_hidden_end(data, part, start), hi)
                continue
            el = _ELEMENT.match(data, start)
            if el is None or el.group(2) is None:
                continue
            tag, attrs = el.group(2).lower(), el.group(3)
            if tag in _IGNORED_OUTSIDE and not self.an_element(start):
                continue  # (a `<td>` with no table open, a `<head>` in the body: no element)
            if tag in _VOID or attrs.rstrip().endswith(b"/"):
                continue
            place = self.places.get(start)
            if tag in _SHOWS_ONLY and not self.hides(tag, attrs, place):
                kept.append(data[pos : el.end()])
                pos = min(_hidden_end(data, tag, el.end()), hi)
                shown, hidden = self._shows_only(el.end(), pos, _SHOWS_ONLY[tag])
                between = between or hidden
                kept.extend(shown)
            elif (how := self.how(tag, attrs, place, start)) not in (HIDDEN, INVISIBLE):
                if self.kids and any(_matches(c, tag, attrs, place) for c in self.kids):
                    kept.append(data[pos : el.end()])
                    pos = min(_hidden_end(data, tag, el.end()), hi)
                    own = _own_text(data, el.end(), pos)
                    between = between or any(_has_text(t) for t in (kept[-1], *own[:-1]))
                    kept.extend(own)
            elif how == INVISIBLE and self.visible_again:
                # round 18: what it holds that is `visibility: visible` shows
                kept.append(data[pos:start])
                pos = min(_hidden_end(data, tag, el.end()), hi)
                again = self._shown_again(el.end(), pos)
                between = between or _has_text(kept[-1]) or (
                    bool(again) and _has_text(data[el.end() : pos]))
                kept.extend(again)
            elif start > self._deep_from() and start in self._deep():
                # opened past the parser's depth bound (round 37 h09): what it opens is its
                # sibling, shown; only its own text is hidden
                kept.append(data[pos:start])
                between = between or _has_text(kept[-1])
                pos = min(_hidden_end(data, tag, el.end()), hi)
                at = el.end()
                while (m := _ELEMENT.search(data, at, pos)) is not None:
                    between = between or _has_text(data[at : m.start()])
                    at = m.end()
                    if m.group(2) is None or m.group(1):
                        continue
                    child = m.group(2).lower()
                    if child in _VOID or m.group(3).rstrip().endswith(b"/"):
                        continue
                    at = min(_hidden_end(data, child, m.end()), pos)
                    self.deep_nesting += 1  # (hidden in hidden past the bound: recursion)
                    if self.deep_nesting > _MAX_DEEP_NESTING:
                        raise ScanLimitExceeded(MAX_RECURSION, _TOO_DEEP_PAST_BOUND)
                    shown, hidden = self.visible(m.start(), at)
                    self.deep_nesting -= 1
                    kept.extend(shown)
                    between = between or hidden
                between = between or _has_text(data[at:pos])
            else:
                kept.append(data[pos:start])
                between = between or _has_text(kept[-1])
                pos = min(_hidden_end(data, tag, el.end()), hi)
                if tag == b"template" and b"shadowrootmode" in attrs.lower():
                    pos = min(_hidden_end(data, b"", pos), hi)  # its host's children: unseen
                if tag == b"details":  # a closed one still shows its summary
                    kept.extend(m.group(1) for m in _SUMMARY.finditer(data, el.end(), pos)
                                if m.group(1) is not None)
        kept.append(data[pos:hi])
        return kept, between

    def _shown_again(self, lo: int, hi: int) -> list[bytes]:
        """Inside an element `visibility` hides: the visible text of the elements inside
        it that are `visibility: visible` (not inside one hidden otherwise)."""
        data = self.data
        kept: list[bytes] = []
        at = lo
        while at < hi:
            m = _ELEMENT.search(data, at, hi)
            if m is None:
                break
            at = m.end()
            if m.group(2) is None or m.group(1):
                continue  # a comment, a closing tag
            tag, attrs = m.group(2).lower(), m.group(3)
            if tag in _VOID or attrs.rstrip().endswith(b"/"):
                continue
            how = self.how(tag, attrs, self.places.get(m.start()), m.start())
            if how == VISIBLE_AGAIN:
                end = max(at, min(_hidden_end(data, tag, m.end()), hi))
                kept.extend(self.visible(m.end(), end)[0])
                at = end
            elif how == HIDDEN or tag in _RAW_TEXT:
                at = max(at, min(_hidden_end(data, tag, m.end()), hi))
        return kept

    def _shows_only(self, lo: int, hi: int, shows: frozenset[bytes]) -> tuple[list[bytes], bool]:
        """Inside an `<svg>` or `<math>`: the visible text of the elements in `shows`, and
        whether any other text was dropped."""
        data = self.data
        kept: list[bytes] = []
        hidden = False
        at = lo
        while at < hi:
            m = _ELEMENT.search(data, at, hi)
            if m is None:
                break
            hidden = hidden or _has_text(data[at : m.start()])
            at = m.end()
            if m.group(2) is None or m.group(1):
                continue  # a comment, a closing tag
            tag = m.group(2).lower()
            place = self.places.get(m.start())
            if tag == b"maction":  # only its selected child shows (round 15)
                end = max(at, min(_hidden_end(data, tag, m.end()), hi))
                chosen = _nth_child(data, m.end(), end, _selection(m.group(3)))
                if chosen is not None:
                    shown, inner = self._shows_only(chosen[0], chosen[1], shows)
                    kept.extend(shown)
                hidden = True
                at = end
            elif tag in shows and not self.hides(tag, m.group(3), place):
                end = min(_hidden_end(data, tag, m.end()), hi)
                shown, inner = self.visible(m.end(), end)
                if tag == b"mi" and b"mathvariant" not in m.group(3).lower():
                    shown = [_math_italic(b"".join(shown))]
                kept.extend(shown)
                hidden = hidden or inner
                at = max(at, end)
            elif tag in _NEVER_RENDERED or (shows is _SHOWS_ONLY[b"svg"] and undrawn_svg(
                    tag, m.group(3))) or self.hides(tag, m.group(3), place):
                end = max(at, min(_hidden_end(data, tag, m.end()), hi))
                hidden = hidden or _has_text(data[at:end])
                at = end
        hidden = hidden or _has_text(data[at:hi])
        return kept, hidden


def _selection(attrs: bytes) -> int:
    found = re.search(rb"selection\s*=\s*[\"']?(\d+)", attrs, re.I)
    return int(found.group(1)) if found else 1


def _nth_child(data: bytes, lo: int, hi: int, n: int) -> tuple[int, int] | None:
    """The span (start of its tag, end of its element) of the n-th child element between
    `lo` and `hi`, from 1."""
    at = lo
    count = 0
    while at < hi:
        m = _ELEMENT.search(data, at, hi)
        if m is None or m.group(2) is None or m.group(1):
            if m is None:
                return None
            at = m.end()
            continue
        name = m.group(2).lower()
        end = m.end() if name in _VOID or m.group(3).rstrip().endswith(b"/") else min(
            _hidden_end(data, name, m.end()), hi)
        count += 1
        if count == n:
            return m.start(), end
        at = max(end, m.end())
    return None


_LONE_LETTER = re.compile(rb"\s*([A-Za-z])\s*(?:</mi\s*>)?\s*")


def _math_italic(content: bytes) -> bytes:
    """A MathML `<mi>` of one letter as a browser draws it: the letter in mathematical
    italic (round 14: `<mi>x</mi>` shows as U+1D465, no base64 letter, between the pieces)."""
    m = _LONE_LETTER.fullmatch(content)
    if m is None:
        return content
    c = m.group(1)[0]
    if c == 0x68:  # h: the Planck constant sign stands in the italic block's gap
        return "\u210e".encode()
    base = 0x1D434 if c < 0x61 else 0x1D44E
    return chr(base + (c & 0x1F) - 1).encode()


#: The text runs of Office Open XML parts (Word `<w:t>`, DrawingML `<a:t>` in slides and
#: shapes, spreadsheet strings `<t>`), their paragraph ends, tabs and breaks.
#: (A tag's attributes hold no `<` in XML: `[^<>]`, so an opening without its `>` is not
#: read on to a far one from each of many such openings, quadratic.)
_OFFICE_TOKEN = re.compile(rb"<([\w.-]++):t(?:\s[^<>]*+)?>([^<]*)</\1:t>|<t(?:\s[^<>]*+)?>([^<]*)"
                           rb"</t>|</(?:[\w.-]+:p|si)>|<[\w.-]++:(?:tab|br|cr)\b[^<>]*+>")
#: OpenDocument's paragraph ends, tabs, line breaks and spaces (`<text:s/>`), then any tag.
_ODF_BREAK = re.compile(rb"</text:(?:p|h)>|<text:(?:p|h)\b[^<>]*/>|<text:line-break\b[^<>]*+>")
_ODF_TAB = re.compile(rb"<text:tab\b[^<>]*+>")
_ODF_SPACE = re.compile(rb"<text:s\b[^<>]*+>")


_XML_CDATA = re.compile(rb"<!\[CDATA\[(.*?)(?:\]\]>|\Z)", re.S)
_XML_SKIPPED = re.compile(rb"<!--.*?(?:-->|\Z)|<\?.*?(?:\?>|\Z)", re.S)
_XML_DOCTYPE = re.compile(rb"<!DOCTYPE\b[^\[>]*(?:\[(.*?)\]\s*)?>", re.S)
_XML_ENTITY = re.compile(rb"<!ENTITY\s+([^\s%\"'<>]+)\s+(?:\"([^\"]*)\"|'([^']*)')\s*>")
_XML_ENTITY_REF = re.compile(rb"&([^\s;&<>#]+);")
_XML_PREDEFINED = frozenset({b"amp", b"lt", b"gt", b"quot", b"apos"})
_MAX_ENTITY_TEXT = 4 << 20


def xml_plain(data: bytes) -> bytes:
    """XML with what a parser resolves made plain for the tag patterns (round 13): CDATA
    sections as escaped text, comments and processing instructions dropped (a run's text
    split by one is one text), internal entities of the DOCTYPE expanded (bounded: a
    billion-laughs DOCTYPE is expanded up to 4 MB, as far as a text is concerned)."""
    if b"<!" not in data and b"<?" not in data:
        return data
    entities: dict[bytes, bytes] = {}
    at = data.find(b"<!DOCTYPE")  # (the first only, as a parser reads it: a search tried
    doctype = _XML_DOCTYPE.match(data, at) if at >= 0 else None  # each of many: quadratic)
    if doctype is not None:
        for m in _XML_ENTITY.finditer(doctype.group(1) or b""):
            entities.setdefault(m.group(1), m.group(2) if m.group(2) is not None else m.group(3))
        data = data[: doctype.start()] + data[doctype.end() :]
    data = _XML_CDATA.sub(lambda m: m.group(1).replace(b"&", b"&amp;").replace(
        b"<", b"&lt;").replace(b">", b"&gt;"), data)
    data = _XML_SKIPPED.sub(b"", data)
    if entities:
        budget = [_MAX_ENTITY_TEXT]

        def expand(m: re.Match[bytes], depth: int = 0) -> bytes:
            value = entities.get(m.group(1))
            if value is None or m.group(1) in _XML_PREDEFINED or budget[0] <= 0 or depth > 8:
                return m.group()
            if b"&" in value:
                value = _XML_ENTITY_REF.sub(lambda n: expand(n, depth + 1), value)
            budget[0] -= len(value)
            return value

        data = _XML_ENTITY_REF.sub(expand, data)
    return data


_XML_TEXT_NODE = re.compile(rb">\s*[^<\s]")


def xml_string_value(data: bytes) -> bytes | None:
    """The string value of an XML document, all its text in document order, as `xmllint
    --noent --xpath 'string(/*)'` gives it (round 16: base64 in internal entities defined in
    shuffled order, or cut by CDATA sections and processing instructions): `xml_plain`, then
    the parsed document's text (the tag pattern's when it does not parse). None when there
    is no text."""
    if len(data) > _MAX_XML:
        return None
    plain = xml_plain(data)
    if _XML_TEXT_NODE.search(plain) is None:  # attributes only (a numbering or style part)
        return None
    root = parsed_xml(plain)
    if root is not None:
        text = "".join(root.itertext()).encode("utf-8", "replace")
    else:  # not well-formed (an undefined entity...): the text between tags
        text = _TAG.sub(b"", plain)
        text = _unescape(text) if b"&" in text else text
    return text if text.strip() else None


def parsed_xml(data: bytes) -> Any:
    """The root element of `data` parsed by defusedxml (no DTD entities: `xml_plain` has
    expanded the internal ones, bounded), or None when it is not XML or over `MAX_XML`."""
    import defusedxml.ElementTree as SafeET  # type: ignore[import-untyped]

    if len(data) > _MAX_XML:
        return None
    try:
        return SafeET.fromstring(data)
    except Exception:  # not XML (no reader shows it)
        return None


def _odf_text(body: bytes) -> bytes | None:
    """The text of an OpenDocument body (`content.xml` of .odt/.ods/.odp), a line per
    paragraph, as `pandoc -t plain` or a reader shows it (round 10)."""
    text = _ODF_BREAK.sub(b"\n", body.replace(b"\r", b"").replace(b"\n", b""))
    text = _TAG.sub(b"", _ODF_SPACE.sub(b" ", _ODF_TAB.sub(b"\t", text)))
    if not text.strip():
        return None
    return _unescape(text) if b"&" in text else text


def office_xml_text(data: bytes) -> bytes | None:
    """The text of a Word, PowerPoint or Excel XML part as `docx2txt` gives it: runs joined,
    a line per paragraph (base64 a line per paragraph of a .docx read as one XML line, round
    9), or of an OpenDocument body; None for other XML."""
    readings = office_xml_readings(data)
    return readings[0] if readings else None


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_W_STRICT = "{http://purl.oclc.org/ooxml/wordprocessingml/main}"
_DRAWING = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_MC = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"
_ODF_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
_ODF_OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
_ODF_SVG = "{urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0}"
#: Elements whose text a reader does not see, by namespace and local name (round 15: the
#: prefix is the writer's choice, `<q:del xmlns:q="...wordprocessingml...">` is a deletion).
_UNSEEN = frozenset(
    [w + n for w in (_W, _W_STRICT) for n in (
        "del", "moveFrom", "rPr", "pPr", "sdtPr", "rPrChange", "pPrChange", "sectPrChange",
        "tblPr", "trPr", "tcPr", "rt", "instrText", "customXmlPr", "fldData", "delText",
        "docPartObj", "placeholder", "comment", "commentReference", "sdtEndPr")]
    + [_ODF_TEXT + n for n in (
        "hidden-text", "hidden-paragraph", "ruby-text", "tracked-changes", "placeholder",
        "conditional-text", "user-defined", "variable-decls", "sequence-decls",
        "user-field-decls", "sequence-ref", "bookmark-ref", "reference-ref")]
    + [_ODF_OFFICE + n for n in ("annotation", "annotation-end")]
    + [_ODF_SVG + n for n in ("desc", "title")])
_HIDDEN_RUN = frozenset(w + n for w in (_W, _W_STRICT) for n in ("vanish", "specVanish",
                                                                 "webHidden"))
_MAX_XML = 16 << 20
#: Largest XML part parsed for a reading (a bigger one is read by the tag patterns only).
MAX_XML = _MAX_XML


def _parsed_office_texts(data: bytes) -> tuple[list[bytes], bool]:
    """A Word or OpenDocument part's text as its reader shows it, through a real XML parser
    (round 15): elements known by namespace and local name whatever their prefix; what a
    reader does not show (`_UNSEEN`, runs with a hidden property, anything with
    `text:display="none"`, conditional sections) left out; one text per branch of the
    `mc:AlternateContent` elements. Empty, and False, when the part does not parse."""
    root = parsed_xml(data)
    if root is None:  # not XML (no reader shows it; `office_xml_text` still reads it)
        return [], False
    out = []
    # OpenDocument notes are inline (`<text:note>`): a reader shows the citation in the text
    # and the body elsewhere, and LibreOffice's text export leaves the bodies out (round 16:
    # junk in note bodies with a blank citation cut the running text's base64).
    notes = (True, False) if root.find(".//" + _ODF_TEXT + "note-body") is not None else (True,)
    for branch in ("Choice", "Fallback"):
        for with_notes in notes:
            text = _shown_text(root, branch, notes=with_notes)
            if text.strip() and text not in out:
                out.append(text)
    for valued in _odf_fields_by_value(root):
        text = _shown_text(valued, "Choice")
        if text.strip() and text not in out:
            out.append(text)
    if root.find(".//" + _ODF_OFFICE + "spreadsheet") is not None:
        from zerohour.scan.spreadsheet import ods_computed, ods_visible

        computed = ods_computed(root)  # (formulas with no value: round 19)
        visible = ods_visible(root if computed is None else computed)  # (round 20)
        shown = [] if visible is None else [_shown_text(visible, "Choice")]  # (all sheets)
        for text in _each_table(computed) + _each_table(visible) + shown:
            if text.strip() and text not in out:
                out.append(text)
    if root.tag == _ODF_OFFICE + "document":  # a flat file: its styles applied (round 19)
        from zerohour.scan import officepkg

        styled = officepkg.flat_odf_reading(root, data)
        if styled and styled.encode("utf-8", "replace") not in out:
            out.append(styled.encode("utf-8", "replace"))
        laid = officepkg.flat_odf_laid_out(root, data)  # (round 20)
        if laid and laid.encode("utf-8", "replace") not in out:
            out.append(laid.encode("utf-8", "replace"))
    return out, True


def _each_table(root: Any) -> list[bytes]:
    """The shown text of each sheet of an OpenDocument spreadsheet body on its own (the
    others taken out for the while): a base64 block the finders read is not run on into
    the next sheet's cells."""
    if root is None:
        return []
    out = []
    for book in root.iter(_ODF_OFFICE + "spreadsheet"):
        tables = [(i, el) for i, el in enumerate(book) if el.tag == _ODF_TABLE + "table"]
        for _, table in tables:
            book.remove(table)
        for i, table in tables[:256]:
            book.insert(i, table)
            out.append(_shown_text(root, "Choice"))
            book.remove(table)
        for i, table in tables:  # (in order: each back at its index)
            book.insert(i, table)
    return out


_ODF_OFFICE_NS = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
#: OpenDocument fields LibreOffice computes when it loads a document, showing a value from
#: an attribute or a declaration rather than the text the writer left inside (round 18).
_ODF_FIELDS = frozenset(_ODF_TEXT + n for n in (
    "hidden-text", "conditional-text", "user-field-get", "variable-get", "variable-set",
    "user-field-input"))


def _odf_fields_by_value(root: Any) -> list[Any]:
    """Copies of an OpenDocument body with its computed fields shown by value, as LibreOffice
    shows them (round 18: base64 pieces in the values, decoys in the cached texts): a hidden
    text its `string-value` (shown when its condition is false, which is not evaluated here),
    a conditional text its value if true (one copy) and if false (the other), a user field
    or variable its declared (last set) value. Empty when the body has no such field."""
    fields = [el for el in root.iter() if el.tag in _ODF_FIELDS]
    if not fields:
        return []
    name_attr = _ODF_TEXT + "name"
    values: dict[str, str] = {}
    for decl in root.iter():
        if decl.tag in (_ODF_TEXT + "user-field-decl", _ODF_TEXT + "variable-set",
                        _ODF_TEXT + "variable-decl"):
            value = _odf_value(decl)
            if value is not None:
                values[decl.get(name_attr, "")] = value
    out = []
    for truth in ("true", "false"):
        copy = copy_module.deepcopy(root)
        for el in copy.iter():
            if el.tag not in _ODF_FIELDS:
                continue
            local = el.tag.rsplit("}", 1)[-1]
            if local == "hidden-text":
                shown = el.get(_ODF_TEXT + "string-value")
            elif local == "conditional-text":
                shown = el.get(_ODF_TEXT + f"string-value-if-{truth}")
            elif local == "variable-set":
                shown = _odf_value(el)
            else:
                shown = values.get(el.get(name_attr, ""))
            if shown is None:
                continue
            for child in list(el):
                el.remove(child)
            el.tag, el.text = _ODF_TEXT + "span", shown
        out.append(copy)
    return out


def _odf_value(el: Any) -> str | None:
    """A declaration's or variable's value: its string value, else its number as written."""
    for attr in ("string-value", "value", "date-value", "boolean-value", "time-value"):
        value = el.get(_ODF_OFFICE_NS + attr)
        if value is not None:
            return str(value)
    return el.text if el.text else None


def _shown_text(root: object, branch: str, *, notes: bool = True,
                labels: dict[int, str] | None = None,
                refs: list[tuple[str, str]] | None = None,
                styled: dict[int, str] | None = None) -> bytes:
    """The text of `root` as a reader shows it (see `_parsed_office_texts`); `notes`: with
    the bodies of OpenDocument's inline notes; `labels`: text shown before a paragraph (a
    Word list label, by the paragraph element's `id`); `refs`: collects the Word footnote
    and endnote references met, in order (`officepkg` shows their notes); `styled`: how
    the document's styles show an element, by its `id` (`STYLE_CAPS`, `STYLE_LOWER`,
    `STYLE_HIDDEN`, `STYLE_PLAIN`; `officepkg` resolves them), in place of its direct
    formatting. The innermost element that sets a case shows its text so (a span styled
    as written, or lower-case, in an upper-case paragraph)."""
    pieces: list[str] = []
    kept = 0  # how many elements that set a case the walk is in (its text's `_Kept` level)
    stack: list[tuple[object, bool]] = [(root, False)]
    display = _ODF_TEXT + "display"
    condition = _ODF_TEXT + "condition"
    repeated: dict[int, tuple[int, int]] = {}  # id of a repeated cell/row -> (start, times)
    room = MAX_REPEATED_TEXT
    capitals = _capital_styles(root)
    cased: set[int] = set()  # ids of the elements that set a case, open
    capped: dict[int, tuple[int, int, str]] = {}  # id of an element shown in capitals (or
    # lower case) -> its text's start, its level, `STYLE_CAPS` or `STYLE_LOWER`
    while stack:
        el, closing = stack.pop()
        if isinstance(el, _Tail):
            pieces.append(_Kept(el.text, el.kept) if el.kept else el.text)
            continue
        tag = getattr(el, "tag", "")
        if closing:
            if tag in (_W + "p", _W_STRICT + "p", _ODF_TEXT + "p", _ODF_TEXT + "h",
                       _DRAWING + "p"):
                pieces.append("\n")
            if cased and id(el) in cased:
                cased.discard(id(el))
                kept -= 1
            if capped and id(el) in capped:
                start, level, case = capped.pop(id(el))
                pieces[start:] = [_cased(piece, level, case) for piece in pieces[start:]]
            elif repeated and id(el) in repeated:
                start, times = repeated.pop(id(el))
                seg = "".join(pieces[start:]) if room > 0 else ""
                if seg:
                    times = min(times - 1, room // len(seg))
                    room -= len(seg) * times
                    pieces.append(seg * times)
            continue
        if not isinstance(tag, str):
            continue
        attrs = getattr(el, "attrib", {})
        if (tag in _UNSEEN or attrs.get(display) == "none"
                or (tag == _ODF_TEXT + "section" and condition in attrs)
                or (not notes and tag == _ODF_TEXT + "note-body")):
            continue
        local = tag.rsplit("}", 1)[-1]
        if tag.startswith(_MC) and local in ("Choice", "Fallback") and local != branch:
            continue
        if tag in _ODF_REPEATED:  # one element for equal neighbours (round 16)
            times = repeat_count(attrs.get(_ODF_REPEATED[tag], ""), _ODF_MAX_REPEAT[tag])
            if times > 1:
                repeated[id(el)] = (len(pieces), times)
        style = styled.get(id(el)) if styled else None
        if style is None and local == "r" and tag in (_W + "r", _W_STRICT + "r"):
            style = word_run_mode(el)
            style = None if style == STYLE_PLAIN else style  # (nothing kept: no nesting)
        if style == STYLE_HIDDEN:
            continue
        if style is None and capitals and attrs.get(_ODF_TEXT + "style-name") in capitals:
            style = STYLE_CAPS
        if style is not None:  # (a reader shows its text in capitals, lower case, as written)
            kept += 1
            cased.add(id(el))
            if style != STYLE_PLAIN:
                capped[id(el)] = (len(pieces), kept, style)
        mark = len(pieces)
        text = getattr(el, "text", None)
        if tag in (_W + "t", _W_STRICT + "t", _DRAWING + "t"):
            pieces.append(text or "")
        elif tag.startswith(_ODF_TEXT):
            if local == "s":
                pieces.append(" ")
            elif local == "tab":
                pieces.append("\t")
            elif local == "line-break":
                pieces.append("\n")
            elif text:
                pieces.append(text)
        elif local in ("tab",) and tag.startswith((_W, _W_STRICT)):
            pieces.append("\t")
        elif local in ("br", "cr") and tag.startswith((_W, _W_STRICT)):
            pieces.append("\n")
        elif local == "sym" and tag in (_W + "sym", _W_STRICT + "sym"):
            pieces.append(_sym_char(attrs.get(tag[: -len(local)] + "char", "")))
        elif local == "p" and labels and tag in (_W + "p", _W_STRICT + "p"):
            pieces.append(labels.get(id(el), ""))
        elif refs is not None and local in ("footnoteReference", "endnoteReference") and (
                tag.startswith((_W, _W_STRICT))):
            refs.append((local[:-9], attrs.get(tag[: -len(local)] + "id", "")))
        if kept:
            pieces[mark:] = [_Kept(piece, kept) for piece in pieces[mark:]]
        stack.append((el, True))
        children = list(el)  # type: ignore[call-overload]
        for child in reversed(children):
            tail = getattr(child, "tail", None)
            if tail and tag.startswith(_ODF_TEXT):
                stack.append((_Tail(tail, kept), False))
            stack.append((child, False))
    return "".join(pieces).encode("utf-8", "replace")


_ODF_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
#: OpenDocument table elements standing for several equal neighbours, by their count
#: attribute; the counts are capped at a sheet's size (16384 columns, 1048576 rows) and the
#: repeated text at `MAX_REPEATED_TEXT` characters a reading (the sender writes the counts).
_ODF_REPEATED = {_ODF_TABLE + "table-cell": _ODF_TABLE + "number-columns-repeated",
                 _ODF_TABLE + "covered-table-cell": _ODF_TABLE + "number-columns-repeated",
                 _ODF_TABLE + "table-row": _ODF_TABLE + "number-rows-repeated"}
_ODF_MAX_REPEAT = {_ODF_TABLE + "table-cell": 16384, _ODF_TABLE + "covered-table-cell": 16384,
                   _ODF_TABLE + "table-row": 1 << 20}
MAX_REPEATED_TEXT = 16 << 20


def repeat_count(value: str, cap: int) -> int:
    """A repeat count attribute's value as LibreOffice reads it (round 5: "2.0", "+2", "2e0"
    and "2 x" are 2 to it, and a collapsed column repeated so hid decoys): an optional `+`
    and the ASCII digits that lead; 1 without any, at most `cap`."""
    m = _LEADING_COUNT.match(value)
    if m is None:
        return 1
    digits = m.group(1)
    return max(1, min(int(digits[:12]) if len(digits) <= 12 else cap, cap))


_LEADING_COUNT = re.compile(r"\s*\+?([0-9]+)")


_ODF_STYLE = "{urn:oasis:names:tc:opendocument:xmlns:style:1.0}"
_ODF_FO = "{urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0}"
_OFF = frozenset({"0", "false", "off"})


_CAPS_RUN = frozenset(w + n for w in (_W, _W_STRICT) for n in ("caps", "smallCaps"))


def word_run_mode(run: object) -> str:
    """How a Word run's direct formatting shows it: hidden (`w:vanish` and the like), in
    capitals (`<w:caps/>`, round 18: base64's capitals written lower-case in such runs; or
    `<w:smallCaps/>`, printed as smaller capitals, round 19), or as written; each property
    turned off by its `w:val` (`<w:vanish w:val="0"/>` shows the run, round 19)."""
    caps = hidden = False
    for props in run:  # type: ignore[attr-defined]
        if getattr(props, "tag", "").endswith("}rPr"):
            for p in props:
                tag = getattr(p, "tag", "")
                if tag in _HIDDEN_RUN or tag in _CAPS_RUN:
                    name = tag.rsplit("}", 1)[0] + "}val"
                    on = p.attrib.get(name, "true").strip().lower() not in _OFF
                    hidden = hidden or (on and tag in _HIDDEN_RUN)
                    caps = caps or (on and tag in _CAPS_RUN)
            break
    return STYLE_HIDDEN if hidden else STYLE_CAPS if caps else STYLE_PLAIN


def _capital_styles(root: object) -> frozenset[str]:
    """The OpenDocument styles (in this part: its automatic styles) that show text in
    capitals (`fo:text-transform="uppercase"`)."""
    out = set()
    for props in root.iter(_ODF_STYLE + "text-properties"):  # type: ignore[attr-defined]
        if props.attrib.get(_ODF_FO + "text-transform") == "uppercase":
            out.add(props)
    if not out:
        return frozenset()
    return frozenset(
        style.attrib.get(_ODF_STYLE + "name", "")
        for style in root.iter(_ODF_STYLE + "style")  # type: ignore[attr-defined]
        if any(child in out for child in style))


#: How a document's styles show an element (`_shown_text`'s `styled`).
STYLE_CAPS, STYLE_LOWER, STYLE_HIDDEN, STYLE_PLAIN = "caps", "lower", "hidden", "plain"


def _cased(piece: str, level: int, case: str) -> str:
    """`piece` in `case`, unless an element inside the one at `level` set its case."""
    if isinstance(piece, _Kept):
        if piece.level > level:
            return piece
        return _Kept(piece.upper() if case == STYLE_CAPS else piece.lower(), piece.level)
    return piece.upper() if case == STYLE_CAPS else piece.lower()


def shown_text(root: object, *, labels: dict[int, str] | None = None,
               refs: list[tuple[str, str]] | None = None,
               styled: dict[int, str] | None = None) -> bytes:
    """The text of a parsed element as a reader shows it (`_shown_text`, the
    `mc:Choice` branch), for readings of several parts (`officepkg`, `spreadsheet`)."""
    return _shown_text(root, "Choice", labels=labels, refs=refs, styled=styled)


def _sym_char(code: str) -> str:
    """The character a Word `<w:sym w:char="...">` shows (round 16: a document of nothing
    but symbols is text to LibreOffice): hex, a symbol font's `F0xx` as the byte `xx`."""
    try:
        n = int(code[:6], 16)
    except ValueError:
        return ""
    if 0xF000 <= n <= 0xF0FF:
        n -= 0xF000
    return chr(n) if 0 < n < 0x110000 and not 0xD800 <= n < 0xE000 else ""


class _Tail:
    """The text after an element, inside its parent (a stand-in in `_shown_text`'s walk)."""

    tag = "#tail"

    def __init__(self, text: str, kept: int = 0) -> None:
        self.text = text
        self.kept = kept


class _Kept(str):
    """Text inside elements that set its case; `level`: how many (an element's case applies
    to the text at its level, not to that of the elements inside it that set one: a span
    styled `fo:text-transform="none"` in an upper-case paragraph stays as written)."""

    level: int

    def __new__(cls, text: str, level: int) -> _Kept:
        out = super().__new__(cls, text)
        out.level = level
        return out


def office_xml_readings(data: bytes) -> list[bytes]:
    """`office_xml_text`, then, where they differ, the text as a reader shows it
    (`_parsed_office_texts`: rounds 14 and 15), both of the part as an XML parser resolves
    it (`xml_plain`: CDATA, comments, the DOCTYPE's entities)."""
    return office_xml_parts(data)[0]


#: The namespaces of Office Open XML and OpenDocument parts, and the format each names.
OFFICE_NAMESPACE = re.compile(
    rb"(schemas\.openxmlformats\.org/(?:wordprocessingml|presentationml|spreadsheetml|"
    rb"drawingml)|purl\.oclc\.org/ooxml/)|(urn:oasis:names:tc:opendocument:xmlns:office)")


def office_xml_parts(data: bytes) -> tuple[list[bytes], str | None]:
    """`office_xml_readings`, and the format (`OOXML`, `ODF`) of a part that names an
    Office namespace, holds text for the readings and does not parse as XML (misc18: an
    undefined or external entity, a DTD defusedxml refuses, damaged markup): the reading
    as a reader shows it is then missing, so the part is damaged (fail closed), not read
    by the tag patterns alone. None for a part that parses, is no Office part or is over
    `MAX_XML` (read by the tag patterns)."""
    if b"office:body" not in data and b"t>" not in data and b"sym" not in data:
        return [], None
    data = xml_plain(data)
    out: list[bytes] = []
    text = _office_text(data)
    if text is not None:
        out.append(text)
    shown_texts, parsed = _parsed_office_texts(data)
    for shown in shown_texts:
        if shown not in out:
            out.append(shown)
    broken = None
    if not parsed and len(data) <= _MAX_XML:
        kind = OFFICE_NAMESPACE.search(data)
        if kind is not None:
            broken = "OOXML" if kind.group(1) else "ODF"
    return out, broken


def _office_text(data: bytes) -> bytes | None:
    body = data.find(b"<office:body")
    if body >= 0:
        return _odf_text(data[body:])
    out: list[bytes] = []
    for m in _OFFICE_TOKEN.finditer(data):
        if m.group(2) is not None or m.group(3) is not None:
            out.append(m.group(2) if m.group(2) is not None else m.group(3))
        elif m.group().startswith(b"</"):
            out.append(b"\n")
        else:
            out.append(b"\t" if b"tab" in m.group() else b"\n")
    text = b"".join(out)
    if not text.strip():
        return None
    return _unescape(text) if b"&" in text else text


_SRCDOC = re.compile(rb"srcdoc\s*=\s*(?:\"([^\"]*)\"|'([^']*)')", re.I)


def srcdoc_pages(data: bytes) -> list[bytes]:
    """The pages iframes carry in `srcdoc` (character references decoded once, as the
    parser does): documents of their own, whose links and scripts work like the page's."""
    if b"srcdoc" not in data.lower():
        return []
    pages = (_unescape(m.group(1) or m.group(2) or b"") for m in _SRCDOC.finditer(data))
    return list(dict.fromkeys(pages))  # each page once


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)
_ASCII_UTF16LE = re.compile(rb"(?:[\t\n\r -~]\x00){32}")
_ASCII_UTF16BE = re.compile(rb"(?:\x00[\t\n\r -~]){32}")


def unicode_text(data: bytes) -> bytes | None:
    """UTF-16 / UTF-32 text (a byte-order mark, or 32 ASCII characters of UTF-16 without one
    at the start) as UTF-8; None for anything else. See also `utf16_behind_utf32_bom`."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data.decode(codec, "replace").encode("utf-8", "replace")
    if _ASCII_UTF16LE.match(data):
        return data.decode("utf-16-le", "replace").encode("utf-8", "replace")
    if _ASCII_UTF16BE.match(data):
        return data.decode("utf-16-be", "replace").encode("utf-8", "replace")
    return None


def utf16_behind_utf32_bom(data: bytes) -> bytes | None:
    """`FF FE 00 00` opens UTF-32LE, or UTF-16LE whose first character is U+0000: browsers
    know no UTF-32 and read the second (HTML behind NUL characters still runs), so that
    reading is given too; None for other data."""
    if data.startswith(codecs.BOM_UTF32_LE):
        return data.decode("utf-16", "replace").encode("utf-8", "replace")
    return None


#: An ISO-2022-JP escape sequence (ASCII, JIS Roman, katakana, JIS X 0208; JIS X 0212 as
#: Python's "_ext" codec reads it): the state changes a decoder makes and drops.
_ISO2022_ESCAPE = re.compile(rb"\x1b(?:\([BJI]|\$[@B]|\$\(D)")


def iso2022_text(data: bytes) -> bytes | None:
    """ISO-2022-JP text as UTF-8, when it holds an escape sequence; None for other data.

    The one stateful encoding browsers still decode (declared by `<meta charset>` or guessed):
    its escape sequences are dropped, so `<scr ESC(B ipt>` is `<script>` and a base64 blob cut
    by them is whole again. Japanese mail is often in it, too."""
    if b"\x1b" not in data or _ISO2022_ESCAPE.search(data) is None:
        return None
    text = data.decode("iso2022_jp_ext", "replace").encode("utf-8", "replace")
    return text if text != data else None


#: What the text views below look for, found in one pass: a `<meta>` charset, fullwidth
#: forms, an ISO-2022 escape, UTF-7's "<" or ">".
_VIEW_NEEDLES = {b"charset": "charset", b"CHARSET": "charset", b"Charset": "charset",
                 b"<?xml": "charset",
                 b"\x1b(": "iso-2022",
                 b"\x1b$": "iso-2022", b"+AD": "utf-7"}
_VIEW_HINTS = Literals(tuple(_VIEW_NEEDLES))
_VIEW_NAMES = tuple(_VIEW_NEEDLES.values())


#: Compatibility forms of letters and digits: fullwidth, small forms, mathematical
#: alphanumerics, enclosed (circled) ones, superscripts and subscripts, the division slash.
_LOOKALIKE = Gate(rb"\xef[\xb9\xbc\xbd]|\xf0\x9d|\xe2[\x91-\x93]|\xe2\x81[\xb0-\xbf]"
                  rb"|\xe2\x82[\x80-\x9f]|\xe2\x88\x95")


def view_hints(data: bytes) -> set[str]:
    """Which of the views (`meta_charset`, `nfkc_text`, `iso2022_text`, `utf7_text`) may
    apply to `data`: a hyperscan pass or two instead of a search each."""
    hints = {_VIEW_NAMES[i] for i in _VIEW_HINTS.present(data)}
    if not data.isascii():
        if _LOOKALIKE(data):
            hints.add("fullwidth")
        if _BIDI_CONTROL(data):
            hints.add("bidi")
    return hints


#: Bidi controls (`bidi.CONTROLS`): the text may show in another order than written.
_BIDI_CONTROL = Gate(rb"\xe2\x80[\xaa-\xae]|\xe2\x81[\xa6-\xa9]")


#: Look-alikes NFKC leaves alone that `iconv //TRANSLIT` maps to ASCII.
_TRANSLIT = str.maketrans({"\u2215": "/", "\u2044": "/", "\u2212": "-", "\u2010": "-"})


def nfkc_text(data: bytes) -> bytes | None:
    """UTF-8 text with compatibility forms in NFKC (fullwidth `ＴＶｑＱ`, mathematical
    `𝐓𝐕𝐪`, circled `ⓉⓋ`, superscripts, small forms `﹢﹦`) and a few more look-alikes
    (`∕`) as ASCII, as `iconv //TRANSLIT` or `uconv -x Any-NFKC` give them; None for text
    without them (`view_hints` gates the call)."""
    try:
        text = unicodedata.normalize("NFKC", data.decode("utf-8")).translate(_TRANSLIT)
    except UnicodeError:
        return None  # not UTF-8 text: no reader shows it as those letters
    out = text.encode("utf-8")
    return out if out != data else None


_META = re.compile(rb"<meta\b([^>]*)>", re.I)
#: Where a browser's tokenizer reads no tag: comments, and the text of a title, a text
#: field, a script, a sheet.
_NO_META = re.compile(rb"<!--.*?(?:-->|\Z)|<(title|textarea|script|style|xmp)\b[^>]*>.*?"
                      rb"(?:</\1\s*>|\Z)", re.I | re.S)
_CHARSET_IN = re.compile(rb"charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.I)
_XML_ENCODING = re.compile(rb"<\?xml[^>]*?\sencoding\s*=\s*[\"']([A-Za-z0-9_.:-]+)", re.I)


def meta_charset(data: bytes) -> str | None:
    """The charset a page declares as a browser reads it (a browser decodes it so, whatever
    the mail said): a `<meta charset>`, a `<meta http-equiv=content-type content="...;
    charset=...">` (not "charset=" in another meta's content), or an XML declaration's
    encoding (an .xhtml or .svg file); None when there is none."""
    if not any(w in data for w in (b"charset", b"CHARSET", b"Charset", b"encoding")):
        return None
    # (not a `<meta>` in a comment or in a title's text: attack round 41's decoys)
    tags = _NO_META.sub(b"", data) if b"<!--" in data or b"</" in data else data
    for m in _META.finditer(tags):
        have = {a.group(1).lower(): (a.group(2) or a.group(3) or a.group(4) or b"")
                for a in _ATTRS.finditer(m.group(1))}
        if have.get(b"charset"):
            return have[b"charset"].strip().decode("latin-1")
        if have.get(b"http-equiv", b"").lower() == b"content-type":
            c = _CHARSET_IN.search(have.get(b"content", b""))
            if c is not None:
                return c.group(1).decode("ascii")
    x = _XML_ENCODING.search(data, 0, 4096)
    return x.group(1).decode("ascii") if x is not None else None


def declare_utf8(text: bytes, name: str) -> bytes:
    """`text` (decoded from charset `name`) with its `<meta>` and XML declarations of `name`
    saying utf-8, as the bytes now are."""
    pattern = re.compile(rb"((?:charset|encoding)\s*=\s*[\"']?\s*)" + re.escape(name.encode())
                         + rb"(?![\w.:-])", re.I)
    return pattern.sub(rb"\1utf-8", text)


#: UTF-7's "<" or ">" (`+ADw-`, `+AD4-`, or a run starting with one: `+ADwAcwBj...`).
_UTF7_ANGLE = re.compile(rb"\+AD[w4]")


def utf7_text(data: bytes) -> bytes | None:
    """UTF-7 text as UTF-8, when it writes "<" or ">" the UTF-7 way; None for other data.

    mshta and the MSHTML engine (an attached `.hta`) still honour `<meta charset="utf-7">`,
    so `+ADw-script+AD4-` is a script tag to them."""
    if _UTF7_ANGLE.search(data) is None:
        return None
    text = data.decode("utf-7", "replace").encode("utf-8", "replace")
    return text if text != data else None


# --- iCalendar / vCard inline binaries ---------------------------------------------------------

_VOBJECT = Gate(rb"BEGIN:V(?:CALENDAR|CARD)")
_FOLD = re.compile(rb"\r?\n[ \t]")
# ATTACH;FMTTYPE=...;ENCODING=BASE64;VALUE=BINARY:<base64> (iCalendar), PHOTO;ENCODING=b:...
# (vCard 3): a property with a base64 encoding parameter; its value follows the first ":".
_ENCODING_B64 = re.compile(rb";ENCODING=(?:BASE64|B)\b", re.I)


def inline_binaries(data: bytes) -> list[bytes]:
    """Base64-encoded property values of iCalendar and vCard text (an invitation's inline
    attachment, which Outlook offers as a file), decoded; [] for other text."""
    if not _VOBJECT(data):
        return []
    text = _FOLD.sub(b"", data)
    out: list[bytes] = []
    pos = 0
    while (m := _ENCODING_B64.search(text, pos)) is not None:
        # One value per line, whatever its parameters repeat (each line is read once).
        eol = text.find(b"\n", m.end())
        eol = len(text) if eol < 0 else eol
        colon = text.find(b":", m.end(), eol)
        if colon >= 0 and (decoded := base64_decode(text[colon + 1 : eol])):
            out.append(decoded)
        pos = eol
    return out
