"""The composition root: builds the gateway, its notice listeners and its admin server from one
`Config`, starts them in order and stops them in reverse (`zerohour gateway run`; with a milter
listen address, `zerohour milter run`: the same parts with Postfix's milter protocol in front
instead of our SMTP listener).

Only this module knows all three, so none of them imports another's wiring: the admin server
takes the running gateway through `admin.context.RunningGateway`, the listeners through
`gateway.listeners.wiring.GatewayParts`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from zerohour.admin.server import AdminServer
from zerohour.config import Config, HostPort
from zerohour.errors import ConfigError
from zerohour.gateway.app import Gateway
from zerohour.gateway.listeners.wiring import NoticeWiring
from zerohour.gateway.milter import MilterFront, MilterServer
from zerohour.gateway.workers import ControlRelay, WorkerSet, check

log = logging.getLogger("zerohour.gateway")


async def _start_admin(gw: Gateway) -> AdminServer | None:
    """The admin API + dashboard on the same loop, if configured and built."""
    listen = gw.cfg.admin.listen
    if listen is None:
        return None
    admin = AdminServer.for_gateway(gw, listen)
    try:
        await admin.start()
    except ConfigError as exc:
        if gw.cfg.admin.required:
            raise
        log.warning("admin.not_started %s (set --admin-listen HOST:PORT or 'off')", exc)
        return None
    return admin


def _notice_wiring(gw: Gateway) -> NoticeWiring | None:
    """Notice listeners (stream, poll, UDP, control address) when a provider is configured."""
    n = gw.cfg.notices
    if not n.provider:
        return None
    return NoticeWiring(gw, n)


def _milter(gw: Gateway, listen: HostPort) -> MilterServer:
    front = MilterFront(
        gw.pipeline.filter,
        hostname=gw.cfg.smtp.hostname,
        control_address=gw.control_address,
        control_hook=gw.control_hook,
    )
    # a session thread waits for the scan's hard deadline, plus the store's commit
    return MilterServer(front, listen, timeout=gw.cfg.scan.hard_timeout + 30.0)


async def serve(cfg: Config, *, milter: HostPort | None = None) -> int:
    """Run until SIGTERM/SIGINT; return the exit code."""
    gw = Gateway(cfg, smtp=milter is None)
    if milter is None:
        check(cfg)
    workers: WorkerSet | None = None
    relay: ControlRelay | None = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    started = False

    def hangup() -> None:
        if started:
            gw.reload_database()
        if workers is not None:
            workers.hangup()

    loop.add_signal_handler(signal.SIGHUP, hangup)
    admin: AdminServer | None = None
    notices: NoticeWiring | None = None
    front: MilterServer | None = None
    code = 0
    try:
        notices = _notice_wiring(gw)  # before start: it routes control-address mail
        await gw.start()
        started = True
        if notices is not None:
            await notices.start()
        admin = await _start_admin(gw)
        if gw.processes > 1:  # smtp.workers: the other SMTP processes, after ours is up
            if gw.control_hook is not None:
                relay = ControlRelay(gw.control_hook)
                await relay.start()
            workers = WorkerSet(cfg, gw.processes, on_death=gw.worker_died)
            await workers.start()
        if milter is not None:
            front = _milter(gw, milter)
            await front.start()
            stopped = asyncio.ensure_future(front.stopped.wait())
            waiting = asyncio.ensure_future(stop.wait())
            await asyncio.wait({stopped, waiting}, return_when=asyncio.FIRST_COMPLETED)
            for f in (stopped, waiting):
                f.cancel()
            if not stop.is_set():  # libmilter's loop ended on its own: not a clean stop
                log.error("milter.stopped_unexpectedly: exiting so the supervisor restarts us")
                code = 1
        else:
            await stop.wait()
    finally:
        if workers is not None:
            with contextlib.suppress(Exception):
                await workers.stop()
        if relay is not None:
            with contextlib.suppress(Exception):
                await relay.stop()
        if front is not None:
            with contextlib.suppress(Exception):
                await front.stop()
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.stop()
        if notices is not None:
            with contextlib.suppress(Exception):
                await notices.aclose()
        await gw.stop()
    return code
