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
from collections.abc import Callable, Sequence
from dataclasses import replace

from zerohour.config import Config
from zerohour.errors import NotFoundError, StoreError
from zerohour.gateway.decide import Action, Decision, Policy, ScanSummary, decide
from zerohour.gateway.hold import strip_attachments
from zerohour.gateway.outbreak import OutbreakState
from zerohour.gateway.receive import Disposition, Inbound, clean
from zerohour.gateway.scanner import Scanner
from zerohour.gateway.spool import Spool, new_queue_id
from zerohour.store.base import MessageRecord, MessageState, Recipient, Store
from zerohour.store.bodies import BodyStore

log = logging.getLogger("zerohour.pipeline")

_STATE_FOR = {
    Action.DELIVER: MessageState.QUEUED,
    Action.HOLD: MessageState.HELD,
    Action.HOLD_ATTACHMENTS: MessageState.HELD,  # and a copy without them: gateway.hold
    Action.QUARANTINE: MessageState.QUARANTINED,
    Action.DISCARD: MessageState.DISCARDED,
    Action.REJECT: MessageState.REJECTED,
}


def policy_from(cfg: Config) -> Policy:
    return Policy(
        infected=cfg.scan.infected,
        hold_mode=cfg.hold.mode,
        deliver_unscanned=cfg.scan.deliver_unscanned,
    )


def verdict_of(summary: ScanSummary | None) -> str:
    if summary is None:
        return ""
    if summary.error:
        return "error"
    return "infected" if summary.infected else "clean"


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
        self.wake_delivery = wake_delivery
        self._background: set[asyncio.Task[None]] = set()

    # new mail ----------------------------------------------------------------------------------
    async def accept(self, msg: Inbound) -> Disposition:
        t0 = time.monotonic()
        self.spool.check_space(len(msg.data))
        qid = new_queue_id()
        scan = asyncio.ensure_future(self.scanner.scan(msg.data, qid))
        done, _ = await asyncio.wait({scan}, timeout=self.cfg.scan.inline_budget)
        if not done:
            await self._store_new(qid, msg, MessageState.RECEIVED, None, "scan budget exceeded")
            task = asyncio.ensure_future(self._finish_late(qid, scan))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            self._log(qid, msg, None, Decision(Action.DELIVER, "accepted, scan pending"), t0)
            return Disposition(qid, Decision(Action.DELIVER, "accepted; scanning after queueing"))
        summary = scan.result()
        t_scan = time.monotonic()
        decision = decide(summary, self.outbreaks.active, self.policy)
        act = decision.action
        if act is Action.TEMPFAIL:
            pass  # nothing kept: the client retries
        elif act is Action.REJECT or act is Action.DISCARD:
            await self._audit_only(qid, msg, summary, decision)
        else:
            await self._store_new(qid, msg, _STATE_FOR[act], summary, decision.reason, decision)
            if act is Action.HOLD_ATTACHMENTS:
                await self.send_stripped(qid, msg.data, msg.sender, msg.recipients, decision,
                                         summary.db_version)
            log.debug("pipeline.timing scan_ms=%.1f store_ms=%.1f", (t_scan - t0) * 1000,
                      (time.monotonic() - t_scan) * 1000)
            if act is Action.DELIVER:
                self.wake_delivery()
        self._log(qid, msg, summary, decision, t0)
        return Disposition(qid, decision)

    async def _store_new(
        self,
        qid: str,
        msg: Inbound,
        state: MessageState,
        summary: ScanSummary | None,
        reason: str,
        decision: Decision | None = None,
    ) -> None:
        record = self._record(qid, msg, state, summary, decision)
        if not isinstance(self.spool, Spool):
            # bodies in the store (a cluster): body and row commit together, before the 250
            async with self.store.transaction():
                await self.spool.write(qid, msg.data)
                await self.store.add_message(
                    record,
                    reason=reason,
                    queue_due=msg.received_at if state is MessageState.QUEUED else None,
                )
            return
        await self.spool.write(qid, msg.data)
        try:
            await self.store.add_message(
                record,
                reason=reason,
                queue_due=msg.received_at if state is MessageState.QUEUED else None,
            )
        except BaseException:
            await self.spool.delete(qid)
            raise

    async def send_stripped(
        self,
        qid: str,
        data: bytes,
        sender: str,
        recipients: Sequence[str],
        decision: Decision,
        db_version: str,
    ) -> str | None:
        """Queue a copy of held message `qid` without its in-scope attachments (see
        `gateway.hold`); returns the copy's queue id, or None when nothing was replaced."""
        specs = [s for s in map(self.outbreaks.get, decision.outbreak_ids) if s is not None]
        stripped = await asyncio.to_thread(strip_attachments, data, specs, qid)
        if stripped is None:
            return None
        body, names = stripped
        copy_id = new_queue_id()
        now = time.time()
        await self.spool.write(copy_id, body)
        await self.store.add_message(
            MessageRecord(
                queue_id=copy_id,
                sender=sender,
                recipients=tuple(Recipient(r) for r in recipients),
                size=len(body),
                received_at=now,
                state=MessageState.QUEUED,
                verdict="clean",
                db_version=db_version,
                kind="redacted",
            ),
            reason=f"copy of {qid} with {len(names)} attachment(s) held",
            actor="hold",
            queue_due=now,
        )
        self.wake_delivery()
        log.info("hold.attachments queue_id=%s copy_id=%s held=%d", qid, copy_id, len(names))
        return copy_id

    async def _audit_only(
        self, qid: str, msg: Inbound, summary: ScanSummary, decision: Decision
    ) -> None:
        """Refused or discarded: no body is kept, only the record (the audit trail)."""
        record = self._record(qid, msg, _STATE_FOR[decision.action], summary, decision)
        await self.store.add_message(record, reason=decision.reason)

    @staticmethod
    def _record(
        qid: str,
        msg: Inbound,
        state: MessageState,
        summary: ScanSummary | None,
        decision: Decision | None,
    ) -> MessageRecord:
        findings = summary.findings if summary is not None else ()
        if decision is not None and decision.names:
            findings = decision.names
        return MessageRecord(
            queue_id=qid,
            sender=msg.sender,
            recipients=tuple(Recipient(r) for r in msg.recipients),
            size=len(msg.data),
            received_at=msg.received_at,
            state=state,
            peer=msg.peer,
            helo=msg.helo,
            verdict=verdict_of(summary),
            findings=findings,
            db_version=summary.db_version if summary is not None else "",
            summary=summary.to_json() if summary is not None else None,
            hold_tags=decision.outbreak_ids if decision is not None else (),
        )

    async def _finish_late(self, qid: str, scan: asyncio.Future[ScanSummary]) -> None:
        try:
            summary = await scan
            await self.apply_scan(qid, summary, actor="scanner")
        except Exception:
            log.exception("pipeline.late_scan_failed queue_id=%s", qid)

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
        decision = decide(summary, self.outbreaks.active, replace(self.policy, can_reject=False))
        act = decision.action
        if act is Action.TEMPFAIL:
            # keep it: try again later (it is ours since the 250)
            log.warning("pipeline.scan_failed queue_id=%s error=%s", qid, clean(summary.error))
            return decision
        state = _STATE_FOR[act]
        names = decision.names or summary.findings
        try:
            await self.store.transition(
                qid,
                state,
                reason=decision.reason,
                actor=actor,
                expect=(MessageState.RECEIVED,),
                verdict=verdict_of(summary),
                findings=names,
                db_version=summary.db_version,
                summary=summary.to_json(),
                hold_tags=decision.outbreak_ids,
                queue_due=time.time() if state is MessageState.QUEUED else None,
            )
        except StoreError as exc:
            log.warning("pipeline.apply_scan_skipped queue_id=%s: %s", qid, exc)
            return decision
        if state is MessageState.DISCARDED:
            await self.spool.delete(qid)
        if state is MessageState.QUEUED:
            self.wake_delivery()
        if act is Action.HOLD_ATTACHMENTS:
            record = await self.store.get_message(qid)
            data = await self.spool.read(qid)
            await self.send_stripped(
                qid, data, record.sender, [r.address for r in record.recipients], decision,
                summary.db_version,
            )
        log.info(
            "message.decision queue_id=%s verdict=%s action=%s late=1 reason=%s",
            qid,
            verdict_of(summary),
            act.value,
            clean(decision.reason),
        )
        return decision

    async def recover(self) -> int:
        """After a restart: scan every message that got a 250 but was never scanned."""
        ids = await self.store.ids_in_state((MessageState.RECEIVED,))
        for qid in ids:
            await self.process_spooled(qid)
        return len(ids)

    def recheck(self, record: MessageRecord) -> Decision | None:
        """Before a delivery attempt: would the current outbreak state still deliver this?
        Returns the new decision when it would not (hold or quarantine), else None."""
        if record.kind != "mail" or record.summary is None:
            return None
        if record.summary.get("released_by"):  # an administrator released it: deliver
            return None
        summary = ScanSummary.from_json(record.summary)
        decision = decide(summary, self.outbreaks.active, replace(self.policy, can_reject=False))
        if decision.action in (Action.HOLD, Action.HOLD_ATTACHMENTS, Action.QUARANTINE):
            return decision
        return None

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
        log.info(
            "message.decision queue_id=%s sender=<%s> rcpts=%d size=%d verdict=%s action=%s"
            " names=%s ms=%.1f",
            qid,
            clean(msg.sender),
            len(msg.recipients),
            len(msg.data),
            verdict_of(summary) or "pending",
            decision.action.value,
            clean(",".join(decision.names)) or "-",
            (time.monotonic() - t0) * 1000,
        )
