"""Stream client: a long-lived `GET /v1/notices/stream?after=SEQ` (Server-Sent Events).

Reconnects with full-jitter exponential backoff, always resuming after the last *applied* seq
(not the last received: a notice that was refused or is waiting for a gap is fetched again). A
silent connection (no event or heartbeat for `idle_timeout`) is treated as dead.
"""

from __future__ import annotations

import asyncio
import logging
import random
from urllib.parse import urljoin

import httpx

from zerohour.notices.envelope import MAX_ENVELOPE
from zerohour.notices.verify import NoticeVerifier, Transport

log = logging.getLogger("zerohour.notices.stream")
_MAX_LINE = MAX_ENVELOPE + 64


class StreamClient:
    def __init__(
        self,
        base_url: str,
        verifier: NoticeVerifier,
        client: httpx.AsyncClient,
        *,
        idle_timeout: float = 95.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
    ) -> None:
        self.base_url = base_url
        self.verifier = verifier
        self.client = client
        self.idle_timeout = idle_timeout
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.connects = 0
        self.connected = asyncio.Event()

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                await self._session()
                failures = 0
            except (httpx.HTTPError, OSError, TimeoutError, ValueError) as exc:
                log.info("notice.stream_disconnected %s", type(exc).__name__)
            self.connected.clear()
            failures += 1
            delay = random.uniform(0, min(self.backoff_cap, self.backoff_base * 2**failures))  # noqa: S311
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        url = urljoin(self.base_url, "/v1/notices/stream")
        params = {"after": self.verifier.last_seq}
        timeout = httpx.Timeout(10.0, read=self.idle_timeout)
        async with self.client.stream("GET", url, params=params, timeout=timeout) as resp:
            resp.raise_for_status()
            self.connects += 1
            self.connected.set()
            data: list[bytes] = []
            size = 0
            buf = b""
            async for chunk in resp.aiter_bytes():
                buf += chunk
                *lines, buf = buf.split(b"\n")
                if len(buf) > _MAX_LINE:
                    # One endless line (a hostile or broken server): refuse without buffering.
                    await self.verifier.submit(b" " * (MAX_ENVELOPE + 1), Transport.STREAM)
                    raise ValueError("oversize SSE line")
                for raw_line in lines:
                    line = raw_line.removesuffix(b"\r")
                    if line == b"":
                        if data:
                            envelope = b"\n".join(data)
                            data, size = [], 0
                            await self.verifier.submit(envelope, Transport.STREAM)
                        continue
                    if line.startswith(b"data:"):
                        piece = line[5:].removeprefix(b" ")
                        size += len(piece)
                        if size > MAX_ENVELOPE:
                            await self.verifier.submit(b" " * (MAX_ENVELOPE + 1), Transport.STREAM)
                            raise ValueError("oversize SSE event")
                        data.append(piece)
                    # `id:`, `event:` and comments are informational: the payload has the seq.
        raise httpx.RemoteProtocolError("stream ended")
