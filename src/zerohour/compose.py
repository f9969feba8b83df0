"""The composition root: builds the gateway, its notice listeners and its admin server from one
`Config`, starts them in order and stops them in reverse (`zerohour gateway run`).

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
from zerohour.config import Config
from zerohour.errors import ConfigError
from zerohour.gateway.app import Gateway
from zerohour.gateway.listeners.wiring import NoticeWiring

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


async def serve(cfg: Config) -> int:
    """Run until SIGTERM/SIGINT; return the exit code."""
    gw = Gateway(cfg)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    started = False

    def hangup() -> None:
        if started:
            gw.reload_database()

    loop.add_signal_handler(signal.SIGHUP, hangup)
    admin: AdminServer | None = None
    notices: NoticeWiring | None = None
    try:
        notices = _notice_wiring(gw)  # before start: it routes control-address mail
        await gw.start()
        started = True
        if notices is not None:
            await notices.start()
        admin = await _start_admin(gw)
        await stop.wait()
    finally:
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.stop()
        if notices is not None:
            with contextlib.suppress(Exception):
                await notices.aclose()
        await gw.stop()
    return 0
