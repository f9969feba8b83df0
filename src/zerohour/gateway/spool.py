"""Message bodies on disk, made durable before the SMTP 250.

Each body is written to a temporary file, fsync'd, renamed into place and the directory fsync'd:
after `write()` returns, a crash or power cut cannot lose the body or leave a torn one under the
final name. Bodies live in 16 bucket folders (by the queue id's last hex digit) created once at
start-up, so no per-message mkdir needs its own directory fsync. Free space below `minfree`
raises `SpoolFullError` (SMTP 452 4.3.1, like Postfix's queue_minfree) before anything is written.
File I/O runs in a thread so the event loop never blocks on the disk.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from pathlib import Path

from zerohour.errors import NotFoundError, SpoolError, SpoolFullError

_BUCKETS = "0123456789ABCDEF"


def new_queue_id() -> str:
    """Sortable by arrival (milliseconds) and unique (40 random bits): 21 upper-case hex chars."""
    return f"{int(time.time() * 1000):011X}{secrets.token_hex(5).upper()}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """The spool folder `<data>/spool/`."""

    def __init__(self, root: Path, minfree: int = 0) -> None:
        self.root = root
        self.minfree = minfree
        self._tmp = root / "tmp"
        created = False
        for sub in (self._tmp, *(root / b for b in _BUCKETS)):
            if not sub.is_dir():
                sub.mkdir(parents=True, exist_ok=True)
                created = True
        if created:
            _fsync_dir(root)
            _fsync_dir(root.parent)

    def path(self, queue_id: str) -> Path:
        if not queue_id or not all(ch in _BUCKETS for ch in queue_id):
            raise NotFoundError(f"invalid queue id {queue_id!r}")
        return self.root / queue_id[-1] / queue_id

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
            _fsync_dir(final.parent)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise SpoolError(
                f"spool write failed: {exc}", message_id=queue_id, stage="spool"
            ) from exc

    async def write(self, queue_id: str, data: bytes) -> None:
        await asyncio.to_thread(self.write_sync, queue_id, data)

    def read_sync(self, queue_id: str) -> bytes:
        try:
            return self.path(queue_id).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"no spooled body for {queue_id}", message_id=queue_id) from None

    async def read(self, queue_id: str) -> bytes:
        return await asyncio.to_thread(self.read_sync, queue_id)

    def delete_sync(self, queue_id: str) -> None:
        self.path(queue_id).unlink(missing_ok=True)

    async def delete(self, queue_id: str) -> None:
        await asyncio.to_thread(self.delete_sync, queue_id)

    def exists(self, queue_id: str) -> bool:
        return self.path(queue_id).is_file()

    def clean_tmp(self) -> int:
        """Remove temporaries of writes that never completed (no 250 was sent for them)."""
        n = 0
        for p in self._tmp.iterdir():
            p.unlink(missing_ok=True)
            n += 1
        return n
