"""Replayed, out-of-order, expired and oversize genuine notices: refused or held back, counted,
state unchanged (UDP and mail, where an attacker can inject bytes at will)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from notices.support import MemorySink, ProviderProc, eventually
from zerohour.gateway.listeners.service import ListenerConfig, NoticeListeners
from zerohour.notices.envelope import MAX_ENVELOPE
from zerohour.notices.keys import load_pinned_key
from zerohour.notices.verify import Result, Transport


@pytest.fixture
def genuine(tmp_path: Path) -> Iterator[ProviderProc]:
    p = ProviderProc(tmp_path / "genuine").start()
    yield p
    p.stop()


@pytest.fixture
async def gateway(genuine: ProviderProc) -> AsyncIterator[tuple[NoticeListeners, MemorySink]]:
    sink = MemorySink()
    cfg = ListenerConfig(
        genuine.url,
        load_pinned_key(genuine.key_text),
        stream=False,
        poll=False,
        udp_listen=("127.0.0.1", 0),
        skew=timedelta(0),
    )
    listeners = NoticeListeners(cfg, sink)
    await listeners.start()
    yield listeners, sink
    await listeners.aclose()


def notices(p: ProviderProc) -> list[bytes]:
    import json

    items = httpx.get(f"{p.url}/v1/notices").json()["notices"]
    return [json.dumps(i).encode() for i in items]


def send_udp(addr: tuple[str, int] | None, data: bytes) -> None:
    assert addr is not None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(data, addr)


async def test_replay_is_a_no_op(
    genuine: ProviderProc, gateway: tuple[NoticeListeners, MemorySink]
) -> None:
    listeners, sink = gateway
    oid = genuine.declare("A")
    genuine.lab("outbreak", "end", oid)
    declared, ended = notices(genuine)
    send_udp(listeners.udp_address, declared)
    send_udp(listeners.udp_address, ended)
    await eventually(lambda: listeners.verifier.last_seq == 2)
    assert sink.outbreaks == {}
    # The attacker replays the declaration to restart the outbreak: nothing happens.
    for _ in range(3):
        send_udp(listeners.udp_address, declared)
    await eventually(lambda: listeners.verifier.counts[("udp", "duplicate")] == 3)
    assert sink.outbreaks == {}
    assert len(sink.receipts) == 2


async def test_out_of_order_waits_for_the_gap(
    genuine: ProviderProc, gateway: tuple[NoticeListeners, MemorySink]
) -> None:
    listeners, sink = gateway
    a = genuine.declare("A")
    genuine.lab("outbreak", "end", a)
    declared, ended = notices(genuine)
    # The "ended" arrives first (reordered or the declaration dropped): it must not apply yet.
    out = await listeners.verifier.submit(ended, Transport.UDP)
    assert out.result is Result.PENDING
    assert sink.receipts == []
    await listeners.verifier.submit(declared, Transport.UDP)
    assert [r.seq for r in sink.receipts] == [1, 2]
    assert sink.outbreaks == {}
    assert sink.ended == [(a, "ended by the lab")]


async def test_expired_notice_refused(
    genuine: ProviderProc, gateway: tuple[NoticeListeners, MemorySink]
) -> None:
    listeners, sink = gateway
    genuine.declare("Short", "--expires", "1s")
    (env,) = notices(genuine)
    later = datetime.now(UTC) + timedelta(seconds=5)  # the notice lived 1 s; skew is 0
    listeners.verifier.clock = lambda: later
    out = await listeners.verifier.submit(env, Transport.MAIL)
    assert out.reason == "expired"
    assert sink.receipts == []
    assert listeners.verifier.counts[("mail", "expired")] == 1


async def test_oversize_refused_on_every_transport(
    gateway: tuple[NoticeListeners, MemorySink],
) -> None:
    listeners, sink = gateway
    big = b"{" + b" " * MAX_ENVELOPE + b"}"
    for transport in (Transport.STREAM, Transport.POLL, Transport.MAIL):
        assert (await listeners.verifier.submit(big, transport)).reason == "oversize"
    assert (await listeners.verifier.submit(b" " * 1201, Transport.UDP)).reason == "oversize"
    assert sink.receipts == []
