"""Attack: a message whose scan outlasts every cooperative limit held a scanner worker for as
long as it liked (ProcessPoolExecutor cannot cancel a running task) and delayed unrelated mail
behind it. Now every scan has a hard deadline: the worker running it is SIGKILLed, a new one
starts, and the scan fails ("scan deadline exceeded": tempfail at DATA, quarantine after the
250, never clean). Scans on the other workers finish normally, the pool keeps serving, and no
process is left behind. A real `ScannerPool` (forkserver processes) and a real slow scan: a
logical signature whose PCRE backtracks exponentially (Python's `re` never looks at the
engine's clock: here the engine's MaxScanTime, 120 s, outlasts the 1.5 s deadline; with a
shorter MaxScanTime its timer interrupts the regex first, the last test)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.conftest import make_config, start_gateway
from zerohour.errors import StoreError
from zerohour.gateway.operations import admin_ops
from zerohour.gateway.outbreak.state import DB_DIRS_KEY
from zerohour.gateway.scanner import DEADLINE_EXCEEDED, ScannerPool
from zerohour.notices.model import OutbreakSpec
from zerohour.scan.database import starter_db_dir
from zerohour.store.base import MessageFilter, MessageState

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
# `(a|aa)+b` against a run of a's without a b: ~1.6x more work per extra "a" (30: 0.4 s, 48:
# hours). The trigger (six a's) makes the engine try the regex.
BACKTRACK = "Zh.Test.Backtrack;Engine:51-255,Target:0;0&1;616161616161;0/(a|aa)+b/\n"
SLOW = b"a" * 48 + b"c"
DEADLINE = 1.5


def mail(payload: bytes) -> bytes:
    b64 = base64.encodebytes(payload).decode()
    return (
        "From: a@example.org\r\nTo: b@example.org\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n--XX\r\n'
        'Content-Type: application/octet-stream; name="e.com"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--XX--\r\n"
    ).encode()


def _gone(pid: int) -> bool:
    """No such process (or only a zombie about to be reaped by its parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


async def _wait_gone(pids: set[int], timeout: float = 10.0) -> set[int]:
    end = time.monotonic() + timeout
    alive = set(pids)
    while alive and time.monotonic() < end:
        alive = {p for p in alive if not _gone(p)}
        await asyncio.sleep(0.05)
    return alive


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZEROHOUR_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def dirs(tmp_path: Path) -> list[Path]:
    slow = tmp_path / "slowdb"
    slow.mkdir()
    (slow / "slow.ldb").write_text(BACKTRACK)
    return [starter_db_dir(), slow]


async def test_deadline_kills_only_the_slow_scan_and_the_pool_recovers(dirs: list[Path]) -> None:
    pool = ScannerPool(dirs, workers=2, hard_timeout=DEADLINE)
    try:
        version = await pool.warm()
        before = pool.pids()
        assert len(before) == 2

        t0 = time.monotonic()
        slow = asyncio.ensure_future(pool.scan(SLOW, "slow"))
        await asyncio.sleep(0.2)  # the slow scan holds one worker
        # Scans on the other worker are unaffected, during the slow one.
        infected = await pool.scan(mail(EICAR), "eicar")
        clean = await pool.scan(mail(b"hello, nothing here"), "clean")
        assert infected.findings == ("Eicar-Test-Signature",)
        assert not clean.findings
        assert not clean.error
        assert not slow.done()

        summary = await slow
        elapsed = time.monotonic() - t0
        assert summary.error == DEADLINE_EXCEEDED
        assert not summary.findings
        assert summary.db_version == version
        assert DEADLINE <= elapsed < DEADLINE + 10, elapsed

        # Exactly the worker that ran it was killed and replaced; nothing is left behind.
        after = pool.pids()
        assert len(after) == 2
        killed = before - after
        assert len(killed) == 1
        assert await _wait_gone(killed) == set()

        # The pool keeps serving, on both workers.
        again = await asyncio.gather(*(pool.scan(mail(EICAR), f"m{i}") for i in range(4)))
        assert [s.findings for s in again] == [("Eicar-Test-Signature",)] * 4
    finally:
        pids = pool.pids()
        await pool.aclose()
    assert await _wait_gone(pids) == set()


async def test_max_scan_time_interrupts_a_regex_before_the_deadline(dirs: list[Path]) -> None:
    """A timer holds the engine to its MaxScanTime inside the backtracking regex too
    (`scan.alarm`): the scan ends with the time limit (a finding: quarantine, never clean)
    long before the hard deadline, and the worker that ran it is replaced afterwards (its
    modules' memos may be half-made), in the background."""
    pool = ScannerPool(dirs, workers=1, hard_timeout=60, max_scan_time=0.5)
    try:
        await pool.warm()
        before = pool.pids()
        t0 = time.monotonic()
        summary = await pool.scan(SLOW, "slow")
        assert time.monotonic() - t0 < 10
        assert summary.findings == ("Heuristics.Limits.Exceeded.MaxScanTime",)
        assert not summary.error
        deadline = time.monotonic() + 30
        while (pool.pids() == before or not pool.pids()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert pool.pids()
        assert not pool.pids() & before
        assert await _wait_gone(before) == set()
        got = await pool.scan(mail(EICAR), "next")
        assert got.findings == ("Eicar-Test-Signature",)
    finally:
        pids = pool.pids()
        await pool.aclose()
    assert await _wait_gone(pids) == set()


async def test_two_slow_scans_fail_and_do_not_starve_the_next_one(dirs: list[Path]) -> None:
    pool = ScannerPool(dirs, workers=2, hard_timeout=DEADLINE)
    try:
        await pool.warm()
        slow = [asyncio.ensure_future(pool.scan(SLOW, f"slow{i}")) for i in range(2)]
        late = asyncio.ensure_future(pool.scan(mail(EICAR), "late"))  # queued behind both
        t0 = time.monotonic()
        results = await asyncio.gather(*slow)
        assert [r.error for r in results] == [DEADLINE_EXCEEDED] * 2
        got = await late
        assert got.findings == ("Eicar-Test-Signature",)
        assert time.monotonic() - t0 < DEADLINE + 15
    finally:
        pids = pool.pids()
        await pool.aclose()
    assert await _wait_gone(pids) == set()


async def test_swap_lets_a_scan_in_flight_finish_on_the_old_engine(
    tmp_path: Path, dirs: list[Path]
) -> None:
    db = tmp_path / "db"
    db.mkdir()
    (db / "t.ndb").write_text(f"Zh.Swap.Test:0:*:{b'swap marker'.hex()}\n")
    (db / "VERSION").write_text("swap-test-2\n")
    pool = ScannerPool(dirs, workers=1, hard_timeout=60)
    try:
        v1 = await pool.warm()
        old_pids = pool.pids()
        in_flight = asyncio.ensure_future(pool.scan(b"a" * 31 + b"c", "in-flight"))  # ~0.6 s
        await asyncio.sleep(0.1)
        v2 = await pool.swap([db])
        assert v2 == "swap-test-2" != v1
        done = await in_flight
        assert done.db_version == v1  # finished on the old engine, not dropped
        assert not done.error
        assert (await pool.scan(b"a swap marker", "new")).findings == ("Zh.Swap.Test",)
        assert await _wait_gone(old_pids) == set()  # the old worker stopped after its scan
    finally:
        pids = pool.pids()
        await pool.aclose()
    assert await _wait_gone(pids) == set()


async def test_close_with_scans_in_flight_and_waiting_never_hangs(dirs: list[Path]) -> None:
    pool = ScannerPool(dirs, workers=1, hard_timeout=120)
    await pool.warm()
    pids = pool.pids()
    running = asyncio.ensure_future(pool.scan(SLOW, "running"))
    waiting = asyncio.ensure_future(pool.scan(mail(EICAR), "waiting"))
    await asyncio.sleep(0.3)
    t0 = time.monotonic()
    await pool.aclose()
    results = await asyncio.wait_for(asyncio.gather(running, waiting), 15)
    assert time.monotonic() - t0 < 15
    assert all(r.error for r in results)  # failed (tempfail), never clean
    assert not any(r.findings for r in results)
    assert (await pool.scan(b"after close")).error
    assert await _wait_gone(pids) == set()


async def test_admin_release_rescan_has_the_hard_deadline(
    tmp_path: Path, dirs: list[Path], sink: Any
) -> None:
    """`zerohour hold release` rescans in a worker process with the gateway's hard deadline.
    Before, the CLI scanned in its own process: held mail whose rescan never ends (here: a
    database update brought the backtracking regex after the message was held) hung the
    administrator's command for good. Now the release fails ("not released"), the message stays
    held, nothing is delivered, and no scanner process is left behind."""
    cfg = make_config(tmp_path / "data", sink.address, **{"scan.hard_timeout": DEADLINE})
    raw = mail(SLOW).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")  # SMTP wants CRLF
    run = await start_gateway(cfg)
    try:
        await run.gw.outbreaks.declare(OutbreakSpec("ob-slow", "Slowwave"))  # holds everything
        assert await run.sendmail("a@sender.test", ["b@example.test"], raw) == {}
        store = run.gw.store
        assert store is not None
        held = await store.list_messages(MessageFilter(states=(MessageState.HELD,)))
        assert len(held) == 1
        qid = held[0].queue_id
        # the slow signature arrives with the next database (as a bundle install records it)
        await store.set_meta(DB_DIRS_KEY, json.dumps([str(d) for d in dirs]))
    finally:
        await run.gw.stop()

    async with admin_ops(cfg) as ops:
        with pytest.raises(StoreError, match=DEADLINE_EXCEEDED):
            await asyncio.wait_for(ops.release(qid), DEADLINE + 60)
        scanner = ops._scanner
        assert scanner is not None
        pids = scanner.pids()
        record, _ = await ops.show(qid)
        assert record.state is MessageState.HELD
    assert await _wait_gone(pids) == set()
    assert sink.messages == []
