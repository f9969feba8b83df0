"""`zerohour quarantine list|show|release|delete`: quarantined mail in the data folder.

Release rescans with the gateway's current database first (unless `--force`) and delivers only
what comes out clean. Human tables by default, `--json` for scripts. The shared listing and
formatting helpers here are used by `zerohour hold` and `zerohour queue` too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from zerohour.cli.config_cmd import add_config_flags, config_from_args
from zerohour.gateway.operations import AdminOps, admin_ops, event_json, record_json
from zerohour.store.base import MessageFilter, MessageRecord, MessageState, Page

T = TypeVar("T")


def when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def age(ts: float) -> str:
    s = max(0, int(time.time() - ts))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def run_ops(args: argparse.Namespace, fn: Callable[[AdminOps], Awaitable[T]]) -> T:
    cfg = config_from_args(args)

    async def go() -> T:
        async with admin_ops(cfg) as ops:
            return await fn(ops)

    return asyncio.run(go())


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r).rstrip() for r in [header, *rows])


def print_records(records: list[MessageRecord], total: int, as_json: bool, page: Page) -> None:
    if as_json:
        print(
            json.dumps(
                {
                    "total": total,
                    "limit": page.limit,
                    "offset": page.offset,
                    "messages": [record_json(r) for r in records],
                },
                indent=2,
            )
        )
        return
    if not records:
        print("no messages")
        return
    rows = [
        (
            r.queue_id,
            when(r.received_at),
            age(r.received_at),
            r.state.value,
            str(r.size),
            (r.sender or "<>")[:40],
            str(len(r.recipients)),
            ",".join(r.findings or r.hold_tags) or r.reason[:40],
        )
        for r in records
    ]
    print(table(rows, ("QUEUE ID", "RECEIVED (UTC)", "AGE", "STATE", "SIZE", "SENDER", "RCPTS",
                       "WHY")))
    shown = f"{page.offset + 1}-{page.offset + len(records)}"
    print(f"\n{shown} of {total}")


def print_show(record: MessageRecord, events: list[Any], as_json: bool) -> None:
    if as_json:
        out = record_json(record)
        out["events"] = [event_json(e) for e in events]
        print(json.dumps(out, indent=2))
        return
    d = record_json(record)
    for key in ("queue_id", "state", "kind", "sender", "size", "peer", "helo", "verdict",
                "db_version", "reason"):
        print(f"{key:<12} {d[key]}")
    print(f"{'received':<12} {when(record.received_at)} UTC ({age(record.received_at)} ago)")
    print(f"{'findings':<12} {', '.join(record.findings) or '-'}")
    print(f"{'outbreaks':<12} {', '.join(record.hold_tags) or '-'}")
    print("recipients:")
    for r in record.recipients:
        print(f"  {r.address}  {r.status.value}  {r.last_error}")
    print("history:")
    for e in events:
        print(f"  {when(e.at)}  {e.state.value:<12} {e.actor:<10} {e.reason}")


def add_list_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--limit", type=int, default=50, help="page size (default 50)")
    p.add_argument("--offset", type=int, default=0, help="skip this many (newest first)")
    p.add_argument("--sender", help="sender contains this text")
    p.add_argument("--recipient", help="a recipient contains this text")
    p.add_argument("--min-size", type=int)
    p.add_argument("--max-size", type=int)
    p.add_argument("--older-than", type=float, metavar="SECONDS", help="received before now-N")


def filter_from(args: argparse.Namespace, outbreak: str | None = None) -> MessageFilter:
    before = None if args.older_than is None else time.time() - args.older_than
    return MessageFilter(
        outbreak_id=outbreak,
        sender=args.sender,
        recipient=args.recipient,
        min_size=args.min_size,
        max_size=args.max_size,
        received_before=before,
    )


def _list(args: argparse.Namespace) -> int:
    page = Page(limit=max(1, args.limit), offset=max(0, args.offset))
    records, total = run_ops(
        args, lambda ops: ops.list_messages((MessageState.QUARANTINED,), filter_from(args), page)
    )
    print_records(records, total, args.json, page)
    return 0


def _show(args: argparse.Namespace) -> int:
    record, events = run_ops(args, lambda ops: ops.show(args.queue_id))
    print_show(record, events, args.json)
    return 0


def release_ids(args: argparse.Namespace, ids: Sequence[str]) -> int:
    """Release each id; exit 1 if any stayed put (still infected, or still held)."""

    async def go(ops: AdminOps) -> list[dict[str, str]]:
        out = []
        for qid in ids:
            res = await ops.release(qid, force=args.force)
            out.append({"queue_id": qid, "state": res.state.value, "reason": res.reason})
        return out

    results = run_ops(args, go)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(f"{r['queue_id']}: {r['state']} ({r['reason']})")
    return 0 if all(r["state"] == MessageState.QUEUED.value for r in results) else 1


def delete_ids(args: argparse.Namespace, ids: Sequence[str]) -> int:
    async def go(ops: AdminOps) -> None:
        for qid in ids:
            await ops.delete(qid)

    run_ops(args, go)
    for qid in ids:
        print(f"{qid}: deleted")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("quarantine", help="quarantined mail: list, show, release, delete")
    qsub = p.add_subparsers(dest="quarantine_command", metavar="COMMAND", required=True)
    lst = qsub.add_parser("list", help="list quarantined mail, newest first")
    add_config_flags(lst, gateway=False)
    add_list_flags(lst)
    lst.set_defaults(func=_list)
    show = qsub.add_parser("show", help="one message: envelope, findings, history")
    add_config_flags(show, gateway=False)
    show.add_argument("queue_id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_show)
    rel = qsub.add_parser("release", help="rescan, then deliver if clean")
    add_config_flags(rel, gateway=False)
    rel.add_argument("queue_id", nargs="+")
    rel.add_argument("--force", action="store_true", help="deliver without rescanning")
    rel.add_argument("--json", action="store_true")
    rel.set_defaults(func=lambda a: release_ids(a, a.queue_id))
    dele = qsub.add_parser("delete", help="delete the body; the record and history stay")
    add_config_flags(dele, gateway=False)
    dele.add_argument("queue_id", nargs="+")
    dele.set_defaults(func=lambda a: delete_ids(a, a.queue_id))
