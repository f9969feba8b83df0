"""Mutated mail and archives never crash the engine: every outcome is a report."""

from __future__ import annotations

import base64
import io
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zerohour.scan import Engine, ScanReport, load_database

MARK = b"FUZZMARKER42"


def _seed() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.bin", b"payload " + MARK)
    b64 = base64.encodebytes(buf.getvalue()).decode()
    return (
        "From: a@example.org\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\n'
        "Content-Type: text/plain\r\n\r\nhi\r\n--B\r\nContent-Type: application/zip\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{b64}--B--\r\n"
    ).encode()


SEED = _seed()
INSERTS = [b"\r\n", b"\n", b"--B", b"=", b"PK\x03\x04", b"\x00"]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    d: Path = tmp_path_factory.mktemp("db")
    (d / "a.ndb").write_text(f"Fuzz.Mark:0:*:{MARK.hex()}\n")
    return Engine(load_database([d], use_cache=False), allmatch=True)


def test_seed_is_detected(engine: Engine) -> None:
    assert set(engine.scan_bytes(SEED).names) == {"Fuzz.Mark"}


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(SEED)
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "cut", "dup", "insert"]))
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[i : i + draw(st.integers(1, 64))]
        elif op == "dup":
            data[i:i] = data[i : i + draw(st.integers(1, 64))]
        else:
            data[i:i] = draw(st.sampled_from(INSERTS))
        if not data:
            data = bytearray(b"x")
    return bytes(data)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated())
def test_mutations_never_crash(engine: Engine, data: bytes) -> None:
    report = engine.scan_bytes(data)
    assert isinstance(report, ScanReport)
    assert not any("internal error" in e for e in report.errors), report.errors
