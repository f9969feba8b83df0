"""Where message bodies live: the `BodyStore` protocol and `PostgresBodies` for a cluster.

`gateway.spool.Spool` (a local folder, fsync'd before the 250) satisfies `BodyStore` and is
right for one node. A cluster keeps bodies in PostgreSQL instead (`bodies` table, bytea), so
every node can scan, deliver, release and show any message and no shared file system is needed;
written inside `store.transaction()` together with the message row, the body and the row become
durable with one fsync'd commit (measured against a spool file in bench/cluster.py; the choice
is documented in docs/cluster.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from zerohour.errors import SpoolError, SpoolFullError, StoreError

if TYPE_CHECKING:  # importing psycopg costs ~0.2 s: only a cluster store pays it
    from zerohour.store.postgres import PostgresStore

# SQLSTATE disk_full, out_of_memory (class 53: insufficient resources)
NO_SPACE = frozenset({"53100", "53200"})


class BodyStore(Protocol):
    """The part of `gateway.spool.Spool` the pipeline, delivery queue and releaser use."""

    def check_space(self, incoming: int = 0) -> None:
        """Raise `SpoolFullError` when `incoming` more bytes cannot be kept."""

    async def write(self, queue_id: str, data: bytes) -> None:
        """Durable when it returns (or, inside a store transaction, when that commits)."""

    async def read(self, queue_id: str) -> bytes:
        """Raise `NotFoundError` when there is no body."""

    async def delete(self, queue_id: str) -> None: ...

    def clean_tmp(self) -> int:
        """Drop leftovers of writes that never completed; returns how many."""

    def close(self) -> None:
        """Release local resources (threads); the gateway calls it last, off the loop."""


class PostgresBodies:
    """Bodies in the PostgreSQL store's `bodies` table (shared by every node)."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

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

    async def read(self, queue_id: str) -> bytes:
        return await self.store.get_body(queue_id)

    async def delete(self, queue_id: str) -> None:
        await self.store.delete_body(queue_id)

    async def exists(self, queue_id: str) -> bool:
        return await self.store.has_body(queue_id)

    def clean_tmp(self) -> int:
        """Nothing to clean: a body whose transaction never committed does not exist."""
        return 0

    def close(self) -> None:
        """Nothing local to release: the store owns the connections."""
