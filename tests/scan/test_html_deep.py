"""Round 36: pieces that a layout 300 levels down puts in order (an ancestor's rule, `display:
contents`, a right-to-left override), read where `htmllayout`'s walks stopped at 256 levels of
a tree built 512 deep (Chromium's parser's). Chromium prints each page as the base64 of EICAR
(the oracle, when installed); the engine finds EICAR in it."""

from __future__ import annotations

import random
import re
import shutil
import sys
from pathlib import Path

import pytest

from scan.test_html_views import B64, CHROMIUM, _found, engine, mail, printed_text
from zerohour.scan import htmllayout

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from newsletters import WORDS, newsletter_mail

__all__ = ["engine"]  # (the module's fixture, used by the tests below)

PIECES = [B64[i : i + 8] for i in range(0, len(B64), 8)]
#: the pieces of the base64 written last to first (an override right to left shows them
#: first to last)
BACKWARDS = [B64[::-1][i : i + 8] for i in range(0, len(B64), 8)]


def _page(body: bytes, css: bytes = b"") -> bytes:
    return (b"<!doctype html><html><head><meta charset=utf-8><style>body{font-family:"
            b"monospace;font-size:11px}" + css + b"</style></head><body>\n" + body
            + b"\n</body></html>\n")


def ancestor_hides(depth: int) -> bytes:
    """Junk `.d` spans between the pieces, hidden by `.o .d` from `depth` levels up."""
    body = b"".join(p + b"<span class=d>Zq9%d</span>" % i for i, p in enumerate(PIECES))
    return _page(b"<div class=o>" + b"<div>" * depth + body + b"</div>" * depth + b"</div>",
                 b".o .d{display:none}")


def ancestor_takes_away(depth: int) -> bytes:
    """The pieces written backwards in an override (only the layout reads them in order), a
    `.d` between each two: `.d::before` writes junk, `.o .d::before` takes it away under an
    `.o` `depth` levels up."""
    return _page(b"<div class=o>" + b"<div>" * depth + b"<bdo dir=rtl>"
                 + b"<span class=d></span>".join(BACKWARDS) + b"</bdo>" + b"</div>" * depth
                 + b"</div>", b'.d::before{content:"Zq9"}.o .d::before{content:none}')


def contents_deep(depth: int) -> bytes:
    """A flex row's items in a shuffled order that `order` puts right, inside `depth`
    nested `display: contents` boxes (the row's items all the same)."""
    order = list(range(len(PIECES)))
    random.Random(5).shuffle(order)
    items = b"".join(b'<span style="order:%d">%s</span>' % (i, PIECES[i]) for i in order)
    wrap = b'<div style="display:contents">'
    return _page(b'<div style="display:flex">' + wrap * depth + items + b"</div>" * depth
                 + b"</div>")


def override_deep(depth: int, bdo: bool) -> bytes:
    """The pieces written backwards, each in a span, inside `depth` nested spans inside a
    right-to-left override (`<bdo dir=rtl>` or its CSS)."""
    opening, closing = (b"<bdo dir=rtl>", b"</bdo>") if bdo else (
        b'<div style="unicode-bidi:bidi-override;direction:rtl">', b"</div>")
    return _page(opening + b"<span>" * depth + b"".join(b"<span>%s</span>" % p for p in BACKWARDS)
                 + b"</span>" * depth + closing)


def _shown(tmp_path: Path, page: bytes) -> None:
    if CHROMIUM is not None and shutil.which("pdftotext") is not None:
        assert printed_text(tmp_path, page) == B64


def test_an_ancestors_hiding_rule_300_levels_up(engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`.o .d{display:none}` over junk 300 levels down (the sample as the attack round
    described it: read whole by `html_visible`, which hides every `.d`, before this fix too)."""
    page = ancestor_hides(300)
    _shown(tmp_path, page)
    assert _found(engine, mail(page, False))


def test_an_ancestors_rule_300_levels_up_takes_junk_away(engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A rule's ancestors were looked for 256 levels up (`_around`): `.o .d::before
    {content:none}` under an `.o` 300 levels up did not apply, and the junk every `.d`
    writes cut the base64 the override puts in order."""
    page = ancestor_takes_away(300)
    _shown(tmp_path, page)
    assert _found(engine, mail(page, False))


def test_display_contents_300_deep(engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`display: contents` boxes were opened 256 deep: a flex row's items inside 300 of them
    were read in the markup's shuffled order."""
    page = contents_deep(300)
    _shown(tmp_path, page)
    assert _found(engine, mail(page, False))


@pytest.mark.parametrize("bdo", [True, False])
def test_an_override_over_300_nested_spans(engine, tmp_path, bdo: bool) -> None:  # type: ignore[no-untyped-def]
    """An override's content was reversed 256 levels down: spans inside 300 others were
    read as written, backwards."""
    page = override_deep(300, bdo)
    _shown(tmp_path, page)
    assert _found(engine, mail(page, False))


@pytest.mark.parametrize("make", [lambda: contents_deep(510), lambda: contents_deep(1000),
                                  lambda: override_deep(1000, False),
                                  lambda: ancestor_takes_away(1000)])
def test_past_the_tree_depth_what_an_element_holds_is_its_own(engine, tmp_path, make) -> None:  # type: ignore[no-untyped-def]
    """Past 512 open elements an element is its parent's sibling, but holds what follows it
    as Chromium's parser builds it (`_OpenElements`): the tree cut there put the items' text
    in their parent (a flex row's items 510 `display: contents` boxes down lost their
    `order`), read in the markup's order."""
    page = make()
    _shown(tmp_path, page)
    assert _found(engine, mail(page, False))


@pytest.mark.parametrize("make", [lambda: ancestor_takes_away(505), lambda: contents_deep(507),
                                  lambda: override_deep(508, True),
                                  lambda: override_deep(508, False)])
def test_walks_read_as_deep_as_the_tree(make) -> None:  # type: ignore[no-untyped-def]
    """At the tree's depth (`_MAX_TREE_DEPTH`, the pieces' spans the deepest elements) the
    walks still read the pieces in order, recursive walks well inside Python's 1000 frames
    (laid out with 600 frames allowed: the gateway's own stack is ~20 deep)."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(600)
    try:
        text = htmllayout.laid_out(make())
    finally:
        sys.setrecursionlimit(limit)
    assert text is not None
    assert B64 in re.sub(rb"<[^>]*>|\s", b"", text)


def _words(rnd: random.Random, n: int) -> bytes:
    return " ".join(rnd.choice(WORDS["English"]) for _ in range(n)).encode()


@pytest.mark.parametrize("tag", [b"li", b"p", b"dt", b"option"])
@pytest.mark.parametrize("direction", [b"ltr", b"rtl"])
def test_long_runs_of_unclosed_elements_are_clean(engine, tag: bytes, direction: bytes) -> None:  # type: ignore[no-untyped-def]
    """Ordinary mail: 300 and 600 items, paragraphs, terms, options none of which is closed
    (the parser closes each at the next), laid out (a style sheet, a direction), clean."""
    rnd = random.Random(11)
    holder = {b"li": b"ul", b"p": b"div", b"dt": b"dl", b"option": b"select"}[tag]
    for count in (300, 600):
        body = (b"<%s>" % holder + b"".join(b"<%s>%s\n" % (tag, _words(rnd, 8))
                                             for _ in range(count)) + b"</%s>" % holder)
        page = _page(b'<div dir="%s" style="display:flex">' % direction + body + b"</div>",
                     b"li{color:#333}p{margin:4px 0}")
        assert engine.scan_bytes(mail(page, False)).names == ()


@pytest.mark.parametrize("language", sorted(WORDS))
def test_the_bench_newsletters_are_clean(engine, language: str) -> None:  # type: ignore[no-untyped-def]
    assert engine.scan_bytes(newsletter_mail(language)).names == ()


def _markup(el: htmllayout._El) -> bytes:
    return b"".join(k if isinstance(k, bytes) else b"<%s>%s</%s>" % (k.tag, _markup(k), k.tag)
                    for k in el.kids)


def test_implied_end_tags_build_the_tree_as_chromium() -> None:
    """`<li>`, `<p>`, `<dd>`/`<dt>`, headings, `<option>` close what the HTML parser closes
    (the trees of Chromium's `--dump-dom` for these pages, `<tbody>` aside): 300 unclosed
    items are siblings, not 300 levels."""
    cases = {
        b"<ul><li>a<li>b<ul><li>c<li>d</ul><li>e</ul>":
            b"<ul><li>a</li><li>b<ul><li>c</li><li>d</li></ul></li><li>e</li></ul>",
        b"<p>a<div>b</div><p>c<h1>d<h2>e</h2>":
            b"<p>a</p><div>b</div><p>c</p><h1>d</h1><h2>e</h2>",
        b"<dl><dt>a<dd>b<dt>c</dl>": b"<dl><dt>a</dt><dd>b</dd><dt>c</dt></dl>",
        b"<select><option>a<option>b<optgroup><option>c</select>":
            b"<select><option>a</option><option>b</option><optgroup><option>c</option>"
            b"</optgroup></select>",
        b"<p>a<button><p>b</button>c": b"<p>a<button><p>b</p></button>c</p>",
        b"<ul><li>a<div><li>b</div></ul>": b"<ul><li>a<div></div></li><li>b</li></ul>",
        b"<li>a<blockquote><li>b</blockquote>": b"<li>a<blockquote><li>b</li></blockquote></li>",
        b"<table><tr><td><p>a<li>b</table>": b"<table><tr><td><p>a</p><li>b</li></td></tr></table>",
    }
    for page, tree in cases.items():
        assert _markup(htmllayout._parse(page, None)) == tree, page
    root = htmllayout._parse(b"<ul>" + b"<li>item" * 300 + b"</ul>", None)
    ul = root.kids[0]
    assert isinstance(ul, htmllayout._El)
    assert len(ul.kids) == 300


def _last_chain(page: bytes) -> list[bytes]:
    """The tags from the root down, taking the last element of each level."""
    el = htmllayout._parse(page, None)
    tags: list[bytes] = []
    while kids := [k for k in el.kids if isinstance(k, htmllayout._El)]:
        el = kids[-1]
        tags.append(el.tag)
    return tags


@pytest.mark.parametrize("head", [b"<html><body>", b"", b"<html>",
                                  b"<html><body>" + b"<body>" * 20])
def test_the_depth_bound_counts_open_elements_as_a_browsers_parser(head: bytes) -> None:
    """Past 512 open elements an element is its parent's sibling. The page's <html> and
    <body> count once, written or not; nested <html>, <body>, <head> tags (which a
    browser's parser drops) do not count."""
    inner = b"<div>" * (htmllayout._MAX_TREE_DEPTH - 2) + b"<i>x"  # (<i>: the 513th, a child)
    chain = _last_chain(head + inner)
    assert chain[-1] == b"i"
    assert len(chain) == head.count(b"<") + htmllayout._MAX_TREE_DEPTH - 1
    deeper = _last_chain(head + b"<div>" + inner)  # (<i>: the 514th, the 513th's sibling)
    assert deeper == chain
