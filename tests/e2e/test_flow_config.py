"""Configuration layers seen from outside: defaults < TOML file < ZEROHOUR_* env < CLI flags,
and the infected-mail policies (reject, quarantine, discard) end to end."""

from __future__ import annotations

import json
import time

from helpers.clients import smtplib_send
from helpers.gateway import GatewayFactory, GatewayProcess, gateway_toml, requires_gateway_marks
from helpers.messages import clean_message, eicar_attachment
from helpers.net import wait_until
from helpers.sinks import RecordingSink
from helpers.smtp import RawSmtp

pytestmark = requires_gateway_marks()


def rcpt_code(port: int, rcpt: str) -> int:
    with RawSmtp(port) as raw:
        raw.hello()
        assert raw.cmd("MAIL FROM:<alice@sender.test>").code == 250
        return raw.cmd(f"RCPT TO:<{rcpt}>").code


def test_cli_flag_overrides_config_file(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(
        relay_domains=["flag.test"],
        config_toml=gateway_toml(smtp={"relay_domains": ["file.test"]}),
    )
    assert rcpt_code(gw.port, "x@flag.test") == 250
    assert rcpt_code(gw.port, "x@file.test") == 554


def test_environment_overrides_config_file(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(
        config_toml=gateway_toml(smtp={"max_recipients": 50}),
        env={"ZEROHOUR_SMTP_MAX_RECIPIENTS": "2"},
    )
    with RawSmtp(gw.port) as raw:
        raw.hello()
        assert raw.cmd("MAIL FROM:<alice@sender.test>").code == 250
        codes = [raw.cmd(f"RCPT TO:<u{i}@example.test>").code for i in range(3)]
    assert codes == [250, 250, 452]


def test_discard_policy_accepts_and_drops_infected_mail(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    gw = gateway_factory(
        next_hop=sink.address, config_toml=gateway_toml(scan={"infected": "discard"})
    )
    assert smtplib_send(gw.port, eicar_attachment()).code == 250
    clean = clean_message()
    assert smtplib_send(gw.port, clean).code == 250
    assert not sink.wait_for_ids({str(clean["Message-ID"])})
    time.sleep(1.0)
    assert sink.message_ids() == [clean["Message-ID"]]


def test_quarantine_policy_keeps_infected_mail_out_of_delivery(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    gw = gateway_factory(
        next_hop=sink.address, config_toml=gateway_toml(scan={"infected": "quarantine"})
    )
    infected = eicar_attachment()
    assert smtplib_send(gw.port, infected).code == 250
    clean = clean_message()
    assert smtplib_send(gw.port, clean).code == 250
    assert not sink.wait_for_ids({str(clean["Message-ID"])})
    time.sleep(1.0)
    assert sink.message_ids() == [clean["Message-ID"]]
    done = gw.cli("quarantine", "list", "--json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)["messages"]
    assert len(listed) == 1, listed
    entry = listed[0]
    assert entry["state"] == "quarantined"
    assert entry["sender"] == "alice@sender.test"
    assert "eicar" in entry["reason"].lower(), entry


def test_quarantine_release_rescans_and_force_delivers(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    """`quarantine release` rescans first (EICAR stays), `--force` delivers it to the next hop."""
    gw = gateway_factory(
        next_hop=sink.address, config_toml=gateway_toml(scan={"infected": "quarantine"})
    )
    infected = eicar_attachment()
    assert smtplib_send(gw.port, infected).code == 250
    assert wait_until(lambda: _quarantined(gw), timeout=30)
    (qid,) = _quarantined(gw)

    kept = gw.cli("quarantine", "release", qid, "--json")
    assert kept.returncode == 1, kept.stdout + kept.stderr
    assert json.loads(kept.stdout)[0]["state"] == "quarantined"
    time.sleep(1.0)
    assert sink.messages == []

    forced = gw.cli("quarantine", "release", qid, "--force", "--json")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert not sink.wait_for_ids({str(infected["Message-ID"])}, timeout=60)
    assert _quarantined(gw) == []


def _quarantined(gw: GatewayProcess) -> list[str]:
    done = gw.cli("quarantine", "list", "--json")
    assert done.returncode == 0, done.stderr
    return [m["queue_id"] for m in json.loads(done.stdout)["messages"]]
