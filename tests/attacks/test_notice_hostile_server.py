"""A hostile (or broken) server at the provider URL cannot exhaust the gateway's memory: an
endless SSE line, an endless poll answer and an endless state document are cut off at the size
cap, counted as oversize, and change nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from notices.support import MemorySink, eventually, pinned
from zerohour.gateway.listeners.service import ListenerConfig, NoticeListeners

CHUNK = b"A" * 65536


async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer any GET with 200 and a body that never ends (until the client hangs up)."""
    try:
        request = await reader.readuntil(b"\r\n\r\n")
        ctype = b"text/event-stream" if b"/stream" in request else b"application/json"
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        prefix = b"data: " if b"/stream" in request else b'{"notices":["'
        writer.write(b"%x\r\n%s\r\n" % (len(prefix), prefix))
        while True:
            writer.write(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


@pytest.fixture
async def hostile_url() -> AsyncIterator[str]:
    server = await asyncio.start_server(endless, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.close()
    await server.wait_closed()


async def test_endless_answers_are_cut_off(hostile_url: str) -> None:
    sink = MemorySink()
    cfg = ListenerConfig(hostile_url, pinned(Ed25519PrivateKey.generate()), poll_interval=3600)
    listeners = NoticeListeners(cfg, sink)
    await listeners.start()
    try:
        counts = listeners.verifier.counts
        await eventually(lambda: counts[("stream", "oversize")] >= 1, timeout=60)
        await eventually(lambda: counts[("poll", "oversize")] >= 1, timeout=60)
        await eventually(lambda: counts[("state", "oversize")] >= 1, timeout=60)
        assert sink.receipts == []
        assert listeners.verifier.last_seq == 0
    finally:
        await listeners.aclose()
