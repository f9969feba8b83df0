"""Backscatter: a forged sender with recipients the next hop does not know made us accept,
then bounce to the forged sender. With `smtp.relay_recipients` (Postfix's
relay_recipient_maps) unknown recipients of our relay domains are refused at RCPT
(550 5.1.1, Postfix's reply), so no DSN is ever generated for them; the file is re-read when
it changes, and a broken edit keeps the last good table."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from helpers.gateway import GatewayFactory, gateway_toml, requires_gateway_marks
from helpers.net import wait_until
from helpers.smtp import RawSmtp
from zerohour.errors import ConfigError
from zerohour.gateway.recipients import RelayRecipients, parse

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
