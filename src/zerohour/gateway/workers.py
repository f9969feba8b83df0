"""SMTP worker processes (`smtp.workers`): one event loop is the gateway's ceiling (~200 msgs/s
on one core), so several processes share the listening port with SO_REUSEPORT, the way
Postfix spreads smtpd over processes. The kernel hands each new connection to one of them.

Each worker is a whole `Gateway` on the same store and spool: it receives, scans (its own
scanner pool: `scan.workers` split between the processes), commits before its 250 and
delivers from the shared queue (leases keep two processes off one message). The main process
(the one `zerohour gateway run` started) also does what must happen once per node: lease and
spool clean-up at start, recovery, housekeeping, the delay queue, the notice listeners and the
admin server. It starts the workers after its own start, restarts one that dies (a crash loses
nothing: every 250 was committed, and recovery or another process's delivery takes over its
messages), forwards SIGHUP and stops them on SIGTERM.

Shared state crosses processes through the store: outbreak changes are seen within
`WORKER_POLL` (SQLite's `data_version` poll; PostgreSQL pushes), installed signature bundles
through the store's meta. Control-address mail received by a worker is handed to the main
process's notice listener over a Unix socket (`ControlRelay`). Per-client and total session
limits and rate limits are divided between the processes (the kernel spreads one client's
connections over them).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import math
import multiprocessing
import os
import signal
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from multiprocessing.process import BaseProcess
from typing import Any

from zerohour.config import Config, SmtpConfig
from zerohour.errors import ConfigError

log = logging.getLogger("zerohour.workers")

#: How often a process of a multi-process node looks for another's commits (SQLite).
WORKER_POLL = 0.05
_RESTART_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0)
_MAX_CONTROL = 16 * 1024 * 1024


def worker_count(cfg: Config) -> int:
    """SMTP processes of this node (`smtp.workers`, 0: one per core)."""
    return cfg.smtp.workers or os.cpu_count() or 1


def scanners_per_process(cfg: Config, processes: int) -> int:
    """`scan.workers` (0: one per core) split between the SMTP processes, at least one each."""
    total = cfg.scan.workers or os.cpu_count() or 1
    return max(1, math.ceil(total / processes))


def per_process(smtp: SmtpConfig, processes: int) -> SmtpConfig:
    """Each process's share of the node-wide session and rate limits."""
    if processes <= 1:
        return smtp

    def share(n: int) -> int:
        return 0 if n == 0 else max(1, math.ceil(n / processes))

    return replace(
        smtp,
        max_sessions=share(smtp.max_sessions),
        max_sessions_per_client=share(smtp.max_sessions_per_client),
        client_connection_rate_limit=share(smtp.client_connection_rate_limit),
        client_message_rate_limit=share(smtp.client_message_rate_limit),
    )


def check(cfg: Config) -> None:
    if worker_count(cfg) > 1 and cfg.smtp.listen.port == 0:
        raise ConfigError("smtp.workers > 1 needs a fixed smtp.listen port (not 0)")


def control_socket(main_pid: int) -> str:
    """The main process's abstract Unix socket for control-address mail from workers."""
    return f"\0zerohour-control-{main_pid}"


# the main process ----------------------------------------------------------------------------
class WorkerSet:
    """Starts, watches, restarts and stops the extra SMTP processes (main process side)."""

    def __init__(
        self,
        cfg: Config,
        count: int,
        on_death: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        self.cfg = cfg
        self.count = count
        self.on_death = on_death  # given the dead worker's pid: free what it held
        self._ctx = multiprocessing.get_context("spawn")  # never fork a running event loop
        self._procs: dict[int, BaseProcess] = {}
        self._restarts: dict[int, int] = {}
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def pids(self) -> list[int]:
        return [p.pid for p in self._procs.values() if p.pid is not None and p.is_alive()]

    def _spawn(self, index: int) -> None:
        proc = self._ctx.Process(
            target=worker_main,
            args=(self.cfg, index, os.getpid()),
            name=f"zerohour-smtp-{index}",
            daemon=False,
        )
        proc.start()
        self._procs[index] = proc
        log.info("workers.started index=%d pid=%s", index, proc.pid)

    async def start(self) -> None:
        for index in range(1, self.count):
            self._spawn(index)
        self._task = asyncio.create_task(self._supervise(), name="workers")

    async def _supervise(self) -> None:
        """Restart a worker that died (Postfix's master does the same for its daemons)."""
        while not self._stopping:
            await asyncio.sleep(0.2)
            for index, proc in list(self._procs.items()):
                if proc.is_alive() or self._stopping:
                    continue
                n = self._restarts.get(index, 0)
                log.error(
                    "workers.died index=%d pid=%s exitcode=%s: restarting (restart %d)",
                    index, proc.pid, proc.exitcode, n + 1,
                )  # fmt: skip
                dead = proc.pid
                proc.close()
                if self.on_death is not None and dead is not None:
                    try:
                        await self.on_death(dead)
                    except Exception:
                        log.exception("workers.cleanup_failed pid=%s", dead)
                await asyncio.sleep(_RESTART_BACKOFF[min(n, len(_RESTART_BACKOFF) - 1)])
                if self._stopping:
                    return
                self._restarts[index] = n + 1
                self._spawn(index)

    def hangup(self) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGHUP)

    async def stop(self, grace: float = 20.0) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self._procs.values():
            await asyncio.to_thread(proc.join, max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                log.warning("workers.kill index=%s pid=%s: not stopped after %.0f s",
                            proc.name, proc.pid, grace)
                proc.kill()
                await asyncio.to_thread(proc.join, 5.0)
        self._procs.clear()


class ControlRelay:
    """The main process's end: control-address mail a worker received, to the notice hook."""

    def __init__(self, hook: Callable[[Any], Awaitable[None]]) -> None:
        self.hook = hook
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._serve, control_socket(os.getpid()))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from zerohour.gateway.receive import Inbound

        try:
            (size,) = struct.unpack("!I", await reader.readexactly(4))
            if size > _MAX_CONTROL:
                return
            data = await reader.readexactly(size)
            await self.hook(Inbound("", (), data, "", "", False, time.time()))
            writer.write(b"ok")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception:
            log.exception("workers.control_failed")
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def forward_control(main_pid: int) -> Callable[[Any], Awaitable[None]]:
    """A worker's control hook: hand the message to the main process's notice listener."""

    async def hook(msg: Any) -> None:
        reader, writer = await asyncio.open_unix_connection(control_socket(main_pid))
        try:
            writer.write(struct.pack("!I", len(msg.data)) + msg.data)
            await writer.drain()
            await asyncio.wait_for(reader.read(2), 30.0)
        finally:
            writer.close()

    return hook


# a worker process ----------------------------------------------------------------------------
def worker_main(cfg: Config, index: int, main_pid: int) -> None:
    """Entry point of a worker process (spawned: a fresh interpreter)."""
    from zerohour.logs import setup_logging

    _die_with_parent()
    setup_logging(cfg.log_level, cfg.log_format)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_worker(cfg, index, main_pid))


def _die_with_parent() -> None:
    """SIGTERM this worker when the main process dies, even by SIGKILL (Linux prctl), so a
    restarted gateway never shares its port with a worker of the dead one."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


async def _serve_worker(cfg: Config, index: int, main_pid: int) -> None:
    from zerohour.gateway.app import Gateway

    gw = Gateway(cfg, worker=True)
    if cfg.notices.control_address:
        gw.control_address = cfg.notices.control_address.lower()
        gw.control_hook = forward_control(main_pid)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    started = False

    def hangup() -> None:
        if started:
            gw.reload_database()

    loop.add_signal_handler(signal.SIGHUP, hangup)
    try:
        await gw.start()
        started = True
        log.info("workers.ready index=%d pid=%d", index, os.getpid())
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await stop.wait()
            if os.getppid() != main_pid:  # the main process is gone: never run orphaned
                log.error("workers.orphaned index=%d: main process %d gone", index, main_pid)
                break
    finally:
        await gw.stop()
