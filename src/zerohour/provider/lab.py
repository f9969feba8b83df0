"""Lab operations on a provider data folder: declare and end outbreaks, publish signatures.

They write to the same notice log the running server reads; the server pushes within moments.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from zerohour.errors import BundleError, ConfigError, SignatureSyntaxError
from zerohour.notices.bundle import DETECTION_EXT, MANIFEST_NAME, build_bundle, signature_name
from zerohour.notices.model import (
    FILE_TYPE_CATEGORIES,
    Checksum,
    OutbreakMode,
    OutbreakSpec,
    Scope,
)
from zerohour.notices.payload import NoticeType, OutbreakEnded, SignaturesPublished
from zerohour.provider.log import DEFAULT_LIFETIME, Provider, Signature

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


def _check_line(ext: str, line: str) -> None:
    """Parse one signature line with the engine's own parser: a line a gateway would drop
    is refused here, where the lab can fix it."""
    from zerohour.scan.signatures.hdb import parse_hash_line
    from zerohour.scan.signatures.ldb import parse_ldb_line
    from zerohour.scan.signatures.mdb import parse_section_line
    from zerohour.scan.signatures.ndb import parse_ndb_line

    if ext in (".hdb", ".hsb"):
        parse_hash_line(line)
    elif ext in (".mdb", ".msb"):
        parse_section_line(line)
    elif ext == ".ndb":
        parse_ndb_line(line)
    else:
        parse_ldb_line(line)


def read_signature_files(files: Sequence[Path]) -> list[tuple[str, str, str]]:
    """(file name, signature name, line) of every signature in `files`; ConfigError for a file
    that is not a detection format (bundles may only add detection) or a line that is bad."""
    out: list[tuple[str, str, str]] = []
    for f in files:
        if not f.is_file():
            raise ConfigError(f"no such signature file {f}")
        ext = f.suffix.lower()
        if ext not in DETECTION_EXT:
            raise ConfigError(
                f"{f.name}: only detection formats can be published "
                f"({', '.join(sorted(DETECTION_EXT))}); allow-lists and ignore lists would "
                "switch detection off at every gateway"
            )
        if not _NAME.match(f.name) or f.name == MANIFEST_NAME:
            raise ConfigError(f"{f.name}: not a plain file name")
        for no, raw in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            try:
                name = signature_name(ext, raw)
                if name is None:
                    continue
                _check_line(ext, raw.strip())
            except (BundleError, SignatureSyntaxError) as exc:
                raise ConfigError(f"{f.name}:{no}: {exc}") from None
            out.append((f.name, name, raw.strip()))
    return out


def _bundle_contents(live: Sequence[Signature]) -> dict[str, bytes]:
    by_file: dict[str, list[str]] = {}
    for sig in sorted(live, key=lambda s: s.name):
        by_file.setdefault(sig.file, []).append(sig.line)
    return {f: ("\n".join(lines) + "\n").encode("utf-8") for f, lines in sorted(by_file.items())}


def _publish_set(
    provider: Provider,
    live: Sequence[Signature],
    retired: Sequence[str],
    covers: Sequence[str],
    also: Callable[[sqlite3.Connection, int], None],
) -> tuple[int, SignaturesPublished]:
    latest = provider.latest_bundle()
    version = (latest.version if latest else 0) + 1
    out = provider.data_dir / "bundles" / str(version)
    env = build_bundle(
        out,
        _bundle_contents(live),
        version=version,
        provider=provider.name,
        keys=provider.signing_keys(),
        retired=retired,
    )
    published = SignaturesPublished(
        version,
        f"/v1/signatures/{version}/{MANIFEST_NAME}",
        hashlib.sha256(env).hexdigest(),
        len(env),
        tuple(covers),
    )
    seq, _ = provider.append(
        NoticeType.SIGNATURES_PUBLISHED, published, also=lambda db: also(db, version)
    )
    return seq, published


def publish(
    provider: Provider, files: Sequence[Path], covers: Sequence[str] = ()
) -> tuple[int, SignaturesPublished]:
    """Add the files' signatures to the live set and publish the next bundle version, which
    carries the whole live set (a gateway that missed a bundle converges with this one).
    A signature of the same name replaces the earlier one (and is live again if retired);
    covered outbreaks end with it."""
    if not files:
        raise ConfigError("publish needs at least one signature file")
    for oid in covers:
        provider.outbreak(oid)  # NotFoundError for a typo
    added = read_signature_files(files)
    if not added:
        raise ConfigError("the files hold no signatures")
    new = {name: Signature(name, fname, line, 0) for fname, name, line in added}
    live = [s for s in provider.signatures() if s.name not in new] + list(new.values())
    retired = [s.name for s in provider.signatures(retired=True)
               if s.retired_in is not None and s.name not in new]

    def record(db: sqlite3.Connection, version: int) -> None:
        db.executemany(
            "INSERT INTO signatures (name, file, line, version, retired_in, reason)"
            " VALUES (?, ?, ?, ?, NULL, '') ON CONFLICT(name) DO UPDATE SET file=excluded.file,"
            " line=excluded.line, version=excluded.version, retired_in=NULL, reason=''",
            [(s.name, s.file, s.line, version) for s in new.values()],
        )

    return _publish_set(provider, live, retired, covers, record)


def retire(
    provider: Provider, names: Sequence[str], reason: str = "false positive"
) -> tuple[int, SignaturesPublished]:
    """Retire live signatures (a false positive): the next bundle leaves them out and lists
    them as retired, so gateways drop them and rescan the mail they alone had quarantined."""
    if not names:
        raise ConfigError("retire needs at least one signature name")
    live = provider.signatures()
    known = {s.name for s in live}
    unknown = sorted(set(names) - known)
    if unknown:
        raise ConfigError(f"not live signatures: {', '.join(unknown)}")
    gone = set(names)
    retired = sorted(
        {s.name for s in provider.signatures(retired=True) if s.retired_in is not None} | gone
    )

    def record(db: sqlite3.Connection, version: int) -> None:
        db.executemany(
            "UPDATE signatures SET retired_in=?, reason=? WHERE name=?",
            [(version, reason, n) for n in sorted(gone)],
        )

    return _publish_set(provider, [s for s in live if s.name not in gone], retired, (), record)


def hsb_line(path: Path, name: str) -> str:
    """A ClamAV `.hsb` line (`sha256:size:Name`) for a sample."""
    if not _NAME.match(name):
        raise ConfigError("signature name: letters, digits, '.', '_' and '-' only")
    data = path.read_bytes()
    return f"{hashlib.sha256(data).hexdigest()}:{len(data)}:{name}"
