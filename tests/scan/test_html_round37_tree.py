"""Round 37: the readings of `textual` build the tree as Chromium's parser does. A start tag
closes an open element (`<div>` an open `<p>`, `<li>` an open `<li>`, `<dd>` a `<dd>`):
junk in a hidden `<p>`/`<li>` left unclosed is hidden, the pieces after it shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import cpu
from scan.test_html_clients import PHONE, screen_text
from scan.test_html_views import B64, CHROMIUM, _found, mail
from zerohour.errors import ScanLimitExceeded
from zerohour.scan import Engine, load_database, textual
from zerohour.scan.database import default_db_dirs
from zerohour.scan.textual import html_visible


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_database(default_db_dirs()))


CHUNKS = [B64[i : i + 3] for i in range(0, len(B64), 3)]


def _h11(tmpl: bytes, control: bool = False) -> bytes:
    """Each piece in `tmpl` (X), hidden `<p>`s with junk left open between."""
    sep = b'<span style="display:none">QkFa</span>' if control else b'<p style="display:none">QkFa'
    body = sep.join(tmpl.replace(b"X", c) for c in CHUNKS)
    return (b"<!doctype html><html><head><meta charset=utf-8></head><body><p>Your code:</p>"
            + body + b"<p>Thanks</p></body></html>")


def _h12(tag: bytes, control: bool = False) -> bytes:
    """Pieces in `<li>`s (`<dd>`s), hidden ones with junk between, none closed."""
    wrap = {b"li": b"ul", b"dd": b"dl"}[tag]
    end = b"</" + tag + b">" if control else b""
    body = (b"<" + tag + b' style="display:none">QkFa' + end).join(
        b"<" + tag + b">" + c + end for c in CHUNKS)
    return (b"<!doctype html><html><head><meta charset=utf-8><style>li{list-style:none}</style>"
            b"</head><body><p>Your code:</p><" + wrap + b">" + body + b"</" + wrap
            + b"><p>Thanks</p></body></html>")


PAGES = {
    "p closed by div": _h11(b"<div>X</div>"),
    "p closed by table (standards)": _h11(b"<table><td>X</table>"),
    "p closed by ul": _h11(b"<ul><li>X</ul>"),
    "li closed by li": _h12(b"li"),
    "dd closed by dd": _h12(b"dd"),
}


@pytest.mark.parametrize("name", list(PAGES))
@pytest.mark.parametrize("as_attachment", [False, True])
def test_implied_end_tags_end_the_hidden_element(engine: Engine, name: str,
                                                 as_attachment: bool) -> None:
    assert _found(engine, mail(PAGES[name], as_attachment))


@pytest.mark.parametrize("name", list(PAGES))
def test_the_reading_shows_what_chromium_shows(name: str) -> None:
    shown = html_visible(PAGES[name])
    assert shown is not None
    assert B64 in shown.replace(b"\n", b"").replace(b" ", b"")


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium")
@pytest.mark.parametrize("name", ["p closed by div", "p closed by table (standards)",
                                  "li closed by li"])
def test_chromium_shows_the_pieces_whole(tmp_path: Path, name: str) -> None:
    assert B64 in screen_text(tmp_path, PAGES[name], PHONE)


def test_the_controls_are_found_still(engine: Engine) -> None:
    assert _found(engine, mail(_h11(b"<div>X</div>", control=True), False))
    assert _found(engine, mail(_h12(b"li", control=True), False))


def test_what_a_hidden_p_or_li_holds_stays_hidden() -> None:
    """Ordinary pages: unclosed `<p>`s and `<li>`s, a `<p style=display:none>` with inline
    content and a hidden `<li>` whose text is its own: hidden still, nothing after it."""
    page = (b"<!doctype html><html><body><p>Hello there<p>Second para"
            b'<p style="display:none">preheader <b>secret</b> <a href=x>words</a> more'
            b"<ul><li>one<li style=display:none>hiddenitem <i>too</i><li>three</ul>"
            b"<dl><dt>term<dd style=display:none>hiddendef<dd>shown</dl>"
            b'<table><tr><td><p style="display:none">cellhidden<span>deep</span>'
            b"</td><td>cell2</table><p>Bye</body></html>")
    shown = html_visible(page)
    assert shown is not None
    for word in (b"Hello", b"Second", b"one", b"three", b"term", b"shown", b"cell2",
                 b"Bye"):
        assert word in shown
    for word in (b"preheader", b"secret", b"words", b"more", b"hiddenitem", b"too",
                 b"hiddendef", b"cellhidden", b"deep"):
        assert word not in shown


def test_a_table_in_a_quirks_mode_p_stays_in_it() -> None:
    """Without a doctype a `<table>` does not close an open `<p>`: hidden with it."""
    page = (b"<html><body><p>Hi</p><p style=\"display:none\">junk<table><tr><td>intable"
            b"</table></p><p>Bye</body></html>")
    shown = html_visible(page)
    assert shown is not None
    assert b"intable" not in shown
    assert b"Bye" in shown


def _h05(control: bool = False) -> bytes:
    """Junk in `<table><td>` between the pieces: the parser's own `<tr>` (and `<tbody>`),
    hidden on screen by `tr{display:none}`."""
    cell = b"<table><tr><td>QkFa</td></tr></table>" if control else b"<table><td>QkFa</table>"
    body = cell.join(CHUNKS)
    head = (b"<style>@media screen{tr{display:none} .x{margin:0}}"
            b"@media print{tr{display:table-row}}</style>")
    return (b"<!doctype html><html><head><meta charset=utf-8>" + head
            + b"</head><body><p class=x>Your code:</p><div>" + body
            + b"</div><p>Thanks</p></body></html>")


@pytest.mark.parametrize("control", [False, True])
@pytest.mark.parametrize("as_attachment", [False, True])
def test_the_parsers_own_tr_is_hidden_by_a_tr_rule(engine: Engine, control: bool,
                                                   as_attachment: bool) -> None:
    assert _found(engine, mail(_h05(control), as_attachment))


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium")
def test_chromium_hides_the_parsers_own_tr(tmp_path: Path) -> None:
    assert B64 in screen_text(tmp_path, _h05(), PHONE)


@pytest.mark.parametrize("css", [b"tr{display:none}", b"tbody{display:none}"])
def test_implied_rows_hide_only_the_table(css: bytes) -> None:
    """Ordinary tables, rows written or not: a rule for `tr`/`tbody` hides their cells and
    nothing after the table."""
    page = (b"<!doctype html><style>" + css + b"</style><div>ABC<table><td>cellone</table>"
            b"DEF<table><tr><td>celltwo<td>cellthree</table>GHI<table><tbody><tr><td>four"
            b"</table>JKL</div>")
    shown = html_visible(page)
    assert shown is not None
    assert shown.replace(b"\n", b"") == b"ABCDEFGHIJKL"


def _h09(depth: int = 600, control: bool = False) -> bytes:
    """A hidden `<div>` under `depth` divs holding the junk as text, the pieces as spans."""
    inner = b"QkFa".join(b"<span>" + c + b"</span>" for c in CHUNKS)
    outer = b'<div style="display:none">'
    if control:
        inner = b'<span style="display:none">QkFa</span>'.join(
            b"<span>" + c + b"</span>" for c in CHUNKS)
        outer = b"<div>"
    return (b"<!doctype html><html><head><meta charset=utf-8></head><body><p>Your code:</p>"
            + b"<div>" * depth + outer + inner + b"</div>" + b"</div>" * depth
            + b"<p>Thanks</p></body></html>")


@pytest.mark.parametrize("control", [False, True])
def test_past_512_what_a_hidden_element_opens_shows(engine: Engine, control: bool) -> None:
    assert _found(engine, mail(_h09(control=control), False))
    shown = html_visible(_h09(control=control))
    assert shown is not None
    assert B64 in shown.replace(b"\n", b"")
    assert b"QkFa" not in shown


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium")
def test_chromium_shows_the_spans_past_512(tmp_path: Path) -> None:
    assert B64 in screen_text(tmp_path, _h09(), PHONE)


def test_within_the_bound_a_hidden_element_hides_what_it_opens() -> None:
    """300 divs deep (within the bound): the hidden div's spans are its own, hidden."""
    shown = html_visible(_h09(depth=300))
    assert shown is not None
    assert b"QkFa" not in shown
    assert CHUNKS[5] not in shown
    assert b"Thanks" in shown


# -- the session's review: what the new tree code got wrong or slow -----------------------

def test_a_table_closes_a_paragraph_only_out_of_quirks_mode() -> None:
    """No doctype (quirks, most mail): `<table>` stays inside the `<p>`, so `p .j` shows
    the span Chromium shows (review: `_tree` closed the `<p>` always)."""
    page = (b"<style>.j{display:none} p .j{display:inline}</style><p>a<table><tr><td>"
            b"<span class=j>SHOWN</span>c</td></tr></table>")
    visible = textual.html_visible(page)
    assert visible is None or b"SHOWN" in visible


def test_hidden_in_hidden_past_the_bound_is_a_limit_not_a_crash() -> None:
    page = b"<style>div{display:none}</style>" + b"<span>" * 520 + b"<div>x" * 1200
    with pytest.raises(ScanLimitExceeded):
        textual.html_visible(page)


@pytest.mark.parametrize("page", [
    b"<style>tr{display:none}</style>" + b"<table><td>x" * 20000 + b"</table>" * 20000,
    b"<style>.j{display:none} div .j{display:inline}</style>" + b"<span>" * 8000
    + b"</x>" * 8000 + b"<div><b class=j>y</b></div>",
], ids=["unclosed tables", "unclosed spans"])
def test_tree_building_costs_linear_time(page: bytes) -> None:
    started = cpu.process_time()
    textual.html_visible(page)
    assert cpu.process_time() - started < 5.0


def test_a_closing_tag_in_a_comment_does_not_hide_the_bound() -> None:
    page = (b"<style>.h{display:none}</style><span>" + b"<div>" * 300 + b"<!--</span>-->"
            + b"<div>" * 300 + b"<div class=h>hid<b>SHOWNPAYLOAD</b></div>")
    visible = textual.html_visible(page)
    assert visible is not None
    assert b"SHOWNPAYLOAD" in visible
