"""End to end: `zerohour gateway run` in MX mode with a TOML `[delivery.tls_policy]` table.

A real DNS server on 127.0.0.1 (`delivery.dns_servers`) names two MX hosts; the preferred one
is down, the second offers STARTTLS with a certificate from a private CA (`delivery.tls_ca_file`)
for its MX name. The recipient domain's level is `verify`: the mail must arrive encrypted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.clients import smtplib_send
from helpers.dns import ZoneServer
from helpers.gateway import GatewayFactory, gateway_toml, requires_gateway_marks
from helpers.messages import clean_message
from helpers.net import free_port
from helpers.sinks import RecordingSink
from helpers.tls import private_ca

pytestmark = requires_gateway_marks()

ZONE = {
    ("secure.test", "MX"): ["10 mx1.secure.test.", "20 mx2.secure.test."],
    ("mx1.secure.test", "A"): ["127.0.0.2"],  # nothing listens there
    ("mx2.secure.test", "A"): ["127.0.0.3"],
}


@pytest.fixture
def zone() -> Iterator[ZoneServer]:
    with ZoneServer(ZONE) as server:
        yield server


def test_mx_fallback_with_verified_tls_from_a_toml_policy_table(
    tmp_path: Path, zone: ZoneServer, gateway_factory: GatewayFactory
) -> None:
    ca, cert, key = private_ca(tmp_path / "pki", ["mx2.secure.test"])
    port = free_port()
    with RecordingSink(port, host="127.0.0.3", tls=(cert, key)) as mx2:
        toml = gateway_toml(
            delivery={
                "next_hop": "mx",
                "dns_servers": [zone.address],
                "dns_timeout": 2.0,
                "mx_port": port,
                "starttls": True,
                "tls_ca_file": str(ca),
            }
        )
        toml += '\n[delivery.tls_policy]\n"secure.test" = "verify"\n'
        gw = gateway_factory(relay_domains=("secure.test",), config_toml=toml)
        msg = clean_message(subject="mx and tls", recipient="bob@secure.test")
        reply = smtplib_send(gw.port, msg, recipients=("bob@secure.test",))
        assert reply.code == 250, reply.text
        got = mx2.wait_for(1)
        assert [m.rcpt_tos for m in got] == [("bob@secure.test",)]
        assert got[0].tls_version in ("TLSv1.2", "TLSv1.3")
        assert got[0].message_id == msg["Message-ID"]
        assert ("mx1.secure.test", "A") in zone.queries  # the preferred MX was considered
