"""Mail log lines of the paths an end-to-end test reaches only slowly: queued mail pulled back
into the hold before delivery, and the attachment-only hold's copy (its own queue id, its own
story), in process with a real socket, store, process pool and aiosmtpd next hop."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from gateway.conftest import attachment_message, make_config, message, start_gateway, wait_for
from zerohour.notices.model import OutbreakSpec, Scope
from zerohour.store.base import MessageFilter, MessageState

PAYLOAD = b"MZ\x90\x00" + b"zero-day sample body " * 40


def story(caplog: pytest.LogCaptureFixture) -> dict[str, list[str]]:
    """Mail log lines by queue id."""
    out: dict[str, list[str]] = {}
    for r in caplog.records:
        if r.name == "zerohour.mail":
            qid, _, text = r.getMessage().partition(": ")
            out.setdefault(qid, []).append(text)
    return out


async def test_pulled_into_the_hold_before_delivery(
    tmp_path: Path, sink: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="zerohour.mail")
    sink.stop()  # nothing delivers before the outbreak is declared
    run = await start_gateway(make_config(tmp_path / "d", sink.address))
    try:
        assert await run.sendmail("a@sender.test", ["b@example.test"], message("early")) == {}
        store = run.gw.store
        assert store is not None
        await run.gw.outbreaks.declare(OutbreakSpec("ob-all", "All"))
        await asyncio.to_thread(sink.start)
        await store.retry_now(None, 1e12)

        async def pulled() -> bool:
            return bool(await store.list_messages(MessageFilter(states=(MessageState.HELD,))))

        for _ in range(200):
            if await pulled():
                break
            await asyncio.sleep(0.05)
    finally:
        await run.gw.stop()
    (lines,) = story(caplog).values()
    assert lines[0].startswith("client="), lines
    assert lines[1].startswith("from=<a@sender.test>, "), lines
    # a deferred attempt may come first, if the queue ran before the outbreak was declared
    assert all("status=deferred" in x for x in lines[2:-1]), lines
    assert lines[-1] == "actor=queue, status=held (before delivery: held for outbreak ob-all)"


async def test_attachment_hold_copy_has_its_own_story(
    tmp_path: Path, sink: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="zerohour.mail")
    run = await start_gateway(
        make_config(tmp_path / "d", sink.address, **{"hold.mode": "attachments"})
    )
    try:
        await run.gw.outbreaks.declare(
            OutbreakSpec("ob-a", "Att", scope=Scope(has_attachment=True))
        )
        raw = attachment_message("report", PAYLOAD, "invoice.exe")
        assert await run.sendmail("a@sender.test", ["b@example.test"], raw) == {}
        assert await wait_for(lambda: sink.messages)
        assert await wait_for(lambda: sum(x == ["removed"] for x in [
            v[-1:] for v in story(caplog).values()
        ]))  # fmt: skip
    finally:
        await run.gw.stop()
    stories = story(caplog)
    assert len(stories) == 2, stories
    original = next(v for v in stories.values() if v[0].startswith("client="))
    copy = next(v for v in stories.values() if not v[0].startswith("client="))
    assert original[1].startswith("from=<a@sender.test>, ")
    assert original[2:] == ["status=held (held for outbreak ob-a)"], original
    assert re.fullmatch(r"from=<a@sender.test>, size=\d+, nrcpt=1, verdict=clean", copy[0]), copy
    assert "status=sent" in copy[1]
    assert copy[2:] == ["removed"], copy
