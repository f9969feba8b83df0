"""`zerohour admin ...`: admin API tokens (create, list, revoke) and the admin audit log.

Tokens live hashed in `<data>/admin.sqlite3`, shared with the running gateway: a revoked token
stops working on its next request. A new token is printed once and never stored in clear.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def _data_dir(args: argparse.Namespace) -> Path:
    if args.data_dir:
        return Path(args.data_dir).expanduser()
    from zerohour import config

    return config.load(file=args.config).data_dir


def cmd_create(args: argparse.Namespace) -> int:
    from zerohour.admin.auth import AuthStore, Role

    auth = AuthStore(_data_dir(args))
    token, info = auth.create_token(Role(args.role), args.name or "")
    auth.audit("cli", "", "token.create", info.id, "ok", {"role": info.role.value,
                                                           "name": info.name})
    if args.json:
        print(json.dumps({"token": token, "id": info.id, "name": info.name,
                          "role": info.role.value}))
    else:
        print(token)
        print(f"# token {info.id} ({info.name}, role {info.role.value}): shown only once",
              flush=True)
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from zerohour.admin.auth import AuthStore

    auth = AuthStore(_data_dir(args))
    info = auth.revoke(args.token_id)
    auth.audit("cli", "", "token.revoke", info.id, "ok", {"name": info.name})
    print(json.dumps({"revoked": info.id}) if args.json else f"revoked token {info.id}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from zerohour.admin.auth import AuthStore

    tokens = AuthStore(_data_dir(args)).tokens()
    if args.json:
        print(json.dumps([{"id": t.id, "name": t.name, "role": t.role.value,
                           "created_at": t.created_at, "revoked_at": t.revoked_at}
                          for t in tokens]))
        return 0
    for t in tokens:
        created = time.strftime("%Y-%m-%d %H:%M", time.gmtime(t.created_at))
        state = "revoked" if t.revoked_at else "active"
        print(f"{t.id}  {t.role.value:5}  {state:7}  {created}  {t.name}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from zerohour.admin.auth import AuthStore

    entries, total = AuthStore(_data_dir(args)).audit_log(args.limit, 0)
    if args.json:
        print(json.dumps({"items": [e.to_json() for e in entries], "total": total}))
        return 0
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e.at))
        print(f"{when}  {e.actor:20}  {e.action:24}  {e.target:22}  {e.result}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("admin", help="admin API tokens and audit log")
    asub = p.add_subparsers(dest="admin_command", metavar="COMMAND", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--data-dir", help="gateway data folder (default: from config, ./var)")
        q.add_argument("--config", type=Path, help="TOML configuration file")
        q.add_argument("--json", action="store_true", help="print JSON")

    tok = asub.add_parser("token", help="create, list or revoke admin tokens")
    tsub = tok.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = tsub.add_parser("create", help="create a token and print it once")
    create.add_argument("--role", choices=["read", "admin"], required=True)
    create.add_argument("--name", help="who or what uses it (shown in the audit log)")
    common(create)
    create.set_defaults(func=cmd_create)
    revoke = tsub.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id", help="the id (the 8 hex digits after zh_)")
    common(revoke)
    revoke.set_defaults(func=cmd_revoke)
    lst = tsub.add_parser("list", help="list tokens (ids, roles, state; never secrets)")
    common(lst)
    lst.set_defaults(func=cmd_list)
    audit = asub.add_parser("audit", help="show the admin audit log (newest first)")
    audit.add_argument("--limit", type=int, default=50)
    common(audit)
    audit.set_defaults(func=cmd_audit)
