"""Wake the provider server the moment a notice is appended: one datagram, no poll.

The lab commands (`zerohour provider outbreak declare`, `signatures publish`, ...) run in their
own process and append to the SQLite notice log; the server has to learn of the new row to push
it. Polling the log every 50 ms put a 50 ms floor under every notice-to-hold time. Instead every
append, once committed, sends one empty datagram to the server's wake socket, and the server
reads the log at once (`ProviderService._catch_up`) and wakes its streams.

The socket is a Unix datagram socket in Linux's abstract namespace, named after the data folder
(a path under a pytest or bench folder would overflow `sun_path`, and an abstract name leaves no
file behind after a crash). Anyone on the host can send to it, which is harmless: a wake only
makes the server read its own log, and wakes coalesce (a flood costs one read per loop turn).
The datagram is an accelerator, not the truth: the server still re-reads the log every
`watch_interval` (1 s) in case a wake is lost (a server started from a folder another server is
already bound to, another platform, a log written by an older release).

With a PostgreSQL notice log the same hook would be LISTEN/NOTIFY on the append's transaction;
the provider's log is SQLite today (`provider.log`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import socket
import sys
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("zerohour.provider")


def wake_address(data_dir: Path) -> bytes | None:
    """The abstract socket name for a provider data folder (None: no wake socket here)."""
    if not sys.platform.startswith("linux"):
        return None
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:40]
    return b"\0zerohour-provider-wake/" + digest.encode()


def send_wake(data_dir: Path) -> bool:
    """Tell a server running on `data_dir` that the log moved. Best effort, never blocks:
    False when no server listens (it reads the log when it starts) or the socket is full
    (a wake is pending already)."""
    addr = wake_address(data_dir)
    if addr is None:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        try:
            s.sendto(b"\0", addr)
        except OSError:
            return False
    return True


class WakeListener:
    """The server's end: calls `on_wake` (on the event loop) for every burst of datagrams."""

    def __init__(self, data_dir: Path, on_wake: Callable[[], None]) -> None:
        self.data_dir = data_dir
        self.on_wake = on_wake
        self.wakes = 0
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> bool:
        """Bind (before the server reads the log head, so no append falls in between);
        False when another server already owns the folder's socket or the platform has none."""
        addr = wake_address(self.data_dir)
        if addr is None:
            return False
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            sock.bind(addr)
        except OSError as exc:
            sock.close()
            log.warning(
                "provider.wake_unavailable data_dir=%s: %s (reading the log every second "
                "instead; is another provider server running on this folder?)",
                self.data_dir,
                exc,
            )
            return False
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._readable)
        return True

    def _readable(self) -> None:
        assert self._sock is not None
        got = False
        while True:
            try:
                self._sock.recv(64)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            got = True
        if got:
            self.wakes += 1
            self.on_wake()

    def close(self) -> None:
        if self._sock is None:
            return
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        self._sock = None
