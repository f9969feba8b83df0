"""Recipient flood: past the per-message limit RCPT gets 452 4.5.3 (RFC 5321 §4.5.3.1.10:
"too many recipients" is a temporary failure, so the client sends the rest later)."""

from __future__ import annotations

from helpers.gateway import GatewayFactory, gateway_toml, requires_gateway_marks
from helpers.sinks import RecordingSink
from helpers.smtp import RawSmtp

pytestmark = requires_gateway_marks()

LIMIT = 5


def test_recipients_beyond_limit_get_452_and_the_rest_is_delivered(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    gw = gateway_factory(
        next_hop=sink.address, config_toml=gateway_toml(smtp={"max_recipients": LIMIT})
    )
    with RawSmtp(gw.port) as raw:
        raw.hello()
        assert raw.cmd("MAIL FROM:<alice@sender.test>").code == 250
        for i in range(LIMIT):
            reply = raw.cmd(f"RCPT TO:<user{i}@example.test>")
            assert reply.code == 250, f"recipient {i}: {reply}"
        for i in range(LIMIT, LIMIT + 20):
            reply = raw.cmd(f"RCPT TO:<user{i}@example.test>")
            assert (reply.code, reply.enhanced) == (452, "4.5.3"), f"recipient {i}: {reply}"
        assert raw.cmd("DATA").code == 354
        raw.send(b"Subject: flood\r\nMessage-ID: <flood@e2e.test>\r\n\r\nhi\r\n.\r\n")
        assert raw.reply(timeout=30).code == 250
    delivered = sink.wait_for(1)
    rcpts = sorted(r for m in delivered for r in m.rcpt_tos)
    assert rcpts == sorted(f"user{i}@example.test" for i in range(LIMIT))
