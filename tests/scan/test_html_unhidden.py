"""Elements a browser hides by default, shown again by the page's CSS (round 18: base64
pieces in `<title>`, `<script>`, `<rp>`, `<datalist>`, closed `<dialog>`/`<details>`,
`<noframes>`, `hidden` elements that a rule shows, decoys in `display:none` spans, were
delivered). Chromium's print is the oracle; `htmlunhidden` makes the page the readings see."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from helpers import cpu
from scan.test_html_layout17 import PIECES, _page
from scan.test_html_views import B64, CHROMIUM, _found, _junk, engine, mail, printed_text
from zerohour.scan import Engine, htmlunhidden

__all__ = ["engine"]  # (the module's fixture, used by the tests below)


def _shown_by(css: bytes, open_tag: bytes, close_tag: bytes, around: bytes = b"<p>",
              after: bytes = b"</p>") -> bytes:
    """Each piece in an element of the kind the browser hides, shown by `css`; a decoy in a
    `display:none` span after each."""
    body = b"".join(open_tag + piece + close_tag + b'<span style="display:none">'
                    + _junk(4, i) + b"</span>" for i, piece in enumerate(PIECES))
    return _page(around + body + after, css)


SHAPES = {
    "hidden-attribute": _shown_by(b"[hidden]{display:inline}", b"<span hidden>", b"</span>"),
    "title-in-body": _shown_by(b"body title{display:inline}", b"<title>", b"</title>"),
    "script-as-text": _shown_by(b"script{display:inline}", b"<script type=text/plain>",
                                b"</script>"),
    "rp": _shown_by(b"rp{display:inline}", b"<ruby><rp>", b"</rp></ruby>"),
    "dialog": _shown_by(b"dialog{display:inline;position:static;border:0;padding:0;margin:0}",
                        b"<dialog>", b"</dialog>"),
    "datalist": _shown_by(b"datalist,datalist option{display:inline}",
                          b"<datalist><option>", b"</option></datalist>"),
    "noframes": _shown_by(b"noframes{display:inline}", b"<noframes>", b"</noframes>"),
    "hidden-by-a-star-rule": _shown_by(b"p *{display:inline}", b"<span hidden>", b"</span>"),
}


@pytest.mark.skipif(CHROMIUM is None or shutil.which("pdftotext") is None,
                    reason="chromium or pdftotext not installed")
@pytest.mark.parametrize("shape", list(SHAPES))
def test_what_the_page_shows_again_is_read(engine: Engine, tmp_path: Path, shape: str) -> None:
    page = SHAPES[shape]
    shown = printed_text(tmp_path, page)
    assert B64 in shown, shown
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), (shape, as_attachment)


def test_pages_that_show_nothing_again_make_no_page() -> None:
    for page in (b"<title>t</title><style>td{display:block}</style><p hidden>x</p>",
                 b"<style>[hidden]{display:none!important}</style><p hidden>x</p>",
                 b"<style>p{display:block}</style><p>x</p>", b"<p>no style</p>"):
        assert htmlunhidden.shown_page(page) is None, page
    page = htmlunhidden.shown_page(SHAPES["title-in-body"])
    assert page is not None
    assert not re.search(rb"<title", page)


def test_a_page_of_many_rules_costs_linear_time() -> None:

    sheet = b"<style>" + b"a b c d e f g h{color:red}" * 40_000 + b"</style>"
    started = cpu.process_time()
    assert htmlunhidden.shown_page(sheet + b"<p>x</p>" + b"{" * 100_000) is None
    assert cpu.process_time() - started < 5


def _hidden_under(condition: bytes) -> bytes:
    """Pieces hidden only under `condition` (false when printed by Chromium), decoys always."""
    body = b"".join(b'<span class="p">' + piece + b'</span><span style="display:none">'
                    + _junk(4, i) + b"</span>" for i, piece in enumerate(PIECES))
    return _page(b'<div class="box"><p>' + body + b"</p></div>",
                 condition + b"{.p{display:none}}")


CONDITIONS = {
    "media-width": b"@media (max-width: 1px)",
    "media-screen": b"@media screen",
    "supports-false": b"@supports (display: no-such-value)",
    "nested-media": b"@media print{@media (max-width: 1px)",
}


@pytest.mark.skipif(CHROMIUM is None or shutil.which("pdftotext") is None,
                    reason="chromium or pdftotext not installed")
@pytest.mark.parametrize("condition", list(CONDITIONS))
def test_what_a_false_condition_would_hide_is_read(engine: Engine, tmp_path: Path,
                                                   condition: str) -> None:
    page = _hidden_under(CONDITIONS[condition])
    if condition == "nested-media":
        page = page.replace(b"{.p{display:none}}", b"{.p{display:none}}}")
    assert B64 in printed_text(tmp_path, page)
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), (condition, as_attachment)


def test_conditions_that_hide_nothing_make_no_page() -> None:
    responsive = (b"<style>@media only screen and (max-width:600px){.col{width:100%!important;"
                  b"padding:0}}</style><p class=col>x</p>")
    assert htmlunhidden.unconditional_page(responsive) is None
    assert htmlunhidden.unconditional_page(b"<p>@media x{}</p>") is None


_DECOYS = b"@media (max-width: 2px){.q{color:red}}" * 5000  # (they hide nothing)

#: Conditional hiding after 5000 blocks that hide nothing: the readings stopped at 4096
#: blocks and took the rest as they were, so the block that hides the pieces (everywhere but
#: in print) still hid them. `unconditional`: round 20's false condition; `printed`: the
#: pieces hidden, shown again by `@media print`, hidden again by `@media screen`.
PAST_THE_BLOCKS = {
    "unconditional": (_DECOYS + b"@media (max-width: 1px){.p{display:none}}",
                      b'<span style="display:none">'),
    "printed": (_DECOYS + b".p{display:none}.j{display:none}@media print{.p{display:inline}}"
                b"@media screen{.p{display:none}}", b'<span class="j">'),
}


def _past_the_blocks(shape: str) -> bytes:
    css, junk = PAST_THE_BLOCKS[shape]
    body = b"".join(b'<span class="p">' + piece + b"</span>" + junk + _junk(4, i) + b"</span>"
                    for i, piece in enumerate(PIECES))
    return _page(b'<div class="box"><p>' + body + b"</p></div>", css)


@pytest.mark.parametrize("shape", list(PAST_THE_BLOCKS))
def test_every_conditional_block_is_decided(engine: Engine, tmp_path: Path, shape: str) -> None:
    page = _past_the_blocks(shape)
    if CHROMIUM is not None and shutil.which("pdftotext") is not None:
        assert B64 in printed_text(tmp_path, page)
    assert _found(engine, mail(page, False))


def test_pages_of_many_conditional_blocks_cost_linear_time() -> None:

    from zerohour.scan import htmlprint

    for block in (b"@media (max-width: 2px){.q{display:none}}", b"@media a{{{{}}}}",
                  b"@supports (x:y){@media print{.q{color:red}}}"):
        page = b"<style>" + block * 50_000 + b"</style><p>x</p>"
        started = cpu.process_time()
        htmlunhidden.unconditional_page(page)
        htmlprint.client_pages(page)
        assert cpu.process_time() - started < 8.0
