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
from zerohour.errors import ScanLimitExceeded
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


PAGE = b"https://x.test/a/page.html"
SHEET = b"https://x.test/a/s.css"
UNHIDE = b".h{display:inline}"


def _linked(head: bytes, *sheets: bytes, ctype: bytes = b"text/html",
            page: bytes | None = None) -> bytes:
    """A saved page whose head is `head`, and the parts `sheets`."""
    return _mht(_part(ctype, page if page is not None else _html(head), PAGE), *sheets)


PAGES = {
    "link by location": _linked(b'<link rel="stylesheet" href="https://x.test/a/s.css">',
                                _part(b"text/css", HIDE, SHEET)),
    "link by cid": _linked(b"<link href='cid:css.1@x.test' rel=stylesheet>",
                           _part(b"text/css", HIDE, cid=b"css.1@x.test")),
    "relative link": _linked(b'<link rel=stylesheet href="../b/s.css">',
                             _part(b"text/css", HIDE, b"https://x.test/b/s.css")),
    "import in a style": _linked(b'<style>@import url("s.css");</style>',
                                 _part(b"text/css", HIDE, SHEET)),
    "import from a linked sheet": _linked(
        b'<link rel=stylesheet href="one.css">',
        _part(b"text/css", b'@import "two.css";\np{color:black}', b"https://x.test/a/one.css"),
        _part(b"text/css", HIDE, b"https://x.test/a/two.css")),
}


#: Round 21 (a subagent attacking this reader): each found by Chromium, missed before.
ROUND21 = {
    "reference in rel": _linked(b'<link rel="style&#115;heet" href="s.css">',
                                _part(b"text/css", HIDE, SHEET)),
    "reference in href": _linked(b'<link rel=stylesheet href="s&#46;c&#9;ss">',
                                 _part(b"text/css", HIDE, SHEET)),
    "> in a quoted value": _linked(b'<link title="a>b" rel=stylesheet href="s.css">',
                                   _part(b"text/css", HIDE, SHEET)),
    "64 links in a comment first": _linked(
        b"<!--" + b'<link rel=stylesheet href="e%d.css">' * 64 + b'--><link rel=stylesheet'
        b' href="s.css">', _part(b"text/css", HIDE, SHEET)),
    "imports 10 deep": _linked(b'<link rel=stylesheet href="0.css">', *(
        _part(b"text/css", b'@import "%d.css";' % (i + 1), b"https://x.test/a/%d.css" % i)
        for i in range(10)), _part(b"text/css", HIDE, b"https://x.test/a/10.css")),
    "escaped @import": _linked(b'<style>@\\69mport/**/"s\\2e css";</style>',
                               _part(b"text/css", HIDE, SHEET)),
    "</style in the sheet": _linked(b'<link rel=stylesheet href="s.css">', _part(
        b"text/css", b"/*</style><!--*/" + HIDE + b"/*-->*/", SHEET)),
    "sheet typed octet-stream (quirks)": _linked(
        b"", _part(b"application/octet-stream", HIDE, SHEET),
        page=_html(b'<link rel=stylesheet href="s.css">').replace(b"<!doctype html>", b"")),
    "UTF-16 sheet": _linked(b'<link rel=stylesheet href="s.css">', _part(
        b"text/css; charset=utf-16", HIDE.decode().encode("utf-16"), SHEET)),
    "base href, a decoy of that name": _linked(
        b'<base href="https://x.test/b/"><link rel=stylesheet href="s.css">',
        _part(b"text/css", b"p{}", SHEET), _part(b"text/css", HIDE, b"https://x.test/b/s.css")),
    "default port, a decoy of that name": _linked(
        b'<link rel=stylesheet href="https://x.test:443/a/s.css">',
        _part(b"text/css", HIDE, SHEET), _part(b"text/css", b"p{}", b"https://x.test/b/s.css")),
    "dot segments, a decoy of that name": _linked(
        b'<link rel=stylesheet href="https://x.test/a/b/../%2E/s.css">',
        _part(b"text/css", HIDE, SHEET), _part(b"text/css", b"p{}", b"https://x.test/b/s.css")),
    "the last of a location": _linked(b'<link rel=stylesheet href="s.css">',
                                      _part(b"text/css", b"p{}", SHEET),
                                      _part(b"text/css", HIDE, SHEET)),
    "page in a multipart/alternative": _mht(
        b"------rel\r\nContent-Type: multipart/alternative; boundary=alt\r\n\r\n--alt\r\n"
        b"Content-Type: text/html\r\nContent-Location: " + PAGE + b"\r\n\r\n"
        + _html(b'<link rel=stylesheet href="s.css">') + b"\r\n--alt--\r\n",
        _part(b"text/css", HIDE, SHEET)),
    "XHTML page": _linked(b"", _part(b"text/css", HIDE, SHEET),
                          ctype=b"application/xhtml+xml", page=_html(b"").replace(
                              b"<!doctype html><html>",
                              b'<html xmlns="http://www.w3.org/1999/xhtml">').replace(
                              b"<meta charset=utf-8>", b'<link rel="stylesheet" href="s.css"/>')),
    "a screen sheet shows the decoys": _linked(
        b'<link rel=stylesheet href="s.css"><link rel=stylesheet media=screen href="u.css">',
        _part(b"text/css", HIDE, SHEET), _part(b"text/css", UNHIDE, b"https://x.test/a/u.css")),
    "an unsupported import shows them": _linked(
        b'<link rel=stylesheet href="s.css">',
        _part(b"text/css", b'@import "s2.css";@import "u.css" supports(display:bogus);', SHEET),
        _part(b"text/css", HIDE, b"https://x.test/a/s2.css"),
        _part(b"text/css", UNHIDE, b"https://x.test/a/u.css")),
}


@pytest.mark.parametrize("shape", list(ROUND21))
def test_round21_shapes(engine: Engine, tmp_path: Path, shape: str) -> None:
    mht = ROUND21[shape]
    assert _printed(tmp_path, mht) == B64, shape
    assert _found(engine, mht), shape
    assert _found(engine, _attached(mht)), shape


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
    """A sheet importing itself is read once; past 64 distinct sheets, or 4 MiB of them
    written into one page, the page is the scan's size limit (a finding), not read in part."""
    loop = mhtml.Part("text/css", None, "https://x.test/s.css", b'@import "s.css";' * 50)
    page = mhtml.Part("text/html", None, "https://x.test/p.html",
                      b"<link rel=stylesheet href=s.css>" * 10)
    out = list(mhtml.styled_pages([page, loop]))
    assert len(out) == 1
    assert len(out[0]) < 20_000
    many = [mhtml.Part("text/css", None, f"https://x.test/{i}.css", b".h{display:none}")
            for i in range(65)]
    links = b"".join(b"<link rel=stylesheet href=%d.css>" % i for i in range(65))
    with pytest.raises(ScanLimitExceeded):
        list(mhtml.styled_pages([mhtml.Part("text/html", None, "https://x.test/p.html", links),
                                 *many]))
    big = mhtml.Part("text/css", None, "https://x.test/big.css", b".a{color:red}" * 80_000)
    repeated = mhtml.Part("text/html", None, "https://x.test/p.html",
                          b"<link rel=stylesheet href=big.css>" * 5)
    with pytest.raises(ScanLimitExceeded):
        list(mhtml.styled_pages([repeated, big]))
