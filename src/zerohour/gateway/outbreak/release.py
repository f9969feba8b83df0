"""Release held (and quarantined) mail: rescan with the current engine, then act.

- `release_outbreak(id)`: after a signature bundle covering the outbreak is installed, or the
  outbreak ended. Each message held for it is rescanned: infected -> quarantine with the signature
  name; clean -> delivery unless another active outbreak still holds it (then it stays held,
  tagged only with those). The reason records the database version that cleared it.
- `release_message(id)`: an administrator's release (CLI, admin API). Rescans first unless
  `force`, and decides against the active outbreaks like any other path: a signature finding or
  an outbreak checksum keeps it quarantined; only an outbreak's scope hold is overridden (the
  administrator decided), and the message is marked so that the queue's pre-delivery re-check
  does not pull it back into that hold. `force` skips the rescan and is stamped so on delivery
  ("released by <who>, not rescanned"), never "clean".
- `expire_held()`: held mail past `hold.max_hold` follows `hold.expiry`. `quarantine` (the
  default) quarantines it and tells the administrator (a warning and the audit trail);
  `release` rescans and decides against the active outbreaks: mail an active outbreak still
  holds is quarantined, never delivered.

Every resulting state change goes through `gateway.act`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from zerohour.config import HoldExpiry
from zerohour.errors import StoreError
from zerohour.gateway import maillog
from zerohour.gateway.act import NOT_RESCANNED, RELEASED_BY, Act
from zerohour.gateway.decide import Action, Decision, Policy, decide
from zerohour.gateway.outbreak.state import OutbreakState
from zerohour.gateway.scanner import Scanner
from zerohour.store.base import MessageFilter, MessageState, Page, Store
from zerohour.store.bodies import BodyStore

log = logging.getLogger("zerohour.release")

ADMIN_RELEASE_KEY = RELEASED_BY
_HOLDS = (Action.HOLD, Action.HOLD_ATTACHMENTS)


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
        self.act = Act(store, spool, scanner, outbreaks, self.policy, wake_delivery)

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
        if force:
            rec = await self.act.apply(
                qid,
                Decision(Action.DELIVER, f"released by {actor} without rescan (--force)"),
                actor=actor,
                expect=allowed,
                extra={RELEASED_BY: actor, NOT_RESCANNED: True},
            )
            return ReleaseResult(qid, rec.state, rec.reason)
        data = await self.spool.read(qid)
        summary = await self.scanner.scan(data, qid)
        if summary.error:
            raise StoreError(f"rescan of {qid} failed: {summary.error}; not released")
        decision = decide(summary, self.outbreaks.active, self.policy)
        db = summary.db_version or self.scanner.version
        extra: dict[str, object] | None = None
        if admin and decision.action in _HOLDS:
            decision = Decision(
                Action.DELIVER,
                f"released by {actor} while {decision.reason}",
            )
        if admin:
            extra = {RELEASED_BY: actor}
        if decision.action in _HOLDS:
            reason = f"rescan with db {db}: still {decision.reason}"
        elif decision.action is Action.DELIVER:
            reason = f"released by {actor}: clean with db {db}"
        else:
            reason = f"rescan with db {db}: {decision.reason}"
        rec = await self.act.apply(
            qid, decision, actor=actor, expect=allowed, summary=summary, reason=reason,
            extra=extra,
        )
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
                await self._expire(rec.queue_id, rec.hold_tags, expiry)
            except StoreError as exc:
                log.warning("release.expiry_failed queue_id=%s: %s", rec.queue_id, exc)
        return len(old)

    async def _expire(self, qid: str, tags: tuple[str, ...], expiry: HoldExpiry) -> None:
        active = {s.outbreak_id for s in self.outbreaks.active}
        still = ", ".join(t for t in tags if t in active) or "none still active"
        if expiry is HoldExpiry.QUARANTINE:
            decision = Decision(
                Action.QUARANTINE, f"maximum hold time exceeded (outbreaks: {still})"
            )
            await self.act.apply(qid, decision, actor="hold-expiry", expect=(MessageState.HELD,))
            log.warning("hold.expired queue_id=%s action=quarantine outbreaks=%s", qid, still)
            return
        data = await self.spool.read(qid)
        summary = await self.scanner.scan(data, qid)
        decision = decide(summary, self.outbreaks.active, self.policy)
        if decision.action in _HOLDS:  # never delivered while its outbreak is active
            decision = Decision(
                Action.QUARANTINE,
                f"maximum hold time exceeded while {decision.reason}",
                decision.names,
                decision.outbreak_ids,
            )
        await self.act.apply(
            qid, decision, actor="hold-expiry", expect=(MessageState.HELD,), summary=summary,
            reason=f"maximum hold time exceeded; rescan with db {summary.db_version}: "
            f"{decision.reason}",
        )
        log.warning("hold.expired queue_id=%s action=%s", qid, decision.action.value)


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
    maillog.status(qid, maillog.STATUS[MessageState.DELETED], f"deleted by {actor}", actor=actor)
    maillog.removed(qid)
