"""Control mail goes to the MX of the control address's domain (issue 9, section 4): the
gateway no longer tells the provider its bind address. A small DNS server on 127.0.0.1 answers
the provider's MX and A queries (`provider run --dns-server`); the "MX host" is an SMTP server on
127.0.0.3:25 feeding the gateway's control-mail receiver. MX addresses the push policy does not
allow (private, unapproved loopback) are never connected to."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import dns.message
import dns.rdatatype
import dns.rrset
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from notices.support import MemorySink, ProviderProc, eventually
from zerohour.gateway.listeners.service import ListenerConfig, NoticeListeners
from zerohour.notices.keys import load_pinned_key
from zerohour.provider.targets import PushPolicy

ZONE = {
    ("gw.test", "MX"): ["20 mx2.gw.test.", "10 mx1.gw.test."],
    ("mx1.gw.test", "A"): ["127.0.0.3"],
    ("mx2.gw.test", "A"): ["10.9.9.9"],  # private: never a push target without approval
    ("internal.test", "MX"): ["10 db.internal.test."],
    ("db.internal.test", "A"): ["10.0.0.5"],
}


class _Dns(asyncio.DatagramProtocol):
    transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        answer = dns.message.make_response(query)
        q = query.question[0]
        name = q.name.to_text().rstrip(".").lower()
        rtype = dns.rdatatype.to_text(q.rdtype)
        records = ZONE.get((name, rtype))
        if records:
            answer.answer.append(dns.rrset.from_text(q.name, 60, "IN", rtype, *records))
        self.transport.sendto(answer.to_wire(), addr)


@pytest.fixture
async def dns_server() -> AsyncIterator[int]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_Dns, local_addr=("127.0.0.1", 0))
    yield int(transport.get_extra_info("sockname")[1])
    transport.close()


async def test_mx_lookup_orders_and_filters(dns_server: int) -> None:
    approved = PushPolicy(
        (ipaddress.ip_network("127.0.0.0/8"),), dns_server=("127.0.0.1", dns_server)
    )
    assert await approved.mx_targets("gw.test") == [
        ("mx1.gw.test", ipaddress.ip_address("127.0.0.3"))  # mx2's 10.9.9.9 is filtered
    ]
    strict = PushPolicy(dns_server=("127.0.0.1", dns_server))
    assert await strict.mx_targets("gw.test") == []  # loopback not approved either
    assert await approved.mx_targets("internal.test") == []  # SSRF into a private network


@pytest.fixture
def mx_provider(tmp_path: Path, dns_server: int) -> Iterator[ProviderProc]:
    extra = ("--dns-server", f"127.0.0.1:{dns_server}", "--allow-push-target", "127.0.0.0/8")
    p = ProviderProc(tmp_path / "provider", extra).start()
    try:
        yield p
    finally:
        p.stop()


async def test_control_mail_is_delivered_to_the_mx(
    mx_provider: ProviderProc, tmp_path: Path
) -> None:
    box: list[NoticeListeners] = []
    received: list[bytes] = []

    class Handler:
        async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
            assert isinstance(envelope.content, bytes)
            received.append(envelope.content)
            await box[0].mail.handle(envelope.content)
            return "250 OK"

    loop = asyncio.get_running_loop()
    try:
        server = await loop.create_server(lambda: SMTP(Handler()), "127.0.0.3", 25)
    except OSError as exc:  # port 25 needs privileges on some machines
        pytest.skip(f"cannot listen on 127.0.0.3:25: {exc}")
    listeners = NoticeListeners(
        ListenerConfig(
            mx_provider.url,
            load_pinned_key(mx_provider.key_text),
            stream=False,
            poll=False,
            poll_interval=3600,
            control_address="notices@gw.test",  # no control_smtp: the provider asks DNS
            subscription_token=mx_provider.gateway_token(),
            identity_dir=tmp_path / "gw",
        ),
        MemorySink(),
    )
    box.append(listeners)
    try:
        await listeners.start()
        assert listeners.subscription is not None
        assert listeners.subscription["smtp"] is None
        oid = mx_provider.declare("Mx.Worm")
        await eventually(lambda: listeners.verifier.counts[("mail", "applied")] == 1)
        assert oid in listeners.verifier.sink.outbreaks  # type: ignore[attr-defined]
        assert b"To: notices@gw.test" in received[0]
    finally:
        await listeners.aclose()
        server.close()
        await server.wait_closed()
