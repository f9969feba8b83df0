"""The prefilters answer exactly what `re` and `in` answer, on short and long buffers alike:
a gate that said "absent" wrongly would switch a decoder off (a uuencoded or embedded virus
never decoded)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zerohour.scan import embedded, encodings, gates, textual
from zerohour.scan.gates import Gate, Literals

pytestmark = pytest.mark.skipif(not gates.HAVE_HYPERSCAN, reason="needs hyperscan")

_PATTERNS = [rb"begin", rb"BEGIN:V(?:CALENDAR|CARD)", rb"<(?:svg|script)[\s>/]",
             rb"content-|begin |=ybegin"]
_WORDS = [b"begin", b"BeGiN", b"BEGIN:VCALENDAR", b"begin:vcard", b"<script>", b"<SVG/",
          b"<svg\x0b", b"Content-", b"=YBEGIN", b"begin ", b"MZ", b"Rar!\x1a\x07",
          b"MSCF\x00\x00\x00\x00", b"\x60\xea", b"7z\xbc\xaf\x27\x1c"]
_filler = st.binary(max_size=400)
_buffers = st.lists(st.one_of(_filler, st.sampled_from(_WORDS)), max_size=8).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(data=_buffers, pad=st.integers(0, 600), at_end=st.booleans())
def test_gates_agree_with_re(data: bytes, pad: int, at_end: bool) -> None:
    # padding moves the buffer across the short-buffer threshold and the match to either end
    buf = data + b"." * pad if not at_end else b"." * pad + data
    for pattern in _PATTERNS:
        want = re.search(pattern, buf, re.IGNORECASE) is not None
        assert Gate(pattern)(buf) is want, (pattern, buf)
        assert Gate(pattern, caseless=False)(buf) is (re.search(pattern, buf) is not None)


@settings(max_examples=300, deadline=None)
@given(data=_buffers, pad=st.integers(0, 600))
def test_literals_agree_with_in(data: bytes, pad: int) -> None:
    needles = (b"Rar!\x1a\x07", b"7z\xbc\xaf\x27\x1c", b"MSCF\x00\x00\x00\x00", b"\x60\xea",
               b"MZ")
    buf = b"\x00" * pad + data
    want = {i for i, n in enumerate(needles) if n in buf}
    assert Literals(needles).present(buf) == want


def test_used_gates_are_hyperscan_backed_on_long_buffers() -> None:
    """The gates the scanner uses compile in hyperscan (a refused pattern would fall back to
    `re` silently, correct but slow), and they find what they gate."""
    long = b"x" * 10_000
    for gate, hit in ((encodings._UU_GATE, b"BEGIN 644 a.exe"),
                      (textual._VOBJECT, b"begin:vCalendar")):
        assert gate(long + hit + long)
        assert not gate(long)
        assert gate._hs._db is not None
        assert not gate._hs._failed
    assert embedded._PRESENT.present(long + b"MSCF\x00\x00\x00\x00" + long) == {2}
    assert embedded._PRESENT._hs._db is not None


def test_refused_pattern_falls_back_to_re() -> None:
    gate = Gate(rb"(a)\1")  # a back-reference: hyperscan refuses it, `re` answers
    assert gate(b"x" * 300 + b"aa")
    assert not gate(b"x" * 300 + b"ab")
    assert gate._hs._failed
