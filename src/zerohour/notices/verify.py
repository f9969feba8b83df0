"""The one verify-and-apply function every transport feeds (gateway side).

`NoticeVerifier.submit(raw, transport)` authenticates, validates, orders and applies a notice,
or refuses it with a counted reason. Pure logic: effects and persistence go through the
`notices.sink.OutbreakSink` Protocol; the network comes in only as raw bytes and goes
out only as the `on_gap` callback (which asks the poller to fetch what is missing).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from zerohour.errors import BundleError, ConfigError, NoticeError
from zerohour.notices.envelope import MAX_DATAGRAM, MAX_ENVELOPE, open_envelope
from zerohour.notices.keys import PinnedKey, parse_key_b64
from zerohour.notices.model import OutbreakSpec
from zerohour.notices.payload import (
    Heartbeat,
    KeyRotated,
    Notice,
    NoticeType,
    OutbreakEnded,
    PollHint,
    ProviderState,
    SignaturesPublished,
    parse_payload,
)
from zerohour.notices.sink import Ledger, OutbreakSink, Receipt

log = logging.getLogger("zerohour.notices")
_MAX_PENDING = 1000


class Transport(StrEnum):
    STREAM = "stream"
    POLL = "poll"
    UDP = "udp"
    MAIL = "mail"
    STATE = "state"


class Result(StrEnum):
    APPLIED = "applied"
    INFO = "info"  # authentic heartbeat / poll.hint / state that changed nothing
    PENDING = "pending"  # authentic but ahead of a seq gap: waits for the gap to be filled
    DUPLICATE = "duplicate"  # an already applied seq heard again (stream and poll): normal
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Outcome:
    result: Result
    reason: str = ""
    seq: int | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _clean(text: str) -> str:
    """Strip control characters from peer-supplied text before it reaches a log."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:200]


@dataclass(frozen=True, slots=True)
class _Held:
    notice: Notice
    keyid: str
    transport: Transport


class NoticeVerifier:
    """Authenticate → validate → order → apply, with refusals logged and counted by reason."""

    def __init__(
        self,
        pinned: PinnedKey,
        sink: OutbreakSink,
        *,
        skew: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime] = _utcnow,
        on_gap: Callable[[int], None] | None = None,
    ) -> None:
        self.pinned = pinned
        self.sink = sink
        self.skew = skew
        self.clock = clock
        self.on_gap = on_gap
        # Called as observe(transport, result, seq) for every outcome (metrics, audit log).
        self.observers: list[Callable[[str, str, int | None], None]] = []
        self.counts: Counter[tuple[str, str]] = Counter()
        self.last_heard: dict[str, datetime] = {}
        self.head_seq = 0  # highest seq the provider is known to have (notices, heartbeats)
        self._ledger = Ledger()
        self._pending: dict[int, _Held] = {}
        self._lock = asyncio.Lock()
        self._started = False

    async def start(self) -> None:
        self._ledger = await self.sink.load_ledger()
        self.head_seq = max(self.head_seq, self._ledger.last_seq)
        self._started = True

    @property
    def last_seq(self) -> int:
        return self._ledger.last_seq

    @property
    def signatures_version(self) -> int:
        return self._ledger.signatures_version

    @property
    def behind(self) -> bool:
        """True when the provider has notices this gateway has not applied."""
        return self.head_seq > self._ledger.last_seq

    def _keys_at(self, now: datetime) -> dict[str, Ed25519PublicKey]:
        """Keys accepted at `now`: the newest key whose `valid_from` has passed (within skew).

        A rotation hands over at `valid_from`; around it both keys are accepted for `skew`.
        After that the old key is refused, so a rotated-out (maybe leaked) key stops working.
        """
        chain: list[tuple[datetime, Ed25519PublicKey]] = [
            (datetime(1970, 1, 1, tzinfo=UTC), self.pinned.public_key)
        ]
        for r in self._ledger.rotations:
            try:
                chain.append((r.valid_from, parse_key_b64(r.next_public_key)))
            except ConfigError:  # validated on arrival; unreachable
                continue
        accepted: dict[str, Ed25519PublicKey] = {}
        for i, (start, pub) in enumerate(chain):
            end = chain[i + 1][0] if i + 1 < len(chain) else None
            if start - self.skew <= now and (end is None or now < end + self.skew):
                accepted[PinnedKey(self.pinned.provider, pub).keyid] = pub
        return accepted

    def accepted_keys(self) -> dict[str, Ed25519PublicKey]:
        """Keys accepted now (for verifying bundle manifests with the same trust)."""
        return self._keys_at(self.clock())

    def tally(self, transport: Transport, result: str, seq: int | None) -> None:
        self.counts[(transport.value, result)] += 1
        for observe in self.observers:
            try:
                observe(transport.value, result, seq)
            except Exception:  # an observer (metrics, audit) must never break verification
                log.exception("notice.observer_failed")

    def _reject(self, transport: Transport, reason: str, seq: int | None, detail: str) -> Outcome:
        self.tally(transport, reason, seq)
        log.warning(
            "notice.rejected transport=%s reason=%s seq=%s detail=%s",
            transport.value,
            reason,
            seq,
            _clean(detail),
        )
        return Outcome(Result.REJECTED, reason, seq)

    def _count(self, transport: Transport, result: Result, seq: int | None) -> Outcome:
        self.tally(transport, result.value, seq)
        return Outcome(result, "", seq)

    async def submit(self, raw: bytes, transport: Transport) -> Outcome:
        """Feed one raw envelope from any transport."""
        if not self._started:
            await self.start()
        max_size = MAX_DATAGRAM if transport is Transport.UDP else MAX_ENVELOPE
        now = self.clock()
        try:
            keyid, payload = open_envelope(raw, self._keys_at(now), max_size=max_size)
            notice = parse_payload(payload)
        except NoticeError as exc:
            return self._reject(transport, exc.reason, None, str(exc))
        except Exception as exc:  # a parser bug must never end a listener: refuse, log, go on
            log.exception("notice.parse_failed transport=%s", transport.value)
            return self._reject(transport, "malformed", None, type(exc).__name__)
        if notice.provider != self.pinned.provider:
            return self._reject(transport, "wrong_provider", notice.seq, notice.provider)
        if notice.expires_at + self.skew < now:
            return self._reject(transport, "expired", notice.seq, notice.type.value)
        if notice.issued_at - self.skew > now:
            return self._reject(transport, "future", notice.seq, notice.type.value)
        self.last_heard[transport.value] = now
        async with self._lock:
            return await self._ordered(_Held(notice, keyid, transport))

    async def _ordered(self, held: _Held) -> Outcome:
        n, transport = held.notice, held.transport
        if not n.type.logged:
            return await self._ephemeral(held)
        self.head_seq = max(self.head_seq, n.seq)
        if n.seq <= self._ledger.last_seq:
            known = self._ledger.digests.get(n.seq)
            if known is not None and known != n.digest:
                log.error(
                    "notice.replay_conflict seq=%d: same seq, different content, validly "
                    "signed: the provider's key or log may be compromised",
                    n.seq,
                )
                return self._reject(transport, "replay_conflict", n.seq, n.type.value)
            # The same notice again (stream and poll overlap, a UDP copy, a mail resent, or
            # a replay of it): a no-op, counted, but not a warning.
            log.debug("notice.duplicate transport=%s seq=%d", transport.value, n.seq)
            return self._count(transport, Result.DUPLICATE, n.seq)
        if n.seq > self._ledger.last_seq + 1:
            if len(self._pending) < _MAX_PENDING or n.seq in self._pending:
                self._pending[n.seq] = held
            self._gap()
            self.tally(transport, "out_of_order", n.seq)
            return Outcome(Result.PENDING, "out_of_order", n.seq)
        outcome = await self._apply(held)
        await self._drain()
        return outcome

    def _gap(self) -> None:
        if self.on_gap is not None:
            self.on_gap(self._ledger.last_seq)

    async def _drain(self) -> None:
        """Apply waiting notices that the gap-filler made contiguous (re-checking expiry)."""
        for seq in sorted(s for s in self._pending if s <= self._ledger.last_seq):
            del self._pending[seq]
        while (nxt := self._pending.pop(self._ledger.last_seq + 1, None)) is not None:
            if nxt.notice.expires_at + self.skew < self.clock():
                self._reject(nxt.transport, "expired", nxt.notice.seq, "while waiting for a gap")
                self._gap()
                return
            await self._apply(nxt)
        if self._pending:
            self._gap()

    async def _apply(self, held: _Held) -> Outcome:
        n = held.notice
        receipt = Receipt(n.seq, n.digest, n.type, held.keyid, held.transport.value)
        sink = self.sink
        ledger = self._ledger
        version = ledger.signatures_version
        rotations = ledger.rotations
        try:
            body = n.body
            if isinstance(body, OutbreakSpec):
                if n.type is NoticeType.OUTBREAK_DECLARED:
                    await sink.declare(body, receipt)
                else:
                    await sink.update(body, receipt)
            elif isinstance(body, OutbreakEnded):
                await sink.end(body.outbreak_id, body.reason, receipt)
            elif isinstance(body, SignaturesPublished):
                if body.version <= ledger.signatures_version:
                    await sink.skip(receipt, "stale_signatures")
                    self._advance(receipt, version, rotations)
                    return self._reject(
                        held.transport, "stale_signatures", n.seq, f"version {body.version}"
                    )
                await sink.signatures_published(body, receipt)
                version = body.version
            elif isinstance(body, KeyRotated):
                await sink.key_rotated(body, receipt)
                rotations = (*rotations, body)
                log.info("notice.key_rotated next_keyid=%s", body.next_keyid)
            else:  # unreachable: only logged types get here
                raise NoticeError("invalid_body", f"{n.type} is not a logged type")
        except NoticeError as exc:
            return self._reject(held.transport, exc.reason, n.seq, str(exc))
        except BundleError as exc:
            # Authentic notice, bad bundle (mirror tampering, wrong digest, older version):
            # nothing installed, seq not advanced; the next regular poll retries.
            return self._reject(held.transport, "bundle_refused", n.seq, str(exc))
        except Exception as exc:
            log.exception("notice.apply_failed seq=%d type=%s", n.seq, n.type.value)
            return self._reject(held.transport, "apply_failed", n.seq, type(exc).__name__)
        self._advance(receipt, version, rotations)
        log.info("notice.applied seq=%d type=%s via=%s", n.seq, n.type.value, receipt.transport)
        return self._count(held.transport, Result.APPLIED, n.seq)

    def _advance(self, receipt: Receipt, version: int, rotations: tuple[KeyRotated, ...]) -> None:
        digests = dict(self._ledger.digests)
        if receipt.type.logged:
            digests[receipt.seq] = receipt.digest
        self._ledger = Ledger(max(self._ledger.last_seq, receipt.seq), digests, rotations, version)

    async def _ephemeral(self, held: _Held) -> Outcome:
        n, transport = held.notice, held.transport
        body = n.body
        if isinstance(body, Heartbeat):
            self.head_seq = max(self.head_seq, body.state_seq)
            if self.behind:
                self._gap()
            return self._count(transport, Result.INFO, n.seq)
        if isinstance(body, PollHint):
            self.head_seq = max(self.head_seq, body.after_seq + 1)
            self._gap()
            return self._count(transport, Result.INFO, n.seq)
        if isinstance(body, ProviderState):
            return await self._converge(held, body)
        raise NoticeError("invalid_body", f"{n.type} is not ephemeral")  # unreachable

    async def _converge(self, held: _Held, state: ProviderState) -> Outcome:
        """Catch-up: jump to the provider's signed state when it is not older than ours."""
        self.head_seq = max(self.head_seq, state.state_seq)
        if state.state_seq < self._ledger.last_seq:
            return self._count(held.transport, Result.INFO, state.state_seq)
        receipt = Receipt(
            state.state_seq, held.notice.digest, NoticeType.STATE, held.keyid, held.transport.value
        )
        try:
            await self.sink.converge(state, receipt)
        except Exception as exc:
            log.exception("notice.converge_failed state_seq=%d", state.state_seq)
            return self._reject(held.transport, "apply_failed", state.state_seq, type(exc).__name__)
        version = max(self._ledger.signatures_version, state.signatures_version)
        self._advance(receipt, version, self._ledger.rotations)
        log.info("notice.converged state_seq=%d active=%d", state.state_seq, len(state.active))
        await self._drain()
        return self._count(held.transport, Result.APPLIED, state.state_seq)

    def rejected_total(self) -> int:
        return sum(
            v
            for (_, r), v in self.counts.items()
            if r not in {x.value for x in Result} and r != "out_of_order"
        )
