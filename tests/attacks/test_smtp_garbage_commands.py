"""Garbage and overlong commands get 500 5.5.x (RFC 5321 §4.2.4: 500 syntax error, command
unrecognized / line too long); too many errors end the session with 421, like Postfix's
smtpd_hard_error_limit."""

from __future__ import annotations

import pytest

from helpers.gateway import GatewayFactory, GatewayProcess, gateway_toml, requires_gateway_marks
from helpers.smtp import ConnectionClosed, RawSmtp

pytestmark = requires_gateway_marks()

GARBAGE = {
    "unknown-verb": b"FROBNICATE now",
    "binary": b"\x00\x01\x02\xff\xfe garbage \x7f",
    "http": b"GET / HTTP/1.1",
    "empty": b"",
}


@pytest.fixture(scope="module")
def gw(module_gateway_factory: GatewayFactory) -> GatewayProcess:
    return module_gateway_factory()


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_command_gets_5xx_syntax_error(gw: GatewayProcess, name: str) -> None:
    with RawSmtp(gw.port) as raw:
        raw.hello()
        reply = raw.cmd(GARBAGE[name])
        assert reply.code in (500, 502), str(reply)  # Postfix: 502 5.5.2 for unknown verbs
        assert reply.enhanced.startswith("5.5."), str(reply)
        assert raw.cmd("NOOP").code == 250  # the session survives one bad line


def test_overlong_command_gets_500(gw: GatewayProcess) -> None:
    with RawSmtp(gw.port) as raw:
        raw.hello()
        reply = raw.cmd(b"MAIL FROM:<" + b"a" * 5000 + b"@sender.test>")
        assert reply.code == 500, str(reply)
        assert reply.enhanced.startswith("5.5."), str(reply)


def test_too_many_errors_close_the_session_with_421(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(config_toml=gateway_toml(smtp={"max_errors": 3}))
    with RawSmtp(gw.port) as raw:
        raw.hello()
        codes: list[int] = []
        try:
            for _ in range(10):
                last = raw.cmd(b"BOGUS")
                codes.append(last.code)
                if codes[-1] == 421:
                    break
        except ConnectionClosed:
            pytest.fail(f"closed without a 421 after replies {codes}")
        assert codes[-1] == 421, codes
        assert last.enhanced == "4.7.0", str(last)  # Postfix: 421 4.7.0 too many errors
        assert len(codes) <= 4, codes
        assert raw.closed_by_peer(timeout=5)
