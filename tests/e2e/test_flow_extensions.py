"""ESMTP extensions end to end: PIPELINING (swaks --pipeline), SMTPUTF8 and 8BITMIME mail
delivered byte for byte, and a reused session carrying several messages."""

from __future__ import annotations

import smtplib
from pathlib import Path

from helpers.clients import swaks_send
from helpers.gateway import GatewayFactory, requires_gateway_marks
from helpers.messages import clean_message, new_message_id, wire_bytes
from helpers.net import LOCALHOST
from helpers.sinks import RecordingSink

pytestmark = requires_gateway_marks()


def test_swaks_pipelining(
    gateway_factory: GatewayFactory, sink: RecordingSink, tmp_path: Path
) -> None:
    gw = gateway_factory(next_hop=sink.address)
    msg = clean_message(subject="pipelined")
    data = tmp_path / "m.eml"
    data.write_bytes(msg.as_bytes())
    reply, done = swaks_send(gw.port, data, extra=["--pipeline"])
    assert reply.code == 250, done.stdout
    lines = [line[:2] for line in done.stdout.splitlines()]
    mail = next(i for i, line in enumerate(done.stdout.splitlines()) if "MAIL FROM" in line)
    assert lines[mail + 1] == " -", "swaks did not pipeline MAIL and RCPT"
    assert not sink.wait_for_ids({str(msg["Message-ID"])})


def test_smtputf8_and_8bit_body_arrive_intact(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    gw = gateway_factory(next_hop=sink.address)
    mid = new_message_id("utf8")
    body = "Grüße aus Zürich, 東京 — ok\r\n"
    raw = (
        f"From: jörg@sender.test\r\nTo: bob@example.test\r\nSubject: Grüße\r\n"
        f"Message-ID: {mid}\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"{body}"
    ).encode()
    with smtplib.SMTP(LOCALHOST, gw.port, timeout=30) as client:
        client.ehlo("utf8.e2e.test")
        assert client.has_extn("smtputf8")
        assert client.has_extn("8bitmime")
        client.sendmail(
            "jörg@sender.test",
            ["bob@example.test"],
            raw,
            mail_options=["SMTPUTF8", "BODY=8BITMIME"],
        )
    assert not sink.wait_for_ids({mid})
    got = next(m for m in sink.messages if m.message_id == mid)
    assert got.mail_from == "jörg@sender.test"
    assert body.encode() in got.data


def test_one_session_many_messages(gateway_factory: GatewayFactory, sink: RecordingSink) -> None:
    gw = gateway_factory(next_hop=sink.address)
    sent = [clean_message(subject=f"reuse {i}") for i in range(10)]
    with smtplib.SMTP(LOCALHOST, gw.port, timeout=30) as client:
        for msg in sent:
            client.sendmail("alice@sender.test", ["bob@example.test"], wire_bytes(msg))
    assert not sink.wait_for_ids({str(m["Message-ID"]) for m in sent})
