"""Settings: defaults < TOML file < ZEROHOUR_* environment < flags, validated once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from zerohour.config import TlsLevel, load
from zerohour.errors import ConfigError


def test_defaults_are_safe() -> None:
    cfg = load(env={})
    assert cfg.smtp.listen.host == "127.0.0.1"
    assert cfg.notices.provider == ""
    assert cfg.notices.stream is True
    assert cfg.notices.poll is True


def test_layers_override_in_order(tmp_path: Path) -> None:
    f = tmp_path / "gw.toml"
    f.write_text(
        '[notices]\nstream = false\npoll_interval = 5.0\n[smtp]\nlisten = "127.0.0.1:2600"\n'
    )
    assert load(f, env={}).notices.stream is False
    assert load(f, env={}).notices.poll_interval == 5.0
    env = {"ZEROHOUR_NOTICES_POLL_INTERVAL": "7", "ZEROHOUR_SMTP_LISTEN": "127.0.0.1:2700"}
    cfg = load(f, env=env)
    assert cfg.notices.poll_interval == 7.0
    assert cfg.smtp.listen.port == 2700
    cfg = load(f, env=env, flags={"smtp.listen": "127.0.0.1:2800", "notices.poll": None})
    assert cfg.smtp.listen.port == 2800
    assert cfg.notices.poll is True  # a flag not given leaves the lower layers alone


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[notices]\nstream = \"maybe\"\n", "notices.stream"),
        ("[notices]\nnot_a_setting = 1\n", "unknown setting notices.not_a_setting"),
        ("[smtp\n", "config file"),
    ],
)
def test_bad_file_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "gw.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load(f, env={})


def test_provider_needs_its_key() -> None:
    with pytest.raises(ConfigError, match="provider_key"):
        load(env={"ZEROHOUR_NOTICES_PROVIDER": "http://127.0.0.1:1"})


def test_delivery_dns_and_tls_settings_from_file_env_and_flags(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not parsed here: loaded on first verify\n")
    f = tmp_path / "gw.toml"
    f.write_text(
        "[delivery]\n"
        'next_hop = "mx"\n'
        'dns_servers = ["127.0.0.1:5353", "::1", "192.0.2.53"]\n'
        "mx_port = 2525\n"
        'tls_level = "encrypt"\n'
        f'tls_ca_file = "{ca}"\n'
        "[delivery.tls_policy]\n"
        '"Example.COM." = "verify"\n'
        '".example.org" = "secure"\n'
        '"[relay.test]:25" = "none"\n'
    )
    d = load(f, env={}).delivery
    assert d.next_hop is None
    assert [str(s) for s in d.dns_servers] == ["127.0.0.1:5353", "[::1]:53", "192.0.2.53:53"]
    assert d.mx_port == 2525
    assert d.tls_level is TlsLevel.ENCRYPT
    assert d.tls_ca_file == ca
    assert dict(d.tls_policy) == {
        "example.com": TlsLevel.VERIFY,
        ".example.org": TlsLevel.SECURE,
        "[relay.test]:25": TlsLevel.NONE,
    }
    env = {
        "ZEROHOUR_DELIVERY_TLS_POLICY": "a.test=verify, b.test=none",
        "ZEROHOUR_DELIVERY_DNS_SERVERS": "127.0.0.2:53,127.0.0.3",
    }
    d = load(f, env=env).delivery
    assert dict(d.tls_policy) == {"a.test": TlsLevel.VERIFY, "b.test": TlsLevel.NONE}
    assert [str(s) for s in d.dns_servers] == ["127.0.0.2:53", "127.0.0.3:53"]
    assert load(env={}, flags={"delivery.tls_policy": {"c.test": "may"}}).delivery.tls_policy == (
        ("c.test", TlsLevel.MAY),
    )
    shown = load(f, env={}).to_dict()["delivery"]
    assert shown["tls_policy"]["example.com"] == "verify"  # `config check` shows a table
    assert shown["dns_servers"] == ["127.0.0.1:5353", "[::1]:53", "192.0.2.53:53"]


def test_delivery_tls_defaults() -> None:
    d = load(env={}).delivery
    assert d.tls_level is TlsLevel.MAY
    assert d.tls_policy == ()
    assert d.tls_ca_file is None
    assert d.dns_servers == ()
    assert d.mx_port == 25
    # starttls = false (the old switch) is the level none
    assert load(env={}, flags={"delivery.starttls": False}).delivery.tls_level is TlsLevel.NONE


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"delivery.tls_level": "strict"}, "delivery.tls_level: expected one of none, may"),
        ({"delivery.tls_policy": {"a.test": "dane"}}, "delivery.tls_policy: 'a.test' = 'dane'"),
        ({"delivery.tls_policy": "a.test"}, "delivery.tls_policy: expected DOMAIN=LEVEL"),
        ({"delivery.tls_policy": {".": "verify"}}, "delivery.tls_policy: empty domain"),
        ({"delivery.tls_ca_file": "/nonexistent/ca.pem"}, "delivery.tls_ca_file: no such file"),
        (
            {"delivery.starttls": False, "delivery.tls_level": "verify"},
            "delivery.starttls = false contradicts delivery.tls_level = verify",
        ),
        ({"delivery.dns_servers": ["dns.example"]}, "delivery.dns_servers: expected HOST:PORT"),
        (
            {"delivery.dns_servers": ["dns.example:53"]},
            "delivery.dns_servers: 'dns.example:53' is not an IP address",
        ),
        ({"delivery.mx_port": 0}, "delivery.mx_port: must be >= 1"),
        ({"delivery.mx_port": 70000}, "delivery.mx_port: port out of range"),
        ({"delivery.dns_timeout": 0}, "delivery.dns_timeout: must be >= 0.1"),
    ],
)
def test_bad_delivery_dns_and_tls_settings_are_named(
    flags: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load(env={}, flags=flags)
