"""SMTP smuggling (CVE-2023-51764 class): only <CR><LF>.<CR><LF> ends DATA.

A client sends one message whose body carries a non-standard end-of-data (`\\n.\\n`, `\\r.\\r`,
`\\n.\\r\\n`, `\\r\\n.\\n`) followed by a second, smuggled transaction. A safe server either rejects
the message (Postfix 3.9 `smtpd_forbid_bare_newline = reject`: 5xx "bare <LF> received", then
disconnect) or treats everything up to the real CRLF.CRLF as one message (`normalize`). It must
never answer the smuggled MAIL/RCPT/DATA or deliver a second message.
"""

from __future__ import annotations

import contextlib
import re
import time

import pytest

from helpers.gateway import GatewayFactory, GatewayProcess, gateway_toml, requires_gateway_marks
from helpers.sinks import RecordingSink
from helpers.smtp import ConnectionClosed, RawSmtp, Reply

pytestmark = requires_gateway_marks()

FAKE_ENDS = {
    "lf-dot-lf": b"\n.\n",
    "cr-dot-cr": b"\r.\r",
    "lf-dot-crlf": b"\n.\r\n",
    "crlf-dot-lf": b"\r\n.\n",
}
BARE_LF = {"lf-dot-lf", "lf-dot-crlf", "crlf-dot-lf"}


def smuggling_payload(fake_end: bytes) -> bytes:
    return (
        b"From: alice@sender.test\r\nTo: bob@example.test\r\nSubject: outer\r\n\r\n"
        b"first body line" + fake_end + b"MAIL FROM:<ceo@example.test>\r\n"
        b"RCPT TO:<bob@example.test>\r\n"
        b"DATA\r\n"
        b"From: ceo@example.test\r\nTo: bob@example.test\r\nSubject: smuggled\r\n\r\n"
        b"wire the money\r\n"
        b".\r\n"
    )


def run_attack(port: int, fake_end: bytes) -> tuple[list[Reply], bool]:
    """Send the transaction with pipelined smuggled commands: every reply after the 354, and
    whether the server then closed the connection."""
    with RawSmtp(port) as raw:
        assert raw.hello().code == 250
        assert raw.cmd("MAIL FROM:<alice@sender.test>").code == 250
        assert raw.cmd("RCPT TO:<bob@example.test>").code == 250
        assert raw.cmd("DATA").code == 354
        raw.send(smuggling_payload(fake_end))
        replies: list[Reply] = []
        with contextlib.suppress(ConnectionClosed):
            replies.append(raw.reply(timeout=30))
        replies += raw.pending_replies(timeout=1.5)
        return replies, raw.closed_by_peer(timeout=5.0)


def assert_nothing_smuggled(replies: list[Reply], sink: RecordingSink) -> None:
    codes = [r.code for r in replies]
    assert 354 not in codes, f"smuggled DATA was answered: {replies}"
    assert codes.count(250) <= 1, f"more than one transaction accepted: {replies}"
    time.sleep(1.0)  # let a wrongly accepted second message reach the sink
    delivered = sink.messages
    assert len(delivered) <= 1, [m.header("Subject") for m in delivered]
    for m in delivered:
        assert (m.header("Subject") or "").strip() == "outer"
        assert m.mail_from == "alice@sender.test"


@pytest.fixture(scope="module")
def reject_gw(module_gateway_factory: GatewayFactory, module_sink: RecordingSink) -> GatewayProcess:
    return module_gateway_factory(name="reject", next_hop=module_sink.address)


@pytest.fixture(scope="module")
def accept_gw(module_gateway_factory: GatewayFactory, module_sink: RecordingSink) -> GatewayProcess:
    return module_gateway_factory(
        name="accept",
        next_hop=module_sink.address,
        config_toml=gateway_toml(smtp={"bare_newline": "accept"}),
    )


@pytest.mark.parametrize("variant", sorted(FAKE_ENDS))
def test_smuggling_default_policy(
    reject_gw: GatewayProcess, fresh_sink: RecordingSink, variant: str
) -> None:
    """Default (`smtp.bare_newline = reject`, like Postfix 3.9's strict mode)."""
    gw, sink = reject_gw, fresh_sink
    replies, closed = run_attack(gw.port, FAKE_ENDS[variant])
    assert replies, "no reply at all to the end of DATA"
    if variant in BARE_LF:
        # Postfix 3.9 reject mode: "550 5.5.2 <host> Error: bare <LF> received", disconnect.
        first = replies[0]
        assert first.code == 550, f"bare LF must be refused in reject mode: {replies}"
        assert first.enhanced == "5.5.2", str(first)
        assert "bare <LF>" in first.text, str(first)
        assert closed, "Postfix disconnects after refusing a bare LF"
    assert_nothing_smuggled(replies, sink)


@pytest.mark.parametrize("variant", sorted(FAKE_ENDS))
def test_smuggling_accept_policy_keeps_one_message(
    accept_gw: GatewayProcess, fresh_sink: RecordingSink, variant: str
) -> None:
    """`smtp.bare_newline = accept` (Postfix 3.9 `normalize`): bare LF lines become CRLF, but
    the fake end is content, so the whole thing is ONE message with one 250, and its "." line
    reaches the next hop intact."""
    gw, sink = accept_gw, fresh_sink
    replies, _ = run_attack(gw.port, FAKE_ENDS[variant])
    assert [r.code for r in replies][:1] == [250], replies
    assert_nothing_smuggled(replies, sink)
    delivered = sink.wait_for(1)
    assert len(delivered) == 1
    assert b"wire the money" in delivered[0].data  # the "smuggled" part stayed inside
    # The fake end's "." is content: it arrives as a line holding "." (so the gateway sent it
    # dot-stuffed), neither dropped nor turned into an empty line.
    assert b"first body line\r\n.\r\nMAIL FROM:<ceo@example.test>\r\n" in delivered[0].data, (
        delivered[0].data
    )
    # Nothing but CRLF line ends goes on to the next hop, so it cannot be fooled either.
    assert not re.search(rb"\r(?!\n)|(?<!\r)\n", delivered[0].data), delivered[0].data


def test_bare_lf_in_commands_is_refused(reject_gw: GatewayProcess) -> None:
    """Postfix 3.9 strict mode also refuses a command line ended by a bare LF."""
    gw = reject_gw
    with RawSmtp(gw.port) as raw:
        raw.banner()
        raw.send(b"EHLO client.test\n")
        try:
            reply = raw.reply(timeout=15)
        except ConnectionClosed:
            return  # dropped without a reply: also safe
        assert 500 <= reply.code < 600, str(reply)
