"""PostgresStore beyond the shared contract: what a cluster of nodes on one database relies on
(disjoint claims, lease take-over, row-locked transitions, isolation, one migration at a time,
bodies committed with their row)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import psycopg
import pytest

from zerohour.errors import NotFoundError, StoreError
from zerohour.store.base import MessageRecord, MessageState, Page, Recipient, RecipientStatus
from zerohour.store.bodies import PostgresBodies
from zerohour.store.postgres import PostgresStore, postgres_migrations

pytestmark = pytest.mark.needs_postgres


def rec(qid: str, state: MessageState = MessageState.QUEUED) -> MessageRecord:
    return MessageRecord(
        queue_id=qid,
        sender="a@x.test",
        recipients=(Recipient("b@example.test"),),
        size=10,
        received_at=1000.0,
        state=state,
    )


@pytest.fixture
async def two(pg_url: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    a = await PostgresStore.open(pg_url, max_size=4)
    b = await PostgresStore.open(pg_url, max_size=4)
    try:
        yield a, b
    finally:
        await a.aclose()
        await b.aclose()


async def test_two_nodes_never_claim_the_same_entry(
    two: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = two
    n = 200
    for i in range(n):
        await a.add_message(rec(f"C{i:04d}"), reason="x", queue_due=float(i))
    claimed: dict[str, list[str]] = {"a": [], "b": []}

    async def worker(name: str, store: PostgresStore) -> None:
        # several concurrent claimers per node, small batches: maximal contention
        while True:
            got = await store.claim_due(name, now=10_000.0, limit=3, lease=300.0)
            if not got:
                return
            claimed[name].extend(e.queue_id for e in got)

    await asyncio.gather(*(worker(nm, s) for nm, s in (("a", a), ("b", b)) for _ in range(4)))
    all_ids = claimed["a"] + claimed["b"]
    assert len(all_ids) == n
    assert len(set(all_ids)) == n  # no entry claimed twice
    assert claimed["a"]  # both nodes got work
    assert claimed["b"]
    owners = {e.queue_id: e.lease_owner for e in await a.queue_entries(page_all())}
    assert all(owners[q] == "a" for q in claimed["a"])
    assert all(owners[q] == "b" for q in claimed["b"])


def page_all() -> Page:
    return Page(limit=10_000)


async def test_expired_lease_is_taken_over_by_another_node(
    two: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = two
    await a.add_message(rec("L1"), reason="x", queue_due=0.0)
    first = await a.claim_due("node-a", now=100.0, limit=10, lease=30.0)
    assert [e.queue_id for e in first] == ["L1"]
    await a.aclose()  # node a dies mid-delivery: its lease stays in the table
    assert await b.claim_due("node-b", now=120.0, limit=10, lease=30.0) == []  # still leased
    taken = await b.claim_due("node-b", now=131.0, limit=10, lease=30.0)
    assert [(e.queue_id, e.lease_owner) for e in taken] == [("L1", "node-b")]
    entry = await b.queue_entry("L1")
    assert entry is not None
    assert (entry.lease_owner, entry.lease_expiry) == ("node-b", 161.0)


async def test_racing_transitions_on_two_nodes_apply_once(
    two: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = two
    for i in range(20):
        await a.add_message(rec(f"R{i}", MessageState.RECEIVED), reason="x")

    async def move(store: PostgresStore, qid: str) -> bool:
        try:
            await store.transition(
                qid, MessageState.QUEUED, reason="scanned", actor="n",
                expect=(MessageState.RECEIVED,), queue_due=1.0,
            )
        except StoreError:
            return False
        return True

    results = await asyncio.gather(
        *(move(s, f"R{i}") for i in range(20) for s in (a, b))
    )
    assert sum(results) == 20  # exactly one winner per message
    for i in range(20):
        assert [e.state for e in await a.events(f"R{i}")] == [
            MessageState.RECEIVED, MessageState.QUEUED
        ]


async def test_transaction_is_isolated_until_commit(
    two: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = two
    async with a.transaction():
        await a.set_seq("prov", 5)
        await a.add_message(rec("I1"), reason="x", queue_due=1.0)
        # another node (and another task of this node) sees nothing uncommitted
        assert await b.get_seq("prov") == 0
        assert await asyncio.create_task(a.get_seq("prov")) == 0
        with pytest.raises(NotFoundError):
            await b.get_message("I1")
        assert await b.claim_due("b", now=10.0, limit=10, lease=5.0) == []
        assert await a.get_seq("prov") == 5  # the owner sees its own writes
    assert await b.get_seq("prov") == 5
    assert (await b.get_message("I1")).state is MessageState.QUEUED


async def test_nested_transaction_joins_the_outer_one(pg_url: str) -> None:
    s = await PostgresStore.open(pg_url, max_size=2)
    try:

        async def nested() -> None:
            async with s.transaction():
                await s.set_meta("a", "1")
                async with s.transaction():
                    await s.set_meta("b", "2")
                raise RuntimeError("outer fails after the inner block")

        with pytest.raises(RuntimeError):
            await nested()
        assert await s.get_meta("a") is None
        assert await s.get_meta("b") is None
    finally:
        await s.aclose()


async def test_duplicate_inside_transaction_leaves_it_usable(pg_url: str) -> None:
    s = await PostgresStore.open(pg_url, max_size=2)
    try:
        await s.add_message(rec("DUP"), reason="x")
        async with s.transaction():
            with pytest.raises(StoreError):
                await s.add_message(rec("DUP"), reason="again")
            await s.set_meta("after", "ok")  # the savepoint kept the transaction alive
        assert await s.get_meta("after") == "ok"
    finally:
        await s.aclose()


async def test_nodes_starting_together_migrate_once(pg_url: str) -> None:
    stores = await asyncio.gather(*(PostgresStore.open(pg_url, max_size=1) for _ in range(4)))
    try:
        latest = postgres_migrations()[-1][0]
        assert {await s.schema_version() for s in stores} == {latest}
        again = await PostgresStore.open(pg_url, max_size=1)
        await again.aclose()
        with psycopg.connect(pg_url) as conn:
            rows = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        assert [r[0] for r in rows] == [m[0] for m in postgres_migrations()]
    finally:
        for s in stores:
            await s.aclose()


async def test_body_commits_with_its_row_or_not_at_all(pg_url: str) -> None:
    s = await PostgresStore.open(pg_url, max_size=2)
    bodies = PostgresBodies(s)
    try:

        async def crash() -> None:
            async with s.transaction():
                await bodies.write("B1", b"body one")
                await s.add_message(rec("B1"), reason="x", queue_due=1.0)
                raise RuntimeError("crash before the 250")

        with pytest.raises(RuntimeError):
            await crash()
        assert not await bodies.exists("B1")
        with pytest.raises(NotFoundError):
            await s.get_message("B1")
        async with s.transaction():
            await bodies.write("B1", b"body\r\none\x00\xff")
            await s.add_message(rec("B1"), reason="x", queue_due=1.0)
        other = await PostgresStore.open(pg_url, max_size=1)
        try:
            assert await PostgresBodies(other).read("B1") == b"body\r\none\x00\xff"
        finally:
            await other.aclose()
        await bodies.delete("B1")
        with pytest.raises(NotFoundError):
            await bodies.read("B1")
        assert bodies.clean_tmp() == 0
    finally:
        await s.aclose()


async def test_body_rides_with_its_row_and_a_duplicate_keeps_the_first_body(pg_url: str) -> None:
    s = await PostgresStore.open(pg_url, max_size=2)
    bodies = PostgresBodies(s)
    try:
        async with s.transaction():
            await bodies.write("F1", b"first")
            await s.add_message(rec("F1"), reason="x", queue_due=1.0)
        assert await bodies.read("F1") == b"first"

        async def again() -> None:
            async with s.transaction():
                await bodies.write("F1", b"second")
                await s.add_message(rec("F1"), reason="again", queue_due=1.0)

        with pytest.raises(StoreError):
            await again()
        # the refused message's body never replaced the stored message's
        assert await bodies.read("F1") == b"first"
        assert [e.reason for e in await s.events("F1")] == ["x"]
    finally:
        await s.aclose()


async def test_body_not_followed_by_its_row_still_commits_in_order(pg_url: str) -> None:
    s = await PostgresStore.open(pg_url, max_size=2)
    bodies = PostgresBodies(s)
    try:
        async with s.transaction():
            await bodies.write("G1", b"alone")
        assert await bodies.read("G1") == b"alone"
        async with s.transaction():
            await bodies.write("G2", b"then other work")
            assert await bodies.exists("G2")  # sent before the next statement of the tx
            await s.set_meta("k", "v")
        assert await bodies.read("G2") == b"then other work"

        async def crash() -> None:
            async with s.transaction():
                await bodies.write("G3", b"never")
                await s.set_meta("k", "w")
                raise RuntimeError("crash")

        with pytest.raises(RuntimeError):
            await crash()
        assert not await bodies.exists("G3")
        assert await s.get_meta("k") == "v"
    finally:
        await s.aclose()


async def test_held_back_duplicate_is_reported_by_the_next_call(pg_url: str) -> None:
    s = await PostgresStore.open(pg_url, max_size=2)
    bodies = PostgresBodies(s)
    try:
        await s.add_message(rec("HB"), reason="first")

        async def dup_then_more() -> None:
            async with s.transaction():
                await bodies.write("HB", b"second")
                await s.add_message(rec("HB"), reason="again")
                with pytest.raises(StoreError, match="duplicate"):
                    await s.set_meta("k", "v")
                await s.set_meta("k2", "v2")  # the transaction is still usable

        await dup_then_more()
        assert await s.get_meta("k2") == "v2"
        assert not await bodies.exists("HB")  # the duplicate's body went nowhere
        assert [e.reason for e in await s.events("HB")] == ["first"]
    finally:
        await s.aclose()


async def test_statements_per_message_on_the_hot_path(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a message costs the database: one statement (one round trip) per store call, and
    no BEGIN/COMMIT around one-statement units (counted at psycopg's connection)."""
    s = await PostgresStore.open(pg_url, max_size=2)
    bodies = PostgresBodies(s)
    sent: list[str] = []
    real = psycopg.AsyncConnection.execute

    async def counting(self: psycopg.AsyncConnection[Any], query: Any, *a: Any, **kw: Any) -> Any:
        sent.append(str(query)[:40])
        return await real(self, query, *a, **kw)

    try:
        monkeypatch.setattr(psycopg.AsyncConnection, "execute", counting)

        async def step(coro: Awaitable[Any]) -> int:
            sent.clear()
            await coro
            return len(sent)

        async def accept() -> None:
            await bodies.add_with_message(s, rec("S1"), b"body", reason="clean", queue_due=0.0)

        async def finish() -> None:  # state, recipients, queue row and body: one statement
            await bodies.finish(s, "S1", MessageState.DELIVERED, reason="250", actor="queue",
                                recipients={"b@example.test": (RecipientStatus.DELIVERED, "250")})

        assert await step(accept()) == 1
        assert await step(s.claim_due_messages("n", 10.0, 10, 60.0)) == 1  # with the record
        assert await step(bodies.read("S1")) == 0  # this node accepted it: kept in memory
        assert await step(PostgresBodies(s).read("S1")) == 1  # another node reads the table
        assert await step(
            s.set_recipients("S1", {"b@example.test": (RecipientStatus.DELIVERED, "250")})
        ) == 1
        assert await step(finish()) == 1
        assert not any(q.startswith(("BEGIN", "COMMIT")) for q in sent)
        monkeypatch.undo()
        got = await s.get_message("S1")
        assert got.state is MessageState.DELIVERED
        assert got.recipients[0].status is RecipientStatus.DELIVERED
        assert await s.queue_entry("S1") is None
        assert not await bodies.exists("S1")
    finally:
        await s.aclose()


async def test_unreachable_server_is_a_store_error() -> None:
    with pytest.raises(StoreError):
        await PostgresStore.open(
            "postgresql://postgres@127.0.0.1:1/none", connect_timeout=1.0
        )


async def test_store_recovers_after_the_server_drops_its_connections(pg_url: str) -> None:
    name = f"zh-drop-{secrets.token_hex(4)}"
    s = await PostgresStore.open(f"{pg_url}&application_name={name}", min_size=2, max_size=2)
    try:
        await s.set_meta("k", "before")
        with psycopg.connect(pg_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name=%s",
                (name,),
            ).fetchone()
        assert row is not None
        assert row[0] >= 1  # a database restart or failover looks the same to the pool
        outcomes = []
        for _ in range(4):  # a call on a dead connection fails as StoreError, not a crash
            try:
                outcomes.append(await s.get_meta("k"))
            except StoreError:
                outcomes.append("error")
        assert outcomes[-1] == "before"  # broken connections were replaced
        await s.set_meta("k", "after")
        assert await s.get_meta("k") == "after"
    finally:
        await s.aclose()


async def test_finish_is_one_statement_that_changes_nothing_when_refused(pg_url: str) -> None:
    """`PostgresBodies.finish`: final state, out of the queue and body gone together; for a
    message that is not there it raises and deletes no body."""
    s = await PostgresStore.open(pg_url, max_size=2)
    bodies = PostgresBodies(s)
    try:
        await bodies.add_with_message(s, rec("F1"), b"body", reason="t", queue_due=0.0)
        await bodies.finish(s, "F1", MessageState.DELIVERED, reason="1/1", actor="queue")
        got = await s.get_message("F1")
        assert got.state is MessageState.DELIVERED
        assert [e.state for e in await s.events("F1")][-1] is MessageState.DELIVERED
        assert await s.queue_entry("F1") is None
        assert not await bodies.exists("F1")
        await bodies.write("F2", b"orphan")
        with pytest.raises(NotFoundError):
            await bodies.finish(s, "F2", MessageState.DELIVERED, reason="x", actor="queue")
        assert await bodies.exists("F2")
    finally:
        await s.aclose()
