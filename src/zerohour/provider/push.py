"""Push transports: one UDP datagram per notice and one e-mail per notice to each subscriber.

Both are best-effort accelerators: a lost datagram or mail is caught up by the gateway's stream
or poll, so failures are logged and never retried here.
"""

from __future__ import annotations

import asyncio
import logging
from email.message import EmailMessage

import aiosmtplib

from zerohour.notices.envelope import MAX_DATAGRAM, NOTICE_TYPE
from zerohour.provider.log import Subscription

log = logging.getLogger("zerohour.provider.push")


def parse_hostport(value: str, *, default_port: int | None = None) -> tuple[str, int]:
    """`HOST:PORT` (or `[v6]:PORT`) → (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep:
        if default_port is None:
            raise ValueError(f"{value!r} is not HOST:PORT")
        return value, default_port
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not HOST:PORT")
    return host, int(port)


def notice_mail(env: bytes, seq: int, provider: str, to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"{provider} notices <notices@{provider}.invalid>"
    msg["To"] = to
    msg["Subject"] = f"zerohour notice {seq} from {provider}"
    msg.set_content("Signed zerohour outbreak notice; consumed by the gateway's control address.\n")
    maintype, subtype = NOTICE_TYPE.split("/", 1)
    msg.add_attachment(env, maintype=maintype, subtype=subtype, filename=f"notice-{seq}.json")
    return msg


class _Udp(asyncio.DatagramProtocol):
    def error_received(self, exc: Exception) -> None:
        log.info("push.udp_error %s", exc)


class Pusher:
    def __init__(self, provider: str, smtp_relay: tuple[str, int] | None = None) -> None:
        self.provider = provider
        self.smtp_relay = smtp_relay
        self._udp: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent: dict[str, int] = {"udp": 0, "mail": 0, "mail_failed": 0}

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(_Udp, local_addr=("0.0.0.0", 0))  # noqa: S104

    async def aclose(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._udp is not None:
            self._udp.close()

    def push(self, seq: int, env: bytes, hint: bytes, subs: list[Subscription]) -> None:
        """Send one logged notice to every subscriber (`hint` when it does not fit UDP)."""
        for s in subs:
            if s.udp and self._udp is not None:
                try:
                    addr = parse_hostport(s.udp)
                    self._udp.sendto(env if len(env) <= MAX_DATAGRAM else hint, addr)
                    self.sent["udp"] += 1
                except (ValueError, OSError) as exc:
                    log.info("push.udp_failed sub=%s: %s", s.id, exc)
            if s.control_address:
                relay = self.smtp_relay
                if s.smtp:
                    try:
                        relay = parse_hostport(s.smtp, default_port=25)
                    except ValueError:
                        relay = None
                if relay is not None:
                    task = asyncio.create_task(self._mail(seq, env, s.control_address, relay))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

    async def _mail(self, seq: int, env: bytes, to: str, relay: tuple[str, int]) -> None:
        msg = notice_mail(env, seq, self.provider, to)
        try:
            await aiosmtplib.send(
                msg, hostname=relay[0], port=relay[1], timeout=15, start_tls=False
            )
            self.sent["mail"] += 1
        except (aiosmtplib.SMTPException, OSError) as exc:
            self.sent["mail_failed"] += 1
            log.warning("push.mail_failed seq=%d relay=%s:%d: %s", seq, relay[0], relay[1], exc)
