"""Admin fixtures: a real in-process `Gateway` (SMTP on 127.0.0.1, real SQLite, spool, scanner
process, aiosmtpd next hop) with the admin app served by uvicorn on an ephemeral port.

Mail is held by declaring an outbreak through the gateway's own `OutbreakState` and sending over
SMTP, so every message in these tests took the real path.
"""

from __future__ import annotations

import asyncio
import smtplib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from zerohour import config
from zerohour.admin.auth import Role
from zerohour.admin.server import AdminServer
from zerohour.gateway.app import Gateway
from zerohour.notices.model import OutbreakSpec, Scope
from zerohour.store.base import MessageFilter, MessageState

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
        "scan.infected": "quarantine",
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


def message(subject: str = "hello", body: str = "just text\r\n", sender: str = "a@sender.test",
            rcpt: str = "b@example.test") -> bytes:
    return (
        f"From: {sender}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@t>\r\n\r\n{body}"
    ).encode()


def attachment_message(subject: str, payload: bytes, filename: str = "file.bin",
                       html: str = "") -> bytes:
    import base64

    b64 = base64.b64encode(payload).decode()
    html_part = (
        f"--BB\r\nContent-Type: text/html\r\n\r\n{html}\r\n" if html else ""
    )
    return (
        f"From: a@sender.test\r\nTo: b@example.test\r\nSubject: {subject}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n"
        "--BB\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n"
        f"{html_part}"
        "--BB\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Disposition: attachment; filename={filename}\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--BB--\r\n"
    ).encode()


async def wait_for(pred: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.05)
    value = pred()
    return (await value) if asyncio.iscoroutine(value) else value


@dataclass
class AdminEnv:
    gw: Gateway
    smtp_port: int
    admin: AdminServer
    admin_token: str
    read_token: str
    sink: Any

    @property
    def url(self) -> str:
        return self.admin.url

    @property
    def store(self) -> Any:
        assert self.gw.store is not None
        return self.gw.store

    async def sendmail(self, data: bytes, sender: str = "a@sender.test",
                       rcpts: tuple[str, ...] = ("b@example.test",)) -> Any:
        port = self.smtp_port

        def go() -> Any:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
                return s.sendmail(sender, list(rcpts), data)

        return await asyncio.to_thread(go)

    async def declare(self, outbreak_id: str = "ob-1", name: str = "Fast.Worm",
                      scope: Scope | None = None) -> OutbreakSpec:
        spec = OutbreakSpec(outbreak_id, name, scope=scope or Scope.everything())
        await self.gw.outbreaks.declare(spec)
        return spec

    async def held_ids(self, n: int, state: MessageState = MessageState.HELD) -> list[str]:
        async def ids() -> list[str]:
            recs = await self.store.list_messages(MessageFilter(states=(state,)))
            return [r.queue_id for r in recs] if len(recs) >= n else []

        got: list[str] = await wait_for(ids)
        assert len(got) >= n, f"expected {n} {state} messages"
        return got

    def client(self, token: str | None = None, **kw: Any) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30, **kw)


@pytest.fixture
async def admin_env(tmp_path: Path, sink: Any) -> AsyncIterator[AdminEnv]:
    cfg = make_config(tmp_path / "data", sink.address)
    gw = Gateway(cfg)
    try:
        _, port = await gw.start()
        server = AdminServer.for_gateway(gw, "127.0.0.1:0")
        await server.start()
    except BaseException:
        await gw.stop()
        raise
    try:
        admin_token, _ = server.ctx.auth.create_token(Role.ADMIN, "alice")
        read_token, _ = server.ctx.auth.create_token(Role.READ, "rita")
        yield AdminEnv(gw, port, server, admin_token, read_token, sink)
    finally:
        await server.stop()
        await gw.stop()
