"""Push transports: one UDP datagram per notice and one e-mail per notice to each subscriber.

Both are best-effort accelerators: a lost datagram or mail is caught up by the gateway's stream
or poll, so failures are logged and never retried here. Targets were checked against the
`PushPolicy` when subscribed (UDP) or are checked now (control mail: MX lookup, approved hosts);
each target has a token bucket, and one notice goes once to a target however many subscriptions
name it, so pushes cannot be amplified towards a host.
"""

from __future__ import annotations

import asyncio
import logging
from email.message import EmailMessage

import aiosmtplib

from zerohour.notices.envelope import MAX_DATAGRAM, NOTICE_TYPE
from zerohour.provider.log import Subscription
from zerohour.provider.targets import PushPolicy, TargetRefused, TokenBuckets

log = logging.getLogger("zerohour.provider.push")
UDP_RATE, UDP_BURST = 20.0, 40.0  # datagrams per second and burst, per target address
MAIL_RATE, MAIL_BURST = 0.5, 10.0  # messages per second and burst, per destination
_MAX_MAIL_TASKS = 200


def parse_hostport(value: str, *, default_port: int | None = None) -> tuple[str, int]:
    """`HOST:PORT` (or `[v6]:PORT`) → (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or (value.count(":") > 1 and not value.startswith("[")):
        if default_port is None:
            raise ValueError(f"{value!r} is not HOST:PORT")
        return value.strip("[]"), default_port
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
    def __init__(
        self,
        provider: str,
        smtp_relay: tuple[str, int] | None = None,
        policy: PushPolicy | None = None,
        *,
        udp_buckets: TokenBuckets | None = None,
        mail_buckets: TokenBuckets | None = None,
    ) -> None:
        self.provider = provider
        self.smtp_relay = smtp_relay  # operator-configured: trusted, delivers to the MX itself
        self.policy = policy or PushPolicy()
        self.udp_buckets = udp_buckets or TokenBuckets(UDP_RATE, UDP_BURST)
        self.mail_buckets = mail_buckets or TokenBuckets(MAIL_RATE, MAIL_BURST)
        self._udp: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent: dict[str, int] = {
            "udp": 0,
            "udp_limited": 0,
            "mail": 0,
            "mail_failed": 0,
            "mail_limited": 0,
            "mail_refused": 0,
        }

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
        udp_done: set[tuple[str, int]] = set()
        mail_done: set[str] = set()
        for s in subs:
            if s.udp and self._udp is not None:
                try:
                    addr = parse_hostport(s.udp)
                except ValueError as exc:
                    log.info("push.udp_failed sub=%s: %s", s.id[:16], exc)
                    addr = None
                if addr is not None and addr not in udp_done:
                    udp_done.add(addr)
                    self.send_udp(addr, env if len(env) <= MAX_DATAGRAM else hint)
            if s.control_address and s.control_address.lower() not in mail_done:
                mail_done.add(s.control_address.lower())
                if len(self._tasks) >= _MAX_MAIL_TASKS:
                    self.sent["mail_limited"] += 1
                    continue
                task = asyncio.create_task(self._mail(seq, env, s))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def send_udp(self, addr: tuple[str, int], data: bytes) -> None:
        if self._udp is None:
            return
        if not self.udp_buckets.take(addr):
            self.sent["udp_limited"] += 1
            return
        try:
            self._udp.sendto(data, addr)
            self.sent["udp"] += 1
        except OSError as exc:
            log.info("push.udp_failed %s:%d: %s", addr[0], addr[1], exc)

    async def _routes(self, s: Subscription) -> list[tuple[str, str, int]]:
        """(server name, address, port) to try for a subscription's control mail."""
        assert s.control_address is not None
        if s.smtp:
            host, port = parse_hostport(s.smtp, default_port=25)
            return [(host, str(ip), port) for ip in await self.policy.explicit_smtp(host, port)]
        if self.smtp_relay is not None:
            return [(self.smtp_relay[0], self.smtp_relay[0], self.smtp_relay[1])]
        domain = s.control_address.rsplit("@", 1)[1]
        return [(host, str(ip), 25) for host, ip in await self.policy.mx_targets(domain)]

    async def _mail(self, seq: int, env: bytes, s: Subscription) -> None:
        assert s.control_address is not None
        to = s.control_address
        if not self.mail_buckets.take(to.rsplit("@", 1)[1].lower()):
            self.sent["mail_limited"] += 1
            return
        try:
            routes = await self._routes(s)
        except (TargetRefused, ValueError) as exc:
            self.sent["mail_refused"] += 1
            log.warning("push.mail_refused seq=%d sub=%s: %s", seq, s.id[:16], exc)
            return
        if not routes:
            self.sent["mail_refused"] += 1
            log.warning("push.mail_no_route seq=%d to=%s: no allowed MX address", seq, to)
            return
        msg = notice_mail(env, seq, self.provider, to)
        for name, address, port in routes:
            try:
                await aiosmtplib.send(
                    msg,
                    hostname=address,
                    port=port,
                    timeout=15,
                    start_tls=False,
                )
                self.sent["mail"] += 1
                return
            except (aiosmtplib.SMTPException, OSError) as exc:
                log.warning(
                    "push.mail_failed seq=%d server=%s (%s:%d): %s", seq, name, address, port, exc
                )
        self.sent["mail_failed"] += 1
