"""New mail handed to the delivery queue in memory (`DeliveryQueue.reserve/take`).

Accepted mail is written with its queue row already leased to this gateway's delivery queue
and delivered from the record in memory: no claim reads it back. When every delivery slot is
busy it is written unleased and claimed as before; a write that fails frees its slot; mail
accepted while the queue stops gives its entry back. Real gateway on a real SQLite or
PostgreSQL store, an aiosmtpd next hop (`sink`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.conftest import Running, make_config, message, start_gateway, wait_for
from helpers.postgres import fresh_schema
from zerohour.errors import StoreError
from zerohour.gateway.decide import Action, Decision, ScanSummary
from zerohour.gateway.receive import Inbound
from zerohour.gateway.spool import new_queue_id
from zerohour.store.base import MessageFilter, MessageRecord, MessageState, QueueEntry, Recipient


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.needs_postgres)])
def store_flags(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    if request.param == "sqlite":
        yield {}
        return
    with fresh_schema() as url:
        yield {"store": url}


@pytest.fixture
async def claims(
    tmp_path: Path, sink: Any, store_flags: dict[str, Any]
) -> AsyncIterator[tuple[Running, list[str]]]:
    """A gateway whose store records every queue id a claim hands out."""
    run = await start_gateway(make_config(tmp_path / "data", sink.address, **store_flags))
    store = run.gw.store
    assert store is not None
    claimed: list[str] = []
    claim = store.claim_due_messages

    async def recording(*args: Any, **kwargs: Any) -> Any:
        got = await claim(*args, **kwargs)
        claimed.extend(e.queue_id for e, _ in got)
        return got

    store.claim_due_messages = recording  # type: ignore[method-assign]
    try:
        yield run, claimed
    finally:
        await run.gw.stop()


async def _delivered(run: Running, n: int) -> list[MessageRecord]:
    store = run.gw.store
    assert store is not None
    flt = MessageFilter(states=(MessageState.DELIVERED,))
    for _ in range(400):
        recs = await store.list_messages(flt)
        if len(recs) >= n:
            return recs
        await asyncio.sleep(0.05)
    return await store.list_messages(flt)


def _inbound(subject: str) -> Inbound:
    return Inbound("a@sender.test", ("b@example.test",), message(subject), "192.0.2.1",
                   "client.test", False, time.time())


async def test_accepted_mail_is_delivered_without_a_claim(
    claims: tuple[Running, list[str]], sink: Any
) -> None:
    run, claimed = claims
    for i in range(5):
        assert await run.sendmail("a@sender.test", ["b@example.test"], message(f"m{i}")) == {}
    assert len(await wait_for(lambda: len(sink.messages) >= 5 and sink.messages)) == 5
    recs = await _delivered(run, 5)
    assert len(recs) == 5
    assert not {r.queue_id for r in recs} & set(claimed)  # every one went over in memory
    store = run.gw.store
    assert store is not None
    for r in recs:
        assert [e.state for e in await store.events(r.queue_id)] == [
            MessageState.QUEUED, MessageState.DELIVERED]
        assert not await run.gw.bodies.exists(r.queue_id)


async def test_with_every_slot_busy_new_mail_is_claimed_and_delivered(
    claims: tuple[Running, list[str]], sink: Any
) -> None:
    run, claimed = claims
    run.gw.queue.max_inflight = 1
    sink.data_delay = 0.3  # the one slot stays busy while the others are accepted
    sends = [run.sendmail("a@sender.test", ["b@example.test"], message(f"busy{i}"))
             for i in range(4)]
    assert await asyncio.gather(*sends) == [{}] * 4
    recs = await _delivered(run, 4)
    assert len(recs) == 4
    assert len(sink.messages) == 4
    assert {r.queue_id for r in recs} & set(claimed)  # some waited in the store for a slot


async def test_a_failed_write_frees_its_slot(
    claims: tuple[Running, list[str]], sink: Any
) -> None:
    run, _ = claims
    act = run.gw.pipeline.act
    assert await run.sendmail("a@sender.test", ["b@example.test"], message("first")) == {}
    first = (await _delivered(run, 1))[0].queue_id
    summary = ScanSummary(size=10, db_version="")
    for _ in range(run.gw.queue.max_inflight + 3):  # more failures than there are slots
        with pytest.raises(StoreError):  # a queue id that exists already
            await act.admit(first, _inbound("dup"), summary, Decision(Action.DELIVER, "clean"))
    # a leaked slot per failure would leave none: the next message would wait forever
    assert await run.sendmail("a@sender.test", ["b@example.test"], message("after")) == {}
    assert len(await _delivered(run, 2)) == 2
    assert [m.header("Subject") for m in sink.messages] == ["first", "after"]


async def test_mail_taken_while_the_queue_stops_goes_back_to_the_queue(
    tmp_path: Path, sink: Any, store_flags: dict[str, Any]
) -> None:
    run = await start_gateway(make_config(tmp_path / "data", sink.address, **store_flags))
    try:
        store, queue = run.gw.store, run.gw.queue
        assert store is not None
        lease = queue.reserve()
        assert lease is not None
        assert lease[0] == queue.owner
        now = time.time()
        record = MessageRecord(new_queue_id(), "a@sender.test", (Recipient("b@example.test"),),
                               10, now, MessageState.QUEUED, updated_at=now)
        await store.add_message(record, reason="test", queue_due=now, lease=lease)
        assert await store.claim_due("someone-else", now + 1, 10, 60.0) == []  # leased
        await queue.stop()
        assert queue.reserve() is None  # a stopping queue takes nothing new
        queue.take(QueueEntry(record.queue_id, now, 0, "", *lease), record)
        await wait_for(lambda: not queue._tasks)
        # the entry is free again: the next start (or another node) delivers it at once
        got = await store.claim_due("someone-else", now + 1, 10, 60.0)
        assert [e.queue_id for e in got] == [record.queue_id]
        assert sink.messages == []
    finally:
        await run.gw.stop()


async def test_an_accept_cancelled_after_its_commit_is_still_delivered_at_once(
    claims: tuple[Running, list[str]], sink: Any
) -> None:
    # the client hangs up while the store commits: the accept is cancelled, the row is in
    # (leased to this queue). Its lease is given back, so a claim delivers it now, not in a
    # minute when the lease runs out.
    run, claimed = claims
    act, bodies = run.gw.pipeline.act, run.gw.bodies
    write = bodies.add_with_message

    async def committed_then_cancelled(*args: Any, **kwargs: Any) -> None:
        await write(*args, **kwargs)
        raise asyncio.CancelledError

    bodies.add_with_message = committed_then_cancelled  # type: ignore[method-assign]
    summary, qid = ScanSummary(size=10, db_version=""), new_queue_id()
    with pytest.raises(asyncio.CancelledError):
        await act.admit(qid, _inbound("cut"), summary, Decision(Action.DELIVER, "ok"))
    bodies.add_with_message = write  # type: ignore[method-assign]
    got = await wait_for(lambda: sink.messages, timeout=10.0)
    assert [m.header("Subject") for m in got] == ["cut"]
    assert qid in claimed


async def test_a_queued_message_rescanned_before_delivery_is_delivered_once(
    claims: tuple[Running, list[str]], sink: Any
) -> None:
    # scanned under an older database: the delivery rescans it, the rescan says deliver, and
    # this attempt goes on. The entry must stay leased to it meanwhile: a fresh due time
    # freed it for the next claim, and the message went out twice.
    run, _ = claims
    store, bodies, queue = run.gw.store, run.gw.bodies, run.gw.queue
    assert store is not None
    sink.data_delay = 0.3  # the first delivery is still in flight when the next claim runs
    now = time.time()
    data = message("stale verdict")
    old = ScanSummary(size=len(data), db_version="db-before-the-update").to_json()
    record = MessageRecord(new_queue_id(), "a@sender.test", (Recipient("b@example.test"),),
                           len(data), now, MessageState.QUEUED, verdict="clean",
                           db_version="db-before-the-update", summary=old, updated_at=now)
    await bodies.add_with_message(store, record, data, reason="queued", queue_due=now)
    queue.wake()
    assert await wait_for(lambda: sink.messages)
    await asyncio.sleep(1.5)  # several claims later
    assert len(sink.messages) == 1
    got = await store.get_message(record.queue_id)
    assert got.state is MessageState.DELIVERED
    assert got.db_version != "db-before-the-update"  # rescanned under the current one
    # and the trace header says so: the database that passed it, not the one before
    assert sink.messages[0].header("X-Zerohour-Scan") == f"clean; db={got.db_version}"
