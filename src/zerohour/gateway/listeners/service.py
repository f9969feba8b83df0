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
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from zerohour.errors import ConfigError
from zerohour.gateway.listeners.mail import MailNoticeReceiver
from zerohour.gateway.listeners.poll import Poller
from zerohour.gateway.listeners.stream import StreamClient
from zerohour.gateway.listeners.udp import UdpListener
from zerohour.notices.keys import PinnedKey, gateway_id
from zerohour.notices.sink import OutbreakSink
from zerohour.notices.verify import NoticeVerifier

log = logging.getLogger("zerohour.notices")
RESUBSCRIBE_EVERY = 3600.0


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
    subscription_token: str | None = None  # this gateway's credential at the provider
    identity_dir: Path | None = None  # the gateway's data folder: its key, hence its id
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
        self.subscription: dict[str, Any] | None = None  # the provider's last answer
        self._gateway_id: str | None = None

    @property
    def subscribes(self) -> bool:
        return bool(
            self.config.subscription_token and (self.udp_address or self.config.control_address)
        )

    async def start(self) -> None:
        await self.verifier.start()
        if self.config.udp_listen is not None:
            self.udp_address = await self.udp.start(*self.config.udp_listen)
        if self.subscribes:
            ok = await self.try_subscribe()  # first attempt before start() returns
            self._tasks.append(
                asyncio.create_task(
                    supervise("subscribe", lambda: self._subscribe_loop(ok), self.restarts)
                )
            )
        if self.config.poll:
            self._tasks.append(
                asyncio.create_task(supervise("poll", self.poller.run, self.restarts))
            )
        if self.config.stream:
            self._tasks.append(
                asyncio.create_task(supervise("stream", self.stream.run, self.restarts))
            )

    def gateway_id(self) -> str:
        if self._gateway_id is None:
            if self.config.identity_dir is None:
                raise ConfigError("a gateway needs its data folder (identity_dir) to subscribe")
            self._gateway_id = gateway_id(self.config.identity_dir)
        return self._gateway_id

    async def try_subscribe(self) -> bool:
        """Register (or replace) this gateway's subscription; log loudly when refused."""
        try:
            self.subscription = await self.subscribe()
        except httpx.HTTPStatusError as exc:
            try:
                reason = str(exc.response.json().get("error", ""))[:300]
            except ValueError:
                reason = exc.response.text[:300]
            log.error(
                "notice.subscribe_refused status=%d: %s (UDP and control mail will not be "
                "pushed to this gateway; stream and poll still work)",
                exc.response.status_code,
                reason,
            )
            return False
        except httpx.HTTPError as exc:
            log.warning("notice.subscribe_failed %s: %s", type(exc).__name__, exc)
            return False
        log.info(
            "notice.subscribed id=%s udp=%s control=%s smtp=%s replaced=%s",
            self.subscription.get("id"),
            self.subscription.get("udp"),
            self.subscription.get("control_address"),
            self.subscription.get("smtp") or "mx",
            self.subscription.get("replaced"),
        )
        return True

    async def _subscribe_loop(self, ok: bool) -> None:
        """Retry until subscribed (backoff 1 s doubling to 5 min), then renew every hour: the
        provider replaces the subscription of the same gateway id, so renewing is harmless and
        repairs a subscription the provider lost."""
        delay = RESUBSCRIBE_EVERY if ok else 1.0
        while True:
            await asyncio.sleep(delay)
            ok = await self.try_subscribe()
            delay = RESUBSCRIBE_EVERY if ok else min(max(delay, 0.5) * 2, 300.0)

    async def subscribe(self) -> dict[str, Any]:
        body: dict[str, str] = {"gateway_id": self.gateway_id()}
        if self.udp_address is not None:
            # A wildcard bind is sent as is: the provider then pushes to the address this
            # request comes from (the only one it accepts without the operator's approval).
            host = self.udp_address[0]
            body["udp"] = (
                f"[{host}]:{self.udp_address[1]}"
                if ":" in host
                else (f"{host}:{self.udp_address[1]}")
            )
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
        answer = resp.json()
        if not isinstance(answer, dict):
            raise httpx.DecodingError("subscription answer is not an object")
        return answer

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
