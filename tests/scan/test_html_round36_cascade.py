"""Round 36, the cascade: rules the readings applied where Chromium does not.

The pieces of the base64 sit between `<span class=j>QkFa</span>` junk that a style sheet
hides; a second rule shows the junk again to our readings, not to Chromium: a descendant
selector whose ancestor the junk lacks (`div .j` on a page without a div around it), a
`@scope` whose root the page lacks or whose limit is the junk, a `@starting-style` rule,
or the hiding is done by what the readings do not read (an animation of `display`,
`attr()`, `if()`, a custom `@function`). Chromium (`innerText` on a phone's screen) shows
the base64 whole; each page must be found.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from scan.test_html_clients import PHONE, screen_text
from scan.test_html_views import CHROMIUM, _found, engine, mail
from zerohour.scan import Engine, htmlprint, textual

__all__ = ["engine"]  # (the module's fixture, used by the tests below)

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
B64 = base64.b64encode(EICAR)


def _pieces(extra: bytes = b"") -> bytes:
    """B64 in pieces of 3, each but the last followed by `<span class=j>QkFa</span>`."""
    out = []
    for i in range(0, len(B64), 3):
        out.append(B64[i : i + 3])
        if i + 3 < len(B64):
            out.append(b"<span class=j" + extra + b">QkFa</span>")
    return b"".join(out)


def _page(head: bytes, body: bytes | None = None, around: bytes = b"p") -> bytes:
    body = _pieces() if body is None else body
    return (b"<!doctype html><html><head><meta charset=utf-8>" + head + b"</head><body>"
            b"<p>Your code:</p><" + around + b">" + body + b"</" + around + b"><p>Thanks</p>"
            b"</body></html>")


def _css(sheet: bytes) -> bytes:
    return b"<style>" + sheet + b"</style>"


#: name -> page whose junk Chromium hides (the base64 reads whole on its screen)
HIDDEN_JUNK: dict[str, bytes] = {
    # (h15) the show rule names an ancestor the junk lacks
    "absent ancestor": _page(_css(b".j{display:none}div .j{display:inline}")),
    # ... one the page has, elsewhere
    "ancestor elsewhere": _page(_css(b".j{display:none}div .j{display:inline}"))
    .replace(b"<p>Thanks</p>", b"<div>Thanks</div>"),
    "parent not the one named": _page(_css(b".j{display:none}div>.j{display:inline}"),
                                      b"<div><b>" + _pieces() + b"</b></div>"),
    # ... a sibling before it that it lacks (an i after the pieces only)
    "sibling absent": _page(_css(b".j{display:none}i~.j{display:inline}"),
                            _pieces() + b"<i>.</i>"),
    # (h14) a scope root the page lacks
    "scope root absent": _page(_css(b".j{display:none}@scope (div){.j{display:inline}}")),
    # (h13) the scope's limit is the junk itself
    "scope limit": _page(_css(b".j{display:none}@scope (p) to (.j){.j{display:inline}}")),
    # (h21) a starting style: before a transition only
    "starting style": _page(_css(b".j{display:none}@starting-style{p .j{display:inline}}")),
    # (h11) an animation of display
    "keyframes display": _page(_css(b"@keyframes zh{from,to{display:none}}"
                                    b".j{animation:zh 1s infinite both}")),
    # (h18) typed attr()
    "attr display": _page(_css(b".j{display: attr(data-d type(<custom-ident>), inline)}"),
                          _pieces(b" data-d=none")),
    # (h19) if() with media()
    "if media": _page(_css(b".j{display: if(media(width < 600px): none; else: inline)}")),
    # ... in a style attribute
    "if media in style": _page(b"", _pieces().replace(
        b"class=j", b"style='display: if(media(width < 600px): none; else: inline)'")),
    "keyframes in style": _page(_css(b"@keyframes zh{from,to{display:none}}"), _pieces(
        ).replace(b"class=j", b'style="animation:zh 1s infinite both"')),
    # (h20) a custom function
    "css function": _page(_css(b"@function --h() { result: none; } .j{display:--h()}")),
}


@pytest.mark.parametrize("shape", list(HIDDEN_JUNK))
def test_junk_a_browser_hides_is_found(engine: Engine, shape: str) -> None:
    page = HIDDEN_JUNK[shape]
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), (shape, as_attachment)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.parametrize("shape", list(HIDDEN_JUNK))
def test_chromium_shows_the_base64_whole(tmp_path: Path, shape: str) -> None:
    assert B64 in screen_text(tmp_path, HIDDEN_JUNK[shape], PHONE)


#: Pages whose junk Chromium shows: the show rule does apply (the readings must keep it).
SHOWN_JUNK: dict[str, bytes] = {
    "ancestor present": _page(_css(b".j{display:none}div .j{display:inline}"), around=b"div"),
    "parent present": _page(_css(b".j{display:none}div>.j{display:inline}"), around=b"div"),
    "sibling present": _page(_css(b".j{display:none}span+.j{display:inline}")),
    "implied body": _page(_css(b".j{display:none}body .j{display:inline}")).replace(
        b"<body>", b""),
    "scope root present": _page(_css(b".j{display:none}@scope (p){.j{display:inline}}")),
}


@pytest.mark.parametrize("shape", list(SHOWN_JUNK))
def test_a_show_rule_whose_ancestors_are_there_applies(shape: str) -> None:
    shown = textual.html_visible(SHOWN_JUNK[shape])
    assert shown is None or b"QkFa" in shown
    assert shown is None or B64 not in shown.replace(b"\n", b"")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.parametrize("shape", list(SHOWN_JUNK))
def test_chromium_shows_that_junk(tmp_path: Path, shape: str) -> None:
    assert b"QkFa" in screen_text(tmp_path, SHOWN_JUNK[shape], PHONE)


def test_what_is_read_both_ways_makes_two_pages() -> None:
    """A starting style, a limited scope, a value not read: the page as the readings take
    it, and one more with the rule left out (or the element hidden)."""
    for shape in ("starting style", "scope limit", "attr display", "if media",
                  "css function", "keyframes display"):
        pages, _ = htmlprint.client_pages(HIDDEN_JUNK[shape])
        assert pages, shape
        assert any(textual.html_visible(p) is not None and B64 in textual.html_visible(
            p).replace(b"\n", b"") for p in pages), shape  # type: ignore[union-attr]


def test_a_plain_page_makes_no_more_pages() -> None:
    page = _page(_css(b".j{display:none}.k{opacity:.5;animation:x 1s}"
                      b"@keyframes x{from{color:red}to{color:blue}}"))
    assert htmlprint.client_pages(page) == ([], [])
