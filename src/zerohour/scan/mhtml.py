"""An HTML page of a multipart/related message with the style sheets its other parts hold.

A saved page (`.mht`, Chromium's "Save as MHTML") and an HTML mail with its resources keep
each style sheet in a part of its own, which the page names by `<link rel=stylesheet
href=...>` or `@import`: by `cid:` and the part's Content-ID, or by a URL the part's
Content-Location gives. Chromium applies them; the HTML part alone, read without them,
shows the decoys a sheet hides (`.h{display:none}` between base64 pieces: round 20's last
HTML row). So the page is read once more with each sheet it names written in as a
`<style>` element where its link or import stands; the readers of HTML layers do the rest.

Resolution is generous (a reading more costs nothing but time): Content-ID without its
angle brackets, URLs joined against the page's and the message's location, and last the
URL's file name alone. Bounded: `_MAX_SHEETS` sheets, `_MAX_CSS` bytes, imports
`_MAX_DEPTH` deep.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit

_MAX_SHEETS = 64
_MAX_CSS = 1024 * 1024
_MAX_DEPTH = 4

#: a `<link>` tag (its attributes read below)
_LINK = re.compile(rb"<link\b[^>]*>", re.I)
_ATTR = re.compile(rb"""([a-z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.I)
#: `@import url(x)`, `@import "x"` and what follows up to the semicolon (media, layer)
_IMPORT = re.compile(rb"""@import\s+(?:url\(\s*(?:"([^"]*)"|'([^']*)'|([^)\s]*))\s*\)|"""
                     rb""""([^"]*)"|'([^']*)')([^;{}]*);?""", re.I)
_STYLE_BLOCK = re.compile(rb"(<style\b[^>]*>)(.*?)(</style\s*>)", re.I | re.S)


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a multipart/related body, as the MIME walker read it."""

    content_type: str
    content_id: str | None
    location: str | None
    data: bytes


def styled_pages(parts: list[Part], base: str | None = None) -> Iterator[bytes]:
    """Each HTML part that names a sheet another part holds, with the sheets written in."""
    resolver = _Resolver(parts, base)
    for part in parts:
        if part.content_type != "text/html" or not (
                b"stylesheet" in part.data.lower() or b"@import" in part.data.lower()):
            continue
        page = resolver.page(part)
        if page is not None:
            yield page


class _Resolver:
    def __init__(self, parts: list[Part], base: str | None) -> None:
        self.base = base
        self.by_id: dict[str, Part] = {}
        self.by_url: dict[str, Part] = {}
        self.by_file: dict[str, Part] = {}
        for p in parts:
            if p.content_id:
                self.by_id.setdefault(p.content_id.strip().strip("<>").strip(), p)
            if p.location:
                url = urljoin(base or "", p.location.strip())
                self.by_url.setdefault(url, p)
                self.by_url.setdefault(p.location.strip(), p)
                if _file_name(url):
                    self.by_file.setdefault(_file_name(url), p)
        self.used = 0
        self.css = 0

    def page(self, part: Part) -> bytes | None:
        here = urljoin(self.base or "", part.location.strip()) if part.location else self.base
        start = (self.used, self.css)

        def link(m: re.Match[bytes]) -> bytes:
            attrs = _attrs(m.group())
            if b"stylesheet" not in attrs.get(b"rel", b"").lower().split():
                return m.group()
            sheet = self.sheet(attrs.get(b"href", b""), here, 0)
            if sheet is None:
                return m.group()
            media = attrs.get(b"media")
            opening = b'<style media="%s">' % media.replace(b'"', b"") if media else b"<style>"
            return opening + sheet + b"</style>"

        def style(m: re.Match[bytes]) -> bytes:
            return m.group(1) + self.imports(m.group(2), here, 0) + m.group(3)

        out = _STYLE_BLOCK.sub(style, _LINK.sub(link, part.data))
        return out if (self.used, self.css) != start else None

    def sheet(self, href: bytes, here: str | None, depth: int) -> bytes | None:
        target = self.find(href.decode("latin-1").strip(), here)
        if target is None or self.used >= _MAX_SHEETS or depth >= _MAX_DEPTH:
            return None
        data = target.data[: max(0, _MAX_CSS - self.css)]
        self.used += 1
        self.css += len(data)
        where = (urljoin(self.base or "", target.location.strip()) if target.location
                 else here)
        return self.imports(data, where, depth + 1)

    def imports(self, css: bytes, here: str | None, depth: int) -> bytes:
        if b"@import" not in css.lower():
            return css

        def one(m: re.Match[bytes]) -> bytes:
            href = next((g for g in m.groups()[:5] if g is not None), b"")
            sheet = self.sheet(href, here, depth)
            if sheet is None:
                return m.group()
            media = m.group(6).strip()
            if media and not media.lower().startswith((b"layer", b"supports")):
                return b"@media %s{%s}" % (media, sheet)
            return sheet

        return _IMPORT.sub(one, css)

    def find(self, href: str, here: str | None) -> Part | None:
        if not href:
            return None
        if href[:4].lower() == "cid:":
            return self.by_id.get(unquote(href[4:]).strip().strip("<>"))
        url = urljoin(here or "", href)
        return (self.by_url.get(url) or self.by_url.get(href)
                or self.by_file.get(_file_name(url) or "\0"))


def _attrs(tag: bytes) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    for m in _ATTR.finditer(tag):
        value = next((g for g in m.groups()[1:] if g is not None), b"")
        out.setdefault(m.group(1).lower(), value)
    return out


def _file_name(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[-1]
