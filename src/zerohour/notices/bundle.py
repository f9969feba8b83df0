"""Signature bundles: ClamAV-format files plus a signed manifest, built by the provider and
fetched, verified and installed by the gateway.

The manifest is a DSSE envelope (`application/vnd.zerohour.manifest+json`) whose payload lists
each file's name, size and SHA-256, the version and an expiry. The bundle is self-verifying, so
any mirror or CDN can serve it; the notice pins the manifest's own size and digest, so a mirror
cannot substitute an older, also validly signed, manifest.

Install layout (gateway): `<data>/db/<version>/` holds the files and a `VERSION` file; the
`<data>/db/current` symlink is switched with one atomic rename. Versions only go up.

Every bundle carries the provider's whole live set (every signature ever published minus the
ones it retired; the manifest's `retired` lists the retired names), so a gateway that missed a
bundle converges with the next one. Bundles may only add detection: files other than the
detection formats in `DETECTION_EXT` (allow-lists `.fp`/`.sfp`, ignore lists `.ign`/`.ign2`,
containers, anything else) are refused (`BundleRefused`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from zerohour.errors import BundleError, NoticeError
from zerohour.notices.envelope import MANIFEST_TYPE, open_envelope, sign
from zerohour.notices.payload import SignaturesPublished, format_ts, parse_ts

MANIFEST_NAME = "manifest.json"
VERSION_NAME = "VERSION"
MAX_MANIFEST = 1024 * 1024  # the manifest also lists every retired signature name
MAX_FILE = 512 * 1024 * 1024
MAX_RETIRED = 10000
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
#: A signature name as the ClamAV formats allow it in their name field (no separators).
SIG_NAME = re.compile(r"^[^\s:;]{1,256}$")
#: The only files a provider bundle may carry: formats that add detection. An allow-list
#: (.fp/.sfp) or ignore list (.ign/.ign2) would switch detection off for every database the
#: gateway loads, the operator's own included; a container (.cvd/.cld) could hide one.
DETECTION_EXT = frozenset({".hdb", ".hsb", ".mdb", ".msb", ".ndb", ".ldb"})


class BundleRefused(BundleError):
    """A correctly signed bundle that breaks the gateway's rules (a file type that is not a
    detection format, or a live signature dropped without a retirement). Permanent: fetching it
    again cannot help, so the notice's seq advances and the next bundle converges."""


def signature_name(ext: str, line: str) -> str | None:
    """The signature name in one line of a detection file (None for blanks and comments)."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    ext = ext.lower()
    if ext in (".hdb", ".hsb", ".mdb", ".msb"):
        parts = line.split(":")
        name = parts[2] if len(parts) >= 3 else ""
    elif ext == ".ndb":
        name = line.split(":", 1)[0]
    elif ext == ".ldb":
        name = line.split(";", 1)[0]
    else:
        raise BundleRefused(f"{ext!r} is not a detection format")
    if not SIG_NAME.match(name):
        raise BundleError(f"signature line without a valid name in a {ext} file")
    return name


def check_detection_only(names: Iterable[str]) -> None:
    """Refuse a bundle that carries anything but detection formats (`BundleRefused`)."""
    bad = sorted(n for n in names if n not in (MANIFEST_NAME, VERSION_NAME)
                 and Path(n).suffix.lower() not in DETECTION_EXT)
    if bad:
        raise BundleRefused(
            f"bundle carries {', '.join(bad[:5])}: provider bundles may only add detection "
            f"({', '.join(sorted(DETECTION_EXT))})"
        )


def signature_names(files: Mapping[str, bytes]) -> set[str]:
    """Every signature name defined by the detection files of a bundle (others are skipped)."""
    out: set[str] = set()
    for fname, data in files.items():
        ext = Path(fname).suffix.lower()
        if fname in (MANIFEST_NAME, VERSION_NAME) or ext not in DETECTION_EXT:
            continue
        for line in data.decode("utf-8", "surrogateescape").splitlines():
            name = signature_name(ext, line)
            if name is not None:
                out.add(name)
    return out


@dataclass(frozen=True, slots=True)
class BundleFile:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Manifest:
    provider: str
    version: int
    issued_at: datetime
    expires_at: datetime
    files: tuple[BundleFile, ...]
    retired: tuple[str, ...] = ()  # every signature name the provider has retired

    def to_payload(self) -> bytes:
        obj: dict[str, Any] = {
            "v": 1,
            "provider": self.provider,
            "version": self.version,
            "issued_at": format_ts(self.issued_at),
            "expires_at": format_ts(self.expires_at),
            "files": [{"name": f.name, "size": f.size, "sha256": f.sha256} for f in self.files],
        }
        if self.retired:
            obj["retired"] = sorted(self.retired)
        return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode("utf-8")

    @classmethod
    def from_payload(cls, data: bytes) -> Manifest:
        try:
            obj: Any = json.loads(data)
        except ValueError:
            raise BundleError("manifest payload is not JSON") from None
        fields = {"v", "provider", "version", "issued_at", "expires_at", "files"}
        if (
            not isinstance(obj, dict)
            or not fields <= set(obj) <= fields | {"retired"}
            or obj["v"] != 1
        ):
            raise BundleError("manifest payload has the wrong fields or version")
        retired = obj.get("retired", [])
        if (
            not isinstance(retired, list)
            or len(retired) > MAX_RETIRED
            or not all(isinstance(n, str) and SIG_NAME.match(n) for n in retired)
        ):
            raise BundleError("manifest retired must be a list of signature names")
        version = obj["version"]
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise BundleError("manifest version must be a positive integer")
        files: list[BundleFile] = []
        raw = obj["files"]
        if not isinstance(raw, list) or len(raw) > 100:
            raise BundleError("manifest must list 0..100 files")
        for f in raw:
            if not isinstance(f, dict) or set(f) != {"name", "size", "sha256"}:
                raise BundleError("manifest file entry has the wrong fields")
            name, size, digest = f["name"], f["size"], f["sha256"]
            if (
                not isinstance(name, str)
                or not _FILE_NAME.match(name)
                or name in (MANIFEST_NAME, VERSION_NAME)
            ):
                raise BundleError("manifest file name is not a plain file name")
            if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_FILE:
                raise BundleError(f"manifest size of {name} out of range")
            if not isinstance(digest, str) or not _HEX64.match(digest):
                raise BundleError(f"manifest digest of {name} is not SHA-256 hex")
            files.append(BundleFile(name, size, digest))
        if len({f.name for f in files}) != len(files):
            raise BundleError("manifest lists a file twice")
        try:
            issued = parse_ts(obj["issued_at"], "issued_at")
            expires = parse_ts(obj["expires_at"], "expires_at")
        except NoticeError as exc:
            raise BundleError(str(exc)) from None
        if not isinstance(obj["provider"], str):
            raise BundleError("manifest provider must be a string")
        return cls(obj["provider"], version, issued, expires, tuple(files), tuple(retired))


# -- provider side ------------------------------------------------------------------------------
def build_bundle(
    out_dir: Path,
    files: Sequence[Path] | Mapping[str, bytes],
    *,
    version: int,
    provider: str,
    keys: list[Ed25519PrivateKey],
    lifetime: timedelta = timedelta(days=30),
    retired: Sequence[str] = (),
) -> bytes:
    """Write the files (paths, or name -> content) into `out_dir` (created) with the signed
    manifest; return the manifest's bytes."""
    contents = (
        dict(files) if isinstance(files, Mapping) else {p.name: p.read_bytes() for p in files}
    )
    check_detection_only(contents)
    out_dir.mkdir(parents=True, exist_ok=False)
    entries: list[BundleFile] = []
    for name, data in contents.items():
        if not _FILE_NAME.match(name) or name in (MANIFEST_NAME, VERSION_NAME):
            raise BundleError(f"bundle file name {name!r} is not a plain file name")
        (out_dir / name).write_bytes(data)
        entries.append(BundleFile(name, len(data), hashlib.sha256(data).hexdigest()))
    now = datetime.now(UTC).replace(microsecond=0)
    manifest = Manifest(
        provider, version, now, now + lifetime, tuple(entries), tuple(sorted(set(retired)))
    )
    env = sign(manifest.to_payload(), keys, MANIFEST_TYPE).to_bytes()
    (out_dir / MANIFEST_NAME).write_bytes(env)
    return env


# -- gateway side -------------------------------------------------------------------------------
def installed_version(data_dir: Path) -> int:
    """Version behind `<data>/db/current`, 0 when nothing is installed."""
    try:
        return int((data_dir / "db" / "current" / "VERSION").read_text().strip())
    except (OSError, ValueError):
        return 0


def current_path(data_dir: Path) -> Path:
    return data_dir / "db" / "current"


async def _get_capped(client: httpx.AsyncClient, url: str, cap: int) -> bytes:
    async with client.stream("GET", url) as resp:
        if resp.status_code != 200:
            raise BundleError(f"GET {url}: HTTP {resp.status_code}")
        buf = bytearray()
        async for chunk in resp.aiter_bytes():
            buf += chunk
            if len(buf) > cap:
                raise BundleError(f"GET {url}: larger than the {cap} bytes expected")
        return bytes(buf)


@dataclass(frozen=True, slots=True)
class VerifiedBundle:
    """A bundle whose manifest signature, provider, version, expiry and every file's size and
    digest were checked, and which carries detection formats only."""

    manifest: Manifest
    manifest_raw: bytes
    files: Mapping[str, bytes]  # the signature files, without manifest.json and VERSION

    @property
    def version(self) -> int:
        return self.manifest.version

    def all_files(self) -> dict[str, bytes]:
        """What is stored and written: the files, the manifest and `VERSION`."""
        return {
            **self.files,
            MANIFEST_NAME: self.manifest_raw,
            VERSION_NAME: b"%d\n" % self.version,
        }

    @classmethod
    def from_files(cls, files: Mapping[str, bytes]) -> VerifiedBundle:
        """Re-read a bundle this gateway (or another node) verified and stored: the manifest is
        parsed from its envelope (its signature was checked at install), the file digests and
        the detection-only rule are checked again."""
        raw = files.get(MANIFEST_NAME)
        if raw is None:
            raise BundleError("stored bundle has no manifest")
        try:
            env = json.loads(raw)
            payload = base64.b64decode(env["payload"], validate=True)
        except (ValueError, KeyError, TypeError):
            raise BundleError("stored bundle manifest is not an envelope") from None
        manifest = Manifest.from_payload(payload)
        contents = {f.name: files.get(f.name, b"") for f in manifest.files}
        for f in manifest.files:
            data = contents[f.name]
            if len(data) != f.size or hashlib.sha256(data).hexdigest() != f.sha256:
                raise BundleError(f"stored bundle file {f.name}: size or digest differs")
        check_detection_only(contents)
        return cls(manifest, bytes(raw), contents)


def write_version_dir(data_dir: Path, bundle: VerifiedBundle) -> Path:
    """Write `<data>/db/<version>/` (files fsynced in a temporary folder, then renamed) and
    return it; `current` is not touched. An existing folder of that version is replaced."""
    db = data_dir / "db"
    db.mkdir(parents=True, exist_ok=True)
    final = db / str(bundle.version)
    tmp = Path(tempfile.mkdtemp(prefix=f".{bundle.version}-", dir=db))
    for name, data in bundle.all_files().items():
        with open(tmp / name, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    if final.exists():
        shutil.rmtree(final)  # a half-finished earlier attempt, or a folder `current` left
    os.rename(tmp, final)
    _fsync_dir(db)
    return final


def switch_current(data_dir: Path, version: int) -> None:
    """Point `<data>/db/current` at `<version>/` with one atomic rename; drop older folders
    but the previous one (bundles carry the full live set: nothing else needs them)."""
    db = data_dir / "db"
    link_tmp = db / f".current-{version}"
    if link_tmp.is_symlink() or link_tmp.exists():
        link_tmp.unlink()
    os.symlink(str(version), link_tmp)
    os.replace(link_tmp, db / "current")
    _fsync_dir(db)
    kept = sorted(int(p.name) for p in db.iterdir() if p.name.isdigit() and p.is_dir())
    for old in [v for v in kept if v < version][:-1]:
        shutil.rmtree(db / str(old), ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    dfd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def read_version_dir(folder: Path) -> dict[str, bytes]:
    """Every file of an installed version folder (for the store, after an upgrade)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


class BundleInstaller:
    """Fetch and verify the bundle a `signatures.published` notice names (`fetch`); `install`
    also writes it to `<data>/db/<version>/` and switches `current` (for tools and tests; the
    gateway installs through `zerohour.gateway.outbreak.signatures.SignatureDatabase`)."""

    def __init__(
        self,
        data_dir: Path,
        base_url: str,
        provider: str,
        client: httpx.AsyncClient,
    ) -> None:
        self.data_dir = data_dir
        self.base_url = base_url
        self.provider = provider
        self.client = client
        self._lock = asyncio.Lock()

    async def fetch(
        self, published: SignaturesPublished, keys: Mapping[str, Ed25519PublicKey]
    ) -> VerifiedBundle:
        """Download and verify; raise `BundleError` (`BundleRefused` for a rule broken by a
        correctly signed bundle)."""
        if published.manifest_size > MAX_MANIFEST:
            raise BundleError("manifest larger than a gateway accepts")
        murl = urljoin(self.base_url, published.manifest_url)
        raw = await _get_capped(self.client, murl, published.manifest_size)
        if len(raw) != published.manifest_size:
            raise BundleError("manifest size differs from the notice")
        if hashlib.sha256(raw).hexdigest() != published.manifest_sha256:
            raise BundleError("manifest digest differs from the notice")
        try:
            _, payload = open_envelope(raw, keys, max_size=MAX_MANIFEST, payload_type=MANIFEST_TYPE)
        except NoticeError as exc:
            raise BundleError(f"manifest signature: {exc.reason}") from None
        manifest = Manifest.from_payload(payload)
        if manifest.provider != self.provider:
            raise BundleError("manifest is from another provider")
        if manifest.version != published.version:
            raise BundleError("manifest version differs from the notice")
        if manifest.expires_at < datetime.now(UTC):
            raise BundleError("manifest has expired")
        check_detection_only(f.name for f in manifest.files)  # before downloading any of them
        contents: dict[str, bytes] = {}
        for f in manifest.files:
            data = await _get_capped(self.client, urljoin(murl, f.name), f.size)
            if len(data) != f.size or hashlib.sha256(data).hexdigest() != f.sha256:
                raise BundleError(f"bundle file {f.name}: size or digest differs")
            contents[f.name] = data
        return VerifiedBundle(manifest, raw, contents)

    async def install(
        self, published: SignaturesPublished, keys: Mapping[str, Ed25519PublicKey]
    ) -> Path:
        """Return the installed version's folder; raise BundleError and change nothing else."""
        async with self._lock:
            existing = await asyncio.to_thread(self._already_installed, published)
            if existing is not None:
                return existing  # idempotent: a crash after install, before the seq committed
            current = await asyncio.to_thread(installed_version, self.data_dir)
            if published.version <= current:
                raise BundleError(
                    f"version {published.version} is not newer than installed {current}"
                )
            bundle = await self.fetch(published, keys)
            return await asyncio.to_thread(self._install_files, bundle)

    def _already_installed(self, published: SignaturesPublished) -> Path | None:
        if published.version != installed_version(self.data_dir):
            return None
        final = self.data_dir / "db" / str(published.version)
        try:
            manifest = (final / MANIFEST_NAME).read_bytes()
        except OSError:
            return None
        if hashlib.sha256(manifest).hexdigest() != published.manifest_sha256:
            return None
        return final

    def _install_files(self, bundle: VerifiedBundle) -> Path:
        final = write_version_dir(self.data_dir, bundle)
        if bundle.version <= installed_version(self.data_dir):  # re-check before the switch
            raise BundleError(f"version {bundle.version} is not newer than installed")
        switch_current(self.data_dir, bundle.version)
        return final
