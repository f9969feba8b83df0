"""The provider's durable core: identity, signing keys and the numbered notice log (SQLite).

Lab commands and the running server open the same data folder; SQLite (WAL) serialises writers,
and `BEGIN IMMEDIATE` around "next seq, sign, insert" makes seq strictly increasing across
processes and restarts (the last seq lives in `meta`, so deleting rows can never reuse one).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from zerohour.errors import ConfigError, NotFoundError
from zerohour.notices.envelope import sign
from zerohour.notices.keys import (
    KEY_FILE,
    PinnedKey,
    generate_key,
    keyid_of,
    load_key,
    load_or_generate_key,
    raw_public,
    valid_provider_name,
)
from zerohour.notices.model import OutbreakSpec
from zerohour.notices.payload import (
    Body,
    Heartbeat,
    KeyRotated,
    NoticeType,
    OutbreakEnded,
    PollHint,
    ProviderState,
    SignaturesPublished,
    build_payload,
)
from zerohour.provider.wake import send_wake

DEFAULT_NAME = "zerohour-lab"
DEFAULT_LIFETIME = timedelta(hours=1)
STATE_LIFETIME = timedelta(minutes=5)
_KEY_OVERLAP = timedelta(minutes=5)
_GATEWAY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_GATEWAY_ID = re.compile(r"^[0-9a-f]{64}$")
MAX_SUBSCRIPTIONS_PER_CREDENTIAL = 64  # a cluster's nodes share one credential, within reason

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS notices (
  seq INTEGER PRIMARY KEY, type TEXT NOT NULL, envelope BLOB NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbreaks (
  outbreak_id TEXT PRIMARY KEY, spec TEXT NOT NULL, active INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS bundles (version INTEGER PRIMARY KEY, descriptor TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS keys (
  keyid TEXT PRIMARY KEY, file TEXT NOT NULL, valid_from TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS signatures (
  name TEXT PRIMARY KEY, file TEXT NOT NULL, line TEXT NOT NULL, version INTEGER NOT NULL,
  retired_in INTEGER, reason TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS gateways (
  name TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL,
  revoked_at TEXT);
CREATE TABLE IF NOT EXISTS gateway_subscriptions (
  gateway_id TEXT PRIMARY KEY, credential TEXT NOT NULL REFERENCES gateways(name),
  source TEXT NOT NULL, udp TEXT, control_address TEXT, smtp TEXT, updated_at TEXT NOT NULL);
-- Before per-gateway credentials, subscriptions were made with one shared token and never
-- replaced; they are not carried over (each gateway re-subscribes with its own credential).
DROP TABLE IF EXISTS subscriptions;
"""


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature of the provider's set: live (`retired_in` None) or retired."""

    name: str
    file: str  # the bundle file it is published in (its extension is its format)
    line: str
    version: int  # the bundle version that last published it
    retired_in: int | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Subscription:
    """Where to push, for one gateway: `id` is the gateway id (the keyid of the gateway's own
    Ed25519 key), so a gateway that subscribes again replaces its subscription."""

    id: str
    udp: str | None  # "IP:PORT", checked against the push policy when subscribed
    control_address: str | None
    smtp: str | None  # "HOST:PORT" the operator approved; None: the MX of the address's domain
    credential: str = ""  # the name of the gateway credential it was made with
    source: str = ""  # the IP address the subscription request came from


@dataclass(frozen=True, slots=True)
class GatewayCredential:
    name: str
    created_at: str
    revoked_at: str | None
    subscriptions: int


class SubscriptionRefused(Exception):
    """The credential may not make this subscription (HTTP 403)."""


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Provider:
    """One provider data folder. Cheap to open; every method is a short transaction.

    Blocking (SQLite, files): the server calls these through `asyncio.to_thread`.
    """

    def __init__(self, data_dir: Path, *, name: str | None = None, create: bool = True) -> None:
        self.data_dir = data_dir
        if not create and not (data_dir / "provider.db").exists():
            raise ConfigError(f"{data_dir} is not a provider data folder (run `provider run`)")
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._db = sqlite3.connect(data_dir / "provider.db", timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        load_or_generate_key(data_dir)
        with self._tx():
            stored = self._meta("name")
            if stored is None:
                chosen = name or DEFAULT_NAME
                if not valid_provider_name(chosen):
                    raise ConfigError(f"invalid provider name {chosen!r}")
                self._set_meta("name", chosen)
                self._set_meta("last_seq", "0")
                self._set_meta("pushed_seq", "0")
            elif name is not None and name != stored:
                raise ConfigError(f"provider in {data_dir} is named {stored!r}, not {name!r}")
        self.name = self._meta("name") or DEFAULT_NAME

    def close(self) -> None:
        self._db.close()

    # -- plumbing --------------------------------------------------------------------------
    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT v FROM meta WHERE k = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", (key, value))

    # -- keys --------------------------------------------------------------------------------
    def _key_chain(self) -> list[tuple[datetime, Ed25519PrivateKey]]:
        chain = [(datetime(1970, 1, 1, tzinfo=UTC), load_key(self.data_dir, KEY_FILE))]
        for file, valid_from in self._db.execute(
            "SELECT file, valid_from FROM keys ORDER BY valid_from"
        ):
            chain.append((datetime.fromisoformat(valid_from), load_key(self.data_dir, file)))
        return chain

    def signing_keys(self, now: datetime | None = None) -> list[Ed25519PrivateKey]:
        """The key active now, plus its neighbour while a handover is within the overlap."""
        now = now or utcnow()
        chain = self._key_chain()
        out: list[Ed25519PrivateKey] = []
        for i, (start, key) in enumerate(chain):
            end = chain[i + 1][0] if i + 1 < len(chain) else None
            if start - _KEY_OVERLAP <= now and (end is None or now < end + _KEY_OVERLAP):
                out.append(key)
        return out

    def current_key(self) -> PinnedKey:
        now = utcnow()
        chain = self._key_chain()
        active = [k for start, k in chain if start <= now][-1]
        return PinnedKey(self.name, active.public_key())

    def rotate_key(self, valid_from: datetime) -> KeyRotated:
        """Create the next key and announce it in a `key.rotated` signed by the current one."""
        next_name = f"signing-{secrets.token_hex(4)}.key"
        key = generate_key(self.data_dir, next_name)
        pub = key.public_key()
        rotation = KeyRotated(
            base64.b64encode(raw_public(pub)).decode("ascii"), keyid_of(pub), valid_from
        )
        # Announce first (signed by the keys active now), then register the key for signing.
        self.append(NoticeType.KEY_ROTATED, rotation, lifetime=timedelta(days=30))
        with self._tx() as db:
            db.execute(
                "INSERT INTO keys (keyid, file, valid_from) VALUES (?, ?, ?)",
                (rotation.next_keyid, next_name, valid_from.isoformat()),
            )
        return rotation

    # -- the log ----------------------------------------------------------------------------
    def append(
        self,
        ntype: NoticeType,
        body: Body,
        *,
        lifetime: timedelta = DEFAULT_LIFETIME,
        also: Callable[[sqlite3.Connection], None] | None = None,
    ) -> tuple[int, bytes]:
        """Number, sign and store one notice, with its effect on the provider state (and `also`,
        run in the same transaction), atomically."""
        now = utcnow()
        keys = self.signing_keys(now)
        with self._tx() as db:
            seq = int(self._meta("last_seq") or 0) + 1
            payload = build_payload(
                provider=self.name,
                seq=seq,
                type=ntype,
                issued_at=now,
                expires_at=now + lifetime,
                body=body,
            )
            env = sign(payload, keys).to_bytes()
            db.execute(
                "INSERT INTO notices (seq, type, envelope, created_at) VALUES (?, ?, ?, ?)",
                (seq, ntype.value, env, now.isoformat()),
            )
            self._set_meta("last_seq", str(seq))
            self._effect(db, ntype, body)
            if also is not None:
                also(db)
        send_wake(self.data_dir)  # committed: the server pushes it now, not at its next look
        return seq, env

    def _effect(self, db: sqlite3.Connection, ntype: NoticeType, body: Body) -> None:
        if isinstance(body, OutbreakSpec):
            db.execute(
                "INSERT OR REPLACE INTO outbreaks (outbreak_id, spec, active) VALUES (?, ?, 1)",
                (body.outbreak_id, json.dumps(body.to_json())),
            )
        elif isinstance(body, OutbreakEnded):
            db.execute("UPDATE outbreaks SET active = 0 WHERE outbreak_id = ?", (body.outbreak_id,))
        elif isinstance(body, SignaturesPublished):
            db.execute(
                "INSERT INTO bundles (version, descriptor) VALUES (?, ?)",
                (body.version, json.dumps(body.to_json())),
            )
            for oid in body.covers:
                db.execute("UPDATE outbreaks SET active = 0 WHERE outbreak_id = ?", (oid,))

    def head(self) -> int:
        return int(self._meta("last_seq") or 0)

    def after(self, seq: int, limit: int = 500) -> list[tuple[int, bytes]]:
        rows = self._db.execute(
            "SELECT seq, envelope FROM notices WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        ).fetchall()
        return [(int(s), bytes(e)) for s, e in rows]

    def pushed_seq(self) -> int:
        return int(self._meta("pushed_seq") or 0)

    def mark_pushed(self, seq: int) -> None:
        with self._tx():
            if seq > self.pushed_seq():
                self._set_meta("pushed_seq", str(seq))

    # -- state ------------------------------------------------------------------------------
    def outbreak(self, outbreak_id: str) -> tuple[OutbreakSpec, bool]:
        row = self._db.execute(
            "SELECT spec, active FROM outbreaks WHERE outbreak_id = ?", (outbreak_id,)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no outbreak {outbreak_id!r}")
        return OutbreakSpec.from_json(json.loads(row[0])), bool(row[1])

    def state(self) -> ProviderState:
        self._db.execute("BEGIN")  # one consistent snapshot of seq and state
        try:
            seq = self.head()
            outbreaks = tuple(
                OutbreakSpec.from_json(json.loads(s))
                for (s,) in self._db.execute(
                    "SELECT spec FROM outbreaks WHERE active = 1 ORDER BY outbreak_id"
                )
            )
            row = self._db.execute(
                "SELECT descriptor FROM bundles ORDER BY version DESC LIMIT 1"
            ).fetchone()
        finally:
            self._db.execute("COMMIT")
        sigs = None if row is None else SignaturesPublished.from_json(json.loads(row[0]))
        if sigs is not None:
            sigs = SignaturesPublished(
                sigs.version, sigs.manifest_url, sigs.manifest_sha256, sigs.manifest_size, ()
            )
        return ProviderState(seq, outbreaks, sigs)

    def signatures(self, *, retired: bool = False) -> list[Signature]:
        """The live signature set (every one ever published, minus the retired), by name;
        with `retired`, the retired ones too."""
        sql = "SELECT name, file, line, version, retired_in, reason FROM signatures"
        if not retired:
            sql += " WHERE retired_in IS NULL"
        return [Signature(*row) for row in self._db.execute(sql + " ORDER BY name")]

    def latest_bundle(self) -> SignaturesPublished | None:
        return self.state().signatures

    def _ephemeral(self, ntype: NoticeType, seq: int, body: Body, lifetime: timedelta) -> bytes:
        now = utcnow()
        payload = build_payload(
            provider=self.name,
            seq=seq,
            type=ntype,
            issued_at=now,
            expires_at=now + lifetime,
            body=body,
        )
        return sign(payload, self.signing_keys(now)).to_bytes()

    def signed_state(self, lifetime: timedelta = STATE_LIFETIME) -> bytes:
        st = self.state()
        return self._ephemeral(NoticeType.STATE, st.state_seq, st, lifetime)

    def heartbeat(self, lifetime: timedelta = STATE_LIFETIME) -> bytes:
        st = self.state()
        body = Heartbeat(st.state_seq, st.active, st.signatures_version)
        return self._ephemeral(NoticeType.HEARTBEAT, st.state_seq, body, lifetime)

    def poll_hint(self, after_seq: int, lifetime: timedelta = STATE_LIFETIME) -> bytes:
        return self._ephemeral(NoticeType.POLL_HINT, after_seq + 1, PollHint(after_seq), lifetime)

    # -- gateway credentials and subscriptions ---------------------------------------------
    def add_gateway(self, name: str) -> str:
        """Create a per-gateway credential; returns the token (shown once, stored hashed)."""
        if not _GATEWAY_NAME.match(name):
            raise ConfigError("gateway name: letters, digits, '.', '_' and '-' (up to 64)")
        token = "zhgw_" + secrets.token_urlsafe(32)
        with self._tx() as db:
            if db.execute("SELECT 1 FROM gateways WHERE name = ?", (name,)).fetchone():
                raise ConfigError(f"gateway {name!r} exists (revoke it, then add a new name)")
            db.execute(
                "INSERT INTO gateways (name, token_sha256, created_at) VALUES (?, ?, ?)",
                (name, token_digest(token), utcnow().isoformat()),
            )
        return token

    def revoke_gateway(self, name: str) -> int:
        """Revoke a credential and drop its subscriptions; returns how many were dropped."""
        with self._tx() as db:
            row = db.execute("SELECT revoked_at FROM gateways WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise NotFoundError(f"no gateway credential {name!r}")
            if row[0] is None:
                db.execute(
                    "UPDATE gateways SET revoked_at = ? WHERE name = ?",
                    (utcnow().isoformat(), name),
                )
            cur = db.execute("DELETE FROM gateway_subscriptions WHERE credential = ?", (name,))
            return int(cur.rowcount)

    def gateways(self) -> list[GatewayCredential]:
        return [
            GatewayCredential(str(n), str(c), r, int(k))
            for n, c, r, k in self._db.execute(
                "SELECT g.name, g.created_at, g.revoked_at, "
                "(SELECT COUNT(*) FROM gateway_subscriptions s WHERE s.credential = g.name) "
                "FROM gateways g ORDER BY g.name"
            )
        ]

    def credential(self, token: str) -> tuple[str, bool] | None:
        """(name, revoked) of the credential a token belongs to, or None."""
        row = self._db.execute(
            "SELECT name, revoked_at FROM gateways WHERE token_sha256 = ?", (token_digest(token),)
        ).fetchone()
        return None if row is None else (str(row[0]), row[1] is not None)

    def subscribe(self, sub: Subscription) -> bool:
        """Create or replace the subscription of gateway `sub.id`; True if it replaced one."""
        if not _GATEWAY_ID.match(sub.id):
            raise SubscriptionRefused("gateway_id must be 64 lowercase hex characters")
        with self._tx() as db:
            row = db.execute(
                "SELECT credential FROM gateway_subscriptions WHERE gateway_id = ?", (sub.id,)
            ).fetchone()
            if row is not None and row[0] != sub.credential:
                raise SubscriptionRefused("this gateway id is subscribed under another credential")
            if row is None:
                (count,) = db.execute(
                    "SELECT COUNT(*) FROM gateway_subscriptions WHERE credential = ?",
                    (sub.credential,),
                ).fetchone()
                if count >= MAX_SUBSCRIPTIONS_PER_CREDENTIAL:
                    raise SubscriptionRefused(
                        f"at most {MAX_SUBSCRIPTIONS_PER_CREDENTIAL} gateways per credential"
                    )
            db.execute(
                "INSERT OR REPLACE INTO gateway_subscriptions (gateway_id, credential, source, "
                "udp, control_address, smtp, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    sub.id,
                    sub.credential,
                    sub.source,
                    sub.udp,
                    sub.control_address,
                    sub.smtp,
                    utcnow().isoformat(),
                ),
            )
        return row is not None

    def subscriptions(self) -> list[Subscription]:
        return [
            Subscription(*row)
            for row in self._db.execute(
                "SELECT s.gateway_id, s.udp, s.control_address, s.smtp, s.credential, s.source "
                "FROM gateway_subscriptions s JOIN gateways g ON g.name = s.credential "
                "WHERE g.revoked_at IS NULL ORDER BY s.gateway_id"
            )
        ]
