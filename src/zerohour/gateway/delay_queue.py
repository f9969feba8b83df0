"""The delay queue: hold new mail with a risky attachment for a fixed time, then rescan it.

This is the timer-based protection of Sophos's and FortiMail's gateways, offered as a setting
(`hold.delay` seconds, 0 = off; `hold.delay_types`, true-type categories) so the two can be
compared on the same traffic (`bench/window.py`) and so a site without a provider still gets
some zero-hour protection: signatures that ship during the delay catch the mail it held.

- `delay()` turns the first decision about new mail (`Pipeline.accept`, and the late scan of
  mail accepted past the scan budget or recovered after a restart) from `deliver` into `hold`,
  tagged `DELAY_TAG`, when one of its attachments (or a member of one) has a delayed type.
  Every other decision wins: quarantine, reject, an outbreak's hold. Mail already held or queued
  is never delayed again (the delivery queue's re-check and every release call `decide()`
  alone).
- `DelayQueue.run()` releases delayed mail when its time is up, and only through a rescan with
  the database loaded now and a decision against the outbreaks active now, with no delay: clean
  mail goes to delivery, infected mail to quarantine, mail that an outbreak declared meanwhile
  covers stays held, tagged with that outbreak (its bundle or end releases it). A failed rescan
  quarantines the message (`Heuristics.ScanError`), whatever `scan.deliver_unscanned` says:
  delayed mail is never released unscanned.

Switching the delay off (`hold.delay = 0`) and restarting releases what is still delayed, the
same way, at once. The timer is checked every `delay / 100` seconds (at most 1 s, at least
50 ms), so a message leaves at most 1 % of the delay late. The store is the truth, so a
restart or another node of a cluster picks up where this one stopped; two nodes releasing the
same message race on the `held` state, and the loser's transition is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, replace

from zerohour.config import HoldConfig
from zerohour.errors import NotFoundError, StoreError
from zerohour.gateway.act import Act
from zerohour.gateway.decide import Action, Decision, Policy, ScanSummary, decide
from zerohour.gateway.outbreak.state import OutbreakState
from zerohour.gateway.scanner import Scanner
from zerohour.store.base import MessageState, Store
from zerohour.store.bodies import BodyStore

log = logging.getLogger("zerohour.delay")

#: The hold tag of delayed mail. ':' is not allowed in an outbreak id, so it never names one.
DELAY_TAG = "zerohour:delay"


@dataclass(frozen=True, slots=True)
class DelaySettings:
    seconds: float = 0.0  # 0: no delay queue
    types: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, hold: HoldConfig) -> DelaySettings:
        return cls(hold.delay, frozenset(hold.delay_types))

    @property
    def enabled(self) -> bool:
        return self.seconds > 0 and bool(self.types)

    @property
    def tick(self) -> float:
        return max(0.05, min(1.0, self.seconds / 100))


def delay(decision: Decision, summary: ScanSummary | None, settings: DelaySettings) -> Decision:
    """The first decision about new mail, with the delay queue applied (pure)."""
    if not settings.enabled or decision.action is not Action.DELIVER:
        return decision
    if summary is None or summary.error or not summary.has_attachment:
        return decision
    risky = sorted(settings.types & set(summary.categories))
    if not risky:
        return decision
    return Decision(
        Action.HOLD,
        f"delay queue: {', '.join(risky)} attachment held {settings.seconds:g} s for a rescan",
        (),
        (DELAY_TAG,),
    )


class DelayQueue:
    """Releases delayed mail when its time is up (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        bodies: BodyStore,
        scanner: Scanner,
        outbreaks: OutbreakState,
        policy: Policy,
        settings: DelaySettings,
        act: Act,
    ) -> None:
        self.store = store
        self.bodies = bodies
        self.scanner = scanner
        self.outbreaks = outbreaks
        # we own the mail since the 250, and a failed rescan never delivers delayed mail
        self.policy = replace(policy, can_reject=False, deliver_unscanned=False)
        self.settings = settings
        self.act = act
        self.released = 0

    async def run(self) -> None:
        if not self.settings.enabled:
            # Switched off with mail still delayed (a restart with `hold.delay = 0`): its delay
            # is over now; released the same way, then there is nothing left to time.
            if await self.store.held_for(DELAY_TAG):
                await self.release_due()
            return
        while True:
            try:
                next_due = await self.release_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delay.release_failed")
                next_due = None
            wait = self.settings.tick
            if next_due is not None:
                wait = min(wait, max(0.0, next_due - time.time()))
            await asyncio.sleep(wait)

    async def release_due(self, now: float | None = None) -> float | None:
        """Rescan and act on every delayed message whose time is up; returns when the next
        one is due (None: none waiting)."""
        now = time.time() if now is None else now
        due: list[str] = []
        next_due: float | None = None
        for qid in await self.store.held_for(DELAY_TAG):  # oldest first
            try:
                rec = await self.store.get_message(qid)
            except NotFoundError:
                continue
            at = rec.received_at + self.settings.seconds
            if at > now:
                next_due = at
                break
            due.append(qid)
        if due:
            limit = asyncio.Semaphore(2 * max(1, getattr(self.scanner, "workers", 1)))

            async def one(qid: str) -> None:
                async with limit:
                    await self.release(qid)

            async with asyncio.TaskGroup() as tg:
                for qid in due:
                    tg.create_task(one(qid))
        return next_due

    async def release(self, qid: str) -> MessageState | None:
        """Rescan one delayed message and act on the new decision; None if another node
        released it first or it failed to (tried again on the next tick)."""
        try:
            data = await self.bodies.read(qid)
        except NotFoundError:
            decision = Decision(Action.QUARANTINE, "delay queue: spooled body missing")
            with contextlib.suppress(StoreError):
                await self.act.apply(
                    qid, decision, actor="delay-queue", expect=(MessageState.HELD,)
                )
            log.error("delay.body_missing queue_id=%s", qid)
            return None
        try:
            summary = await self.scanner.scan(data, qid)
        except Exception:
            log.exception("delay.rescan_failed queue_id=%s", qid)
            return None
        decision = decide(summary, self.outbreaks.active, self.policy)
        reason = f"delay over; rescan with db {summary.db_version or '?'}: {decision.reason}"
        try:
            rec = await self.act.apply(
                qid,
                decision,
                actor="delay-queue",
                expect=(MessageState.HELD,),
                summary=summary,
                reason=reason,
            )
        except StoreError as exc:  # released by another node, or by an administrator
            log.info("delay.skipped queue_id=%s: %s", qid, exc)
            return None
        self.released += 1  # `act.apply` logged the outcome
        return rec.state
