"""The `Store` contract, run against every backend (the `opener` fixture in conftest.py: SQLite
and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from zerohour.errors import NotFoundError, StoreError
from zerohour.notices.model import OutbreakSpec, Scope
from zerohour.store.base import (
    MessageFilter,
    MessageRecord,
    MessageState,
    NoticeLogEntry,
    Page,
    Recipient,
    RecipientStatus,
    Store,
)

Opener = Callable[[], Awaitable[Store]]


@pytest.fixture
async def store(opener: Opener) -> AsyncIterator[Store]:
    s = await opener()
    try:
        yield s
    finally:
        await s.aclose()


def rec(
    qid: str,
    state: MessageState = MessageState.QUEUED,
    *,
    sender: str = "a@x.test",
    rcpts: tuple[str, ...] = ("b@example.test",),
    size: int = 100,
    at: float = 1000.0,
    tags: tuple[str, ...] = (),
) -> MessageRecord:
    return MessageRecord(
        queue_id=qid,
        sender=sender,
        recipients=tuple(Recipient(r) for r in rcpts),
        size=size,
        received_at=at,
        state=state,
        summary={"size": size, "db_version": "v1"},
        hold_tags=tags,
    )


async def test_add_get_roundtrip(store: Store) -> None:
    r = rec("A1", rcpts=("b@example.test", "c@example.test"), tags=("ob1",))
    await store.add_message(r, reason="clean", queue_due=5.0)
    got = await store.get_message("A1")
    assert got.sender == "a@x.test"
    assert [x.address for x in got.recipients] == ["b@example.test", "c@example.test"]
    assert got.summary == {"size": 100, "db_version": "v1"}
    assert got.hold_tags == ("ob1",)
    assert got.state is MessageState.QUEUED
    entry = await store.queue_entry("A1")
    assert entry is not None
    assert entry.due == 5.0
    assert entry.attempts == 0


async def test_unknown_message_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        await store.get_message("NOPE")


async def test_duplicate_queue_id_refused(store: Store) -> None:
    await store.add_message(rec("D1"), reason="x")
    with pytest.raises(StoreError):
        await store.add_message(rec("D1"), reason="x")


async def test_transition_records_audit_trail_and_expect(store: Store) -> None:
    await store.add_message(rec("T1", MessageState.RECEIVED), reason="accepted", actor="smtp")
    out = await store.transition(
        "T1",
        MessageState.HELD,
        reason="held for ob1",
        actor="scanner",
        expect=(MessageState.RECEIVED,),
        verdict="clean",
        hold_tags=("ob1", "ob2"),
    )
    assert out.state is MessageState.HELD
    assert out.hold_tags == ("ob1", "ob2")
    assert out.verdict == "clean"
    with pytest.raises(StoreError):
        await store.transition(
            "T1", MessageState.QUEUED, reason="x", actor="y", expect=(MessageState.RECEIVED,)
        )
    events = await store.events("T1")
    assert [(e.state, e.reason, e.actor) for e in events] == [
        (MessageState.RECEIVED, "accepted", "smtp"),
        (MessageState.HELD, "held for ob1", "scanner"),
    ]
    assert await store.held_for("ob2") == ["T1"]
    await store.transition("T1", MessageState.QUEUED, reason="released", actor="admin",
                           hold_tags=(), queue_due=10.0)
    assert await store.held_for("ob2") == []
    assert (await store.queue_entry("T1")) is not None
    await store.transition("T1", MessageState.DELIVERED, reason="ok", actor="queue",
                           queue_due=None)
    assert (await store.queue_entry("T1")) is None


async def test_filters_and_paging(store: Store) -> None:
    for i in range(7):
        await store.add_message(
            rec(
                f"F{i}",
                MessageState.HELD if i % 2 else MessageState.QUARANTINED,
                sender=f"user{i}@Sender.test",
                size=100 * i,
                at=1000.0 + i,
                tags=("obX",) if i in (1, 3) else (),
            ),
            reason="x",
        )
    held = await store.list_messages(MessageFilter(states=(MessageState.HELD,)))
    assert [r.queue_id for r in held] == ["F5", "F3", "F1"]  # newest first
    assert await store.count_messages(MessageFilter(states=(MessageState.HELD,))) == 3
    by_ob = await store.list_messages(MessageFilter(outbreak_id="obX"))
    assert {r.queue_id for r in by_ob} == {"F1", "F3"}
    by_sender = await store.list_messages(MessageFilter(sender="USER4@"))
    assert [r.queue_id for r in by_sender] == ["F4"]
    sized = await store.list_messages(MessageFilter(min_size=200, max_size=400))
    assert {r.queue_id for r in sized} == {"F2", "F3", "F4"}
    old = await store.list_messages(MessageFilter(received_before=1002.0))
    assert {r.queue_id for r in old} == {"F0", "F1"}
    page1 = await store.list_messages(page=Page(limit=3, offset=0))
    page2 = await store.list_messages(page=Page(limit=3, offset=3))
    page3 = await store.list_messages(page=Page(limit=3, offset=6))
    ids = [r.queue_id for r in page1 + page2 + page3]
    assert ids == [f"F{i}" for i in range(6, -1, -1)]
    by_rcpt = await store.list_messages(MessageFilter(recipient="nobody"))
    assert by_rcpt == []
    counts = await store.count_by_state()
    assert counts[MessageState.HELD] == 3
    assert counts[MessageState.QUARANTINED] == 4


async def test_claim_due_leases_and_defer(store: Store) -> None:
    for i in range(3):
        await store.add_message(rec(f"Q{i}"), reason="x", queue_due=100.0 + i)
    await store.add_message(rec("Qlate"), reason="x", queue_due=10_000.0)
    first = await store.claim_due("node1", now=200.0, limit=2, lease=30.0)
    assert [e.queue_id for e in first] == ["Q0", "Q1"]
    assert all(e.lease_owner == "node1" for e in first)
    second = await store.claim_due("node2", now=200.0, limit=10, lease=30.0)
    assert [e.queue_id for e in second] == ["Q2"]  # leased ones are skipped
    # an expired lease is taken over
    third = await store.claim_due("node2", now=300.0, limit=10, lease=30.0)
    assert {e.queue_id for e in third} == {"Q0", "Q1", "Q2"}
    await store.defer("Q0", due=500.0, error="421 busy")
    entry = await store.queue_entry("Q0")
    assert entry is not None
    assert (entry.attempts, entry.last_error, entry.lease_owner) == (1, "421 busy", "")
    assert await store.retry_now("Q0", now=301.0) == 1
    assert (await store.claim_due("n3", now=301.0, limit=10, lease=1.0))[0].queue_id == "Q0"


async def test_claim_due_messages_reads_each_message_with_its_lease(store: Store) -> None:
    """One store call for the delivery loop: the leases of `claim_due`, and each message as
    `get_message` reads it."""
    await store.add_message(rec("C0", rcpts=("a@e.test", "b@e.test"), tags=("ob1",)),
                            reason="x", queue_due=100.0)
    await store.add_message(rec("C1"), reason="x", queue_due=101.0)
    await store.add_message(rec("Clate"), reason="x", queue_due=10_000.0)
    claimed = await store.claim_due_messages("node1", now=200.0, limit=10, lease=30.0)
    assert [e.queue_id for e, _ in claimed] == ["C0", "C1"]
    assert all(e.lease_owner == "node1" and e.lease_expiry == 230.0 for e, _ in claimed)
    assert [r for _, r in claimed] == [await store.get_message("C0"),
                                       await store.get_message("C1")]
    assert await store.claim_due_messages("node2", now=200.0, limit=10, lease=30.0) == []
    assert [e.queue_id for e in await store.claim_due("node2", 300.0, 10, 30.0)] == ["C0", "C1"]


async def test_recipient_status(store: Store) -> None:
    await store.add_message(rec("R1", rcpts=("a@e.test", "b@e.test")), reason="x")
    await store.set_recipients("R1", {"a@e.test": (RecipientStatus.DELIVERED, "250 ok")})
    got = await store.get_message("R1")
    assert got.pending_recipients == ("b@e.test",)
    assert got.recipients[0].last_error == "250 ok"


async def test_several_recipients_set_in_one_call(store: Store) -> None:
    await store.add_message(rec("R2", rcpts=("a@e.test", "b@e.test", "c@e.test")), reason="x")
    await store.set_recipients(
        "R2",
        {
            "c@e.test": (RecipientStatus.BOUNCED, "550 no such user"),
            "a@e.test": (RecipientStatus.DELIVERED, "250 ok"),
            "nobody@e.test": (RecipientStatus.DELIVERED, "not a recipient: ignored"),
        },
    )
    got = await store.get_message("R2")
    assert [(r.address, r.status, r.last_error) for r in got.recipients] == [
        ("a@e.test", RecipientStatus.DELIVERED, "250 ok"),
        ("b@e.test", RecipientStatus.PENDING, ""),
        ("c@e.test", RecipientStatus.BOUNCED, "550 no such user"),
    ]


async def test_transition_sets_recipients_in_the_same_commit(store: Store) -> None:
    await store.add_message(
        rec("R3", MessageState.QUEUED, rcpts=("a@e.test", "b@e.test")), reason="x",
        queue_due=1.0,
    )
    results = {
        "b@e.test": (RecipientStatus.DELIVERED, "250 2.0.0 queued as B"),
        "a@e.test": (RecipientStatus.DELIVERED, "250 ok"),
        "nobody@e.test": (RecipientStatus.DELIVERED, "not a recipient: ignored"),
    }
    out = await store.transition(
        "R3", MessageState.DELIVERED, reason="2/2 recipients delivered", actor="queue",
        expect=(MessageState.QUEUED,), queue_due=None, recipients=results,
    )
    want = [
        ("a@e.test", RecipientStatus.DELIVERED, "250 ok"),
        ("b@e.test", RecipientStatus.DELIVERED, "250 2.0.0 queued as B"),
    ]
    got = await store.get_message("R3")
    assert [(r.address, r.status, r.last_error) for r in got.recipients] == want
    assert [(r.address, r.status, r.last_error) for r in out.recipients] == want
    assert got.state is MessageState.DELIVERED
    assert await store.queue_entry("R3") is None
    # a refused transition (lost race) changes no recipient either
    await store.add_message(rec("R4", MessageState.HELD, rcpts=("a@e.test",)), reason="x")
    with pytest.raises(StoreError):
        await store.transition(
            "R4", MessageState.DELIVERED, reason="r", actor="queue",
            expect=(MessageState.QUEUED,), recipients={"a@e.test": (RecipientStatus.DELIVERED, "")},
        )
    assert (await store.get_message("R4")).recipients[0].status is RecipientStatus.PENDING


async def test_addresses_and_tags_with_quotes_braces_and_backslashes_round_trip(
    store: Store,
) -> None:
    # SMTP allows quoted local parts: '"a,b"@x', '"{q}"@x', '"back\\slash"@x' (PostgreSQL
    # gets these lists as text[] literals: nothing may split, unquote or unescape them)
    odd = ('"a,b"@e.test', '"{q}"@e.test', '"back\\slash \\"quoted\\""@e.test',
           "NULL", "", "sp ace@e.test")
    tags = ('ob"1', "ob{2}", "ob\\3")
    await store.add_message(rec("Q1", MessageState.HELD, rcpts=odd, tags=tags), reason="x")
    got = await store.get_message("Q1")
    assert tuple(r.address for r in got.recipients) == odd
    assert got.hold_tags == tuple(sorted(tags))
    out = await store.transition(
        "Q1", MessageState.QUEUED, reason="r", actor="a", expect=(MessageState.HELD,),
        hold_tags=('ob"1', "ob,new"), queue_due=1.0,
        recipients={odd[2]: (RecipientStatus.DEFERRED, '451 "busy", {later} \\ try')},
    )
    assert out.hold_tags == ('ob"1', "ob,new")
    got = await store.get_message("Q1")
    assert got.hold_tags == ('ob"1', "ob,new")
    assert got.recipients[2] == Recipient(odd[2], RecipientStatus.DEFERRED,
                                          '451 "busy", {later} \\ try')
    assert [r.status for r in got.recipients].count(RecipientStatus.PENDING) == 5


async def test_hold_tags_are_replaced_keeping_the_overlap(store: Store) -> None:
    await store.add_message(rec("H1", MessageState.HELD, tags=("ob1", "ob2")), reason="held")
    out = await store.transition(
        "H1", MessageState.HELD, reason="re-held", actor="admin", hold_tags=("ob3", "ob2", "ob3")
    )
    assert out.hold_tags == ("ob2", "ob3")
    assert (await store.get_message("H1")).hold_tags == ("ob2", "ob3")
    assert await store.held_for("ob1") == []
    assert await store.held_for("ob2") == ["H1"]
    assert await store.held_for("ob3") == ["H1"]


async def test_requeue_resets_the_lease(store: Store) -> None:
    await store.add_message(rec("Q9"), reason="x", queue_due=0.0)
    assert [e.queue_id for e in await store.claim_due("n1", 10.0, 10, 60.0)] == ["Q9"]
    await store.transition("Q9", MessageState.QUEUED, reason="retry", actor="admin",
                           queue_due=50.0)
    entry = await store.queue_entry("Q9")
    assert entry is not None
    assert (entry.due, entry.lease_owner, entry.lease_expiry) == (50.0, "", 0.0)


async def test_refused_transition_changes_nothing(store: Store) -> None:
    await store.add_message(rec("N1", MessageState.HELD, tags=("ob1",)), reason="held")
    with pytest.raises(StoreError):
        await store.transition(
            "N1", MessageState.QUEUED, reason="x", actor="y",
            expect=(MessageState.RECEIVED,), hold_tags=(), queue_due=1.0, verdict="clean",
        )  # fmt: skip
    got = await store.get_message("N1")
    assert (got.state, got.hold_tags, got.verdict) == (MessageState.HELD, ("ob1",), "")
    assert await store.queue_entry("N1") is None
    assert [e.reason for e in await store.events("N1")] == ["held"]
    with pytest.raises(NotFoundError):
        await store.transition("nope", MessageState.QUEUED, reason="x", actor="y")


async def test_outbreaks_and_seq_and_meta(store: Store) -> None:
    spec = OutbreakSpec("ob-1", "Wave", scope=Scope(has_attachment=True))
    await store.save_outbreak(spec, 10.0)
    active = await store.outbreaks()
    assert [o.spec for o in active] == [spec]
    await store.end_outbreak("ob-1", "covered", 20.0)
    assert await store.outbreaks() == []
    ended = await store.outbreaks(active_only=False)
    assert ended[0].end_reason == "covered"
    assert ended[0].ended_at == 20.0
    with pytest.raises(NotFoundError):
        await store.end_outbreak("ob-unknown", "x", 1.0)
    assert await store.get_seq("prov") == 0
    await store.set_seq("prov", 42)
    assert await store.get_seq("prov") == 42
    assert await store.get_meta("k") is None
    await store.set_meta("k", "v")
    assert await store.get_meta("k") == "v"
    await store.log_notice(NoticeLogEntry("prov", 42, "outbreak.declared", "udp", "applied", 1.0))
    log = await store.notice_log()
    assert log[0].seq == 42
    assert log[0].transport == "udp"


async def test_transaction_commits_together_or_not_at_all(store: Store) -> None:
    spec = OutbreakSpec("ob-2", "Tx")

    async def crash() -> None:
        async with store.transaction():
            await store.save_outbreak(spec, 1.0)
            await store.set_seq("prov", 7)
            raise RuntimeError("crash between the two")

    with pytest.raises(RuntimeError):
        await crash()
    assert await store.outbreaks() == []
    assert await store.get_seq("prov") == 0
    async with store.transaction():
        await store.save_outbreak(spec, 1.0)
        await store.set_seq("prov", 7)
    assert len(await store.outbreaks()) == 1
    assert await store.get_seq("prov") == 7


async def test_concurrent_writers_do_not_interleave_a_transaction(store: Store) -> None:
    async def other() -> None:
        await store.set_meta("other", "1")

    async with store.transaction():
        await store.set_seq("p", 1)
        task = asyncio.create_task(other())
        await asyncio.sleep(0.05)
        assert not task.done()  # waits for the unit of work
    await task
    assert await store.get_meta("other") == "1"


async def test_a_failing_write_among_concurrent_ones_fails_alone(store: Store) -> None:
    """Writes that arrive together share a commit (SQLite's group commit); one that fails
    (a duplicate id, a transition from the wrong state) fails alone: the others commit, and
    it leaves no trace of its own."""
    await store.add_message(rec("D0"), reason="first")
    ok = [store.add_message(rec(f"D{i}"), reason="ok", queue_due=1.0) for i in range(1, 8)]
    bad_dup = store.add_message(rec("D0", rcpts=("x@example.test",)), reason="dup")
    bad_state = store.transition("D0", MessageState.DELIVERED, reason="no", actor="t",
                                 expect=(MessageState.HELD,), queue_due=None)
    results = await asyncio.gather(*ok[:4], bad_dup, *ok[4:], bad_state,
                                   return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(failed) == 2
    assert all(isinstance(r, StoreError) for r in failed)
    for i in range(1, 8):
        assert (await store.get_message(f"D{i}")).state is MessageState.QUEUED
    d0 = await store.get_message("D0")
    assert d0.state is MessageState.QUEUED
    assert [r.address for r in d0.recipients] == ["b@example.test"]
    assert [e.reason for e in await store.events("D0")] == ["first"]


async def test_data_survives_reopen(opener: Opener) -> None:
    s = await opener()
    await s.add_message(rec("P1", MessageState.RECEIVED), reason="x")
    await s.aclose()
    s2 = await opener()
    try:
        assert (await s2.get_message("P1")).state is MessageState.RECEIVED
        assert await s2.ids_in_state((MessageState.RECEIVED,)) == ["P1"]
    finally:
        await s2.aclose()


async def test_release_leases_of_one_owner(store: Store) -> None:
    """A dead SMTP worker's leases go back at once; another live owner keeps its own."""
    for qid in ("L1", "L2", "L3"):
        await store.add_message(rec(qid), reason="x", queue_due=0.0)
    assert len(await store.claim_due("host:111", 10.0, 2, 600.0)) == 2
    assert len(await store.claim_due("host:222", 10.0, 5, 600.0)) == 1
    assert await store.release_leases_of("host:111") == 2
    again = await store.claim_due("host:333", 20.0, 5, 600.0)
    assert len(again) == 2  # the dead owner's two, not the live owner's one
    assert await store.release_leases_of("host:111") == 0
