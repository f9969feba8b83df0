"""The Postfix milter front end (`zerohour milter run`): Postfix's smtpd hands us each message
before it answers its client, so a virus is refused in the SMTP dialogue and no bounce is
ever generated. This is how clamav-milter, rspamd and amavisd-milter plug into Postfix
(`smtpd_milters = inet:127.0.0.1:PORT`).

Built on pymilter, the binding to Sendmail's libmilter (what Postfix's milter support is tested
against). libmilter runs one thread per SMTP session; the callbacks of `_Session` collect the
envelope and the message, and at end of message hand it to the gateway's event loop
(`MilterFront.verdict` -> `Pipeline.filter`: the same prepare, scan and `decide()` as the SMTP
gateway) and block that session's thread until the verdict.

What Postfix is told for each decision:

| decision          | Postfix is told                         | zerohour keeps                     |
|-------------------|-----------------------------------------|------------------------------------|
| deliver           | accept; our `X-Zerohour-Scan` added,    | nothing: Postfix delivers          |
|                   | forged `X-Zerohour-*` removed           |                                    |
| reject            | `554 5.7.1` in the dialogue             | the audit record                   |
| tempfail          | `451 4.3.0` (the client retries)        | nothing                            |
| quarantine        | discard (its client got a 250)          | the message, quarantined           |
| hold (outbreak),  | discard                                 | the message, held; released after  |
| delay, attachments|                                         | a rescan through `--next-hop`      |

Held mail stays in our store, not in Postfix's hold queue (the milter QUARANTINE action):
`postsuper -H` would release it without a rescan (Postfix never runs milters on queued mail),
it needs root on the Postfix host, and the held mail would be invisible to our dashboard, API,
metrics and expiry rules. So in milter mode `--next-hop` must name where released mail goes:
a Postfix smtpd without milters (`127.0.0.1:10026` with `-o smtpd_milters=`, as for a content
filter) or the mail server behind Postfix.

The bytes Postfix delivers are the bytes we scanned: the message is rebuilt from Postfix's
header and body callbacks as it is queued, lines over 998 octets are folded before the scan
(`gateway.prepare`), and what folding changed is changed in Postfix's copy too (the header
fields, and the body when a body line was folded), whatever Postfix delivers with afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zerohour.config import HostPort
from zerohour.errors import ConfigError, ZerohourError
from zerohour.gateway.decide import Action, ScanSummary
from zerohour.gateway.prepare import LINE_LIMIT, fold_long_lines, longest_line
from zerohour.gateway.receive import Disposition, Inbound, clean, reply_for

log = logging.getLogger("zerohour.milter")

TRACE = "X-Zerohour-Scan"
_OWN_PREFIX = "x-zerohour-"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to tell Postfix at end of message."""

    action: str  # "accept" | "reject" | "tempfail" | "discard"
    queue_id: str = ""
    code: str = ""  # "554"
    xcode: str = ""  # "5.7.1"
    text: str = ""
    trace: str = ""  # the X-Zerohour-Scan value on accept


def _split_reply(reply: str) -> tuple[str, str, str]:
    code, xcode, text = [*reply.split(" ", 2), "", ""][:3]
    return code, xcode, text


def trace_value(summary: ScanSummary | None) -> str:
    db = clean(summary.db_version if summary else "unknown", 80)
    if summary is not None and summary.error:
        return f"delivered unscanned (scan error); db={db}"  # scan.deliver_unscanned
    return f"clean; db={db}"


ControlHook = Callable[[Inbound], Awaitable[None]]


class MilterFront:
    """The event-loop side: one verdict per message (testable without libmilter)."""

    def __init__(
        self,
        accept: Callable[[Inbound], Awaitable[Disposition]],
        *,
        hostname: str = "zerohour",
        control_address: str | None = None,
        control_hook: ControlHook | None = None,
    ) -> None:
        self.accept = accept
        self.hostname = hostname
        self.control_address = control_address
        self.control_hook = control_hook

    async def verdict(self, msg: Inbound) -> tuple[Verdict, tuple[str, ...]]:
        """The verdict, and the recipients to remove (control-address mail, consumed here)."""
        removed: tuple[str, ...] = ()
        if self.control_address is not None and self.control_hook is not None:
            removed = tuple(r for r in msg.recipients if r.lower() == self.control_address)
            if removed:
                try:
                    await self.control_hook(msg)
                except Exception:
                    log.exception("milter.control_error peer=%s", clean(msg.peer))
                if len(removed) == len(msg.recipients):
                    return Verdict("discard", text="notice received"), removed
                keep = tuple(r for r in msg.recipients if r.lower() != self.control_address)
                msg = Inbound(
                    msg.sender, keep, msg.data, msg.peer, msg.helo, msg.tls, msg.received_at
                )
        try:
            result: Disposition | BaseException = await self.accept(msg)
        except ZerohourError as exc:
            log.warning(
                "milter.accept_failed peer=%s stage=%s error=%s",
                clean(msg.peer), exc.stage or "", clean(exc),
            )  # fmt: skip
            result = exc
        except Exception as exc:
            log.exception("milter.accept_failed peer=%s", clean(msg.peer))
            result = exc
        code, xcode, text = _split_reply(reply_for(result, self.hostname))
        if not isinstance(result, Disposition):
            return Verdict("tempfail", "", code, xcode, text), removed
        action = result.decision.action
        qid = result.queue_id
        if action is Action.DELIVER:
            return Verdict("accept", qid, trace=trace_value(result.summary)), removed
        if action is Action.REJECT:
            return Verdict("reject", qid, code, xcode, text), removed
        if action is Action.TEMPFAIL:
            return Verdict("tempfail", qid, code, xcode, text), removed
        return Verdict("discard", qid, text=result.decision.action.value), removed


def _import_milter() -> tuple[Any, Any]:
    """pymilter's `Milter` (Python layer) and `milter` (libmilter binding): an optional extra."""
    try:
        return importlib.import_module("Milter"), importlib.import_module("milter")
    except ImportError as exc:
        raise ConfigError(
            "milter mode needs pymilter: pip install 'zerohour[milter]' "
            "(it builds against libmilter: apt-get install libmilter-dev)"
        ) from exc


class MilterServer:
    """libmilter's listener and session threads, bridged to the gateway's event loop."""

    def __init__(self, front: MilterFront, listen: HostPort, *, timeout: float) -> None:
        self.front = front
        self.listen = listen
        self.timeout = timeout  # how long a session thread waits for a verdict
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.stopped = asyncio.Event()

    async def start(self) -> None:
        Milter, milter = _import_milter()
        base: Any = Milter.Base

        self._loop = loop = asyncio.get_running_loop()
        server = self

        class Session(_Session, base):  # type: ignore[misc]
            def __init__(self) -> None:
                Milter.Base.__init__(self)
                _Session.__init__(self, server, Milter)

        Milter.factory = Session
        Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.CHGBODY | Milter.DELRCPT)
        milter.set_connect_callback(Milter.connect_callback)
        milter.set_helo_callback(lambda ctx, host: ctx.getpriv().hello(host))
        milter.set_envfrom_callback(lambda ctx, *b: ctx.getpriv().envfrom_bytes(*b))
        milter.set_envrcpt_callback(lambda ctx, *b: ctx.getpriv().envrcpt_bytes(*b))
        milter.set_header_callback(lambda ctx, f, v: ctx.getpriv().header(f, v))
        milter.set_eoh_callback(lambda ctx: ctx.getpriv().eoh())
        milter.set_body_callback(lambda ctx, chunk: ctx.getpriv().body(chunk))
        milter.set_eom_callback(lambda ctx: ctx.getpriv().eom())
        milter.set_abort_callback(lambda ctx: ctx.getpriv().abort())
        milter.set_close_callback(Milter.close_callback)
        host = self.listen.host
        conn = (
            f"inet6:{self.listen.port}@[{host}]"
            if ":" in host
            else (f"inet:{self.listen.port}@{host}")
        )
        milter.setconn(conn)
        milter.settimeout(max(1, int(self.timeout)))
        milter.register(
            "zerohour",
            data=lambda ctx: ctx.getpriv().data(),
            unknown=lambda ctx, cmd: ctx.getpriv().unknown(cmd),
            negotiate=Milter.negotiate_callback,
        )
        try:
            milter.opensocket(True)  # bound here, so a taken port fails the start
        except milter.error as exc:
            raise ConfigError(f"milter listen {self.listen}: cannot listen ({exc})") from exc

        def run() -> None:
            try:
                milter.main()
            except Exception:
                log.exception("milter.main_failed")
            finally:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self.stopped.set)

        self._thread = threading.Thread(target=run, name="milter", daemon=True)
        self._thread.start()
        log.info("milter.listening %s", conn)
        print(f"zerohour milter listening on {self.listen}", flush=True)

    async def stop(self) -> None:
        if self._thread is None:
            return
        _, milter = _import_milter()
        milter.stop()
        await asyncio.to_thread(self._thread.join, 10.0)
        if self._thread.is_alive():
            log.warning("milter.stop_timeout sessions still open after 10 s")
        self._thread = None

    def run_verdict(self, msg: Inbound) -> tuple[Verdict, tuple[str, ...]]:
        """Called from a libmilter session thread."""
        assert self._loop is not None
        fut = asyncio.run_coroutine_threadsafe(self.front.verdict(msg), self._loop)
        return fut.result(self.timeout)


class _Session:
    """One Postfix SMTP session's callbacks (mixed into pymilter's `Milter.Base`)."""

    def __init__(self, server: MilterServer, milter_mod: Any) -> None:
        self._server = server
        self._m = milter_mod
        self._peer = ""
        self._helo = ""
        self._tls = False
        self._reset()

    if TYPE_CHECKING:  # provided by pymilter's Milter.Base, which this is mixed into

        def getsymval(self, sym: str) -> str | None: ...
        def setreply(self, rcode: str, xcode: str | None = None, msg: str | None = None) -> int: ...
        def addheader(self, field: str, value: str, idx: int = -1) -> int: ...
        def chgheader(self, field: str, idx: int, value: str | None) -> int: ...
        def delrcpt(self, rcpt: str) -> int: ...
        def replacebody(self, body: bytes) -> int: ...

    def _reset(self) -> None:
        self._sender = ""
        self._rcpts: list[str] = []
        self._headers: list[bytes] = []
        self._own: list[tuple[str, int]] = []  # forged X-Zerohour-* fields: (name, index)
        self._long: list[tuple[str, int, bytes]] = []  # fields with a line over 998: + the line
        self._seen: dict[str, int] = {}
        self._body: list[bytes] = []
        self._started = 0.0

    # callbacks ---------------------------------------------------------------------------------
    def connect(self, hostname: str, family: int, hostaddr: Any) -> int:
        addr = self.getsymval("{client_addr}")
        if not addr and isinstance(hostaddr, tuple) and hostaddr:
            addr = str(hostaddr[0])
        self._peer = addr or str(hostname or "")
        return int(self._m.CONTINUE)

    def hello(self, hostname: str) -> int:
        self._helo = str(hostname or "")
        self._tls = bool(self.getsymval("{tls_version}"))
        return int(self._m.CONTINUE)

    def envfrom(self, sender: str, *params: str) -> int:
        self._reset()
        self._started = time.time()
        s = sender.strip()
        if s.startswith("<") and s.endswith(">"):
            s = s[1:-1]
        self._sender = s
        return int(self._m.CONTINUE)

    def envrcpt(self, rcpt: str, *params: str) -> int:
        r = rcpt.strip()
        if r.startswith("<") and r.endswith(">"):
            r = r[1:-1]
        self._rcpts.append(r)
        return int(self._m.CONTINUE)

    def header(self, field: bytes | str, value: bytes | str) -> int:
        name = field.decode("ascii", "replace") if isinstance(field, bytes) else field
        raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")
        key = name.lower()
        self._seen[key] = self._seen.get(key, 0) + 1
        if key.startswith(_OWN_PREFIX):
            self._own.append((name, self._seen[key]))
        # Postfix passes folded values with LF line breaks and without the space after ':'
        raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        line = name.encode("ascii", "replace") + b": " + raw + b"\r\n"
        self._headers.append(line)
        if not key.startswith(_OWN_PREFIX) and longest_line(line) > LINE_LIMIT:
            self._long.append((name, self._seen[key], line))
        return int(self._m.CONTINUE)

    def data(self) -> int:
        return int(self._m.CONTINUE)

    def unknown(self, cmd: str) -> int:
        return int(self._m.CONTINUE)

    def eoh(self) -> int:
        return int(self._m.CONTINUE)

    def body(self, chunk: bytes) -> int:
        self._body.append(bytes(chunk))
        return int(self._m.CONTINUE)

    def abort(self) -> int:
        self._reset()
        return int(self._m.CONTINUE)

    def close(self) -> int:
        return int(self._m.CONTINUE)

    def eom(self) -> int:
        m = self._m
        head = b"".join(self._headers)
        body = b"".join(self._body)
        msg = Inbound(
            sender=self._sender,
            recipients=tuple(self._rcpts),
            data=head + b"\r\n" + body,
            peer=self._peer,
            helo=self._helo,
            tls=self._tls,
            received_at=self._started or time.time(),
        )
        postfix_id = self.getsymval("i") or "-"
        try:
            verdict, removed = self._server.run_verdict(msg)
        except Exception as exc:  # the loop is gone or the verdict timed out: never pass
            log.error("milter.no_verdict postfix_id=%s error=%r", clean(postfix_id), exc)
            self.setreply("451", "4.3.0", "Message could not be scanned, try again later")
            return int(m.TEMPFAIL)
        log.info(
            "milter.verdict postfix_id=%s queue_id=%s action=%s peer=%s",
            clean(postfix_id), verdict.queue_id or "-", verdict.action, clean(self._peer),
        )  # fmt: skip
        for rcpt in removed:
            self.delrcpt(f"<{rcpt}>")
        if verdict.action == "reject":
            self.setreply(verdict.code, verdict.xcode, verdict.text.replace("%", "%%"))
            return int(m.REJECT)
        if verdict.action == "tempfail":
            self.setreply(verdict.code, verdict.xcode, verdict.text.replace("%", "%%"))
            return int(m.TEMPFAIL)
        if verdict.action == "discard":
            return int(m.DISCARD)
        for name, idx in reversed(self._own):
            self.chgheader(name, idx, None)
        for name, idx, line in self._long:  # Postfix delivers the header as we scanned it
            folded = fold_long_lines(line + b"\r\n")[: -2].rstrip(b"\r\n")
            value = folded.split(b":", 1)[1].removeprefix(b" ").replace(b"\r\n", b"\n")
            self.chgheader(name, idx, value.decode("utf-8", "surrogateescape"))
        self.addheader(TRACE, verdict.trace, 0)
        folded = fold_long_lines(msg.data)
        if folded != msg.data:
            new_body = folded[folded.find(b"\r\n\r\n") + 4 :]
            if new_body != body:
                for i in range(0, len(new_body), 65536):
                    self.replacebody(new_body[i : i + 65536])
        return int(m.ACCEPT)
