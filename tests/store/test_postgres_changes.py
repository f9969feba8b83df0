"""Change fan-out (`Store.watch_changes`) and backend selection (`store.factory`)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from zerohour.errors import ConfigError
from zerohour.notices.model import OutbreakSpec
from zerohour.store.base import Store
from zerohour.store.bodies import PostgresBodies, SqliteBodies
from zerohour.store.factory import describe_store, open_bodies, open_store, resolve_store
from zerohour.store.postgres import PostgresStore
from zerohour.store.sqlite import SqliteStore


async def next_change(changes: AsyncIterator[str], want: str, within: float = 10.0) -> None:
    async def scan() -> None:
        async for what in changes:
            if what == want:
                return

    await asyncio.wait_for(scan(), within)


@pytest.mark.needs_postgres
async def test_outbreak_change_on_one_node_is_pushed_to_another(pg_url: str) -> None:
    a = await PostgresStore.open(pg_url, max_size=2)
    b = await PostgresStore.open(pg_url, max_size=2)
    # a long poll interval: only a NOTIFY can bring "outbreaks" (the poll says "resync")
    changes = b.watch_changes(poll_interval=60.0)
    try:
        assert await anext(changes) == "resync"  # listening now
        await a.save_outbreak(OutbreakSpec("ob-push", "Wave"), 1.0)
        await next_change(changes, "outbreaks")
        assert [o.spec.outbreak_id for o in await b.outbreaks()] == ["ob-push"]
        await a.end_outbreak("ob-push", "covered", 2.0)
        await next_change(changes, "outbreaks")
        assert await b.outbreaks() == []
        await a.retry_now(None, 0.0)  # nothing due later than 0: no rows, no notice
        await a.set_meta("db.installed_version", "v2")
        await next_change(changes, "meta")
    finally:
        await changes.aclose()
        await a.aclose()
        await b.aclose()


@pytest.mark.needs_postgres
async def test_uncommitted_change_is_not_announced(pg_url: str) -> None:
    # a channel of this test's own: NOTIFY is database-wide, and other tests running at the
    # same time on other schemas announce their outbreaks too
    channel = f"zh_test_{secrets.token_hex(4)}"
    a = await PostgresStore.open(pg_url, max_size=2, channel=channel)
    b = await PostgresStore.open(pg_url, max_size=2, channel=channel)
    changes = b.watch_changes(poll_interval=60.0)
    try:
        assert await anext(changes) == "resync"

        async def rolled_back() -> None:
            async with a.transaction():
                await a.save_outbreak(OutbreakSpec("ob-rb", "Never"), 1.0)
                raise RuntimeError("rolled back")

        with pytest.raises(RuntimeError):
            await rolled_back()
        with pytest.raises(TimeoutError):
            await next_change(changes, "outbreaks", within=0.5)
    finally:
        await changes.aclose()
        await a.aclose()
        await b.aclose()


@pytest.mark.needs_postgres
async def test_watch_falls_back_to_polling_when_it_cannot_listen() -> None:
    # a store object whose server is gone: the watcher keeps saying "resync" (poll fallback)
    store = PostgresStore.__new__(PostgresStore)
    PostgresStore.__init__(store, pool=None, conninfo="postgresql://x@127.0.0.1:1/none")  # type: ignore[arg-type]
    changes = store.watch_changes(poll_interval=0.05)
    try:
        got = [await asyncio.wait_for(anext(changes), 10.0) for _ in range(2)]
        assert got == ["resync", "resync"]
    finally:
        await changes.aclose()


async def test_sqlite_watch_sees_another_process_commit(tmp_path: Path) -> None:
    a = await SqliteStore.open(tmp_path / "s.sqlite3")
    b = await SqliteStore.open(tmp_path / "s.sqlite3")  # another connection, like the CLI
    changes = a.watch_changes(poll_interval=0.02)
    try:
        assert await anext(changes) == "resync"
        await b.save_outbreak(OutbreakSpec("ob-cli", "Wave"), 1.0)
        await next_change(changes, "resync")
        assert [o.spec.outbreak_id for o in await a.outbreaks()] == ["ob-cli"]
    finally:
        await changes.aclose()
        await a.aclose()
        await b.aclose()


def test_resolve_store_targets(tmp_path: Path) -> None:
    assert resolve_store(None, tmp_path) == tmp_path / "zerohour.sqlite3"
    assert resolve_store("", tmp_path) == tmp_path / "zerohour.sqlite3"
    assert resolve_store("other.db", tmp_path) == tmp_path / "other.db"
    assert resolve_store("/abs/x.db", tmp_path) == Path("/abs/x.db")
    url = "postgresql://zh:secret@db.example:5432/zerohour"
    assert resolve_store(url, tmp_path) == url
    assert describe_store(url) == "postgresql://zh@db.example:5432/zerohour"
    with pytest.raises(ConfigError):
        resolve_store("mysql://x/y", tmp_path)


async def test_open_store_picks_sqlite_for_a_path(tmp_path: Path) -> None:
    store: Store = await open_store("here.sqlite3", data_dir=tmp_path)
    try:
        assert isinstance(store, SqliteStore)
        assert (tmp_path / "here.sqlite3").is_file()
        spool = object()
        bodies = open_bodies(store, spool)  # type: ignore[arg-type]
        # small bodies in the store, large ones in the spool folder
        assert isinstance(bodies, SqliteBodies)
        assert bodies.store is store
        assert bodies.files is spool
    finally:
        await store.aclose()


@pytest.mark.needs_postgres
async def test_open_store_picks_postgres_for_a_url(pg_url: str, tmp_path: Path) -> None:
    store = await open_store(pg_url, data_dir=tmp_path, pool_size=2)
    try:
        assert isinstance(store, PostgresStore)
        assert isinstance(open_bodies(store, object()), PostgresBodies)  # type: ignore[arg-type]
        assert not any(tmp_path.iterdir())  # nothing written locally
    finally:
        await store.aclose()


@pytest.mark.needs_postgres
async def test_watch_survives_a_dropped_listen_connection(pg_url: str) -> None:
    name = f"zh-watch-{secrets.token_hex(4)}"
    a = await PostgresStore.open(f"{pg_url}&application_name={name}", max_size=1)
    b = await PostgresStore.open(pg_url, max_size=1)
    changes = a.watch_changes(poll_interval=60.0)
    try:
        assert await anext(changes) == "resync"
        with psycopg.connect(pg_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name=%s AND query LIKE 'LISTEN%%'",
                (name,),
            ).fetchone()
        assert row is not None
        assert row[0] == 1  # the listener (a database restart or failover looks the same)
        assert await asyncio.wait_for(anext(changes), 10.0) == "resync"  # lost: reload
        assert await asyncio.wait_for(anext(changes), 10.0) == "resync"  # listening again
        await b.save_outbreak(OutbreakSpec("ob-after", "Wave"), 1.0)
        await next_change(changes, "outbreaks")
    finally:
        await changes.aclose()
        await a.aclose()
        await b.aclose()
