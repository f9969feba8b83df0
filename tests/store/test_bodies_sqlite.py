"""`SqliteBodies`: small bodies in the SQLite store (committed with their message row), large
ones in the spool folder; a body is never lost and never left without its row."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from helpers.tmpfs import small_tmpfs
from zerohour.errors import NotFoundError, SpoolFullError, StoreError
from zerohour.gateway.spool import Spool, new_queue_id
from zerohour.store.base import MessageRecord, MessageState, Recipient, RecipientStatus
from zerohour.store.bodies import SqliteBodies
from zerohour.store.sqlite import SqliteStore


def _rec(qid: str) -> MessageRecord:
    return MessageRecord(queue_id=qid, sender="a@x.test", recipients=(Recipient("b@y.test"),),
                         size=10, received_at=time.time(), state=MessageState.QUEUED)


@pytest.fixture
async def bodies(tmp_path: Path) -> AsyncIterator[SqliteBodies]:
    store = await SqliteStore.open(tmp_path / "store.sqlite3")
    b = SqliteBodies(store, Spool(tmp_path / "spool"), inline_max=1024)
    try:
        yield b
    finally:
        b.close()
        await store.aclose()


async def test_small_in_the_store_large_in_the_spool(bodies: SqliteBodies, tmp_path: Path) -> None:
    small, large = new_queue_id(), new_queue_id()
    await bodies.add_with_message(bodies.store, _rec(small), b"s" * 1024, reason="t")
    await bodies.add_with_message(bodies.store, _rec(large), b"L" * 1025, reason="t")
    assert await bodies.store.get_body(small) == b"s" * 1024
    assert not (tmp_path / "spool" / "q" / small).exists()
    assert (tmp_path / "spool" / "q" / large).read_bytes() == b"L" * 1025
    with pytest.raises(NotFoundError):
        await bodies.store.get_body(large)
    bodies._recent.forget(small)  # read from the store, not from memory
    assert await bodies.read(small) == b"s" * 1024
    assert await bodies.read(large) == b"L" * 1025
    assert await bodies.exists(small)
    assert await bodies.exists(large)
    for qid in (small, large):
        await bodies.delete(qid)
        assert not await bodies.exists(qid)
        with pytest.raises(NotFoundError):
            await bodies.read(qid)
    # a body written on its own (a DSN's, a stripped copy's) takes the same two ways
    await bodies.write(small, b"again")
    await bodies.write(large, b"X" * 2000)
    assert await bodies.store.has_body(small)
    assert (tmp_path / "spool" / "q" / large).is_file()


async def test_body_and_row_commit_together(tmp_path: Path) -> None:
    """A row that fails to insert leaves no body; a committed one survives a reopen."""
    path = tmp_path / "store.sqlite3"
    store = await SqliteStore.open(path)
    bodies = SqliteBodies(store, Spool(tmp_path / "spool"))
    qid = new_queue_id()
    try:
        await bodies.add_with_message(store, _rec(qid), b"first", reason="t")
        with pytest.raises(StoreError, match="duplicate"):  # same queue id: refused
            await bodies.add_with_message(store, _rec(qid), b"second", reason="t")
        assert await store.get_body(qid) == b"first"  # the refused one replaced nothing
    finally:
        bodies.close()
        await store.aclose()
    store = await SqliteStore.open(path)
    try:
        assert await store.get_body(qid) == b"first"
        assert (await store.get_message(qid)).state is MessageState.QUEUED
    finally:
        await store.aclose()


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs (root only), unmounted after the test."""
    with small_tmpfs(tmp_path / "tiny", "4m") as mnt:
        yield mnt


async def test_a_full_disk_is_spool_full_not_a_crash(full_disk: Path) -> None:
    """SQLite's "database or disk is full" becomes `SpoolFullError` (SMTP 452 4.3.1), and what
    was committed before stays readable."""
    store = await SqliteStore.open(full_disk / "store.sqlite3")
    bodies = SqliteBodies(store, Spool(full_disk / "spool"))
    try:
        kept = new_queue_id()
        await bodies.add_with_message(store, _rec(kept), b"kept" * 100, reason="t")
        with (full_disk / "filler").open("wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
            except OSError:
                pass
        refused = ""
        for _ in range(20):  # pages SQLite had in hand may take a few first
            refused = new_queue_id()
            try:
                await bodies.add_with_message(store, _rec(refused), os.urandom(200_000),
                                              reason="t")
            except SpoolFullError:
                break
        else:
            pytest.fail("20 bodies of 200 KB fitted on a full disk")
        with pytest.raises(NotFoundError):  # no row without its body
            await store.get_message(refused)
        (full_disk / "filler").unlink()
        bodies._recent.forget(kept)
        assert await bodies.read(kept) == b"kept" * 100
        again = new_queue_id()
        await bodies.add_with_message(store, _rec(again), b"after", reason="t")
        assert await store.get_body(again) == b"after"
    finally:
        bodies.close()
        await store.aclose()


async def test_finish_ends_the_message_and_drops_its_body(
    bodies: SqliteBodies, tmp_path: Path
) -> None:
    """A delivery's last step: final state, recipients, out of the queue, body gone (a row for
    a small body, a spool file for a large one), in one write."""
    store = bodies.store
    small, large = new_queue_id(), new_queue_id()
    for qid, size in ((small, 100), (large, 5000)):
        await bodies.add_with_message(store, _rec(qid), b"b" * size, reason="t",
                                      queue_due=time.time())
    assert {e.queue_id for e in await store.queue_entries()} == {small, large}
    for qid in (small, large):
        await bodies.finish(store, qid, MessageState.DELIVERED, reason="1/1 delivered",
                            actor="queue",
                            recipients={"b@y.test": (RecipientStatus.DELIVERED, "250 ok")})
        rec = await store.get_message(qid)
        assert rec.state is MessageState.DELIVERED
        assert rec.recipients[0].status is RecipientStatus.DELIVERED
        assert [e.state for e in await store.events(qid)][-1] is MessageState.DELIVERED
        assert not await bodies.exists(qid)
    assert await store.queue_entries() == []
    assert not (tmp_path / "spool" / "q" / large).exists()
    with pytest.raises(NotFoundError):  # finishing a message that isn't there changes nothing
        await bodies.finish(store, new_queue_id(), MessageState.DELIVERED, reason="x",
                            actor="queue")
