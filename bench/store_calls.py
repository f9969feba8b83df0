"""What each hot-path store call costs on PostgreSQL: the client (this process) and the server
(the backends of this run's connections), per call, with 20 concurrent callers.

The calls are the ones a message makes in the gateway: accept (body + row in a transaction),
`get_message` (twice per delivery), the body read, `set_recipients`, `transition` to delivered,
the body delete. Server CPU is read from /proc for the backends of a scratch database
(bench/pg.py), so other sessions on the server do not count; /proc's clock-tick granularity
needs a few thousand calls per row.

    .venv/bin/python bench/store_calls.py              # 4000 calls per row
    .venv/bin/python bench/store_calls.py --calls 10000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import loadavg, table
from pg import DEFAULT_URL, backend_cpu, scratch_database

from zerohour.gateway.spool import new_queue_id
from zerohour.store.base import MessageRecord, MessageState, Recipient, RecipientStatus
from zerohour.store.bodies import PostgresBodies
from zerohour.store.postgres import PostgresStore


async def _worker(call: Callable[[str], Awaitable[None]], pending: Iterator[str]) -> None:
    """One of the concurrent callers: takes ids from the shared iterator until it runs out."""
    for qid in pending:
        await call(qid)


def _self_cpu() -> float:
    t = os.times()
    return t.user + t.system


async def measure(url: str, database: str, n: int, sessions: int) -> list[list[object]]:
    store = await PostgresStore.open(url, min_size=sessions, max_size=sessions)
    bodies = PostgresBodies(store)
    body = os.urandom(3800)
    ids = [new_queue_id() for _ in range(n)]

    async def accept(qid: str) -> None:
        now = time.time()
        rec = MessageRecord(
            qid, "a@x.test", (Recipient("b@y.test"),), 5000, now, MessageState.QUEUED,
            summary={"subject": "bench", "attachments": []},
        )  # fmt: skip
        async with store.transaction():
            await bodies.write(qid, body)
            await store.add_message(rec, reason="clean", queue_due=now)

    async def get(qid: str) -> None:
        await store.get_message(qid)

    async def read(qid: str) -> None:
        await bodies.read(qid)

    async def rcpts(qid: str) -> None:
        await store.set_recipients(qid, {"b@y.test": (RecipientStatus.DELIVERED, "250 ok")})

    async def done(qid: str) -> None:
        await store.transition(
            qid, MessageState.DELIVERED, reason="1/1", actor="queue", queue_due=None
        )

    calls: list[tuple[str, Callable[[str], Awaitable[None]]]] = [
        ("accept (body + message, one transaction)", accept),
        ("get_message", get),
        ("body read", read),
        ("set_recipients", rcpts),
        ("transition to delivered", done),
        ("body delete", bodies.delete),
    ]
    rows: list[list[object]] = []
    try:
        for name, call in calls:
            server0 = backend_cpu(url, database)
            client0 = _self_cpu()
            t0 = time.perf_counter()
            shared = iter(ids)
            await asyncio.gather(*(_worker(call, shared) for _ in range(sessions)))
            elapsed = time.perf_counter() - t0
            client = _self_cpu() - client0
            server = sum(t - server0.get(p, 0.0) for p, t in backend_cpu(url, database).items())
            rows.append(
                [name, n / elapsed, 1000 * client / n, 1000 * server / n,
                 1000 * (client + server) / n]
            )  # fmt: skip
    finally:
        await store.aclose()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL server (a scratch db is made)")
    ap.add_argument("--calls", type=int, default=4000, help="calls per row")
    ap.add_argument("--sessions", type=int, default=20, help="concurrent callers")
    a = ap.parse_args()
    with scratch_database(a.url) as (url, _):
        database = url.split("?", 1)[0].rsplit("/", 1)[1]
        rows = asyncio.run(measure(url, database, a.calls, a.sessions))
    # a delivered message makes each call once, and get_message twice
    total = [sum(float(str(r[i])) for r in rows) + float(str(rows[1][i])) for i in (2, 3, 4)]
    rows.append(["per message (get_message twice)", None, *total])
    print(
        f"{a.calls} calls per row, {a.sessions} concurrent, {os.cpu_count()} cores, "
        f"load average {loadavg()}"
    )
    print(table(["call", "calls/s", "client CPU ms", "server CPU ms", "total CPU ms"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
