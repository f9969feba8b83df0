"""Right floats: a run of right-floated boxes shows right to left, the first written
rightmost (round 16's `_floats_right`), so base64 written in reverse reads whole on the page.

Newsletters float an image right in most items, so `htmllayout.laid_out` lays a page out for
right floats only when two may stand side by side (`_floats_side_by_side`): a float set by a
style sheet, or written anywhere but in an element's style attribute, always counts. Chromium's
print (read by pdftotext) is the oracle of what shows.
"""

from __future__ import annotations

import random
import re
import shutil
import sys
from pathlib import Path

import pytest

from scan.test_html_layout17 import LINES, _page
from scan.test_html_views import B64, CHROMIUM, _found, engine, mail, printed_text
from zerohour.scan import Engine, htmllayout

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from newsletters import WORDS, newsletter

__all__ = ["engine"]  # (the module's fixture, used by the tests below)


def _floated(open_tag: bytes, css: bytes = b"") -> bytes:
    """Each line's pieces written last first, each in a right float."""
    return _page(b"\n".join(
        b"<div>" + b"".join(open_tag + piece + b"</span>" for piece in reversed(line))
        + b'</div><div style="clear:both"></div>' for line in LINES), css)


SHAPES = {
    "style-attribute": _floated(b'<span style="float:right">'),
    "style-sheet": _floated(b"<span class=r>", b".r{float:right}"),
    # a style sheet whose float a fake style attribute in a comment wraps
    "sheet-behind-a-fake-attribute": _floated(
        b"<span class=r>", b'/* style="*/ .r{float:right} /*" */'),
    "attribute-in-capitals": _floated(b'<span style="FLOAT: Right">'),
    "with-blanks-between": _floated(b' \n <span style="float:right">'),
    # round 18 (v030): the logical float, right in a left-to-right block
    "inline-end": _floated(b'<span style="float:inline-end">'),
}


@pytest.mark.skipif(CHROMIUM is None or shutil.which("pdftotext") is None,
                    reason="chromium or pdftotext not installed")
@pytest.mark.parametrize("shape", list(SHAPES))
def test_right_floats_are_read_in_the_order_they_show(engine: Engine, tmp_path: Path,
                                                      shape: str) -> None:
    page = SHAPES[shape]
    shown = printed_text(tmp_path, page)
    assert shown.endswith(B64), shown  # (a style sheet's text prints before it)
    assert B64 not in re.sub(rb"<[^>]*>|\s", b"", page)
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), (shape, as_attachment)


def test_which_pages_are_laid_out_for_right_floats() -> None:
    side = htmllayout._floats_side_by_side
    for page in SHAPES.values():
        assert side(page, None)
    one = b'<td><img alt="x" style="float:right"><p>text</p><img style="float:right"></td>'
    assert not side(one, None)
    assert side(b'<p title="float:right">a</p>', None)  # (not in a style attribute)
    assert side(b'<p><b style="float:right">a</b><i style="float: right">b</i></p>', None)
    assert not side(b'<p><b style="float:right">a</b>x<i style="float:right">b</i></p>', None)


@pytest.mark.parametrize("language", list(WORDS))
def test_a_newsletter_with_an_image_floated_right_per_item(language: str) -> None:
    """One right float per item: nothing to turn round, only the images' `alt` texts put
    in (as for a page without layout)."""
    page = newsletter(language)
    if language == "Hebrew":  # (right to left: laid out whole)
        assert htmllayout.laid_out(page) is not None
        return
    assert not htmllayout._floats_side_by_side(page, None)
    laid = htmllayout.laid_out(page)
    assert laid is not None
    assert laid == htmllayout._ALT_OR_VALUE.sub(htmllayout._shown_value, page)


def _pieces_page(make: bytes, css: bytes = b"") -> bytes:
    """Each 8-character piece of B64 in a line of its own, made by `make` (% the piece)."""
    return _page(b"".join(b"<div>" + make % piece + b"</div>" for line in LINES
                          for piece in line), css)


def _pairs(make: bytes, css: bytes = b"") -> bytes:
    """Each two pieces of B64 in an element written second first (`make` % (second,
    first)), one element a line."""
    pieces = [p for line in LINES for p in line]
    pieces += [b""] * (len(pieces) % 2)
    return _page(b"".join(b"<div>" + make % (pieces[i + 1], pieces[i]) + b"</div>"
                          for i in range(0, len(pieces), 2)), css)


OTHER_SHAPES = {
    # round 18: drawn first whatever their place (v028, v029), printed above their base
    # (v150, v151); a marker rule hides the marker, not the summary (v029's sheet)
    "fieldset-legend": _pairs(b"<fieldset style='border:0;padding:0;margin:0'>%s<legend "
                              b"style='padding:0'>%s</legend></fieldset>"),
    "details-summary": _pairs(b"<details open>%s<summary>%s</summary></details>",
                              b"summary{list-style:none;display:block}"
                              b"summary::-webkit-details-marker{display:none}"),
    "ruby-annotation": _pairs(b"<ruby>%s<rt>%s</rt></ruby>",
                              b"rt{font-size:11px;font-family:monospace}"),
    "mathml-over": _pairs(b"<math><mover><mtext>%s</mtext><mtext>%s</mtext></mover></math>"),
    # round 18 (v139): an image button shows its alt text when the image does not load
    "input-image-alt": _pieces_page(b'<input type=image src="cid:none" alt="%s">'),
    # round 18 (v143): pieces written backwards, each reversed by an isolating override
    # ("//" at a piece's end: neutrals an override does not reorder apart)
    "isolate-override": _page(b"".join(b"<div><span class=o>" + piece[::-1] + b"</span></div>"
                                       for line in LINES for piece in line),
                              b".o{direction:rtl;unicode-bidi:isolate-override}"),
}


@pytest.mark.skipif(CHROMIUM is None or shutil.which("pdftotext") is None,
                    reason="chromium or pdftotext not installed")
@pytest.mark.parametrize("shape", list(OTHER_SHAPES))
def test_other_round_18_layouts(engine: Engine, tmp_path: Path, shape: str) -> None:
    page = OTHER_SHAPES[shape]
    assert printed_text(tmp_path, page).endswith(B64)
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), (shape, as_attachment)


@pytest.mark.skipif(CHROMIUM is None or shutil.which("pdftotext") is None,
                    reason="chromium or pdftotext not installed")
def test_an_override_reverses_its_neutrals_with_its_letters(tmp_path: Path) -> None:
    """Inside an override every character takes its direction: `AgLAA8//` shows as
    `//8AALgA` (round 18, v143: the pieces of clam.exe's base64 end in `/`, which the
    reordering of the override's own content moved apart)."""
    pieces = [b"AgLAA8//", b"+/AB12==", b"QN1U.zvI"]
    page = _page(b"".join(b"<div><span class=o>" + p + b"</span></div>" for p in pieces),
                 b".o{direction:rtl;unicode-bidi:isolate-override}"
                 b".b{direction:rtl;unicode-bidi:bidi-override;display:block}")
    shown = printed_text(tmp_path, page)
    want = b"".join(p[::-1] for p in pieces)
    assert shown.endswith(want), shown
    laid = htmllayout.laid_out(page)
    assert laid is not None
    assert re.sub(rb"<[^>]*>|\s", b"", laid).endswith(want)


def _first_letters() -> bytes:
    """Round 18 (v008): each piece's first letter written in the other case, a
    `::first-letter` rule turning it back (pieces starting with a digit as they are)."""
    rows = []
    for line in LINES:
        for piece in line:
            head = piece[:1]
            cls = b"u" if head.isupper() else b"l" if head.islower() else b"n"
            rows.append(b"<div class=%s>%s</div>" % (cls, head.swapcase() + piece[1:]))
    return _page(b"".join(rows), b".u::first-letter{text-transform:uppercase}"
                 b".l:first-letter{text-transform:lowercase}")


@pytest.mark.skipif(CHROMIUM is None or shutil.which("pdftotext") is None,
                    reason="chromium or pdftotext not installed")
def test_first_letters_transformed(engine: Engine, tmp_path: Path) -> None:
    page = _first_letters()
    assert printed_text(tmp_path, page).endswith(B64)
    assert B64 not in re.sub(rb"<[^>]*>|\s", b"", page)
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), as_attachment


MIRRORS = {
    "scaleX": b"transform:scaleX(-1)",
    "scale-two": b"transform:scale(-1, 1)",
    "rotateY": b"transform:rotateY(180deg)",
    "matrix": b"transform:matrix(-1, 0, 0, 1, 0, 0)",
    "scale-property": b"scale:-1 1",
}


@pytest.mark.skipif(CHROMIUM is None or shutil.which("pdftotext") is None,
                    reason="chromium or pdftotext not installed")
@pytest.mark.parametrize("how", list(MIRRORS))
def test_mirrored_boxes_read_backwards(engine: Engine, tmp_path: Path, how: str) -> None:
    """Round 18 (v142): each piece written backwards in a box mirrored left to right; the
    printed page's text runs forwards."""
    page = _page(b"".join(b"<div>" + piece[::-1] + b"</div>" for line in LINES
                          for piece in line), b"div{width:8ch;" + MIRRORS[how] + b"}")
    assert printed_text(tmp_path, page).endswith(B64)
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), (how, as_attachment)


def test_a_half_turn_is_no_mirror() -> None:
    assert not htmllayout._mirrored_box({b"transform": b"scale(-1)"})
    assert not htmllayout._mirrored_box({b"transform": b"rotate(180deg)"})
    assert htmllayout._mirrored_box({b"transform": b"translate(2px) scaleX(-1)"})
    assert not htmllayout._mirrored_box({b"transform": b"rotateY(1.2.3deg)"})  # (no number)


def _side_by_side_in_tree(page: bytes, view: bytes | None = None) -> bool:
    """`_floats_side_by_side` as it read `_parse`'s tree (before it read the tags alone)."""
    written = len(htmllayout._FLOAT_RIGHT_RE.findall(page if view is None else view))
    found, beside = 0, False
    stack: list[htmllayout._El | bytes] = [htmllayout._parse(page, None)]
    while stack:
        node = stack.pop()
        if isinstance(node, bytes):
            continue
        last = False
        for kid in node.kids:
            if isinstance(kid, bytes):
                last = last and not kid.strip()
                continue
            floats = htmllayout._floats(kid.attrs)
            found += floats
            beside = beside or bool(floats and last)
            last = floats > 0
            stack.append(kid)
    return beside or found != written


def test_the_float_gate_reads_the_tags_as_the_tree_reads_them() -> None:
    """The gate reads the tags alone and walks the tree only for floats that text or an
    element that does not float does not stand just before: the same answers, for pages
    of each kind and random ones."""
    f = b' style="float:right"'
    cases = {
        b"<p><b%s>a</b> <!-- c --> <i%s>b</i></p>" % (f, f): True,  # blanks, a comment
        b"<table><tr><td%s>a<td%s>b</table>" % (f, f): True,  # a cell closes a cell
        b"<table><tr><td%s>a</td><td>b<td%s>c</table>" % (f, f): False,
        b"<p><img%s><img%s></p>" % (f, f): True,  # void elements
        b"<p><img%s><br><img%s></p>" % (f, f): False,
        b"<div><span%s><i>x</i></span><!--c-->text<img%s></div>" % (f, f): False,
        b"<div><span%s><i>x</i></span><img%s></div>" % (f, f): True,
        b"<div>" * 600 + b"<b%s></b><i%s>" % (f, f): True,  # past the depth bound
        # past it an element is its parent's sibling, open still (what follows is in it)
        b"<div>" * 600 + b"<b%s>a</b><i%s>" % (f, f): True,
        b"<div>" * 600 + b"<b%s>a<i%s>" % (f, f): True,
        b"<div>" * 600 + b"<img%s>a<img%s>" % (f, f): True,
        b"<div>" * 600 + b"<img%s><p>a</p><img%s>" % (f, f): False,
        b"<div>" * 300 + b"<b%s>a<i%s>" % (f, f): False,
        b"<div>" * 300 + b"<img%s>a<img%s>" % (f, f): False,
        b"<div>" * 300 + b"<b%s>a</b><i%s>" % (f, f): True,
        b"<style>p{float:right}</style><p>a</p>": True,  # a rule floats: walked in full
        b"<script><b%s></script><i%s>x" % (f, f): True,  # (raw text: one float written)
        b"<b%s>a</b><!-- <i%s> -->" % (f, f): True,
        b"<p%s>a<p%s>b" % (f, f): True,  # a <p> closes a <p>, an <li> an <li>
        b"<ul><li%s>a<li%s>b</ul>" % (f, f): True,
        b"<p%s>a<span%s>b" % (f, f): False,
    }
    for page, expected in cases.items():
        assert _side_by_side_in_tree(page) is expected, page
        assert htmllayout._floats_side_by_side(page, None) is expected, page
    rng = random.Random(5)
    parts = [b"<p>", b"</p>", b"<b%s>" % f, b"</b>", b"<img%s>" % f, b"<td%s>" % f, b"<tr>",
             b"<table>", b"</table>", b" ", b"x", b"<!--c-->", b"<br/>", b"<style>", b"</style>",
             b"<i style='fl&#111;at:right'>", b"</i>", b"<div style='float:/**/right'>", b"</div>",
             b"<li%s>" % f, b"<li>", b"<dt>", b"<dd%s>" % f, b"<h2%s>" % f, b"<option%s>" % f,
             b"<button>", b"<ul>", b"</ul>"]  # (implied end tags)
    for _ in range(3000):
        page = b"".join(rng.choice(parts) for _ in range(rng.randrange(1, 16)))
        assert htmllayout._floats_side_by_side(page, None) is _side_by_side_in_tree(page), page
    for _ in range(300):  # at the depth bound and past it (an <html>, a <body> or none)
        page = rng.choice([b"", b"<html>", b"<html><body>"]) + b"<div>" * rng.choice(
            [500, 508, 509, 510, 511, 600]) + b"".join(rng.choice(parts)
                                                  for _ in range(rng.randrange(1, 16)))
        assert htmllayout._floats_side_by_side(page, None) is _side_by_side_in_tree(page), page


#: Pieces of pages for the gate's reading of the tags (`_TAGS`, the marks, the texts between):
#: comments (one left open, one a raw-text element's content runs into), raw-text elements
#: (one left open, a closing tag with attributes), capitals, void and self-closing tags,
#: table parts and other tags that close others, a "<" in an attribute and one that opens
#: no tag, references, escapes and CSS comments in and out of style attributes.
_GATE_PARTS = [
    b"<p>", b"</p>", b'<b style="float:right">', b"</b>", b"</B >", b'<B STYLE="FLOAT:RIGHT">',
    b'<img style="float:right">', b'<img style="float:right"/>', b"<img>", b"<br/>", b"<br />",
    b"<p/>", b'<span style="float:right" />', b"<span/ >", b"<tr>", b'<td style="float:right">',
    b"<td>", b'<TH Style="Float: Right">', b"<table>", b"</table>", b"<tbody>",
    b'<thead style="float:right">', b'<li style="float:right">', b"<li>",
    b'<dd style="float:right">',
    b'<h2 style="float:right">', b'<option style="float:right">', b"<button>", b"<ul>", b"</ul>",
    b" ", b"x", b"\n", b"\t", b"&nbsp;", b"<!--c-->", b'<!-- <b style="float:right"> -->', b"<!--",
    b"-->", b"<style>", b"</style>", b"</style x>", b"<script>", b"</SCRIPT>", b"<textarea>",
    b"</textarea>", b"<title>", b"</title>", b"<iframe>", b"</iframe>", b"<xmp>", b"<", b"</",
    b"<b",
    b">", b"a<b", b'<a title="<b style=float:right>">', b"<i style='fl&#111;at:right'>", b"</i>",
    b"<div style='float:/**/right'>", b"</div>", b"<div style='fl\\6f at:right'>",
    b"<div style='fl/**/oat:right'>",
    b"<p style='float&colon;right'>", b"<p style='float&Colon;right'>",
    b"<span style='float:inline-end'>", b"<span style='float:right;float:right'>",
    b"<p style=x float=right>", b"<p style='color:red' style='float:right'>", b"float:right",
    b"&amp;",
    b"/*", b"*", b"\\", b'<x-y:z style="float:right">', b'<style style="float:right">',
    b'<br style="float:right">', b"<html>", b"<body>", b"</body>"]


def _gate_page(rng: random.Random) -> bytes:
    page = b"".join(rng.choice(_GATE_PARTS) for _ in range(rng.randrange(1, 24)))
    if rng.random() < 0.1:  # at the depth bound and past it
        page = rng.choice([b"", b"<html><body>"]) + rng.choice([b"<div>", b"<b>"]) * rng.choice(
            [505, 509, 510, 511, 520]) + page
    return page


def test_the_float_gate_reads_comments_raw_text_and_odd_tags_as_the_tree() -> None:
    """The gate's reading of the tags (one `split` of the page, the tags' places summed,
    the marks found by `bytes.find`) against the tree's, on random pages of every kind of
    piece it reads apart; and as read one match at a time (a page over `_SPLIT_MAX`)."""
    rng = random.Random(18)
    for n in range(6000):
        page = _gate_page(rng)
        assert htmllayout._floats_side_by_side(page, None) is _side_by_side_in_tree(page), page
        if not n % 4:
            view = htmllayout.css_readable(page)
            assert htmllayout._floats_side_by_side(page, None, view) is (
                _side_by_side_in_tree(page, view)), page


def test_the_float_gate_reads_long_pages_one_tag_at_a_time(monkeypatch: pytest.MonkeyPatch,
                                                           ) -> None:
    """Past `_SPLIT_MAX` the tags are read one match at a time; the scan's clock is called
    every `_CHECK_EVERY` tags either way: the same answers."""
    rng = random.Random(19)
    pages = [_gate_page(rng) for _ in range(1500)]
    expected = [htmllayout._floats_side_by_side(page, None) for page in pages]
    calls: list[int] = []
    monkeypatch.setattr(htmllayout, "_CHECK_EVERY", 3)
    for page, answer in zip(pages, expected, strict=True):
        assert htmllayout._floats_side_by_side(page, lambda: calls.append(1)) is answer, page
    split_calls = len(calls)
    assert split_calls > 1000
    monkeypatch.setattr(htmllayout, "_SPLIT_MAX", 0)
    for page, answer in zip(pages, expected, strict=True):
        assert htmllayout._floats_side_by_side(page, lambda: calls.append(1)) is answer, page
    assert len(calls) - split_calls > 1000


def test_floats_reads_the_style_attribute_attr_reads() -> None:
    """`_floats` finds a tag's first style attribute in one match (`_FIRST_STYLE`): the
    attribute `_attr` finds, on random attributes (names that hold "style", quotes left
    open, blanks around "=", references, escapes, comments, a second style attribute)."""
    bits = [b" ", b"  ", b"\t", b"\n", b"\x0c", b"style", b"STYLE", b"Style", b"xstyle",
            b"style-x", b"style:", b"style.", b"data-style", b"_style", b":style", b"=", b" = ",
            b'"', b"'", b"float:right", b"FLOAT:RIGHT", b"float: right;", b"fl&#111;at:right",
            b"&colon;", b"&Colon;", b"\\", b"\\66 loat", b"/*", b"*/", b"/", b"x", b"title",
            b"1", b"-", b"float:inline-end", b"FLOAT:INLINE-START", b"a=b", b"a='c'",
            b"style=float:right", b'style="float:right"', b"style='float:right'",
            b'style = "float:right;float:right"', "\u00e9".encode(), b"\xff", b">", b"&amp;"]

    def by_attr(attrs: bytes) -> int:
        style = htmllayout._attr(attrs, b"style")
        return len(htmllayout._FLOAT_RIGHT_RE.findall(htmllayout._css_text(style))) if (
            style and b"style" in attrs.lower()) else 0

    rng = random.Random(20)
    for _ in range(30000):
        attrs = b"".join(rng.choice(bits) for _ in range(rng.randrange(0, 16)))
        assert htmllayout._floats(attrs) == by_attr(attrs), attrs
    for n in (10, 300):  # (`_attr` reads a tag over 1024 bytes without its table)
        attrs = b" a=1" * n + b" style='float:right' style='float:right;float:right'"
        assert htmllayout._floats(attrs) == by_attr(attrs) == 1
