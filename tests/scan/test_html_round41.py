"""Attack round 41 (session 26, helper 120, black box on ad2c545): pages Chromium shows B64
whole in, the junk between its pieces hidden by a class selector with an escaped character.

- escaped punctuation (`.j\\;x`, `.j\\'x`, `.j\\}x`): the parsed reading gave lexbor the
  selector with `textual`'s protected bytes in it, which a UTF-8 page could not decode (a
  scan error: the gateway answered 451), or that matched nothing;
- an escaped brace (`.j\\{x`): `textual._flat_rules` read it as a block's start."""

from __future__ import annotations

from pathlib import Path

import pytest

from scan.test_html_clients import screen_text
from scan.test_html_round39 import _split
from scan.test_html_views import B64, CHROMIUM, _found, mail
from zerohour.scan import Engine, load_database
from zerohour.scan.database import default_db_dirs


def _class_page(cls: bytes, selector: bytes) -> bytes:
    """A UTF-8 page whose junk is in `<i class="cls">` and whose sheet hides `selector`."""
    return (b"<!doctype html><html><head><meta charset=utf-8><style>" + selector
            + b"{display:none}</style></head><body><p>"
            + _split(b'<i class="' + cls + b'">', b"</i>") + b"</p></body></html>")


PAGES: dict[str, bytes] = {
    "a legacy reference before a letter": _class_page(b"j&notit", b".j\\26notit"),
    "a legacy reference before '='": _class_page(b"j&amp=x", b".j\\26 amp\\=x"),
    "a backslash": _class_page(b"j\\x", b".j\\5c x"),
    "a backslash by reference": _class_page(b"j&#92;x", b".j\\\\x"),
    "a brace": _class_page(b"j{x", b".j\\{x"),
    "a closing brace": _class_page(b"j}x", b".j\\}x"),
    "a '>'": _class_page(b"j>x", b".j\\3e x"),
    "an '&' by reference": _class_page(b"j&amp;x", b".j\\26x"),
    "a '<' by reference": _class_page(b"j&lt;x", b".j\\<x"),
    "a quote": _class_page(b"j'x", b".j\\'x"),
    "a semicolon": _class_page(b"j;x", b".j\\;x"),
}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_database(default_db_dirs()))


@pytest.mark.parametrize("name", sorted(PAGES))
def test_round41_pages_are_read(engine: Engine, name: str) -> None:
    for as_attachment in (False, True):
        report = engine.scan_bytes(mail(PAGES[name], as_attachment))
        assert report.errors == (), report.errors
        assert _found(engine, mail(PAGES[name], as_attachment)), as_attachment


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_chromium_shows_round41s_payload_whole(tmp_path: Path) -> None:
    missing = [name for name, page in sorted(PAGES.items())
               if B64 not in screen_text(tmp_path, page, ())]
    assert missing == []
