"""Attack: a long line that becomes an attachment only when it is folded for the next hop.

The gateway used to fold lines over 998 octets in the delivery step, after the scan. A line
holding `--boundary`, a part header and `Content-Transfer-Encoding: base64` at 998-byte offsets
was plain text to the scanner and a real EICAR attachment to the next hop. Now the bytes we
deliver are the bytes we scan: folding happens before the scan, lines over
`smtp.max_line_length` are refused at receipt.
"""

from __future__ import annotations

import asyncio
import base64
import smtplib
from pathlib import Path
from typing import Any

import pytest

from gateway.conftest import (
    EICAR,
    Running,
    make_config,
    message,
    start_gateway,
    wait_for,
)
from zerohour.gateway.decide import ScanSummary

LIMIT = 998


def _pad(text: str) -> str:
    assert len(text) <= LIMIT
    return text + " " * (LIMIT - len(text))


def folding_smuggler() -> bytes:
    """One text part whose single long line folds into a new part carrying EICAR."""
    line = (
        _pad("harmless text")
        + _pad("--BB")
        + _pad("Content-Type: application/octet-stream; name=eicar.com")
        + "Content-Transfer-Encoding: base64"
    )
    b64 = base64.b64encode(EICAR).decode()
    return (
        "From: a@sender.test\r\nTo: b@example.test\r\nSubject: fold\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n"
        "--BB\r\nContent-Type: text/plain\r\n\r\n"
        f"{line}\r\n\r\n{b64}\r\n--BB--\r\n"
    ).encode()


async def test_folding_smuggler_is_refused_at_receipt(gateway: Running, sink: Any) -> None:
    """With the default `smtp.max_line_length` (2048) the crafted line never gets in."""
    with pytest.raises(smtplib.SMTPDataError) as err:
        await gateway.sendmail("a@sender.test", ["b@example.test"], folding_smuggler())
    assert err.value.smtp_code == 552
    await asyncio.sleep(0.3)
    assert sink.messages == []


async def test_folding_smuggler_is_found_when_long_lines_are_allowed(
    tmp_path: Path, sink: Any
) -> None:
    """An operator who allows longer lines: folding happens before the scan, so the scanner
    sees the attachment the next hop would see."""
    run = await start_gateway(
        make_config(tmp_path / "d", sink.address, **{"smtp.max_line_length": 8192})
    )
    try:
        with pytest.raises(smtplib.SMTPDataError) as err:
            await run.sendmail("a@sender.test", ["b@example.test"], folding_smuggler())
        assert err.value.smtp_code == 554
        assert b"Eicar" in err.value.smtp_error
        await asyncio.sleep(0.3)
        assert sink.messages == []
    finally:
        await run.gw.stop()


async def test_two_megabyte_single_line_is_refused(gateway: Running) -> None:
    raw = message("one line", "x" * 2_000_000 + "\r\n")
    with pytest.raises(smtplib.SMTPDataError) as err:
        await gateway.sendmail("a@sender.test", ["b@example.test"], raw)
    assert err.value.smtp_code == 552


async def test_delivered_bytes_are_the_scanned_bytes(gateway: Running, sink: Any) -> None:
    """Record what the scanner saw and compare it with what the next hop received."""
    scanned: list[bytes] = []
    pool = gateway.gw.scanner
    real_scan = pool.scan

    async def recording_scan(data: bytes, name: str | None = None) -> ScanSummary:
        scanned.append(data)
        return await real_scan(data, name)

    pool.scan = recording_scan  # type: ignore[method-assign]
    long_header = "X-Long: " + "h" * 1500
    raw = message("bytes", "b" * 1900 + "\r\nshort\r\n", extra=long_header + "\r\n")
    assert await gateway.sendmail("a@sender.test", ["b@example.test"], raw) == {}
    got = await wait_for(lambda: sink.messages)
    assert len(scanned) == 1
    delivered = got[0].data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    trace, _, rest = delivered.partition(b"\r\n")
    assert trace.startswith(b"X-Zerohour-Scan: clean; db=")
    assert rest == scanned[0]
    assert max(len(x) for x in rest.split(b"\r\n")) <= LIMIT
