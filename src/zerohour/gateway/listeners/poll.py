"""Poller: `GET /v1/notices?after=<last applied>` at start-up, every interval, and whenever the
verifier sees a gap; when still behind (an expired notice in the way, or a long outage) it fetches
the signed current state (`GET /v1/state`) and converges to it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from urllib.parse import urljoin

import httpx

from zerohour.notices.envelope import MAX_ENVELOPE, too_deep
from zerohour.notices.verify import NoticeVerifier, Transport

log = logging.getLogger("zerohour.notices.poll")
PAGE = 500


class Poller:
    def __init__(
        self,
        base_url: str,
        verifier: NoticeVerifier,
        client: httpx.AsyncClient,
        *,
        interval: float = 60.0,
        min_retry: float = 1.0,
    ) -> None:
        self.base_url = base_url
        self.verifier = verifier
        self.client = client
        self.interval = interval
        self.min_retry = min_retry
        self._wake = asyncio.Event()
        self.polls = 0
        self.completed = 0  # polls that finished without an error
        self.failures = 0

    def poke(self, after_seq: int = 0) -> None:
        """The verifier's `on_gap` callback: poll soon."""
        self._wake.set()

    async def poll_once(self) -> None:
        """Fetch everything after the last applied seq; converge via state if still behind."""
        self.polls += 1
        while True:
            after = self.verifier.last_seq
            cap = PAGE * (MAX_ENVELOPE + 16) + 64
            body = await _get_capped(
                self.client,
                urljoin(self.base_url, "/v1/notices"),
                {"after": after, "limit": PAGE},
                cap,
            )
            if len(body) > cap:
                self.verifier.tally(Transport.POLL, "oversize", None)
                break
            if too_deep(body):  # `[[[[...`: json.loads would raise RecursionError
                self.verifier.tally(Transport.POLL, "too_deep", None)
                log.warning("notice.rejected transport=poll reason=too_deep")
                break
            envelopes = _envelopes(body)
            for env in envelopes:
                await self.verifier.submit(env, Transport.POLL)
            if len(envelopes) < PAGE or self.verifier.last_seq == after:
                break
        if self.verifier.behind or self.polls == 1:  # start-up: also a freshness check
            state = await _get_capped(
                self.client, urljoin(self.base_url, "/v1/state"), {}, MAX_ENVELOPE + 1
            )
            await self.verifier.submit(state, Transport.STATE)
        self.completed += 1

    async def run(self) -> None:
        """Poll now, then every `interval` or when poked; back off while polls make no
        progress (e.g. a bundle that keeps failing), so a poke loop cannot hammer the provider."""
        backoff = self.min_retry
        while True:
            self._wake.clear()
            before = self.verifier.last_seq
            try:
                await self.poll_once()
            except (httpx.HTTPError, OSError) as exc:
                self.failures += 1
                log.warning("notice.poll_failed %s", type(exc).__name__)
            if self.verifier.last_seq == before and self.verifier.behind:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.interval)
            else:
                backoff = self.min_retry
            with contextlib.suppress(TimeoutError):
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a
                # cancellation that arrives as the event is set, and aclose() waited forever
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()


async def _get_capped(
    client: httpx.AsyncClient, url: str, params: dict[str, int], cap: int
) -> bytes:
    """GET at most `cap` bytes (one byte more marks it oversize); never buffers an endless
    answer from a hostile or broken server."""
    async with client.stream("GET", url, params=params) as resp:
        resp.raise_for_status()
        buf = bytearray()
        async for chunk in resp.aiter_bytes():
            buf += chunk
            if len(buf) > cap:
                return bytes(buf[: cap + 1])
        return bytes(buf)


def _envelopes(body: bytes) -> list[bytes]:
    """Split a poll answer into envelope byte strings (each re-serialised compactly; the
    signature covers the base64 payload, not the envelope's JSON, so this is lossless)."""
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError):
        return []
    items = obj.get("notices") if isinstance(obj, dict) else None
    if not isinstance(items, list):
        return []
    return [json.dumps(i, separators=(",", ":")).encode() for i in items]
