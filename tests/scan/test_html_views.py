"""What a browser makes of an HTML page, against what zerohour decodes from it (round 6).

A sixth hostile-sender round delivered EICAR in pages whose payload a browser assembles
without any script of the page's own: base64 cut by junk that `display:none`, a class or
`<template>` hides (the reader sees, and copies, the base64 whole), a link whose `data:`
URL has a tab in its scheme and line-break character references inside its percent escapes
(the URL parser drops both), and a link inside an iframe's `srcdoc` whose references are
escaped twice (the srcdoc page is parsed once more). Chromium is the oracle: the test adds a
probe script to a copy of each page and reads what Chromium shows or downloads; zerohour
scans the page itself (`zerohour.scan.textual.html_visible`, `srcdoc_pages`, encodings'
data: URLs).
"""

from __future__ import annotations

import base64
import html
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import browser, cpu
from zerohour.errors import ScanLimitExceeded
from zerohour.scan import Engine, decompose, load_database, textual
from zerohour.scan.database import default_db_dirs
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import FileType

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
B64 = base64.b64encode(EICAR)
CHROMIUM = shutil.which("chromium")


def _junk(n: int, seed: int) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.choice(b"ABCDEFGHabcdefgh0123456789+/") for _ in range(n))


def hidden_junk(hide: str) -> bytes:
    """B64 in pieces of 3, each followed by 4 junk base64 characters in a hidden element."""
    pieces = [B64[i : i + 3] for i in range(0, len(B64), 3)]
    css = b"<style>.h{display:none}</style>" if hide == "class" else b""
    wrap = {
        "style": (b'<span style="display:none">', b"</span>"),
        "class": (b'<span class="x h">', b"</span>"),
        "hidden": (b"<span hidden>", b"</span>"),
        "template": (b"<template>", b"</template>"),
        "visibility": (b"<b style='visibility: hidden'>", b"</b>"),
    }[hide]
    body = b"".join(p + wrap[0] + _junk(4, i) + wrap[1] for i, p in enumerate(pieces))
    return (b"<!doctype html><html><head><meta charset=utf-8>" + css + b"</head><body><p>"
            + body + b"</p></body></html>\n")


def tab_scheme_link() -> bytes:
    href = b"d&Tab;ata:application/octet-stream," + b"".join(
        b"%%%X&NewLine;%X" % (c >> 4, c & 15) for c in EICAR)
    return (b'<!doctype html><html><body><a download="x.com" href="' + href
            + b'">x</a></body></html>\n')


def srcdoc_link() -> bytes:
    url = b"data:application/octet-stream;base64," + B64
    inner = b'<a download="x.com" href="' + b"".join(b"&#%d;" % c for c in url) + b'">x</a>'
    return (b'<!doctype html><html><body><iframe srcdoc="' + html.escape(inner.decode()).encode()
            + b'"></iframe></body></html>\n')


PROBE_TEXT = (b"<script>document.documentElement.setAttribute('data-text',"
              b"document.body.innerText.replace(/\\s/g,''))</script>")
PROBE_LINK = (b"<script>setTimeout(function(){var d=document,f=d.querySelector('iframe');"
              b"var a=(f?f.contentDocument:d).querySelector('a');fetch(a.href).then(function(r)"
              b"{return r.arrayBuffer()}).then(function(b){d.documentElement.setAttribute("
              b"'data-out',Array.from(new Uint8Array(b)).join(','))})},300)</script>")


def chromium_dom(tmp_path: Path, page: bytes) -> bytes:
    path = tmp_path / "page.html"
    path.write_bytes(page)
    return browser.dump_dom(path, browser.View(virtual_time_ms=3000))


def _shown_by_chromium_and_found(engine: Engine, tmp_path: Path, page: bytes) -> None:
    """Chromium shows B64 whole on `page` (the oracle); the engine finds the file in it,
    as the mail's body and as an attachment."""
    dom = chromium_dom(tmp_path, page.replace(b"</body>", PROBE_TEXT + b"</body>"))
    assert b'data-text="' + B64 + b'"' in dom
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), as_attachment


def mail(page: bytes, as_attachment: bool) -> bytes:
    disp = b"Content-Disposition: attachment; filename=doc.html\r\n" if as_attachment else b""
    return (b"From: a@x.test\r\nTo: b@y.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/html; charset=utf-8\r\n" + disp
            + b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(page))


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_database(default_db_dirs()))


def _found(engine: Engine, msg: bytes) -> bool:
    names = engine.scan_bytes(msg).names
    return bool(names) and "Eicar" in names[0]


def found_both_ways(engine: Engine, page: bytes) -> None:
    """The engine finds the file in `page`, as the mail's body and as an attachment, with no
    scan error."""
    for as_attachment in (False, True):
        report = engine.scan_bytes(mail(page, as_attachment))
        assert report.errors == (), report.errors
        assert report.names, as_attachment
        assert "Eicar" in report.names[0], as_attachment


@pytest.mark.parametrize("hide", ["style", "class", "hidden", "template", "visibility"])
def test_hidden_junk_is_dropped_from_the_view(hide: str) -> None:
    visible = textual.html_visible(hidden_junk(hide))
    assert visible is not None
    assert B64 in visible.replace(b"\n", b"")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.parametrize("hide", ["style", "class", "hidden", "template", "visibility"])
def test_base64_cut_by_hidden_junk_is_what_the_reader_sees(engine: Engine, tmp_path: Path,
                                                           hide: str) -> None:
    page = hidden_junk(hide)
    dom = chromium_dom(tmp_path, page.replace(b"</body>", PROBE_TEXT + b"</body>"))
    assert b'data-text="' + B64 + b'"' in dom
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.parametrize("page", [tab_scheme_link(), srcdoc_link()],
                         ids=["tab-in-scheme-newlines-in-escapes", "srcdoc-escaped-twice"])
def test_links_chromium_downloads_are_decoded(engine: Engine, tmp_path: Path,
                                              page: bytes) -> None:
    dom = chromium_dom(tmp_path, page.replace(b"</body>", PROBE_LINK + b"</body>"))
    assert f'data-out="{",".join(map(str, EICAR))}"'.encode() in dom
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment))


def hidden_by(css: bytes, before: bytes, after: bytes) -> bytes:
    """B64 in pieces of 3, each followed by junk between `before` and `after`."""
    pieces = [B64[i : i + 3] for i in range(0, len(B64), 3)]
    body = b"".join(p + before + _junk(4, i) + after for i, p in enumerate(pieces))
    return (b"<!doctype html><html><head><meta charset=utf-8><style>" + css
            + b"</style></head><body><p>" + body + b"</p></body></html>\n")


#: Ways to hide junk between visible base64 pieces: (style sheet, before, after). Round 7:
HIDING = {
    "tag-selector-important": (b"u{display:none!important}", b'<u style="display:inline">',
                               b"</u>"),
    "attribute-selector": (b"span[id^=k]{display:none}", b'<span id="k1" class=n>', b"</span>"),
    "not-selector": (b":not(p)>q, q:not(.x){display:none}", b"<q>", b"</q>"),
    "sibling-selector": (b"a+s{display:none}", b"<a></a><s>", b"</s>"),
    "child-selector": (b"p>em{display:none}", b"<em>", b"</em>"),
    "css-escape-inline": (b"", b'<span style="d\\69 splay:none">', b"</span>"),
    "entity-inline": (b"", b'<span style="display&#58;none">', b"</span>"),
    "iframe-text": (b"", b"<iframe width=0 height=0 frameborder=0>", b"</iframe>"),
    "video-fallback": (b"", b"<video>", b"</video>"),
    "closed-details": (b"", b'<details style="display:inline"><summary style="display:none">'
                            b"</summary>", b"</details>"),
    "svg-desc": (b"", b"<svg width=0 height=0><desc>", b"</desc></svg>"),
    # round 8
    "visibility-collapse": (b"", b'<span style="visibility:collapse">', b"</span>"),
    "display-var": (b".v{--d:none}", b'<span class=v style="display:var(--d)">', b"</span>"),
    "is-selector": (b":is(.n){display:none}", b"<span class=n>", b"</span>"),
    "where-selector": (b"span:where(.n){display:none}", b"<span class=n>", b"</span>"),
    "attribute-i-flag": (b'[data-k="V" i]{display:none}', b"<span data-k=v>", b"</span>"),
    "slash-hidden": (b"", b"<span/hidden>", b"</span>"),
    "noembed": (b"", b"<noembed>", b"</noembed>"),
    "math-annotation": (b"", b"<math><semantics><mi></mi><annotation>", b"</annotation>"
                        b"</semantics></math>"),
    "shadow-root": (b"", b"<span><template shadowrootmode=open></template>", b"</span>"),
    "details-open-in-title": (b"", b'<details title=" open">', b"</details>"),
    # round 8's misses: universal subjects (children hidden, the parent's own text shown),
    # escaped punctuation in class and id names
    "universal-descendant": (b"p *{display:none}", b"<b>", b"</b>"),
    "universal-child": (b"p>*:not(.z){display:none}", b"<i class=y>", b"</i>"),
    "escaped-colon-class": (b".a\\:b{display:none}", b'<span class="a:b">', b"</span>"),
    "escaped-dot-class": (b".a\\.b{display:none}", b'<span class="a.b">', b"</span>"),
    "hex-escaped-id": (b"#k\\31 \\2e x{display:none}", b'<span id="k1.x">', b"</span>"),
    # text straight inside SVG (or a group of it) and MathML is not rendered
    "svg-bare-text": (b"", b"<svg width=0 height=0>", b"</svg>"),
    "svg-group-text": (b"", b"<svg width=9 height=9><g>", b"</g></svg>"),
    "math-bare-text": (b"", b"<math>", b"</math>"),
}


def _entity_url(url: bytes) -> bytes:
    return b"".join(b"&#x%x;" % c for c in url)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.parametrize("element", [
    b'<object id=e data="%s"></object>', b'<embed id=e src="%s">',
    b'<form id=e action="%s"></form>',
])
def test_data_urls_in_other_elements_are_decoded(engine: Engine, tmp_path: Path,
                                                 element: bytes) -> None:
    """A whole data: URL behind character references in an HTML fragment (it sniffs as
    text): Chromium's fetch of the element's URL gets EICAR."""
    url = b"data:application/octet-stream," + b"".join(b"%%%02X" % c for c in EICAR)
    page = element % _entity_url(url)
    probe = (b"<script>var e=document.getElementById('e');fetch(e.data||e.src||e.action)"
             b".then(function(r){return r.arrayBuffer()}).then(function(b){document."
             b"documentElement.setAttribute('data-out',Array.from(new Uint8Array(b))"
             b".join(','))})</script>")
    dom = chromium_dom(tmp_path, b"<!doctype html><html><body>" + page + probe
                       + b"</body></html>")
    assert f'data-out="{",".join(map(str, EICAR))}"'.encode() in dom
    assert _found(engine, mail(page, True))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.parametrize("charset", ["big5", "gb18030", "euc-kr", "shift_jis"])
def test_a_page_in_the_charset_its_meta_declares(engine: Engine, tmp_path: Path,
                                                 charset: str) -> None:
    """The mail says nothing of the charset, the page's `<meta>` does: a browser shows one
    character between the groups (in Big5 or Shift_JIS its second byte is ASCII)."""
    sep = {"big5": "\u4e00", "gb18030": "\u4e00", "euc-kr": "\uac00", "shift_jis": "\u3000"}
    text = sep[charset].join(_lines4(B64.decode()))
    page = (f'<!doctype html><html><head><meta charset="{charset}"></head><body><p>'
            f"{text}</p></body></html>\n").encode(charset)
    dom = chromium_dom(tmp_path, page.replace(b"</body>", PROBE_TEXT + b"</body>"))
    shown = html.unescape(dom.split(b'data-text="')[1].split(b'"')[0].decode())
    assert "".join(ch for ch in shown if ch.isascii()) == B64.decode()
    msg = (b"From: a@x.test\r\nTo: b@y.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/html\r\nContent-Disposition: attachment; filename=p.html\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(page))
    assert _found(engine, msg)


def _lines4(text: str) -> list[str]:
    return [text[i : i + 4] for i in range(0, len(text), 4)]




@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.parametrize("shape", list(HIDING))
def test_hiding_from_rounds_seven_to_nine_is_seen_through(engine: Engine, tmp_path: Path,
                                                            shape: str) -> None:
    """Selectors (tag, attribute with operators and the `i` flag, :not, :is, :where, sibling,
    child), CSS escapes, references and custom properties in a style attribute, fallback,
    annotation and description elements, a shadow root: Chromium shows the base64 whole
    (the oracle), zerohour reads it so too."""
    page = hidden_by(*HIDING[shape])
    _shown_by_chromium_and_found(engine, tmp_path, page)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.parametrize("sheet", ["link", "import"])
def test_a_style_sheet_in_a_data_url_is_read(engine: Engine, tmp_path: Path, sheet: str) -> None:
    css = "data:text/css,.n%7Bdisplay:none%7D"
    head = (f'<link rel=stylesheet href="{css}">' if sheet == "link"
            else f'<style>@import url("{css}");</style>').encode()
    page = hidden_by(b"", b"<span class=n>", b"</span>").replace(b"<style>", head + b"<style>")
    dom = chromium_dom(tmp_path, page.replace(b"</body>", PROBE_TEXT + b"</body>"))
    assert b'data-text="' + B64 + b'"' in dom
    assert _found(engine, mail(page, True))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.parametrize("how", ["decoy-meta-first", "xml-declaration", "whatwg-label"])
def test_the_charset_a_browser_uses(engine: Engine, tmp_path: Path, how: str) -> None:
    """A `charset=` inside another meta's content is no declaration; an XHTML page's XML
    declaration is one; `x-x-big5` is Big5 to a browser."""
    text = "\u4e00".join(_lines4(B64.decode()))
    name = "p.xhtml" if how == "xml-declaration" else "p.html"
    if how == "xml-declaration":
        page = ('<?xml version="1.0" encoding="big5"?><html xmlns="http://www.w3.org/1999/'
                f'xhtml"><body><p>{text}</p></body></html>\n').encode("big5")
    else:
        decl = ('<meta name=description content="charset=utf-8"><meta charset="big5">'
                if how == "decoy-meta-first" else '<meta charset="x-x-big5">')
        page = (f"<!doctype html><html><head>{decl}</head><body><p>{text}</p></body>"
                "</html>\n").encode("big5")
    path = tmp_path / name
    probe = PROBE_TEXT.replace(b"document.body.innerText", b"document.querySelector('p')"
                               b".textContent")
    path.write_bytes(page.replace(b"</body>", probe + b"</body>"))
    dom = browser.dump_dom(path, browser.View(virtual_time_ms=3000))
    shown = html.unescape(dom.split(b'data-text="')[1].split(b'"')[0].decode())
    assert "".join(ch for ch in shown if ch.isascii()) == B64.decode()
    msg = (b"From: a@x.test\r\nTo: b@y.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; "
           b"filename=" + name.encode() + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + base64.encodebytes(page))
    assert _found(engine, msg)


def test_an_out_of_range_css_escape_is_a_replacement_character() -> None:
    """`\\FFFFFF` is past U+10FFFF: CSS reads U+FFFD. It raised ValueError in the hidden-text
    view, and every page holding it failed to scan (a tempfail)."""
    page = (b"<html><head><style>.x{d\\FFFFFF isplay:none} #\\110000 *{display:none}</style>"
            b"</head><body><p>" + B64[:30] + b"<span style='display:none'>junk</span>"
            + B64[30:] + b"</p></body></html>")
    report = Engine(load_database(default_db_dirs())).scan_bytes(page, "a.html")
    assert not report.errors
    assert report.names
    assert "Eicar" in report.names[0]


def _transformed(how: str) -> bytes:
    """B64 whose letters only CSS text-transform makes right (round 13): each letter drawn in
    the other case inside an element that turns it back; digits and signs as they are."""
    def piece(c: int) -> bytes:
        ch = bytes([c])
        if not ch.isalpha():
            return ch
        mode = b"uppercase" if ch.isupper() else b"lowercase"
        if how == "inline":
            return b'<span style="text-transform:' + mode + b'">' + ch.swapcase() + b"</span>"
        return b'<span class="' + mode[:1] + b'">' + ch.swapcase() + b"</span>"
    css = b"<style>.u{text-transform:uppercase}.l{text-transform:lowercase}</style>"
    return (b"<!doctype html><html><head><meta charset=utf-8>" + css + b"</head><body><p>"
            + b"".join(piece(c) for c in B64) + b"</p></body></html>\n")


def _in_text_fields() -> bytes:
    """B64 in pieces of 3, junk between them in zero-size text fields (round 13)."""
    pieces = [B64[i : i + 3] for i in range(0, len(B64), 3)]
    field = b'<textarea style="display:inline;width:0;height:0;border:0">'
    return (b"<!doctype html><html><body><p>" + b"".join(
        p + field + _junk(4, i) + b"</textarea>" for i, p in enumerate(pieces))
        + b"</p></body></html>\n")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.parametrize("shape", ["transform-inline", "transform-class", "text-fields"])
def test_round_thirteen_html_is_read_as_the_browser_shows_it(engine: Engine, tmp_path: Path,
                                                             shape: str) -> None:
    page = _in_text_fields() if shape == "text-fields" else _transformed(shape.split("-")[1])
    _shown_by_chromium_and_found(engine, tmp_path, page)


def test_text_transform_leaves_tags_and_other_text_alone() -> None:
    page = (b"<style>.u{text-transform:uppercase}</style><p class=u>ab <A HREF=x>cd</A></p>"
            b"<p>ef</p><b style='text-transform: capitalize'>gh ij</b>")
    out = textual.html_transformed(page)
    assert out == (b"<style>.u{text-transfxrm:uppercase}</style><p class=u>AB <A HREF=x>CD"
                   b"</A></p><p>ef</p><b style='text-transfxrm: capitalize'>Gh Ij</b>")
    assert textual.html_transformed(b"<p>no transform</p>") is None


def _alternating(css: bytes, shown: bytes, junk: bytes) -> bytes:
    """B64 in pieces of 3, each in a `shown` element, junk in a `junk` element after it; no
    `<style>` element when `css` is a `<link>` (round 13)."""
    pieces = [B64[i : i + 3] for i in range(0, len(B64), 3)]
    body = b"".join(b"<" + shown + b">" + p + b"</span><" + junk + b">" + _junk(4, i)
                    + b"</span>" for i, p in enumerate(pieces))
    head = css if css.startswith(b"<link") else b"<style>" + css + b"</style>"
    return (b"<!doctype html><html><head><meta charset=utf-8>" + head
            + b"</head><body><div>" + body + b"</div></body></html>\n")


#: Round 13: selectors whose subject is chosen by :not() or by its place among its siblings,
#: a style sheet linked from a data: URL on a page without a `<style>` element.
ALTERNATING = {
    "not-class": (b"span:not(.a){display:none}", b"span class=a", b"span class=b"),
    "nth-child-even": (b"div span:nth-child(2n){display:none}", b"span", b"span"),
    "nth-child-odd-shown": (b"span{display:none}span:nth-child(odd){display:inline}",
                            b"span", b"span"),
    "nth-last-of-type": (b"span:nth-last-of-type(2n+1){display:none}", b"span", b"span"),
    "link-data-css": (b'<link rel="stylesheet" href="data:text/css,.d%7Bdisplay:none%7D">',
                      b"span", b"span class=d"),
}



def test_places_among_siblings() -> None:
    page = b"<div><p>a</p><b>x</b><p>b<br>c</p></div><i>z"
    places = textual._places(page)
    assert places[page.index(b"<p>")] == (1, 1, 3, 2)
    assert places[page.index(b"<b>")] == (2, 1, 3, 1)
    assert places[page.rindex(b"<p>")] == (3, 2, 3, 2)
    assert places[page.index(b"<br>")] == (1, 1, 1, 1)
    assert places[page.index(b"<div>")] == (1, 1, 2, 1)


#: Round 14: hiding through nesting, layers, lists and keywords of the cascade, and
#: elements hidden by default.
HIDING_14 = {
    "popover": (b"", b"<span popover>", b"</span>"),
    "object-fallback": (b"", b'<object data="data:text/plain,x" width=0 height=0>', b"</object>"),
    "nesting": (b".d{p &{display:none}}", b"<span class=d>", b"</span>"),
    "nth-child-of": (b":nth-child(n of .d){display:none}", b"<span class=d>", b"</span>"),
    "is-structural": (b":is(b:nth-child(n)){display:none}", b"<b>", b"</b>"),
    "not-list": (b"p :not(i, u, p){display:none}", b"<b>", b"</b>"),
    "revert-layer": (b"@layer x{b{display:none}} @layer y{.d{display:inline}} "
                     b"@layer y{.d{display:revert-layer}}", b"<b class=d>", b"</b>"),
}



def _cased(css: bytes, upper: bytes, lower: bytes) -> bytes:
    """B64's letters swapped in case, each in an `upper` or `lower` element (round 14)."""
    def piece(c: int) -> bytes:
        ch = bytes([c])
        if not ch.isalpha():
            return ch
        return (upper if ch.isupper() else lower) % ch.swapcase()
    return (b"<!doctype html><html><head><meta charset=utf-8><style>" + css
            + b"</style></head><body><p>" + b"".join(piece(c) for c in B64)
            + b"</p></body></html>\n")


#: Round 14: text-transform through the cascade.
TRANSFORMS_14 = {
    "important-over-inline": (b"i{text-transform:uppercase!important}b{text-transform:"
                              b"lowercase!important}", b'<i style="text-transform:none">%s</i>',
                              b'<b style="text-transform:none">%s</b>'),
    "custom-property": (b":root{--u:uppercase;--l:lowercase}i{text-transform:var(--u)}"
                        b"b{text-transform:var(--l)}", b"<i>%s</i>", b"<b>%s</b>"),
    "property-initial": (b'@property --u{syntax:"*";inherits:true;initial-value:uppercase}'
                         b'@property --l{syntax:"*";inherits:true;initial-value:lowercase}'
                         b"i{text-transform:var(--u)}b{text-transform:var(--l)}",
                         b"<i>%s</i>", b"<b>%s</b>"),
    "specificity-over-order": (b"i.x{text-transform:uppercase}i{text-transform:none}"
                               b"b.y{text-transform:lowercase}b{text-transform:none}",
                               b"<i class=x>%s</i>", b"<b class=y>%s</b>"),
    "lang": (b":lang(en){text-transform:uppercase}b:lang(en){text-transform:lowercase}",
             b"<i lang=en>%s</i>", b"<b lang=en>%s</b>"),
    "escaped-inline": (b"", b'<i style="text-transform:\\75ppercase">%s</i>',
                       b'<b style="text-tran\\73 form:lowercase">%s</b>'),
}



def test_nested_rules_are_flattened() -> None:
    sheet = b".a{color:red; .b &{display:none} x{y:z} @media print{.c{q:r}}}"
    assert textual._flat_rules(sheet) == [(b".b .a", b"display:none", None),
                                          (b".a x", b"y:z", None), (b".a .c", b"q:r", None),
                                          (b".a", b"color:red;", None)]
    layers: list[bytes] = []
    sheet = b"@layer b, a; @layer a{p{x:y}} @scope (.d){:scope{display:none} i{u:v}}"
    assert textual._flat_rules(sheet, layers) == [(b"p", b"x:y", b"a"),
                                                  (b".d", b"display:none", None),
                                                  (b".d i", b"u:v", None)]
    assert layers == [b"b", b"a"]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_a_math_letter_is_no_base64_letter(engine: Engine, tmp_path: Path) -> None:
    """Round 14: `<mi>x</mi>` shows as U+1D465 (mathematical italic), which `base64 -di`
    skips; the junk beside it is in an annotation no browser renders."""
    import re

    page = hidden_by(b"", b"<math><semantics><mi>x</mi><annotation>",
                     b"</annotation></semantics></math>")
    dom = chromium_dom(tmp_path, page.replace(b"</body>", PROBE_TEXT + b"</body>"))
    text = re.search(rb'data-text="([^"]*)"', dom)
    assert text is not None
    assert bytes(c for c in text.group(1) if c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
                 b"qrstuvwxyz0123456789+/=") == B64
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment))


#: Round 15: cascade layers, scopes, selector lists in :where(), custom properties with
#: fallbacks, specificity of the whole selector, MathML phantoms.
HIDING_15 = {
    "layer-unlayered-wins": (b"b{display:none} @layer x{b{display:inline}}", b"<b>", b"</b>"),
    "layer-order-statement": (b"@layer b, a; @layer a{b{display:none}} @layer b{b{display:"
                              b"inline}}", b"<b>", b"</b>"),
    "scope": (b"@scope (.d){:scope{display:none}}", b"<span class=d>", b"</span>"),
    "where-list": (b":where(.zz, b, .yy){display:none}", b"<b>", b"</b>"),
    "var-fallback": (b"b{display:var(--nothing, none)}", b"<b>", b"</b>"),
    "property-initial-display": (b'@property --h{syntax:"<custom-ident>";inherits:true;'
                                 b"initial-value:none} .d{display:var(--h)}",
                                 b"<b class=d>", b"</b>"),
    "nested-var": (b":root{--b:none;--a:var(--b)} b{display:var(--a)}", b"<b>", b"</b>"),
    "mphantom": (b"", b"<math><mphantom><mtext>", b"</mtext></mphantom></math>"),
    "maction": (b"", b'<math><maction actiontype="toggle" selection="1"><mtext></mtext>'
                b"<mtext>", b"</mtext></maction></math>"),
}
TRANSFORMS_15 = {
    "revert-to-inherited": (b"p{text-transform:uppercase} i{text-transform:none} i{text-"
                            b"transform:revert} b{text-transform:lowercase}",
                            b"<i>%s</i>", b"<b>%s</b>"),
    "descendant-specificity": (b"p i{text-transform:uppercase}i{text-transform:none}"
                               b"p b{text-transform:lowercase}b{text-transform:none}",
                               b"<i>%s</i>", b"<b>%s</b>"),
    # round 15's misses: the layer below a `revert-layer`; a property that does not inherit
    "revert-layer": (b"@layer a{i{text-transform:uppercase}b{text-transform:lowercase}}"
                     b"@layer b{i{text-transform:revert-layer}b{text-transform:revert-layer}}"
                     b"p{text-transform:none}", b"<i>%s</i>", b"<b>%s</b>"),
    "property-not-inherited": (b'@property --u{syntax:"*";inherits:false;initial-value:'
                               b'uppercase}@property --l{syntax:"*";inherits:false;'
                               b"initial-value:lowercase}:root,p{--u:lowercase;--l:uppercase}"
                               b"i{text-transform:var(--u)}b{text-transform:var(--l)}",
                               b"<i>%s</i>", b"<b>%s</b>"),
}

#: Rounds 13 to 15: every page above, by name.
PAGES_13_14 = {
    **{f"selector-{k}": (_alternating, v) for k, v in ALTERNATING.items()},
    **{f"hidden-{k}": (hidden_by, v) for k, v in {**HIDING_14, **HIDING_15}.items()},
    **{f"transform-{k}": (_cased, v) for k, v in {**TRANSFORMS_14, **TRANSFORMS_15}.items()},
}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.parametrize("shape", list(PAGES_13_14))
def test_rounds_thirteen_and_fourteen_pages_read_as_chromium_shows_them(
        engine: Engine, tmp_path: Path, shape: str) -> None:
    """Selectors chosen by :not() or a place among siblings, the cascade showing again,
    nesting, layers, elements hidden by default, text-transform through the cascade:
    Chromium shows B64 whole (the oracle), and the engine reads it so."""
    make, args = PAGES_13_14[shape]
    _shown_by_chromium_and_found(engine, tmp_path, make(*args))


def test_open_details_of_one_name_show_only_the_first() -> None:
    """Round 15: of several `<details name=g open>`, the HTML parser leaves the first open;
    the junk in the others is not on screen."""
    page = (b"<p>" + b"".join(b"%s<details name=g open>%04d</details>" % (B64[i : i + 3], i)
                             for i in range(0, len(B64), 3)) + b"</p>")
    visible = textual.html_visible(page)
    assert visible is not None
    assert B64[3:] in visible.replace(b"\n", b"").replace(b"0000", b"", 1)


#: The flat tree's text as Chromium lays it out: shadow roots, slots with what they take.
PROBE_FLAT = (b"<script>function t(n){if(n.nodeType==3)return n.data;if(n.nodeType!=1)return '';"
              b"if(n.localName=='script'||n.localName=='style')return '';"
              b"if(n.localName=='slot'){var a=n.assignedNodes({flatten:true});"
              b"return Array.from(a.length?a:n.childNodes).map(t).join('')}"
              b"return Array.from((n.shadowRoot||n).childNodes).map(t).join('')}"
              b"document.documentElement.setAttribute('data-flat',t(document.body)"
              b".replace(/\\s/g,''))</script>")


def _shadow_page(shown_by: str) -> bytes:
    """Round 15: B64 in a host with a declarative shadow root. `light`: junk in children no
    slot takes (not rendered); `flat`: pieces the named slots put in order, the light
    children in reverse."""
    pieces = [B64[i : i + 8] for i in range(0, len(B64), 8)]
    if shown_by == "light":
        kids = b"".join(p + b'<i slot="nowhere">%d</i>' % i for i, p in enumerate(pieces))
        shadow = b"<slot></slot>"
    else:
        kids = b"".join(b'<span slot="s%d">%s</span>' % (i, p)
                        for i, p in reversed(list(enumerate(pieces))))
        shadow = b"".join(b'<slot name="s%d"></slot>' % i for i in range(len(pieces)))
    return (b"<!doctype html><html><head><meta charset=utf-8></head><body><p><span>"
            b'<template shadowrootmode="open">' + shadow + b"</template>" + kids
            + b"</span></p></body></html>\n")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.parametrize("shown_by", ["light", "flat"])
def test_a_declarative_shadow_root_is_laid_out(engine: Engine, tmp_path: Path,
                                               shown_by: str) -> None:
    page = _shadow_page(shown_by)
    dom = chromium_dom(tmp_path, page.replace(b"</body>", PROBE_TEXT + PROBE_FLAT + b"</body>"))
    attr = b"data-text" if shown_by == "light" else b"data-flat"
    assert attr + b'="' + B64 + b'"' in dom
    assert B64 not in re.sub(rb"<[^>]*>|\s", b"", page)  # not in the page's own order
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), as_attachment


@pytest.mark.parametrize("far", [False, True])
def test_a_host_far_before_its_shadow_root(engine: Engine, tmp_path: Path, far: bool) -> None:
    """Session 25: the host's light children before its template (no slot takes them) ran
    past the 16 KB looked back for the host's opening tag: the root was dropped, its slots'
    order with it, and the pieces were read in the light children's order."""
    page = _shadow_page("flat")
    filler = b"".join(b'<b slot="nowhere">filler %d</b>' % i for i in range(1200 if far else 9))
    page = page.replace(b"<p><span><template", b"<p><span>" + filler + b"<template")
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), as_attachment
    if CHROMIUM is not None and far:
        assert B64 in printed_text(tmp_path, page).replace(b"\n", b"")


def _slotted_page(sheet: bytes, before: bytes, after: bytes) -> bytes:
    pieces = [B64[i : i + 3] for i in range(0, len(B64), 3)]
    return (b'<!doctype html><div><template shadowrootmode="open"><style>' + sheet
            + b"</style><slot></slot></template>"
            + b"".join(p + before + _junk(4, i) + after for i, p in enumerate(pieces))
            + b"</div>")


#: Round 39: junk in the light tree a shadow sheet's `::slotted()` rule hides.
SLOTTED = {
    "a class": _slotted_page(b"::slotted(.j){display:none}", b"<span class=j>", b"</span>"),
    "any element": _slotted_page(b"::slotted(*){display:none}", b"<span>", b"</span>"),
    "the slot's type": _slotted_page(b"slot::slotted(span){display:none}", b"<span>",
                                     b"</span>"),
}
#: ...and rules that match no slotted child, whose B64 pieces in `<span>`s show (the junk
#: in `<b hidden>`).
NOT_SLOTTED = {
    "a slot no slot is": b"slot[name=none]::slotted(span){display:none}",
    "another element": b"div::slotted(span){display:none}",
}


@pytest.mark.parametrize("name", sorted(SLOTTED))
def test_slotted_rules_hide_light_children(engine: Engine, tmp_path: Path, name: str) -> None:
    for as_attachment in (False, True):
        assert _found(engine, mail(SLOTTED[name], as_attachment)), as_attachment
    if CHROMIUM is not None:
        assert B64 in printed_text(tmp_path, SLOTTED[name]).replace(b"\n", b"")


@pytest.mark.parametrize("name", sorted(NOT_SLOTTED))
def test_slotted_rules_that_match_nothing(engine: Engine, tmp_path: Path, name: str) -> None:
    pieces = [B64[i : i + 3] for i in range(0, len(B64), 3)]
    page = (b'<!doctype html><div><template shadowrootmode="open"><style>' + NOT_SLOTTED[name]
            + b"</style><slot></slot></template>"
            + b"".join(b"<span>" + p + b"</span><b hidden>" + _junk(4, i) + b"</b>"
                       for i, p in enumerate(pieces)) + b"</div>")
    assert _found(engine, mail(page, False))
    if CHROMIUM is not None:
        assert B64 in printed_text(tmp_path, page).replace(b"\n", b"")


#: Round 39: junk in an SVG box of no size, which clips what it holds (`before`, `after`;
#: the last two sized again by a style, so the junk shows).
CLIPPED_SVG = {
    "a 0x0 image": (b"<svg width=0 height=0><foreignObject width=50 height=50><span>",
                    b"</span></foreignObject></svg>", True),
    "a foreignObject of no height": (
        b'<svg width=50 height=50><foreignObject width="50" height="0.0"><span>',
        b"</span></foreignObject></svg>", True),
    "a style of no width": (b'<svg style="width: 0px" height=50><foreignObject width=50 '
                            b"height=50><span>", b"</span></foreignObject></svg>", True),
    "a style that sizes it": (b'<svg width=0 height=50 style="width:60px"><foreignObject '
                              b"width=50 height=50><span>", b"</span></foreignObject></svg>",
                              False),
}


@pytest.mark.parametrize("name", sorted(CLIPPED_SVG))
def test_svg_boxes_of_no_size_clip_their_content(engine: Engine, tmp_path: Path,
                                                  name: str) -> None:
    before, after, clipped = CLIPPED_SVG[name]
    pieces = [B64[i : i + 3] for i in range(0, len(B64), 3)]
    page = (b"<!doctype html><p>" + b"".join(p + before + _junk(4, i) + after
                                              for i, p in enumerate(pieces)) + b"</p>")
    if clipped:
        for as_attachment in (False, True):
            assert _found(engine, mail(page, as_attachment)), as_attachment
    if CHROMIUM is not None:
        assert (B64 in printed_text(tmp_path, page).replace(b"\n", b"")) is clipped


def test_shadow_readings_of_a_page_without_shadow_roots() -> None:
    from zerohour.scan.htmlshadow import shadow_readings

    assert shadow_readings(b"<p><template>x</template>y</p>") == []
    assert shadow_readings(b"<template shadowrootmode=open>x</template>y") == [b"y"]


def test_shadow_roots_in_a_page_of_unclosed_tags_cost_linear_time() -> None:
    """Shadow roots behind or among 50k unclosed elements: the host search is bounded, so is
    the number of roots laid out (the scan's deadline is checked between two)."""

    from zerohour.scan.htmlshadow import shadow_readings

    root = b"<template shadowrootmode=open><slot></slot></template>"
    for page in (b"<b>x" * 50_000 + root + b"y" * 64, (b"<i>" + root) * 5000 + b"<b>x" * 50_000):
        started = cpu.process_time()
        shadow_readings(page)
        assert cpu.process_time() - started < 8.0


def printed_text(tmp_path: Path, page: bytes, name: str = "page.html") -> bytes:
    """The text of the page as Chromium prints it (to PDF, read by pdftotext): what is
    painted, not what the DOM holds (innerText keeps scaled-away and clipped text). `name`:
    the file's, which says what Chromium opens (`page.mht`: a saved page's parts)."""
    path = tmp_path / name
    path.write_bytes(page)
    pdf = tmp_path / "page.pdf"
    pdf.write_bytes(browser.print_pdf(path))
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          timeout=60, check=True).stdout
    return re.sub(rb"\s", b"", text)


#: Round 16: junk CSS keeps from the paint without display or visibility (inline and in a
#: style sheet): (style sheet, before, after).
VISUALLY_HIDDEN = {
    "scale-0": (b"", b'<span style="display:inline-block;transform:scale(0);width:0">',
                b"</span>"),
    "zero-box": (b"", b'<span style="display:inline-block;width:0;height:0;overflow:hidden">',
                 b"</span>"),
    "clip-path-inset": (b"", b'<span style="position:absolute;clip-path:inset(50%)">',
                        b"</span>"),
    "off-screen": (b"", b'<span style="position:absolute;left:-9999px">', b"</span>"),
    "sr-only-rule": (b".sr{position:absolute;width:1px;height:1px;overflow:hidden;"
                     b"clip:rect(0 0 0 0)}", b"<span class=sr>", b"</span>"),
}


@pytest.mark.skipif(CHROMIUM is None or shutil.which("pdftotext") is None,
                    reason="chromium or pdftotext not installed")
@pytest.mark.parametrize("shape", list(VISUALLY_HIDDEN))
def test_visually_hidden_junk_is_not_read(engine: Engine, tmp_path: Path, shape: str) -> None:
    page = hidden_by(*VISUALLY_HIDDEN[shape])
    assert printed_text(tmp_path, page) == B64
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), as_attachment


def test_hiding_css_reads_clip_rectangles() -> None:
    assert textual._hiding_css(b"clip: rect(1px, 1px, 1px, 1px)")
    assert textual._hiding_css(b"clip:rect(0 0 0 0)")
    assert not textual._hiding_css(b"clip:rect(0 200px 40px 0)")
    assert not textual._hiding_css(b"width:0")  # its overflow still shows
    assert not textual._hiding_css(b"left:-20px;transform:scale(0.5)")


def _laid_out(shape: str) -> bytes:
    """Round 16: B64 in 8-character pieces that only the layout (or CSS-made text) puts in
    order; lines of 32 characters."""
    rnd = random.Random(16)
    lines = [B64[i : i + 32] for i in range(0, len(B64), 32)]
    css, rows = b"", []
    for r, line in enumerate(lines):
        cs = [line[i : i + 8] for i in range(0, len(line), 8)]
        order = list(range(len(cs)))
        rnd.shuffle(order)
        if shape == "flex-order":
            rows.append(b'<div style="display:flex">' + b"".join(
                b'<span style="order:%d">%s</span>' % (i, cs[i]) for i in order) + b"</div>")
        elif shape == "flex-row-reverse":
            rows.append(b'<div style="display:flex;flex-direction:row-reverse;justify-content:'
                        b'flex-end">' + b"".join(b"<span>%s</span>" % c for c in cs[::-1])
                        + b"</div>")
        elif shape == "grid":
            rows.append(b'<div style="display:grid;grid-template-columns:repeat(4,max-content)">'
                        + b"".join(b'<span style="grid-row:1;grid-column:%d">%s</span>'
                                   % (i + 1, cs[i]) for i in order) + b"</div>")
        elif shape == "absolute":
            rows += [b'<span style="position:absolute;top:%dem;left:%dch">%s</span>'
                     % (2 + 2 * r, 2 + 9 * i, cs[i]) for i in order]
        elif shape == "bdo-rtl":
            rows.append(b'<div><bdo dir="rtl">' + line[::-1] + b"</bdo></div>")
        elif shape == "before-content":
            rows.append(b"<div>" + b"".join(b'<i id="c%d_%d"></i>' % (r, i)
                                            for i in range(len(cs))) + b"</div>")
            css += b"".join(b'#c%d_%d::before{content:"%s"}' % (r, i, cs[i]) for i in order)
        elif shape == "attr-after":
            rows.append(b"<div>" + b"".join(b'<i data-x="%s"></i>' % c for c in cs) + b"</div>")
            css = b"i::after{content:attr(data-x)}"
        elif shape == "list-marker":
            rows.append(b'<ul style="padding-left:0;margin:0">' + b"".join(
                b"<li style=\"list-style-type:'%s';list-style-position:inside;display:inline "
                b'list-item"></li>' % c for c in cs) + b"</ul>")
        elif shape == "input-value":
            rows.append(b"<div>" + b"".join(
                b'<input readonly value="%s" style="border:0;padding:0;width:8ch;'
                b'font:inherit">' % c for c in cs) + b"</div>")
        elif shape == "img-alt":
            rows.append(b"<div>" + b"".join(b'<img alt="%s">' % c for c in cs) + b"</div>")
    if shape == "absolute":
        rnd.shuffle(rows)
    return (b"<!doctype html><html><head><meta charset=utf-8><style>body{font-family:"
            b"monospace;font-size:11px}" + css + b"</style></head><body>\n"
            + b"\n".join(rows) + b"\n</body></html>\n")


LAYOUTS = ["flex-order", "flex-row-reverse", "grid", "absolute", "bdo-rtl", "before-content",
           "attr-after", "list-marker", "input-value", "img-alt"]


@pytest.mark.skipif(CHROMIUM is None or shutil.which("pdftotext") is None,
                    reason="chromium or pdftotext not installed")
@pytest.mark.parametrize("shape", LAYOUTS)
def test_text_in_the_order_the_layout_shows_it(engine: Engine, tmp_path: Path,
                                               shape: str) -> None:
    page = _laid_out(shape)
    assert printed_text(tmp_path, page) == B64
    assert B64 not in re.sub(rb"<[^>]*>|\s", b"", page)  # not in the page's own order
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), as_attachment


def test_a_laid_out_page_is_not_laid_out_again() -> None:
    """The reading is the laid-out page's text (no HTML: CSS-made text is not made twice,
    pages do not grow)."""
    from zerohour.scan import htmllayout

    page = _laid_out("before-content")
    once = htmllayout.laid_out(page)
    assert once is not None
    assert B64 in re.sub(rb"<[^>]*>|\s", b"", once)
    ctx = ScanContext()
    children = list(decompose.children(page, FileType.HTML, ctx))
    layouts = [c for c in children if c.origin == "html-layout"]
    assert len(layouts) == 1
    assert b"<" not in layouts[0].data
    again = [c for c in decompose.children(layouts[0].data, FileType.HTML, ctx)
             if c.origin == "html-layout"]
    assert again == []


def test_layout_of_a_deep_wide_page_costs_linear_time() -> None:

    from zerohour.scan import htmllayout

    page = (b"<style>.f{display:flex} i::before{content:attr(x)}</style>"
            + b'<div class=f><i x=1 style="order:2">a</i>' * 3000 + b"<img alt=q>" * 50_000)
    started = cpu.process_time()
    htmllayout.laid_out(page)
    assert cpu.process_time() - started < 10.0
    # many rules, many elements: only the rules an element could match are tried, and the
    # tries are bounded (a limit finding, never an endless scan)
    rules = b"".join(b'.c%d::before{content:"x"} ' % i for i in range(2000))
    for subject in (b".c%d", b"p"):
        sheet = rules if subject != b"p" else b'p::before{content:"x"} ' * 2000
        page = b"<style>" + sheet + b"</style>" + b"".join(
            b"<p class=c%d>x</p>" % i for i in range(40_000))
        started = cpu.process_time()
        try:
            htmllayout.laid_out(page)
        except ScanLimitExceeded:
            assert subject == b"p"
        assert cpu.process_time() - started < 10.0


#: A selector list a browser applies whole, the hiding selector last: a reader that cut the
#: list left the junk between the pieces in its reading (silent caps, round of audits).
LONG_LISTS = {
    "selector-list": b", ".join(b".a%d" % i for i in range(100)) + b", .h{display:none}",
    "is-list": b":is(" + b", ".join(b".a%d" % i for i in range(40)) + b", .h){display:none}",
    "nested-list": b"p{" + b", ".join(b".a%d" % i for i in range(100)) + b", .h{display:none}}",
    # (not a list: a block inside 40 others; 32 were opened, the 33rd's `}` closed the 32nd)
    "media-40-deep": b"@media all{" * 40 + b".h{display:none}" + b"}" * 40,
}


@pytest.mark.parametrize("css", list(LONG_LISTS.values()), ids=list(LONG_LISTS))
def test_the_last_selector_of_a_long_list_hides_too(engine: Engine, css: bytes) -> None:
    page = hidden_by(css, b'<span class="h">', b"</span>")
    visible = textual.html_visible(page)
    assert visible is not None
    assert B64 in visible.replace(b"\n", b"")
    assert _found(engine, mail(page, False))


def test_a_reset_sheet_of_a_hundred_selectors_is_no_finding(engine: Engine) -> None:
    """Ordinary mail: a CSS reset lists ~90 elements in one rule; a long list is read, not a
    limit."""
    reset = b", ".join(b"h%d, t%d" % (i, i) for i in range(60)) + b"{margin:0;padding:0}"
    page = (b"<!doctype html><html><head><style>" + reset + b"</style></head><body><p>Hello, "
            b"the weekly news.</p></body></html>\n")
    assert not engine.scan_bytes(mail(page, False)).names


@pytest.mark.parametrize("what", ["rules", "nested", "deep"])
def test_sheets_past_the_rule_bounds_are_a_limit_finding(engine: Engine, what: str) -> None:
    """Past `_MAX_RULES` rules (or a nested rule's product of selectors, or blocks nested
    past their bounds) the hiding rule may be the one left out: a limit finding, never a
    clean reading."""
    if what == "rules":
        css = b"".join(b".r%d{color:red}" % i for i in range(100_001)) + b".h{display:none}"
    elif what == "deep":
        css = b"@media all{" * 300 + b".h{display:none}" + b"}" * 300
    else:
        css = (b", ".join(b".o%d" % i for i in range(100)) + b"{"
               + b", ".join(b".a%d" % i for i in range(100)) + b", .h{display:none}}")
    page = hidden_by(css, b'<span class="h">', b"</span>")
    names = engine.scan_bytes(mail(page, False)).names
    assert names
    assert "Eicar" in names[0] or names[0].startswith("Heuristics.Limits.Exceeded")
