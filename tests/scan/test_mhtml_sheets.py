"""A saved page (MHTML, multipart/related) whose style sheets are parts of their own (round
20's last HTML row): base64 cut by decoys that a linked or imported sheet hides. Chromium
opening the `.mht` file and printing it is the oracle (its text is the base64, exactly); the
engine must find EICAR in the message and in the saved file attached to a mail."""

from __future__ import annotations

import base64
import random
from pathlib import Path

import pytest

from scan.test_html_views import B64, _found, engine, printed_text
from zerohour.scan import Engine, mhtml

__all__ = ["engine"]  # (the module's fixture)

THREES = [B64[i : i + 3] for i in range(0, len(B64), 3)]
HIDE = b".h{display:none}"


def _junk(i: int) -> bytes:
    rnd = random.Random(i)
    return bytes(rnd.choice(b"ABCDEFGHabcdefgh0123456789+/") for _ in range(4))


def _html(head: bytes) -> bytes:
    body = b"".join(p + b'<span class="h">' + _junk(i) + b"</span>"
                    for i, p in enumerate(THREES))
    return (b"<!doctype html><html><head><meta charset=utf-8>" + head + b"</head><body>"
            b'<div style="font-family:monospace;font-size:11px">' + body
            + b"</div></body></html>")


def _part(ctype: bytes, data: bytes, location: bytes | None = None,
          cid: bytes | None = None) -> bytes:
    head = b"Content-Type: " + ctype + b"\r\n"
    if cid:
        head += b"Content-ID: <" + cid + b">\r\n"
    if location:
        head += b"Content-Location: " + location + b"\r\n"
    return (b"------rel\r\n" + head + b"Content-Transfer-Encoding: base64\r\n\r\n"
            + base64.encodebytes(data).replace(b"\n", b"\r\n"))


def _mht(*parts: bytes) -> bytes:
    """As Chromium's "Save as MHTML" writes it."""
    return (b"From: <Saved by Blink>\r\nSnapshot-Content-Location: https://x.test/a/page.html\r\n"
            b"Subject: page\r\nDate: Sun, 6 Dec 2026 05:00:00 -0000\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/related;\r\n\ttype="text/html";\r\n\tboundary="----rel"'
            b"\r\n\r\n" + b"".join(parts) + b"------rel--\r\n")


PAGES = {
    "link by location": _mht(
        _part(b"text/html", _html(b'<link rel="stylesheet" href="https://x.test/a/s.css">'),
              b"https://x.test/a/page.html"),
        _part(b"text/css", HIDE, b"https://x.test/a/s.css")),
    "link by cid": _mht(
        _part(b"text/html", _html(b"<link href='cid:css.1@x.test' rel=stylesheet>"),
              b"https://x.test/a/page.html"),
        _part(b"text/css", HIDE, cid=b"css.1@x.test")),
    "relative link": _mht(
        _part(b"text/html", _html(b'<link rel=stylesheet href="../b/s.css">'),
              b"https://x.test/a/page.html"),
        _part(b"text/css", HIDE, b"https://x.test/b/s.css")),
    "import in a style": _mht(
        _part(b"text/html", _html(b'<style>@import url("s.css");</style>'),
              b"https://x.test/a/page.html"),
        _part(b"text/css", HIDE, b"https://x.test/a/s.css")),
    "import from a linked sheet": _mht(
        _part(b"text/html", _html(b'<link rel=stylesheet href="one.css">'),
              b"https://x.test/a/page.html"),
        _part(b"text/css", b'@import "two.css";\np{color:black}', b"https://x.test/a/one.css"),
        _part(b"text/css", HIDE, b"https://x.test/a/two.css")),
}


def _printed(tmp_path: Path, mht: bytes) -> bytes:
    return printed_text(tmp_path, mht, "page.mht")


def _attached(mht: bytes) -> bytes:
    return (b"From: a@x.test\r\nTo: b@y.test\r\nSubject: saved page\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\n"
            b"Content-Type: text/plain\r\n\r\nThe page you asked for.\r\n--m\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
            b'Content-Disposition: attachment; filename="page.mht"\r\n\r\n'
            + base64.encodebytes(mht).replace(b"\n", b"\r\n") + b"--m--\r\n")


@pytest.mark.parametrize("shape", list(PAGES))
def test_a_sheet_in_another_part_hides_the_decoys(engine: Engine, tmp_path: Path,
                                                   shape: str) -> None:
    mht = PAGES[shape]
    assert _printed(tmp_path, mht) == B64
    assert _found(engine, mht), shape
    assert _found(engine, _attached(mht)), shape


def test_without_the_sheet_the_decoys_show(tmp_path: Path) -> None:
    """The check above is not vacuous: Chromium with no sheet part prints the decoys."""
    mht = _mht(_part(b"text/html", _html(b'<link rel="stylesheet" href="s.css">'),
                     b"https://x.test/a/page.html"))
    assert _printed(tmp_path, mht) != B64


def test_sheets_are_bounded() -> None:
    """A sheet importing itself, and a page linking one sheet thousands of times."""
    loop = mhtml.Part("text/css", None, "https://x.test/s.css", b'@import "s.css";' * 50)
    page = mhtml.Part("text/html", None, "https://x.test/p.html",
                      b"<link rel=stylesheet href=s.css>" * 5000)
    out = list(mhtml.styled_pages([page, loop]))
    assert len(out) == 1
    assert len(out[0]) < 10 * 1024 * 1024
