"""A raw SMTP client over a plain socket, for attacks that smtplib would refuse to send.

It sends exact bytes (bare LF, bare CR, overlong lines) and parses replies, including
multi-line ones, so each attack test can assert the exact reply code.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from dataclasses import dataclass

from helpers.net import LOCALHOST


@dataclass(frozen=True)
class Reply:
    """One SMTP reply: code and the text of every line joined with newlines."""

    code: int
    text: str

    @property
    def enhanced(self) -> str:
        """The RFC 3463 enhanced status code at the start of the text ("" if none)."""
        first = self.text.split(maxsplit=1)
        if first and first[0].count(".") == 2 and first[0][0] in "245":
            return first[0]
        return ""

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


class ConnectionClosed(Exception):
    """The server closed the connection (or it was reset) before a full reply arrived."""


class RawSmtp:
    """Line-exact SMTP conversation with a server on 127.0.0.1."""

    def __init__(
        self,
        port: int,
        host: str = LOCALHOST,
        timeout: float = 15.0,
        source: tuple[str, int] | None = None,
    ) -> None:
        # `source`: the client's own address, e.g. ("127.0.0.2", 0) for a second loopback client
        self.sock = socket.create_connection((host, port), timeout=timeout, source_address=source)
        self.timeout = timeout
        self._buf = b""
        self.leftover = b""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> RawSmtp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _read_line(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no complete reply line from the server")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError as exc:
                raise ConnectionClosed(f"reset; partial: {self._buf!r}") from exc
            if not chunk:
                raise ConnectionClosed(f"closed; partial: {self._buf!r}")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.rstrip(b"\r")

    def reply(self, timeout: float | None = None) -> Reply:
        """Read one (possibly multi-line) reply."""
        wait = self.timeout if timeout is None else timeout
        lines: list[str] = []
        while True:
            raw = self._read_line(wait).decode("utf-8", "replace")
            if len(raw) < 3 or not raw[:3].isdigit():
                raise ValueError(f"not an SMTP reply line: {raw!r}")
            lines.append(raw[4:])
            if len(raw) == 3 or raw[3] == " ":
                return Reply(int(raw[:3]), "\n".join(lines))

    def cmd(self, line: str | bytes, timeout: float | None = None) -> Reply:
        """Send one command line (CRLF added) and read its reply."""
        data = line.encode() if isinstance(line, str) else line
        self.send(data + b"\r\n")
        return self.reply(timeout)

    def banner(self) -> Reply:
        return self.reply()

    def hello(self, name: str = "client.test") -> Reply:
        self.banner()
        return self.cmd(f"EHLO {name}")

    def starttls(self) -> None:
        """Switch the connection to TLS (any certificate: these are loopback tests).

        Anything still buffered from the plaintext phase would be an injection the server
        answered in plaintext; callers assert `leftover` is empty.
        """
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.leftover = self._buf
        self._buf = b""
        self.sock = ctx.wrap_socket(self.sock, server_hostname="gateway.test")

    def closed_by_peer(self, timeout: float = 5.0) -> bool:
        """True when the server has closed the connection (EOF or reset) within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return False
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
                return True
            if not chunk:
                return True
            self._buf += chunk
        return False

    def pending_replies(self, timeout: float = 1.0) -> list[Reply]:
        """Every further reply that arrives within `timeout` (to catch smuggled extras)."""
        replies: list[Reply] = []
        while True:
            try:
                replies.append(self.reply(timeout))
            except (TimeoutError, ConnectionClosed):
                return replies
