"""An outbreak's timeline: declared, first message held, signatures installed, released; with
what became of the mail it held (released clean, quarantined, deleted, still held).

Read from what the store keeps anyway, nothing written for it: the outbreak record (declared,
ended and why), the messages' audit trail (`Store.outbreak_events`: every hold names its
outbreaks in its reason, "held for outbreak a, b"; a checksum quarantine says "outbreak a
checksum match") and the notice log (the `signatures.published` notice that covered it). Hold
tags are cleared when mail leaves the hold, so the trail, not the tags, says who was held.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from zerohour.errors import NotFoundError
from zerohour.store.base import Event, MessageState, OutbreakRecord, Page, Store

_HELD_FOR = re.compile(r"held for outbreak ([A-Za-z0-9._, -]+)")
_CHECKSUM = re.compile(r"outbreak ([A-Za-z0-9._-]+) checksum match")
NOTICE_PAGES = 20  # the notice log is read newest first, at most this many pages of 500
_RELEASED = (MessageState.QUEUED, MessageState.DELIVERED, MessageState.BOUNCED)


def names_outbreak(reason: str, outbreak_id: str) -> str:
    """ "held" or "checksum" when `reason` says this outbreak held or quarantined the message."""
    for m in _HELD_FOR.finditer(reason):
        if outbreak_id in (x.strip() for x in m.group(1).split(",")):
            return "held"
    if any(m.group(1) == outbreak_id for m in _CHECKSUM.finditer(reason)):
        return "checksum"
    return ""


def _outcome(trail: list[Event], start: int) -> Event | None:
    """The first event after `start` that took the message out of the hold."""
    for e in trail[start + 1 :]:
        if e.state is not MessageState.HELD:
            return e
    return None


async def _signatures(store: Store, outbreak_id: str) -> list[dict[str, Any]]:
    out = []
    for page in range(NOTICE_PAGES):
        entries = await store.notice_log(Page(limit=500, offset=page * 500))
        for n in entries:
            covers = n.detail.get("covers", ())
            if (
                n.kind == "signatures.published"
                and n.result == "applied"
                and (isinstance(covers, list) and outbreak_id in covers)
            ):
                out.append(
                    {
                        "at": n.at,
                        "version": n.detail.get("version"),
                        "seq": n.seq,
                        "provider": n.provider,
                    }
                )
        if len(entries) < 500:
            break
    return sorted(out, key=lambda x: x["at"])


async def outbreak_timeline(store: Store, outbreak_id: str) -> dict[str, Any]:
    """The timeline and counts of one outbreak; `NotFoundError` when it is unknown."""
    rec: OutbreakRecord | None = next(
        (o for o in await store.outbreaks(active_only=False) if o.spec.outbreak_id == outbreak_id),
        None,
    )
    if rec is None:
        raise NotFoundError(f"no outbreak {outbreak_id}")
    trails: dict[str, list[Event]] = defaultdict(list)
    for e in await store.outbreak_events(outbreak_id):
        trails[e.queue_id].append(e)
    tagged = set(await store.held_for(outbreak_id))
    counts = {
        "held": 0,
        "released_clean": 0,
        "quarantined": 0,
        "deleted": 0,
        "still_held": 0,
        "checksum_quarantined": 0,
    }
    held_at: list[float] = []
    released_at: list[float] = []
    for qid, trail in trails.items():
        start = next(
            (
                i
                for i, e in enumerate(trail)
                if e.state is MessageState.HELD
                and (names_outbreak(e.reason, outbreak_id) == "held" or qid in tagged)
            ),
            None,
        )
        if start is None:
            if any(
                e.state is MessageState.QUARANTINED
                and names_outbreak(e.reason, outbreak_id) == "checksum"
                for e in trail
            ):
                counts["checksum_quarantined"] += 1
            continue
        counts["held"] += 1
        held_at.append(trail[start].at)
        end = _outcome(trail, start)
        if end is None:
            counts["still_held"] += 1
        elif end.state in _RELEASED:
            counts["released_clean"] += 1
            released_at.append(end.at)
        elif end.state is MessageState.QUARANTINED:
            counts["quarantined"] += 1
            released_at.append(end.at)
        else:
            counts["deleted"] += 1
            released_at.append(end.at)
    sigs = await _signatures(store, outbreak_id)
    steps: list[dict[str, Any]] = [
        {"step": "declared", "at": rec.declared_at, "detail": rec.spec.name},
        {
            "step": "first_held",
            "at": min(held_at) if held_at else None,
            "detail": f"{counts['held']} message(s) held in all",
        },
    ]
    for sig in sigs:
        steps.append(
            {
                "step": "signatures_installed",
                "at": sig["at"],
                "detail": f"signature bundle {sig['version']} (notice {sig['seq']})",
            }
        )
    if not sigs:
        steps.append({"step": "signatures_installed", "at": None, "detail": ""})
    steps.append({"step": "ended", "at": rec.ended_at, "detail": rec.end_reason})
    steps.append(
        {
            "step": "last_released",
            "at": max(released_at) if released_at else None,
            "detail": f"{len(released_at)} message(s) left the hold",
        }
    )
    return {
        "outbreak_id": outbreak_id,
        "name": rec.spec.name,
        "mode": rec.spec.mode.value,
        "active": rec.active,
        "steps": steps,
        "counts": counts,
    }
