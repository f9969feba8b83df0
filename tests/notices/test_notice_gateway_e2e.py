"""Outbreak end to end through the real gateway: a provider process, an in-process `Gateway`
with `NoticeWiring`, a real SMTP next hop. Declare → mail held → publish → infected quarantined,
clean delivered once; notices also arrive by control-address mail, which is never delivered."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import smtplib
from pathlib import Path
from typing import Any

import pytest

from helpers.net import free_port
from helpers.sinks import RecordingSink
from notices.support import ProviderProc, eventually
from zerohour import config
from zerohour.gateway.app import Gateway
from zerohour.gateway.listeners.wiring import NoticeWiring
from zerohour.store.base import MessageState

SAMPLE = b"\x00\x01zerohour outbreak sample\xff\xfe" * 20


def mail(subject: str, attachment: bytes | None) -> bytes:
    head = (
        f"From: a@sender.test\r\nTo: b@example.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject}@t>\r\nMIME-Version: 1.0\r\n"
    )
    if attachment is None:
        return (head + "\r\njust text\r\n").encode()
    b64 = base64.encodebytes(attachment).decode().replace("\n", "\r\n")
    return (
        head + "Content-Type: multipart/mixed; boundary=BB\r\n\r\n--BB\r\n"
        "Content-Type: text/plain\r\n\r\nsee attachment\r\n--BB\r\n"
        "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        'Content-Disposition: attachment; filename="x.bin"\r\n\r\n'
        f"{b64}--BB--\r\n"
    ).encode()


async def send(port: int, data: bytes) -> None:
    def go() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            s.sendmail("a@sender.test", ["b@example.test"], data)

    await asyncio.to_thread(go)


TRANSPORTS: dict[str, dict[str, Any]] = {
    "stream": {"stream": True, "poll": False},
    "poll": {"stream": False, "poll": True, "poll_interval": 0.3},
    "udp": {"stream": False, "poll": False, "udp_listen": "127.0.0.1:0"},
    "mail": {"stream": False, "poll": False, "control_address": "notices@example.test"},
}


@pytest.mark.parametrize("transport", list(TRANSPORTS))
async def test_declare_hold_publish_release(
    provider_proc: ProviderProc, tmp_path: Path, sink: RecordingSink, transport: str
) -> None:
    """Each transport alone (the others off): declare → held → publish → released."""
    flags: dict[str, Any] = {
        "data_dir": str(tmp_path / "gw"),
        "spool_minfree": 0,
        "smtp.listen": "127.0.0.1:0",
        "smtp.hostname": "gw.test",
        "smtp.relay_domains": ["example.test"],
        "smtp.mynetworks": ["192.0.2.0/24"],
        "scan.workers": 1,
        "delivery.next_hop": sink.address,
        "delivery.retry_min": 0.2,
        "delivery.retry_max": 0.5,
        "delivery.poll_interval": 0.05,
        "delivery.starttls": False,
    }
    extra: dict[str, Any] = {}
    if transport == "mail":  # the provider delivers control mail to this HOST:PORT
        flags["smtp.listen"] = extra["control_smtp"] = f"127.0.0.1:{free_port()}"
    notices = {
        "provider": provider_proc.url,
        "provider_key": provider_proc.key_text,
        "subscription_token": provider_proc.gateway_token(),
        **{"poll_interval": 3600, **TRANSPORTS[transport], **extra},
    }
    flags.update({f"notices.{k}": v for k, v in notices.items()})
    gw = Gateway(config.load(env={}, flags=flags))
    wiring = NoticeWiring(gw, gw.cfg.notices)
    _, port = await gw.start()
    try:
        listeners = await wiring.start()
        if listeners.config.poll:  # a declare racing the start-up poll would arrive as state
            await eventually(lambda: listeners.poller.completed >= 1)
        oid = provider_proc.declare("E2E.Worm")
        await eventually(lambda: gw.outbreaks.get(oid) is not None)
        await send(port, mail("clean", None))
        await send(port, mail("infected", SAMPLE))
        assert gw.store is not None
        store = gw.store

        async def held() -> int:
            return (await store.count_by_state()).get(MessageState.HELD, 0)

        for _ in range(400):
            if await held() == 2:
                break
            await asyncio.sleep(0.05)
        assert await held() == 2
        assert sink_messages(sink) == []  # nothing delivered while the outbreak holds

        hsb = tmp_path / "e2e.hsb"
        hsb.write_text(f"{hashlib.sha256(SAMPLE).hexdigest()}:{len(SAMPLE)}:Test.E2E.Worm\n")
        provider_proc.lab("signatures", "publish", str(hsb), "--covers", oid)
        await eventually(lambda: gw.outbreaks.installed_version == "1", timeout=60)
        # The bundle is installed first, then the covered outbreak ends in the same apply.
        await eventually(lambda: gw.outbreaks.get(oid) is None, timeout=30)

        async def states() -> dict[MessageState, int]:
            return await store.count_by_state()

        for _ in range(600):
            st = await states()
            if (
                st.get(MessageState.QUARANTINED) == 1
                and st.get(MessageState.HELD, 0) == 0
                and len(sink_messages(sink)) == 1
            ):
                break
            await asyncio.sleep(0.05)
        st = await states()
        assert st.get(MessageState.QUARANTINED) == 1
        assert st.get(MessageState.HELD, 0) == 0
        delivered = sink_messages(sink)
        assert len(delivered) == 1
        assert b"Subject: clean" in delivered[0]
        # Only the transport under test carried the notices (seq 1 and 2).
        counts = listeners.verifier.counts
        applied = {t for (t, r), n in counts.items() if r == "applied" and n}
        assert counts[(transport, "applied")] == 2, counts
        assert applied - {"state"} == {transport}, counts  # poller: start-up state
        # Control-address mail was consumed, never delivered.
        assert all(b"vnd.zerohour.notice" not in m for m in sink_messages(sink))
        # Refusals reach the store's notice log (what /metrics and the overview count).
        from zerohour.notices.verify import Transport

        await listeners.verifier.submit(b"not an envelope", Transport.UDP)
        for _ in range(100):
            log = await store.notice_log()
            if any(e.result == "malformed" and e.transport == "udp" for e in log):
                break
            await asyncio.sleep(0.05)
        assert any(e.result == "malformed" and e.transport == "udp" for e in log)
        assert any(e.result == "applied" and e.kind == "signatures.published" for e in log)
    finally:
        await wiring.aclose()
        await gw.stop()


def sink_messages(sink: RecordingSink) -> list[bytes]:
    return [m.data for m in sink.messages]
