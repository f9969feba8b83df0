"""The receiver's and the relay's whole-message line checks, rewritten for speed, say what the
plain versions said: the longest line, bare CR/LF, dot-unstuffing and dot-stuffing."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from zerohour.gateway.prepare import bare_line_end, fold_long_lines, piece_longer_than
from zerohour.gateway.relay_session import wire_body

# Messages made of the bytes that matter (line ends, dots, a letter), some long runs.
_PIECES = st.sampled_from([b"\r\n", b"\n", b"\r", b".", b"a", b"a" * 37, b"." * 3, b"\r\n."])
_MESSAGES = st.lists(_PIECES, max_size=120).map(b"".join)
_BARE_OLD = re.compile(rb"(?<!\r)\n|\r(?!\n)")
_LINE_ENDS = re.compile(rb"\r\n|\n|\r")
_LEADING_DOT = re.compile(rb"(?m)^\.")


@settings(max_examples=400)
@given(_MESSAGES, st.integers(min_value=0, max_value=80))
def test_piece_longer_than_is_max_of_split(data: bytes, limit: int) -> None:
    assert piece_longer_than(data, limit) == (max(map(len, data.split(b"\n"))) > limit)


def test_piece_longer_than_at_the_edges() -> None:
    line = b"x" * 998
    assert not piece_longer_than(line + b"\r\n" + line, 999)
    assert not piece_longer_than(line + b"x", 999)
    assert piece_longer_than(line + b"xx", 999)
    assert piece_longer_than(b"a\n" * 5000 + line + b"xx\r\n" + b"a\n" * 5000, 999)
    assert not piece_longer_than(b"", 0)


@settings(max_examples=400)
@given(_MESSAGES)
def test_bare_line_end_is_the_first_bare_cr_or_lf(data: bytes) -> None:
    old = _BARE_OLD.search(data)
    new = bare_line_end(data)
    assert (new is None) == (old is None)
    if old is not None and new is not None:
        assert (new.start(), new.group()) == (old.start(), old.group())


@settings(max_examples=400)
@given(_MESSAGES)
def test_wire_body_is_the_regex_version(body: bytes) -> None:
    old = body
    if _BARE_OLD.search(old):
        old = _LINE_ENDS.sub(b"\r\n", old)
    if old and not old.endswith(b"\r\n"):
        old += b"\r\n"
    size = len(old)
    assert wire_body(body) == (_LEADING_DOT.sub(b"..", old), size)


@settings(max_examples=400)
@given(_MESSAGES)
def test_unstuffing_then_stuffing_gives_back_the_wire_form(body: bytes) -> None:
    """What the relay sends, the receiver reads back as the same message (for CRLF text)."""
    body = _LINE_ENDS.sub(b"\r\n", body)
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    wire, _ = wire_body(body)
    unstuffed = wire[1:] if wire.startswith(b".") else wire
    assert unstuffed.replace(b"\n.", b"\n") == body
    assert (b"\r\n" + wire).replace(b"\r\n.", b"\r\n")[2:] == body  # the old receiver's way


def test_fold_long_lines_still_folds() -> None:
    body = b"Subject: x\r\n\r\n" + b"y" * 2000 + b"\r\n"
    folded = fold_long_lines(body)
    assert folded != body
    assert not piece_longer_than(folded, 999)
