"""A real Postfix relaying into the gateway (relayhost = the gateway), the gateway into a sink.

This is the "zerohour in front of / behind Postfix" deployment: a private Postfix instance with
its own config and queue directories, on an ephemeral loopback port.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from helpers import postfix
from helpers.clients import smtplib_send
from helpers.gateway import GatewayFactory, gateway_toml, requires_gateway_marks
from helpers.messages import clean_message, eicar_attachment
from helpers.net import wait_until
from helpers.outbreaks import declare, with_zip
from helpers.sinks import RecordingSink
from zerohour.notices.model import OutbreakSpec, Scope

pytestmark = [
    *requires_gateway_marks(),
    pytest.mark.needs_postfix,
    pytest.mark.skipif(not postfix.available(), reason="needs Postfix binaries and root"),
]


def test_postfix_relays_through_gateway_to_sink(
    gateway_factory: GatewayFactory, sink: RecordingSink, tmp_path: Path
) -> None:
    gw = gateway_factory(next_hop=sink.address)
    with postfix.PostfixInstance(tmp_path / "postfix", f"127.0.0.1:{gw.port}") as pf:
        sent = [clean_message(subject=f"via postfix {i}") for i in range(3)]
        for msg in sent:
            assert smtplib_send(pf.port, msg).code == 250
        missing = sink.wait_for_ids({str(m["Message-ID"]) for m in sent}, timeout=60)
        assert not missing, f"not delivered: {missing}\n{pf.log()}"
        for got in sink.messages:
            trace = got.header("X-Zerohour-Scan")
            assert trace is not None
            assert trace.strip().lower().startswith("clean; db=")
            # Postfix's own Received header proves the path went through Postfix first.
            assert b"by postfix.e2e.test (Postfix)" in got.data
        # Postfix logged delivery to the gateway with the gateway's 250 (queue id) reply.
        assert re.search(rf"relay=127\.0\.0\.1\[127\.0\.0\.1\]:{gw.port}.*status=sent", pf.log())


def test_postfix_gets_554_for_eicar_and_nothing_is_delivered(
    gateway_factory: GatewayFactory, sink: RecordingSink, tmp_path: Path
) -> None:
    gw = gateway_factory(next_hop=sink.address)
    with postfix.PostfixInstance(tmp_path / "postfix", f"127.0.0.1:{gw.port}") as pf:
        infected = eicar_attachment()
        clean = clean_message(subject="clean after eicar")
        assert smtplib_send(pf.port, infected).code == 250  # Postfix queues it first
        assert smtplib_send(pf.port, clean).code == 250
        assert not sink.wait_for_ids({str(clean["Message-ID"])}, timeout=60), pf.log()
        # Postfix's smtp client saw the gateway's permanent rejection of the infected one.
        assert wait_until(lambda: "554 5.7.1" in pf.log(), timeout=30), pf.log()
        assert "status=bounced" in pf.log()
        ids = [m.message_id for m in sink.messages]
        assert infected["Message-ID"] not in ids


def test_postfix_after_queue_content_filter_through_gateway(
    gateway_factory: GatewayFactory, sink: RecordingSink, tmp_path: Path
) -> None:
    """The amavis-style layout: Postfix queues, hands each message to the gateway
    (content_filter), the gateway re-injects into Postfix's second smtpd, Postfix relays on.

    Infected mail is quarantined (a reject here would make Postfix bounce it to the sender).
    """
    gw = gateway_factory(start=False, config_toml=gateway_toml(scan={"infected": "quarantine"}))
    with postfix.PostfixInstance(
        tmp_path / "postfix", sink.address, content_filter=f"127.0.0.1:{gw.port}"
    ) as pf:
        gw.spec.next_hop = f"127.0.0.1:{pf.reinject_port}"
        gw.start()
        clean = clean_message(subject="filtered clean")
        infected = eicar_attachment()
        assert smtplib_send(pf.port, clean).code == 250
        assert smtplib_send(pf.port, infected).code == 250
        assert not sink.wait_for_ids({str(clean["Message-ID"])}, timeout=60), pf.log()
        got = next(m for m in sink.messages if m.message_id == clean["Message-ID"])
        trace = got.header("X-Zerohour-Scan")
        assert trace is not None, got.data[:500]
        assert trace.strip().lower().startswith("clean; db=")
        # Two Postfix Received headers: before the filter and after re-injection.
        assert got.data.count(b"by postfix.e2e.test (Postfix)") == 2, got.data[:800]
        assert re.search(rf"relay=127\.0\.0\.1\[127\.0\.0\.1\]:{gw.port}.*status=sent", pf.log())
        assert wait_until(lambda: pf.log().count(f":{gw.port}, ") >= 2, timeout=30), pf.log()
        time.sleep(1.0)
        assert infected["Message-ID"] not in sink.message_ids()
        assert all("report" not in (m.header("Content-Type") or "") for m in sink.messages), (
            "no bounce for the quarantined virus"
        )


def test_content_filter_outbreak_hold_and_release(
    gateway_factory: GatewayFactory, sink: RecordingSink, tmp_path: Path
) -> None:
    """Postfix -> zerohour (content_filter) during an outbreak: the attachment is held in our
    store (Postfix's queue is done with it), plain mail flows, and the release re-injects the
    held message through Postfix's filter-less smtpd to the final destination."""
    gw = gateway_factory(start=False, mynetworks=["127.0.0.1/32"])
    with postfix.PostfixInstance(
        tmp_path / "postfix", sink.address, content_filter=f"127.0.0.1:{gw.port}"
    ) as pf:
        gw.spec.next_hop = f"127.0.0.1:{pf.reinject_port}"
        gw.start()
        wave = OutbreakSpec("ob-cf", "FilterWave", scope=Scope(has_attachment=True))
        declare(gw.spec.data_dir, wave)
        time.sleep(1.5)  # the gateway sees the store change within a second
        zipped = with_zip("zipped via the filter")
        plain = clean_message(subject="plain via the filter")
        assert smtplib_send(pf.port, zipped).code == 250
        assert smtplib_send(pf.port, plain).code == 250
        assert not sink.wait_for_ids({str(plain["Message-ID"])}, timeout=60), pf.log()
        assert wait_until(
            lambda: json.loads(gw.cli("hold", "list", "--json").stdout)["total"] == 1, timeout=30
        ), gw.log()
        assert zipped["Message-ID"] not in sink.message_ids()
        assert wait_until(lambda: "queue is empty" in pf.queue_listing().lower(), timeout=30)
        released = gw.cli("hold", "release", "--outbreak", "ob-cf")
        assert released.returncode == 0, released.stderr
        assert not sink.wait_for_ids({str(zipped["Message-ID"])}, timeout=60), pf.log()
        got = next(m for m in sink.messages if m.message_id == zipped["Message-ID"])
        assert (got.header("X-Zerohour-Scan") or "").startswith("clean")
        assert got.data.count(b"by postfix.e2e.test (Postfix)") == 2  # in, and re-injected

