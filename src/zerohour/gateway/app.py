"""Wiring: one `Gateway` object owns the store, spool, scanner pool, pipeline, delivery queue,
outbreak state, releaser and the SMTP listener, starts them in order and stops them in reverse.

Start-up recovers every message that got a 250 and is not finished: `received` ones are scanned
(`Pipeline.recover`), queued ones are simply due in the delivery queue (their leases expire), held
and quarantined ones stay where they are. Spool temporaries (bodies whose 250 never went out) are
removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import ssl
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from zerohour.config import Config
from zerohour.errors import ConfigError, NotFoundError
from zerohour.gateway.delay_queue import DelayQueue
from zerohour.gateway.deliver import DeliveryQueue
from zerohour.gateway.outbreak.release import Releaser
from zerohour.gateway.outbreak.signatures import SignatureDatabase
from zerohour.gateway.outbreak.state import DB_DIRS_KEY, OutbreakState
from zerohour.gateway.pipeline import Pipeline, policy_from
from zerohour.gateway.receive import ControlHook, Receiver
from zerohour.gateway.scanner import ScannerPool
from zerohour.gateway.spool import Spool
from zerohour.gateway.verify import RecipientVerifier
from zerohour.gateway.workers import (
    WORKER_POLL,
    per_process,
    scanners_per_process,
    worker_count,
)
from zerohour.scan.dbpaths import is_starter
from zerohour.store import factory
from zerohour.store.base import MessageState, Store
from zerohour.store.bodies import BodyStore, SqliteBodies
from zerohour.store.sqlite import SqliteStore

log = logging.getLogger("zerohour.gateway")

STARTER_WARNING = (
    "using the bundled STARTER database: it has NO REAL SIGNATURES (it detects only the EICAR "
    "test file); pass --db DIR with a ClamAV-format database"
)


async def open_store(cfg: Config) -> Store:
    return await factory.open_store(cfg.store or None, data_dir=cfg.data_dir)


class Gateway:
    """Store, spool, scanner, outbreak state, delivery and release for one node.

    `smtp=False` runs it without its own SMTP listener: the milter front end
    (`gateway.milter`) hands it Postfix's mail instead. `worker=True` is one of the extra SMTP
    processes of `smtp.workers` (`gateway.workers`): it receives, scans and delivers, and
    leaves the one-per-node duties (recovery, lease and spool clean-up at start, housekeeping,
    the delay queue, notice listeners, admin) to the main process."""

    def __init__(self, cfg: Config, *, smtp: bool = True, worker: bool = False) -> None:
        self.cfg = cfg
        self.smtp = smtp
        self.worker = worker
        self.processes = worker_count(cfg) if smtp else 1
        self.store: Store | None = None
        self.spool = Spool(cfg.spool_dir, cfg.spool_minfree)  # this node's spool folder
        self.bodies: BodyStore = self.spool  # where bodies live: PostgreSQL for a cluster store
        self.scanner = ScannerPool(
            cfg.scan.db_dirs,
            scanners_per_process(cfg, self.processes),
            hard_timeout=cfg.scan.hard_timeout,
            clean_cache=cfg.scan.clean_cache_mb * 1024 * 1024,
        )
        self.address: tuple[str, int] | None = None
        self.control_hook: ControlHook | None = None
        self.control_address: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()
        self._db_changed = asyncio.Event()  # the store's meta moved: look at the bundle

    # the parts, available after start() --------------------------------------------------------
    outbreaks: OutbreakState
    pipeline: Pipeline
    queue: DeliveryQueue
    releaser: Releaser
    delay_queue: DelayQueue
    receiver: Receiver
    signatures: SignatureDatabase

    def _tls(self) -> ssl.SSLContext | None:
        s = self.cfg.smtp
        if s.tls_cert is None or s.tls_key is None:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ctx.load_cert_chain(s.tls_cert, s.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"smtp.tls_cert/tls_key: {exc}") from exc
        return ctx

    async def start(self) -> tuple[str, int] | None:
        cfg = self.cfg
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self._started_at = time.time()
        tls = self._tls()
        self.store = store = await open_store(cfg)
        self.bodies = factory.open_bodies(store, self.spool)
        # one node (its workers start after this): leases left are a dead process's
        if isinstance(store, SqliteStore) and not self.worker:
            n = await store.clear_leases()
            if n:
                log.info("queue.leases_released count=%d", n)
        removed = 0 if self.worker else self.spool.clean_tmp()
        if removed:
            log.info("spool.cleaned_tmp count=%d", removed)
        self.outbreaks = OutbreakState(store)
        await self.outbreaks.load()
        # the installed bundle (shared in the store) with the configured folders, before SMTP
        self.signatures = SignatureDatabase(
            data_dir=cfg.data_dir,
            db_dirs=cfg.scan.db_dirs,
            store=store,
            scanner=self.scanner,
            outbreaks=self.outbreaks,
        )
        version = await self.signatures.start()
        if is_starter(cfg.scan.db_dirs):
            log.warning("scan.starter_db %s", STARTER_WARNING)
        self.pipeline = Pipeline(
            cfg, store, self.bodies, self.scanner, self.outbreaks, wake_delivery=self._wake
        )
        self.queue = DeliveryQueue(cfg, store, self.bodies, self.pipeline)
        self.pipeline.act.hand_off = self.queue  # new mail: no claim, no read back
        self.releaser = Releaser(
            store, self.bodies, self.scanner, self.outbreaks, policy_from(cfg), self._wake
        )
        self.signatures.releaser = self.releaser
        self.delay_queue = DelayQueue(
            store, self.bodies, self.scanner, self.outbreaks, self.pipeline.policy,
            self.pipeline.delay, self.releaser.act,
        )  # fmt: skip
        # subscribed before the SMTP port opens: a node holds from its first message on
        # several processes on one SQLite file: outbreak changes reach each within ~50 ms
        changes = store.watch_changes(WORKER_POLL) if self.processes > 1 else store.watch_changes()
        await anext(changes)
        await self.outbreaks.load()
        self.receiver = Receiver(
            per_process(cfg.smtp, self.processes),
            self.pipeline,
            tls_context=tls,
            control_address=self.control_address,
            control_hook=self.control_hook,
            verifier=RecipientVerifier.from_config(cfg) if cfg.smtp.verify_recipients else None,
        )
        if self.smtp:
            self.address = await self.receiver.start(reuse_port=self.processes > 1)
        self._tasks.append(asyncio.create_task(self.queue.run(), name="delivery"))
        if not self.worker:
            self._tasks.append(asyncio.create_task(self._recover(), name="recovery"))
            self._tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))
            self._tasks.append(asyncio.create_task(self.delay_queue.run(), name="delay-queue"))
        self._tasks.append(asyncio.create_task(self._watch(changes), name="watch"))
        self._tasks.append(asyncio.create_task(self._follow_database(), name="db-follow"))
        self._tasks.append(
            asyncio.create_task(self.signatures.watch_folders(), name="db-folders")
        )
        smtp = "off" if self.address is None else f"{self.address[0]}:{self.address[1]}"
        log.info(
            "gateway.listening smtp=%s db=%s next_hop=%s data_dir=%s store=%s",
            smtp, version, cfg.delivery.next_hop or "mx", cfg.data_dir,
            factory.describe_store(cfg.store or None),
        )
        if self.address is not None:
            print(f"zerohour gateway listening on {smtp}", flush=True)
        return self.address

    async def worker_died(self, pid: int) -> None:
        """An SMTP worker of this node died: its delivery leases go back to the queue now,
        not when they expire (10 minutes), and this process delivers them."""
        assert self.store is not None
        n = await self.store.release_leases_of(f"{socket.gethostname()}:{pid}")
        if n:
            log.info("queue.leases_released count=%d owner_pid=%d", n, pid)
            self._wake()

    def _wake(self) -> None:
        queue = getattr(self, "queue", None)
        if queue is not None:
            queue.wake()

    async def _recover(self) -> None:
        try:
            n = await self.pipeline.recover()
            if n:
                log.info("gateway.recovered received=%d", n)
            await self._remove_orphans()
        except Exception:
            log.exception("gateway.recovery_failed")

    async def _remove_orphans(self) -> None:
        """Bodies written before the last crash whose row never committed (so no 250 was sent
        for them) are garbage: remove them. Only ids older than this start are looked at."""
        files = self.bodies is self.spool or (
            isinstance(self.bodies, SqliteBodies) and self.bodies.files is self.spool
        )
        if not files or self.store is None:
            return
        removed = 0
        for qid in await asyncio.to_thread(self.spool.ids_before, self._started_at):
            try:
                await self.store.get_message(qid)
            except NotFoundError:
                await self.spool.delete(qid)
                removed += 1
        if removed:
            log.info("spool.orphans_removed count=%d", removed)

    async def _watch(self, changes: AsyncIterator[str]) -> None:
        """Changes made elsewhere (the CLI; other nodes of a cluster): reload outbreak state
        and look at the queue at once. A failure (the database away) restarts the watch."""
        assert self.store is not None
        while True:
            try:
                async for what in changes:
                    if what in ("outbreaks", "resync"):
                        await self.outbreaks.reload()
                    if what in ("meta", "resync"):
                        await self.outbreaks.reload_version()
                        self._db_changed.set()
                    if what in ("queue", "resync"):
                        self._wake()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("gateway.watch_failed")
                await asyncio.sleep(1.0)
                changes = self.store.watch_changes()

    async def _follow_database(self) -> None:
        """Converge on the cluster's bundle and reload requests (`SignatureDatabase.sync`) when
        the store's meta changes; in its own task, so an engine swap never delays the
        outbreak state the watch keeps current."""
        while True:
            await self._db_changed.wait()
            self._db_changed.clear()
            try:
                await self.signatures.sync()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scan.db_sync_failed")
                await asyncio.sleep(1.0)
                self._db_changed.set()

    def reload_database(self) -> None:
        """SIGHUP: rebuild the engine from the configured folders (freshclam updated them)."""
        async def reload() -> None:
            await self.signatures.reload("SIGHUP")

        task = asyncio.create_task(reload(), name="db-reload")
        self._tasks.append(task)

    async def _housekeeping(self) -> None:
        """Every minute: retry scans that failed after the 250, apply the max hold time."""
        while True:
            await asyncio.sleep(60)
            try:
                assert self.store is not None
                await self.outbreaks.reload()
                await self.pipeline.recover()
                await self.releaser.expire_held(self.cfg.hold.max_hold, self.cfg.hold.expiry)
            except Exception:
                log.exception("gateway.housekeeping_failed")

    async def install_database(self, db_dirs: Sequence[Path], version: str | None = None) -> str:
        """Swap the engine to other folders (scans in flight finish on the old one). Provider
        bundles go through `self.signatures` instead (checked, shared with the cluster)."""
        got = await self.scanner.swap(db_dirs)
        assert self.store is not None
        await self.store.set_meta(DB_DIRS_KEY, json.dumps([str(d) for d in db_dirs]))
        await self.outbreaks.set_installed_version(version or got)
        log.info("scan.db_installed version=%s dirs=%s", version or got, list(map(str, db_dirs)))
        return version or got

    async def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        log.info("gateway.stopping")
        if self.smtp:
            with contextlib.suppress(Exception):
                await self.receiver.stop()
        for t in self._tasks:
            if t.get_name() != "delivery":
                t.cancel()
        with contextlib.suppress(Exception):
            await self.queue.stop()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.pipeline.aclose()
        await self.scanner.aclose()
        if self.store is not None:
            await self.store.aclose()
        await asyncio.to_thread(self.spool.close)
        if self.bodies is not self.spool:
            await asyncio.to_thread(self.bodies.close)
        log.info("gateway.stopped")

    async def counts(self) -> dict[MessageState, int]:
        assert self.store is not None
        return await self.store.count_by_state()
