"""Key rotation and catch-up after downtime, against a real provider process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from notices.support import MemorySink, ProviderProc, envelope, eventually, spec
from zerohour.gateway.listeners.service import ListenerConfig, NoticeListeners
from zerohour.notices.keys import load_key, load_pinned_key
from zerohour.notices.verify import Result, Transport


async def test_key_rotation_end_to_end(provider_proc: ProviderProc) -> None:
    old_text = provider_proc.key_text
    sink = MemorySink()
    listeners = NoticeListeners(
        ListenerConfig(provider_proc.url, load_pinned_key(old_text), poll=False), sink
    )
    await listeners.start()
    try:
        res = provider_proc.lab("key", "rotate")
        new_text = res.stdout.strip().splitlines()[-1]
        assert new_text != old_text
        assert provider_proc.lab("key", "show").stdout.strip().splitlines()[-1] == new_text
        oid = provider_proc.declare("After.Rotation")
        await eventually(lambda: oid in sink.outbreaks)
        assert len(sink.ledger.rotations) == 1
        # Ten minutes on (past handover + skew): the old key is retired at the gateway.
        later = datetime.now(UTC) + timedelta(minutes=10)
        listeners.verifier.clock = lambda: later
        old_key = load_key(provider_proc.data_dir)
        forged = envelope(old_key, 3, spec("ob-old"), provider="zerohour-lab", issued=later)
        out = await listeners.verifier.submit(forged, Transport.UDP)
        assert out.reason == "unknown_key"
        # The provider signs with the new key: still accepted.
        oid2 = provider_proc.declare("Still.Trusted")
        await eventually(lambda: oid2 in sink.outbreaks)
        assert "ob-old" not in sink.outbreaks
    finally:
        await listeners.aclose()


async def test_catch_up_after_downtime_converges_via_state(provider_proc: ProviderProc) -> None:
    # While the gateway was down: A declared (short-lived notice), B declared, A ended.
    a = provider_proc.declare("A", "--expires", "1s")
    b = provider_proc.declare("B", "--expires", "1s")
    provider_proc.lab("outbreak", "end", a)
    c = provider_proc.declare("C")
    sink = MemorySink()
    listeners = NoticeListeners(
        ListenerConfig(
            provider_proc.url,
            load_pinned_key(provider_proc.key_text),
            stream=False,
            skew=timedelta(0),
            poll_interval=3600,
        ),
        sink,
    )
    later = datetime.now(UTC) + timedelta(seconds=30)  # the 1 s notices have expired
    listeners.verifier.clock = lambda: later
    await listeners.start()
    try:
        await eventually(lambda: listeners.poller.completed >= 1)
        counts = listeners.verifier.counts
        assert counts[("poll", "expired")] >= 1
        assert counts[("state", "applied")] == 1
        assert set(sink.outbreaks) == {b, c}
        assert listeners.verifier.last_seq == 4
        assert not listeners.verifier.behind
        out = await listeners.verifier.submit(b"{}", Transport.POLL)
        assert out.result is Result.REJECTED
    finally:
        await listeners.aclose()
