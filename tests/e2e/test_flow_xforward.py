"""XFORWARD (Postfix's XFORWARD_README) against a running gateway: a trusted upstream MTA names
its original client, which lands in our Received header, log and message record; anybody else
is refused, and the forwarded address never makes a client trusted."""

from __future__ import annotations

import json
import re
import smtplib
from pathlib import Path

import pytest

from helpers import postfix
from helpers.clients import smtplib_send
from helpers.gateway import (
    GatewayFactory,
    GatewayProcess,
    requires_gateway_marks,
)
from helpers.messages import clean_message, wire_bytes
from helpers.net import LOCALHOST, wait_until
from helpers.sinks import RecordingSink

pytestmark = requires_gateway_marks()


@pytest.fixture(scope="module")
def gw(module_gateway_factory: GatewayFactory, module_sink: RecordingSink) -> GatewayProcess:
    # 127.0.0.1 is trusted (our "Postfix"); 127.0.0.2 is an outside client
    return module_gateway_factory(next_hop=module_sink.address, mynetworks=["127.0.0.1/32"])


def _session(port: int, source: str = LOCALHOST) -> smtplib.SMTP:
    client = smtplib.SMTP(LOCALHOST, port, timeout=30, source_address=(source, 0))
    client.ehlo("postfix.xforward.test")
    return client


def test_trusted_client_forwards_the_original_client(
    gw: GatewayProcess, fresh_sink: RecordingSink
) -> None:
    msg = clean_message(subject="forwarded")
    with _session(gw.port) as c:
        assert c.has_extn("xforward")
        assert "ADDR" in c.esmtp_features["xforward"].upper()
        code, text = c.docmd("XFORWARD", "NAME=mail.outside.test ADDR=203.0.113.9 PROTO=ESMTP")
        assert code == 250, text
        code, text = c.docmd("XFORWARD", "HELO=helo.outside.test")
        assert code == 250, text
        c.sendmail("alice@sender.test", ["bob@example.test"], wire_bytes(msg))
    assert not fresh_sink.wait_for_ids({str(msg["Message-ID"])})
    got = next(m for m in fresh_sink.messages if m.message_id == msg["Message-ID"])
    received = got.data.split(b"\r\n\tby ", 1)[0]
    assert b"from helo.outside.test (mail.outside.test [203.0.113.9])" in received, got.data[:400]
    assert b"with ESMTP;" in got.data
    via = r"smtp\.xforward via=127\.0\.0\.1 client=mail\.outside\.test\[203\.0\.113\.9\]"
    assert re.search(via, gw.log())
    # the record (dashboard, API, CLI) names the original client too
    qid = got.header("X-Zerohour-Queue-Id") or _last_queue_id(gw)
    shown = json.loads(gw.cli("hold", "show", qid, "--json").stdout)
    record = shown.get("message", shown)
    assert record["peer"] == "203.0.113.9", shown
    assert record["helo"] == "helo.outside.test", shown


def _last_queue_id(gw: GatewayProcess) -> str:
    ids = re.findall(r" ([0-9A-F]+): from=<", gw.log())
    assert ids, gw.log()
    return ids[-1]


def test_forwarded_attributes_last_one_transaction(
    gw: GatewayProcess, fresh_sink: RecordingSink
) -> None:
    first, second = clean_message(subject="one"), clean_message(subject="two")
    with _session(gw.port) as c:
        assert c.docmd("XFORWARD", "ADDR=198.51.100.7")[0] == 250
        c.sendmail("alice@sender.test", ["bob@example.test"], wire_bytes(first))
        c.sendmail("alice@sender.test", ["bob@example.test"], wire_bytes(second))
    assert not fresh_sink.wait_for_ids({str(first["Message-ID"]), str(second["Message-ID"])})
    by_id = {m.message_id: m for m in fresh_sink.messages}
    assert b"[198.51.100.7]" in by_id[first["Message-ID"]].data.split(b"\r\n\r\n")[0]
    assert b"198.51.100.7" not in by_id[second["Message-ID"]].data


def test_untrusted_client_may_not_forward(gw: GatewayProcess, fresh_sink: RecordingSink) -> None:
    with _session(gw.port, source="127.0.0.2") as c:
        assert not c.has_extn("xforward")  # not advertised
        code, text = c.docmd("XFORWARD", "ADDR=192.0.2.1")
        assert code == 550, (code, text)
        assert b"5.7.0" in text
        # and the claim made nobody trusted: relaying elsewhere is still refused
        code, text = c.docmd("MAIL", "FROM:<a@sender.test>")
        assert code == 250
        code, text = c.docmd("RCPT", "TO:<victim@elsewhere.test>")
        assert code == 554
        assert b"Relay access denied" in text


def test_bad_xforward_commands_get_clear_replies(gw: GatewayProcess) -> None:
    with _session(gw.port) as c:
        assert c.docmd("XFORWARD", "")[0] == 501
        code, text = c.docmd("XFORWARD", "COLOR=blue")
        assert code == 501
        assert b"attribute name" in text
        code, text = c.docmd("XFORWARD", "ADDR=not-an-ip")
        assert code == 501
        assert b"address" in text
        assert c.docmd("XFORWARD", "ADDR=[UNAVAILABLE] NAME=[TEMPUNAVAIL]")[0] == 250
        assert c.docmd("XFORWARD", "NAME=a+0Db")[0] == 501  # xtext CR: no header injection
        assert c.docmd("MAIL", "FROM:<a@sender.test>")[0] == 250
        code, text = c.docmd("XFORWARD", "ADDR=192.0.2.1")
        assert code == 503, (code, text)


@pytest.mark.needs_postfix
@pytest.mark.skipif(not postfix.available(), reason="needs Postfix binaries and root")
def test_postfix_content_filter_forwards_the_client_address(
    gateway_factory: GatewayFactory, sink: RecordingSink, tmp_path: Path
) -> None:
    """Postfix -> zerohour (content_filter, smtp_send_xforward_command=yes) -> Postfix on the
    re-injection port -> sink: our log and Received header name the client, not Postfix."""
    gw = gateway_factory(start=False, mynetworks=["127.0.0.1/32"])
    with postfix.PostfixInstance(
        tmp_path / "postfix", sink.address, content_filter=f"127.0.0.1:{gw.port}"
    ) as pf:
        gw.spec.next_hop = f"127.0.0.1:{pf.reinject_port}"
        gw.start()
        msg = clean_message(subject="xforward via postfix")
        with smtplib.SMTP(LOCALHOST, pf.port, timeout=30, source_address=("127.0.0.2", 0)) as c:
            c.ehlo("client.outside.test")
            c.sendmail("alice@sender.test", ["bob@example.test"], wire_bytes(msg))
        assert not sink.wait_for_ids({str(msg["Message-ID"])}, timeout=60), pf.log() + gw.log()
        assert wait_until(lambda: "smtp.xforward" in gw.log(), timeout=10), gw.log()
        via = r"smtp\.xforward via=127\.0\.0\.1 client=\S*\[127\.0\.0\.2\] helo=client\.outside"
        assert re.search(via, gw.log()), gw.log()
        got = next(m for m in sink.messages if m.message_id == msg["Message-ID"])
        assert b"(zerohour)" in got.data
        ours = got.data[got.data.index(b"Received: from client.outside.test"):]
        assert b"[127.0.0.2])\r\n\tby " in ours.split(b"(zerohour)")[0], got.data[:1200]
        assert smtplib_send(pf.port, clean_message(subject="second")).code == 250
