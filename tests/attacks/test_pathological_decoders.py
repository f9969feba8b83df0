"""Attack: inputs that made a decoder super-linear, so one mail held a scanner for minutes (and
past MaxScanTime, since nothing inside the decoders looked at the clock). BinHex kept every bit
in one growing integer (a 1.6 MB block ran 375 s); 64 unterminated `=ybegin` (and uuencode
`begin`) blocks each decoded to the end of the text; a PDF with many unterminated streams
searched and copied the rest of the file per stream. Each now scans in linear time, and the
decoders call the scan's time check inside their loops. Bounds are generous: behaviour, not
benchmarks (a shared 2-core box)."""

from __future__ import annotations

import base64
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import cpu
from zerohour.errors import ScanLimitExceeded
from zerohour.scan import Engine, Limits, encodings, load_database
from zerohour.scan.database import default_db_dirs
from zerohour.scan.documents.pdf import pdf_streams
from zerohour.scan.limits import ScanContext

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
HQX_ALPHABET = b"!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr"
#: CPU seconds (not wall time: a loaded CI machine must not fail a linear decoder); the
#: quadratic decoders these tests caught took minutes, the 1.6 MB BinHex block takes ~3 s
BOUND = 10.0


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_database(default_db_dirs()))


def timed(engine: Engine, data: bytes) -> tuple[float, object]:
    t0 = cpu.process_time()
    report = engine.scan_bytes(data)
    return cpu.process_time() - t0, report


def test_binhex_block_of_1_6_mb(engine: Engine) -> None:
    rnd = random.Random(7)
    body = bytes(rnd.choice(HQX_ALPHABET) for _ in range(1_600_000))
    text = b"mail text\r\n(This file must be converted with BinHex 4.0)\r\n:" + body + b":\r\n"
    elapsed, report = timed(engine, text)
    assert elapsed < BOUND, elapsed  # was 375 s
    assert not report.errors  # type: ignore[attr-defined]


def _hqx_reference(text: bytes) -> bytes:
    """The bit-by-bit definition (masked, so it stays linear for the comparison)."""
    value = {c: i for i, c in enumerate(HQX_ALPHABET)}
    out = bytearray()
    acc = bits = 0
    for c in text:
        v = value.get(c)
        if v is None:
            continue
        acc = ((acc << 6) | v) & 0xFFFF
        bits += 6
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    return bytes(out)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.lists(st.sampled_from(list(HQX_ALPHABET + b"\r\n :"))).map(
    bytes))
def test_binhex_bits_match_the_definition(text: bytes) -> None:
    assert encodings._hqx_bits(text) == _hqx_reference(text)


def test_binhex_run_length_bomb_is_bounded() -> None:
    # Every 3 bytes ask for 254 more: the output stops at the limit, in C-sized steps.
    data = b"A" + b"\x90\xff" * 500_000
    t0 = cpu.process_time()
    out = encodings._hqx_unrle(data, 1_000_000)
    assert cpu.process_time() - t0 < BOUND
    assert 1_000_000 < len(out) <= 1_000_001


def yenc_unterminated(total: int, blocks: int = 64) -> bytes:
    rnd = random.Random(3)
    per = total // blocks
    return b"hello\r\n" + b"".join(
        b"=ybegin line=128 size=%d name=f%d.bin\r\n" % (per, i)
        + bytes(rnd.randrange(42, 126) for _ in range(per)).replace(b"=", b"a") + b"\r\n"
        for i in range(blocks)
    )


def test_64_unterminated_ybegin_blocks_decode_once(engine: Engine) -> None:
    text = yenc_unterminated(600_000)
    blocks = list(encodings.ydecode_blocks(text))
    assert len(blocks) == 64
    # Each block ends where the next begins: the decoded total is at most the text, not 32x.
    assert sum(len(b.data) for b in blocks) <= len(text)
    elapsed, _report = timed(engine, text)
    assert elapsed < BOUND, elapsed


def test_uuencode_begin_lines_without_end_decode_once(engine: Engine) -> None:
    line = b"M" + b"86)C" * 15 + b"\n"
    text = b"".join(b"begin 644 f%d\n" % i + line * 150 for i in range(64))
    text += b"xend" * 500_000  # "end" everywhere, never at a line start: each block searched
    # every one of them for its end line (64 x 500k steps in Python)
    t0 = cpu.process_time()
    blocks = list(encodings.uudecode_blocks(text))
    assert cpu.process_time() - t0 < BOUND
    assert len(blocks) == 64
    assert sum(len(b.data) for b in blocks) <= len(text)
    elapsed, _report = timed(engine, text)
    assert elapsed < BOUND, elapsed


def test_pdf_with_many_unterminated_flate_streams(engine: Engine) -> None:
    data = b"%PDF-1.4\n" + b"1 0 obj <</Filter /FlateDecode>> stream\nxx" * 50_000
    t0 = cpu.process_time()
    assert list(pdf_streams(data, ScanContext())) == []
    assert cpu.process_time() - t0 < BOUND
    elapsed, _report = timed(engine, data)
    assert elapsed < BOUND, elapsed


def test_pdf_stream_still_inflates_to_its_own_end() -> None:
    import zlib

    stream = zlib.compress(EICAR + b" in a pdf stream")
    data = (b"%PDF-1.4\n1 0 obj <</Filter /FlateDecode>>\nstream\n" + stream
            + b"\nendstream\nendobj\n" + b"2 0 obj <</Filter /FlateDecode>>\nstream\n" * 3)
    got = [c.data for c in pdf_streams(data, ScanContext())]
    assert got == [EICAR + b" in a pdf stream"]


@pytest.mark.parametrize(
    "text",
    [
        b"begin 644 a\n" + b"M" + b"!" * 60 + b"\n" * 20_000,
        b"=ybegin name=a\n" + b"=ybegin name=b\n" * 20_000,
        b"(This file must be converted with BinHex 4.0)\n:" + b"\x90\x05" * 20_000,
        b"<script>atob('" + b"A" * 100 + b"')</script>" * 20_000,
    ],
    ids=["uuencode", "yenc", "binhex", "smuggled"],
)
def test_decoders_check_the_clock_inside_their_loops(text: bytes) -> None:
    calls = 0

    def check() -> None:
        nonlocal calls
        calls += 1

    list(encodings.embedded_files(text, check))
    list(encodings.smuggled_blobs(text, True, check))
    assert calls >= 1


def test_scan_time_limit_stops_a_decoder_mid_input(engine: Engine) -> None:
    # A clock that has already run out: the first check inside the decoder raises, and the
    # engine reports the limit (a finding), never a silent partial "clean".
    ctx = ScanContext(Limits(max_scan_time=0.0), clock=iter(range(10**9)).__next__)
    with pytest.raises(ScanLimitExceeded):
        list(encodings.uudecode_blocks(b"begin 644 a\n" + b"M!!!!\n" * 10_000,
                                       check=ctx.check_time))
    slow = Engine(engine.db, Limits(max_scan_time=0.0))
    report = slow.scan_bytes(yenc_unterminated(100_000))
    assert report.names == ("Heuristics.Limits.Exceeded.MaxScanTime",)


@pytest.mark.parametrize(
    "data",
    [
        # 60k Content-Type headers (distinct values): each was compared with every other.
        b"From: a\r\n" + b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n" % i
                                  for i in range(60_000)) + b"\r\n--b1\r\nx\r\n--b1--\r\n",
        # One 2 MB header repeating boundary= 120k times (was 349 s).
        b"From: a\r\nContent-Type: multipart/mixed; "
        + b"".join(b"boundary=b%d; " % i for i in range(120_000)) + b"\r\n\r\n--b1\r\nx\r\n",
        # ... and filename= (was 41 s at a third of the size).
        b"From: a\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; "
        + b"".join(b"filename=f%d; " % i for i in range(120_000)) + b"\r\n\r\nx\r\n",
    ],
    ids=["many-content-type-headers", "repeated-boundary-param", "repeated-filename-param"],
)
def test_repeated_headers_and_parameters_are_linear(engine: Engine, data: bytes) -> None:
    elapsed, report = timed(engine, data)
    assert elapsed < BOUND, elapsed
    assert not report.errors  # type: ignore[attr-defined]


def test_payload_after_thousands_of_repeated_headers_is_found(engine: Engine) -> None:
    b64 = base64.encodebytes(EICAR)
    data = (b"From: a\r\nContent-Type: multipart/mixed; boundary=ZZ\r\n"
            + b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n" % i
                       for i in range(30_000))
            + b"\r\n--ZZ\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64 + b"--ZZ--\r\n")
    elapsed, report = timed(engine, data)
    assert elapsed < BOUND
    assert report.names == ("Eicar-Test-Signature",)  # type: ignore[attr-defined]


def test_binhex_expansion_is_bounded_by_the_scan_not_100_mib(engine: Engine) -> None:
    # A run-length bomb: 400 KB of BinHex asking for ~50 MB. Expansion stops at the scan's
    # output bound (not at a fixed 100 MiB held in memory), and the overrun is a limit finding.
    rle = b"\x05name\x00TEXTttxt\x00\x00" + (10**8).to_bytes(4, "big") + bytes(6) + b"A"
    rle += b"\x90\xff" * 200_000
    chars = base64.b64encode(rle).translate(
        bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                        HQX_ALPHABET), b"=")
    text = b"(This file must be converted with BinHex 4.0)\r\n:" + chars + b":\r\n"
    import tracemalloc

    tracemalloc.start()
    try:
        blocks = list(encodings.embedded_files(text, None, 1_000_000))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000, peak
    assert [len(b.data) for b in blocks] == [1_000_001]  # over the bound: the caller's check fires
    small = Engine(engine.db, Limits(max_file_size=1_000_000, max_scan_size=4_000_000))
    assert small.scan_bytes(text).names == ("Heuristics.Limits.Exceeded.MaxFileSize",)
