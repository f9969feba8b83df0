"""Outbound TLS: STARTTLS to the next hop and the per-destination levels of `delivery.tls_level`
and `delivery.tls_policy` (Postfix's `smtp_tls_security_level` / `smtp_tls_policy_maps`).

The sinks are aiosmtpd servers, one plaintext, one offering STARTTLS with a certificate from a
private CA made in the test; each recorded message says whether its session was encrypted. A
required-TLS failure must leave the mail queued (4.7.x) and the sink empty: never plaintext.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.conftest import Running, make_config, message, start_gateway, wait_for
from helpers.dns import ZoneServer
from helpers.net import free_port
from helpers.sinks import RecordingSink
from helpers.tls import private_ca
from zerohour.config import HostPort, TlsLevel, load
from zerohour.gateway.tls_policy import level_for
from zerohour.store.base import MessageState, RecipientStatus


@pytest.fixture
def pki(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(ca, cert, key): the server certificate names 127.0.0.1, the next hop's host."""
    return private_ca(tmp_path / "pki", ["127.0.0.1"])


@pytest.fixture
def tls_sink(pki: tuple[Path, Path, Path]) -> Iterator[RecordingSink]:
    with RecordingSink(tls=(pki[1], pki[2])) as server:
        yield server


async def _relay(tmp_path: Path, hop: RecordingSink, **flags: Any) -> Running:
    return await start_gateway(
        make_config(tmp_path / "data", hop.address, **{"delivery.starttls": True, **flags})
    )


async def _deferred_twice(run: Running) -> str:
    """The queue's last error once the message failed at least twice; asserts it is still
    queued with its body (deferred, not bounced)."""
    store = run.gw.store
    assert store is not None
    for _ in range(300):
        entries = await store.queue_entries()
        if entries and entries[0].attempts >= 2:
            break
        await asyncio.sleep(0.05)
    entries = await store.queue_entries()
    assert entries
    assert entries[0].attempts >= 2
    (rec,) = [r for r in await store.list_messages() if r.kind == "mail"]
    assert rec.state is MessageState.QUEUED
    assert rec.recipients[0].status is RecipientStatus.DEFERRED
    assert await run.gw.bodies.exists(rec.queue_id)
    return entries[0].last_error


async def test_starttls_offered_is_used_and_the_sink_sees_an_encrypted_session(
    tmp_path: Path, tls_sink: RecordingSink
) -> None:
    run = await _relay(tmp_path, tls_sink)  # the default level: may
    try:
        assert await run.sendmail("a@sender.test", ["b@example.test"], message("sealed")) == {}
        got = await wait_for(lambda: tls_sink.messages)
        assert [m.header("Subject") for m in got] == ["sealed"]
        assert got[0].tls_version in ("TLSv1.2", "TLSv1.3")
    finally:
        await run.gw.stop()


@pytest.mark.parametrize(
    ("level", "encrypted_sink", "ca", "outcome"),
    [
        ("none", True, False, "plaintext"),
        ("may", False, False, "plaintext"),
        ("may", True, False, "encrypted"),  # a certificate no store trusts: fine for may
        ("encrypt", False, False, "451 4.7.4 TLS is required, but was not offered by host"),
        ("encrypt", True, False, "encrypted"),
        ("verify", False, True, "451 4.7.4 TLS is required, but was not offered by host"),
        ("verify", True, False, "451 4.7.5 server certificate not verified for 127.0.0.1"),
        ("verify", True, True, "encrypted"),
        ("secure", True, False, "451 4.7.5 server certificate not verified for 127.0.0.1"),
        ("secure", True, True, "encrypted"),
    ],
)
async def test_tls_levels_against_plaintext_and_tls_next_hops(
    tmp_path: Path,
    pki: tuple[Path, Path, Path],
    tls_sink: RecordingSink,
    sink: RecordingSink,
    level: str,
    encrypted_sink: bool,
    ca: bool,
    outcome: str,
) -> None:
    hop = tls_sink if encrypted_sink else sink
    flags: dict[str, Any] = {"delivery.tls_level": level}
    if ca:
        flags["delivery.tls_ca_file"] = str(pki[0])
    run = await _relay(tmp_path, hop, **flags)
    try:
        assert await run.sendmail("a@sender.test", ["b@example.test"], message(level)) == {}
        if outcome in ("plaintext", "encrypted"):
            got = await wait_for(lambda: hop.messages)
            assert [m.header("Subject") for m in got] == [level]
            assert (got[0].tls_version is not None) is (outcome == "encrypted")
        else:
            error = await _deferred_twice(run)
            assert outcome in error
            assert hop.messages == []  # never fell back to plaintext
    finally:
        await run.gw.stop()


async def test_verify_refuses_a_certificate_for_another_name(tmp_path: Path) -> None:
    ca, cert, key = private_ca(tmp_path / "pki", ["mx.elsewhere.test"])
    with RecordingSink(tls=(cert, key)) as hop:
        run = await _relay(
            tmp_path, hop, **{"delivery.tls_level": "verify", "delivery.tls_ca_file": str(ca)}
        )
        try:
            await run.sendmail("a@sender.test", ["b@example.test"], message("mismatch"))
            error = await _deferred_twice(run)
            assert "451 4.7.5 server certificate not verified for 127.0.0.1" in error
            assert "mismatch" in error.lower()  # "IP address mismatch"
            assert hop.messages == []
        finally:
            await run.gw.stop()


async def test_table_entry_for_the_next_hop_overrides_the_default(
    tmp_path: Path, sink: RecordingSink
) -> None:
    table = {f"[127.0.0.1]:{sink.port}": "encrypt"}
    run = await _relay(tmp_path, sink, **{"delivery.tls_policy": table})
    try:
        await run.sendmail("a@sender.test", ["b@example.test"], message("table"))
        assert "4.7.4 TLS is required" in await _deferred_twice(run)
        assert sink.messages == []
    finally:
        await run.gw.stop()


# MX mode: the level comes from the recipient domain, the verified name is the MX host's ------

ZONE = {
    ("secure.test", "MX"): ["10 mx.secure.test."],
    ("mx.secure.test", "A"): ["127.0.0.6"],
    ("alias.test", "MX"): ["10 mx.alias.test."],  # same server, a name its certificate lacks
    ("mx.alias.test", "A"): ["127.0.0.6"],
    ("fallback.test", "MX"): ["10 mx.plain.test.", "20 mx.secure.test."],
    ("mx.plain.test", "A"): ["127.0.0.7"],
    ("open.test", "MX"): ["10 mx.plain.test."],
}


@pytest.fixture
def mx_world(tmp_path: Path) -> Iterator[tuple[ZoneServer, int, Path, dict[str, RecordingSink]]]:
    """DNS, the MX port, the CA file, and two MX sinks: 127.0.0.6 offers STARTTLS with a
    certificate for mx.secure.test; 127.0.0.7 is plaintext only."""
    ca, cert, key = private_ca(tmp_path / "pki", ["mx.secure.test"])
    port = free_port()
    sinks = {
        "tls": RecordingSink(port, host="127.0.0.6", tls=(cert, key)).start(),
        "plain": RecordingSink(port, host="127.0.0.7").start(),
    }
    try:
        with ZoneServer(ZONE) as zone:
            yield zone, port, ca, sinks
    finally:
        for s in sinks.values():
            s.stop()


async def _mx_gateway(
    tmp_path: Path, world: tuple[ZoneServer, int, Path, dict[str, RecordingSink]]
) -> Running:
    zone, port, ca, _ = world
    flags = {
        "smtp.relay_domains": ["secure.test", "alias.test", "fallback.test", "open.test"],
        "delivery.dns_servers": [zone.address],
        "delivery.mx_port": port,
        "delivery.starttls": True,
        "delivery.tls_ca_file": str(ca),
        "delivery.tls_policy": {
            "secure.test": "verify",
            "alias.test": "verify",
            "fallback.test": "encrypt",
        },
    }
    return await start_gateway(make_config(tmp_path / "data", "mx", **flags))


async def test_verify_checks_the_mx_host_name(
    tmp_path: Path, mx_world: tuple[ZoneServer, int, Path, dict[str, RecordingSink]]
) -> None:
    sinks = mx_world[3]
    run = await _mx_gateway(tmp_path, mx_world)
    try:
        await run.sendmail("a@sender.test", ["u@secure.test"], message("verified"))
        got = await wait_for(lambda: sinks["tls"].messages)
        assert [m.rcpt_tos for m in got] == [("u@secure.test",)]
        assert got[0].tls_version is not None
    finally:
        await run.gw.stop()


async def test_verify_defers_when_the_certificate_does_not_name_the_mx_host(
    tmp_path: Path, mx_world: tuple[ZoneServer, int, Path, dict[str, RecordingSink]]
) -> None:
    sinks = mx_world[3]
    run = await _mx_gateway(tmp_path, mx_world)
    try:
        await run.sendmail("a@sender.test", ["u@alias.test"], message("alias"))
        error = await _deferred_twice(run)
        assert "4.7.5 server certificate not verified for mx.alias.test" in error
        assert sinks["tls"].messages == []
    finally:
        await run.gw.stop()


async def test_required_tls_passes_a_plaintext_mx_by_for_the_next_one(
    tmp_path: Path, mx_world: tuple[ZoneServer, int, Path, dict[str, RecordingSink]]
) -> None:
    sinks = mx_world[3]
    run = await _mx_gateway(tmp_path, mx_world)
    try:
        await run.sendmail("a@sender.test", ["u@fallback.test"], message("second"))
        got = await wait_for(lambda: sinks["tls"].messages)
        assert [m.rcpt_tos for m in got] == [("u@fallback.test",)]
        assert got[0].tls_version is not None
        assert sinks["plain"].messages == []  # the preferred MX offered no TLS: skipped
        # a domain without a table entry uses the default (may): plaintext MX is fine
        await run.sendmail("a@sender.test", ["u@open.test"], message("open"))
        plain = await wait_for(lambda: sinks["plain"].messages)
        assert [m.rcpt_tos for m in plain] == [("u@open.test",)]
        assert plain[0].tls_version is None
    finally:
        await run.gw.stop()


def test_policy_lookup_exact_parent_and_next_hop_keys() -> None:
    cfg = load(
        env={},
        flags={
            "delivery.tls_level": "may",
            "delivery.tls_policy": "example.com=verify,.example.com=encrypt,[relay.test]=none",
        },
    ).delivery
    assert level_for(cfg, "example.com", None) is TlsLevel.VERIFY
    assert level_for(cfg, "EXAMPLE.com.", None) is TlsLevel.VERIFY
    assert level_for(cfg, "mail.eu.example.com", None) is TlsLevel.ENCRYPT
    assert level_for(cfg, "example.org", None) is TlsLevel.MAY
    assert level_for(cfg, "notexample.com", None) is TlsLevel.MAY
    assert level_for(cfg, None, HostPort("relay.test", 25)) is TlsLevel.NONE
    assert level_for(cfg, None, HostPort("example.com", 25)) is TlsLevel.MAY  # domains: MX only
