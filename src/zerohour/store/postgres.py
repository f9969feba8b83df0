"""`PostgresStore`: the `Store` for a cluster of gateways sharing one PostgreSQL database.

Several nodes share one held buffer, quarantine, delivery queue and outbreak state:

- Connections come from a psycopg 3 async pool (autocommit); every call is its own short
  transaction unless it runs inside `transaction()`, which binds one pooled connection to the
  calling task through a context variable (tasks it spawns inherit the variable but not the
  connection: they check the owning task, like SqliteStore).
- Cost per message is round trips and statements (each is a client wake-up and a backend
  parse/execute; server CPU about equals the node's): every hot-path call is ONE statement (data-
  modifying CTEs), one-statement units run in autocommit without BEGIN/COMMIT, and
  `transaction()` begins lazily, so the accept unit (body + message + recipients + event + queue
  row) is one statement and one fsync'd commit. psycopg prepares repeated statements itself.
- `claim_due` leases work with `FOR UPDATE SKIP LOCKED`: two nodes never claim the same entry,
  and an entry whose lease expired (its node died mid-delivery) is claimed again by another node,
  so nothing is lost and a crash costs at most one duplicate delivery.
- `transition` is an `UPDATE ... WHERE state = ANY(expect)`: it locks the row and re-checks the
  state after a concurrent commit, so a lost race between nodes is a `StoreError`, exactly as
  with SQLite's single writer.
- Every change of the outbreak state or meta, and queue changes another node should act on
  now (`retry_now`, `release_lease`), send `NOTIFY zerohour_state, '<what>'` in the same
  transaction (delivered on commit); `watch_changes()` LISTENs on a dedicated connection and
  yields those payloads, with a poll fallback (`resync`). New mail does not notify: PostgreSQL
  serialises the commits of notifying transactions, which would undo group commit on the hot
  path; the node that accepted a message delivers it, and other nodes poll `claim_due`.
- The schema is versioned (`schema_version` table, `migrations/postgres_NNNN_*.sql`) and migrated
  at open under a transaction-scoped advisory lock, so nodes starting together migrate once.
  Tables live in the connection's `search_path` schema (tests use one schema each).

Durability: PostgreSQL's default `synchronous_commit=on` fsyncs the WAL at commit, so a row (and
a body in `bodies`) committed before the SMTP 250 survives a crash of the node or the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from zerohour.errors import NotFoundError, SpoolFullError, StoreError
from zerohour.notices.model import OutbreakSpec
from zerohour.store.base import (
    ALL_MESSAGES,
    BUNDLE_VERSION_KEY,
    FIRST_PAGE,
    UNSET,
    Event,
    Lease,
    MessageFilter,
    MessageRecord,
    MessageState,
    NoticeLogEntry,
    OutbreakRecord,
    Page,
    QueueEntry,
    Recipient,
    RecipientStatus,
)
from zerohour.store.bodies import NO_SPACE

T = TypeVar("T")
Conn = psycopg.AsyncConnection[tuple[Any, ...]]

log = logging.getLogger("zerohour.store.postgres")

CHANNEL = "zerohour_state"
# NOTIFY payloads (also yielded by watch_changes): what changed
CHANGE_OUTBREAKS = "outbreaks"
CHANGE_QUEUE = "queue"
CHANGE_META = "meta"
CHANGE_RESYNC = "resync"  # anything may have changed (start, reconnect, poll fallback)

_MIGRATION_LOCK = "zerohour.migrate:"


def postgres_migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every bundled PostgreSQL migration, in order."""
    out = []
    for entry in resources.files("zerohour.store.migrations").iterdir():
        name = entry.name
        if name.startswith("postgres_") and name.endswith(".sql"):
            out.append((int(name.split("_")[1]), name, entry.read_text(encoding="utf-8")))
    return sorted(out)


def _text_array(items: Iterable[str]) -> str:
    """A `text[]` literal ('{"a","b\\"c"}'), for a parameter the query casts `::text[]`.
    psycopg adapts a list by looking at its elements on every call: for the accept and the
    delivery's last write (seven lists) that was a tenth of the gateway's event loop
    (py-spy, bench/smtp.py); one string is adapted once per type."""
    return "{" + ",".join(
        '"' + i.replace("\\", "\\\\").replace('"', '\\"') + '"' for i in items
    ) + "}"


def _body_error(exc: psycopg.Error, queue_id: str) -> Exception:
    """A failed body write, as `PostgresBodies.write` reports it: a full database is
    `SpoolFullError` (SMTP 452), anything else `StoreError`."""
    if exc.sqlstate in NO_SPACE:
        return SpoolFullError("insufficient store space", message_id=queue_id, stage="spool")
    return StoreError(f"store: {exc}", message_id=queue_id)


@dataclass(frozen=True, slots=True)
class _Add:
    """An `add_message` statement held back by a transaction that has not begun yet."""

    queue_id: str
    query: str
    params: dict[str, Any]


@dataclass(slots=True)
class _Tx:
    """A `transaction()` in progress. BEGIN is sent lazily, before the first statement that is
    not held back: a unit of work that turns out to be one statement (a new message with its
    body) runs in autocommit, without the BEGIN and COMMIT round trips."""

    owner: asyncio.Task[Any] | None
    conn: Conn
    # bodies written in this transaction and not sent yet: the next `add_message` of the same
    # id inserts its body in its own statement; anything else sends them first
    bodies: dict[str, bytes] = field(default_factory=dict)
    add: _Add | None = None  # held back until the next statement or the end
    begun: bool = False


class PostgresStore:
    """PostgreSQL implementation of `zerohour.store.base.Store`."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Conn],
        conninfo: str,
        *,
        channel: str = CHANNEL,
    ) -> None:
        self._pool = pool
        self._conninfo = conninfo
        self._channel = channel
        self._tx: ContextVar[_Tx | None] = ContextVar(f"zerohour_pg_tx_{id(self):x}", default=None)
        self._closed = False
        self._listeners: set[Conn] = set()

    @classmethod
    async def open(
        cls,
        conninfo: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 10.0,
        channel: str = CHANNEL,
    ) -> PostgresStore:
        """Connect (pooled), migrate the schema if needed, and return the store."""
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            timeout=connect_timeout,
            open=False,
            kwargs={"autocommit": True},
            name="zerohour-store",
        )
        try:
            await pool.open(wait=True, timeout=connect_timeout)
        except (PoolTimeout, psycopg.Error) as exc:
            await pool.close()
            raise StoreError(f"cannot connect to PostgreSQL store: {exc}") from exc
        store = cls(pool, conninfo, channel=channel)
        try:
            await store._migrate()
        except BaseException:
            await pool.close()
            raise
        return store

    async def _migrate(self) -> None:
        try:
            async with self._pool.connection() as conn, conn.transaction():
                schema = (await (await conn.execute("SELECT current_schema()")).fetchone() or
                          (None,))[0]
                if schema is None:
                    raise StoreError("PostgreSQL store: no schema in search_path exists")
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", (_MIGRATION_LOCK + schema,)
                )
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version ("
                    " version INTEGER PRIMARY KEY,"
                    " name TEXT NOT NULL,"
                    " applied_at DOUBLE PRECISION NOT NULL)"
                )
                row = await (
                    await conn.execute("SELECT coalesce(max(version), 0) FROM schema_version")
                ).fetchone()
                current = int(row[0]) if row else 0
                for num, name, text in postgres_migrations():
                    if num > current:
                        await conn.execute(text.encode())
                        await conn.execute(
                            "INSERT INTO schema_version (version, name, applied_at)"
                            " VALUES (%s, %s, %s)",
                            (num, name, time.time()),
                        )
                        log.info("store.migrated backend=postgres version=%d", num)
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL store migration failed: {exc}") from exc

    async def schema_version(self) -> int:
        async def fn(c: Conn) -> int:
            row = await (await c.execute("SELECT max(version) FROM schema_version")).fetchone()
            return int(row[0]) if row and row[0] is not None else 0

        return await self._read(fn)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for conn in list(self._listeners):
            with contextlib.suppress(Exception):
                await conn.close()
        await self._pool.close()

    # plumbing ----------------------------------------------------------------------------------
    def _current_tx(self) -> _Tx | None:
        tx = self._tx.get()
        if tx is not None and tx.owner is asyncio.current_task():
            return tx
        return None

    async def _run(self, fn: Callable[[Conn], Awaitable[T]], *, write: bool) -> T:
        tx = self._current_tx()
        try:
            if tx is not None:
                await self._catch_up(tx)
                return await fn(tx.conn)
            if self._closed:
                raise StoreError("store is closed")
            async with self._pool.connection() as conn:
                if not write:
                    return await fn(conn)
                async with conn.transaction():
                    return await fn(conn)
        except psycopg.Error as exc:
            raise StoreError(f"store: {exc}") from exc
        except PoolTimeout as exc:
            raise StoreError(f"store: no database connection: {exc}") from exc

    async def _write(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        """A unit of several statements: BEGIN ... COMMIT (unless inside `transaction()`)."""
        return await self._run(fn, write=True)

    async def _write1(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        """A unit of ONE statement (with at most read-only statements after it): run in
        autocommit, where PostgreSQL makes the statement atomic and durable on its own (the
        reply comes after the commit's WAL flush), so BEGIN and COMMIT would be two more round
        trips and statements for nothing."""
        return await self._run(fn, write=False)

    async def _read(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        return await self._run(fn, write=False)

    _PUT_BODY = (
        "INSERT INTO bodies (queue_id, data) VALUES (%s,%s)"
        " ON CONFLICT (queue_id) DO UPDATE SET data=excluded.data"
    )

    async def _send_bodies(self, tx: _Tx) -> None:
        while tx.bodies:
            queue_id, data = tx.bodies.popitem()
            try:
                await tx.conn.execute(self._PUT_BODY, (queue_id, data))
            except psycopg.Error as exc:
                raise _body_error(exc, queue_id) from exc

    async def _send_add(self, c: Conn, add: _Add) -> None:
        try:
            row = await (await c.execute(add.query, add.params)).fetchone()
        except psycopg.Error as exc:
            if add.params["body"] is None:
                raise
            raise _body_error(exc, add.queue_id) from exc
        if not row or row[0] != 1:
            raise StoreError(f"duplicate queue id {add.queue_id}", message_id=add.queue_id)

    async def _catch_up(self, tx: _Tx) -> None:
        """Before another statement of `tx`: BEGIN, then what was held back."""
        if not tx.begun:
            await tx.conn.execute("BEGIN")
            tx.begun = True
        add, tx.add = tx.add, None
        if add is not None:
            await self._send_add(tx.conn, add)
        await self._send_bodies(tx)

    async def _finish(self, tx: _Tx) -> None:
        """Commit `tx`: in autocommit when it never began and one statement is left."""
        if not tx.begun and len(tx.bodies) + (tx.add is not None) <= 1:
            if tx.add is not None:
                add, tx.add = tx.add, None
                await self._send_add(tx.conn, add)
            await self._send_bodies(tx)
            return
        await self._catch_up(tx)
        await tx.conn.execute("COMMIT")

    async def _notify(self, c: Conn, what: str) -> None:
        await c.execute(sql.SQL("NOTIFY {}, {}").format(sql.Identifier(self._channel),
                                                        sql.Literal(what)))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if self._current_tx() is not None:  # nested: part of the outer one
            yield
            return
        if self._closed:
            raise StoreError("store is closed")
        try:
            async with self._pool.connection() as conn:
                tx = _Tx(asyncio.current_task(), conn)
                token = self._tx.set(tx)
                try:
                    yield
                    await self._finish(tx)
                except BaseException:
                    if tx.begun and not conn.closed:
                        with contextlib.suppress(psycopg.Error):
                            await conn.execute("ROLLBACK")
                    raise
                finally:
                    self._tx.reset(token)
        except psycopg.Error as exc:
            raise StoreError(f"store: {exc}") from exc

    # messages ----------------------------------------------------------------------------------
    _ADD = (
        "WITH m AS ("
        " INSERT INTO messages (queue_id, kind, sender, size, received_at, updated_at, state,"
        " peer, helo, verdict, findings, db_version, summary, reason)"
        " VALUES (%(qid)s, %(kind)s, %(sender)s, %(size)s, %(rcv)s, %(upd)s, %(state)s,"
        " %(peer)s, %(helo)s, %(verdict)s, %(findings)s, %(dbv)s, %(summary)s, %(reason)s)"
        " ON CONFLICT (queue_id) DO NOTHING RETURNING queue_id),"
        " r AS (INSERT INTO recipients (queue_id, idx, address, status, last_error)"
        " SELECT m.queue_id, t.n - 1, t.address, t.status, t.err FROM m,"
        " unnest(%(addrs)s::text[], %(statuses)s::text[], %(errs)s::text[])"
        " WITH ORDINALITY AS t(address, status, err, n)),"
        " h AS (INSERT INTO hold_tags (queue_id, outbreak_id)"
        " SELECT DISTINCT m.queue_id, t FROM m, unnest(%(tags)s::text[]) AS t),"
        " e AS (INSERT INTO events (queue_id, at, state, reason, actor)"
        " SELECT m.queue_id, %(rcv)s, %(state)s, %(reason)s, %(actor)s FROM m),"
        " q AS (INSERT INTO delivery_queue (queue_id, due, lease_owner, lease_expiry)"
        " SELECT m.queue_id, %(due)s::double precision, %(owner)s, %(expiry)s FROM m"
        " WHERE %(due)s::double precision IS NOT NULL)"
        " SELECT count(*) FROM m"
    )
    # the same with the body written earlier in the transaction (`put_body`): one statement
    # for everything that must be durable before the 250
    _ADD_BODY = _ADD.replace(
        " SELECT count(*) FROM m",
        ", b AS (INSERT INTO bodies (queue_id, data) SELECT m.queue_id, %(body)s FROM m"
        " ON CONFLICT (queue_id) DO UPDATE SET data=excluded.data)"
        " SELECT count(*) FROM m",
    )

    async def add_message(
        self,
        record: MessageRecord,
        *,
        reason: str,
        actor: str = "smtp",
        queue_due: float | None = None,
        lease: Lease | None = None,
    ) -> None:
        """One statement (message, recipients, tags, first event, queue row, and the body when
        `put_body` wrote it earlier in the same transaction): one round trip, in autocommit
        outside a transaction. A duplicate id inserts nothing (ON CONFLICT DO NOTHING; nor its
        body) and is reported without aborting a caller's transaction, so no savepoint is
        needed.

        A new message with its body as the first work of a transaction (the accept path) is
        held back: when nothing follows, the transaction is this one statement, in autocommit
        (no BEGIN/COMMIT); when something does, it is sent first. A duplicate id is then
        reported by that next call or by the end of the `transaction()` block."""
        tx = self._current_tx()
        body = None if tx is None else tx.bodies.pop(record.queue_id, None)
        hold_back = tx is not None and body is not None and not tx.begun and tx.add is None
        params = {
            "qid": record.queue_id,
            "kind": record.kind,
            "sender": record.sender,
            "size": record.size,
            "rcv": record.received_at,
            "upd": record.updated_at or record.received_at,
            "state": record.state.value,
            "peer": record.peer,
            "helo": record.helo,
            "verdict": record.verdict,
            "findings": json.dumps(list(record.findings)),
            "dbv": record.db_version,
            "summary": None if record.summary is None else json.dumps(record.summary),
            "reason": reason,
            "addrs": _text_array(r.address for r in record.recipients),
            "statuses": _text_array(r.status.value for r in record.recipients),
            "errs": _text_array(r.last_error for r in record.recipients),
            "tags": _text_array(record.hold_tags),
            "actor": actor,
            "due": queue_due,
            "owner": lease[0] if lease else "",
            "expiry": lease[1] if lease else 0.0,
            "body": body,
        }
        add = _Add(record.queue_id, self._ADD if body is None else self._ADD_BODY, params)
        if hold_back:
            assert tx is not None
            tx.add = add
            return

        async def fn(c: Conn) -> None:
            await self._send_add(c, add)

        await self._write1(fn)

    # a message with its recipients and hold tags in one row: one query per read, not three
    _COLS = (
        "m.queue_id, m.kind, m.sender, m.size, m.received_at, m.updated_at, m.state, m.peer,"
        " m.helo, m.verdict, m.findings, m.db_version, m.summary, m.reason,"
        " ARRAY(SELECT r.address FROM recipients r WHERE r.queue_id=m.queue_id ORDER BY r.idx),"
        " ARRAY(SELECT r.status FROM recipients r WHERE r.queue_id=m.queue_id ORDER BY r.idx),"
        " ARRAY(SELECT r.last_error FROM recipients r WHERE r.queue_id=m.queue_id"
        " ORDER BY r.idx),"
        " ARRAY(SELECT h.outbreak_id FROM hold_tags h WHERE h.queue_id=m.queue_id"
        " ORDER BY h.outbreak_id)"
    )

    @staticmethod
    def _record(row: Sequence[Any], tags: Sequence[str] | None = None) -> MessageRecord:
        (qid, kind, sender, size, rcv, upd, state, peer, helo, verdict, findings, dbv, summ,
         reason, addrs, statuses, errors, row_tags) = row
        return MessageRecord(
            queue_id=qid,
            sender=sender,
            recipients=tuple(
                Recipient(a, RecipientStatus(st), e)
                for a, st, e in zip(addrs, statuses, errors, strict=True)
            ),
            size=int(size),
            received_at=rcv,
            state=MessageState(state),
            peer=peer,
            helo=helo,
            verdict=verdict,
            findings=tuple(json.loads(findings)),
            db_version=dbv,
            summary=None if summ is None else json.loads(summ),
            reason=reason,
            updated_at=upd,
            hold_tags=tuple(row_tags if tags is None else tags),
            kind=kind,
        )

    async def _get(self, c: Conn, queue_id: str) -> MessageRecord:
        cur = await c.execute(
            f"SELECT {self._COLS} FROM messages m WHERE queue_id=%s",  # noqa: S608
            (queue_id,),
        )
        row = await cur.fetchone()
        if row is None:
            raise NotFoundError(f"no message {queue_id}", message_id=queue_id)
        return self._record(row)

    async def get_message(self, queue_id: str) -> MessageRecord:
        async def fn(c: Conn) -> MessageRecord:
            return await self._get(c, queue_id)

        return await self._read(fn)

    @staticmethod
    def _where(flt: MessageFilter) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if flt.states:
            clauses.append("m.state = ANY(%s)")
            args.append([s.value for s in flt.states])
        if flt.outbreak_id is not None:
            clauses.append(
                "EXISTS (SELECT 1 FROM hold_tags h WHERE h.queue_id=m.queue_id"
                " AND h.outbreak_id=%s)"
            )
            args.append(flt.outbreak_id)
        if flt.sender is not None:
            clauses.append("strpos(lower(m.sender), lower(%s)) > 0")
            args.append(flt.sender)
        if flt.recipient is not None:
            clauses.append(
                "EXISTS (SELECT 1 FROM recipients r WHERE r.queue_id=m.queue_id"
                " AND strpos(lower(r.address), lower(%s)) > 0)"
            )
            args.append(flt.recipient)
        if flt.text is not None:
            needle = flt.text.lower()
            clauses.append(
                "(strpos(lower(coalesce(m.summary::jsonb->>'subject', '')), %s) > 0"
                " OR EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN"
                " jsonb_typeof(m.summary::jsonb->'attachments') = 'array'"
                " THEN m.summary::jsonb->'attachments' ELSE '[]'::jsonb END) a"
                " WHERE strpos(lower(coalesce(a->>1, '')), %s) > 0))"
            )
            args.extend((needle, needle))
        for col, op, val in (
            ("m.size", ">=", flt.min_size),
            ("m.size", "<=", flt.max_size),
            ("m.received_at", "<", flt.received_before),
            ("m.received_at", ">=", flt.received_after),
        ):
            if val is not None:
                clauses.append(f"{col} {op} %s")
                args.append(val)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

    async def list_messages(
        self, flt: MessageFilter = ALL_MESSAGES, page: Page = FIRST_PAGE
    ) -> list[MessageRecord]:
        where, args = self._where(flt)

        async def fn(c: Conn) -> list[MessageRecord]:
            cur = await c.execute(
                f"SELECT {self._COLS} FROM messages m{where}"  # noqa: S608
                " ORDER BY m.received_at DESC, m.queue_id DESC LIMIT %s OFFSET %s",
                [*args, page.limit, page.offset],
            )
            return [self._record(r) for r in await cur.fetchall()]

        return await self._read(fn)

    async def count_messages(self, flt: MessageFilter = ALL_MESSAGES) -> int:
        where, args = self._where(flt)

        async def fn(c: Conn) -> int:
            cur = await c.execute(f"SELECT count(*) FROM messages m{where}", args)  # noqa: S608
            row = await cur.fetchone()
            return int(row[0]) if row else 0

        return await self._read(fn)

    async def transition(
        self,
        queue_id: str,
        state: MessageState,
        *,
        reason: str,
        actor: str,
        expect: Sequence[MessageState] | None = None,
        verdict: str = UNSET,
        findings: Sequence[str] = UNSET,
        db_version: str = UNSET,
        summary: Mapping[str, Any] | None = UNSET,
        hold_tags: Sequence[str] = UNSET,
        queue_due: float | None = UNSET,
        recipients: Mapping[str, tuple[RecipientStatus, str]] | None = None,
    ) -> MessageRecord:
        rec = await self._transition(
            queue_id, state, reason=reason, actor=actor, expect=expect, verdict=verdict,
            findings=findings, db_version=db_version, summary=summary, hold_tags=hold_tags,
            queue_due=queue_due, recipients=recipients, finish=False)
        assert rec is not None
        return rec

    async def finish(
        self,
        queue_id: str,
        state: MessageState,
        *,
        reason: str,
        actor: str,
        recipients: Mapping[str, tuple[RecipientStatus, str]] | None = None,
    ) -> None:
        """A delivery's last write: `transition(..., queue_due=None)` to `state` and the body
        row deleted, in one statement (one round trip, one WAL flush: the delete used to be a
        second), and no record read back (the delivery has it)."""
        await self._transition(queue_id, state, reason=reason, actor=actor, queue_due=None,
                               recipients=recipients, finish=True)

    async def _transition(
        self,
        queue_id: str,
        state: MessageState,
        *,
        reason: str,
        actor: str,
        expect: Sequence[MessageState] | None = None,
        verdict: str = UNSET,
        findings: Sequence[str] = UNSET,
        db_version: str = UNSET,
        summary: Mapping[str, Any] | None = UNSET,
        hold_tags: Sequence[str] = UNSET,
        queue_due: float | None = UNSET,
        recipients: Mapping[str, tuple[RecipientStatus, str]] | None = None,
        finish: bool,
    ) -> MessageRecord | None:
        now = time.time()
        sets = ["state=%(state)s", "updated_at=%(now)s", "reason=%(reason)s"]
        args: dict[str, Any] = {
            "qid": queue_id, "state": state.value, "now": now, "reason": reason, "actor": actor,
        }  # fmt: skip
        if verdict is not UNSET:
            sets.append("verdict=%(verdict)s")
            args["verdict"] = verdict
        if findings is not UNSET:
            sets.append("findings=%(findings)s")
            args["findings"] = json.dumps(list(findings))
        if db_version is not UNSET:
            sets.append("db_version=%(dbv)s")
            args["dbv"] = db_version
        if summary is not UNSET:
            sets.append("summary=%(summary)s")
            args["summary"] = None if summary is None else json.dumps(summary)
        # the UPDATE locks the row and re-checks `expect` after a concurrent commit
        # (READ COMMITTED re-evaluation), so of two racing nodes exactly one wins; the other
        # changes read its RETURNING, so they happen only when it did
        where = "queue_id=%(qid)s"
        if expect is not None:
            where += " AND state = ANY(%(expect)s::text[])"
            args["expect"] = _text_array(s.value for s in expect)
        tail = [
            "e AS (INSERT INTO events (queue_id, at, state, reason, actor)"
            " SELECT queue_id, %(now)s, %(state)s, %(reason)s, %(actor)s FROM m)"
        ]
        if hold_tags is not UNSET:
            # replace the set: drop the tags not kept, add the new ones (one snapshot: a
            # DELETE and an INSERT of the same key in one statement would collide)
            tags = sorted(set(hold_tags))
            args["tags"] = _text_array(tags)
            tail.append(
                "hd AS (DELETE FROM hold_tags WHERE queue_id IN (SELECT queue_id FROM m)"
                " AND outbreak_id <> ALL(%(tags)s::text[]))"
            )
            tail.append(
                "hi AS (INSERT INTO hold_tags (queue_id, outbreak_id)"
                " SELECT m.queue_id, t FROM m, unnest(%(tags)s::text[]) AS t"
                " ON CONFLICT DO NOTHING)"
            )
        if queue_due is None:
            tail.append(
                "q AS (DELETE FROM delivery_queue WHERE queue_id IN (SELECT queue_id FROM m))"
            )
        elif queue_due is not UNSET:
            args["due"] = queue_due
            tail.append(
                "q AS (INSERT INTO delivery_queue (queue_id, due)"
                " SELECT queue_id, %(due)s::double precision FROM m"
                " ON CONFLICT (queue_id) DO UPDATE SET due=excluded.due,"
                " lease_owner='', lease_expiry=0)"
            )
        if recipients:
            args["r_addr"] = _text_array(recipients)
            args["r_status"] = _text_array(st.value for st, _ in recipients.values())
            args["r_err"] = _text_array(e for _, e in recipients.values())
            tail.append(
                "rc AS (UPDATE recipients r SET status=v.status, last_error=v.err FROM"
                " unnest(%(r_addr)s::text[], %(r_status)s::text[], %(r_err)s::text[])"
                " AS v(address, status, err)"
                " WHERE r.queue_id IN (SELECT queue_id FROM m) AND r.address=v.address)"
            )
        if finish:
            tail.append("b AS (DELETE FROM bodies WHERE queue_id IN (SELECT queue_id FROM m))")
        query = (
            f"WITH m AS (UPDATE messages m SET {', '.join(sets)} WHERE {where}"  # noqa: S608
            f" RETURNING {'m.queue_id' if finish else self._COLS}), {', '.join(tail)}"
            " SELECT * FROM m"
        )

        async def fn(c: Conn) -> MessageRecord | None:
            row = await (await c.execute(query, args)).fetchone()
            if row is None:
                cur = await c.execute("SELECT state FROM messages WHERE queue_id=%s", (queue_id,))
                found = await cur.fetchone()
                if found is None:
                    raise NotFoundError(f"no message {queue_id}", message_id=queue_id)
                raise StoreError(
                    f"message {queue_id} is {found[0]}, not "
                    + "/".join(s.value for s in expect or ()),
                    message_id=queue_id,
                )
            if finish:
                return None
            # RETURNING saw the tags and recipients before this statement changed them
            rec = self._record(row, None if hold_tags is UNSET else tags)
            if recipients:
                rec = replace(rec, recipients=tuple(
                    Recipient(r.address, *recipients[r.address]) if r.address in recipients
                    else r for r in rec.recipients
                ))  # fmt: skip
            return rec

        # one statement (then only a read to explain a refusal)
        return await self._write1(fn)

    async def set_recipients(
        self, queue_id: str, results: Mapping[str, tuple[RecipientStatus, str]]
    ) -> None:
        if not results:
            return

        async def fn(c: Conn) -> None:
            await c.execute(
                "UPDATE recipients r SET status=v.status, last_error=v.err"
                " FROM unnest(%s::text[], %s::text[], %s::text[]) AS v(address, status, err)"
                " WHERE r.queue_id=%s AND r.address=v.address",
                (
                    list(results),
                    [s.value for s, _ in results.values()],
                    [e for _, e in results.values()],
                    queue_id,
                ),
            )

        await self._write1(fn)

    @staticmethod
    def _event(row: tuple[Any, ...]) -> Event:
        return Event(row[0], row[1], MessageState(row[2]), row[3], row[4])

    async def events(self, queue_id: str) -> list[Event]:
        async def fn(c: Conn) -> list[Event]:
            cur = await c.execute(
                "SELECT queue_id, at, state, reason, actor FROM events WHERE queue_id=%s"
                " ORDER BY id",
                (queue_id,),
            )
            return [self._event(r) for r in await cur.fetchall()]

        return await self._read(fn)

    async def recent_events(self, limit: int = 100) -> list[Event]:
        async def fn(c: Conn) -> list[Event]:
            cur = await c.execute(
                "SELECT queue_id, at, state, reason, actor FROM events ORDER BY id DESC"
                " LIMIT %s",
                (limit,),
            )
            return [self._event(r) for r in await cur.fetchall()]

        return await self._read(fn)

    async def count_by_state(self) -> dict[MessageState, int]:
        async def fn(c: Conn) -> dict[MessageState, int]:
            cur = await c.execute("SELECT state, count(*) FROM messages GROUP BY state")
            return {MessageState(s): int(n) for s, n in await cur.fetchall()}

        return await self._read(fn)

    async def ids_in_state(self, states: Sequence[MessageState]) -> list[str]:
        async def fn(c: Conn) -> list[str]:
            cur = await c.execute(
                "SELECT queue_id FROM messages WHERE state = ANY(%s)"
                " ORDER BY received_at, queue_id",
                ([s.value for s in states],),
            )
            return [q for (q,) in await cur.fetchall()]

        return await self._read(fn)

    async def held_for(self, outbreak_id: str) -> list[str]:
        async def fn(c: Conn) -> list[str]:
            cur = await c.execute(
                "SELECT m.queue_id FROM messages m JOIN hold_tags h USING (queue_id)"
                " WHERE h.outbreak_id=%s AND m.state=%s ORDER BY m.received_at, m.queue_id",
                (outbreak_id, MessageState.HELD.value),
            )
            return [q for (q,) in await cur.fetchall()]

        return await self._read(fn)

    async def outbreak_events(self, outbreak_id: str, limit: int = 100_000) -> list[Event]:
        async def fn(c: Conn) -> list[Event]:
            cur = await c.execute(
                "SELECT queue_id, at, state, reason, actor FROM events WHERE queue_id IN"
                " (SELECT queue_id FROM events WHERE strpos(reason, %s) > 0"
                "  UNION SELECT queue_id FROM hold_tags WHERE outbreak_id=%s)"
                " ORDER BY id LIMIT %s",
                (outbreak_id, outbreak_id, limit),
            )
            return [self._event(r) for r in await cur.fetchall()]

        return await self._read(fn)

    # delivery queue ----------------------------------------------------------------------------
    _QCOLS = "queue_id, due, attempts, last_error, lease_owner, lease_expiry"

    async def claim_due(
        self, owner: str, now: float, limit: int, lease: float
    ) -> list[QueueEntry]:
        expiry = now + lease

        async def fn(c: Conn) -> list[QueueEntry]:
            cur = await c.execute(
                "UPDATE delivery_queue q SET lease_owner=%s, lease_expiry=%s"
                " FROM (SELECT queue_id FROM delivery_queue"
                "       WHERE due<=%s AND (lease_owner='' OR lease_expiry<%s)"
                "       ORDER BY due, queue_id LIMIT %s FOR UPDATE SKIP LOCKED) c"
                " WHERE q.queue_id=c.queue_id"
                " RETURNING q.queue_id, q.due, q.attempts, q.last_error",
                (owner, expiry, now, now, limit),
            )
            rows = sorted(await cur.fetchall(), key=lambda r: (r[1], r[0]))
            return [QueueEntry(r[0], r[1], r[2], r[3], owner, expiry) for r in rows]

        return await self._write1(fn)

    _CLAIM_MESSAGES = (  # constants only
        "WITH q AS (UPDATE delivery_queue q SET lease_owner=%s, lease_expiry=%s"  # noqa: S608
        " FROM (SELECT queue_id FROM delivery_queue"
        "       WHERE due<=%s AND (lease_owner='' OR lease_expiry<%s)"
        "       ORDER BY due, queue_id LIMIT %s FOR UPDATE SKIP LOCKED) c"
        " WHERE q.queue_id=c.queue_id"
        " RETURNING q.queue_id, q.due, q.attempts, q.last_error)"
        " SELECT q.queue_id, q.due, q.attempts, q.last_error, " + _COLS
        + " FROM q LEFT JOIN messages m ON m.queue_id=q.queue_id"
    )

    async def claim_due_messages(
        self, owner: str, now: float, limit: int, lease: float
    ) -> list[tuple[QueueEntry, MessageRecord | None]]:
        """One statement: the lease, and each message read in the same snapshot."""
        expiry = now + lease

        async def fn(c: Conn) -> list[tuple[QueueEntry, MessageRecord | None]]:
            cur = await c.execute(self._CLAIM_MESSAGES, (owner, expiry, now, now, limit))
            rows = sorted(await cur.fetchall(), key=lambda r: (r[1], r[0]))
            return [
                (QueueEntry(r[0], r[1], r[2], r[3], owner, expiry),
                 None if r[4] is None else self._record(r[4:]))
                for r in rows
            ]

        return await self._write1(fn)

    async def defer(self, queue_id: str, due: float, error: str) -> None:
        async def fn(c: Conn) -> None:
            await c.execute(
                "UPDATE delivery_queue SET due=%s, attempts=attempts+1, last_error=%s,"
                " lease_owner='', lease_expiry=0 WHERE queue_id=%s",
                (due, error, queue_id),
            )

        await self._write1(fn)

    async def release_lease(self, queue_id: str) -> None:
        async def fn(c: Conn) -> None:
            await c.execute(
                "UPDATE delivery_queue SET lease_owner='', lease_expiry=0 WHERE queue_id=%s",
                (queue_id,),
            )
            await self._notify(c, CHANGE_QUEUE)

        await self._write(fn)

    async def release_leases_of(self, owner: str) -> int:
        async def fn(c: Conn) -> int:
            cur = await c.execute(
                "UPDATE delivery_queue SET lease_owner='', lease_expiry=0 WHERE lease_owner=%s",
                (owner,),
            )
            await self._notify(c, CHANGE_QUEUE)
            return int(cur.rowcount)

        return await self._write(fn)

    async def dequeue(self, queue_id: str) -> None:
        async def fn(c: Conn) -> None:
            await c.execute("DELETE FROM delivery_queue WHERE queue_id=%s", (queue_id,))

        await self._write1(fn)

    async def queue_entries(self, page: Page = FIRST_PAGE) -> list[QueueEntry]:
        async def fn(c: Conn) -> list[QueueEntry]:
            cur = await c.execute(
                f"SELECT {self._QCOLS} FROM delivery_queue"  # noqa: S608
                " ORDER BY due, queue_id LIMIT %s OFFSET %s",
                (page.limit, page.offset),
            )
            return [QueueEntry(*r) for r in await cur.fetchall()]

        return await self._read(fn)

    async def queue_entry(self, queue_id: str) -> QueueEntry | None:
        async def fn(c: Conn) -> QueueEntry | None:
            cur = await c.execute(
                f"SELECT {self._QCOLS} FROM delivery_queue WHERE queue_id=%s",  # noqa: S608
                (queue_id,),
            )
            row = await cur.fetchone()
            return None if row is None else QueueEntry(*row)

        return await self._read(fn)

    async def retry_now(self, queue_id: str | None, now: float) -> int:
        async def fn(c: Conn) -> int:
            if queue_id is None:
                cur = await c.execute(
                    "UPDATE delivery_queue SET due=%s WHERE due>%s RETURNING 1", (now, now)
                )
            else:
                cur = await c.execute(
                    "UPDATE delivery_queue SET due=%s WHERE queue_id=%s RETURNING 1",
                    (now, queue_id),
                )
            n = len(await cur.fetchall())
            if n:
                await self._notify(c, CHANGE_QUEUE)
            return n

        return await self._write(fn)

    # outbreaks, notices, meta --------------------------------------------------------------------
    async def save_outbreak(self, spec: OutbreakSpec, at: float) -> None:
        async def fn(c: Conn) -> None:
            await c.execute(
                "INSERT INTO outbreaks (outbreak_id, spec, declared_at, updated_at)"
                " VALUES (%s,%s,%s,%s) ON CONFLICT (outbreak_id) DO UPDATE"
                " SET spec=excluded.spec, updated_at=excluded.updated_at, ended_at=NULL,"
                " end_reason=''",
                (spec.outbreak_id, json.dumps(spec.to_json()), at, at),
            )
            await self._notify(c, CHANGE_OUTBREAKS)

        await self._write(fn)

    async def end_outbreak(self, outbreak_id: str, reason: str, at: float) -> None:
        async def fn(c: Conn) -> None:
            cur = await c.execute(
                "UPDATE outbreaks SET ended_at=%s, end_reason=%s, updated_at=%s"
                " WHERE outbreak_id=%s AND ended_at IS NULL RETURNING 1",
                (at, reason, at, outbreak_id),
            )
            if await cur.fetchone() is not None:
                await self._notify(c, CHANGE_OUTBREAKS)
                return
            cur = await c.execute("SELECT 1 FROM outbreaks WHERE outbreak_id=%s", (outbreak_id,))
            if await cur.fetchone() is None:
                raise NotFoundError(f"no outbreak {outbreak_id}")

        await self._write(fn)

    async def outbreaks(self, *, active_only: bool = True) -> list[OutbreakRecord]:
        async def fn(c: Conn) -> list[OutbreakRecord]:
            q = "SELECT spec, declared_at, updated_at, ended_at, end_reason FROM outbreaks"
            if active_only:
                q += " WHERE ended_at IS NULL"
            cur = await c.execute(q + " ORDER BY declared_at, outbreak_id")
            return [
                OutbreakRecord(OutbreakSpec.from_json(json.loads(s)), d, u, e, r)
                for s, d, u, e, r in await cur.fetchall()
            ]

        return await self._read(fn)

    async def get_seq(self, provider: str) -> int:
        async def fn(c: Conn) -> int:
            cur = await c.execute("SELECT seq FROM provider_seq WHERE provider=%s", (provider,))
            row = await cur.fetchone()
            return 0 if row is None else int(row[0])

        return await self._read(fn)

    async def set_seq(self, provider: str, seq: int) -> None:
        async def fn(c: Conn) -> None:
            await c.execute(
                "INSERT INTO provider_seq (provider, seq) VALUES (%s,%s)"
                " ON CONFLICT (provider) DO UPDATE SET seq=excluded.seq",
                (provider, seq),
            )

        await self._write1(fn)

    async def log_notice(self, entry: NoticeLogEntry) -> None:
        async def fn(c: Conn) -> None:
            await c.execute(
                "INSERT INTO notice_log (provider, seq, kind, transport, result, at, detail)"
                " VALUES (%s,%s,%s,%s,%s,%s,%s)",
                (
                    entry.provider,
                    entry.seq,
                    entry.kind,
                    entry.transport,
                    entry.result,
                    entry.at,
                    json.dumps(dict(entry.detail)),
                ),
            )

        await self._write1(fn)

    async def notice_log(self, page: Page = FIRST_PAGE) -> list[NoticeLogEntry]:
        async def fn(c: Conn) -> list[NoticeLogEntry]:
            cur = await c.execute(
                "SELECT provider, seq, kind, transport, result, at, detail FROM notice_log"
                " ORDER BY id DESC LIMIT %s OFFSET %s",
                (page.limit, page.offset),
            )
            return [
                NoticeLogEntry(p, int(s), k, t, r, a, json.loads(d))
                for p, s, k, t, r, a, d in await cur.fetchall()
            ]

        return await self._read(fn)

    async def get_meta(self, key: str, default: str | None = None) -> str | None:
        async def fn(c: Conn) -> str | None:
            cur = await c.execute("SELECT value FROM meta WHERE key=%s", (key,))
            row = await cur.fetchone()
            return default if row is None else str(row[0])

        return await self._read(fn)

    async def set_meta(self, key: str, value: str) -> None:
        async def fn(c: Conn) -> None:
            await c.execute(
                "INSERT INTO meta (key, value) VALUES (%s,%s)"
                " ON CONFLICT (key) DO UPDATE SET value=excluded.value",
                (key, value),
            )
            await self._notify(c, CHANGE_META)

        await self._write(fn)

    # bodies (used by store.bodies.PostgresBodies) -------------------------------------------------
    async def put_body(self, queue_id: str, data: bytes) -> None:
        """Store a body; inside `transaction()` it commits with the message row (one fsync).

        Inside a transaction it is only noted here: the next statement of that transaction
        sends it, and when that is `add_message` of the same id, inside its own statement."""
        tx = self._current_tx()
        if tx is not None:
            tx.bodies[queue_id] = data
            return

        async def fn(c: Conn) -> None:
            await c.execute(self._PUT_BODY, (queue_id, data))

        await self._write1(fn)

    async def get_body(self, queue_id: str) -> bytes:
        async def fn(c: Conn) -> bytes:
            # binary: bytea as raw bytes, not hex text (half the bytes, no encode/decode)
            cur = await c.execute(
                "SELECT data FROM bodies WHERE queue_id=%s", (queue_id,), binary=True
            )
            row = await cur.fetchone()
            if row is None:
                raise NotFoundError(f"no stored body for {queue_id}", message_id=queue_id)
            return bytes(row[0])

        return await self._read(fn)

    async def delete_body(self, queue_id: str) -> None:
        async def fn(c: Conn) -> None:
            await c.execute("DELETE FROM bodies WHERE queue_id=%s", (queue_id,))

        await self._write1(fn)

    async def has_body(self, queue_id: str) -> bool:
        async def fn(c: Conn) -> bool:
            cur = await c.execute("SELECT 1 FROM bodies WHERE queue_id=%s", (queue_id,))
            return await cur.fetchone() is not None

        return await self._read(fn)

    # the installed signature bundle ----------------------------------------------------------
    @staticmethod
    async def _bundle_version(c: Conn, *, lock: bool = False) -> int:
        q = "SELECT value FROM meta WHERE key=%s FOR UPDATE" if lock else (
            "SELECT value FROM meta WHERE key=%s"
        )
        row = await (await c.execute(q, (BUNDLE_VERSION_KEY,))).fetchone()
        return 0 if row is None else int(row[0])

    async def put_bundle(self, version: int, files: Mapping[str, bytes]) -> bool:
        async def fn(c: Conn) -> bool:
            # the meta row is locked (or, on the first install, the insert below conflicts),
            # so two nodes installing at once serialise here
            current = await self._bundle_version(c, lock=True)
            if version < current:
                raise StoreError(f"bundle {version} is older than the installed {current}")
            if version == current:
                return False
            async with c.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO bundle_files (version, name, data) VALUES (%s,%s,%s)"
                    " ON CONFLICT (version, name) DO UPDATE SET data=excluded.data",
                    [(version, name, data) for name, data in sorted(files.items())],
                )
            await c.execute(
                "INSERT INTO meta (key, value) VALUES (%s,%s)"
                " ON CONFLICT (key) DO UPDATE SET value=excluded.value",
                (BUNDLE_VERSION_KEY, str(version)),
            )
            await c.execute("DELETE FROM bundle_files WHERE version<%s", (version,))
            await self._notify(c, CHANGE_META)
            return True

        return await self._write(fn)

    async def bundle_version(self) -> int:
        return await self._read(self._bundle_version)

    async def get_bundle(self, version: int) -> dict[str, bytes]:
        async def fn(c: Conn) -> dict[str, bytes]:
            cur = await c.execute(
                "SELECT name, data FROM bundle_files WHERE version=%s ORDER BY name",
                (version,),
                binary=True,
            )
            rows = await cur.fetchall()
            if not rows:
                raise NotFoundError(f"no stored signature bundle {version}")
            return {str(n): bytes(d) for n, d in rows}

        return await self._read(fn)

    # change fan-out ----------------------------------------------------------------------------
    async def watch_changes(self, poll_interval: float = 5.0) -> AsyncIterator[str]:
        """Yield what changed (`outbreaks`, `queue`, `meta`) as other nodes (and this one) commit.

        LISTENs on a dedicated connection. `resync` means "anything may have changed": it is
        yielded once listening starts (changes before it were not heard), after every
        `poll_interval` without a notification (the poll fallback, cheap insurance), and every
        `poll_interval` while the database cannot be reached (then it keeps retrying).
        """
        while not self._closed:
            try:
                conn: Conn = await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, connect_timeout=10
                )
            except psycopg.Error as exc:
                log.warning("store.listen_failed error=%s", exc)
                yield CHANGE_RESYNC
                await asyncio.sleep(poll_interval)
                continue
            self._listeners.add(conn)
            try:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                yield CHANGE_RESYNC
                while not self._closed:
                    heard = False
                    async for note in conn.notifies(timeout=poll_interval):
                        heard = True
                        yield note.payload
                    if not heard:
                        yield CHANGE_RESYNC
            except psycopg.Error as exc:
                if self._closed:
                    return
                log.warning("store.listen_lost error=%s", exc)
                yield CHANGE_RESYNC
                await asyncio.sleep(min(poll_interval, 1.0))
            finally:
                self._listeners.discard(conn)
                with contextlib.suppress(Exception):
                    await conn.close()
