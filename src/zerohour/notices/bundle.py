"""Signature bundles: ClamAV-format files plus a signed manifest, built by the provider and
fetched, verified and installed by the gateway.

The manifest is a DSSE envelope (`application/vnd.zerohour.manifest+json`) whose payload lists
each file's name, size and SHA-256, the version and an expiry. The bundle is self-verifying, so
any mirror or CDN can serve it; the notice pins the manifest's own size and digest, so a mirror
cannot substitute an older, also validly signed, manifest.

Install layout (gateway): `<data>/db/<version>/` holds the files and a `VERSION` file; the
`<data>/db/current` symlink is switched with one atomic rename. Versions only go up.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
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
MAX_MANIFEST = 64 * 1024
MAX_FILE = 512 * 1024 * 1024
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


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

    def to_payload(self) -> bytes:
        obj = {
            "v": 1,
            "provider": self.provider,
            "version": self.version,
            "issued_at": format_ts(self.issued_at),
            "expires_at": format_ts(self.expires_at),
            "files": [{"name": f.name, "size": f.size, "sha256": f.sha256} for f in self.files],
        }
        return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode("utf-8")

    @classmethod
    def from_payload(cls, data: bytes) -> Manifest:
        try:
            obj: Any = json.loads(data)
        except ValueError:
            raise BundleError("manifest payload is not JSON") from None
        if (
            not isinstance(obj, dict)
            or set(obj) != {"v", "provider", "version", "issued_at", "expires_at", "files"}
            or obj["v"] != 1
        ):
            raise BundleError("manifest payload has the wrong fields or version")
        version = obj["version"]
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise BundleError("manifest version must be a positive integer")
        files: list[BundleFile] = []
        raw = obj["files"]
        if not isinstance(raw, list) or not raw or len(raw) > 100:
            raise BundleError("manifest must list 1..100 files")
        for f in raw:
            if not isinstance(f, dict) or set(f) != {"name", "size", "sha256"}:
                raise BundleError("manifest file entry has the wrong fields")
            name, size, digest = f["name"], f["size"], f["sha256"]
            if not isinstance(name, str) or not _FILE_NAME.match(name) or name == MANIFEST_NAME:
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
        return cls(obj["provider"], version, issued, expires, tuple(files))


# -- provider side ------------------------------------------------------------------------------
def build_bundle(
    out_dir: Path,
    files: Sequence[Path],
    *,
    version: int,
    provider: str,
    keys: list[Ed25519PrivateKey],
    lifetime: timedelta = timedelta(days=30),
) -> bytes:
    """Copy the files into `out_dir` (created) and write the signed manifest; return its bytes."""
    out_dir.mkdir(parents=True, exist_ok=False)
    entries: list[BundleFile] = []
    for src in files:
        if not _FILE_NAME.match(src.name) or src.name == MANIFEST_NAME:
            raise BundleError(f"bundle file name {src.name!r} is not a plain file name")
        data = src.read_bytes()
        (out_dir / src.name).write_bytes(data)
        entries.append(BundleFile(src.name, len(data), hashlib.sha256(data).hexdigest()))
    now = datetime.now(UTC).replace(microsecond=0)
    manifest = Manifest(provider, version, now, now + lifetime, tuple(entries))
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


class BundleInstaller:
    """Fetch, verify and install the bundle a `signatures.published` notice names."""

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
            murl = urljoin(self.base_url, published.manifest_url)
            raw = await _get_capped(self.client, murl, published.manifest_size)
            if len(raw) != published.manifest_size:
                raise BundleError("manifest size differs from the notice")
            if hashlib.sha256(raw).hexdigest() != published.manifest_sha256:
                raise BundleError("manifest digest differs from the notice")
            try:
                _, payload = open_envelope(
                    raw, keys, max_size=MAX_MANIFEST, payload_type=MANIFEST_TYPE
                )
            except NoticeError as exc:
                raise BundleError(f"manifest signature: {exc.reason}") from None
            manifest = Manifest.from_payload(payload)
            if manifest.provider != self.provider:
                raise BundleError("manifest is from another provider")
            if manifest.version != published.version:
                raise BundleError("manifest version differs from the notice")
            if manifest.expires_at < datetime.now(UTC):
                raise BundleError("manifest has expired")
            contents: dict[str, bytes] = {}
            for f in manifest.files:
                data = await _get_capped(self.client, urljoin(murl, f.name), f.size)
                if len(data) != f.size or hashlib.sha256(data).hexdigest() != f.sha256:
                    raise BundleError(f"bundle file {f.name}: size or digest differs")
                contents[f.name] = data
            return await asyncio.to_thread(self._install_files, manifest.version, contents, raw)

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

    def _install_files(self, version: int, contents: dict[str, bytes], manifest: bytes) -> Path:
        db = self.data_dir / "db"
        db.mkdir(parents=True, exist_ok=True)
        final = db / str(version)
        if final.exists():
            shutil.rmtree(final)  # a half-finished earlier attempt; `current` never points here
        tmp = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=db))
        for name, data in {
            **contents,
            MANIFEST_NAME: manifest,
            "VERSION": b"%d\n" % version,
        }.items():
            with open(tmp / name, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        os.rename(tmp, final)
        if version <= installed_version(self.data_dir):  # re-check right before the switch
            raise BundleError(f"version {version} is not newer than installed")
        link_tmp = db / f".current-{version}"
        if link_tmp.is_symlink() or link_tmp.exists():
            link_tmp.unlink()
        os.symlink(str(version), link_tmp)
        os.replace(link_tmp, db / "current")
        dfd = os.open(db, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        return final
