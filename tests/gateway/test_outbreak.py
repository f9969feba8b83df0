"""Outbreak hold, checksum screening, pull-back from the queue, database swap and release,
in process with a real socket, store, process pool and aiosmtpd next hop."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from pathlib import Path
from typing import Any

from gateway.conftest import (
    Running,
    attachment_message,
    make_config,
    message,
    start_gateway,
    wait_for,
)
from zerohour.notices.model import Checksum, OutbreakMode, OutbreakSpec, Scope
from zerohour.scan.database import starter_db_dir
from zerohour.store.base import MessageFilter, MessageState

PAYLOAD = b"MZ\x90\x00" + b"zero-day sample body " * 40


async def held(run: Running) -> list[Any]:
    store = run.gw.store
    assert store is not None
    return await store.list_messages(MessageFilter(states=(MessageState.HELD,)))


async def test_hold_in_scope_deliver_out_of_scope_then_release(
    gateway: Running, sink: Any
) -> None:
    spec = OutbreakSpec("ob-att", "Wave", scope=Scope(has_attachment=True))
    await gateway.gw.outbreaks.declare(spec)
    assert await gateway.sendmail(
        "a@sender.test", ["b@example.test"], attachment_message("with file", PAYLOAD)
    ) == {}
    assert await gateway.sendmail("a@sender.test", ["b@example.test"], message("plain")) == {}
    got = await wait_for(lambda: sink.messages)
    assert [m.header("Subject") for m in got] == ["plain"]
    h = await held(gateway)
    assert len(h) == 1
    assert h[0].hold_tags == ("ob-att",)
    await asyncio.sleep(0.3)
    assert len(sink.messages) == 1  # still held
    # the outbreak ends: rescan with the current engine, clean -> delivered
    assert await gateway.gw.outbreaks.end("ob-att", "ended by provider")
    counts = await gateway.gw.releaser.release_outbreak("ob-att")
    assert counts == {"queued": 1}
    got = await wait_for(lambda: len(sink.messages) == 2 and sink.messages)
    assert sorted(m.header("Subject") for m in got) == ["plain", "with file"]
    store = gateway.gw.store
    assert store is not None
    events = await store.events(h[0].queue_id)
    assert [e.state for e in events][:3] == [
        MessageState.HELD, MessageState.QUEUED, MessageState.DELIVERED,
    ]
    assert "clean with db" in events[1].reason  # the version that cleared it is recorded


async def test_checksum_outbreak_quarantines_at_once(gateway: Running, sink: Any) -> None:
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    spec = OutbreakSpec(
        "ob-sum", "Sumwave", OutbreakMode.CHECKSUM, Scope.everything(),
        (Checksum("sha256", digest, len(PAYLOAD)),),
    )
    await gateway.gw.outbreaks.declare(spec)
    assert await gateway.sendmail(
        "a@sender.test", ["b@example.test"], attachment_message("bad", PAYLOAD)
    ) == {}
    store = gateway.gw.store
    assert store is not None
    q = await store.list_messages(MessageFilter(states=(MessageState.QUARANTINED,)))
    assert len(q) == 1
    assert q[0].findings == ("Outbreak.Sumwave.Checksum",)
    await asyncio.sleep(0.3)
    assert sink.messages == []


async def test_queued_mail_is_pulled_into_hold_before_delivery(
    tmp_path: Path, sink: Any
) -> None:
    sink.stop()
    run = await start_gateway(make_config(tmp_path / "d", sink.address))
    try:
        assert await run.sendmail("a@sender.test", ["b@example.test"], message("early")) == {}
        store = run.gw.store
        assert store is not None
        assert await wait_for(lambda: True)
        await run.gw.outbreaks.declare(OutbreakSpec("ob-all", "All"))
        await asyncio.to_thread(sink.start)
        await store.retry_now(None, 1e12)
        h = []
        for _ in range(200):
            h = await held(run)
            if h:
                break
            await asyncio.sleep(0.05)
        assert len(h) == 1
        assert h[0].hold_tags == ("ob-all",)
        assert sink.messages == []
    finally:
        await run.gw.stop()


async def test_new_database_release_quarantines_the_infected_and_frees_the_clean(
    tmp_path: Path, gateway: Running, sink: Any
) -> None:
    """The zero-hour story: held during the outbreak, a signature arrives, the held sample is
    quarantined with the new name and the clean held mail is delivered."""
    spec = OutbreakSpec("ob-z", "Zwave", scope=Scope(has_attachment=True))
    await gateway.gw.outbreaks.declare(spec)
    assert await gateway.sendmail(
        "a@sender.test", ["b@example.test"], attachment_message("sample", PAYLOAD, "x.exe")
    ) == {}
    assert await gateway.sendmail(
        "a@sender.test", ["b@example.test"],
        attachment_message("harmless", b"just a report\r\n" * 10, "r.txt"),
    ) == {}
    assert len(await held(gateway)) == 2
    db = tmp_path / "newdb"
    shutil.copytree(starter_db_dir(), db)
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    (db / "wave.hsb").write_text(f"{sha}:{len(PAYLOAD)}:Zerohour.Test.Zwave\n")
    version = await gateway.gw.install_database([db])
    assert version
    assert gateway.gw.outbreaks.installed_version == version
    await gateway.gw.outbreaks.end("ob-z", "covered by signatures")
    counts = await gateway.gw.releaser.release_outbreak("ob-z")
    assert counts == {"quarantined": 1, "queued": 1}
    got = await wait_for(lambda: sink.messages)
    assert [m.header("Subject") for m in got] == ["harmless"]
    store = gateway.gw.store
    assert store is not None
    q = await store.list_messages(MessageFilter(states=(MessageState.QUARANTINED,)))
    assert q[0].findings == ("Zerohour.Test.Zwave",)
    assert q[0].db_version == version


async def test_release_keeps_mail_held_by_another_active_outbreak(gateway: Running) -> None:
    await gateway.gw.outbreaks.declare(OutbreakSpec("ob-1", "One"))
    await gateway.gw.outbreaks.declare(
        OutbreakSpec("ob-2", "Two", scope=Scope(has_attachment=True))
    )
    assert await gateway.sendmail(
        "a@sender.test", ["b@example.test"], attachment_message("two", PAYLOAD)
    ) == {}
    assert (await held(gateway))[0].hold_tags == ("ob-1", "ob-2")
    await gateway.gw.outbreaks.end("ob-1", "ended")
    counts = await gateway.gw.releaser.release_outbreak("ob-1")
    assert counts == {"held": 1}
    assert (await held(gateway))[0].hold_tags == ("ob-2",)


async def test_hold_attachments_mode_delivers_a_copy_then_the_original(
    tmp_path: Path, sink: Any
) -> None:
    run = await start_gateway(
        make_config(tmp_path / "d", sink.address, **{"hold.mode": "attachments"})
    )
    try:
        await run.gw.outbreaks.declare(
            OutbreakSpec("ob-a", "Att", scope=Scope(has_attachment=True))
        )
        raw = attachment_message("report", PAYLOAD, "invoice.exe")
        assert await run.sendmail("a@sender.test", ["b@example.test"], raw) == {}
        got = await wait_for(lambda: sink.messages)
        assert len(got) == 1
        copy = got[0]
        assert copy.header("Subject") == "report"
        assert copy.header("X-Zerohour-Held-Attachments") is not None
        text = copy.data.decode()
        assert 'The attachment "invoice.exe" is held' in text
        assert "ob-a" in text
        import base64

        assert base64.b64encode(PAYLOAD[:30]).decode()[:20] not in text  # the file is gone
        h = await held(run)
        assert len(h) == 1
        assert h[0].queue_id in text  # the copy names the held original
        await run.gw.outbreaks.end("ob-a", "ended")
        assert await run.gw.releaser.release_outbreak("ob-a") == {"queued": 1}
        got = await wait_for(lambda: len(sink.messages) == 2 and sink.messages)
        original = got[1]
        assert original.header("X-Zerohour-Held-Attachments") is None
        part = [p for p in original.message.walk() if p.get_filename() == "invoice.exe"]
        assert part[0].get_payload(decode=True) == PAYLOAD
    finally:
        await run.gw.stop()
