"""`SqliteStore`: the embedded `Store`, one SQLite file in WAL mode.

Durability: `synchronous=FULL` in WAL mode fsyncs the WAL at every commit, so a row committed
before the SMTP 250 survives a power cut, not only a process crash (NORMAL would only survive the
latter). The fsync costs ~0.2 ms CPU here; commits are one per message on the hot path.

Every call runs on one dedicated thread (sqlite3 calls block), so the event loop never waits on
disk. An asyncio lock serialises units of work; `transaction()` holds it across several calls made
by the same task (the owning task is remembered; tasks it spawns wait like any other caller)
and commits them together. Other processes (the
CLI next to a running gateway) open the same file; WAL lets them read and write safely, with
`busy_timeout` absorbing short write contention.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar, cast

from zerohour.errors import NotFoundError, StoreError
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

T = TypeVar("T")



def _store_error(exc: sqlite3.Error) -> StoreError:
    """`exc` as the store's error, keeping the cause (`store.bodies` tells a full disk by it)."""
    err = StoreError(f"store: {exc}")
    err.__cause__ = exc
    return err


def _lower(value: str | None) -> str | None:
    return value.lower() if isinstance(value, str) else value


def _migrations() -> list[tuple[int, str]]:
    out = []
    for entry in resources.files("zerohour.store.migrations").iterdir():
        name = entry.name
        if name.startswith("sqlite_") and name.endswith(".sql"):
            out.append((int(name.split("_")[1]), entry.read_text(encoding="utf-8")))
    return sorted(out)


class SqliteStore:
    """SQLite implementation of `zerohour.store.base.Store`."""

    def __init__(self, conn: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        self._conn = conn
        self._executor = executor
        self._lock = asyncio.Lock()
        self._closed = False
        self._tx_task: asyncio.Task[Any] | None = None  # the task inside transaction()
        self._pending: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []
        self._flusher: asyncio.Future[None] | None = None
        self._reads: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []
        self._reader: asyncio.Future[None] | None = None

    @classmethod
    async def open(cls, path: Path) -> SqliteStore:
        """Open (creating and migrating) the store file at `path`."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zerohour-sqlite")
        loop = asyncio.get_running_loop()
        try:
            conn = await loop.run_in_executor(executor, cls._connect, path)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(conn, executor)

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=30.0
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            # SQLite's lower() folds ASCII only; the admin search folds like Python does
            conn.create_function("zh_lower", 1, _lower, deterministic=True)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for num, sql in _migrations():
                if num > version:
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        # re-check under the write lock: another process may have migrated
                        current = conn.execute("PRAGMA user_version").fetchone()[0]
                        if num > current:
                            for stmt in sql.split(";\n"):
                                if stmt.strip():
                                    conn.execute(stmt)
                            conn.execute(f"PRAGMA user_version={num:d}")
                        conn.execute("COMMIT")
                    except BaseException:
                        conn.execute("ROLLBACK")
                        raise
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {path}: {exc}") from exc
        return conn

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for flusher in (self._flusher, self._reader):
            if flusher is not None:
                with contextlib.suppress(Exception):
                    await flusher
        async with self._lock:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, self._conn.close)
        self._executor.shutdown(wait=True)

    # plumbing ----------------------------------------------------------------------------------
    async def _call(self, fn: Callable[[sqlite3.Connection], T], *, write: bool = True) -> T:
        loop = asyncio.get_running_loop()
        if self._tx_task is not None and asyncio.current_task() is self._tx_task:
            return await loop.run_in_executor(self._executor, fn, self._conn)
        if self._closed:
            raise StoreError("store is closed")
        if write:
            return await self._group_commit(fn)
        return await self._group_read(fn)

    async def _group_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Reads that arrive together run in one trip to the store's thread (each on its own,
        outside any transaction): with 20 sessions delivering, one thread hand-off and one
        lock round for many `get_message` calls instead of one each (a read cost ~240 us of
        CPU, mostly the hand-off)."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._reads.append((fn, fut))
        if self._reader is None or self._reader.done():
            self._reader = asyncio.ensure_future(self._flush_reads())
        return cast(T, await fut)

    async def _flush_reads(self) -> None:
        loop = asyncio.get_running_loop()
        while self._reads:
            async with self._lock:
                batch, self._reads = self._reads, []
                try:
                    results = await loop.run_in_executor(
                        self._executor, self._run_reads, self._conn, [f for f, _ in batch]
                    )
                except BaseException as exc:
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    raise
            self._settle(batch, results)

    @staticmethod
    def _settle(
        batch: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]],
        results: list[tuple[bool, Any]],
    ) -> None:
        """Hand each caller of a batch its own outcome (a result or its exception)."""
        for (_, fut), (ok, value) in zip(batch, results, strict=True):
            if fut.done():
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

    @staticmethod
    def _run_reads(
        conn: sqlite3.Connection, fns: list[Callable[[sqlite3.Connection], Any]]
    ) -> list[tuple[bool, Any]]:
        out: list[tuple[bool, Any]] = []
        for fn in fns:
            try:
                out.append((True, fn(conn)))
            except sqlite3.Error as exc:
                out.append((False, _store_error(exc)))
            except Exception as exc:
                out.append((False, exc))
        return out

    async def _group_commit(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Group commit: writes that arrive while a commit is in progress are applied together
        (each in its own SAVEPOINT, so one failing does not undo the others) and made durable
        with one COMMIT (one WAL fsync). Each caller still returns only after its commit."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending.append((fn, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())
        return cast(T, await fut)

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending, []
            async with self._lock:
                try:
                    results = await loop.run_in_executor(
                        self._executor, self._run_batch, self._conn, [f for f, _ in batch]
                    )
                except BaseException as exc:  # the COMMIT itself failed: nobody is durable
                    err = exc
                    if isinstance(exc, sqlite3.Error):
                        err = _store_error(exc)
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(err)
                    if not isinstance(exc, Exception):
                        raise
                    continue
            self._settle(batch, results)

    @classmethod
    def _run_batch(
        cls, conn: sqlite3.Connection, fns: list[Callable[[sqlite3.Connection], Any]]
    ) -> list[tuple[bool, Any]]:
        """Apply `fns` in one transaction. Optimistically without a SAVEPOINT each (two
        statements per write saved; writes nearly never fail): when one raises, the whole
        transaction is rolled back and the batch applied again, each in its own SAVEPOINT, so
        that only the failing one is undone. The functions only run SQL on `conn`, so running
        them twice is safe."""
        if len(fns) > 1:
            out: list[tuple[bool, Any]] = []
            conn.execute("BEGIN IMMEDIATE")
            try:
                for fn in fns:
                    out.append((True, fn(conn)))
            except Exception:  # (SQLite may have rolled back already: a full disk)
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            else:
                try:
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                return out
        return cls._run_batch_isolated(conn, fns)

    @staticmethod
    def _run_batch_isolated(
        conn: sqlite3.Connection, fns: list[Callable[[sqlite3.Connection], Any]]
    ) -> list[tuple[bool, Any]]:
        out: list[tuple[bool, Any]] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for fn in fns:
                if len(fns) > 1:
                    conn.execute("SAVEPOINT op")
                try:
                    value = fn(conn)
                except Exception as exc:
                    if len(fns) > 1:
                        conn.execute("ROLLBACK TO op")
                        conn.execute("RELEASE op")
                    elif conn.in_transaction:  # the only write: nothing else to keep
                        conn.execute("ROLLBACK")
                    err: Exception = exc
                    if isinstance(exc, sqlite3.Error):
                        err = _store_error(exc)
                    out.append((False, err))
                    continue
                if len(fns) > 1:
                    conn.execute("RELEASE op")
                out.append((True, value))
            if conn.in_transaction:
                conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return out

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        me = asyncio.current_task()
        if self._tx_task is not None and me is self._tx_task:  # nested: part of the outer one
            yield
            return
        loop = asyncio.get_running_loop()
        async with self._lock:
            await loop.run_in_executor(self._executor, self._conn.execute, "BEGIN IMMEDIATE")
            self._tx_task = me
            try:
                yield
            except BaseException:
                self._tx_task = None
                await loop.run_in_executor(self._executor, self._conn.execute, "ROLLBACK")
                raise
            self._tx_task = None
            await loop.run_in_executor(self._executor, self._conn.execute, "COMMIT")

    # messages ----------------------------------------------------------------------------------
    async def add_message(
        self,
        record: MessageRecord,
        *,
        reason: str,
        actor: str = "smtp",
        queue_due: float | None = None,
        body: bytes | None = None,
        room: Callable[[], None] | None = None,
        lease: Lease | None = None,
    ) -> None:
        """`body`: stored in the `bodies` table by the same write as the row (one commit).
        `room`: called first, on the store's thread (a free-space check raising
        `SpoolFullError`: no file-system call on the event loop)."""

        def fn(c: sqlite3.Connection) -> None:
            if room is not None:
                room()
            try:
                c.execute(
                    "INSERT INTO messages (queue_id, kind, sender, size, received_at, updated_at,"
                    " state, peer, helo, verdict, findings, db_version, summary, reason)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        record.queue_id,
                        record.kind,
                        record.sender,
                        record.size,
                        record.received_at,
                        record.updated_at or record.received_at,
                        record.state.value,
                        record.peer,
                        record.helo,
                        record.verdict,
                        json.dumps(list(record.findings)),
                        record.db_version,
                        None if record.summary is None else json.dumps(record.summary),
                        reason,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"duplicate queue id {record.queue_id}") from exc
            c.executemany(
                "INSERT INTO recipients (queue_id, idx, address, status, last_error)"
                " VALUES (?,?,?,?,?)",
                [
                    (record.queue_id, i, r.address, r.status.value, r.last_error)
                    for i, r in enumerate(record.recipients)
                ],
            )
            c.executemany(
                "INSERT INTO hold_tags (queue_id, outbreak_id) VALUES (?,?)",
                [(record.queue_id, t) for t in record.hold_tags],
            )
            c.execute(
                "INSERT INTO events (queue_id, at, state, reason, actor) VALUES (?,?,?,?,?)",
                (record.queue_id, record.received_at, record.state.value, reason, actor),
            )
            if queue_due is not None:
                owner, expiry = lease or ("", 0.0)
                c.execute(
                    "INSERT INTO delivery_queue (queue_id, due, lease_owner, lease_expiry)"
                    " VALUES (?,?,?,?)",
                    (record.queue_id, queue_due, owner, expiry),
                )
            if body is not None:
                c.execute(self._PUT_BODY, (record.queue_id, body))

        await self._call(fn)

    # bodies (store.bodies.SqliteBodies) ------------------------------------------------------
    _PUT_BODY = "INSERT OR REPLACE INTO bodies (queue_id, data) VALUES (?,?)"

    async def put_body(
        self, queue_id: str, data: bytes, room: Callable[[], None] | None = None
    ) -> None:
        """`room`: as for `add_message`."""

        def fn(c: sqlite3.Connection) -> None:
            if room is not None:
                room()
            c.execute(self._PUT_BODY, (queue_id, data))

        await self._call(fn)

    async def get_body(self, queue_id: str) -> bytes:
        def fn(c: sqlite3.Connection) -> bytes:
            row = c.execute("SELECT data FROM bodies WHERE queue_id=?", (queue_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no stored body for {queue_id}", message_id=queue_id)
            return bytes(row[0])

        return await self._call(fn, write=False)

    async def delete_body(self, queue_id: str) -> bool:
        """Whether there was a body to delete."""

        def fn(c: sqlite3.Connection) -> bool:
            return c.execute("DELETE FROM bodies WHERE queue_id=?", (queue_id,)).rowcount > 0

        return await self._call(fn)

    async def has_body(self, queue_id: str) -> bool:
        def fn(c: sqlite3.Connection) -> bool:
            row = c.execute("SELECT 1 FROM bodies WHERE queue_id=?", (queue_id,)).fetchone()
            return row is not None

        return await self._call(fn, write=False)

    @staticmethod
    def _load(c: sqlite3.Connection, row: sqlite3.Row | tuple[Any, ...]) -> MessageRecord:
        (qid, kind, sender, size, rcv, upd, state, peer, helo, verdict, findings, dbv, summ,
         reason) = row
        rcpts = tuple(
            Recipient(a, RecipientStatus(s), e)
            for a, s, e in c.execute(
                "SELECT address, status, last_error FROM recipients WHERE queue_id=? ORDER BY idx",
                (qid,),
            )
        )
        tags = tuple(
            t
            for (t,) in c.execute(
                "SELECT outbreak_id FROM hold_tags WHERE queue_id=? ORDER BY outbreak_id", (qid,)
            )
        )
        return MessageRecord(
            queue_id=qid,
            sender=sender,
            recipients=rcpts,
            size=size,
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
            hold_tags=tags,
            kind=kind,
        )

    _COLS = (
        "m.queue_id, m.kind, m.sender, m.size, m.received_at, m.updated_at, m.state, m.peer,"
        " m.helo, m.verdict, m.findings, m.db_version, m.summary, m.reason"
    )

    async def get_message(self, queue_id: str) -> MessageRecord:
        def fn(c: sqlite3.Connection) -> MessageRecord:
            row = c.execute(
                f"SELECT {self._COLS} FROM messages m WHERE queue_id=?",  # noqa: S608
                (queue_id,),
            ).fetchone()
            if row is None:
                raise NotFoundError(f"no message {queue_id}", message_id=queue_id)
            return self._load(c, row)

        return await self._call(fn, write=False)

    @staticmethod
    def _where(flt: MessageFilter) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if flt.states:
            clauses.append(f"m.state IN ({','.join('?' * len(flt.states))})")
            args.extend(s.value for s in flt.states)
        if flt.outbreak_id is not None:
            clauses.append(
                "EXISTS (SELECT 1 FROM hold_tags h WHERE h.queue_id=m.queue_id"
                " AND h.outbreak_id=?)"
            )
            args.append(flt.outbreak_id)
        if flt.sender is not None:
            clauses.append("instr(lower(m.sender), lower(?)) > 0")
            args.append(flt.sender)
        if flt.recipient is not None:
            clauses.append(
                "EXISTS (SELECT 1 FROM recipients r WHERE r.queue_id=m.queue_id"
                " AND instr(lower(r.address), lower(?)) > 0)"
            )
            args.append(flt.recipient)
        if flt.text is not None:
            needle = flt.text.lower()
            clauses.append(
                "(instr(zh_lower(json_extract(m.summary, '$.subject')), ?) > 0"
                " OR EXISTS (SELECT 1 FROM json_each(m.summary, '$.attachments') a"
                " WHERE instr(zh_lower(json_extract(a.value, '$[1]')), ?) > 0))"
            )
            args.extend((needle, needle))
        for col, op, val in (
            ("m.size", ">=", flt.min_size),
            ("m.size", "<=", flt.max_size),
            ("m.received_at", "<", flt.received_before),
            ("m.received_at", ">=", flt.received_after),
        ):
            if val is not None:
                clauses.append(f"{col} {op} ?")
                args.append(val)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

    async def list_messages(
        self, flt: MessageFilter = ALL_MESSAGES, page: Page = FIRST_PAGE
    ) -> list[MessageRecord]:
        where, args = self._where(flt)

        def fn(c: sqlite3.Connection) -> list[MessageRecord]:
            rows = c.execute(
                f"SELECT {self._COLS} FROM messages m{where}"  # noqa: S608
                " ORDER BY m.received_at DESC, m.queue_id DESC LIMIT ? OFFSET ?",
                [*args, page.limit, page.offset],
            ).fetchall()
            return [self._load(c, r) for r in rows]

        return await self._call(fn, write=False)

    async def count_messages(self, flt: MessageFilter = ALL_MESSAGES) -> int:
        where, args = self._where(flt)

        def fn(c: sqlite3.Connection) -> int:
            return int(
                c.execute(f"SELECT count(*) FROM messages m{where}", args).fetchone()[0]  # noqa: S608
            )

        return await self._call(fn, write=False)

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
        now = time.time()

        def fn(c: sqlite3.Connection) -> MessageRecord:
            self._transition_rows(
                c, queue_id, state, now, reason=reason, actor=actor, expect=expect,
                verdict=verdict, findings=findings, db_version=db_version, summary=summary,
                hold_tags=hold_tags, queue_due=queue_due, recipients=recipients,
            )
            out = c.execute(
                f"SELECT {self._COLS} FROM messages m WHERE queue_id=?",  # noqa: S608
                (queue_id,),
            ).fetchone()
            return self._load(c, out)

        return await self._call(fn)

    async def finish(
        self,
        queue_id: str,
        state: MessageState,
        *,
        reason: str,
        actor: str,
        recipients: Mapping[str, tuple[RecipientStatus, str]] | None = None,
    ) -> bool:
        """A delivery's last write: `transition(..., queue_due=None)` to `state` and the body
        row deleted, in one write, and no record read back (the delivery has it). True when
        there was a body row (`SqliteBodies` deletes a spool file otherwise)."""
        now = time.time()

        def fn(c: sqlite3.Connection) -> bool:
            self._transition_rows(c, queue_id, state, now, reason=reason, actor=actor,
                                  queue_due=None, recipients=recipients)
            return c.execute("DELETE FROM bodies WHERE queue_id=?", (queue_id,)).rowcount > 0

        return await self._call(fn)

    @staticmethod
    def _transition_rows(
        c: sqlite3.Connection,
        queue_id: str,
        state: MessageState,
        now: float,
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
    ) -> None:
        row = c.execute("SELECT state FROM messages WHERE queue_id=?", (queue_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no message {queue_id}", message_id=queue_id)
        if expect is not None and MessageState(row[0]) not in expect:
            raise StoreError(
                f"message {queue_id} is {row[0]}, not " + "/".join(s.value for s in expect),
                message_id=queue_id,
            )
        sets = ["state=?", "updated_at=?", "reason=?"]
        args: list[Any] = [state.value, now, reason]
        if verdict is not UNSET:
            sets.append("verdict=?")
            args.append(verdict)
        if findings is not UNSET:
            sets.append("findings=?")
            args.append(json.dumps(list(findings)))
        if db_version is not UNSET:
            sets.append("db_version=?")
            args.append(db_version)
        if summary is not UNSET:
            sets.append("summary=?")
            args.append(None if summary is None else json.dumps(summary))
        c.execute(
            f"UPDATE messages SET {', '.join(sets)} WHERE queue_id=?",  # noqa: S608
            [*args, queue_id],
        )
        if hold_tags is not UNSET:
            c.execute("DELETE FROM hold_tags WHERE queue_id=?", (queue_id,))
            c.executemany(
                "INSERT INTO hold_tags (queue_id, outbreak_id) VALUES (?,?)",
                [(queue_id, t) for t in sorted(set(hold_tags))],
            )
        if queue_due is not UNSET:
            if queue_due is None:
                c.execute("DELETE FROM delivery_queue WHERE queue_id=?", (queue_id,))
            else:
                c.execute(
                    "INSERT INTO delivery_queue (queue_id, due) VALUES (?,?)"
                    " ON CONFLICT(queue_id) DO UPDATE SET due=excluded.due,"
                    " lease_owner='', lease_expiry=0",
                    (queue_id, queue_due),
                )
        if recipients:
            c.executemany(
                "UPDATE recipients SET status=?, last_error=? WHERE queue_id=? AND address=?",
                [(st.value, e, queue_id, a) for a, (st, e) in recipients.items()],
            )
        c.execute(
            "INSERT INTO events (queue_id, at, state, reason, actor) VALUES (?,?,?,?,?)",
            (queue_id, now, state.value, reason, actor),
        )

    async def set_recipients(
        self, queue_id: str, results: Mapping[str, tuple[RecipientStatus, str]]
    ) -> None:
        def fn(c: sqlite3.Connection) -> None:
            c.executemany(
                "UPDATE recipients SET status=?, last_error=? WHERE queue_id=? AND address=?",
                [(s.value, e, queue_id, a) for a, (s, e) in results.items()],
            )

        await self._call(fn)

    @staticmethod
    def _event(row: tuple[Any, ...]) -> Event:
        return Event(row[0], row[1], MessageState(row[2]), row[3], row[4])

    async def events(self, queue_id: str) -> list[Event]:
        def fn(c: sqlite3.Connection) -> list[Event]:
            return [
                self._event(r)
                for r in c.execute(
                    "SELECT queue_id, at, state, reason, actor FROM events WHERE queue_id=?"
                    " ORDER BY id",
                    (queue_id,),
                )
            ]

        return await self._call(fn, write=False)

    async def recent_events(self, limit: int = 100) -> list[Event]:
        def fn(c: sqlite3.Connection) -> list[Event]:
            return [
                self._event(r)
                for r in c.execute(
                    "SELECT queue_id, at, state, reason, actor FROM events ORDER BY id DESC"
                    " LIMIT ?",
                    (limit,),
                )
            ]

        return await self._call(fn, write=False)

    async def count_by_state(self) -> dict[MessageState, int]:
        def fn(c: sqlite3.Connection) -> dict[MessageState, int]:
            return {
                MessageState(s): n
                for s, n in c.execute("SELECT state, count(*) FROM messages GROUP BY state")
            }

        return await self._call(fn, write=False)

    async def ids_in_state(self, states: Sequence[MessageState]) -> list[str]:
        def fn(c: sqlite3.Connection) -> list[str]:
            return [
                q
                for (q,) in c.execute(
                    f"SELECT queue_id FROM messages WHERE state IN"  # noqa: S608
                    f" ({','.join('?' * len(states))}) ORDER BY received_at",
                    [s.value for s in states],
                )
            ]

        return await self._call(fn, write=False)

    async def held_for(self, outbreak_id: str) -> list[str]:
        def fn(c: sqlite3.Connection) -> list[str]:
            return [
                q
                for (q,) in c.execute(
                    "SELECT m.queue_id FROM messages m JOIN hold_tags h USING (queue_id)"
                    " WHERE h.outbreak_id=? AND m.state=? ORDER BY m.received_at",
                    (outbreak_id, MessageState.HELD.value),
                )
            ]

        return await self._call(fn, write=False)

    async def outbreak_events(self, outbreak_id: str, limit: int = 100_000) -> list[Event]:
        def fn(c: sqlite3.Connection) -> list[Event]:
            return [
                self._event(r)
                for r in c.execute(
                    "SELECT queue_id, at, state, reason, actor FROM events WHERE queue_id IN"
                    " (SELECT queue_id FROM events WHERE instr(reason, ?) > 0"
                    "  UNION SELECT queue_id FROM hold_tags WHERE outbreak_id=?)"
                    " ORDER BY id LIMIT ?",
                    (outbreak_id, outbreak_id, limit),
                )
            ]

        return await self._call(fn, write=False)

    # delivery queue ----------------------------------------------------------------------------
    @staticmethod
    def _entry(row: tuple[Any, ...]) -> QueueEntry:
        return QueueEntry(*row)

    async def claim_due(
        self, owner: str, now: float, limit: int, lease: float
    ) -> list[QueueEntry]:
        def fn(c: sqlite3.Connection) -> list[QueueEntry]:
            return self._claim_rows(c, owner, now, limit, lease)

        return await self._call(fn)

    @staticmethod
    def _claim_rows(
        c: sqlite3.Connection, owner: str, now: float, limit: int, lease: float
    ) -> list[QueueEntry]:
        rows = c.execute(
            "SELECT queue_id, due, attempts, last_error, lease_owner, lease_expiry"
            " FROM delivery_queue WHERE due<=? AND (lease_owner='' OR lease_expiry<?)"
            " ORDER BY due LIMIT ?",
            (now, now, limit),
        ).fetchall()
        c.executemany(
            "UPDATE delivery_queue SET lease_owner=?, lease_expiry=? WHERE queue_id=?",
            [(owner, now + lease, r[0]) for r in rows],
        )
        return [QueueEntry(r[0], r[1], r[2], r[3], owner, now + lease) for r in rows]

    async def claim_due_messages(
        self, owner: str, now: float, limit: int, lease: float
    ) -> list[tuple[QueueEntry, MessageRecord | None]]:
        def fn(c: sqlite3.Connection) -> list[tuple[QueueEntry, MessageRecord | None]]:
            entries = self._claim_rows(c, owner, now, limit, lease)
            out: list[tuple[QueueEntry, MessageRecord | None]] = []
            for e in entries:
                row = c.execute(
                    f"SELECT {self._COLS} FROM messages m WHERE queue_id=?",  # noqa: S608
                    (e.queue_id,),
                ).fetchone()
                out.append((e, None if row is None else self._load(c, row)))
            return out

        return await self._call(fn)

    async def defer(self, queue_id: str, due: float, error: str) -> None:
        def fn(c: sqlite3.Connection) -> None:
            c.execute(
                "UPDATE delivery_queue SET due=?, attempts=attempts+1, last_error=?,"
                " lease_owner='', lease_expiry=0 WHERE queue_id=?",
                (due, error, queue_id),
            )

        await self._call(fn)

    async def release_lease(self, queue_id: str) -> None:
        def fn(c: sqlite3.Connection) -> None:
            c.execute(
                "UPDATE delivery_queue SET lease_owner='', lease_expiry=0 WHERE queue_id=?",
                (queue_id,),
            )

        await self._call(fn)

    async def release_leases_of(self, owner: str) -> int:
        def fn(c: sqlite3.Connection) -> int:
            cur = c.execute(
                "UPDATE delivery_queue SET lease_owner='', lease_expiry=0 WHERE lease_owner=?",
                (owner,),
            )
            return int(cur.rowcount)

        return await self._call(fn)

    async def clear_leases(self) -> int:
        """Give back every lease: for a single-node store at start-up, where any lease left is
        from a process that is gone (a crash)."""

        def fn(c: sqlite3.Connection) -> int:
            cur = c.execute(
                "UPDATE delivery_queue SET lease_owner='', lease_expiry=0 WHERE lease_owner!=''"
            )
            return int(cur.rowcount)

        return await self._call(fn)

    async def dequeue(self, queue_id: str) -> None:
        def fn(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM delivery_queue WHERE queue_id=?", (queue_id,))

        await self._call(fn)

    async def queue_entries(self, page: Page = FIRST_PAGE) -> list[QueueEntry]:
        def fn(c: sqlite3.Connection) -> list[QueueEntry]:
            return [
                self._entry(r)
                for r in c.execute(
                    "SELECT queue_id, due, attempts, last_error, lease_owner, lease_expiry"
                    " FROM delivery_queue ORDER BY due LIMIT ? OFFSET ?",
                    (page.limit, page.offset),
                )
            ]

        return await self._call(fn, write=False)

    async def queue_entry(self, queue_id: str) -> QueueEntry | None:
        def fn(c: sqlite3.Connection) -> QueueEntry | None:
            row = c.execute(
                "SELECT queue_id, due, attempts, last_error, lease_owner, lease_expiry"
                " FROM delivery_queue WHERE queue_id=?",
                (queue_id,),
            ).fetchone()
            return None if row is None else self._entry(row)

        return await self._call(fn, write=False)

    async def retry_now(self, queue_id: str | None, now: float) -> int:
        def fn(c: sqlite3.Connection) -> int:
            if queue_id is None:
                cur = c.execute("UPDATE delivery_queue SET due=? WHERE due>?", (now, now))
            else:
                cur = c.execute(
                    "UPDATE delivery_queue SET due=? WHERE queue_id=?", (now, queue_id)
                )
            return int(cur.rowcount)

        return await self._call(fn)

    # outbreaks, notices, meta --------------------------------------------------------------------
    async def save_outbreak(self, spec: OutbreakSpec, at: float) -> None:
        def fn(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO outbreaks (outbreak_id, spec, declared_at, updated_at)"
                " VALUES (?,?,?,?) ON CONFLICT(outbreak_id) DO UPDATE SET spec=excluded.spec,"
                " updated_at=excluded.updated_at, ended_at=NULL, end_reason=''",
                (spec.outbreak_id, json.dumps(spec.to_json()), at, at),
            )

        await self._call(fn)

    async def end_outbreak(self, outbreak_id: str, reason: str, at: float) -> None:
        def fn(c: sqlite3.Connection) -> None:
            cur = c.execute(
                "UPDATE outbreaks SET ended_at=?, end_reason=?, updated_at=?"
                " WHERE outbreak_id=? AND ended_at IS NULL",
                (at, reason, at, outbreak_id),
            )
            if cur.rowcount == 0 and c.execute(
                "SELECT 1 FROM outbreaks WHERE outbreak_id=?", (outbreak_id,)
            ).fetchone() is None:
                raise NotFoundError(f"no outbreak {outbreak_id}")

        await self._call(fn)

    async def outbreaks(self, *, active_only: bool = True) -> list[OutbreakRecord]:
        def fn(c: sqlite3.Connection) -> list[OutbreakRecord]:
            sql = "SELECT spec, declared_at, updated_at, ended_at, end_reason FROM outbreaks"
            if active_only:
                sql += " WHERE ended_at IS NULL"
            return [
                OutbreakRecord(OutbreakSpec.from_json(json.loads(s)), d, u, e, r)
                for s, d, u, e, r in c.execute(sql + " ORDER BY declared_at")
            ]

        return await self._call(fn, write=False)

    async def get_seq(self, provider: str) -> int:
        def fn(c: sqlite3.Connection) -> int:
            row = c.execute(
                "SELECT seq FROM provider_seq WHERE provider=?", (provider,)
            ).fetchone()
            return 0 if row is None else int(row[0])

        return await self._call(fn, write=False)

    async def set_seq(self, provider: str, seq: int) -> None:
        def fn(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO provider_seq (provider, seq) VALUES (?,?)"
                " ON CONFLICT(provider) DO UPDATE SET seq=excluded.seq",
                (provider, seq),
            )

        await self._call(fn)

    async def log_notice(self, entry: NoticeLogEntry) -> None:
        def fn(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO notice_log (provider, seq, kind, transport, result, at, detail)"
                " VALUES (?,?,?,?,?,?,?)",
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

        await self._call(fn)

    async def notice_log(self, page: Page = FIRST_PAGE) -> list[NoticeLogEntry]:
        def fn(c: sqlite3.Connection) -> list[NoticeLogEntry]:
            return [
                NoticeLogEntry(p, s, k, t, r, a, json.loads(d))
                for p, s, k, t, r, a, d in c.execute(
                    "SELECT provider, seq, kind, transport, result, at, detail FROM notice_log"
                    " ORDER BY id DESC LIMIT ? OFFSET ?",
                    (page.limit, page.offset),
                )
            ]

        return await self._call(fn, write=False)

    async def get_meta(self, key: str, default: str | None = None) -> str | None:
        def fn(c: sqlite3.Connection) -> str | None:
            row = c.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
            return default if row is None else str(row[0])

        return await self._call(fn, write=False)

    async def set_meta(self, key: str, value: str) -> None:
        def fn(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?,?)"
                " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, value),
            )

        await self._call(fn)

    # the installed signature bundle ----------------------------------------------------------
    @staticmethod
    def _bundle_version(c: sqlite3.Connection) -> int:
        row = c.execute("SELECT value FROM meta WHERE key=?", (BUNDLE_VERSION_KEY,)).fetchone()
        return 0 if row is None else int(row[0])

    async def put_bundle(self, version: int, files: Mapping[str, bytes]) -> bool:
        def fn(c: sqlite3.Connection) -> bool:
            current = self._bundle_version(c)
            if version < current:
                raise StoreError(f"bundle {version} is older than the installed {current}")
            if version == current:
                return False
            c.executemany(
                "INSERT OR REPLACE INTO bundle_files (version, name, data) VALUES (?,?,?)",
                [(version, name, data) for name, data in sorted(files.items())],
            )
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?,?)"
                " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (BUNDLE_VERSION_KEY, str(version)),
            )
            c.execute("DELETE FROM bundle_files WHERE version<?", (version,))
            return True

        return await self._call(fn)

    async def bundle_version(self) -> int:
        return await self._call(self._bundle_version, write=False)

    async def get_bundle(self, version: int) -> dict[str, bytes]:
        def fn(c: sqlite3.Connection) -> dict[str, bytes]:
            rows = c.execute(
                "SELECT name, data FROM bundle_files WHERE version=? ORDER BY name", (version,)
            ).fetchall()
            if not rows:
                raise NotFoundError(f"no stored signature bundle {version}")
            return {str(n): bytes(d) for n, d in rows}

        return await self._call(fn, write=False)

    async def watch_changes(self, poll_interval: float = 1.0) -> AsyncIterator[str]:
        """Poll `PRAGMA data_version`, which moves when another connection (the CLI, another
        process) commits: yield "resync" at start and after each such change."""
        last: int | None = None
        while not self._closed:
            try:
                version = await self._call(
                    lambda c: int(c.execute("PRAGMA data_version").fetchone()[0]), write=False
                )
            except StoreError:
                return  # closed meanwhile
            if version != last:
                last = version
                yield "resync"
            await asyncio.sleep(poll_interval)
