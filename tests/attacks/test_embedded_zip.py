"""Attack: a zip behind other bytes (a self-extractor, a polyglot, one junk byte in front).

Found by the hostile-sender review: the type sniffer saw "binary", so the zip inside was never
opened, and a deflated EICAR behind a single NUL byte was delivered, although `unzip` and
Python's zipfile both extract it. Zips are now also opened from their end record.
"""

from __future__ import annotations

import base64
import io
import os
import smtplib
import zipfile
from typing import Any

import pytest

from gateway.conftest import EICAR, Running
from zerohour.scan import Engine, default_db_dirs

PREFIXES = [
    b"\x00",
    b"some text in front\r\n",
    b"MZ" + b"\x00" * 300,
    b"\x7fELF" + b"\x01" * 100,
    b"%PDF-1.4\n",
    b"\x89PNG\r\n\x1a\n" + b"x" * 50,
]


def deflated_eicar_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("eicar.com", EICAR)
    return buf.getvalue()


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.from_dirs(default_db_dirs())


@pytest.mark.parametrize("prefix", PREFIXES, ids=lambda p: repr(p[:6]))
@pytest.mark.parametrize("suffix", [b"", b"trailing junk"], ids=["end", "junk-after"])
def test_zip_behind_other_bytes_is_opened(engine: Engine, prefix: bytes, suffix: bytes) -> None:
    blob = prefix + deflated_eicar_zip() + suffix
    with zipfile.ZipFile(io.BytesIO(blob)) as z:  # a real zip reader extracts it
        assert z.read("eicar.com") == EICAR
    assert "Eicar-Test-Signature" in engine.scan_bytes(blob).names


def test_stray_end_record_in_random_data_is_not_a_finding(engine: Engine) -> None:
    noise = os.urandom(100_000)
    report = engine.scan_bytes(noise + b"PK\x05\x06" + b"\x00" * 18 + noise)
    assert not report.infected
    assert not report.errors


async def test_prefixed_zip_is_refused_by_the_gateway(gateway: Running, sink: Any) -> None:
    b64 = base64.encodebytes(b"\x00" + deflated_eicar_zip()).decode().replace("\n", "\r\n")
    raw = (
        "From: a@evil.test\r\nTo: b@example.test\r\nSubject: sfx\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        "Content-Type: application/zip; name=e.zip\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        f"{b64}--b--\r\n"
    ).encode()
    with pytest.raises(smtplib.SMTPDataError) as err:
        await gateway.sendmail("a@evil.test", ["b@example.test"], raw)
    assert err.value.smtp_code == 554
    assert sink.messages == []
