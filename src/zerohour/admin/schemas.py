"""Response shapes of the admin API, for the OpenAPI document (and so schemathesis can check
responses against it). Handlers build plain dicts; FastAPI validates them against these."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorOut(BaseModel):
    error: str
    detail: Any = ""


class RecipientOut(BaseModel):
    address: str
    status: str
    last_error: str


class AttachmentOut(BaseModel):
    path: str  # the scan engine's layer path, e.g. mail/invoice.pdf/x.exe
    name: str
    true_type: str  # detected from content, not the declared Content-Type
    size: int
    depth: int  # 0: an attachment of the message; 1: a member of one; ...


class MatchOut(BaseModel):
    name: str
    path: str  # the scan engine's layer path
    sha256: str = ""  # that layer's (message page only)
    part_path: str = ""  # the part-tree node holding it, "" if none (message page only)


class MessageOut(BaseModel):
    queue_id: str
    kind: str
    state: str
    sender: str
    recipients: list[RecipientOut]
    size: int
    received_at: float
    age_seconds: float
    updated_at: float
    verdict: str
    findings: list[str]
    db_version: str
    reason: str
    hold_tags: list[str]
    peer: str
    helo: str
    subject: str = ""
    attachments: list[AttachmentOut] = []
    matches: list[MatchOut] = []


class MessagePage(BaseModel):
    items: list[MessageOut]
    total: int
    limit: int
    offset: int


class EventOut(BaseModel):
    at: float
    state: str
    reason: str
    actor: str


class HeaderOut(BaseModel):
    name: str
    value: str


class PartOut(BaseModel):
    path: str
    content_type: str
    filename: str
    size: int
    true_type: str
    sha256: str
    is_attachment: bool
    note: str
    children: list[PartOut]
    matched: list[str] = []  # findings on this very layer
    contains_match: bool = False  # a layer below it matched


class MessageDetail(MessageOut):
    summary: dict[str, Any] | None
    events: list[EventOut]
    body_available: bool
    headers: list[HeaderOut]
    parts: PartOut | None


class ActionOut(BaseModel):
    queue_id: str
    state: str
    reason: str


class BulkError(BaseModel):
    queue_id: str
    error: str


class BulkOut(BaseModel):
    outbreak: str
    action: str
    matched: int
    results: dict[str, int]
    errors: list[BulkError]


class RetryOut(BaseModel):
    retried: int


class OutbreakOut(BaseModel):
    outbreak_id: str
    name: str
    mode: str
    scope: dict[str, Any]
    checksums: int
    declared_at: float
    updated_at: float
    ended_at: float | None
    end_reason: str
    active: bool


class OutbreakPage(BaseModel):
    items: list[OutbreakOut]
    total: int
    limit: int
    offset: int


class TimelineStep(BaseModel):
    step: str  # declared, first_held, signatures_installed, ended, last_released
    at: float | None  # None: not (yet) happened
    detail: str


class TimelineCounts(BaseModel):
    held: int
    released_clean: int
    quarantined: int
    deleted: int
    still_held: int
    checksum_quarantined: int


class TimelineOut(BaseModel):
    outbreak_id: str
    name: str
    mode: str
    active: bool
    steps: list[TimelineStep]
    counts: TimelineCounts


class QueueItem(BaseModel):
    queue_id: str
    due: float
    attempts: int
    last_error: str
    leased_by: str
    sender: str | None = None
    size: int | None = None
    kind: str | None = None
    recipients: list[str] | None = None
    received_at: float | None = None
    subject: str | None = None
    attachments: list[AttachmentOut] | None = None
    verdict: str | None = None
    findings: list[str] | None = None


class QueuePage(BaseModel):
    items: list[QueueItem]
    total: int
    limit: int
    offset: int


class NoticeOut(BaseModel):
    provider: str
    seq: int
    kind: str
    transport: str
    result: str
    at: float
    detail: dict[str, Any]


class NoticePage(BaseModel):
    items: list[NoticeOut]
    total: int
    limit: int
    offset: int


class AuditOut(BaseModel):
    at: float
    actor: str
    role: str
    action: str
    target: str
    result: str
    detail: dict[str, Any]
    remote: str


class AuditPage(BaseModel):
    items: list[AuditOut]
    total: int
    limit: int
    offset: int


class DatabaseOut(BaseModel):
    version: str
    dirs: list[str]
    written_at: float | None
    age_seconds: float | None


class WhoAmI(BaseModel):
    actor: str
    token_id: str
    role: str
