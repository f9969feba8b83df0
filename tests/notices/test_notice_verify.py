"""verify-and-apply: ordering, replay, expiry, provider, rotation, catch-up, failure atomicity."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from notices.support import PROVIDER, T0, Clock, MemorySink, envelope, pinned, spec
from zerohour.errors import NoticeError
from zerohour.notices.keys import keyid_of, raw_public
from zerohour.notices.model import OutbreakSpec
from zerohour.notices.payload import (
    Heartbeat,
    KeyRotated,
    NoticeType,
    OutbreakEnded,
    PollHint,
    ProviderState,
    SignaturesPublished,
    build_payload,
    parse_payload,
)
from zerohour.notices.verify import NoticeVerifier, Result, Transport

D = NoticeType.OUTBREAK_DECLARED
SIG = SignaturesPublished(2, "/v1/signatures/2/manifest.json", "a" * 64, 100, ("ob-1",))


def make(key: Ed25519PrivateKey, clock: Clock) -> tuple[NoticeVerifier, MemorySink, list[int]]:
    sink = MemorySink()
    gaps: list[int] = []
    v = NoticeVerifier(pinned(key), sink, clock=clock, on_gap=gaps.append)
    return v, sink, gaps


async def test_declare_update_end_in_order(key: Ed25519PrivateKey, clock: Clock) -> None:
    v, sink, _ = make(key, clock)
    assert (await v.submit(envelope(key, 1, spec()), Transport.POLL)).result is Result.APPLIED
    upd = OutbreakSpec("ob-1", "Test.Worm.B")
    await v.submit(envelope(key, 2, upd, NoticeType.OUTBREAK_UPDATED), Transport.STREAM)
    assert sink.outbreaks["ob-1"].name == "Test.Worm.B"
    await v.submit(
        envelope(key, 3, OutbreakEnded("ob-1", "done"), NoticeType.OUTBREAK_ENDED), Transport.UDP
    )
    assert sink.outbreaks == {}
    assert sink.ended == [("ob-1", "done")]
    assert v.last_seq == 3 == sink.ledger.last_seq
    assert [r.transport for r in sink.receipts] == ["poll", "stream", "udp"]
    assert v.counts[("udp", "applied")] == 1


async def test_duplicate_is_a_counted_no_op_logged_at_debug(
    key: Ed25519PrivateKey, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A notice heard on both stream and poll is normal: counted `duplicate`, logged at debug,
    never a warning and never counted as a refusal (issue 9, section 4)."""
    v, sink, _ = make(key, clock)
    env = envelope(key, 1, spec())
    await v.submit(env, Transport.STREAM)
    caplog.set_level("DEBUG", logger="zerohour.notices")
    out = await v.submit(env, Transport.POLL)
    assert out.result is Result.DUPLICATE
    assert len(sink.receipts) == 1
    assert v.counts[("poll", "duplicate")] == 1
    assert ("poll", "replayed") not in v.counts
    assert v.rejected_total() == 0
    assert [r.levelname for r in caplog.records if "notice." in r.getMessage()] == ["DEBUG"]


async def test_same_seq_different_content_is_logged_as_attack(
    key: Ed25519PrivateKey, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    v, sink, _ = make(key, clock)
    await v.submit(envelope(key, 1, spec()), Transport.STREAM)
    out = await v.submit(envelope(key, 1, spec(name="Other")), Transport.STREAM)
    assert (out.result, out.reason) == (Result.REJECTED, "replay_conflict")
    assert sink.outbreaks["ob-1"].name == "Test.Worm"
    assert "notice.replay_conflict" in caplog.text
    assert {r.levelname for r in caplog.records} >= {"ERROR", "WARNING"}
    assert v.rejected_total() == 1


async def test_gap_waits_polls_then_drains(key: Ed25519PrivateKey, clock: Clock) -> None:
    v, sink, gaps = make(key, clock)
    out = await v.submit(envelope(key, 2, spec("ob-2")), Transport.UDP)
    assert (out.result, out.reason) == (Result.PENDING, "out_of_order")
    assert sink.outbreaks == {}
    assert gaps == [0]
    await v.submit(envelope(key, 1, spec("ob-1")), Transport.POLL)
    assert set(sink.outbreaks) == {"ob-1", "ob-2"}
    assert [r.seq for r in sink.receipts] == [1, 2]


@pytest.mark.parametrize(
    ("issued", "reason"),
    [(T0 - timedelta(hours=2), "expired"), (T0 + timedelta(minutes=10), "future")],
)
async def test_time_window(
    key: Ed25519PrivateKey, clock: Clock, issued: object, reason: str
) -> None:
    v, sink, _ = make(key, clock)
    out = await v.submit(envelope(key, 1, spec(), issued=issued), Transport.STREAM)  # type: ignore[arg-type]
    assert out.reason == reason
    assert sink.outbreaks == {}
    assert v.last_seq == 0


async def test_clock_skew_tolerated(key: Ed25519PrivateKey, clock: Clock) -> None:
    v, _sink, _ = make(key, clock)
    issued = T0 + timedelta(minutes=4)  # ahead, within the 5 min skew
    assert (await v.submit(envelope(key, 1, spec(), issued=issued), Transport.STREAM)).result is (
        Result.APPLIED
    )


async def test_wrong_provider_and_unknown_key(key: Ed25519PrivateKey, clock: Clock) -> None:
    v, sink, _ = make(key, clock)
    out = await v.submit(envelope(key, 1, spec(), provider="evil-av"), Transport.STREAM)
    assert out.reason == "wrong_provider"
    out = await v.submit(envelope(Ed25519PrivateKey.generate(), 1, spec()), Transport.STREAM)
    assert out.reason == "unknown_key"
    assert sink.outbreaks == {}
    assert v.counts[("stream", "unknown_key")] == 1


async def test_invalid_body_refused_whole(key: Ed25519PrivateKey, clock: Clock) -> None:
    v, sink, _ = make(key, clock)
    payload = json.loads(
        build_payload(
            provider=PROVIDER,
            seq=1,
            type=D,
            issued_at=T0,
            expires_at=T0 + timedelta(hours=1),
            body=spec(),
            version=1,
        )
    )
    payload["body"]["mode"] = "delete-all"
    from zerohour.notices.envelope import sign

    out = await v.submit(sign(json.dumps(payload).encode(), key).to_bytes(), Transport.STREAM)
    assert out.reason == "invalid_body"
    payload["body"]["mode"] = "hold"
    payload["extra"] = 1
    out = await v.submit(sign(json.dumps(payload).encode(), key).to_bytes(), Transport.STREAM)
    assert out.reason == "invalid_body"
    assert sink.outbreaks == {}


async def test_signatures_version_must_increase(key: Ed25519PrivateKey, clock: Clock) -> None:
    v, sink, _ = make(key, clock)
    await v.submit(envelope(key, 1, spec()), Transport.STREAM)
    P = NoticeType.SIGNATURES_PUBLISHED
    assert (await v.submit(envelope(key, 2, SIG, P), Transport.STREAM)).result is Result.APPLIED
    assert sink.outbreaks == {}
    assert v.signatures_version == 2
    older = SignaturesPublished(1, SIG.manifest_url, SIG.manifest_sha256, 100, ())
    out = await v.submit(envelope(key, 3, older, P), Transport.STREAM)
    assert out.reason == "stale_signatures"
    assert len(sink.published) == 1
    assert v.last_seq == 3  # authentic and in order: skipped, so later notices are not stuck
    assert (await v.submit(envelope(key, 4, spec("ob-4")), Transport.STREAM)).result is (
        Result.APPLIED
    )


async def test_sink_failure_does_not_advance(key: Ed25519PrivateKey, clock: Clock) -> None:
    v, sink, _ = make(key, clock)
    sink.fail_next = True
    out = await v.submit(envelope(key, 1, spec()), Transport.STREAM)
    assert out.reason == "apply_failed"
    assert v.last_seq == 0
    assert sink.outbreaks == {}
    assert (await v.submit(envelope(key, 1, spec()), Transport.POLL)).result is Result.APPLIED


async def test_key_rotation(key: Ed25519PrivateKey, clock: Clock) -> None:
    v, sink, _ = make(key, clock)
    nxt = Ed25519PrivateKey.generate()
    rot = KeyRotated(
        base64.b64encode(raw_public(nxt.public_key())).decode(),
        keyid_of(nxt.public_key()),
        T0 + timedelta(minutes=30),
    )
    # A rotation signed by an unknown key is refused.
    out = await v.submit(envelope(nxt, 1, rot, NoticeType.KEY_ROTATED), Transport.STREAM)
    assert out.reason == "unknown_key"
    await v.submit(envelope(key, 1, rot, NoticeType.KEY_ROTATED), Transport.STREAM)
    assert sink.ledger.rotations == (rot,)
    # Before valid_from only the current key is accepted.
    out = await v.submit(envelope(nxt, 2, spec()), Transport.STREAM)
    assert out.reason == "unknown_key"
    clock.now = T0 + timedelta(hours=1)
    new_issued = clock.now
    # After the handover the old key is retired...
    out = await v.submit(envelope(key, 2, spec(), issued=new_issued), Transport.STREAM)
    assert out.reason == "unknown_key"
    # ...and the next key is accepted.
    out = await v.submit(envelope(nxt, 2, spec(), issued=new_issued), Transport.STREAM)
    assert out.result is Result.APPLIED
    # A restarted verifier (same sink) still knows the rotation.
    v2 = NoticeVerifier(pinned(key), sink, clock=clock)
    out = await v2.submit(envelope(nxt, 3, spec("ob-3"), issued=new_issued), Transport.STREAM)
    assert out.result is Result.APPLIED


async def test_key_rotation_needs_matching_keyid(key: Ed25519PrivateKey) -> None:
    nxt = Ed25519PrivateKey.generate()
    body = {
        "next_public_key": base64.b64encode(raw_public(nxt.public_key())).decode(),
        "next_keyid": "0" * 64,
        "valid_from": "2026-11-29T01:00:00Z",
    }
    with pytest.raises(NoticeError, match="next_keyid"):
        KeyRotated.from_json(body)


async def test_heartbeat_and_hint_trigger_gap_poll(key: Ed25519PrivateKey, clock: Clock) -> None:
    v, _, gaps = make(key, clock)
    hb = Heartbeat(3, ("ob-1",), 0)
    out = await v.submit(envelope(key, 3, hb, NoticeType.HEARTBEAT), Transport.STREAM)
    assert out.result is Result.INFO
    assert v.behind
    assert gaps == [0]
    await v.submit(envelope(key, 4, PollHint(3), NoticeType.POLL_HINT), Transport.UDP)
    assert len(gaps) == 2
    assert v.head_seq == 4
    assert v.last_heard.keys() == {"stream", "udp"}


async def test_catch_up_converges_to_signed_state(key: Ed25519PrivateKey, clock: Clock) -> None:
    v, sink, _ = make(key, clock)
    await v.submit(envelope(key, 1, spec("ob-1")), Transport.STREAM)
    await v.submit(envelope(key, 2, spec("ob-2")), Transport.STREAM)
    # While down, ob-1 ended (seq 3, expired by now) and ob-3 was declared (seq 4).
    clock.now = T0 + timedelta(hours=5)
    old = envelope(key, 3, OutbreakEnded("ob-1", "x"), NoticeType.OUTBREAK_ENDED)
    assert (await v.submit(old, Transport.POLL)).reason == "expired"
    state = ProviderState(4, (spec("ob-2"), spec("ob-3")), SIG)
    out = await v.submit(
        envelope(key, 4, state, NoticeType.STATE, issued=clock.now, lifetime=timedelta(minutes=5)),
        Transport.STATE,
    )
    assert out.result is Result.APPLIED
    assert set(sink.outbreaks) == {"ob-2", "ob-3"}
    assert v.last_seq == 4
    assert v.signatures_version == 2
    assert not v.behind
    # An older state (replayed) changes nothing.
    stale = ProviderState(2, (spec("ob-1"),), None)
    out = await v.submit(
        envelope(key, 2, stale, NoticeType.STATE, issued=clock.now), Transport.STATE
    )
    assert out.result is Result.INFO
    assert set(sink.outbreaks) == {"ob-2", "ob-3"}


def test_payload_roundtrip_and_strictness() -> None:
    raw = build_payload(
        provider=PROVIDER,
        seq=7,
        type=NoticeType.SIGNATURES_PUBLISHED,
        issued_at=T0,
        expires_at=T0 + timedelta(hours=1),
        body=SIG,
        version=1,
    )
    n = parse_payload(raw)
    assert n.body == SIG
    assert n.seq == 7
    obj = json.loads(raw)
    for mutate in (
        lambda o: o.update(v=3),
        lambda o: o.update(v=2),  # v2 names the fields differently
        lambda o: o.update(seq=0),
        lambda o: o.update(seq=True),
        lambda o: o.update(expires_at=o["issued_at"]),
        lambda o: o.update(issued_at="yesterday"),
        lambda o: o["body"].update(manifest_sha256="XYZ"),
        lambda o: o["body"].update(covers="ob-1"),
        lambda o: o["body"].pop("version"),
        lambda o: o.update(type="outbreak.deleted"),
    ):
        bad = json.loads(json.dumps(obj))
        mutate(bad)
        with pytest.raises(NoticeError):
            parse_payload(json.dumps(bad).encode())
