"""One read of the store that the status API, the dashboard overview and `/metrics` all share.

Where the `Store` protocol has no aggregate, this works from the rows: the delivery queue is
paged through (capped at `SCAN_CAP`; it is short unless the next hop is down), and notice counts
are kept incrementally by `NoticeTally` (only entries newer than the last one seen are read).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zerohour.scan.dbpaths import starter_db_dir
from zerohour.store.base import (
    MessageFilter,
    MessageState,
    NoticeLogEntry,
    OutbreakRecord,
    Page,
    QueueEntry,
    Store,
)

SCAN_CAP = 100_000
_PAGE = 1000
DB_DIRS_KEY = "db.dirs"  # the gateway's meta key (gateway.outbreak.DB_DIRS_KEY)
CHART_STATES = (
    MessageState.DELIVERED,
    MessageState.HELD,
    MessageState.QUARANTINED,
    MessageState.REJECTED,
    MessageState.BOUNCED,
)
CHART_BUCKETS = 12  # 5-minute buckets over the last hour


class NoticeTally:
    """Notice counts by (transport, result) and the last applied time per transport, kept up
    to date incrementally: each update reads only the log entries newer than the last one it
    saw (the log is append-only), so a scrape does not re-read a months-long log."""

    def __init__(self) -> None:
        self.by: Counter[tuple[str, str]] = Counter()
        self.last_applied: dict[str, float] = {}
        self.total = 0
        self._marker: NoticeLogEntry | None = None
        self._lock = asyncio.Lock()

    def _add(self, n: NoticeLogEntry) -> None:
        self.by[(n.transport, n.result)] += 1
        self.total += 1
        if n.result == "applied" and n.at > self.last_applied.get(n.transport, 0.0):
            self.last_applied[n.transport] = n.at

    async def update(self, store: Store) -> NoticeTally:
        async with self._lock:
            fresh: list[NoticeLogEntry] = []
            found = self._marker is None
            while len(fresh) < SCAN_CAP:
                page = await store.notice_log(Page(limit=_PAGE, offset=len(fresh)))
                if self._marker is not None and self._marker in page:
                    fresh.extend(page[: page.index(self._marker)])
                    found = True
                    break
                fresh.extend(page)
                if len(page) < _PAGE:
                    break
            if not found:  # the marker vanished (log pruned): start over from what is there
                self.by.clear()
                self.last_applied.clear()
                self.total = 0
            for n in reversed(fresh):
                self._add(n)
            if fresh:
                self._marker = fresh[0]
            return self


async def all_queue(store: Store, cap: int = SCAN_CAP) -> list[QueueEntry]:
    out: list[QueueEntry] = []
    while len(out) < cap:
        page = await store.queue_entries(Page(limit=_PAGE, offset=len(out)))
        out.extend(page)
        if len(page) < _PAGE:
            break
    return out


def _db_mtime(dirs: list[str]) -> float | None:
    """Newest file time in the database folders: when the installed database was written."""
    newest: float | None = None
    for d in dirs:
        p = Path(d)
        if not p.is_dir():
            continue
        for f in p.iterdir():
            try:
                m = f.stat().st_mtime
            except OSError:
                continue
            newest = m if newest is None else max(newest, m)
    return newest


async def db_info(store: Store, installed_version: Callable[[], str] = str) -> dict[str, Any]:
    """Installed database version, folders and age (mtime of its newest file)."""
    raw = await store.get_meta(DB_DIRS_KEY, "[]") or "[]"
    try:
        dirs = [str(d) for d in json.loads(raw)]
    except (ValueError, TypeError):
        dirs = []
    if not dirs:

        dirs = [str(starter_db_dir())]
    written = await asyncio.to_thread(_db_mtime, dirs)
    version = installed_version() or (await store.get_meta("db.installed_version", "") or "")
    return {
        "version": version,
        "dirs": dirs,
        "written_at": written,
        "age_seconds": (time.time() - written) if written is not None else None,
    }


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: float
    counts: dict[str, int]
    held: int
    held_oldest_age: float | None
    quarantined: int
    outbreaks: list[OutbreakRecord]
    db: dict[str, Any]
    queue_depth: int
    queue_deferred: int
    queue_retries: int
    notices_by: dict[tuple[str, str], int]  # (transport, result) -> count
    notice_last: dict[str, float]  # transport -> time of the last applied notice
    chart: list[dict[str, int]] = field(default_factory=list)  # per bucket: state -> count

    def status_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "outbreak_active": bool(self.outbreaks),
            "active_outbreaks": [outbreak_json(o) for o in self.outbreaks],
            "messages_by_state": self.counts,
            "held": {"count": self.held, "oldest_age_seconds": self.held_oldest_age},
            "quarantined": self.quarantined,
            "queue": {
                "depth": self.queue_depth,
                "deferred": self.queue_deferred,
                "retries": self.queue_retries,
            },
            "database": self.db,
            "notices": {
                "last_applied": {
                    t: {"at": at, "age_seconds": self.at - at}
                    for t, at in sorted(self.notice_last.items())
                },
                "by_transport_result": [
                    {"transport": t, "result": r, "count": n}
                    for (t, r), n in sorted(self.notices_by.items())
                ],
            },
            "last_hour": {
                "bucket_seconds": 3600 // CHART_BUCKETS,
                "buckets": self.chart,
            },
        }


def outbreak_json(o: OutbreakRecord) -> dict[str, Any]:
    return {
        "outbreak_id": o.spec.outbreak_id,
        "name": o.spec.name,
        "mode": o.spec.mode.value,
        "scope": o.spec.scope.to_json(),
        "checksums": len(o.spec.checksums),
        "declared_at": o.declared_at,
        "updated_at": o.updated_at,
        "ended_at": o.ended_at,
        "end_reason": o.end_reason,
        "active": o.active,
    }


async def _chart(store: Store, now: float) -> list[dict[str, int]]:
    width = 3600 / CHART_BUCKETS
    buckets: list[Counter[str]] = [Counter() for _ in range(CHART_BUCKETS)]
    wanted = {s.value for s in CHART_STATES}
    for ev in await store.recent_events(limit=20_000):
        age = now - ev.at
        if age >= 3600:
            break  # newest first: the rest is older
        if ev.state.value in wanted and age >= 0:
            buckets[CHART_BUCKETS - 1 - int(age // width)][ev.state.value] += 1
    return [{s.value: b.get(s.value, 0) for s in CHART_STATES} for b in buckets]


async def snapshot(
    store: Store,
    installed_version: Callable[[], str] = str,
    *,
    chart: bool = True,
    tally: NoticeTally | None = None,
) -> Snapshot:
    """Everything the overview, `/status`, `zerohour status` and `/metrics` show."""
    now = time.time()
    counts = {s.value: n for s, n in (await store.count_by_state()).items()}
    held_state = MessageFilter(states=(MessageState.HELD,))
    held = counts.get(MessageState.HELD.value, 0)
    oldest_age: float | None = None
    if held:
        # newest first: the oldest is the last one
        last = await store.list_messages(held_state, Page(limit=1, offset=held - 1))
        if last:
            oldest_age = max(0.0, now - last[0].received_at)
    queue = await all_queue(store)
    t = await (tally or NoticeTally()).update(store)
    return Snapshot(
        at=now,
        counts=counts,
        held=held,
        held_oldest_age=oldest_age,
        quarantined=counts.get(MessageState.QUARANTINED.value, 0),
        outbreaks=await store.outbreaks(active_only=True),
        db=await db_info(store, installed_version),
        queue_depth=len(queue),
        queue_deferred=sum(1 for q in queue if q.attempts > 0),
        queue_retries=sum(q.attempts for q in queue),
        notices_by=dict(t.by),
        notice_last=dict(t.last_applied),
        chart=await _chart(store, now) if chart else [],
    )
