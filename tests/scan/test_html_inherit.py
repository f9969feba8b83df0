"""`display: inherit` under `display: contents` (session 28; attack round 42's leftover).

An element of `display: inherit` takes its parent's computed display. Under a parent of
`display: contents`, that is `contents`, which hides an `<svg>`, `<math>`, `<select>`,
`<object>`... as `none` (`textual._CONTENTS_NONE`) and unboxes the rest. The junk between
B64's pieces in such an element shows nowhere in Chromium; zerohour's parsed reading follows
`inherit` up to the display it inherits (`htmlparsed._unboxed`, `textual.display_flags`).

Each page has a control: the same page with the parent's `display: contents` taken away,
where Chromium shows the junk (so the page proves the hiding, not an element whose text no
browser shows). The negatives: elements that `contents` unboxes (`<button>`, an SVG `<g>`),
and `inherit` under a parent of another display.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scan.test_html_clients import not_shown_whole
from scan.test_html_round39 import _junk, _split
from scan.test_html_views import B64, CHROMIUM, found_both_ways
from zerohour.scan import Engine, htmlparsed, textual

_HEAD = b"<!doctype html><meta charset=utf-8>"
_UNBOX = b"display:contents"
_SVG = b"<svg width=40 height=20>"


def _under(parent: bytes, inner: tuple[bytes, bytes], sheet: bytes = b"") -> bytes:
    """Junk in `inner`, each inside `<span parent>`; `parent` holds `_UNBOX` (taken away in
    the control)."""
    return (_HEAD + b"<style>" + sheet + b"</style><p>"
            + _split(b"<span " + parent + b">" + inner[0], inner[1] + b"</span>") + b"</p>")


PAGES: dict[str, bytes] = {
    "an svg inheriting by a class": _under(
        b"class=c", (_SVG + b"<text y=15 class=x>", b"</text></svg>"),
        b".c{" + _UNBOX + b"}svg{display:inherit}"),
    "an svg inheriting by an escaped style": _under(
        b"style=" + _UNBOX, (b"<svg width=40 height=20 style=display:\\69nherit><text y=15>",
                             b"</text></svg>")),
    "an svg inheriting by its style": _under(
        b"style=" + _UNBOX, (b"<svg width=40 height=20 style=display:inherit><text y=15>",
                             b"</text></svg>")),
    "an svg inheriting through an inheriting b": _under(
        b"style=" + _UNBOX, (b"<b style=display:inherit><svg width=40 height=20 style="
                             b"display:inherit><text y=15>", b"</text></svg></b>")),
    "an svg inheriting by an important rule": _under(
        b"class=c", (b"<svg width=40 height=20 class=j style=display:block><text y=15>",
                     b"</text></svg>"), b".c{" + _UNBOX + b"}.j{display:inherit!important}"),
    "a select inheriting": _under(
        b"style=" + _UNBOX, (b"<select style=display:inherit><option>", b"</option></select>")),
    "a math inheriting": _under(
        b"style=" + _UNBOX, (b"<math style=display:inherit><mi>", b"</mi></math>")),
    "an SVG text inheriting from a g": _under(
        b"", (_SVG + b"<g style=" + _UNBOX + b"><text y=15 style=display:inherit>",
              b"</text></g></svg>")),
}

#: ...where the junk shows: `contents` unboxes the element, or the parent's display is
#: another, or a later declaration of the element's own is not `inherit`
SHOWN: dict[str, bytes] = {
    "a button inheriting": _under(
        b"style=" + _UNBOX, (b"<button style=display:inherit>", b"</button>")),
    "an svg inheriting from a block": _under(
        b"style=display:block", (b"<svg width=40 height=20 style=display:inherit><text y=15>",
                                 b"</text></svg>")),
    "an svg whose rule inherits, its style not": _under(
        b"class=c", (b"<svg width=40 height=20 class=j style=display:block><text y=15>",
                     b"</text></svg>"), b".c{" + _UNBOX + b"}.j{display:inherit}"),
    "an SVG tspan inheriting from a g": _under(
        b"", (_SVG + b"<text y=15><g style=" + _UNBOX + b"><tspan style=display:inherit>",
              b"</tspan></g></text></svg>")),
}

#: The controls: each page with its parent's `display: contents` taken away
CONTROLS = {name: page.replace(_UNBOX, b"display:inline") for name, page in PAGES.items()}


@pytest.mark.parametrize("name", sorted(PAGES))
def test_inherited_contents_hides(engine: Engine, name: str) -> None:
    found_both_ways(engine, PAGES[name])


@pytest.mark.parametrize("name", sorted(SHOWN) + sorted(f"control: {n}" for n in CONTROLS))
def test_the_junk_stays_where_it_shows(name: str) -> None:
    page = SHOWN.get(name) or CONTROLS[name.removeprefix("control: ")]
    visible = htmlparsed.parsed_visible(page)
    assert visible is not None
    assert _junk(0) in visible
    assert B64 not in (textual.html_visible(page) or b"")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_chromium_hides_the_junk_of_the_pages_alone(tmp_path: Path) -> None:
    pages = {**PAGES, **SHOWN, **{f"control: {n}": p for n, p in CONTROLS.items()}}
    assert not_shown_whole(tmp_path, pages, B64) == sorted(set(pages) - set(PAGES))


def test_display_flags() -> None:
    flags = textual.display_flags
    assert flags(b"svg", b" style=display:inherit", ()) == textual.INHERITS
    assert flags(b"i", b' style="display: contents"', ()) == textual.CONTENTS
    assert flags(b"i", b" style=display:block", ()) == 0
    assert flags(b"i", b"", ()) == 0
