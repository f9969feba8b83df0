"""Admin authentication: bearer tokens (hashed at rest), roles, web sessions and the audit log.

Tokens look like `zh_<id>_<secret>`: the id is public (it names the token in lists, revocation
and the audit log), the secret is 32 random bytes. Only SHA-256 of the secret is kept: a token is
high-entropy, so a slow password hash would add nothing but latency. Everything lives in one
SQLite file, `<data>/admin.sqlite3` (mode 0600), shared by the running gateway and the CLI, so
`zerohour admin token revoke` takes effect on the next request without a restart.

At first run (no token yet) an admin token is generated and written to `<data>/admin-token`
(0600) so the operator can log in once; delete that file after reading it if you like.

Web sessions are server-side and in memory (a restart logs everyone out, which is the safe
direction): a fresh random id at every login (no fixation), a CSRF token per session
(synchroniser pattern), an idle and an absolute lifetime.

Every call is blocking SQLite; the async API runs them in a thread so the event loop never waits.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from zerohour.errors import AuthError, NotFoundError

DB_NAME = "admin.sqlite3"
FIRST_TOKEN_FILE = "admin-token"  # noqa: S105 (a file name)
_TOKEN = re.compile(r"^zh_([0-9a-f]{8})_([A-Za-z0-9_-]{20,64})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    result TEXT NOT NULL,
    detail TEXT NOT NULL,
    remote TEXT NOT NULL
);
"""


class Role(StrEnum):
    READ = "read"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's id and name, and its role."""

    token_id: str
    name: str
    role: Role

    @property
    def actor(self) -> str:
        """The name written into message events and the audit log."""
        return f"admin:{self.name}"

    @property
    def can_act(self) -> bool:
        return self.role is Role.ADMIN


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    name: str
    role: Role
    created_at: float
    revoked_at: float | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: float
    actor: str
    role: str
    action: str
    target: str
    result: str
    detail: Mapping[str, Any]
    remote: str

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "actor": self.actor,
            "role": self.role,
            "action": self.action,
            "target": self.target,
            "result": self.result,
            "detail": dict(self.detail),
            "remote": self.remote,
        }


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class AuthStore:
    """Tokens and the audit log in `<data>/admin.sqlite3`."""

    def __init__(self, data_dir: Path) -> None:
        """Cheap: the file is created (0600) on first use, which the async API does in a thread."""
        self.data_dir = data_dir
        self.path = data_dir / DB_NAME
        self._ready = False

    def _setup(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        os.chmod(self.path, 0o600)
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
        finally:
            conn.close()
        self._ready = True

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        if not self._ready:
            self._setup()
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=10000")
            yield conn
        finally:
            conn.close()

    # tokens -----------------------------------------------------------------------------------
    def create_token(self, role: Role, name: str = "") -> tuple[str, TokenInfo]:
        """Create a token; returns its text (shown once, never stored) and its info."""
        name = name or f"{role.value}-token"
        if not _NAME.match(name):
            raise AuthError("token name: letters, digits, space and ._@- only (max 64)")
        tid = secrets.token_hex(4)
        secret = secrets.token_urlsafe(32)
        now = time.time()
        with self._conn() as c:
            c.execute(
                "INSERT INTO tokens (id, name, role, secret_sha256, created_at) VALUES (?,?,?,?,?)",
                (tid, name, role.value, _digest(secret), now),
            )
        return f"zh_{tid}_{secret}", TokenInfo(tid, name, role, now, None)

    def revoke(self, token_id: str) -> TokenInfo:
        with self._conn() as c:
            cur = c.execute(
                "UPDATE tokens SET revoked_at=? WHERE id=? AND revoked_at IS NULL",
                (time.time(), token_id),
            )
            if cur.rowcount == 0:
                raise NotFoundError(f"no active token {token_id!r}")
        return self.get(token_id)

    def get(self, token_id: str) -> TokenInfo:
        with self._conn() as c:
            row = c.execute(
                "SELECT id, name, role, created_at, revoked_at FROM tokens WHERE id=?",
                (token_id,),
            ).fetchone()
        if row is None:
            raise NotFoundError(f"no token {token_id!r}")
        return TokenInfo(row[0], row[1], Role(row[2]), row[3], row[4])

    def tokens(self) -> list[TokenInfo]:
        with self._conn() as c:
            rows = c.execute(
                "SELECT id, name, role, created_at, revoked_at FROM tokens ORDER BY created_at"
            ).fetchall()
        return [TokenInfo(r[0], r[1], Role(r[2]), r[3], r[4]) for r in rows]

    def verify(self, token: str) -> Principal:
        """The principal of a valid, unrevoked token, else `AuthError`."""
        m = _TOKEN.match(token.strip())
        if m is None:
            raise AuthError("malformed token")
        tid, secret = m.groups()
        with self._conn() as c:
            row = c.execute(
                "SELECT name, role, secret_sha256, revoked_at FROM tokens WHERE id=?", (tid,)
            ).fetchone()
        # compare even for unknown ids so timing says nothing about which ids exist
        stored = row[2] if row is not None else "0" * 64
        ok = hmac.compare_digest(stored, _digest(secret))
        if row is None or not ok or row[3] is not None:
            raise AuthError("invalid or revoked token")
        return Principal(tid, row[0], Role(row[1]))

    def bootstrap(self) -> str | None:
        """First run: with no token at all, create an admin token and write it to
        `<data>/admin-token` (0600). Returns the token when one was created."""
        with self._conn() as c:
            n = c.execute("SELECT count(*) FROM tokens").fetchone()[0]
        if n:
            return None
        token, _ = self.create_token(Role.ADMIN, "first-admin")
        path = self.data_dir / FIRST_TOKEN_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, (token + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(path, 0o600)
        return token

    # audit ------------------------------------------------------------------------------------
    def audit(
        self,
        actor: str,
        role: str,
        action: str,
        target: str,
        result: str,
        detail: Mapping[str, Any] | None = None,
        remote: str = "",
    ) -> None:
        with self._conn() as c:
            c.execute(
                "INSERT INTO audit (at, actor, role, action, target, result, detail, remote)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (
                    time.time(),
                    actor,
                    role,
                    action,
                    target,
                    result,
                    json.dumps(dict(detail or {}), default=str),
                    remote,
                ),
            )

    def audit_log(self, limit: int = 50, offset: int = 0) -> tuple[list[AuditEntry], int]:
        with self._conn() as c:
            total = int(c.execute("SELECT count(*) FROM audit").fetchone()[0])
            rows = c.execute(
                "SELECT at, actor, role, action, target, result, detail, remote FROM audit"
                " ORDER BY id DESC LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
        return [
            AuditEntry(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7]) for r in rows
        ], total

    # async wrappers (the admin app runs on the gateway's event loop) --------------------------
    async def averify(self, token: str) -> Principal:
        return await asyncio.to_thread(self.verify, token)

    async def aaudit(
        self,
        who: Principal | None,
        action: str,
        target: str,
        result: str,
        detail: Mapping[str, Any] | None = None,
        remote: str = "",
    ) -> None:
        actor = who.actor if who is not None else "anonymous"
        role = who.role.value if who is not None else ""
        await asyncio.to_thread(self.audit, actor, role, action, target, result, detail, remote)

    async def aaudit_log(self, limit: int, offset: int) -> tuple[list[AuditEntry], int]:
        return await asyncio.to_thread(self.audit_log, limit, offset)


@dataclass(frozen=True, slots=True)
class Session:
    sid: str
    principal: Principal
    csrf: str
    created: float
    seen: float


class SessionStore:
    """In-memory web sessions keyed by a random id. A login always issues a new id."""

    def __init__(self, idle: float = 3600.0, absolute: float = 12 * 3600.0) -> None:
        self.idle = idle
        self.absolute = absolute
        self._by_id: dict[str, Session] = {}

    def create(self, principal: Principal) -> Session:
        now = time.time()
        self._expire(now)
        s = Session(secrets.token_urlsafe(32), principal, secrets.token_urlsafe(32), now, now)
        self._by_id[s.sid] = s
        return s

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        s = self._by_id.get(sid)
        if s is None:
            return None
        now = time.time()
        if now - s.seen > self.idle or now - s.created > self.absolute:
            self._by_id.pop(sid, None)
            return None
        s = Session(s.sid, s.principal, s.csrf, s.created, now)
        self._by_id[sid] = s
        return s

    def drop(self, sid: str | None) -> None:
        if sid:
            self._by_id.pop(sid, None)

    def drop_token(self, token_id: str) -> None:
        """End every session opened with a token (after its revocation was noticed)."""
        for sid in [k for k, v in self._by_id.items() if v.principal.token_id == token_id]:
            del self._by_id[sid]

    def _expire(self, now: float) -> None:
        for sid in [
            k
            for k, v in self._by_id.items()
            if now - v.seen > self.idle or now - v.created > self.absolute
        ]:
            del self._by_id[sid]


def check_csrf(session: Session, submitted: str | None) -> None:
    if not submitted or not hmac.compare_digest(session.csrf, submitted):
        raise AuthError("CSRF token missing or wrong: reload the page and try again")
