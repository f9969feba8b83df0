"""Ignore lists: .ign2 (`Name` or `Name:md5`, one per line) and the older .ign (`db:line:Name`).

As in ClamAV (readdb.c `cli_loadign`, `cli_chkign`), a signature is dropped when its name is
listed exactly; with `:md5`, only when that MD5 is the MD5 of the signature's own database line
(so an .ign2 entry retires one version of a signature, not a later fixed one with the same
name). A wrong MD5 drops nothing. For `.cdb` lines ClamAV hashes only the name (its line buffer
is already split by then), and for YARA rules the rule name: callers pass what ClamAV hashes.
"""

from __future__ import annotations

import hashlib

from zerohour.errors import SignatureSyntaxError


def parse_ignore_entry(line: str, legacy: bool = False) -> tuple[str, bytes | None]:
    """(name, md5 of the line it retires, or None for any line of that name)."""
    fields = line.split(":")
    md5: bytes | None = None
    if legacy and len(fields) >= 3:
        name = fields[2]
    elif len(fields) > 3:
        raise SignatureSyntaxError("expected Name or Name:md5")
    elif len(fields) == 3:
        name = fields[2]  # ClamAV reads any three-field line the old (.ign) way
    else:
        name = fields[0]
        if len(fields) == 2:
            try:
                md5 = bytes.fromhex(fields[1])
            except ValueError:
                md5 = None
            if md5 is None or len(md5) != 16:
                raise SignatureSyntaxError(f"malformed MD5 {fields[1]!r}")
    name = name.strip()
    if not name:
        raise SignatureSyntaxError("empty signature name")
    return name, md5


def parse_ignore_line(line: str, legacy: bool = False) -> str:
    """The signature name an ignore line names."""
    return parse_ignore_entry(line, legacy)[0]


class IgnoreList:
    """The ignore entries of a database, checked against each signature as it loads."""

    def __init__(self) -> None:
        self._md5s: dict[str, set[bytes]] = {}
        self._any: set[str] = set()

    def add(self, name: str, md5: bytes | None) -> None:
        if md5 is None:
            self._any.add(name)
        else:
            self._md5s.setdefault(name, set()).add(md5)

    def drops(self, name: str, entry: str) -> bool:
        """Whether the signature `name`, loaded from the text `entry`, is ignored."""
        if name in self._any:
            return True
        wanted = self._md5s.get(name)
        if not wanted:
            return False
        return hashlib.md5(entry.encode("utf-8", "surrogateescape"),
                           usedforsecurity=False).digest() in wanted

    def names(self) -> frozenset[str]:
        return frozenset(self._any | set(self._md5s))

    def __bool__(self) -> bool:
        return bool(self._any or self._md5s)
