"""Settings: defaults < TOML file < ZEROHOUR_* environment < flags, validated once."""

from __future__ import annotations

from pathlib import Path

import pytest

from zerohour.config import load
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
