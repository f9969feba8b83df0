"""In-process gateway fixtures: a real `Gateway` on a real 127.0.0.1 socket, a real aiosmtpd
next hop (the shared `sink` fixture, in its own thread), real SQLite and spool in tmp_path.

Blocking clients (smtplib) run in threads so the gateway's event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import smtplib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from zerohour import config
from zerohour.gateway.app import Gateway

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def make_config(data_dir: Path, next_hop: str, **flags: Any) -> config.Config:
    base: dict[str, Any] = {
        "data_dir": str(data_dir),
        "spool_minfree": 0,
        "smtp.listen": "127.0.0.1:0",
        "smtp.hostname": "gw.test",
        "smtp.relay_domains": ["example.test"],
        "smtp.mynetworks": ["192.0.2.0/24"],
        "scan.workers": 1,
        "delivery.next_hop": next_hop,
        "delivery.retry_min": 0.2,
        "delivery.retry_max": 0.5,
        "delivery.poll_interval": 0.05,
        "delivery.connect_timeout": 2.0,
        "delivery.timeout": 10.0,
        "delivery.starttls": False,
    }
    base.update(flags)
    return config.load(env={}, flags=base)


@dataclass
class Running:
    gw: Gateway
    port: int

    def send(
        self, sender: str, rcpts: list[str], data: bytes
    ) -> Callable[[], dict[str, tuple[int, bytes]]]:
        port = self.port

        def go() -> dict[str, tuple[int, bytes]]:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
                return s.sendmail(sender, rcpts, data)

        return go

    async def sendmail(self, sender: str, rcpts: list[str], data: bytes) -> Any:
        return await asyncio.to_thread(self.send(sender, rcpts, data))


async def wait_for(pred: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        await asyncio.sleep(0.05)
    return pred()


async def start_gateway(cfg: config.Config) -> Running:
    gw = Gateway(cfg)
    try:
        _, port = await gw.start()
    except BaseException:
        await gw.stop()
        raise
    return Running(gw, port)


@pytest.fixture
async def gateway(tmp_path: Path, sink: Any) -> AsyncIterator[Running]:
    run = await start_gateway(make_config(tmp_path / "data", sink.address))
    try:
        yield run
    finally:
        await run.gw.stop()


def message(subject: str = "hello", body: str = "just text\r\n", extra: str = "") -> bytes:
    return (
        f"From: a@sender.test\r\nTo: b@example.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@t>\r\n{extra}\r\n{body}"
    ).encode()


def eicar_message(subject: str = "eicar") -> bytes:
    import base64

    b64 = base64.b64encode(EICAR).decode()
    return (
        f"From: a@sender.test\r\nTo: b@example.test\r\nSubject: {subject}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n"
        "--BB\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n"
        "--BB\r\nContent-Type: application/octet-stream\r\n"
        "Content-Disposition: attachment; filename=eicar.com\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--BB--\r\n"
    ).encode()


def attachment_message(subject: str, payload: bytes, filename: str = "file.bin") -> bytes:
    import base64

    b64 = base64.encodebytes(payload).decode().replace("\n", "\r\n").rstrip()
    return (
        f"From: a@sender.test\r\nTo: b@example.test\r\nSubject: {subject}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n"
        "--BB\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n"
        "--BB\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Disposition: attachment; filename={filename}\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--BB--\r\n"
    ).encode()
