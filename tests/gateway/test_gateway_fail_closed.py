"""Fail-closed paths of the in-process gateway that need real parts: a verdict from an older
database is never delivered, and a message whose scan is still running is never scanned twice."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from pathlib import Path
from typing import Any

from gateway.conftest import attachment_message, make_config, start_gateway, wait_for
from zerohour.gateway.decide import ScanSummary
from zerohour.scan.database import starter_db_dir
from zerohour.store.base import MessageFilter, MessageState

SAMPLE = b"MZ\x90\x00" + b"queued before the signature " * 30


async def test_queued_mail_scanned_under_an_older_database_is_rescanned(
    tmp_path: Path, sink: Any
) -> None:
    sink.stop()  # the next hop is down: the message waits in the queue
    db = tmp_path / "db"  # the operator's --db folder, as freshclam keeps it
    shutil.copytree(starter_db_dir(), db)
    cfg = make_config(tmp_path / "d", sink.address, **{"scan.db_dirs": [str(db)]})
    run = await start_gateway(cfg)
    try:
        raw = attachment_message("queued", SAMPLE, "x.bin")
        assert await run.sendmail("a@sender.test", ["b@example.test"], raw) == {}
        store = run.gw.store
        assert store is not None
        queued = await store.list_messages(MessageFilter(states=(MessageState.QUEUED,)))
        assert len(queued) == 1
        old_version = queued[0].db_version
        sha = hashlib.sha256(SAMPLE).hexdigest()
        (db / "late.hsb").write_text(f"{sha}:{len(SAMPLE)}:Zerohour.Test.Late\n")
        new_version = await run.gw.signatures.reload("test: freshclam updated the folder")
        assert new_version != old_version
        await asyncio.to_thread(sink.start)
        await store.retry_now(None, 1e12)
        q: list[Any] = []
        for _ in range(200):
            q = await store.list_messages(MessageFilter(states=(MessageState.QUARANTINED,)))
            if q:
                break
            await asyncio.sleep(0.05)
        assert len(q) == 1
        assert q[0].findings == ("Zerohour.Test.Late",)
        assert q[0].db_version == new_version
        await asyncio.sleep(0.3)
        assert sink.messages == []
    finally:
        await run.gw.stop()


async def test_recovery_never_rescans_a_message_whose_late_scan_is_running(
    tmp_path: Path, sink: Any
) -> None:
    run = await start_gateway(
        make_config(tmp_path / "d", sink.address, **{"scan.inline_budget": 0.01})
    )
    try:
        pool = run.gw.scanner
        real_scan = pool.scan
        gate = asyncio.Event()
        calls: list[str | None] = []

        async def slow_scan(data: bytes, name: str | None = None) -> ScanSummary:
            calls.append(name)
            if len(calls) == 1:  # only the first scan waits: a second one would show at once
                await asyncio.wait_for(gate.wait(), 30)
            return await real_scan(data, name)

        pool.scan = slow_scan  # type: ignore[method-assign]
        send = asyncio.ensure_future(
            run.sendmail("a@sender.test", ["b@example.test"], attachment_message("s", b"x" * 50))
        )
        assert await send == {}  # 250 after the budget, the scan still running
        assert len(calls) == 1
        assert await run.gw.pipeline.recover() == 0  # housekeeping: nothing to rescan
        assert len(calls) == 1
        gate.set()
        got = await wait_for(lambda: sink.messages)
        assert len(got) == 1
        assert len(calls) == 1
    finally:
        await run.gw.stop()
