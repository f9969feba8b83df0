"""Too many concurrent sessions: beyond the limit a new connection gets a 421 greeting and is
closed (RFC 5321 §3.1: 421 instead of 220 when the service is not available); the sessions
already open keep working, and a slot freed is usable again."""

from __future__ import annotations

import contextlib

import pytest

from helpers.gateway import GatewayFactory, gateway_toml, requires_gateway_marks
from helpers.net import wait_until
from helpers.smtp import ConnectionClosed, RawSmtp

pytestmark = requires_gateway_marks()

LIMIT = 3


def test_session_beyond_limit_gets_421(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(config_toml=gateway_toml(smtp={"max_sessions": LIMIT}))
    with contextlib.ExitStack() as stack:
        open_sessions = [stack.enter_context(RawSmtp(gw.port)) for _ in range(LIMIT)]
        for raw in open_sessions:
            assert raw.hello().code == 250
        with RawSmtp(gw.port) as extra:
            try:
                greeting = extra.reply(timeout=15)
            except ConnectionClosed:
                pytest.fail("closed without the 421 greeting that tells the client to retry")
            # Postfix (anvil): "421 4.7.0 <host> Error: too many connections from <addr>".
            assert (greeting.code, greeting.enhanced) == (421, "4.7.0"), str(greeting)
            assert extra.closed_by_peer(timeout=5)
        for raw in open_sessions:
            assert raw.cmd("NOOP").code == 250  # the established ones are unaffected
        assert open_sessions[0].cmd("QUIT").code == 221
        open_sessions[0].close()

        def slot_free() -> bool:
            with RawSmtp(gw.port) as again:
                return again.reply(timeout=15).code == 220

        assert wait_until(slot_free, timeout=10, interval=0.2), "freed slot never reusable"
