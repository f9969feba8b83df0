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


def _greeting(gw: object) -> tuple[RawSmtp, int, str]:
    raw = RawSmtp(gw.port)  # type: ignore[attr-defined]
    try:
        reply = raw.reply(timeout=15)
    except ConnectionClosed:
        raw.close()
        pytest.fail("closed without a greeting")
    return raw, reply.code, str(reply)


def test_one_client_cannot_take_every_slot(gateway_factory: GatewayFactory) -> None:
    """Found by the hostile-sender review: one address parking 100 idle connections got every
    other client a 421 for minutes. Now an untrusted address holds at most
    `smtp.max_sessions_per_client` (Postfix's smtpd_client_connection_count_limit and reply);
    its established sessions keep working, and a slot it frees is its own again."""
    gw = gateway_factory(config_toml=gateway_toml(smtp={
        "max_sessions": 10, "max_sessions_per_client": 2, "mynetworks": ["192.0.2.0/24"]}))
    with contextlib.ExitStack() as stack:
        held = []
        for _ in range(2):
            raw, code, _text = _greeting(gw)
            stack.callback(raw.close)
            assert code == 220
            held.append(raw)
        extra, code, text = _greeting(gw)
        with extra:
            assert code == 421, text
            assert "4.7.0" in text
            assert "too many connections from 127.0.0.1" in text
            assert extra.closed_by_peer(timeout=5)
        assert held[0].cmd("NOOP").code == 250
        assert held[1].cmd("QUIT").code == 221
        held[1].close()

        def own_slot_free() -> bool:
            raw, code, _text = _greeting(gw)
            raw.close()
            return code == 220

        assert wait_until(own_slot_free, timeout=10, interval=0.2)


def test_trusted_networks_are_exempt_from_the_per_client_limit(
    gateway_factory: GatewayFactory,
) -> None:
    gw = gateway_factory(config_toml=gateway_toml(smtp={
        "max_sessions": 10, "max_sessions_per_client": 1, "mynetworks": ["127.0.0.0/8"]}))
    with contextlib.ExitStack() as stack:
        for _ in range(3):
            raw, code, text = _greeting(gw)
            stack.callback(raw.close)
            assert code == 220, text


def test_stress_mode_gives_new_sessions_the_short_timeout(
    gateway_factory: GatewayFactory,
) -> None:
    """Postfix's stress mode: near the session limit, new sessions get a short command timeout
    (an idle one is dropped with 421 4.4.2), while the sessions before it keep theirs."""
    gw = gateway_factory(config_toml=gateway_toml(smtp={
        "max_sessions": 10, "stress_threshold": 0.5, "stress_timeout": 1.0,
        "command_timeout": 300.0}))
    with contextlib.ExitStack() as stack:
        calm, code, _ = _greeting(gw)  # at most 2 of 10 sessions: below the threshold
        stack.callback(calm.close)
        assert code == 220
        opened = []
        for _ in range(5):  # the last of these is the 6th session at least: stress
            raw, code, _ = _greeting(gw)
            stack.callback(raw.close)
            assert code == 220
            opened.append(raw)
        timeout = opened[-1].reply(timeout=15)
        assert (timeout.code, timeout.enhanced) == (421, "4.4.2"), str(timeout)
        assert opened[-1].closed_by_peer(timeout=5)
        assert calm.cmd("NOOP").code == 250  # its own 300 s timeout
