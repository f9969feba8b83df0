"""Message bodies on disk, made durable before the SMTP 250.

Each body is written to a temporary file, fsync'd, renamed into place and the directory fsync'd:
after `write()` returns, a crash or power cut cannot lose the body or leave a torn one under the
final name. Bodies live in one folder (`spool/q/`); its fsync is a group commit: one thread
syncs the directory for every rename finished before the sync started, and writers that arrive
meanwhile wait for the next one (with 20 sessions that saves most directory flushes; concurrent
file fsyncs share journal commits too, hence the many I/O threads). Free space below `minfree`
raises `SpoolFullError` (SMTP 452 4.3.1, like Postfix's queue_minfree) before anything is written.
File I/O runs in a thread so the event loop never blocks on the disk.

Bodies this process wrote recently stay in memory (`store.bodies.RecentBodies`), so the delivery
that usually follows reads no file and takes no thread hop. Free space is read (`statvfs`) for every
message, as Postfix does: a reading cached even for 0.1 s let a message in after another
process had filled the disk (`tests/e2e/test_low_disk.py`).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from zerohour.errors import NotFoundError, SpoolError, SpoolFullError
from zerohour.store.bodies import RecentBodies, transition_then_delete

if TYPE_CHECKING:
    from collections.abc import Mapping

    from zerohour.store.base import Lease, MessageRecord, MessageState, RecipientStatus, Store

_HEX = frozenset("0123456789ABCDEF")


def new_queue_id() -> str:
    """Sortable by arrival (milliseconds) and unique (40 random bits): 21 upper-case hex chars."""
    return f"{int(time.time() * 1000):011X}{secrets.token_hex(5).upper()}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _DirSync:
    """Group fsync of one directory across threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.cond = threading.Condition()
        self.requested = 0
        self.done = 0
        self.running = False

    def sync(self) -> None:
        with self.cond:
            self.requested += 1
            mine = self.requested
            while True:
                if self.done >= mine:
                    return
                if not self.running:
                    self.running = True
                    target = self.requested
                    break
                self.cond.wait()
        try:
            _fsync_dir(self.path)
        finally:
            with self.cond:
                self.running = False
                self.done = max(self.done, target)
                self.cond.notify_all()


class Spool:
    """The spool folder `<data>/spool/`."""

    def __init__(self, root: Path, minfree: int = 0) -> None:
        self.root = root
        self.minfree = minfree
        self._tmp = root / "tmp"
        # Many threads on purpose: they mostly wait in fsync, and concurrent fsyncs share
        # journal commits, so more in flight means fewer disk flushes per message.
        self._io = ThreadPoolExecutor(max_workers=32, thread_name_prefix="zerohour-spool")
        self._dir = root / "q"
        self._dirsync = _DirSync(self._dir)
        self._recent = RecentBodies()
        self._deletes: list[tuple[str, asyncio.Future[None]]] = []
        self._deleter: asyncio.Future[None] | None = None
        created = False
        for sub in (self._tmp, self._dir):
            if not sub.is_dir():
                sub.mkdir(parents=True, exist_ok=True)
                created = True
        if created:
            _fsync_dir(root)
            _fsync_dir(root.parent)

    def path(self, queue_id: str) -> Path:
        if not queue_id or not _HEX.issuperset(queue_id):
            raise NotFoundError(f"invalid queue id {queue_id!r}")
        return self._dir / queue_id

    def free_bytes(self) -> int:
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize

    def check_space(self, incoming: int = 0) -> None:
        """Raise `SpoolFullError` if keeping `incoming` more bytes would go below minfree."""
        if self.minfree and self.free_bytes() - incoming < self.minfree:
            raise SpoolFullError("insufficient spool space", stage="spool")

    def write_sync(self, queue_id: str, data: bytes) -> None:
        final = self.path(queue_id)
        self.check_space(len(data))
        tmp = self._tmp / f"{queue_id}.{os.getpid()}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(data)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, final)
            self._dirsync.sync()
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise SpoolError(
                f"spool write failed: {exc}", message_id=queue_id, stage="spool"
            ) from exc

    async def write(self, queue_id: str, data: bytes) -> None:
        await asyncio.get_running_loop().run_in_executor(
            self._io, self.write_sync, queue_id, data
        )
        self._recent.keep(queue_id, data)

    async def add_with_message(
        self, store: Store, record: MessageRecord, data: bytes, *, reason: str,
        actor: str = "smtp", queue_due: float | None = None, lease: Lease | None = None,
    ) -> None:
        """The file first (durable), then the row; the file goes again if the row fails."""
        await self.write(record.queue_id, data)
        try:
            await store.add_message(record, reason=reason, actor=actor, queue_due=queue_due,
                                    lease=lease)
        except BaseException:
            await self.delete(record.queue_id)
            raise

    async def finish(
        self, store: Store, queue_id: str, state: MessageState, *, reason: str, actor: str,
        recipients: Mapping[str, tuple[RecipientStatus, str]] | None = None,
    ) -> None:
        await transition_then_delete(self, store, queue_id, state, reason=reason, actor=actor,
                                     recipients=recipients)

    def read_sync(self, queue_id: str) -> bytes:
        try:
            return self.path(queue_id).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"no spooled body for {queue_id}", message_id=queue_id) from None

    async def read(self, queue_id: str) -> bytes:
        hot = self._recent.get(queue_id)
        if hot is not None:
            self.path(queue_id)  # same validation as a read from disk
            return hot
        return await asyncio.get_running_loop().run_in_executor(
            self._io, self.read_sync, queue_id
        )

    def delete_sync(self, queue_id: str) -> None:
        self.path(queue_id).unlink(missing_ok=True)

    async def delete(self, queue_id: str) -> None:
        """Gone when this returns. Deletes that arrive together share one thread trip (a
        delivered message's delete used to be a hand-off of its own)."""
        self.path(queue_id)  # validate before queueing
        self._recent.forget(queue_id)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._deletes.append((queue_id, fut))
        if self._deleter is None or self._deleter.done():
            self._deleter = asyncio.ensure_future(self._flush_deletes())
        await fut

    async def _flush_deletes(self) -> None:
        loop = asyncio.get_running_loop()
        while self._deletes:
            batch, self._deletes = self._deletes, []
            try:
                errors = await loop.run_in_executor(
                    self._io, self._delete_many, [q for q, _ in batch]
                )
            except BaseException as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                raise
            for (_, fut), err in zip(batch, errors, strict=True):
                if fut.done():
                    continue
                if err is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(err)

    def _delete_many(self, ids: list[str]) -> list[Exception | None]:
        out: list[Exception | None] = []
        for qid in ids:
            try:
                self.delete_sync(qid)
                out.append(None)
            except Exception as exc:
                out.append(exc)
        return out

    def exists(self, queue_id: str) -> bool:
        return self.path(queue_id).is_file()

    def ids_before(self, ts: float) -> list[str]:
        """Queue ids of bodies created before `ts` (the id starts with its creation time)."""
        limit = f"{int(ts * 1000):011X}"
        return sorted(p.name for p in self._dir.iterdir() if p.name[:11] < limit)

    def close(self) -> None:
        self._io.shutdown(wait=True)

    def clean_tmp(self) -> int:
        """Remove temporaries of writes that never completed (no 250 was sent for them)."""
        n = 0
        for p in self._tmp.iterdir():
            p.unlink(missing_ok=True)
            n += 1
        return n
