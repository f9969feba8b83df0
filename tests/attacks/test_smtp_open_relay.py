"""Open relay attempts: RCPT for a domain we do not relay, from a client outside mynetworks,
gets 554 5.7.1 (Postfix: "Relay access denied"), and nothing is delivered."""

from __future__ import annotations

import time

import pytest

from helpers.gateway import GatewayFactory, GatewayProcess, gateway_toml, requires_gateway_marks
from helpers.sinks import RecordingSink
from helpers.smtp import RawSmtp

pytestmark = requires_gateway_marks()

FOREIGN = [
    "victim@elsewhere.test",
    "victim@example.test.evil.test",  # relay domain as a prefix of a foreign one
    "victim@evilexample.test",  # relay domain as a suffix without the dot
    "victim@[192.0.2.1]",  # address literal
    # Sender-specified routing to our own domain: a next hop that honours it relays onwards.
    # Postfix refuses these from untrusted clients (allow_untrusted_routing = no).
    "victim%elsewhere.test@example.test",
    "elsewhere.test!victim@example.test",
    '"victim@elsewhere.test"@example.test',
    # "postmaster" without a domain is ours (RFC 5321 4.5.1); with one, or routed, it is not.
    "postmaster@elsewhere.test",
    "postmaster%elsewhere.test",
    "postmaster%elsewhere.test@example.test",
]


@pytest.fixture(scope="module")
def gw(module_gateway_factory: GatewayFactory, module_sink: RecordingSink) -> GatewayProcess:
    # The test config keeps 127.0.0.1 OUT of mynetworks: we are an outside client here.
    return module_gateway_factory(next_hop=module_sink.address)


@pytest.mark.parametrize("rcpt", FOREIGN)
def test_foreign_recipient_is_refused_554(
    gw: GatewayProcess, fresh_sink: RecordingSink, rcpt: str
) -> None:
    sink = fresh_sink
    with RawSmtp(gw.port) as raw:
        raw.hello()
        assert raw.cmd("MAIL FROM:<spammer@elsewhere.test>").code == 250
        reply = raw.cmd(f"RCPT TO:<{rcpt}>")
        assert (reply.code, reply.enhanced) == (554, "5.7.1"), str(reply)
        data = raw.cmd("DATA")
        assert data.code in (503, 554), f"DATA without valid recipients must fail: {data}"
    time.sleep(0.5)
    assert sink.messages == []


def test_relay_domain_is_accepted_and_foreign_one_refused_in_same_transaction(
    gw: GatewayProcess, fresh_sink: RecordingSink
) -> None:
    sink = fresh_sink
    with RawSmtp(gw.port) as raw:
        raw.hello()
        assert raw.cmd("MAIL FROM:<alice@sender.test>").code == 250
        assert raw.cmd("RCPT TO:<bob@example.test>").code == 250
        assert raw.cmd("RCPT TO:<victim@elsewhere.test>").code == 554
        assert raw.cmd("DATA").code == 354
        raw.send(b"Subject: mixed\r\n\r\nhi\r\n.\r\n")
        assert raw.reply(timeout=30).code == 250
    delivered = sink.wait_for(1)
    assert [m.rcpt_tos for m in delivered] == [("bob@example.test",)]


def test_trusted_network_may_relay(gateway_factory: GatewayFactory, sink: RecordingSink) -> None:
    """The other half of the policy: clients in mynetworks relay anywhere (proves the 554
    above comes from the policy, not from refusing everything)."""
    gw = gateway_factory(
        next_hop=sink.address, config_toml=gateway_toml(smtp={"mynetworks": ["127.0.0.0/8"]})
    )
    with RawSmtp(gw.port) as raw:
        raw.hello()
        assert raw.cmd("MAIL FROM:<app@internal.test>").code == 250
        assert raw.cmd("RCPT TO:<someone@elsewhere.test>").code == 250
