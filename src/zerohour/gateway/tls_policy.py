"""Outbound TLS per destination, like Postfix's `smtp_tls_policy_maps`.

A level per destination (`delivery.tls_policy`, else `delivery.tls_level`):

- `none`: plaintext; `may` (default): STARTTLS when offered, any certificate;
- `encrypt`: STARTTLS required, any certificate;
- `verify`/`secure`: STARTTLS required and a certificate that chains to the system store (or
  `delivery.tls_ca_file`) and names the host connected to: the MX host name in MX mode (DNS
  is trusted to name it, as Postfix's `verify`), the next hop's host otherwise.

A required-TLS failure is temporary (`4.7.4` not offered, `4.7.5` handshake or certificate),
never a fall back to plaintext: the queue retries, and in MX mode the next MX host is tried.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import aiosmtplib

from zerohour.config import DeliveryConfig, HostPort, TlsLevel
from zerohour.errors import TemporaryDeliveryError


@dataclass(frozen=True, slots=True)
class TlsPolicy:
    """What one connection must do: the level and the name a verified certificate matches."""

    level: TlsLevel
    name: str


def level_for(cfg: DeliveryConfig, domain: str | None, next_hop: HostPort | None) -> TlsLevel:
    """The table's level for a next hop (`[host]:port`, then `[host]`, as Postfix looks up a
    relayhost) or a recipient domain (exact, then `.parent` entries), else the default."""
    table = dict(cfg.tls_policy)
    if next_hop is not None:
        host = next_hop.host.lower()
        keys = [f"[{host}]:{next_hop.port}", f"[{host}]"]
    else:
        labels = (domain or "").lower().rstrip(".").split(".")
        keys = [".".join(labels)] + ["." + ".".join(labels[i:]) for i in range(1, len(labels))]
    for key in keys:
        if key in table:
            return table[key]
    return cfg.tls_level


class TlsContexts:
    """The two SSL contexts, made once: loading the CA store costs milliseconds per call."""

    def __init__(self, cfg: DeliveryConfig) -> None:
        self._cfg = cfg
        self._any: ssl.SSLContext | None = None
        self._verifying: ssl.SSLContext | None = None

    def context(self, level: TlsLevel) -> ssl.SSLContext:
        if level.verifies:
            if self._verifying is None:
                ca = self._cfg.tls_ca_file
                try:
                    ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
                except (OSError, ssl.SSLError) as exc:
                    raise TemporaryDeliveryError(
                        f"451 4.7.5 cannot load delivery.tls_ca_file {ca}: {exc}"
                    ) from None
                self._verifying = ctx
            return self._verifying
        if self._any is None:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            self._any = ctx
        return self._any


async def negotiate(
    client: aiosmtplib.SMTP, policy: TlsPolicy, contexts: TlsContexts, where: str
) -> None:
    """STARTTLS on a fresh connection as `policy` says. Raises `TemporaryDeliveryError` when
    TLS is required and cannot be had; the caller closes the connection."""
    if policy.level is TlsLevel.NONE:
        return
    if client.is_ehlo_or_helo_needed:
        await client.ehlo()
    if not client.supports_extension("starttls"):
        if policy.level.required:
            raise TemporaryDeliveryError(
                f"451 4.7.4 TLS is required, but was not offered by host {where}"
            )
        return
    ctx = contexts.context(policy.level)
    if not policy.level.required:
        await client.starttls(server_hostname=policy.name, tls_context=ctx)
        return
    try:
        await client.starttls(server_hostname=policy.name, tls_context=ctx)
    except ssl.SSLCertVerificationError as exc:
        raise TemporaryDeliveryError(
            f"451 4.7.5 server certificate not verified for {policy.name} at {where}: "
            f"{exc.verify_message or exc}"
        ) from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, ssl.SSLCertVerificationError):
            raise TemporaryDeliveryError(
                f"451 4.7.5 server certificate not verified for {policy.name} at {where}: "
                f"{cause.verify_message or cause}"
            ) from None
        raise TemporaryDeliveryError(f"451 4.7.5 cannot start TLS with {where}: {exc}") from None
