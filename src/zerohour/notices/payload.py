"""Typed notice payloads with strict validation (docs/notices.md, "Payload").

A payload that does not validate in every field is refused as a whole (`invalid_body`): the
gateway never applies half a notice. Unknown keys are refused too, so a field a newer provider
adds can never be silently ignored by an older gateway (the version field `v` is bumped instead).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from zerohour.errors import NoticeError
from zerohour.notices.envelope import loads_bounded
from zerohour.notices.keys import parse_key_b64, valid_provider_name
from zerohour.notices.model import OutbreakSpec

PROTOCOL_VERSION = 2  # what a provider writes; a gateway accepts every SUPPORTED_VERSIONS
SUPPORTED_VERSIONS = (1, 2)  # v2: outbreak descriptions in compact form (docs/notices.md)
_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MAX_SEQ = 2**53  # stays exact in every JSON implementation


class NoticeType(StrEnum):
    OUTBREAK_DECLARED = "outbreak.declared"
    OUTBREAK_UPDATED = "outbreak.updated"
    OUTBREAK_ENDED = "outbreak.ended"
    SIGNATURES_PUBLISHED = "signatures.published"
    KEY_ROTATED = "key.rotated"
    HEARTBEAT = "heartbeat"
    POLL_HINT = "poll.hint"
    STATE = "state"

    @property
    def logged(self) -> bool:
        """Logged types are numbered in the provider's log and applied in seq order.

        The others (heartbeat, poll.hint, state) are ephemeral: their `seq` is the highest
        logged seq when they were issued, they are protected against replay by a short expiry,
        and they only inform (gap detection, freshness, catch-up).
        """
        return self not in (NoticeType.HEARTBEAT, NoticeType.POLL_HINT, NoticeType.STATE)


def format_ts(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(value: Any, what: str) -> datetime:
    if not isinstance(value, str) or not _TS.match(value):
        raise NoticeError("invalid_body", f"{what} must be an RFC 3339 UTC timestamp")
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _int(value: Any, what: str, *, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value < _MAX_SEQ:
        raise NoticeError("invalid_body", f"{what} must be an integer >= {minimum}")
    return value


def _ids(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > 1000:
        raise NoticeError("invalid_body", f"{what} must be a list of at most 1000 ids")
    for v in value:
        if not isinstance(v, str) or not _ID.match(v):
            raise NoticeError("invalid_body", f"{what} contains an invalid outbreak id")
    return tuple(value)


def _exact_keys(obj: Any, required: set[str], what: str, optional: set[str] | None = None) -> None:
    if not isinstance(obj, dict):
        raise NoticeError("invalid_body", f"{what} must be an object")
    missing = required - set(obj)
    unknown = set(obj) - required - (optional or set())
    if missing or unknown:
        raise NoticeError(
            "invalid_body", f"{what}: missing {sorted(missing)}, unknown {sorted(unknown)[:5]}"
        )


@dataclass(frozen=True, slots=True)
class OutbreakEnded:
    outbreak_id: str
    reason: str

    @classmethod
    def from_json(cls, obj: Any) -> OutbreakEnded:
        _exact_keys(obj, {"outbreak_id", "reason"}, "outbreak.ended body")
        (oid,) = _ids([obj["outbreak_id"]], "outbreak_id")
        reason = obj["reason"]
        if not isinstance(reason, str) or len(reason) > 200:
            raise NoticeError("invalid_body", "reason must be a string of at most 200 chars")
        return cls(oid, reason)

    def to_json(self) -> dict[str, Any]:
        return {"outbreak_id": self.outbreak_id, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class SignaturesPublished:
    """A new signature bundle; `covers` are the outbreaks it ends once installed."""

    version: int
    manifest_url: str
    manifest_sha256: str
    manifest_size: int
    covers: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, obj: Any) -> SignaturesPublished:
        _exact_keys(
            obj,
            {"version", "manifest_url", "manifest_sha256", "manifest_size", "covers"},
            "signatures.published body",
        )
        url = obj["manifest_url"]
        if (
            not isinstance(url, str)
            or len(url) > 2000
            or not (url.startswith(("https://", "http://")) or url.startswith("/"))
        ):
            raise NoticeError("invalid_body", "manifest_url must be an http(s) URL or a path")
        digest = obj["manifest_sha256"]
        if not isinstance(digest, str) or not _HEX64.match(digest):
            raise NoticeError("invalid_body", "manifest_sha256 must be lowercase hex SHA-256")
        return cls(
            _int(obj["version"], "version", minimum=1),
            url,
            digest,
            _int(obj["manifest_size"], "manifest_size", minimum=1),
            _ids(obj["covers"], "covers"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "manifest_url": self.manifest_url,
            "manifest_sha256": self.manifest_sha256,
            "manifest_size": self.manifest_size,
            "covers": list(self.covers),
        }


@dataclass(frozen=True, slots=True)
class KeyRotated:
    """Names the provider's next key; valid only when signed by a currently pinned key."""

    next_public_key: str  # base64 of the raw 32 bytes
    next_keyid: str
    valid_from: datetime

    @classmethod
    def from_json(cls, obj: Any) -> KeyRotated:
        _exact_keys(obj, {"next_public_key", "next_keyid", "valid_from"}, "key.rotated body")
        from zerohour.errors import ConfigError
        from zerohour.notices.keys import keyid_of

        b64 = obj["next_public_key"]
        if not isinstance(b64, str):
            raise NoticeError("invalid_body", "next_public_key must be base64")
        try:
            pub = parse_key_b64(b64)
        except ConfigError as exc:
            raise NoticeError("invalid_body", str(exc)) from None
        if obj["next_keyid"] != keyid_of(pub):
            raise NoticeError("invalid_body", "next_keyid does not match next_public_key")
        return cls(b64, obj["next_keyid"], parse_ts(obj["valid_from"], "valid_from"))

    def to_json(self) -> dict[str, Any]:
        return {
            "next_public_key": self.next_public_key,
            "next_keyid": self.next_keyid,
            "valid_from": format_ts(self.valid_from),
        }


@dataclass(frozen=True, slots=True)
class Heartbeat:
    state_seq: int
    active: tuple[str, ...]
    signatures_version: int

    @classmethod
    def from_json(cls, obj: Any) -> Heartbeat:
        _exact_keys(obj, {"state_seq", "active", "signatures_version"}, "heartbeat body")
        return cls(
            _int(obj["state_seq"], "state_seq"),
            _ids(obj["active"], "active"),
            _int(obj["signatures_version"], "signatures_version"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "state_seq": self.state_seq,
            "active": list(self.active),
            "signatures_version": self.signatures_version,
        }


@dataclass(frozen=True, slots=True)
class PollHint:
    after_seq: int

    @classmethod
    def from_json(cls, obj: Any) -> PollHint:
        _exact_keys(obj, {"after_seq"}, "poll.hint body")
        return cls(_int(obj["after_seq"], "after_seq"))

    def to_json(self) -> dict[str, Any]:
        return {"after_seq": self.after_seq}


@dataclass(frozen=True, slots=True)
class ProviderState:
    """Signed current state (`GET /v1/state`): the heartbeat body plus full descriptions."""

    state_seq: int
    outbreaks: tuple[OutbreakSpec, ...]
    signatures: SignaturesPublished | None

    @property
    def active(self) -> tuple[str, ...]:
        return tuple(o.outbreak_id for o in self.outbreaks)

    @property
    def signatures_version(self) -> int:
        return self.signatures.version if self.signatures else 0

    @classmethod
    def from_json(cls, obj: Any, version: int = 1) -> ProviderState:
        _exact_keys(
            obj,
            {"state_seq", "active", "signatures_version", "outbreaks", "signatures"},
            "state body",
        )
        raw = obj["outbreaks"]
        if not isinstance(raw, list) or len(raw) > 1000:
            raise NoticeError("invalid_body", "outbreaks must be a list")
        parse = OutbreakSpec.from_compact if version >= 2 else OutbreakSpec.from_json
        outbreaks = tuple(parse(o) for o in raw)
        sigs = (
            None if obj["signatures"] is None else SignaturesPublished.from_json(obj["signatures"])
        )
        state = cls(_int(obj["state_seq"], "state_seq"), outbreaks, sigs)
        if _ids(obj["active"], "active") != state.active:
            raise NoticeError("invalid_body", "active does not list the outbreaks")
        if _int(obj["signatures_version"], "signatures_version") != state.signatures_version:
            raise NoticeError("invalid_body", "signatures_version does not match signatures")
        return state

    def to_json(self, version: int = 1) -> dict[str, Any]:
        return {
            "state_seq": self.state_seq,
            "active": list(self.active),
            "signatures_version": self.signatures_version,
            "outbreaks": [o.to_compact() if version >= 2 else o.to_json() for o in self.outbreaks],
            "signatures": self.signatures.to_json() if self.signatures else None,
        }


Body = (
    OutbreakSpec
    | OutbreakEnded
    | SignaturesPublished
    | KeyRotated
    | Heartbeat
    | PollHint
    | ProviderState
)

_BODY_PARSERS: dict[NoticeType, Any] = {
    NoticeType.OUTBREAK_ENDED: OutbreakEnded.from_json,
    NoticeType.SIGNATURES_PUBLISHED: SignaturesPublished.from_json,
    NoticeType.KEY_ROTATED: KeyRotated.from_json,
    NoticeType.HEARTBEAT: Heartbeat.from_json,
    NoticeType.POLL_HINT: PollHint.from_json,
}


def _parse_body(ntype: NoticeType, obj: Any, version: int) -> Body:
    """v1 and v2 differ only in how an outbreak description is written."""
    if ntype in (NoticeType.OUTBREAK_DECLARED, NoticeType.OUTBREAK_UPDATED):
        return OutbreakSpec.from_compact(obj) if version >= 2 else OutbreakSpec.from_json(obj)
    if ntype is NoticeType.STATE:
        return ProviderState.from_json(obj, version)
    body: Body = _BODY_PARSERS[ntype](obj)
    return body


def body_json(body: Body, version: int = PROTOCOL_VERSION) -> dict[str, Any]:
    if isinstance(body, OutbreakSpec):
        return body.to_compact() if version >= 2 else body.to_json()
    if isinstance(body, ProviderState):
        return body.to_json(version)
    return body.to_json()


@dataclass(frozen=True, slots=True)
class Notice:
    """An authenticated, validated notice. `digest` is the SHA-256 of the signed payload bytes."""

    provider: str
    seq: int
    type: NoticeType
    issued_at: datetime
    expires_at: datetime
    body: Body
    digest: str


def build_payload(
    *,
    provider: str,
    seq: int,
    type: NoticeType,
    issued_at: datetime,
    expires_at: datetime,
    body: Body,
    version: int = PROTOCOL_VERSION,
) -> bytes:
    obj: dict[str, Any] = {"v": version}
    if version == 1:
        times: tuple[Any, Any] = (format_ts(issued_at), format_ts(expires_at))
    else:
        times = (int(issued_at.timestamp()), int(expires_at.timestamp()))
    values = (provider, seq, type.value, *times, body_json(body, version))
    obj.update(zip(_V1_KEYS if version == 1 else _V2_KEYS, values, strict=True))
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode("utf-8")


# Top-level keys by version: v2 writes the same fields under one-letter keys, with the two
# timestamps as integer epoch seconds (UTC).
_V1_KEYS = ("provider", "seq", "type", "issued_at", "expires_at", "body")
_V2_KEYS = ("p", "s", "t", "i", "e", "b")


def parse_payload(data: bytes) -> Notice:
    """Validate an authenticated payload strictly; any flaw refuses the whole notice."""
    obj = loads_bounded(data, "invalid_body", "payload")
    if not isinstance(obj, dict) or "v" not in obj:
        raise NoticeError("invalid_body", "payload must be an object with a version v")
    version = obj["v"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise NoticeError("unsupported_version", f"protocol version {str(version)[:20]!r}")
    if version not in SUPPORTED_VERSIONS:
        raise NoticeError("unsupported_version", f"protocol version {version!r}")
    names = _V1_KEYS if version == 1 else _V2_KEYS
    _exact_keys(obj, {"v", *names}, "payload")
    provider, raw_seq, raw_type, raw_issued, raw_expires, raw_body = (obj[k] for k in names)
    if not isinstance(provider, str) or not valid_provider_name(provider):
        raise NoticeError("invalid_body", "invalid provider name")
    try:
        ntype = NoticeType(raw_type)
    except ValueError:
        raise NoticeError("invalid_body", "unknown notice type") from None
    if version == 1:
        issued = parse_ts(raw_issued, "issued_at")
        expires = parse_ts(raw_expires, "expires_at")
    else:
        issued = datetime.fromtimestamp(_int(raw_issued, "issued_at"), UTC)
        expires = datetime.fromtimestamp(_int(raw_expires, "expires_at"), UTC)
    if expires <= issued:
        raise NoticeError("invalid_body", "expires_at must be after issued_at")
    seq = _int(raw_seq, "seq", minimum=1 if ntype.logged else 0)
    body = _parse_body(ntype, raw_body, version)
    return Notice(provider, seq, ntype, issued, expires, body, hashlib.sha256(data).hexdigest())
