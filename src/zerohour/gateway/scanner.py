"""Scanning off the event loop: a process pool whose workers each hold a `zerohour.scan.Engine`.

Why processes: the engine is CPU-bound Python; a thread pool would stay on one core. Each worker
loads the database once (the engine's disk cache makes that fast) and returns a small
`ScanSummary` (JSON-ready), not the whole report, to keep pickling cheap.

Engine swap (`swap()`): a new pool is started on the new database directories and becomes the
current one; the old pool is shut down without cancelling, so scans in flight finish on the old
engine and no message is dropped. The `forkserver` start method keeps forking away from the
gateway's threads (SQLite, asyncio).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Protocol

from zerohour.errors import DatabaseError
from zerohour.gateway._lifeline import die_with_parent
from zerohour.gateway.decide import ScanSummary, summarize
from zerohour.metrics import observe_scan
from zerohour.scan import Engine, default_db_dirs, load_database

# --- worker side ---------------------------------------------------------------------------------
_engine: Engine | None = None
_version: str = ""
_load_error: str = ""


def starter_db_dir() -> Path:
    """The bundled starter database: EICAR only, no real signatures."""
    return Path(__file__).resolve().parent.parent / "data" / "db"


def is_starter(dirs: Sequence[Path]) -> bool:
    return not dirs or [d.resolve() for d in dirs] == [starter_db_dir().resolve()]


def _init_pool_worker(db_dirs: list[str]) -> None:
    die_with_parent()
    _init_worker(db_dirs)


def _init_worker(db_dirs: list[str]) -> None:
    global _engine, _version, _load_error
    try:
        dirs = [Path(d) for d in db_dirs] or default_db_dirs()
        db = load_database(dirs)
        _engine = Engine(db)
        _version = str(getattr(db, "version", ""))
    except Exception as exc:  # reported by every scan, and at start-up by `warm()`
        _load_error = f"{type(exc).__name__}: {exc}"


def _ping(_: int) -> tuple[int, str, str]:
    time.sleep(0.05)  # keep this worker busy so the next ping starts another one
    return os.getpid(), _version, _load_error


def _scan(data: bytes, name: str | None) -> dict[str, Any]:
    if _engine is None:
        return ScanSummary.failed(len(data), _load_error or "engine not loaded").to_json()
    try:
        report = _engine.scan_bytes(data, name or "message")
    except Exception as exc:
        return ScanSummary.failed(len(data), f"{type(exc).__name__}: {exc}", _version).to_json()
    summary = summarize(report, len(data))
    if not summary.db_version:
        summary = ScanSummary.from_json({**summary.to_json(), "db_version": _version})
    return summary.to_json()


# --- gateway side --------------------------------------------------------------------------------
class ScannerPool:
    """Scan message bodies in worker processes; `await scan(data)` -> `ScanSummary`."""

    def __init__(self, db_dirs: Sequence[Path] = (), workers: int = 0) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.db_dirs = tuple(db_dirs)
        self.version = ""
        self._ctx = multiprocessing.get_context("forkserver")
        # the fork server imports this first: it (and so every worker) dies with the gateway
        self._ctx.set_forkserver_preload(["zerohour.gateway._lifeline_preload"])
        self._pool = self._new_pool(self.db_dirs)

    def _new_pool(self, dirs: Sequence[Path]) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=self._ctx,
            initializer=_init_pool_worker,
            initargs=([str(d) for d in dirs],),
        )

    async def warm(self) -> str:
        """Start every worker and load the database; raise `DatabaseError` if it fails."""
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(
            *(loop.run_in_executor(self._pool, _ping, i) for i in range(self.workers))
        )
        for _, version, error in results:
            if error:
                raise DatabaseError(f"signature database failed to load: {error}", stage="scan")
            self.version = version
        return self.version

    async def scan(self, data: bytes, name: str | None = None) -> ScanSummary:
        loop = asyncio.get_running_loop()
        pool = self._pool
        started = time.perf_counter()
        try:
            raw = await loop.run_in_executor(pool, _scan, data, name)
        except BrokenProcessPool:
            if pool is self._pool:  # a worker died (OOM, crash): start a fresh pool
                self._pool = self._new_pool(self.db_dirs)
                pool.shutdown(wait=False)
            return ScanSummary.failed(len(data), "scanner process died", self.version)
        # Latency as the message sees it: waiting for a worker plus the scan itself.
        observe_scan(time.perf_counter() - started)
        return ScanSummary.from_json(raw)

    async def swap(self, db_dirs: Sequence[Path]) -> str:
        """Switch to a new database; scans in flight finish on the old engine."""
        old = self._pool
        self.db_dirs = tuple(db_dirs)
        self._pool = self._new_pool(self.db_dirs)
        try:
            version = await self.warm()
        except BaseException:
            new, self._pool = self._pool, old
            new.shutdown(wait=False, cancel_futures=True)
            raise
        old.shutdown(wait=False)
        return version

    async def aclose(self) -> None:
        pool = self._pool
        await asyncio.to_thread(pool.shutdown, True, cancel_futures=True)


class LocalScanner:
    """The same scan in this process (on a thread): for the CLI's release-rescan, where
    starting a process pool would cost more than the one scan it needs."""

    def __init__(self, db_dirs: Sequence[Path] = ()) -> None:
        self.db_dirs = tuple(db_dirs)
        _init_worker([str(d) for d in self.db_dirs])
        if _load_error:
            raise DatabaseError(f"signature database failed to load: {_load_error}", stage="scan")
        self.version = _version

    async def scan(self, data: bytes, name: str | None = None) -> ScanSummary:
        return ScanSummary.from_json(await asyncio.to_thread(_scan, data, name))

    async def aclose(self) -> None:
        return None


class Scanner(Protocol):
    version: str

    async def scan(self, data: bytes, name: str | None = None) -> ScanSummary: ...

    async def aclose(self) -> None: ...
