"""The `Store` protocol and its values: everything the gateway keeps besides message bodies.

A message moves through `MessageState`s; every change is an `Event` (the audit trail: time,
state, reason, actor). Recipients carry their own status so a partial delivery is retried only
for the recipients that still need it. The delivery queue has a due time, attempts, the last
error and a lease (owner + expiry): a single SQLite node ignores leases in practice, while a
PostgreSQL cluster claims work with `FOR UPDATE SKIP LOCKED` and lets another node take over
when a lease expires. Held messages are tagged with the outbreaks that hold them; outbreak state,
per-provider notice sequence numbers, a notice log and a small key/value table complete it.

`transaction()` is the unit of work: calls made inside it (in the same task) commit together,
so a notice's state change and its sequence number can never be applied apart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from zerohour.notices.model import OutbreakSpec


class MessageState(StrEnum):
    RECEIVED = "received"  # spooled (250 sent), not yet scanned
    QUEUED = "queued"  # cleared, waiting for (re)delivery
    HELD = "held"  # in the hold buffer, tagged by outbreak
    QUARANTINED = "quarantined"
    DELIVERED = "delivered"
    BOUNCED = "bounced"  # permanent failure, DSN queued (or none for a null sender)
    REJECTED = "rejected"  # refused in the SMTP session (audit only, nothing spooled)
    DISCARDED = "discarded"
    DELETED = "deleted"  # removed by an administrator


FINAL_STATES = frozenset(
    {
        MessageState.DELIVERED,
        MessageState.BOUNCED,
        MessageState.REJECTED,
        MessageState.DISCARDED,
        MessageState.DELETED,
    }
)


class RecipientStatus(StrEnum):
    PENDING = "pending"
    DEFERRED = "deferred"  # a 4xx or connection failure: retried
    DELIVERED = "delivered"
    BOUNCED = "bounced"  # 5xx or queue lifetime exceeded


@dataclass(frozen=True, slots=True)
class Recipient:
    address: str
    status: RecipientStatus = RecipientStatus.PENDING
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One accepted (or refused) message. The body lives in the spool under `queue_id`."""

    queue_id: str
    sender: str
    recipients: tuple[Recipient, ...]
    size: int
    received_at: float
    state: MessageState
    peer: str = ""
    helo: str = ""
    verdict: str = ""  # "" (not scanned), "clean", "infected", "error"
    findings: tuple[str, ...] = ()
    db_version: str = ""
    summary: Mapping[str, Any] | None = None  # gateway.decide.ScanSummary.to_json()
    reason: str = ""
    updated_at: float = 0.0
    hold_tags: tuple[str, ...] = ()  # outbreak ids holding this message
    kind: str = "mail"  # "mail", or "dsn" for the bounces we generate

    @property
    def pending_recipients(self) -> tuple[str, ...]:
        return tuple(
            r.address
            for r in self.recipients
            if r.status in (RecipientStatus.PENDING, RecipientStatus.DEFERRED)
        )


@dataclass(frozen=True, slots=True)
class Event:
    queue_id: str
    at: float
    state: MessageState
    reason: str
    actor: str


@dataclass(frozen=True, slots=True)
class QueueEntry:
    queue_id: str
    due: float
    attempts: int
    last_error: str = ""
    lease_owner: str = ""
    lease_expiry: float = 0.0


#: A delivery lease: (owner, expiry as a Unix time).
Lease = tuple[str, float]


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """Admin list filters; every given criterion must match."""

    states: tuple[MessageState, ...] = ()
    outbreak_id: str | None = None
    sender: str | None = None  # substring, case-insensitive
    recipient: str | None = None  # substring, case-insensitive
    min_size: int | None = None
    max_size: int | None = None
    received_before: float | None = None
    received_after: float | None = None
    #: substring, case-insensitive, of the Subject or of any attachment's name (both read from
    #: the stored scan summary: `subject`, `attachments`)
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """Keyset-free, simple paging: newest first."""

    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, slots=True)
class OutbreakRecord:
    spec: OutbreakSpec
    declared_at: float
    updated_at: float
    ended_at: float | None = None
    end_reason: str = ""

    @property
    def active(self) -> bool:
        return self.ended_at is None


@dataclass(frozen=True, slots=True)
class NoticeLogEntry:
    provider: str
    seq: int
    kind: str
    transport: str
    result: str  # "applied" or the refusal reason
    at: float
    detail: Mapping[str, Any] = field(default_factory=dict)


#: meta key: the signature bundle version installed on this store (every node converges on it);
#: written only by `Store.put_bundle`, together with the bundle's files.
BUNDLE_VERSION_KEY = "db.bundle_version"

ALL_MESSAGES = MessageFilter()
FIRST_PAGE = Page()


class _Unset:
    """Sentinel: leave a field as it is."""


UNSET: Any = _Unset()


class Store(Protocol):
    """Durable gateway state. Every method is a committed unit unless inside `transaction()`."""

    async def aclose(self) -> None: ...

    def transaction(self) -> AbstractAsyncContextManager[None]: ...

    # messages -------------------------------------------------------------------------------
    async def add_message(
        self,
        record: MessageRecord,
        *,
        reason: str,
        actor: str = "smtp",
        queue_due: float | None = None,
        lease: Lease | None = None,
    ) -> None:
        """Insert a message with its recipients, first event, hold tags and queue row.
        `lease`: the queue row is written already leased to (owner, expiry), for a delivery
        queue that takes the message over in memory (no claim and no read back)."""

    async def get_message(self, queue_id: str) -> MessageRecord:
        """Raise `NotFoundError` when unknown."""

    async def list_messages(
        self, flt: MessageFilter = ALL_MESSAGES, page: Page = FIRST_PAGE
    ) -> list[MessageRecord]: ...

    async def count_messages(self, flt: MessageFilter = ALL_MESSAGES) -> int: ...

    async def transition(
        self,
        queue_id: str,
        state: MessageState,
        *,
        reason: str,
        actor: str,
        expect: Sequence[MessageState] | None = None,
        verdict: str = UNSET,
        findings: Sequence[str] = UNSET,
        db_version: str = UNSET,
        summary: Mapping[str, Any] | None = UNSET,
        hold_tags: Sequence[str] = UNSET,
        queue_due: float | None = UNSET,
        recipients: Mapping[str, tuple[RecipientStatus, str]] | None = None,
    ) -> MessageRecord:
        """Change state (and given fields), append an event, add/remove the queue row.

        `expect`: the current state must be one of these, else `StoreError` (a lost race).
        `queue_due`: a float (re)queues at that time, None removes the queue row.
        `recipients`: as `set_recipients`, in the same commit (a finished delivery: one
        durable write instead of two in a row).
        """

    async def set_recipients(
        self, queue_id: str, results: Mapping[str, tuple[RecipientStatus, str]]
    ) -> None: ...

    async def events(self, queue_id: str) -> list[Event]: ...

    async def recent_events(self, limit: int = 100) -> list[Event]: ...

    async def count_by_state(self) -> dict[MessageState, int]: ...

    async def ids_in_state(self, states: Sequence[MessageState]) -> list[str]: ...

    async def held_for(self, outbreak_id: str) -> list[str]: ...

    async def outbreak_events(self, outbreak_id: str, limit: int = 100_000) -> list[Event]:
        """Every event (oldest first, at most `limit`) of every message that may have been
        held or quarantined for `outbreak_id`: one with an event whose reason contains the id,
        or tagged with it now. A superset (the id is matched as a substring): the caller reads
        the reasons to decide (`admin.timeline`)."""

    # delivery queue --------------------------------------------------------------------------
    async def claim_due(
        self, owner: str, now: float, limit: int, lease: float
    ) -> list[QueueEntry]:
        """Lease up to `limit` due entries not leased by a live owner."""

    async def claim_due_messages(
        self, owner: str, now: float, limit: int, lease: float
    ) -> list[tuple[QueueEntry, MessageRecord | None]]:
        """`claim_due`, each entry with its message as of the claim (None: no such message),
        in one store call: the delivery that follows needs no read of its own."""

    async def defer(self, queue_id: str, due: float, error: str) -> None:
        """Count an attempt, set the next due time and last error, drop the lease."""

    async def release_lease(self, queue_id: str) -> None: ...

    async def release_leases_of(self, owner: str) -> int:
        """Give back every lease `owner` holds (a process known to be dead); the count."""
        ...

    async def dequeue(self, queue_id: str) -> None:
        """Drop a queue row whose message is no longer queued (deleted, held elsewhere)."""

    async def queue_entries(self, page: Page = FIRST_PAGE) -> list[QueueEntry]: ...

    async def queue_entry(self, queue_id: str) -> QueueEntry | None: ...

    async def retry_now(self, queue_id: str | None, now: float) -> int:
        """Make one (or every) queue entry due now; returns how many."""

    # outbreaks, notices, meta -----------------------------------------------------------------
    async def save_outbreak(self, spec: OutbreakSpec, at: float) -> None:
        """Declare or update (same id) an outbreak; an ended one becomes active again."""

    async def end_outbreak(self, outbreak_id: str, reason: str, at: float) -> None: ...

    async def outbreaks(self, *, active_only: bool = True) -> list[OutbreakRecord]: ...

    async def get_seq(self, provider: str) -> int: ...

    async def set_seq(self, provider: str, seq: int) -> None: ...

    async def log_notice(self, entry: NoticeLogEntry) -> None: ...

    async def notice_log(self, page: Page = FIRST_PAGE) -> list[NoticeLogEntry]: ...

    async def get_meta(self, key: str, default: str | None = None) -> str | None: ...

    async def set_meta(self, key: str, value: str) -> None: ...

    # the installed signature bundle (shared by every node) -----------------------------------
    async def put_bundle(self, version: int, files: Mapping[str, bytes]) -> bool:
        """Make bundle `version` (its files: name -> bytes) the installed one: files and the
        meta key `BUNDLE_VERSION_KEY` commit together (PostgreSQL NOTIFYs "meta"), older
        versions' files are dropped. The same version again is a no-op (returns False); an older
        one raises `StoreError`. Returns True when this call installed it."""

    async def bundle_version(self) -> int:
        """The installed bundle version, 0 when none."""

    async def get_bundle(self, version: int) -> dict[str, bytes]:
        """The files of bundle `version`; `NotFoundError` when they are not stored."""

    # change fan-out (a cluster's outbreak state; another process's changes) ------------------
    def watch_changes(self, poll_interval: float = 1.0) -> AsyncIterator[str]:
        """Yield what other nodes or processes changed: "outbreaks", "queue", "meta", or
        "resync" (anything may have changed: reload). PostgreSQL pushes (LISTEN/NOTIFY, with a
        poll fallback); SQLite polls. Runs until the store closes or the consumer stops."""
        ...
