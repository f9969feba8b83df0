"""Cluster store bench: the per-message store work of a gateway, on SQLite and PostgreSQL, with
1, 2 and 3 nodes sharing one PostgreSQL.

Each "node" is a separate process doing exactly the store work the gateway does per message:
accept (body durable + message row + queue row committed, i.e. what must happen before the 250),
then deliver (claim under a lease, read the body, mark delivered, drop the body). `--sessions`
concurrent accept loops per node stand in for SMTP sessions; one delivery loop per node claims
from the shared queue. No SMTP and no scanning: this isolates what the store costs, which is what
differs between the backends (the SMTP/scan cost per message is in bench/smtp.py).

Body variants: `sqlite+spool` (the single-node default: fsync'd spool file, then a SQLite
commit), `pg+bodies` (bytea in the same PostgreSQL transaction as the row: one fsync'd commit),
`pg+path` (an fsync'd file on a path standing in for a shared file system, then a PostgreSQL
commit; on a real NFS mount every fsync is a network round trip, so this is its best case).

CPU per message counts the node processes AND the PostgreSQL server (every postgres process,
plus the CPU of backends that exited, from the postmaster's cutime/cstime), so the backends are
compared fairly. On a 2-core machine 2 and 3 nodes compete with PostgreSQL for the same cores:
the scaling rows show contention, not what separate machines would give.

    .venv/bin/python bench/cluster.py                 # full: 3000 msgs per node
    .venv/bin/python bench/cluster.py --quick         # 300 msgs per node
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import loadavg, table
from pg import DEFAULT_URL, StatementLog, postgres_cpu, scratch_database

from zerohour.gateway.spool import Spool, new_queue_id
from zerohour.store.base import MessageRecord, MessageState, Recipient, Store
from zerohour.store.bodies import PostgresBodies
from zerohour.store.postgres import PostgresStore
from zerohour.store.sqlite import SqliteStore

VARIANTS = ("sqlite+spool", "pg+bodies", "pg+path")


# one node (a child process) ------------------------------------------------------------------
async def node(args: argparse.Namespace) -> dict[str, Any]:
    variant: str = args.variant
    work = Path(args.work)
    store: Store
    spool = Spool(work / "spool")
    if variant == "sqlite+spool":
        store = await SqliteStore.open(work / "store.sqlite3")
    else:
        store = await PostgresStore.open(args.url, max_size=args.sessions + 2)
    pg_bodies = PostgresBodies(store) if variant == "pg+bodies" else None  # type: ignore[arg-type]
    # like an attachment: base64 of random bytes (compresses as poorly as real mail does)
    head = b"Subject: bench\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    raw = os.urandom(max(0, args.size - len(head)) * 3 // 4)
    body = head + base64.encodebytes(raw).replace(b"\n", b"\r\n")
    owner = f"node-{os.getpid()}"
    produced = 0
    delivered = 0
    done_producing = asyncio.Event()
    latencies: list[float] = []

    async def accept() -> None:
        nonlocal produced
        while produced < args.messages:
            produced += 1
            qid = new_queue_id()
            now = time.time()
            rec = MessageRecord(
                qid, "a@x.test", (Recipient("b@y.test"),), len(body), now, MessageState.QUEUED
            )
            t0 = time.perf_counter()
            if pg_bodies is not None:
                async with store.transaction():
                    await pg_bodies.write(qid, body)
                    await store.add_message(rec, reason="clean", queue_due=now)
            else:
                await spool.write(qid, body)
                await store.add_message(rec, reason="clean", queue_due=now)
            latencies.append(time.perf_counter() - t0)

    async def deliver() -> None:
        while True:
            batch = await store.claim_due(owner, time.time(), args.sessions, 60.0)
            if not batch:
                if done_producing.is_set():
                    return
                await asyncio.sleep(0.005)
                continue
            await asyncio.gather(*(one(entry.queue_id) for entry in batch))

    async def one(qid: str) -> None:
        """Like the gateway's delivery: concurrent, body read, then state and body in one go."""
        nonlocal delivered
        if pg_bodies is not None:
            await pg_bodies.read(qid)
            async with store.transaction():
                await store.transition(
                    qid, MessageState.DELIVERED, reason="250", actor="queue", queue_due=None
                )
                await pg_bodies.delete(qid)
        else:
            await spool.read(qid)
            await store.transition(
                qid, MessageState.DELIVERED, reason="250", actor="queue", queue_due=None
            )
            await spool.delete(qid)
        delivered += 1

    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # the parent starts every node at once
    cpu0 = _self_cpu()
    t0 = time.perf_counter()
    consumer = asyncio.create_task(deliver())
    await asyncio.gather(*(accept() for _ in range(args.sessions)))
    t_accept = time.perf_counter() - t0
    done_producing.set()
    await consumer
    elapsed = time.perf_counter() - t0
    cpu = _self_cpu() - cpu0
    await store.aclose()
    latencies.sort()
    return {
        "accepted": produced,
        "delivered": delivered,
        "elapsed": elapsed,
        "accept_elapsed": t_accept,
        "cpu": cpu,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
    }


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# the parent ------------------------------------------------------------------------------------
def run(variant: str, nodes: int, args: argparse.Namespace) -> dict[str, Any]:
    with scratch_database(args.url, count=args.count_statements) as (url, stmts):
        return _run(variant, nodes, args, url, stmts)


def _run(
    variant: str, nodes: int, args: argparse.Namespace, url: str, stmts: StatementLog | None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="zh-cluster-bench-") as tmp:
        procs = []
        for i in range(nodes):
            cmd = [
                sys.executable,
                __file__,
                "--node",
                "--variant",
                variant,
                "--url",
                url,
                "--work",
                tmp if variant == "pg+path" else f"{tmp}/n{i}",
                "--messages",
                str(args.messages),
                "--sessions",
                str(args.sessions),
                "--size",
                str(args.size),
            ]
            procs.append(
                subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            )
        for p in procs:
            assert p.stdout is not None
            if p.stdout.readline().strip() != "ready":
                raise SystemExit(f"node failed to start ({variant})")
        if stmts is not None:
            stmts.start()  # after the migration: only the per-message work is counted
        pg0 = postgres_cpu()
        t0 = time.perf_counter()
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        results = []
        for p in procs:
            out, _ = p.communicate(timeout=1800)
            if p.returncode != 0:
                raise SystemExit(f"node failed ({variant}): exit {p.returncode}")
            results.append(json.loads(out.strip().splitlines()[-1]))
        wall = time.perf_counter() - t0
        pg_cpu = postgres_cpu() - pg0 if variant != "sqlite+spool" else 0.0
    counted = stmts.count() if stmts is not None and variant != "sqlite+spool" else None
    total = sum(r["accepted"] for r in results)
    delivered = sum(r["delivered"] for r in results)
    node_cpu = sum(r["cpu"] for r in results)
    return {
        "variant": variant,
        "nodes": nodes,
        "messages": total,
        "delivered": delivered,
        "msgs_s": total / wall,
        "accept_s": total / max(r["accept_elapsed"] for r in results),
        "node_cpu_ms": 1000 * node_cpu / total,
        "pg_cpu_ms": 1000 * pg_cpu / total,
        "cpu_ms": 1000 * (node_cpu + pg_cpu) / total,
        "p50_ms": max(r["p50_ms"] for r in results),
        "p99_ms": max(r["p99_ms"] for r in results),
        "stmts": None if counted is None else counted[0] / total,
        "tx_stmts": None if counted is None else counted[1] / total,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--url", default=DEFAULT_URL, help="PostgreSQL server (a scratch database is made)"
    )
    ap.add_argument("--messages", type=int, default=3000, help="messages per node")
    ap.add_argument("--sessions", type=int, default=20, help="concurrent accepts per node")
    ap.add_argument("--size", type=int, default=5120, help="body bytes")
    ap.add_argument("--quick", action="store_true", help="300 messages per node")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help="single-node variants to run (comma-separated)")
    ap.add_argument("--nodes", default="2,3", help="extra node counts for pg+bodies")
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--count-statements",
        action="store_true",
        help="log every statement (log_statement=all, costs server CPU) and count them per "
        "message from the server log (bench/pg.py)",
    )
    ap.add_argument("--node", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--variant", default="pg+bodies", help=argparse.SUPPRESS)
    ap.add_argument("--work", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.node:
        print(json.dumps(asyncio.run(node(args))), flush=True)
        return 0
    if args.quick:
        args.messages = 300
    rows = [run(v, 1, args) for v in args.variants.split(",") if v]
    rows += [run("pg+bodies", int(n), args) for n in args.nodes.split(",") if n]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"{args.messages} msgs of {args.size} B per node, {args.sessions} concurrent accepts "
        f"per node, {os.cpu_count()} cores; CPU = node processes + PostgreSQL server; "
        f"load average {loadavg()}"
    )
    print(
        table(
            [
                "variant",
                "nodes",
                "msgs",
                "delivered",
                "msgs/s",
                "accept msgs/s",
                "CPU ms/msg",
                "node CPU ms",
                "PG CPU ms",
                "accept p50 ms",
                "accept p99 ms",
                "stmts/msg",
                "BEGIN/COMMIT/msg",
            ],
            [
                [
                    r["variant"],
                    r["nodes"],
                    r["messages"],
                    r["delivered"],
                    r["msgs_s"],
                    r["accept_s"],
                    r["cpu_ms"],
                    r["node_cpu_ms"],
                    r["pg_cpu_ms"],
                    r["p50_ms"],
                    r["p99_ms"],
                    r["stmts"],
                    r["tx_stmts"],
                ]
                for r in rows
            ],
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
