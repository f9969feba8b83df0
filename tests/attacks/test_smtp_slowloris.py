"""Slow-loris sessions: an idle client (between commands, or in the middle of DATA) is
disconnected with 421 4.4.2 after the configured timeout (Postfix: smtpd_timeout), and a
half-sent message is never delivered."""

from __future__ import annotations

import time

from helpers.gateway import GatewayFactory, gateway_toml, requires_gateway_marks
from helpers.sinks import RecordingSink
from helpers.smtp import ConnectionClosed, RawSmtp

pytestmark = requires_gateway_marks()

TIMEOUT = 1.0


def timed_gateway(gateway_factory: GatewayFactory, sink: RecordingSink) -> int:
    config = gateway_toml(smtp={"command_timeout": TIMEOUT, "data_timeout": TIMEOUT})
    return gateway_factory(next_hop=sink.address, config_toml=config).port


def test_idle_session_gets_421_442(gateway_factory: GatewayFactory, sink: RecordingSink) -> None:
    with RawSmtp(timed_gateway(gateway_factory, sink)) as raw:
        raw.hello()
        reply = raw.reply(timeout=TIMEOUT * 15)  # say nothing; the server must speak first
        assert (reply.code, reply.enhanced) == (421, "4.4.2"), str(reply)
        assert raw.closed_by_peer(timeout=5)


def test_stalled_data_gets_421_and_is_not_delivered(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    with RawSmtp(timed_gateway(gateway_factory, sink)) as raw:
        raw.hello()
        assert raw.cmd("MAIL FROM:<alice@sender.test>").code == 250
        assert raw.cmd("RCPT TO:<bob@example.test>").code == 250
        assert raw.cmd("DATA").code == 354
        raw.send(b"Subject: never finished\r\n\r\nhalf a bod")
        reply = raw.reply(timeout=TIMEOUT * 15)
        assert (reply.code, reply.enhanced) == (421, "4.4.2"), str(reply)
        assert raw.closed_by_peer(timeout=5)
    time.sleep(0.5)
    assert sink.messages == []


def test_dribbling_client_is_still_cut_off(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    """The classic slow-loris keeps the socket busy with one byte at a time and never finishes
    a line; a per-read timer alone would never fire. The session must still end (421)."""
    with RawSmtp(timed_gateway(gateway_factory, sink)) as raw:
        raw.hello()
        deadline = time.monotonic() + TIMEOUT * 20
        closed = False
        while time.monotonic() < deadline:
            try:
                raw.send(b"N")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            try:
                reply = raw.reply(timeout=TIMEOUT / 4)
            except TimeoutError:
                continue
            except ConnectionClosed:
                closed = True
                break
            assert reply.code == 421, str(reply)
            closed = True
            break
        assert closed, "a client sending one byte per 250 ms kept its session open"
