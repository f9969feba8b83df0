"""A hard deadline per file for `zerohour scan`, as the gateway's scanner pool has per message.

The engine checks --max-scantime cooperatively, inside its loops, and a timer signal holds it
to that limit inside a regular expression too (`scan.alarm`: a catastrophically backtracking
PCRE subsignature is stopped halfway between the limit and the deadline, and the file gets
clamscan's MaxScanTime result). What looks at neither (a C library that never returns to
Python) would hold the run for as long as it liked. So the scans run in one forked child
process holding the engine (forked after the database is loaded: nothing is reloaded); when a
file's scan outlasts the deadline the child is SIGKILLed, that file is an error ("scan
deadline exceeded"), and the next file gets a fresh child, as it does after a scan the timer
interrupted. A child that dies by itself (out of memory) is an error for its file too. The
run always goes on.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from zerohour.errors import ScanError
from zerohour.scan import alarm
from zerohour.scan.types import ScanReport

if TYPE_CHECKING:
    from zerohour.scan import Engine

DEADLINE_EXCEEDED = "scan deadline exceeded"
WORKER_DIED = "scanner process died"


def _serve(conn: Connection, parent_end: Connection, engine: Engine, interrupt: float) -> None:
    """The child: scan what the parent sends until it says stop or goes away; a scan still
    running after `interrupt` seconds is interrupted (0: never), and then this child stops
    after answering (the next file gets a fresh one)."""
    parent_end.close()  # forked with us: holding it open would hide the parent's exit
    with contextlib.suppress(BaseException):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        kind, payload, name = msg
        with alarm.armed(interrupt) as timer:
            try:
                reply: tuple[str, Any] = ("ok", engine.scan_path(payload) if kind == "path"
                                          else engine.scan_bytes(payload, name))
            except ScanError as exc:
                reply = ("error", str(exc))
        conn.send((*reply, timer.fired))
        if timer.fired:
            return


class DeadlineScanner:
    """`scan_path` / `scan_bytes` like `Engine`, each in a child process with a deadline."""

    def __init__(self, engine: Engine, deadline: float | None) -> None:
        self.engine = engine
        self.deadline = deadline
        self._mp = multiprocessing.get_context("fork")
        self._proc: BaseProcess | None = None
        self._conn: Connection | None = None

    def scan_path(self, path: str) -> ScanReport:
        return self._roundtrip(("path", path, path))

    def scan_bytes(self, data: bytes, name: str) -> ScanReport:
        return self._roundtrip(("bytes", data, name))

    def _start(self) -> Connection:
        parent, child = self._mp.Pipe(duplex=True)
        # interrupted halfway between the engine's own limit and the deadline
        interrupt = (self.engine.limits.max_scan_time + self.deadline) / 2 if self.deadline \
            else 0.0
        proc = self._mp.Process(target=_serve, args=(child, parent, self.engine, interrupt),
                                daemon=True, name="zerohour-scan")
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent
        return parent

    def _roundtrip(self, msg: tuple[str, Any, str]) -> ScanReport:
        conn = self._conn or self._start()
        try:
            conn.send(msg)
            if not conn.poll(self.deadline):
                self.close(kill=True)
                raise ScanError(f"{DEADLINE_EXCEEDED} ({self.deadline:g} s)")
            kind, payload, interrupted = conn.recv()
        except (EOFError, OSError):
            self.close(kill=True)
            raise ScanError(WORKER_DIED) from None
        if interrupted:
            self.close()  # (it stops by itself after such an answer)
        if kind == "error":
            raise ScanError(payload)
        assert isinstance(payload, ScanReport)
        return payload

    def close(self, kill: bool = False) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if conn is not None:
            if not kill:
                with contextlib.suppress(OSError, ValueError):
                    conn.send(None)
            conn.close()
        if proc is not None:
            if kill:
                proc.kill()
            proc.join(5.0)
            if proc.exitcode is None:
                proc.kill()
                proc.join()
            proc.close()
