"""Round 41's last shapes and their siblings (session 27): pages Chromium shows B64 whole in,
the junk between its pieces hidden by

- a sheet loaded from a data: URL whose quoted text holds a `(`, a `>` or a blank
  (`<link href="data:text/css,p>.j{display:none}">`): `textual._DATA_CSS` stopped there, on
  any page, not only in shadow trees;
- a shadow tree's `:host(:not(b)){display:none}` (the host hidden; read at the page's level,
  its `:not(b)` hid every element), and shadow sheets loaded by `<link>` or `@import`,
  percent-encoded or base64 (`htmlshadow._host_rules`, `_with_data_sheets`);
- `:lang()` and `:dir()`, alone or in `::slotted()` (lexbor reads neither; a subject of one
  alone was no hiding at all): `textual._lang_dir`;
- `display: contents` on an `<svg>`, `<select>`, `<textarea>`... which it hides as `none`
  (`textual._CONTENTS_NONE`); on a `<button>`, `<fieldset>` or `<details>` it unboxes, and
  the junk shows (the negatives);
- and round 42 (helper 121, black box on 82590f1): data: URLs with parameters, blanks,
  character references, tabs, CSS escapes, imports of imports, a typeless sheet in quirks
  mode (`textual._data_url_sheet`); `@scope` without a prelude (`htmlscope`); `:dir()` in a
  `:not()`; `display: contents` on SVG's `<text>`, `<foreignObject>`, `<switch>`,
  `<textPath>` and on MathML."""

from __future__ import annotations

import base64
import urllib.parse
from pathlib import Path

import pytest

from scan.test_html_clients import not_shown_whole
from scan.test_html_round39 import _junk, _split
from scan.test_html_views import B64, CHROMIUM, found_both_ways, mail
from zerohour.errors import ScanLimitExceeded
from zerohour.scan import Engine, htmlscope, htmlshadow, load_database, textual
from zerohour.scan.database import default_db_dirs

_HEAD = b"<!doctype html><meta charset=utf-8>"


def _linked(link: bytes, sheet: bytes = b"") -> bytes:
    """Junk in `<i class=j>`, hidden by a sheet `link` or `sheet` loads."""
    return (_HEAD + link + b"<style>" + sheet + b"</style><p>" + _split(b"<i class=j>", b"</i>")
            + b"</p>")


def _host(style: bytes) -> bytes:
    """Junk in hosts whose shadow tree's `style` hides the host."""
    return (_HEAD + b"<p>" + _split(b"<span><template shadowrootmode=open>" + style
                                    + b"<slot></slot></template>", b"</span>") + b"</p>")


def _shadow(inner: bytes, host: bytes = b"") -> bytes:
    """Junk in `<i>` children of a host whose shadow tree (`inner`, then a slot) hides them."""
    return (_HEAD + b"<div" + host + b"><template shadowrootmode=open>" + inner
            + b"<p><slot></slot></p></template>" + _split(b"<i>", b"</i>") + b"</div>")


def _sheet(css: bytes, attrs: bytes = b"", around: tuple[bytes, bytes] = (b"", b"")) -> bytes:
    """Junk in `<i attrs>`, hidden by the page's `css`."""
    return (_HEAD + b"<style>" + css + b"</style>" + around[0] + b"<p>"
            + _split(b"<i" + attrs + b">", b"</i>") + b"</p>" + around[1])


def _contents(tag: bytes, inner: bytes = b"", close: bytes = b"") -> bytes:
    """Junk in `<tag class=j>` (`inner` junk `close`), the class `display: contents`."""
    return (_HEAD + b"<style>.j{display:contents}</style><p>"
            + _split(b"<" + tag + b" class=j>" + inner, close + b"</" + tag.split()[0] + b">")
            + b"</p>")


_SLOTTED = b"::slotted(i){display:none}"
PAGES: dict[str, bytes] = {
    "a link's quoted sheet with a '('": _linked(
        b'<link rel=stylesheet href="data:text/css,i:not(b).j{display:none}">'),
    "a link's quoted sheet with a '>'": _linked(
        b'<link rel=stylesheet href="data:text/css,p>.j{display:none}">'),
    "a link's single-quoted sheet with a blank": _linked(
        b"<link rel=stylesheet href='data:text/css,p .j{display:none}'>"),
    "an import's string with a '>'": _linked(b"", b"@import 'data:text/css,p>.j{display:none}';"),
    "an import's quoted url() with a '('": _linked(
        b"", b'@import url("data:text/css,.j:is(i){display:none}");'),
    ":host(:not(b))": _host(b"<style>:host(:not(b)){display:none}</style>"),
    ":host(:not(b)) by a link": _host(
        b'<link rel=stylesheet href="data:text/css,:host(:not(b)){display:none}">'),
    "a shadow import": _shadow(b"<style>@import 'data:text/css," + _SLOTTED + b"';</style>"),
    "a shadow link": _shadow(b'<link rel=stylesheet href="data:text/css,' + _SLOTTED + b'">'),
    "a shadow link in base64": _shadow(b'<link rel=stylesheet href="data:text/css;base64,'
                                       + base64.b64encode(_SLOTTED) + b'">'),
    "a shadow import, percent-encoded": _shadow(
        b"<style>@import url('data:text/css,%3A%3Aslotted(i)%7Bdisplay:none%7D');</style>"),
    "::slotted(:dir(ltr))": _shadow(b"<style>::slotted(:dir(ltr)){display:none}</style>"),
    "::slotted(:lang(de)), the host's language": _shadow(
        b"<style>::slotted(:lang(de)){display:none}</style>", b" lang=de"),
    ":lang(de) alone": _sheet(b":lang(de){display:none}", b" lang=de"),
    "i:lang(de), a region": _sheet(b"i:lang(de){display:none}", b" lang=de-AT"),
    "i:lang(de), inherited": _sheet(b"i:lang(de){display:none}", b"",
                                    (b"<div lang=DE>", b"</div>")),
    ":dir(rtl) alone": _sheet(b":dir(rtl){display:none}", b" dir=rtl"),
    "i:dir(rtl), inherited": _sheet(b"i:dir(rtl){display:none}", b"",
                                    (b"<div dir=rtl>", b"</div>")),
    "an svg of display: contents": _contents(
        b"svg", b"<foreignObject width=50 height=50><span>", b"</span></foreignObject>"),
    "an svg's text of display: contents": _contents(b"svg", b"<text y=20>", b"</text>"),
    "a select of display: contents": _contents(b"select", b"<option>", b"</option>"),
    "a textarea of display: contents": _contents(b"textarea"),
    "an object of display: contents": _contents(b"object"),
    "a meter of display: contents": _contents(b"meter"),
    "an svg whose style is display: contents": (
        _HEAD + b"<p>" + _split(b"<svg style=display:contents><foreignObject width=50 height=50>"
                                b"<span>", b"</span></foreignObject></svg>") + b"</p>"),
    "svg{display:contents}": (
        _HEAD + b"<style>svg{display:contents}</style><p>"
        + _split(b"<svg width=50 height=50><foreignObject width=50 height=50><span>",
                 b"</span></foreignObject></svg>") + b"</p>"),
}

def _css(sheet: bytes, extra: bytes = b"", head: bytes = _HEAD, tags: tuple[bytes, bytes] = (
        b"<i class=j>", b"</i>"), around: tuple[bytes, bytes] = (b"<p>", b"</p>")) -> bytes:
    """Attack round 42's pages (helper 121, black box on 82590f1): junk in `tags`, hidden by
    `sheet` or by what `extra` loads."""
    return (head + b"<style>" + sheet + b"</style>" + extra + around[0] + _split(*tags)
            + around[1])


def _link(href: bytes) -> bytes:
    return b'<link rel=stylesheet href="' + href + b'">'


_HIDE = b".j{display:none}"
_HIDE64 = base64.b64encode(_HIDE)
_SVG = b"<svg width=40 height=20>"
PAGES.update({
    "a link's charset": _css(b"", _link(b"data:text/css;charset=utf-8," + _HIDE)),
    "a link's charset, base64": _css(
        b"", _link(b"data:text/css;charset=utf-8;base64," + _HIDE64)),
    "a link's parameter, base64": _css(b"", _link(b"data:text/css;x=y;base64," + _HIDE64)),
    "a blank before a link's parameter": _css(b"", _link(b"data:text/css ;x=y," + _HIDE)),
    "a blank before a link's type": _css(b"", _link(b"data: text/css," + _HIDE)),
    "an unquoted link's charset": _css(
        b"", b"<link rel=stylesheet href=data:text/css;charset=utf-8," + _HIDE + b">"),
    "an import's charset": _css(b'@import "data:text/css;charset=utf-8,' + _HIDE + b'";'),
    "an import's url() charset": _css(b"@import url(data:text/css;charset=utf-8," + _HIDE
                                      + b");"),
    "an import's charset, base64": _css(
        b'@import "data:text/css;charset=utf-8;base64,' + _HIDE64 + b'";'),
    "an SVG style's import": _css(b"", b"<svg width=0 height=0><style>@import url(data:text/"
                                  b"css;charset=US-ASCII,.j%7Bdisplay:none%7D);</style></svg>"),
    "a link's &colon;": _css(b"", _link(b"data&colon;text/css," + _HIDE)),
    "a link's &#x3a;": _css(b"", _link(b"data&#x3a;text/css," + _HIDE)),
    "a link's &sol; and &lbrace;": _css(b"", _link(b"data:text&sol;css,.j&lbrace;display:none}")),
    "a link's &quot;": _css(b"", _link(b".j[title=&quot;x&quot;]{display:none}").replace(
        b'href="', b'href="data:text/css,'), tags=(b"<i class=j title=x>", b"</i>")),
    "a tab in a link's scheme": _css(b"", _link(b"da\tta:text/css," + _HIDE)),
    "an import's escaped slash": _css(b'@import "data:text\\/css,' + _HIDE + b'";'),
    "an import's escaped parentheses": _css(
        b"@import url(data:text/css,i\\:not\\(b\\).j{display:none});"),
    "an import of an import": _css(
        b'@import "data:text/css,@import%20%22data:text/css,.j%7Bdisplay:none%7D%22;";'),
    "a typeless link in quirks mode": _css(b"", _link(b"data:," + _HIDE),
                                           head=b"<meta charset=utf-8>"),
    "@scope without a prelude": (_HEAD + b"<p>" + _split(
        b"<i><style>@scope{:scope{display:none}}</style>", b"</i>") + b"</p>"),
    "@scope to (...) without a root": (_HEAD + b"<p>" + _split(
        b"<i><style>@scope to (b){:scope{display:none}}</style>", b"</i>") + b"</p>"),
    "i:not(:dir(ltr)) under dir=rtl": _css(b"i:not(:dir(ltr)){display:none}",
                                           tags=(b"<i>", b"</i>"),
                                           around=(b"<p dir=rtl>", b"</p>")),
    "i:not(:dir(ltr)), dir=auto by the first letter": _css(
        b"i:not(:dir(ltr)){display:none}", tags=(b"</i><i dir=auto>\xd7\x90", b"</i><i dir=auto>"),
        around=(b"<p><i dir=auto>", b"</i></p>")),
    "an SVG text of display: contents": _css(b"text{display:contents}", tags=(
        _SVG + b"<text y=15>", b"</text></svg>")),
    "an SVG TEXT of display: contents": _css(b".j{display:contents}", tags=(
        _SVG + b"<TEXT class=j y=15>", b"</TEXT></svg>")),
    "an SVG text whose style is display: contents": (_HEAD + b"<p>" + _split(
        _SVG + b"<text y=15 style=display:contents>", b"</text></svg>") + b"</p>"),
    "a foreignObject of display: contents": _css(b"foreignObject{display:contents}", tags=(
        _SVG + b"<foreignObject width=40 height=20><span>", b"</span></foreignObject></svg>")),
    "an SVG switch of display: contents": _css(b".j{display:contents}", tags=(
        _SVG + b"<switch class=j><text y=15>", b"</text></switch></svg>")),
    "a textPath of display: contents": _css(b".j{display:contents}", tags=(
        _SVG + b"<text y=15><textPath class=j>", b"</textPath></text></svg>")),
    "a math of display: contents": _css(b".j{display:contents}", tags=(
        b"<math class=j><mtext>", b"</mtext></math>")),
    "an mtext of display: contents": _css(b".j{display:contents}", tags=(
        b"<math><mtext class=j>", b"</mtext></math>")),
    "a math whose style is display: contents": (_HEAD + b"<p>" + _split(
        b"<math style=display:contents><mi>", b"</mi></math>") + b"</p>"),
    "an mrow of display: contents": _css(b".j{display:contents}", tags=(
        b"<math><mrow class=j>", b"</mrow></math>")),
    "an option of display: contents": _css(b".j{display:contents}", tags=(
        b"<option class=j>", b"</option>")),
})


def _decoy(decoy: bytes, head: bytes = _HEAD) -> bytes:
    """Attack round 43 (helper 122, black box on c477768): junk hidden by `.j`, B64 in a
    `<p class=c>` that a decoy sheet (`decoy`) Chromium does not apply would hide."""
    return (head + b"<style>.j{display:none}</style>" + decoy + b"<p class=c>"
            + _split(b"<i class=j>", b"</i>") + b"</p>")


def _half(junk: tuple[bytes, bytes], pre: bytes = b"") -> bytes:
    """B64 in two halves around one junk in `junk`, after `pre`."""
    h = len(B64) // 2
    return _HEAD + pre + b"<p>" + B64[:h] + junk[0] + b"JUNK" + junk[1] + B64[h:] + b"</p>"


_C = b"data:text/css,.c{display:none}"
_J = b"<i class=j>", b"</i>"
PAGES.update({
    "a decoy preload": _decoy(b'<link rel=preload as=style href="' + _C + b'">'),
    "a decoy sheet of type text/plain": _decoy(
        b'<link rel=stylesheet type=text/plain href="' + _C + b'">'),
    "a decoy link in a template": _decoy(b"<template>" + _link(_C) + b"</template>"),
    "a decoy link in a comment": _decoy(b"<!-- " + _link(_C) + b" -->"),
    "a decoy link in a textarea": _decoy(b"<textarea>" + _link(_C) + b"</textarea>"),
    "a decoy link in an attribute": _decoy(b"<b title='" + _link(_C) + b"'></b>"),
    "a decoy link in SVG": _decoy(b"<svg width=0 height=0>" + _link(_C)[:-1] + b"/></svg>"),
    "a decoy a href": _decoy(b'<a href="' + _C + b'">x</a>'),
    "a decoy xml-stylesheet in HTML": _decoy(
        b'<?xml-stylesheet type="text/css" href="' + _C + b'"?>'),
    "a decoy sheet after a fragment": _decoy(_link(b"data:text/css,#x{}.c{display:none}")),
    "a decoy import after a fragment": _decoy(
        b"<style>@import 'data:text/css,#x{}.c{display:none}';</style>"),
    "a decoy base64 with an inner '='": _decoy(
        _link(b"data:text/css;base64,LmN7ZGlz=cGxheTpub25lfQ==")),
    "a decoy base64 with a '*'": _decoy(_link(b"data:text/css;base64,LmN7ZGlz*cGxheTpub25lfQ==")),
    "a decoy rel=stylesheetx in quirks mode": _decoy(
        b'<link rel=stylesheetx href="data:,.c{display:none}">', b"<meta charset=utf-8>"),
    "an import after an invalid rule": _half(_J, b"<style>1{}@import 'data:text/css,"
                                         + _HIDE + b"';</style>"),
    "an import after an unknown pseudo-class": _half(
        _J, b"<style>:bogus{}@import 'data:text/css," + _HIDE + b"';</style>"),
    "an import after an unknown at-rule": _half(
        _J, b"<style>@foo{}@import 'data:text/css," + _HIDE + b"';</style>"),
    "an import after @charset{}": _half(
        _J, b"<style>@charset{}@import 'data:text/css," + _HIDE + b"';</style>"),
    "an import's url() with a hex escape and its blank": _half(
        _J, b"<style>@import url(data:text/css\\2c .j{display:none});</style>"),
    "an import's url() left open": _half(
        _J, b"<style>@import url(data:text/css,.j%7Bdisplay:none%7D</style>"),
    "an import's string left open": _half(
        _J, b"<style>@import 'data:text/css,.j{display:none}</style>"),
    "70 imports, then the one": _half(_J, b"<style>" + b"".join(
        b"@import 'data:text/css,.x%d{}';" % i for i in range(70))
        + b"@import 'data:text/css," + _HIDE + b"';</style>"),
    "@scope escaped": _half((b"<i><style>@\\73 cope{:scope{display:none}}</style>", b"</i>")),
    "@scope, the parent 17 KB back": _half((b"<i><b hidden>" + b"x" * 17000
                                            + b"</b><style>@scope{:scope{display:none}}</style>",
                                            b"</i>")),
    "a decoy HTML foreignObject of display: contents": (
        _HEAD + b"<style>.j{display:none}.c{display:contents}</style><p><foreignObject class=c>"
        + _split(*_J) + b"</foreignObject></p>"),
    "a decoy HTML annotation": (
        _HEAD + b"<style>.j{display:none}</style><p><annotation class=c>"
        + _split(*_J) + b"</annotation></p>"),
    "an mstack of display: contents": _half((b"<math><mstack class=j><mn>", b"</mn></mstack>"
                                             b"</math>"), b"<style>.j{display:contents}</style>"),
    "an mglyph's text": _half((b"<math><mtext><mglyph>", b"</mglyph></mtext></math>")),
    "a tref's text": (_HEAD + b"<p>" + B64[:40] + b"<svg width=200 height=20><text y=15><tref>"
                      b"JUNK</tref></text></svg>" + B64[40:] + b"</p>"),
    "p:lang(de), a decoy under lang=en": (
        _HEAD + b"<style>.j{display:none}p:lang(de){display:none}</style><div lang=de>"
        b"<p lang=en>" + _split(*_J) + b"</p></div>"),
    "p:lang(de), a decoy under lang=''": (
        _HEAD + b"<style>.j{display:none}p:lang(de){display:none}</style><div lang=de>"
        b'<p lang="">' + _split(*_J) + b"</p></div>"),
    "p:dir(rtl), a decoy under dir=ltr": (
        _HEAD + b"<style>.j{display:none}p:dir(rtl){display:none}</style><div dir=rtl>"
        b"<p dir=ltr>" + _split(*_J) + b"</p></div>"),
})
#: ...where `display: contents` unboxes and the junk shows
SHOWN: dict[str, bytes] = {
    "a button of display: contents": _contents(b"button"),
    "a fieldset of display: contents": _contents(b"fieldset"),
    "an open details of display: contents": _contents(b"details open"),
    "an SVG g of display: contents": _css(b".j{display:contents}", tags=(
        _SVG + b"<g class=j><text y=15>", b"</text></g></svg>")),
    "an SVG tspan of display: contents": _css(b".j{display:contents}", tags=(
        _SVG + b"<text y=15><tspan class=j>", b"</tspan></text></svg>")),
}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_database(default_db_dirs()))


@pytest.mark.parametrize("name", sorted(PAGES))
def test_round42_pages_are_read(engine: Engine, name: str) -> None:
    found_both_ways(engine, PAGES[name])


@pytest.mark.parametrize("name", sorted(SHOWN))
def test_contents_unboxes_other_elements(name: str) -> None:
    visible = textual.html_visible(SHOWN[name])  # (None: nothing hidden)
    assert visible is None or _junk(0) in visible


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_chromium_shows_round42s_payload_whole(tmp_path: Path) -> None:
    assert not_shown_whole(tmp_path, {**PAGES, **SHOWN}, B64) == sorted(SHOWN)


def test_lang_and_dir_as_attributes() -> None:
    assert textual._selector_text(b"i:lang(de)") == b"i:is([lang|=de i],[lang|=de i] *)"
    assert textual._selector_text(b':lang("en", fr)') == (
        b":is([lang|=en i],[lang|=en i] *,[lang|=fr i],[lang|=fr i] *)")
    assert textual._selector_text(b":dir(RTL)") == b":is([dir=rtl i],[dir=rtl i] *)"
    assert textual._selector_text(b"p :dir(ltr)") == b"p :not([dir=rtl i],[dir=rtl i] *)"
    for kept in (b':lang("*-CH")', b":dir(auto)", b":dir(ltr, rtl)"):
        assert textual._selector_text(kept) == kept


def test_host_rules_name_only_the_host() -> None:
    assert htmlshadow._host_mark(b"<i zh-host7 zh-host2>") == b"zh-host8"
    assert htmlshadow._host_rules(b":host(:not(b)) p, :host{x} :host-context(a)", b"m") == (
        b":is(:not(b))[m] p, [m]{x} :host-context(a)")
    # a shadow-only selector in the page's own sheet matches nothing there
    assert textual._compound(b":host(:not(b))") is None
    assert textual._compound(b"::slotted(:not(b))") is None


def test_data_urls_as_a_browser_reads_them() -> None:
    read = textual._data_url_sheet
    assert read(b"data:text/css,a", False) == b"a"
    assert read(b" DATA: Text/CSS ;charset=utf-8 ; base64 ,YQ==", False) == b"a"
    assert read(b"da\tta:text/css,%7B\n", False) == b"{"
    assert read(b"data:text%2Fcss,a", False) is None  # (no CSS type: Chromium drops it)
    assert read(b"data:,a", False) is None
    assert read(b"data:,a", True) == b"a"  # (quirks mode: any linked sheet applies)
    assert read(b"data:text/css", False) is None


def test_imports_are_bounded() -> None:
    # an import of an import of... is read to _MAX_DATA_SHEETS, each once; past it, a limit
    nested = _HIDE
    for _ in range(textual._MAX_DATA_SHEETS):
        nested = b'@import "data:text/css,' + urllib.parse.quote(nested).encode() + b'";'
    assert len(textual._data_sheets(b"", [nested])) == textual._MAX_DATA_SHEETS
    with pytest.raises(ScanLimitExceeded):
        textual._data_sheets(b"", [b'@import "data:text/css,x";' + nested])


def test_scope_names_the_styles_parent() -> None:
    page = b"<p zh-scope4><i><style>@scope /* */ {:scope{x}} @scope to (b){}</style>j</i></p>"
    assert htmlscope.scoped_page(page) == (
        b"<p zh-scope4><i zh-scope5><style>@scope  ([zh-scope5]) {:scope{x}} "
        b"@scope ([zh-scope5]) to (b){}</style>j</i></p>")
    # an escaped at-keyword, a parent farther back than the walk looks
    assert htmlscope.scoped_page(b"<i><style>@sc\\6f pe{:scope{x}}</style>j</i>") == (
        b"<i zh-scope1><style>@scope([zh-scope1]) {:scope{x}}</style>j</i>")
    far = b"<i><b hidden>" + b"x" * 17000 + b"</b><style>@scope{:scope{x}}</style>j</i>"
    assert htmlscope.scoped_page(far).startswith(b"<i zh-scope1>")
    # a dir=auto in a style's text written anew is left out; 300 of them do not use up the
    # styles' count
    assert htmlscope.scoped_page(b"<i><style>:dir(rtl){} /* <b dir=auto> */ @scope{:scope{x}}"
                                 b"</style>j</i>") == (
        b"<i zh-scope1><style>:dir(rtl){}  @scope([zh-scope1]) {:scope{x}}</style>j</i>")
    many = (b"<style>:dir(rtl){}</style>" + b"<b dir=auto>a</b>" * 300
            + b"<i><style>@scope{:scope{x}}</style>j</i>")
    assert htmlscope.scoped_page(many).endswith(
        b"<i zh-scope1><style>@scope([zh-scope1]) {:scope{x}}</style>j</i>")
    assert htmlscope.scoped_page(b"<i><style>@scope (.a){}</style></i>") is None


def test_auto_directions_are_written_out() -> None:
    page = (b"<style>:dir(rtl){}</style><p dir=auto>&#1488;x</p><b DIR='auto'><i>1 a</i></b>"
            b"<q dir=autox>")
    assert htmlscope.scoped_page(page) == (
        b"<style>:dir(rtl){}</style><p dir=rtl>&#1488;x</p><b DIR=ltr><i>1 a</i></b><q dir=autox>")
    assert htmlscope.scoped_page(page.replace(b":dir(", b":lang(")) is None  # (no sheet reads it)


def test_languages_cost_no_limit(engine: Engine) -> None:
    # a page of 4,000 elements with :lang() and :dir() rules is read, no limit finding (the
    # descendant form lexbor weighed as costly was one, in development)
    body = b"".join(b"<div lang=en><p>para %d <span class=x>t</span></p></div>" % i
                    for i in range(4000))
    for rule in (b"p:lang(en) span{display:inline}", b":lang(de){display:none}",
                 b"div:dir(rtl){visibility:hidden}"):
        page = b"<!doctype html><html lang=en><style>" + rule + b"</style>" + body
        report = engine.scan_bytes(mail(page, False))
        assert report.names == (), rule
        assert report.errors == (), rule
