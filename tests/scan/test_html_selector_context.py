"""Session 24: a hiding rule hides only where its whole selector matches, and structural
pseudo-classes count the elements the HTML parser makes.

Before, `textual` read a hiding rule by its subject alone: a decoy `.none div{display:none}`
on a page with no `.none` hid every `<div>` in the reading, the payload's with it, while
Chromium shows it whole. And `:nth-child` counted siblings without the elements a parser
makes of a stray `</p>` (an empty `<p>`) or `</br>` (a `<br>`), or the siblings an implied
end tag makes, so the junk a client hides was read as shown. Each page below delivered EICAR
on 51286b7 and is checked against Chromium where it is installed."""

from __future__ import annotations

import base64
import random
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import cpu
from scan.test_html_clients import THREES, _junk, screen_text
from scan.test_html_views import B64, CHROMIUM, _cased, _found, mail, printed_text
from zerohour.scan import Engine, load_database, textual
from zerohour.scan.database import default_db_dirs
from zerohour.scan.limits import ScanContext
from zerohour.scan.svgtext import svg_readings


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_database(default_db_dirs()))


def _page(css: bytes, inner: bytes, wrap: tuple[bytes, bytes] = (b"<div>", b"</div>")) -> bytes:
    return (b"<html><head><style>" + css + b"</style></head><body>" + wrap[0] + inner + wrap[1]
            + b"</body></html>")


def _junk_spans(open_tag: bytes = b"<span class=j>") -> bytes:
    """The pieces of B64, each followed by junk in `open_tag`."""
    return b"".join(p + open_tag + _junk(i) + b"</span>" for i, p in enumerate(THREES))


def _alternating(lead: bytes) -> bytes:
    """`lead`, then each piece and each junk in a `<span>` of its own, in turn."""
    return lead + b"".join(b"<span>" + p + b"</span><span>" + _junk(i) + b"</span>"
                           for i, p in enumerate(THREES))


#: name -> page whose B64 a client shows whole
DECOYS: dict[str, bytes] = {
    # a rule that hides elements under an ancestor, a parent or a sibling the page lacks
    "descendant": _page(b".j{display:none} .none div{display:none}", _junk_spans()),
    "child": _page(b".j{display:none} p > div{display:none}", _junk_spans()),
    "sibling": _page(b".j{display:none} h1 + div{display:none}", _junk_spans()),
    "later-sibling": _page(b".j{display:none} h1 ~ div{display:none}", _junk_spans()),
    "visibility": _page(b".j{visibility:hidden} .none div{visibility:hidden}", _junk_spans()),
    "structural-subject": _page(b".j{display:none} ul > :first-child{display:none}",
                                _junk_spans()),
    "junk-by-ancestor": _page(b"div .j{display:none} .none div{display:none}", _junk_spans()),
    # `:nth-child(odd)` of a div's children, read by its subject, hid the <div> itself
    "nth-universal": _page(b"div > :nth-child(odd){display:none}", _alternating(b"<p></p>")),
    # a stray </p> or </br> is an element: the pieces are the even children
    "stray-p": _page(b"span:nth-child(odd){display:none}", _alternating(b"</p>")),
    "stray-br": _page(b"span:nth-child(odd){display:none}", _alternating(b"</br>")),
    "stray-p-universal": _page(b"div > :nth-child(odd){display:none}", _alternating(b"</p>")),
}


@pytest.mark.parametrize("name", sorted(DECOYS))
def test_context_of_a_hiding_rule_is_read(engine: Engine, name: str) -> None:
    page = DECOYS[name]
    assert _found(engine, mail(page, False)), name
    assert _found(engine, mail(page, True)), name


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.parametrize("name", sorted(DECOYS))
def test_chromium_shows_the_payload_whole(tmp_path: Path, name: str) -> None:
    page = DECOYS[name]
    shown = screen_text(tmp_path, page)
    assert B64 in shown, shown[:200]
    if name != "visibility":  # (the hidden junk's room wraps the printed line there)
        assert B64 in printed_text(tmp_path, page)


#: Pages whose rules do not hide the junk in a browser (implied end tags make the elements
#: siblings, not parent and child): the reading must not hide it either.
NOT_HIDDEN: dict[str, bytes] = {
    "li-after-li": _page(b"li > li{display:none}", b"".join(
        b"<li>" + p + b"<li>" + _junk(i) for i, p in enumerate(THREES)), (b"<ul>", b"</ul>")),
    "div-after-p": _page(b"p div{display:none}", b"".join(
        b"<p>" + p + b"<div>" + _junk(i) + b"</div>" for i, p in enumerate(THREES))),
}


@pytest.mark.parametrize("name", sorted(NOT_HIDDEN))
def test_rules_whose_context_the_parser_breaks_hide_nothing(tmp_path: Path, name: str) -> None:
    page = NOT_HIDDEN[name]
    visible = textual.html_visible(page)
    assert visible is None or B64 not in visible.replace(b"\n", b"")
    if CHROMIUM is not None:
        assert B64 not in screen_text(tmp_path, page)


def test_places_count_parser_made_elements() -> None:
    page = b"<div></p><span>a</span></br><i>b</i><li>c<li>d</div>"
    places = textual._places(page)
    span, i, li1, li2 = (page.index(t) for t in (b"<span", b"<i", b"<li>c", b"<li>d"))
    assert places[span][0] == 2  # (after the <p> the stray </p> makes)
    assert places[i][0] == 4  # (after the <br> of </br>)
    assert places[li1][0] == 5  # (siblings: `<li>` closes `<li>`)
    assert places[li2][0] == 6


def test_ancestors_past_the_depth_bound_are_the_parsers() -> None:
    # 520 open <b>: an element opened past the bound is its parent's sibling, so `.a > .j`
    # does not hold where the `.j` would be the `.a`'s child
    deep = b"<b>" * 515 + b"<i class=a>" + b"<span class=j>x</span>"
    tree = textual._tree(deep)
    j, a = deep.index(b"<span"), deep.index(b"<i ")
    assert tree.parents[j] != a
    assert tree.parents[j] == tree.parents[a]


_ITEMS = b"".join(b"<span style='order:%d'>%s</span>" % (i, THREES[i])
                  for i in reversed(range(len(THREES))))  # (a flex row shows them in order)
_MIDDLE = (B64[:30], B64[30:60], B64[60:])

#: The CSS layout's rules (order, flex, generated content) by their whole selector too.
LAYOUT: dict[str, bytes] = {
    "flex-reversed-by-decoy": _page(b".box{display:flex} .none div{flex-direction:row-reverse}",
                                    b"<div class=box>" + _ITEMS + b"</div>", (b"", b"")),
    "flex-undone-by-decoy": _page(b".box{display:flex} .none div{display:block}",
                                  b"<div class=box>" + _ITEMS + b"</div>", (b"", b"")),
    "order-undone-by-decoy": _page(b".box{display:flex} .none span{order:0 !important}",
                                   b"<div class=box>" + _ITEMS + b"</div>", (b"", b"")),
    # `p::before` on the `<p>` a stray `</p>` makes (printed: the screen's innerText leaves
    # generated content out)
    "before-stray-p": _page(b"p::before{content:'" + _MIDDLE[1] + b"'}",
                            _MIDDLE[0] + b"</p>" + _MIDDLE[2], (b"", b"")),
    "print-before-stray-p": _page(b"@media print{p::before{content:'" + _MIDDLE[1] + b"'}}",
                                  _MIDDLE[0] + b"</p>" + _MIDDLE[2], (b"", b"")),
}


@pytest.mark.parametrize("name", sorted(LAYOUT))
def test_layout_rules_apply_in_their_context(engine: Engine, tmp_path: Path, name: str) -> None:
    page = LAYOUT[name]
    assert _found(engine, mail(page, False)), name
    assert _found(engine, mail(page, True)), name
    if CHROMIUM is not None:
        assert B64 in printed_text(tmp_path, page)


#: Rules whose context holds on the page must still apply: the junk they hide, the row they
#: turn (each found before this change, by the rule's subject alone).
_JUNK = b"".join(p + b"<span class=j>" + _junk(i) + b"</span>" for i, p in enumerate(THREES))
HOLDING: list[tuple[bytes, bytes, bytes]] = [
    (b"body > .j", b"", b""), (b"html .j", b"", b""), (b"* > .j", b"", b""),
    (b"html > body > .j", b"", b""), (b"body.x .j", b"<body>", b"<body class=x>"),
    (b":root .j", b"", b""), (b"td .j", b"<table><tr><td>", b"</table>"),
    (b"tr .j", b"<table><td>", b"</table>"), (b"tbody > tr > td > .j", b"<table><td>", b""),
    (b"tr:first-child .j", b"<table><td>", b"</table>"), (b"p:first-child .j", b"<p>", b""),
    (b"b .j", b"<b><p>", b""), (b"html:not(.y) > body .j", b"", b""),
]


@pytest.mark.parametrize(("selector", "before", "after"), HOLDING)
def test_hiding_rules_whose_context_holds(engine: Engine, selector: bytes, before: bytes,
                                          after: bytes) -> None:
    page = b"<style>" + selector + b"{display:none}</style>" + before + _JUNK + after
    assert _found(engine, mail(page, False)), selector


@pytest.mark.parametrize(("selector", "before"), [
    (b"body > .box", b""), (b"html .box", b""), (b"* > .box", b""), (b":root .box", b""),
    (b".wrap > .box", b"<div class=wrap>"), (b"body.x .box", b"<body class=x>"),
    (b"td > .box", b"<table><td>"), (b"tr .box", b"<table><td>"), (b"h1 + .box", b"<h1></h1>"),
    (b"p:first-child + .box", b"<p></p>"), (b"b .box", b"<b>")])
def test_layout_rules_whose_context_holds(engine: Engine, selector: bytes,
                                          before: bytes) -> None:
    page = (b"<style>" + selector + b"{display:flex}</style>" + before + b"<div class=box>"
            + _ITEMS + b"</div>")
    assert _found(engine, mail(page, False)), selector


_ROWS = b"".join(b"<tr><td>" + p + b"</td><td>" + _junk(i) + b"</td></tr>"
                 for i, p in enumerate(THREES))


@pytest.mark.parametrize(("name", "css"), [
    ("decoy", b"col.j{visibility:collapse} .none col{visibility:collapse}"),
    ("context-holds", b"table col.j{visibility:collapse}"),
    ("child-holds", b"colgroup > col.j{visibility:collapse}"),
    ("sibling-holds", b"col.p + col{visibility:collapse}")])
def test_collapsed_columns_by_their_whole_selector(engine: Engine, tmp_path: Path, name: str,
                                                   css: bytes) -> None:
    """The junk column collapsed, the pieces' column not: a decoy `.none col` collapsed every
    column in the reading (`htmltables`), the pieces' too."""
    page = _page(css, b"<table><colgroup><col class=p><col class=j></colgroup>" + _ROWS
                 + b"</table>", (b"", b""))
    assert _found(engine, mail(page, False)), name
    if CHROMIUM is not None and name == "decoy":
        assert B64 in printed_text(tmp_path, page)


def _svg(css: str) -> bytes:
    """The pieces in one `<text>`, each junk in a `<tspan class=j>`."""
    body = "".join(f"{p.decode()}<tspan class='j'>{_junk(i).decode()}</tspan>"
                   for i, p in enumerate(THREES))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="2000" height="60"><style>{css}'
            f'</style><g><text x="5" y="30" font-family="monospace" font-size="10">{body}</text>'
            "</g></svg>").encode()


def _svg_mail(data: bytes) -> bytes:
    return (b"From: a@x.test\r\nTo: b@y.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: image/svg+xml\r\nContent-Disposition: attachment; filename=a.svg\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(data))


@pytest.mark.parametrize("css", [
    ".j{display:none} .none text{display:none}",  # (decoys: hid every text, on 51286b7)
    ".j{display:none} .none g{display:none}",
    ".j{display:none} rect + g{display:none}",
    "g .j{display:none}", "text > .j{display:none}", ":root .j{display:none}"])
def test_svg_style_rules_by_their_whole_selector(engine: Engine, tmp_path: Path,
                                                 css: str) -> None:
    image = _svg(css)
    assert _found(engine, _svg_mail(image)), css
    page = b"<html><body><div>" + image + b"</div></body></html>"  # (inline in a page)
    assert _found(engine, mail(page, False)), css
    if shutil.which("rsvg-convert") and shutil.which("pdftotext"):
        path = tmp_path / "a.svg"
        path.write_bytes(image)
        pdf = subprocess.run(["rsvg-convert", "-f", "pdf", str(path)], capture_output=True,
                             timeout=60, check=True).stdout
        text = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf,
                              capture_output=True, timeout=60, check=True).stdout
        assert B64 in re.sub(rb"\s", b"", text)


@pytest.mark.parametrize("before", [b"Key", b"Hello", b"Dear Bob", b"Key<br>",
                                    b"<span>Hi</span>"])
def test_a_block_of_base64_after_a_short_line(engine: Engine, tmp_path: Path,
                                              before: bytes) -> None:
    """Attack round 38 (E): the readings joined the text of blocks a browser shows on lines
    of their own, so base64 after a line of 3 or 5 letters decoded letters off."""
    page = b"<!doctype html><div>" + before + b"</div><div>" + B64 + b"</div>"
    assert _found(engine, mail(page, False)), before
    assert _found(engine, mail(page, True)), before
    if CHROMIUM is not None and before == b"Key":
        assert B64 in screen_text(tmp_path, page)


@pytest.mark.parametrize("before", [b"Key", b"Dear Bob", b"Hi"])
def test_base64_pieces_cut_by_hidden_junk_after_a_short_line(engine: Engine, tmp_path: Path,
                                                             before: bytes) -> None:
    """Session 25: the same with B64 in pieces of 3, each followed by hidden junk: the page
    has no run of 16 base64 letters after the block, so the block readings were not made."""
    page = (b"<!doctype html><style>.j{display:none}</style><div>" + before + b"</div><div>"
            + _junk_spans() + b"</div>")
    assert _found(engine, mail(page, False)), before
    assert _found(engine, mail(page, True)), before
    if CHROMIUM is not None and before == b"Key":
        assert B64 in screen_text(tmp_path, page)


# Attack round 38 (session 24, on 2e4dc77): selectors a browser reads otherwise than the
# readings did. Pieces of 4 with junk after each; each page delivered EICAR through the
# gateway, and Chromium shows B64 whole (screen, or printed for the layout's order).
_P4 = [B64[i : i + 4] for i in range(0, len(B64), 4)]


def _junk4(i: int) -> bytes:
    return [b"q", b"Zx", b"k7", b"W", b"mm", b"rT", b"u", b"Y3"][i % 8] + b"Qz"


def _shown_if(selector: bytes, before: bytes = b"", each: bytes = b"") -> bytes:
    """Junk hidden by `.j{display:none}`; `selector{display:inline}` shows none in a browser."""
    body = b"".join(p + each + b"<span class=j>" + _junk4(i) + b"</span>"
                    for i, p in enumerate(_P4))
    return (b"<!doctype html><style>.j{display:none} " + selector + b"{display:inline}</style>"
            + before + b"<div id=w>" + body + b"</div>")


def _hidden_by(selector: bytes) -> bytes:
    """Pieces and junk in alternating spans; `selector{display:none}` hides every junk."""
    body = b"".join(b"<span>" + p + b"</span><span class=j>" + _junk4(i) + b"</span>"
                    for i, p in enumerate(_P4))
    return b"<!doctype html><style>" + selector + b"{display:none}</style><div id=w>" + body + (
        b"</div>")


def _ordered_by(rules: Callable[[list[int]], bytes], seed: int, classes: bool = False) -> bytes:
    order = list(range(len(_P4)))
    random.Random(seed).shuffle(order)
    spans = b"".join((b"<span class=s%d>" % k if classes else b"<span>") + _P4[k] + b"</span>"
                     for k in order)
    return (b"<!doctype html><style>" + rules(order) + b"</style><div class=f>" + spans
            + b"</div>")


_INLINE = (b"h1,h2,dl,dt,dd,button,option,form,select,p,div{display:inline;margin:0;padding:0;"
           b"font-size:16px;font-weight:normal;border:0;background:none}")


def _closed_by_own_kind(tag: bytes) -> bytes:
    """Junk in a hidden `<tag class=h>`, the piece in a second `<tag>`, which closes it."""
    return (b"<!doctype html><style>.h,.j{display:none} " + _INLINE + b"</style>" + b"".join(
        b"<%s class=h><span class=j>%s</span><%s>%s</%s>" % (tag, _junk4(i), tag, p, tag)
        for i, p in enumerate(_P4)))


ROUND38: dict[str, tuple[bytes, str]] = {
    "stray-td": (b"<!doctype html><style>.h,.j{display:none}</style><div>" + b"".join(
        b"<td class=h>" + p + b"</td><span class=j>" + _junk4(i) + b"</span>"
        for i, p in enumerate(_P4)) + b"</div>", "screen"),
    "stray-head": (b"<!doctype html><style>.h,.j{display:none}</style><div>" + b"".join(
        b"<head class=h>" + p + b"</head><span class=j>" + _junk4(i) + b"</span>"
        for i, p in enumerate(_P4)) + b"</div>", "screen"),
    "form-in-form": (b"<!doctype html><style>.h,.j{display:none} " + _INLINE + b"</style><form>"
                     + b"".join(b"<form class=h>" + p + b"<span class=j>" + _junk4(i)
                                + b"</span>" for i, p in enumerate(_P4)), "screen"),
    "a-closes-a": (_closed_by_own_kind(b"a"), "screen"),
    "button-closes-button": (_closed_by_own_kind(b"button"), "screen"),
    "nobr-closes-nobr": (_closed_by_own_kind(b"nobr"), "screen"),
    "select-closes-select": (_closed_by_own_kind(b"select"), "screen"),
    "show-sibling-elsewhere": (_shown_if(b".a ~ .j", b"<i class=a></i>"), "screen"),
    "show-root-child": (_shown_if(b":root > .j"), "screen"),
    "show-body-child": (_shown_if(b"body > .j"), "screen"),
    "show-stray-p-sibling": (_shown_if(b".a + .j", each=b"<i class=a></i></p>"), "screen"),
    "show-stray-br-sibling": (_shown_if(b".a + .j", each=b"<i class=a></i></br>"), "screen"),
    "hide-attr-word": (_hidden_by(b"[class~=j]"), "screen"),
    "hide-attr-i-flag": (_hidden_by(b"[class=J i]"), "screen"),
    "hide-not-not": (_hidden_by(b":not(:not(.j))"), "screen"),
    "hide-nested-is": (_hidden_by(b":is(:is(:is(.j)))"), "screen"),
    "hide-is-complex": (_hidden_by(b".j:is(div > *)"), "screen"),
    "hide-not-structural": (_hidden_by(b".j:not(:first-child)"), "screen"),
    "hide-universal-nth": (_hidden_by(b"#w > *:nth-child(2n)"), "screen"),
    "hide-webkit-any": (_hidden_by(b".j:-webkit-any(span)"), "screen"),
    "order-nth-child": (_ordered_by(lambda order: b".f{display:flex;flex-wrap:wrap}" + b"".join(
        b".f > :nth-child(%d){order:%d}" % (m + 1, k) for m, k in enumerate(order)), 7),
        "print"),
    "grid-nth-child": (_ordered_by(lambda order: (
        b".g{display:grid;grid-template-columns:repeat(8,auto);justify-content:start}"
        + b"".join(b".f > :nth-child(%d){grid-row:%d;grid-column:%d}" % (
            m + 1, k // 8 + 1, k % 8 + 1) for m, k in enumerate(order))).replace(
        b".g{", b".f{"), 3), "print"),
    "body-attribute-kept": (b"<!doctype html><style>.j{display:none} body.s .j{display:inline}"
                            b"</style><body class=a><div>" + _junk_spans() + b"</div>"
                            b"<body class=s>", "screen"),
    "html-attribute-kept": (b"<!doctype html><html class=a><style>.j{display:none} html.s .j"
                            b"{display:inline}</style><div>" + _junk_spans() + b"</div>"
                            b"<html class=s>", "screen"),
    "body-in-template": (b"<!doctype html><style>.j{display:none} body.s .j{display:inline}"
                         b"</style><div>" + _junk_spans() + b"</div><template><body class=s>"
                         b"</template>", "screen"),
    "duplicate-class": (b"<!doctype html><style>.j{display:none}</style><div>"
                        + _junk_spans(b"<span class=j class=x>") + b"</div>", "screen"),
    "empty-comment": (b"<!doctype html><style>.j{display:none}</style><div><!-->"
                      + _junk_spans() + b"</div><!-- -->", "screen"),
    "show-tr-child": (_shown_if(b"tr > .j"), "screen"),  # (a page with no table: no <tr>)
    "td-after-td": (b"<!doctype html><style>td + td{display:none} table,tbody,tr,td{display:"
                    b"inline;margin:0;padding:0}</style>" + b"".join(
                        b"<table><tr><td>" + p + b"<td>" + _junk4(i) + b"</table>"
                        for i, p in enumerate(_P4)), "screen"),
    "order-decoy-root-child": (_ordered_by(lambda order: b".f{display:flex;flex-wrap:wrap}"
                                           + b"".join(b".s%d{order:%d}" % (k, k)
                                                      for k in range(len(_P4)))
                                           + b"".join(b":root > .f .s%d{order:%d}" % (k, -k)
                                                      for k in range(len(_P4))), 5, True),
                               "print"),
}


@pytest.mark.parametrize("name", sorted(ROUND38))
def test_round38_selector_shapes_are_read_as_a_browser_reads_them(engine: Engine,
                                                                  name: str) -> None:
    page, _client = ROUND38[name]
    assert _found(engine, mail(page, False)), name


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.parametrize("name", sorted(ROUND38))
def test_round38_chromium_shows_the_payload_whole(tmp_path: Path, name: str) -> None:
    page, client = ROUND38[name]
    shown = screen_text(tmp_path, page) if client == "screen" else printed_text(
        tmp_path, page)
    assert B64 in shown, shown[:200]


_HEAD = b"<!doctype html><html><head><style>"

#: The session's review (helper 115): pages this change missed before its mends, found on
#: 51286b7, shown whole by Chromium.
REVIEW: dict[str, bytes] = {
    "doctype-before-meta": (b"<!doctype html><meta charset=utf-8><style>div:first-child .j"
                            b"{display:none}</style><div>" + _junk_spans() + b"</div>"),
    "body-second-child": _HEAD + b"body:nth-child(2) .j{display:none}</style></head><body><div>"
    + _junk_spans() + b"</div>",
    "body-not-first": _HEAD + b"body:not(:first-child) .j{display:none}</style></head><body>"
    b"<div>" + _junk_spans() + b"</div>",
    "moved-out-of-table": _HEAD + b"body > .j{display:none}</style></head><body><table>"
    + _junk_spans() + b"</table>",
    "written-head-then-div": _HEAD + b"div:first-child .j{display:none}</style></head><div>"
    + _junk_spans() + b"</div>",
    "context-above-body": _HEAD + b".j{display:none} .zz body .j{display:inline}</style></head>"
    b"<body><div>" + _junk_spans() + b"</div>",
    "sibling-before-body": _HEAD + b".j{display:none} .zz + body .j{display:inline}</style>"
    b"</head><body><div>" + _junk_spans() + b"</div>",
    "template-like-tag": _HEAD + b"body.h .j{display:none}</style><template-x></template-x>"
    b"</head><body class=h><div>" + _junk_spans() + b"</div>",
    # (a descendant of `<head>` is in the head, not any element: a decoy `head div`)
    "head-descendant-decoy": (b"<style>.j{display:none} head div{display:none}</style><div>"
                              + _junk_spans() + b"</div>"),
    "head-descendant-layout-decoy": (b"<style>.box{display:flex} head div{flex-direction:"
                                     b"row-reverse}</style><div class=box>" + _ITEMS
                                     + b"</div>"),
    "noscript-in-head": (b"<!doctype html><style>div:first-child .j{display:none}</style>"
                         b"<noscript><div>n</div></noscript><div>" + _junk_spans() + b"</div>"),
}


@pytest.mark.parametrize("name", sorted(REVIEW))
def test_review_pages_are_read(engine: Engine, tmp_path: Path, name: str) -> None:
    page = REVIEW[name]
    assert _found(engine, mail(page, False)), name
    if CHROMIUM is not None and name in ("doctype-before-meta", "context-above-body"):
        assert B64 in screen_text(tmp_path, page)


def test_svg_root_is_the_image() -> None:
    """`:root` in an SVG image's sheet is its `<svg>` (not `<html>`)."""
    body = "".join(f"{p.decode()}<tspan class='j'>{_junk(i).decode()}</tspan>"
                   for i, p in enumerate(THREES))
    image = ('<svg xmlns="http://www.w3.org/2000/svg" width="2000" height="60"><style>'
             ':root > text > .j{display:none}</style><text x="5" y="30" font-size="10">'
             f"{body}</text></svg>").encode()
    assert _found(Engine(load_database(default_db_dirs())), _svg_mail(image))


def test_hostile_context_pages_cost_little() -> None:
    """Many siblings for sibling rules in an image, a `<body>` of 20,000 attributes against
    200 rules: linear, the attributes parsed once (the review: 1.5 GB and 41 s)."""
    siblings = (b"<svg xmlns='http://www.w3.org/2000/svg'><style>.a{fill:red} g + g"
                b"{display:none}</style><g>" + b"<g/>" * 20000 + b"</g><text>x</text></svg>")
    start = cpu.process_time()
    svg_readings(siblings, ScanContext())
    rules = b"".join(b"body.c%d .j{display:none}" % i for i in range(200))
    page = (b"<style>" + rules + b"</style><body " + b" ".join(b"a%d=1" % i for i in range(20000))
            + b"><div>" + _junk_spans() + b"</div>")
    textual.html_visible(page)
    assert cpu.process_time() - start < 20


#: Session 25: `text-transform` rules apply only inside the ancestors their selectors name
#: (a decoy `.none i{text-transform:none}` undid every `<i>`'s uppercase, and the letters of
#: B64, written in the other case, were read so).
TRANSFORM_DECOYS: dict[str, bytes] = {
    "descendant": _cased(b"i{text-transform:uppercase} b{text-transform:lowercase} .none i"
                         b"{text-transform:none} .none b{text-transform:none}",
                         b"<i>%s</i>", b"<b>%s</b>"),
    "child": _cased(b"i{text-transform:uppercase} b{text-transform:lowercase} ul > i"
                    b"{text-transform:none} ul > b{text-transform:none}", b"<i>%s</i>",
                    b"<b>%s</b>"),
    "context-holds": _cased(b"p > i{text-transform:uppercase} p b{text-transform:lowercase}"
                            b" .none i{text-transform:none}", b"<i>%s</i>", b"<b>%s</b>"),
}


@pytest.mark.parametrize("name", sorted(TRANSFORM_DECOYS))
def test_transform_rules_by_their_whole_selector(engine: Engine, tmp_path: Path,
                                                 name: str) -> None:
    page = TRANSFORM_DECOYS[name]
    assert _found(engine, mail(page, False)), name
    if CHROMIUM is not None:
        assert B64 in screen_text(tmp_path, page)
