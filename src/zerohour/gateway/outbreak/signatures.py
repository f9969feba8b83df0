"""`SignatureDatabase`: what this node scans with, kept equal to what the cluster installed.

The engine loads `[<data>/db/<bundle version>/, *the operator's --db folders]` (the bundled
starter database when none is configured). The provider's bundle is shared through the store
(`Store.put_bundle`: files and meta `db.bundle_version` in one commit, PostgreSQL NOTIFYs
"meta"), so every node, including one with no provider configured and one just restarted,
converges on it:

- `start()` (before the SMTP port opens): the store's bundle, else one installed on disk by an
  older release (uploaded to the store), is written to the data folder and loaded.
- `install(bundle)` (the node that heard `signatures.published`): the rules (detection formats
  only; every signature live before and not retired by the manifest is still defined), then
  the canary (a one-worker engine on the new folders must still detect EICAR if the current
  engine did), then the swap, `current`, and the store. Anything failing leaves state unchanged.
- `sync()` (on every "meta"/"resync" of the store's change watch): a newer bundle in the store is
  written and swapped in; a `zerohour reload` request (meta `db.reload_request`) reloads.
- `reload()`: the operator's folders changed (mtime poll every `watch_interval`, SIGHUP,
  `zerohour reload`): the engine is rebuilt from the same folders.

Every swap goes through `ScannerPool.swap`: the new database compiles first (into the disk
cache, by low-priority processes; only what changed) while the current engine keeps scanning,
then scans in flight finish on the old engine, and mail never waits. Each logs
`scan.db_installed version=... source=...`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Protocol

from zerohour.errors import BundleError, DatabaseError, NotFoundError, StoreError
from zerohour.gateway.outbreak.state import DB_DIRS_KEY, OutbreakState
from zerohour.gateway.scanner import ScannerPool
from zerohour.notices.bundle import (
    MANIFEST_NAME,
    VERSION_NAME,
    BundleRefused,
    VerifiedBundle,
    check_detection_only,
    current_path,
    installed_version,
    read_version_dir,
    signature_names,
    switch_current,
    write_version_dir,
)
from zerohour.notices.payload import SignaturesPublished
from zerohour.scan.dbpaths import default_db_dirs
from zerohour.store.base import MessageFilter, MessageState, Page, Store

log = logging.getLogger("zerohour.scan")

RELOAD_KEY = "db.reload_request"  # meta: `zerohour reload` writes it, every node reloads
WATCH_INTERVAL = 1.0

# The EICAR test file, split so this source is not itself a detection; sent as an attachment.
_EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
CANARY = (
    b"Subject: zerohour database canary\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=ZHC\r\n\r\n--ZHC\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
    b'Content-Disposition: attachment; filename="eicar.com"\r\n\r\n'
    + base64.b64encode(_EICAR)
    + b"\r\n--ZHC--\r\n"
)


class Rescans(Protocol):
    async def release_message(
        self, qid: str, *, force: bool = ..., actor: str = ..., admin: bool = ...
    ) -> object: ...


class SignatureDatabase:
    def __init__(
        self,
        *,
        data_dir: Path,
        db_dirs: Sequence[Path],
        store: Store,
        scanner: ScannerPool,
        outbreaks: OutbreakState,
        canary_pool: Callable[[Sequence[Path]], ScannerPool] = lambda d: ScannerPool(d, 1),
    ) -> None:
        self.data_dir = data_dir
        self.configured = tuple(db_dirs)
        self.store = store
        self.scanner = scanner
        self.outbreaks = outbreaks
        self.canary_pool = canary_pool
        self.releaser: Rescans | None = None  # set once the gateway has one
        self.bundle_version = 0  # the bundle this node's engine loaded
        self.names: frozenset[str] = frozenset()  # its signature names
        self._manifest = b""
        self._lock = asyncio.Lock()
        self._reload_seen: str | None = None
        self._stat: tuple[tuple[str, int, int, int], ...] | None = None
        self._detects_eicar: tuple[str, bool] | None = None  # (engine version, detected)

    # the folders ---------------------------------------------------------------------------
    def base_dirs(self) -> list[Path]:
        """The operator's folders (or the default/starter database)."""
        return list(self.configured) or default_db_dirs()

    def dirs(self, folder: Path | None = None) -> list[Path]:
        """What the engine loads: the bundle, then the operator's folders.

        With only the bundled starter database besides it, the bundle's folder is loaded whole
        and its `VERSION` names the engine ("3"). With the operator's own folders, which
        freshclam changes under the bundle, the bundle's signature files are loaded without
        `VERSION`: the engine's version is then `local-<digest>` of every file, and moves when
        either side changes, so a verdict from before a freshclam update is recognisably
        older (the delivery re-check rescans it)."""
        if folder is None and self.bundle_version:
            folder = self.data_dir / "db" / str(self.bundle_version)
        if folder is None:
            return self.base_dirs()
        if not self.configured:
            return [folder, *self.base_dirs()]
        files = sorted(
            p for p in folder.iterdir()
            if p.is_file() and p.name not in (VERSION_NAME, MANIFEST_NAME)
        )
        return [*files, *self.base_dirs()]

    def _adopt(self, bundle: VerifiedBundle) -> None:
        self.bundle_version = bundle.version
        self.names = frozenset(signature_names(bundle.files))
        self._manifest = bundle.manifest_raw

    # start ---------------------------------------------------------------------------------
    async def start(self) -> str:
        """Load the installed bundle (the store's, or one on disk from an older release) with
        the configured folders; return the engine version. Before the SMTP port opens."""
        cluster = await self.store.bundle_version()
        local = await asyncio.to_thread(installed_version, self.data_dir)
        bundle: VerifiedBundle | None = None
        if cluster and cluster >= local:
            bundle = VerifiedBundle.from_files(await self.store.get_bundle(cluster))
            if cluster != local:
                await asyncio.to_thread(self._write_and_switch, bundle)
        elif local:
            files = await asyncio.to_thread(read_version_dir, current_path(self.data_dir))
            bundle = VerifiedBundle.from_files(files)
            await self.store.put_bundle(bundle.version, bundle.all_files())
            log.info("scan.bundle_uploaded version=%d (installed before the store kept it)", local)
        if bundle is not None:
            self._adopt(bundle)
        self._reload_seen = await self.store.get_meta(RELOAD_KEY)
        self._stat = await asyncio.to_thread(self._local_stat)
        version = await self.scanner.swap(self.dirs())
        await self._installed(version, "start")
        return version

    def _write_and_switch(self, bundle: VerifiedBundle) -> Path:
        folder = write_version_dir(self.data_dir, bundle)
        switch_current(self.data_dir, bundle.version)
        return folder

    async def _installed(self, engine_version: str, source: str) -> None:
        await self.outbreaks.reload_version()
        # status shows the bundle version once there is one, else the operator's database
        shown = str(self.bundle_version) if self.bundle_version else engine_version
        await self.outbreaks.set_installed_version(shown)
        self.outbreaks.engine_version = engine_version
        self.outbreaks.loaded_bundle = self.bundle_version
        await self.store.set_meta(DB_DIRS_KEY, json.dumps([str(d) for d in self.dirs()]))
        log.info(
            "scan.db_installed version=%s bundle=%d source=%s dirs=%s",
            engine_version, self.bundle_version, source, [str(d) for d in self.dirs()],
        )

    # install (the node that heard the notice) ----------------------------------------------
    def has(self, published: SignaturesPublished) -> bool:
        """Already installed (the same manifest: a crash before the seq committed) or
        superseded by a newer bundle this node already has (every bundle is the full set)."""
        if published.version < self.bundle_version:
            return True
        return (
            published.version == self.bundle_version
            and hashlib.sha256(self._manifest).hexdigest() == published.manifest_sha256
        )

    async def install(self, bundle: VerifiedBundle) -> frozenset[str]:
        """Check, canary, swap and share `bundle`; return the names it newly retired. Raises
        `BundleRefused` (a rule broken: permanent) or `BundleError`; state is then unchanged."""
        async with self._lock:
            if bundle.version <= self.bundle_version:
                if bundle.version == self.bundle_version and bundle.manifest_raw == self._manifest:
                    return frozenset()
                raise BundleError(
                    f"version {bundle.version} is not newer than installed {self.bundle_version}"
                )
            check_detection_only(bundle.files)
            new_names = signature_names(bundle.files)
            retired = frozenset(bundle.manifest.retired)
            dropped = self.names - new_names - retired
            if dropped:
                raise BundleRefused(
                    f"bundle {bundle.version} drops live signatures without retiring them: "
                    + ", ".join(sorted(dropped)[:10])
                )
            folder = await asyncio.to_thread(write_version_dir, self.data_dir, bundle)
            dirs = self.dirs(folder)
            await self._canary(dirs, bundle.version)
            try:
                version = await self.scanner.swap(dirs)
            except DatabaseError as exc:
                raise BundleError(f"bundle {bundle.version} does not load: {exc}") from None
            await asyncio.to_thread(switch_current, self.data_dir, bundle.version)
            try:
                await self.store.put_bundle(bundle.version, bundle.all_files())
            except StoreError as exc:  # another node installed a newer one meanwhile
                log.warning("scan.bundle_store_skipped version=%d: %s", bundle.version, exc)
            newly_retired = self.names & retired
            self._adopt(bundle)
            await self._installed(version, "notice")
            return newly_retired

    async def _canary(self, dirs: Sequence[Path], version: int) -> None:
        """The new database must load and still detect what the current one detected."""
        current = self.scanner.version
        if self._detects_eicar is None or self._detects_eicar[0] != current:
            before = await self.scanner.scan(CANARY, "canary")
            self._detects_eicar = (current, before.infected)
        pool = self.canary_pool(dirs)
        try:
            # compiled once, off the event loop, for the canary and then the swap alike
            await asyncio.to_thread(pool.prepare, pool.db_dirs)
            await pool.warm()
            after = await pool.scan(CANARY, "canary")
        except DatabaseError as exc:
            raise BundleError(f"bundle {version} does not load: {exc}") from None
        finally:
            await pool.aclose()
        if self._detects_eicar[1] and not after.infected:
            raise BundleRefused(
                f"canary: the database with bundle {version} no longer detects the EICAR test "
                f"file ({after.error or 'clean'})"
            )

    async def release_retired(self, names: frozenset[str]) -> dict[str, int]:
        """Rescan quarantined mail a retired signature had caught: what is clean now (and not
        held by an active outbreak) is delivered, the rest stays in quarantine."""
        counts: dict[str, int] = {}
        if not names or self.releaser is None:
            return counts
        qids: list[str] = []
        offset = 0
        flt = MessageFilter(states=(MessageState.QUARANTINED,))
        while True:
            page = await self.store.list_messages(flt, Page(limit=500, offset=offset))
            qids += [m.queue_id for m in page if names & set(m.findings)]
            if len(page) < 500:
                break
            offset += 500
        for qid in qids:
            try:
                res = await self.releaser.release_message(qid, actor="retired", admin=False)
            except StoreError as exc:
                log.warning("release.skipped queue_id=%s: %s", qid, exc)
                continue
            state = getattr(getattr(res, "state", None), "value", "?")
            counts[state] = counts.get(state, 0) + 1
        log.info("release.retired names=%s results=%s", sorted(names)[:10], counts)
        return counts

    # follow the cluster --------------------------------------------------------------------
    async def sync(self) -> None:
        """Converge on the store: a newer bundle another node installed; a reload request."""
        cluster = await self.store.bundle_version()
        if cluster > self.bundle_version:
            async with self._lock:
                if cluster > self.bundle_version:
                    try:
                        files = await self.store.get_bundle(cluster)
                    except NotFoundError:
                        return  # replaced by a newer one meanwhile: the next change brings it
                    bundle = VerifiedBundle.from_files(files)
                    folder = await asyncio.to_thread(write_version_dir, self.data_dir, bundle)
                    version = await self.scanner.swap(self.dirs(folder))
                    await asyncio.to_thread(switch_current, self.data_dir, bundle.version)
                    self._adopt(bundle)
                    await self._installed(version, "store")
        request = await self.store.get_meta(RELOAD_KEY)
        if request != self._reload_seen:
            self._reload_seen = request
            await self.reload("zerohour reload")

    # the operator's folders ----------------------------------------------------------------
    async def reload(self, reason: str) -> str:
        """Rebuild the engine from the same folders (freshclam updated them)."""
        async with self._lock:
            self._stat = await asyncio.to_thread(self._local_stat)
            try:
                version = await self.scanner.swap(self.dirs())
            except DatabaseError as exc:  # a half-written file: keep the engine we have
                log.error("scan.db_reload_failed reason=%s: %s", reason, exc)
                return self.scanner.version
            await self._installed(version, reason)
            return version

    def _local_stat(self) -> tuple[tuple[str, int, int, int], ...]:
        out: list[tuple[str, int, int, int]] = []
        for d in self.configured:
            try:
                paths = sorted(p for p in d.iterdir() if p.is_file()) if d.is_dir() else [d]
                for p in paths:
                    st = p.stat()
                    out.append((str(p), st.st_size, st.st_mtime_ns, st.st_ino))
            except OSError:
                out.append((str(d), -1, -1, -1))
        return tuple(out)

    async def watch_folders(
        self, interval: float = WATCH_INTERVAL, sleep: Callable[[float], Awaitable[None]] = (
            asyncio.sleep
        )
    ) -> None:
        """Poll the operator's folders (names, sizes, mtimes, inodes); reload on a change
        that has settled (two polls alike), so a file being written is not loaded half-way."""
        if not self.configured:
            return
        pending: tuple[tuple[str, int, int, int], ...] | None = None
        while True:
            await sleep(interval)
            try:
                now = await asyncio.to_thread(self._local_stat)
                if now == self._stat:
                    pending = None
                elif now == pending:
                    await self.reload("db folder changed")
                else:
                    pending = now
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scan.db_watch_failed")
