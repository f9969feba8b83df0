"""`zerohour status [--json]`: what the gateway in this data folder is doing.

Mode (normal, or outbreak with the active outbreaks), counts by message state, held count and
the oldest held message's age, queue depth, the installed database version (with a plain warning
when it is the bundled starter database), and the last notice per transport.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from zerohour.cli.config_cmd import add_config_flags
from zerohour.cli.quarantine import age, run_ops
from zerohour.gateway.app import STARTER_WARNING
from zerohour.gateway.operations import AdminOps
from zerohour.gateway.outbreak.state import DB_DIRS_KEY, INSTALLED_VERSION_KEY
from zerohour.scan.dbpaths import is_starter
from zerohour.store.base import MessageFilter, MessageState, Page

FRESHNESS_KEY = "notices.freshness"  # written by the gateway's notice listeners (wiring.py)


def freshness(raw: str | None) -> dict[str, Any] | None:
    """Notice freshness as the running gateway last recorded it, judged again now: silence
    longer than the freshness window is stale, also when the gateway itself went quiet."""
    if not raw:
        return None
    data: dict[str, Any] = json.loads(raw)
    now = time.time()
    heard = [float(t) for t in data.get("last_heard", {}).values()]
    window = float(data.get("freshness_s", 600.0))
    last = max(heard) if heard else None
    data["last_heard_age_s"] = None if last is None else max(0.0, now - last)
    data["stale"] = bool(data.get("stale")) or last is None or now - last > window
    return data


async def collect(ops: AdminOps) -> dict[str, Any]:
    store = ops.store
    counts = await store.count_by_state()
    outbreaks = await store.outbreaks()
    oldest = await store.list_messages(
        MessageFilter(states=(MessageState.HELD,)), Page(limit=1, offset=max(
            0, counts.get(MessageState.HELD, 0) - 1))
    )
    raw_dirs = await store.get_meta(DB_DIRS_KEY)
    dirs = [Path(p) for p in json.loads(raw_dirs)] if raw_dirs else []
    notices: dict[str, dict[str, Any]] = {}
    for n in await store.notice_log(Page(limit=500)):
        if n.transport not in notices:
            notices[n.transport] = {"seq": n.seq, "at": n.at, "kind": n.kind, "result": n.result}
    queue = await store.queue_entries(Page(limit=100000))
    return {
        "freshness": freshness(await store.get_meta(FRESHNESS_KEY)),
        "mode": "outbreak" if outbreaks else "normal",
        "outbreaks": [
            {
                "outbreak_id": o.spec.outbreak_id,
                "name": o.spec.name,
                "mode": o.spec.mode.value,
                "scope": o.spec.scope.to_json(),
                "checksums": len(o.spec.checksums),
                "declared_at": o.declared_at,
                "held": await store.count_messages(
                    MessageFilter(states=(MessageState.HELD,), outbreak_id=o.spec.outbreak_id)
                ),
            }
            for o in outbreaks
        ],
        "messages": {s.value: n for s, n in sorted(counts.items())},
        "held": counts.get(MessageState.HELD, 0),
        "oldest_held_at": oldest[0].received_at if oldest else None,
        "queue_depth": len(queue),
        "queue_deferred": sum(1 for e in queue if e.attempts > 0),
        "db_version": await store.get_meta(INSTALLED_VERSION_KEY, ""),
        "db_dirs": [str(d) for d in dirs],
        "starter_db": is_starter(dirs),
        "notices": notices,
        "now": time.time(),
    }


def _status(args: argparse.Namespace) -> int:
    data = run_ops(args, collect)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"mode          {data['mode'].upper()}")
    for o in data["outbreaks"]:
        print(f"  outbreak    {o['outbreak_id']} {o['name']} ({o['mode']}, "
              f"scope {json.dumps(o['scope'])}, {o['held']} held, "
              f"declared {age(o['declared_at'])} ago)")
    print(f"database      {data['db_version'] or 'unknown'}")
    if data["starter_db"]:
        print(f"  WARNING     {STARTER_WARNING}")
    oldest = data["oldest_held_at"]
    print(f"held          {data['held']}" + (f" (oldest {age(oldest)})" if oldest else ""))
    print(f"queue         {data['queue_depth']} ({data['queue_deferred']} deferred)")
    print("messages      " + (", ".join(f"{k} {v}" for k, v in data["messages"].items())
                             or "none yet"))
    fresh = data["freshness"]
    if fresh is None:
        print("notices       no provider heard from (none configured, or never started)")
    else:
        age_s = fresh["last_heard_age_s"]
        heard = "never" if age_s is None else f"{int(age_s)}s ago"
        state = "STALE: silence is not safety" if fresh["stale"] else "fresh"
        print(f"notices       {state} (last heard {heard}, window {int(fresh['freshness_s'])}s, "
              f"seq {fresh.get('last_seq', '-')})")
    for transport, n in data["notices"].items():
        print(f"notice        {transport}: seq {n['seq']} {n['kind']} {n['result']} "
              f"{age(n['at'])} ago")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", help="gateway status: mode, outbreaks, held, queue, database")
    add_config_flags(p, gateway=False)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_status)
