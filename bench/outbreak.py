#!/usr/bin/env python3
"""Outbreak benchmark: real provider and gateway processes on loopback, three measurements.

1. Notice-to-hold latency per transport (stream, UDP, e-mail, poll; each alone, the others
   switched off by `ProviderGate`): the lab appends `outbreak.declared` (in this process, the same
   call `zerohour provider outbreak declare` makes: it wakes the provider server through its
   wake socket) and we time, from the append's commit, until the gateway's store shows the
   outbreak, i.e. until mail arriving now would be held (a plain SQLite reader polling every
   0.2 ms: sub-millisecond resolution). p50/p99 over --samples. For stream and UDP a probe
   subscriber beside the gateway splits the time into the provider's part and the gateway's
   (receive and verify, then apply and commit): "where the milliseconds go".
2. Fan-out: one provider, --subscribers stream clients simulated in another process (raw asyncio
   sockets); time from the append until every subscriber has read the notice.
3. Release: --messages held messages (smtp-source, 5 KB) released by a published signature
   (rescan + delivery to a sink), msgs/s, against the normal receive-scan-deliver rate of the
   same messages measured first in the same run.

Targets: stream and UDP p99 <= 10 ms, mail p99 <= 100 ms; 1,000 subscribers < 1 s; release
>= 80% of the normal rate.
A benchmark, not a test: it prints a table with the ratios and never asserts.

    .venv/bin/python bench/outbreak.py                    # full: 100 samples, 1000 subs, 10000 msgs
    .venv/bin/python bench/outbreak.py --quick            # smoke: 20 samples, 100 subs, 500 msgs
    .venv/bin/python bench/outbreak.py --only latency     # notice-to-hold and its breakdown only
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import httpx
from common import loadavg, ratio, table

from zerohour.demo.gate import POLL, STREAM, ProviderGate
from zerohour.demo.stack import GatewayOptions, GatewayProcess, MailSink, ProviderProcess
from zerohour.notices.envelope import open_envelope
from zerohour.notices.payload import parse_payload
from zerohour.provider import lab
from zerohour.provider.log import Provider
from zerohour.provider.push import MAIL_RATE, UDP_RATE
from zerohour.store.base import MessageState
from zerohour.store.sqlite import SqliteStore

SMTP_SOURCE = "/usr/sbin/smtp-source"
MAIL_SAMPLES = 10  # control mail is paced by the provider (two notices per sample)
CONTROL = "notices@example.test"


@dataclass(frozen=True)
class Setup:
    options: GatewayOptions
    blocked: tuple[str, ...]
    subscribes: bool = False


def setups(poll_interval: float) -> dict[str, Setup]:
    return {
        "stream": Setup(GatewayOptions(poll_interval=3600.0), ()),
        "udp": Setup(GatewayOptions(poll_interval=3600.0, udp=True), (STREAM, *POLL), True),
        "mail": Setup(
            GatewayOptions(poll_interval=3600.0, control_address=CONTROL), (STREAM, *POLL), True
        ),
        "poll": Setup(GatewayOptions(poll_interval=poll_interval), (STREAM,)),
    }


class Rig:
    """Provider (+ gate) + gateway + sink in `root`."""

    def __init__(self, root: Path, setup: Setup, heartbeat: float = 30.0) -> None:
        self.root = root
        self.sink = MailSink().start()
        self.provider = ProviderProcess(
            root / "provider", root / "provider.log", ("--heartbeat", str(heartbeat))
        ).start()
        self.gate: ProviderGate | None = None
        options = setup.options
        if setup.blocked:
            self.gate = ProviderGate(self.provider.url, setup.blocked).start()
            fields = {k: getattr(options, k) for k in options.__dataclass_fields__}
            options = GatewayOptions(**{**fields, "provider_url": self.gate.url})
        self.gateway = GatewayProcess(
            root / "gateway", root / "gateway.log", self.provider, self.sink.address, options
        ).start()
        if setup.subscribes:
            deadline = time.monotonic() + 60
            while "notice.subscribed" not in self.gateway.log_path.read_text():
                if time.monotonic() > deadline:
                    raise RuntimeError("gateway did not subscribe:\n" + self.gateway.log_tail())
                time.sleep(0.05)
        self.lab = Provider(self.provider.data_dir, create=False)

    def close(self) -> None:
        self.lab.close()
        self.gateway.stop()
        self.provider.stop()
        if self.gate is not None:
            self.gate.stop()
        self.sink.stop()


@contextmanager
def rig(root: Path, setup: Setup, heartbeat: float = 30.0) -> Iterator[Rig]:
    r = Rig(root, setup, heartbeat)
    try:
        yield r
    finally:
        r.close()


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


# -- 1. notice-to-hold latency ---------------------------------------------------------------


def seq_of(envelope: bytes) -> int:
    """The seq of a DSSE notice envelope (v1 `seq` or v2 `s`), unverified: timing only."""
    payload = json.loads(base64.b64decode(json.loads(envelope)["payload"]))
    return int(payload.get("s", payload.get("seq", 0)))


class Probe:
    """A second subscriber beside the gateway, receiving the same push as it does (a raw SSE
    socket, or a UDP subscription of its own): when it has a notice, the provider's part is
    done and the rest of notice-to-hold is the gateway's."""

    def __init__(self) -> None:
        self.seen: dict[int, float] = {}  # seq -> time.time() on arrival
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None

    def _got(self, seq: int) -> None:
        with self._cond:
            self.seen.setdefault(seq, time.time())
            self._cond.notify_all()

    def wait(self, seq: int, limit: float = 30.0) -> float | None:
        with self._cond:
            self._cond.wait_for(lambda: seq in self.seen, limit)
            return self.seen.get(seq)

    def _start(self, target: Callable[[], None]) -> None:
        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop = True


class StreamProbe(Probe):
    def __init__(self, provider_url: str, after: int) -> None:
        super().__init__()
        host, port = provider_url.removeprefix("http://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)))
        self.sock.sendall(
            f"GET /v1/notices/stream?after={after} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        )
        self._start(self._read)

    def _read(self) -> None:
        with contextlib.suppress(OSError, ValueError), self.sock.makefile("rb") as f:
            for line in f:
                if line.startswith(b"id: "):
                    self._got(int(line[4:]))

    def close(self) -> None:
        super().close()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class UdpProbe(Probe):
    def __init__(self, provider_url: str, lab_provider: Provider) -> None:
        super().__init__()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        token = lab_provider.add_gateway(f"probe-{os.getpid()}-{time.monotonic_ns()}")
        port = self.sock.getsockname()[1]
        resp = httpx.post(
            provider_url + "/v1/subscriptions",
            json={"gateway_id": os.urandom(32).hex(), "udp": f"127.0.0.1:{port}"},
            headers={"Authorization": f"Bearer {token}"},
        )
        resp.raise_for_status()
        self._start(self._read)

    def _read(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            with contextlib.suppress(ValueError, KeyError, TypeError):
                self._got(seq_of(data))

    def close(self) -> None:
        super().close()
        self.sock.close()


@dataclass(frozen=True)
class Sample:
    """One notice, in ms from the append's commit (None: not measured for this transport)."""

    append_ms: float  # the lab's append itself: sign, BEGIN IMMEDIATE, insert, fsync commit
    total_ms: float  # until the gateway's store shows the outbreak
    provider_ms: float | None  # until the probe beside the gateway had the notice
    applying_ms: float  # until the gateway's apply transaction began (`declared_at`)


def _latencies(r: Rig, samples: int, probe: Probe | None, pause: float = 0.05) -> list[Sample]:
    """Synchronous on purpose: a plain SQLite reader polling every 0.2 ms resolves the
    moment the gateway's commit is visible to well under a millisecond."""
    db = sqlite3.connect(r.gateway.data_dir / "zerohour.sqlite3", timeout=30)
    query = "SELECT declared_at FROM outbreaks WHERE outbreak_id=? AND ended_at IS NULL"
    out: list[Sample] = []
    try:
        for i in range(samples):
            a = time.perf_counter()
            seq, spec = lab.declare(r.lab, name=f"Bench.Latency.{i}")
            t0 = time.perf_counter()  # the append is committed
            w0 = time.time()
            while (row := db.execute(query, (spec.outbreak_id,)).fetchone()) is None:
                if time.perf_counter() - t0 > 120:
                    raise RuntimeError("outbreak never applied:\n" + r.gateway.log_tail())
                time.sleep(0.0002)
            total = time.perf_counter() - t0
            seen = probe.wait(seq) if probe is not None else None
            out.append(
                Sample(
                    (t0 - a) * 1000,
                    total * 1000,
                    None if seen is None else (seen - w0) * 1000,
                    (float(row[0]) - w0) * 1000,
                )
            )
            lab.end(r.lab, spec.outbreak_id)
            while db.execute(
                "SELECT 1 FROM outbreaks WHERE ended_at IS NULL"
            ).fetchone():  # another process's store
                if time.perf_counter() - t0 > 120:
                    raise RuntimeError("end never applied:\n" + r.gateway.log_tail())
                time.sleep(0.005)
            time.sleep(pause)
    finally:
        db.close()
    return out


def _probe(name: str, r: Rig) -> Probe | None:
    if name == "stream":
        return StreamProbe(r.provider.url, r.lab.head())
    if name == "udp":
        return UdpProbe(r.provider.url, r.lab)
    return None


def micro(root: Path, n: int = 200) -> list[list[object]]:
    """In-process costs of the steps that must remain: verify and parse one notice, and one
    durable SQLite commit (WAL, synchronous=FULL, as both the provider log and the gateway
    store commit) on this machine's disk."""
    p = Provider(root / "micro-provider")
    try:
        lab.declare(p, name="Bench.Micro")
        env = p.after(0, 1)[0][1]
        pinned = p.current_key()
    finally:
        p.close()
    keys = {pinned.keyid: pinned.public_key}
    verify: list[float] = []
    for _ in range(n):
        t = time.perf_counter()
        _, payload = open_envelope(env, keys)
        parse_payload(payload)
        verify.append((time.perf_counter() - t) * 1000)
    db = sqlite3.connect(root / "micro.sqlite3", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v BLOB)")
    commit: list[float] = []
    for _ in range(n // 4):
        t = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (v) VALUES (?)", (env,))
        db.execute("COMMIT")
        commit.append((time.perf_counter() - t) * 1000)
    db.close()
    return [
        ["in process", "verify (Ed25519) + parse one notice", pct(verify, 0.5), pct(verify, 0.99)],
        ["in process", "one SQLite commit (WAL, synchronous=FULL)", pct(commit, 0.5),
         pct(commit, 0.99)],
    ]  # fmt: skip


def bench_latency(
    root: Path, samples: int, poll_interval: float
) -> tuple[list[list[object]], list[list[object]]]:
    rows: list[list[object]] = []
    parts: list[list[object]] = micro(root)
    for name, setup in setups(poll_interval).items():
        print(f"latency: {name} ...", flush=True)
        with rig(root / f"lat-{name}", setup) as r:
            probe = _probe(name, r)
            time.sleep(0.3)  # the probe's stream/subscription is in place
            n, pause = samples, 0.05
            if name == "mail":  # the provider's mail bucket: a burst of 10, then 0.5/s
                n, pause = min(samples, MAIL_SAMPLES), 2 / MAIL_RATE
            if name == "udp":  # its UDP bucket (20/s): a dropped datagram is never polled here
                pause = 1.5 * 2 / UDP_RATE
            try:
                got = _latencies(r, n, probe, pause)
            finally:
                if probe is not None:
                    probe.close()
        label = f"{name} (interval {poll_interval:g} s)" if name == "poll" else name
        ms = [x.total_ms for x in got]
        target = {"stream": 10.0, "udp": 10.0, "mail": 100.0}.get(name)
        p99 = pct(ms, 0.99)
        rows.append(
            [
                f"notice-to-hold {label}",
                len(ms),
                pct(ms, 0.5),
                p99,
                max(ms),
                f"p99 <= {target:g} ms" if target else "(poll: bounded by interval)",
                ratio(target, p99) if target else None,
                ("yes" if p99 <= target else "NO") if target else "-",
            ]
        )
        if name in ("stream", "udp"):
            parts += breakdown(name, got)
    return rows, parts


def breakdown(name: str, got: list[Sample]) -> list[list[object]]:
    """Where the milliseconds of one transport go, p50 and p99 of each stage."""
    prov = [s.provider_ms for s in got if s.provider_ms is not None]
    gw_recv = [
        s.applying_ms - s.provider_ms for s in got if s.provider_ms is not None
    ]  # the gateway reads, parses, verifies and opens its transaction
    commit = [s.total_ms - s.applying_ms for s in got]
    stages: list[tuple[str, list[float]]] = [
        ("lab append (sign + fsync commit; before t0)", [s.append_ms for s in got]),
        ("provider: wake, read log, send", prov),
        ("gateway: receive, verify, begin apply", gw_recv),
        ("gateway: apply + fsync commit, seen by reader", commit),
        ("notice-to-hold (total)", [s.total_ms for s in got]),
    ]
    return [
        [name, stage, pct(v, 0.5), pct(v, 0.99)] if v else [name, stage, None, None]
        for stage, v in stages
    ]


# -- 2. fan-out to many stream subscribers ---------------------------------------------------


CHILD = r"""
import asyncio, json, sys, time, resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
host, port, n, after = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

async def one(ready):
    r, w = await asyncio.open_connection(host, port)
    w.write(f"GET /v1/notices/stream?after={after} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    await w.drain()
    while True:
        line = await r.readline()
        if line.startswith(b": zerohour"):
            break
    ready()
    while True:
        line = await r.readline()
        if not line:
            return None
        if line.startswith(b"id: ") and int(line[4:]) > after:
            t = time.time()
            w.close()
            return t

async def main():
    left = n
    done = asyncio.Event()
    def ready():
        nonlocal left
        left -= 1
        if left == 0:
            done.set()
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(one(ready)))
        if i % 100 == 99:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(done.wait(), 120)
    print("READY", flush=True)
    times = await asyncio.wait_for(asyncio.gather(*tasks), 120)
    print(json.dumps(times), flush=True)

asyncio.run(main())
"""


def bench_fanout(root: Path, subscribers: int) -> list[list[object]]:
    print(f"fan-out: {subscribers} stream subscribers ...", flush=True)
    with rig(root / "fanout", setups(60.0)["stream"]) as r:
        host, port = r.provider.url.removeprefix("http://").rsplit(":", 1)
        after = r.lab.head()
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, host, port, str(subscribers), str(after)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "READY":
                raise RuntimeError("subscribers did not connect")
            time.sleep(0.5)
            lab.declare(r.lab, name="Bench.Fanout")
            t0 = time.time()
            times = json.loads(child.stdout.readline())
            child.wait(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    got = [t - t0 for t in times if t is not None]
    ms = [x * 1000 for x in got]
    all_in = max(ms) if len(got) == subscribers else None
    return [
        [
            f"{subscribers} stream subscribers: all have it",
            len(got),
            pct(ms, 0.5),
            pct(ms, 0.99),
            all_in,
            "all < 1000 ms",
            ratio(1000.0, all_in),
            "yes" if all_in is not None and all_in < 1000 else "NO",
        ]
    ]


# -- 3. release rate vs normal rate ----------------------------------------------------------


def smtp_source(port: int, n: int, size: int, sessions: int) -> None:
    subprocess.run(
        [SMTP_SOURCE, "-s", str(sessions), "-m", str(n), "-l", str(size), "-c",
         "-f", "sender@outside.test", "-t", "user@example.test", f"127.0.0.1:{port}"],
        check=True, stdout=subprocess.DEVNULL, timeout=3600,
    )  # fmt: skip


async def _count(store: SqliteStore, state: MessageState) -> int:
    return (await store.count_by_state()).get(state, 0)


def wait_sink(sink: MailSink, n: int, limit: float = 3600) -> float:
    t0 = time.perf_counter()
    while len(sink.messages) < n:
        if time.perf_counter() - t0 > limit:
            raise RuntimeError(f"sink has {len(sink.messages)} of {n}")
        time.sleep(0.01)
    return time.perf_counter()


def bench_release(root: Path, n: int, size: int, sessions: int) -> list[list[object]]:
    with rig(root / "release", setups(60.0)["stream"]) as r:
        port = r.gateway.smtp_port

        async def run() -> tuple[float, float]:
            store = await SqliteStore.open(r.gateway.data_dir / "zerohour.sqlite3")
            try:
                print(f"release: normal rate, {n} messages ...", flush=True)
                t0 = time.perf_counter()
                await asyncio.to_thread(smtp_source, port, n, size, sessions)
                t1 = await asyncio.to_thread(wait_sink, r.sink, n)
                normal = n / (t1 - t0)

                _, spec = lab.declare(r.lab, name="Bench.Release")
                while not await store.outbreaks():  # noqa: ASYNC110 (another process)
                    await asyncio.sleep(0.01)
                print(f"release: holding {n} messages ...", flush=True)
                await asyncio.to_thread(smtp_source, port, n, size, sessions)
                while await _count(store, MessageState.HELD) < n:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
                sig = root / "release.hsb"
                sig.write_text(f"{'0' * 64}:7:Bench.Release.Sig\n")
                print("release: publishing the signature ...", flush=True)
                lab.publish(r.lab, [sig], [spec.outbreak_id])
                t2 = time.perf_counter()
                t3 = await asyncio.to_thread(wait_sink, r.sink, 2 * n)
                return normal, n / (t3 - t2)
            finally:
                await store.aclose()

        normal, release = asyncio.run(run())
    return [
        [f"normal receive+scan+deliver, {n} x {size} B", n, None, None, None,
         f"{normal:.0f} msgs/s", None, "-"],
        [f"release of {n} held (rescan+deliver)", n, None, None, None,
         f"{release:.0f} msgs/s (>= 80% of normal)", ratio(release, normal),
         "yes" if release >= 0.8 * normal else "NO"],
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    ap.add_argument("--samples", type=int, default=100, help="latency samples per transport")
    ap.add_argument("--poll-interval", type=float, default=1.0)
    ap.add_argument("--subscribers", type=int, default=1000)
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--size", type=int, default=5120)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--only", choices=["latency", "fanout", "release"], action="append")
    args = ap.parse_args(argv)
    if args.quick:
        args.samples, args.subscribers, args.messages = 20, 100, 500
    parts = args.only or ["latency", "fanout", "release"]
    root = Path(tempfile.mkdtemp(prefix="zerohour-bench-outbreak-"))
    print(f"data in {root}; load {loadavg()}; {os.cpu_count()} CPUs", flush=True)
    rows: list[list[object]] = []
    where: list[list[object]] = []
    if "latency" in parts:
        lat, where = bench_latency(root, args.samples, args.poll_interval)
        rows += lat
    if "fanout" in parts:
        rows += bench_fanout(root, args.subscribers)
    if "release" in parts:
        rows += bench_release(root, args.messages, args.size, args.sessions)
    print()
    print(
        table(
            ["measurement", "n", "p50 ms", "p99 ms", "max ms", "target", "target/actual", "met"],
            rows,
        )
    )
    print("\ntarget/actual > 1 means better than the target (for release: release/normal).")
    if where:
        print("\nWhere the milliseconds go (from the append's commit; a probe subscriber beside")
        print("the gateway marks the provider's part, the gateway store's declared_at its apply):")
        print(table(["transport", "stage", "p50 ms", "p99 ms"], where))
    print(f"load after: {loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
