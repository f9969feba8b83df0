"""The mail flow in process: SMTP in -> spool -> scan -> relay to a real aiosmtpd next hop."""

from __future__ import annotations

import asyncio
import smtplib
from pathlib import Path
from typing import Any

import pytest

from gateway.conftest import (
    Running,
    eicar_message,
    make_config,
    message,
    start_gateway,
    wait_for,
)
from zerohour.store.base import MessageFilter, MessageState, RecipientStatus


async def test_clean_mail_is_relayed_with_trace_header(gateway: Running, sink: Any) -> None:
    refused = await gateway.sendmail("a@sender.test", ["b@example.test"], message("clean one"))
    assert refused == {}
    got = await wait_for(lambda: sink.messages)
    assert len(got) == 1
    m = got[0]
    assert m.mail_from == "a@sender.test"
    assert m.rcpt_tos == ("b@example.test",)
    trace = m.header("X-Zerohour-Scan")
    assert trace is not None
    assert trace.startswith("clean; db=")
    assert m.header("Subject") == "clean one"
    store = gateway.gw.store
    assert store is not None
    recs = await store.list_messages(MessageFilter(states=(MessageState.DELIVERED,)))
    for _ in range(100):
        if recs:
            break
        await asyncio.sleep(0.05)
        recs = await store.list_messages(MessageFilter(states=(MessageState.DELIVERED,)))
    assert len(recs) == 1
    assert recs[0].recipients[0].status is RecipientStatus.DELIVERED
    events = [e.state for e in await store.events(recs[0].queue_id)]
    assert events == [MessageState.QUEUED, MessageState.DELIVERED]
    assert not await gateway.gw.bodies.exists(recs[0].queue_id)  # body removed once done


async def test_dot_stuffing_round_trips(gateway: Running, sink: Any) -> None:
    body = "line one\r\n.leading dot\r\n..two dots\r\n.\r\nnot the end\r\n"
    await gateway.sendmail("a@sender.test", ["b@example.test"], message("dots", body))
    got = await wait_for(lambda: sink.messages)
    assert got[0].data.endswith(body.encode())


async def test_eicar_is_rejected_with_554_naming_the_virus(gateway: Running, sink: Any) -> None:
    with pytest.raises(smtplib.SMTPDataError) as info:
        await gateway.sendmail("a@sender.test", ["b@example.test"], eicar_message())
    assert info.value.smtp_code == 554
    text = info.value.smtp_error.decode()
    assert text.startswith("5.7.1")
    assert "Eicar-Test-Signature" in text
    await asyncio.sleep(0.3)
    assert sink.messages == []
    store = gateway.gw.store
    assert store is not None
    recs = await store.list_messages(MessageFilter(states=(MessageState.REJECTED,)))
    assert len(recs) == 1
    assert recs[0].findings == ("Eicar-Test-Signature",)
    assert not await gateway.gw.bodies.exists(recs[0].queue_id)  # nothing kept of a virus


async def test_quarantine_policy_keeps_virus_and_replies_250(tmp_path: Path, sink: Any) -> None:
    run = await start_gateway(
        make_config(tmp_path / "d", sink.address, **{"scan.infected": "quarantine"})
    )
    try:
        refused = await run.sendmail("a@sender.test", ["b@example.test"], eicar_message())
        assert refused == {}
        store = run.gw.store
        assert store is not None
        recs = await store.list_messages(MessageFilter(states=(MessageState.QUARANTINED,)))
        assert len(recs) == 1
        assert "Eicar-Test-Signature" in recs[0].findings
        assert await run.gw.bodies.exists(recs[0].queue_id)
        await asyncio.sleep(0.3)
        assert sink.messages == []
    finally:
        await run.gw.stop()


async def test_discard_policy_accepts_and_drops(tmp_path: Path, sink: Any) -> None:
    run = await start_gateway(
        make_config(tmp_path / "d", sink.address, **{"scan.infected": "discard"})
    )
    try:
        assert await run.sendmail("a@sender.test", ["b@example.test"], eicar_message()) == {}
        await asyncio.sleep(0.3)
        assert sink.messages == []
        store = run.gw.store
        assert store is not None
        assert await store.count_messages(MessageFilter(states=(MessageState.DISCARDED,))) == 1
    finally:
        await run.gw.stop()


async def test_relay_denied_for_foreign_domain(gateway: Running) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        await gateway.sendmail("a@sender.test", ["victim@elsewhere.test"], message())
    code, text = info.value.recipients["victim@elsewhere.test"]
    assert code == 554
    assert text.decode().startswith("5.7.1")


async def test_trusted_network_may_relay_anywhere(tmp_path: Path, sink: Any) -> None:
    run = await start_gateway(
        make_config(tmp_path / "d", sink.address, **{"smtp.mynetworks": ["127.0.0.0/8"]})
    )
    try:
        assert await run.sendmail("a@sender.test", ["x@elsewhere.test"], message()) == {}
        assert await wait_for(lambda: sink.messages)
    finally:
        await run.gw.stop()


async def test_next_hop_down_then_up_delivers(tmp_path: Path, sink: Any) -> None:
    sink.stop()
    run = await start_gateway(make_config(tmp_path / "d", sink.address))
    try:
        assert await run.sendmail("a@sender.test", ["b@example.test"], message("later")) == {}
        store = run.gw.store
        assert store is not None

        async def deferred() -> bool:
            entries = await store.queue_entries()
            return bool(entries) and entries[0].attempts >= 1

        for _ in range(100):
            if await deferred():
                break
            await asyncio.sleep(0.05)
        entries = await store.queue_entries()
        assert entries
        assert entries[0].attempts >= 1
        assert "connect" in entries[0].last_error
        await asyncio.to_thread(sink.start)
        got = await wait_for(lambda: sink.messages, timeout=20)
        assert [m.header("Subject") for m in got] == ["later"]
    finally:
        await run.gw.stop()


class _PickySink:
    """A next hop that refuses DATA for b@example.test with 550 and keeps everything else."""

    def __init__(self) -> None:
        self.got: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if "b@example.test" in envelope.rcpt_tos:
            return "550 5.1.1 <b@example.test>: no such user"
        self.got.append(envelope)
        return "250 2.0.0 Ok"


async def test_5xx_from_next_hop_bounces_with_dsn(tmp_path: Path, unused_port: int) -> None:
    from aiosmtpd.controller import Controller

    picky = _PickySink()
    ctl = Controller(picky, hostname="127.0.0.1", port=unused_port)
    ctl.start()
    run = await start_gateway(make_config(tmp_path / "d", f"127.0.0.1:{unused_port}"))
    try:
        sent = await run.sendmail("a@sender.test", ["b@example.test"], message("doomed"))
        assert sent == {}
        store = run.gw.store
        assert store is not None
        got = await wait_for(lambda: picky.got, timeout=20)
        assert len(got) == 1
        dsn = got[0]
        assert dsn.mail_from in ("", "<>")  # aiosmtpd shows the null sender as "<>"
        assert dsn.rcpt_tos == ["a@sender.test"]
        import email

        msg = email.message_from_bytes(dsn.original_content)
        assert msg.get_content_type() == "multipart/report"
        assert msg.get_param("report-type") == "delivery-status"
        assert "message/delivery-status" in [p.get_content_type() for p in msg.walk()]
        assert b"Final-Recipient: rfc822; b@example.test" in dsn.original_content
        assert b"Status: 5.1.1" in dsn.original_content
        assert b"Subject: doomed" in dsn.original_content  # the original's headers
        mails = [r for r in await store.list_messages() if r.kind == "mail"]
        assert len(mails) == 1
        assert mails[0].state is MessageState.BOUNCED
        assert mails[0].recipients[0].status is RecipientStatus.BOUNCED
        assert "550" in mails[0].recipients[0].last_error
    finally:
        await run.gw.stop()
        ctl.stop()


async def test_spool_full_answers_452(tmp_path: Path, sink: Any) -> None:
    run = await start_gateway(
        make_config(tmp_path / "d", sink.address, spool_minfree=1 << 62)
    )
    try:
        with pytest.raises(smtplib.SMTPDataError) as info:
            await run.sendmail("a@sender.test", ["b@example.test"], message())
        assert info.value.smtp_code == 452
        assert info.value.smtp_error.decode().startswith("4.3.1")
        store = run.gw.store
        assert store is not None
        assert await store.count_messages() == 0
    finally:
        await run.gw.stop()


async def test_restart_recovers_unscanned_and_queued_mail(tmp_path: Path, sink: Any) -> None:
    """A message that got its 250 but was never scanned or delivered is finished after a
    restart: here the scan budget is 0, the next hop is down, and the gateway stops."""
    sink.stop()
    cfg = make_config(tmp_path / "d", sink.address, **{"scan.inline_budget": 0})
    run = await start_gateway(cfg)
    try:
        assert await run.sendmail("a@sender.test", ["b@example.test"], message("kept")) == {}
    finally:
        await run.gw.stop()
    await asyncio.to_thread(sink.start)
    run = await start_gateway(cfg)
    try:
        got = await wait_for(lambda: sink.messages, timeout=20)
        assert [m.header("Subject") for m in got] == ["kept"]
    finally:
        await run.gw.stop()


async def test_queue_lifetime_exceeded_bounces(tmp_path: Path, sink: Any) -> None:
    sink.stop()
    run = await start_gateway(
        make_config(tmp_path / "d", sink.address, **{"delivery.max_lifetime": 1.0})
    )
    try:
        assert await run.sendmail("a@sender.test", ["b@example.test"], message("stale")) == {}
        store = run.gw.store
        assert store is not None
        bounced: list[Any] = []
        for _ in range(200):
            bounced = [
                r
                for r in await store.list_messages(MessageFilter(states=(MessageState.BOUNCED,)))
                if r.kind == "mail"
            ]
            if bounced:
                break
            await asyncio.sleep(0.05)
        assert len(bounced) == 1
        assert bounced[0].recipients[0].last_error.startswith("queue lifetime exceeded")
        dsns = [r for r in await store.list_messages() if r.kind == "dsn"]
        assert [r.recipients[0].address for r in dsns] == ["a@sender.test"]
    finally:
        await run.gw.stop()


async def test_long_lines_are_folded_for_a_strict_next_hop(gateway: Running, sink: Any) -> None:
    """Lines up to `smtp.max_line_length` are accepted, then broken at 998 octets before the
    scan (the aiosmtpd next hop refuses lines over 1000 with 500)."""
    long_body = ("A" * 2000) + "\r\nshort\r\n"
    long_subject = "S" * 1200
    raw = message("x", long_body).replace(b"Subject: x", f"Subject: {long_subject}".encode())
    assert await gateway.sendmail("a@sender.test", ["b@example.test"], raw) == {}
    got = await wait_for(lambda: sink.messages)
    assert got
    lines = got[0].data.split(b"\r\n")
    assert max(len(x) for x in lines) <= 998
    assert b"".join(lines).count(b"A") == 2000
    assert got[0].message["Subject"].replace("\r\n", "").replace(" ", "") == long_subject


async def test_line_over_max_line_length_is_refused(gateway: Running, sink: Any) -> None:
    """`smtp.max_line_length` (2048) is enforced at receipt: 552 5.3.4, nothing kept."""
    raw = message("x", ("A" * 2_000_000) + "\r\n")
    with pytest.raises(smtplib.SMTPDataError) as err:
        await gateway.sendmail("a@sender.test", ["b@example.test"], raw)
    assert err.value.smtp_code == 552
    assert b"5.3.4" in err.value.smtp_error
    assert b"line length" in err.value.smtp_error
    assert gateway.gw.store is not None
    assert await gateway.gw.store.list_messages() == []


def test_fold_long_lines_leaves_normal_mail_alone() -> None:
    from zerohour.gateway.prepare import fold_long_lines

    body = message("normal")
    assert fold_long_lines(body) is body


async def test_small_and_large_bodies_are_kept_where_they_belong_and_delivered_intact(
    tmp_path: Path, sink: Any
) -> None:
    """A body up to 256 KiB is a row of the SQLite store, a larger one a spool file: both are
    delivered byte for byte and removed after, and kept ones survive a restart intact."""
    from zerohour.store.bodies import INLINE_MAX

    cfg = make_config(tmp_path / "d", sink.address, **{"scan.infected": "quarantine"})  # type: ignore[attr-defined]
    filler = ("L" * 70 + "\r\n") * (INLINE_MAX // 72 + 100)
    small, large = message("small", "s" * 70 + "\r\n"), message("large", filler)
    bad_small = eicar_message()
    bad_large = bad_small.replace(b"\r\n\r\n", b"\r\n\r\n" + filler.encode(), 1)
    assert len(small) < INLINE_MAX < len(large)
    assert len(bad_small) < INLINE_MAX < len(bad_large)
    run = await start_gateway(cfg)
    try:
        for raw in (small, large, bad_small, bad_large):
            assert await run.sendmail("a@sender.test", ["b@example.test"], raw) == {}
        got = await wait_for(lambda: sink.messages if len(sink.messages) == 2 else None)
        assert got
        by_subject = {m.header("Subject"): m for m in got}
        for name, raw in (("small", small), ("large", large)):
            assert by_subject[name].data.endswith(raw.split(b"\r\n\r\n", 1)[1])
        store = run.gw.store
        assert store is not None
        kept = await store.list_messages(MessageFilter(states=(MessageState.QUARANTINED,)))
        ids = {r.size > INLINE_MAX: r.queue_id for r in kept}
        assert len(ids) == 2
        assert await store.has_body(ids[False])  # type: ignore[attr-defined]
        assert not await store.has_body(ids[True])  # type: ignore[attr-defined]
        assert sorted(p.name for p in (cfg.spool_dir / "q").iterdir()) == [ids[True]]
    finally:
        await run.gw.stop()
    run = await start_gateway(cfg)
    try:
        for qid, raw in ((ids[False], bad_small), (ids[True], bad_large)):
            body = await run.gw.bodies.read(qid)
            assert body.startswith(b"Received: ")  # our trace header, then the message
            assert body.endswith(raw)
    finally:
        await run.gw.stop()
