"""StoreOutbreakSink over the real SQLite store: effect and seq commit together, survive a
restart, and bundles install before covered outbreaks end and their mail is released."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from notices.support import ProviderProc, eventually
from zerohour.gateway.listeners.service import ListenerConfig, NoticeListeners
from zerohour.gateway.outbreak.sink import StoreOutbreakSink
from zerohour.gateway.outbreak.state import OutbreakState
from zerohour.notices.bundle import BundleInstaller, VerifiedBundle
from zerohour.notices.keys import load_pinned_key
from zerohour.notices.payload import SignaturesPublished
from zerohour.notices.verify import Result, Transport
from zerohour.store.sqlite import SqliteStore


class Recorder:
    """The releaser and the gateway's SignatureDatabase, recording what they were asked."""

    def __init__(self) -> None:
        self.released: list[str] = []
        self.installed: list[int] = []

    async def release_outbreak(
        self, outbreak_id: str, *, actor: str = "outbreak"
    ) -> dict[str, int]:
        self.released.append(outbreak_id)
        return {}

    def has(self, published: SignaturesPublished) -> bool:
        return published.version in self.installed

    async def install(self, bundle: VerifiedBundle) -> frozenset[str]:
        self.installed.append(bundle.version)
        return frozenset()

    async def release_retired(self, names: frozenset[str]) -> dict[str, int]:
        return {}


async def gateway(
    p: ProviderProc, db: Path, data: Path, rec: Recorder, http: httpx.AsyncClient, **cfg: Any
) -> tuple[NoticeListeners, SqliteStore, OutbreakState]:
    store = await SqliteStore.open(db)
    outbreaks = OutbreakState(store)
    await outbreaks.load()
    pinned = load_pinned_key(p.key_text)
    sink = StoreOutbreakSink(
        provider=pinned.provider,
        store=store,
        outbreaks=outbreaks,
        releaser=rec,
        installer=BundleInstaller(data, p.url, pinned.provider, http),
        bundles=rec,
    )
    listeners = NoticeListeners(ListenerConfig(p.url, pinned, **cfg), sink, http)
    sink.keys = listeners.verifier
    await listeners.start()
    return listeners, store, outbreaks


async def test_durable_apply_publish_release_restart(
    provider_proc: ProviderProc, tmp_path: Path
) -> None:
    rec = Recorder()
    db, data = tmp_path / "gw.db", tmp_path / "gw"
    sig = tmp_path / "a.hsb"
    sig.write_text("0" * 64 + ":1:Test.A\n")
    async with httpx.AsyncClient() as http:
        listeners, store, outbreaks = await gateway(
            provider_proc, db, data, rec, http, poll_interval=3600
        )
        try:
            oid = provider_proc.declare("Durable.Worm")
            await eventually(lambda: outbreaks.get(oid) is not None)
            provider_proc.lab("signatures", "publish", str(sig), "--covers", oid)
            await eventually(lambda: rec.released == [oid])
            assert outbreaks.get(oid) is None
            assert rec.installed == [1]
            assert await store.get_seq("zerohour-lab") == 2
            log = await store.notice_log()
            assert {(e.seq, e.kind, e.result) for e in log} >= {
                (1, "outbreak.declared", "applied"),
                (2, "signatures.published", "applied"),
            }
            envs = httpx.get(f"{provider_proc.url}/v1/notices").json()["notices"]
        finally:
            await listeners.aclose()
            await store.aclose()
        # Restart: the ledger comes back from the store; a replay is a no-op.
        listeners, store, outbreaks = await gateway(
            provider_proc, db, data, rec, http, stream=False, poll=False
        )
        try:
            assert listeners.verifier.last_seq == 2
            assert listeners.verifier.signatures_version == 1
            out = await listeners.verifier.submit(json.dumps(envs[0]).encode(), Transport.UDP)
            assert out.result is Result.DUPLICATE
            assert outbreaks.get(oid) is None
        finally:
            await listeners.aclose()
            await store.aclose()


async def test_failed_commit_rolls_back_effect_and_seq(
    provider_proc: ProviderProc, tmp_path: Path
) -> None:
    rec = Recorder()
    async with httpx.AsyncClient() as http:
        listeners, store, outbreaks = await gateway(
            provider_proc, tmp_path / "gw.db", tmp_path / "gw", rec, http, stream=False, poll=False
        )
        try:
            oid = provider_proc.declare("Atomic.Worm")
            env = json.dumps(httpx.get(f"{provider_proc.url}/v1/notices").json()["notices"][0])
            real = store.log_notice

            async def broken(entry: Any) -> None:
                raise OSError("disk full")

            store.log_notice = broken  # type: ignore[method-assign]
            out = await listeners.verifier.submit(env.encode(), Transport.UDP)
            assert out.reason == "apply_failed"
            assert outbreaks.get(oid) is None
            assert await store.get_seq("zerohour-lab") == 0
            assert [r.spec.outbreak_id for r in await store.outbreaks()] == []
            store.log_notice = real  # type: ignore[method-assign]
            out = await listeners.verifier.submit(env.encode(), Transport.UDP)
            assert out.result is Result.APPLIED
            assert outbreaks.get(oid) is not None
            assert await store.get_seq("zerohour-lab") == 1
        finally:
            await listeners.aclose()
            await store.aclose()
