"""docs/settings.md documents every setting of config.py, with the default the code uses.

The reference is written by hand; this keeps it from drifting: a setting added to
`config.DEFAULTS` without a row, a row for a setting that no longer exists, or a default changed
on one side only fails here.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from zerohour import config

DOC = Path(__file__).resolve().parents[1] / "docs" / "settings.md"
_ROW = re.compile(r"^\|\s*`([a-z_.]+)`\s*\|([^|]*)\|\s*`([^`]*)`\s*\|(.*)\|\s*$")


def documented() -> dict[str, tuple[str, str, str]]:
    """Rows of the settings tables: name -> (type, default as TOML, meaning)."""
    rows: dict[str, tuple[str, str, str]] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = _ROW.match(line)
        if m is None:
            continue
        name, kind, default, meaning = (g.strip() for g in m.groups())
        assert name not in rows, f"{name} documented twice"
        rows[name] = (kind, default, meaning)
    return rows


def code_default(name: str) -> Any:
    sec, _, key = name.rpartition(".")
    return config.DEFAULTS[sec][key]


def test_the_table_parser_reads_the_rows() -> None:
    """The checks below mean nothing if the parser finds no rows."""
    rows = documented()
    assert len(rows) > 40
    assert rows["smtp.listen"][1] == '"127.0.0.1:2525"'


def test_every_setting_is_documented_and_nothing_else() -> None:
    names = set(config.setting_names())
    rows = set(documented())
    assert sorted(names - rows) == [], "settings missing from docs/settings.md"
    assert sorted(rows - names) == [], "docs/settings.md documents settings config.py lacks"


def test_every_row_has_a_type_and_a_meaning() -> None:
    empty = [n for n, (kind, _, meaning) in documented().items() if not kind or not meaning]
    assert empty == []


@pytest.mark.parametrize("name", config.setting_names())
def test_the_documented_default_is_the_codes(name: str) -> None:
    row = documented().get(name)
    if row is None:
        pytest.fail(f"{name} is not in docs/settings.md")
    value = tomllib.loads(f"v = {row[1]}")["v"]
    assert value == code_default(name), f"{name}: docs say {row[1]}"
    assert type(value) is type(code_default(name)), f"{name}: docs say {row[1]}"


def test_the_documented_defaults_make_a_valid_config_file(tmp_path: Path) -> None:
    """The default column, pasted into a TOML file, loads to the built-in configuration."""
    sections: dict[str, list[str]] = {}
    for name, (_, default, _) in documented().items():
        sec, _, key = name.rpartition(".")
        sections.setdefault(sec, []).append(f"{key} = {default}")
    text = "\n".join(sections.pop("", []))
    for sec, lines in sections.items():
        text += f"\n[{sec}]\n" + "\n".join(lines)
    path = tmp_path / "defaults.toml"
    path.write_text(text + "\n", encoding="utf-8")
    assert config.load(path, env={}) == config.load(env={})
