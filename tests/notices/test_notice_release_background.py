"""A release of held mail never holds back the next notice.

The verifier applies notices one at a time and waits for the sink; a release rescans every
message an outbreak held (tens of seconds for thousands). `StoreOutbreakSink` therefore commits
the effect, returns, and releases in a background task, releases in notice order. Over the real
SQLite store, with a releaser that blocks until the test lets it go.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from zerohour.gateway.outbreak.sink import StoreOutbreakSink
from zerohour.gateway.outbreak.state import OutbreakState
from zerohour.notices.bundle import VerifiedBundle
from zerohour.notices.model import OutbreakSpec
from zerohour.notices.payload import NoticeType, SignaturesPublished
from zerohour.notices.sink import Receipt
from zerohour.store.sqlite import SqliteStore


class SlowReleaser:
    """Every release waits for `go`; records when each started and finished."""

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.log: list[str] = []

    async def release_outbreak(
        self, outbreak_id: str, *, actor: str = "outbreak"
    ) -> dict[str, int]:
        self.log.append(f"start {outbreak_id}")
        await self.go.wait()
        self.log.append(f"done {outbreak_id}")
        return {}

    def has(self, published: SignaturesPublished) -> bool:
        return True

    async def install(self, bundle: VerifiedBundle) -> frozenset[str]:
        return frozenset()

    async def release_retired(self, names: frozenset[str]) -> dict[str, int]:
        return {}

    async def fetch(self, published: SignaturesPublished, keys: object) -> VerifiedBundle:
        raise AssertionError("not fetched: has() says installed")


def receipt(seq: int, kind: NoticeType) -> Receipt:
    return Receipt(seq, f"digest-{seq}", kind, "key", "stream")


Parts = tuple[StoreOutbreakSink, OutbreakState, SlowReleaser]


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[Parts]:
    store = await SqliteStore.open(tmp_path / "gw.db")
    outbreaks = OutbreakState(store)
    await outbreaks.load()
    rel = SlowReleaser()
    sink = StoreOutbreakSink(
        provider="lab", store=store, outbreaks=outbreaks, releaser=rel, installer=rel, bundles=rel
    )
    try:
        yield sink, outbreaks, rel
    finally:
        rel.go.set()
        await sink.aclose()
        await store.aclose()


async def test_a_notice_during_a_release_applies_at_once(
    parts: Parts,
) -> None:
    sink, outbreaks, rel = parts
    await sink.declare(OutbreakSpec("ob-a", "A"), receipt(1, NoticeType.OUTBREAK_DECLARED))
    # ending A starts its release, which blocks; the apply itself returns
    await asyncio.wait_for(sink.end("ob-a", "ended", receipt(2, NoticeType.OUTBREAK_ENDED)), 5)
    await asyncio.sleep(0.05)
    assert rel.log == ["start ob-a"]
    # a new outbreak, declared while A's release runs: in force at once, durably
    await asyncio.wait_for(
        sink.declare(OutbreakSpec("ob-b", "B"), receipt(3, NoticeType.OUTBREAK_DECLARED)), 5
    )
    assert outbreaks.get("ob-b") is not None
    assert await sink.store.get_seq("lab") == 3
    # a bundle covering B: its release waits for A's (notice order)
    published = SignaturesPublished(1, "/v1/signatures/1/manifest.json", "0" * 64, 10, ("ob-b",))
    await asyncio.wait_for(
        sink.signatures_published(published, receipt(4, NoticeType.SIGNATURES_PUBLISHED)), 5
    )
    assert outbreaks.get("ob-b") is None
    await asyncio.sleep(0.05)
    assert rel.log == ["start ob-a"]
    rel.go.set()
    await asyncio.wait_for(sink.drain(), 5)
    assert rel.log == ["start ob-a", "done ob-a", "start ob-b", "done ob-b"]


async def test_closing_stops_a_release_in_progress(
    parts: Parts,
) -> None:
    sink, _, rel = parts
    await sink.declare(OutbreakSpec("ob-c", "C"), receipt(1, NoticeType.OUTBREAK_DECLARED))
    await sink.end("ob-c", "ended", receipt(2, NoticeType.OUTBREAK_ENDED))
    await asyncio.sleep(0.05)
    await asyncio.wait_for(sink.aclose(), 5)
    assert rel.log == ["start ob-c"]
