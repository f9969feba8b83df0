"""`zerohour hold list|show|release|delete [--outbreak ID]`: the outbreak hold buffer.

An administrator's release rescans first (unless `--force`) and then delivers even while the
outbreak is still active: the administrator decided. Automatic release on a signature bundle or
the end of an outbreak is the gateway's own (`gateway.release`).
"""

from __future__ import annotations

import argparse
import json

from zerohour.cli.config_cmd import add_config_flags
from zerohour.cli.quarantine import (
    add_list_flags,
    delete_ids,
    filter_from,
    print_records,
    print_show,
    release_ids,
    run_ops,
)
from zerohour.errors import ZerohourError
from zerohour.gateway.operations import AdminOps
from zerohour.store.base import MessageState, Page


def _list(args: argparse.Namespace) -> int:
    page = Page(limit=max(1, args.limit), offset=max(0, args.offset))
    records, total = run_ops(
        args,
        lambda ops: ops.list_messages(
            (MessageState.HELD,), filter_from(args, args.outbreak), page
        ),
    )
    print_records(records, total, args.json, page)
    return 0


def _show(args: argparse.Namespace) -> int:
    record, events = run_ops(args, lambda ops: ops.show(args.queue_id))
    print_show(record, events, args.json)
    return 0


def _ids_for(args: argparse.Namespace) -> list[str]:
    if args.queue_id and args.outbreak:
        raise ZerohourError("give queue ids or --outbreak, not both")
    if args.queue_id:
        return list(args.queue_id)
    if not args.outbreak:
        raise ZerohourError("give queue ids or --outbreak ID")

    async def held(ops: AdminOps) -> list[str]:
        return await ops.store.held_for(args.outbreak)

    return run_ops(args, held)


def _release(args: argparse.Namespace) -> int:
    ids = _ids_for(args)
    if not ids:
        print(json.dumps([]) if args.json else "nothing held")
        return 0
    return release_ids(args, ids)


def _delete(args: argparse.Namespace) -> int:
    ids = _ids_for(args)
    if not ids:
        print("nothing held")
        return 0
    return delete_ids(args, ids)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("hold", help="held mail (outbreaks): list, show, release, delete")
    hsub = p.add_subparsers(dest="hold_command", metavar="COMMAND", required=True)
    lst = hsub.add_parser("list", help="list held mail, newest first")
    add_config_flags(lst, gateway=False)
    add_list_flags(lst)
    lst.add_argument("--outbreak", help="only mail held for this outbreak id")
    lst.set_defaults(func=_list)
    show = hsub.add_parser("show", help="one message: envelope, outbreaks, history")
    add_config_flags(show, gateway=False)
    show.add_argument("queue_id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_show)
    for name, func, text in (
        ("release", _release, "rescan, then deliver if clean"),
        ("delete", _delete, "delete the body; the record and history stay"),
    ):
        c = hsub.add_parser(name, help=text)
        add_config_flags(c, gateway=False)
        c.add_argument("queue_id", nargs="*")
        c.add_argument("--outbreak", help="every message held for this outbreak id")
        c.add_argument("--json", action="store_true")
        if name == "release":
            c.add_argument("--force", action="store_true", help="deliver without rescanning")
        c.set_defaults(func=func)
