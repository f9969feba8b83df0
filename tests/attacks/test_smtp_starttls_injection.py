"""STARTTLS command injection (CVE-2011-0411 class): commands a client pipelines in plaintext
right after STARTTLS must be thrown away, never executed inside the TLS session (an attacker
in the middle could otherwise inject them). Plus the positive path: swaks --tls delivers."""

from __future__ import annotations

from pathlib import Path

from helpers.clients import swaks_send
from helpers.gateway import GatewayFactory, GatewayProcess, gateway_toml, requires_gateway_marks
from helpers.messages import clean_message
from helpers.sinks import RecordingSink
from helpers.smtp import ConnectionClosed, RawSmtp
from helpers.tls import self_signed

pytestmark = requires_gateway_marks()


def tls_gateway(
    gateway_factory: GatewayFactory, sink: RecordingSink, tmp_path: Path
) -> GatewayProcess:
    cert, key = self_signed(tmp_path / "tls")
    return gateway_factory(
        next_hop=sink.address,
        config_toml=gateway_toml(smtp={"tls_cert": str(cert), "tls_key": str(key)}),
    )


def test_starttls_is_offered_and_swaks_delivers_over_it(
    gateway_factory: GatewayFactory, sink: RecordingSink, tmp_path: Path
) -> None:
    gw = tls_gateway(gateway_factory, sink, tmp_path)
    msg = clean_message(subject="over tls")
    data = tmp_path / "m.eml"
    data.write_bytes(msg.as_bytes())
    reply, done = swaks_send(gw.port, data, extra=["--tls"])
    assert reply.code == 250, done.stdout
    assert "TLS started" in done.stdout, done.stdout
    assert not sink.wait_for_ids({str(msg["Message-ID"])})


def test_plaintext_pipelined_after_starttls_is_discarded(
    gateway_factory: GatewayFactory, sink: RecordingSink, tmp_path: Path
) -> None:
    gw = tls_gateway(gateway_factory, sink, tmp_path)
    with RawSmtp(gw.port) as raw:
        assert "STARTTLS" in raw.hello().text
        raw.send(b"STARTTLS\r\nMAIL FROM:<injected@sender.test>\r\n")
        assert raw.reply().code == 220
        raw.starttls()
        assert raw.leftover == b"", f"server answered the injected command: {raw.leftover!r}"
        try:
            ehlo = raw.cmd("EHLO client.test")
        except ConnectionClosed:
            return  # dropping the session is a safe answer to an injection attempt
        assert ehlo.code == 250, str(ehlo)
        assert len(ehlo.text.splitlines()) > 1, f"first reply inside TLS is not EHLO's: {ehlo}"
        assert "STARTTLS" not in ehlo.text  # already in TLS
        mail = raw.cmd("MAIL FROM:<alice@sender.test>")
        assert mail.code == 250, f"the injected MAIL was executed (nested MAIL?): {mail}"
