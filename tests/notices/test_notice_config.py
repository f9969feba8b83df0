"""Notice settings that would silently do nothing are errors at start (issue 9, section 4):
`--udp-listen` / `--control-address` without a per-gateway credential, and a control-mail target
the provider cannot connect to (the bind address 0.0.0.0)."""

from __future__ import annotations

from typing import Any

import pytest

from notices.support import zerohour
from zerohour import config
from zerohour.config import HostPort
from zerohour.errors import ConfigError

KEY = "zerohour-lab ed25519:" + "A" * 43 + "="
BASE = {"notices.provider": "http://127.0.0.1:8470", "notices.provider_key": KEY}


def load(**flags: Any) -> config.Config:
    return config.load(
        env={}, flags={**BASE, **{k.replace("__", "."): v for k, v in flags.items()}}
    )


@pytest.mark.parametrize(
    "flags",
    [
        {"notices__udp_listen": "0.0.0.0:8471"},
        {"notices__control_address": "notices@gw.example"},
        {"notices__udp_listen": "127.0.0.1:0", "notices__control_address": "n@gw.example"},
    ],
)
def test_push_transports_need_a_credential(flags: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="subscription_token"):
        load(**flags)
    assert load(**flags, notices__subscription_token="zhgw_x").notices.subscription_token


def test_push_settings_need_a_provider() -> None:
    with pytest.raises(ConfigError, match=r"notices\.provider"):
        config.load(env={}, flags={"notices.udp_listen": "127.0.0.1:0"})


def test_control_smtp_is_where_the_provider_connects() -> None:
    ok = load(
        notices__control_address="n@gw.example",
        notices__subscription_token="t",
        notices__control_smtp="mx1.gw.example:25",
    )
    assert ok.notices.control_smtp == HostPort("mx1.gw.example", 25)
    for bad in ("0.0.0.0:25", "[::]:25", "mx.gw.example:0"):
        with pytest.raises(ConfigError, match="control_smtp"):
            load(
                notices__control_address="n@gw.example",
                notices__subscription_token="t",
                notices__control_smtp=bad,
            )
    with pytest.raises(ConfigError, match="control_address"):
        load(notices__subscription_token="t", notices__control_smtp="mx.gw.example:25")


def test_cli_exits_2_with_a_clear_message() -> None:
    for cmd in ("config", "gateway"):
        args = [cmd, "check"] if cmd == "config" else [cmd, "run"]
        res = zerohour(
            *args,
            "--provider",
            BASE["notices.provider"],
            "--provider-key",
            KEY,
            "--udp-listen",
            "127.0.0.1:0",
            "--data-dir",
            "/nonexistent/zh",
            timeout=120,
        )
        assert res.returncode == 2, res.stderr
        assert "subscription_token (--subscription-token)" in res.stderr
        assert "provider gateway add" in res.stderr
