"""Where message bodies live: the `BodyStore` protocol, `SqliteBodies` for the embedded store and
`PostgresBodies` for a cluster.

`gateway.spool.Spool` (a local folder, fsync'd before the 250) satisfies `BodyStore`. With the
embedded SQLite store, bodies of up to `INLINE_MAX` bytes go into its `bodies` table instead,
inserted with the message row (`SqliteBodies`), and larger ones stay spool files. Why: a spool
file costs a create, a write, an fsync, a rename, a share of a directory fsync and later an
unlink, about a quarter of the gateway's own CPU per 5 KB message (py-spy, bench/smtp.py); a
row rides the group commit the message row needs anyway (one WAL fsync for the whole group).
A cluster keeps bodies in PostgreSQL (`bodies` table, bytea), so every node can scan, deliver,
release and show any message and no shared file system is needed; written inside
`store.transaction()` together with the message row, the body and the row become durable with
one fsync'd commit (measured against a spool file in bench/cluster.py; the choice is documented
in docs/cluster.md).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from zerohour.errors import NotFoundError, SpoolError, SpoolFullError, StoreError

if TYPE_CHECKING:  # importing psycopg costs ~0.2 s: only a cluster store pays it
    from zerohour.store.base import Lease, MessageRecord, MessageState, RecipientStatus, Store
    from zerohour.store.postgres import PostgresStore
    from zerohour.store.sqlite import SqliteStore

# SQLSTATE disk_full, out_of_memory (class 53: insufficient resources)
NO_SPACE = frozenset({"53100", "53200"})
#: Largest body `SqliteBodies` keeps in the SQLite store (larger ones are spool files). At
#: 100 KB a body costs about the same CPU either way (SQLite's thread 1.2-1.4 ms per message
#: against 0.5 ms in SQLite's and 0.8 ms in the spool's threads, bench/smtp.py's 100 KB MIME);
#: past a few hundred KB every row would pass through the WAL twice (commit, checkpoint).
INLINE_MAX = 256 * 1024
#: bodies kept in memory after their write (total bytes; larger bodies are never kept)
RECENT_BYTES = 32 * 1024 * 1024
RECENT_MAX_BODY = 1024 * 1024


class BodyStore(Protocol):
    """The part of `gateway.spool.Spool` the pipeline, delivery queue and releaser use."""

    def check_space(self, incoming: int = 0) -> None:
        """Raise `SpoolFullError` when `incoming` more bytes cannot be kept."""

    async def write(self, queue_id: str, data: bytes) -> None:
        """Durable when it returns (or, inside a store transaction, when that commits)."""

    async def add_with_message(
        self, store: Store, record: MessageRecord, data: bytes, *, reason: str,
        actor: str = "smtp", queue_due: float | None = None, lease: Lease | None = None,
    ) -> None:
        """Keep `data` as the body of the new message `record` and insert `record`: both
        durable when this returns, and never a row without its body."""

    async def finish(
        self, store: Store, queue_id: str, state: MessageState, *, reason: str, actor: str,
        recipients: Mapping[str, tuple[RecipientStatus, str]] | None = None,
    ) -> None:
        """A delivery's end: `queue_id` leaves the queue in its final `state` (`recipients`
        updated) and its body goes."""

    async def read(self, queue_id: str) -> bytes:
        """Raise `NotFoundError` when there is no body."""

    async def delete(self, queue_id: str) -> None: ...

    def clean_tmp(self) -> int:
        """Drop leftovers of writes that never completed; returns how many."""

    def close(self) -> None:
        """Release local resources (threads); the gateway calls it last, off the loop."""


class RecentBodies:
    """Bodies this process wrote recently, so that the delivery that usually follows within
    milliseconds reads them without a trip to the disk or the store's thread (a body never
    changes once written: a stripped copy gets a new queue id). Event-loop thread only."""

    def __init__(self, limit: int = RECENT_BYTES, max_body: int = RECENT_MAX_BODY) -> None:
        self._bodies: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._limit = limit
        self._max_body = max_body

    def get(self, queue_id: str) -> bytes | None:
        return self._bodies.get(queue_id)

    def keep(self, queue_id: str, data: bytes) -> None:
        if len(data) > self._max_body:
            return
        self.forget(queue_id)
        self._bodies[queue_id] = data
        self._bytes += len(data)
        while self._bytes > self._limit:
            _, gone = self._bodies.popitem(last=False)
            self._bytes -= len(gone)

    def forget(self, queue_id: str) -> None:
        old = self._bodies.pop(queue_id, None)
        if old is not None:
            self._bytes -= len(old)


class SqliteBodies:
    """Bodies of up to `inline_max` bytes in the SQLite store, larger ones in `files` (the
    spool folder). Reads look in the store first, then in the folder."""

    def __init__(self, store: SqliteStore, files: BodyStore, inline_max: int = INLINE_MAX) -> None:
        self.store = store
        self.files = files
        self.inline_max = inline_max
        self._recent = RecentBodies()

    def check_space(self, incoming: int = 0) -> None:
        self.files.check_space(incoming)  # the store file lives in the same data folder

    async def write(self, queue_id: str, data: bytes) -> None:
        if len(data) > self.inline_max:
            await self.files.write(queue_id, data)
            return
        try:
            await self.store.put_body(queue_id, data, room=lambda: self.check_space(len(data)))
        except StoreError as exc:
            raise _write_error(exc, queue_id) from exc
        self._recent.keep(queue_id, data)

    async def add_with_message(
        self, store: Store, record: MessageRecord, data: bytes, *, reason: str,
        actor: str = "smtp", queue_due: float | None = None, lease: Lease | None = None,
    ) -> None:
        if store is not self.store or len(data) > self.inline_max:
            await self.files.add_with_message(
                store, record, data, reason=reason, actor=actor, queue_due=queue_due,
                lease=lease,
            )
            return
        try:
            await self.store.add_message(
                record, reason=reason, actor=actor, queue_due=queue_due, body=data,
                room=lambda: self.check_space(len(data)),  # on the store's thread
                lease=lease,
            )
        except StoreError as exc:
            if _disk_full(exc):
                raise _write_error(exc, record.queue_id) from exc
            raise
        self._recent.keep(record.queue_id, data)

    async def finish(
        self, store: Store, queue_id: str, state: MessageState, *, reason: str, actor: str,
        recipients: Mapping[str, tuple[RecipientStatus, str]] | None = None,
    ) -> None:
        """One write for the final state and the body row (none to read back)."""
        if store is not self.store:
            await self.files.finish(store, queue_id, state, reason=reason, actor=actor,
                                    recipients=recipients)
            return
        self._recent.forget(queue_id)
        if not await self.store.finish(queue_id, state, reason=reason, actor=actor,
                                       recipients=recipients):
            await self.files.delete(queue_id)  # a large body: a spool file

    async def read(self, queue_id: str) -> bytes:
        data = self._recent.get(queue_id)
        if data is not None:
            return data
        try:
            return await self.store.get_body(queue_id)
        except NotFoundError:
            return await self.files.read(queue_id)

    async def delete(self, queue_id: str) -> None:
        self._recent.forget(queue_id)
        if not await self.store.delete_body(queue_id):
            await self.files.delete(queue_id)

    async def exists(self, queue_id: str) -> bool:
        if await self.store.has_body(queue_id):
            return True
        try:
            await self.files.read(queue_id)
        except NotFoundError:
            return False
        return True

    def clean_tmp(self) -> int:
        return self.files.clean_tmp()

    def close(self) -> None:
        self.files.close()


async def transition_then_delete(
    bodies: BodyStore, store: Store, queue_id: str, state: MessageState, *, reason: str,
    actor: str, recipients: Mapping[str, tuple[RecipientStatus, str]] | None = None,
) -> None:
    """`finish` where the body is not written with the row: the final state first, then the
    body (one left by a crash between the two is only garbage, never a lost message)."""
    await store.transition(queue_id, state, reason=reason, actor=actor, queue_due=None,
                           recipients=recipients)
    await bodies.delete(queue_id)


def _disk_full(exc: StoreError) -> bool:
    cause = exc.__cause__
    return getattr(cause, "sqlite_errorname", "") == "SQLITE_FULL"


def _write_error(exc: StoreError, queue_id: str) -> SpoolError:
    if _disk_full(exc):
        return SpoolFullError("insufficient store space", message_id=queue_id, stage="spool")
    return SpoolError(f"body write failed: {exc}", message_id=queue_id, stage="spool")


class PostgresBodies:
    """Bodies in the PostgreSQL store's `bodies` table (shared by every node). A body this
    node accepted is also kept in memory for its delivery (`RecentBodies`: one round trip
    less per message); other nodes read the table."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self._recent = RecentBodies()

    def check_space(self, incoming: int = 0) -> None:
        """Free space is PostgreSQL's to manage; a full disk fails `write` with
        `SpoolFullError` (SMTP 452) instead."""

    async def write(self, queue_id: str, data: bytes) -> None:
        try:
            await self.store.put_body(queue_id, data)
        except StoreError as exc:
            if getattr(exc.__cause__, "sqlstate", None) in NO_SPACE:
                raise SpoolFullError(
                    "insufficient store space", message_id=queue_id, stage="spool"
                ) from exc
            raise SpoolError(
                f"body write failed: {exc}", message_id=queue_id, stage="spool"
            ) from exc

    async def add_with_message(
        self, store: Store, record: MessageRecord, data: bytes, *, reason: str,
        actor: str = "smtp", queue_due: float | None = None, lease: Lease | None = None,
    ) -> None:
        async with store.transaction():  # body and row commit together
            await self.write(record.queue_id, data)
            await store.add_message(record, reason=reason, actor=actor, queue_due=queue_due,
                                    lease=lease)
        self._recent.keep(record.queue_id, data)  # committed

    async def finish(
        self, store: Store, queue_id: str, state: MessageState, *, reason: str, actor: str,
        recipients: Mapping[str, tuple[RecipientStatus, str]] | None = None,
    ) -> None:
        self._recent.forget(queue_id)
        if store is self.store:  # one statement: state, queue row and body together
            await self.store.finish(queue_id, state, reason=reason, actor=actor,
                                    recipients=recipients)
            return
        await transition_then_delete(self, store, queue_id, state, reason=reason, actor=actor,
                                     recipients=recipients)

    async def read(self, queue_id: str) -> bytes:
        data = self._recent.get(queue_id)
        if data is not None:
            return data
        return await self.store.get_body(queue_id)

    async def delete(self, queue_id: str) -> None:
        self._recent.forget(queue_id)
        await self.store.delete_body(queue_id)

    async def exists(self, queue_id: str) -> bool:
        return await self.store.has_body(queue_id)

    def clean_tmp(self) -> int:
        """Nothing to clean: a body whose transaction never committed does not exist."""
        return 0

    def close(self) -> None:
        """Nothing local to release: the store owns the connections."""
