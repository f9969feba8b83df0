"""Gateway settings: defaults < TOML file (`--config`) < `ZEROHOUR_*` env < CLI flags.

Every setting has one dotted name (`smtp.listen`, `delivery.next_hop`, ...). The TOML file uses
the same sections; the environment uses `ZEROHOUR_<SECTION>_<KEY>` (upper case, e.g.
`ZEROHOUR_SMTP_LISTEN=127.0.0.1:2525`, lists comma-separated); CLI flags map onto the same names.
Values are merged as plain data first and validated once into frozen dataclasses, so a bad value
is reported with its name and source before anything starts.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from zerohour.errors import ConfigError
from zerohour.logs import LOG_FORMATS
from zerohour.notices.model import FILE_TYPE_CATEGORIES


class InfectedPolicy(StrEnum):
    """What to do with mail that carries a virus. Never `bounce`: that would be backscatter."""

    REJECT = "reject"
    QUARANTINE = "quarantine"
    DISCARD = "discard"


class TlsLevel(StrEnum):
    """Outbound TLS security levels, as Postfix's `smtp_tls_security_level`."""

    NONE = "none"  # never STARTTLS
    MAY = "may"  # STARTTLS when offered, no certificate check (opportunistic)
    ENCRYPT = "encrypt"  # STARTTLS required, no certificate check
    VERIFY = "verify"  # STARTTLS required, certificate verified, name = next hop / MX host
    SECURE = "secure"  # as verify (zerohour matches the same name; accepted for Postfix tables)

    @property
    def required(self) -> bool:
        return self in (TlsLevel.ENCRYPT, TlsLevel.VERIFY, TlsLevel.SECURE)

    @property
    def verifies(self) -> bool:
        return self in (TlsLevel.VERIFY, TlsLevel.SECURE)


class HoldMode(StrEnum):
    WHOLE = "whole"
    ATTACHMENTS = "attachments"


class HoldExpiry(StrEnum):
    """What happens to held mail past `hold.max_hold`."""

    RELEASE = "release"  # rescan with the current database, then deliver if clean
    QUARANTINE = "quarantine"


@dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str, name: str) -> HostPort:
        host, sep, port = text.rpartition(":")
        if not sep or not host:
            raise ConfigError(f"{name}: expected HOST:PORT, got {text!r}")
        host = host.strip("[]")
        try:
            num = int(port)
        except ValueError:
            raise ConfigError(f"{name}: bad port in {text!r}") from None
        if not 0 <= num <= 65535:
            raise ConfigError(f"{name}: port out of range in {text!r}")
        return cls(host, num)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """Inbound SMTP. Limits default to Postfix's values."""

    listen: HostPort
    hostname: str
    relay_domains: tuple[str, ...]
    mynetworks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    max_message_size: int  # Postfix message_size_limit
    max_recipients: int  # smtpd_recipient_limit
    max_line_length: int  # RFC 5321 says 1000; Postfix line_length_limit 2048
    max_header_size: int  # header_size_limit
    command_timeout: float  # smtpd_timeout
    data_timeout: float
    max_sessions: int  # all clients together (Postfix: the smtpd process limit)
    max_errors: int  # smtpd_hard_error_limit
    tls_cert: Path | None
    tls_key: Path | None
    bare_newline: str  # "reject" (Postfix 3.9 strict) or "accept" (normalise to CRLF)
    # relay_recipient_maps: the recipients of relay_domains that exist (None: all of them)
    relay_recipients: Path | None = None
    # smtpd_client_connection_count_limit: sessions one address may hold (mynetworks exempt)
    max_sessions_per_client: int = 50
    # Postfix's stress mode: once this share of max_sessions is in use, new sessions get
    # stress_timeout as their command timeout (smtpd_timeout = ${stress?10}s)
    stress_threshold: float = 0.8
    stress_timeout: float = 10.0
    # reject_unverified_recipient: probe the next hop for each new recipient at a relay domain
    verify_recipients: bool = False
    verify_sender: str = ""  # address_verify_sender; "" is the null sender <>
    verify_timeout: float = 10.0  # one probe, connect to RSET
    verify_positive_ttl: float = 7 * 86400.0  # address_verify_positive_refresh_time
    verify_negative_ttl: float = 3 * 3600.0  # address_verify_negative_refresh_time
    # anvil: per untrusted address and smtp.rate_time_unit; 0 is off
    client_connection_rate_limit: int = 600  # smtpd_client_connection_rate_limit
    client_message_rate_limit: int = 0  # smtpd_client_message_rate_limit
    rate_time_unit: float = 60.0  # anvil_rate_time_unit
    # smtpd_junk_command_limit: NOOP/RSET/VRFY/HELP/EXPN per session before each is an error
    junk_command_limit: int = 100
    # SMTP processes sharing the listening port (SO_REUSEPORT), each with its own event loop,
    # scanner pool and delivery queue, on one store (`gateway.workers`); 0: one per core
    workers: int = 1


@dataclass(frozen=True, slots=True)
class ScanConfig:
    db_dirs: tuple[Path, ...]  # empty: the bundled starter database
    inline_budget: float  # seconds to scan before the final DATA reply
    workers: int  # scanner processes (0: one per core)
    infected: InfectedPolicy
    deliver_unscanned: bool  # scanner errors: tempfail (False) or deliver anyway
    # seconds before a scan's worker is killed and the scan fails (tempfail / quarantine);
    # twice the engine's own MaxScanTime (120 s), which a pathological input might overrun
    hard_timeout: float = 240.0
    # MiB per scanner process for subtrees found clean (`scan.cleancache`); 0: off
    clean_cache_mb: int = 32


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    next_hop: HostPort | None  # None: MX lookup per recipient domain
    retry_min: float  # Postfix minimal_backoff_time 300 s
    retry_max: float  # maximal_backoff_time 4000 s
    max_lifetime: float  # maximal_queue_lifetime 5 d
    concurrency: int  # per destination
    connect_timeout: float
    timeout: float
    poll_interval: float  # how often the queue looks for due work when idle
    starttls: bool  # use STARTTLS when the next hop offers it
    # MX mode: these resolvers (IP:PORT) instead of the system's (/etc/resolv.conf)
    dns_servers: tuple[HostPort, ...] = ()
    dns_timeout: float = 10.0  # seconds for one DNS lookup, all servers and retries
    mx_port: int = 25  # the port of MX hosts (a test/lab setting: SMTP is port 25)
    tls_level: TlsLevel = TlsLevel.MAY  # default outbound TLS level (`none` if not starttls)
    # Postfix's smtp_tls_policy_maps: domain (".domain": its subdomains; "[host]:port" or
    # "[host]": a next_hop) -> level, overriding `tls_level`
    tls_policy: tuple[tuple[str, TlsLevel], ...] = ()
    tls_ca_file: Path | None = None  # CAs for verify/secure; None: the system store


#: True-type categories a delay queue holds by default (`hold.delay_types`).
DELAY_TYPES = ("executable", "archive", "office-macro", "script")


@dataclass(frozen=True, slots=True)
class HoldConfig:
    mode: HoldMode
    max_hold: float
    expiry: HoldExpiry
    # The timer-based delay queue (Sophos, FortiMail style; `gateway.delay_queue`): mail with an
    # attachment of one of `delay_types` is held `delay` seconds, then rescanned; 0: off.
    delay: float = 0.0
    delay_types: tuple[str, ...] = DELAY_TYPES


@dataclass(frozen=True, slots=True)
class AdminConfig:
    """Admin API + dashboard listener. `listen=None`: off. `required=False`: the default
    address, where a bind failure is logged instead of stopping the gateway."""

    listen: HostPort | None
    required: bool


@dataclass(frozen=True, slots=True)
class NoticesConfig:
    """Where outbreak notices come from (see docs/notices.md). Empty provider: no listeners."""

    provider: str
    provider_key: str
    udp_listen: HostPort | None
    control_address: str
    subscription_token: str
    poll_interval: float
    control_smtp: HostPort | None = None  # where the provider connects for control mail; None: MX
    stream: bool = True  # hold a push stream open to the provider
    poll: bool = True  # poll (also the catch-up after a restart or a gap): keep on


@dataclass(frozen=True, slots=True)
class Config:
    data_dir: Path
    store: str  # "" = <data_dir>/zerohour.sqlite3; a SQLite path; or postgresql://... (cluster)
    spool_minfree: int  # bytes free on the spool below which we answer 452 4.3.1
    log_level: str
    log_format: str  # "text" or "json": one JSON object per line (`zerohour.logs`)
    smtp: SmtpConfig
    scan: ScanConfig
    delivery: DeliveryConfig
    hold: HoldConfig
    admin: AdminConfig
    notices: NoticesConfig

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "zerohour.sqlite3"

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready form (what `zerohour config check` prints)."""
        out: dict[str, Any] = _plain(self)
        if "@" in self.store and "://" in self.store:  # never print a database password
            scheme, rest = self.store.split("://", 1)
            creds, host = rest.rsplit("@", 1)
            out["store"] = f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
        out["delivery"]["tls_policy"] = {k: v.value for k, v in self.delivery.tls_policy}
        for key in ("provider_key", "subscription_token"):
            if out["notices"][key]:
                out["notices"][key] = "***" if key == "subscription_token" else out["notices"][key]
        return out


def _plain(v: Any) -> Any:
    if isinstance(v, HostPort):
        return str(v)
    if is_dataclass(v) and not isinstance(v, type):
        return {f.name: _plain(getattr(v, f.name)) for f in fields(v)}
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, StrEnum):
        return v.value
    if isinstance(v, Path | ipaddress.IPv4Network | ipaddress.IPv6Network):
        return str(v)
    return v


# Defaults, as the raw (unvalidated) form the other layers override.
DEFAULTS: dict[str, dict[str, Any]] = {
    "": {
        "data_dir": "./var",
        "store": "",
        "spool_minfree": 100 * 1024 * 1024,
        "log_level": "info",
        "log_format": "text",
    },
    "smtp": {
        "listen": "127.0.0.1:2525",
        "hostname": "localhost",
        "relay_domains": [],
        "mynetworks": ["127.0.0.0/8", "::1/128"],
        "max_message_size": 10_240_000,
        "max_recipients": 1000,
        "max_line_length": 2048,
        "max_header_size": 102_400,
        "command_timeout": 300.0,
        "data_timeout": 300.0,
        "max_sessions": 100,
        "max_sessions_per_client": 50,
        "relay_recipients": "",
        "stress_threshold": 0.8,
        "stress_timeout": 10.0,
        "verify_recipients": False,
        "verify_sender": "",
        "verify_timeout": 10.0,
        "verify_positive_ttl": 7 * 86400.0,
        "verify_negative_ttl": 3 * 3600.0,
        "client_connection_rate_limit": 600,
        "client_message_rate_limit": 0,
        "rate_time_unit": 60.0,
        "workers": 1,
        "junk_command_limit": 100,
        "max_errors": 20,
        "tls_cert": "",
        "tls_key": "",
        "bare_newline": "reject",
    },
    "scan": {
        "db_dirs": [],
        "inline_budget": 10.0,
        "workers": 0,
        "infected": "reject",
        "deliver_unscanned": False,
        "hard_timeout": 240.0,
        "clean_cache_mb": 32,
    },
    "delivery": {
        "next_hop": "127.0.0.1:10025",
        "retry_min": 300.0,
        "retry_max": 4000.0,
        "max_lifetime": 5 * 86400.0,
        "concurrency": 20,
        "connect_timeout": 30.0,
        "timeout": 300.0,
        "poll_interval": 1.0,
        "starttls": True,
        "dns_servers": [],
        "dns_timeout": 10.0,
        "mx_port": 25,
        "tls_level": "may",
        "tls_policy": {},
        "tls_ca_file": "",
    },
    "hold": {
        "mode": "whole",
        "max_hold": 86400.0,
        "expiry": "quarantine",
        "delay": 0.0,
        "delay_types": list(DELAY_TYPES),
    },
    "admin": {"listen": "auto"},
    "notices": {
        "provider": "",
        "provider_key": "",
        "udp_listen": "",
        "control_address": "",
        "control_smtp": "",
        "subscription_token": "",
        "poll_interval": 60.0,
        "stream": True,
        "poll": True,
    },
}

_LISTS = {
    "smtp.relay_domains",
    "smtp.mynetworks",
    "scan.db_dirs",
    "hold.delay_types",
    "delivery.dns_servers",
}


def _names() -> list[tuple[str, str]]:
    return [(sec, key) for sec, keys in DEFAULTS.items() for key in keys]


def _dotted(sec: str, key: str) -> str:
    return f"{sec}.{key}" if sec else key


def merge_layers(
    file: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Merge the raw layers; `flags` maps dotted names to values (None = not given)."""
    raw = {sec: dict(keys) for sec, keys in DEFAULTS.items()}
    if file is not None:
        try:
            doc = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"config file {file}: {exc}") from None
        for k, v in doc.items():
            if isinstance(v, dict) and k in DEFAULTS and k:
                for kk, vv in v.items():
                    if kk not in DEFAULTS[k]:
                        raise ConfigError(f"config file {file}: unknown setting {k}.{kk}")
                    raw[k][kk] = vv
            elif k in DEFAULTS[""]:
                raw[""][k] = v
            else:
                raise ConfigError(f"config file {file}: unknown setting {k}")
    env = os.environ if env is None else env
    for sec, key in _names():
        var = "ZEROHOUR_" + _dotted(sec, key).replace(".", "_").upper()
        if var in env:
            val: Any = env[var]
            if _dotted(sec, key) in _LISTS:
                val = [x.strip() for x in val.split(",") if x.strip()]
            raw[sec][key] = val
    for name, val in (flags or {}).items():
        if val is None:
            continue
        sec, _, key = name.rpartition(".")
        if sec not in raw or key not in raw[sec]:
            raise ConfigError(f"unknown setting {name}")
        raw[sec][key] = val
    return raw


def _num(raw: dict[str, Any], key: str, sec: str, kind: type, minimum: float = 0) -> Any:
    v = raw[key]
    name = _dotted(sec, key)
    if isinstance(v, bool):
        raise ConfigError(f"{name}: expected a number, got {v!r}")
    try:
        out = kind(v)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected a number, got {v!r}") from None
    if out < minimum:
        raise ConfigError(f"{name}: must be >= {minimum}, got {out}")
    return out


def _bool(raw: dict[str, Any], key: str, sec: str) -> bool:
    v = raw[key]
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
        return v.lower() in {"1", "true", "yes", "on"}
    raise ConfigError(f"{_dotted(sec, key)}: expected true or false, got {v!r}")


def _list(raw: dict[str, Any], key: str, sec: str) -> list[str]:
    v = raw[key]
    if isinstance(v, str):
        v = [x.strip() for x in v.split(",") if x.strip()]
    if not isinstance(v, list | tuple) or not all(isinstance(x, str) for x in v):
        raise ConfigError(f"{_dotted(sec, key)}: expected a list of strings")
    return list(v)


def _enum(raw: dict[str, Any], key: str, sec: str, kind: type[StrEnum]) -> Any:
    try:
        return kind(str(raw[key]).lower())
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise ConfigError(f"{_dotted(sec, key)}: expected one of {allowed}") from None


def _dns_servers(d: dict[str, Any]) -> tuple[HostPort, ...]:
    """`IP` or `IP:PORT` (`[IPv6]:PORT`): resolvers are addresses, never names to resolve."""
    out = []
    for text in _list(d, "dns_servers", "delivery"):
        try:  # a bare address, IPv6 included
            out.append(HostPort(str(ipaddress.ip_address(text.strip("[]"))), 53))
            continue
        except ValueError:
            pass
        hp = HostPort.parse(text, "delivery.dns_servers")
        try:
            ipaddress.ip_address(hp.host)
        except ValueError:
            raise ConfigError(f"delivery.dns_servers: {text!r} is not an IP address") from None
        out.append(hp)
    return tuple(out)


def _tls_policy(d: dict[str, Any]) -> tuple[tuple[str, TlsLevel], ...]:
    """The per-destination table: a TOML table, or `dom=level,dom=level` from env/flags."""
    v = d["tls_policy"]
    if isinstance(v, str):
        pairs = [x.partition("=") for x in v.split(",") if x.strip()]
        if any(not sep for _, sep, _ in pairs):
            raise ConfigError(f"delivery.tls_policy: expected DOMAIN=LEVEL,..., got {v!r}")
        v = {k.strip(): lv.strip() for k, _, lv in pairs}
    if not isinstance(v, Mapping):
        raise ConfigError("delivery.tls_policy: expected a table of domain = level")
    out = []
    for key, level in v.items():
        name = str(key).strip().lower().rstrip(".")
        if not name or name == ".":
            raise ConfigError(f"delivery.tls_policy: empty domain in {key!r}")
        try:
            out.append((name, TlsLevel(str(level).lower())))
        except ValueError:
            allowed = ", ".join(m.value for m in TlsLevel)
            raise ConfigError(
                f"delivery.tls_policy: {key!r} = {level!r}: expected one of {allowed}"
            ) from None
    return tuple(out)


def validate(raw: dict[str, dict[str, Any]]) -> Config:
    """Turn merged raw settings into a frozen `Config`, or raise `ConfigError` naming the key."""
    top, s, sc, d, h = raw[""], raw["smtp"], raw["scan"], raw["delivery"], raw["hold"]
    nets = []
    for text in _list(s, "mynetworks", "smtp"):
        try:
            nets.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ConfigError(f"smtp.mynetworks: bad network {text!r}") from None
    domains = tuple(x.lower().rstrip(".") for x in _list(s, "relay_domains", "smtp"))
    cert, key = str(s["tls_cert"] or ""), str(s["tls_key"] or "")
    if bool(cert) != bool(key):
        raise ConfigError("smtp.tls_cert and smtp.tls_key must be given together")
    bare = str(s["bare_newline"]).lower()
    if bare not in {"reject", "accept"}:
        raise ConfigError("smtp.bare_newline: expected reject or accept")
    next_hop_text = str(d["next_hop"] or "")
    next_hop = (
        None
        if next_hop_text.lower() in {"", "mx"}
        else HostPort.parse(next_hop_text, "delivery.next_hop")
    )
    verify = _bool(s, "verify_recipients", "smtp")
    if verify and next_hop is None:
        raise ConfigError(
            "smtp.verify_recipients needs a fixed delivery.next_hop (HOST:PORT): in MX mode "
            "the MX of our own relay domains is this gateway, which cannot answer the probe"
        )
    verify_sender = str(s["verify_sender"] or "").strip()
    if verify_sender in ("<>",):
        verify_sender = ""
    if verify_sender and (
        verify_sender.count("@") != 1
        or any(c.isspace() or c in "<>" for c in verify_sender)
        or not all(verify_sender.split("@"))
    ):
        raise ConfigError(
            f"smtp.verify_sender: expected an address like probe@example.org or empty for "
            f"the null sender, got {verify_sender!r}"
        )
    adm, nt = raw["admin"], raw["notices"]
    admin_text = str(adm["listen"] or "off").lower()
    if admin_text == "off":
        admin = AdminConfig(None, False)
    elif admin_text == "auto":
        admin = AdminConfig(HostPort("127.0.0.1", 8025), False)
    else:
        admin = AdminConfig(HostPort.parse(str(adm["listen"]), "admin.listen"), True)
    provider = str(nt["provider"] or "")
    if provider and not str(nt["provider_key"] or ""):
        raise ConfigError("notices.provider needs notices.provider_key (--provider-key)")
    udp_text = str(nt["udp_listen"] or "")
    control = str(nt["control_address"] or "")
    token = str(nt["subscription_token"] or "")
    smtp_text = str(nt["control_smtp"] or "")
    pushed = [n for n, v in (("udp_listen", udp_text), ("control_address", control)) if v]
    if (pushed or token or smtp_text) and not provider:
        given = ", ".join(f"notices.{n}" for n in pushed or ["subscription_token"])
        raise ConfigError(f"{given} needs notices.provider (--provider URL)")
    if pushed and not token:
        raise ConfigError(
            f"{' and '.join(f'notices.{n}' for n in pushed)} need notices.subscription_token "
            "(--subscription-token): the provider pushes UDP and control mail only to gateways "
            "that subscribe with their own credential (`zerohour provider gateway add NAME` at "
            "the provider prints it); without one nothing would ever be pushed here"
        )
    control_smtp = HostPort.parse(smtp_text, "notices.control_smtp") if smtp_text else None
    if control_smtp is not None:
        if not control:
            raise ConfigError("notices.control_smtp needs notices.control_address")
        if control_smtp.host in {"0.0.0.0", "::", "*"} or control_smtp.port == 0:  # noqa: S104
            raise ConfigError(
                "notices.control_smtp: give the host and port the provider should connect to "
                f"(a reachable name or address), not {control_smtp}"
            )
    if control and ("@" not in control or not control.rsplit("@", 1)[1]):
        raise ConfigError(f"notices.control_address: {control!r} is not an address")
    notices = NoticesConfig(
        provider=provider,
        provider_key=str(nt["provider_key"] or ""),
        udp_listen=HostPort.parse(udp_text, "notices.udp_listen") if udp_text else None,
        control_address=str(nt["control_address"] or ""),
        subscription_token=str(nt["subscription_token"] or ""),
        poll_interval=_num(nt, "poll_interval", "notices", float, 0.1),
        stream=_bool(nt, "stream", "notices"),
        poll=_bool(nt, "poll", "notices"),
        control_smtp=control_smtp,
    )
    level = str(top["log_level"]).lower()
    if level not in {"debug", "info", "warning", "error"}:
        raise ConfigError("log_level: expected debug, info, warning or error")
    log_format = str(top["log_format"]).lower()
    if log_format not in LOG_FORMATS:
        raise ConfigError(f"log_format: expected {' or '.join(LOG_FORMATS)}, got {log_format!r}")
    max_hold = _num(h, "max_hold", "hold", float, 1)
    delay = _num(h, "delay", "hold", float)
    if delay and delay >= max_hold:
        raise ConfigError(
            f"hold.delay ({delay:g} s) must be shorter than hold.max_hold ({max_hold:g} s): "
            "delayed mail would reach the maximum hold time instead of its rescan"
        )
    delay_types = tuple(_list(h, "delay_types", "hold"))
    unknown = sorted(set(delay_types) - FILE_TYPE_CATEGORIES)
    if unknown or (delay and not delay_types):
        raise ConfigError(
            f"hold.delay_types: {unknown or 'empty'}; use some of {sorted(FILE_TYPE_CATEGORIES)}"
        )
    starttls = _bool(d, "starttls", "delivery")
    tls_level = _enum(d, "tls_level", "delivery", TlsLevel)
    if not starttls:
        if tls_level.required:
            raise ConfigError(
                f"delivery.starttls = false contradicts delivery.tls_level = {tls_level}: "
                "drop one (starttls = false is tls_level = none)"
            )
        tls_level = TlsLevel.NONE
    ca_text = str(d["tls_ca_file"] or "")
    ca_file = Path(ca_text).expanduser() if ca_text else None
    if ca_file is not None and not ca_file.is_file():
        raise ConfigError(f"delivery.tls_ca_file: no such file {ca_text!r}")
    mx_port = _num(d, "mx_port", "delivery", int, 1)
    if mx_port > 65535:
        raise ConfigError(f"delivery.mx_port: port out of range: {mx_port}")
    retry_min = _num(d, "retry_min", "delivery", float, 0.001)
    retry_max = _num(d, "retry_max", "delivery", float, 0.001)
    if retry_max < retry_min:
        raise ConfigError("delivery.retry_max must be >= delivery.retry_min")
    return Config(
        data_dir=Path(str(top["data_dir"])).expanduser(),
        store=str(top["store"] or ""),
        spool_minfree=_num(top, "spool_minfree", "", int),
        log_level=level,
        log_format=log_format,
        smtp=SmtpConfig(
            listen=HostPort.parse(str(s["listen"]), "smtp.listen"),
            hostname=str(s["hostname"]),
            relay_domains=domains,
            mynetworks=tuple(nets),
            max_message_size=_num(s, "max_message_size", "smtp", int, 1),
            max_recipients=_num(s, "max_recipients", "smtp", int, 1),
            max_line_length=_num(s, "max_line_length", "smtp", int, 80),
            max_header_size=_num(s, "max_header_size", "smtp", int, 1024),
            command_timeout=_num(s, "command_timeout", "smtp", float, 0.1),
            data_timeout=_num(s, "data_timeout", "smtp", float, 0.1),
            max_sessions=_num(s, "max_sessions", "smtp", int, 1),
            max_errors=_num(s, "max_errors", "smtp", int, 1),
            max_sessions_per_client=_num(s, "max_sessions_per_client", "smtp", int, 1),
            relay_recipients=Path(str(s["relay_recipients"])) if s["relay_recipients"] else None,
            stress_threshold=_num(s, "stress_threshold", "smtp", float, 0.1),
            stress_timeout=_num(s, "stress_timeout", "smtp", float, 0.1),
            verify_recipients=verify,
            verify_sender=verify_sender,
            verify_timeout=_num(s, "verify_timeout", "smtp", float, 0.1),
            verify_positive_ttl=_num(s, "verify_positive_ttl", "smtp", float),
            verify_negative_ttl=_num(s, "verify_negative_ttl", "smtp", float),
            client_connection_rate_limit=_num(s, "client_connection_rate_limit", "smtp", int),
            client_message_rate_limit=_num(s, "client_message_rate_limit", "smtp", int),
            rate_time_unit=_num(s, "rate_time_unit", "smtp", float, 1),
            workers=_num(s, "workers", "smtp", int),
            junk_command_limit=_num(s, "junk_command_limit", "smtp", int),
            tls_cert=Path(cert) if cert else None,
            tls_key=Path(key) if key else None,
            bare_newline=bare,
        ),
        scan=ScanConfig(
            db_dirs=tuple(Path(p) for p in _list(sc, "db_dirs", "scan")),
            inline_budget=_num(sc, "inline_budget", "scan", float),
            workers=_num(sc, "workers", "scan", int),
            infected=_enum(sc, "infected", "scan", InfectedPolicy),
            deliver_unscanned=_bool(sc, "deliver_unscanned", "scan"),
            hard_timeout=_num(sc, "hard_timeout", "scan", float, 0.1),
            clean_cache_mb=_num(sc, "clean_cache_mb", "scan", int),
        ),
        delivery=DeliveryConfig(
            next_hop=next_hop,
            retry_min=retry_min,
            retry_max=retry_max,
            max_lifetime=_num(d, "max_lifetime", "delivery", float, 1),
            concurrency=_num(d, "concurrency", "delivery", int, 1),
            connect_timeout=_num(d, "connect_timeout", "delivery", float, 0.1),
            timeout=_num(d, "timeout", "delivery", float, 0.1),
            poll_interval=_num(d, "poll_interval", "delivery", float, 0.01),
            starttls=starttls,
            dns_servers=_dns_servers(d),
            dns_timeout=_num(d, "dns_timeout", "delivery", float, 0.1),
            mx_port=mx_port,
            tls_level=tls_level,
            tls_policy=_tls_policy(d),
            tls_ca_file=ca_file,
        ),
        hold=HoldConfig(
            mode=_enum(h, "mode", "hold", HoldMode),
            max_hold=max_hold,
            expiry=_enum(h, "expiry", "hold", HoldExpiry),
            delay=delay,
            delay_types=delay_types,
        ),
        admin=admin,
        notices=notices,
    )


def load(
    file: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Config:
    """Defaults < `file` < `env` (os.environ by default) < `flags`, validated."""
    if file is None:
        env_file = (os.environ if env is None else env).get("ZEROHOUR_CONFIG")
        file = Path(env_file) if env_file else None
    return validate(merge_layers(file, env, flags))


def setting_names() -> list[str]:
    """Every dotted setting name (documentation, `config check --names`)."""
    return [_dotted(sec, key) for sec, key in _names()]
