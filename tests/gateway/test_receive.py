"""SMTP receive details in process: the DATA reader's edges, pipelining, STARTTLS, EHLO."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import subprocess
from pathlib import Path
from typing import Any

from gateway.conftest import Running, make_config, message, start_gateway, wait_for


async def raw_session(port: int, data: bytes, read_for: float = 2.0) -> bytes:
    """Send `data` (after reading the greeting) and collect replies until quiet or closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = await reader.readline()
    writer.write(data)
    await writer.drain()
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), read_for)
            if not chunk:
                break
            out += chunk
    except TimeoutError:
        pass
    writer.close()
    return out


def codes(transcript: bytes) -> list[str]:
    return [line[:3].decode() for line in transcript.split(b"\r\n") if line[3:4] == b" "]


async def test_ehlo_advertises_extensions(gateway: Running) -> None:
    out = await raw_session(gateway.port, b"EHLO c.test\r\nQUIT\r\n")
    for ext in (b"SIZE 10240000", b"8BITMIME", b"SMTPUTF8", b"PIPELINING",
                b"ENHANCEDSTATUSCODES"):
        assert ext in out
    assert b"STARTTLS" not in out  # no certificate configured


async def test_pipelined_transactions_after_data_are_kept(gateway: Running, sink: Any) -> None:
    """Commands the client pipelines right after the final dot must not be lost (the chunked
    DATA reader hands back what it read past the terminator)."""
    one = message("first")
    two = message("second")
    data = (
        b"EHLO c.test\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n"
        + one + b".\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n"
        + two + b".\r\nQUIT\r\n"
    )
    out = await raw_session(gateway.port, data)
    assert codes(out)[-1] == "221"
    assert codes(out).count("354") == 2
    got = await wait_for(lambda: len(sink.messages) == 2 and sink.messages)
    assert sorted(m.header("Subject") for m in got) == ["first", "second"]


async def test_only_crlf_dot_crlf_ends_data(gateway: Running, sink: Any) -> None:
    """`\\n.\\n` and `\\r\\n.\\n` are not the end of data: with bare newlines refused, the
    whole attempt is refused with 550 5.5.2 and the connection closed; nothing is delivered."""
    smuggle = (
        b"EHLO c.test\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n"
        b"Subject: outer\r\n\r\nhello\r\n.\n"
        b"MAIL FROM:<ceo@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n"
        b"Subject: smuggled\r\n\r\nwire money\r\n.\r\n"
    )
    out = await raw_session(gateway.port, smuggle)
    assert b"550 5.5.2" in out
    assert b"bare <LF>" in out
    await asyncio.sleep(0.3)
    assert sink.messages == []


async def test_bare_newlines_accepted_and_normalised_when_configured(
    tmp_path: Path, sink: Any
) -> None:
    run = await start_gateway(
        make_config(tmp_path / "d", sink.address, **{"smtp.bare_newline": "accept"})
    )
    try:
        data = (
            b"EHLO c.test\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<b@example.test>\r\n"
            b"DATA\r\nSubject: lf\r\n\r\nline one\nline two\r\n.\r\nQUIT\r\n"
        )
        out = await raw_session(run.port, data)
        assert codes(out)[-2:] == ["250", "221"]
        got = await wait_for(lambda: sink.messages)
        assert got[0].data.endswith(b"line one\r\nline two\r\n")
    finally:
        await run.gw.stop()


async def test_accepted_bare_lf_dot_line_is_kept_and_relayed_stuffed(
    tmp_path: Path, sink: Any
) -> None:
    """With bare newlines accepted, a "." line ended (or begun) by a bare LF is content: not the
    end of data and not an empty line: the next hop gets the line "." (sent as "..": unstuffed,
    aiosmtpd would end the message there) in one message. Other lines are unstuffed as if the
    bare LF were CRLF ("..", ".x" after a bare LF become ".", "x")."""
    run = await start_gateway(
        make_config(tmp_path / "d", sink.address, **{"smtp.bare_newline": "accept"})
    )
    try:
        body = b"lf\n.\nmid\r\n.\nend\n.\r\nstuffed\n..\ndot\n.x\r\nlast\r\n"
        data = (
            b"EHLO c.test\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<b@example.test>\r\n"
            b"DATA\r\nSubject: dots\r\n\r\n" + body + b".\r\nQUIT\r\n"
        )
        out = await raw_session(run.port, data)
        assert codes(out)[-2:] == ["250", "221"], out
        want = b"lf\r\n.\r\nmid\r\n.\r\nend\r\n.\r\nstuffed\r\n.\r\ndot\r\nx\r\nlast\r\n"
        got = await wait_for(lambda: sink.messages)
        await asyncio.sleep(0.3)  # a second (split) message would arrive by now
        assert len(sink.messages) == 1
        assert got[0].data.endswith(b"\r\n\r\n" + want), got[0].data
    finally:
        await run.gw.stop()


async def test_empty_body_and_first_line_dot(gateway: Running, sink: Any) -> None:
    out = await raw_session(
        gateway.port,
        b"EHLO c.test\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<b@example.test>\r\n"
        b"DATA\r\n.\r\nQUIT\r\n",
    )
    assert codes(out)[-2:] == ["250", "221"]
    got = await wait_for(lambda: sink.messages)
    assert got[0].header("X-Zerohour-Scan") is not None


async def test_oversize_gets_552_and_session_continues(tmp_path: Path, sink: Any) -> None:
    run = await start_gateway(
        make_config(tmp_path / "d", sink.address, **{"smtp.max_message_size": 2000})
    )
    try:
        big = b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 100
        data = (
            b"EHLO c.test\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n"
            + big + b".\r\nNOOP\r\nQUIT\r\n"
        )
        out = await raw_session(run.port, data)
        assert b"552 5.3.4" in out
        assert codes(out)[-2:] == ["250", "221"]  # NOOP still answered
    finally:
        await run.gw.stop()


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=gw.test"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


async def test_starttls_with_configured_certificate(tmp_path: Path, sink: Any) -> None:
    cert, key = await asyncio.to_thread(_self_signed, tmp_path)
    run = await start_gateway(
        make_config(
            tmp_path / "d", sink.address,
            **{"smtp.tls_cert": str(cert), "smtp.tls_key": str(key)},
        )
    )
    try:
        def go() -> tuple[bool, dict[str, Any]]:
            ctx = ssl.create_default_context(cafile=str(cert))
            ctx.check_hostname = False
            with smtplib.SMTP("127.0.0.1", run.port, timeout=30) as s:
                s.ehlo()
                offered = s.has_extn("starttls")
                s.starttls(context=ctx)
                s.ehlo()
                assert not s.has_extn("starttls")
                assert not s.has_extn("auth")  # no AUTH mechanism exists, none is offered
                return offered, s.sendmail("a@sender.test", ["b@example.test"], message("tls"))

        offered, refused = await asyncio.to_thread(go)
        assert offered
        assert refused == {}
        got = await wait_for(lambda: sink.messages)
        assert b"with ESMTPS" in got[0].data  # the Received: header says it came over TLS
    finally:
        await run.gw.stop()


async def test_postmaster_without_domain_goes_to_first_relay_domain(
    tmp_path: Path, sink: Any
) -> None:
    """RFC 5321 4.5.1: RCPT TO:<postmaster> (any case, no domain) is accepted from anyone and
    delivered to postmaster@ the first relay domain; with a domain, it is an address like any."""
    run = await start_gateway(
        make_config(tmp_path / "d", sink.address,
                    **{"smtp.relay_domains": ["example.test", "example.org"]})
    )
    try:
        out = await raw_session(
            run.port,
            b"EHLO c.test\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<postmaster>\r\n"
            b"RCPT TO:<postmaster@elsewhere.test>\r\nRCPT TO:<postmaster%elsewhere.test>\r\n"
            b"QUIT\r\n",
        )
        assert codes(out)[-5:] == ["250", "250", "554", "554", "221"], out
        assert b"554 5.7.1 <postmaster@elsewhere.test>: Relay access denied" in out
        refused = await run.sendmail("a@sender.test", ["PostMaster"], message("to postmaster"))
        assert refused == {}
        got = await wait_for(lambda: sink.messages)
        assert got[0].rcpt_tos == ("postmaster@example.test",)
    finally:
        await run.gw.stop()


async def test_postmaster_without_domain_nor_relay_domains_is_refused(
    tmp_path: Path, sink: Any
) -> None:
    run = await start_gateway(make_config(tmp_path / "d", sink.address,
                                          **{"smtp.relay_domains": []}))
    try:
        out = await raw_session(
            run.port,
            b"EHLO c.test\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<postmaster>\r\nQUIT\r\n",
        )
        assert b"554 5.7.1 <postmaster>: Relay access denied" in out, out
    finally:
        await run.gw.stop()


async def test_state_after_starttls_is_a_fresh_sessions(tmp_path: Path, sink: Any) -> None:
    """RFC 3207 4.2: after STARTTLS the server forgets what the client said before (EHLO, the
    transaction, XFORWARD): the same commands get the same replies as in a new session."""
    cert, key = await asyncio.to_thread(_self_signed, tmp_path)
    run = await start_gateway(
        make_config(
            tmp_path / "d", sink.address,
            **{"smtp.tls_cert": str(cert), "smtp.tls_key": str(key),
               "smtp.mynetworks": ["127.0.0.0/8"]},  # trusted: XFORWARD is allowed
        )
    )
    sessions: list[Any] = []
    new_session = run.gw.receiver.new_session

    def record() -> Any:
        sessions.append(new_session())
        return sessions[-1]

    run.gw.receiver.new_session = record  # type: ignore[method-assign]
    probe = ["DATA", "RCPT TO:<b@example.test>", "EHLO c.test", "DATA",
             "RCPT TO:<b@example.test>"]
    try:
        def go() -> tuple[list[Any], list[Any], bool]:
            ctx = ssl.create_default_context(cafile=str(cert))
            ctx.check_hostname = False
            with smtplib.SMTP("127.0.0.1", run.port, timeout=30) as s:
                fresh = [s.docmd(c) for c in probe]
            with smtplib.SMTP("127.0.0.1", run.port, timeout=30) as s:
                s.ehlo()
                assert s.docmd("XFORWARD ADDR=203.0.113.9 HELO=x.test")[0] == 250
                assert s.docmd("MAIL FROM:<a@sender.test>")[0] == 250
                assert s.docmd("RCPT TO:<b@example.test>")[0] == 250
                s.starttls(context=ctx)
                assert s.docmd("NOOP")[0] == 250  # the server is past the handshake
                forwarded = bool(sessions[-1].forwarded)
                return fresh, [s.docmd(c) for c in probe], forwarded

        fresh, after, forwarded = await asyncio.to_thread(go)
        assert fresh[0] == (503, b"5.5.1 Error: send HELO first")
        assert fresh[3] == (503, b"5.5.1 Error: need RCPT command")  # DATA without MAIL
        assert fresh[4] == (503, b"5.5.1 Error: need MAIL command")
        assert [r for i, r in enumerate(after) if i != 2] == [
            r for i, r in enumerate(fresh) if i != 2]
        assert not forwarded, "XFORWARD attributes survived STARTTLS"
    finally:
        await run.gw.stop()


def test_fast_address_parser_matches_aiosmtpd() -> None:
    from aiosmtpd.smtp import SMTP

    from zerohour.gateway.receive import GatewaySMTP

    cases = [
        "<a@b.test>",
        "<a@b.test>  ",
        "<A.B@Example.TEST>\tSIZE=1",
        "<first.last+tag@sub.example.test> SIZE=100 BODY=8BITMIME",
        "  <x@y.z>",
        "<o'brien@example.test>",
        "<a..b@example.test>",
        '<"quoted local"@example.test>',
        "<a@[127.0.0.1]>",
        "<>",
        "<a@b.test",
        "a@b.test",
        "<@relay.test:a@b.test>",
        "<user@-bad.test>",
        "<" + "l" * 70 + "@example.test>",
    ]

    class Probe(GatewaySMTP):
        def __init__(self, limit: int) -> None:  # no I/O: only the parser is used
            self.local_part_limit = limit

    class Plain(SMTP):
        def __init__(self, limit: int) -> None:
            self.local_part_limit = limit

    for limit in (64, 0):  # 0: the gateway's own (no local-part limit), aiosmtpd's default
        fast, slow = Probe(limit), Plain(limit)
        for arg in cases:
            assert fast._getaddr(arg) == slow._getaddr(arg), (limit, arg)


async def test_null_reverse_path_accepted_and_relayed(gateway: Running, sink: Any) -> None:
    out = await raw_session(
        gateway.port,
        b"EHLO c.test\r\nMAIL FROM:<>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n"
        b"Subject: bounce\r\n\r\nreport\r\n.\r\nQUIT\r\n",
    )
    assert codes(out)[-4:] == ["250", "354", "250", "221"], out
    got = await wait_for(lambda: sink.messages)
    assert got[0].mail_from in ("", "<>")
    store = gateway.gw.store
    assert store is not None
    assert (await store.list_messages())[0].sender == ""


# The session protocol in process, on a fake transport: what goes out in which write, and when.


class _Wire(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("192.0.2.7", 2525) if name == "peername" else default

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


class _HeldSink:
    """Accepts each message once `release` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.got: list[Any] = []

    async def accept(self, msg: Any) -> Any:
        from zerohour.gateway.decide import Action, Decision
        from zerohour.gateway.receive import Disposition

        self.got.append(msg)
        await self.release.wait()
        return Disposition("Q1", Decision(Action.DELIVER, "ok"))


def _session(sink: Any, **smtp: Any) -> tuple[Any, _Wire]:
    import ipaddress

    from zerohour.config import HostPort, SmtpConfig
    from zerohour.gateway.receive import Receiver

    base: dict[str, Any] = {
        "listen": HostPort("127.0.0.1", 0), "hostname": "gw.test",
        "relay_domains": ("example.test",),
        "mynetworks": (ipaddress.ip_network("203.0.113.0/24"),),
        "max_message_size": 100_000, "max_recipients": 100, "max_line_length": 2048,
        "max_header_size": 102_400, "command_timeout": 300.0, "data_timeout": 300.0,
        "max_sessions": 10, "max_errors": 20, "tls_cert": None, "tls_key": None,
        "bare_newline": "reject",
    }
    session = Receiver(SmtpConfig(**(base | smtp)), sink).new_session()
    wire = _Wire()
    session.connection_made(wire)
    assert wire.writes.pop(0) == b"220 gw.test ESMTP zerohour\r\n"
    return session, wire


async def test_pipelined_commands_are_answered_in_one_write() -> None:
    session, wire = _session(_HeldSink())
    session.data_received(b"EHLO c.test\r\nMAIL FROM:<a@sender.test>\r\n"
                          b"RCPT TO:<b@example.test>\r\nDATA\r\n")
    assert len(wire.writes) == 1, wire.writes
    assert wire.writes[0].endswith(
        b"250 HELP\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n")
    assert session._task is None  # nothing was awaited
    session.connection_lost(None)


async def test_one_message_in_flight_and_what_follows_waits() -> None:
    sink = _HeldSink()
    session, wire = _session(sink)
    session.data_received(b"EHLO c.test\r\nMAIL FROM:<a@sender.test>\r\n"
                          b"RCPT TO:<b@example.test>\r\nDATA\r\nSubject: one\r\n\r\nhi\r\n.\r\n"
                          b"NOOP\r\n")
    await asyncio.sleep(0)
    assert len(sink.got) == 1
    assert wire.writes[-1].endswith(b"354 End data with <CR><LF>.<CR><LF>\r\n")  # no NOOP yet
    assert wire.reading  # the client waits for our reply: no need to stop reading
    session.data_received(b"QUIT\r\n")  # more while the hand-off runs: read no further
    assert not wire.reading
    wire.writes.clear()
    sink.release.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert wire.writes == [b"250 2.0.0 Ok: queued as Q1\r\n250 2.0.0 OK\r\n221 2.0.0 Bye\r\n"]
    assert wire.closed
    session.connection_lost(None)


async def test_a_full_write_buffer_stops_the_session_until_it_drains() -> None:
    session, wire = _session(_HeldSink())
    session.pause_writing()
    assert not wire.reading
    session.data_received(b"EHLO c.test\r\nNOOP\r\n")
    assert wire.writes == []
    session.resume_writing()
    assert wire.reading
    assert len(wire.writes) == 1
    assert wire.writes[0].endswith(b"250 HELP\r\n250 2.0.0 OK\r\n")
    session.connection_lost(None)


async def test_command_line_limits() -> None:
    """aiosmtpd's: 512 octets, MAIL 548 after EHLO; longer lines are read to their end and
    refused with 500, and one ending in a bare LF is still a bare LF."""
    session, wire = _session(_HeldSink())
    session.data_received(b"HELO c.test\r\n")
    mail = b"MAIL FROM:<" + b"a" * 520 + b"@b.test>\r\n"  # 538 octets without CRLF
    session.data_received(mail)
    assert wire.writes[-1] == b"500 5.5.2 Command line too long\r\n"
    session.data_received(b"EHLO c.test\r\n" + mail)
    assert wire.writes[-1].endswith(b"250 2.1.0 Ok\r\n")
    session.data_received(b"NOOP " + b"x" * 3000)
    session.data_received(b"x" * 3000 + b"\r")
    session.data_received(b"\nNOOP\r\n")
    assert wire.writes[-1] == b"500 5.5.2 Command line too long\r\n250 2.0.0 OK\r\n"
    session.data_received(b"NOOP " + b"x" * 3000 + b"\n")
    assert wire.writes[-1] == b"550 5.5.2 gw.test Error: bare <LF> received\r\n"
    assert wire.closed
    session.connection_lost(None)


async def test_data_timeout_cuts_a_dribbling_message_before_the_idle_timeout() -> None:
    """Each DATA chunk moves the idle deadline, never data_timeout's (one timer serves both)."""
    session, wire = _session(_HeldSink(), command_timeout=5.0, data_timeout=0.3)
    session.data_received(b"EHLO c.test\r\nMAIL FROM:<a@sender.test>\r\n"
                          b"RCPT TO:<b@example.test>\r\nDATA\r\n")
    start = asyncio.get_running_loop().time()
    while not wire.closed and asyncio.get_running_loop().time() - start < 3:
        session.data_received(b"x")
        await asyncio.sleep(0.05)
    assert wire.closed
    assert wire.writes[-1] == b"421 4.4.2 Error: timeout exceeded\r\n"
    assert asyncio.get_running_loop().time() - start < 1.0
    session.connection_lost(None)


async def test_idle_timeout_after_commands() -> None:
    session, wire = _session(_HeldSink(), command_timeout=0.3)
    session.data_received(b"EHLO c.test\r\n")
    await asyncio.sleep(0.2)
    session.data_received(b"NOOP\r\n")  # moves the deadline
    await asyncio.sleep(0.2)
    assert not wire.closed
    await asyncio.sleep(0.3)
    assert wire.closed
    assert wire.writes[-1] == b"421 4.4.2 gw.test Error: timeout exceeded\r\n"
    session.connection_lost(None)


async def test_help_does_not_list_auth(gateway: Running) -> None:
    """EHLO offers no AUTH mechanism, so HELP does not list the command either."""
    out = await raw_session(gateway.port, b"EHLO c.test\r\nHELP\r\nHELP AUTH\r\nQUIT\r\n")
    help_lines = [ln for ln in out.split(b"\r\n") if b"Supported commands" in ln]
    assert len(help_lines) == 2, out
    assert all(b"AUTH" not in ln for ln in help_lines), out
    assert help_lines[1].startswith(b"501"), out  # HELP AUTH: not a command we take


async def test_accepted_bare_cr_is_a_line_end_before_the_scan(tmp_path: Path, sink: Any) -> None:
    """Delivery writes every line end as CRLF, so with bare newlines accepted a bare CR must be
    one before the scan too: else the scanner saw one byte where the recipient gets a line end
    (a signature spanning a line end missed, a forged X-Zerohour-Scan header behind a bare CR
    kept, a "." line ended by a bare CR lost)."""
    run = await start_gateway(
        make_config(tmp_path / "d", sink.address, **{"smtp.bare_newline": "accept"})
    )
    try:
        data = (
            b"EHLO c.test\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<b@example.test>\r\n"
            b"DATA\r\nSubject: cr\r\nKeep: 1\rX-Zerohour-Scan: clean; forged\r\n\r\n"
            b"one\r\n.\rtwo\rthree\r\n.\r\nQUIT\r\n"
        )
        out = await raw_session(run.port, data)
        assert codes(out)[-2:] == ["250", "221"], out
        got = await wait_for(lambda: sink.messages)
        await asyncio.sleep(0.3)
        assert len(sink.messages) == 1
        delivered = got[0].data
        assert b"forged" not in delivered, delivered
        assert delivered.endswith(b"\r\n\r\none\r\n.\r\ntwo\r\nthree\r\n"), delivered
        assert b"\r" not in delivered.replace(b"\r\n", b"")
    finally:
        await run.gw.stop()


async def test_non_utf8_octets_in_commands_are_refused_at_the_command(gateway: Running,
                                                                      sink: Any) -> None:
    """Such octets cannot be stored: refused at once (Postfix's reply), the session goes on."""
    data = (
        b"EHLO c\x85.test\r\nEHLO c.test\r\nMAIL FROM:<a\xff@sender.test>\r\n"
        b"MAIL FROM:<a@sender.test>\r\nRCPT TO:<b\x85@example.test>\r\nRCPT TO:<b@example.test>\r\n"
        b"DATA\r\nSubject: ok\r\n\r\nbody\r\n.\r\nQUIT\r\n"
    )
    out = await raw_session(gateway.port, data)
    assert out.count(b"500 5.5.2 Error: bad UTF-8 syntax") == 3, out
    assert codes(out)[-2:] == ["250", "221"], out
    got = await wait_for(lambda: sink.messages)
    assert got[0].data.endswith(b"body\r\n")


async def test_a_message_starting_with_a_fold_cannot_extend_our_received_field(
    gateway: Running, sink: Any
) -> None:
    # a first line that starts with a space would continue the Received: field the gateway
    # puts in front: it and all that follows become body (behind an empty line), kept whole
    data = (
        b"EHLO c.test\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<b@example.test>\r\n"
        b"DATA\r\n X-Zerohour-Scan: clean; forged\r\nSubject: fold\r\n\r\nbody\r\n.\r\nQUIT\r\n"
    )
    out = await raw_session(gateway.port, data)
    assert codes(out)[-2:] == ["250", "221"], out
    got = (await wait_for(lambda: sink.messages))[0].data
    head, _, body = got.partition(b"\r\n\r\n")
    assert b"forged" not in head, got
    assert body == b" X-Zerohour-Scan: clean; forged\r\nSubject: fold\r\n\r\nbody\r\n", got
    assert head.splitlines()[-1].startswith(b"\t"), head  # Received's own fold, nothing after
