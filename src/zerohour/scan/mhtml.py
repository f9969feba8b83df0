"""An HTML page of a multipart/related message with the style sheets its other parts hold.

A saved page (`.mht`, Chromium's "Save as MHTML") and an HTML mail with its resources keep
each style sheet in a part of its own, which the page names by `<link rel=stylesheet
href=...>` or `@import`: by `cid:` and the part's Content-ID, or by a URL the part's
Content-Location gives. Chromium applies them; the HTML part alone, read without them,
shows the decoys a sheet hides (`.h{display:none}` between base64 pieces: round 20's last
HTML row). So the page is read once more with each sheet it names written in as a
`<style>` element where its link or import stands; the readers of HTML layers do the rest
(a link's `media` goes with it, an import's media becomes an `@media` block; when a sheet
is for some media only, the page is also read with the sheets that hold on a printed page
alone; an import's `supports()` is decided as Chromium has it).

Round 21 (a subagent attacking this reader), resolved as Chromium resolves them:
- links: character references in attributes, `>` inside quoted values, links inside
  comments (left out), `disabled`, alternate, or of a `type` other than CSS (not applied);
  `<base href>`; `<?xml-stylesheet?>` in an XHTML page;
- URLs: tabs and line ends dropped, `\\` as `/`, the host's case, the last part of a
  Content-Location winning, the file name alone only when one part has it;
- sheets: any part type (Chromium applies `text/plain` and, in quirks mode, any), decoded by
  their byte-order mark, charset parameter or `@charset`; comments dropped; `@import` only
  before the other rules, its keyword and URL read through CSS escapes, to any depth (a
  cycle stops); `</style` in a sheet cannot close the `<style>` it is written into;
- parts of multiparts nested in the related body (a multipart/alternative page).
Bounded: `_MAX_SHEETS` distinct sheets and `_MAX_CSS` bytes written into one page; past
either, the page is the scan's size limit (a finding), not read without the rest.
"""

from __future__ import annotations

import codecs
import html
import re
from collections.abc import Callable, Iterator
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from zerohour.errors import ScanLimitExceeded
from zerohour.scan import htmlprint
from zerohour.scan.limits import MAX_SCAN_SIZE
from zerohour.scan.textual import _ATTRS, _COMMENT, _CSS_COMMENT, _css_text

_MAX_SHEETS = 64
_MAX_CSS = 4 * 1024 * 1024

#: a `<link>` tag, quoted values kept whole (`title="a>b"`)
_LINK = re.compile(rb"""<link\b(?:[^>"']++|"[^"]*+"|'[^']*+')*+>""", re.I)
_XML_SHEET = re.compile(rb"<\?xml-stylesheet\b(.*?)\?>", re.I | re.S)
_BASE = re.compile(rb"""<base\b(?:[^>"']++|"[^"]*+"|'[^']*+')*+>""", re.I)
_STYLE_BLOCK = re.compile(rb"(<style\b[^>]*>)(.*?)(</style\s*>)", re.I | re.S)
_CHARSET_RULE = re.compile(rb'@charset\s+"([^"]{1,40})"\s*;')
#: the rules an `@import` may follow: `@charset`, `@layer a, b;`, and other imports
_PRELUDE_RULE = re.compile(rb"\s*(?:@charset\b[^;{}]*;|@layer\b[^;{}]*;)")
#: `@import` (its keyword possibly escaped), then its URL and what follows up to the `;`
_AT_RULE = re.compile(rb"\s*@((?:[\w-]|\\[0-9a-fA-F]{1,6}\s?|\\[^\n0-9a-fA-F])+)")
_IMPORT_TARGET = re.compile(rb"""\s*(?:url\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|"""
                            rb"""((?:[^)\s\\]|\\.)*))\s*\)|"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')"""
                            rb"""([^;{}]*)(?:;|$)""", re.S)
_NOT_APPLIED_TYPES = re.compile(rb"^\s*(?!text/css\s*(?:;|$))\S", re.I)


class Part:
    """One part of a multipart/related body, as the MIME walker read it; its content is
    decoded only when a page asks for it (`load`)."""

    __slots__ = ("_data", "_load", "charset", "content_id", "content_type", "location")

    def __init__(self, content_type: str, content_id: str | None, location: str | None,
                 load: Callable[[], bytes] | bytes, charset: str | None = None) -> None:
        self.content_type = content_type
        self.content_id = content_id
        self.location = location
        self.charset = charset
        self._load = load
        self._data: bytes | None = load if isinstance(load, bytes) else None

    @property
    def data(self) -> bytes:
        if self._data is None:
            assert callable(self._load)
            self._data = self._load()
        return self._data


_PAGES = ("text/html", "application/xhtml+xml")


def styled_pages(parts: list[Part], base: str | None = None) -> Iterator[bytes]:
    """Each HTML page that names a sheet another part holds, with the sheets written in."""
    resolver = _Resolver(parts, base)
    for part in parts:
        if part.content_type not in _PAGES:
            continue
        lower = part.data.lower()
        if b"<link" in lower or b"@import" in lower or b"@\\" in lower or (
                b"xml-stylesheet" in lower):
            page = resolver.page(part, printed=False)
            if page is not None:
                yield page
                if resolver.conditional:  # (sheets for some media only: also as printed)
                    printed = resolver.page(part, printed=True)
                    if printed is not None and printed != page:
                        yield printed


class _Resolver:
    def __init__(self, parts: list[Part], base: str | None) -> None:
        self.base = _canonical(base or "")
        self.by_id: dict[str, Part] = {}
        self.by_url: dict[str, Part] = {}
        names: dict[str, list[Part]] = {}
        for p in parts:
            if p.content_id:
                self.by_id.setdefault(p.content_id.strip().strip("<>").strip(), p)
            if p.location:
                url = _canonical(urljoin(self.base, _clean(p.location)))
                self.by_url[url] = p  # (the last part of a location wins, as in Chromium)
                name = _file_name(url)
                if name:
                    names.setdefault(name, []).append(p)
        self.by_file = {n: ps[0] for n, ps in names.items() if len(ps) == 1}
        self.printed = False
        self.conditional = False

    def page(self, part: Part, printed: bool) -> bytes | None:
        """The page with its sheets written in; `printed`: only those that hold on a printed
        page (the other reading keeps each sheet's media for the page's readers)."""
        self.printed = printed
        self.conditional = False
        data = _COMMENT.sub(b"", part.data)  # (links in comments load nothing)
        here = _canonical(urljoin(self.base, _clean(part.location or "")))
        base = next(_tags(data, _BASE, b"<base"), None)
        if base is not None:
            href = _attrs(base.group()).get(b"href")
            if href:
                here = _canonical(urljoin(here, _clean(href.decode("latin-1"))))
        budget = _Budget()
        charset = part.charset or "utf-8"

        def link(m: re.Match[bytes]) -> bytes:
            attrs = _attrs(m.group())
            rel = attrs.get(b"rel", b"").lower().split()
            if (b"stylesheet" not in rel or b"alternate" in rel or b"disabled" in attrs
                    or _NOT_APPLIED_TYPES.match(attrs.get(b"type", b""))):
                return m.group()
            media = attrs.get(b"media")
            if media is not None:
                self.conditional = True
                if self.printed and not htmlprint.media_holds(media):
                    return m.group()
            sheet = self.sheet(attrs.get(b"href", b""), here, budget, frozenset(), charset)
            if sheet is None:
                return m.group()
            opening = (b'<style media="%s">' % media.replace(b'"', b"").replace(b"<", b"")
                       if media else b"<style>")
            return opening + sheet + b"</style>"

        def xml_sheet(m: re.Match[bytes]) -> bytes:
            attrs = _attrs(m.group(1))
            if b"alternate" in attrs and attrs[b"alternate"].strip().lower() == b"yes":
                return m.group()
            sheet = self.sheet(attrs.get(b"href", b""), here, budget, frozenset(), charset)
            return m.group() if sheet is None else b"<style>" + sheet + b"</style>"

        def style(m: re.Match[bytes]) -> bytes:
            body = self.imports(m.group(2), here, budget, frozenset(), charset)
            return m.group(1) + body + m.group(3)

        # (the page's own `<style>` elements first: the sheets written in for links are
        # read through already)
        out = _substituted(_substituted(data, _STYLE_BLOCK, b"<style", style), _LINK,
                           b"<link", link)
        if b"<?xml-stylesheet" in out[:4096].lower():
            out = _substituted(out, _XML_SHEET, b"<?xml-stylesheet", xml_sheet)
        return out if budget.used else None

    def sheet(self, href: bytes, here: str, budget: _Budget, chain: frozenset[int],
              charset: str) -> bytes | None:
        target = self.find(_clean(html.unescape(href.decode("latin-1"))), here)
        if target is None or id(target) in chain:
            return None
        budget.charge(target)
        text = _CSS_COMMENT.sub(b" ", _sheet_text(target, charset))
        budget.add(len(text))
        where = (_canonical(urljoin(self.base, _clean(target.location)))
                 if target.location else here)
        text = self.imports(text, where, budget, chain | {id(target)}, charset)
        # (written into a `<style>`: `</style` in a comment or a string must not close it)
        return re.sub(rb"</(style)", rb"<\\/\1", text, flags=re.I)

    def imports(self, css: bytes, here: str, budget: _Budget, chain: frozenset[int],
                charset: str) -> bytes:
        """The sheet with the `@import` rules at its head (where they count) replaced by the
        sheets they name."""
        if b"@" not in css:
            return css
        css = _CSS_COMMENT.sub(b" ", css)
        out: list[bytes] = []
        pos = 0
        while True:
            rule = _PRELUDE_RULE.match(css, pos)
            if rule is not None:
                out.append(rule.group())
                pos = rule.end()
                continue
            at = _AT_RULE.match(css, pos)
            if at is None or _css_text(at.group(1)).lower() != b"import":
                break
            target = _IMPORT_TARGET.match(css, at.end())
            if target is None:
                break
            href = next((g for g in target.groups()[:5] if g is not None), b"")
            url = _css_text(href)
            sheet = self.sheet(url, here, budget, chain, charset)
            pos = target.end()
            if sheet is None:
                out.append(css[at.start() : pos])
                continue
            out.append(self.conditioned(sheet, target.group(6).strip()))
        return b"".join(out) + css[pos:]

    def conditioned(self, sheet: bytes, tail: bytes) -> bytes:
        """An imported sheet under its import's conditions: `layer()` dropped, `supports()`
        an `@supports` block (the page's readings decide it per client, round 36), the media
        list an `@media` block (or decided for print)."""
        tail = re.sub(rb"^layer(?:\([^()]*\))?\s*", b"", tail, flags=re.I)
        supports = re.match(rb"supports\(((?:[^()]|\([^()]*\))*)\)\s*", tail, re.I)
        if supports is not None:
            self.conditional = True
            inner = self.conditioned(sheet, tail[supports.end() :])
            return b"@supports (%s){%s}" % (supports.group(1), inner) if inner else b""
        media = tail.strip()
        if not media:
            return sheet
        self.conditional = True
        if self.printed:
            return sheet if htmlprint.media_holds(media) else b""
        return b"@media %s{%s}" % (media, sheet)

    def find(self, href: str, here: str) -> Part | None:
        if not href:
            return None
        if href[:4].lower() == "cid:":
            return self.by_id.get(unquote(href[4:]).strip().strip("<>"))
        url = _canonical(urljoin(here, href))
        return self.by_url.get(url) or self.by_file.get(_file_name(url) or "\0")


def _tags(data: bytes, pattern: re.Pattern[bytes], opening: bytes) -> Iterator[re.Match[bytes]]:
    """`pattern`'s matches at each `opening` (case aside), until one that does not close: all
    that follows it is inside that tag or element, as a browser reads it (and a pattern
    tried at each later opening would read on to the end each time: round 21, 20,000
    `<link a="` cost 7 s)."""
    lower = data.lower()
    at = lower.find(opening)
    while at >= 0:
        after = lower[at + len(opening) : at + len(opening) + 1]
        if after.isalnum() or after in (b"-", b"_"):  # (`<linkage`: another name)
            at = lower.find(opening, at + 1)
            continue
        m = pattern.match(data, at)
        if m is None:
            return
        yield m
        at = lower.find(opening, max(m.end(), at + 1))


def _substituted(data: bytes, pattern: re.Pattern[bytes], opening: bytes,
                 replace: Callable[[re.Match[bytes]], bytes]) -> bytes:
    """`pattern.sub(replace, data)` over `_tags` only."""
    out: list[bytes] = []
    pos = 0
    for m in _tags(data, pattern, opening):
        out += (data[pos : m.start()], replace(m))
        pos = m.end()
    return b"".join(out) + data[pos:] if out else data


class _Budget:
    """Sheets written into one page: distinct sheets and bytes (a page linking one sheet a
    thousand times costs its bytes a thousand times)."""

    def __init__(self) -> None:
        self.sheets: set[int] = set()
        self.bytes = 0
        self.used = False

    def charge(self, part: Part) -> None:
        self.used = True
        self.sheets.add(id(part))
        if len(self.sheets) > _MAX_SHEETS:
            raise ScanLimitExceeded(MAX_SCAN_SIZE, f"more than {_MAX_SHEETS} style sheets")

    def add(self, n: int) -> None:
        self.bytes += n
        if self.bytes > _MAX_CSS:
            raise ScanLimitExceeded(MAX_SCAN_SIZE, f"style sheets over {_MAX_CSS} bytes")




def _sheet_text(part: Part, charset: str) -> bytes:
    """A sheet's text in the page's charset: decoded by its byte-order mark, its part's
    charset parameter, its `@charset` rule, else the page's (CSS Syntax 3.2)."""
    data = part.data
    for bom, codec in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                       (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            return _recoded(data[len(bom) :], codec, charset)
    rule = _CHARSET_RULE.match(data)
    given = part.charset or (rule.group(1).decode("latin-1") if rule else None)
    return _recoded(data, given, charset) if given else data


def _recoded(data: bytes, codec: str, charset: str) -> bytes:
    try:
        text = data.decode(codec, "replace")
        if codecs.lookup(codec).name == codecs.lookup(charset).name:
            return data
    except LookupError:
        return data
    try:
        return text.encode(charset, "xmlcharrefreplace")
    except LookupError:
        return text.encode("utf-8", "replace")


def _attrs(tag: bytes) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    body = re.sub(rb"^<[\w-]+", b"", tag)
    for m in _ATTRS.finditer(body):
        value = next((g for g in m.groups()[1:] if g is not None), b"")
        out.setdefault(m.group(1).lower(), html.unescape(value.decode("latin-1")).encode(
            "latin-1", "replace"))
    return out


def _clean(url: str) -> str:
    """A URL as the WHATWG parser takes it: blanks around it, tabs and line ends in it
    dropped, `\\` read as `/`."""
    return re.sub(r"[\t\n\r]", "", url.strip(" \t\n\r\f")).replace("\\", "/")


def _canonical(url: str) -> str:
    """A URL as a browser compares it: scheme and host in lower case, no default port, no
    fragment, dot segments (also `%2E`) removed (round 21's gateway attack)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if parts.username or parts.password:
        host = parts.netloc.rsplit("@", 1)[0] + "@" + host
    if port is not None and _DEFAULT_PORTS.get(scheme) != port:
        host += f":{port}"
    path = _DOT_SEGMENT.sub(lambda m: m.group().replace("%2e", ".").replace("%2E", "."),
                            parts.path)
    return urlunsplit((scheme, host if parts.netloc else "", _no_dots(path), parts.query, ""))


_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21, "ws": 80, "wss": 443}
_DOT_SEGMENT = re.compile(r"(?<=/)(?:%2[eE]|\.)(?:%2[eE]|\.)?(?=/|$)")


def _no_dots(path: str) -> str:
    """RFC 3986 5.2.4: `.` and `..` segments removed."""
    out: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if len(out) > 1:
                out.pop()
        elif segment != ".":
            out.append(segment)
    if path.endswith(("/.", "/..")):
        out.append("")
    return "/".join(out)


def _file_name(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[-1]
