"""Inbound SMTP: an aiosmtpd server with the gateway's policy, limits and SMTP-smuggling rules.

This module is the one place where errors become SMTP replies. The pipeline returns a
`Disposition` (or raises a `ZerohourError`); `reply_for()` turns either into a reply.

DATA is read in chunks, not line by line (aiosmtpd's own loop costs ~5 ms per 100 KB). Only
`<CR><LF>.<CR><LF>` ends it. A bare LF or bare CR anywhere in the content (the SMTP smuggling
class, CVE-2023-51764) is answered as Postfix 3.9 does with `smtpd_forbid_bare_newline`:
`550 5.5.2 <host> Error: bare <LF> received`, then the session is closed, so a smuggled second
message is never read as commands. Commands ending in a bare LF are refused the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import format_datetime
from typing import Any, Protocol, cast

from aiosmtpd.smtp import SMTP, Envelope, Session, syntax

from zerohour.config import SmtpConfig
from zerohour.errors import (
    ScanError,
    SpoolFullError,
    ZerohourError,
)
from zerohour.gateway.decide import Action, Decision, ScanSummary
from zerohour.gateway.prepare import longest_line
from zerohour.gateway.ratelimit import ClientRates
from zerohour.gateway.recipients import RelayRecipients
from zerohour.gateway.verify import Answer, RecipientVerifier
from zerohour.gateway.xforward import ADVERTISED, Forwarded, XforwardError
from zerohour.gateway.xforward import parse as parse_xforward

log = logging.getLogger("zerohour.smtp")

_BARE = re.compile(rb"(?<!\r)\n|\r(?!\n)")
_CTRL = re.compile(r"[\x00-\x1f\x7f]")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_SIMPLE_ADDR = re.compile(
    rf"\s*<({_ATOM}(?:\.{_ATOM})*)@({_LABEL}(?:\.{_LABEL})*)>(?:\s+(.*))?\Z", re.S
)
_ENHANCED = re.compile(r"^\d\.\d{1,3}\.\d{1,3}$")
# Enhanced status codes (RFC 3463) for aiosmtpd's own replies, which carry none.
_DEFAULT_ESC = {
    "250": "2.0.0",
    "221": "2.0.0",
    "354": "",
    "421": "4.4.2",
    "450": "4.0.0",
    "451": "4.3.0",
    "452": "4.3.1",
    "500": "5.5.2",
    "501": "5.5.4",
    "502": "5.5.1",
    "503": "5.5.1",
    "504": "5.5.4",
    "530": "5.7.0",
    "550": "5.0.0",
    "552": "5.3.4",
    "553": "5.1.3",
    "554": "5.0.0",
    "555": "5.5.4",
}


def clean(text: object, limit: int = 200) -> str:
    """Peer data made safe for one log line: control characters escaped, length bounded."""
    s = str(text)
    s = _CTRL.sub(lambda m: f"\\x{ord(m.group()):02x}", s)
    return s if len(s) <= limit else s[:limit] + "..."


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message as received: envelope, raw content (dot-unstuffed), and peer facts."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes
    peer: str
    helo: str
    tls: bool
    received_at: float


@dataclass(frozen=True, slots=True)
class Disposition:
    """What the pipeline did with an accepted message (the reply follows from it)."""

    queue_id: str
    decision: Decision
    summary: ScanSummary | None = None  # None while the scan runs after the 250


class MessageSink(Protocol):
    """Where a complete message goes: durably stored and decided, or refused by raising."""

    async def accept(self, msg: Inbound) -> Disposition: ...


ControlHook = Callable[[Inbound], Awaitable[None]]


def reply_for(result: Disposition | BaseException, hostname: str) -> str:
    """The single mapping from outcomes and errors to SMTP replies."""
    if isinstance(result, Disposition):
        d = result.decision
        qid = result.queue_id
        if d.action is Action.REJECT:
            names = ", ".join(d.names) or "malware"
            return f"554 5.7.1 Message rejected: virus found: {names}"
        if d.action is Action.TEMPFAIL:
            return "451 4.3.0 Message could not be scanned, try again later"
        return f"250 2.0.0 Ok: queued as {qid}"
    if isinstance(result, SpoolFullError):
        return "452 4.3.1 Insufficient system storage"
    if isinstance(result, ScanError):
        return "451 4.3.0 Message could not be scanned, try again later"
    if isinstance(result, ZerohourError):
        return "451 4.3.0 Local error in processing"
    return "451 4.3.0 Local error in processing"


class _BareNewline(Exception):
    """A command line ended with a bare LF."""


class _StrictReader:
    """Wraps aiosmtpd's StreamReader: a command line must end with CRLF."""

    def __init__(self, inner: asyncio.StreamReader) -> None:
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_zh_cr", False)  # last read() of an overlong line ended in CR

    async def read(self, n: int = -1) -> bytes:
        data: bytes = await self._inner.read(n)
        if data:
            object.__setattr__(self, "_zh_cr", data.endswith(b"\r"))
        return data

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        line: bytes = await self._inner.readuntil(separator)
        after_cr = self._zh_cr
        object.__setattr__(self, "_zh_cr", False)
        if separator == b"\n" and not (
            line.endswith(b"\r\n") or (line == b"\n" and after_cr)
        ):
            raise _BareNewline()
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._inner, name, value)


class _FastInspect:
    """Stands in for the `inspect` module inside `aiosmtpd.smtp` only.

    aiosmtpd builds its AUTH table per connection with `inspect.getmembers()` on the protocol
    and the handler, which evaluates every attribute (~1.5 ms per connection, measured with
    cProfile under smtp-source), and checks the EHLO hook's arity with `inspect.signature()`
    (~55 us). For our two classes both answers are fixed, so they are computed once per class;
    everything else goes to the real `inspect`.
    """

    def __init__(self, real: Any) -> None:
        self._real = real
        self._names: dict[type, list[str]] = {}
        self._signatures: dict[Any, Any] = {}

    def signature(self, obj: Any) -> Any:
        owner = type(getattr(obj, "__self__", None))
        if owner not in (GatewaySMTP, Receiver):
            return self._real.signature(obj)
        func = getattr(obj, "__func__", obj)
        sig = self._signatures.get(func)
        if sig is None:
            sig = self._signatures[func] = self._real.signature(obj)
        return sig

    def getmembers(self, obj: Any, predicate: Any = None) -> list[tuple[str, Any]]:
        kind = type(obj)
        if predicate is not None or kind not in (GatewaySMTP, Receiver):
            return cast(list[tuple[str, Any]], self._real.getmembers(obj, predicate))
        names = self._names.get(kind)
        if names is None:
            names = self._names[kind] = [n for n in dir(kind) if n.startswith("auth_")]
        return [(n, getattr(obj, n)) for n in names]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _install_fast_inspect() -> None:
    import inspect as real_inspect

    import aiosmtpd.smtp as smtp_mod

    current = getattr(smtp_mod, "inspect", None)
    if current is real_inspect:
        setattr(smtp_mod, "inspect", _FastInspect(real_inspect))  # noqa: B010


_CLASS_DIR: dict[type, list[str]] = {}


def _class_dir(obj: object) -> list[str]:
    """`dir()` of an object's class, computed once: aiosmtpd builds its command and hook tables
    from `dir(session)` and `dir(handler)` for every connection (~20 us); neither class has
    instance attributes named `smtp_*` or `handle_*`."""
    kind = type(obj)
    names = _CLASS_DIR.get(kind)
    if names is None:
        names = _CLASS_DIR[kind] = sorted(set(dir(kind)))
    return names


class GatewaySMTP(SMTP):
    """aiosmtpd's SMTP with chunked, smuggling-safe DATA, relay policy and session limits."""

    def __dir__(self) -> list[str]:
        return _class_dir(self)

    def __init__(self, receiver: Receiver, **kwargs: Any) -> None:
        cfg = receiver.cfg
        super().__init__(receiver, **kwargs)
        self.receiver = receiver
        self.cfg = cfg
        self._errors = 0
        self._in_ehlo = False
        self._ehlo_lines: list[str] = []
        self.junk = 0  # NOOP/RSET/VRFY/HELP/EXPN since the last accepted message
        self._closing = False
        self._client: str | None = None  # counted in receiver.per_client while connected
        self.forwarded = Forwarded()  # XFORWARD from a trusted upstream MTA, this transaction

    @property
    def forwarding(self) -> bool:
        """XFORWARD is offered (HELP lists it) to trusted clients only."""
        return self.session is not None and self.receiver._trusted(self.session)

    # reader plumbing -----------------------------------------------------------------------------
    def _cb_client_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._raw_reader = reader
        super()._cb_client_connected(
            cast(Any, _StrictReader(reader)) if self.cfg.bare_newline == "reject" else reader,
            writer,
        )

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, _BareNewline):
            await self._refuse_bare("LF")
            return "221 2.0.0 Bye"  # not sent: the transport is closing
        log.exception("smtp.session_error peer=%s", clean(self._peer()))
        return "451 4.3.0 Local error in processing"

    def _peer(self) -> str:
        peer = self.session.peer if self.session is not None else None
        if isinstance(peer, tuple):
            return str(peer[0])
        return str(peer or "")

    async def _refuse_bare(self, kind: str) -> None:
        log.warning("smtp.bare_newline peer=%s kind=%s", clean(self._peer()), kind)
        await self.push(f"550 5.5.2 {self.hostname} Error: bare <{kind}> received")
        self._close()

    def _close(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.close()

    async def push(self, status: Any) -> None:
        if self._closing or self.transport is None or self.transport.is_closing():
            return
        if isinstance(status, str):
            code = status[:3]
            sep = status[3:4]
            rest = status[4:]
            esc = _DEFAULT_ESC.get(code, "")
            first = rest.split(" ", 1)[0]
            if esc and not self._in_ehlo and sep in (" ", "-") and not _ENHANCED.match(first):
                status = f"{code}{sep}{esc} {rest}"
            if code[:1] == "5":  # 4xx (e.g. 452 too many recipients) is the client's cue
                self._errors += 1
            if self._in_ehlo and sep == "-":  # one write for the whole EHLO reply, not one
                self._ehlo_lines.append(status)  # send(2) per extension line
                return
            if self._ehlo_lines:
                status = "\r\n".join([*self._ehlo_lines, status])
                self._ehlo_lines.clear()
        await super().push(status)
        if (
            isinstance(status, str)
            and status[:1] == "5"
            and self._errors >= self.cfg.max_errors
            and not self._closing
        ):
            await super().push("421 4.7.0 Too many errors, closing connection")
            self._close()

    @syntax("XFORWARD attribute=value...", when="forwarding")
    async def smtp_XFORWARD(self, arg: str | None) -> None:
        """Postfix's XFORWARD (`gateway.xforward`): trusted clients only, before MAIL."""
        if await self.check_helo_needed():
            return
        if self.session is None or not self.receiver._trusted(self.session):
            log.info("smtp.xforward_refused peer=%s", clean(self._peer()))
            await self.push("550 5.7.0 Error: insufficient authorization")
            return
        if self.envelope is not None and self.envelope.mail_from is not None:
            await self.push("503 5.5.1 Error: MAIL transaction in progress")
            return
        try:
            parse_xforward(arg or "", self.forwarded)
        except XforwardError as exc:
            await self.push(exc.reply)
            return
        await self.push("250 2.0.0 Ok")

    @syntax("RSET")
    async def smtp_RSET(self, arg: str) -> None:
        self.forwarded = Forwarded()
        if not await self._junk():
            await super().smtp_RSET(arg)

    # Postfix's smtpd_junk_command_limit: past it, each NOOP/RSET/VRFY/HELP/EXPN counts as an
    # error, so a client cannot hold a session forever with harmless commands.
    async def _junk(self) -> bool:
        """Count a junk command; True when the session was closed for it."""
        self.junk += 1
        if self.junk <= self.cfg.junk_command_limit:
            return False
        self._errors += 1
        if self._errors >= self.cfg.max_errors:
            log.info("smtp.junk_limit peer=%s commands=%d", clean(self._peer()), self.junk)
            await super().push("421 4.7.0 Error: too many junk commands, closing connection")
            self._close()
            return True
        return False

    @syntax("NOOP [ignored]")
    async def smtp_NOOP(self, arg: str) -> None:
        if not await self._junk():
            await super().smtp_NOOP(arg)

    @syntax("VRFY <address>")
    async def smtp_VRFY(self, arg: str) -> None:
        if not await self._junk():
            await super().smtp_VRFY(arg)

    @syntax("HELP [command]")
    async def smtp_HELP(self, arg: str) -> None:
        if not await self._junk():
            await super().smtp_HELP(arg)

    async def smtp_EXPN(self, arg: str) -> None:
        if not await self._junk():
            await super().smtp_EXPN(arg)

    async def smtp_EHLO(self, hostname: str) -> None:
        self.forwarded = Forwarded()
        self._in_ehlo = True
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._in_ehlo = False
            self._ehlo_lines.clear()

    async def smtp_HELO(self, hostname: str) -> None:
        self.forwarded = Forwarded()
        self._in_ehlo = True
        try:
            await super().smtp_HELO(hostname)
        finally:
            self._in_ehlo = False

    # DATA ----------------------------------------------------------------------------------------
    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            async with asyncio.timeout(self.cfg.data_timeout):
                content, too_big = await self._read_data()
        except TimeoutError:
            log.info("smtp.data_timeout peer=%s", clean(self._peer()))
            await self.push("421 4.4.2 Error: timeout exceeded")
            self._close()
            return
        if too_big:
            self._post_data()
            await self.push("552 5.3.4 Error: message file too big")
            return
        crlf = content.count(b"\r\n")
        clean_endings = content.count(b"\n") == crlf and content.count(b"\r") == crlf
        bad = None if clean_endings else _BARE.search(content)  # counting is ~20x faster
        if bad is not None:
            if self.cfg.bare_newline == "reject":
                await self._refuse_bare("LF" if bad.group() == b"\n" else "CR")
                return
            content = re.sub(rb"\r?\n", b"\r\n", content)
        # RFC 5321 4.5.2: remove the leading dot of every line that has one
        content = (b"\r\n" + content).replace(b"\r\n.", b"\r\n")[2:]
        limit = self.cfg.max_line_length
        if len(content) > limit and longest_line(content) > limit:
            # Postfix folds such lines; we refuse them: what we scan must be what we deliver,
            # and no legitimate mailer sends lines over twice RFC 5321's 1000-octet limit.
            log.info("smtp.line_too_long peer=%s limit=%d", clean(self._peer()), limit)
            self._post_data()
            await self.push(f"552 5.3.4 Error: message line length exceeds {limit} octets")
            return
        head_end = content.find(b"\r\n\r\n")
        header_len = len(content) if head_end < 0 else head_end
        if header_len > self.cfg.max_header_size:
            self._post_data()
            await self.push("552 5.3.4 Error: message header size exceeds limit")
            return
        assert self.session is not None
        status = await self.receiver.message(self, self.envelope, self.session, content)
        self._post_data()
        await self.push(status)

    async def _read_data(self) -> tuple[bytes, bool]:
        """Read up to CRLF.CRLF; return (content including its final CRLF, too_big)."""
        reader = self._raw_reader
        limit = self.cfg.max_message_size
        buf = bytearray(b"\r\n")  # the DATA command's CRLF: "." on the first line ends it
        scanned = 0
        overflow = False
        while True:
            chunk = await reader.read(262144)  # whatever is buffered, at least one byte
            if not chunk:
                raise ConnectionResetError("connection closed during DATA")
            self._reset_timeout()
            buf += chunk
            idx = buf.find(b"\r\n.\r\n", scanned)
            if idx >= 0:
                rest = bytes(buf[idx + 5 :])
                if rest:  # pipelined commands after the message: give them back
                    cast(Any, reader)._buffer[0:0] = rest
                if overflow or idx > limit:
                    return b"", True
                return bytes(buf[2 : idx + 2]), False
            if len(buf) - 2 > limit:  # keep reading to the end, keeping only a tail
                overflow = True
                del buf[:-4]
            scanned = max(0, len(buf) - 4)

    def _timeout_cb(self) -> None:
        """Idle (or stalled mid-DATA) past the timeout: say so, as Postfix does, and hang up."""
        log.info("smtp.timeout peer=%s", clean(self._peer()))
        transport = cast(asyncio.WriteTransport | None, self.transport)
        if transport is not None and not transport.is_closing():
            with contextlib.suppress(Exception):
                transport.write(f"421 4.4.2 {self.hostname} Error: timeout exceeded\r\n".encode())
            self._closing = True
            transport.close()

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd parses MAIL/RCPT addresses with the email package's header parser (~0.6 ms
        each); the common `<dot-atom@domain>` form takes a regex instead, with the same
        result (tests/gateway/test_receive.py compares both). Anything else: the full parser."""
        m = _SIMPLE_ADDR.match(arg)
        if m is not None and len(m.group(1)) <= 64:
            return f"{m.group(1)}@{m.group(2)}", m.group(3) or ""
        out: tuple[str | None, str | None] = super()._getaddr(arg)
        return out

    def _post_data(self) -> None:
        cast(Any, self)._set_post_data_state()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """One address may hold `max_sessions_per_client` sessions (Postfix's
        smtpd_client_connection_count_limit; mynetworks exempt, as Postfix's
        smtpd_client_event_limit_exceptions): one client parking idle connections no longer
        takes every slot and gets everyone else a 421."""
        peer = transport.get_extra_info("peername")
        host = str(peer[0]) if isinstance(peer, tuple) else ""
        first = self.transport is None  # not the TLS transport after STARTTLS
        if first and host and not self.receiver.trusted_host(host):
            count = self.receiver.per_client.get(host, 0)
            if count >= self.cfg.max_sessions_per_client:
                log.warning("smtp.too_many_sessions_from_client peer=%s limit=%d", clean(host),
                            self.cfg.max_sessions_per_client)
                assert isinstance(transport, asyncio.WriteTransport)
                transport.write(b"421 4.7.0 Error: too many connections from " +
                                host.encode("ascii", "replace") + b"\r\n")
                self._closing = True
                transport.close()
                return
            rate = self.receiver.connection_rate(host)
            if rate:
                # Postfix's smtpd_client_connection_rate_limit, with its reply
                log.warning("smtp.connection_rate_exceeded peer=%s count=%d limit=%d",
                            clean(host), rate, self.cfg.client_connection_rate_limit)
                assert isinstance(transport, asyncio.WriteTransport)
                transport.write(f"421 4.7.0 {self.hostname} Error: too many connections from "
                                f"{host}\r\n".encode("ascii", "replace"))
                self._closing = True
                transport.close()
                return
            self.receiver.per_client[host] = count + 1
            self._client = host
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self.receiver.sessions -= 1
        if self._client is not None:
            left = self.receiver.per_client.get(self._client, 1) - 1
            if left > 0:
                self.receiver.per_client[self._client] = left
            else:
                self.receiver.per_client.pop(self._client, None)
            self._client = None
        if self.transport is None:  # refused in connection_made: aiosmtpd never started
            return
        super().connection_lost(error)


class Receiver:
    """The aiosmtpd handler: relay policy, recipient limits, hand-off to the pipeline."""

    def __dir__(self) -> list[str]:
        return _class_dir(self)

    def __init__(
        self,
        cfg: SmtpConfig,
        sink: MessageSink,
        *,
        tls_context: ssl.SSLContext | None = None,
        control_address: str | None = None,
        control_hook: ControlHook | None = None,
        verifier: RecipientVerifier | None = None,
    ) -> None:
        self.cfg = cfg
        self.sink = sink
        self.tls_context = tls_context
        self.control_address = control_address.lower() if control_address else None
        self.control_hook = control_hook
        self.sessions = 0
        self.per_client: dict[str, int] = {}  # untrusted address -> sessions it holds
        self.recipients = RelayRecipients(cfg.relay_recipients) if cfg.relay_recipients else None
        self.verifier = verifier
        self.connections = ClientRates(cfg.rate_time_unit)  # untrusted address -> new sessions
        self.mails = ClientRates(cfg.rate_time_unit)  # untrusted address -> MAIL commands
        self._server: asyncio.Server | None = None

    # aiosmtpd hooks ------------------------------------------------------------------------------
    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        out = [r for r in responses if not r.startswith("250 HELP")]
        out += ["250-PIPELINING", "250-ENHANCEDSTATUSCODES"]
        if self._trusted(session):  # Postfix's smtpd_authorized_xforward_hosts
            out.append(f"250-{ADVERTISED}")
        out.append("250 HELP")
        return out

    def _trusted(self, session: Session) -> bool:
        peer = session.peer
        return self.trusted_host(str(peer[0]) if isinstance(peer, tuple) else str(peer))

    def connection_rate(self, host: str) -> int:
        """Count a new session of untrusted `host`; its count when over the limit, else 0."""
        limit = self.cfg.client_connection_rate_limit
        if not limit:
            return 0
        count = self.connections.hit(host)
        return count if count > limit else 0

    def trusted_host(self, host: str) -> bool:
        """`host` is in smtp.mynetworks."""
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(ip in net for net in self.cfg.mynetworks)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if _CTRL.search(address):  # CR, NUL, ESC...: a next hop would read another address
            log.info("smtp.bad_recipient peer=%s rcpt=%s", clean(self._peer(session)),
                     clean(address))
            return "501 5.1.3 Bad recipient address syntax"
        if len(envelope.rcpt_tos) >= self.cfg.max_recipients:
            return "452 4.5.3 Error: too many recipients"
        addr = address.strip()
        local, at, domain = addr.rpartition("@")
        domain = domain.lower().rstrip(".")
        is_control = self.control_address is not None and addr.lower() == self.control_address
        # Sender-specified routing (user%evil@ours, a!evil!v@ours, "v@evil"@ours): a next hop
        # that still honours it relays for us. Postfix refuses it from untrusted clients in
        # reject_unauth_destination (allow_untrusted_routing = no), with this reply.
        routed = any(c in local for c in "%!@")
        if not is_control and not (
            (at and domain in self.cfg.relay_domains and not routed) or self._trusted(session)
        ):
            log.info(
                "smtp.relay_denied peer=%s rcpt=%s", clean(self._peer(session)), clean(addr)
            )
            return f"554 5.7.1 <{addr}>: Relay access denied"
        if (self.recipients is not None and not is_control and at
                and domain in self.cfg.relay_domains and not self.recipients.allows(addr)):
            log.info("smtp.unknown_recipient peer=%s rcpt=%s", clean(self._peer(session)),
                     clean(addr))
            return (f"550 5.1.1 <{addr}>: Recipient address rejected: User unknown in relay "
                    "recipient table")
        if (self.verifier is not None and not is_control and at
                and domain in self.cfg.relay_domains and not self._trusted(session)):
            refusal = await self._verify(session, addr)
            if refusal:
                return refusal
        envelope.rcpt_tos.append(addr)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Ok"

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if _CTRL.search(address):  # never logged as one thing and sent as another
            log.info("smtp.bad_sender peer=%s sender=%s", clean(self._peer(session)),
                     clean(address))
            return "501 5.1.7 Bad sender address syntax"
        limit = self.cfg.client_message_rate_limit
        peer = self._peer(session)
        if limit and not self._trusted(session):
            count = self.mails.hit(peer)
            if count > limit:
                # Postfix's smtpd_client_message_rate_limit, with its reply
                log.warning("smtp.message_rate_exceeded peer=%s count=%d limit=%d",
                            clean(peer), count, limit)
                return f"450 4.7.1 Error: too much mail from {peer}"
        envelope.mail_from = address  # "<>" stays "<>" here: aiosmtpd needs it non-empty
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def _verify(self, session: Session, addr: str) -> str | None:
        """Postfix's reject_unverified_recipient: the refusal for `addr`, or None."""
        assert self.verifier is not None
        verdict = await self.verifier.verify(addr)
        if verdict.answer is Answer.DELIVERABLE:
            return None
        detail = _reply_text(verdict.detail)
        log.info("smtp.unverified_recipient peer=%s rcpt=%s answer=%s cached=%s",
                 clean(self._peer(session)), clean(addr), verdict.answer.value, verdict.cached)
        if verdict.answer is Answer.UNDELIVERABLE:
            return (f"550 5.1.1 <{addr}>: Recipient address rejected: undeliverable address "
                    f"({detail})")
        return (f"450 4.1.1 <{addr}>: Recipient address rejected: unverified address: address "
                f"verification failed ({detail})")

    @staticmethod
    def _peer(session: Session) -> str:
        peer = session.peer
        return str(peer[0]) if isinstance(peer, tuple) else str(peer or "")

    async def message(
        self, server: GatewaySMTP, envelope: Envelope, session: Session, content: bytes
    ) -> str:
        """A complete message: build the `Inbound`, hand it to the pipeline, map the reply."""
        rcpts = tuple(envelope.rcpt_tos)
        now = time.time()
        if isinstance(server, GatewaySMTP):
            server.junk = 0  # Postfix resets the junk count once mail is accepted
        helo = str(session.host_name or "")
        peer = self._peer(session)
        proto = "ESMTPS" if session.ssl else ("ESMTP" if session.extended_smtp else "SMTP")
        name = ""
        fwd = server.forwarded if isinstance(server, GatewaySMTP) else Forwarded()
        if fwd:  # the original client, from our trusted upstream MTA (`gateway.xforward`)
            log.info(
                "smtp.xforward via=%s client=%s[%s] helo=%s proto=%s",
                clean(peer), clean(fwd.name or "unknown"), clean(fwd.addr or "unknown"),
                clean(fwd.helo or ""), clean(fwd.proto or ""),
            )  # fmt: skip
            peer = fwd.addr or peer
            helo = fwd.helo if fwd.helo is not None else helo
            proto = fwd.proto or proto
            name = f"{_hdr(fwd.name)} " if fwd.name else ""
            server.forwarded = Forwarded()  # one transaction only
        received = (
            f"Received: from {_hdr(helo)} ({name}[{_hdr(peer)}])\r\n"
            f"\tby {server.hostname} (zerohour) with {_hdr(proto)};"
            f"\r\n\t{format_datetime(_utc(now))}\r\n"
        ).encode()
        mail_from = str(envelope.mail_from or "").strip()
        msg = Inbound(
            sender="" if mail_from in ("", "<>") else mail_from,  # the null reverse-path
            recipients=rcpts,
            data=received + content,
            peer=peer,
            helo=helo,
            tls=session.ssl is not None,
            received_at=now,
        )
        if self.control_address is not None and self.control_hook is not None:
            ctl = tuple(r for r in rcpts if r.lower() == self.control_address)
            if ctl:
                try:
                    await self.control_hook(msg)
                except Exception:
                    log.exception("smtp.control_error peer=%s", clean(peer))
                if len(ctl) == len(rcpts):
                    return "250 2.0.0 Ok: notice received"
                msg = Inbound(
                    msg.sender,
                    tuple(r for r in rcpts if r.lower() != self.control_address),
                    msg.data,
                    msg.peer,
                    msg.helo,
                    msg.tls,
                    msg.received_at,
                )
        try:
            result: Disposition | BaseException = await self.sink.accept(msg)
        except ZerohourError as exc:
            log.warning(
                "smtp.accept_failed peer=%s stage=%s error=%s",
                clean(peer),
                exc.stage or "",
                clean(exc),
            )
            result = exc
        except Exception as exc:
            log.exception("smtp.accept_failed peer=%s", clean(peer))
            result = exc
        return reply_for(result, server.hostname)

    # server --------------------------------------------------------------------------------------
    def _factory(self) -> asyncio.Protocol:
        if self.sessions >= self.cfg.max_sessions:
            return _Gate(self)
        return self.new_session()

    def new_session(self) -> GatewaySMTP:
        self.sessions += 1
        stressed = self.sessions >= self.cfg.stress_threshold * self.cfg.max_sessions
        if stressed:
            log.debug("smtp.stress sessions=%d timeout=%g", self.sessions,
                     self.cfg.stress_timeout)
        return GatewaySMTP(
            self,
            data_size_limit=self.cfg.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=self.cfg.hostname,
            ident="ESMTP zerohour",
            tls_context=self.tls_context,
            timeout=min(self.cfg.command_timeout, self.cfg.stress_timeout)
            if stressed else self.cfg.command_timeout,
        )

    async def start(self, *, reuse_port: bool = False) -> tuple[str, int]:
        """Listen; `reuse_port`: share the port with the node's other SMTP processes."""
        _install_fast_inspect()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._factory,
            self.cfg.listen.host,
            self.cfg.listen.port,
            reuse_address=True,
            reuse_port=reuse_port or None,
        )
        sock = self._server.sockets[0].getsockname()
        return str(sock[0]), int(sock[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self.verifier is not None:
            await self.verifier.aclose()


class _Gate(asyncio.Protocol):
    """A connection that arrived while every session slot looked taken.

    Slots of clients that just hung up are freed only once the loop has seen their EOF, so the
    verdict waits a moment: if a slot frees up, the connection becomes a normal session;
    otherwise it is told so and closed (421 4.7.0, as Postfix answers)."""

    GRACE = 0.2

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.transport: asyncio.Transport | None = None
        self.pending = bytearray()
        self.gone = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        asyncio.get_running_loop().call_later(self.GRACE, self._decide)

    def data_received(self, data: bytes) -> None:
        if len(self.pending) < 65536:
            self.pending += data

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True

    def _decide(self) -> None:
        transport = self.transport
        if self.gone or transport is None or transport.is_closing():
            return
        if self.receiver.sessions >= self.receiver.cfg.max_sessions:
            log.warning("smtp.too_many_sessions limit=%d", self.receiver.cfg.max_sessions)
            transport.write(b"421 4.7.0 Error: too many connections, try again later\r\n")
            transport.close()
            return
        session = self.receiver.new_session()
        transport.set_protocol(session)
        session.connection_made(transport)
        if self.pending:
            session.data_received(bytes(self.pending))


def _reply_text(text: str) -> str:
    """The next hop's words made fit for one reply line of ours (no CR/LF, bounded)."""
    s = " ".join(_CTRL.sub(" ", text).split())
    return s if len(s) <= 200 else s[:200] + "..."


def _hdr(text: str) -> str:
    return re.sub(r"[^\x21-\x7e]", "?", text)[:100] or "unknown"


def _utc(ts: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC)
