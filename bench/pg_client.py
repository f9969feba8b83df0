"""What a PostgreSQL statement costs the client, by how psycopg is driven: the store's
async pool today, one async connection held, a synchronous connection (one by one,
pipelined, or called from the event loop through a thread per call).

Issue 11's cluster target asks PostgreSQL for >= 0.7x the SQLite rate. This measures the
ceiling of a client-side redesign (a thread with a synchronous pipelined connection): the
client CPU per statement each way, for a trivial `SELECT %s` (so the server's share is
small and alike), 4 concurrent callers where the mode allows it.

    .venv/bin/python bench/pg_client.py                 # 4000 calls per row
    .venv/bin/python bench/pg_client.py --calls 20000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import loadavg, table
from pg import DEFAULT_URL

_QUERY = "SELECT %s::int"


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _timed(calls: int, run: Callable[[], None]) -> list[float]:
    """(calls/s, client CPU us per call) of `run`."""
    c0, t0 = _cpu(), time.perf_counter()
    run()
    return [calls / (time.perf_counter() - t0), 1e6 * (_cpu() - c0) / calls]


_LOOP = asyncio.new_event_loop()  # (one loop: the pool and connections outlive a row)


def _async(calls: int, body: Callable[[int], Awaitable[None]], callers: int) -> None:
    async def all_of_them() -> None:
        await asyncio.gather(*(body(calls // callers) for _ in range(callers)))
    _LOOP.run_until_complete(all_of_them())


def main() -> int:
    import psycopg
    from psycopg_pool import AsyncConnectionPool

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL server")
    ap.add_argument("--calls", type=int, default=4000, help="statements per row")
    a = ap.parse_args()
    n = a.calls
    rows: list[list[object]] = []
    pool = AsyncConnectionPool(a.url, min_size=4, max_size=4, open=False,
                               kwargs={"autocommit": True})
    _LOOP.run_until_complete(pool.open(wait=True))
    held_conns = [_LOOP.run_until_complete(psycopg.AsyncConnection.connect(
        a.url, autocommit=True)) for _ in range(4)]

    def pooled() -> None:
        async def body(k: int) -> None:
            for _ in range(k):
                async with pool.connection() as c:
                    await (await c.execute(_QUERY, (1,))).fetchone()
        _async(n, body, 4)

    def held() -> None:
        turn = iter(held_conns)

        async def body(k: int) -> None:
            c = next(turn)
            for _ in range(k):
                await (await c.execute(_QUERY, (1,))).fetchone()
        _async(n, body, 4)

    conn = psycopg.connect(a.url, autocommit=True)

    def sync_each() -> None:
        for _ in range(n):
            conn.execute(_QUERY, (1,)).fetchone()

    def pipelined(batch: int) -> Callable[[], None]:
        def run() -> None:
            for _ in range(n // batch):
                with conn.pipeline():
                    cursors = [conn.execute(_QUERY, (1,)) for _ in range(batch)]
                for cur in cursors:
                    cur.fetchone()
        return run

    def thread_each() -> None:
        async def body(k: int) -> None:
            loop = asyncio.get_running_loop()
            for _ in range(k):  # (the loop's default executor, as `asyncio.to_thread`)
                await loop.run_in_executor(
                    None, lambda: conn.execute(_QUERY, (1,)).fetchone())
        _async(n, body, 1)

    conn.execute(_QUERY, (1,))
    for name, run in (
        ("async pool of 4 (the store today), 4 callers", pooled),
        ("async, one connection held by each of 4 callers", held),
        ("sync, one by one", sync_each),
        ("sync, pipelined by 4", pipelined(4)),
        ("sync, pipelined by 16", pipelined(16)),
        ("sync on a thread, one hand-off per call", thread_each),
    ):
        rows.append([name, *_timed(n, run)])
    conn.close()
    for c in held_conns:
        _LOOP.run_until_complete(c.close())
    _LOOP.run_until_complete(pool.close())
    print(f"{n} calls of {_QUERY!r} per row, {os.cpu_count()} cores, "
          f"load average {loadavg()}")
    print(table(["client", "calls/s", "client CPU us/call"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
