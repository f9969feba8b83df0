"""The test harness itself, against real servers (no gateway): sinks, clients, raw SMTP, Postfix.

If these fail, a gateway test failure means nothing, so they run first and fast.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from helpers import postfix
from helpers.clients import smtplib_send, swaks_send
from helpers.messages import EICAR, clean_message, eicar_attachment, eicar_in_zip, eicar_plain
from helpers.net import port_accepts
from helpers.sinks import PostfixSmtpSink, RecordingSink
from helpers.smtp import RawSmtp


def test_recording_sink_records_smtplib_mail(sink: RecordingSink) -> None:
    msg = clean_message()
    reply = smtplib_send(sink.port, msg)
    assert reply.code == 250
    got = sink.wait_for(1)
    assert [m.message_id for m in got] == [msg["Message-ID"]]
    assert got[0].rcpt_tos == ("bob@example.test",)


def test_recording_sink_restarts_on_the_same_port() -> None:
    server = RecordingSink()
    assert not port_accepts(server.port)
    server.start()
    try:
        assert port_accepts(server.port)
        server.stop()
        assert not port_accepts(server.port)
        server.start()
        assert smtplib_send(server.port, clean_message()).code == 250
    finally:
        server.stop()


def test_recording_sink_stop_right_after_a_connection_leaks_no_socket() -> None:
    # A connection the loop has accepted but not yet given a transport when stop() runs used
    # to leak its socket (a ResourceWarning failing whichever test the collector ran in).
    for _ in range(200):
        server = RecordingSink().start()
        try:
            assert port_accepts(server.port)
        finally:
            server.stop()
    gc.collect()


def test_swaks_reply_is_parsed(sink: RecordingSink, tmp_path: Path) -> None:
    msg = clean_message()
    data = tmp_path / "m.eml"
    data.write_bytes(msg.as_bytes())
    reply, done = swaks_send(sink.port, data)
    assert reply.code == 250, done.stdout
    assert sink.wait_for(1)[0].message_id == msg["Message-ID"]
    sink.data_reply = "554 5.7.1 no thanks"
    reply, _ = swaks_send(sink.port, data)
    assert (reply.code, reply.enhanced) == (554, "5.7.1")


def test_raw_client_reads_multiline_replies(sink: RecordingSink) -> None:
    with RawSmtp(sink.port) as raw:
        ehlo = raw.hello()
        assert ehlo.code == 250
        assert len(ehlo.text.splitlines()) > 1  # multi-line EHLO reply, parsed as one
        assert raw.cmd("QUIT").code == 221
        assert raw.closed_by_peer()


@pytest.mark.needs_postfix
def test_postfix_smtp_sink_counts_deliveries(postfix_sink: PostfixSmtpSink) -> None:
    for _ in range(3):
        assert smtplib_send(postfix_sink.port, clean_message()).code == 250
    dumps = postfix_sink.wait_for(3, timeout=10)
    assert len(dumps) == 3
    assert all(b"X-Rcpt-Args: <bob@example.test>" in d for d in dumps)


def test_eicar_messages_carry_the_test_file() -> None:
    assert len(EICAR) == 68
    assert EICAR in eicar_plain().as_bytes()
    attachment = eicar_attachment()
    assert EICAR not in attachment.as_bytes()  # base64: only a decoder sees it
    parts = [p.get_payload(decode=True) for p in attachment.iter_attachments()]
    assert parts == [EICAR]
    assert EICAR not in eicar_in_zip().as_bytes()


@pytest.mark.needs_postfix
@pytest.mark.skipif(not postfix.available(), reason="needs Postfix binaries and root")
def test_private_postfix_relays_to_sink(sink: RecordingSink, tmp_path: Path) -> None:
    with postfix.PostfixInstance(tmp_path / "postfix", sink.address) as pf:
        msg = clean_message()
        assert smtplib_send(pf.port, msg).code == 250
        got = sink.wait_for(1, timeout=30)
        assert [m.message_id for m in got] == [msg["Message-ID"]], pf.log()
