"""A pass-through HTTP gate in front of a provider that refuses chosen endpoints.

`zerohour gateway run` always runs the stream client and the poller when `--provider` is set;
to prove (and measure) one transport alone, tests and `bench/outbreak.py` point the gateway's
`--provider` at this gate and switch the other transports off here: a refused stream keeps
reconnecting in vain, a refused poll fails, while subscriptions and bundle downloads pass.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx

STREAM = "/v1/notices/stream"
POLL = ("/v1/notices", "/v1/state")  # the poll and its catch-up via the signed state


class ProviderGate:
    def __init__(self, upstream: str, blocked: Iterable[str]) -> None:
        self.upstream = upstream.rstrip("/")
        self.blocked = frozenset(blocked)
        self.refused = 0
        gate = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            hop: ClassVar[set[str]] = {"connection", "transfer-encoding", "keep-alive"}

            def log_message(self, format: str, *args: object) -> None:
                return

            def _forward(self) -> None:
                path = self.path.split("?", 1)[0]
                if path in gate.blocked:
                    gate.refused += 1
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in {"host", *self.hop}
                }
                with httpx.Client(timeout=30) as client:
                    resp = client.request(
                        self.command, gate.upstream + self.path, content=body, headers=headers
                    )
                data = resp.content
                self.send_response(resp.status_code)
                for k, v in resp.headers.items():
                    if k.lower() not in {"content-length", "content-encoding", *self.hop}:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _forward
            do_POST = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> ProviderGate:
        self.thread.start()
        return self

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
