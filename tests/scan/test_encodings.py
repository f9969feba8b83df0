"""Transfer-encoding decoders: round-trips with the stdlib encoders, and leniency on damage."""

from __future__ import annotations

import base64
import binascii
import quopri
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zerohour.scan import encodings


@settings(deadline=None)
@given(st.binary(max_size=2000))
def test_base64_round_trip(data: bytes) -> None:
    assert encodings.base64_decode(base64.encodebytes(data)) == data
    assert encodings.base64_variants(base64.b64encode(data))[0] == data


@settings(deadline=None)
@given(st.binary(max_size=500), st.binary(max_size=50))
def test_base64_ignores_junk(data: bytes, junk: bytes) -> None:
    enc = base64.b64encode(data)
    junk = bytes(
        c
        for c in junk
        if chr(c) not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
    )
    mid = len(enc) // 2 // 4 * 4
    assert encodings.base64_decode(enc[:mid] + junk + enc[mid:]) == data


def test_base64_missing_padding_and_truncation() -> None:
    assert encodings.base64_decode(b"aGVsbG8") == b"hello"
    assert encodings.base64_decode(b"aGVsbG8gd") == b"hello "  # one dangling sextet dropped


def test_base64_padding_in_the_middle_gives_both_views() -> None:
    data = base64.b64encode(b"ab") + base64.b64encode(b"payload!")
    variants = encodings.base64_variants(data)
    assert b"abpayload!" in variants
    assert b"ab" in variants  # (where a decoder that stops at the padding stops)
    assert len(variants) == 3


def test_base64_url_alphabet() -> None:
    data = base64.urlsafe_b64encode(b"\xfb\xff\xfe" * 10)
    assert b"\xfb\xff\xfe" * 10 in encodings.base64_variants(data)


def test_looks_base64() -> None:
    assert encodings.looks_base64(base64.encodebytes(b"x" * 200))
    assert not encodings.looks_base64(b"Hello world, this is text.\r\n")
    assert not encodings.looks_base64(b"short")


_PLAUSIBLE = re.compile(rb"\A[\sA-Za-z0-9+/=]*\Z")  # the rule, as a regular expression


@settings(deadline=None)
@given(st.lists(st.sampled_from([b"QUJD", b"RA==", b"\r\n", b"\n", b" ", b"\t", b"\x0b", b"\x0c",
                                 b"-", b"_", b".", b"\x00", b"\xff", b"\x85", b"\xa0"]),
                max_size=40))
def test_looks_base64_takes_only_base64_and_ascii_whitespace(pieces: list[bytes]) -> None:
    """Only the alphabet, "=" and ASCII whitespace (also VT and FF; not NEL or NBSP)."""
    body = b"QUJDREVGR0hJSktM" + b"".join(pieces)
    if _PLAUSIBLE.match(body.strip()) is None:
        assert not encodings.looks_base64(body)
    elif b" " not in body.strip() and b"\t" not in body.strip() and b"\x0b" not in body:
        assert encodings.looks_base64(body)


_LINE_END = re.compile(rb"\r\n|\n|\r")


def _looks_base64_rule(data: bytes, min_len: int = 16) -> bool:
    """`looks_base64` as first written: every line split and looked at."""
    body = data.strip()
    if len(body) < min_len or _PLAUSIBLE.match(body) is None:
        return False
    lines = _LINE_END.split(body[:8192])
    if any(b" " in ln.strip() or b"\t" in ln.strip() for ln in lines):
        return False
    return any(len(ln.strip()) >= min_len for ln in lines)


@settings(deadline=None)
@given(st.lists(st.sampled_from([b"QUJD", b"Q", b"=", b"\r\n", b"\n", b"\r", b" ", b"\t",
                                 b"\x0b", b"\x0c", b"QUJDREVGR0hJSktM"]), max_size=60))
def test_looks_base64_keeps_its_line_rule(pieces: list[bytes]) -> None:
    """Blanks inside a line refuse; one line of 16+ characters is needed (the fast paths:
    no blank at all, C line splitting)."""
    body = b"".join(pieces)
    assert encodings.looks_base64(body) == _looks_base64_rule(body)
    assert encodings.looks_base64(body, 0) == _looks_base64_rule(body, 0)  # even b"" is one line


_WHOLE_LINE = re.compile(rb"^[ \t]*([A-Za-z0-9+/]{4,}={0,2})[ \t]*\r?$", re.M)


@settings(deadline=None, max_examples=500)
@given(st.lists(st.sampled_from([b"QUJD", b"Q", b"QU", b"=", b"==", b"\r\n", b"\n", b"\r",
                                 b"\r\r\n", b" ", b"\t", b"-", b".", b"\xff"]), max_size=60),
       st.booleans())
def test_whole_base64_lines_are_the_line_pattern(pieces: list[bytes], blanks: bool) -> None:
    """The blank-free fast path (split at LF, one CR dropped) finds what the line pattern
    finds: lines of four-character groups, in order, CR handling and the last line too."""
    data = b"".join(pieces)
    if not blanks:
        data = data.replace(b" ", b"").replace(b"\t", b"")
    want = [ln for ln in _WHOLE_LINE.findall(data) if len(ln) % 4 == 0]
    assert encodings.whole_base64_lines(data) == want


def test_whole_base64_lines_of_smtp_source_body() -> None:
    """78-character lines (no multiple of four) and one of 80: only that one."""
    body = b"".join(b"%dX" % (i % 10) + b"X" * 76 + b"\r\n" for i in range(50))
    last = b"X" * 80
    assert encodings.whole_base64_lines(body + last + b"\r\n") == [last]
    assert encodings.whole_base64_lines(body + last + b"\r") == [last]
    assert encodings.whole_base64_lines(body + last + b"\r\r") == []


@settings(deadline=None)
@given(st.binary(max_size=2000))
def test_qp_round_trip(data: bytes) -> None:
    encoded = quopri.encodestring(data)
    # quopri's encoder drops a bare CR before a line break (b"\n\r\n" -> b"\n\n"): where its
    # own decoder can't get `data` back, neither can ours.
    if quopri.decodestring(encoded) == data:
        assert encodings.qp_decode(encoded) == data
    encoded = binascii.b2a_qp(data, quotetabs=True)  # (drops that CR too: b"\n\r\n")
    if binascii.a2b_qp(encoded) == data:
        assert encodings.qp_decode(encoded) == data


def test_qp_lenient() -> None:
    assert encodings.qp_decode(b"a=3db=\nc=\r\nd=ZZ=") == b"a=bcd=ZZ="
    assert encodings.qp_decode(b"=4a=4A") == b"JJ"


@settings(deadline=None)
@given(st.binary(max_size=2000), st.text(alphabet="abcxyz.", min_size=1, max_size=10))
def test_uuencode_round_trip(data: bytes, name: str) -> None:
    lines = b"".join(binascii.b2a_uu(data[i : i + 45]) for i in range(0, len(data), 45))
    text = b"preamble\r\nbegin 644 " + name.encode() + b"\n" + lines + b"`\nend\n"
    blocks = list(encodings.uudecode_blocks(text))
    assert len(blocks) == 1
    assert blocks[0].data == data
    assert blocks[0].name == name
    assert encodings.uudecode(text) == data


def test_uudecode_tolerates_short_lines() -> None:
    line = binascii.b2a_uu(b"hello world")
    assert encodings.uudecode(b"begin 644 x\n" + line[:-4] + b"\nend\n").startswith(b"hello wo")


def _yenc(data: bytes) -> bytes:
    out = bytearray()
    for c in data:
        o = (c + 42) & 0xFF
        if o in (0, 10, 13, 61):
            out += bytes((61, (o + 64) & 0xFF))
        else:
            out.append(o)
    return bytes(out)


@settings(deadline=None)
@given(st.binary(max_size=2000))
def test_yenc_round_trip(data: bytes) -> None:
    text = b"=ybegin line=128 size=%d name=f.bin\r\n" % len(data) + _yenc(data) + b"\r\n=yend\r\n"
    blocks = list(encodings.ydecode_blocks(text))
    assert [b.data for b in blocks] == [data]
    assert blocks[0].name == "f.bin"


@settings(deadline=None)
@given(st.binary(max_size=3000))
def test_decoders_never_raise(data: bytes) -> None:
    encodings.base64_variants(data)
    encodings.qp_decode(data)
    encodings.uudecode(data)
    list(encodings.embedded_files(b"begin 644 x\n" + data))
    list(encodings.embedded_files(b"=ybegin name=x\n" + data))
    encodings.yenc_decode_body(data)


def binhex_encode(name: bytes, data: bytes, rsrc: bytes = b"") -> bytes:
    """A BinHex 4.0 encoder (CPython dropped its own in 3.11); CRCs left zero, 0x90 escaped."""
    alphabet = b"!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr"
    header = bytes((len(name),)) + name + b"\x00" + b"TEXTttxt" + b"\x00\x00"
    raw = header + len(data).to_bytes(4, "big") + len(rsrc).to_bytes(4, "big") + b"\x00\x00"
    raw += data + b"\x00\x00" + rsrc + b"\x00\x00"
    rle = raw.replace(b"\x90", b"\x90\x00")
    bits = int.from_bytes(rle, "big") if rle else 0
    nbits = len(rle) * 8
    pad = (-nbits) % 6
    bits <<= pad
    nchars = (nbits + pad) // 6
    chars = bytes(alphabet[(bits >> (6 * (nchars - 1 - i))) & 63] for i in range(nchars))
    lines = b"\r\n".join(chars[i : i + 64] for i in range(0, len(chars), 64))
    return b"(This file must be converted with BinHex 4.0)\r\n:" + lines + b":\r\n"


@settings(deadline=None)
@given(st.binary(min_size=1, max_size=1500), st.binary(max_size=200))
def test_binhex_round_trip(data: bytes, rsrc: bytes) -> None:
    text = b"some mail text\r\n" + binhex_encode(b"file.bin", data, rsrc) + b"bye\r\n"
    blocks = list(encodings.embedded_files(text))
    assert blocks[0].data == data
    assert blocks[0].name == "file.bin"
    if rsrc:
        assert blocks[1].data == rsrc


def test_binhex_run_length() -> None:
    # "A" then 0x90 0x05: A repeated to five in total.
    alphabet = b"!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr"
    assert encodings._hqx_unrle(b"A\x90\x05B\x90\x00", 100) == b"AAAAAB\x90"
    assert len(alphabet) == 64


def test_smuggled_blobs() -> None:
    payload = b"MZ\x90\x00" + bytes(range(256))
    b64 = base64.b64encode(payload)
    html = (
        b"<img src='data:image/png;base64," + base64.b64encode(b"\x89PNG tiny image bytes") + b"'>"
        b"<script>const x = '" + b64 + b"'; const h = 'sha384-" + b"A" * 90 + b"';</script>"
        b'<a href="data:application/octet-stream;charset=utf-8;base64,'
        + b64[:40]
        + b"\\n"
        + b64[40:]
        + b'">'
    )
    got = [(e.encoding, e.data) for e in encodings.smuggled_blobs(html)]
    assert ("data-uri", b"\x89PNG tiny image bytes") in got
    assert ("data-uri", payload) in got
    assert ("base64-literal", payload) in got
    assert len(got) == 3  # the 'sha384-...' integrity value is not base64-only
    assert list(encodings.smuggled_blobs(b"<p>plain html</p>")) == []


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=120))
def test_uu_fast_path_matches_the_per_character_decoder(line: bytes) -> None:
    try:
        binascii.a2b_uu(line)
    except binascii.Error:
        assert encodings._uu_fast(line) == encodings._uu_line(line)


def _uu(data: bytes) -> bytes:
    return b"".join(binascii.b2a_uu(data[i : i + 45]) for i in range(0, len(data), 45))


PAYLOAD = bytes(range(256)) + b"tail"


def test_uudecode_truncated_end_line_is_not_data() -> None:
    # clamav-testfiles' clam.exe.mbox.uu ends "`\ne": the "e" is a 5-byte line to a decoder
    # that does not stop at the zero-length line (we used to append 5 junk bytes: no hash hit).
    body = b"begin 644 clam.exe\n" + _uu(PAYLOAD) + b"`\ne"
    assert encodings.uudecode_variants(body)[0] == PAYLOAD
    assert [b.data for b in encodings.uudecode_blocks(body)] == [PAYLOAD]


def test_uudecode_data_after_a_zero_length_line_is_a_second_reading() -> None:
    enc = _uu(PAYLOAD)
    cut = enc.index(b"\n") + 1
    body = b"begin 644 x\n" + enc[:cut] + b"`\n" + enc[cut:] + b"`\nend\n"
    variants = encodings.uudecode_variants(body)
    assert variants[0] == PAYLOAD[:45]  # GNU uudecode stops at the zero-length line
    assert PAYLOAD in variants  # ClamAV and line-by-line decoders skip it


@pytest.mark.parametrize("begin", [
    b"BEGIN 755 x.bin", b"begin 644", b"begin 0999 x.bin", b"Begin  644\tx y.bin ",
])
def test_uuencode_begin_line_variants(begin: bytes) -> None:
    text = b"hello\r\n" + begin + b"\r\n" + _uu(PAYLOAD) + b"`\r\nEND\r\n"
    assert [b.data for b in encodings.embedded_files(text)] == [PAYLOAD]


def test_uuencode_base64_block() -> None:
    text = b"begin-base64 644 f.bin\n" + base64.encodebytes(PAYLOAD) + b"====\nafter\n"
    blocks = list(encodings.embedded_files(text))
    assert [(b.data, b.name) for b in blocks] == [(PAYLOAD, "f.bin")]


def test_xxencode_block() -> None:
    xx = b"+-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    body = _uu(PAYLOAD).translate(bytes.maketrans(bytes(range(32, 97)), xx + xx[:1]))
    assert body.startswith(b"h")  # a full xxencode line
    text = b"begin 644 f.bin\n" + body + b"+\nend\n"
    assert PAYLOAD in [b.data for b in encodings.embedded_files(text)]


@pytest.mark.parametrize("params", [
    b";base64", b";BASE64 ", b" ;base64", b';name="x.exe";base64', b";name=x%20y.exe;base64",
    b";x=a:b;base64", b";x=" + b"A" * 5000 + b";base64", b";x=<b>;base64", b";x=>;base64",
])
def test_a_data_uri_is_read_up_to_its_first_comma(params: bytes) -> None:
    """The media type and parameters are everything before the first comma, as a browser
    reads them: quotes, spaces, '%' and ':' included (a hostile-sender round's links)."""
    payload = bytes(range(256))
    html = (b'<a download href="data:application/octet-stream' + params + b","
            + base64.b64encode(payload) + b'">x</a>')
    assert payload in [f.data for f in encodings.smuggled_blobs(html)]


def _percent(data: bytes, literal: bytes = b"") -> bytes:
    """Every byte as %XX, but those in `literal` as they are."""
    return b"".join(bytes([c]) if c in literal else b"%%%02X" % c for c in data)


@pytest.mark.parametrize(("quote", "literal"), [
    (b'"', b" '"), (b"'", b' "'), (b'"', b" \n\t"), (b"`", b" '\""), (b"(", b" '\""),
])
def test_a_plain_data_uri_runs_to_its_closing_quote(quote: bytes, literal: bytes) -> None:
    """Percent-encoded data with literal spaces, the other quote, tabs and line breaks (Chromium
    keeps them in the data) inside a quoted attribute, a JS string or CSS url(...)."""
    payload = bytes(range(256)) * 2
    closing = {b"(": b")"}.get(quote, quote)
    html = (b"<a download href=" + quote + b"data:application/octet-stream,"
            + _percent(payload, literal) + closing + b">x</a>")
    assert payload in [f.data for f in encodings.smuggled_blobs(html)]


def test_prose_before_a_plain_data_uri_does_not_make_it_base64() -> None:
    """The first "data:" before the comma is in prose naming base64; the link's own start,
    the last before the comma, is plain: both readings are decoded."""
    payload = bytes(range(256))
    html = (b"<p>metadata: base64 <a href='data:application/octet-stream,"
            + _percent(payload) + b"'>x</a>")
    assert payload in [f.data for f in encodings.smuggled_blobs(html)]


@pytest.mark.parametrize("doc", [
    b"<p>" + b"data:x;" * 200_000 + b",%41",
    b"<p>'" + b"data:,%41" * 200_000 + b"'",
    b"<p>" + b"data:" * 200_000,
])
def test_data_uris_are_found_in_linear_time(doc: bytes) -> None:
    """Many starts before one comma, or nested in one quoted data part: each byte is read a
    bounded number of times (a quadratic reading of these took minutes)."""
    calls = 0

    def check() -> None:
        nonlocal calls
        calls += 1

    found = list(encodings.smuggled_blobs(doc, check=check))
    assert calls <= 3
    assert len(found) <= 2
