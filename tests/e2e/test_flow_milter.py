"""zerohour as a before-queue milter of a real, private Postfix (`smtpd_milters`), the way
clamav-milter and rspamd are deployed. Mail is sent to Postfix with swaks; Postfix relays to a
recording sink; the milter's released mail comes back through Postfix's milter-less smtpd on
`reinject_port`.

Proves: clean mail is delivered by Postfix with our trace header; EICAR is refused with 554 in
Postfix's SMTP dialogue (no bounce, nothing queued); an outbreak holds mail in our store (Postfix
discards its copy after the 250) and the release delivers it after a rescan; quarantined mail
stays with us; the original client's address (not Postfix's) is in our log; a forged
`X-Zerohour-Scan` never reaches the recipient.
"""

from __future__ import annotations

import json
import re
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from helpers import postfix
from helpers.clients import swaks_available, swaks_send
from helpers.gateway import GatewayFactory, GatewayProcess, gateway_toml, requires_gateway_marks
from helpers.messages import clean_message, eicar_attachment, wire_bytes
from helpers.net import wait_until
from helpers.outbreaks import declare, with_zip
from helpers.sinks import RecordingSink
from zerohour.notices.model import OutbreakSpec, Scope

pytestmark = [
    *requires_gateway_marks(),
    pytest.mark.needs_postfix,
    pytest.mark.skipif(not postfix.available(), reason="needs Postfix binaries and root"),
    pytest.mark.skipif(not swaks_available(), reason="needs swaks"),
]


def _milter(
    gateway_factory: GatewayFactory, tmp_path: Path, **toml: dict[str, object]
) -> tuple[GatewayProcess, postfix.PostfixInstance]:
    """A milter gateway and the Postfix that calls it (released mail -> Postfix's reinject)."""
    gw = gateway_factory(start=False, mode="milter", config_toml=gateway_toml(**toml))
    pf = postfix.PostfixInstance(tmp_path / "postfix", "", milter=f"127.0.0.1:{gw.port}")
    gw.spec.next_hop = f"127.0.0.1:{pf.reinject_port}"
    return gw, pf


def _send(pf: postfix.PostfixInstance, tmp_path: Path, msg: EmailMessage, *extra: str):  # type: ignore[no-untyped-def]
    path = tmp_path / f"msg-{time.monotonic_ns()}.eml"
    path.write_bytes(wire_bytes(msg))
    return swaks_send(pf.port, path, extra=extra)




@pytest.fixture
def stack(gateway_factory: GatewayFactory, sink: RecordingSink, tmp_path: Path):  # type: ignore[no-untyped-def]
    gw, pf = _milter(gateway_factory, tmp_path)
    pf.relayhost = sink.address
    with pf:
        gw.start()
        yield gw, pf


def test_clean_mail_is_delivered_by_postfix_with_our_trace_and_client_ip(
    stack: tuple[GatewayProcess, postfix.PostfixInstance], sink: RecordingSink, tmp_path: Path
) -> None:
    gw, pf = stack
    msg = clean_message(subject="milter clean")
    msg["X-Zerohour-Scan"] = "clean; db=forged"  # a sender's forgery is removed
    # from 127.0.0.2: Postfix connects to us from 127.0.0.1, our log must name the client
    reply, done = _send(pf, tmp_path, msg, "--local-interface", "127.0.0.2")
    assert reply.code == 250, done.stdout
    assert not sink.wait_for_ids({str(msg["Message-ID"])}, timeout=60), pf.log() + gw.log()
    got = next(m for m in sink.messages if m.message_id == msg["Message-ID"])
    traces = re.findall(rb"(?im)^X-Zerohour-Scan:[^\r\n]*", got.data)
    assert len(traces) == 1, got.data[:800]
    assert traces[0].lower().startswith(b"x-zerohour-scan: clean; db=")
    assert b"forged" not in got.data
    assert b"by postfix.e2e.test (Postfix)" in got.data
    assert wait_until(lambda: "milter.verdict" in gw.log(), timeout=10)
    assert re.search(r"milter\.verdict .*action=accept peer=127\.0\.0\.2", gw.log()), gw.log()
    assert re.search(r": client=unknown\[127\.0\.0\.2\]", gw.log()), gw.log()
    assert re.search(r": status=accepted \(milter: Postfix delivers it\)", gw.log()), gw.log()
    # nothing kept by us: Postfix delivered it
    assert json.loads(gw.cli("queue", "list", "--json").stdout) == []
    assert gw.stop() == 0  # SIGTERM stops the milter thread and the gateway cleanly
    assert "gateway.stopped" in gw.log()


def test_eicar_is_refused_in_postfix_smtp_dialogue_without_a_bounce(
    stack: tuple[GatewayProcess, postfix.PostfixInstance], sink: RecordingSink, tmp_path: Path
) -> None:
    _gw, pf = stack
    infected = eicar_attachment()
    reply, done = _send(pf, tmp_path, infected)
    assert reply.code == 554, done.stdout
    assert "5.7.1" in reply.text, reply
    assert "Eicar" in reply.text, reply
    assert wait_until(lambda: "milter-reject" in pf.log(), timeout=10), pf.log()
    clean = clean_message(subject="after eicar")
    assert _send(pf, tmp_path, clean)[0].code == 250
    assert not sink.wait_for_ids({str(clean["Message-ID"])}, timeout=60)
    assert infected["Message-ID"] not in sink.message_ids()
    assert all("report" not in (m.header("Content-Type") or "") for m in sink.messages)
    assert wait_until(lambda: "queue is empty" in pf.queue_listing().lower(), timeout=20), (
        pf.queue_listing()
    )  # no bounce waiting either


def test_outbreak_hold_keeps_mail_with_us_and_release_delivers_through_postfix(
    stack: tuple[GatewayProcess, postfix.PostfixInstance], sink: RecordingSink, tmp_path: Path
) -> None:
    gw, pf = stack
    wave = OutbreakSpec("ob-milter", "MilterWave", scope=Scope(has_attachment=True))
    declare(gw.spec.data_dir, wave)
    time.sleep(1.5)  # the gateway sees the store change within a second
    zipped = with_zip("held by the milter")
    plain = clean_message(subject="plain during outbreak")
    assert _send(pf, tmp_path, zipped)[0].code == 250  # the client got its 250
    assert _send(pf, tmp_path, plain)[0].code == 250
    assert not sink.wait_for_ids({str(plain["Message-ID"])}, timeout=60), pf.log()
    held = json.loads(gw.cli("hold", "list", "--outbreak", "ob-milter", "--json").stdout)
    assert held["total"] == 1, held
    assert zipped["Message-ID"] not in sink.message_ids()
    assert wait_until(lambda: "milter-discard" in pf.log(), timeout=10), pf.log()
    released = gw.cli("hold", "release", "--outbreak", "ob-milter")
    assert released.returncode == 0, released.stderr
    assert not sink.wait_for_ids({str(zipped["Message-ID"])}, timeout=60), pf.log() + gw.log()
    got = next(m for m in sink.messages if m.message_id == zipped["Message-ID"])
    assert (got.header("X-Zerohour-Scan") or "").startswith("clean")
    # it went back through Postfix's milter-less smtpd
    assert f":{pf.reinject_port}" in gw.log() or "postfix/reinject" in pf.log()


def test_quarantine_policy_keeps_the_virus_and_postfix_discards_it(
    gateway_factory: GatewayFactory, sink: RecordingSink, tmp_path: Path
) -> None:
    gw, pf = _milter(gateway_factory, tmp_path, scan={"infected": "quarantine"})
    pf.relayhost = sink.address
    with pf:
        gw.start()
        infected = eicar_attachment()
        clean = clean_message(subject="clean after quarantine")
        assert _send(pf, tmp_path, infected)[0].code == 250
        assert _send(pf, tmp_path, clean)[0].code == 250
        assert not sink.wait_for_ids({str(clean["Message-ID"])}, timeout=60)
        assert infected["Message-ID"] not in sink.message_ids()
        listed = json.loads(gw.cli("quarantine", "list", "--json").stdout)
        assert len(listed["messages"] if isinstance(listed, dict) else listed) == 1, listed


def test_no_milter_answer_means_tempfail_not_pass(
    gateway_factory: GatewayFactory, sink: RecordingSink, tmp_path: Path
) -> None:
    """The milter is down: Postfix (milter_default_action = tempfail) must not pass mail."""
    _gw, pf = _milter(gateway_factory, tmp_path)
    pf.relayhost = sink.address
    with pf:  # the milter never started
        reply, done = _send(pf, tmp_path, eicar_attachment())
        assert reply.code == 451, done.stdout
        assert sink.messages == []


def test_long_lines_reach_the_recipient_folded_as_we_scanned_them(
    stack: tuple[GatewayProcess, postfix.PostfixInstance], sink: RecordingSink, tmp_path: Path
) -> None:
    """A 1,500-octet header line and body line: we scan them folded at 998 (`prepare`), so
    Postfix's copy is changed to the same folding (chgheader/replacebody) before it delivers."""
    _gw, pf = stack
    mid = "<long-lines@milter.test>"
    long_subject = "S" * 1500
    long_body = "B" * 1500
    raw = (
        f"From: a@sender.test\r\nTo: bob@example.test\r\nMessage-ID: {mid}\r\n"
        f"X-Long: {long_subject}\r\nSubject: long\r\n\r\nfirst\r\n{long_body}\r\nlast\r\n"
    ).encode()
    path = tmp_path / "long.eml"
    path.write_bytes(raw)
    reply, done = swaks_send(pf.port, path)
    assert reply.code == 250, done.stdout
    assert not sink.wait_for_ids({mid}, timeout=60), pf.log()
    got = next(m for m in sink.messages if m.message_id == mid)
    assert max(map(len, got.data.split(b"\r\n"))) <= 998
    head, body = got.data.split(b"\r\n\r\n", 1)
    # the header continues with CRLF SPACE, the body line is split with CRLF (gateway.prepare)
    assert b"X-Long: " + b"S" * 990 + b"\r\n " + b"S" * 510 in head, head[:1200]
    assert b"B" * 998 + b"\r\n" + b"B" * 502 + b"\r\n" in body, body[:1200]
