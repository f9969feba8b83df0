"""The provider server learns of an append by the appender's wake datagram, not by polling.

The server here re-reads its log only every hour (`watch_interval=3600`), so a notice that a lab
command appends from another process reaches a stream subscriber within seconds only if the
wake socket works.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import StreamingResponse

from zerohour.provider import lab as lab_ops
from zerohour.provider.log import Provider
from zerohour.provider.server import ProviderService
from zerohour.provider.wake import WakeListener, send_wake, wake_address

pytestmark = pytest.mark.skipif(wake_address(Path(".")) is None, reason="Linux only")


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[ProviderService]:
    svc = ProviderService(tmp_path / "provider", watch_interval=3600.0)
    await svc.start()
    try:
        yield svc
    finally:
        await svc.aclose()


def stream_request(after: int = 0) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/v1/notices/stream",
            "query_string": f"after={after}".encode(),
            "headers": [],
        }
    )


async def next_event(events: AsyncIterator[bytes | str | memoryview], limit: float) -> bytes:
    chunk = await asyncio.wait_for(anext(events), limit)
    if isinstance(chunk, str):
        return chunk.encode()
    return bytes(chunk)


async def test_append_in_another_process_wakes_the_stream(
    service: ProviderService, tmp_path: Path
) -> None:
    resp = await service.stream(stream_request())
    assert isinstance(resp, StreamingResponse)
    events = resp.body_iterator
    assert (await next_event(events, 5)).startswith(b": zerohour")
    waiting = asyncio.ensure_future(next_event(events, 60))
    await asyncio.sleep(0.1)
    assert not waiting.done()  # nothing appended yet: the stream is parked
    declare = [
        sys.executable, "-m", "zerohour", "provider", "outbreak", "declare",
        "--data-dir", str(tmp_path / "provider"), "--name", "Wake.Worm",
    ]  # fmt: skip
    done = await asyncio.to_thread(subprocess.run, declare, capture_output=True, check=True)
    appended = time.monotonic()  # the CLI exits after its commit (and its wake)
    assert done.returncode == 0
    event = await waiting
    took = time.monotonic() - appended
    assert event.startswith(b"id: 1\n")
    assert b"data: " in event
    # an hour-long watch interval: only the wake can explain a delivery within seconds
    assert took < 10, took
    assert service.waker.wakes >= 1
    await events.aclose()  # type: ignore[attr-defined]


async def test_every_append_wakes_in_order(service: ProviderService, tmp_path: Path) -> None:
    """Appends in quick succession (coalesced wakes) all reach the stream, in seq order."""
    resp = await service.stream(stream_request())
    assert isinstance(resp, StreamingResponse)
    events = resp.body_iterator
    await next_event(events, 5)
    first = asyncio.ensure_future(next_event(events, 10))
    await asyncio.sleep(0.1)  # the stream is parked, waiting for the log to move
    lab = Provider(tmp_path / "provider", create=False)
    try:
        for i in range(5):
            lab_ops.declare(lab, name=f"Burst.{i}")
    finally:
        lab.close()
    seqs = []
    for _ in range(5):
        event = await first if not seqs else await next_event(events, 10)
        seqs.append(int(event.split(b"\n", 1)[0].removeprefix(b"id: ")))
    assert seqs == [1, 2, 3, 4, 5]
    await events.aclose()  # type: ignore[attr-defined]


def test_no_server_no_wake(tmp_path: Path) -> None:
    """An append with no server running still commits; the wake simply finds nobody."""
    assert send_wake(tmp_path / "nobody") is False
    p = Provider(tmp_path / "provider")
    try:
        seq, _ = lab_ops.declare(p, name="Nobody.Listens")
        assert seq == 1
        assert p.head() == 1
    finally:
        p.close()


async def test_second_server_on_one_folder_falls_back(
    service: ProviderService, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Only one listener can own a folder's wake socket; a second one says so and relies on
    re-reading the log, while the first keeps receiving wakes."""
    calls: list[int] = []
    second = WakeListener(tmp_path / "provider", lambda: calls.append(1))
    assert second.start() is False
    assert "provider.wake_unavailable" in caplog.text
    before = service.waker.wakes
    assert send_wake(tmp_path / "provider") is True
    for _ in range(100):
        if service.waker.wakes > before:
            break
        await asyncio.sleep(0.01)
    assert service.waker.wakes > before
    assert calls == []
    second.close()
