"""Where the provider may push: the subscription target policy and per-target rate limits.

A subscriber names where UDP datagrams and control mail should go; unchecked, that lets anyone
with a credential make the provider send to any host (reflection, SSRF into the vendor's own
network). The rules (docs/notices.md, "Subscription targets"):

- UDP goes only to the IP address the subscription request came from (the subscriber showed it
  controls that address by talking TCP from it), never to a name, and only to a global unicast
  address; anything else needs the operator's approval (`--allow-push-target CIDR`).
- Control mail goes to the MX hosts of the control address's domain (port 25), each resolved
  address global unicast; or to an explicit `smtp` HOST:PORT only if every address of it is in an
  approved network. The provider connects to the address it checked (no second lookup).
- Loopback, private, link-local, multicast and reserved addresses are refused unless approved.
- Every target has a token bucket, so a flood of notices or many subscriptions naming one
  target cannot be amplified towards it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dns.asyncresolver
import dns.exception
import dns.resolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_WILDCARD = {"", "0.0.0.0", "::"}  # noqa: S104 (a wildcard we refuse to send to, not a bind)


class TargetRefused(ValueError):
    """A push target the policy does not allow (HTTP 403 at subscription time)."""


def parse_networks(texts: Sequence[str]) -> tuple[Network, ...]:
    out: list[Network] = []
    for text in texts:
        try:
            out.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise ValueError(f"--allow-push-target: bad network {text!r}") from None
    return tuple(out)


def _unmapped(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


@dataclass(frozen=True, slots=True)
class PushPolicy:
    allowed: tuple[Network, ...] = ()
    dns_server: tuple[str, int] | None = None  # MX lookups through this resolver (default: system)

    def approved(self, ip: IPAddress) -> bool:
        ip = _unmapped(ip)
        return any(ip.version == net.version and ip in net for net in self.allowed)

    @staticmethod
    def public(ip: IPAddress) -> bool:
        ip = _unmapped(ip)
        return ip.is_global and not ip.is_multicast and not ip.is_reserved

    def allowed_ip(self, ip: IPAddress) -> bool:
        return self.approved(ip) or self.public(ip)

    def udp_target(self, host: str, port: int, source: str) -> str:
        """The `IP:PORT` to send datagrams to, or TargetRefused. A wildcard host (`0.0.0.0`,
        `::`, empty) means "the address this request comes from"."""
        src = _unmapped(ipaddress.ip_address(source))
        if host in _WILDCARD:
            ip: IPAddress = src
        else:
            try:
                ip = _unmapped(ipaddress.ip_address(host))
            except ValueError:
                raise TargetRefused("udp: give an IP address (names are not resolved)") from None
        if not 0 < port <= 65535:
            raise TargetRefused("udp: port out of range")
        if not self.approved(ip):
            if ip != src:
                raise TargetRefused(
                    f"udp: pushes go only to the address the subscription came from ({src}),"
                    f" not {ip}, unless the provider operator approves it (--allow-push-target)"
                )
            if not self.public(ip):
                raise TargetRefused(
                    f"udp: {ip} is not a global unicast address (loopback, private, link-local"
                    " or multicast need --allow-push-target at the provider)"
                )
        return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            return [_unmapped(ipaddress.ip_address(host))]
        except ValueError:
            pass
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            return []
        return [_unmapped(ipaddress.ip_address(str(i[4][0]).split("%", 1)[0])) for i in infos]

    async def explicit_smtp(self, host: str, port: int) -> list[IPAddress]:
        """An explicit control-mail host: every address must be operator-approved."""
        if host in _WILDCARD:
            raise TargetRefused("smtp: 0.0.0.0/:: is not an address to connect to")
        ips = await self.resolve(host, port)
        if not ips:
            raise TargetRefused(f"smtp: {host} does not resolve")
        refused = [str(ip) for ip in ips if not self.approved(ip)]
        if refused:
            raise TargetRefused(
                f"smtp: {host} ({', '.join(refused)}) is not operator-approved; without"
                " --allow-push-target the provider sends control mail only to the MX of the"
                " control address's domain"
            )
        return ips

    def _resolver(self) -> dns.asyncresolver.Resolver:
        if self.dns_server is None:
            return dns.asyncresolver.Resolver()
        res = dns.asyncresolver.Resolver(configure=False)
        res.nameservers = [self.dns_server[0]]
        res.port = self.dns_server[1]
        return res

    async def mx_targets(self, domain: str, limit: int = 5) -> list[tuple[str, IPAddress]]:
        """(MX host, address) pairs in preference order, only addresses the policy allows;
        no MX record: the domain itself (RFC 5321 implicit MX)."""
        res = self._resolver()
        res.lifetime = 10.0
        hosts: list[str]
        try:
            answer = await res.resolve(domain, "MX")
            records = sorted(answer, key=lambda r: (r.preference, str(r.exchange)))
            hosts = [str(r.exchange).rstrip(".") for r in records][:limit]
            if hosts == [""]:  # null MX (RFC 7505): the domain accepts no mail
                return []
        except dns.resolver.NoAnswer:
            hosts = [domain]
        except dns.exception.DNSException:
            return []
        out: list[tuple[str, IPAddress]] = []
        for host in hosts:
            for rtype in ("A", "AAAA"):
                try:
                    addrs = await res.resolve(host, rtype)
                except dns.exception.DNSException:
                    continue
                for a in addrs:
                    ip = _unmapped(ipaddress.ip_address(a.to_text()))
                    if self.allowed_ip(ip):
                        out.append((host, ip))
        return out


@dataclass
class TokenBuckets:
    """One token bucket per target key: `rate` tokens per second, at most `burst` saved."""

    rate: float
    burst: float
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[object, tuple[float, float]] = field(default_factory=dict)

    def take(self, key: object) -> bool:
        now = self.clock()
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if len(self._buckets) > 100_000:  # bounded memory: forget idle (full) buckets
            self._buckets = {k: v for k, v in self._buckets.items() if v[0] < self.burst}
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1.0, now)
        return True
