"""`zerohour queue list|retry`: the delivery queue (due time, attempts, last error)."""

from __future__ import annotations

import argparse
import json

from zerohour.cli.config_cmd import add_config_flags
from zerohour.cli.quarantine import run_ops, table, when
from zerohour.errors import ZerohourError
from zerohour.gateway.operations import entry_json
from zerohour.store.base import Page


def _list(args: argparse.Namespace) -> int:
    page = Page(limit=max(1, args.limit), offset=max(0, args.offset))
    entries = run_ops(args, lambda ops: ops.queue(page))
    if args.json:
        print(json.dumps([entry_json(e) for e in entries], indent=2))
        return 0
    if not entries:
        print("queue empty")
        return 0
    rows = [
        (e.queue_id, when(e.due), str(e.attempts), e.lease_owner or "-", e.last_error[:60])
        for e in entries
    ]
    print(table(rows, ("QUEUE ID", "DUE (UTC)", "ATTEMPTS", "LEASE", "LAST ERROR")))
    return 0


def _retry(args: argparse.Namespace) -> int:
    if bool(args.queue_id) == bool(args.all):
        raise ZerohourError("give one queue id or --all")
    n = run_ops(args, lambda ops: ops.retry(None if args.all else args.queue_id))
    print(f"{n} message(s) due now")
    return 0 if n or args.all else 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("queue", help="delivery queue: list, retry")
    qsub = p.add_subparsers(dest="queue_command", metavar="COMMAND", required=True)
    lst = qsub.add_parser("list", help="queued mail by due time")
    add_config_flags(lst, gateway=False)
    lst.add_argument("--json", action="store_true")
    lst.add_argument("--limit", type=int, default=100)
    lst.add_argument("--offset", type=int, default=0)
    lst.set_defaults(func=_list)
    retry = qsub.add_parser("retry", help="make queued mail due now")
    add_config_flags(retry, gateway=False)
    retry.add_argument("queue_id", nargs="?")
    retry.add_argument("--all", action="store_true")
    retry.set_defaults(func=_retry)
