"""The delay queue (`hold.delay`): mail with a risky attachment is held for a fixed time, then
released only through a rescan with the database and outbreak state of that moment.

In process: a real `Gateway` on a real socket, SQLite store, scanner pool and aiosmtpd next hop.
The risky attachment is a zip (Python's zipfile) holding a two-section PE32 image.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from conformance.samples import make_pe
from gateway.conftest import Running, attachment_message, make_config, message, start_gateway
from zerohour import config
from zerohour.errors import ConfigError
from zerohour.gateway.decide import (
    SCAN_ERROR_NAME,
    Action,
    Decision,
    Policy,
    ScanSummary,
    decide,
)
from zerohour.gateway.delay_queue import DELAY_TAG, DelaySettings, delay
from zerohour.notices.model import OutbreakSpec, Scope
from zerohour.scan.database import starter_db_dir
from zerohour.store.base import MessageFilter, MessageRecord, MessageState

DELAY = 1.5
PE = make_pe(b"\x90" * 64 + b"zero-day delay-queue sample", b"data section")


def zipped(member: bytes, name: str = "invoice.exe") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name, member)
    return buf.getvalue()


RISKY = attachment_message("risky", zipped(PE), "invoice.zip")
SETTINGS = DelaySettings(1800.0, frozenset(config.DELAY_TYPES))


# -- the decision (pure) ---------------------------------------------------------------------


def summary(**kw: Any) -> ScanSummary:
    return ScanSummary(size=100, db_version="1", **kw)


def test_delay_holds_only_deliveries_with_a_delayed_type() -> None:
    risky = summary(has_attachment=True, categories=("archive", "executable"))
    d = delay(decide(risky, (), Policy()), risky, SETTINGS)
    assert d.action is Action.HOLD
    assert d.outbreak_ids == (DELAY_TAG,)
    assert "archive, executable" in d.reason
    pdf = summary(has_attachment=True, categories=("pdf",))
    assert delay(decide(pdf, (), Policy()), pdf, SETTINGS).action is Action.DELIVER
    text = summary()
    assert delay(decide(text, (), Policy()), text, SETTINGS).action is Action.DELIVER
    off = DelaySettings()
    assert delay(decide(risky, (), Policy()), risky, off).action is Action.DELIVER


def test_delay_never_overrides_another_decision() -> None:
    infected = summary(has_attachment=True, categories=("executable",), findings=("X.Y",))
    assert delay(decide(infected, (), Policy()), infected, SETTINGS).action is Action.REJECT
    spec = OutbreakSpec("ob-1", "Wave", scope=Scope(file_types=("executable",)))
    risky = summary(has_attachment=True, categories=("executable",))
    held = delay(decide(risky, (spec,), Policy()), risky, SETTINGS)
    assert held.outbreak_ids == ("ob-1",)  # the outbreak's hold, released by its bundle
    failed = ScanSummary.failed(100, "boom")
    policy = Policy(deliver_unscanned=True)
    kept = Decision(Action.DELIVER, "operator's choice")
    assert delay(kept, failed, SETTINGS) is kept
    assert delay(decide(failed, (), policy), failed, SETTINGS).action is Action.DELIVER


def test_delay_settings_are_validated() -> None:
    cfg = config.load(env={}, flags={"hold.delay": "1800"})
    assert cfg.hold.delay == 1800.0
    assert cfg.hold.delay_types == config.DELAY_TYPES
    env = {"ZEROHOUR_HOLD_DELAY": "600", "ZEROHOUR_HOLD_DELAY_TYPES": "pdf,office-macro"}
    assert config.load(env=env).hold.delay_types == ("pdf", "office-macro")
    assert config.load(env={}).hold.delay == 0.0  # off unless asked for
    with pytest.raises(ConfigError, match=r"shorter than hold\.max_hold"):
        config.load(env={}, flags={"hold.delay": 3600, "hold.max_hold": 3600})
    with pytest.raises(ConfigError, match=r"hold\.delay_types"):
        config.load(env={}, flags={"hold.delay": 60, "hold.delay_types": ["exe"]})
    with pytest.raises(ConfigError, match=r"hold\.delay_types"):
        config.load(env={}, flags={"hold.delay": 60, "hold.delay_types": []})
    assert DelaySettings(0.5, frozenset({"pdf"})).tick == 0.05
    assert DelaySettings(1800, frozenset({"pdf"})).tick == 1.0


# -- a running gateway -------------------------------------------------------------------------


async def _gateway_delaying(tmp_path: Path, sink: Any, seconds: float) -> Any:
    run = await start_gateway(
        make_config(tmp_path / "data", sink.address, **{"hold.delay": seconds})
    )
    try:
        yield run
    finally:
        await run.gw.stop()


@pytest.fixture
async def delayed(tmp_path: Path, sink: Any) -> Any:
    async for run in _gateway_delaying(tmp_path, sink, DELAY):
        yield run


async def record(run: Running, subject_state: MessageState) -> MessageRecord:
    store = run.gw.store
    assert store is not None
    got = await store.list_messages(MessageFilter(states=(subject_state,)))
    assert len(got) == 1, got
    return got[0]


async def until(pred: Any, limit: float = 30.0) -> Any:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        got = pred()
        if asyncio.iscoroutine(got):
            got = await got
        if got:
            return got
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def test_risky_mail_waits_then_is_rescanned_and_delivered(
    delayed: Running, sink: Any
) -> None:
    sent = time.time()
    assert await delayed.sendmail("a@sender.test", ["b@example.test"], RISKY) == {}
    assert await delayed.sendmail("a@sender.test", ["b@example.test"], message("plain")) == {}
    await until(lambda: len(sink.messages) == 1)
    assert sink.messages[0].header("Subject") == "plain"  # no risky attachment: no delay
    held = await record(delayed, MessageState.HELD)
    assert held.hold_tags == (DELAY_TAG,)
    await asyncio.sleep(DELAY / 2)
    assert len(sink.messages) == 1  # still waiting
    await until(lambda: len(sink.messages) == 2)
    assert time.time() - sent >= DELAY
    assert sink.messages[1].header("Subject") == "risky"
    store = delayed.gw.store
    assert store is not None

    async def finished() -> Any:
        # the next hop has the message a moment before the DELIVERED commit: wait for it
        got = await store.events(held.queue_id)
        return got if got and got[-1].state is MessageState.DELIVERED else None

    events = await until(finished)
    assert [e.state for e in events] == [
        MessageState.HELD, MessageState.QUEUED, MessageState.DELIVERED,
    ]  # fmt: skip
    assert events[1].actor == "delay-queue"
    assert events[1].reason.startswith("delay over; rescan with db ")
    assert events[1].at - events[0].at >= DELAY


#: A delay no database install outlasts, even on a loaded machine; the test makes it pass
#: by asking the queue what is due a moment after it (`release_due(now=...)`).
LONG_DELAY = 600.0


@pytest.fixture
async def long_delayed(tmp_path: Path, sink: Any) -> Any:
    async for run in _gateway_delaying(tmp_path, sink, LONG_DELAY):
        yield run


async def test_a_signature_installed_during_the_delay_quarantines(
    long_delayed: Running, sink: Any, tmp_path: Path
) -> None:
    """The point of a delay queue: what the database learns meanwhile catches the mail."""
    delayed = long_delayed
    assert await delayed.sendmail("a@sender.test", ["b@example.test"], RISKY) == {}
    held = await record(delayed, MessageState.HELD)
    db = tmp_path / "newdb"
    shutil.copytree(starter_db_dir(), db)
    (db / "wave.hsb").write_text(
        f"{hashlib.sha256(PE).hexdigest()}:{len(PE)}:Zerohour.Test.Delayed\n"
    )
    await delayed.gw.install_database([db])
    assert (await record(delayed, MessageState.HELD)).queue_id == held.queue_id
    await delayed.gw.delay_queue.release_due(now=time.time() + LONG_DELAY + 1)
    q = await until(lambda: record_if(delayed, MessageState.QUARANTINED))
    assert q.queue_id == held.queue_id
    assert q.findings == ("Zerohour.Test.Delayed",)
    await asyncio.sleep(0.3)
    assert sink.messages == []


async def test_an_outbreak_declared_during_the_delay_keeps_it_held(
    delayed: Running, sink: Any
) -> None:
    assert await delayed.sendmail("a@sender.test", ["b@example.test"], RISKY) == {}
    spec = OutbreakSpec("ob-late", "Late", scope=Scope(file_types=("executable",)))
    await delayed.gw.outbreaks.declare(spec)
    store = delayed.gw.store
    assert store is not None

    async def retagged() -> bool:
        rec = await record(delayed, MessageState.HELD)
        return rec.hold_tags == ("ob-late",)

    await until(retagged)
    await asyncio.sleep(DELAY)  # the delay queue does not touch it again
    assert (await record(delayed, MessageState.HELD)).hold_tags == ("ob-late",)
    assert sink.messages == []
    assert await store.held_for(DELAY_TAG) == []


class FailingScanner:
    workers = 1
    version = "failing"

    async def scan(self, data: bytes, qid: str) -> ScanSummary:
        return ScanSummary.failed(len(data), "worker killed", "failing")


async def test_a_failed_rescan_quarantines_even_with_deliver_unscanned(
    tmp_path: Path, sink: Any
) -> None:
    flags = {"hold.delay": DELAY, "scan.deliver_unscanned": True}
    run = await start_gateway(make_config(tmp_path / "data", sink.address, **flags))
    try:
        assert await run.sendmail("a@sender.test", ["b@example.test"], RISKY) == {}
        assert (await record(run, MessageState.HELD)).hold_tags == (DELAY_TAG,)
        run.gw.delay_queue.scanner = FailingScanner()
        q = await until(lambda: record_if(run, MessageState.QUARANTINED))
        assert q.findings == (SCAN_ERROR_NAME,)
        assert sink.messages == []
    finally:
        await run.gw.stop()


async def test_mail_scanned_after_the_250_is_delayed_too(tmp_path: Path, sink: Any) -> None:
    """Past the inline scan budget the decision is made by the late scan: same delay."""
    flags = {"hold.delay": DELAY, "scan.inline_budget": 0}
    run = await start_gateway(make_config(tmp_path / "data", sink.address, **flags))
    try:
        assert await run.sendmail("a@sender.test", ["b@example.test"], RISKY) == {}
        rec = await until(lambda: record_if(run, MessageState.HELD))
        assert rec.hold_tags == (DELAY_TAG,)
        await until(lambda: len(sink.messages) == 1)
    finally:
        await run.gw.stop()


async def record_if(run: Running, state: MessageState) -> MessageRecord | None:
    store = run.gw.store
    assert store is not None
    got = await store.list_messages(MessageFilter(states=(state,)))
    return got[0] if got else None


async def test_switching_the_delay_off_releases_what_waits(tmp_path: Path, sink: Any) -> None:
    """A restart with `hold.delay = 0` must not strand delayed mail until the maximum hold
    time (which quarantines): it is rescanned and released at once."""
    long_delay = {"hold.delay": 3600}
    run = await start_gateway(make_config(tmp_path / "data", sink.address, **long_delay))
    try:
        assert await run.sendmail("a@sender.test", ["b@example.test"], RISKY) == {}
        assert (await record(run, MessageState.HELD)).hold_tags == (DELAY_TAG,)
    finally:
        await run.gw.stop()
    assert sink.messages == []
    run = await start_gateway(make_config(tmp_path / "data", sink.address))
    try:
        await until(lambda: len(sink.messages) == 1)
        store = run.gw.store
        assert store is not None
        assert await store.held_for(DELAY_TAG) == []
    finally:
        await run.gw.stop()
