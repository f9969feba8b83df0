"""Round 20: the cascade's finer points a hostile page leans on. An author's `!important`
declaration outranks a style attribute's normal one: `.s{display:inline!important}` shows
an element whose own style says `display:none`, and base64 cut into such elements, with
decoys that stay hidden between them, reads whole on screen.

Chromium's print is the oracle for every page; the engine finds EICAR in each as a mail's
body and as an attachment."""

from __future__ import annotations

from pathlib import Path

import pytest

from scan.test_html_round18 import THREES, _junk, _page
from scan.test_html_views import B64, CHROMIUM, _found, engine, mail, printed_text
from zerohour.scan import Engine, textual

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
