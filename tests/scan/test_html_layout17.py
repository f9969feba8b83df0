"""Round 17: base64 pieces that only the CSS layout puts in order (w012-w015, w018-w022,
w024-w027) and the families around them: grid named areas and lines, right-to-left flex, grid
and table containers and lines, boxes placed by `right`/`inset`, moved by `translate` and
`position: relative`, table parts shown in another order than written. Chromium prints each
page and `pdftotext -layout` reads it (the oracle: the recipient's rebuild); the engine reads
the same order (`htmllayout`)."""

from __future__ import annotations

import contextlib
import random
import re
import shutil
from collections.abc import Callable

import pytest

from helpers import cpu
from scan.test_html_views import B64, CHROMIUM, _found, engine, mail, printed_text
from zerohour.errors import ScanLimitExceeded
from zerohour.scan import bidi, cssvalues, htmllayout

__all__ = ["engine"]  # (the module's fixture, used by the tests below)

PIECES = [B64[i : i + 8] for i in range(0, len(B64), 8)]
LINES = [PIECES[i : i + 4] for i in range(0, len(PIECES), 4)]  # 32 characters a line
HEAD, REST = B64[:32], [B64[i : i + 32] for i in range(32, len(B64), 32)]


def _page(body: bytes, css: bytes = b"", html: bytes = b"<html>") -> bytes:
    return (b"<!doctype html>" + html + b"<head><meta charset=utf-8><style>body{font-family:"
            b"monospace;font-size:11px}" + css + b"</style></head><body>\n" + body
            + b"\n</body></html>\n")


def _shuffled(pieces: list[bytes], make: Callable[[int, bytes, int], bytes],
              rnd: random.Random) -> bytes:
    """The pieces in a shuffled order, each made by `make(place, piece, written_at)`."""
    order = list(range(len(pieces)))
    while order == sorted(order) and len(order) > 1:
        rnd.shuffle(order)
    return b"".join(make(j, pieces[j], k) for k, j in enumerate(order))


def _rows(make: Callable[[list[bytes]], bytes]) -> bytes:
    return b"\n".join(make(line) for line in LINES)


def _grid_areas(rnd: random.Random) -> bytes:
    css = (b'.r{display:grid;grid-template-areas:"a0 a1 a2 a3";justify-content:start;'
           b"grid-template-columns:repeat(4,max-content)}"
           + b"".join(b".g%d{grid-area:a%d}" % (j, j) for j in range(4)))
    return _page(_rows(lambda cs: b'<div class="r">' + _shuffled(
        cs, lambda j, c, k: b'<span class="g%d">%s</span>' % (j, c), rnd) + b"</div>"), css)


def _grid_areas_two_rows(rnd: random.Random) -> bytes:
    css = (b'.r{display:grid;grid-template:"a0 a1" "a2 a3" / max-content max-content;'
           b"justify-content:start}" + b"".join(b".g%d{grid-area:a%d}" % (j, j)
                                                 for j in range(4)))
    return _page(_rows(lambda cs: b'<div class="r">' + _shuffled(
        cs, lambda j, c, k: b'<span class="g%d">%s</span>' % (j, c), rnd) + b"</div>"), css)


def _grid_lines(rnd: random.Random) -> bytes:
    css = (b".r{display:grid;grid-template-columns:" + b" ".join(
        b"[c%d] max-content" % j for j in range(4)) + b";justify-content:start}.r>span"
        b"{grid-row:1}" + b"".join(b".n%d{grid-column:c%d / span 1}" % (j, j)
                                   for j in range(4)))
    return _page(_rows(lambda cs: b'<div class="r">' + _shuffled(
        cs, lambda j, c, k: b'<span class="n%d">%s</span>' % (j, c), rnd) + b"</div>"), css)


def _grid_repeated_names(rnd: random.Random) -> bytes:
    css = b".r{display:grid;grid-template-columns:repeat(4,[c] max-content);justify-content:start}"
    return _page(_rows(lambda cs: b'<div class="r">' + _shuffled(
        cs, lambda j, c, k: b'<span style="grid-area:1 / c %d">%s</span>' % (j + 1, c), rnd)
        + b"</div>"), css)


def _grid_negative(rnd: random.Random) -> bytes:
    css = b".r{display:grid;grid-template-columns:repeat(4,max-content);justify-content:start}"
    return _page(_rows(lambda cs: b'<div class="r">' + _shuffled(
        cs, lambda j, c, k: b'<span style="grid-row:1;grid-column:%d">%s</span>'
        % (j - 4, c), rnd) + b"</div>"), css)


def _rtl_flex(_rnd: random.Random) -> bytes:
    css = (b".r{display:flex;direction:rtl;justify-content:flex-end}.r>span{direction:ltr;"
           b"unicode-bidi:isolate}")
    return _page(_rows(lambda cs: b'<div class="r">' + b"".join(
        b"<span>%s</span>" % c for c in reversed(cs)) + b"</div>"), css)


def _rtl_flex_attribute(rnd: random.Random) -> bytes:
    return _page(_rows(lambda cs: b'<div dir=rtl style="display:flex;justify-content:flex-end">'
                       + _shuffled(cs, lambda j, c, k: b'<span dir=ltr style="order:%d">%s'
                                   b"</span>" % (-j, c), rnd) + b"</div>"))


def _rtl_grid(_rnd: random.Random) -> bytes:
    css = (b".r{display:grid;direction:rtl;grid-auto-flow:column;grid-auto-columns:"
           b"max-content;justify-content:end}.r>*{direction:ltr}")
    return _page(_rows(lambda cs: b'<div class="r">' + b"".join(
        b"<span>%s</span>" % c for c in reversed(cs)) + b"</div>"), css)


def _rtl_grid_rows(_rnd: random.Random) -> bytes:
    css = (b".r{display:grid;direction:rtl;grid-template-columns:repeat(2,max-content);"
           b"justify-content:end}span{direction:ltr}")
    return _page(b"".join(b'<div class="r">' + b"".join(
        b"<span>%s</span>" % c for c in (ln[1::-1] + ln[:1:-1])) + b"</div>"
        for ln in LINES), css)


def _rtl_inline_blocks(_rnd: random.Random) -> bytes:
    return _page(_rows(lambda cs: b'<div dir=rtl style="text-align:left">' + b"".join(
        b'<span style="display:inline-block;direction:ltr">%s</span>' % c
        for c in reversed(cs)) + b"</div>"))


def _rtl_isolates(_rnd: random.Random) -> bytes:
    return _page(_rows(lambda cs: b'<p style="direction:rtl;margin:0">' + b"".join(
        b"<bdi>%s</bdi>" % c for c in reversed(cs)) + b"</p>"))


def _rtl_table(_rnd: random.Random) -> bytes:
    return _page(b'<table dir=rtl cellspacing=0 cellpadding=0>' + _rows(
        lambda cs: b"<tr>" + b"".join(b'<td dir=ltr>%s</td>' % c for c in reversed(cs))
        + b"</tr>") + b"</table>", b"td{padding:0}")


def _rtl_css_table_unclosed(_rnd: random.Random) -> bytes:
    return _page(b'<table class=t cellspacing=0 cellpadding=0>' + _rows(
        lambda cs: b"<tr>" + b"".join(b"<td>%s" % c for c in reversed(cs))) + b"</table>",
        b".t{direction:rtl}td{padding:0;direction:ltr}")


def _absolute_right(rnd: random.Random) -> bytes:
    return _page(_rows(lambda cs: b'<div style="position:relative;height:1.3em;width:%dch">'
                       % (8 * len(cs)) + _shuffled(cs, lambda j, c, k: (
                           b'<span style="position:absolute;right:%dch;top:0">%s</span>'
                           % (8 * (len(cs) - 1 - j), c)), rnd) + b"</div>"))


def _absolute_inset(rnd: random.Random) -> bytes:
    return _page(_rows(lambda cs: b'<div style="position:relative;height:1.3em">' + _shuffled(
        cs, lambda j, c, k: b'<span style="position:absolute;inset:0 auto auto %dch">%s'
        b"</span>" % (8 * j, c), rnd) + b"</div>"))


def _absolute_wrapped(rnd: random.Random) -> bytes:
    cells = [(r, j, c) for r, cs in enumerate(LINES) for j, c in enumerate(cs)]
    rnd.shuffle(cells)
    return _page(b'<div style="position:relative;height:6em">' + b"".join(
        b'<p style="margin:0"><span style="position:absolute;top:%dem;left:calc(%d * 8ch)">'
        b"%s</span></p>" % (2 * r, j, c) for r, j, c in cells) + b"</div>")


_INLINE_BLOCKS = b"div{white-space:nowrap;font-size:0}span{font-size:11px}"


def _moved(style: Callable[[int, int], bytes]) -> Callable[[random.Random], bytes]:
    def page(rnd: random.Random) -> bytes:
        return _page(_rows(lambda cs: b"<div>" + _shuffled(cs, lambda j, c, k: (
            b'<span style="display:inline-block;width:8ch;%s">%s</span>' % (style(j, k), c)),
            rnd) + b"</div>"), _INLINE_BLOCKS)
    return page


def _relative_big_moves(rnd: random.Random) -> bytes:
    """One piece a line in the page, moved by offsets past what reads as off screen."""
    order = list(range(len(PIECES)))
    rnd.shuffle(order)
    return _page(b"".join(
        b'<div style="position:relative;height:1.2em;line-height:1.2em;top:%.1fem;left:%dch">'
        b"%s</div>" % ((j // 4 - k) * 1.2, (j % 4) * 8, PIECES[j]) for k, j in enumerate(order))
        + b'<div style="height:16em"></div>')


def _flex_classes(css: bytes, item: Callable[[int, bytes], bytes]
                  ) -> Callable[[random.Random], bytes]:
    """Flex rows of the pieces (shuffled), each piece made by `item(place, piece)`."""
    def page(rnd: random.Random) -> bytes:
        return _page(_rows(lambda cs: b'<div class="r">' + _shuffled(
            cs, lambda j, c, k: item(j, c), rnd) + b"</div>"), b".r{display:flex}" + css)
    return page


def _rows_of(lines: list[bytes]) -> bytes:
    return b"".join(b"<tr><td>%s</td></tr>" % line for line in lines)


SHAPES: dict[str, Callable[[random.Random], bytes]] = {
    # grids (w012, w013)
    "grid-areas": _grid_areas,
    "grid-template-areas-two-rows": _grid_areas_two_rows,
    "grid-named-lines": _grid_lines,
    "grid-repeated-line-names": _grid_repeated_names,
    "grid-negative-lines": _grid_negative,
    # right to left (w014, w015, w024)
    "rtl-flex": _rtl_flex,
    "rtl-flex-dir-attribute-order": _rtl_flex_attribute,
    "rtl-grid-auto-columns": _rtl_grid,
    "rtl-grid-rows": _rtl_grid_rows,
    "rtl-inline-blocks": _rtl_inline_blocks,
    "rtl-bdi": _rtl_isolates,
    "rtl-table": _rtl_table,
    "rtl-css-table-unclosed-cells": _rtl_css_table_unclosed,
    # placed boxes (w018, w019)
    "absolute-right": _absolute_right,
    "absolute-inset": _absolute_inset,
    "absolute-wrapped-calc": _absolute_wrapped,
    # moved boxes (w020-w022)
    "transform-translatex": _moved(lambda j, k: b"transform:translateX(%dch)" % (8 * (j - k))),
    "translate-property": _moved(lambda j, k: b"translate:%dch 0" % (8 * (j - k))),
    "translate-percent": _moved(lambda j, k: b"transform:translate(%d%%,0)" % (100 * (j - k))),
    "relative-left": _moved(lambda j, k: b"position:relative;left:%dch" % (8 * (j - k))),
    "relative-right": _moved(lambda j, k: b"position:relative;right:%dch" % (8 * (k - j))),
    "matrix": _moved(lambda j, k: b"transform:matrix(1,0,0,1,%d,0)" % round(8 * 0.6 * 11
                                                                             * (j - k))),
    "relative-big-moves": _relative_big_moves,
    # flex items inside `display: contents` boxes; the cascade (more specific rules win over
    # later ones, `!important` over the style attribute)
    "flex-display-contents": _flex_classes(
        b".w{display:contents}",
        lambda j, c: b'<span class="w"><b style="order:%d;font-weight:normal">%s</b></span>'
        % (j, c)),
    "specificity-over-later-rules": _flex_classes(
        b"".join(b"div.r .o%d{order:%d}" % (j, j) for j in range(4)) + b"span{order:0}"
        b".r span{order:0}", lambda j, c: b'<span class="o%d">%s</span>' % (j, c)),
    "important-over-style-attribute": _flex_classes(
        b"".join(b".o%d{order:%d!important}" % (j, j) for j in range(4)),
        lambda j, c: b'<span class="o%d" style="order:%d">%s</span>' % (j, 3 - j, c)),
    # table parts (w025-w027)
    "thead-after-tbody": lambda _r: _page(b"<table cellspacing=0 cellpadding=0><tbody>"
                                          + _rows_of(REST) + b"</tbody><thead>"
                                          + _rows_of([HEAD]) + b"</thead></table>"),
    "tfoot-before-tbody": lambda _r: _page(b"<table cellspacing=0 cellpadding=0><tfoot>"
                                           + _rows_of(REST[1:]) + b"</tfoot><tbody>"
                                           + _rows_of([HEAD, REST[0]]) + b"</tbody></table>"),
    "header-group-class": lambda _r: _page(
        b'<div style="display:table"><div class=b>' + b"".join(
            b'<div style="display:table-row">%s</div>' % line for line in REST)
        + b'</div><div class=h><div style="display:table-row">' + HEAD + b"</div></div></div>",
        b".h{display:table-header-group}.b{display:table-row-group}"),
    "caption-side-bottom": lambda _r: _page(
        b'<table cellspacing=0 cellpadding=0><caption style="caption-side:bottom;text-align:'
        b'left">' + b"<br>".join(REST) + b"</caption>" + _rows_of([HEAD]) + b"</table>"),
    "caption-written-last": lambda _r: _page(
        b"<table cellspacing=0 cellpadding=0>" + _rows_of(REST) + b'<caption style="text-'
        b'align:left">' + HEAD + b"</caption></table>"),
    "foster-parented-text": lambda _r: _page(
        b"<table cellspacing=0 cellpadding=0>" + _rows_of(REST) + b"<b style=font-weight:"
        b"normal>" + HEAD + b"</b></table>"),
}


@pytest.mark.skipif(CHROMIUM is None or shutil.which("pdftotext") is None,
                    reason="chromium or pdftotext not installed")
@pytest.mark.parametrize("shape", list(SHAPES))
def test_pieces_are_read_in_the_order_the_layout_shows(engine, tmp_path, shape: str) -> None:  # type: ignore[no-untyped-def]
    page = SHAPES[shape](random.Random(17))
    assert printed_text(tmp_path, page) == B64
    assert B64 not in re.sub(rb"<[^>]*>|\s", b"", page)  # not in the page's own order
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), as_attachment


def _shown(page: bytes) -> bytes:
    """The laid-out page's text (the page's own when the layout changes nothing)."""
    return re.sub(rb"<[^>]*>|\s", b"", htmllayout.laid_out(page) or page)


def test_orders_chromium_shows() -> None:
    """Orders checked against Chromium's print (round 17), without it."""
    assert _shown(b"<div dir=rtl><span dir=ltr>AA</span><span dir=ltr>BB</span></div>") == (
        b"BBAA")
    assert _shown(b"<div dir=rtl>XX <b>AA <i dir=ltr>BB</i></b></div>") == b"BBXXAA"
    assert _shown(b"<div dir=rtl>XX<span dir=ltr>YY</span>ZZ<img alt=Q></div>") == (
        b"QXXYYZZ")
    assert _shown(b'<div style="display:flex;flex-direction:row-reverse" dir=rtl><b>A</b>'
                  b"<b>B</b></div>") == b"AB"
    assert _shown(b"<table><caption style=caption-side:bottom>CB</caption><tfoot><tr><td>F"
                  b"</td></tr></tfoot><tbody><tr><td>B</td></tr></tbody><caption>C2</caption>"
                  b"<thead><tr><td>H</td></tr></thead><thead><tr><td>H2</td></tr></thead>"
                  b"</table>") == b"C2HBH2FCB"
    assert _shown(b"<table><tr><td>A</td></tr>B<b>C</b></table>") == b"BCA"
    assert _shown(b"<table dir=rtl><tr dir=ltr><td>A</td><td>B</td></tr></table>") == b"BA"
    grid = b'<div style="display:grid;grid-template-columns:%s">%s</div>'
    assert _shown(grid % (b"[x] auto [y] auto [x] auto", b'<i style="grid-column:x 2">X2</i>'
                          b'<i style="grid-column:y">Y</i><i style="grid-column:x">X1</i>')) == (
        b"X2YX1")  # (three rows: each column line left of the cursor starts one)
    assert _shown(grid % (b"repeat(3,auto)", b'<i style="grid-column:-2">M</i><i>A1</i><i>A2'
                          b'</i><i style="grid-row:1">R</i>')) == b"RMA1A2"
    assert _shown(grid % (b"repeat(3,auto)", b'<i style="grid-column:span 1 / 3">S</i>'
                          b'<i style="grid-column:1">C</i>')) == b"SC"
    assert _shown(b"<div style=\"display:grid;grid-template-areas:'a b' 'c d'\"><i style="
                  b"grid-area:d>D</i><i style=grid-area:c>C</i><i style=grid-area:b>B</i>"
                  b"<i style=grid-area:a>A</i></div>") == b"ABCD"
    assert _shown(b'<div style="display:grid;grid:auto-flow / auto auto;direction:rtl">'
                  b"<i>B1</i><i>A1</i><i>B2</i><i>A2</i></div>") == b"A1B1A2B2"
    # (a logical offset by the box's own direction, not its container's)
    assert _shown(b'<div dir=rtl style="position:relative;width:10ch"><b dir=ltr style="'
                  b'position:absolute;inset-inline-end:0">B</b><b dir=ltr style="position:'
                  b'absolute;inset-inline-end:2ch">A</b><b style="position:absolute;'
                  b'inset-inline-end:2ch">C</b></div>') == b"CAB"


def test_boxes_moved_off_the_page_are_left_out() -> None:
    """Far off to the left or above: not shown, not read (round 17, w069: junk moved away
    by `translate`); offsets applied are renamed, so that the page's readers do not take a
    box moved back from far (`top: -120em` on the 100th line) for a hidden one."""
    page = (b'<div><span style="display:inline-block;width:0;translate:-99999px">JUNK</span>AB'
            b'<span style="position:absolute;left:-9999px">JUNK</span>CD<span style="position:'
            b'relative;top:-5000px">JUNK</span></div><div>' + b"<p>x</p>" * 130
            + b'<p style="position:relative;top:-120em;left:2px">EF</p></div>')
    laid = htmllayout.laid_out(page)
    assert laid is not None
    assert b"JUNK" not in laid
    assert b"EF" in laid
    assert b";top:-120em" not in laid
    assert b";applied-top:-120em" in laid


def test_rules_for_what_stands_inside() -> None:
    """`X > *` and `X *` style the elements inside an X (round 17: `.r>*{direction:ltr}`
    under a right-to-left grid)."""
    css = b"<style>.f>*{order:-1}.g *{order:-2}</style>"
    assert _shown(css + b'<div style=display:flex class=f><b>A</b><b class=x>B</b></div>'
                  b'<div style=display:flex><b>C</b><b style="order:-1">D</b></div>') == (
        b".f>*{order:-1}.g*{order:-2}ABDC")
    assert _shown(css + b'<div class=g><p style=display:flex><i>B</i><i style="order:-3">A'
                  b"</i></p></div>") == b".f>*{order:-1}.g*{order:-2}AB"


def test_css_values() -> None:
    assert cssvalues.length(b"8ch", 10.0) == pytest.approx(48.0)
    assert cssvalues.length(b"calc(2 * 8ch - 6px)", 10.0) == pytest.approx(90.0)
    assert cssvalues.length(b"min(4px, 2em)", 10.0) == pytest.approx(4.0)
    assert cssvalues.length(b"50%", 10.0, 300.0) == pytest.approx(150.0)
    assert cssvalues.length(b"auto", 10.0) is None
    assert cssvalues.length(b"calc(1px +", 10.0) is None
    assert cssvalues.offset(b"translateX(-100%) translate(2px, 3px)", None, 10.0, 40.0,
                            12.0) == pytest.approx((-38.0, 3.0))
    assert cssvalues.offset(None, b"1ch 2px", 10.0, 40.0, 12.0) == pytest.approx((6.0, 2.0))
    assert cssvalues.offset(b"matrix(1, 0, 0, 1, 5, 7)", None, 10.0, 0, 0) == (5.0, 7.0)
    count, names = cssvalues.tracks(b"[a] 1fr repeat(2, [b] 10px) [c]", 16.0, 700.0)
    assert (count, names) == (3, {b"a": [1], b"b": [2, 3], b"c": [4]})
    assert cssvalues.tracks(b"repeat(auto-fill, 100px)", 16.0, 700.0)[0] == 7
    with pytest.raises(ScanLimitExceeded):  # (bound 4: it counted as 10,000)
        cssvalues.tracks(b"repeat(99999999, 1px)", 16.0, 700.0)
    assert cssvalues.tracks(b"repeat(3, auto) auto", 16.0, 700.0)[0] == 4
    axis = (3, {b"x": [1, 3]})
    assert cssvalues.line(b"x 2", axis, False) == 3
    assert cssvalues.line(b"x 3", axis, False) == 5  # (past the named ones: implicit lines)
    assert cssvalues.line(b"-1", axis, False) == 4
    assert cssvalues.start_line(b"span 2", b"5", axis) == 3
    assert cssvalues.SHORTHANDS[b"inset"](b"1px 2px") == {
        b"top": b"1px", b"right": b"2px", b"bottom": b"1px", b"left": b"2px"}
    assert cssvalues.SHORTHANDS[b"grid-area"](b"a")[b"grid-column-end"] == b"a"
    assert cssvalues.SHORTHANDS[b"grid-template"](b'"a b" / repeat(2, 1fr)') == {}


def _grid_from_both_ends(columns: int, first: int) -> bytes:
    """Bound 4: B64 in pieces of 3, shuffled, on one row of a grid of `columns` auto
    tracks: the first half at columns `first` on, the rest counted from the end (`-17` to
    `-2`)."""
    pieces = [B64[i : i + 3] for i in range(0, len(B64), 3)]
    half = len(pieces) // 2
    items = [b'<span style="grid-row:1;grid-column:%d">%s</span>'
             % (first + k if k < half else -(len(pieces) - k + 1), p)
             for k, p in enumerate(pieces)]
    random.Random(4).shuffle(items)
    return (b"<!doctype html><html><head><meta charset=utf-8><style>body{font-family:monospace}"
            b".g{display:grid;grid-template-columns:repeat(%d, auto);justify-content:start}"
            b"</style></head><body><div class=g>%s</div></body></html>\n"
            % (columns, b"".join(items)))


def test_grid_tracks_past_the_bounds_are_read_or_a_limit(engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Bound 4: `repeat(N, auto)` counted no track (pieces from both ends of 100 columns read
    out of order, clean); a grid of 20,000 columns counted as 10,000, `grid-column: -2` read
    at 10,000 (clean): now a limit finding, as are lines past `_MAX_LINE` (clamped; Chromium
    places them apart) and named lines past `_MAX_NAMED_LINES` (dropped)."""
    small, large = _grid_from_both_ends(100, 40), _grid_from_both_ends(20_000, 9990)
    if CHROMIUM is not None and shutil.which("pdftotext") is not None:
        assert B64 in printed_text(tmp_path, small)
        assert B64 in printed_text(tmp_path, large)
    for as_attachment in (False, True):
        assert _found(engine, mail(small, as_attachment))
        assert engine.scan_bytes(mail(large, as_attachment)).names == (
            "Heuristics.Limits.Exceeded.MaxScanTime",)
    with pytest.raises(ScanLimitExceeded):
        cssvalues.line(b"100001", (3, {}), False)
    with pytest.raises(ScanLimitExceeded):
        cssvalues.tracks(b"repeat(10000, [a b c d e f g] 1px)", 16.0, 700.0)


def test_bidi_runs_and_order() -> None:
    runs = bidi.text_runs("AB C1 12 \u05d0\u05d1, \u05d2 +".encode())
    assert b"".join(text for text, _kind in runs) == "AB C1 12 \u05d0\u05d1, \u05d2 +".encode()
    assert runs[0] == (b"AB C", bidi.L)  # (letter to letter: one left-to-right run)
    assert ("\u05d0\u05d1, \u05d2".encode(), bidi.R) in runs
    classes = [kind for _text, kind in bidi.text_runs(b"12 34")]
    assert bidi.visual_order(classes, True)[0] == [2, 1, 0]
    assert bidi.visual_order([bidi.L, bidi.ON, bidi.L], True)[0] == [0, 1, 2]
    assert bidi.visual_order([bidi.ON, bidi.ON, bidi.ON], True)[0] == [2, 1, 0]
    assert bidi.visual_order([bidi.ON, bidi.ON], False)[0] == [0, 1]


def test_round_seventeen_layouts_cost_linear_time() -> None:
    pages = [
        b'<div style="display:grid;grid-template-columns:repeat(100,1fr)">' + b"".join(
            b'<i style="grid-column:%d">x</i>' % (i % 97 + 1) for i in range(20_000)) + b"</div>",
        b'<div style="display:grid;grid-auto-flow:column">' + b"".join(
            b'<i style="grid-row:%d">x</i>' % (i % 7 + 1) for i in range(20_000)) + b"</div>",
        b'<div style="position:relative">' + b"".join(
            b'<p><span><b style="position:absolute;top:%dpx;right:%dpx">x</b></span></p>'
            % (i, i % 50) for i in range(20_000)) + b"</div>",
        (b'<span style="display:inline-block;transform:translate(1px)">ab' * 250 + b"x"
         + b"</span>" * 250) * 40,
        b"<div dir=rtl>" + b"<b>" * 250 + b"<i dir=ltr>x</i> y " * 20_000 + b"</b>" * 250
        + b"</div>",
        b"<div dir=rtl>" + b"<span dir=ltr>ab</span><span dir=ltr>cd</span><br>" * 30_000
        + b"</div>",
        b"<table dir=rtl>" + b"<tr><td>a<td>b<td>c</tr>x" * 20_000 + b"<thead><tr><td>h"
        + b"</table>",
    ]
    for page in pages:
        started = cpu.process_time()
        with contextlib.suppress(ScanLimitExceeded):
            htmllayout.laid_out(page)
        assert cpu.process_time() - started < 10.0


def _content_after(pad: int) -> bytes:
    """EICAR's base64 written by a `::before`, each character a CSS escape, after `pad`
    spaces (collapsed where it is shown)."""
    escaped = b"".join(b"\\%x " % c for c in B64)
    return _page(b"<p class=x></p>", b'.x::before{content:"' + b" " * pad + escaped + b'"}')


def test_a_long_content_is_read_whole_or_a_limit(engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """One pseudo-element's text was cut at 64 K characters, silently: the base64 after
    70,000 spaces was never read. It is read now, and past `_MAX_CONTENT` (1 M) the page is
    a limit finding."""
    page = _content_after(70_000)
    if CHROMIUM is not None and shutil.which("pdftotext") is not None:
        assert printed_text(tmp_path, page) == B64
    assert _found(engine, mail(page, False))
    names = engine.scan_bytes(mail(_content_after(1 << 21), False)).names
    assert names == ("Heuristics.Limits.Exceeded.MaxScanTime",)


def test_a_flex_row_inside_300_elements_is_laid_out(engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The tree was cut at 256 levels (deeper elements read as their parent's siblings),
    Chromium's parser at 512: a flex row whose `order` puts the pieces in place, inside 300
    divs, was read in the markup's shuffled order, clean."""
    order = list(range(len(PIECES)))
    random.Random(3).shuffle(order)
    row = b'<div style="display:flex">' + b"".join(
        b'<span style="order:%d">%s</span>' % (i, PIECES[i]) for i in order) + b"</div>"
    page = _page(b"<div>" * 300 + row + b"</div>" * 300)
    if CHROMIUM is not None and shutil.which("pdftotext") is not None:
        assert printed_text(tmp_path, page) == B64
    assert _found(engine, mail(page, False))
