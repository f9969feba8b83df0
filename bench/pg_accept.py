"""What the PostgreSQL store's accept could save: several messages' accept statements in one
pipelined transaction (group commit across SMTP sessions), and the body column stored
without compression (`STORAGE EXTERNAL`) or with lz4 instead of pglz.

Each row runs the store's own one-statement accept (`PostgresStore._ADD_BODY`: message,
recipient, event, queue row and body) against a scratch database, 20 concurrent callers,
and reads the client's CPU (this process) and the server's (the run's backends). Rows
alternate, so the machine's drift shows as the spread between a row and its repeat.

    .venv/bin/python bench/pg_accept.py               # 3000 accepts per row
    .venv/bin/python bench/pg_accept.py --calls 6000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import loadavg, table
from pg import DEFAULT_URL, backend_cpu, scratch_database

from zerohour.gateway.spool import new_queue_id
from zerohour.store.postgres import PostgresStore

_STORAGE = {
    "pglz (default)": None,
    "no compression": "ALTER TABLE bodies ALTER COLUMN data SET STORAGE EXTERNAL",
    "lz4": "ALTER TABLE bodies ALTER COLUMN data SET COMPRESSION lz4",
}


def _self_cpu() -> float:
    t = os.times()
    return t.user + t.system


def _params(qid: str, body: bytes) -> dict[str, Any]:
    now = time.time()
    return {
        "qid": qid, "kind": "mail", "sender": "a@x.test", "size": len(body), "rcv": now,
        "upd": now, "state": "queued", "peer": "127.0.0.1", "helo": "bench",
        "verdict": "clean", "findings": "[]", "dbv": "1", "summary": json.dumps({"s": "b"}),
        "reason": "clean", "addrs": ["b@y.test"], "statuses": ["pending"], "errs": [""],
        "tags": [], "actor": "smtp", "due": now, "body": body,
    }  # fmt: skip


async def _row(url: str, database: str, calls: int, size: int, group: int,
               storage: str | None) -> list[float]:
    """(accepts/s, client ms, server ms) per accept."""
    sessions = 20 if group == 1 else max(1, 20 // group)
    store = await PostgresStore.open(url, min_size=sessions, max_size=sessions)
    pool = store._pool  # (the store's own statement, on its own connections)
    if storage:
        async with pool.connection() as conn:
            await conn.execute(storage)
    body = b"Subject: bench\r\n\r\n" + base64.encodebytes(os.urandom(size * 3 // 4))
    ids = iter([new_queue_id() for _ in range(calls)])
    query = store._ADD_BODY

    async def one_each() -> None:
        for qid in ids:
            async with pool.connection() as conn:
                await (await conn.execute(query, _params(qid, body))).fetchone()

    async def grouped() -> None:
        while chunk := [qid for _, qid in zip(range(group), ids, strict=False)]:
            async with pool.connection() as conn, conn.pipeline() as pipe:
                await conn.execute("BEGIN")
                cursors = [await conn.execute(query, _params(q, body)) for q in chunk]
                await conn.execute("COMMIT")
                await pipe.sync()
                for cur in cursors:
                    await cur.fetchone()

    server0 = backend_cpu(url, database)
    client0 = _self_cpu()
    t0 = time.perf_counter()
    await asyncio.gather(*((one_each if group == 1 else grouped)() for _ in range(sessions)))
    elapsed = time.perf_counter() - t0
    client = _self_cpu() - client0
    server = sum(t - server0.get(p, 0.0) for p, t in backend_cpu(url, database).items())
    await store.aclose()
    return [calls / elapsed, 1000 * client / calls, 1000 * server / calls]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL server (a scratch db is made)")
    ap.add_argument("--calls", type=int, default=3000, help="accepts per row")
    ap.add_argument("--group", type=int, default=4, help="accepts per pipelined transaction")
    a = ap.parse_args()
    cells = [(5000, 1, "pglz (default)"), (5000, a.group, "pglz (default)")] * 2
    cells += [(size, 1, name) for size in (5000, 100_000) for name in _STORAGE] * 2
    rows: list[list[object]] = []
    for size, group, storage in cells:
        with scratch_database(a.url) as (url, _):
            database = url.split("?", 1)[0].rsplit("/", 1)[1]
            calls = a.calls if size < 50_000 else a.calls // 3
            rate, client, server = asyncio.run(
                _row(url, database, calls, size, group, _STORAGE[storage]))
        rows.append([f"{size // 1000} KB", group, storage, rate, client, server, client + server])
    print(f"{a.calls} accepts per row, 20 concurrent, {os.cpu_count()} cores, "
          f"load average {loadavg()}")
    print(table(["body", "accepts per transaction", "body storage", "accepts/s", "client CPU ms",
                 "server CPU ms", "total CPU ms"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
