"""scan -> decide -> act, for new mail (inline, before the final DATA reply) and for mail already
spooled (scan after queueing, restart recovery, rescans before release).

Inline: the scan runs in the process pool while the SMTP session waits, up to
`scan.inline_budget` seconds. Within the budget, a virus can still be refused with 554 and
nothing is written; clean, held and quarantined mail is spooled and committed in its final state
with one commit, then the 250 goes out. Past the budget the message is spooled as `received`,
the 250 goes out, and the same scan finishes in the background (`can_reject=False`, so a virus
found then is quarantined: never bounced).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace

from zerohour.config import Config
from zerohour.errors import NotFoundError, StoreError
from zerohour.gateway import maillog
from zerohour.gateway.act import RELEASED_BY, STATE_FOR, Act, verdict_of
from zerohour.gateway.decide import Action, Decision, Policy, ScanSummary, decide
from zerohour.gateway.delay_queue import DelaySettings, delay
from zerohour.gateway.outbreak.state import OutbreakState
from zerohour.gateway.prepare import prepare
from zerohour.gateway.receive import Disposition, Inbound, clean, reply_for
from zerohour.gateway.scanner import Scanner
from zerohour.gateway.spool import new_queue_id
from zerohour.store.base import MessageRecord, MessageState, Store
from zerohour.store.bodies import BodyStore

log = logging.getLogger("zerohour.pipeline")

#: Actions that keep a queued message from its next delivery attempt.
_STOPS_DELIVERY = frozenset({Action.HOLD, Action.HOLD_ATTACHMENTS, Action.QUARANTINE})


def policy_from(cfg: Config) -> Policy:
    return Policy(
        infected=cfg.scan.infected,
        hold_mode=cfg.hold.mode,
        deliver_unscanned=cfg.scan.deliver_unscanned,
    )


class Pipeline:
    """Implements `receive.MessageSink`; also (re)processes spooled messages."""

    def __init__(
        self,
        cfg: Config,
        store: Store,
        spool: BodyStore,
        scanner: Scanner,
        outbreaks: OutbreakState,
        *,
        wake_delivery: Callable[[], None] = lambda: None,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.spool = spool
        self.scanner = scanner
        self.outbreaks = outbreaks
        self.policy = policy_from(cfg)
        self.delay = DelaySettings.from_config(cfg.hold)  # new mail only: `gateway.delay_queue`
        self.wake_delivery = wake_delivery
        self.act = Act(store, spool, scanner, outbreaks, self.policy, wake_delivery)
        self._background: set[asyncio.Task[None]] = set()
        self._scanning: set[str] = set()  # queue ids whose late scan is still running

    # new mail ----------------------------------------------------------------------------------
    async def accept(self, msg: Inbound) -> Disposition:
        t0 = time.monotonic()
        # Free space is checked where the body is written (`Spool.write_sync`, off the loop),
        # once per message: a full disk still answers 452 4.3.1 before anything is kept.
        msg = replace(msg, data=prepare(msg.data))  # the bytes we deliver are the bytes we scan
        qid = new_queue_id()
        maillog.client(qid, msg.peer, msg.helo)
        scan = asyncio.ensure_future(self.scanner.scan(msg.data, qid))
        done, _ = await asyncio.wait({scan}, timeout=self.cfg.scan.inline_budget)
        if not done:
            pending = Decision(Action.DELIVER, "scan budget exceeded")
            self._scanning.add(qid)
            try:
                await self.act.admit(qid, msg, None, pending)
            except BaseException:
                self._scanning.discard(qid)
                raise
            task = asyncio.ensure_future(self._finish_late(qid, scan))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            self._log(qid, msg, None, Decision(Action.DELIVER, "accepted, scan pending"), t0)
            return Disposition(qid, Decision(Action.DELIVER, "accepted; scanning after queueing"))
        summary = scan.result()
        decision = delay(decide(summary, self.outbreaks.active, self.policy), summary, self.delay)
        await self.act.admit(qid, msg, summary, decision)
        self._log(qid, msg, summary, decision, t0)
        return Disposition(qid, decision, summary)

    async def filter(self, msg: Inbound) -> Disposition:
        """Milter mode: Postfix keeps the message and delivers it when we say `deliver`; we
        store only what we take over (held, quarantined, delayed; a reject's audit record).

        No inline budget: the milter answers at end of message, so the scan runs to its
        verdict or its hard deadline (a failed or timed-out scan is a tempfail, never a
        pass). Postfix's `milter_content_timeout` (300 s) must exceed `scan.hard_timeout`."""
        t0 = time.monotonic()
        self.spool.check_space(len(msg.data))
        msg = replace(msg, data=prepare(msg.data))
        qid = new_queue_id()
        maillog.client(qid, msg.peer, msg.helo)
        summary = await self.scanner.scan(msg.data, qid)
        decision = delay(decide(summary, self.outbreaks.active, self.policy), summary, self.delay)
        if decision.action is not Action.DELIVER:
            await self.act.admit(qid, msg, summary, decision)
        self._log(qid, msg, summary, decision, t0)
        if decision.action is Action.DELIVER:
            maillog.status(qid, "accepted", "milter: Postfix delivers it")
        return Disposition(qid, decision, summary)

    async def _finish_late(self, qid: str, scan: asyncio.Future[ScanSummary]) -> None:
        try:
            summary = await scan
            await self.apply_scan(qid, summary, actor="scanner")
        except Exception:
            log.exception("pipeline.late_scan_failed queue_id=%s", qid)
        finally:
            self._scanning.discard(qid)

    # spooled mail ------------------------------------------------------------------------------
    async def process_spooled(self, qid: str, *, actor: str = "recovery") -> Decision | None:
        """Scan a `received` message (after the budget, or after a restart) and act."""
        try:
            data = await self.spool.read(qid)
        except NotFoundError:
            log.error("pipeline.body_missing queue_id=%s", qid)
            return None
        summary = await self.scanner.scan(data, qid)
        return await self.apply_scan(qid, summary, actor=actor)

    async def apply_scan(self, qid: str, summary: ScanSummary, *, actor: str) -> Decision:
        """Act on the scan of a `received` message. We own it since the 250: a failed scan
        quarantines it (never delivers), see `decide`."""
        decision = decide(summary, self.outbreaks.active, replace(self.policy, can_reject=False))
        decision = delay(decision, summary, self.delay)
        try:
            await self.act.apply(
                qid, decision, actor=actor, expect=(MessageState.RECEIVED,), summary=summary
            )
        except StoreError as exc:
            log.warning("pipeline.apply_scan_skipped queue_id=%s: %s", qid, exc)
            return decision
        if summary.error:
            log.warning("pipeline.scan_failed queue_id=%s error=%s", qid, clean(summary.error))
        return decision  # `act.apply` logged the outcome

    async def recover(self) -> int:
        """After a restart: scan every message that got a 250 but was never scanned."""
        ids = [
            qid
            for qid in await self.store.ids_in_state((MessageState.RECEIVED,))
            if qid not in self._scanning  # its scan is still running: never scan twice
        ]
        for qid in ids:
            self._scanning.add(qid)
            try:
                await self.process_spooled(qid)
            finally:
                self._scanning.discard(qid)
        return len(ids)

    def recheck(self, record: MessageRecord) -> Decision | None:
        """Before a delivery attempt: would the current outbreak state still deliver this?
        Returns the new decision when it would not (hold or quarantine), else None.

        An administrator's release overrides an outbreak's scope hold, never a signature
        finding or an outbreak checksum declared later."""
        if record.kind not in ("mail", "redacted") or record.summary is None:
            return None
        summary = ScanSummary.from_json(record.summary)
        decision = decide(summary, self.outbreaks.active, replace(self.policy, can_reject=False))
        if decision.action not in _STOPS_DELIVERY:
            return None
        released = record.summary.get(RELEASED_BY)
        if released and decision.action is not Action.QUARANTINE:
            return None
        if released and record.summary.get("not_rescanned") and not decision.outbreak_ids:
            return None  # forced past its findings by an administrator: their call
        return decision

    async def aclose(self) -> None:
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    def _log(
        self,
        qid: str,
        msg: Inbound,
        summary: ScanSummary | None,
        decision: Decision,
        t0: float,
    ) -> None:
        """The mail log of new mail: its envelope and scan, then the outcome unless queued."""
        verdict = verdict_of(summary) or "pending"
        maillog.received(
            qid, msg.sender, len(msg.data), len(msg.recipients), verdict, time.monotonic() - t0
        )
        act = decision.action
        if act is Action.DELIVER:
            return
        if act in (Action.REJECT, Action.TEMPFAIL):  # what the client was told
            reply = reply_for(Disposition(qid, decision), self.cfg.smtp.hostname)
            maillog.status(qid, "rejected", reply)
            return
        maillog.status(qid, maillog.STATUS[STATE_FOR[act]], decision.reason)
