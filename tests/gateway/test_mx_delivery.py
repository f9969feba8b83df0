"""MX-mode delivery (no `delivery.next_hop`) against a real DNS server on 127.0.0.1.

`helpers.dns.ZoneServer` answers the gateway's resolver (`delivery.dns_servers`); the MX hosts
are aiosmtpd sinks on other loopback addresses, all on one port (`delivery.mx_port`, the lab
stand-in for port 25). DSNs go to the sender domain's MX, a sink too, so a bounce's status code
is read from the DSN that really arrived.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.conftest import Running, make_config, message, start_gateway, wait_for
from helpers.dns import ZoneServer
from helpers.net import free_port
from helpers.sinks import RecordingSink
from zerohour.store.base import MessageRecord, MessageState, RecipientStatus

ZONE = {
    # two MX hosts: the preferred one (10) is down unless a test starts it
    ("two.test", "MX"): ["20 mx2.two.test.", "10 mx1.two.test."],
    ("mx1.two.test", "A"): ["127.0.0.2"],
    ("mx2.two.test", "A"): ["127.0.0.3"],
    # no MX: the domain's own address is the implicit MX (RFC 5321 5.1)
    ("plain.test", "A"): ["127.0.0.4"],
    # RFC 7505 null MX: accepts no mail
    ("nullmx.test", "MX"): ["0 ."],
    ("nullmx.test", "A"): ["127.0.0.4"],
    # neither MX nor address
    ("bare.test", "TXT"): ['"nothing here"'],
    # the sender's domain, where DSNs go
    ("sender.test", "MX"): ["10 mx.sender.test."],
    ("mx.sender.test", "A"): ["127.0.0.5"],
}
DOMAINS = ["two.test", "plain.test", "nullmx.test", "bare.test", "gone.test", "broken.test"]


@pytest.fixture
def zone() -> Iterator[ZoneServer]:
    with ZoneServer(ZONE) as server:
        yield server


@pytest.fixture
def mx_port() -> int:
    return free_port()


@pytest.fixture
def hosts(mx_port: int) -> Iterator[dict[str, RecordingSink]]:
    """MX sinks by address; 127.0.0.2 is not started (the preferred MX of two.test is down)."""
    sinks = {ip: RecordingSink(mx_port, host=ip) for ip in ("127.0.0.2", "127.0.0.3")}
    sinks |= {ip: RecordingSink(mx_port, host=ip).start() for ip in ("127.0.0.4", "127.0.0.5")}
    sinks["127.0.0.3"].start()
    try:
        yield sinks
    finally:
        for s in sinks.values():
            s.stop()


async def _gateway(tmp_path: Path, zone: ZoneServer, mx_port: int) -> Running:
    return await start_gateway(
        make_config(
            tmp_path / "data",
            "mx",
            **{
                "smtp.relay_domains": DOMAINS,
                "delivery.dns_servers": [zone.address],
                "delivery.dns_timeout": 1.0,
                "delivery.mx_port": mx_port,
            },
        )
    )


async def _mail(run: Running) -> MessageRecord:
    store = run.gw.store
    assert store is not None
    mails = [r for r in await store.list_messages() if r.kind == "mail"]
    assert len(mails) == 1
    return mails[0]


async def _final(run: Running) -> MessageRecord:
    async def done() -> MessageRecord | None:
        rec = await _mail(run)
        return None if rec.state is MessageState.QUEUED else rec

    for _ in range(400):
        rec = await done()
        if rec is not None:
            return rec
        await asyncio.sleep(0.05)
    return await _mail(run)


async def test_first_mx_down_delivers_to_the_second_and_preference_is_kept(
    tmp_path: Path, zone: ZoneServer, mx_port: int, hosts: dict[str, RecordingSink]
) -> None:
    run = await _gateway(tmp_path, zone, mx_port)
    try:
        assert await run.sendmail("a@sender.test", ["u@two.test"], message("fallback")) == {}
        got = await wait_for(lambda: hosts["127.0.0.3"].messages)
        assert [m.header("Subject") for m in got] == ["fallback"]
        assert got[0].rcpt_tos == ("u@two.test",)
        assert ("mx1.two.test", "A") in zone.queries  # the preferred host was looked up first
        assert zone.queries.index(("mx1.two.test", "A")) < zone.queries.index(("mx2.two.test", "A"))
        rec = await _final(run)
        assert rec.state is MessageState.DELIVERED
        # the preferred MX back up: it gets the next message, the second one nothing more
        await asyncio.to_thread(hosts["127.0.0.2"].start)
        assert await run.sendmail("a@sender.test", ["v@two.test"], message("preferred")) == {}
        first = await wait_for(lambda: hosts["127.0.0.2"].messages)
        assert [m.header("Subject") for m in first] == ["preferred"]
        assert len(hosts["127.0.0.3"].messages) == 1
    finally:
        await run.gw.stop()


async def test_no_mx_falls_back_to_the_domain_address(
    tmp_path: Path, zone: ZoneServer, mx_port: int, hosts: dict[str, RecordingSink]
) -> None:
    run = await _gateway(tmp_path, zone, mx_port)
    try:
        assert await run.sendmail("a@sender.test", ["u@plain.test"], message("implicit")) == {}
        got = await wait_for(lambda: hosts["127.0.0.4"].messages)
        assert [m.rcpt_tos for m in got] == [("u@plain.test",)]
        assert ("plain.test", "MX") in zone.queries
        assert (await _final(run)).state is MessageState.DELIVERED
    finally:
        await run.gw.stop()


@pytest.mark.parametrize(
    ("rcpt", "status"),
    [
        ("u@gone.test", "5.1.2"),  # NXDOMAIN
        ("u@nullmx.test", "5.1.10"),  # RFC 7505 null MX, although it has an A record
        ("u@bare.test", "5.4.4"),  # no MX and no address
    ],
)
async def test_undeliverable_domains_bounce_with_a_dsn(
    tmp_path: Path,
    zone: ZoneServer,
    mx_port: int,
    hosts: dict[str, RecordingSink],
    rcpt: str,
    status: str,
) -> None:
    run = await _gateway(tmp_path, zone, mx_port)
    try:
        assert await run.sendmail("a@sender.test", [rcpt], message("doomed")) == {}
        rec = await _final(run)
        assert rec.state is MessageState.BOUNCED
        assert rec.recipients[0].status is RecipientStatus.BOUNCED
        assert f" {status} " in rec.recipients[0].last_error
        dsns = await wait_for(lambda: hosts["127.0.0.5"].messages)
        assert dsns[0].rcpt_tos == ("a@sender.test",)
        assert f"Status: {status}\r\n".encode() in dsns[0].data
        assert f"Final-Recipient: rfc822; {rcpt}".encode() in dsns[0].data
        # nothing was delivered anywhere (nullmx.test's A record is 127.0.0.4: never used)
        assert hosts["127.0.0.4"].messages == []
    finally:
        await run.gw.stop()


@pytest.mark.parametrize("failure", ["servfail", "silent"])
async def test_dns_failure_defers_and_the_mail_is_delivered_once_dns_answers(
    tmp_path: Path,
    zone: ZoneServer,
    mx_port: int,
    hosts: dict[str, RecordingSink],
    failure: str,
) -> None:
    getattr(zone, failure).add("broken.test")
    run = await _gateway(tmp_path, zone, mx_port)
    try:
        assert await run.sendmail("a@sender.test", ["u@broken.test"], message("later")) == {}
        store = run.gw.store
        assert store is not None

        async def retried() -> bool:
            entries = await store.queue_entries()
            return bool(entries) and entries[0].attempts >= 2

        for _ in range(300):
            if await retried():
                break
            await asyncio.sleep(0.05)
        entries = await store.queue_entries()
        assert entries
        assert entries[0].attempts >= 2
        assert re.search(r"451 4\.4\.3 broken\.test: MX lookup failed", entries[0].last_error)
        assert ("timeout" in entries[0].last_error) is (failure == "silent")
        rec = await _mail(run)
        assert rec.state is MessageState.QUEUED  # deferred, never bounced
        assert rec.recipients[0].status is RecipientStatus.DEFERRED
        assert await run.gw.bodies.exists(rec.queue_id)
        assert hosts["127.0.0.5"].messages == []  # no DSN
        # DNS heals: the next retry delivers
        zone.records[("broken.test", "MX")] = ["10 mx2.two.test."]
        getattr(zone, failure).discard("broken.test")
        got = await wait_for(lambda: hosts["127.0.0.3"].messages)
        assert [m.rcpt_tos for m in got] == [("u@broken.test",)]
        assert (await _final(run)).state is MessageState.DELIVERED
    finally:
        await run.gw.stop()


async def test_recipients_of_one_message_follow_their_own_domains(
    tmp_path: Path, zone: ZoneServer, mx_port: int, hosts: dict[str, RecordingSink]
) -> None:
    run = await _gateway(tmp_path, zone, mx_port)
    try:
        rcpts = ["u@plain.test", "v@plain.test", "w@two.test", "x@gone.test"]
        assert await run.sendmail("a@sender.test", rcpts, message("mixed")) == {}
        rec = await _final(run)
        assert rec.state is MessageState.DELIVERED
        status = {r.address: r.status for r in rec.recipients}
        assert status == {
            "u@plain.test": RecipientStatus.DELIVERED,
            "v@plain.test": RecipientStatus.DELIVERED,
            "w@two.test": RecipientStatus.DELIVERED,
            "x@gone.test": RecipientStatus.BOUNCED,
        }
        # one transaction per domain
        assert [m.rcpt_tos for m in hosts["127.0.0.4"].messages] == [
            ("u@plain.test", "v@plain.test")
        ]
        assert [m.rcpt_tos for m in hosts["127.0.0.3"].messages] == [("w@two.test",)]
        dsns = await wait_for(lambda: hosts["127.0.0.5"].messages)
        assert b"Final-Recipient: rfc822; x@gone.test" in dsns[0].data
        assert b"w@two.test" not in dsns[0].data.split(b"text/rfc822-headers")[0]
    finally:
        await run.gw.stop()
