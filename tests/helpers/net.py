"""Ephemeral ports and readiness checks on 127.0.0.1 (tests never use fixed ports)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

LOCALHOST = "127.0.0.1"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (bind to 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        port: int = sock.getsockname()[1]
        return port


def port_accepts(port: int, host: str = LOCALHOST, timeout: float = 0.5) -> bool:
    """True when a TCP connect to host:port succeeds right now."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(port: int, host: str = LOCALHOST, timeout: float = 30.0) -> bool:
    """Poll until host:port accepts a connection or `timeout` seconds pass; True when it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_accepts(port, host):
            return True
        time.sleep(0.05)
    return False


def wait_until(
    predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.05
) -> bool:
    """Poll a zero-argument callable until it returns truthy or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
