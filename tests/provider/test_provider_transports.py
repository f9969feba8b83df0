"""Each transport alone delivers a notice from a real provider process to a gateway listener.

The provider is `zerohour provider run` on 127.0.0.1 (ephemeral port); lab commands act on it
through its data folder; the gateway side is `NoticeListeners` over an in-memory `MemorySink`.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from conformance.samples import make_pe
from notices.support import MemorySink, ProviderProc, eventually
from zerohour.gateway.listeners.service import ListenerConfig, NoticeListeners
from zerohour.notices.keys import load_pinned_key


def config(p: ProviderProc, **kw: object) -> ListenerConfig:
    base: dict[str, object] = {
        "stream": False,
        "poll": False,
        "poll_interval": 3600.0,
        "identity_dir": p.data_dir.parent / "gateway",  # the gateway's key, hence its id
    }
    base.update(kw)
    return ListenerConfig(p.url, load_pinned_key(p.key_text), **base)  # type: ignore[arg-type]


def token(p: ProviderProc) -> str:
    return p.gateway_token()


@pytest.fixture
async def started() -> AsyncIterator[list[NoticeListeners]]:
    running: list[NoticeListeners] = []
    yield running
    for listeners in running:
        await listeners.aclose()


async def start(
    running: list[NoticeListeners], cfg: ListenerConfig
) -> tuple[NoticeListeners, MemorySink]:
    sink = MemorySink()
    listeners = NoticeListeners(cfg, sink)
    running.append(listeners)
    await listeners.start()
    return listeners, sink


async def test_poll_at_start_up(
    provider_proc: ProviderProc, started: list[NoticeListeners]
) -> None:
    oid = provider_proc.declare("Poll.Worm")
    listeners, sink = await start(started, config(provider_proc, poll=True))
    await eventually(lambda: oid in sink.outbreaks)
    assert listeners.verifier.counts[("poll", "applied")] == 1
    assert listeners.status()["last_seq"] == 1
    assert not listeners.stale()


async def test_stream_push_then_resume(
    provider_proc: ProviderProc, started: list[NoticeListeners]
) -> None:
    first = provider_proc.declare("Early.Worm")  # before connecting: replayed on connect
    listeners, sink = await start(started, config(provider_proc, stream=True))
    await eventually(lambda: first in sink.outbreaks)
    oid = provider_proc.declare("Stream.Worm")
    await eventually(lambda: oid in sink.outbreaks)
    provider_proc.lab("outbreak", "end", oid)
    await eventually(lambda: oid not in sink.outbreaks)
    assert listeners.verifier.counts[("stream", "applied")] == 3
    assert listeners.verifier.counts.get(("poll", "applied"), 0) == 0
    # Heartbeats arrive on an idle stream (provider runs with --heartbeat 0.5).
    await eventually(lambda: listeners.verifier.counts[("stream", "info")] >= 1)


async def test_stream_reconnects_after_provider_restart(
    tmp_path: Path, started: list[NoticeListeners]
) -> None:
    p = ProviderProc(tmp_path / "prov", ("--heartbeat", "0.5")).start()
    try:
        listeners, sink = await start(started, config(p, stream=True))
        a = p.declare("A.Worm")
        await eventually(lambda: a in sink.outbreaks)
        port = p.url.rsplit(":", 1)[1]
        p.stop()
        b = p.declare("B.Worm")  # written while the server is down
        p2 = ProviderProc(p.data_dir, ("--heartbeat", "0.5"), listen=f"127.0.0.1:{port}").start()
        try:
            await eventually(lambda: b in sink.outbreaks, timeout=60)
            assert listeners.stream.connects >= 2
            assert [r.seq for r in sink.receipts] == [1, 2]
        finally:
            p2.stop()
    finally:
        p.stop()


async def test_udp_datagram(provider_proc: ProviderProc, started: list[NoticeListeners]) -> None:
    listeners, sink = await start(
        started,
        config(provider_proc, udp_listen=("127.0.0.1", 0), subscription_token=token(provider_proc)),
    )
    oid = provider_proc.declare("Udp.Worm")
    await eventually(lambda: oid in sink.outbreaks)
    assert listeners.verifier.counts[("udp", "applied")] == 1


async def test_udp_alone_carries_a_one_sample_checksum_declaration(
    provider_proc: ProviderProc, started: list[NoticeListeners], tmp_path: Path
) -> None:
    """Protocol v2: a checksum declaration from one PE sample (sha256 + md5 + size of the file
    and of its two sections) fits one datagram, so UDP alone delivers it: no poll.hint, no
    stream, no poll (issue 9, section 4)."""
    listeners, sink = await start(
        started,
        config(provider_proc, udp_listen=("127.0.0.1", 0), subscription_token=token(provider_proc)),
    )
    exe = tmp_path / "evil.exe"
    exe.write_bytes(make_pe(b"\x90" * 100 + b"evil code", b"evil data"))
    oid = provider_proc.declare(
        "Udp.Sum.Worm",
        "--mode",
        "checksum",
        "--sample",
        str(exe),
        "--scope",
        "attachments,types=executable+archive",
    )
    await eventually(lambda: oid in sink.outbreaks)
    sums = sink.outbreaks[oid].checksums
    assert {(c.algo, c.part) for c in sums} == {
        (a, p) for a in ("sha256", "md5") for p in ("file", "pe-section:.text", "pe-section:.data")
    }
    whole = next(c for c in sums if c.part == "file" and c.algo == "sha256")
    assert whole.digest == hashlib.sha256(exe.read_bytes()).hexdigest()
    assert whole.size == exe.stat().st_size
    assert listeners.verifier.counts[("udp", "applied")] == 1
    assert listeners.verifier.counts.get(("udp", "info"), 0) == 0  # not a poll.hint


async def test_udp_too_large_becomes_poll_hint(
    provider_proc: ProviderProc, started: list[NoticeListeners], tmp_path: Path
) -> None:
    listeners, sink = await start(
        started,
        config(
            provider_proc,
            udp_listen=("127.0.0.1", 0),
            subscription_token=token(provider_proc),
            poll=True,
        ),
    )
    await eventually(lambda: listeners.poller.completed >= 1)
    samples = []
    for i in range(12):  # 24 checksums: too large for a datagram even in protocol v2
        f = tmp_path / f"s{i}.bin"
        f.write_bytes(b"sample %d" % i)
        samples += ["--sample", str(f)]
    oid = provider_proc.declare("Big.Worm", *samples)
    await eventually(lambda: oid in sink.outbreaks)
    assert len(sink.outbreaks[oid].checksums) == 24
    assert listeners.verifier.counts[("udp", "info")] == 1  # the poll.hint
    assert listeners.verifier.counts[("poll", "applied")] == 1
    assert listeners.verifier.counts.get(("udp", "oversize"), 0) == 0


async def test_email_to_control_address(
    provider_proc: ProviderProc, started: list[NoticeListeners]
) -> None:
    received: list[bytes] = []
    outcomes: list[object] = []
    listeners_box: list[NoticeListeners] = []

    class Handler:
        async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
            assert isinstance(envelope.content, bytes)
            received.append(envelope.content)
            outcomes.extend(await listeners_box[0].mail.handle(envelope.content))
            return "250 OK"

    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Handler()), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        listeners, sink = await start(
            started,
            config(
                provider_proc,
                control_address="notices@gw.example",
                control_smtp=f"127.0.0.1:{port}",
                subscription_token=token(provider_proc),
            ),
        )
        listeners_box.append(listeners)
        oid = provider_proc.declare("Mail.Worm")
        await eventually(lambda: oid in sink.outbreaks)
        assert listeners.verifier.counts[("mail", "applied")] == 1
        assert b"application/vnd.zerohour.notice+json" in received[0]
    finally:
        server.close()
        await server.wait_closed()


async def test_bad_requests_are_400(provider_proc: ProviderProc) -> None:
    async with httpx.AsyncClient() as client:
        auth = {"Authorization": f"Bearer {token(provider_proc)}"}
        for body in (
            {"udp": "x", "gateway_id": "a" * 64},
            {"udp": "127.0.0.1:9"},  # no gateway id
            {"gateway_id": "a" * 64},  # nothing to push to
            {"gateway_id": "a" * 64, "udp": "127.0.0.1:9", "extra": 1},
        ):
            r = await client.post(f"{provider_proc.url}/v1/subscriptions", json=body, headers=auth)
            assert r.status_code == 400, body
            assert r.json()["error"]
        r = await client.get(f"{provider_proc.url}/v1/notices", params={"after": "x"})
        assert r.status_code == 400
