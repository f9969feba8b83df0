"""All notice listeners of one gateway, wired to one verifier: what `gateway.app` starts.

listeners = NoticeListeners(ListenerConfig(url, load_pinned_key(text)), sink)
await listeners.start()      # poll now, stream, UDP, subscribe
await listeners.mail.handle(raw_message)   # from the receive step, for the control address
await listeners.aclose()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urljoin

import httpx

from zerohour.gateway.listeners.mail import MailNoticeReceiver
from zerohour.gateway.listeners.poll import Poller
from zerohour.gateway.listeners.stream import StreamClient
from zerohour.gateway.listeners.udp import UdpListener
from zerohour.notices.keys import PinnedKey
from zerohour.notices.sink import OutbreakSink
from zerohour.notices.verify import NoticeVerifier

log = logging.getLogger("zerohour.notices")


async def supervise(
    name: str,
    run: Callable[[], Awaitable[None]],
    restarts: Counter[str],
    *,
    backoff_base: float = 0.5,
    backoff_cap: float = 30.0,
) -> None:
    """Run a listener loop for good: any unexpected exception (or an unexpected return) is
    logged and the loop restarts after a full-jitter exponential backoff, reset once a run has
    lasted a minute. Only cancellation ends it. No payload can end a listener this way."""
    failures = 0
    while True:
        began = time.monotonic()
        try:
            await run()
            log.warning("notice.listener_returned listener=%s: restarting", name)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("notice.listener_crashed listener=%s: restarting", name)
        restarts[name] += 1
        failures = 1 if time.monotonic() - began > 60 else failures + 1
        cap = min(backoff_cap, backoff_base * 2**failures)
        await asyncio.sleep(random.uniform(backoff_base / 2, cap))  # noqa: S311


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    provider_url: str
    pinned: PinnedKey
    stream: bool = True
    poll: bool = True
    poll_interval: float = 60.0
    udp_listen: tuple[str, int] | None = None
    control_address: str | None = None
    control_smtp: str | None = None  # HOST:PORT where the provider should deliver control mail
    subscription_token: str | None = None
    skew: timedelta = timedelta(minutes=5)
    freshness: timedelta = timedelta(minutes=10)
    idle_timeout: float = 95.0


class NoticeListeners:
    def __init__(
        self,
        config: ListenerConfig,
        sink: OutbreakSink,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = config
        self.client = client or httpx.AsyncClient(timeout=httpx.Timeout(15.0))
        self._own_client = client is None
        self.verifier = NoticeVerifier(config.pinned, sink, skew=config.skew)
        self.poller = Poller(
            config.provider_url, self.verifier, self.client, interval=config.poll_interval
        )
        self.verifier.on_gap = self.poller.poke
        self.stream = StreamClient(
            config.provider_url, self.verifier, self.client, idle_timeout=config.idle_timeout
        )
        self.udp = UdpListener(self.verifier)
        self.mail = MailNoticeReceiver(self.verifier)
        self.udp_address: tuple[str, int] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.restarts: Counter[str] = Counter()  # listener loops restarted after a crash

    async def start(self) -> None:
        await self.verifier.start()
        if self.config.udp_listen is not None:
            self.udp_address = await self.udp.start(*self.config.udp_listen)
        if self.config.subscription_token and (self.udp_address or self.config.control_address):
            try:
                sub = await self.subscribe()
                log.info(
                    "notice.subscribed id=%s udp=%s control=%s",
                    sub,
                    self.udp_address,
                    self.config.control_address,
                )
            except httpx.HTTPError as exc:
                log.warning("notice.subscribe_failed %s", exc)
        if self.config.poll:
            self._tasks.append(
                asyncio.create_task(supervise("poll", self.poller.run, self.restarts))
            )
        if self.config.stream:
            self._tasks.append(
                asyncio.create_task(supervise("stream", self.stream.run, self.restarts))
            )

    async def subscribe(self) -> str:
        body: dict[str, str] = {}
        if self.udp_address is not None:
            body["udp"] = f"{self.udp_address[0]}:{self.udp_address[1]}"
        if self.config.control_address:
            body["control_address"] = self.config.control_address
            if self.config.control_smtp:
                body["smtp"] = self.config.control_smtp
        resp = await self.client.post(
            urljoin(self.config.provider_url, "/v1/subscriptions"),
            json=body,
            headers={"Authorization": f"Bearer {self.config.subscription_token}"},
        )
        resp.raise_for_status()
        return str(resp.json()["id"])

    async def aclose(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await self.udp.aclose()
        if self._own_client:
            await self.client.aclose()

    def stale(self, now: datetime | None = None) -> bool:
        """No valid notice or state for longer than the freshness window (never releases)."""
        now = now or self.verifier.clock()
        heard = max(self.verifier.last_heard.values(), default=None)
        return heard is None or now - heard > self.config.freshness

    def status(self) -> dict[str, Any]:
        now = self.verifier.clock()
        return {
            "last_seq": self.verifier.last_seq,
            "head_seq": self.verifier.head_seq,
            "signatures_version": self.verifier.signatures_version,
            "stale": self.stale(now),
            "last_heard_age_s": {
                t: round((now - at).total_seconds(), 1)
                for t, at in self.verifier.last_heard.items()
            },
            "counts": {f"{t}:{r}": n for (t, r), n in sorted(self.verifier.counts.items())},
        }
