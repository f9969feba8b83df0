"""Envelope addresses with control characters and sessions kept alive with junk commands, found
by a hostile-sender round against the running gateway:

- `MAIL FROM:<"a\x1bb"@evil.test>` got a 250, then failed every delivery attempt for five days
  (a spool-filling DoS); a bare CR inside a quoted local part was logged as one address and sent
  to the next hop as another. Postfix refuses both; so do we (501 5.1.7 / 501 5.1.3).
- 300 NOOPs in one session were all answered 250: nothing stopped a client holding a session
  forever. Postfix's smtpd_junk_command_limit (100) makes each junk command past the limit an
  error, and the error limit closes the session.
"""

from __future__ import annotations

import pytest

from helpers.gateway import GatewayFactory, GatewayProcess, gateway_toml, requires_gateway_marks
from helpers.sinks import RecordingSink
from helpers.smtp import ConnectionClosed, RawSmtp

pytestmark = requires_gateway_marks()


@pytest.fixture(scope="module")
def gw(module_gateway_factory: GatewayFactory, module_sink: RecordingSink) -> GatewayProcess:
    return module_gateway_factory(
        next_hop=module_sink.address,
        relay_domains=("example.com",),
        config_toml=gateway_toml(smtp={"junk_command_limit": 10, "max_errors": 5}),
    )


@pytest.mark.parametrize("ctl", [b"\x1b", b"\x00", b"\x7f", b"\r", b"\t"])
def test_control_characters_in_the_sender_are_refused(gw: GatewayProcess, ctl: bytes) -> None:
    with RawSmtp(gw.port) as s:
        s.hello()
        reply = s.cmd(b'MAIL FROM:<"a' + ctl + b'b"@evil.test>')
        assert reply.code == 501, reply
        assert "5.1.7" in reply.text


@pytest.mark.parametrize("ctl", [b"\x1b", b"\x00", b"\r"])
def test_control_characters_in_a_recipient_are_refused(gw: GatewayProcess, ctl: bytes) -> None:
    with RawSmtp(gw.port) as s:
        s.hello()
        assert s.cmd("MAIL FROM:<a@sender.test>").code == 250
        reply = s.cmd(b'RCPT TO:<"x' + ctl + b'q"@example.com>')
        assert reply.code == 501, reply
        assert "5.1.3" in reply.text
        assert s.cmd("RCPT TO:<bob@example.com>").code == 250  # the session goes on


def test_junk_commands_past_the_limit_end_the_session(gw: GatewayProcess) -> None:
    with RawSmtp(gw.port) as s:
        s.hello()
        for _ in range(10):  # within junk_command_limit: answered
            assert s.cmd("NOOP").code == 250
        codes = [s.cmd(verb).code for verb in ("NOOP", "RSET", "NOOP", "HELP", "NOOP")]
        assert codes[:-1] == [250, 250, 250, 250], codes
        assert codes[-1] == 421, codes  # the 5th error past the limit: max_errors
        with pytest.raises((ConnectionClosed, OSError)):
            s.cmd("NOOP", timeout=5)


def test_an_accepted_message_resets_the_junk_count(
    gw: GatewayProcess, module_sink: RecordingSink
) -> None:
    with RawSmtp(gw.port) as s:
        s.hello()
        for _ in range(10):
            assert s.cmd("NOOP").code == 250
        assert s.cmd("MAIL FROM:<a@sender.test>").code == 250
        assert s.cmd("RCPT TO:<bob@example.com>").code == 250
        assert s.cmd("DATA").code == 354
        s.send(b"Subject: reset\r\n\r\nhi\r\n.\r\n")
        assert s.reply().code == 250
        for _ in range(10):  # a fresh allowance
            assert s.cmd("NOOP").code == 250
