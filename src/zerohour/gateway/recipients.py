"""Which recipients of our relay domains exist: Postfix's relay_recipient_maps, as a file.

Without it every address at a relay domain is accepted, and the next hop's "user unknown" turns
into a DSN to whatever sender the spammer forged (backscatter). With `smtp.relay_recipients`
(`--relay-recipients FILE`), an address at a relay domain must be listed: one address per line,
or `@domain` for every address of a domain; `#` starts a comment; case does not matter. The file
is re-read when it changes (looked at, at most, once a second while RCPTs arrive); a file that
no longer parses keeps the last good table, with a warning.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from zerohour.errors import ConfigError

log = logging.getLogger("zerohour.smtp")

_RECHECK = 1.0


@dataclass(frozen=True, slots=True)
class _Table:
    addresses: frozenset[str]
    domains: frozenset[str]


def parse(text: str, source: str) -> _Table:
    addresses: set[str] = set()
    domains: set[str] = set()
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip().lower()
        if not line:
            continue
        if any(c.isspace() for c in line) or "@" not in line:
            raise ConfigError(f"{source}:{n}: expected an address or @domain, got {raw.strip()!r}")
        local, _, domain = line.rpartition("@")
        domain = domain.rstrip(".")
        if not domain:
            raise ConfigError(f"{source}:{n}: no domain in {raw.strip()!r}")
        if not local:
            domains.add(domain)  # "@domain": every address there
        else:
            addresses.add(f"{local}@{domain}")
    return _Table(frozenset(addresses), frozenset(domains))


class RelayRecipients:
    """The recipient table of one file, re-read when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int, int] | None = None
        self._checked = 0.0
        self._table = self._load()  # a file that does not load is a start-up error

    def _stat(self) -> tuple[int, int, int, int]:
        st = os.stat(self.path)
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _load(self) -> _Table:
        try:
            stamp = self._stat()
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"smtp.relay_recipients: cannot read {self.path}: {exc}") from None
        table = parse(text, str(self.path))
        self._stamp = stamp
        return table

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._checked < _RECHECK:
            return
        self._checked = now
        try:
            if self._stat() == self._stamp:
                return
            self._table = self._load()
            log.info("smtp.relay_recipients reloaded path=%s addresses=%d domains=%d",
                     self.path, len(self._table.addresses), len(self._table.domains))
        except (OSError, ConfigError) as exc:
            log.warning("smtp.relay_recipients reload failed, keeping the last table: %s", exc)

    def allows(self, address: str) -> bool:
        """`address` (at one of our relay domains) is a known recipient."""
        self._maybe_reload()
        local, _, domain = address.lower().rpartition("@")
        domain = domain.rstrip(".")
        t = self._table
        return domain in t.domains or f"{local}@{domain}" in t.addresses
