"""Long lines: RFC 5321 §4.5.3.1.6 allows 1000 octets per line on the wire. A gateway that
says 250 to a message with longer lines must still be able to pass it on: Postfix folds such
lines when it relays (smtp_line_length_limit = 998). The alternative is refusing the message
at receipt. Accepting it and then bouncing it (or losing it) is the one wrong answer.

The next hop here is a strict RFC server (aiosmtpd: "500 Line too long").
"""

from __future__ import annotations

import pytest

from helpers.gateway import GatewayFactory, GatewayProcess, requires_gateway_marks
from helpers.net import wait_until
from helpers.sinks import RecordingSink
from helpers.smtp import RawSmtp

pytestmark = requires_gateway_marks()


@pytest.fixture(scope="module")
def gw(module_gateway_factory: GatewayFactory, module_sink: RecordingSink) -> GatewayProcess:
    return module_gateway_factory(next_hop=module_sink.address)


@pytest.mark.parametrize("length", [1500, 100_000])
def test_long_line_is_refused_or_delivered_folded(
    gw: GatewayProcess, fresh_sink: RecordingSink, length: int
) -> None:
    mid = f"<long-{length}@e2e.test>"
    with RawSmtp(gw.port) as raw:
        raw.hello()
        assert raw.cmd("MAIL FROM:<alice@sender.test>").code == 250
        assert raw.cmd("RCPT TO:<bob@example.test>").code == 250
        assert raw.cmd("DATA").code == 354
        raw.send(
            f"Subject: long line\r\nMessage-ID: {mid}\r\n\r\n".encode()
            + b"A" * length
            + b"\r\n.\r\n"
        )
        reply = raw.reply(timeout=60)
    if reply.code != 250:
        assert 500 <= reply.code < 600, str(reply)  # refused at receipt: fine
        return
    assert wait_until(lambda: fresh_sink.messages, timeout=60), "accepted, never passed on"
    got = fresh_sink.messages[0]
    bounced = "report" in (got.header("Content-Type") or "")
    assert not bounced, (
        "250 at receipt, then bounced by a strict next hop: fold long lines when relaying "
        f"(Postfix smtp_line_length_limit) or refuse at receipt.\n{got.data[:1500]!r}"
    )
    assert got.message_id == mid
    assert max(len(line) for line in got.data.split(b"\r\n")) <= 998
    assert got.data.replace(b"\r\n ", b"").replace(b"\r\n", b"").count(b"A") >= length
