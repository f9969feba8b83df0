"""The delivery queue: relay queued mail to the next hop, retry, bounce.

- Work comes from the store's delivery queue under a lease (`claim_due`), so a cluster of
  gateways on one PostgreSQL store can share it; this node's lease is renewed by finishing.
- Before every attempt the message is re-decided against the current outbreak state: mail queued
  before an outbreak notice and not yet delivered is pulled back into the hold (or quarantined on
  an outbreak checksum).
- Connections to a destination are pooled and reused (up to `delivery.concurrency` kept idle, so
  a busy queue never reconnects per message; closed after `IDLE_TIMEOUT` idle); at most
  `delivery.concurrency` at once per destination. Transactions are pipelined when the next hop
  offers PIPELINING (`gateway.relay_session`): two round trips per message. TLS follows the
  destination's level (`gateway.tls_policy`; by default STARTTLS when offered, no certificate
  check, like Postfix's `smtp_tls_security_level = may`).
- Without `delivery.next_hop`, recipients are grouped by domain and sent to its MX hosts in
  order (`gateway.mx`); a host that cannot be reached or fails required TLS passes to the next.
- Per-recipient results: 2xx delivered, 5xx bounced, 4xx/connection failure deferred with backoff
  (doubling from `retry_min` to `retry_max`); past `max_lifetime` deferred recipients bounce.
  Bounces produce one RFC 3464 DSN to the sender (never for a null sender, and never for viruses:
  infected mail is never queued for delivery in the first place, and one an administrator forced
  out of the quarantine gets none either). A DSN is bounded, since its sender may be forged
  (backscatter): the original's header section only (text/rfc822-headers, at most
  `DSN_MAX_HEADERS` bytes), at most `DSN_MAX_LISTED` recipients listed, each diagnostic cut short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from email.utils import format_datetime, make_msgid
from typing import Any

import aiosmtplib

from zerohour.config import Config, HostPort
from zerohour.errors import DeliveryError, NotFoundError, PermanentDeliveryError, StoreError
from zerohour.gateway import maillog
from zerohour.gateway.act import NOT_RESCANNED, RELEASED_BY
from zerohour.gateway.decide import Action, Decision, decide
from zerohour.gateway.mx import MxResolver
from zerohour.gateway.pipeline import Pipeline
from zerohour.gateway.receive import clean
from zerohour.gateway.relay_session import RelaySession, Reply, Wire, to_wire
from zerohour.gateway.spool import new_queue_id
from zerohour.gateway.tls_policy import TlsContexts, TlsPolicy, level_for, negotiate
from zerohour.store.base import (
    Lease,
    MessageRecord,
    MessageState,
    QueueEntry,
    Recipient,
    RecipientStatus,
    Store,
)
from zerohour.store.bodies import BodyStore

log = logging.getLogger("zerohour.deliver")

#: a DSN carries at most this much of the original's header section, never its body
DSN_MAX_HEADERS = 8192
#: recipients listed in one DSN (the text names how many more failed)
DSN_MAX_LISTED = 50
#: characters of one recipient's diagnostic (the next hop's reply) in a DSN
DSN_MAX_DIAGNOSTIC = 200
#: seconds an unused pooled connection stays open (Postfix's smtp_connection_cache_time_limit
#: is 2 s; a little longer here, as the queue also idles between polls)
IDLE_TIMEOUT = 10.0
#: a connection older than this is not reused (Postfix's smtp_connection_reuse_time_limit)
REUSE_TIME_LIMIT = 300.0


@dataclass(frozen=True, slots=True)
class RcptResult:
    status: RecipientStatus
    detail: str
    session: bool = False  # the host failed (connect, TLS), not the recipient: try another MX
    relay: str = ""  # HOST[IP]:PORT that answered (the mail log's relay=); "" = none


class ConnectionPool:
    """Idle next-hop sessions per destination, with a per-destination limit.

    As many sessions stay idle as may be busy at once (`delivery.concurrency`): a smaller cap
    closed every session beyond it after each message and opened a new one for the next, so
    a busy queue reconnected (TCP, banner, EHLO, maybe TLS) for most messages."""

    def __init__(self, cfg: Config, idle_max: int | None = None) -> None:
        self.cfg = cfg
        self.idle_max = idle_max if idle_max is not None else cfg.delivery.concurrency
        self._idle: dict[tuple[HostPort, TlsPolicy], list[RelaySession]] = defaultdict(list)
        self._limits: dict[HostPort, asyncio.Semaphore] = {}
        self.tls = TlsContexts(cfg.delivery)
        self.opened = 0  # sessions made, over the pool's life: reuse shows in tests
        self._swept = time.monotonic()

    def limit(self, dest: HostPort) -> asyncio.Semaphore:
        sem = self._limits.get(dest)
        if sem is None:
            sem = self._limits[dest] = asyncio.Semaphore(self.cfg.delivery.concurrency)
        return sem

    async def acquire(self, dest: HostPort, tls: TlsPolicy) -> tuple[RelaySession, bool]:
        """A greeted session, TLS as `tls` says; the flag says whether it was reused (it may
        have gone stale). A session is pooled per TLS policy: never shared across levels."""
        idle = self._idle.get((dest, tls))
        now = time.monotonic()
        while idle:
            session = idle.pop()
            if session.is_connected and now - session.opened < REUSE_TIME_LIMIT:
                return session, True
            session.close()
        d = self.cfg.delivery
        client = aiosmtplib.SMTP(
            hostname=dest.host,
            port=dest.port,
            timeout=d.timeout,
            start_tls=False,  # tls_policy.negotiate decides
            validate_certs=False,
            local_hostname=self.cfg.smtp.hostname,
        )
        await client.connect(timeout=d.connect_timeout)
        try:
            where = str(dest) if tls.name == dest.host else f"{tls.name}[{dest}]"
            await negotiate(client, tls, self.tls, where)
            if client.is_ehlo_or_helo_needed:  # extensions are known only after EHLO
                try:
                    await client.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await client.helo()
            session = RelaySession(client, relay_name(dest, client))
        except BaseException:
            await _close(client)
            raise
        self.opened += 1
        return session, False

    def release(
        self, dest: HostPort, tls: TlsPolicy, session: RelaySession, reusable: bool = True
    ) -> None:
        idle = self._idle[(dest, tls)]
        if reusable and session.is_connected and len(idle) < self.idle_max:
            idle.append(session)
            return
        session.close()

    def sweep(self) -> None:
        """Close sessions idle longer than `IDLE_TIMEOUT` (at most once a second)."""
        now = time.monotonic()
        if now - self._swept < 1.0:
            return
        self._swept = now
        for idle in self._idle.values():
            keep = [s for s in idle if s.is_connected and now - s.idle_since < IDLE_TIMEOUT]
            for s in idle:
                if s not in keep:
                    s.close()
            idle[:] = keep

    async def aclose(self) -> None:
        for sessions in self._idle.values():
            for s in sessions:
                s.close()
        self._idle.clear()


async def _close(client: aiosmtplib.SMTP) -> None:
    if client.is_connected:
        try:
            await asyncio.wait_for(client.quit(), 2)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()


def trace_header(record: MessageRecord) -> str:
    """The `X-Zerohour-Scan` field prepended on delivery (any a sender sent was removed on
    receipt, `gateway.prepare`). An administrator's forced release is never stamped clean."""
    if record.kind not in ("mail", "redacted"):
        return ""
    summary = record.summary or {}
    db = clean(record.db_version or "unknown", 80)
    if summary.get(NOT_RESCANNED):
        who = clean(summary.get(RELEASED_BY) or "admin", 80)
        return f"X-Zerohour-Scan: released by {who}, not rescanned; db={db}\r\n"
    if summary.get(RELEASED_BY):
        who = clean(summary.get(RELEASED_BY), 80)
        return f"X-Zerohour-Scan: clean, released by {who}; db={db}\r\n"
    return f"X-Zerohour-Scan: clean; db={db}\r\n"


def relay_name(dest: HostPort, client: aiosmtplib.SMTP) -> str:
    """Postfix's relay=HOST[IP]:PORT: the name we connected to and the address that answered."""
    peer = None
    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
        peer = client.get_transport_info("peername")
    ip = str(peer[0]) if isinstance(peer, tuple) else dest.host
    return f"{dest.host}[{ip}]:{dest.port}"


def _result(reply: Reply) -> RcptResult:
    if reply.ok:
        return RcptResult(RecipientStatus.DELIVERED, str(reply))
    bounced = 500 <= reply.code < 600
    return RcptResult(RecipientStatus.BOUNCED if bounced else RecipientStatus.DEFERRED, str(reply))


def backoff(cfg: Config, attempts: int) -> float:
    """Seconds until the next attempt after `attempts` failed ones (Postfix-like doubling)."""
    d = cfg.delivery
    return float(min(d.retry_max, d.retry_min * (2 ** max(0, attempts - 1))))


class DeliveryQueue:
    """Runs the queue until `stop()`: claim due work, deliver, record results."""

    def __init__(
        self, cfg: Config, store: Store, spool: BodyStore, pipeline: Pipeline, owner: str = ""
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.spool = spool
        self.pipeline = pipeline
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.pool = ConnectionPool(cfg)
        self.mx = MxResolver(cfg.delivery)
        self._wake = asyncio.Event()
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._entries: dict[asyncio.Task[None], str] = {}  # in-flight task -> queue id
        self.max_inflight = max(4, cfg.delivery.concurrency * 2)
        self._inflight = 0
        self._slot_free = asyncio.Event()
        self.lease = max(60.0, cfg.delivery.timeout * 2)

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            self.pool.sweep()
            claimed = await self._claim()
            if not claimed:
                with contextlib.suppress(TimeoutError):
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a
                    # cancellation that arrives as the event is set, and aclose() waited forever
                    async with asyncio.timeout(self.cfg.delivery.poll_interval):
                        await self._wake.wait()

    async def _claim(self) -> int:
        free = self.max_inflight - self._inflight
        if free <= 0:
            self._slot_free.clear()
            await self._slot_free.wait()
            return 1
        try:
            claimed = await self.store.claim_due_messages(
                self.owner, time.time(), free, self.lease
            )
        except StoreError as exc:
            log.warning("deliver.claim_failed: %s", exc)
            return 0
        for entry, record in claimed:
            self._inflight += 1
            self._start(entry, record)
        return len(claimed)

    def _start(
        self, entry: QueueEntry, record: MessageRecord | None, body: bytes | None = None
    ) -> None:
        task = asyncio.create_task(self._guarded(entry, record, body))
        self._entries[task] = entry.queue_id
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # new mail, handed over in memory (`gateway.act.HandOff`) ----------------------------------
    def reserve(self) -> Lease | None:
        """A delivery slot for a message about to be queued: its queue row is written already
        leased to this queue, and `take` starts its delivery once the row is committed, so no
        claim has to find it and read it back (a write and four reads per batch of claims on
        SQLite, a round trip on PostgreSQL). None when every slot is busy or the queue is
        stopping: the row is written unleased and claimed as before. If this process dies
        first, the lease runs out and the entry is claimed again, as for a claimed one."""
        if self._stopping or self._inflight >= self.max_inflight:
            return None
        self._inflight += 1
        return (self.owner, time.time() + self.lease)

    def give_back(self, queue_id: str) -> None:
        """`reserve`'s slot for `queue_id` is not taken after all: free it, and release the
        lease in case the row was committed anyway (its write failed, or was cancelled with
        the client's connection after the store had it), so that a claim delivers it now
        rather than when the lease runs out."""
        self._inflight -= 1
        self._slot_free.set()
        task = asyncio.create_task(self._release(queue_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def take(self, entry: QueueEntry, record: MessageRecord, body: bytes | None = None) -> None:
        """Deliver `record`, committed under `reserve`'s lease (`entry`). `body`: its body,
        every line end CRLF (from the SMTP receiver), so the spool is not read back and the
        delivery does not look for bare line ends again."""
        if not self._stopping:
            self._start(entry, record, body)
            return
        self.give_back(entry.queue_id)  # accepted while the queue stopped: back to the queue

    async def _release(self, queue_id: str) -> None:
        with contextlib.suppress(Exception):  # a closed store: the lease runs out instead
            await self.store.release_lease(queue_id)
        self.wake()

    async def _guarded(
        self, entry: QueueEntry, record: MessageRecord | None, body: bytes | None = None
    ) -> None:
        try:
            await self.deliver(entry, record, body)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("deliver.error queue_id=%s", entry.queue_id)
            with contextlib.suppress(Exception):
                await self.store.defer(
                    entry.queue_id, time.time() + backoff(self.cfg, entry.attempts + 1), str(exc)
                )
        finally:
            self._inflight -= 1
            self._slot_free.set()
            task = asyncio.current_task()
            if task is not None and not self._stopping:
                self._entries.pop(task, None)

    async def stop(self, grace: float = 5.0) -> None:
        """Let deliveries in flight finish for `grace` seconds, then cancel them and give their
        queue entries back (lease released), so a restart delivers them at once instead of
        after the lease expires. A cancelled transaction may already have reached the next hop:
        at-least-once, like Postfix."""
        self._stopping = True
        self._wake.set()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for t in pending:
                qid = self._entries.get(t)
                if qid is not None:
                    with contextlib.suppress(Exception):
                        await self.store.release_lease(qid)
        self._entries.clear()
        await self.pool.aclose()

    # one message ---------------------------------------------------------------------------------
    async def deliver(
        self, entry: QueueEntry, claimed: MessageRecord | None = None,
        taken: bytes | None = None,
    ) -> None:
        """Deliver one leased entry. `claimed`: its message as read with the claim, a moment
        ago (the lease keeps other deliveries off it, and the outbreak state is rechecked
        below); read here when not given. `taken`: its body as the SMTP receiver took it in
        (`take`; every line end CRLF already), else read from the spool."""
        qid = entry.queue_id
        record = claimed
        if record is None:
            try:
                record = await self.store.get_message(qid)
            except NotFoundError:
                return
        if record.state is not MessageState.QUEUED:
            await self.store.dequeue(qid)
            return
        held = self.pipeline.recheck(record)
        if held is not None:
            await self.pipeline.act.apply(
                qid,
                held,
                actor="queue",
                expect=(MessageState.QUEUED,),
                reason=f"before delivery: {held.reason}",
            )
            return
        try:
            body = taken if taken is not None else await self.spool.read(qid)
        except NotFoundError:
            await self.store.transition(
                qid, MessageState.BOUNCED, reason="spooled body missing", actor="queue",
                queue_due=None,
            )
            log.error("deliver.body_missing queue_id=%s", qid)
            return
        current = await self._current_verdict(record, body)
        if current is None:
            return
        record = current  # rescanned: its trace header tells the database that passed it
        head = trace_header(record).encode()  # written ahead of the body, never joined here
        rcpts = record.pending_recipients
        started = time.time()
        wire = to_wire(body, crlf=taken is not None)
        results = await self._send(record.sender, rcpts, head, wire)
        await self._record(record, entry, results, started)

    async def _current_verdict(
        self, record: MessageRecord, body: bytes
    ) -> MessageRecord | None:
        """A message is delivered only with a verdict from the database loaded now: one scanned
        under an older database is rescanned and decided again first. Returns the record to
        deliver (the rescanned one, or `record` as it was), None when the rescan moved it out
        of the queue (held, quarantined) and this attempt must stop."""
        if record.kind not in ("mail", "redacted") or not record.summary:
            return record
        if record.summary.get(NOT_RESCANNED):
            return record  # an administrator forced it out without a rescan
        outbreaks = self.pipeline.outbreaks
        if outbreaks.verdict_is_current(record.db_version):
            return record
        if not outbreaks.engine_is_current:
            # a cluster node still loading a bundle another node installed: a rescan now would
            # repeat the old verdict, so try again in a moment
            await self.store.defer(
                record.queue_id, time.time() + 1.0, "waiting for the cluster's database"
            )
            return None
        summary = await self.pipeline.scanner.scan(body, record.queue_id)
        decision = decide(
            summary, self.pipeline.outbreaks.active, replace(self.pipeline.policy,
                                                              can_reject=False)
        )
        released = record.summary.get(RELEASED_BY)
        extra = {RELEASED_BY: released} if released else None
        if released and decision.action in (Action.HOLD, Action.HOLD_ATTACHMENTS):
            decision = Decision(Action.DELIVER, f"released by {released}", (), ())
        reason = f"before delivery: rescanned with db {summary.db_version}: {decision.reason}"
        rec = await self.pipeline.act.apply(
            record.queue_id, decision, actor="queue", expect=(MessageState.QUEUED,),
            summary=summary, reason=reason, extra=extra, requeue=False,  # this attempt goes on
        )
        log.info("deliver.rescanned queue_id=%s old_db=%s db=%s action=%s", record.queue_id,
                 clean(record.db_version), clean(summary.db_version), decision.action.value)
        return rec if rec.state is MessageState.QUEUED else None

    async def _send(
        self, sender: str, rcpts: Sequence[str], head: bytes, body: Wire
    ) -> dict[str, RcptResult]:
        hop = self.cfg.delivery.next_hop
        if hop is not None:
            tls = TlsPolicy(level_for(self.cfg.delivery, None, hop), hop.host)
            return await self._send_to(hop, sender, rcpts, head, body, tls)
        by_domain: dict[str, list[str]] = defaultdict(list)
        for r in rcpts:
            by_domain[r.rpartition("@")[2].lower()].append(r)
        out: dict[str, RcptResult] = {}
        for domain, group in by_domain.items():
            out.update(await self._send_mx(domain, sender, group, head, body))
        return out

    async def _send_mx(
        self, domain: str, sender: str, rcpts: Sequence[str], head: bytes, body: Wire
    ) -> dict[str, RcptResult]:
        """To the domain's MX hosts in order, each address in turn, until one holds a session."""
        try:
            hosts = await self.mx.route(domain)
        except DeliveryError as exc:
            bounce = isinstance(exc, PermanentDeliveryError)
            status = RecipientStatus.BOUNCED if bounce else RecipientStatus.DEFERRED
            return {r: RcptResult(status, str(exc)) for r in rcpts}
        level = level_for(self.cfg.delivery, domain, None)
        last: dict[str, RcptResult] = {}
        for host in hosts:
            tls = TlsPolicy(level, host.name)
            for address in host.addresses:
                dest = HostPort(address, self.cfg.delivery.mx_port)
                last = await self._send_to(dest, sender, rcpts, head, body, tls)
                if not all(v.session for v in last.values()):
                    return last
        return last

    async def _send_to(
        self,
        dest: HostPort,
        sender: str,
        rcpts: Sequence[str],
        head: bytes,
        body: Wire,
        tls: TlsPolicy,
    ) -> dict[str, RcptResult]:
        async with self.pool.limit(dest):
            for attempt in (1, 2):
                try:
                    session, reused = await self.pool.acquire(dest, tls)
                except DeliveryError as exc:  # required TLS not had: never plaintext
                    msg = str(exc)
                    return {r: RcptResult(RecipientStatus.DEFERRED, msg, True) for r in rcpts}
                except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                    msg = f"connect to {dest}: {exc}"
                    return {r: RcptResult(RecipientStatus.DEFERRED, msg, True) for r in rcpts}
                done = False
                try:
                    results = await self._transaction(session, sender, rcpts, head, body)
                    done = True
                except (aiosmtplib.SMTPServerDisconnected, ConnectionError) as exc:
                    if reused and attempt == 1:
                        continue  # a pooled connection went stale: one fresh try
                    msg = f"connect to {dest}: lost connection: {exc}"
                    return {r: RcptResult(RecipientStatus.DEFERRED, msg, True) for r in rcpts}
                except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                    msg = f"{dest}: {exc}"
                    return {r: RcptResult(RecipientStatus.DEFERRED, msg) for r in rcpts}
                finally:  # cancelled (stop) or failed: never pooled, never left open
                    if done:
                        self.pool.release(dest, tls, session)
                    else:
                        session.close(quit=False)
                relay = session.relay
                return {r: replace(v, relay=relay) for r, v in results.items()}
        return {r: RcptResult(RecipientStatus.DEFERRED, f"{dest}: no connection") for r in rcpts}

    async def _transaction(
        self, session: RelaySession, sender: str, rcpts: Sequence[str], head: bytes, body: Wire
    ) -> dict[str, RcptResult]:
        options: list[str] = []
        needs_utf8 = not sender.isascii() or not all(r.isascii() for r in rcpts)
        if needs_utf8 and not session.supports("smtputf8"):
            why = "553 5.6.7 next hop does not support SMTPUTF8 (non-ASCII address)"
            return {r: RcptResult(RecipientStatus.BOUNCED, why) for r in rcpts}
        if needs_utf8:
            options.append("SMTPUTF8")
        if not body.ascii and session.supports("8bitmime"):
            options.append("BODY=8BITMIME")
        replies = await session.send(sender, rcpts, head, body, options, self.cfg.delivery.timeout)
        return {r: _result(reply) for r, reply in replies.items()}

    async def _record(
        self,
        record: MessageRecord,
        entry: QueueEntry,
        results: dict[str, RcptResult],
        started: float | None = None,
    ) -> None:
        qid = record.queue_id
        now = time.time()
        expired = now - record.received_at > self.cfg.delivery.max_lifetime
        final: dict[str, tuple[RecipientStatus, str]] = {}
        for r, res in results.items():
            if res.status is RecipientStatus.DEFERRED and expired:
                final[r] = (RecipientStatus.BOUNCED, f"queue lifetime exceeded: {res.detail}")
            else:
                final[r] = (res.status, res.detail)
        deferred = [r for r, (s, _) in final.items() if s is RecipientStatus.DEFERRED]
        newly_bounced = {r: d for r, (s, d) in final.items() if s is RecipientStatus.BOUNCED}
        if deferred or newly_bounced:  # else: written with the final transition below
            await self.store.set_recipients(qid, final)
        started = now if started is None else started
        # delays: before the queue (scan after queueing, hold), in it, this attempt
        queued_at = max(record.received_at, record.updated_at)
        delays = (queued_at - record.received_at, started - queued_at, now - started)
        for r, (status, detail) in final.items():
            maillog.delivery(
                qid, r, status, detail, relay=results[r].relay,
                delay=now - record.received_at, delays=delays,
            )  # fmt: skip
        if newly_bounced and record.kind == "mail":
            await self.send_dsn(record, newly_bounced)
        if deferred:
            attempts = entry.attempts + 1
            due = now + backoff(self.cfg, attempts)
            await self.store.defer(qid, due, final[deferred[0]][1])
            return
        # every recipient's status now: the claimed record's, with this attempt's over it (the
        # lease keeps others off the message, so no second read of the store is needed)
        statuses = {r.address: r.status for r in record.recipients}
        statuses.update((r, s) for r, (s, _) in final.items())
        n_ok = sum(statuses[r.address] is RecipientStatus.DELIVERED for r in record.recipients)
        state = MessageState.DELIVERED if n_ok else MessageState.BOUNCED
        await self.spool.finish(
            self.store,
            qid,
            state,
            reason=f"{n_ok}/{len(record.recipients)} recipients delivered",
            actor="queue",
            recipients=None if newly_bounced else final,
        )
        maillog.removed(qid)

    async def send_dsn(
        self, record: MessageRecord, failed: Mapping[str, str], *, actor: str = "queue"
    ) -> None:
        """Queue an RFC 3464 DSN to the sender for `failed` recipients (address -> diagnostic),
        unless `dsn_refusal()` says none may go."""
        why_not = dsn_refusal(record)
        if why_not:
            log.info("deliver.no_dsn queue_id=%s reason=%s", record.queue_id, why_not)
            return
        try:
            original = await self.spool.read(record.queue_id)
        except NotFoundError:
            original = b""
        data = build_dsn(self.cfg.smtp.hostname, record, failed, original)
        qid = new_queue_id()
        now = time.time()
        await self.spool.add_with_message(
            self.store,
            MessageRecord(
                queue_id=qid,
                sender="",
                recipients=(Recipient(record.sender),),
                size=len(data),
                received_at=now,
                state=MessageState.QUEUED,
                verdict="clean",
                reason=f"DSN for {record.queue_id}",
                kind="dsn",
            ),
            data,
            reason=f"DSN for {record.queue_id}",
            actor=actor,
            queue_due=now,
        )
        maillog.dsn_notice(record.queue_id, qid)
        maillog.received(qid, "", len(data), 1)
        self.wake()


def dsn_refusal(record: MessageRecord) -> str:
    """Why no DSN may be sent for `record` ("" when one may): a DSN to a null sender could
    loop, and one for mail found infected (an administrator may force it out of the quarantine)
    would mail a virus's forged sender; our own DSNs never bounce."""
    if record.kind != "mail":
        return f"{record.kind} is never bounced"
    if not record.sender:
        return "null sender"
    if record.verdict == "infected" or record.findings:
        return "infected"
    return ""


def build_dsn(
    hostname: str, record: MessageRecord, failed: Mapping[str, str], original: bytes
) -> bytes:
    """An RFC 3464 delivery status notification (multipart/report) for `failed` recipients,
    with the original message's header section (not its body) as text/rfc822-headers.

    Bounded whatever the original: at most `DSN_MAX_HEADERS` bytes of its header (cut at a
    line end), `DSN_MAX_LISTED` recipients (the rest counted), `DSN_MAX_DIAGNOSTIC` characters
    of each diagnostic: under 10 KB plus about 1 KB per listed recipient."""
    boundary = f"{record.queue_id}/{hostname}"
    items = list(failed.items())
    listed = [(r, clean(d, DSN_MAX_DIAGNOSTIC)) for r, d in items[:DSN_MAX_LISTED]]
    more = len(items) - len(listed)
    text = (
        f"This is the mail system at host {hostname}.\r\n\r\n"
        "Your message could not be delivered to one or more recipients:\r\n\r\n"
        + "".join(f"<{clean(r)}>: {d}\r\n" for r, d in listed)
        + (f"\r\n... and {more} more recipients (not listed).\r\n" if more else "")
    )
    fields = [
        f"Reporting-MTA: dns; {hostname}",
        f"X-Zerohour-Queue-ID: {record.queue_id}",
        f"Arrival-Date: {format_datetime(_utcnow(record.received_at))}",
        "",
    ]
    for r, d in listed:
        status = "5.0.0"
        code, _, rest = d.partition(" ")
        esc = rest.split(" ", 1)[0]
        if code.startswith("5") and esc.count(".") == 2 and esc.startswith("5."):
            status = esc
        if d.startswith("queue lifetime"):
            status = "4.4.7"
        fields += [
            f"Final-Recipient: rfc822; {clean(r)}",
            "Action: failed",
            f"Status: {status}",
            f"Diagnostic-Code: smtp; {d}",
            "",
        ]
    end = original.find(b"\r\n\r\n")
    headers = original[: end + 2] if end >= 0 else original
    if len(headers) > DSN_MAX_HEADERS:
        cut = headers.rfind(b"\r\n", 0, DSN_MAX_HEADERS - 1)
        headers = headers[: cut + 2] if cut > 0 else b""
    head = [
        f"From: Mail Delivery System <MAILER-DAEMON@{hostname}>",
        f"To: <{clean(record.sender)}>",
        "Subject: Undelivered Mail Returned to Sender",
        f"Date: {format_datetime(_utcnow())}",
        f"Message-ID: {make_msgid(domain=hostname)}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "",
        "This is a MIME-encapsulated delivery status notification.",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "",
        text,
        f"--{boundary}",
        "Content-Type: message/delivery-status",
        "",
        "\r\n".join(fields),
        f"--{boundary}",
        "Content-Type: text/rfc822-headers",
        "",
    ]
    return (
        "\r\n".join(head).encode()
        + b"\r\n"
        + headers
        + f"\r\n--{boundary}--\r\n".encode()
    )


def _utcnow(ts: float | None = None) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(time.time() if ts is None else ts, UTC)

