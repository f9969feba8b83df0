"""Signature bundles end to end: publish on a real provider, fetch, verify, install atomically.

Refusals: wrong manifest digest or size, a tampered file, an older or equal version, a manifest
signed by another key. Each leaves the installed version unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from notices.support import MemorySink, ProviderProc, eventually
from zerohour.errors import BundleError
from zerohour.gateway.listeners.service import ListenerConfig, NoticeListeners
from zerohour.notices.bundle import BundleInstaller, installed_version
from zerohour.notices.keys import load_pinned_key
from zerohour.notices.payload import SignaturesPublished
from zerohour.notices.sink import Receipt
from zerohour.notices.verify import NoticeVerifier


@dataclasses.dataclass
class BundleSink(MemorySink):
    """MemorySink that installs bundles for real before recording the notice."""

    installer: BundleInstaller | None = None
    verifier: NoticeVerifier | None = None

    async def signatures_published(self, published: SignaturesPublished, receipt: Receipt) -> None:
        assert self.installer is not None
        assert self.verifier is not None
        await self.installer.install(published, self.verifier.accepted_keys())
        await super().signatures_published(published, receipt)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def hsb(tmp_path: Path, name: str, content: bytes) -> Path:
    f = tmp_path / name
    f.write_text(f"{hashlib.sha256(content).hexdigest()}:{len(content)}:Test.{name}\n")
    return f


async def test_publish_installs_and_ends_covered_outbreak(
    provider_proc: ProviderProc, tmp_path: Path, http: httpx.AsyncClient
) -> None:
    gw = tmp_path / "gw"
    pinned = load_pinned_key(provider_proc.key_text)
    sink = BundleSink()
    listeners = NoticeListeners(ListenerConfig(provider_proc.url, pinned, poll=False), sink, http)
    sink.installer = BundleInstaller(gw, provider_proc.url, pinned.provider, http)
    sink.verifier = listeners.verifier
    await listeners.start()
    try:
        oid = provider_proc.declare("Bundle.Worm")
        await eventually(lambda: oid in sink.outbreaks)
        sig = hsb(tmp_path, "a.hsb", b"virus one")
        provider_proc.lab("signatures", "publish", str(sig), "--covers", oid)
        await eventually(lambda: installed_version(gw) == 1)
        await eventually(lambda: oid not in sink.outbreaks)
        current = gw / "db" / "current"
        assert current.is_symlink()
        assert (current / "VERSION").read_text() == "1\n"
        assert (current / "a.hsb").read_bytes() == sig.read_bytes()
        sig2 = hsb(tmp_path, "b.hsb", b"virus two")
        provider_proc.lab("signatures", "publish", str(sig), str(sig2))
        await eventually(lambda: installed_version(gw) == 2)
        assert sorted(p.name for p in current.iterdir()) == [
            "VERSION",
            "a.hsb",
            "b.hsb",
            "manifest.json",
        ]
        latest = (await http.get(f"{provider_proc.url}/v1/signatures/latest")).json()
        assert latest["version"] == 2
    finally:
        await listeners.aclose()


async def test_refusals_leave_installed_version(
    provider_proc: ProviderProc, tmp_path: Path, http: httpx.AsyncClient
) -> None:
    gw = tmp_path / "gw"
    pinned = load_pinned_key(provider_proc.key_text)
    keys = {pinned.keyid: pinned.public_key}
    inst = BundleInstaller(gw, provider_proc.url, pinned.provider, http)
    sig = hsb(tmp_path, "a.hsb", b"virus one")
    out1 = json.loads(provider_proc.lab("signatures", "publish", str(sig), "--json").stdout)
    out2 = json.loads(provider_proc.lab("signatures", "publish", str(sig), "--json").stdout)
    v1 = SignaturesPublished.from_json(
        {
            k: out1[k]
            for k in ("version", "manifest_url", "manifest_sha256", "manifest_size", "covers")
        }
    )
    v2 = SignaturesPublished.from_json(
        {
            k: out2[k]
            for k in ("version", "manifest_url", "manifest_sha256", "manifest_size", "covers")
        }
    )

    with pytest.raises(BundleError, match="digest"):
        await inst.install(dataclasses.replace(v1, manifest_sha256="0" * 64), keys)
    with pytest.raises(BundleError, match=r"larger|size"):
        await inst.install(dataclasses.replace(v1, manifest_size=v1.manifest_size - 1), keys)
    # v2's manifest served under v1's claim: the digest pins the exact manifest.
    with pytest.raises(BundleError, match="digest"):
        await inst.install(dataclasses.replace(v1, manifest_url=v2.manifest_url), keys)
    other = load_pinned_key("zerohour-lab ed25519:" + "B" * 43 + "=")
    with pytest.raises(BundleError, match="unknown_key"):
        await inst.install(v1, {other.keyid: other.public_key})
    assert installed_version(gw) == 0
    assert not (gw / "db" / "1").exists()

    await inst.install(v2, keys)
    assert installed_version(gw) == 2
    with pytest.raises(BundleError, match="not newer"):
        await inst.install(v1, keys)
    # The same notice again (crash before its seq committed): idempotent, nothing changes.
    assert await inst.install(v2, keys) == gw / "db" / "2"
    # Same version, different manifest: refused.
    with pytest.raises(BundleError, match="not newer"):
        await inst.install(dataclasses.replace(v2, manifest_sha256="1" * 64), keys)
    assert installed_version(gw) == 2

    # A file tampered on the server (or a mirror) after publishing.
    out3 = json.loads(provider_proc.lab("signatures", "publish", str(sig), "--json").stdout)
    v3 = SignaturesPublished.from_json(
        {
            k: out3[k]
            for k in ("version", "manifest_url", "manifest_sha256", "manifest_size", "covers")
        }
    )
    (provider_proc.data_dir / "bundles" / "3" / "a.hsb").write_text("0" * 64 + ":1:Evil\n")
    with pytest.raises(BundleError, match="digest"):
        await inst.install(v3, keys)
    assert installed_version(gw) == 2
    assert (gw / "db" / "current" / "VERSION").read_text() == "2\n"


async def test_bundle_refusal_is_counted_and_not_applied(
    provider_proc: ProviderProc, tmp_path: Path, http: httpx.AsyncClient
) -> None:
    gw = tmp_path / "gw"
    pinned = load_pinned_key(provider_proc.key_text)
    sig = hsb(tmp_path, "a.hsb", b"virus one")
    provider_proc.lab("signatures", "publish", str(sig))
    (provider_proc.data_dir / "bundles" / "1" / "a.hsb").write_text("tampered\n")
    sink = BundleSink()
    listeners = NoticeListeners(
        ListenerConfig(provider_proc.url, pinned, stream=False, poll_interval=3600), sink, http
    )
    sink.installer = BundleInstaller(gw, provider_proc.url, pinned.provider, http)
    sink.verifier = listeners.verifier
    await listeners.start()
    try:
        await eventually(lambda: listeners.verifier.counts[("poll", "bundle_refused")] >= 1)
        assert listeners.verifier.last_seq == 0
        assert installed_version(gw) == 0
        assert sink.published == []
    finally:
        await listeners.aclose()
