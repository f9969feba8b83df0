"""The gates that decide whether a reading of a page applies read CSS as CSS reads it.

Each reading of a page as the browser shows it (layout: `htmllayout`; side-by-side boxes:
`htmlcolumns`; `text-transform`: `textual.html_transformed`) runs only when a cheap gate sees
CSS that could change what shows. A hostile sender wrote that CSS as a browser still reads it
but the gates did not: a property name or value with a character reference in a style
attribute (`o&#114;der:2`, decoded by the HTML parser before CSS reads it), a CSS escape
(`\\6f rder`) or a comment after it (`order/**/:2`). Chromium's print is the oracle: it shows
the base64 whole; the engine must find it (`textual.css_readable` feeds the gates).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from scan import test_html_columns as columns
from scan.test_html_floats import SHAPES as FLOATS
from scan.test_html_views import (
    B64,
    CHROMIUM,
    _found,
    _laid_out,
    _transformed,
    engine,
    mail,
    printed_text,
)
from zerohour.scan import Engine, textual

__all__ = ["engine"]  # (the module's fixture, used by the tests below)


def _entity(name: bytes) -> bytes:
    return b"&#%d;" % name[0] + name[1:]


def _escape(name: bytes) -> bytes:
    return b"\\%x " % name[0] + name[1:]


def _comment(name: bytes) -> bytes:
    return name + b"/**/"  # (between tokens: inside a name it would cut it in two)


ENCODINGS: dict[str, Callable[[bytes], bytes]] = {
    "entity": _entity, "css-escape": _escape, "comment": _comment}
_PROPERTY = re.compile(rb"([a-z][a-z-]*)(\s*:)")


def _encoded(page: bytes, encode: Callable[[bytes], bytes], sheets: bool) -> bytes:
    """Every property name in the page's style attributes (and, unless the encoding is a
    character reference, which a style sheet does not decode, its style sheets) encoded."""
    def names(m: re.Match[bytes]) -> bytes:
        return _PROPERTY.sub(lambda n: encode(n.group(1)) + n.group(2), m.group())

    page = re.sub(rb'style="[^"]*"', names, page)
    if sheets:
        page = re.sub(rb"(?<=<style>)[^<]*", lambda m: re.sub(
            rb"\{[^}]*\}", names, m.group()), page)
    return page


PAGES = {
    **{f"layout-{shape}": _laid_out(shape) for shape in (
        "flex-order", "grid", "absolute", "before-content", "list-marker")},
    **{f"columns-{shape}": columns.SHAPES[shape] for shape in (
        "column-count-2", "column-count-4-class", "inline-blocks", "left-floats")},
    "floats-right": FLOATS["style-attribute"],
    "floats-right-sheet": FLOATS["style-sheet"],
    "text-transform-inline": _transformed("inline"),
    "text-transform-class": _transformed("class"),
}


@pytest.mark.skipif(CHROMIUM is None or shutil.which("pdftotext") is None,
                    reason="chromium or pdftotext not installed")
@pytest.mark.parametrize(("name", "encoding"), [
    (name, encoding) for name in PAGES for encoding in ENCODINGS
    # (a character reference works in a style attribute only)
    if encoding != "entity" or b'style="' in PAGES[name]])
def test_css_the_gates_read_as_css_does(engine: Engine, tmp_path: Path, name: str,
                                        encoding: str) -> None:
    page = _encoded(PAGES[name], ENCODINGS[encoding], sheets=encoding != "entity")
    assert page != PAGES[name]
    if name.startswith("text-transform"):  # (letters drawn in the other case, turned back)
        assert B64 in printed_text(tmp_path, page)
    else:
        assert printed_text(tmp_path, page).endswith(B64)
    for as_attachment in (False, True):
        assert _found(engine, mail(page, as_attachment)), (name, encoding, as_attachment)


def test_css_readable() -> None:
    page = b'<p style="o&#114;der:2;fl\\6f at:right;po/* x */sition:absolute">a &amp; b</p>'
    assert textual.css_readable(page) == (
        b'<p style="order:2;float:right;position:absolute">a & b</p>')
    plain = b"<p style='order:2'>a b</p>"
    assert textual.css_readable(plain) is plain  # (nothing to decode: nothing more to try)
