"""Round 20: the cascade's finer points a hostile page leans on. An author's `!important`
declaration outranks a style attribute's normal one: `.s{display:inline!important}` shows
an element whose own style says `display:none`, and base64 cut into such elements, with
decoys that stay hidden between them, reads whole on screen.

Chromium's print is the oracle for every page; the engine finds EICAR in each as a mail's
body and as an attachment."""

from __future__ import annotations

import random
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import browser, cpu
from scan.test_html_round18 import PIECES, THREES, _junk, _page
from scan.test_html_views import B64, CHROMIUM, _found, engine, mail, printed_text
from zerohour.scan import Engine, cssvalues, htmlprint, htmltables, textual

__all__ = ["engine"]  # (the module's fixture, used by the tests below)


def _important(span: bytes, css: bytes) -> bytes:
    return _page(b"".join(span % (p, _junk(i)) for i, p in enumerate(THREES)), css)


SHOWN_BY_IMPORTANT = {
    "class": _important(b'<span class=s style="display:none">%s</span>'
                        b'<span style="display:none">%s</span>', b".s{display:inline!important}"),
    "tag": _important(b'<b style="display: none">%s</b><i style="display:none">%s</i>',
                      b"b{display:inline !important}"),
    "block": _important(b'<b style="DISPLAY:NONE">%s</b><i style="display:none">%s</i>',
                        b"b{display:block!important;margin:0}div{display:flex}"),
}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.parametrize("shape", list(SHOWN_BY_IMPORTANT))
def test_an_important_rule_shows_what_a_style_attribute_hides(
        engine: Engine, tmp_path: Path, shape: str) -> None:
    page = SHOWN_BY_IMPORTANT[shape]
    assert printed_text(tmp_path, page) == B64
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), (shape, as_attachment)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_an_important_style_attribute_still_hides(tmp_path: Path) -> None:
    """`display:none !important` in the attribute beats the sheet's !important rule."""
    page = _important(b'%s<b style="display:none !important">%s</b>',
                      b"b{display:inline !important}")
    assert printed_text(tmp_path, page) == B64
    visible = textual.html_visible(page)
    assert visible is not None
    assert B64 in visible.replace(b"\n", b"")


def test_a_normal_rule_does_not_show_what_a_style_attribute_hides() -> None:
    page = _important(b'<b style="display:none">%s</b>%s', b"b{display:inline}")
    visible = textual.html_visible(page)
    assert visible is not None
    assert B64 not in visible.replace(b"\n", b"")


# -- table columns collapsed away (round 18: v128) ------------------------------------------

def _rows(cells: Callable[[int, bytes, bytes], bytes]) -> bytes:
    return b"".join(cells(i, p, _junk(i)) for i, p in enumerate(THREES))


def _table(head: bytes, rows: bytes, css: bytes = b"") -> bytes:
    return _page(b"<table cellpadding=0 cellspacing=0>" + head + rows + b"</table>", css)


_TWO = _rows(lambda i, p, j: b"<tr><td>%s<td>%s</tr>" % (p, j))
COLLAPSED = {
    "col-style": _table(b'<colgroup><col><col style="visibility:collapse"></colgroup>', _TWO),
    "col-class": _table(b"<col><col class=c>", _TWO, b".c{visibility:collapse}"),
    "col-id-in-sheet": _table(b"<col><col id=k>", _TWO, b"table col#k{visibility:collapse}"),
    "colgroup-span": _table(b'<colgroup span=1></colgroup><colgroup span="1" '
                            b'style="visibility: collapse"></colgroup>', _TWO),
    "col-span": _table(b"<col><col span=2 style=visibility:collapse>",
                       _rows(lambda i, p, j: b"<tr><td>%s</td><td>%s</td><th>%s</th></tr>"
                             % (p, j, j[::-1]))),
    "colspan": _table(b"<col><col class=c><col class=c>",
                      _rows(lambda i, p, j: b"<tr><td>%s</td><td colspan=2>%s</td></tr>"
                            % (p, j)), b".c{visibility:collapse}"),
    "rowspan": _table(b"<col class=c><col>",
                      b"".join(b"<tr><td rowspan=2>%s</td><td>%s</td></tr><tr><td>%s</td></tr>"
                               % (_junk(i), THREES[2 * i], THREES[2 * i + 1])
                               if 2 * i + 1 < len(THREES) else
                               b"<tr><td>%s</td><td>%s</td></tr>" % (_junk(i), THREES[2 * i])
                               for i in range((len(THREES) + 1) // 2)),
                      b".c{visibility:collapse}"),
    "nested": _table(b"<col>", _rows(
        lambda i, p, j: b"<tr><td><table cellpadding=0 cellspacing=0><col><col class=c>"
                        b"<tr><td>%s</td><td>%s</td></tr></table></td></tr>" % (p, j)),
        b".c{visibility:collapse}"),
}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.parametrize("shape", list(COLLAPSED))
def test_collapsed_columns_are_not_read(engine: Engine, tmp_path: Path, shape: str) -> None:
    page = COLLAPSED[shape]
    assert printed_text(tmp_path, page) == B64
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), (shape, as_attachment)


def test_a_table_without_collapsed_columns_is_not_rewritten() -> None:
    assert htmltables.collapsed_page(_table(b"<col><col class=c>", _TWO,
                                            b".c{border-collapse:collapse}")) is None
    assert htmltables.collapsed_page(_table(b"<col><col class=d>", _TWO,
                                            b".c{visibility:collapse}")) is None


def test_hostile_tables_cost_little() -> None:
    """Spans of millions, a hundred thousand rows and cells: bounded, linear."""
    rows = b"<tr><td colspan=99999999 rowspan=99999999>x<td>y" * 2000
    cells = b"<tr>" + b"<td>x" * 100_000
    for page in (_table(b"<col span=99999999 style=visibility:collapse>", rows),
                 _table(b"<col style=visibility:collapse>" * 5000, cells),
                 _table(b"<colgroup span=999999 style=visibility:collapse>",
                        b"<table>" * 5000 + cells)):
        t0 = cpu.process_time()
        htmltables.collapsed_page(page)
        assert cpu.process_time() - t0 < 5.0


def test_collapse_written_with_references_and_escapes_is_read() -> None:
    for col in (b"<col style='visibility&#58;collapse'>", b"<col style='visi\\62 ility:collapse'>",
                b"<col style='visibility:/**/collapse'>"):
        page = htmltables.collapsed_page(_table(b"<col>" + col, _TWO))
        assert page is not None
        shown = textual.html_rendered(page)
        assert shown is not None
        assert B64 in shown.replace(b"\n", b"").replace(b" ", b"")


# -- rules that apply to part of the page only (@scope with a limit) ---------------------

_PIECES_IN_I = b"".join(b"<i>%s</i><b>%s</b>" % (p, _junk(i)) for i, p in enumerate(THREES))
PARTLY = {
    "scope-limit": _page(b"<section class=a><div class=b>" + _PIECES_IN_I + b"</div></section>",
                         b"@scope (.a) to (.b) { i {display:none} } b{display:none}"),
}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.parametrize("shape", list(PARTLY))
def test_rules_that_apply_to_part_of_the_page_are_read_both_ways(
        engine: Engine, tmp_path: Path, shape: str) -> None:
    page = PARTLY[shape]
    assert printed_text(tmp_path, page) == B64
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), (shape, as_attachment)


# -- grid items that span tracks, placed sparse or dense (round 18: v032, v135) -------------

def _dense(flow: bytes, along: bytes) -> bytes:
    """Each three pieces written first, third, second: the first spans two tracks, the
    third all three (it goes to the next line), the second fills the hole the first left
    only when the placement is dense."""
    items = []
    for k in range(0, len(THREES), 3):
        a, b, c = [*THREES[k:k + 3], b"", b""][:3]
        items += [b'<span style="grid-%s:span 2">%s</span>' % (along, a),
                  b'<span style="grid-%s:span 3">%s</span>' % (along, c),
                  b"<span>%s</span>" % b]
    return _page(b'<div style="display:grid;grid-auto-flow:%s;grid-template-columns:'
                 b'repeat(3,2em)">%s</div>' % (flow, b"".join(items)))


GRIDS = {"dense-rows": _dense(b"row dense", b"column"),
         "dense": _dense(b"dense", b"column")}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.parametrize("shape", list(GRIDS))
def test_dense_grids_are_read_in_the_order_they_show(
        engine: Engine, tmp_path: Path, shape: str) -> None:
    page = GRIDS[shape]
    shown = printed_text(tmp_path, page)
    assert shown == B64
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), (shape, as_attachment)


def test_auto_placement_with_spans_follows_css_grid() -> None:
    """CSS Grid 8.5 on small cases (the layouts Chromium makes of them)."""
    one: list[tuple[int | None, int | None]] = [(None, None)] * 3
    assert cssvalues.auto_place(one, 3, [(1, 2), (1, 3), (1, 1)]) == [(1, 1), (2, 1), (3, 1)]
    assert cssvalues.auto_place(one, 3, [(1, 2), (1, 3), (1, 1)], dense=True) == [
        (1, 1), (2, 1), (1, 3)]
    assert cssvalues.auto_place([(1, None), (1, None), (None, None)], 3,
                                [(1, 1), (1, 1), (2, 1)]) == [(1, 1), (1, 2), (1, 3)]


def test_hostile_grids_place_in_bounded_time() -> None:
    many: list[tuple[int | None, int | None]] = [(None, None)] * 20_000
    wide = [(64, 64) if i % 2 else (1, 1) for i in range(20_000)]
    t0 = cpu.process_time()
    cssvalues.auto_place(many, 1000, wide, dense=True)
    cssvalues.auto_place([(i % 50 + 1, i % 70 + 1) for i in range(20_000)], 5, [(64, 64)] * 20_000)
    assert cpu.process_time() - t0 < 10.0



def _span_past_64(span: int = 80) -> bytes:
    """Round 36: base64 of EICAR in three pieces, in a dense grid of 100 columns: the first
    across `span` tracks, the third across 30 (Chromium puts it on the next row, 20 being
    left), the second, one track, in the first row's hole (while spans were taken as 64,
    the third fitted on the first row: the pieces read in another order, clean)."""
    a, b, c = B64[:32], B64[32:64], B64[64:]
    return _page(b'<div style="display:grid;grid-template-columns:repeat(100,5px);'
                 b'grid-auto-flow:row dense"><div style="grid-column:span %d">%s</div>'
                 b'<div style="grid-column:span 30">%s</div><div>%s</div></div>'
                 % (span, a, c, b))


def test_a_span_past_64_tracks_is_placed_as_chromium_does(engine: Engine,
                                                          tmp_path: Path) -> None:
    """Spans are placed as written; an item covering more cells than the placement may look
    at (`MAX_PLACEMENT_STEPS`) is a limit finding."""
    from zerohour.errors import ScanLimitExceeded

    page = _span_past_64()
    if CHROMIUM is not None:
        assert printed_text(tmp_path, page) == B64
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), as_attachment
    with pytest.raises(ScanLimitExceeded):
        cssvalues.auto_place([(None, None)], 3, [(1_000, 1_000)])

# -- multi-column boxes by column width (round 18: v033) -------------------------------------

def _in_columns(style: bytes, n: int) -> bytes:
    """PIECES written column by column (n columns of equal length): read row by row, they
    are B64."""
    rows = len(PIECES) // n
    lines = b"".join(b"<div>%s</div>" % PIECES[r * n + c] for c in range(n) for r in range(rows))
    return _page(b'<div style="%s">%s</div>' % (style, lines), b"body{margin:0}")


MULTICOLUMN = {
    "column-width": _in_columns(b"width:300px;column-width:120px", 2),
    "columns-length": _in_columns(b"width:300px;columns:90px", 3),
    "em-no-gap": _in_columns(b"width:20em;column-width:8em;column-gap:0", 2),
    "count-and-width": _in_columns(b"width:400px;columns:5 180px", 2),
    "page-width": _in_columns(b"columns:330px", 2),
}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.parametrize("shape", list(MULTICOLUMN))
def test_columns_by_width_are_read_row_by_row(
        engine: Engine, tmp_path: Path, shape: str) -> None:
    page = MULTICOLUMN[shape]
    assert printed_text(tmp_path, page) == B64
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), (shape, as_attachment)


# -- base64 with junk characters between its characters (round 20: h225, h228-h230) ----------

_JUNKS = {"ascii-punctuation": ["#", "!", ";", "%", "&amp;", "~", "?"],
          "fullwidth": ["\uff21", "\uff42", "\uff15"],
          "combining": ["\u0301", "\u0300"],
          "other-punctuation": ["\u00b7", "\u2022", "\u2013", "\u00a7"]}


def _junked(kind: str) -> bytes:
    rng = random.Random(kind)
    junk = _JUNKS[kind]
    text = "".join(c + rng.choice(junk) + rng.choice(junk) for c in B64.decode())
    return _page(b"<p>Invoice details below.</p><p style='word-break:break-all'>%s</p>"
                 % text.encode())


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.parametrize("kind", list(_JUNKS))
def test_base64_with_junk_between_its_characters_is_decoded(
        engine: Engine, tmp_path: Path, kind: str) -> None:
    """Chromium's print, its prose line left out and every byte but base64's deleted (as
    `grep -v Invoice | tr -cd 'A-Za-z0-9+/='` does), is B64."""
    page = _junked(kind)
    (tmp_path / "p.html").write_bytes(page)
    pdf = tmp_path / "p.pdf"
    pdf.write_bytes(browser.print_pdf(tmp_path / "p.html"))
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, timeout=60,
                          check=True).stdout
    kept = b"".join(ln for ln in text.splitlines() if b"Invoice" not in ln)
    assert re.sub(rb"[^A-Za-z0-9+/=]", b"", kept) == B64
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), (kind, as_attachment)


def test_long_urls_in_tags_are_no_text_tokens() -> None:
    url = b"https://example.com/track?" + b"a%2Fb&c=d" * 40
    page = b"<p>Hello <a href='%s'>there</a></p>" % url
    assert not textual.long_text_token(page)
    assert textual.long_text_token(b"<p>" + url + b"</p>")


# -- elements a browser hides by default, shown by their own style attribute (round 20) -------

def _shown_by_own_style(element: bytes) -> bytes:
    opening, closing = element.split(b"%s")
    return _page(b"".join(opening + p + closing + b'<i style="display:none">%s</i>' % _junk(n)
                          for n, p in enumerate(THREES)))


SHOWN_BY_OWN_STYLE = {
    "hidden-attribute": b'<span hidden style="display:inline">%s</span>',
    "dialog": b'<dialog style="display:inline;position:static;border:0;padding:0;margin:0">'
              b"%s</dialog>",
    "style-element": b'<style style="display:inline">%s</style>',
    "script-text": b'<script type="text/plain" style="display:inline">%s</script>',
    "title-in-body": b'<title style="display:inline">%s</title>',
}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.parametrize("shape", list(SHOWN_BY_OWN_STYLE))
def test_default_hidden_elements_shown_by_their_own_style_are_read(
        engine: Engine, tmp_path: Path, shape: str) -> None:
    page = _shown_by_own_style(SHOWN_BY_OWN_STYLE[shape])
    assert printed_text(tmp_path, page) == B64
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), (shape, as_attachment)


# -- style sheets a printer never applies, conditions decided for print (round 20) -----------

def _inert(head: bytes, css: bytes = b".d{display:none}", body_extra: bytes = b"") -> bytes:
    """Pieces in `.p`, decoys in `.d`: `head` holds a sheet no browser applies that hides
    the pieces (or conditions that hide the pieces on screen only)."""
    spans = b"".join(b'<span class=p>%s</span><span class=d>%s</span>' % (p, _junk(n))
                     for n, p in enumerate(THREES))
    return (b"<!doctype html><html><head><meta charset=utf-8>" + head + b"<style>body{"
            b"font-family:monospace;font-size:11px}" + css + b"</style></head><body>"
            + body_extra + b"<div>" + spans + b"</div></body></html>")


_HIDE_P = b"<style>.p{display:none}</style>"
_DATA_P = b"data:text/css,.p%7Bdisplay:none%7D"
PRINTED_AS_PRINTED = {
    "in-template": _inert(b"", body_extra=b"<template>" + _HIDE_P + b"</template>"),
    "in-noscript": _inert(b"<noscript>" + _HIDE_P + b"</noscript>"),
    "in-title": _inert(b"<title>" + _HIDE_P + b"</title>"),
    "in-comment": _inert(b"<!-- " + _HIDE_P + b" -->"),
    "in-attribute": _inert(b"", body_extra=b'<i title="' + _HIDE_P + b'"></i>'),
    "text-plain": _inert(b"<style type=text/plain>.p{display:none}</style>"),
    "media-not-all": _inert(b'<style media="not all">.p{display:none}</style>'),
    "alternate-link": _inert(b'<link rel="alternate stylesheet" title=x href="%s">' % _DATA_P),
    "disabled-link": _inert(b'<link rel=stylesheet disabled href="%s">' % _DATA_P),
    "import-supports": _inert(b'<style>@import url("%s") supports(not (display:block));'
                              b"</style>" % _DATA_P),
    "invalid-selector": _inert(b"<style>.p, .x:unknownpseudo{display:none}</style>"),
    "invalid-value": _inert(b"<style>.p{display:none !ie}</style>"),
    "screen-print": _inert(b"", b"@media screen{.p{display:none}} @media print{.d{"
                           b"display:none}}"),
    "style-media": _inert(b'<style media="print">.d{display:none}</style>'
                          b'<style media="screen">.p{display:none}</style>', b""),
    "color-scheme": _inert(b"", b"@media (prefers-color-scheme: light){.d{display:none}}"
                           b"@media (prefers-color-scheme: dark){.p{display:none}}"),
    "orientation": _inert(b"", b"@media (orientation: portrait){.d{display:none}}"
                          b"@media (orientation: landscape){.p{display:none}}"),
    "supports-not": _inert(b"", b"@supports (display:grid){.d{display:none}}"
                           b"@supports not (display:grid){.p{display:none}}"),
}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.parametrize("shape", list(PRINTED_AS_PRINTED))
def test_style_sheets_are_read_as_a_printer_applies_them(
        engine: Engine, tmp_path: Path, shape: str) -> None:
    page = PRINTED_AS_PRINTED[shape]
    assert printed_text(tmp_path, page) == B64
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), (shape, as_attachment)


def test_media_and_supports_are_decided_for_print() -> None:
    assert htmlprint.media_holds(b"print")
    assert htmlprint.media_holds(b"all and (min-width: 300px)")
    assert not htmlprint.media_holds(b"screen")
    assert not htmlprint.media_holds(b"not all")
    assert htmlprint.media_holds(b"not screen")
    assert htmlprint.media_holds(b"screen, print")
    assert not htmlprint.media_holds(b"(max-width: 2px)")
    assert htmlprint.media_holds(b"(max-width: 90em)")
    assert htmlprint.supports_holds(b"(display: grid)")
    assert not htmlprint.supports_holds(b"not (display:grid)")
    assert htmlprint.supports_holds(b"(display: flex) and (gap: 1em)")
    assert htmlprint.client_pages(b"<p>no style here</p>") == ([], [])


# -- decoys a browser draws as nothing (round 20: h09, h27, h160) -----------------------------

DRAWN_AS_NOTHING = {
    "font-shorthand": _inert(b"", b".d{font:0px serif}"),
    "font-shorthand-line-height": _inert(b"", b".d{font: bold 0/0 a}"),
    "content-visibility": _inert(b"", b".d{display:inline-block;content-visibility:hidden}"),
    "text-security": _inert(b"", b".d{-webkit-text-security:disc}"),
}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.parametrize("shape", list(DRAWN_AS_NOTHING))
def test_decoys_drawn_as_nothing_are_not_read(engine: Engine, tmp_path: Path,
                                              shape: str) -> None:
    page = DRAWN_AS_NOTHING[shape].replace(b"font-size:11px}", b"font-size:11px;"
                                           b"word-break:break-all}")
    shown = printed_text(tmp_path, page)
    assert re.sub(rb"[^\x00-\x7f]", b"", shown) == B64  # (text-security: bullets)
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), (shape, as_attachment)


# -- generated text of an element whose own text is size 0 (round 20: h24, h26, h138) --------

def _items(item: Callable[[int, bytes, bytes], bytes], css: bytes, wrap: bytes = b"%s") -> bytes:
    return _page(wrap % b"".join(item(n, p, _junk(n)) for n, p in enumerate(THREES)), css)


SIZED_PSEUDO = {
    "attr-before": _items(lambda n, p, j: b'<span class=s data-p="%s">%s</span>' % (p, j),
                          b".s{font-size:0}.s::before{content:attr(data-p);font-size:11px}"),
    "after": _items(lambda n, p, j: b'<span class=s data-p="%s">%s</span>' % (p, j),
                    b".s{font-size:0}.s::after{content:attr(data-p);font-size:11px}"),
    "marker-string": _items(
        lambda n, p, j: b"<li style=\"list-style-type:'%s'\">%s</li>" % (p, j),
        b"ol{list-style-position:inside;padding:0;margin:0}li{font-size:0}"
        b"li::marker{font-size:11px}", b"<ol>%s</ol>"),
}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.parametrize("shape", list(SIZED_PSEUDO))
def test_generated_text_with_a_size_of_its_own_is_read(
        engine: Engine, tmp_path: Path, shape: str) -> None:
    page = SIZED_PSEUDO[shape]
    assert printed_text(tmp_path, page) == B64
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), (shape, as_attachment)
