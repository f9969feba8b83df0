"""`OutbreakState`: the durable set of active outbreaks and the installed database version.

The store is the truth; this object keeps an in-memory copy of the active specs so `decide()`
can read them on every message without a query. The notice listeners (`gateway/listeners/**`)
call `declare`/`update`/`end` inside `store.transaction()` together with their sequence number;
the in-memory copy is refreshed only after the caller's transaction commits (`reload()`), or
immediately when called outside one.
"""

from __future__ import annotations

import time

from zerohour.notices.model import OutbreakSpec
from zerohour.store.base import BUNDLE_VERSION_KEY, OutbreakRecord, Store

INSTALLED_VERSION_KEY = "db.installed_version"
DB_DIRS_KEY = "db.dirs"


class OutbreakState:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._active: dict[str, OutbreakSpec] = {}
        self._version: str = ""  # meta db.installed_version: what status shows
        self._bundle = 0  # the cluster's installed bundle version (meta db.bundle_version)
        self.engine_version = ""  # what this node's engine reports (set by gateway.signatures)
        self.loaded_bundle = 0  # the bundle version this node's engine loaded
        # bumped by every local change: a reload whose query raced one is dropped (no lock: the
        # listeners call declare/end inside store.transaction(), a lock here could deadlock)
        self._gen = 0

    async def load(self) -> None:
        await self.reload()
        await self.reload_version()

    async def reload_version(self) -> None:
        """Re-read the installed database version (another node may have installed one)."""
        self._version = await self.store.get_meta(INSTALLED_VERSION_KEY, "") or ""
        self._bundle = int(await self.store.get_meta(BUNDLE_VERSION_KEY, "0") or "0")

    async def reload(self) -> None:
        """Re-read active outbreaks from the store (another node or process may have changed
        them, or a caller's transaction just committed).

        The read runs inside the store's unit of work: a notice being applied in another task's
        transaction (which already changed the in-memory copy) commits first, so this never
        puts back what that transaction is ending."""
        async with self.store.transaction():
            gen = self._gen
            records = await self.store.outbreaks(active_only=True)
        if gen == self._gen:
            self._active = {r.spec.outbreak_id: r.spec for r in records}

    @property
    def active(self) -> tuple[OutbreakSpec, ...]:
        return tuple(self._active.values())

    def get(self, outbreak_id: str) -> OutbreakSpec | None:
        return self._active.get(outbreak_id)

    async def records(self, *, active_only: bool = True) -> list[OutbreakRecord]:
        return await self.store.outbreaks(active_only=active_only)

    async def declare(self, spec: OutbreakSpec) -> None:
        """Start holding/screening for `spec` (idempotent: declaring again updates)."""
        self._gen += 1
        await self.store.save_outbreak(spec, time.time())
        self._active[spec.outbreak_id] = spec

    async def update(self, spec: OutbreakSpec) -> None:
        await self.declare(spec)

    async def end(self, outbreak_id: str, reason: str) -> bool:
        """Stop the outbreak; returns False if it was not active. Release is the caller's:
        see `gateway.release.Releaser.release_outbreak`."""
        self._gen += 1
        was = outbreak_id in self._active
        if was:
            await self.store.end_outbreak(outbreak_id, reason, time.time())
            self._active.pop(outbreak_id, None)
        return was

    @property
    def installed_version(self) -> str:
        """The database version a current verdict carries (`ScanSummary.db_version`): this
        node's engine version (the bundle's number, or `local-<digest>` when the operator's
        `--db` folders are loaded too), except while the store names a newer bundle than the
        engine has loaded (a cluster node still swapping it in, about a second): then the
        cluster's bundle version, which no verdict of this node's engine carries, so none is
        current. In a process without an engine (the CLI): what the gateway recorded."""
        if self._bundle > self.loaded_bundle and self.engine_version:
            return str(self._bundle)
        if self.engine_version:
            return self.engine_version
        return str(self._bundle) if self._bundle else self._version

    @property
    def bundle_version(self) -> int:
        return self._bundle

    def verdict_is_current(self, db_version: str) -> bool:
        """A verdict (`MessageRecord.db_version`) from the installed database version: one that
        may be delivered on. Otherwise rescan first (see `engine_is_current`)."""
        return bool(db_version) and db_version == self.installed_version

    @property
    def engine_is_current(self) -> bool:
        """This node's engine runs the installed version. False for the moment a cluster node
        is still swapping in a bundle another node installed (about a second): a rescan now
        would give an older verdict again, so wait (defer) instead."""
        return bool(self.engine_version) and self._bundle <= self.loaded_bundle

    async def set_installed_version(self, version: str) -> None:
        """Record what status shows; the cluster's bundle version, when set, comes first."""
        if self._bundle and version != str(self._bundle):
            self.engine_version = version
            return
        await self.store.set_meta(INSTALLED_VERSION_KEY, version)
        self._version = version
        self.engine_version = version
