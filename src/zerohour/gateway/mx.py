"""Where mail for a domain goes when there is no `delivery.next_hop`: its MX hosts (RFC 5321 5.1).

The answer is final or temporary, as Postfix decides it, so the queue never loses mail to a DNS
hiccup and never retries for days what DNS says cannot exist:

- MX records, by preference (equal preferences shuffled), each host's A/AAAA addresses looked
  up through the same resolver (`delivery.dns_servers`, default the system's);
- no MX records: the domain itself is the one host (the implicit MX);
- NXDOMAIN: `5.1.2` (bounce); a null MX (`0 .`, RFC 7505): `5.1.10` (bounce); no MX and no
  address, or MX hosts none of which has an address: `5.4.4` (bounce);
- SERVFAIL, timeouts, refused or unreachable resolvers: `4.4.3` (deferred, tried again).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import groupby

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver

from zerohour.config import DeliveryConfig
from zerohour.errors import PermanentDeliveryError, TemporaryDeliveryError


@dataclass(frozen=True, slots=True)
class MxHost:
    """One host to try: its DNS name (what a verified certificate must match) and addresses."""

    name: str
    addresses: tuple[str, ...]


class MxResolver:
    """MX routes through the configured resolvers."""

    def __init__(self, cfg: DeliveryConfig) -> None:
        self._resolver = _resolver(cfg)

    async def route(self, domain: str) -> list[MxHost]:
        """The hosts to try for `domain`, best first, each with at least one address.

        Raises `PermanentDeliveryError` (bounce) or `TemporaryDeliveryError` (defer); the
        message is an SMTP-style reply (`550 5.1.2 ...`) that DSNs and the queue show."""
        domain = domain.rstrip(".").lower()
        names = await self._mx_names(domain)
        hosts: list[MxHost] = []
        temporary: list[str] = []
        for name in names:
            try:
                addresses = await self._addresses(name)
            except TemporaryDeliveryError as exc:
                temporary.append(str(exc))
                continue
            if addresses:
                hosts.append(MxHost(name, addresses))
        if hosts:
            return hosts
        if temporary:
            raise TemporaryDeliveryError(temporary[0])
        if names == [domain]:
            raise PermanentDeliveryError(
                f"550 5.4.4 {domain}: no MX and no address records (RFC 5321 5.1)"
            )
        raise PermanentDeliveryError(
            f"550 5.4.4 {domain}: no MX host has an address: {', '.join(names)}"
        )

    async def _mx_names(self, domain: str) -> list[str]:
        try:
            answer = await self._resolver.resolve(domain, "MX", search=False)
        except dns.resolver.NXDOMAIN:
            raise PermanentDeliveryError(
                f"550 5.1.2 {domain}: recipient domain not found (NXDOMAIN)"
            ) from None
        except dns.resolver.NoAnswer:
            return [domain]  # the implicit MX
        except dns.exception.DNSException as exc:
            raise TemporaryDeliveryError(_temporary(domain, "MX", exc)) from None
        records = [(int(r.preference), str(r.exchange).rstrip(".").lower()) for r in answer]
        real = [(pref, name) for pref, name in records if name]
        if not real:  # only "0 ." (RFC 7505 says it must be alone; other records win if not)
            raise PermanentDeliveryError(
                f"556 5.1.10 {domain}: domain does not accept mail (null MX, RFC 7505)"
            )
        out: list[str] = []
        for _, group in groupby(sorted(real), key=lambda r: r[0]):
            same = [name for _, name in group]
            random.shuffle(same)  # RFC 5321 5.1: spread load over equal preferences
            out += [n for n in same if n not in out]
        return out

    async def _addresses(self, name: str) -> tuple[str, ...]:
        """A and AAAA of one host; empty when it has none (NXDOMAIN or no data)."""
        out: list[str] = []
        failures: list[str] = []
        for rtype in ("A", "AAAA"):
            try:
                answer = await self._resolver.resolve(name, rtype, search=False)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                continue
            except dns.exception.DNSException as exc:
                failures.append(_temporary(name, rtype, exc))
                continue
            out += [str(r.address) for r in answer]
        if not out and failures:
            raise TemporaryDeliveryError(failures[0])
        return tuple(out)


def _resolver(cfg: DeliveryConfig) -> dns.asyncresolver.Resolver:
    if cfg.dns_servers:
        res = dns.asyncresolver.Resolver(configure=False)
        res.nameservers = [dns.nameserver.Do53Nameserver(s.host, s.port) for s in cfg.dns_servers]
    else:
        res = dns.asyncresolver.Resolver()
    res.lifetime = cfg.dns_timeout
    res.timeout = min(res.timeout, cfg.dns_timeout)
    return res


def _temporary(name: str, rtype: str, exc: dns.exception.DNSException) -> str:
    why = "timeout" if isinstance(exc, dns.exception.Timeout) else "SERVFAIL or no resolver"
    return f"451 4.4.3 {name}: {rtype} lookup failed ({why}): {exc}"
