"""Round 17: side-by-side boxes whose lines a printed page reads row by row (w028-w032,
w120): B64 in 8-character pieces, the even ones in the left box and the odd ones in the right
(or the lines of one box flowed into columns). Chromium prints the page, `pdftotext -layout`
reads it (the oracle: the recipient's rebuild); the engine reads the same order."""

from __future__ import annotations

import shutil

import pytest

from helpers import cpu
from scan.test_html_views import B64, CHROMIUM, _found, engine, mail, printed_text
from zerohour.scan import htmlcolumns

__all__ = ["engine"]  # (the module's fixture, used by the tests below)

PIECES = [B64[i : i + 8] for i in range(0, len(B64), 8)]
EVEN, ODD = b"<br>".join(PIECES[0::2]), b"<br>".join(PIECES[1::2])


def _page(body: bytes, css: bytes = b"") -> bytes:
    return (b"<!doctype html><html><head><meta charset=utf-8><style>body{font-family:"
            b"monospace;font-size:11px}" + css + b"</style></head><body>\n" + body
            + b"\n</body></html>\n")


def _column_major(columns: int) -> bytes:
    rows = -(-len(PIECES) // columns)
    cols = [[PIECES[r * columns + c] for r in range(rows) if r * columns + c < len(PIECES)]
            for c in range(columns)]
    return b"<br>".join(p for col in cols for p in col)


SHAPES = {
    "table-cells": _page(b"<table><tr><td>" + EVEN + b"</td><td>" + ODD + b"</td></tr></table>",
                         b"td{vertical-align:top;padding:0 2ch}"),
    "column-count-2": _page(b'<div style="column-count:2;column-gap:4ch;width:30ch">'
                            + _column_major(2) + b"</div>"),
    "column-count-4-class": _page(b'<div class="c">' + _column_major(4) + b"</div>",
                                  b".c{columns:4;column-gap:3ch;width:50ch}"),
    "inline-blocks": _page(b'<div style="white-space:nowrap"><div style="display:inline-block;'
                           b'vertical-align:top">' + EVEN + b'</div><div style="display:'
                           b'inline-block;vertical-align:top;margin-left:3ch">' + ODD
                           + b"</div></div>"),
    "flex-row": _page(b'<div style="display:flex;gap:3ch"><div>' + EVEN + b"</div><div>" + ODD
                      + b"</div></div>"),
    "left-floats": _page(b'<div class="f">' + EVEN + b'</div><div class="f">' + ODD
                         + b"</div>", b".f{float:left;margin-right:3ch}"),
}


@pytest.mark.skipif(CHROMIUM is None or shutil.which("pdftotext") is None,
                    reason="chromium or pdftotext not installed")
@pytest.mark.parametrize("shape", list(SHAPES))
def test_side_by_side_boxes_are_read_row_by_row(engine, tmp_path, shape: str) -> None:  # type: ignore[no-untyped-def]
    page = SHAPES[shape]
    assert printed_text(tmp_path, page) == B64
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), as_attachment


def test_one_column_and_one_line_rows_make_no_reading() -> None:
    assert htmlcolumns.columns_text(b"<table><tr><td>a</td><td>b</td></tr></table>") is None
    assert htmlcolumns.columns_text(b"<p>one<br>two</p>") is None


def test_many_rows_and_boxes_cost_linear_time() -> None:
    rows = b"<tr><td>a<br>b</td><td>c<br>d</td></tr>" * 20_000
    boxes = b'<span style="display:inline-block">x<br>y</span>' * 20_000
    flex = b'<div style="display:flex">' * 2000 + b"<i>a<br>b</i>" * 2000
    wide = (b'<div style="display:flex">' + b"<i>a<br>b</i>" * 50) * 2000  # (kids unbounded)
    cells = b"<table><tr>" + b"<td>a<br>b</td>" * 50_000 + b"</tr></table>"
    for page in (b"<table>" + rows + b"</table>", boxes, flex, wide, cells):
        started = cpu.process_time()
        htmlcolumns.columns_text(page)
        assert cpu.process_time() - started < 10.0


#: Side-by-side pieces past a reader's old bounds: after 4096 rows it grouped (`_MAX_GROUPS`),
#: and after 64 (empty) flex items (`_kids`): the pieces were never interleaved.
PAST_THE_BOUNDS = {
    "after-4096-groups": _page(b"<table>" + b"<tr><td>-<br>.</td><td>-<br>.</td></tr>" * 4100
                               + b"</table><table><tr><td>" + EVEN + b"</td><td>" + ODD
                               + b"</td></tr></table>", b"td{vertical-align:top;padding:0 2ch}"),
    "after-64-flex-items": _page(b'<div style="display:flex">' + b"<i></i>" * 100 + b"<div>"
                                 + EVEN + b'</div><div style="margin-left:3ch">' + ODD
                                 + b"</div></div>"),
    # round 36: a closing tag was looked for among the 256 innermost open elements only
    "a-box-holding-300-unclosed-spans": _page(b'<div style="display:flex;gap:3ch"><div>' + EVEN
                                              + b"<span>" * 300 + b"</div><div>" + ODD
                                              + b"</div></div>"),
}


@pytest.mark.parametrize("shape", list(PAST_THE_BOUNDS))
def test_boxes_past_the_old_bounds_are_read_row_by_row(engine, tmp_path, shape: str) -> None:  # type: ignore[no-untyped-def]
    page = PAST_THE_BOUNDS[shape]
    if CHROMIUM is not None and shutil.which("pdftotext") is not None:
        assert printed_text(tmp_path, page).endswith(B64)
    assert _found(engine, mail(page, False))
