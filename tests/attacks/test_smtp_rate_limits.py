"""Per-client rate limits, as Postfix's anvil keeps them: new connections
(`smtp.client_connection_rate_limit`, Postfix's smtpd_client_connection_rate_limit) and MAIL
commands (`smtp.client_message_rate_limit`, smtpd_client_message_rate_limit) per address and
`smtp.rate_time_unit`. Beyond, Postfix's replies: `421 4.7.0 <host> Error: too many connections
from <addr>` and `450 4.7.1 Error: too much mail from <addr>`. Another address is unaffected
(the second client binds to 127.0.0.2), and smtp.mynetworks is exempt."""

from __future__ import annotations

import pytest

from helpers.gateway import GatewayFactory, gateway_toml, requires_gateway_marks
from helpers.net import wait_until
from helpers.smtp import ConnectionClosed, RawSmtp
from zerohour import config
from zerohour.gateway.ratelimit import ClientRates

pytestmark = requires_gateway_marks()

# The factory's readiness check connects from 127.0.0.1 and counts like any connection: the
# client under test uses an address of its own.
CLIENT = ("127.0.0.4", 0)
OTHER = ("127.0.0.2", 0)
TRUSTED = ("127.0.0.3", 0)


def _greeting(port: int, source: tuple[str, int] | None = None) -> tuple[int, str, bool]:
    """(code, text, closed by the gateway right after) of one new connection."""
    with RawSmtp(port, source=source) as raw:
        try:
            reply = raw.reply(timeout=15)
        except ConnectionClosed:
            pytest.fail("closed without a greeting")
        closed = reply.code != 220 and raw.closed_by_peer(timeout=5)
        if reply.code == 220:
            raw.cmd("QUIT")
        return reply.code, str(reply), closed


def test_connection_rate_limit_per_client(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(
        config_toml=gateway_toml(
            smtp={"client_connection_rate_limit": 3, "mynetworks": ["127.0.0.3/32"]}
        )
    )
    for _ in range(3):
        assert _greeting(gw.port, CLIENT)[0] == 220
    code, text, closed = _greeting(gw.port, CLIENT)
    assert code == 421, text
    assert text == "421 4.7.0 gw.e2e.test Error: too many connections from 127.0.0.4"
    assert closed
    assert _greeting(gw.port, CLIENT)[0] == 421  # a refused attempt counts too: still refused
    # another client has its own count, and a trusted one none
    for _ in range(3):
        assert _greeting(gw.port, OTHER)[0] == 220
    assert _greeting(gw.port, OTHER)[0] == 421
    for _ in range(6):
        assert _greeting(gw.port, TRUSTED)[0] == 220
    assert "smtp.connection_rate_exceeded peer=127.0.0.4 count=4 limit=3" in gw.log()


def test_connection_rate_window_ends(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(
        config_toml=gateway_toml(smtp={"client_connection_rate_limit": 1, "rate_time_unit": 1})
    )
    assert _greeting(gw.port, CLIENT)[0] == 220
    assert _greeting(gw.port, CLIENT)[0] == 421
    assert wait_until(lambda: _greeting(gw.port, CLIENT)[0] == 220, timeout=15, interval=0.5)


def _mails(port: int, n: int, source: tuple[str, int] | None = None) -> list[str]:
    """MAIL FROM `n` times in one session (RSET between): the replies."""
    out = []
    with RawSmtp(port, source=source) as raw:
        raw.hello()
        for _ in range(n):
            out.append(str(raw.cmd("MAIL FROM:<alice@sender.test>")))
            raw.cmd("RSET")
    return out


def test_message_rate_limit_per_client(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(
        config_toml=gateway_toml(
            smtp={"client_message_rate_limit": 2, "mynetworks": ["127.0.0.3/32"]}
        )
    )
    replies = _mails(gw.port, 2) + _mails(gw.port, 2)  # counted per address, not per session
    assert [r[:3] for r in replies] == ["250", "250", "450", "450"]
    assert replies[2] == "450 4.7.1 Error: too much mail from 127.0.0.1"
    with RawSmtp(gw.port) as raw:  # a refused MAIL leaves no transaction behind
        raw.hello()
        assert raw.cmd("MAIL FROM:<alice@sender.test>").code == 450
        assert raw.cmd("RCPT TO:<bob@example.test>").code == 503
    assert [r[:3] for r in _mails(gw.port, 3, OTHER)] == ["250", "250", "450"]
    assert [r[:3] for r in _mails(gw.port, 5, TRUSTED)] == ["250"] * 5


def test_rates_are_off_when_zero_and_the_defaults() -> None:
    cfg = config.load(env={}, flags={})
    assert cfg.smtp.client_connection_rate_limit == 600
    assert cfg.smtp.client_message_rate_limit == 0
    assert cfg.smtp.rate_time_unit == 60.0


def test_client_rates_windows() -> None:
    now = [100.0]
    rates = ClientRates(10.0, clock=lambda: now[0])
    assert [rates.hit("a") for _ in range(3)] == [1, 2, 3]
    assert rates.hit("b") == 1
    now[0] += 9.9
    assert rates.hit("a") == 4  # the window runs from the first event
    now[0] += 0.1
    assert rates.hit("a") == 1
    assert rates.hit("b") == 1


def test_client_rates_forget_old_windows() -> None:
    now = [0.0]
    rates = ClientRates(1.0, clock=lambda: now[0])
    for i in range(10_000):
        rates.hit(f"10.0.{i // 256}.{i % 256}")
    now[0] = 5.0
    rates.hit("10.9.9.9")  # past the sweep threshold: the ended windows go
    assert len(rates) == 1
