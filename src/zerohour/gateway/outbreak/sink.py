"""`StoreOutbreakSink`: the durable `OutbreakSink` over the gateway's Store and OutbreakState.

Each effect and its receipt (provider seq, payload digest, notice-log row) commit in one
`store.transaction()`. Work that cannot be part of a database transaction happens outside it and
is idempotent: the bundle is fetched and verified (`BundleInstaller.fetch`) and installed
(`Bundles.install`: checked, canary, engine swap, shared in the store) *before* the
transaction (the same manifest again after a crash is a no-op), held mail is released *after*
it commits (`Releaser` rescans), and so is quarantined mail that a retired signature caught:
in a background task, one release after the other, so the next notice is not held back.

A correctly signed bundle that breaks a rule (`BundleRefused`: a file type that could switch
detection off, a live signature dropped without retirement, a canary miss) is refused for
good: the notice's seq advances with result `bundle_refused` in the notice log (counted by
status and /metrics), nothing is installed, covered outbreaks stay active, and the next bundle
(the provider's full live set) converges.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from zerohour.gateway.outbreak.state import OutbreakState
from zerohour.notices.bundle import BundleRefused, VerifiedBundle
from zerohour.notices.model import OutbreakSpec
from zerohour.notices.payload import KeyRotated, ProviderState, SignaturesPublished
from zerohour.notices.sink import Ledger, Receipt
from zerohour.store.base import NoticeLogEntry, Store

log = logging.getLogger("zerohour.notices")
DIGESTS_KEY = "notices.digests"
ROTATIONS_KEY = "notices.rotations"
SIGVERSION_KEY = "notices.signatures_version"
_KEEP_DIGESTS = 1000


class Releases(Protocol):
    async def release_outbreak(self, outbreak_id: str, *, actor: str = ...) -> dict[str, int]: ...


class Fetcher(Protocol):
    """`zerohour.notices.bundle.BundleInstaller`: download and verify a bundle."""

    async def fetch(
        self, published: SignaturesPublished, keys: Mapping[str, Ed25519PublicKey]
    ) -> VerifiedBundle: ...


class Bundles(Protocol):
    """`zerohour.gateway.outbreak.signatures.SignatureDatabase`: install and share a bundle."""

    def has(self, published: SignaturesPublished) -> bool: ...

    async def install(self, bundle: VerifiedBundle) -> frozenset[str]: ...

    async def release_retired(self, names: frozenset[str]) -> dict[str, int]: ...


class KeySource(Protocol):
    def accepted_keys(self) -> Any: ...


class StoreOutbreakSink:
    def __init__(
        self,
        *,
        provider: str,
        store: Store,
        outbreaks: OutbreakState,
        releaser: Releases,
        installer: Fetcher,
        bundles: Bundles,
    ) -> None:
        self.provider = provider
        self.store = store
        self.outbreaks = outbreaks
        self.releaser = releaser
        self.installer = installer
        self.bundles = bundles
        self.keys: KeySource | None = None  # the verifier, set at wiring
        self._digests: dict[int, str] = {}
        self._releasing: asyncio.Task[None] | None = None  # the last release, in order

    async def load_ledger(self) -> Ledger:
        seq = await self.store.get_seq(self.provider)
        raw = await self.store.get_meta(DIGESTS_KEY, "{}") or "{}"
        self._digests = {int(k): v for k, v in json.loads(raw).items()}
        rotations = tuple(
            KeyRotated.from_json(r)
            for r in json.loads(await self.store.get_meta(ROTATIONS_KEY, "[]") or "[]")
        )
        version = int(await self.store.get_meta(SIGVERSION_KEY, "0") or "0")
        return Ledger(seq, dict(self._digests), rotations, version)

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[None]:
        """A store transaction; the in-memory outbreak copy is re-read afterwards either way."""
        try:
            async with self.store.transaction():
                yield
        finally:
            await self.outbreaks.reload()

    async def _record(self, receipt: Receipt, result: str = "applied", **detail: Any) -> None:
        """Inside the caller's transaction: seq, digest and the notice-log row."""
        current = await self.store.get_seq(self.provider)
        if receipt.seq > current:
            await self.store.set_seq(self.provider, receipt.seq)
        if receipt.type.logged:
            self._digests[receipt.seq] = receipt.digest
            for old in sorted(self._digests)[:-_KEEP_DIGESTS]:
                del self._digests[old]
            await self.store.set_meta(DIGESTS_KEY, json.dumps(self._digests))
        await self.store.log_notice(
            NoticeLogEntry(
                self.provider,
                receipt.seq,
                receipt.type.value,
                receipt.transport,
                result,
                time.time(),
                {"keyid": receipt.keyid, **detail},
            )
        )

    def _after_apply(self, *work: Coroutine[Any, Any, None]) -> None:
        """Release held mail after the notice's commit, in the background and in notice order.

        The verifier applies one notice at a time and waits for this sink; a release rescans
        every message held for an outbreak (thousands: tens of seconds), and a new outbreak's
        notice arriving meanwhile would wait for all of it (measured: 3-4 s for 240 held
        messages, `bench/window.py`). Releases run one after the other, each after the
        previous; every rescan decides against the outbreaks active when it runs, so mail a
        newer notice covers stays held."""
        previous = self._releasing

        async def run() -> None:
            if previous is not None:
                await asyncio.gather(previous, return_exceptions=True)
            for w in work:
                await w

        self._releasing = asyncio.create_task(run(), name="notice-release")

    async def drain(self) -> None:
        """Wait for the releases started so far (tests; a clean shutdown)."""
        while self._releasing is not None and not self._releasing.done():
            await asyncio.gather(self._releasing, return_exceptions=True)

    async def aclose(self) -> None:
        """Stop a release in progress: what it had not rescanned stays held (an administrator's
        release or the maximum hold time moves it, as after a crash during a release)."""
        if self._releasing is not None:
            self._releasing.cancel()
            await asyncio.gather(self._releasing, return_exceptions=True)

    async def _release(self, outbreak_ids: Sequence[str]) -> None:
        for oid in outbreak_ids:
            try:
                await self.releaser.release_outbreak(oid, actor="notice")
            except Exception:
                log.exception("notice.release_failed outbreak_id=%s", oid)

    async def declare(self, spec: OutbreakSpec, receipt: Receipt) -> None:
        async with self._tx():
            await self.outbreaks.declare(spec)
            await self._record(receipt, outbreak_id=spec.outbreak_id)

    async def update(self, spec: OutbreakSpec, receipt: Receipt) -> None:
        async with self._tx():
            await self.outbreaks.update(spec)
            await self._record(receipt, outbreak_id=spec.outbreak_id)

    async def end(self, outbreak_id: str, reason: str, receipt: Receipt) -> None:
        async with self._tx():
            await self.outbreaks.end(outbreak_id, reason)
            await self._record(receipt, outbreak_id=outbreak_id)
        self._after_apply(self._release([outbreak_id]))

    async def _install(self, published: SignaturesPublished) -> frozenset[str]:
        """Install the bundle; return the signature names it newly retired."""
        if self.bundles.has(published):
            return frozenset()  # installed already (a crash before the seq), or superseded
        keys = self.keys.accepted_keys() if self.keys is not None else {}
        bundle = await self.installer.fetch(published, keys)
        return await self.bundles.install(bundle)

    async def _retired(self, names: frozenset[str]) -> None:
        if not names:
            return
        try:
            await self.bundles.release_retired(names)
        except Exception:
            log.exception("notice.release_retired_failed")

    async def signatures_published(self, published: SignaturesPublished, receipt: Receipt) -> None:
        try:
            retired = await self._install(published)
        except BundleRefused as exc:
            log.warning(
                "notice.bundle_refused seq=%d version=%d reason=%s",
                receipt.seq, published.version, str(exc)[:300],
            )
            async with self._tx():
                await self._record(
                    receipt, "bundle_refused", version=published.version, error=str(exc)[:300]
                )
            return
        ended: list[str] = []
        async with self._tx():
            await self.store.set_meta(SIGVERSION_KEY, str(published.version))
            for oid in published.covers:
                if await self.outbreaks.end(oid, f"covered by signatures {published.version}"):
                    ended.append(oid)
            await self._record(receipt, version=published.version, covers=list(published.covers))
        self._after_apply(self._release(published.covers), self._retired(retired))

    async def key_rotated(self, rotation: KeyRotated, receipt: Receipt) -> None:
        async with self._tx():
            raw = json.loads(await self.store.get_meta(ROTATIONS_KEY, "[]") or "[]")
            raw.append(rotation.to_json())
            await self.store.set_meta(ROTATIONS_KEY, json.dumps(raw))
            await self._record(receipt, next_keyid=rotation.next_keyid)

    async def converge(self, state: ProviderState, receipt: Receipt) -> None:
        installed = int(await self.store.get_meta(SIGVERSION_KEY, "0") or "0")
        retired: frozenset[str] = frozenset()
        if state.signatures is not None and state.signatures_version > installed:
            try:
                retired = await self._install(state.signatures)
            except BundleRefused as exc:  # converge the outbreaks all the same
                log.warning(
                    "notice.bundle_refused state_seq=%d version=%d reason=%s",
                    receipt.seq, state.signatures_version, str(exc)[:300],
                )
        wanted = {s.outbreak_id: s for s in state.outbreaks}
        ended: list[str] = []
        async with self._tx():
            if state.signatures_version > installed:
                await self.store.set_meta(SIGVERSION_KEY, str(state.signatures_version))
            for spec in self.outbreaks.active:
                if spec.outbreak_id not in wanted:
                    await self.outbreaks.end(spec.outbreak_id, "not active at the provider")
                    ended.append(spec.outbreak_id)
            for oid, spec in wanted.items():
                if self.outbreaks.get(oid) != spec:
                    await self.outbreaks.declare(spec)
            await self._record(receipt, active=sorted(wanted))
        self._after_apply(self._release(ended), self._retired(retired))

    async def skip(self, receipt: Receipt, reason: str) -> None:
        async with self._tx():
            await self._record(receipt, result=reason)


class OutcomeLog:
    """Writes refusals (and out-of-order arrivals) to the store's notice log, where the admin
    overview and `/metrics` count them; applied notices are logged by the sink in their own
    transaction. A bounded queue: under a flood of forged datagrams rows are dropped (the
    in-memory counters still count them) rather than letting an attacker fill the disk."""

    SKIP = frozenset({"applied", "info", "duplicate"})  # stream and poll overlap

    def __init__(self, store: Store, provider: str, maxsize: int = 1000) -> None:
        self.store = store
        self.provider = provider
        self.queue: asyncio.Queue[NoticeLogEntry] = asyncio.Queue(maxsize)
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None

    def observe(self, transport: str, result: str, seq: int | None) -> None:
        if result in self.SKIP:
            return
        entry = NoticeLogEntry(self.provider, seq or 0, "", transport, result, time.time())
        try:
            self.queue.put_nowait(entry)
        except asyncio.QueueFull:
            self.dropped += 1

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            entry = await self.queue.get()
            try:
                await self.store.log_notice(entry)
            except Exception:
                log.exception("notice.outcome_log_failed")
            finally:
                self.queue.task_done()

    async def aclose(self) -> None:
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.queue.join(), 5.0)  # flush what is queued
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
