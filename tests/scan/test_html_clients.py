"""Round 36: style sheets decided per client, not once for print.

The pieces of the base64 sit between junk a client hides. Every condition true, none true,
or a printed page: each of those readings showed the junk, while a phone, a wide screen, a
dark-mode client or plain Chromium on a screen hid it and showed the base64 whole. Chromium
is the oracle on a screen of a given width (`innerText`, the text it lays out) or printing.
"""

from __future__ import annotations

import html
import re
import subprocess
import time
from pathlib import Path

import pytest

from scan.test_html_round18 import THREES, _junk, _page
from scan.test_html_views import B64, CHROMIUM, _found, engine, mail, printed_text
from zerohour.errors import ScanLimitExceeded
from zerohour.scan import Engine, htmlprint, mediaquery

__all__ = ["engine"]  # (the module's fixture, used by the tests below)

PHONE = ("--window-size=375,800",)
WIDE = ("--window-size=1280,900",)
DARK = ("--window-size=1280,900", "--force-dark-mode")


def screen_text(tmp_path: Path, page: bytes, flags: tuple[str, ...]) -> bytes:
    """The text Chromium lays out on a screen (`innerText`), whitespace left out."""
    path = tmp_path / "screen.html"
    path.write_bytes(page + b"<script>document.body.setAttribute('data-shown', "
                            b"document.body.innerText)</script>")
    dom = subprocess.run([CHROMIUM or "chromium", "--headless", "--no-sandbox", "--disable-gpu",
                          *flags, "--dump-dom", path.as_uri()],
                         capture_output=True, timeout=120, check=False).stdout
    m = re.search(rb'data-shown="([^"]*)"', dom)
    assert m is not None, dom[:300]
    return re.sub(rb"\s", b"", html.unescape(m.group(1).decode()).encode())


def _between_junk(css: bytes) -> bytes:
    """B64 in pieces of 3, each followed by 4 junk characters in a `<span class=j>`."""
    return _page(b"".join(p + b"<span class=j>" + _junk(i) + b"</span>"
                          for i, p in enumerate(THREES)), css)


_DEEP_TRUE = b"not (" * 18 + b"(display: block)" + b")" * 18  # (18 nots: holds)
_LONG_OR = b"(foo-bar: " + b"x" * 5000 + b") or (display: block)"  # (holds: its right side)

#: name -> (style sheet, Chromium flags of the client that shows B64 whole; None: print)
SPLIT_BY_CLIENT: dict[str, tuple[bytes, tuple[str, ...] | None]] = {
    "screen hides, print shows": (
        b"@media screen{.j{display:none}}@media print{.j{display:inline}}", WIDE),
    "a phone's width": (
        b"@media (max-width: 600px){.j{display:none}}@media (min-width: 601px){.j{display:"
        b"inline}}", PHONE),
    "a range of widths": (
        b"@media (width <= 600px){.j{display:none}}@media (width > 600px){.j{display:inline}}",
        PHONE),
    "a wide screen": (
        b".j{display:inline}@media (min-width: 1100px){.j{display:none}}"
        b"@media (max-width: 1099px){.j{display:inline}}", WIDE),
    "dark mode": (
        b"@media (prefers-color-scheme: dark){.j{display:none}}"
        b"@media (prefers-color-scheme: light){.j{display:inline}}", DARK),
    "a true supports hides, an unknown one shows": (  # (round 35 hole 2)
        b"@supports (display: block){.j{display:none}}"
        b"@supports (foo-bar: 1){.j{display:inline!important}}", None),
    "supports nested past 32": (  # (round 35 hole 1)
        b"@supports " + _DEEP_TRUE + b"{.j{display:none}}"
        b"@supports not (" + _DEEP_TRUE + b"){.j{display:inline}}", None),
    "supports with or past 4096 bytes": (  # (round 35 hole 4)
        b"@supports " + _LONG_OR + b"{.j{display:none}}@supports not (" + _LONG_OR + b")"
        b"{.j{display:inline}}", None),
    "a block Chromium drops": (
        b".j{display:none}@-moz-document url-prefix(){.j{display:inline}}", WIDE),
    "a container's width": (
        b"div{container-type:inline-size;width:400px}@container (max-width: 499px){.j{display:"
        b"none}}@container (min-width: 500px){.j{display:inline}}", WIDE),
    "a style element's media": (
        b"</style><style media=\"screen and (max-width: 600px)\">.j{display:none}</style>"
        b"<style media=\"(min-width: 601px)\">.j{display:inline}", PHONE),
}


@pytest.mark.parametrize("shape", list(SPLIT_BY_CLIENT))
def test_each_client_gets_its_own_reading(engine: Engine, tmp_path: Path, shape: str) -> None:
    css, flags = SPLIT_BY_CLIENT[shape]
    page = _between_junk(css)
    if CHROMIUM is not None:
        shown = printed_text(tmp_path, page) if flags is None else screen_text(
            tmp_path, page, flags)
        assert B64 in shown, shape
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), (shape, as_attachment)


def test_a_client_reading_hides_what_that_client_hides() -> None:
    page = _between_junk(SPLIT_BY_CLIENT["a phone's width"][0])
    assert any(B64 in re.sub(rb"<[^>]*>|\s", b"", re.sub(rb"<span class=j>[^<]*", b"", p))
               for p in htmlprint.client_pages(page))


RESPONSIVE = (b".col{width:300px;float:left}.mobile{display:none}"
              b"@media only screen and (max-width:600px){.col{width:100%!important;"
              b"float:none!important}.mobile{display:block!important}.desktop{display:none}}"
              b"@media (prefers-color-scheme:dark){body{background:#000;color:#eee}"
              b"a{color:#8cf!important}}@media print{.noprint{display:none}}")


def test_a_responsive_newsletter_costs_few_readings() -> None:
    """Ordinary mail: a phone layout, dark colours and a print rule read as few pages (a
    dark-mode block of colours tells no reading apart)."""
    page = _page(b"<p class=desktop>wide</p><p class=mobile>narrow</p><p class=noprint>x</p>",
                 RESPONSIVE)
    pages = htmlprint.client_pages(page)
    assert 1 <= len(pages) <= 3
    colours = _page(b"<p>hello</p>", b"@media (prefers-color-scheme:dark){p{color:#fff;"
                                     b"background:#000}}@media print{p{color:#000}}")
    assert htmlprint.client_pages(colours) == []


def test_rules_for_classes_a_page_never_uses_tell_no_reading_apart() -> None:
    """A framework's sheet: five breakpoints, orientation, retina, dark, hover, print, for
    classes the page mostly does not use (352 ways to read it if they all counted)."""
    css = b"".join(b"@media (min-width:%dpx){.c-%d{width:50%%;display:block}.h-%d{display:"
                   b"none}}@media (max-width:%dpx){.d-%d{display:none}}" % (b, b, b, b - 1, b)
                   for b in (576, 768, 992, 1200, 1400))
    css += (b"@media (orientation:landscape){.o{display:none}}@media (min-resolution:2dppx){"
            b".r{display:none}}@media (prefers-color-scheme:dark){.k{display:none}}"
            b"@media (hover:hover){.v:hover{display:inline}}@media print{.n{display:none}}")
    page = _page(b"<p class=c-576>x</p><p class='n other'>y</p>", css)
    assert len(htmlprint.client_pages(page)) == 3  # (narrow or wide, printed or not)
    assert len(htmlprint.client_pages(page.replace(b"'n other'", b"'n o r k h-992'"))) > 4


def test_media_queries_are_read_as_chromium_reads_them() -> None:
    printed = {q: htmlprint.media_holds(q) for q in (
        b"print", b"screen", b"not screen", b"only print and (orientation: portrait)",
        b"(width >= 700px)", b"(700px < width <= 800px)", b"(min-resolution: 2dppx)",
        b"(-webkit-min-device-pixel-ratio: 1)", b"(prefers-color-scheme: dark)", b"(hover)")}
    assert printed == {
        b"print": True, b"screen": False, b"not screen": True,
        b"only print and (orientation: portrait)": True, b"(width >= 700px)": True,
        b"(700px < width <= 800px)": True, b"(min-resolution: 2dppx)": False,
        b"(-webkit-min-device-pixel-ratio: 1)": True, b"(prefers-color-scheme: dark)": False,
        b"(hover)": False}
    nodes = [mediaquery.parse(b"(max-width: 600px)"), mediaquery.parse(b"(min-width: 601px)"),
             mediaquery.parse(b"print")]
    ways = set(mediaquery.readings(nodes))
    assert (True, False, False) in ways and (False, True, True) in ways
    assert (True, True, False) not in ways  # (no width is both)
    assert (False, False, False) in ways  # (600.5 px: neither)


def test_what_is_not_read_holds_and_fails() -> None:
    """An unknown feature or property, a value not parsed: a free condition, both ways."""
    for node in (mediaquery.parse(b"(foo-bar)"), mediaquery.parse(b"(min-width: 10vw)"),
                 mediaquery.parse_supports(b"(width: banana)"),
                 mediaquery.parse_supports(b"selector(a > b)")):
        assert set(mediaquery.readings([node])) == {(False,), (True,)}, node


def test_conditions_nested_too_deep_are_a_limit() -> None:
    deep = b"not (" * 40 + b"(display: block)" + b")" * 40
    with pytest.raises(ScanLimitExceeded) as raised:
        mediaquery.parse_supports(deep)
    assert raised.value.which == "MaxRecursion"
    page = _between_junk(b"@supports " + deep + b"{.j{display:none}}")
    with pytest.raises(ScanLimitExceeded):
        htmlprint.client_pages(page)


def test_too_many_clients_are_a_limit() -> None:
    """Each unknown condition doubles the clients: past 4096 (12 of them), a limit."""
    sheet = b"".join(b"@supports (foo-%d: 1){.j{display:none}}" % i for i in range(13))
    with pytest.raises(ScanLimitExceeded):
        htmlprint.client_pages(_between_junk(sheet))
    fine = b"".join(b"@supports (foo-%d: 1){.j{color:red}}" % i for i in range(40))
    assert htmlprint.client_pages(_between_junk(fine)) == []  # (colours: no reading apart)


def test_many_breakpoints_cost_linear_time() -> None:
    sheet = b"".join(b"@media (max-width: %dpx){.j{padding:%dpx}}" % (i, i) for i in range(3000))
    page = _between_junk(sheet)
    started = time.process_time()
    with pytest.raises(ScanLimitExceeded):  # (6,001 widths: more clients than read)
        htmlprint.client_pages(page)
    assert time.process_time() - started < 5.0
