"""Prometheus metrics, served at `/metrics` by the admin app.

Everything but scan time is read from the store at scrape time (a custom collector over one
`admin.overview.Snapshot`), so the numbers are right after a restart and for a cluster of
gateways sharing one store. Scan time is a process-local histogram the pipeline feeds through
`observe_scan(seconds)`; the clean caches' lookups and hits are process-local counters fed from
the scan workers' answers (`observe_clean_cache`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from zerohour.store.base import MessageState

if TYPE_CHECKING:
    from zerohour.admin.overview import Snapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Process-local metrics (fed by the gateway's code paths, not read from the store).
PROCESS_REGISTRY = CollectorRegistry(auto_describe=True)
SCAN_SECONDS = Histogram(
    "zerohour_scan_seconds",
    "Time to scan one message (decomposition and matching), seconds.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120),
    registry=PROCESS_REGISTRY,
)


CLEAN_CACHE_LOOKUPS = Counter(
    "zerohour_scan_clean_cache_lookups",
    "Parts below a message looked up in the scan workers' clean caches.",
    registry=PROCESS_REGISTRY,
)
CLEAN_CACHE_HITS = Counter(
    "zerohour_scan_clean_cache_hits",
    "Parts below a message replayed from a clean cache instead of scanned.",
    registry=PROCESS_REGISTRY,
)


def observe_scan(seconds: float) -> None:
    """Record one message's scan time (call from the pipeline after each scan)."""
    SCAN_SECONDS.observe(max(0.0, seconds))


def observe_clean_cache(counts: object) -> None:
    """Count one scan's clean-cache lookups and hits, as its worker answered them
    (`[lookups, hits]`; anything else, a worker without a cache included, counts nothing)."""
    if (isinstance(counts, list) and len(counts) == 2
            and all(type(n) is int and n >= 0 for n in counts)):
        CLEAN_CACHE_LOOKUPS.inc(counts[0])
        CLEAN_CACHE_HITS.inc(counts[1])


class SnapshotCollector(Collector):
    """Yields the store-derived metrics of one snapshot."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterator[Metric]:
        s = self.snap
        msgs = GaugeMetricFamily(
            "zerohour_messages", "Messages in the store by state.", labels=["state"]
        )
        for st in MessageState:
            msgs.add_metric([st.value], float(s.counts.get(st.value, 0)))
        yield msgs
        yield GaugeMetricFamily("zerohour_held_messages", "Messages in the hold buffer.",
                                value=float(s.held))
        yield GaugeMetricFamily(
            "zerohour_held_oldest_age_seconds",
            "Age of the oldest held message (0 when none is held).",
            value=float(s.held_oldest_age or 0.0),
        )
        yield GaugeMetricFamily("zerohour_quarantined_messages", "Messages in quarantine.",
                                value=float(s.quarantined))
        yield GaugeMetricFamily("zerohour_outbreaks_active", "Active outbreaks.",
                                value=float(len(s.outbreaks)))
        yield GaugeMetricFamily("zerohour_queue_depth", "Messages in the delivery queue.",
                                value=float(s.queue_depth))
        yield GaugeMetricFamily(
            "zerohour_queue_deferred", "Queued messages with at least one failed attempt.",
            value=float(s.queue_deferred),
        )
        yield GaugeMetricFamily(
            "zerohour_queue_retries", "Failed delivery attempts of the messages now queued.",
            value=float(s.queue_retries),
        )
        notices = CounterMetricFamily(
            "zerohour_notices", "Notices received, by transport and result (applied or the "
            "refusal reason).", labels=["transport", "result"],
        )
        for (transport, result), n in sorted(s.notices_by.items()):
            notices.add_metric([transport, result], float(n))
        yield notices
        fresh = GaugeMetricFamily(
            "zerohour_notice_last_applied_timestamp_seconds",
            "Unix time of the last applied notice per transport (freshness).",
            labels=["transport"],
        )
        for transport, at in sorted(s.notice_last.items()):
            fresh.add_metric([transport], at)
        yield fresh
        info = GaugeMetricFamily(
            "zerohour_db_info", "The installed signature database (value 1).", labels=["version"]
        )
        info.add_metric([str(s.db.get("version") or "")], 1.0)
        yield info
        age = s.db.get("age_seconds")
        if age is not None:
            yield GaugeMetricFamily(
                "zerohour_db_age_seconds",
                "Seconds since the installed database files were written.",
                value=float(age),
            )


def render(snap: Snapshot) -> bytes:
    """The text exposition: store-derived metrics of `snap` plus the process-local ones."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(SnapshotCollector(snap))
    return generate_latest(reg) + generate_latest(PROCESS_REGISTRY)
