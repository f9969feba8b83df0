"""End to end: real clients (smtplib, swaks) -> `zerohour gateway run` -> real next hop.

Contract (issue 3): 250 with a queue id only after the message is durable; clean mail reaches
the next hop with `X-Zerohour-Scan: clean; db=<version>`; EICAR (plain, base64 attachment, in a
zip) is refused with 554 5.7.1 naming the virus and never reaches the next hop.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest

from helpers.clients import smtplib_send, swaks_send
from helpers.gateway import GatewayFactory, GatewayProcess, requires_gateway_marks
from helpers.messages import clean_message, eicar_attachment, eicar_in_zip, eicar_plain
from helpers.sinks import PostfixSmtpSink, RecordingSink

pytestmark = requires_gateway_marks()

TRACE = re.compile(r"^clean; db=\S+", re.IGNORECASE)
EICAR_CASES: dict[str, Callable[[], EmailMessage]] = {
    "plain": eicar_plain,
    "base64-attachment": eicar_attachment,
    "zip": eicar_in_zip,
}


def assert_queued(code: int, text: str) -> None:
    """A 250 that names a queue id (something id-like after the status text)."""
    assert code == 250, f"{code} {text}"
    assert re.search(r"[A-Za-z0-9]{6,}", text), f"no queue id in 250 reply: {text!r}"


@pytest.fixture(scope="module")
def gw(module_gateway_factory: GatewayFactory, module_sink: RecordingSink) -> GatewayProcess:
    """One gateway for the tests below that only need the default policy and a sink."""
    return module_gateway_factory(next_hop=module_sink.address)


def test_clean_mail_via_smtplib_is_delivered_with_trace_header(
    gw: GatewayProcess, fresh_sink: RecordingSink
) -> None:
    sink = fresh_sink
    gw_port = gw.port
    msg = clean_message(subject="hello via smtplib")
    reply = smtplib_send(gw_port, msg)
    assert_queued(reply.code, reply.text)
    got = sink.wait_for(1)
    assert [m.message_id for m in got] == [msg["Message-ID"]]
    delivered = got[0]
    assert delivered.rcpt_tos == ("bob@example.test",)
    assert delivered.mail_from == "alice@sender.test"
    trace = delivered.header("X-Zerohour-Scan")
    assert trace is not None
    assert TRACE.match(trace.strip()), trace
    assert b"Hello, nothing to see here." in delivered.data


def test_clean_mail_via_swaks_is_delivered(
    gw: GatewayProcess, fresh_sink: RecordingSink, tmp_path: Path
) -> None:
    sink = fresh_sink
    msg = clean_message(subject="hello via swaks")
    data = tmp_path / "clean.eml"
    data.write_bytes(msg.as_bytes())
    reply, done = swaks_send(gw.port, data)
    assert_queued(reply.code, reply.text)
    got = sink.wait_for(1)
    assert [m.message_id for m in got] == [msg["Message-ID"]], done.stdout
    trace = got[0].header("X-Zerohour-Scan")
    assert trace is not None
    assert TRACE.match(trace.strip())


@pytest.mark.needs_postfix
def test_clean_mail_reaches_postfix_smtp_sink(
    gateway_factory: GatewayFactory, postfix_sink: PostfixSmtpSink
) -> None:
    gw = gateway_factory(next_hop=postfix_sink.address)
    port = gw.port
    ids = []
    for i in range(3):
        msg = clean_message(subject=f"to smtp-sink {i}")
        ids.append(str(msg["Message-ID"]))
        reply = smtplib_send(port, msg)
        assert_queued(reply.code, reply.text)
    dumps = postfix_sink.wait_for(3)
    assert len(dumps) == 3
    for mid in ids:
        assert sum(mid.encode() in d for d in dumps) == 1, mid
    assert all(b"X-Zerohour-Scan: clean; db=" in d for d in dumps)


@pytest.mark.parametrize("shape", sorted(EICAR_CASES))
def test_eicar_is_rejected_with_554_via_smtplib(
    gw: GatewayProcess, fresh_sink: RecordingSink, shape: str
) -> None:
    sink = fresh_sink
    port = gw.port
    reply = smtplib_send(port, EICAR_CASES[shape]())
    assert (reply.code, reply.enhanced) == (554, "5.7.1"), str(reply)
    assert "eicar" in reply.text.lower(), f"reply should name the virus: {reply}"
    # The same session/gateway still works, and only the clean message is delivered.
    clean = clean_message()
    assert smtplib_send(port, clean).code == 250
    got = sink.wait_for(1)
    time.sleep(0.5)  # give a wrongly queued infected message the chance to show up
    assert [m.message_id for m in sink.messages] == [clean["Message-ID"]], got


@pytest.mark.parametrize("shape", sorted(EICAR_CASES))
def test_eicar_is_rejected_with_554_via_swaks(
    gw: GatewayProcess, fresh_sink: RecordingSink, tmp_path: Path, shape: str
) -> None:
    sink = fresh_sink
    data = tmp_path / f"{shape}.eml"
    data.write_bytes(EICAR_CASES[shape]().as_bytes())
    reply, done = swaks_send(gw.port, data)
    assert (reply.code, reply.enhanced) == (554, "5.7.1"), done.stdout
    time.sleep(0.5)
    assert sink.messages == []


def test_next_hop_down_then_up_delivers_queued_mail(
    gateway_factory: GatewayFactory,
) -> None:
    """250 while the next hop is unreachable; delivered once it comes up (retry with backoff)."""
    hop = RecordingSink()  # not started: connection refused
    gw = gateway_factory(next_hop=hop.address)
    port = gw.port
    sent = [clean_message(subject=f"queued {i}") for i in range(3)]
    for msg in sent:
        reply = smtplib_send(port, msg)
        assert_queued(reply.code, reply.text)
    time.sleep(2.0)  # several retry intervals (retry_min 0.5 s in the test config) fail
    hop.start()
    try:
        missing = hop.wait_for_ids({str(m["Message-ID"]) for m in sent}, timeout=60)
        assert not missing, f"never delivered after next hop came up: {missing}"
    finally:
        hop.stop()


def test_next_hop_tempfail_then_accept(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    """A 4xx from the next hop keeps the message queued; it is delivered on a later attempt."""
    sink.data_reply = "451 4.3.0 try again later"
    gw = gateway_factory(next_hop=sink.address)
    msg = clean_message(subject="tempfail first")
    assert smtplib_send(gw.port, msg).code == 250
    time.sleep(1.5)
    assert sink.messages == []
    sink.data_reply = None
    assert not sink.wait_for_ids({str(msg["Message-ID"])}, timeout=60)
    assert len(sink.messages) == 1
