"""act: the only place where a `decide()` result becomes store transitions and queue rows.

Like Postfix's qmgr, the one module that moves a queue file. Every path that decides about a
message ends here: new mail (`admit`), a scan that finished after the 250, the delivery queue's
re-check, a rescan before delivery, the release of held mail, the maximum hold time and an
administrator's release (`apply`). So an action means the same thing everywhere:

| action             | state        | also                                                   |
|--------------------|--------------|--------------------------------------------------------|
| deliver            | queued       | queue row due now, handed to the delivery queue (or it |
|                    |              | is woken to claim the row)                             |
| hold               | held         | tagged with the outbreaks holding it                   |
| hold_attachments   | held         | a copy without the held attachments, if that copy is   |
|                    |              | itself scanned and decided `deliver` (else none)       |
| quarantine         | quarantined  |                                                        |
| discard            | discarded    | body removed                                           |
| reject             | rejected     | before the 250 only: no body kept, the record remains  |
| tempfail           | (unchanged)  | before the 250 only: nothing kept, the client retries  |
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from zerohour.gateway import maillog
from zerohour.gateway.decide import Action, Decision, Policy, ScanSummary, decide
from zerohour.gateway.outbreak.state import OutbreakState
from zerohour.gateway.prepare import fold_long_lines
from zerohour.gateway.receive import Inbound
from zerohour.gateway.scanner import Scanner
from zerohour.gateway.spool import new_queue_id
from zerohour.gateway.strip import strip_attachments
from zerohour.store.base import (
    UNSET,
    Lease,
    MessageRecord,
    MessageState,
    QueueEntry,
    Recipient,
    Store,
)
from zerohour.store.bodies import BodyStore

log = logging.getLogger("zerohour.act")

STATE_FOR: Mapping[Action, MessageState] = {
    Action.DELIVER: MessageState.QUEUED,
    Action.HOLD: MessageState.HELD,
    Action.HOLD_ATTACHMENTS: MessageState.HELD,
    Action.QUARANTINE: MessageState.QUARANTINED,
    Action.DISCARD: MessageState.DISCARDED,
    Action.REJECT: MessageState.REJECTED,
}


class HandOff(Protocol):
    """The delivery queue's side of new mail taken over in memory (`DeliveryQueue`)."""

    def reserve(self) -> Lease | None: ...

    def give_back(self, queue_id: str) -> None: ...

    def take(self, entry: QueueEntry, record: MessageRecord, body: bytes | None = None) -> None:
        ...


#: Summary keys an administrator's release adds (read by the re-check and the trace header).
RELEASED_BY = "released_by"
NOT_RESCANNED = "not_rescanned"


def verdict_of(summary: ScanSummary | None) -> str:
    if summary is None:
        return ""
    if summary.error:
        return "error"
    return "infected" if summary.infected else "clean"


class Act:
    """Turns decisions into state for one store and body store."""

    def __init__(
        self,
        store: Store,
        bodies: BodyStore,
        scanner: Scanner,
        outbreaks: OutbreakState,
        policy: Policy,
        wake_delivery: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.bodies = bodies
        self.scanner = scanner
        self.outbreaks = outbreaks
        self.policy = policy
        self.wake_delivery = wake_delivery
        #: the delivery queue, when new mail is handed to it in memory (set by the gateway)
        self.hand_off: HandOff | None = None

    # new mail, before the 250 ------------------------------------------------------------------
    async def admit(
        self, qid: str, msg: Inbound, summary: ScanSummary | None, decision: Decision
    ) -> None:
        """Record new mail in its final state (or `received` when `summary` is None: the scan
        finishes after the 250). Returns once it is durable: the 250 may go out."""
        act = decision.action
        if summary is None:
            await self._store_new(qid, msg, MessageState.RECEIVED, None, decision)
            return
        if act is Action.TEMPFAIL:
            return
        if act in (Action.REJECT, Action.DISCARD):  # no body is kept, only the audit trail
            record = _record(qid, msg, STATE_FOR[act], summary, decision)
            await self.store.add_message(record, reason=decision.reason)
            return
        hand_off = self.hand_off if act is Action.DELIVER else None
        lease = hand_off.reserve() if hand_off is not None else None
        try:
            record = await self._store_new(qid, msg, STATE_FOR[act], summary, decision, lease)
        except BaseException:
            if hand_off is not None and lease is not None:
                hand_off.give_back(qid)
            raise
        if act is Action.HOLD_ATTACHMENTS:
            await self._send_stripped(qid, msg.data, msg.sender, msg.recipients, decision)
        if hand_off is not None and lease is not None:
            hand_off.take(QueueEntry(qid, msg.received_at, 0, "", *lease), record,
                          msg.data if msg.crlf else None)
        elif act is Action.DELIVER:
            self.wake_delivery()

    async def _store_new(
        self,
        qid: str,
        msg: Inbound,
        state: MessageState,
        summary: ScanSummary | None,
        decision: Decision,
        lease: Lease | None = None,
    ) -> MessageRecord:
        """The new message's row and body, durable; returns the row as a read would."""
        record = _record(qid, msg, state, summary, decision)
        reason = decision.reason
        due = msg.received_at if state is MessageState.QUEUED else None
        await self.bodies.add_with_message(
            self.store, record, msg.data, reason=reason, queue_due=due, lease=lease
        )
        return replace(record, updated_at=record.received_at)

    # mail we already own -----------------------------------------------------------------------
    async def apply(
        self,
        qid: str,
        decision: Decision,
        *,
        actor: str,
        expect: Sequence[MessageState],
        summary: ScanSummary | None = None,
        reason: str | None = None,
        extra: Mapping[str, Any] | None = None,
        requeue: bool = True,
    ) -> MessageRecord:
        """Move message `qid` (in one of `expect`) to the state `decision` calls for.

        `summary`: a new scan's summary, stored with the message (None keeps the stored one);
        `extra`: keys added to the stored summary (an administrator's release); `requeue`:
        False for the delivery attempt that holds the message's lease and goes on with it (a
        rescan before delivery that says deliver): its queue row and lease stay as they are,
        where a fresh due time would free the entry for a second, concurrent delivery."""
        act = decision.action
        if act in (Action.TEMPFAIL, Action.REJECT):  # we own it since the 250: keep it away
            act = Action.QUARANTINE
        state = STATE_FOR[act]
        fields: dict[str, Any] = {}
        if summary is not None:
            stored: dict[str, Any] = summary.to_json()
            fields.update(
                verdict=verdict_of(summary), db_version=summary.db_version, summary=stored
            )
        if extra:
            if summary is None:
                current = await self.store.get_message(qid)
                stored = dict(current.summary or {})
                fields["summary"] = stored
            stored.update(extra)
        names = decision.names or (summary.findings if summary is not None else ())
        if names or summary is not None:
            fields["findings"] = names
        rec = await self.store.transition(
            qid,
            state,
            reason=reason or decision.reason,
            actor=actor,
            expect=tuple(expect),
            hold_tags=decision.outbreak_ids,
            queue_due=(time.time() if requeue else UNSET) if state is MessageState.QUEUED
            else None,
            **fields,
        )
        word = maillog.STATUS[state]
        if state is MessageState.QUEUED and not {MessageState.RECEIVED, MessageState.QUEUED} & {
            *expect
        }:
            word = "released"  # out of the hold or the quarantine
        maillog.status(qid, word, reason or decision.reason, actor=actor)
        if state is MessageState.DISCARDED:
            await self.bodies.delete(qid)
            maillog.removed(qid)
        elif state is MessageState.QUEUED and requeue:
            self.wake_delivery()
        elif act is Action.HOLD_ATTACHMENTS:
            data = await self.bodies.read(qid)
            await self._send_stripped(
                qid, data, rec.sender, [r.address for r in rec.recipients], decision
            )
        return rec

    # attachment-only hold ----------------------------------------------------------------------
    async def _send_stripped(
        self,
        qid: str,
        data: bytes,
        sender: str,
        recipients: Sequence[str],
        decision: Decision,
    ) -> str | None:
        """Queue a copy of held message `qid` without its in-scope attachments, if the copy
        itself scans and decides `deliver` against the same outbreaks; returns its queue id.
        Otherwise nothing leaves: the whole message stays held."""
        specs = [s for s in map(self.outbreaks.get, decision.outbreak_ids) if s is not None]
        if not specs:
            return None
        stripped = await asyncio.to_thread(strip_attachments, data, specs, qid)
        if stripped is None:
            log.info("hold.attachments queue_id=%s copy=none reason=nothing to strip", qid)
            return None
        body = fold_long_lines(stripped[0])
        copy_id = new_queue_id()
        summary = await self.scanner.scan(body, copy_id)
        again = decide(summary, self.outbreaks.active, replace(self.policy, can_reject=False))
        if again.action is not Action.DELIVER:
            log.warning(
                "hold.attachments queue_id=%s copy=none reason=copy still %s (%s)",
                qid, again.action.value, again.reason,
            )
            return None
        now = time.time()
        await self.bodies.add_with_message(
            self.store,
            MessageRecord(
                queue_id=copy_id,
                sender=sender,
                recipients=tuple(Recipient(r) for r in recipients),
                size=len(body),
                received_at=now,
                state=MessageState.QUEUED,
                verdict=verdict_of(summary),
                db_version=summary.db_version,
                summary=summary.to_json(),
                kind="redacted",
            ),
            body,
            reason=f"copy of {qid} with {len(stripped[1])} attachment(s) held",
            actor="hold",
            queue_due=now,
        )
        maillog.received(copy_id, sender, len(body), len(recipients), verdict_of(summary))
        self.wake_delivery()
        log.info("hold.attachments queue_id=%s copy_id=%s held=%d", qid, copy_id,
                 len(stripped[1]))
        return copy_id


def _record(
    qid: str,
    msg: Inbound,
    state: MessageState,
    summary: ScanSummary | None,
    decision: Decision,
) -> MessageRecord:
    findings = summary.findings if summary is not None else ()
    if decision.names:
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
        hold_tags=decision.outbreak_ids,
    )
