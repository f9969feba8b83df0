"""Administrator operations on stored mail (quarantine, hold, queue) for the CLI and admin API.

They act on the store and spool in the data folder directly, so they work next to a running
gateway (SQLite WAL) or without one; the gateway's delivery queue polls for work, so mail queued
here is picked up within `delivery.poll_interval`. Releases rescan with the database the gateway
last installed (recorded in the store), loaded in this process.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zerohour.config import Config
from zerohour.gateway.outbreak.release import Releaser, ReleaseResult, delete_message
from zerohour.gateway.outbreak.state import DB_DIRS_KEY, OutbreakState
from zerohour.gateway.pipeline import policy_from
from zerohour.gateway.scanner import LocalScanner
from zerohour.gateway.spool import Spool
from zerohour.store.base import (
    Event,
    MessageFilter,
    MessageRecord,
    MessageState,
    Page,
    QueueEntry,
    Store,
)
from zerohour.store.bodies import BodyStore
from zerohour.store.factory import open_bodies, open_store


def record_json(r: MessageRecord) -> dict[str, Any]:
    return {
        "queue_id": r.queue_id,
        "state": r.state.value,
        "kind": r.kind,
        "sender": r.sender,
        "recipients": [
            {"address": x.address, "status": x.status.value, "last_error": x.last_error}
            for x in r.recipients
        ],
        "size": r.size,
        "received_at": r.received_at,
        "updated_at": r.updated_at,
        "peer": r.peer,
        "helo": r.helo,
        "verdict": r.verdict,
        "findings": list(r.findings),
        "db_version": r.db_version,
        "reason": r.reason,
        "outbreaks": list(r.hold_tags),
    }


def event_json(e: Event) -> dict[str, Any]:
    return {"at": e.at, "state": e.state.value, "reason": e.reason, "actor": e.actor}


def entry_json(e: QueueEntry) -> dict[str, Any]:
    return {
        "queue_id": e.queue_id,
        "due": e.due,
        "attempts": e.attempts,
        "last_error": e.last_error,
        "lease_owner": e.lease_owner,
        "lease_expiry": e.lease_expiry,
    }


@dataclass
class AdminOps:
    cfg: Config
    store: Store
    spool: BodyStore
    _scanner: LocalScanner | None = field(default=None, init=False, repr=False)

    async def list_messages(
        self, states: tuple[MessageState, ...], flt: MessageFilter, page: Page
    ) -> tuple[list[MessageRecord], int]:
        f = MessageFilter(
            states=states,
            outbreak_id=flt.outbreak_id,
            sender=flt.sender,
            recipient=flt.recipient,
            min_size=flt.min_size,
            max_size=flt.max_size,
            received_before=flt.received_before,
            received_after=flt.received_after,
        )
        return await self.store.list_messages(f, page), await self.store.count_messages(f)

    async def show(self, qid: str) -> tuple[MessageRecord, list[Event]]:
        return await self.store.get_message(qid), await self.store.events(qid)

    async def _releaser(self) -> Releaser:
        raw = await self.store.get_meta(DB_DIRS_KEY)
        dirs = [Path(p) for p in json.loads(raw)] if raw else list(self.cfg.scan.db_dirs)
        outbreaks = OutbreakState(self.store)
        await outbreaks.load()
        if self._scanner is None:
            scanner = LocalScanner(dirs, hard_timeout=self.cfg.scan.hard_timeout)
            try:
                await scanner.warm()  # a database that does not load is the command's error
            except BaseException:
                await scanner.aclose()
                raise
            self._scanner = scanner
        return Releaser(self.store, self.spool, self._scanner, outbreaks, policy_from(self.cfg))

    async def aclose(self) -> None:
        """Stop the release-rescan worker, if a release started one."""
        scanner, self._scanner = self._scanner, None
        if scanner is not None:
            await scanner.aclose()

    async def release(
        self, qid: str, *, force: bool = False, actor: str = "cli"
    ) -> ReleaseResult:
        releaser = await self._releaser()
        return await releaser.release_message(qid, force=force, actor=actor)

    async def release_outbreak(self, outbreak_id: str, *, actor: str = "cli") -> dict[str, int]:
        """Admin release of everything held for one outbreak (rescan each, then deliver)."""
        releaser = await self._releaser()
        counts: dict[str, int] = {}
        for qid in await self.store.held_for(outbreak_id):
            res = await releaser.release_message(qid, actor=actor)
            counts[res.state.value] = counts.get(res.state.value, 0) + 1
        return counts

    async def delete(self, qid: str, *, actor: str = "cli") -> None:
        await delete_message(self.store, self.spool, qid, actor=actor)

    async def queue(self, page: Page) -> list[QueueEntry]:
        return await self.store.queue_entries(page)

    async def retry(self, qid: str | None) -> int:
        return await self.store.retry_now(qid, time.time())


@asynccontextmanager
async def admin_ops(cfg: Config) -> AsyncIterator[AdminOps]:
    store = await open_store(cfg.store or None, data_dir=cfg.data_dir)
    bodies = open_bodies(store, Spool(cfg.spool_dir, 0))
    ops = AdminOps(cfg, store, bodies)
    try:
        yield ops
    finally:
        await ops.aclose()
        await store.aclose()
        bodies.close()
