"""The rules a gateway keeps before a signature bundle reaches its engine (issue 9, section 3),
on `SignatureDatabase` with a real SQLite store and real scanner processes:

- bundles may only add detection: allow-lists, ignore lists, containers and unknown files are
  refused (`BundleRefused`) and nothing changes;
- a signature that was live stays unless the provider's signed manifest retires it;
- the canary: a new database that no longer detects EICAR is refused;
- a second node on the same store, and a restarted node, converge on the installed bundle;
- a bundle installed on disk by an older release is put into the store at start.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from zerohour.errors import BundleError
from zerohour.gateway.outbreak.signatures import CANARY, SignatureDatabase
from zerohour.gateway.outbreak.state import OutbreakState
from zerohour.gateway.scanner import ScannerPool
from zerohour.notices.bundle import (
    BundleFile,
    BundleRefused,
    Manifest,
    VerifiedBundle,
    installed_version,
    switch_current,
    write_version_dir,
)
from zerohour.notices.envelope import MANIFEST_TYPE, sign
from zerohour.store.sqlite import SqliteStore

pytestmark = [pytest.mark.timeout(120)]

KEY = Ed25519PrivateKey.generate()
SAMPLE_A = b"MZ sample a " + bytes(range(200))
SAMPLE_B = b"MZ sample b " + bytes(range(100))


def hsb(sample: bytes, name: str) -> bytes:
    return f"{hashlib.sha256(sample).hexdigest()}:{len(sample)}:{name}\n".encode()


def bundle(version: int, files: dict[str, bytes], retired: Sequence[str] = ()) -> VerifiedBundle:
    now = datetime.now(UTC).replace(microsecond=0)
    entries = tuple(BundleFile(n, len(d), hashlib.sha256(d).hexdigest()) for n, d in files.items())
    manifest = Manifest("lab", version, now, now + timedelta(days=1), entries, tuple(retired))
    raw = sign(manifest.to_payload(), [KEY], MANIFEST_TYPE).to_bytes()
    return VerifiedBundle(manifest, raw, files)


def mail(sample: bytes) -> bytes:
    import base64

    return (
        b"Subject: t\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        b"\r\n" + base64.b64encode(sample) + b"\r\n--B--\r\n"
    )


@dataclass
class Node:
    db: SignatureDatabase
    scanner: ScannerPool
    store: SqliteStore
    outbreaks: OutbreakState

    async def finds(self, sample: bytes) -> tuple[str, ...]:
        return (await self.scanner.scan(mail(sample))).findings


class Nodes:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[Node] = []

    async def start(
        self, name: str, db_dirs: Sequence[Path] = (), **kw: object
    ) -> Node:
        store = await SqliteStore.open(self.tmp_path / "store.sqlite3")
        scanner = ScannerPool((), 1)
        outbreaks = OutbreakState(store)
        await outbreaks.load()
        db = SignatureDatabase(
            data_dir=self.tmp_path / name,
            db_dirs=db_dirs,
            store=store,
            scanner=scanner,
            outbreaks=outbreaks,
            **kw,  # type: ignore[arg-type]  # canary_pool
        )
        node = Node(db, scanner, store, outbreaks)
        self.started.append(node)
        await db.start()
        return node

    async def aclose(self) -> None:
        for n in self.started:
            await n.scanner.aclose()
            await n.store.aclose()


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[Nodes]:
    n = Nodes(tmp_path)
    try:
        yield n
    finally:
        await n.aclose()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("local.ign2", b"Eicar-Test-Signature\n"),
        ("old.ign", b"daily.ndb:1:Eicar-Test-Signature\n"),
        ("allow.fp", b"44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature\n"),
        ("allow.sfp", b"275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f:68:E\n"),
        ("daily.cvd", b"ClamAV-VDB:" + b" " * 501),
        ("notes.txt", b"hello\n"),
        ("phish.pdb", b"R:example.test\n"),
    ],
)
async def test_only_detection_formats_are_installed(
    nodes: Nodes, name: str, content: bytes
) -> None:
    node = await nodes.start("gw")
    with pytest.raises(BundleRefused, match="only add detection"):
        await node.db.install(bundle(1, {name: content, "a.hsb": hsb(SAMPLE_A, "Test.A")}))
    assert await node.store.bundle_version() == 0
    assert node.db.bundle_version == 0
    assert installed_version(node.db.data_dir) == 0
    assert await node.finds(SAMPLE_A) == ()
    assert (await node.scanner.scan(CANARY)).infected  # EICAR still detected


async def test_a_live_signature_goes_only_when_retired(nodes: Nodes) -> None:
    node = await nodes.start("gw")
    assert await node.db.install(bundle(1, {"a.hsb": hsb(SAMPLE_A, "Test.A")})) == frozenset()
    assert await node.finds(SAMPLE_A) == ("Test.A",)
    with pytest.raises(BundleRefused, match=r"drops live signatures.*Test\.A"):
        await node.db.install(bundle(2, {"b.hsb": hsb(SAMPLE_B, "Test.B")}))
    assert node.db.bundle_version == 1
    assert await node.store.bundle_version() == 1
    assert await node.finds(SAMPLE_A) == ("Test.A",)
    retired = await node.db.install(bundle(2, {"b.hsb": hsb(SAMPLE_B, "Test.B")}, ["Test.A"]))
    assert retired == frozenset({"Test.A"})
    assert await node.finds(SAMPLE_A) == ()
    assert await node.finds(SAMPLE_B) == ("Test.B",)
    assert node.outbreaks.installed_version == "2"
    # a bundle lists every name ever retired: one that was not live is not "newly retired"
    both = {"b.hsb": hsb(SAMPLE_B, "Test.B"), "c.hsb": hsb(b"c" * 50, "Test.C")}
    assert await node.db.install(bundle(3, both, ["Test.A"])) == frozenset()


async def test_same_bundle_again_is_a_no_op_and_older_is_refused(nodes: Nodes) -> None:
    node = await nodes.start("gw")
    b1 = bundle(1, {"a.hsb": hsb(SAMPLE_A, "Test.A")})
    b2 = bundle(2, {"a.hsb": hsb(SAMPLE_A, "Test.A")})
    await node.db.install(b2)
    assert await node.db.install(b2) == frozenset()
    with pytest.raises(BundleError, match="not newer"):
        await node.db.install(b1)
    assert node.db.bundle_version == 2


async def test_canary_refuses_a_database_that_no_longer_detects_eicar(
    nodes: Nodes, tmp_path: Path
) -> None:
    # The new folders as the canary engine sees them lose EICAR (as a database would whose
    # EICAR signature a bundle had suppressed); the real engine must never be swapped to it.
    lost = tmp_path / "lost-eicar"
    lost.mkdir()
    (lost / "other.hsb").write_bytes(hsb(b"unrelated", "Test.Other"))
    node = await nodes.start("gw", canary_pool=lambda dirs: ScannerPool([lost], 1))
    with pytest.raises(BundleRefused, match="canary"):
        await node.db.install(bundle(1, {"a.hsb": hsb(SAMPLE_A, "Test.A")}))
    assert node.db.bundle_version == 0
    assert await node.store.bundle_version() == 0
    assert installed_version(node.db.data_dir) == 0  # `current` was never switched
    assert (await node.scanner.scan(CANARY)).infected


async def test_other_nodes_and_restarts_converge_from_the_store(nodes: Nodes) -> None:
    a = await nodes.start("node-a")
    b = await nodes.start("node-b")
    old_verdict = (await b.scanner.scan(mail(SAMPLE_A))).db_version
    await a.db.install(bundle(1, {"a.hsb": hsb(SAMPLE_A, "Test.A")}))
    assert await b.finds(SAMPLE_A) == ()
    # node B's watch re-reads the version on "meta" first: from then on its older verdicts
    # are not current, and its engine is known to lag (the delivery queue waits, not rescans)
    await b.outbreaks.reload_version()
    assert b.outbreaks.installed_version == "1"
    assert not b.outbreaks.verdict_is_current(old_verdict)
    assert not b.outbreaks.engine_is_current
    await b.db.sync()  # what node B's change watch runs on "meta"
    assert await b.finds(SAMPLE_A) == ("Test.A",)
    assert b.outbreaks.engine_is_current
    assert b.outbreaks.verdict_is_current((await b.scanner.scan(mail(SAMPLE_A))).db_version)
    assert installed_version(b.db.data_dir) == 1  # written into its own data folder
    assert b.outbreaks.installed_version == "1"
    # a fresh node (or node B restarted) loads it at start, before any mail
    c = await nodes.start("node-c")
    assert c.db.bundle_version == 1
    assert await c.finds(SAMPLE_A) == ("Test.A",)


async def test_bundle_on_disk_from_an_older_release_goes_into_the_store(
    nodes: Nodes, tmp_path: Path
) -> None:
    old = bundle(4, {"a.hsb": hsb(SAMPLE_A, "Test.A")})
    write_version_dir(tmp_path / "gw", old)
    switch_current(tmp_path / "gw", 4)
    node = await nodes.start("gw")
    assert node.db.bundle_version == 4
    assert await node.store.bundle_version() == 4
    assert await node.finds(SAMPLE_A) == ("Test.A",)


async def test_operator_folders_under_a_bundle_move_the_version(
    nodes: Nodes, tmp_path: Path
) -> None:
    """With the operator's own --db folders (freshclam), a change there must make older
    verdicts recognisably older even while a bundle is installed: the version is the digest
    of everything loaded, not the bundle's number alone."""
    local = tmp_path / "clamav"
    local.mkdir()
    (local / "daily.hsb").write_bytes(hsb(b"local one", "Local.One"))
    node = await nodes.start("gw", db_dirs=(local,))
    await node.db.install(bundle(1, {"a.hsb": hsb(SAMPLE_A, "Test.A")}))
    with_bundle = node.scanner.version
    assert with_bundle.startswith("local-")
    assert node.outbreaks.installed_version == with_bundle
    assert await node.finds(SAMPLE_A) == ("Test.A",)
    (local / "daily.hsb").write_bytes(hsb(SAMPLE_B, "Local.Two"))
    after = await node.db.reload("db folder changed")
    assert after != with_bundle
    assert node.outbreaks.installed_version == after
    assert not node.outbreaks.verdict_is_current(with_bundle)
    assert node.outbreaks.verdict_is_current((await node.scanner.scan(mail(SAMPLE_B))).db_version)
    assert await node.finds(SAMPLE_A) == ("Test.A",)  # the bundle is still loaded
    assert await node.finds(SAMPLE_B) == ("Local.Two",)
    assert node.outbreaks.bundle_version == 1
