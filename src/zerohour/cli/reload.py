"""`zerohour reload`: make every gateway on this store rebuild its engine from its database
folders now (after a freshclam run, say), like SIGHUP but for every node of a cluster.

It writes the store's meta key `db.reload_request`; each gateway's change watch sees it
(PostgreSQL: NOTIFY, at once; SQLite: within a second) and reloads, logging
`scan.db_installed version=... source=zerohour reload`.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time

from zerohour.cli.config_cmd import add_config_flags, config_from_args
from zerohour.gateway.app import open_store
from zerohour.gateway.outbreak.signatures import RELOAD_KEY


def _reload(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)

    async def go() -> str:
        store = await open_store(cfg)
        try:
            token = f"{time.time():.6f}-{secrets.token_hex(4)}"
            await store.set_meta(RELOAD_KEY, token)
            return token
        finally:
            await store.aclose()

    token = asyncio.run(go())
    print(f"reload requested ({token}): every gateway on this store reloads its database")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "reload", help="make every gateway on this store reload its signature database now"
    )
    add_config_flags(p, gateway=False)
    p.set_defaults(func=_reload)
