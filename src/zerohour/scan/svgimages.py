"""A page whose text SVG images draw: each image read as the text it draws, in its place.

Round 17: base64 chunks, each the `<text>` of an SVG image a page shows from a data: URL
(`data:image/svg+xml,...`, percent-encoded or `;base64`): `<img src>` (w099), a pseudo-
element's `content: url(...)` (w100), a CSS `background` (w101). Chromium prints each image's
text as text, so pdftotext reads the chunks in the page's order and the recipient has the file.
Each image alone is scanned (its data: URL is a layer), but no image holds the file. One more
reading of the page: every such image replaced by the text it draws (`svgtext`, laid out),
then the page laid out (`htmllayout`: rules place CSS images as `::before` text) and read.

Also `<object data>`, `<embed src>`, `<iframe src>`, `<input type=image src>`, `<video
poster>`, `srcset`'s first image, `list-style-image` and `border-image`. Made only for pages
that name an SVG image type; an extra text layer (the page's own readings stay).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from zerohour.scan import htmllayout, svgtext, textual
from zerohour.scan.gates import Gate
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import Child

#: "image/svg" as a URL (tabs and line breaks dropped), a character reference or a CSS escape
#: may write it
_GAP = rb"[\t\n\r]*"
_SLASH = rb"(?:/|&#0*47;?|&#x0*2f;?|&sol;|\\0*2f\s?|\\/)"
_SVG_TYPE = Gate(_GAP.join((b"i", b"m", b"a", b"g", b"e", _SLASH, b"s", b"v", b"g")))
#: a tag whose attributes may name an SVG image ("svg", or escapes: "&", "\\")
_TAG = re.compile(rb"<([A-Za-z][\w:-]*)([\s/][^>]*+)(?:>|\Z)")  # (each tag read once: a regex
# asking for "svg" inside it was retried at each `<` of a long tag, quadratic)
_TAG_HINT = re.compile(rb"svg|&|\\", re.I)
#: the attributes whose URL an element draws as an image
_IMAGE_ATTRS = {b"img": (b"src", b"srcset"), b"object": (b"data",), b"embed": (b"src",),
                b"iframe": (b"src",), b"input": (b"src",), b"video": (b"poster",)}
#: elements whose content is not shown when their image is (a fallback, raw text)
_REPLACED_CONTENT = (b"object", b"iframe")
#: CSS properties that draw an image
_IMAGE_PROPS = frozenset({b"content", b"background", b"background-image", b"list-style",
                          b"list-style-image", b"border-image", b"border-image-source"})
#: (An unquoted URL holds no `(` (CSS: a bad URL); a name is read from its start, once: each
#: was read on to a far end from many places, quadratic.)
_CSS_TOKEN = re.compile(rb"url\(\s*(?:\"([^\"]*)\"|'([^']*)'|([^()\"']*+))\s*\)"
                        rb"|\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|(?<![\w-])([\w-]++)\s*:",
                        re.I | re.S)
_PSEUDO = re.compile(rb"::?(before|after)\s*$", re.I)
_RAW_BLOCK = re.compile(rb"<(style|script)\b[^>]*>.*?(?:</\1\s*>|\Z)", re.I | re.S)
_MAX_TEXT = 65_536  # of one image (a chunk longer than this is its own image's layer)


class _Images:
    """The text each SVG image URL draws, read once per URL."""

    def __init__(self, ctx: ScanContext) -> None:
        self.ctx = ctx
        self.texts: dict[bytes, str | None] = {}

    def text(self, url: bytes) -> str | None:
        if url not in self.texts:
            self.ctx.check_time()
            svg = svgtext.svg_data_url(url.decode("utf-8", "replace"))
            readings = svgtext.svg_readings(svg, self.ctx, laid_out=True) if svg else []
            # (laid out, as the image paints it; its lines are one line of the page)
            self.texts[url] = " ".join(readings[0].decode("utf-8", "replace").split())[
                :_MAX_TEXT] if readings else None
        return self.texts[url]


def _attr(attrs: bytes, name: bytes) -> bytes | None:
    for m in textual._ATTRS.finditer(attrs):
        if m.group(1).lower() == name:
            value = m.group(2) or m.group(3) or m.group(4) or b""
            return textual._unescape(value) if b"&" in value else value
    return None


def _html_escape(text: str) -> bytes:
    return text.replace("&", "&amp;").replace("<", "&lt;").encode("utf-8", "replace")


def _css_string(text: str) -> bytes:
    """`text` as a CSS string (quotes, backslashes, `<` and line breaks escaped)."""
    for ch in '\\"<\n\r\f':
        if ch in text:
            text = text.replace(ch, f"\\{ord(ch):x} ")
    return b'"' + text.encode("utf-8", "replace") + b'"'


def _element_images(data: bytes, images: _Images) -> tuple[bytes, int]:
    """The page with each element that shows an SVG image (its `src`..., or a `style`
    attribute's CSS image) given the image's text; and how many were."""
    out: list[bytes] = []
    at = found = 0
    for m in _TAG.finditer(data):
        attrs = m.group(2)
        if not m.group().endswith(b">") or not _TAG_HINT.search(attrs):
            continue  # (not closed, or no "svg" or escape in it)
        if not _SVG_TYPE(attrs):
            continue
        tag = m.group(1).lower()
        text = _tag_image(tag, attrs, images)
        if text is not None:  # the element is its image
            out += [data[at : m.start()], _html_escape(text)]
            at = m.end()
            if tag in _REPLACED_CONTENT:
                close = re.compile(rb"</" + tag + rb"\s*>", re.I).search(data, at)
                at = at if close is None else close.end()
            found += 1
            continue
        style = _attr(attrs, b"style")
        drawn = _css_images(textual._css_text(style), images) if style else []
        if drawn:  # a CSS image: its text first in the element
            out += [data[at : m.end()], _html_escape("".join(drawn))]
            at = m.end()
            found += 1
    out.append(data[at:])
    return b"".join(out), found


def _tag_image(tag: bytes, attrs: bytes, images: _Images) -> str | None:
    for name in _IMAGE_ATTRS.get(tag, ()):
        value = _attr(attrs, name)
        if value and name == b"srcset":
            value = value.strip().split(b" ")[0].rstrip(b",")
        text = images.text(value) if value else None
        if text is not None:
            return text
    return None


def _css_images(declarations: bytes, images: _Images) -> list[str]:
    """The texts of the SVG images the declarations draw (properties that draw images)."""
    out: list[str] = []
    prop = b""
    for m in _CSS_TOKEN.finditer(declarations):
        if m.group(4) is not None:
            prop = m.group(4).lower()
        elif m.group(0)[:4].lower() == b"url(" and prop in _IMAGE_PROPS:
            url = next((g for g in m.groups()[:3] if g is not None), b"")
            text = images.text(url.strip())
            if text is not None:
                out.append(text)
    return out


def _rule_images(data: bytes, images: _Images) -> tuple[list[bytes], int]:
    """A `::before { content: "text" }` rule for each selector of a style rule that draws an
    SVG image (the image drawn where its element or pseudo-element is), and their longest
    text."""
    out: list[bytes] = []
    longest = 0
    for rule in textual._sheet_rules(data):
        drawn = _css_images(rule.declarations, images) if _SVG_TYPE(rule.declarations) else []
        if not drawn:
            continue
        text = _css_string("".join(drawn))
        longest = max(longest, len(text))
        for selector in textual._selectors(rule.selectors):
            pseudo = _PSEUDO.search(selector)
            subject = selector[: pseudo.start()] if pseudo else selector
            out.append(subject.strip() + b"::" + (pseudo.group(1) if pseudo else b"before")
                       + b"{content:" + text + b"}\n")
    return out, longest


def image_readings(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """The page read with each SVG image a data: URL shows replaced by its text (round 17:
    w099, w100, w101); nothing for a page without such images."""
    if not _SVG_TYPE(data):
        return
    images = _Images(ctx)
    page, found = _element_images(data, images)
    rules, longest = _rule_images(data, images)
    if not found and not rules:
        return
    if rules:
        # (the laid-out page holds a rule's text once per element it matches)
        ctx.check_output(len(page) + data.count(b"<") * longest)
        page += b"<style>" + b"".join(rules) + b"</style>"
    laid = htmllayout.laid_out(page, ctx.check_time) or page
    shown = _RAW_BLOCK.sub(b"\n", laid)
    text = textual.html_visible(shown) or textual.html_rendered(shown) or shown
    if text.strip():
        ctx.charge_child(len(text))
        yield Child(data=text, name=None, origin="svg-images")
