"""Oversize messages: 552 5.3.4 (RFC 3463 "message too big for system"), nothing delivered.

Checked twice, as Postfix does: at MAIL FROM when the client declares SIZE=, and at the end of
DATA when it does not.
"""

from __future__ import annotations

import re
import time

from helpers.gateway import GatewayFactory, gateway_toml, requires_gateway_marks
from helpers.messages import clean_message, wire_bytes
from helpers.sinks import RecordingSink
from helpers.smtp import ConnectionClosed, RawSmtp

pytestmark = requires_gateway_marks()

LIMIT = 100_000


def start(gateway_factory: GatewayFactory, sink: RecordingSink) -> int:
    gw = gateway_factory(
        next_hop=sink.address, config_toml=gateway_toml(smtp={"max_message_size": LIMIT})
    )
    return gw.port


def test_size_is_advertised(gateway_factory: GatewayFactory, sink: RecordingSink) -> None:
    with RawSmtp(start(gateway_factory, sink)) as raw:
        ehlo = raw.hello()
    sizes = re.findall(r"^SIZE (\d+)$", ehlo.text, re.MULTILINE)
    assert sizes == [str(LIMIT)], ehlo.text


def test_declared_size_over_limit_gets_552(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    with RawSmtp(start(gateway_factory, sink)) as raw:
        raw.hello()
        reply = raw.cmd(f"MAIL FROM:<alice@sender.test> SIZE={LIMIT * 2}")
        assert (reply.code, reply.enhanced) == (552, "5.3.4"), str(reply)


def test_undeclared_oversize_data_gets_552(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    port = start(gateway_factory, sink)
    big = clean_message(body=("x" * 76 + "\n") * (LIMIT // 50))
    with RawSmtp(port) as raw:
        raw.hello()
        assert raw.cmd("MAIL FROM:<alice@sender.test>").code == 250
        assert raw.cmd("RCPT TO:<bob@example.test>").code == 250
        assert raw.cmd("DATA").code == 354
        try:
            raw.send(wire_bytes(big) + b".\r\n")
            reply = raw.reply(timeout=30)
        except (ConnectionClosed, BrokenPipeError, ConnectionResetError) as exc:
            raise AssertionError(f"closed instead of answering 552: {exc!r}") from exc
        assert (reply.code, reply.enhanced) == (552, "5.3.4"), str(reply)
    time.sleep(0.5)
    assert sink.messages == []


def test_message_at_the_limit_is_accepted(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    """The limit is a limit, not a reason to refuse everything: a smaller message passes."""
    port = start(gateway_factory, sink)
    msg = clean_message(body=("y" * 76 + "\n") * (LIMIT // 100))
    with RawSmtp(port) as raw:
        raw.hello()
        assert raw.cmd(f"MAIL FROM:<alice@sender.test> SIZE={len(wire_bytes(msg))}").code == 250
        assert raw.cmd("RCPT TO:<bob@example.test>").code == 250
        assert raw.cmd("DATA").code == 354
        raw.send(wire_bytes(msg) + b".\r\n")
        assert raw.reply(timeout=30).code == 250
    assert sink.wait_for(1)
