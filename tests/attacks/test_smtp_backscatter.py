"""Backscatter: a forged sender with recipients the next hop does not know made us accept,
then bounce to the forged sender. With `smtp.relay_recipients` (Postfix's
relay_recipient_maps) unknown recipients of our relay domains are refused at RCPT
(550 5.1.1, Postfix's reply), so no DSN is ever generated for them; the file is re-read when
it changes, and a broken edit keeps the last good table. Without either (or
`smtp.verify_recipients`, test_smtp_verify_recipients.py) the DSNs that do go out are bounded:
one per delivery attempt, the original's header only, a capped recipient list; and never for a
null sender or for infected mail."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from helpers.clients import smtplib_send
from helpers.gateway import GatewayFactory, gateway_toml, requires_gateway_marks
from helpers.messages import eicar_attachment
from helpers.net import wait_until
from helpers.sinks import ReceivedMessage, RecordingSink
from helpers.smtp import RawSmtp
from zerohour.errors import ConfigError
from zerohour.gateway.deliver import DSN_MAX_HEADERS, DSN_MAX_LISTED, build_dsn, dsn_refusal
from zerohour.gateway.recipients import RelayRecipients, parse
from zerohour.store.base import MessageRecord, MessageState

pytestmark = requires_gateway_marks()


def _rcpt(port: int, addr: str) -> tuple[int, str]:
    with RawSmtp(port) as raw:
        raw.hello()
        assert raw.cmd("MAIL FROM:<forged@elsewhere.test>").code == 250
        reply = raw.cmd(f"RCPT TO:<{addr}>")
        return reply.code, str(reply)


def _touch(path: Path, text: str) -> None:
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def test_unknown_recipients_are_refused_at_rcpt(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    table = tmp_path / "recipients"
    table.write_text("# known people\nbob@example.test\n@lists.example.test\n")
    gw = gateway_factory(relay_domains=("example.test", "lists.example.test"),
                         config_toml=gateway_toml(smtp={"relay_recipients": str(table)}))
    assert _rcpt(gw.port, "bob@example.test")[0] == 250
    assert _rcpt(gw.port, "BOB@Example.Test")[0] == 250
    assert _rcpt(gw.port, "anyone@lists.example.test")[0] == 250
    code, text = _rcpt(gw.port, "eve@example.test")
    assert code == 550
    assert "5.1.1" in text
    assert "User unknown in relay recipient table" in text
    assert _rcpt(gw.port, "victim@elsewhere.test")[0] == 554  # relay rules come first

    _touch(table, "bob@example.test\neve@example.test\n")
    assert wait_until(lambda: _rcpt(gw.port, "eve@example.test")[0] == 250, timeout=15,
                      interval=0.3)
    assert _rcpt(gw.port, "anyone@lists.example.test")[0] == 550  # the @domain line is gone

    _touch(table, "eve@example.test\nthis line is broken\n")
    time.sleep(1.5)  # a reload was tried and refused
    assert _rcpt(gw.port, "eve@example.test")[0] == 250
    assert _rcpt(gw.port, "bob@example.test")[0] == 250  # the last good table stays


@pytest.mark.parametrize("text", ["no-at-sign\n", "two words@example.test\n", "@bad domain\n",
                                  "@\n", "@example.test\nbob@\n"])
def test_a_broken_table_is_a_clear_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "r"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"r:\d+: "):
        RelayRecipients(path)


def test_a_missing_table_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        RelayRecipients(tmp_path / "missing")


def test_parse_lowercases_and_strips_comments() -> None:
    t = parse("Bob@Example.TEST  # our bob\n\n@Lists.Example.Test.\n", "x")
    assert t.addresses == {"bob@example.test"}
    assert t.domains == {"lists.example.test"}


# What a DSN may carry: a forged sender gets at most one, bounded, without the body ------------

FLOOD = 1000


def _is_dsn(m: ReceivedMessage) -> bool:
    return "report" in (m.header("Content-Type") or "").lower()


def test_a_thousand_refused_recipients_give_one_bounded_dsn_without_the_body(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    """No recipient table, no verification: a forged sender, 1,000 recipients the next hop
    refuses. The forged sender (the backscatter victim) gets one DSN: the original's header
    (cut to DSN_MAX_HEADERS), DSN_MAX_LISTED recipients and a count of the rest, no body."""
    rcpts = [f"nobody{i}@example.test" for i in range(FLOOD)]
    for r in rcpts:
        sink.refuse_rcpts[r] = f"550 5.1.1 <{r}>: Recipient address rejected: User unknown"
    gw = gateway_factory(next_hop=sink.address)
    body_marker = "BODY-OF-THE-ORIGINAL-" + "x" * 40
    filler = "".join(f"X-Filler-{i}: {'v' * 70}\r\n" for i in range(300))  # ~25 KB of header
    data = (
        "From: victim@forged.test\r\nTo: undisclosed-recipients:;\r\n"
        "Subject: spam with a forged sender\r\nMessage-ID: <flood@spam.test>\r\n"
        f"{filler}\r\n" + f"{body_marker}\r\n" * 2000  # ~130 KB of body
    ).encode()
    reply = smtplib_send(gw.port, data, sender="victim@forged.test", recipients=rcpts)
    assert reply.code == 250, str(reply)
    assert wait_until(lambda: any(_is_dsn(m) for m in sink.messages), timeout=60)
    time.sleep(2.0)  # time for a second DSN, if one were coming
    dsns = [m for m in sink.messages if _is_dsn(m)]
    assert len(dsns) == 1
    dsn = dsns[0]
    assert dsn.rcpt_tos == ("victim@forged.test",)
    assert dsn.mail_from in ("", "<>")
    assert len(dsn.data) < 10_000 + DSN_MAX_LISTED * 1_000, len(dsn.data)
    assert body_marker.encode() not in dsn.data
    parts = {p.get_content_type(): p for p in dsn.message.walk()}
    headers = parts["text/rfc822-headers"].get_payload()
    assert "Subject: spam with a forged sender" in headers
    assert len(headers.encode()) <= DSN_MAX_HEADERS
    status = dsn.data.decode()
    assert status.count("Final-Recipient: rfc822;") == DSN_MAX_LISTED
    assert f"and {FLOOD - DSN_MAX_LISTED} more recipients" in status
    assert "<flood@spam.test>" not in sink.message_ids()  # every recipient was refused


def test_mail_forced_out_of_the_quarantine_never_bounces(
    gateway_factory: GatewayFactory, sink: RecordingSink
) -> None:
    """An administrator forces an infected message out of the quarantine; the next hop refuses
    its recipient: no DSN goes to its (likely forged) sender."""
    sink.refuse_rcpts["bob@example.test"] = "550 5.1.1 <bob@example.test>: User unknown"
    gw = gateway_factory(
        next_hop=sink.address, config_toml=gateway_toml(scan={"infected": "quarantine"})
    )
    assert smtplib_send(gw.port, eicar_attachment()).code == 250

    def quarantined() -> list[str]:
        done = gw.cli("quarantine", "list", "--json")
        assert done.returncode == 0, done.stderr
        return [m["queue_id"] for m in json.loads(done.stdout)["messages"]]

    assert wait_until(quarantined, timeout=30)
    (qid,) = quarantined()
    forced = gw.cli("quarantine", "release", qid, "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert wait_until(lambda: f"deliver.no_dsn queue_id={qid} reason=infected" in gw.log(),
                      timeout=30), gw.log()[-3000:]
    assert re.search(rf"{qid}: to=<bob@example.test>, .*status=bounced", gw.log()), gw.log()
    time.sleep(1.0)
    assert [m for m in sink.messages if _is_dsn(m)] == []


def _record(**kw: object) -> MessageRecord:
    base: dict[str, object] = {
        "queue_id": "Q1", "sender": "a@x.test", "recipients": (), "size": 1,
        "received_at": 0.0, "state": MessageState.QUEUED, "verdict": "clean",
    }
    base.update(kw)
    return MessageRecord(**base)  # type: ignore[arg-type]


def test_dsn_refusal_reasons() -> None:
    assert dsn_refusal(_record()) == ""
    assert dsn_refusal(_record(sender="")) == "null sender"
    assert dsn_refusal(_record(verdict="infected")) == "infected"
    assert dsn_refusal(_record(findings=("Eicar-Test-Signature",))) == "infected"
    assert dsn_refusal(_record(kind="dsn")) != ""


def test_build_dsn_without_a_header_body_separator_is_still_bounded() -> None:
    original = b"".join(b"X-H-%d: %s\r\n" % (i, b"h" * 100) for i in range(1000))
    failed = {f"r{i}@example.test": "550 5.1.1 " + "why " * 500 for i in range(200)}
    dsn = build_dsn("gw.test", _record(), failed, original)
    assert len(dsn) < 10_000 + DSN_MAX_LISTED * 1_000
    assert b"why " * 60 not in dsn  # each diagnostic cut short
    assert b"and 150 more recipients" in dsn
