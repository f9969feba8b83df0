"""Forged notices over real transports are refused, counted by reason, and change nothing.

The gateway side pins the genuine provider's key; the attacker has a valid-looking provider of
its own (same name, its own key), can send UDP datagrams and mail, and can tamper with bytes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from notices.support import MemorySink, ProviderProc, envelope, eventually, spec
from zerohour.gateway.listeners.service import ListenerConfig, NoticeListeners
from zerohour.notices.keys import load_pinned_key
from zerohour.provider.push import notice_mail


@pytest.fixture
def genuine(tmp_path: Path) -> Iterator[ProviderProc]:
    p = ProviderProc(tmp_path / "genuine").start()
    yield p
    p.stop()


@pytest.fixture
def rogue(tmp_path: Path) -> Iterator[ProviderProc]:
    p = ProviderProc(tmp_path / "rogue").start()  # same default name, different key
    yield p
    p.stop()


@pytest.fixture
async def udp_gateway(genuine: ProviderProc) -> AsyncIterator[tuple[NoticeListeners, MemorySink]]:
    sink = MemorySink()
    cfg = ListenerConfig(
        genuine.url,
        load_pinned_key(genuine.key_text),
        stream=False,
        poll=False,
        udp_listen=("127.0.0.1", 0),
    )
    listeners = NoticeListeners(cfg, sink)
    await listeners.start()
    yield listeners, sink
    await listeners.aclose()


def send_udp(addr: tuple[str, int], data: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(data, addr)


async def test_rogue_provider_over_stream_and_poll(
    genuine: ProviderProc, rogue: ProviderProc
) -> None:
    rogue.declare("Fake.Outbreak")
    sink = MemorySink()
    # The gateway pins the genuine key but is pointed (DNS spoofing, MITM) at the rogue server.
    cfg = ListenerConfig(rogue.url, load_pinned_key(genuine.key_text), poll_interval=3600)
    listeners = NoticeListeners(cfg, sink)
    await listeners.start()
    try:
        await eventually(lambda: listeners.verifier.counts[("poll", "unknown_key")] >= 1)
        await eventually(lambda: listeners.verifier.counts[("stream", "unknown_key")] >= 1)
        await eventually(lambda: listeners.verifier.counts[("state", "unknown_key")] >= 1)
        assert sink.outbreaks == {}
        assert sink.receipts == []
        assert listeners.verifier.last_seq == 0
        assert listeners.stale()  # nothing valid heard: silence is reported, not trusted
    finally:
        await listeners.aclose()


async def test_forged_udp_datagrams(udp_gateway: tuple[NoticeListeners, MemorySink]) -> None:
    listeners, sink = udp_gateway
    assert listeners.udp_address is not None
    pinned = listeners.config.pinned
    attacker = Ed25519PrivateKey.generate()
    addr = listeners.udp_address
    now_env = envelope(
        attacker, 1, spec(), provider=pinned.provider, issued=listeners.verifier.clock()
    )
    send_udp(addr, now_env)  # unknown key
    obj = json.loads(now_env)
    obj["signatures"][0]["keyid"] = pinned.keyid  # claims the pinned key: bad signature
    send_udp(addr, json.dumps(obj).encode())
    obj["signatures"] = []
    send_udp(addr, json.dumps(obj).encode())  # unsigned
    send_udp(addr, b"{" + b" " * 1300 + b"}")  # oversize for UDP, refused before parsing
    send_udp(addr, b"\x00garbage")
    counts = listeners.verifier.counts
    await eventually(lambda: sum(v for (t, _), v in counts.items() if t == "udp") >= 5)
    assert counts[("udp", "unknown_key")] == 1
    assert counts[("udp", "bad_signature")] == 1
    assert counts[("udp", "unsigned")] == 1
    assert counts[("udp", "oversize")] == 1
    assert counts[("udp", "malformed")] == 1
    assert sink.outbreaks == {}
    assert sink.receipts == []


async def test_forged_control_mail(genuine: ProviderProc) -> None:
    sink = MemorySink()
    pinned = load_pinned_key(genuine.key_text)
    listeners = NoticeListeners(ListenerConfig(genuine.url, pinned, stream=False, poll=False), sink)
    await listeners.start()
    try:
        attacker = Ed25519PrivateKey.generate()
        env = envelope(
            attacker, 1, spec(), provider=pinned.provider, issued=listeners.verifier.clock()
        )
        # Headers claim the genuine provider; only the signature counts.
        msg = notice_mail(env, 1, pinned.provider, "notices@gw.example")
        out = await listeners.mail.handle(msg.as_bytes())
        assert [o.reason for o in out] == ["unknown_key"]
        plain = b"From: zerohour-lab notices <notices@zerohour-lab.invalid>\r\n\r\nend ob-1\r\n"
        out = await listeners.mail.handle(plain)
        assert [o.reason for o in out] == ["no_notice"]
        assert sink.receipts == []
    finally:
        await listeners.aclose()


async def test_tampered_genuine_notice(
    genuine: ProviderProc, udp_gateway: tuple[NoticeListeners, MemorySink]
) -> None:
    import httpx

    listeners, sink = udp_gateway
    genuine.declare("Real.Worm")
    env = httpx.get(f"{genuine.url}/v1/notices").json()["notices"][0]
    payload = json.loads(base64.b64decode(env["payload"]))
    payload["b"]["sc"] = {"has_attachment": True}
    payload["b"]["n"] = "Tampered"
    env["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    assert listeners.udp_address is not None
    send_udp(listeners.udp_address, json.dumps(env).encode())
    await eventually(lambda: listeners.verifier.counts[("udp", "bad_signature")] == 1)
    assert sink.outbreaks == {}
    await asyncio.sleep(0)
