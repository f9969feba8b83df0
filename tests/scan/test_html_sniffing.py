"""Pages a client renders as HTML whatever their bytes sniff as (session 26, from attack round
39's quirks pages): a part declared `text/html` or a file named `.html` is a page even when it
starts with prose, a quirks-mode doctype (`<!DOCTYPE>`, `<!DOCTYPE foo>`) or holds a NUL (one
NUL made any page "binary", and none of its readings was made). A browser drops a NUL from a
page's text and reads one in markup as U+FFFD (`textual.nuls_as_parsed`).

Each page hides junk between B64's pieces with a style sheet; Chromium shows B64 whole."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pytest

from scan.test_html_clients import not_shown_whole, screen_text
from scan.test_html_round39 import _split
from scan.test_html_views import B64, CHROMIUM, _found, mail
from zerohour.scan import Engine, filetype, load_database, textual
from zerohour.scan.database import default_db_dirs
from zerohour.scan.types import FileType

_BODY = (b"<style>.j{display:none}</style><p>" + _split(b"<span class=j>", b"</span>")
         + b"</p>")

PAGES: dict[str, bytes] = {
    "prose first": b"Dear customer, " + _BODY,
    "an element first": b"<span>Hi</span>" + _BODY,
    "an empty doctype": b"<!DOCTYPE>" + _BODY,
    "a doctype of another name": b"<!DOCTYPE foo>" + _BODY,
    "a NUL in the doctype": b"<!DOCTYPE ht\x00ml>" + _BODY,
    "a NUL in a comment": b"<!doctype html><!-- \x00 -->" + _BODY,
    "a NUL in the text": b"<!doctype html>" + _BODY.replace(b"<p>", b"<p>\x00", 1),
    "a NUL in a tag's name": b"Hi <!DOCTYPE html><st\x00yle></st\x00yle>" + _BODY,
    "NULs in B64's pieces": b"<!doctype html>" + _BODY.replace(b"<span", b"\x00<span"),
    "text, a sheet, then a block": b"<!doctype html><body>Hi <b>x</b>" + _BODY,
    "control characters in a comment": b"<!doctype html><!--" + b"\x01" * 300 + b"-->" + _BODY,
    "dense 8-bit text": (b"<!doctype html><meta charset=windows-1251><p>"
                         + "Привет всем ".encode("cp1251") * 200 + b"</p>" + _BODY),
}




def _tar_page() -> bytes:
    """A ustar archive whose header opens a comment: its one member, `<!--a.txt`, is the
    rest of the page (a browser drops the NULs of the padding)."""
    member = b"-->" + _BODY
    h = bytearray(512)
    h[:9] = b"<!--a.txt"
    h[100:108], h[108:116], h[116:124] = b"0000644\0", b"0000000\0", b"0000000\0"
    h[124:136], h[136:148], h[156:157] = b"%011o\0" % len(member), b"00000000000\0", b"0"
    h[257:265] = b"ustar\x0000"
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h) + member + b"\0" * (-len(member) % 512) + b"\0" * 1024


def _quoted_gt(sheet: bytes) -> bytes:
    """A NUL in a class after a quoted `>` (`title=">"`): U+FFFD to a browser, so only
    a rule for the class with U+FFFD hides the junk."""
    split = _split(b'<span title=">" class="j\x00">', b"</span>")
    return (b"<!doctype html><meta charset=utf-8><style>" + sheet + b"</style><p>" + split
            + b"</p>")


#: Attack round 40 (helper 119, on 80be11f): pages that sniff as another type, NULs read
#: otherwise than a browser reads them, and text glued before a run of B64 (whole, not
#: split: `B64` after "Hi" in a box of its own, read "HiWDVP...", two letters off).
_M = b"<!doctype html><meta charset=utf-8>"
ROUND40: dict[str, bytes] = {
    "control characters in a hidden element": (
        b"<!doctype html><style>.j{display:none}</style><span class=j>" + b"\x01" * 200
        + b"</span>" + _BODY),
    **{f"a script's start: {k}": v + _BODY for k, v in {
        "php": b"<?php ?>", "shebang": b"#!x\n", "batch": b"@echo off ", "job": b"<job>",
        "package": b"<package>", "vbs": b"option explicit ",
        "on error": b"on error resume next "}.items()},
    "a mail header first": b"Subject: hi\n" + _BODY,
    **{f"a magic first: {k}": v + _BODY for k, v in {
        "rtf": b"{\\rt ", "cpio": b"070707 ", "elf": b"\x7fELF",
        "lzh (a bogus comment)": b"<!-lh5- x>"}.items()},
    "a tar archive": _tar_page(),
    "a NUL after a quoted '>'": _quoted_gt(b".j\x00{display:none}"),
    "a NUL after a quoted '>', an escape": _quoted_gt(b".j\\FFFD{display:none}"),
    "a NUL after a quoted '>', U+FFFD": _quoted_gt(b".j\xef\xbf\xbd{display:none}"),
    "a NUL after a quoted '>', attributes": _quoted_gt(
        b"[class^=j]:not([class=j]){display:none}"),
    "a NUL after a style end tag that is none": (
        _M + b"<style>p{}</stylex>{}.j\x00{display:none}</style><p>"
        + _split(b'<span class="j\x00">', b"</span>") + b"</p>"),
    **{f"glued before {k}": _M + v for k, v in {
        "a block": b"Hi<span style=display:block>" + B64 + b"</span>",
        "a sheet's block": b"<style>.b{display:block}</style>Hi<span class=b>" + B64
        + b"</span>",
        "a list item": b"Hi<span style=display:list-item>" + B64 + b"</span>",
        "a table cell": b"<span style=display:table-cell>Hi</span><span style=display:"
        b"table-cell>" + B64 + b"</span>",
        "a grid item": b"<div style=display:grid>Hi<span>" + B64 + b"</span></div>",
        "a flex item": b"<div style=display:flex>Hi<span>" + B64 + b"</span></div>",
        "a float": b"Hi<span style=float:left>" + B64 + b"</span>",
        "a placed box": b"Hi<span style=position:absolute>" + B64 + b"</span>",
        "a legend": b"<fieldset><legend>Hi</legend>" + B64 + b"</fieldset>",
        "a summary": b"<details open><summary>Hi</summary>" + B64 + b"</details>",
        "block math": b"Hi<math display=block><mi>" + B64 + b"</mi></math>",
        "a select": b"Hi<select><option>" + B64 + b"</select>"}.items()},
}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_database(default_db_dirs()))


@pytest.mark.parametrize("name", sorted(PAGES))
def test_pages_are_read_whatever_they_sniff_as(engine: Engine, name: str) -> None:
    assert _found(engine, mail(PAGES[name], False)), name
    assert _found(engine, mail(PAGES[name], True)), name


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.parametrize("name", sorted(PAGES))
def test_chromium_shows_the_payload_whole(tmp_path: Path, name: str) -> None:
    assert B64 in screen_text(tmp_path, PAGES[name])


@pytest.mark.parametrize("name", sorted(ROUND40))
def test_round40_pages_are_read(engine: Engine, name: str) -> None:
    assert _found(engine, mail(ROUND40[name], False)), name
    assert _found(engine, mail(ROUND40[name], True)), name


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_chromium_shows_round40s_payload_whole(tmp_path: Path) -> None:
    assert not_shown_whole(tmp_path, ROUND40, B64) == []


def test_a_page_read_as_plain_text_first_is_read_as_a_page_after(engine: Engine) -> None:
    """The same bytes as a `text/plain` part and as a `text/html` one: the plain part's
    clean verdict is not the page's (`Engine._twin_key` knows a page)."""
    page = base64.encodebytes(PAGES["prose first"])
    msg = (b"From: a@x.test\r\nTo: b@y.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
           b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
           b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + page + b"--b\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n"
           b"\r\n" + page + b"--b--\r\n")
    assert _found(engine, msg)
    plain = msg.replace(b"text/html", b"text/plain")
    assert engine.scan_bytes(plain).names == ()  # (shown as text, the junk is on the screen)


def test_pages_made_of_a_page_are_pages(engine: Engine, tmp_path: Path) -> None:
    """A page the readings make of a page (its shadow roots laid out, an iframe's `srcdoc`)
    is a page whatever its bytes sniff as (prose first: a mail client shows it styled)."""
    from scan.test_html_views import SLOTTED, printed_text

    shadow = SLOTTED["a class"].replace(b"<!doctype html>", b"Dear customer, ")
    srcdoc = (b'<!doctype html><iframe width=900 height=600 srcdoc="'
              + html.escape("Dear customer, " + _BODY.decode()).encode() + b'"></iframe>')
    for page in (shadow, srcdoc):
        assert _found(engine, mail(page, False))
    if CHROMIUM is not None:  # (a printed page has no frame's text)
        assert B64 in printed_text(tmp_path, shadow).replace(b"\n", b"")


def test_a_page_named_html_is_read_as_a_page(engine: Engine) -> None:
    """An attachment named `.htm` with no declared type: its name says a page."""
    msg = (b"From: a@x.test\r\nTo: b@y.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; "
           b"filename=offer.htm\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + base64.encodebytes(PAGES["prose first"]))
    assert _found(engine, msg)
    assert engine.scan_bytes(msg.replace(b"offer.htm", b"offer.txt")).names == ()


def test_nuls_as_a_browser_reads_them() -> None:
    fffd = "\ufffd".encode()
    assert textual.nuls_as_parsed(b"<p>TV\x00qQ</p>") == b"<p>TVqQ</p>"
    assert textual.nuls_as_parsed(b"<sp\x00an class='a\x00'>x") == (
        b"<sp" + fffd + b"an class='a" + fffd + b"'>x")
    # (in a sheet a NUL is a character: `.a\0b` is no class `ab`)
    assert textual.nuls_as_parsed(b"<STYLE>.a\x00b{}</style>x\x00y") == (
        b"<STYLE>.a" + fffd + b"b{}</style>xy")
    assert textual.nuls_as_parsed(b"<\x00p>") == b"<p>"  # (`<` then a NUL is text)
    assert textual.nuls_as_parsed(b"no nul") == b"no nul"


def test_sniffing() -> None:
    assert filetype.detect(b"<!DOCTYPE>\n<p>x</p>") is FileType.HTML
    assert filetype.detect(b"<!doctype html>\x00<p>x</p>") is FileType.BINARY
    assert filetype.nul_page(b"<!doctype html>\x00<p>x</p>")
    assert not filetype.nul_page(b"Hello\x00 world")
    assert not filetype.nul_page(b"<!doctype html><p>x</p>")  # (no NUL: HTML already)


def test_a_page_keeps_its_text_readings(engine: Engine) -> None:
    """A `text/html` part with no markup, or a binary one, is read as what it is too: base64
    lines in it are decoded (read only as a page, they were not)."""
    from scan.test_html_views import EICAR

    lines = base64.encodebytes(EICAR * 3)
    for page in (lines, b"Here it is:\n" + lines, b"\x00" + lines):
        assert _found(engine, mail(page, False)), page[:20]
        assert _found(engine, mail(page, True)), page[:20]
