"""Attack: VBA macro source (MS-OVBA compression) was decompressed without the bounds every
other decompression has: 24 KB of overlapping copy tokens expand to 16 MB (a 680x ratio) in a
byte-by-byte Python loop, per module, collected in memory before any limit was charged; and a
module whose source did not decompress was scanned neither as source nor as its raw stream.
Now OVBA output is bounded (clock, output bound, compression ratio per 4 KiB chunk), copies are
slices, and a module that does not decompress is `Heuristics.Broken.OLE2` with its raw stream
still scanned."""

from __future__ import annotations

import struct

import pytest

from helpers import cpu
from scan.test_archive_ole2 import build_cfb, dir_stream  # type: ignore[import-not-found]
from zerohour.errors import ScanLimitExceeded
from zerohour.scan import Engine, load_database
from zerohour.scan.database import default_db_dirs
from zerohour.scan.documents import ole2
from zerohour.scan.limits import ScanContext

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def bomb_chunk() -> bytes:
    """One compressed chunk: a literal, then overlapping copy tokens (offset 1) to 4096 bytes."""
    items: list[tuple[bool, int]] = [(False, 0x41)]
    produced = 1
    while produced < 4096:
        bitcount = max((produced - 1).bit_length(), 4) if produced > 1 else 4
        length = min((0xFFFF >> bitcount) + 3, 4096 - produced)
        if length < 3:
            items.append((False, 0x41))
            produced += 1
            continue
        items.append((True, length - 3))  # offset field 0: offset 1
        produced += length
    body = bytearray()
    for i in range(0, len(items), 8):
        flags, payload = 0, bytearray()
        for bit, (is_token, value) in enumerate(items[i : i + 8]):
            if is_token:
                flags |= 1 << bit
                payload += struct.pack("<H", value)
            else:
                payload.append(value)
        body.append(flags)
        body += payload
    return struct.pack("<H", 0x8000 | 0x3000 | (len(body) - 1)) + bytes(body)


BOMB = b"\x01" + bomb_chunk() * 4096  # ~24 KB -> 16 MiB of "A"


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_database(default_db_dirs()))


def test_ovba_copies_are_slices_and_correct() -> None:
    t0 = cpu.process_time()
    out = ole2.ovba_decompress(BOMB)
    assert cpu.process_time() - t0 < 5  # was 1.7 s of per-byte appends; slices take ms
    assert out == b"A" * (16 << 20)


def test_ovba_bomb_hits_the_compression_ratio_bound() -> None:
    with pytest.raises(ScanLimitExceeded) as exc:
        ole2.ovba_decompress(BOMB, ctx=ScanContext())
    assert exc.value.which == "CompressionRatio"


def test_document_with_a_macro_bomb_is_a_limit_finding(engine: Engine) -> None:
    doc = build_cfb({"VBA": {"dir": dir_stream(["M1", "M2"]), "M1": bytes(4096) + BOMB[:12_000],
                             "M2": bytes(4096) + BOMB[:12_000]}})
    t0 = cpu.process_time()
    report = engine.scan_bytes(doc)
    assert cpu.process_time() - t0 < 10
    assert report.names == ("Heuristics.Limits.Exceeded.CompressionRatio",), report


def test_module_that_does_not_decompress_is_broken_and_its_stream_scanned(engine: Engine) -> None:
    # The module's stream holds EICAR in clear but is not valid OVBA: it used to be skipped
    # as "VBA source" and never scanned at all.
    module = bytes(4096) + b"\x00" + EICAR  # performance cache, then no valid source
    doc = build_cfb({"VBA": {"dir": dir_stream(["Module1"]), "Module1": module},
                     "WordDocument": b"plain"})
    report = Engine(engine.db, allmatch=True).scan_bytes(doc)
    # (EICAR also sits in clear in the container itself; what matters is that the module's
    # stream is a layer of its own again, and the failure is said.)
    assert set(report.names) == {"Eicar-Test-Signature", "Heuristics.Broken.OLE2"}
    assert any(layer.path.endswith("VBA/Module1") for layer in report.layers), report.layers
