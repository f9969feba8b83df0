"""Round 20's HTML layout rows, continued: base64 pieces in boxes that hide their overflow
(`width: 4ch; overflow: hidden; white-space: nowrap`: each box shows its piece, the decoys
after it are clipped away; one line by `nowrap`/`pre`, or one word in a box sized in `ch`), and
flex items put in order by `order: calc()`. Chromium's print
is the oracle for every page (its text is the base64, exactly); the engine finds EICAR in
each, as a mail's body and as an attachment."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from scan.test_html_views import B64, _found, engine, mail, printed_text
from zerohour.scan import Engine, htmllayout

__all__ = ["engine"]  # (the module's fixture)

FOURS = [B64[i : i + 4] for i in range(0, len(B64), 4)]


def _junk(i: int) -> bytes:
    rnd = random.Random(i)
    return bytes(rnd.choice(b"ABCDEFGHabcdefgh0123456789+/") for _ in range(12))


def _page(body: bytes, css: bytes = b"") -> bytes:
    return (b"<!doctype html><html><head><meta charset=utf-8><style>body{font-family:"
            b"monospace;font-size:11px}" + css + b"</style></head><body>\n" + body
            + b"\n</body></html>\n")


def _boxes(opening: bytes, gap: bytes = b"") -> bytes:
    return b"".join(opening + p + gap + _junk(i) + b"</div>" for i, p in enumerate(FOURS))


CLIPPED = {
    "nowrap": _page(_boxes(b'<div style="width:4ch;overflow:hidden;white-space:nowrap">',
                           b" ")),
    "class rule": _page(_boxes(b'<div class="c">', b" "),
                        b".c{width:4ch;overflow:hidden;white-space:nowrap}"),
    "one word": _page(_boxes(b'<div style="width:4ch;overflow:clip">')),
    "pixels": _page(_boxes(b'<div style="width:26.4px;overflow-x:hidden;white-space:nowrap">',
                           b" ")),
    "inherited nowrap": _page(b'<div style="white-space:nowrap">' + _boxes(
        b'<div style="width:4ch;overflow:hidden">', b" ") + b"</div>"),
    "max-width": _page(_boxes(b'<div style="max-width:4ch;overflow:hidden;'
                              b'white-space:pre">', b" ")),
}


TWOS = [B64[i : i + 2] for i in range(0, len(B64), 2)]


def _pieces(opening: bytes, pieces: list[bytes], piece: bytes = b"%s %s") -> bytes:
    return b"".join(opening + piece % (p, _junk(i)) + b"</div>" for i, p in enumerate(pieces))


#: Round 21 (a subagent attacking the clip): each printed by Chromium as the base64.
CLIPPED.update({
    "a piece in a span": _page(_pieces(b'<div style="width:4ch;overflow:hidden;'
                                       b'white-space:nowrap">', FOURS, b"<span>%s</span> %s")),
    "letter spacing": _page(_boxes(b'<div style="width:8ch;letter-spacing:1ch;overflow:hidden;'
                                   b'white-space:nowrap">', b" ")),
    "negative indent": _page(b"".join(
        b'<div style="width:4ch;text-indent:-4ch;overflow:hidden;white-space:nowrap">'
        + _junk(i)[:4] + p + b" " + _junk(i) + b"</div>" for i, p in enumerate(FOURS))),
    "padding in a border box": _page(_pieces(
        b'<div style="width:4ch;box-sizing:border-box;padding:0 0 0 2ch;overflow:hidden;'
        b'white-space:nowrap">', TWOS)),
    "overflow auto": _page(_boxes(b'<div style="width:4ch;overflow:auto;white-space:nowrap;'
                                  b'scrollbar-width:none">', b" ")),
    "paint containment": _page(_boxes(b'<div style="width:4ch;contain:paint;'
                                      b'white-space:nowrap">', b" ")),
    "visible beside hidden": _page(_boxes(b'<div style="width:4ch;overflow:visible hidden;'
                                          b'white-space:nowrap">', b" ")),
    "pre keeps its blanks": _page(_pieces(b'<div style="width:4ch;overflow:hidden;'
                                          b'white-space:pre">', TWOS, b"  %s%s")),
    "no-break space": _page(_pieces(b'<div style="width:4ch;overflow:hidden">', FOURS,
                                    b"%s&nbsp;%s")),
    "rem, a sliver of the next glyph": _page(b'<div style="font-size:16px">' + b"".join(
        b'<span style="display:inline-block;width:2.41rem;overflow:hidden;white-space:nowrap;'
        b'vertical-align:top">' + p + _junk(i) + b"</span>" for i, p in enumerate(FOURS))
        + b"</div>"),
    "one line high": _page(_boxes(b'<div style="width:4ch;line-height:1.2;height:1.2em;'
                                  b'overflow:hidden">', b" ")),
})


@pytest.mark.parametrize("shape", list(CLIPPED))
def test_boxes_that_clip_their_overflow_show_the_pieces(engine: Engine, tmp_path: Path,
                                                        shape: str) -> None:
    page = CLIPPED[shape]
    assert printed_text(tmp_path, page) == B64
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), (shape, as_attachment)


def test_a_box_whose_text_wraps_is_not_clipped(tmp_path: Path) -> None:
    """Words that wrap show on lines below (no height set): nothing is cut."""
    page = _page(_boxes(b'<div style="width:4ch;overflow:hidden">', b" "))
    assert printed_text(tmp_path, page) != B64
    laid = htmllayout.laid_out(page)
    assert laid is None or _junk(0) in laid


ORDERED = {
    "calc": b'<span style="order:calc(%d)">',
    "max": b'<span style="order:max(%d, 0)">',
    "calc of a product": b'<span style="order:calc(2 * %d)">',
    "round": b'<span style="order:round(%d.4)">',
    "abs": b'<span style="order:abs(-%d)">',
    "mod": b'<span style="order:mod(%d, 1000)">',
    "custom property": b'<span style="--o:%d;order:var(--o)">',
    "pow": b'<span style="order:pow(%d, 1)">',
    "pi": b'<span style="order:calc(%d * pi / pi)">',
    "var() fallback": b'<span style="order:var(--none, %d)">',
}


@pytest.mark.parametrize("shape", list(ORDERED))
def test_flex_items_ordered_by_a_function(engine: Engine, tmp_path: Path, shape: str) -> None:
    items = [(ORDERED[shape] % i) + p + b"</span>" for i, p in enumerate(FOURS)]
    page = _page(b'<div style="display:flex;flex-wrap:wrap;width:200ch">'
                 + b"".join(reversed(items)) + b"</div>")
    assert printed_text(tmp_path, page) == B64
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), (shape, as_attachment)


def test_an_order_that_is_no_integer_is_ignored(tmp_path: Path) -> None:
    """`order: 2.5` is invalid (0), as Chromium reads it; `calc(2.5)` rounds to 3."""
    page = _page(b'<div style="display:flex"><span style="order:3">D</span>'
                 b'<span style="order:calc(2.5)">C</span><span style="order:1">A</span>'
                 b'<span style="order:2.5">B</span></div>')
    assert printed_text(tmp_path, page) == b"BADC"
    laid = htmllayout.laid_out(page)
    assert laid is not None
    at = {c: laid.index(b">%s<" % c) for c in (b"A", b"B", b"C", b"D")}
    assert sorted(at, key=at.__getitem__) == [b"B", b"A", b"D", b"C"]


def test_a_list_box_shows_its_options_labels(engine: Engine, tmp_path: Path) -> None:
    """Round 20's listbox row: a `<select size=30>` shows each option's `label`, not its
    text, and each option group's label (Chromium's print)."""
    groups = [FOURS[i : i + 4] for i in range(0, len(FOURS), 4)]
    page = _page(b'<select size=40 style="height:80em;border:0;overflow:hidden">' + b"".join(
        b'<optgroup label="%s">' % g[0] + b"".join(b'<option label="%s">%s</option>'
                                                   % (p, _junk(i)) for i, p in enumerate(g[1:]))
        + b"</optgroup>" for g in groups) + b"</select>")
    assert printed_text(tmp_path, page) == B64
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), as_attachment
