"""Attach the notice listeners to a `Gateway`: two calls in `gateway.app`.

    notices = NoticeWiring(gw, settings)   # before gw.start(): routes control-address mail
    await gw.start()
    await notices.start()                  # after: sink over the store, listeners running
    ...
    await notices.aclose()                 # before gw.stop()

Signature bundles are fetched and verified here and installed by the gateway's
`SignatureDatabase` (`gateway/signatures.py`): `<data_dir>/db/<version>/` first (its `VERSION`
names the database), then the configured database folders; shared with every node through the
store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import httpx

from zerohour.config import NoticesConfig
from zerohour.gateway.listeners.service import ListenerConfig, NoticeListeners
from zerohour.gateway.outbreak.sink import OutcomeLog, StoreOutbreakSink
from zerohour.gateway.outbreak.state import OutbreakState
from zerohour.notices.bundle import BundleInstaller
from zerohour.notices.keys import load_pinned_key

log = logging.getLogger("zerohour.notices")

FRESHNESS_KEY = "notices.freshness"  # store meta: what `zerohour status` reads (another process)
FRESHNESS_EVERY = 5.0


class _Inbound(Protocol):
    data: bytes


class GatewayParts(Protocol):
    """What the wiring uses of `zerohour.gateway.app.Gateway`."""

    store: Any
    outbreaks: OutbreakState
    releaser: Any
    control_address: str | None
    control_hook: Callable[[Any], Awaitable[None]] | None
    address: tuple[str, int] | None
    cfg: Any
    signatures: Any  # zerohour.gateway.outbreak.signatures.SignatureDatabase


class NoticeWiring:
    def __init__(self, gateway: GatewayParts, settings: NoticesConfig) -> None:
        """`settings` is the validated `notices` section of the gateway's `Config`: the one
        shape notice settings have; the listeners get its resolved form (`ListenerConfig`:
        the pinned key loaded, the gateway's identity folder)."""
        self.gateway = gateway
        self.settings = settings
        self.pinned = load_pinned_key(settings.provider_key)  # ConfigError early, before start
        self.listeners: NoticeListeners | None = None
        self.outcomes: OutcomeLog | None = None
        self.sink: StoreOutbreakSink | None = None
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(15.0))
        self._fresh_task: asyncio.Task[None] | None = None
        if settings.control_address:
            gateway.control_address = settings.control_address.lower()
            gateway.control_hook = self._control_mail

    async def _control_mail(self, msg: _Inbound) -> None:
        if self.listeners is None:
            log.info("notice.control_mail_early: dropped, the poll catches up")
            return
        await self.listeners.mail.handle(msg.data)

    async def start(self) -> NoticeListeners:
        gw, s = self.gateway, self.settings
        data_dir: Path = gw.cfg.data_dir

        sink = StoreOutbreakSink(
            provider=self.pinned.provider,
            store=gw.store,
            outbreaks=gw.outbreaks,
            releaser=gw.releaser,
            installer=BundleInstaller(data_dir, s.provider, self.pinned.provider, self.client),
            bundles=gw.signatures,
        )
        self.sink = sink
        cfg = ListenerConfig(
            s.provider,
            self.pinned,
            stream=s.stream,
            poll=s.poll,
            poll_interval=s.poll_interval,
            udp_listen=(s.udp_listen.host, s.udp_listen.port) if s.udp_listen else None,
            control_address=s.control_address or None,
            # None: the provider uses the control address's MX
            control_smtp=str(s.control_smtp) if s.control_smtp else None,
            subscription_token=s.subscription_token or None,
            identity_dir=gw.cfg.data_dir,
        )
        self.listeners = NoticeListeners(cfg, sink, self.client)
        sink.keys = self.listeners.verifier
        self.outcomes = OutcomeLog(gw.store, self.pinned.provider)
        self.outcomes.start()
        self.listeners.verifier.observers.append(self.outcomes.observe)
        await self.listeners.start()
        self._fresh_task = asyncio.create_task(self._freshness_loop(), name="notice-freshness")
        return self.listeners

    def freshness(self) -> dict[str, Any]:
        """When each transport last brought a valid notice, state or heartbeat, and whether the
        gateway has been silent for longer than the freshness window (silence is not safety)."""
        assert self.listeners is not None
        v = self.listeners.verifier
        return {
            "updated_at": time.time(),
            "freshness_s": self.listeners.config.freshness.total_seconds(),
            "stale": self.listeners.stale(),
            "last_heard": {t: at.timestamp() for t, at in v.last_heard.items()},
            "last_seq": v.last_seq,
            "head_seq": v.head_seq,
        }

    async def write_freshness(self) -> None:
        await self.gateway.store.set_meta(FRESHNESS_KEY, json.dumps(self.freshness()))

    async def _freshness_loop(self) -> None:
        while True:
            try:
                await self.write_freshness()
            except Exception:  # a store hiccup must not stop the listeners
                log.exception("notice.freshness_write_failed")
            await asyncio.sleep(FRESHNESS_EVERY)

    async def aclose(self) -> None:
        if self._fresh_task is not None:
            self._fresh_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._fresh_task
        if self.listeners is not None:
            await self.listeners.aclose()
        if self.sink is not None:
            await self.sink.aclose()
        if self.outcomes is not None:
            await self.outcomes.aclose()
        await self.client.aclose()
