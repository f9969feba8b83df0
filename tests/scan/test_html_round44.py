"""Attack round 44 (session 28): what a page's own CSS values and a browser's sheet decide.

- Decoys: B64's pieces in elements zerohour read as hidden and Chromium shows, the junk
  between them in `display: none`: `display: revert` (the browser's own display),
  `revert-layer` (the rules below decide), `var()` of a property the page sets to `inline`
  or never sets (invalid at computed-value time: `inline`), the `hidden` or `popover`
  attribute under an author rule's `display` (Chromium's `[hidden]{display: none}` loses
  to it, to `revert` too: a presentational hint; the popover's is a rule of the browser's
  sheet, which `revert` keeps), `hidden=until-found` on an inline element
  (`content-visibility` hides a box's content only).
- Junk hidden by `visibility: var(--h)` in a style attribute, `--h: hidden` set on `:root`
  or on an ancestor's style attribute (`textual.page_vars`), also written `VAR(` or
  escaped.

The negatives: pieces in a `<div hidden=until-found>`, a `<span hidden>` without an author
display, and a `display: var(--n)` with `--n: none` stay hidden (Chromium shows no B64).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scan.test_html_clients import not_shown_whole
from scan.test_html_round39 import _junk, _split
from scan.test_html_views import B64, CHROMIUM, found_both_ways
from zerohour.scan import Engine, htmlparsed, textual

_HEAD = b"<!doctype html><meta charset=utf-8>"
_PIECES = [B64[i : i + 3] for i in range(0, len(B64), 3)]


def _decoys(open_tag: bytes, close_tag: bytes, css: bytes = b"") -> bytes:
    """B64's pieces each in `open_tag`...`close_tag`, junk in `display: none` between."""
    body = b"".join(open_tag + p + close_tag + (
        b"<span style=display:none>" + _junk(i) + b"</span>" if i < len(_PIECES) - 1 else b"")
        for i, p in enumerate(_PIECES))
    return _HEAD + b"<style>" + css + b"</style><p>" + body + b"</p>"


def _junked(tag: bytes, css: bytes = b"", around: tuple[bytes, bytes] = (b"", b"")) -> bytes:
    """Junk in `tag`...`</span>` between B64's pieces, hidden by what `tag` and `css` say."""
    return (_HEAD + b"<style>" + css + b"</style>" + around[0] + b"<p>"
            + _split(tag, b"</span>") + b"</p>" + around[1])


PAGES: dict[str, bytes] = {
    "pieces in display: revert": _decoys(b"<span style='display:revert'>", b"</span>"),
    "pieces in display: revert-layer": _decoys(
        b"<span style='display:revert-layer'>", b"</span>"),
    "pieces in a rule's display: revert": _decoys(b"<span class=r>", b"</span>",
                                                  b".r{display:revert}"),
    "pieces in a rule's display: revert-layer, no layers": _decoys(
        b"<span class=r>", b"</span>", b".r{display:revert-layer}"),
    "junk in display: revert-layer over a rule's none": _junked(
        b"<span class=j style='display:block;display:revert-layer'>", b".j{display:none}"),
    "pieces in display: var(--s), --s: inline": _decoys(
        b"<span style='display:var(--s)'>", b"</span>", b":root{--s:inline}"),
    "pieces in display: var() of nothing": _decoys(
        b"<span style='display:var(--nope)'>", b"</span>"),
    "pieces in a rule's display: var() of nothing": _decoys(
        b"<span class=r>", b"</span>", b".r{display:var(--nope)}"),
    "pieces in hidden, a rule's display": _decoys(b"<span hidden class=r>", b"</span>",
                                                  b".r{display:inline}"),
    "pieces in popover, a rule's display": _decoys(b"<span popover class=r>", b"</span>",
                                                   b".r{display:inline}"),
    "pieces in hidden, a rule's display: revert": _decoys(
        b"<span hidden class=r>", b"</span>", b".r{display:revert}"),
    "pieces in an inline hidden=until-found": _decoys(b"<span hidden=until-found>",
                                                      b"</span>"),
    "junk in visibility: var(--h)": _junked(b"<span style='visibility:var(--h)'>",
                                            b":root{--h:hidden}"),
    "junk in visibility: VAR(--h)": _junked(b"<span style='visibility:VAR(--h)'>",
                                            b":root{--h:hidden}"),
    "junk in visibility: v\\61r(--h)": _junked(b"<span style='visibility:v\\61r(--h)'>",
                                               b":root{--h:hidden}"),
    "junk in visibility: var(--h), set on an ancestor": _junked(
        b"<span style='visibility:var(--h)'>", b"", (b"<div style='--h:hidden'>", b"</div>")),
}

#: ...where Chromium hides the pieces (or shows the junk): no B64 on the screen
HIDDEN: dict[str, bytes] = {
    "pieces in a div hidden=until-found": _decoys(b"<div hidden=until-found>", b"</div>"),
    "pieces in an inline-block hidden=until-found": _decoys(
        b"<span hidden=until-found style=display:inline-block>", b"</span>"),
    "pieces in hidden": _decoys(b"<span hidden>", b"</span>"),
    "pieces in popover, display: revert": _decoys(b"<span popover style=display:revert>",
                                                  b"</span>"),
    "pieces in a div hidden=until-found, display: revert": _decoys(
        b"<div hidden=until-found style=display:revert>", b"</div>"),
    "pieces in a layer's display: revert-layer over a layer's none": _decoys(
        b"<span class=r>", b"</span>",
        b"@layer a{span{display:none}}@layer b{.r{display:revert-layer}}"),
    "pieces in display: var(--n), --n: none": _decoys(
        b"<span style='display:var(--n)'>", b"</span>", b":root{--n:none}"),
    "junk in visibility: var(--v), --v: visible": _junked(
        b"<span style='visibility:var(--v)'>", b":root{--v:visible}"),
}


@pytest.mark.parametrize("name", sorted(PAGES))
def test_round44_pages_are_read(engine: Engine, name: str) -> None:
    found_both_ways(engine, PAGES[name])


@pytest.mark.parametrize("name", sorted(HIDDEN))
def test_what_stays_hidden_is_read_hidden(name: str) -> None:
    page = HIDDEN[name]
    for reading in (textual.html_visible(page), htmlparsed.parsed_visible(page)):
        assert B64 not in (reading or b"")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_chromium_shows_round44s_payload_whole(tmp_path: Path) -> None:
    assert not_shown_whole(tmp_path, {**PAGES, **HIDDEN}, B64) == sorted(HIDDEN)


def test_page_vars() -> None:
    page = (b"<style>:root{--a: x}.b{--a:y;--c:z}</style><i style='--c: w;'>"
            b"<b style='display:var(--a)'>")
    assert textual.page_vars(page) == {b"--a": b"y", b"--c": b"w"}
    assert textual.page_vars(b"<i style='--a:b'>") == {}  # (no var(): nothing to resolve)
