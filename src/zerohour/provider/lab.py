"""Lab operations on a provider data folder: declare and end outbreaks, publish signatures.

They write to the same notice log the running server reads; the server pushes within moments.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from zerohour.errors import ConfigError
from zerohour.notices.bundle import MANIFEST_NAME, build_bundle
from zerohour.notices.model import (
    FILE_TYPE_CATEGORIES,
    Checksum,
    OutbreakMode,
    OutbreakSpec,
    Scope,
)
from zerohour.notices.payload import NoticeType, OutbreakEnded, SignaturesPublished
from zerohour.provider.log import DEFAULT_LIFETIME, Provider

_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_SIZE = re.compile(r"^(\d+)([kKmMgG]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def parse_duration(text: str) -> timedelta:
    m = _DURATION.match(text.strip())
    if not m or int(m.group(1)) == 0:
        raise ConfigError(f"duration {text!r}: use e.g. 90s, 30m, 2h, 1d")
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


def _size(text: str) -> int:
    m = _SIZE.match(text.strip())
    if not m:
        raise ConfigError(f"size {text!r}: use e.g. 500, 100k, 10M")
    return int(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]


def parse_scope(spec: str | None) -> Scope:
    """`all` (default) or a comma list of `attachments`, `types=a+b`, `min_size=N`,
    `max_size=N` (sizes take k/M/G); every given criterion must match."""
    if spec is None or spec.strip() == "all":
        return Scope.everything()
    has_att = False
    types: list[str] = []
    lo: int | None = None
    hi: int | None = None
    for item in (p.strip() for p in spec.split(",") if p.strip()):
        key, _, value = item.partition("=")
        if key == "attachments" and not value:
            has_att = True
        elif key == "types" and value:
            types = [t for t in value.split("+") if t]
            bad = set(types) - FILE_TYPE_CATEGORIES
            if bad:
                raise ConfigError(
                    f"unknown file types {sorted(bad)}; use {sorted(FILE_TYPE_CATEGORIES)}"
                )
        elif key == "min_size" and value:
            lo = _size(value)
        elif key == "max_size" and value:
            hi = _size(value)
        else:
            raise ConfigError(
                f"scope item {item!r}: use all, attachments, types=, min_size=, max_size="
            )
    return Scope(False, has_att, tuple(types), lo, hi)


def sample_checksums(path: Path) -> list[Checksum]:
    """SHA-256, MD5 and size of the file and, for PE files, of each section."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read sample {path}: {exc.strerror}") from None
    out = [
        Checksum("sha256", hashlib.sha256(data).hexdigest(), len(data)),
        Checksum("md5", hashlib.md5(data, usedforsecurity=False).hexdigest(), len(data)),
    ]
    try:
        from zerohour.scan.pe import section_digests
    except ImportError:  # engine part not installed: whole-file checksums only
        return out
    for sec in section_digests(data):
        name = "".join(c for c in sec.name if 0x21 <= ord(c) <= 0x7E)[:16] or "unnamed"
        part = f"pe-section:{name}"
        out.append(Checksum("sha256", sec.sha256, sec.size, part))
        out.append(Checksum("md5", sec.md5, sec.size, part))
    return out


def new_outbreak_id() -> str:
    return f"ob-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(3)}"


def declare(
    provider: Provider,
    *,
    name: str,
    samples: Sequence[Path] = (),
    scope: Scope | None = None,
    mode: OutbreakMode = OutbreakMode.HOLD,
    lifetime: timedelta = DEFAULT_LIFETIME,
) -> tuple[int, OutbreakSpec]:
    if not _NAME.match(name):
        raise ConfigError("outbreak name: letters, digits, '.', '_' and '-' only")
    checksums: list[Checksum] = []
    for s in samples:
        checksums.extend(sample_checksums(s))
    if mode is OutbreakMode.CHECKSUM and not checksums:
        raise ConfigError("--mode checksum needs at least one --sample")
    spec = OutbreakSpec(
        new_outbreak_id(), name, mode, scope or Scope.everything(), tuple(checksums[:1000])
    )
    seq, _ = provider.append(NoticeType.OUTBREAK_DECLARED, spec, lifetime=lifetime)
    return seq, spec


def end(provider: Provider, outbreak_id: str, reason: str = "ended by the lab") -> int:
    _, active = provider.outbreak(outbreak_id)
    if not active:
        raise ConfigError(f"outbreak {outbreak_id} has already ended")
    seq, _ = provider.append(NoticeType.OUTBREAK_ENDED, OutbreakEnded(outbreak_id, reason))
    return seq


def publish(
    provider: Provider, files: Sequence[Path], covers: Sequence[str] = ()
) -> tuple[int, SignaturesPublished]:
    """Build the next bundle version and announce it; covered outbreaks end with it."""
    if not files:
        raise ConfigError("publish needs at least one signature file")
    for oid in covers:
        provider.outbreak(oid)  # NotFoundError for a typo
    for f in files:
        if not f.is_file():
            raise ConfigError(f"no such signature file {f}")
    latest = provider.latest_bundle()
    version = (latest.version if latest else 0) + 1
    out = provider.data_dir / "bundles" / str(version)
    env = build_bundle(
        out, files, version=version, provider=provider.name, keys=provider.signing_keys()
    )
    published = SignaturesPublished(
        version,
        f"/v1/signatures/{version}/{MANIFEST_NAME}",
        hashlib.sha256(env).hexdigest(),
        len(env),
        tuple(covers),
    )
    seq, _ = provider.append(NoticeType.SIGNATURES_PUBLISHED, published)
    return seq, published


def hsb_line(path: Path, name: str) -> str:
    """A ClamAV `.hsb` line (`sha256:size:Name`) for a sample."""
    if not _NAME.match(name):
        raise ConfigError("signature name: letters, digits, '.', '_' and '-' only")
    data = path.read_bytes()
    return f"{hashlib.sha256(data).hexdigest()}:{len(data)}:{name}"
