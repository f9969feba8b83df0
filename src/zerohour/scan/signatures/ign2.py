"""Ignore lists: .ign2 (one signature name per line) and the older .ign (`db:line:name`)."""

from __future__ import annotations

from zerohour.errors import SignatureSyntaxError


def parse_ignore_line(line: str, legacy: bool = False) -> str:
    """The signature name to drop (`Name:md5` in .ign2 ignores by name; the md5 is advisory)."""
    name = line.split(":")[2] if legacy and line.count(":") >= 2 else line.split(":")[0]
    name = name.strip()
    if not name:
        raise SignatureSyntaxError("empty signature name")
    return name
