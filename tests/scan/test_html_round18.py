"""Round 18: base64 that a browser shows whole while the page's source cuts it up, by text CSS
writes (counters, counter styles, quotation marks), by what form controls show (a select's
chosen option, an empty field's placeholder), by right-to-left overrides a class sets, by
decoys a browser never paints (inside `<meter>`, `<progress>`, `<fencedframe>`; flattened
or moved away by `matrix()`, `scale(1, 0)`, `rotateX(90deg)`; boxes of size containment;
transparent masks), and the cascade's finer points (transforms and sizes hide boxes only;
a rule that shows an element by `display` undoes only a `display: none`).

Chromium is the oracle for each page: its printed text (`printed_text`), its `innerText`
(`chromium_dom` with a probe), or for masks a screenshot equal to the page with the decoys
`visibility: hidden`. The engine finds EICAR in each page as a mail's body and as an
attachment."""

from __future__ import annotations

import hashlib
import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import browser, cpu
from scan.test_html_views import (
    B64,
    CHROMIUM,
    PROBE_TEXT,
    _found,
    chromium_dom,
    engine,
    mail,
    printed_text,
)
from zerohour.scan import Engine

__all__ = ["engine"]  # (the module's fixture, used by the tests below)

PIECES = [B64[i : i + 8] for i in range(0, len(B64), 8)]
THREES = [B64[i : i + 3] for i in range(0, len(B64), 3)]
ALPHABET = sorted(set(B64))


def _page(body: bytes, css: bytes = b"") -> bytes:
    return (b"<!doctype html><html><head><meta charset=utf-8><style>body{font-family:"
            b"monospace;font-size:11px}" + css + b"</style></head><body>\n<div>" + body
            + b"</div>\n</body></html>\n")


def _junk(i: int) -> bytes:
    rnd = random.Random(i)
    return bytes(rnd.choice(b"ABCDEFGHabcdefgh0123456789+/") for _ in range(4))


def _decoyed(wrap: Callable[[bytes], bytes], css: bytes = b"") -> bytes:
    """B64 in pieces of 3, each followed by 4 base64 characters of junk in `wrap`."""
    return _page(b"".join(p + wrap(_junk(i)) for i, p in enumerate(THREES)), css)


def _symbols(items: list[bytes]) -> bytes:
    return b" ".join(b'"%s"' % x for x in items)


# -- 1. counters and counter styles ---------------------------------------------------------

def _counter_fixed() -> bytes:
    """Each character a counter reset to its place in a `fixed` style's symbols."""
    return _page(b"".join(b'<i style="counter-reset:n %d"></i>' % (ALPHABET.index(c) + 1)
                          for c in B64),
                 b"@counter-style z{system:fixed;symbols:" + _symbols(
                     [bytes([c]) for c in ALPHABET]) + b"}i::before{content:counter(n,z)}")


def _counter_predefined() -> bytes:
    """Letters and digits by `upper-alpha`, `lower-alpha` and `decimal` counters that
    classes increment (by differences: the values climb and fall)."""
    out, now = [], 0
    for c in B64:
        ch = chr(c)
        if ch.isupper():
            value, kind = ord(ch) - 64, b"u"
        elif ch.islower():
            value, kind = ord(ch) - 96, b"l"
        elif ch.isdigit():
            value, kind = int(ch), b"d"
        else:
            out.append(bytes([c]))
            continue
        out.append(b'<b class=%s style="counter-increment:n %d"></b>' % (kind, value - now))
        now = value
    return _page(b"".join(out), b"div{counter-reset:n}b.u::before{content:counter(n,upper-alpha)"
                 b"}b.l::before{content:counter(n,lower-alpha)}b.d::before{content:counter(n)}")


def _counter_cyclic_pieces() -> bytes:
    """A cyclic style per piece, its one symbol the piece; the style sheet's rules
    shuffled."""
    order = list(range(len(PIECES)))
    random.Random(3).shuffle(order)
    return _page(b"".join(b"<i class=p%d></i>" % j for j in range(len(PIECES))), b"".join(
        b'@counter-style s%d{system:cyclic;symbols:"%s"}.p%d::before{content:counter(x,s%d)}'
        % (j, PIECES[j], j, j) for j in order))


def _counter_additive() -> bytes:
    """Additive symbols that add up to the pieces (powers of two: one piece each)."""
    return _page(b"".join(b'<i style="counter-reset:x %d"></i>' % (1 << j)
                          for j in range(len(PIECES))),
                 b"@counter-style a{system:additive;additive-symbols:" + b",".join(
                     b'%d "%s"' % (1 << j, PIECES[j]) for j in reversed(range(len(PIECES))))
                 + b"}i::after{content:counter(x,a)}")


def _counters_nested() -> bytes:
    """`counters()`: a nested counter's values joined, in a fixed style of two halves."""
    return _page(b'<p style="counter-reset:k 1"><i style="counter-reset:k 2"></i></p>',
                 b'@counter-style c{system:fixed;symbols:"' + B64[:40] + b'" "' + B64[40:]
                 + b'"}i::before{content:counters(k,"",c)}')


def _counter_numeric() -> bytes:
    """A numeric style whose digits are the base64 alphabet (padded to 4 digits)."""
    def value(chunk: bytes) -> int:
        out = 0
        for c in chunk:
            out = out * len(ALPHABET) + ALPHABET.index(c)
        return out
    return _page(b"".join(b'<i style="counter-reset:n %d"></i>' % value(B64[i : i + 4])
                          for i in range(0, len(B64), 4)),
                 b"@counter-style b{system:numeric;symbols:" + _symbols(
                     [bytes([c]) for c in ALPHABET]) + b";pad:4 '" + bytes([ALPHABET[0]])
                 + b"'}i::before{content:counter(n,b)}")


_LIST = b'<ol style="padding-left:0;margin:0">%s</ol>'
_ITEM = b'<li style="list-style-position:inside;display:inline list-item%s"></li>'


def _marker_style() -> bytes:
    """List markers in a page's counter style (no suffix): the pieces."""
    return _page(_LIST % (_ITEM % b";list-style-type:p" * len(PIECES)),
                 b"@counter-style p{system:fixed;symbols:" + _symbols(PIECES) + b';suffix:""}')


def _marker_content() -> bytes:
    """`::marker { content: counter(list-item, p) }`."""
    return _page(_LIST % (_ITEM % b"" * len(PIECES)), b"@counter-style p{system:fixed;symbols:"
                 + _symbols(PIECES) + b"}li::marker{content:counter(list-item,p)}")


# -- 2. quotation marks -----------------------------------------------------------------------

def _quotes_pairs() -> bytes:
    css = b"".join(b'.q%d{quotes:"%s" "%s"}' % (j, PIECES[j], PIECES[j + 1] if j + 1 < len(
        PIECES) else b"") for j in range(0, len(PIECES), 2))
    return _page(b"".join(b"<i class=q%d></i>" % j for j in range(0, len(PIECES), 2)),
                 b"i::before{content:open-quote}i::after{content:close-quote}" + css)


def _quotes_q() -> bytes:
    """`<q>` writes its quotes without a `content` of the page's."""
    css = b"".join(b'.q%d{quotes:"%s" "%s"}' % (j, PIECES[j], PIECES[j + 1] if j + 1 < len(
        PIECES) else b"") for j in range(0, len(PIECES), 2))
    return _page(b"".join(b"<q class=q%d></q>" % j for j in range(0, len(PIECES), 2)), css)


def _quotes_nested() -> bytes:
    """Depths of quotation: the first pair outside, the second inside."""
    halves = [B64[i : i + 24] for i in range(0, len(B64), 24)]
    quads = [halves[i : i + 4] for i in range(0, len(halves), 4)]
    out, css = [], []
    for n, quad in enumerate(quads):
        quad = quad + [b""] * (4 - len(quad))
        css.append(b'.n%d{quotes:"%s" "%s" "%s" "%s"}' % (n, quad[0], quad[3], quad[1], quad[2]))
        out.append(b"<q class=n%d><q></q></q>" % n)
    return _page(b"".join(out), b"".join(css))


# -- 3. form controls ---------------------------------------------------------------------------

def _select() -> bytes:
    """Every other piece a select's option marked `selected` (the other a decoy)."""
    out = []
    for i, piece in enumerate(THREES):
        if i % 2:
            out.append(b"<select><option>%s</option><option selected>%s</option></select>"
                       % (_junk(i), piece))
        else:
            out.append(piece)
    return _page(b"".join(out))


def _select_label() -> bytes:
    """The first option not disabled, inside an optgroup, shown by its label."""
    out = []
    for i, piece in enumerate(THREES):
        if i % 2:
            out.append(b'<select><optgroup label=x><option disabled>%s</option><option label="'
                       b'%s">%s</option></optgroup></select>' % (_junk(i), piece, _junk(i + 50)))
        else:
            out.append(piece)
    return _page(b"".join(out))


_FIELD = b"border:0;padding:0;width:3ch;font:inherit"


def _placeholder() -> bytes:
    return _page(b"".join(b'<input placeholder="%s" style="%s">' % (p, _FIELD) if i % 2 else p
                          for i, p in enumerate(THREES)))


def _textarea_placeholder() -> bytes:
    return _page(b"".join(b'<textarea placeholder="%s" style="%s;height:1.2em;resize:none;'
                          b'overflow:hidden"></textarea>' % (p, _FIELD) if i % 2 else p
                          for i, p in enumerate(THREES)))


# -- 4. right-to-left overrides by a class -------------------------------------------------------

def _isolate_override_class() -> bytes:
    return _page(b"".join(b"<span class=r>%s</span>" % p[::-1] for p in PIECES),
                 b".r{direction:rtl;unicode-bidi:isolate-override}")


def _bdo_class() -> bytes:
    return _page(b"".join(b"<bdo class=r>%s</bdo>" % p[::-1] for p in PIECES),
                 b".r{direction:rtl}")


# -- 5. to 8. decoys never painted, and what does not hide ---------------------------------------

_BOX = b'<span style="display:inline-block;%s">%%s</span>'


def _boxed(style: bytes) -> bytes:
    return _decoyed(lambda j: (_BOX % style) % j)


def _inline_not_hidden(style: bytes, css: bytes = b"") -> bytes:
    """The pieces in inline spans of a style that hides boxes only (a browser shows them);
    decoys `display: none`."""
    return _page(b"".join(b'<span %s>%s</span><span style="display:none">%s</span>'
                          % (style, p, _junk(i)) for i, p in enumerate(THREES)), css)


def _items(container: bytes, item: bytes, css: bytes = b"") -> bytes:
    """The pieces and the decoys (in `item` spans) children of one container."""
    return _page(b"<div %s>" % container + b"".join(
        b"<b>%s</b><span %s>%s</span>" % (p, item, _junk(i)) for i, p in enumerate(THREES))
        + b"</div>", css)


def _inline_translated() -> bytes:
    """Flex items in order, their text in inline elements a transform would move off the
    page (it moves no inline box)."""
    order = list(range(len(PIECES)))
    random.Random(5).shuffle(order)
    return _page(b'<div style="display:flex;flex-wrap:wrap;width:100ch">' + b"".join(
        b'<span style="order:%d"><b style="transform:translateX(-99999px)">%s</b></span>'
        % (j, PIECES[j]) for j in order) + b"</div>")


PRINTED: dict[str, Callable[[], bytes]] = {
    # 1. counters
    "counter-fixed-style": _counter_fixed,
    "counter-predefined-styles": _counter_predefined,
    "counter-cyclic-pieces": _counter_cyclic_pieces,
    "counter-additive-pieces": _counter_additive,
    "counters-nested": _counters_nested,
    "counter-numeric-base64-digits": _counter_numeric,
    "marker-list-style-type": _marker_style,
    "marker-content-counter": _marker_content,
    # 2. quotes
    "quotes-open-close": _quotes_pairs,
    "quotes-q-element": _quotes_q,
    "quotes-nested-depths": _quotes_nested,
    # 3. form controls
    "select-selected-option": _select,
    "select-label-first-enabled": _select_label,
    "input-placeholder": _placeholder,
    "textarea-placeholder": _textarea_placeholder,
    # 4. bidi by a class
    "isolate-override-class": _isolate_override_class,
    "bdo-direction-class": _bdo_class,
    # 6. flattened, moved away, contained
    "matrix-zero": lambda: _boxed(b"transform:matrix(0,0,0,0,0,0)"),
    "matrix-flat": lambda: _boxed(b"transform:matrix(1,0,2,0,0,0)"),
    "matrix3d-flat": lambda: _boxed(b"transform:matrix3d(1,0,0,0,0,0,0,0,0,0,1,0,0,0,0,1)"),
    "scale-one-zero": lambda: _boxed(b"transform:scale(1,0);width:0"),
    "scale-property": lambda: _boxed(b"scale:1 0;width:0"),
    "rotate-x-edge-on": lambda: _boxed(b"transform:rotateX(90deg);width:0"),
    "matrix-class": lambda: _decoyed(lambda j: b"<span class=m>%s</span>" % j,
                                     b".m{display:inline-block;transform:matrix(0,0,0,0,0,0)}"),
    "contain-strict-zero": lambda: _boxed(b"contain:strict;width:0;height:0"),
    "contain-size-overflow": lambda: _boxed(b"contain:size;overflow:hidden"),
    # 7. inline elements: sizes and transforms do not hide them
    "inline-scale-zero": lambda: _inline_not_hidden(b'style="transform:scale(0)"'),
    "inline-zero-size-class": lambda: _inline_not_hidden(
        b"class=z", b".z{width:0;height:0;overflow:hidden}"),
    "inline-matrix-class": lambda: _inline_not_hidden(
        b"class=z", b".z{transform:matrix(0,0,0,0,0,0)}"),
    "inline-far-left-not-positioned": lambda: _inline_not_hidden(b'style="left:-9999px"'),
    "inline-translated-in-flex-items": _inline_translated,
    # ...but a flex or grid container's children are boxes whatever their display
    "flex-items-scaled-away": lambda: _items(b'style="display:flex;flex-wrap:wrap"',
                                             b'style="transform:scale(0);width:0"'),
    "grid-items-of-no-size-by-classes": lambda: _items(
        b"class=g", b"class=z", b".g{display:inline-grid;grid-auto-flow:column;justify-content:"
        b"start}.z{width:0;height:0;overflow:hidden}"),
    # 8. a rule showing by display undoes only display:none
    "zero-box-then-display": lambda: _decoyed(
        lambda j: b"<span class=h>%s</span>" % j,
        b".h{display:inline-block;width:0;height:0;overflow:hidden}span.h{display:inline-block}"),
    "far-left-class-positioned-elsewhere": lambda: _decoyed(
        lambda j: b"<span class=o>%s</span>" % j, b".o{left:-9999px}span.o{position:absolute}"),
}

#: Decoys a copy of the page's text (innerText) leaves out.
INNER: dict[str, Callable[[], bytes]] = {
    "meter": lambda: _decoyed(lambda j: b"<meter value=0.5>%s</meter>" % j),
    "progress": lambda: _decoyed(lambda j: b"<progress value=5 max=10>%s</progress>" % j),
    "fencedframe": lambda: _decoyed(lambda j: b"<fencedframe>%s</fencedframe>" % j),
    "visibility-then-display": lambda: _decoyed(lambda j: b"<span class=h>%s</span>" % j,
                                                b".h{visibility:hidden}.h{display:inline}"),
    # what `visibility: visible` shows inside an element `visibility` hides (not inside
    # one `display: none` hides)
    "visible-inside-invisible-by-classes": lambda: _page(b"".join(
        b"<span class=v>%s<b class=s>%s</b>%s</span>" % (_junk(i), p, _junk(i + 100))
        for i, p in enumerate(THREES)), b".v{visibility:hidden}.s{visibility:visible}"),
    "visible-inside-invisible-not-inside-none": lambda: _page(b"".join(
        b'<span style="visibility:hidden">%s<b style="visibility:visible">%s</b><i style="'
        b'display:none"><b style="visibility:visible">%s</b></i></span>'
        % (_junk(i), p, _junk(i + 100)) for i, p in enumerate(THREES))),
    "inline-display-over-class-none": lambda: _page(b"".join(
        b'<span class=h style="display:inline">%s</span><span class=h>%s</span>'
        % (p, _junk(i)) for i, p in enumerate(THREES)), b".h{display:none}"),
}

#: Masks: the page's screenshot is the page's with the decoys `visibility: hidden`.
MASKED: dict[str, bytes] = {
    "mask-transparent-gradient": b"display:inline-block;mask:linear-gradient(transparent,"
                                 b"transparent)",
    "mask-image-alpha-zero": b"-webkit-mask-image:linear-gradient(#0000,#0000);mask-image:"
                             b"linear-gradient(rgba(0,0,0,0),transparent)",
    "mask-radial-inline": b"mask-image:radial-gradient(transparent,transparent)",
}


def _found_both(engine: Engine, page: bytes) -> None:
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), as_attachment


@pytest.mark.skipif(CHROMIUM is None or shutil.which("pdftotext") is None,
                    reason="chromium or pdftotext not installed")
@pytest.mark.parametrize("shape", list(PRINTED))
def test_printed_pages_are_read_as_shown(engine: Engine, tmp_path: Path, shape: str) -> None:
    page = PRINTED[shape]()
    assert printed_text(tmp_path, page) == B64
    _found_both(engine, page)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.parametrize("shape", list(INNER))
def test_copied_pages_are_read_as_shown(engine: Engine, tmp_path: Path, shape: str) -> None:
    page = INNER[shape]()
    dom = chromium_dom(tmp_path, page.replace(b"</body>", PROBE_TEXT + b"</body>"))
    assert b'data-text="' + B64 + b'"' in dom
    _found_both(engine, page)


def _inline_far_from_their_parent(parent: bytes) -> bytes:
    """Pieces in inline `transform: scale(0)` spans (Chromium shows them: a transform acts
    on boxes only) whose parent opens over 64 KB of siblings before them, junk between them
    hidden; `parent`: the parent's opening tag."""
    filler = b"<b>News of the day. </b>" * 3000  # (72 KB: past `_an_item`'s window)
    return _page(parent + filler + b"<br>" + b"".join(
        b"<span class=x>" + p + b"</span><span class=j>" + _junk(i) + b"</span>"
        for i, p in enumerate(THREES)) + b"</p>", b".x{transform:scale(0)}.j{display:none}")


def test_an_inline_element_far_from_its_parent_is_read_as_shown(engine: Engine,
                                                                tmp_path: Path) -> None:
    """Bound 2: an element whose parent `_an_item` did not find within 64 KB was taken for
    a flex or grid item, its inline `transform: scale(0)` for hiding: base64 pieces in
    such spans after 72 KB of siblings were read as hidden, the page clean. The page's
    nesting decides past the window."""
    page = _inline_far_from_their_parent(b"<p>")
    if CHROMIUM is not None:
        dom = chromium_dom(tmp_path, page.replace(b"</body>", PROBE_TEXT + b"</body>"))
        assert B64 in re.sub(rb"\s", b"", dom.split(b'data-text="')[1].split(b'"')[0])
    _found_both(engine, page)
    # (a flex parent as far back makes them items: hidden, as Chromium hides them)
    from zerohour.scan import textual

    flex = _inline_far_from_their_parent(b'<p style="display:flex;flex-wrap:wrap">')
    assert THREES[1] not in (textual.html_visible(flex) or b"")


def _screenshot(tmp_path: Path, page: bytes, name: str) -> str:
    path = tmp_path / f"{name}.html"
    path.write_bytes(page)
    png = browser.screenshot(path, browser.View(window=browser.window_flag(800, 300),
                                                scrollbars=False))
    return hashlib.sha256(png).hexdigest()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.parametrize("shape", list(MASKED))
def test_masked_decoys_are_not_read(engine: Engine, tmp_path: Path, shape: str) -> None:
    style = MASKED[shape]
    page = _decoyed(lambda j: b'<span style="%s">%s</span>' % (style, j))
    hidden = _decoyed(lambda j: b'<span style="%s;visibility:hidden">%s</span>' % (style, j))
    assert _screenshot(tmp_path, page, "masked") == _screenshot(tmp_path, hidden, "hidden")
    shown = _decoyed(lambda j: b'<span style="%s">%s</span>' % (
        style.replace(b"transparent", b"red").replace(b"#0000", b"red").replace(
            b"rgba(0,0,0,0)", b"red"), j))
    assert _screenshot(tmp_path, shown, "shown") != _screenshot(tmp_path, hidden, "hidden")
    _found_both(engine, page)


# -- units ------------------------------------------------------------------------------------

def test_counter_styles_represent_values_as_css_says() -> None:
    from zerohour.scan import counterstyles as cs

    assert cs.represent(1994, b"upper-roman", {}) == b"MCMXCIV"
    assert cs.represent(4000, b"upper-roman", {}) == b"4000"  # out of range: decimal
    assert cs.represent(27, b"lower-alpha", {}) == b"aa"
    assert cs.represent(0, b"lower-alpha", {}) == b"0"
    assert cs.represent(-12, b"decimal", {}) == b"-12"
    assert cs.represent(5, b"decimal-leading-zero", {}) == b"05"
    assert cs.represent(7, b"none", {}) == b""
    styles = cs.sheet_styles([
        (b"@counter-style f", b'system:fixed 3;symbols:"a" b "c"'),
        (b"@counter-style s", b'system:symbolic;symbols:"*" "+"'),
        (b"@counter-style n", b'system:numeric;symbols:"0" "1";negative:"(" ")"'),
        (b"@counter-style x", b"system:extends f;fallback:upper-alpha"),
        (b"@counter-style a", b'system:additive;additive-symbols:5 "V", 1 "I", 0 "Z"'),
        (b"@counter-style r", b'system:cyclic;symbols:"p" "q";range:2 3'),
    ])
    assert [cs.represent(v, b"f", styles) for v in (2, 3, 5, 6)] == [b"2", b"a", b"c", b"6"]
    assert [cs.represent(v, b"s", styles) for v in (1, 2, 3, 4)] == [b"*", b"+", b"**", b"++"]
    assert cs.represent(-5, b"n", styles) == b"(101)"
    assert cs.represent(6, b"x", styles) == b"F"
    assert [cs.represent(v, b"a", styles) for v in (0, 7, 11)] == [b"Z", b"VII", b"VVI"]
    assert [cs.represent(v, b"r", styles) for v in (1, 2, 3)] == [b"1", b"q", b"p"]
    assert cs.marker(3, b"f", styles) == b"a. "
    # a representation too long for any page is the fallback's
    assert cs.represent(2_000_000_000, b"s", styles) == b"2000000000"
    assert cs.represent(2_000_000_000, b"a", styles) == b"2000000000"


def test_counters_nest_and_siblings_reset_in_place(tmp_path: Path) -> None:
    """A counter reset inside an element that has one of the name (its own, its parent's
    or an earlier sibling's) is nested, for that element only; a reset where none is carries
    on to the siblings after it, and a later sibling's reset takes its place (as Chromium
    counts: the first `<div>`'s counter carries on past it)."""
    from zerohour.scan import htmllayout, textual

    page = (b"<style>i::before{content:'[' counters(c,'.') ']'} div{counter-reset:c}"
            b" i{counter-increment:c}</style>"
            b"<div><i></i><i></i><div><i></i></div><i></i></div>"
            b"<div><span style='counter-reset:c 5'></span><i></i><b><i></i></b></div>"
            b"<section><span style='counter-reset:c 5'>s</span><i></i><span style="
            b"'counter-reset:c 9'>s</span><i></i></section>"
            b"<ul><li style='counter-reset:c 3'><i></i></li><li><i></i></li></ul>")
    shown = b"[1][2][2.1][3][1][2]s[3]s[4][4.4][5]"
    if CHROMIUM is not None and shutil.which("pdftotext") is not None:
        assert printed_text(tmp_path, page) == shown
    laid = htmllayout.laid_out(page)
    assert laid is not None
    text = textual.html_rendered(laid)
    assert text is not None
    assert re.sub(rb"\s", b"", text).endswith(shown)


def test_inline_elements_are_not_hidden_by_box_properties() -> None:
    from zerohour.scan import textual

    for shown in (b'<span style="transform:scale(0)">', b'<span style="width:0;height:0;'
                  b'overflow:hidden">', b'<span style="left:-9999px">', b'<span style="transf'
                  b'orm:matrix(0,0,0,0,0,0)">', b'<span class=z>', b'<span class=z style="'
                  b'display:inline">'):
        page = (b"<style>.z{display:inline-block;transform:scale(0)} span.z{display:inline}"
                b"</style><p>A<i hidden>x</i>" + shown + b"B</span>C</p>")
        assert textual.html_visible(page) == b"ABC", shown
    for hidden in (b'<span style="display:inline-block;transform:scale(0)">',
                   b'<span style="position:absolute;left:-9999px">',
                   b'<span style="float:left;transform:matrix(1,0,0,0,0,0)">',
                   b'<span class=z style="width:0;overflow:hidden">',
                   b'<span class=p style="left:-9999px">'):
        page = (b"<style>.z{display:inline-block} .p{position:relative}</style><p>A<i hidden>"
                b"x</i>" + hidden + b"B</span>C</p>")
        assert textual.html_visible(page) == b"AC", hidden
    # a flex or grid container's children are boxes (its own style, a class's)
    for container in (b'<p style="display:flex">', b"<p class=f>", b'<p style="display:inline '
                      b'grid">'):
        page = (b"<style>.f{display:inline-flex}</style>" + container + b"A<i hidden>x</i>"
                b'<span style="transform:scale(0)">B</span>C</p>')
        assert textual.html_visible(page) == b"AC", container
    page = (b"<style>.f{display:flex}</style><p class=f style=display:block>A<i hidden>x</i>"
            b'<span style="transform:scale(0)">B</span>C</p>')
    assert textual.html_visible(page) == b"ABC"


def test_counters_on_a_large_page_cost_linear_time() -> None:
    """Counters on every element of a large page are written in linear time; counters
    nested as deep as the tree goes, on thousands of elements, write more than a page needs:
    a limit finding, in bounded time."""
    from zerohour.errors import ScanLimitExceeded
    from zerohour.scan import htmllayout

    flat = (b"<style>@counter-style s{system:symbolic;symbols:'*'} li{counter-increment:c 7}"
            b" li::before{content:counter(c,s) counters(c,'.') open-quote} ol{counter-reset:c}"
            b" li::after{content:close-quote}</style>"
            + (b"<ol>" + b"<li>x</li>" * 100 + b"</ol>") * 400 + b"<q>" * 5000)
    started = cpu.process_time()
    assert htmllayout.laid_out(flat) is not None
    assert cpu.process_time() - started < 20.0
    deep = (b"<style>i{counter-increment:c 7} i::before{content:counters(c,'.')}"
            b" b{counter-reset:c}</style>" + b"<b><i>x</i><i></i>" * 40_000)
    started = cpu.process_time()
    with pytest.raises(ScanLimitExceeded):
        htmllayout.laid_out(deep)
    assert cpu.process_time() - started < 20.0


def test_inline_elements_of_box_properties_cost_linear_time() -> None:
    """Each inline element that a transform or size would hide as a box has its parent
    looked up (back from it, in a bounded window): a page of many costs linear time."""
    from zerohour.scan import textual

    for page in (b'<div style="display:flex">' + b'<b>t</b><span style="transform:scale(0)">x'
                 b"</span><i hidden>y</i>" * 40_000 + b"</div>",
                 b"<div>" + b"<b>" * 5000 + b'<span style="width:0;overflow:hidden">x</span>'
                 * 40_000 + b"<i hidden>y</i>"):
        started = cpu.process_time()
        assert textual.html_visible(page) is not None
        assert cpu.process_time() - started < 20.0


def _past_chromium_symbols(value: int) -> bytes:
    """Each piece written by a `::before` as counter `value` in a symbolic style of "-"
    whose fallback is a fixed style whose one symbol is the piece (Chromium falls back past
    120 symbols: `counterstyles._SYMBOLS`)."""
    css = b"p{counter-reset:c %d;margin:0}" % value
    body = b""
    for i, piece in enumerate(PIECES):
        css += (b'@counter-style s%d{system:symbolic;symbols:"-";fallback:f%d}'
                b'@counter-style f%d{system:fixed %d;symbols:"%s"}'
                b"p.p%d::before{content:counter(c, s%d)}" % (i, i, i, value, piece, i, i))
        body += b"<p class=p%d></p>" % i
    return _page(b"<div style=display:flex>" + body + b"</div>", css)


def test_a_representation_chromium_thinks_too_long_is_the_fallbacks(engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """121 dashes were written (the bound was 1024 characters) where Chromium writes the
    fallback's text: the pieces were never read."""
    page = _past_chromium_symbols(121)
    if CHROMIUM is not None and shutil.which("pdftotext") is not None:
        assert printed_text(tmp_path, page) == B64
    assert _found(engine, mail(page, False))


def _padded_past_chromium(width: int) -> bytes:
    """Bound 5: each piece written by a `::before` in a cyclic style of "-" with a `pad`
    of `width`, whose fallback is a fixed style whose one symbol is the piece (Chromium
    falls back for a pad wider than 120)."""
    css = b"p{counter-reset:c 1;margin:0}"
    body = b""
    for i, piece in enumerate(PIECES):
        css += (b'@counter-style s%d{system:cyclic;symbols:"-";pad:%d "-";fallback:f%d}'
                b'@counter-style f%d{system:fixed;symbols:"%s"}'
                b"p.p%d::before{content:counter(c, s%d)}" % (i, width, i, i, piece, i, i))
        body += b"<p class=p%d></p>" % i
    return _page(b"<div style=display:flex>" + body + b"</div>", css)


def _long_symbolic(value: int) -> bytes:
    """Bound 5: a symbolic style whose one symbol is B64 (CSS escapes: not in the page's
    text), as counter `value`: Chromium writes it `value` times (up to 120), however long."""
    escaped = b"".join(b"\\%x " % c for c in B64)
    return _page(b"<p class=p></p>", b'@counter-style s{system:symbolic;symbols:"%s"}'
                 b"p{counter-reset:c %d;margin:0}p.p::before{content:counter(c, s)}"
                 % (escaped, value))


def test_counter_text_past_1024_characters_is_read_or_a_limit(engine: Engine,
                                                              tmp_path: Path) -> None:
    """Bound 5 (`counterstyles._MAX_TEXT`): a `pad` was written up to 1024 where Chromium
    writes the fallback past 120 (the pieces, never read: clean); a symbol repeated to more
    than 1024 characters was the fallback's where Chromium writes it (B64 twelve times:
    clean). The first is the fallback's now, the second a limit finding."""
    padded, long = _padded_past_chromium(121), _long_symbolic(12)
    if CHROMIUM is not None and shutil.which("pdftotext") is not None:
        assert printed_text(tmp_path, padded) == B64
        assert printed_text(tmp_path, _padded_past_chromium(120)) == b"-" * 120 * len(PIECES)
        assert B64 in printed_text(tmp_path, long)
    _found_both(engine, padded)
    for as_attachment in (False, True):
        names = engine.scan_bytes(mail(long, as_attachment)).names
        assert names, as_attachment
        assert "Eicar" in names[0] or names[0].startswith("Heuristics.Limits"), names


def _fallback_chain(depth: int) -> bytes:
    """Round 36: each piece the one symbol of a cyclic style at the end of a chain of
    `depth` fixed styles that cannot represent the counter (5), each falling back to the
    next: Chromium follows the chain to its end (10 deep, 300 deep)."""
    css = []
    for j, piece in enumerate(PIECES):
        css += [b'@counter-style c%d_%d{system:fixed;symbols:"-";fallback:c%d_%d}'
                % (j, k, j, k + 1) for k in range(depth)]
        css.append(b'@counter-style c%d_%d{system:cyclic;symbols:"%s"}' % (j, depth, piece))
        css.append(b".p%d::before{content:counter(x,c%d_0)}" % (j, j))
    return _page(b"".join(b'<i class=p%d style="counter-reset:x 5"></i>' % j
                          for j in range(len(PIECES))), b"".join(css))


def test_a_long_fallback_chain_is_followed_to_its_end(engine: Engine, tmp_path: Path) -> None:
    """Round 36: after 9 fallbacks nothing was written (the pieces never read, clean); the
    chain is followed as Chromium does: to its end, `decimal` when it loops; longer than
    `_MAX_FALLBACKS` is a limit finding."""
    import zerohour.scan.counterstyles as cs
    from zerohour.errors import ScanLimitExceeded

    page = _fallback_chain(10)
    if CHROMIUM is not None and shutil.which("pdftotext") is not None:
        assert printed_text(tmp_path, page) == B64
    _found_both(engine, page)
    loop = cs.sheet_styles([(b"@counter-style a", b'system:fixed;symbols:"-";fallback:b'),
                            (b"@counter-style b", b'system:fixed;symbols:"-";fallback:a')])
    assert cs.represent(5, b"a", loop) == b"5"
    chain = cs.sheet_styles([(b"@counter-style c%d" % k,
                              b'system:fixed;symbols:"-";fallback:c%d' % (k + 1))
                             for k in range(2000)])
    assert cs.represent(1, b"c0", chain) == b"-"
    with pytest.raises(ScanLimitExceeded):
        cs.represent(5, b"c0", chain)


def _extends_chain(depth: int) -> bytes:
    """Round 36: each piece the symbol of a cyclic style that a chain of `depth` styles
    extends, written before it (`c_0` extends `c_1` ... extends the piece's style)."""
    css = []
    for j, piece in enumerate(PIECES):
        css += [b"@counter-style e%d_%d{system:extends e%d_%d}" % (j, k, j, k + 1)
                for k in range(depth)]
        css.append(b'@counter-style e%d_%d{system:cyclic;symbols:"%s";suffix:""}'
                   % (j, depth, piece))
        css.append(b".p%d::before{content:counter(x,e%d_0)}" % (j, j))
    return _page(b"".join(b'<i class=p%d style="counter-reset:x 5"></i>' % j
                          for j in range(len(PIECES))), b"".join(css))


def test_an_extends_chain_is_resolved_to_its_end(engine: Engine, tmp_path: Path) -> None:
    """Round 36: `extends` was resolved in two passes: a chain of styles each extending one
    written after it read as decimal ("5", the pieces never read); it is resolved as
    Chromium does, however long, in linear time, a cycle extending decimal."""
    import zerohour.scan.counterstyles as cs

    page = _extends_chain(10)
    if CHROMIUM is not None and shutil.which("pdftotext") is not None:
        assert printed_text(tmp_path, page) == B64
    _found_both(engine, page)
    loop = cs.sheet_styles([(b"@counter-style a", b"system:extends b;suffix:x"),
                            (b"@counter-style b", b"system:extends a"),
                            (b"@counter-style c", b"system:extends a;prefix:p")])
    assert cs.represent(5, b"a", loop) == b"5"
    assert cs.marker(5, b"c", loop) == b"p5x"
    chain = [(b"@counter-style s%d" % k, b"system:extends s%d" % (k + 1)) for k in range(20_000)]
    started = cpu.process_time()
    styles = cs.sheet_styles([*chain, (b"@counter-style s20000", b'system:cyclic;symbols:"T"')])
    assert cpu.process_time() - started < 5
    assert cs.represent(5, b"s0", styles) == b"T"


def test_an_invalid_last_rule_does_not_hide_what_the_valid_one_extends() -> None:
    """The valid rule of a name wins, and its `extends` base is resolved before it (the
    review: the last rule, invalid, was read for the chain; the valid one fell to
    decimal)."""
    from zerohour.scan import counterstyles

    styles = counterstyles.sheet_styles([
        (b"@counter-style a", b"system: extends b"),
        (b"@counter-style a", b"system: cyclic"),  # (no symbols: invalid, ignored)
        (b"@counter-style b", b'system: cyclic; symbols: "Q"')])
    assert counterstyles.represent(3, b"a", styles) == b"Q"
