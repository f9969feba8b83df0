"""SVG text as a renderer draws it: `<use>` copies and positions.

An SVG image shows the text of its `<text>` elements, each where its `x`/`y` (and the
transforms around it) put it, and the copies `<use href="#id">` makes of an element defined
elsewhere (in `<defs>`, a `<symbol>`, or drawn already). What a recipient copies out of
`rsvg-convert` (then `pdftotext`) or a browser is that text in reading order, not the
document's: round 16 drew base64 chunks defined shuffled in `<defs>` in order by `<use>`,
and placed `<text>` chunks stored shuffled in order by their x/y. Two readings, each a text
layer of its own:

- drawn order: the `<text>` elements (and `<use>` copies) in the order they are drawn;
- laid out: the same runs top to bottom (by y, lines grouped), each line left to right.

Both only of what is painted (round 20: base64 pieces between decoys no renderer paints), as
read by each renderer the image's conditions tell apart (librsvg or Chromium, the reader's
language: a `<switch>` draws one child); and when that leaves any text out, both of every
text too, as before, lest a misjudged paint drop the payload.

One linear pass over the markup builds the element tree (its nesting bounded as libxml2
bounds it); drawing follows `<use>` references with cycles skipped, their nesting bounded, and
every copy charged against a budget (a chain of `<use>`s of `<use>`s multiplies): past it,
the scan's limit is raised, as for the style rules of a page.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from zerohour.errors import ScanLimitExceeded
from zerohour.scan.encodings import base64_decode
from zerohour.scan.limits import MAX_RECURSION, MAX_SCAN_TIME, ScanContext
from zerohour.scan.textual import _ELEMENT, SheetStyles, _Compound, _matches, tag_spans

#: elements nested deeper are a limit finding (libxml2, which librsvg parses with, refuses a
#: document nested deeper than 256 by default; round 35: pieces placed by transforms 300
#: down were read unmoved, in the wrong order, and Chromium nests an inline image to 512)
_MAX_DEPTH = 256
_TOO_DEEP_NESTING = f"SVG elements nested more than {_MAX_DEPTH} deep"
#: `<use>` of a `<use>` of ... (markers too): deeper is a limit finding (librsvg draws a chain
#: of 40; a piece drawn through 16 went unread while the decoys between the pieces in
#: `<defs>` were read, clean). Each step copies the chain: the bound keeps that small.
_MAX_USE_DEPTH = 64
_TOO_DEEP = f"<use> of <use> more than {_MAX_USE_DEPTH} deep"
#: references followed: librsvg's own limit (MAX_REFERENCED_ELEMENTS; past it, it draws
#: nothing), against `<use>`s of `<use>`s ten times over (its issues 323 and 515)
_MAX_REFERENCES = 500_000
_MAX_DRAWN = 1_000_000  # elements drawn, copies included
_TOO_MANY_COPIES = "more SVG elements drawn through <use> than an image needs"
_CHECK_EVERY = 4096

_SVG_START = re.compile(rb"<(?:[\w.-]+:)?svg[\s>/]", re.I)
_TEXT_TAG = re.compile(rb"<(?:[\w.-]+:)?(?:text|image)[\s>/]", re.I)  # (an image: SVG text)
_TAG_NAME = re.compile(rb"<(/?)([A-Za-z_][\w:.-]*)")
_ID = re.compile(rb"""(?:^|\s)id\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+))""")
_ATTR = re.compile(rb"""(?<![^\s=/>"'])([^\s=/>"']++)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+))""")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_TRANSFORM = re.compile(r"(matrix|translate[xy]?|scale|rotate|skewX|skewY)\s*\(([^()]*+)\)", re.I)
_STYLE_PROP = re.compile(r"(?:^|;)\s*(display|visibility|font-size|direction|unicode-bidi|"
                         r"transform|marker-start|marker-mid|marker-end|marker|stroke-width|"
                         r"text-anchor|fill|fill-opacity|stroke|stroke-opacity|opacity|"
                         r"clip-path|mask|overflow|width|height)\s*:\s*"
                         r"([^;]*)", re.I)
_SPACE = re.compile(r"\s+")

#: Elements whose content is not drawn where it stands (only through a reference, if at all).
_NOT_DRAWN = frozenset({
    "defs", "symbol", "clippath", "mask", "pattern", "marker", "lineargradient",
    "radialgradient", "filter", "title", "desc", "metadata", "style", "script"})
#: Shapes that draw markers at their vertices.
_MARKABLE = frozenset({"path", "line", "polyline", "polygon"})
#: Vertices of one shape that draw a `marker-mid` (librsvg draws one at each; past it, our
#: budget would): more is a limit finding. Start and end markers are read at the shape's real
#: first and last vertices however many there are (round 36: a path's 150,000th vertex was
#: read as its end, the end marker's piece drawn elsewhere, clean).
_MAX_VERTICES = 100_000
_TOO_MANY_VERTICES = f"an SVG shape drawing markers at more than {_MAX_VERTICES} vertices"
_URL_REF = re.compile(r"url\(\s*['\"]?\s*#([^'\")\s]+)", re.I)
_PATH_TOKEN = re.compile(r"([MmLlHhVvCcSsQqTtAaZz])|([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")
_PATH_ARGS = {"m": 2, "l": 2, "h": 1, "v": 1, "c": 6, "s": 4, "q": 4, "t": 2, "a": 7}
#: `<image href="data:image/svg+xml,...">` drawn inside an image drawn so, and so on; deeper
#: is a limit finding (at 4, silently: Chromium draws a piece in each of six images nested,
#: the sixth was left out). Each level is a data: URL inside the one above it (4/3 of it in
#: base64), so depth is few; copies are charged as references.
_MAX_IMAGE_DEPTH = 16
_TOO_DEEP_IMAGES = f"SVG images inside SVG images more than {_MAX_IMAGE_DEPTH} deep"
_DATA_URL = re.compile(r"\s*data:([^,]*),(.*)", re.I | re.S)
#: Elements holding text content.
_TEXT_CONTENT = frozenset({"tspan", "textpath", "a", "tref", "altglyph"})
_RAW_TEXT = (b"style", b"script")

_Matrix = tuple[float, float, float, float, float, float]
_IDENTITY: _Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


class _El:
    """An element: its tag (local name, lower case), its attributes (read when drawn), its
    children (elements and text)."""

    __slots__ = ("_attrs", "attribute_first", "cached_props", "kids", "raw", "runs", "sheet",
                 "tag")

    def __init__(self, tag: str, raw: bytes) -> None:
        self.tag = tag
        self.raw = raw
        self.kids: list[_El | str] = []
        self._attrs: dict[str, str] | None = None
        self.cached_props: _Props | None = None
        self.attribute_first = False  # (a `transform` attribute over the CSS property)
        #: a `<text>`'s runs in its own coordinates, by the font size it inherits
        self.runs: dict[tuple[float, _Paint | None], list[_Run]] | None = None
        #: what the image's style sheets declare for it (`_apply_sheets`): normal and
        #: !important declarations, weakest first (None: no rule matches it)
        self.sheet: tuple[str, str] | None = None

    @property
    def attrs(self) -> dict[str, str]:
        if self._attrs is None:
            self._attrs = _attrs(self.raw)
        return self._attrs

    @property
    def props(self) -> _Props:
        if self.cached_props is None:
            attrs = self.attrs
            # (the CSS property wins over the attribute, SVG 2 7.5, round 18 v057; librsvg
            # takes the attribute when both are written: `svg_readings` reads both ways)
            transform = (attrs.get("transform") if self.attribute_first
                         and "transform" in attrs else _style(self, "transform", lower=False))
            bidi = _style(self, "unicode-bidi")
            hidden = _style(self, "display") == "none"
            own = _declared(attrs.get("style"), "display", attrs.get("display"))
            self.cached_props = _Props(
                _transform(transform) if transform else None, _font_size(self), hidden,
                hidden and (own or "").strip().lower() == "none",
                _href(self) if self.tag == "use" else None,
                _first(attrs.get("x")), _first(attrs.get("y")), _style(self, "direction"),
                bidi is not None and "override" in bidi,
                _markers(self) if self.tag in _MARKABLE else (), _paint_of(self),
                _unpainted(self), _conditions(attrs))
        return self.cached_props


@dataclass(frozen=True, slots=True)
class _Props:
    """What drawing an element needs of its attributes, read once (copies share them)."""

    matrix: _Matrix | None  # its transform (None: none)
    size: float | None  # its font size (None: inherited)
    hidden: bool  # display:none (style sheets' rules included: what a reader's renderer does)
    #: display:none by its own attributes too, not only by a rule (the sheets' selectors are
    #: over-applied: the reading of every text leaves out only this)
    surely_hidden: bool
    href: str | None  # a `<use>`'s reference (the id)
    x: float
    y: float
    direction: str | None  # "rtl", "ltr" (None: inherited)
    override: bool  # unicode-bidi: bidi-override (or isolate-override)
    #: a shape's markers (round 17, w096): (the marker's id, vertex x, y, stroke width)
    markers: tuple[tuple[str, float, float, float], ...]
    paint: _PaintSet  # the painting properties it sets (inherited by what it holds)
    #: why it paints nothing whatever it holds ("" when it may): opacity 0, a zero-size
    #: viewport; the clip path or mask it names (checked when drawn), "" when none
    unpainted: tuple[str, str, str]
    #: its conditional processing attributes (systemLanguage, requiredFeatures,
    #: requiredExtensions; None: not written)
    conditions: tuple[str | None, str | None, str | None]


@dataclass(slots=True)
class _Run:
    x: float
    y: float
    size: float
    text: str


@dataclass(slots=True)
class _Drawing:
    ids: dict[str, _El]
    ctx: ScanContext
    runs: list[_Run] = field(default_factory=list)
    references: int = 0
    drawn: int = 0
    chars: int = 0
    props: dict[tuple[str, bytes], _Props] = field(default_factory=dict)
    #: SVG images drawn by `<image>` (round 17): their trees and ids, by URL
    images: dict[str, tuple[_El, dict[str, _El]] | None] = field(default_factory=dict)
    image_depth: int = 0
    #: whose renderer draws (round 20): only what it paints (None: every text, as before)
    reader: _Reader | None = None
    box: tuple[float, float, float, float] | None = None  # the viewport, when known
    #: what `reader`'s renderer does not paint (the children of `<switch>` it does not choose
    #: aside: each choice is a reader's)
    dropped: int = 0
    empty: dict[str, bool] = field(default_factory=dict)  # clip paths and masks, by id
    held: dict[tuple[str | None, str | None, str | None], bool] = field(default_factory=dict)


def _attrs(raw: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in _ATTR.finditer(raw):
        name = m.group(1).decode("latin-1").lower()
        value = m.group(2) if m.group(2) is not None else m.group(3) \
            if m.group(3) is not None else m.group(4)
        out.setdefault(name, html.unescape(value.decode("utf-8", "replace")))
    return out


def _id(raw: bytes) -> str | None:
    m = _ID.search(raw) if b"id" in raw else None
    if m is None:
        return None
    value = next(g for g in m.groups() if g is not None)
    return html.unescape(value.decode("utf-8", "replace")).strip() or None


def _local(name: bytes) -> str:
    return name.rsplit(b":", 1)[-1].decode("latin-1").lower()


def _parse(data: bytes, start: int, ctx: ScanContext,
           spans: list[tuple[int, int]] | None = None) -> tuple[_El, dict[str, _El]]:
    """The element tree of the markup from `start` (the first `<svg`): a document root
    holding every `<svg>` element, and the elements by `id` (the first of each). One pass:
    each `<` is read up to the next `>`."""
    root = _El("#document", b"")
    ids: dict[str, _El] = {}
    stack: list[_El] = []  # open elements inside an <svg>
    open_tags: dict[str, int] = {}  # how many of each tag `stack` holds (a stray closing
    # tag is passed over at once, not searched for down the stack)
    pos, n, tokens = start, len(data), 0

    def text(piece: bytes, raw: bool = False) -> None:
        if stack and piece:
            s = piece.decode("utf-8", "replace")
            stack[-1].kids.append(s if raw else html.unescape(s))

    while pos < n:
        tokens += 1
        if not tokens % _CHECK_EVERY:
            ctx.check_time()
        lt = data.find(b"<", pos)
        if lt < 0:
            text(data[pos:])
            break
        text(data[pos:lt])
        if data.startswith(b"<!--", lt):
            end = data.find(b"-->", lt + 4)
            pos = n if end < 0 else end + 3
            continue
        if data.startswith(b"<![CDATA[", lt):
            end = data.find(b"]]>", lt + 9)
            text(data[lt + 9 : n if end < 0 else end], raw=True)
            pos = n if end < 0 else end + 3
            continue
        gt = data.find(b">", lt + 1)
        if gt < 0:
            break
        m = _TAG_NAME.match(data, lt, gt)
        if m is None:  # `<?xml ...>`, `<!DOCTYPE ...>`, a stray `<`
            if data[lt + 1 : lt + 2] not in (b"?", b"!"):
                text(b"<")
                pos = lt + 1
            else:
                pos = gt + 1
            continue
        pos = gt + 1
        tag = _local(m.group(2))
        if m.group(1):  # a closing tag: closes the innermost open element of its name
            if open_tags.get(tag):
                while stack:  # (each element is popped once: linear in all)
                    popped = stack.pop()
                    open_tags[popped.tag] -= 1
                    if popped.tag == tag:
                        break
            if not stack:  # the image ended: on to the page's next one
                if spans is not None and spans and spans[-1][1] < 0:
                    spans[-1] = (spans[-1][0], pos)
                following = _SVG_START.search(data, pos)
                pos = n if following is None else following.start()
            continue
        if not stack and tag != "svg":
            continue  # markup around the image (an HTML page's)
        raw_attrs = data[m.end() : gt]
        closed = raw_attrs.rstrip().endswith(b"/")
        if tag.encode() in _RAW_TEXT and not closed:  # its content is no markup
            pos = _raw_end(data, tag.encode(), pos)
            continue
        if len(stack) >= _MAX_DEPTH:
            raise ScanLimitExceeded(MAX_RECURSION, _TOO_DEEP_NESTING)
        el = _El(tag, raw_attrs)
        ident = _id(raw_attrs)
        if ident:
            ids.setdefault(ident, el)
        (stack[-1] if stack else root).kids.append(el)
        if spans is not None and not stack:
            spans.append((lt, gt + 1 if closed else -1))
        if not closed:
            stack.append(el)
            open_tags[tag] = open_tags.get(tag, 0) + 1
    if spans and spans[-1][1] < 0:
        spans[-1] = (spans[-1][0], n)
    return root, ids


_RAW_END = {tag: re.compile(rb"</(?:[\w.-]+:)?" + tag + rb"\b[^>]*>", re.I) for tag in _RAW_TEXT}


def _raw_end(data: bytes, tag: bytes, pos: int) -> int:
    m = _RAW_END[tag].search(data, pos)
    return len(data) if m is None else m.end()


_ALL = 1 << 62  # (`_numbers`: no bound but the attribute's length)


def _numbers(value: str | None, limit: int = 4096) -> list[float]:
    if not value:
        return []
    out = []
    for m in _NUMBER.finditer(value):
        f = float(m.group())
        out.append(f if math.isfinite(f) else 0.0)
        if len(out) >= limit:
            break
    return out


def _first(value: str | None) -> float:
    found = _numbers(value, 1)
    return found[0] if found else 0.0


def _times(m: _Matrix, n: _Matrix) -> _Matrix:
    """`m` then `n` applied inside it (m * n)."""
    a, b, c, d, e, f = m
    a2, b2, c2, d2, e2, f2 = n
    return (a * a2 + c * b2, b * a2 + d * b2, a * c2 + c * d2, b * c2 + d * d2,
            a * e2 + c * f2 + e, b * e2 + d * f2 + f)


def _transform(value: str | None) -> _Matrix:
    """An SVG `transform` attribute's matrix (unknown parts: none)."""
    out = _IDENTITY
    if not value:
        return out
    for i, m in enumerate(_TRANSFORM.finditer(value)):
        if i >= 64:
            break
        kind, args = m.group(1).lower(), _numbers(m.group(2), 6)
        step = _IDENTITY
        if kind == "matrix" and len(args) == 6:
            step = (args[0], args[1], args[2], args[3], args[4], args[5])
        elif kind == "translate" and args:
            step = (1.0, 0.0, 0.0, 1.0, args[0], args[1] if len(args) > 1 else 0.0)
        elif kind in ("translatex", "translatey") and args:  # (CSS)
            step = (1.0, 0.0, 0.0, 1.0, *((args[0], 0.0) if kind[-1] == "x" else (0.0, args[0])))
        elif kind == "scale" and args:
            step = (args[0], 0.0, 0.0, args[1] if len(args) > 1 else args[0], 0.0, 0.0)
        elif kind == "rotate" and args:
            t = math.radians(args[0])
            cx, cy = (args[1], args[2]) if len(args) >= 3 else (0.0, 0.0)
            cos, sin = math.cos(t), math.sin(t)
            step = (cos, sin, -sin, cos, cx - cos * cx + sin * cy, cy - sin * cx - cos * cy)
        elif kind in ("skewx", "skewy") and args:
            t = math.tan(math.radians(args[0])) if abs(args[0]) % 180 != 90 else 0.0
            step = (1.0, 0.0, t, 1.0, 0.0, 0.0) if kind == "skewx" else (
                1.0, t, 0.0, 1.0, 0.0, 0.0)
        out = _times(out, step)
    return out


def _declared(declarations: str | None, name: str, value: str | None) -> str | None:
    """The last declaration of `name` in `declarations`, else `value`."""
    if declarations and name in declarations.lower():
        for m in _STYLE_PROP.finditer(declarations):
            if m.group(1).lower() == name:
                value = m.group(2)
    return value


def _style(el: _El, name: str, lower: bool = True) -> str | None:
    """A property as the cascade gives it (lower case unless told: ids in `url(#id)` are
    not): the presentation attribute, then the style sheets' rules (round 20: `.d{display:
    none}` hides decoys between base64 pieces), then the `style` attribute, then the rules'
    !important declarations."""
    value = el.attrs.get(name)
    sheet = el.sheet
    if sheet is not None:
        value = _declared(sheet[0], name, value)
    value = _declared(el.attrs.get("style"), name, value)
    if sheet is not None:
        value = _declared(sheet[1], name, value)
    if value is None:
        return None
    return value.strip().lower() if lower else value.strip()


def _font_size(el: _El) -> float | None:
    value = _style(el, "font-size")
    found = _numbers(value, 1) if value else []
    return found[0] if found and found[0] > 0 else None


#: What is painted where an element stands (round 20): fill painted, fill opacity not zero,
#: stroke painted, its opacity and width not zero, visible, font size not zero. An element sets
#: some (None: inherited).
_PaintSet = tuple[bool | None, bool | None, bool | None, bool | None, bool | None, bool | None,
                  bool | None]
_Paint = tuple[bool, bool, bool, bool, bool, bool, bool]
_ROOT_PAINT: _Paint = (True, True, False, True, True, True, True)  # black fill, no stroke
_ALPHA = re.compile(r"(?:rgba?|hsla?)\(([^)]*)\)")
_RELATIVE_SIZE = re.compile(r"%|em|ex|ch|smaller|larger", re.I)
#: Extensions Chromium's `requiredExtensions` accepts (librsvg none).
_EXTENSIONS = frozenset({"http://www.w3.org/1999/xhtml", "http://www.w3.org/1998/math/mathml"})


def _color_paints(value: str | None) -> bool | None:
    """Whether a `fill`/`stroke` value paints: not `none`, `transparent` nor a colour of
    alpha 0 (None: not set)."""
    if value is None or value in ("inherit", ""):
        return None
    if value in ("none", "transparent"):
        return False
    m = _ALPHA.match(value)
    if m is not None:
        alpha = _numbers(m.group(1), 5)
        return not (len(alpha) == 4 and alpha[3] <= 0)
    if value.startswith("#") and len(value) in (5, 9):
        return value[-1 if len(value) == 5 else -2 :] not in ("0", "00")
    return True


def _not_zero(value: str | None) -> bool | None:
    """Whether a number (an opacity, a width) is above zero (None: not set or unread)."""
    found = _numbers(value, 1) if value and value != "inherit" else []
    return found[0] > 0 if found else None


def _paint_of(el: _El) -> _PaintSet:
    visibility = _style(el, "visibility")
    size = _style(el, "font-size")
    found = _numbers(size, 1) if size else []
    return (_color_paints(_style(el, "fill")), _not_zero(_style(el, "fill-opacity")),
            _color_paints(_style(el, "stroke")), _not_zero(_style(el, "stroke-opacity")),
            _not_zero(_style(el, "stroke-width")),
            None if visibility is None else visibility == "visible" if visibility in (
                "visible", "hidden", "collapse") else None,
            None if not found else False if found[0] == 0 else None if size and
            _RELATIVE_SIZE.search(size) else True if found[0] > 0 else None)


def _inherit(paint: _Paint, own: _PaintSet) -> _Paint:
    if own == (None,) * 7:
        return paint
    f, fo, st, so, sw, v, z = (o if o is not None else i for o, i in zip(own, paint, strict=True))
    return (f, fo, st, so, sw, v, z)


def _paints(paint: _Paint) -> bool:
    """Whether text with these properties shows: visible, of a size, filled or stroked."""
    fill, fill_opacity, stroke, stroke_opacity, stroke_width, visible, sized = paint
    return visible and sized and ((fill and fill_opacity)
                                  or (stroke and stroke_opacity and stroke_width))


def _unpainted(el: _El) -> tuple[str, str, str]:
    reason = ""
    if _not_zero(_style(el, "opacity")) is False:
        reason = "opacity"
    elif el.tag in ("svg", "foreignobject") and (_style(el, "overflow") or "hidden") not in (
            "visible", "auto") and any(_not_zero(_style(el, k)) is False
                                       for k in ("width", "height")):
        reason = "zero-size viewport"
    return (reason, _marker_ref(_style(el, "clip-path", lower=False)) or "",
            _marker_ref(_style(el, "mask", lower=False)) or "")


def _conditions(attrs: dict[str, str]) -> tuple[str | None, str | None, str | None]:
    return (attrs.get("systemlanguage"), attrs.get("requiredfeatures"),
            attrs.get("requiredextensions"))


@dataclass(frozen=True, slots=True)
class _Reader:
    """Whose renderer draws the image (round 20), for what only some draw: the reader's
    language (None: one no `systemLanguage` names) and whether Chromium draws it (it takes
    `requiredFeatures` as met and honours conditions outside `<switch>`; librsvg does not)."""

    lang: str | None
    chromium: bool


def _passes(conditions: tuple[str | None, str | None, str | None], reader: _Reader) -> bool:
    """Whether an element's conditional processing attributes hold for `reader`."""
    languages, features, extensions = conditions
    if languages is not None and (reader.lang is None or reader.lang not in {
            t.strip().lower().split("-")[0] for t in languages.split(",")}):
        return False
    if features is not None and not reader.chromium:
        return False
    return extensions is None or (reader.chromium and bool(extensions.split()) and all(
        t in _EXTENSIONS for t in extensions.lower().split()))


_GRAPHIC = frozenset({"rect", "circle", "ellipse", "path", "polygon", "polyline", "text", "use"})


def _empty_clip(el: _El) -> bool:
    """Whether a `<clipPath>` (or a `<mask>`) lets nothing through: no shape in it, or only
    shapes of no area (a rectangle of zero width, a circle of radius 0, a path without data)."""
    for kid in el.kids:
        if not isinstance(kid, _El) or (kid.tag not in _GRAPHIC and el.tag == "clippath"):
            continue
        a = kid.attrs
        if kid.props.hidden:
            continue
        if kid.tag == "rect" and any(_not_zero(a.get(k)) is not True for k in ("width", "height")):
            continue
        if kid.tag == "circle" and _not_zero(a.get("r")) is not True:
            continue
        if kid.tag == "ellipse" and not any(_not_zero(a.get(k)) for k in ("rx", "ry")):
            continue
        if kid.tag == "path" and not (a.get("d") or "").strip():
            continue
        return False
    return True


def _href(el: _El) -> str | None:
    ref = el.attrs.get("href") or el.attrs.get("xlink:href")
    if ref is None:  # another prefix bound to the XLink namespace
        ref = next((v for k, v in el.attrs.items() if k.endswith(":href")), None)
    ref = ref.strip() if ref else None
    return ref[1:] if ref and ref.startswith("#") else None


def _marker_ref(value: str | None) -> str | None:
    m = _URL_REF.match(value) if value else None
    return m.group(1) if m else None


def _markers(el: _El) -> tuple[tuple[str, float, float, float], ...]:
    """Where a shape draws its markers (round 17, w096: text drawn only inside markers):
    `marker-start` at its first vertex, `marker-end` at its last, `marker-mid` at the others
    (the `marker` shorthand sets all three)."""
    every = _marker_ref(_style(el, "marker", lower=False))
    refs = {kind: ref for kind in ("start", "mid", "end")
            if (ref := _marker_ref(_style(el, "marker-" + kind, lower=False)) or every)}
    if not refs:
        return ()
    width = _numbers(_style(el, "stroke-width"), 1)
    stroke = width[0] if width and width[0] > 0 else 1.0
    first: tuple[float, float] | None = None
    last: tuple[float, float] | None = None
    mids: list[tuple[float, float]] = []  # (the last vertex seen is the end, not a mid)
    for n, point in enumerate(_vertices(el)):
        if n > 1 and "mid" in refs and last is not None:
            if len(mids) >= _MAX_VERTICES:
                raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_MANY_VERTICES)
            mids.append(last)
        if first is None:
            first = point
        last = point
    if first is None or last is None:
        return ()
    out = [(refs["start"], *first, stroke)] if "start" in refs else []
    out += [(refs["mid"], x, y, stroke) for x, y in mids]
    if "end" in refs:
        out.append((refs["end"], *last, stroke))
    return tuple(out)


def _vertices(el: _El) -> Iterator[tuple[float, float]]:
    """A shape's vertices (a closed polygon ends where it starts), all of them."""
    a = el.attrs
    if el.tag == "line":
        yield _first(a.get("x1")), _first(a.get("y1"))
        yield _first(a.get("x2")), _first(a.get("y2"))
    elif el.tag in ("polyline", "polygon"):
        nums = (float(m.group()) for m in _NUMBER.finditer(a.get("points") or ""))
        pairs = ((x if math.isfinite(x) else 0.0, y if math.isfinite(y) else 0.0)
                 for x, y in zip(nums, nums, strict=False))
        start = None
        for point in pairs:
            if start is None:
                start = point
            yield point
        if el.tag == "polygon" and start is not None:
            yield start
    else:
        yield from _path_vertices(a.get("d") or "")


def _path_vertices(d: str) -> Iterator[tuple[float, float]]:
    """The end points of a path's segments (its subpaths' starts and closings included)."""
    x = y = start_x = start_y = 0.0
    cmd: str | None = None
    args: list[float] = []
    for m in _PATH_TOKEN.finditer(d):
        if m.group(1):
            cmd, args = m.group(1), []
            if cmd in "Zz":
                x, y, cmd = start_x, start_y, None
                yield x, y
        elif cmd is not None:
            f = float(m.group(2))
            args.append(f if math.isfinite(f) else 0.0)
            kind = cmd.lower()
            if len(args) < _PATH_ARGS[kind]:
                continue
            rel = cmd.islower()
            if kind == "h":
                x = x + args[0] if rel else args[0]
            elif kind == "v":
                y = y + args[0] if rel else args[0]
            else:
                x, y = (x + args[-2], y + args[-1]) if rel else (args[-2], args[-1])
            if kind == "m":  # later pairs are line segments
                start_x, start_y, cmd = x, y, "l" if rel else "L"
            yield x, y
            args = []


def _marker_matrix(marker: _El, x: float, y: float, stroke: float) -> _Matrix:
    """Where a marker's content is drawn at a vertex: its `refX`/`refY` point on the vertex,
    scaled by the stroke width (`markerUnits`) and its `viewBox` (`orient` not applied)."""
    a = marker.attrs
    scale = 1.0 if (a.get("markerunits") or "").strip().lower() == "userspaceonuse" else stroke
    box = _numbers(a.get("viewbox"), 4)
    if len(box) == 4 and box[2] > 0 and box[3] > 0:
        width = _numbers(a.get("markerwidth"), 1) or [3.0]
        height = _numbers(a.get("markerheight"), 1) or [3.0]
        scale *= min(width[0] / box[2], height[0] / box[3])
    ref_x, ref_y = _first(a.get("refx")), _first(a.get("refy"))
    return (scale, 0.0, 0.0, scale, x - scale * ref_x, y - scale * ref_y)


def svg_data_url(url: str) -> bytes | None:
    """The SVG image a `data:image/svg+xml,...` URL holds (percent-encoded or `;base64`), as a
    browser reads the URL (tabs and line breaks dropped); None for any other URL."""
    m = _DATA_URL.match(url.translate(_URL_BLANKS))
    if m is None:
        return None
    params = [p.strip().lower() for p in m.group(1).split(";")]
    if params[0] != "image/svg+xml":
        return None
    body = unquote_to_bytes(m.group(2).strip())
    return base64_decode(body) if len(params) > 1 and params[-1] == "base64" else body


_URL_BLANKS = {9: None, 10: None, 13: None}


def _rtl_placed(el: _El, run: _Run, size: float) -> tuple[float, str]:
    """A run of a `<text direction="rtl" unicode-bidi="bidi-override">` (round 17, w094): its
    characters drawn right to left (the reader sees them reversed), its start (the
    `text-anchor`) at its right end."""
    width = 0.6 * size * len(run.text)
    anchor = _style(el, "text-anchor") or "start"
    shift = 0.0 if anchor == "end" else width / 2 if anchor == "middle" else width
    return run.x - shift, run.text[::-1]


def _charge(drawing: _Drawing, reference: bool = False) -> None:
    """One more element drawn (`reference`: one more `<use>` followed)."""
    drawing.drawn += 1
    drawing.references += reference
    if drawing.drawn > _MAX_DRAWN or drawing.references > _MAX_REFERENCES:
        raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_MANY_COPIES)
    if not drawing.drawn % _CHECK_EVERY:
        drawing.ctx.check_time()


def _draw(drawing: _Drawing, top: _El, ctm: _Matrix = _IDENTITY, size: float = 16.0,
          paint: _Paint = _ROOT_PAINT) -> None:
    """The runs of text `top`'s children draw, in drawing order (an explicit stack: copies
    of copies nest deeper than Python's recursion allows). For a `drawing.reader`, only what
    its renderer paints (round 20): not what opacity 0, a transform to nothing, an empty clip
    path or mask, a zero-size viewport, conditions unmet (`<switch>`) hide, nor text neither
    filled nor stroked, hidden, of size 0 or outside the image."""
    reader = drawing.reader
    # (element, matrix, font size, the <use> ids it is drawn through, whether a <use>
    # draws it: a <symbol> is drawn only so, whether its direction is right to left, its
    # painting properties)
    stack: list[tuple[_El | str, _Matrix, float, tuple[str, ...], bool, bool, _Paint]] = [
        (kid, ctm, size, (), False, False, paint) for kid in reversed(top.kids)]
    while stack:
        el, ctm, size, chain, used, rtl, paint = stack.pop()
        if isinstance(el, str):
            continue  # text outside <text> is not drawn
        _charge(drawing)
        tag = el.tag
        if tag in _NOT_DRAWN and not (used and tag == "symbol"):
            continue
        p = el.cached_props or _shared(drawing.props, el)
        if p.hidden and (p.surely_hidden or reader is not None):
            drawing.dropped += not p.surely_hidden  # (by a rule: every text is read too)
            continue
        if p.matrix is not None:
            ctm = _times(ctm, p.matrix)
        size = p.size or size
        rtl = p.direction == "rtl" if p.direction in ("rtl", "ltr") else rtl
        kids: list[_El | str] = el.kids
        if reader is not None:
            if reader.chromium and p.conditions != (None, None, None) and not _holds(
                    drawing, p.conditions):
                continue  # (conditions outside a <switch>: Chromium's choice, a reader's)
            if _hides(drawing, p, ctm):
                drawing.dropped += 1
                continue
            paint = _inherit(paint, p.paint)
            if tag == "switch":  # only its first child whose conditions hold
                kids = [next((k for k in kids if isinstance(k, _El) and k.tag not in _NOT_DRAWN
                              and _holds(drawing, _shared(drawing.props, k).conditions)), "")]
        if tag == "use":
            ref = p.href
            target = drawing.ids.get(ref) if ref else None
            if target is None or ref in chain:
                continue  # a reference to itself or its own copy: not drawn (librsvg)
            if len(chain) >= _MAX_USE_DEPTH:
                raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_DEEP)
            _charge(drawing, reference=True)
            moved = _times(ctm, (1.0, 0.0, 0.0, 1.0, p.x, p.y)) if p.x or p.y else ctm
            stack.append((target, moved, size, (*chain, ref or ""), True, rtl, paint))
        elif tag in ("text", "foreignobject"):
            runs = _text_runs(drawing, el, size, paint if reader is not None else None)
            drawing.drawn += len(runs)
            a, b, c, d, e, f = ctm
            scale = math.sqrt(abs(a * d - b * c)) or 1.0
            for r in runs:
                x, text = _rtl_placed(el, r, r.size) if rtl and p.override else (r.x, r.text)
                run = _Run(a * x + c * r.y + e, b * x + d * r.y + f, r.size * scale, text)
                if reader is not None and b == c == 0 and a > 0 and _outside(drawing, run):
                    drawing.dropped += 1
                    continue
                drawing.chars += len(text)
                drawing.ctx.check_output(drawing.chars)
                drawing.runs.append(run)
        elif p.markers:  # the markers' content, vertex by vertex (round 17, w096)
            drawn = []
            for ref, x, y, stroke in p.markers:
                marker = drawing.ids.get(ref)
                if marker is None or marker.tag != "marker" or ref in chain:
                    continue  # (a marker drawing itself: not drawn)
                if len(chain) >= _MAX_USE_DEPTH:
                    raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_DEEP)
                _charge(drawing, reference=True)
                placed = _times(ctm, _marker_matrix(marker, x, y, stroke))
                drawn += [(kid, placed, size, (*chain, ref), False, rtl, paint)
                          for kid in marker.kids]
            stack.extend(reversed(drawn))
        elif tag == "image":
            _draw_image(drawing, el, _times(ctm, (1.0, 0.0, 0.0, 1.0, p.x, p.y)), size)
        else:
            if tag == "svg" and (p.x or p.y):  # a nested <svg> (the outermost has no x/y)
                ctm = _times(ctm, (1.0, 0.0, 0.0, 1.0, p.x, p.y))
            stack.extend((kid, ctm, size, chain, False, rtl, paint) for kid in reversed(kids))


def _shared(props: dict[tuple[str, bytes], _Props], el: _El) -> _Props:
    """An element's properties: elements alike (a thousand `<use href="#a"/>`) read theirs
    once."""
    p = el.cached_props
    if p is None:
        key = (el.tag, el.raw)
        p = el.cached_props = props.get(key) or props.setdefault(key, el.props)
    return p


def _holds(drawing: _Drawing, conditions: tuple[str | None, str | None, str | None]) -> bool:
    """Whether conditions hold for the drawing's reader (each set of them judged once)."""
    held = drawing.held.get(conditions)
    if held is None and drawing.reader is not None:
        held = drawing.held[conditions] = _passes(conditions, drawing.reader)
    return bool(held)


def _hides(drawing: _Drawing, p: _Props, ctm: _Matrix) -> bool:
    """Whether an element paints nothing of what it holds."""
    reason, clip, mask = p.unpainted
    if reason or abs(ctm[0] * ctm[3] - ctm[1] * ctm[2]) < 1e-12:  # (scale(0): a point)
        return True
    for ref, kind in ((clip, "clippath"), (mask, "mask")):
        target = drawing.ids.get(ref) if ref else None
        if target is not None and target.tag == kind:
            empty = drawing.empty.get(ref)
            if empty is None:
                empty = drawing.empty[ref] = _empty_clip(target)
            if empty:
                return True
    return False


def _outside(drawing: _Drawing, run: _Run) -> bool:
    """Whether a run lies wholly outside the image's viewport (its width estimated wide:
    on either side of its start, whatever its anchor)."""
    box = drawing.box
    if box is None:
        return False
    width = 0.6 * run.size * len(run.text) + run.size
    return (run.x - width > box[2] or run.x + width < box[0]
            or run.y - 1.5 * run.size > box[3] or run.y + run.size < box[1])


def _draw_image(drawing: _Drawing, el: _El, ctm: _Matrix, size: float) -> None:
    """An `<image href="data:image/svg+xml,...">`: that image's text drawn where it is (round
    17); parsed once per URL, images inside images at most _MAX_IMAGE_DEPTH deep."""
    url = el.attrs.get("href") or el.attrs.get("xlink:href") or next(
        (v for k, v in el.attrs.items() if k.endswith(":href")), None)
    if not url or "data:" not in url[:64].lower():
        return
    if drawing.image_depth >= _MAX_IMAGE_DEPTH:
        raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_DEEP_IMAGES)
    _charge(drawing, reference=True)
    if url not in drawing.images:
        svg = svg_data_url(url)
        start = _SVG_START.search(svg) if svg else None
        drawing.images[url] = _parse(svg, start.start(), drawing.ctx) if svg and start else None
    image = drawing.images[url]
    if image is None:
        return
    outer, box = drawing.ids, drawing.box
    drawing.ids, drawing.image_depth, drawing.box = image[1], drawing.image_depth + 1, None
    try:
        _draw(drawing, image[0], ctm, size)
    finally:
        drawing.ids, drawing.image_depth, drawing.box = outer, drawing.image_depth - 1, box


def _text_runs(drawing: _Drawing, top: _El, size: float, paint: _Paint | None) -> list[_Run]:
    """The runs of a `<text>` element in its own coordinates (read once for each font size
    it inherits): a new run wherever a character is placed by an absolute `x`/`y` or moved
    by `dx`/`dy` (of the text or a `<tspan>`; lists place character by character), the pen
    advancing by an estimate of the glyphs' width. A `<foreignObject>`'s text is one run at
    its x/y. With `paint` (the text's painting properties, round 20), only the characters
    painted: those of `<tspan>`s neither filled nor stroked, hidden or of size 0 are left
    out (still moving the pen)."""
    if top.runs is None:
        top.runs = {}
    cached = top.runs.get((size, paint))
    if cached is not None:
        return cached
    out: list[_Run] = []
    top.runs[size, paint] = out
    if top.tag == "foreignobject":
        if paint is not None and not (paint[5] and paint[6]):  # (HTML: no fill, stroke)
            return out
        flat = _SPACE.sub(" ", "".join(_flat_text(drawing, top))).strip()
        if flat:
            out.append(_Run(top.props.x, top.props.y, size, flat))
        return out
    pen_x, pen_y = 0.0, 0.0
    run: list[str] = []
    run_at = (0.0, 0.0, size)

    def flush() -> None:
        piece = _SPACE.sub(" ", "".join(run)).strip()
        if piece:
            out.append(_Run(run_at[0], run_at[1], run_at[2], piece))
        run.clear()

    Lists = list[list[float]]

    def lists_of(el: _El, inherited: Lists) -> Lists:
        # (reversed: popped from the end; a tspan without its own takes what is left of
        # its parent's)
        # (every value: Chromium places each character by its own, past 4096 too; a list
        # cut there left the characters after it in the document's order, round 16's
        # shuffled pieces unread)
        own = [_numbers(el.attrs.get(k), _ALL)[::-1] for k in ("x", "y", "dx", "dy")]
        if sum(map(len, own)) > _CHECK_EVERY:
            drawing.ctx.check_time()
        return [o if o else i for o, i in zip(own, inherited, strict=True)]

    # (node, font size, x, y, dx, dy lists still to place, painting properties)
    stack: list[tuple[_El | str, float, Lists, _Paint | None]] = [
        (top, size, [[], [], [], []], paint)]
    while stack:
        node, fsize, lists, paint = stack.pop()
        if isinstance(node, _El):
            if node is not top:
                _charge(drawing)
                if node.tag not in _TEXT_CONTENT:
                    continue
                props = node.props
                if props.hidden and (props.surely_hidden or paint is not None):
                    drawing.dropped += not props.surely_hidden
                    continue
                if paint is not None:
                    paint = _inherit(paint, node.props.paint)
            fsize = node.props.size or fsize
            mine = lists_of(node, lists)
            stack.extend((kid, fsize, mine, paint) for kid in reversed(node.kids))
            continue
        xs, ys, dxs, dys = lists
        shown = paint is None or _paints(paint)
        if not shown:
            drawing.dropped += 1
        if not (xs or ys or dxs or dys):  # no character placed on its own
            if shown:
                run.append(node)
            pen_x += 0.6 * fsize * len(node)
            continue
        for i, ch in enumerate(node):
            if i and not i % _CHECK_EVERY:  # (a run placed character by character)
                drawing.ctx.check_time()
            if ch.isspace():  # collapsed: a run of white space is one space, none first
                if not run or run[-1][-1:].isspace():
                    continue
                ch = " "
            if xs or ys or dxs or dys:
                if xs:
                    pen_x = xs.pop()
                if ys:
                    pen_y = ys.pop()
                if dxs:
                    pen_x += dxs.pop()
                if dys:
                    pen_y += dys.pop()
                flush()
                run_at = (pen_x, pen_y, fsize)
            if shown:
                run.append(ch)
            pen_x += 0.6 * fsize
    flush()
    return out


def _flat_text(drawing: _Drawing, el: _El) -> list[str]:
    out: list[str] = []
    stack: list[_El | str] = [el]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            out.append(node)
            continue
        _charge(drawing)
        if node.tag not in _NOT_DRAWN:
            stack.extend(reversed(node.kids))
    return out


def _laid_out(runs: list[_Run]) -> str:
    """Top to bottom, runs whose baselines are within half a glyph of the line's first one
    on one line, each line left to right."""
    lines: list[list[_Run]] = []
    for run in sorted(runs, key=lambda r: (r.y, r.x)):
        if lines and run.y - lines[-1][0].y <= max(0.5 * lines[-1][0].size, 0.01):
            lines[-1].append(run)
        else:
            lines.append([run])
    return "\n".join("".join(r.text for r in sorted(line, key=lambda r: r.x))
                     for line in lines)


def _drawn(runs: list[_Run]) -> str:
    """In drawing order, a new line where a run starts on another baseline."""
    out: list[str] = []
    last: _Run | None = None
    for run in runs:
        if last is not None and abs(run.y - last.y) > max(0.5 * last.size, 0.01):
            out.append("\n")
        out.append(run.text)
        last = run
    return "".join(out)


def svg_readings(data: bytes, ctx: ScanContext, laid_out: bool = False) -> list[bytes]:
    """The text of the SVG images in `data` (an .svg file, or a page with inline `<svg>`)
    in drawing order and laid out, where they hold `<text>` (UTF-8; the two once when they
    are the same; none without text). First what each likely renderer paints (round 20:
    decoys between base64 pieces in a `<switch>`'s other children, unfilled, transparent,
    clipped away, scaled to nothing, outside the image); when that leaves anything out, also
    every text drawn, as before (what is painted, misjudged, is still read). `laid_out`: only
    the laid-out readings (the first: as the first renderer paints it)."""
    start = _SVG_START.search(data)
    if start is None or _TEXT_TAG.search(data, start.start()) is None:
        return []
    root, ids = _parse(data, start.start(), ctx)
    styled = _apply_sheets(data, root, ctx)
    out: list[bytes] = []
    lower = data.lower()
    twice = b"transform=" in lower and b"transform:" in lower and _both_transforms(root)
    resized = _css_sized(lower)
    # with the style sheets' rules, then (selectors are taken by their subject: a rule may be
    # applied wider than it is) without them, as before they were read
    passes = [(sheets, attribute_first) for sheets in ((True, False) if styled else (True,))
              for attribute_first in ((False, True) if twice else (False,))]
    for sheets, attribute_first in passes:
        if styled and not attribute_first:
            _reset(root, {id(el): sheet for el, sheet in styled} if sheets else {})
        if attribute_first:
            _prefer_attributes(root)
        dropped = False
        props: dict[tuple[str, bytes], _Props] = {}  # (shared: no reader changes them)
        for reader in (*_readers(lower, root, props), None):
            if reader is None and not dropped:
                break
            drawing = _Drawing(ids, ctx, reader=reader, props=props)
            for image in root.kids:  # (each outermost <svg>, in its own viewport)
                if isinstance(image, _El):
                    drawing.box = None if resized or reader is None else _viewport(image)
                    holder = _El("#document", b"")
                    holder.kids.append(image)
                    _draw(drawing, holder)
            dropped = dropped or drawing.dropped > 0
            if not drawing.runs:
                continue
            for text in ((_laid_out(drawing.runs),) if laid_out else (
                    _drawn(drawing.runs), _laid_out(drawing.runs))):
                encoded = text.encode("utf-8", "replace")
                if encoded.strip() and encoded not in out:
                    out.append(encoded)
    return out


#: a page's style sheet that may size its `<svg>`s otherwise than their attributes do
_CSS_SIZED = re.compile(rb"<style[^>]*>[^<]*svg")


def _css_sized(lower: bytes) -> bool:
    """Whether a style sheet names `svg` (`_CSS_SIZED`), each `<style` tag read once
    (`textual.tag_spans`)."""
    return any(gt >= 0 and _CSS_SIZED.match(lower, at) is not None
               for at, gt in tag_spans(lower, b"<style"))
_CONDITIONAL = (b"systemlanguage", b"requiredfeatures", b"requiredextensions")
_CONDITION_ATTR = re.compile(rb"systemlanguage|requiredfeatures|requiredextensions", re.I)
#: Languages named by `systemLanguage` read as the reader's, besides English; an image naming
#: more is a limit finding (two were read, silently: a `<switch>` whose Russian child is the
#: piece after "aa" and "bb" decoys showed EICAR to librsvg in a Russian locale only). Each
#: is one more drawing of the image; a multilingual image names a handful.
_MAX_LANGUAGES = 64  # (8 refused a map with 12 translations: round 35's false positive)
_TOO_MANY_LANGUAGES = f"an SVG image naming more than {_MAX_LANGUAGES} reader languages"


def _readers(lower: bytes, root: _El, props: dict[tuple[str, bytes], _Props]) -> list[_Reader]:
    """The renderers an image is read as drawn by, where conditions are written (which they
    evaluate differently): librsvg and Chromium, for a reader of English, of each other
    language named (`_MAX_LANGUAGES` at most), and of none of them; one of each that draws
    alike."""
    if not any(name in lower for name in _CONDITIONAL):
        return [_Reader("en", False)]
    named: list[str] = []
    #: the conditions written (and whether in a <switch>), each once
    conditional: dict[tuple[tuple[str | None, str | None, str | None], bool], None] = {}
    for el in _elements(root):
        for kid in el.kids:
            if isinstance(kid, _El) and _CONDITION_ATTR.search(kid.raw):
                conditions = _shared(props, kid).conditions
                if (conditions, el.tag == "switch") in conditional:
                    continue
                conditional[conditions, el.tag == "switch"] = None
                for tag in (conditions[0] or "").split(","):
                    lang = tag.strip().lower().split("-")[0]
                    if lang and lang != "en" and lang not in named:
                        if len(named) >= _MAX_LANGUAGES:
                            raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_MANY_LANGUAGES)
                        named.append(lang)
    langs = ["en", *named]
    out: list[_Reader] = []
    seen: set[tuple[bool, ...]] = set()
    for reader in (_Reader(lang, chromium) for chromium in (False, True)
                   for lang in (*langs, None)):
        drawn = tuple(_passes(conditions, reader) or not (in_switch or reader.chromium)
                      for conditions, in_switch in conditional)
        if drawn not in seen:
            seen.add(drawn)
            out.append(reader)
    return out


def _absolute(value: str | None) -> float | None:
    """A length in user units (px or none), None for any other."""
    if value is None or not re.fullmatch(r"\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:px)?\s*", value):
        return None
    return _first(value)


def _viewport(svg: _El) -> tuple[float, float, float, float] | None:
    """What an outermost `<svg>` shows, in its user units: its width and height, or its
    `viewBox` widened as much as fitting it into them may (None when unknown, or when its
    content overflows it)."""
    if svg.tag != "svg" or (_style(svg, "overflow") or "hidden") in ("visible", "auto"):
        return None
    width, height = _absolute(_style(svg, "width")), _absolute(_style(svg, "height"))
    if width is None or height is None or width <= 0 or height <= 0:
        return None
    box = _numbers(svg.attrs.get("viewbox"), 4)
    if len(box) < 4:
        return (0.0, 0.0, width, height)
    x, y, w, h = box
    if w <= 0 or h <= 0:
        return None
    scale = min(width / w, height / h)
    spare_x, spare_y = width / scale - w, height / scale - h
    return (x - spare_x, y - spare_y, x + w + spare_x, y + h + spare_y)


_OUTSIDE_TEXT = re.compile(rb"<[^>]*>|\s+")
_HTML_HINT = re.compile(rb"<(?:html|body|div|p|span|td|br|pre)[\s>/]", re.I)


def inline_page(data: bytes, ctx: ScanContext) -> bytes | None:
    """A page with each of its inline `<svg>` images replaced by a block of the text it
    paints as Chromium does (laid out, lines broken), for base64 cut between the page's text
    and an image's; None without such an image or without text around it."""
    start = _SVG_START.search(data)
    if start is None or _TEXT_TAG.search(data, start.start()) is None or not _HTML_HINT.search(
            data):
        return None
    spans: list[tuple[int, int]] = []
    root, ids = _parse(data, start.start(), ctx, spans)
    images = [k for k in root.kids if isinstance(k, _El)]
    if len(images) != len(spans):
        return None
    outside = b"".join(data[a:b] for a, b in zip((0, *(e for _, e in spans)),
                                                  (*(s for s, _ in spans), len(data)),
                                                  strict=True))
    if not _OUTSIDE_TEXT.sub(b"", outside).strip():
        return None
    resized = _css_sized(data.lower())
    drawing = _Drawing(ids, ctx, reader=_Reader("en", True))
    out: list[bytes] = []
    at = 0
    for image, (a, b) in zip(images, spans, strict=True):
        drawing.runs = []
        drawing.box = None if resized else _viewport(image)
        holder = _El("#document", b"")
        holder.kids.append(image)
        _draw(drawing, holder)
        text = html.escape(_laid_out(drawing.runs)).replace("\n", "<br>")
        out += [data[at:a], b"<div>", text.encode("utf-8", "replace"), b"</div>"]
        at = b
    out.append(data[at:])
    return b"".join(out)


#: the properties drawing reads (`_STYLE_PROP`'s), as a style rule declares them
_SHEET_PROPS = re.compile(rb"(?<![\w-])(?:display|visibility|font-size|direction|unicode-bidi|"
                          rb"transform|marker|stroke|text-anchor|fill|opacity|clip-path|mask|"
                          rb"overflow|width|height)[\w-]*\s*:", re.I)
_MAX_SHEET_CHECKS = 3_000_000  # selectors compared with elements; past it, the time limit
_TOO_MANY_RULES = "more style rules than an image needs"


def _apply_sheets(data: bytes, root: _El, ctx: ScanContext
                  ) -> list[tuple[_El, tuple[str, str]]]:
    """What the style sheets of the image (or of the page holding it) declare for each
    element (`_El.sheet`, read by `_style`). Selectors are taken by their subject compound
    (`textual.SheetStyles`); a rule over-applied hides text that is painted, and then every
    text is read as well (`svg_readings`). Sheets cut short by a cap, or past
    `_MAX_SHEET_CHECKS` comparisons (thousands of rules every element matches the key of),
    are the scan's time limit: reading with part of them, or none, let round 5 keep its
    decoys. The elements styled, with their declarations."""
    styles = SheetStyles(data, _SHEET_PROPS, xml=True)
    if styles.truncated:
        raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_MANY_RULES)
    if not styles:
        return []
    styled: list[tuple[_El, tuple[str, str]]] = []
    checks = 0
    where = _Where(root, data)
    for i, el in enumerate(_elements(root)):
        if not i % _CHECK_EVERY:
            ctx.check_time()
        if el.tag.startswith("#"):
            continue
        found, compared = styles.of(el.tag.encode(), el.raw,
                                    lambda c, el=el: where.holds(c.ancestors, 0, el))  # type: ignore[misc]
        checks += where.steps
        where.steps = 0
        checks += compared
        if checks > _MAX_SHEET_CHECKS:
            raise ScanLimitExceeded(MAX_SCAN_TIME, _TOO_MANY_RULES)
        if found is not None:
            el.sheet = (found[0].decode("utf-8", "replace"), found[1].decode("utf-8", "replace"))
            el.cached_props = None
            styled.append((el, el.sheet))
    return styled


class _Where:
    """Where each element of the image stands (parent, the elements before it), to check a
    rule's ancestors and siblings (`textual._Compound.ancestors`, nearest first). Above an
    image's `<svg>`: nothing in an .svg file; in an HTML page, a compound holds when a tag
    written before the image matches it (the page's tree is not read here)."""

    def __init__(self, root: _El, data: bytes) -> None:
        self.parent: dict[int, _El] = {}
        #: each element's siblings (elements) and its index among them
        self.siblings: dict[int, tuple[list[_El], int]] = {}
        stack = [root]
        while stack:
            el = stack.pop()
            seen: list[_El] = []
            for kid in el.kids:
                if isinstance(kid, _El) and not kid.tag.startswith("#"):
                    self.parent[id(kid)] = el
                    self.siblings[id(kid)] = (seen, len(seen))
                    seen.append(kid)
                    stack.append(kid)
        first = _SVG_START.search(data)
        self.page = [(m.group(2).lower(), m.group(3)) for m in _ELEMENT.finditer(
            data, 0, first.start() if first else 0) if m.group(2) and not m.group(1)]
        self.memo: dict[tuple[int, int, int], bool] = {}
        self.steps = 0  # (comparisons made: the caller's budget)

    def holds(self, steps: tuple[tuple[bytes, _Compound | None], ...], k: int,
              el: _El) -> bool:
        if k == len(steps):
            return True
        key = (id(steps), k, id(el))
        known = self.memo.get(key)
        if known is not None:
            return known
        combinator, want = steps[k]
        if combinator in (b"+", b"~"):
            seen, i = self.siblings.get(id(el), ([], 0))
            others = seen[i - 1 : i] if combinator == b"+" else seen[i - 1 :: -1] if i else []
        else:
            others = []
            up = self.parent.get(id(el))
            while up is not None and not up.tag.startswith("#"):
                others.append(up)
                if combinator == b">":
                    break
                up = self.parent.get(id(up))
        found = False
        for other in others:
            self.steps += 1
            if (want is None or _matches(want, other.tag.encode(), other.raw)) and self.holds(
                    steps, k + 1, other):
                found = True
                break
        if not found and combinator in (b" ", b">") and (
                not others or combinator == b" ") and self.page:
            # above the image, in the page: steps the page's tags written before it meet
            found = all(c is None or any(_matches(c, t, a) for t, a in self.page)
                        for _comb, c in steps[k:])
            self.steps += len(self.page)
        self.memo[key] = found
        return found


def _reset(root: _El, sheets: dict[int, tuple[str, str]]) -> None:
    """Every element read afresh, with these declarations (by `id()` of the element)."""
    for el in _elements(root):
        el.sheet = sheets.get(id(el))
        el.attribute_first = False
        el.cached_props = None
        el.runs = None


def _elements(root: _El) -> list[_El]:
    out, stack = [], [root]
    while stack:
        el = stack.pop()
        out.append(el)
        stack.extend(k for k in el.kids if isinstance(k, _El))
    return out


def _both_transforms(root: _El) -> bool:
    """Whether an element has a `transform` attribute and a `transform` in its style (the
    renderers disagree on which wins)."""
    return any("transform" in el.attrs and (el.attrs.get("style") or "").lower().count(
        "transform") for el in _elements(root) if b"transform" in el.raw.lower())


def _prefer_attributes(root: _El) -> None:
    for el in _elements(root):
        el.attribute_first = True
        el.cached_props = None
