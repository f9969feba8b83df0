"""The installed signature bundle in the shared store (issue 9, section 3 "Cluster"), run
against SQLite and PostgreSQL: files and version commit together, versions only go up, older
files are dropped, and another handle on the same store (another node) is told and reads them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from zerohour.errors import NotFoundError, StoreError
from zerohour.store.base import BUNDLE_VERSION_KEY, Store

Opener = Callable[[], Awaitable[Store]]

V1 = {"a.hsb": b"0" * 64 + b":1:Test.A\n", "manifest.json": b"{}"}
V2 = {"a.hsb": V1["a.hsb"], "b.ndb": b"Test.B:0:*:414243\n", "manifest.json": b"{ }"}


@pytest.fixture
async def store(opener: Opener) -> AsyncIterator[Store]:
    s = await opener()
    try:
        yield s
    finally:
        await s.aclose()


async def test_bundle_files_and_version_commit_together(store: Store) -> None:
    assert await store.bundle_version() == 0
    with pytest.raises(NotFoundError):
        await store.get_bundle(1)
    assert await store.put_bundle(1, V1) is True
    assert await store.bundle_version() == 1
    assert await store.get_meta(BUNDLE_VERSION_KEY) == "1"
    assert await store.get_bundle(1) == V1
    assert await store.put_bundle(1, V1) is False  # the same again: a no-op
    assert await store.put_bundle(2, V2) is True
    assert await store.get_bundle(2) == V2
    with pytest.raises(NotFoundError):
        await store.get_bundle(1)  # the full live set is in every bundle: older ones go
    with pytest.raises(StoreError, match="older"):
        await store.put_bundle(1, V1)
    assert await store.bundle_version() == 2


async def test_bundle_rolls_back_with_the_transaction(store: Store) -> None:
    async def failing_unit() -> None:
        async with store.transaction():
            await store.put_bundle(1, V1)
            raise RuntimeError("the notice's commit failed")

    with pytest.raises(RuntimeError):
        await failing_unit()
    assert await store.bundle_version() == 0
    with pytest.raises(NotFoundError):
        await store.get_bundle(1)


async def test_bundle_survives_reopen_and_another_handle_is_told(opener: Opener) -> None:
    node_a, node_b = await opener(), await opener()
    try:
        changes = node_b.watch_changes(poll_interval=0.2)
        assert await anext(changes) == "resync"  # subscribed
        await node_a.put_bundle(3, V2)
        # SQLite: another connection's commit is a "resync"; PostgreSQL: NOTIFY "meta"
        heard = await asyncio.wait_for(anext(changes), 5.0)
        assert heard in ("meta", "resync")
        assert await node_b.bundle_version() == 3
        assert await node_b.get_bundle(3) == V2
        await changes.aclose()
    finally:
        await node_a.aclose()
        await node_b.aclose()
    again = await opener()
    try:
        assert await again.bundle_version() == 3
        assert await again.get_bundle(3) == V2
    finally:
        await again.aclose()
