"""One read of the store that the status API, the dashboard overview and `/metrics` all share.

Where the `Store` protocol has no aggregate (notice counts, queue totals), this pages through
the rows with a cap (`SCAN_CAP`): exact for any realistic admin view, bounded for a huge log. A
store may offer `count_notices()` / `notice_counts()` / `count_queue()` later; they are used
when present.
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


async def all_notices(store: Store, cap: int = SCAN_CAP) -> list[NoticeLogEntry]:
    out: list[NoticeLogEntry] = []
    while len(out) < cap:
        page = await store.notice_log(Page(limit=_PAGE, offset=len(out)))
        out.extend(page)
        if len(page) < _PAGE:
            break
    return out


async def count_notices(store: Store) -> int:
    fn = getattr(store, "count_notices", None)
    if fn is not None:
        return int(await fn())
    return len(await all_notices(store))


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
        from zerohour.gateway.scanner import starter_db_dir

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
    store: Store, installed_version: Callable[[], str] = str, *, chart: bool = True
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
    notices = await all_notices(store)
    by: Counter[tuple[str, str]] = Counter((n.transport, n.result) for n in notices)
    last_applied: dict[str, float] = {}
    for n in notices:
        if n.result == "applied" and n.at > last_applied.get(n.transport, 0.0):
            last_applied[n.transport] = n.at
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
        notices_by=dict(by),
        notice_last=last_applied,
        chart=await _chart(store, now) if chart else [],
    )
