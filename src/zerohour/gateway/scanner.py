"""Scanning off the event loop: a pool of worker processes, each holding a `zerohour.scan.Engine`.

Why processes: the engine is CPU-bound Python; a thread pool would stay on one core. Each worker
loads the database once (the engine's disk cache makes that fast), says it is ready, then serves
scans over its own pipe and returns a small `ScanSummary` (JSON-ready), not the whole report, to
keep pickling cheap.

The event loop talks to a worker directly: it writes the request to the worker's socket and
reads the answer as it arrives (`_Worker.exchange`), in the framing of `multiprocessing`'s
`Connection` that the worker reads and writes. A thread per scan (blocking send + recv) cost a
thread wake-up, a GIL hand-off and a wake-up of the loop for every message.

Why our own pool rather than `ProcessPoolExecutor`: a running task cannot be cancelled there.
Here every scan has a hard deadline (`hard_timeout`, twice the engine's MaxScanTime by default):
we know which process runs which scan, so when the deadline passes that worker is SIGKILLed, a
replacement starts, and the scan answers `ScanSummary.failed(..., "scan deadline exceeded")` (a
tempfail at DATA, quarantine after the 250: never clean). Scans on other workers are untouched.
A worker that dies by itself (OOM, crash) is replaced the same way ("scanner process died").
Before the deadline, a timer in the worker holds the engine to its MaxScanTime inside a regular
expression too (`scan.alarm`); a worker so interrupted answers (the time limit), and is then
replaced in the background.

Engine swap (`swap()`): first the new database is compiled into the disk cache, once, off the
hot path (`prepare_database`: a thread of this process driving low-priority compile processes;
only the pieces whose files changed recompile), while the current workers keep scanning with
the old engine. Then a new generation of workers is started on the new database directories
(each only reads the cache) and becomes the current one; workers of the old generation finish
the scans they hold (and any scan already waiting for one of them), then stop: no message is
dropped and none waits for a compile. The `forkserver`
start method keeps forking away from the gateway's threads (SQLite, asyncio); the fork server
imports `_lifeline_preload` and every worker calls `die_with_parent()`, so they die with us.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import pickle
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from zerohour.errors import DatabaseError
from zerohour.gateway._lifeline import die_with_parent
from zerohour.gateway.decide import ScanSummary, summarize
from zerohour.gateway.subject import subject_of
from zerohour.metrics import observe_clean_cache, observe_scan
from zerohour.scan import alarm
from zerohour.scan.dbpaths import default_db_dirs
from zerohour.scan.limits import Limits

if TYPE_CHECKING:
    from zerohour.scan import Engine

#: Default hard deadline of one scan: twice the engine's own time limit (which the engine
#: enforces cooperatively, inside its loops; this one holds even when something does not).
DEFAULT_HARD_TIMEOUT = 2 * Limits().max_scan_time
DEADLINE_EXCEEDED = "scan deadline exceeded"
WORKER_DIED = "scanner process died"
BAD_ANSWER = "scanner process answered garbage"
CLOSED = "scanner closed"
#: Priority of the compile processes a reload starts (scans keep theirs).
COMPILE_NICE = 10
_log = logging.getLogger(__name__)


def prepare_database(dirs: Sequence[Path]) -> None:
    """Compile `dirs` into the disk cache without loading it here (blocking: run on a thread).
    A `DatabaseError` means the new database cannot load; the caller keeps the old one.

    The compile runs in a child of the fork server, so the gateway's SMTP processes never
    import the database code (about 6 MB each; their scan workers load the database)."""
    ctx = multiprocessing.get_context("forkserver")
    parent, child = ctx.Pipe(duplex=False)
    # the fork server's environment is the one it started with: the cache's place is ours
    env = {k: os.environ.get(k) for k in _CACHE_ENV}
    proc = ctx.Process(target=_prepare_child, args=(child, [str(d) for d in dirs], env),
                       name="zerohour-compile")
    proc.start()
    child.close()
    try:
        kind, text = json.loads(parent.recv_bytes())
    except (EOFError, OSError, ValueError):
        kind, text = "other", "the compile process died"
    finally:
        parent.close()
        proc.join()
        with contextlib.suppress(ValueError):
            proc.close()
    if kind == "database":
        raise DatabaseError(text, stage="scan")
    if kind != "ok":
        raise RuntimeError(text)


_CACHE_ENV = ("ZEROHOUR_CACHE_DIR", "XDG_CACHE_HOME", "HOME")


def _prepare_child(conn: Connection, dirs: list[str], env: dict[str, str | None]) -> None:
    die_with_parent()
    for key, value in env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    from zerohour.scan import dbcompile
    from zerohour.scan.database import BuildOptions

    try:
        dbcompile.prepare([Path(d) for d in dirs] or default_db_dirs(),
                          BuildOptions(nice=COMPILE_NICE))
        answer = ["ok", ""]
    except DatabaseError as exc:
        answer = ["database", str(exc)]
    except Exception as exc:
        answer = ["other", f"{type(exc).__name__}: {exc}"]
    with contextlib.suppress(OSError):
        conn.send_bytes(json.dumps(answer).encode())
    conn.close()


# --- worker side ---------------------------------------------------------------------------------
#: seconds past the engine's MaxScanTime at which its timer interrupts a scan (its own clock
#: checks come first)
ALARM_GRACE = 1.0
#: an answer's key: this worker was interrupted mid-scan and should be replaced
RETIRE = "retire"
#: The answer's key for the clean cache's lookups and hits during the scan (`[n, n]`).
CACHE = "cache"
_interrupts = False  # a worker process: scans are armed with a timer (`scan.alarm`)
_engine: Engine | None = None
_version: str = ""
_load_error: str = ""


def _worker_main(conn: Connection, db_dirs: list[str], max_scan_time: float | None = None,
                 clean_cache: int = 0) -> None:
    """One worker process: load the engine, say ready, then serve scans until told to stop."""
    global _interrupts
    die_with_parent()
    with contextlib.suppress(BaseException):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the gateway decides when we stop
    _interrupts = True
    _init_worker(db_dirs, max_scan_time, clean_cache)
    try:
        conn.send_bytes(json.dumps([os.getpid(), _version, _load_error]).encode())
        while True:
            msg = conn.recv()
            if msg is None:
                return
            data, name = msg
            conn.send_bytes(json.dumps(_scan(data, name)).encode())
    except (EOFError, OSError):  # the gateway went away
        return


def _init_worker(db_dirs: list[str], max_scan_time: float | None = None,
                 clean_cache: int = 0) -> None:
    global _engine, _version, _load_error
    from zerohour.scan import Engine, load_database  # here: the gateway's process never scans

    try:
        dirs = [Path(d) for d in db_dirs] or default_db_dirs()
        db = load_database(dirs)
        _engine = Engine(db, Limits(max_scan_time=max_scan_time) if max_scan_time else None,
                         clean_cache=clean_cache)
        _version = str(getattr(db, "version", ""))
    except Exception as exc:  # reported by every scan, and at start-up by `warm()`
        _load_error = f"{type(exc).__name__}: {exc}"


def _scan(data: bytes, name: str | None) -> dict[str, Any]:
    """One scan, as a JSON answer. In a worker process, a timer holds the engine to its
    MaxScanTime even inside a regular expression (`scan.alarm`); a worker so interrupted asks
    to be replaced (`RETIRE`) after it answers."""
    if _engine is None:
        return ScanSummary.failed(len(data), _load_error or "engine not loaded").to_json()
    budget = _engine.limits.max_scan_time + ALARM_GRACE if _interrupts else 0.0
    cache = _engine.clean
    counts = (cache.lookups, cache.hits) if cache is not None else None
    report, failure = None, ""
    with alarm.armed(budget) as timer:
        try:
            report = _engine.scan_bytes(data, name or "message")
        except Exception as exc:
            failure = f"{type(exc).__name__}: {exc}"
    if report is None:
        answer = ScanSummary.failed(len(data), failure, _version).to_json()
    else:
        summary = summarize(report, len(data), subject_of(data))
        if not summary.db_version:
            summary = ScanSummary.from_json({**summary.to_json(), "db_version": _version})
        answer = summary.to_json()
    if timer.fired:
        answer[RETIRE] = True
    if cache is not None and counts is not None:
        answer[CACHE] = [cache.lookups - counts[0], cache.hits - counts[1]]
    return answer


# --- gateway side --------------------------------------------------------------------------------
class _Answers(asyncio.Protocol):
    """The loop's end of one worker's pipe: writes requests, parses answer frames."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._waiter: asyncio.Future[Any] | None = None
        self._transport: asyncio.Transport | None = None
        self._lost: BaseException | None = None
        self._released: asyncio.Future[None] | None = None  # done when the socket is released

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are no subclass
        self._released = asyncio.get_running_loop().create_future()

    async def ask(self, head: bytes, payload: bytes) -> Any:
        if self._lost is not None or self._transport is None or self._transport.is_closing():
            raise EOFError("scanner pipe closed")
        if self._waiter is not None:
            raise RuntimeError("one request at a time per worker")
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            if len(payload) < 65536:
                self._transport.write(head + payload)
            else:  # no copy of a large body just to put four bytes in front
                self._transport.writelines((head, payload))
            return await self._waiter
        finally:
            self._waiter = None

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if len(buf) < 4:
            return
        (size,) = struct.unpack_from("!i", buf)
        start = 4
        if size == -1:
            if len(buf) < 12:
                return
            (size,) = struct.unpack_from("!Q", buf, 4)
            start = 12
        end = start + size
        if len(buf) < end:
            return
        frame = bytes(buf[start:end])
        del buf[:end]
        waiter = self._waiter
        if waiter is None or waiter.done() or buf:  # unasked or extra frames: out of step
            self._fail(ValueError("scanner process sent an answer nobody asked for"))
            return
        try:
            waiter.set_result(json.loads(frame))
        except ValueError as exc:  # not JSON (UnicodeDecodeError is one too)
            waiter.set_exception(exc)

    def _fail(self, exc: BaseException) -> None:
        self._lost = exc
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        if self._transport is not None:
            self._transport.close()

    def eof_received(self) -> bool:
        self._fail(EOFError("scanner process closed its pipe"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._lost is None:
            self._fail(EOFError(f"scanner pipe lost: {exc}" if exc else "scanner pipe closed"))
        if self._released is not None and not self._released.done():
            self._released.set_result(None)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def aclose(self) -> None:
        """Close, and wait for the loop to release the socket (a transport collected before
        that warns "unclosed transport")."""
        self.close()
        if self._released is not None:
            await self._released


class _Worker:
    """One worker process and the parent's end of its pipe."""

    def __init__(self, proc: BaseProcess, conn: Connection, gen: _Generation) -> None:
        self.proc = proc
        self.conn = conn
        self.gen = gen
        self.pid = proc.pid or 0
        self.version = ""
        self.error = ""
        self._teardown = threading.Lock()  # a scan's kill and the pool's close may race
        self._gone = False
        self._answers: _Answers | None = None  # the loop's end of `conn`, made at first use
        self._loop: asyncio.AbstractEventLoop | None = None

    async def exchange(self, msg: object) -> Any:
        """Send one request and wait for its answer, on the event loop.

        The frames are `multiprocessing.Connection`'s (a 4-byte big-endian length, or -1 and
        an 8-byte one, then the bytes), so the worker's blocking `conn.recv()` and
        `send_bytes()` read and write them. Requests are pickles (we made them); answers are
        JSON, never unpickled: a worker parses hostile files with C libraries, and one that
        were taken over must not reach the gateway through `pickle.loads`. The pipe is an
        asyncio transport registered once (not a reader added and removed per scan). A worker
        that dies mid-answer raises `EOFError`; a scan cancelled mid-way leaves the stream out
        of step, so such a worker is always killed, never reused."""
        answers = self._answers
        if answers is None:
            loop = asyncio.get_running_loop()
            # a dup of the parent's end: the pipe is only ever used from the loop from now on
            sock = socket.socket(fileno=os.dup(self.conn.fileno()))
            answers = _Answers()
            await loop.connect_accepted_socket(lambda: answers, sock=sock)
            self._answers, self._loop = answers, loop
        payload = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
        size = len(payload)
        return await answers.ask(
            struct.pack("!i", size) if size <= 0x7FFFFFFF else struct.pack("!iQ", -1, size),
            payload,
        )

    def ready(self) -> None:
        """Wait for the worker's database load (blocking: runs on a pool thread)."""
        _pid, self.version, self.error = json.loads(self.conn.recv_bytes())

    def kill(self) -> None:
        with self._teardown:
            self._kill()
            self._reap()

    def stop(self, grace: float = 5.0) -> None:
        """Ask the worker to exit; kill it if it does not (blocking)."""
        with self._teardown:
            if self._gone:
                return
            with contextlib.suppress(OSError, ValueError):
                self.conn.send(None)
            with contextlib.suppress(ValueError):
                self.proc.join(grace)
            self._kill()
            self._reap()

    def reap(self) -> None:
        with self._teardown:
            self._reap()

    def _kill(self) -> None:
        if self._gone:
            return
        with contextlib.suppress(OSError, ValueError):
            if self.proc.exitcode is None:  # never signal a pid that may have been reused
                os.kill(self.pid, signal.SIGKILL)

    def _reap(self) -> None:
        if self._gone:
            return
        with contextlib.suppress(ValueError):
            self.proc.join(5.0)
        with contextlib.suppress(OSError):
            self.conn.close()
        if self._answers is not None and self._loop is not None:
            # The transport belongs to the loop. Off the loop (a pool thread) the pool closes
            # it afterwards, on the loop (`close_pipe`): a callback handed to the loop from
            # here could come after the loop stopped, and leave the socket open.
            with contextlib.suppress(RuntimeError):
                if asyncio.get_running_loop() is self._loop:
                    self._answers.close()
        with contextlib.suppress(ValueError, AttributeError):
            self.proc.close()
        self._gone = True

    async def close_pipe(self) -> None:
        """Close the loop's end of the pipe (on the loop) and wait until it is released."""
        if self._answers is not None:
            await self._answers.aclose()


class _Generation:
    """The workers of one database: `size` of them, replaced when killed or dead."""

    def __init__(self, dirs: Sequence[Path], size: int) -> None:
        self.dirs = tuple(dirs)
        self.size = size
        self.idle: asyncio.Queue[_Worker | None] = asyncio.Queue()  # None: the pool closed
        self.alive: set[_Worker] = set()
        self.waiting = 0
        self.retired = False
        self.version = ""
        self.error = ""
        self.started = False


class ScannerPool:
    """Scan message bodies in worker processes; `await scan(data)` -> `ScanSummary`."""

    def __init__(self, db_dirs: Sequence[Path] = (), workers: int = 0,
                 hard_timeout: float | None = None,
                 prepare: Callable[[Sequence[Path]], None] = prepare_database,
                 max_scan_time: float | None = None, clean_cache: int = 0) -> None:
        self.workers = workers or os.cpu_count() or 1
        #: the engine's MaxScanTime in the workers (None: `Limits`' own, 120 s)
        self.max_scan_time = max_scan_time
        #: bytes of each worker's clean cache (`scan.cleancache`; 0: off)
        self.clean_cache = clean_cache
        self.prepare = prepare
        self.db_dirs = tuple(db_dirs)
        self.version = ""
        self.hard_timeout = hard_timeout if hard_timeout else DEFAULT_HARD_TIMEOUT
        self._ctx = multiprocessing.get_context("forkserver")
        # the fork server imports this first: it (and so every worker) dies with the gateway
        # and the engine and compiler, once: workers and a reload's compile start without
        # importing them (a swap's latency), sharing those pages with the fork server
        self._ctx.set_forkserver_preload(["zerohour.gateway._lifeline_preload",
                                          "zerohour.scan.engine", "zerohour.scan.dbcompile"])
        # One thread per busy worker talks to it over its pipe (plus room for starts and stops).
        self._threads = ThreadPoolExecutor(max_workers=2 * self.workers + 2,
                                           thread_name_prefix="zh-scan")
        self._gen = _Generation(self.db_dirs, self.workers)
        self._old: list[_Generation] = []  # swapped out, maybe still finishing scans
        self._starting: asyncio.Lock | None = None
        self._closed = False
        self._disposing: set[asyncio.Future[None]] = set()  # stops aclose() must wait for

    # -- workers ---------------------------------------------------------------------------

    def _spawn(self, gen: _Generation) -> _Worker:
        """Start one worker process and wait until its database is loaded (blocking)."""
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=_worker_main,
                                 args=(child, [str(d) for d in gen.dirs], self.max_scan_time,
                                       self.clean_cache),
                                 daemon=True, name="zerohour-scanner")
        proc.start()
        child.close()
        worker = _Worker(proc, parent, gen)
        try:
            worker.ready()
        except (EOFError, OSError):
            worker.error = worker.error or "scanner process died while loading the database"
        return worker

    async def _run(self, fn: Any, *args: Any) -> Any:
        if self._closed:  # after aclose(): a scan still finishing cleans up inline
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._threads, fn, *args)

    async def _add(self, gen: _Generation) -> _Worker:
        # The fork server must be started by a thread that lives as long as the process: it asks
        # to be killed when its parent *thread* exits (PR_SET_PDEATHSIG, `_lifeline`), so one
        # started from this pool's executor died with that pool's threads, and the next pool's
        # spawn failed with a broken pipe. This thread runs the event loop; a no-op once running.
        forkserver.ensure_running()
        worker: _Worker = await self._run(self._spawn, gen)
        gen.alive.add(worker)
        if worker.error:
            gen.error = worker.error
        elif worker.version:
            gen.version = worker.version
        if not worker.proc.is_alive():
            gen.alive.discard(worker)
            await self._dispose(worker, reap_only=True)
            raise DatabaseError(f"signature database failed to load: {gen.error}", stage="scan")
        gen.idle.put_nowait(worker)
        return worker

    async def _start(self, gen: _Generation) -> None:
        """Start every worker of `gen` (once), in parallel."""
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if gen.started:
                return
            missing = gen.size - len(gen.alive)
            await asyncio.gather(*(self._add(gen) for _ in range(missing)))
            gen.started = True

    async def _replace(self, gen: _Generation) -> None:
        """Start a worker in place of one that was killed or died (current generation only)."""
        if gen.retired or gen is not self._gen or self._closed:
            return
        try:
            await self._add(gen)
        except Exception as exc:  # the next scan starts the generation again
            gen.started = False
            _log.warning("scanner: could not replace a worker: %s", exc)

    async def warm(self) -> str:
        """Start every worker and load the database; raise `DatabaseError` if it fails."""
        gen = self._gen
        await self._start(gen)
        if gen.error:
            raise DatabaseError(f"signature database failed to load: {gen.error}", stage="scan")
        self.version = gen.version
        return self.version

    # -- scanning --------------------------------------------------------------------------

    async def scan(self, data: bytes, name: str | None = None) -> ScanSummary:
        gen = self._gen
        started = time.perf_counter()
        if self._closed:
            return ScanSummary.failed(len(data), CLOSED, self.version)
        if not gen.started:
            try:
                await self._start(gen)
            except DatabaseError as exc:
                return ScanSummary.failed(len(data), str(exc), self.version)
        gen.waiting += 1
        try:
            worker = await gen.idle.get()
        finally:
            gen.waiting -= 1
        if worker is None:
            gen.idle.put_nowait(None)  # wake the next waiter too
            return ScanSummary.failed(len(data), CLOSED, self.version)
        try:
            async with asyncio.timeout(self.hard_timeout):
                raw = await worker.exchange((data, name))
        except TimeoutError:
            # The engine's own time checks did not stop it: kill this worker (only this one),
            # start another, and fail the scan (tempfail / quarantine, never clean).
            await self._retire(worker, kill=True)
            observe_scan(time.perf_counter() - started)
            return ScanSummary.failed(len(data), DEADLINE_EXCEEDED, self.version)
        except (EOFError, OSError):  # the worker died (OOM, crash)
            await self._retire(worker, kill=True)
            return ScanSummary.failed(len(data), WORKER_DIED, self.version)
        except ValueError:  # not JSON: a worker that misbehaves is not trusted again
            await self._retire(worker, kill=True)
            return ScanSummary.failed(len(data), BAD_ANSWER, self.version)
        except asyncio.CancelledError:
            # The caller gave up mid-exchange: the pipe is out of step, the worker goes.
            await asyncio.shield(self._retire(worker, kill=True))
            raise
        if isinstance(raw, dict) and raw.pop(RETIRE, False):
            self._retire_later(worker)  # interrupted mid-scan: a fresh process in its place
        else:
            self._release(worker)
        if isinstance(raw, dict):
            observe_clean_cache(raw.pop(CACHE, None))
        # Latency as the message sees it: waiting for a worker plus the scan itself.
        observe_scan(time.perf_counter() - started)
        return ScanSummary.from_json(raw)

    def _release(self, worker: _Worker) -> None:
        gen = worker.gen
        if gen is self._gen or gen.waiting > 0:
            gen.idle.put_nowait(worker)  # scans already queued on an old generation use it
            return
        gen.alive.discard(worker)
        if self._closed:
            worker.kill()
        else:
            self._dispose_later(worker)

    async def _dispose(self, worker: _Worker, kill: bool = False, grace: float = 5.0,
                       reap_only: bool = False) -> None:
        """Stop (or kill, or only reap) a worker on a pool thread, then close its pipe here,
        on the loop."""
        if reap_only:
            await self._run(worker.reap)
        elif kill:
            await self._run(worker.kill)
        else:
            await self._run(worker.stop, grace)
        await worker.close_pipe()

    def _dispose_later(self, worker: _Worker) -> None:
        """Stop a worker in the background; `aclose` waits for it."""
        task = asyncio.ensure_future(self._dispose(worker))
        self._disposing.add(task)
        task.add_done_callback(self._disposing.discard)

    def _retire_later(self, worker: _Worker) -> None:
        """Stop a worker and start another in the background; `aclose` waits for it."""
        task = asyncio.ensure_future(self._retire(worker, kill=False))
        self._disposing.add(task)
        task.add_done_callback(self._disposing.discard)

    async def _retire(self, worker: _Worker, kill: bool) -> None:
        gen = worker.gen
        gen.alive.discard(worker)
        await self._dispose(worker, kill=kill)
        await self._replace(gen)
        if gen is not self._gen and gen.waiting > 0 and not gen.alive:
            await self._add(gen)  # an old generation still owes queued scans a worker

    # -- database swap and shutdown --------------------------------------------------------

    async def swap(self, db_dirs: Sequence[Path]) -> str:
        """Switch to a new database; scans in flight finish on the old engine, and scans keep
        using it while the new one compiles."""
        new = _Generation(tuple(db_dirs), self.workers)
        try:
            await asyncio.to_thread(self.prepare, new.dirs)
        except DatabaseError:
            raise
        except Exception as exc:  # the cache is unusable: the new workers compile themselves
            _log.warning("scanner: could not compile the database ahead: %s", exc)
        old = self._gen
        try:
            await self._start(new)
            if new.error:
                raise DatabaseError(f"signature database failed to load: {new.error}",
                                    stage="scan")
        except BaseException:
            await self._stop_generation(new)
            raise
        self._gen = new
        self.db_dirs = new.dirs
        self.version = new.version
        old.retired = True
        self._old = [g for g in self._old if g.alive] + [old]
        while True:  # idle old workers stop now; busy ones when their scan returns
            try:
                worker = old.idle.get_nowait()
            except asyncio.QueueEmpty:
                break
            if worker is None:
                break
            if old.waiting > 0:
                old.idle.put_nowait(worker)
                break
            old.alive.discard(worker)
            self._dispose_later(worker)
        return self.version

    async def _stop_generation(self, gen: _Generation) -> None:
        gen.retired = True
        workers = list(gen.alive)
        gen.alive.clear()
        while not gen.idle.empty():  # no waiter may get a worker that is being stopped
            gen.idle.get_nowait()
        await asyncio.gather(*(self._dispose(w, grace=1.0) for w in workers))
        gen.idle.put_nowait(None)  # scans still waiting for a worker fail instead of hanging

    async def aclose(self) -> None:
        for gen in [*self._old, self._gen]:
            await self._stop_generation(gen)
        while self._disposing:  # workers stopping in the background: their pipes close here
            await asyncio.gather(*self._disposing, return_exceptions=True)
        self._closed = True
        self._threads.shutdown(wait=False)  # queued clean-ups (kills) still run

    def pids(self) -> set[int]:
        """Process ids of the current workers (for tests and status)."""
        return {w.pid for w in self._gen.alive}


class LocalScanner(ScannerPool):
    """One worker process, for the CLI's release-rescan: the same worker code, `Limits()` and
    hard deadline as the gateway's pool. A scan in this process could not be stopped, and held
    mail is exactly what an attacker crafted: a release must end with a verdict or a failed
    scan (the message stays held), never hang the administrator's command."""

    def __init__(self, db_dirs: Sequence[Path] = (), hard_timeout: float | None = None) -> None:
        super().__init__(db_dirs, 1, hard_timeout=hard_timeout)


class Scanner(Protocol):
    version: str

    async def scan(self, data: bytes, name: str | None = None) -> ScanSummary: ...

    async def aclose(self) -> None: ...
