"""Spool durability and housekeeping."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from gateway.conftest import eicar_message, make_config, start_gateway, wait_for
from zerohour.errors import NotFoundError, SpoolFullError
from zerohour.gateway.spool import Spool, new_queue_id
from zerohour.store.bodies import RECENT_MAX_BODY, RecentBodies


async def test_write_read_delete_roundtrip(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    try:
        qid = new_queue_id()
        await spool.write(qid, b"body\r\n")
        assert spool.exists(qid)
        assert await spool.read(qid) == b"body\r\n"
        assert oct(os.stat(spool.path(qid)).st_mode & 0o777) == "0o600"
        await spool.delete(qid)
        with pytest.raises(NotFoundError):
            await spool.read(qid)
    finally:
        spool.close()


async def test_concurrent_deletes_share_trips_and_each_is_gone_on_return(tmp_path: Path) -> None:
    import asyncio

    spool = Spool(tmp_path / "spool")
    try:
        ids = [new_queue_id() for _ in range(50)]
        await asyncio.gather(*(spool.write(q, q.encode()) for q in ids))

        async def delete(q: str) -> bool:
            await spool.delete(q)
            return spool.path(q).exists()  # checked the moment this delete returns

        assert await asyncio.gather(*(delete(q) for q in ids)) == [False] * 50
        with pytest.raises(NotFoundError):  # a bad id fails at once, nothing queued
            await spool.delete("../x")
        await spool.delete(ids[0])  # deleting twice is fine
    finally:
        spool.close()


async def test_concurrent_writes_all_land(tmp_path: Path) -> None:
    import asyncio

    spool = Spool(tmp_path / "spool")
    try:
        ids = [new_queue_id() for _ in range(50)]
        await asyncio.gather(*(spool.write(q, q.encode()) for q in ids))
        for q in ids:
            assert await spool.read(q) == q.encode()
        assert list((tmp_path / "spool" / "tmp").iterdir()) == []
    finally:
        spool.close()


def test_minfree_refuses_before_writing(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", minfree=1 << 62)
    try:
        with pytest.raises(SpoolFullError):
            spool.write_sync(new_queue_id(), b"x")
        assert list((tmp_path / "spool" / "q").iterdir()) == []
    finally:
        spool.close()


def test_invalid_queue_ids_never_become_paths(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    try:
        for bad in ("../etc/passwd", "", "abc/def", "1A2B.tmp"):
            with pytest.raises(NotFoundError):
                spool.path(bad)
    finally:
        spool.close()


async def test_startup_removes_orphans_and_temporaries(tmp_path: Path, sink: object) -> None:
    """A crash after the body was written but before its row committed leaves a body no client
    got a 250 for; a crash mid-write leaves a temporary. Both are removed at the next start,
    and bodies with a row are kept."""
    cfg = make_config(
        tmp_path / "d", sink.address, **{"scan.infected": "quarantine"}  # type: ignore[attr-defined]
    )
    run = await start_gateway(cfg)
    try:
        assert await run.sendmail("a@sender.test", ["b@example.test"], eicar_message()) == {}
        store = run.gw.store
        assert store is not None
        kept = (await store.list_messages())[0].queue_id
    finally:
        await run.gw.stop()
    spool = Spool(cfg.spool_dir)
    orphan = new_queue_id()
    spool.write_sync(orphan, b"never acknowledged")
    (cfg.spool_dir / "tmp" / "partial.1").write_bytes(b"half")
    spool.close()
    time.sleep(0.01)
    run = await start_gateway(cfg)
    try:
        assert await wait_for(lambda: not run.gw.spool.exists(orphan))
        assert list((cfg.spool_dir / "tmp").iterdir()) == []
        assert await run.gw.bodies.exists(kept)  # quarantined: its body stays
    finally:
        await run.gw.stop()


async def test_a_recent_body_is_served_from_memory_and_forgotten_on_delete(
    tmp_path: Path,
) -> None:
    """The delivery right after a write reads no file; the file is still the durable copy."""

    spool = Spool(tmp_path / "spool")
    try:
        qid = new_queue_id()
        await spool.write(qid, b"hot\r\n")
        assert spool.path(qid).read_bytes() == b"hot\r\n"  # durable on disk as well
        spool.path(qid).write_bytes(b"changed on disk\r\n")  # only to tell the sources apart
        assert await spool.read(qid) == b"hot\r\n"
        await spool.delete(qid)
        assert not spool.exists(qid)
        with pytest.raises(NotFoundError):
            await spool.read(qid)
        # past the memory budget the oldest bodies are read from disk again
        ids = [new_queue_id() + f"{i:X}" for i in range(4)]
        spool._recent = RecentBodies(limit=2 * 1024)
        for q in ids:
            await spool.write(q, q.encode() * 50)
        spool.path(ids[0]).write_bytes(b"from disk\r\n")
        spool.path(ids[-1]).write_bytes(b"from disk\r\n")
        assert await spool.read(ids[0]) == b"from disk\r\n"
        assert await spool.read(ids[-1]) == ids[-1].encode() * 50
        big = new_queue_id()
        await spool.write(big, b"x" * (RECENT_MAX_BODY + 1))
        spool.path(big).write_bytes(b"from disk\r\n")
        assert await spool.read(big) == b"from disk\r\n"  # large bodies are never kept
    finally:
        spool.close()
