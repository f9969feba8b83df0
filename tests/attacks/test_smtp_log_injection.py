"""Log hygiene under attack: control characters a peer sends never reach the gateway's log
raw (terminal escapes, forged log lines), and message bodies are never logged at all."""

from __future__ import annotations

from helpers.clients import smtplib_send
from helpers.gateway import GatewayFactory, gateway_toml, requires_gateway_marks
from helpers.messages import clean_message
from helpers.sinks import RecordingSink
from helpers.smtp import RawSmtp

pytestmark = requires_gateway_marks()

DEBUG = gateway_toml(root={"log_level": "debug"})  # the most a log ever says
FORGED = "FAKE-LOG-LINE zerohour.gateway message.accepted"


def test_control_characters_from_peer_are_not_logged_raw(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    gw = gateway_factory(next_hop=sink.address, config_toml=DEBUG)
    with RawSmtp(gw.port) as raw:
        raw.hello(f"evil\x1b[31mred\rINFO {FORGED}")
        raw.cmd(f"BOGUS \x1b]0;title\x07 \r{FORGED}".encode())
        raw.cmd(b"MAIL FROM:<a\x1b[2Jb@sender.test>")
        raw.cmd(b"RCPT TO:<x\x1b[1m@elsewhere.test>")
        raw.cmd("QUIT")
    gw.stop()
    log = gw.log()
    assert "\x1b" not in log, "ESC from a peer written to the log"
    assert "\x07" not in log
    for line in log.splitlines():
        assert not line.lstrip().startswith(FORGED)
        assert not line.startswith("INFO " + FORGED)


def test_message_bodies_are_never_logged(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    gw = gateway_factory(next_hop=sink.address, config_toml=DEBUG)
    marker = "BODY-MARKER-5f1c0d9e"
    msg = clean_message(subject="log check", body=f"secret {marker}\n")
    assert smtplib_send(gw.port, msg).code == 250
    assert not sink.wait_for_ids({str(msg["Message-ID"])})
    gw.stop()
    assert marker not in gw.log()
