"""Postfix's XFORWARD extension (XFORWARD_README): in the content-filter layout Postfix is our
client, so without it every message would look as if it came from 127.0.0.1. With
`smtp_send_xforward_command = yes` Postfix sends the original client's name, address, HELO and
protocol before MAIL FROM; they go into our Received header, our log lines and the message's
record (the dashboard's "peer").

Accepted only from `smtp.mynetworks` (Postfix's `smtpd_authorized_xforward_hosts`): anybody
else could claim any address. Forwarded attributes never change who is trusted: relay and
per-client limits still look at the connecting host (our trusted Postfix).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

#: The attributes we advertise and accept (Postfix sends these; IDENT/PORT/SOURCE are ignored
#: but accepted, as Postfix's smtpd does).
ATTRIBUTES = ("NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE")
ADVERTISED = "XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT"
_UNAVAILABLE = ("[UNAVAILABLE]", "[TEMPUNAVAIL]")
_XTEXT = re.compile(r"\+([0-9A-Fa-f]{2})")
_SAFE = re.compile(r"^[!-~]{1,255}$")


class XforwardError(ValueError):
    """A refused XFORWARD command; `reply` is the SMTP reply to send."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


@dataclass(slots=True)
class Forwarded:
    """What the upstream MTA told us about its client (None: not forwarded)."""

    name: str | None = None
    addr: str | None = None
    proto: str | None = None
    helo: str | None = None

    def __bool__(self) -> bool:
        return any((self.name, self.addr, self.proto, self.helo))


def _xtext(value: str) -> str:
    return _XTEXT.sub(lambda m: chr(int(m.group(1), 16)), value)


def parse(arg: str, into: Forwarded) -> None:
    """Apply one `XFORWARD attr=value ...` command's arguments to `into` (all or nothing)."""
    if not arg.strip():
        raise XforwardError("501 5.5.4 Syntax: XFORWARD attribute=value...")
    updates: dict[str, str | None] = {}
    for item in arg.split():
        key, eq, raw = item.partition("=")
        key = key.upper()
        if not eq or key not in ATTRIBUTES:
            raise XforwardError(f"501 5.5.4 Bad XFORWARD attribute name: {key[:40]}")
        value = _xtext(raw)
        if not _SAFE.match(value):
            raise XforwardError(f"501 5.5.4 Bad XFORWARD attribute value: {key}")
        if value.upper() in _UNAVAILABLE:
            updates[key] = None
            continue
        if key == "ADDR":
            addr = value[5:] if value.upper().startswith("IPV6:") else value
            try:
                value = str(ipaddress.ip_address(addr))
            except ValueError:
                raise XforwardError("501 5.5.4 Bad XFORWARD address syntax") from None
        if key == "PROTO" and not re.match(r"^[A-Za-z0-9]{1,32}$", value):
            raise XforwardError("501 5.5.4 Bad XFORWARD protocol syntax")
        updates[key] = value
    for key, update in updates.items():
        if key in ("NAME", "ADDR", "PROTO", "HELO"):
            setattr(into, key.lower(), update)
