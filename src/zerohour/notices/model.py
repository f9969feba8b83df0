"""Outbreak descriptions as carried in notice bodies, shared by the provider and the gateway.

These are plain values: the provider builds them from lab commands, the gateway's outbreak state
stores them, and `gateway.decide` reads them. Parsing validates strictly, because a body that does
not validate is a refused notice, never a half-applied one.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from zerohour.errors import NoticeError

_HEX = re.compile(r"^[0-9a-f]+$")
_DIGEST_LEN = {"sha256": 64, "md5": 32}
_PART = re.compile(r"^(file|pe-section:[\x21-\x7e]{1,16})$")
_SECTION = re.compile(r"^[\x21-\x7e]{1,16}$")
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
_DIGEST_RAW = {"sha256": 32, "md5": 16}
_SPEC_KEYS = {"outbreak_id", "name", "mode", "scope", "checksums"}
_COMPACT_KEYS = {"id", "n", "m", "sc", "c"}  # v2: outbreak_id, name, mode, scope, checksums

# True file-type categories a scope may name; gateway maps a layer's FileType onto them.
FILE_TYPE_CATEGORIES = frozenset({"executable", "archive", "office-macro", "script", "pdf", "html"})


class OutbreakMode(StrEnum):
    HOLD = "hold"
    CHECKSUM = "checksum"


@dataclass(frozen=True, slots=True)
class Checksum:
    """A digest of the carrying file or of a relevant part (`pe-section:<name>`)."""

    algo: str
    digest: str
    size: int | None = None
    part: str = "file"

    @classmethod
    def from_json(cls, obj: Any) -> Checksum:
        if not isinstance(obj, dict):
            raise NoticeError("invalid_body", "checksum must be an object")
        algo = obj.get("algo")
        digest = obj.get("digest")
        size = obj.get("size")
        part = obj.get("part", "file")
        if algo not in _DIGEST_LEN:
            raise NoticeError("invalid_body", f"unknown checksum algo {algo!r}")
        if (
            not isinstance(digest, str)
            or len(digest) != _DIGEST_LEN[algo]
            or not _HEX.match(digest)
        ):
            raise NoticeError("invalid_body", "checksum digest must be lowercase hex of its algo")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise NoticeError("invalid_body", "checksum size must be a non-negative integer")
        if not isinstance(part, str) or not _PART.match(part):
            raise NoticeError("invalid_body", f"invalid checksum part {part!r}")
        return cls(algo=algo, digest=digest, size=size, part=part)

    def to_json(self) -> dict[str, Any]:
        return {"algo": self.algo, "digest": self.digest, "size": self.size, "part": self.part}


@dataclass(frozen=True, slots=True)
class Scope:
    """Which mail an outbreak holds. `all` wins; otherwise every given criterion must match."""

    all: bool = False
    has_attachment: bool = False
    file_types: tuple[str, ...] = ()
    min_size: int | None = None
    max_size: int | None = None

    @classmethod
    def from_json(cls, obj: Any) -> Scope:
        if not isinstance(obj, dict):
            raise NoticeError("invalid_body", "scope must be an object")
        unknown = set(obj) - {"all", "has_attachment", "file_types", "min_size", "max_size"}
        if unknown:
            raise NoticeError("invalid_body", f"unknown scope keys {sorted(unknown)}")
        all_ = obj.get("all", False)
        has_att = obj.get("has_attachment", False)
        types = obj.get("file_types", [])
        if not isinstance(all_, bool) or not isinstance(has_att, bool):
            raise NoticeError("invalid_body", "scope flags must be booleans")
        if not isinstance(types, list) or not all(
            isinstance(t, str) and t in FILE_TYPE_CATEGORIES for t in types
        ):
            raise NoticeError(
                "invalid_body", f"scope file_types must be among {sorted(FILE_TYPE_CATEGORIES)}"
            )
        sizes: list[int | None] = []
        for key in ("min_size", "max_size"):
            v = obj.get(key)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise NoticeError("invalid_body", f"scope {key} must be a non-negative integer")
            sizes.append(v)
        scope = cls(all_, has_att, tuple(types), sizes[0], sizes[1])
        if (
            not scope.all
            and not scope.has_attachment
            and not scope.file_types
            and (scope.min_size is None and scope.max_size is None)
        ):
            raise NoticeError("invalid_body", 'empty scope: say {"all": true} explicitly')
        return scope

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.all:
            out["all"] = True
        if self.has_attachment:
            out["has_attachment"] = True
        if self.file_types:
            out["file_types"] = list(self.file_types)
        if self.min_size is not None:
            out["min_size"] = self.min_size
        if self.max_size is not None:
            out["max_size"] = self.max_size
        return out

    @classmethod
    def everything(cls) -> Scope:
        return cls(all=True)


_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True, slots=True)
class OutbreakSpec:
    """Body of `outbreak.declared` / `outbreak.updated`."""

    outbreak_id: str
    name: str
    mode: OutbreakMode = OutbreakMode.HOLD
    scope: Scope = field(default_factory=Scope.everything)
    checksums: tuple[Checksum, ...] = ()

    @classmethod
    def from_json(cls, obj: Any) -> OutbreakSpec:
        """The v1 (and stored) form: `checksums` as a list of objects with hex digests."""
        if not isinstance(obj, dict):
            raise NoticeError("invalid_body", "outbreak body must be an object")
        unknown = set(obj) - _SPEC_KEYS
        if unknown:
            raise NoticeError("invalid_body", f"unknown outbreak keys {sorted(unknown)[:5]}")
        raw = obj.get("checksums", [])
        if not isinstance(raw, list) or len(raw) > 1000:
            raise NoticeError("invalid_body", "checksums must be a list of at most 1000")
        return cls._build(obj, tuple(Checksum.from_json(c) for c in raw))

    @classmethod
    def from_compact(cls, obj: Any) -> OutbreakSpec:
        """The compact form of protocol v2 (`to_compact`)."""
        if not isinstance(obj, dict):
            raise NoticeError("invalid_body", "outbreak body must be an object")
        unknown = set(obj) - _COMPACT_KEYS
        if unknown:
            raise NoticeError("invalid_body", f"unknown outbreak keys {sorted(unknown)[:5]}")
        if "id" not in obj or "n" not in obj:
            raise NoticeError("invalid_body", "outbreak needs id and n")
        raw = obj.get("c", [])
        if not isinstance(raw, list) or len(raw) > 1000:
            raise NoticeError("invalid_body", "c (checksums) must be a list of at most 1000")
        checksums = [c for entry in raw for c in _sums_from_compact(entry)]
        if len(checksums) > 1000:
            raise NoticeError("invalid_body", "at most 1000 checksums")
        long = {"outbreak_id": obj["id"], "name": obj["n"]}
        long.update({k: obj[c] for c, k in (("m", "mode"), ("sc", "scope")) if c in obj})
        return cls._build(long, tuple(checksums))

    @classmethod
    def _build(cls, obj: dict[str, Any], checksums: tuple[Checksum, ...]) -> OutbreakSpec:
        oid = obj.get("outbreak_id")
        name = obj.get("name")
        if not isinstance(oid, str) or not _ID.match(oid):
            raise NoticeError("invalid_body", "invalid outbreak_id")
        if not isinstance(name, str) or not _NAME.match(name):
            raise NoticeError("invalid_body", "invalid outbreak name")
        try:
            mode = OutbreakMode(obj.get("mode", "hold"))
        except ValueError:
            raise NoticeError("invalid_body", "mode must be hold or checksum") from None
        scope = Scope.from_json(obj.get("scope", {"all": True}))
        if mode is OutbreakMode.CHECKSUM and not checksums:
            raise NoticeError("invalid_body", "checksum mode needs checksums")
        return cls(oid, name, mode, scope, checksums)

    def to_json(self) -> dict[str, Any]:
        return {
            "outbreak_id": self.outbreak_id,
            "name": self.name,
            "mode": self.mode.value,
            "scope": self.scope.to_json(),
            "checksums": [c.to_json() for c in self.checksums],
        }

    def to_compact(self) -> dict[str, Any]:
        """Protocol v2's outbreak form, small enough for a one-sample declaration to travel in
        one UDP datagram: short keys (`id`, `n` name, `m` mode, `sc` scope, `c` checksums),
        defaults omitted (mode hold, scope all, no checksums), and checksums as tuples
        `[section, size, sha256, md5]` with raw digests in unpadded base64url
        (43 and 22 characters instead of 64 and 32 hex). `section` is "" for the whole file or
        the PE section name; `size` is null when unknown; an absent digest is "". A sha256 and
        an md5 of the same part and size share one tuple."""
        out: dict[str, Any] = {"id": self.outbreak_id, "n": self.name}
        if self.mode is not OutbreakMode.HOLD:
            out["m"] = self.mode.value
        if not self.scope.all:
            out["sc"] = self.scope.to_json()
        sums: list[list[Any]] = []
        for c in self.checksums:
            section = c.part.removeprefix("pe-section:") if c.part != "file" else ""
            slot = 2 if c.algo == "sha256" else 3
            digest = _b64url(bytes.fromhex(c.digest))
            last = sums[-1] if sums else None
            if last is not None and last[0] == section and last[1] == c.size and not last[slot]:
                last[slot] = digest
            else:
                entry: list[Any] = [section, c.size, "", ""]
                entry[slot] = digest
                sums.append(entry)
        if sums:
            out["c"] = sums
        return out


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _digest_from_b64url(text: Any, algo: str) -> str:
    n = _DIGEST_RAW[algo]
    want = (n * 4 + 2) // 3  # unpadded length
    if not isinstance(text, str) or len(text) != want or not _B64URL.match(text):
        raise NoticeError("invalid_body", f"{algo} must be {want} characters of base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise NoticeError("invalid_body", f"{algo} is not base64url") from None
    if len(raw) != n or _b64url(raw) != text:  # canonical: no stray low bits
        raise NoticeError("invalid_body", f"{algo} is not a canonical {n}-byte digest")
    return raw.hex()


def _sums_from_compact(entry: Any) -> list[Checksum]:
    if not isinstance(entry, list) or len(entry) != 4:
        raise NoticeError("invalid_body", "a sums entry is [section, size, sha256, md5]")
    section, size, sha, md5 = entry
    if not isinstance(section, str) or (section and not _SECTION.match(section)):
        raise NoticeError("invalid_body", "invalid section name")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise NoticeError("invalid_body", "sums size must be a non-negative integer or null")
    part = f"pe-section:{section}" if section else "file"
    out = [
        Checksum(algo, _digest_from_b64url(value, algo), size, part)
        for algo, value in (("sha256", sha), ("md5", md5))
        if value != ""
    ]
    if not out:
        raise NoticeError("invalid_body", "a sums entry needs a sha256 or an md5")
    return out
