"""Attack round 41 (session 26, helper 120, black box on ad2c545): pages Chromium shows B64
whole in, the junk between its pieces hidden in ways the readings misread:

- escaped punctuation (`.j\\;x`, `.j\\'x`, `.j\\}x`): the parsed reading gave lexbor the
  selector with `textual`'s protected bytes in it, which a UTF-8 page could not decode (a
  scan error: the gateway answered 451), or that matched nothing;
- an escaped brace (`.j\\{x`): `textual._flat_rules` read it as a block's start;
- a `<foreignObject>` inside an SVG element never drawn where it stands (`<defs>`,
  `<symbol>`, a paint server, a clip, a mask, `<metadata>`, a switch's branch that requires
  an extension): `textual.undrawn_svg`;
- `::slotted()` of a compound with a function (`:not(b)`, `:is(i)`) or nested in the
  slot's rule (`slot{&::slotted(i){}}`): `htmlshadow._as_children`;
- a class written in the page's charset (windows-1252 declared, as Latin-1 or not at all;
  windows-1251, KOI8-R, gbk as a browser reads it, the charset after a decoy `<meta>` in a
  comment or a title) that a selector names by a CSS escape: the charset view
  (`decompose._meta_charset_text`) for single-byte charsets too;
- an `@import` of a data: sheet with a `{` in it: `textual._data_sheets` took it for the
  sheet's first rule, after which no import counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from scan.test_html_clients import not_shown_whole
from scan.test_html_round39 import _split
from scan.test_html_views import B64, CHROMIUM, found_both_ways
from zerohour.scan import Engine, load_database
from zerohour.scan.database import default_db_dirs


def _class_page(cls: bytes, selector: bytes) -> bytes:
    """A UTF-8 page whose junk is in `<i class="cls">` and whose sheet hides `selector`."""
    return (b"<!doctype html><html><head><meta charset=utf-8><style>" + selector
            + b"{display:none}</style></head><body><p>"
            + _split(b'<i class="' + cls + b'">', b"</i>") + b"</p></body></html>")


PAGES: dict[str, bytes] = {
    "a legacy reference before a letter": _class_page(b"j&notit", b".j\\26notit"),
    "a legacy reference before '='": _class_page(b"j&amp=x", b".j\\26 amp\\=x"),
    "a backslash": _class_page(b"j\\x", b".j\\5c x"),
    "a backslash by reference": _class_page(b"j&#92;x", b".j\\\\x"),
    "a brace": _class_page(b"j{x", b".j\\{x"),
    "a closing brace": _class_page(b"j}x", b".j\\}x"),
    "a '>'": _class_page(b"j>x", b".j\\3e x"),
    "an '&' by reference": _class_page(b"j&amp;x", b".j\\26x"),
    "a '<' by reference": _class_page(b"j&lt;x", b".j\\<x"),
    "a quote": _class_page(b"j'x", b".j\\'x"),
    "a semicolon": _class_page(b"j;x", b".j\\;x"),
}


def _svg_page(pre: bytes, post: bytes, span: bytes = b"<span>") -> bytes:
    """Each junk in a `<span>` of a `<foreignObject>` inside `pre`...`post` of an inline
    `<svg>` (drawn nowhere: a definition, a clip, a switch's branch Chromium cannot take)."""
    return (b"<!doctype html><html><head><meta charset=utf-8></head><body><p>"
            + _split(b"<svg width=50 height=50>" + pre + b"<foreignObject width=50 height=50>"
                     + span, b"</span></foreignObject>" + post + b"</svg>")
            + b"</p></body></html>")


PAGES.update({f"an SVG {name}": _svg_page(b"<" + name + b">", b"</" + name + b">")
              for name in (b"defs", b"symbol", b"marker", b"mask", b"pattern", b"clipPath",
                           b"metadata", b"linearGradient", b"radialGradient", b"filter")})
PAGES["an SVG switch's branch that needs an extension"] = _svg_page(
    b'<switch><g requiredExtensions="x">', b"</g></switch>")
PAGES["an SVG definition, visible again"] = _svg_page(b"<defs>", b"</defs>",
                                                       b"<span style=visibility:visible>")
for name, rule in (("a string", b"@import 'data:text/css,.j{display:none}';"),
                   ("a url()", b'@import url("data:text/css,.j{display:none}");')):
    # (a `{` in the import's data is no rule of the sheet: the import counts)
    PAGES[f"an import of a sheet with a brace, in {name}"] = (
        b"<!doctype html><meta charset=utf-8><style>" + rule + b"</style><p>"
        + _split(b"<i class=j>", b"</i>") + b"</p>")
for name, rule in (("a :not()", b"::slotted(:not(b)){display:none}"),
                   ("an :is()", b"::slotted(:is(i)){display:none}"),
                   ("a :where() list", b"::slotted(:where(i,u)){display:none}"),
                   ("an :nth-child()", b"::slotted(:nth-child(n)){display:none}"),
                   ("a type and a :not()", b"::slotted(i:not(.x)){display:none}"),
                   ("a :not(), hidden", b"::slotted(:not(b)){visibility:hidden}"),
                   ("a :not() in @media", b"@media screen{::slotted(:not(b)){display:none}}"),
                   ("a nested rule", b"slot{&::slotted(i){display:none}}")):
    # (the junk in the host's `<i>` children, a shadow sheet's `::slotted()` rule hides)
    PAGES[f"::slotted() with {name}"] = (
        b'<!doctype html><meta charset=utf-8><div><template shadowrootmode="open"><style>'
        + rule + b"</style><p><slot></slot></p></template>" + _split(b"<i>", b"</i>")
        + b"</div>")


def _charset_page(selector: bytes, cls: bytes, head: bytes) -> bytes:
    """A page whose `head` declares its charset, junk in `<span class="cls">` (bytes in
    that charset), its sheet hiding `selector` (a CSS escape of the class's character)."""
    return (b"<!doctype html><html><head>" + head + b"<style>" + selector
            + b"{display:none}</style></head><body><p>"
            + _split(b'<span class="' + cls + b'">', b"</span>") + b"</p></body></html>")


for name, (selector, cls, head) in {
        "windows-1251": (rb".j\439", b"j\xe9", b"<meta charset=windows-1251>"),
        "windows-1252": (rb".j\e9", b"j\xe9", b"<meta charset=windows-1252>"),
        "windows-1252, an id": (rb"#j\e9", b'x" id="j\xe9', b"<meta charset=windows-1252>"),
        "windows-1252's euro": (rb".j\20ac", b"j\x80", b"<meta charset=windows-1252>"),
        "iso-8859-1 (windows-1252 to a browser)": (rb".j\20ac", b"j\x80",
                                                   b"<meta charset=iso-8859-1>"),
        "none declared (windows-1252)": (rb".j\e9", b"j\xe9", b""),
        "koi8-r": (rb".j\439", b"j\xca", b"<meta charset=koi8-r>"),
        "gb2312, four bytes": (rb".j\80", b"j\x81\x30\x81\x30", b"<meta charset=gb2312>"),
        "gbk, four bytes": (rb".j\80", b"j\x81\x30\x81\x30", b"<meta charset=gbk>"),
        "gbk's euro": (rb".j\20ac", b"j\x80", b"<meta charset=gbk>"),
        "gbk after a meta in a comment": (
            rb".j\554a", b"j\xb0\xa1", b"<!-- <meta charset=windows-1252> --><meta charset=gbk>"),
        "shift_jis after a meta in a comment": (
            rb".j\3042", b"j\x82\xa0",
            b"<!-- <meta charset=windows-1252> --><meta charset=shift_jis>"),
        "shift_jis after a meta in the title": (
            rb".j\3042", b"j\x82\xa0",
            b"<title><meta charset=windows-1252></title><meta charset=shift_jis>"),
}.items():
    PAGES[f"a class in {name}"] = _charset_page(selector, cls, head)
#: ...and B64's pieces in an HTML element of such a name (no SVG: shown), junk hidden
PAGES["HTML elements of SVG definitions' names"] = (
    b"<!doctype html><style>.j{display:none}</style><p>" + b"".join(
        b"<defs><symbol>" + B64[i : i + 3] + b"</symbol></defs><i class=j>junk</i>"
        for i in range(0, len(B64), 3)) + b"</p>")


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_database(default_db_dirs()))


@pytest.mark.parametrize("name", sorted(PAGES))
def test_round41_pages_are_read(engine: Engine, name: str) -> None:
    found_both_ways(engine, PAGES[name])


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_chromium_shows_round41s_payload_whole(tmp_path: Path) -> None:
    assert not_shown_whole(tmp_path, PAGES, B64) == []
