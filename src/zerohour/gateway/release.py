"""Release held (and quarantined) mail: rescan with the current engine, then act.

- `release_outbreak(id)`: after a signature bundle covering the outbreak is installed, or the
  outbreak ended. Each message held for it is rescanned: infected -> quarantine with the signature
  name; clean -> delivery unless another active outbreak still holds it (then it stays held,
  tagged only with those). The reason records the database version that cleared it.
- `release_message(id)`: an administrator's release (CLI, admin API). Rescans first unless
  `force`; a clean message goes to delivery even while an outbreak is active (the admin decided),
  and is marked so that the queue's pre-delivery re-check does not pull it back into the hold.
- `expire_held()`: held mail past `hold.max_hold` follows `hold.expiry` (release after rescan, or
  quarantine).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from zerohour.config import HoldExpiry
from zerohour.errors import StoreError
from zerohour.gateway.decide import Action, Policy, decide
from zerohour.gateway.outbreak import OutbreakState
from zerohour.gateway.scanner import Scanner
from zerohour.store.base import MessageFilter, MessageState, Page, Store
from zerohour.store.bodies import BodyStore

log = logging.getLogger("zerohour.release")

ADMIN_RELEASE_KEY = "released_by"


@dataclass(frozen=True, slots=True)
class ReleaseResult:
    queue_id: str
    state: MessageState
    reason: str


class Releaser:
    def __init__(
        self,
        store: Store,
        spool: BodyStore,
        scanner: Scanner,
        outbreaks: OutbreakState,
        policy: Policy,
        wake_delivery: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.spool = spool
        self.scanner = scanner
        self.outbreaks = outbreaks
        self.policy = replace(policy, can_reject=False)
        self.wake_delivery = wake_delivery

    async def release_outbreak(
        self, outbreak_id: str, *, actor: str = "outbreak"
    ) -> dict[str, int]:
        """Rescan everything held for `outbreak_id`; returns counts by resulting state."""
        counts: dict[str, int] = {}
        # Keep every scan worker busy (two rescans in flight per worker hides the store and
        # spool round trips) without starting thousands of tasks for a large hold buffer.
        limit = asyncio.Semaphore(2 * max(1, getattr(self.scanner, "workers", 1)))

        async def one(qid: str) -> None:
            async with limit:
                try:
                    res = await self.release_message(qid, actor=actor, admin=False)
                except StoreError as exc:
                    log.warning("release.skipped queue_id=%s: %s", qid, exc)
                    return
            counts[res.state.value] = counts.get(res.state.value, 0) + 1

        async with asyncio.TaskGroup() as tg:
            for qid in await self.store.held_for(outbreak_id):
                tg.create_task(one(qid))
        log.info("release.outbreak outbreak_id=%s results=%s", outbreak_id, counts)
        return counts

    async def release_message(
        self, qid: str, *, force: bool = False, actor: str = "admin", admin: bool = True
    ) -> ReleaseResult:
        record = await self.store.get_message(qid)
        allowed = (MessageState.HELD, MessageState.QUARANTINED)
        if record.state not in allowed:
            raise StoreError(f"message {qid} is {record.state.value}: nothing to release")
        now = time.time()
        if force:
            summary_json = dict(record.summary or {})
            summary_json[ADMIN_RELEASE_KEY] = actor
            rec = await self.store.transition(
                qid,
                MessageState.QUEUED,
                reason=f"released by {actor} without rescan (--force)",
                actor=actor,
                expect=allowed,
                summary=summary_json,
                hold_tags=(),
                queue_due=now,
            )
            self.wake_delivery()
            return ReleaseResult(qid, rec.state, rec.reason)
        data = await self.spool.read(qid)
        summary = await self.scanner.scan(data, qid)
        if summary.error:
            raise StoreError(f"rescan of {qid} failed: {summary.error}; not released")
        outbreaks = () if admin else self.outbreaks.active
        decision = decide(summary, outbreaks, self.policy)
        db = summary.db_version or self.scanner.version
        summary_json = summary.to_json()
        if admin:
            summary_json[ADMIN_RELEASE_KEY] = actor
        if decision.action in (Action.QUARANTINE, Action.REJECT, Action.DISCARD):
            state = MessageState.QUARANTINED
            reason = f"rescan with db {db}: {decision.reason}"
            due: float | None = None
        elif decision.action in (Action.HOLD, Action.HOLD_ATTACHMENTS):
            state = MessageState.HELD
            reason = f"rescan with db {db}: still {decision.reason}"
            due = None
        else:
            state = MessageState.QUEUED
            reason = f"released by {actor}: clean with db {db}"
            due = now
        rec = await self.store.transition(
            qid,
            state,
            reason=reason,
            actor=actor,
            expect=allowed,
            verdict="infected" if summary.infected else "clean",
            findings=decision.names or summary.findings,
            db_version=db,
            summary=summary_json,
            hold_tags=decision.outbreak_ids,
            queue_due=due,
        )
        if state is MessageState.QUEUED:
            self.wake_delivery()
        log.info("release.message queue_id=%s state=%s reason=%s", qid, state.value, reason)
        return ReleaseResult(qid, rec.state, reason)

    async def delete_message(self, qid: str, *, actor: str = "admin") -> None:
        await delete_message(self.store, self.spool, qid, actor=actor)

    async def expire_held(self, max_hold: float, expiry: HoldExpiry) -> int:
        """Apply the max-hold policy to held mail older than `max_hold` seconds."""
        cutoff = time.time() - max_hold
        old = await self.store.list_messages(
            MessageFilter(states=(MessageState.HELD,), received_before=cutoff), Page(limit=500)
        )
        for rec in old:
            try:
                if expiry is HoldExpiry.QUARANTINE:
                    await self.store.transition(
                        rec.queue_id,
                        MessageState.QUARANTINED,
                        reason="maximum hold time exceeded",
                        actor="hold-expiry",
                        expect=(MessageState.HELD,),
                        hold_tags=(),
                    )
                else:
                    await self.release_message(rec.queue_id, actor="hold-expiry", admin=True)
            except StoreError as exc:
                log.warning("release.expiry_failed queue_id=%s: %s", rec.queue_id, exc)
        return len(old)


async def delete_message(store: Store, spool: BodyStore, qid: str, *, actor: str = "admin") -> None:
    """Delete held, quarantined or queued mail: the body goes, the record and trail stay."""
    record = await store.get_message(qid)
    if record.state not in (MessageState.HELD, MessageState.QUARANTINED, MessageState.QUEUED):
        raise StoreError(f"message {qid} is {record.state.value}: cannot delete")
    await store.transition(
        qid,
        MessageState.DELETED,
        reason=f"deleted by {actor}",
        actor=actor,
        expect=(record.state,),
        hold_tags=(),
        queue_due=None,
    )
    await spool.delete(qid)
