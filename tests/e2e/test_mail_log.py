"""The mail log (issue 12): one Postfix-style line per message event, keyed by the queue id,
from a real `zerohour gateway run` with real SMTP clients and a real next hop.

`QUEUEID: client=...`, `from=<...>, size=N, nrcpt=N`, per recipient `to=<...>, relay=HOST[IP]:PORT,
delay=..., delays=a/b/c, dsn=X.Y.Z, status=sent|deferred|bounced (...)`, message-level
`status=held|released|quarantined|rejected (...)` and `removed`; `log_format = "json"` gives the
same events as one JSON object per line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from helpers.clients import smtplib_send
from helpers.gateway import GatewayFactory, GatewayProcess, gateway_toml, requires_gateway_marks
from helpers.messages import RECIPIENT, SENDER, clean_message, eicar_attachment
from helpers.net import wait_until
from helpers.sinks import RecordingSink
from helpers.smtp import RawSmtp
from zerohour.demo.mail import build
from zerohour.demo.stack import GatewayOptions, ProviderProcess, send_mail
from zerohour.demo.stack import GatewayProcess as StackGateway

pytestmark = requires_gateway_marks()

JSON = gateway_toml(root={"log_format": "json"})
SENT = re.compile(
    r"^to=<(?P<to>[^>]*)>, relay=(?P<relay>\S+), delay=[\d.]+, delays=[\d.]+/[\d.]+/[\d.]+, "
    r"dsn=(?P<dsn>\d\.\d+\.\d+), status=(?P<status>\w+) \((?P<detail>.*)\)$"
)


def queue_id(text: str) -> str:
    m = re.search(r"queued as (\S+)", text)
    assert m, f"no queue id in the reply: {text!r}"
    return m.group(1)


def events(gw: GatewayProcess, qid: str) -> list[str]:
    """The text after `QUEUEID: ` of every mail log line about `qid`, in order."""
    marker = f" {qid}: "
    return [line.split(marker, 1)[1] for line in gw.log().splitlines() if marker in line]


def parse_json_log(text: str) -> list[dict[str, Any]]:
    """Every line as JSON (the harness's own `=====` and the start-up line on stdout
    excepted): one that does not parse fails the test."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("=====") or line.startswith("zerohour gateway listening"):
            continue
        out.append(json.loads(line))
    return out


def json_lines(gw: GatewayProcess) -> list[dict[str, Any]]:
    return parse_json_log(gw.log())


def wait_removed(gw: GatewayProcess, qid: str) -> list[str]:
    assert wait_until(lambda: "removed" in events(gw, qid), timeout=60), gw.log()[-3000:]
    return events(gw, qid)


def test_clean_message_client_from_sent_removed(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    gw = gateway_factory(next_hop=sink.address)
    reply = smtplib_send(gw.port, clean_message(subject="mail log"))
    qid = queue_id(reply.text)
    got = wait_removed(gw, qid)
    assert len(sink.messages) == 1
    assert got[0] == "client=unknown[127.0.0.1], helo=<smtplib.e2e.test>", got
    size = len(sink.messages[0].data) - len("X-Zerohour-Scan: clean; db=\r\n")
    frm = re.fullmatch(rf"from=<{SENDER}>, size=(\d+), nrcpt=1, verdict=clean, scan=[\d.]+", got[1])
    assert frm, got
    assert int(frm.group(1)) <= size  # the size we stored; delivery adds the trace header
    sent = SENT.match(got[2])
    assert sent, got
    assert sent["to"] == RECIPIENT
    assert sent["relay"] == f"127.0.0.1[127.0.0.1]:{sink.port}"  # the sink, as Postfix says it
    assert (sent["status"], sent["dsn"]) == ("sent", "2.0.0")
    assert sent["detail"].startswith("250 "), got
    assert got[3:] == ["removed"], got
    assert "message.decision" not in gw.log()  # replaced, not logged beside


@pytest.mark.parametrize("infected", ["reject", "quarantine"])
def test_eicar_is_logged_rejected_or_quarantined(
    gateway_factory: GatewayFactory, sink: RecordingSink, infected: str
) -> None:
    gw = gateway_factory(
        next_hop=sink.address, config_toml=gateway_toml(scan={"infected": infected})
    )
    reply = smtplib_send(gw.port, eicar_attachment())
    if infected == "reject":
        assert reply.code == 554, str(reply)
        line = next(x for x in gw.log().splitlines() if "status=rejected" in x)
        qid = line.split(" zerohour.mail ", 1)[1].split(":", 1)[0]
        want = "status=rejected (554 5.7.1 Message rejected: virus found: Eicar-Test-Signature)"
    else:
        assert reply.code == 250, str(reply)
        qid = queue_id(reply.text)
        want = "status=quarantined (infected: Eicar-Test-Signature)"
    got = events(gw, qid)
    assert got[0].startswith("client=unknown[127.0.0.1]"), got
    assert re.fullmatch(
        rf"from=<{SENDER}>, size=\d+, nrcpt=1, verdict=infected, scan=[\d.]+", got[1]
    )
    assert got[2:] == [want], got  # never a to= line, never removed: nothing was queued
    assert sink.messages == []


def test_bounce_and_its_dsn(gateway_factory: GatewayFactory, sink: RecordingSink) -> None:
    sink.refuse_rcpts["gone@example.test"] = "550 5.1.1 <gone@example.test>: no such user"
    gw = gateway_factory(next_hop=sink.address)
    reply = smtplib_send(gw.port, clean_message(), recipients=[RECIPIENT, "gone@example.test"])
    qid = queue_id(reply.text)
    got = wait_removed(gw, qid)
    by_rcpt = {m["to"]: m for m in map(SENT.match, got) if m}
    assert by_rcpt[RECIPIENT]["status"] == "sent", got
    gone = by_rcpt["gone@example.test"]
    assert (gone["status"], gone["dsn"]) == ("bounced", "5.1.1"), got
    assert gone["detail"] == "550 5.1.1 <gone@example.test>: no such user"
    notice = [e for e in got if e.startswith("sender non-delivery notification: ")]
    assert len(notice) == 1, got
    dsn_id = notice[0].rsplit(" ", 1)[1]
    dsn = wait_removed(gw, dsn_id)
    assert re.fullmatch(r"from=<>, size=\d+, nrcpt=1", dsn[0]), dsn
    to_sender = SENT.match(dsn[1])
    assert to_sender, dsn
    assert (to_sender["to"], to_sender["status"]) == (SENDER, "sent"), dsn


def test_deferred_then_sent_as_json(gateway_factory: GatewayFactory) -> None:
    hop = RecordingSink()  # not started yet: connection refused
    gw = gateway_factory(next_hop=hop.address, config_toml=JSON)
    qid = queue_id(smtplib_send(gw.port, clean_message(subject="json")).text)

    def mine() -> list[dict[str, Any]]:
        return [x for x in json_lines(gw) if x.get("queue_id") == qid]

    assert wait_until(lambda: any(x.get("status") == "deferred" for x in mine()), timeout=30)
    hop.start()
    try:
        assert wait_until(lambda: any(x.get("event") == "removed" for x in mine()), timeout=60)
    finally:
        hop.stop()
    got = mine()
    assert [x["event"] for x in got][:2] == ["client", "received"], got
    assert got[0]["client_ip"] == "127.0.0.1"
    assert (got[1]["from"], got[1]["nrcpt"], got[1]["verdict"]) == (SENDER, 1, "clean")
    deferred = next(x for x in got if x.get("status") == "deferred")
    assert (deferred["to"], deferred["relay"], deferred["dsn"]) == (RECIPIENT, "none", "4.4.1")
    assert deferred["detail"].startswith("connect to "), deferred
    sent = next(x for x in got if x.get("status") == "sent")
    assert sent["relay"] == f"127.0.0.1[127.0.0.1]:{hop.port}"
    assert sent["delay"] >= deferred["delay"]
    for x in got:  # every line: the base keys, and its text form as msg
        assert {"ts", "level", "logger", "msg"} <= x.keys()
        assert x["logger"] == "zerohour.mail"
        assert x["msg"].startswith(f"{qid}: ")
    assert sent["msg"].endswith(f"status=sent ({sent['detail']})")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_peer_text_in_helo_and_mail_from_cannot_forge_a_line(
    gateway_factory: GatewayFactory, sink: RecordingSink, fmt: str
) -> None:
    forged = "FAKE1234: to=<victim@example.test>, status=sent (250 ok)"
    gw = gateway_factory(next_hop=sink.address, config_toml=gateway_toml(root={"log_format": fmt}))
    with RawSmtp(gw.port) as raw:
        assert raw.hello(f"evil\x1b[31m\r{forged}").code == 250
        mail = raw.cmd(f'MAIL FROM:<"x\x1b[2J\r{forged}"@sender.test>'.encode())
        assert mail.code == 501, str(mail)  # control characters in an address: refused
        assert raw.cmd("MAIL FROM:<x@sender.test>").code == 250
        assert raw.cmd(f"RCPT TO:<{RECIPIENT}>").code == 250
        assert raw.cmd("DATA").code == 354
        raw.send(b"Subject: injection\r\n\r\nhi\r\n.\r\n")
        qid = queue_id(raw.reply().text)
        raw.cmd("QUIT")
    assert sink.wait_for(1)
    gw.stop()
    log = gw.log()
    assert "\x1b" not in log
    assert "\r" not in log
    assert not any(line.lstrip().startswith("FAKE1234") for line in log.splitlines())
    if fmt == "json":
        mine = [x for x in json_lines(gw) if x.get("queue_id") == qid]
        helo = next(x["helo"] for x in mine if x["event"] == "client")
        sender = next(x["from"] for x in mine if x["event"] == "received")
        assert helo == f"evil\\x1b[31m\\x0d{forged}"
        assert sender == "x@sender.test"
        assert "FAKE1234" not in {x.get("queue_id") for x in json_lines(gw)}
    else:
        got = events(gw, qid)
        assert got[0] == f"client=unknown[127.0.0.1], helo=<evil\\x1b[31m\\x0d{forged}>"
        assert got[1].startswith("from=<x@sender.test>, ")
        assert events(gw, "FAKE1234") == []


@pytest.mark.timeout(300)
def test_outbreak_hold_then_release_as_json_without_library_chatter(
    tmp_path: Path, sink: RecordingSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real provider declares an outbreak: new mail is `held`, the end of the outbreak
    `released` it, then it is `sent`. Gateway (ZEROHOUR_LOG_FORMAT=json) and provider
    (--log-format json) both write nothing but JSON lines, and nothing from a library: the
    gateway polls every 0.3 s with httpx, whose one INFO line per request stays off."""
    monkeypatch.setenv("ZEROHOUR_LOG_FORMAT", "json")
    provider = ProviderProcess(
        tmp_path / "provider", tmp_path / "provider.log", ("--log-format", "json")
    ).start()
    gw: StackGateway | None = None
    try:
        gw = StackGateway(
            tmp_path / "gw", tmp_path / "gw.log", provider, sink.address,
            GatewayOptions(poll_interval=0.3, udp=True),  # udp: it subscribes
        ).start()  # fmt: skip
        log = gw.log_path

        def lines() -> list[dict[str, Any]]:
            return parse_json_log(log.read_text())

        oid = provider.declare("Log.Worm")
        assert wait_until(lambda: oid in gw.cli("status", "--json"), timeout=60), lines()
        assert send_mail(gw.smtp_port, build("clean", 1, None), "held-1@outside.test").accepted
        received = [x for x in lines() if x.get("from") == "held-1@outside.test"]
        assert len(received) == 1, lines()
        qid = received[0]["queue_id"]

        def mine() -> list[dict[str, Any]]:
            return [x for x in lines() if x.get("queue_id") == qid]

        held = next(x for x in mine() if x["event"] == "status")
        assert held["status"] == "held", mine()
        assert oid in held["detail"]
        assert held["msg"] == f"{qid}: status=held ({held['detail']})"
        assert sink.messages == []

        provider.end(oid)
        assert wait_until(lambda: mine()[-1]["event"] == "removed", timeout=60), mine()
        got = mine()
        released = [x for x in got if x.get("status") == "released"]
        assert len(released) == 1, got
        assert released[0]["actor"] == "notice"  # the end notice released it
        assert got.index(released[0]) < got.index(next(x for x in got if x.get("status") == "sent"))
        assert [m.rcpt_tos for m in sink.messages] == [("user@example.test",)]
    finally:
        if gw is not None:
            gw.stop()
        provider.stop()
    gateway_lines = parse_json_log((tmp_path / "gw.log").read_text())
    provider_lines = parse_json_log((tmp_path / "provider.log").read_text())
    assert any("provider.subscribed" in x["msg"] for x in provider_lines), provider_lines
    for x in gateway_lines + provider_lines:
        assert x["logger"].startswith("zerohour") or x["level"] in ("WARNING", "ERROR"), x
