"""Permanent failure at the next hop: per-recipient results and an RFC 3464 DSN to the sender.

The next hop refuses one of two recipients with 550; the other one gets the message, and the
sender gets a delivery status notification (null envelope sender, multipart/report) naming only
the refused recipient.
"""

from __future__ import annotations

from helpers.clients import smtplib_send
from helpers.gateway import GatewayFactory, gateway_toml, requires_gateway_marks
from helpers.messages import SENDER, clean_message
from helpers.net import wait_until
from helpers.sinks import ReceivedMessage, RecordingSink
from helpers.smtp import RawSmtp

pytestmark = requires_gateway_marks()


def is_dsn(m: ReceivedMessage) -> bool:
    return "report" in (m.header("Content-Type") or "").lower()


def test_refused_recipient_gets_dsn_and_other_recipient_the_message(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    sink.refuse_rcpts["gone@example.test"] = "550 5.1.1 <gone@example.test>: no such user"
    gw = gateway_factory(next_hop=sink.address)
    msg = clean_message(subject="two recipients")
    reply = smtplib_send(gw.port, msg, recipients=["bob@example.test", "gone@example.test"])
    assert reply.code == 250, str(reply)

    assert wait_until(lambda: any(is_dsn(m) for m in sink.messages), timeout=60), [
        (m.mail_from, m.rcpt_tos, m.header("Subject")) for m in sink.messages
    ]
    originals = [m for m in sink.messages if m.message_id == msg["Message-ID"]]
    assert [m.rcpt_tos for m in originals] == [("bob@example.test",)]

    dsns = [m for m in sink.messages if is_dsn(m)]
    assert len(dsns) == 1
    dsn = dsns[0]
    assert dsn.mail_from in ("", "<>"), "a DSN has the null envelope sender (RFC 3464/5321)"
    assert dsn.rcpt_tos == (SENDER,)
    content_type = (dsn.header("Content-Type") or "").lower()
    assert "multipart/report" in content_type
    assert "report-type=delivery-status" in content_type.replace('"', "")
    parts = {p.get_content_type(): p for p in dsn.message.walk()}
    assert "message/delivery-status" in parts
    status = dsn.data.decode("utf-8", "replace")
    assert "gone@example.test" in status
    assert "Action: failed" in status
    assert "Status: 5.1.1" in status
    # The recipient that was delivered is not reported as failed.
    assert "Final-Recipient: rfc822; bob@example.test" not in status


def test_no_dsn_for_a_null_sender(gateway_factory: GatewayFactory, sink: RecordingSink) -> None:
    """A bounce that bounces is dropped, never answered with another bounce (mail loops)."""
    sink.refuse_rcpts["gone@example.test"] = "550 5.1.1 <gone@example.test>: no such user"
    gw = gateway_factory(next_hop=sink.address)
    bounce = clean_message(subject="a bounce", sender="MAILER-DAEMON@sender.test")
    reply = smtplib_send(gw.port, bounce, sender="", recipients=["gone@example.test"])
    assert reply.code == 250, str(reply)
    probe = clean_message(subject="probe after the bounce")
    assert smtplib_send(gw.port, probe).code == 250
    assert not sink.wait_for_ids({str(probe["Message-ID"])})
    wait_until(lambda: False, timeout=2.0)  # time for a wrong DSN to be generated and sent
    assert [m for m in sink.messages if is_dsn(m)] == []


def test_null_reverse_path_is_accepted_and_delivered(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    """RFC 5321 §4.5.5: bounces (MAIL FROM:<>) must be accepted, or no DSN reaches the users."""
    gw = gateway_factory(next_hop=sink.address)
    with RawSmtp(gw.port) as raw:
        raw.hello()
        assert raw.cmd("MAIL FROM:<>").code == 250
        rcpt = raw.cmd("RCPT TO:<bob@example.test>")
        assert rcpt.code == 250, f"RCPT after MAIL FROM:<> refused: {rcpt}"
        assert raw.cmd("DATA").code == 354
        raw.send(b"Subject: a bounce\r\nMessage-ID: <null-sender@e2e.test>\r\n\r\nx\r\n.\r\n")
        assert raw.reply(timeout=30).code == 250
    assert not sink.wait_for_ids({"<null-sender@e2e.test>"})
    assert sink.messages[0].mail_from in ("", "<>")


def test_queue_lifetime_expiry_returns_a_dsn(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    """A recipient that only ever gets 4xx is given up after delivery.max_lifetime (Postfix:
    maximal_queue_lifetime) and the sender gets a failure DSN; the mail is not retried forever."""
    sink.refuse_rcpts["busy@example.test"] = "451 4.2.0 <busy@example.test>: mailbox busy"
    gw = gateway_factory(
        next_hop=sink.address, config_toml=gateway_toml(delivery={"max_lifetime": 3.0})
    )
    msg = clean_message(subject="never deliverable in time")
    assert smtplib_send(gw.port, msg, recipients=["busy@example.test"]).code == 250
    assert wait_until(lambda: any(is_dsn(m) for m in sink.messages), timeout=60), (
        "no DSN after the queue lifetime expired"
    )
    dsn = next(m for m in sink.messages if is_dsn(m))
    assert dsn.rcpt_tos == (SENDER,)
    status = dsn.data.decode("utf-8", "replace")
    assert "busy@example.test" in status
    assert "Action: failed" in status
    assert msg["Message-ID"] not in sink.message_ids()
