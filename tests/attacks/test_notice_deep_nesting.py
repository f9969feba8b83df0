"""A hostile server at the provider URL serves JSON nested thousands deep (`[[[[...`) on the
stream, the poll and the state endpoint, unsigned and inside a validly signed payload. Before
the fix `json.loads` raised RecursionError, which escaped `submit` and ended the stream and poll
tasks for good. Now each is refused as `too_deep` before parsing, both listeners stay up, and a
valid notice served afterwards still applies on each of them."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from notices.support import PROVIDER, MemorySink, envelope, eventually, pinned, spec
from zerohour.gateway.listeners.service import ListenerConfig, NoticeListeners
from zerohour.notices.envelope import sign

DEEP = 30_000  # far beyond Python's recursion limit (1,000), and under the 64 KiB cap


def deep(n: int = DEEP) -> bytes:
    return b"[" * n + b"]" * n


def signed_deep_payload(key: Ed25519PrivateKey) -> bytes:
    """A validly signed envelope whose payload nests too deep (only a key holder can make it)."""
    payload = (
        b'{"v":1,"provider":"' + PROVIDER.encode() + b'","seq":1,"type":"outbreak.declared",'
        b'"issued_at":"2026-01-01T00:00:00Z","expires_at":"2099-01-01T00:00:00Z","body":'
        + deep(20_000)
        + b"}"
    )
    return sign(payload, key).to_bytes()


@dataclass
class Hostile:
    key: Ed25519PrivateKey
    valid: bool = False
    envs: list[bytes] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            path = request.split(b" ", 2)[1]
            if path.startswith(b"/v1/notices/stream"):
                await self.stream(writer)
            elif path.startswith(b"/v1/notices"):
                notices = b",".join(self.envs) if self.valid else deep(100_000)
                self.answer(writer, b"application/json", b'{"notices":[' + notices + b"]}")
            elif path.startswith(b"/v1/state") and not self.valid:
                self.answer(writer, b"application/json", deep())
            else:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    @staticmethod
    def answer(writer: asyncio.StreamWriter, ctype: bytes, body: bytes) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (ctype, len(body), body)
        )

    async def stream(self, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
        )
        if not self.valid:
            writer.write(b"data: " + deep() + b"\n\n")
            writer.write(b"data: " + signed_deep_payload(self.key) + b"\n\n")
            await writer.drain()
            return  # the client reconnects (with backoff) after the stream ends
        writer.write(b"id: 1\ndata: " + self.envs[0] + b"\n\n")
        await writer.drain()
        await asyncio.sleep(3600)  # an open, idle stream until the client hangs up


@pytest.fixture
async def hostile() -> AsyncIterator[tuple[Hostile, str]]:
    h = Hostile(Ed25519PrivateKey.generate())
    server = await asyncio.start_server(h.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield h, f"http://127.0.0.1:{port}"
    server.close()
    await server.wait_closed()


async def test_deep_nesting_is_refused_and_every_listener_survives(
    hostile: tuple[Hostile, str],
) -> None:
    h, url = hostile
    sink = MemorySink()
    cfg = ListenerConfig(url, pinned(h.key), poll_interval=0.3, idle_timeout=3600)
    listeners = NoticeListeners(cfg, sink)
    listeners.stream.backoff_cap = 1.0
    await listeners.start()
    try:
        counts = listeners.verifier.counts
        await eventually(lambda: counts[("stream", "too_deep")] >= 2, timeout=60)
        await eventually(lambda: counts[("poll", "too_deep")] >= 2, timeout=60)
        assert counts[("state", "too_deep")] >= 1
        assert sink.receipts == []
        assert all(not t.done() for t in listeners._tasks)

        now = datetime.now(UTC).replace(microsecond=0)
        h.envs = [envelope(h.key, 1, spec("ob-1"), issued=now)]
        h.envs.append(envelope(h.key, 2, spec("ob-2", "Test.Worm.Two"), issued=now))
        h.valid = True
        await eventually(lambda: listeners.verifier.last_seq == 2, timeout=60)
        await eventually(
            lambda: counts[("stream", "applied")] + counts[("stream", "duplicate")] >= 1,
            timeout=60,
        )
        assert set(sink.outbreaks) == {"ob-1", "ob-2"}
        assert counts[("poll", "applied")] >= 1  # seq 2 is served by the poll only
        assert all(not t.done() for t in listeners._tasks)
        assert listeners.restarts == {}  # refused as input, not survived as a crash
    finally:
        await listeners.aclose()


def test_signed_deep_payload_is_valid_json_but_too_deep() -> None:
    env = json.loads(signed_deep_payload(Ed25519PrivateKey.generate()))
    payload = base64.b64decode(env["payload"])
    with pytest.raises(RecursionError):
        json.loads(payload)  # what the verifier used to do with it
