"""Serving the admin app on the gateway's event loop, next to SMTP (uvicorn `Server`).

Wiring in `zerohour/compose.py` (after `gw.start()`, before waiting for the stop signal):

    from zerohour.admin.server import AdminServer
    admin = AdminServer.for_gateway(gw, cfg_admin_listen)   # HostPort, 127.0.0.1 by default
    await admin.start()
    ...
    await admin.stop()                                      # before gw.stop()

First run writes an admin token to `<data>/admin-token` (0600) if no token exists yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import uvicorn

from zerohour.admin.api import create_admin_app
from zerohour.admin.auth import FIRST_TOKEN_FILE
from zerohour.admin.context import AdminContext, RunningGateway
from zerohour.errors import ConfigError

if TYPE_CHECKING:
    from zerohour.config import HostPort

log = logging.getLogger("zerohour.admin")
DEFAULT_LISTEN = ("127.0.0.1", 8025)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the gateway owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class AdminServer:
    """The admin HTTP listener; `start()` returns the bound (host, port)."""

    def __init__(self, ctx: AdminContext, host: str = "127.0.0.1", port: int = 0) -> None:
        self.ctx = ctx
        self.host = host
        self.port = port
        self.app = create_admin_app(ctx)
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None

    @classmethod
    def for_gateway(cls, gw: RunningGateway, listen: HostPort | str | None = None) -> AdminServer:
        """The admin server of a started gateway; `listen` is HOST:PORT (default 127.0.0.1:8025)."""
        host, port = DEFAULT_LISTEN
        if isinstance(listen, str):
            from zerohour.config import HostPort

            listen = HostPort.parse(listen, "admin.listen")
        if listen is not None:
            host, port = listen.host, listen.port
        return cls(AdminContext.from_gateway(gw), host, port)

    async def start(self) -> tuple[str, int]:
        created = await asyncio.to_thread(self.ctx.auth.bootstrap)
        if created:
            log.warning(
                "admin.first_token written to %s (mode 0600): use it to log in",
                self.ctx.data_dir / FIRST_TOKEN_FILE,
            )
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise ConfigError(f"admin listen {self.host}:{self.port}: {exc.strerror}") from None
        sock.listen(128)
        sock.setblocking(False)
        self._sock = sock
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            log_config=None,  # our handler and format (text or JSON), not uvicorn's
            access_log=False,
            lifespan="off",
            server_header=False,
            proxy_headers=False,
            timeout_graceful_shutdown=5,
        )
        self._server = server = _EmbeddedServer(config)
        self._task = asyncio.create_task(self._serve(server, sock), name="admin-http")
        while not server.started:
            if self._task.done():
                self._task.result()
                raise ConfigError("admin server stopped during start-up")
            await asyncio.sleep(0.01)
        addr: Any = sock.getsockname()
        self.port = int(addr[1])
        log.info("admin.listening http://%s:%d/", self.host, self.port)
        return self.host, self.port

    @staticmethod
    async def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
        await server.serve(sockets=[sock])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, 10)
            if not self._task.done():
                self._task.cancel()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
