"""Listener loops are supervised: an unexpected exception is logged and the loop restarts with
backoff; only cancellation ends it (issue 9, section 4, "hostile payloads")."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from zerohour.gateway.listeners.service import supervise


async def test_a_crashing_listener_is_restarted(caplog: pytest.LogCaptureFixture) -> None:
    runs = 0
    healthy = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs <= 2:
            raise RecursionError("a parser bug")
        healthy.set()
        await asyncio.sleep(3600)

    restarts: Counter[str] = Counter()
    task = asyncio.create_task(supervise("stream", flaky, restarts, backoff_base=0.01))
    await asyncio.wait_for(healthy.wait(), 10)
    assert restarts == {"stream": 2}
    assert caplog.text.count("notice.listener_crashed listener=stream") == 2
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
