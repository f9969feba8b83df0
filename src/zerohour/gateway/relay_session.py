"""One connection to a next hop after its handshake: pipelined SMTP transactions (RFC 2920).

aiosmtplib connects, says EHLO and negotiates STARTTLS (`tls_policy.negotiate`); then its
transport is handed to `_Replies`. aiosmtplib cannot pipeline: it waits for each reply before
the next command, parses one reply per read and drops bytes that arrive while no command waits,
so a pipelined group's replies would be lost. Here, when the next hop offers PIPELINING, MAIL,
every RCPT and DATA go out in one write and the content with its end-of-data dot in a second:
two round trips per message whatever the recipient count, instead of 3 + recipients. Without
PIPELINING it is one command per reply, as before.

The spooled body is already CRLF text (`receive`), so it is sent as is: lines are dot-stuffed
and bare line ends fixed only when a C-level scan finds the need, and the trace header goes
ahead of it in the same write (one join of the two, no other copy of the body).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import aiosmtplib

from zerohour.gateway.prepare import LF_DOT, bare_line_end

#: a reply longer than this (all its lines) ends the session: a next hop streaming garbage
MAX_REPLY = 32 * 1024
#: seconds to wait for the reply to RSET (or a lone dot) after a failed transaction
ABORT_TIMEOUT = 5.0
_LINE_ENDS = re.compile(rb"\r\n|\n|\r")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()


class _Replies(asyncio.Protocol):
    """Parses every complete reply in what arrives and queues it, so the replies to a
    pipelined group are all kept however the next hop's writes are split or merged."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._ready: deque[Reply] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.error: aiosmtplib.SMTPException | None = None

    def data_received(self, data: bytes) -> None:
        self._buf += data
        try:
            self._parse()
        except aiosmtplib.SMTPResponseException as exc:
            self._fail(exc)
            return
        if self._ready:
            self._wake()

    def _parse(self) -> None:
        buf = self._buf
        start = pos = 0
        lines: list[bytes] = []
        while (nl := buf.find(b"\n", pos)) >= 0:
            line = bytes(buf[pos:nl]).rstrip(b"\r")
            pos = nl + 1
            if not line[:3].isdigit():
                text = line[:80].decode("utf-8", "replace")
                raise aiosmtplib.SMTPResponseException(-1, f"malformed reply line: {text!r}")
            lines.append(line)
            if line[3:4] != b"-":
                text = "\n".join(ln[4:].strip().decode("utf-8", "surrogateescape") for ln in lines)
                self._ready.append(Reply(int(line[:3]), text))
                lines = []
                start = pos
        del buf[:start]
        if len(buf) > MAX_REPLY:
            raise aiosmtplib.SMTPResponseException(-1, "reply too long")

    @property
    def unread(self) -> bool:
        return bool(self._ready or self._buf)

    def _fail(self, exc: aiosmtplib.SMTPException) -> None:
        if self.error is None:
            self.error = exc
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def eof_received(self) -> bool:
        self._fail(aiosmtplib.SMTPServerDisconnected("Unexpected EOF received"))
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        lost = aiosmtplib.SMTPServerDisconnected("Connection lost")
        lost.__cause__ = exc
        self._fail(lost)

    async def read(self, wait: float | None) -> Reply:
        while not self._ready:
            if self.error is not None:
                raise self.error
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(wait):
                    await self._waiter
            except TimeoutError:
                raise aiosmtplib.SMTPReadTimeoutError(
                    "Timed out waiting for server response"
                ) from None
            finally:
                self._waiter = None
        return self._ready.popleft()


@dataclass(frozen=True, slots=True)
class Wire:
    """A message body made ready for DATA once per delivery attempt (`to_wire`)."""

    content: bytes  # CRLF line ends, dot-stuffed, ending in CRLF; the final dot not included
    size: int  # RFC 1870 size (before dot-stuffing)
    ascii: bool  # no 8-bit byte (else BODY=8BITMIME where offered)


def to_wire(body: bytes, *, crlf: bool = False) -> Wire:
    """`body` as a `Wire`; `crlf`: every line end is known to be CRLF already (the SMTP
    receiver made it so: a 100 KB body's check costs 0.1 ms)."""
    content, size = wire_body(body, crlf=crlf)
    return Wire(content, size, content.isascii())


def wire_body(body: bytes, *, crlf: bool = False) -> tuple[bytes, int]:
    """`body` as DATA content (CRLF line ends, dot-stuffed, ending in CRLF; the final dot not
    included) and its RFC 1870 size (before dot-stuffing). Spooled mail needs no change: the
    searches run in C, and only a body that needs it is rewritten. `crlf`: as for `to_wire`."""
    if not crlf and bare_line_end(body) is not None:
        body = _LINE_ENDS.sub(b"\r\n", body)
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    size = len(body)
    if body.startswith(b"."):
        body = b"." + body
    if LF_DOT.search(body):  # every LF ends a CRLF here: LF-dot is a line's leading dot
        body = body.replace(b"\n.", b"\n..")
    return body, size


def _command(verb: bytes, address: str, options: Iterable[str] = ()) -> bytes:
    """`MAIL FROM:<address>` or `RCPT TO:<address>`, the address as received (aiosmtplib
    re-parses it with `email.utils`, which turned a quoted local part such as
    `"x\\r<victim@example.test>"@a.test` into `<victim@example.test>`). RFC 5321 allows no
    control character even quoted; one that got in is sent as "?", never as a line break."""
    address = _CONTROL.sub("?", address)
    opts = "".join(f" {o}" for o in options)
    return verb + f"<{address}>{opts}\r\n".encode()


class RelaySession:
    """An established, greeted (and maybe TLS) connection taken over from aiosmtplib."""

    def __init__(self, client: aiosmtplib.SMTP, relay: str) -> None:
        transport = client.transport
        if transport is None or transport.is_closing():
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        self.relay = relay  # HOST[IP]:PORT, the mail log's relay=
        self.extensions = frozenset(client.esmtp_extensions)  # lower case names
        self.pipelining = "pipelining" in self.extensions
        self.opened = time.monotonic()
        self.idle_since = self.opened
        self.transactions = 0
        self._closing: Reply | None = None  # a 421 seen in the current transaction
        self._replies = _Replies()
        self._transport: asyncio.WriteTransport = transport  # type: ignore[assignment]
        transport.set_protocol(self._replies)

    def supports(self, extension: str) -> bool:
        return extension.lower() in self.extensions

    @property
    def is_connected(self) -> bool:
        """Open and in step: bytes the next hop sent outside a transaction (say, a 421 before
        an idle close) would be taken for the next command's reply, so such a session is
        never used again."""
        r = self._replies
        return r.error is None and not r.unread and not self._transport.is_closing()

    def _write(self, *chunks: bytes) -> None:
        if self._replies.error is not None or self._transport.is_closing():
            raise self._replies.error or aiosmtplib.SMTPServerDisconnected("Connection lost")
        if len(chunks) == 1:
            self._transport.write(chunks[0])
        else:
            self._transport.writelines(chunks)

    async def send(
        self,
        sender: str,
        rcpts: Sequence[str],
        head: bytes,
        body: Wire,
        options: Sequence[str],
        wait: float | None,
    ) -> dict[str, Reply]:
        """One transaction; each recipient's reply (its RCPT refusal, or the reply that
        ended the transaction for it). SMTP errors are replies; a lost or broken connection
        raises (`aiosmtplib.SMTPServerDisconnected`, `SMTPReadTimeoutError`,
        `SMTPResponseException` for a malformed reply). `wait`: seconds for each reply.
        A next hop that answers 421 and hangs up mid-group gives its 421 to every recipient,
        as aiosmtplib did for a 421 to MAIL, rather than a bare "connection lost"."""
        self._closing = None
        try:
            return await self._exchange(sender, rcpts, head, body, options, wait)
        except aiosmtplib.SMTPServerDisconnected:
            if self._closing is None:
                raise
            self.close(quit=False)
            return dict.fromkeys(rcpts, self._closing)

    async def _read(self, wait: float | None) -> Reply:
        reply = await self._replies.read(wait)
        if reply.code == 421:  # the next hop is closing the session
            self._closing = reply
        return reply

    async def _exchange(
        self,
        sender: str,
        rcpts: Sequence[str],
        head: bytes,
        body: Wire,
        options: Sequence[str],
        wait: float | None,
    ) -> dict[str, Reply]:
        content, size = body.content, body.size
        if self.supports("size"):
            options = [f"SIZE={len(head) + size}", *options]
        mail = _command(b"MAIL FROM:", sender, options)
        rcpt_cmds = [_command(b"RCPT TO:", r) for r in rcpts]
        read = self._read
        self.transactions += 1
        if self.pipelining:
            self._write(mail + b"".join(rcpt_cmds) + b"DATA\r\n")
            mail_reply = await read(wait)
            rcpt_replies = [await read(wait) for _ in rcpt_cmds]
            data_reply = await read(wait)
        else:
            self._write(mail)
            mail_reply = await read(wait)
            rcpt_replies = []
            if mail_reply.ok:
                for cmd in rcpt_cmds:
                    self._write(cmd)
                    rcpt_replies.append(await read(wait))
            data_reply = Reply(503, "5.5.1 no valid recipients (DATA not sent)")
            if any(r.ok for r in rcpt_replies):
                self._write(b"DATA\r\n")
                data_reply = await read(wait)
        if not mail_reply.ok:
            await self._abort(data_reply)
            return {r: mail_reply for r in rcpts}
        out = {r: rep for r, rep in zip(rcpts, rcpt_replies, strict=True) if not rep.ok}
        accepted = [r for r in rcpts if r not in out]
        if not accepted or data_reply.code != 354:
            await self._abort(data_reply)
            out.update((r, data_reply) for r in accepted)
            return out
        self._write(head, content, b".\r\n" if content or head else b"\r\n.\r\n")
        final = await read(wait)
        out.update((r, final) for r in accepted)
        self.idle_since = time.monotonic()
        return out

    async def _abort(self, data_reply: Reply) -> None:
        """After a failed transaction: a server that said 354 although no recipient was
        accepted gets a lone dot (RFC 2920 3.1); then RSET, so the next message starts clean."""
        try:
            if data_reply.code == 354:
                self._write(b".\r\n")
                await self._replies.read(ABORT_TIMEOUT)
            self._write(b"RSET\r\n")
            await self._replies.read(ABORT_TIMEOUT)
        except (aiosmtplib.SMTPException, OSError):
            self.close(quit=False)  # the replies already had stand; only the session is lost
        self.idle_since = time.monotonic()

    def close(self, quit: bool = True) -> None:
        """QUIT without waiting for its reply (nothing would change), then close; the
        transport sends what it holds before closing."""
        if not self._transport.is_closing():
            if quit and self._replies.error is None:
                self._transport.write(b"QUIT\r\n")
            self._transport.close()
