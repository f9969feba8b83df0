#!/usr/bin/env python3
"""Delivery-only benchmark: CPU per message of draining a queued backlog to smtp-sink.

`bench/smtp.py` measures receipt, scanning and delivery together, on a machine where they share
one event loop and two cores; this isolates the delivery side. The gateway accepts N messages
while its next hop is down (each first attempt fails at once and is deferred for `--hold`
seconds), then smtp-sink comes up on that port and the queue drains. The gateway's process-tree
CPU is counted from the sink's start to the last delivery: claims, body reads, relaying,
recording, and nothing of receipt or scanning. The drain's wall time follows the retry times
(spread over the accept phase), so only CPU per message is reported.

    .venv/bin/python bench/deliver.py --messages 2000 --repeat 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import smtp
from common import loadavg, table

ROOT = Path(__file__).resolve().parent.parent


class SinkAt(smtp.Sink):
    """smtp-sink on a port chosen before it starts (the gateway's next hop, down until now)."""

    def __init__(self, port: int) -> None:
        chosen = smtp.free_port
        smtp.free_port = lambda: port
        try:
            super().__init__()
        finally:
            smtp.free_port = chosen


def spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy on the gateway for the drain (collapsed stacks to `out`)."""
    exe = os.environ.get("PY_SPY", "py-spy")
    args = ["record", "--pid", str(pid), "--subprocesses", "--idle", "--format", "raw"]
    return subprocess.Popen(
        [exe, *args, "--rate", "100", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def drain(
    base: Path, kind: smtp.Kind, n: int, hold: float, py_spy: Path | None = None
) -> tuple[float, float, str]:
    """(CPU ms per delivered message, drain seconds, note) for one backlog of `n` messages."""
    hop = smtp.free_port()
    conf = base / f"deliver-{hop}.toml"
    conf.write_text(f"[delivery]\nretry_min = {hold}\nretry_max = {hold}\n")
    gw = smtp.ZerohourGateway(base, hop, None, ["--config", str(conf)])
    gw.start()
    sink: SinkAt | None = None
    try:
        t0 = time.perf_counter()
        smtp.smtp_source(gw.port, kind, n, 20, reuse=False)
        accepted = time.perf_counter() - t0
        if accepted > hold * 0.8:
            return 0.0, 0.0, f"accept took {accepted:.1f} s: raise --hold"
        recorder = spy(gw.pids()[0], py_spy) if py_spy else None
        cpu0 = sum(smtp.tree_cpu_s(p) for p in gw.pids())
        t1 = time.perf_counter()
        sink = SinkAt(hop)
        while sink.count < n and time.perf_counter() - t1 < hold + 120:
            time.sleep(0.01)
        spent = time.perf_counter() - t1
        cpu = sum(smtp.tree_cpu_s(p) for p in gw.pids()) - cpu0
        if recorder is not None:
            recorder.send_signal(signal.SIGINT)
            recorder.wait(timeout=60)
        note = "" if sink.count >= n else f"only {sink.count}/{n} delivered"
        return cpu * 1000 / max(sink.count, 1), spent, note
    finally:
        if sink is not None:
            sink.stop()
        gw.stop()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--hold", type=float, default=30.0, help="seconds the backlog waits")
    ap.add_argument("--quick", action="store_true", help="5 KB kinds only")
    ap.add_argument(
        "--py-spy",
        type=Path,
        metavar="OUT",
        help="record each drain with py-spy (raw stacks to OUT.<kind>.<run>; $PY_SPY or PATH)",
    )
    a = ap.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="zh-deliver-"))
    work = ROOT / "bench" / "out" / "smtp"
    work.mkdir(parents=True, exist_ok=True)
    rows: list[list[object]] = []
    try:
        for kind in smtp.kinds(work, a.quick):
            for i in range(a.repeat):
                before = loadavg()
                out = None
                if a.py_spy:
                    out = a.py_spy.with_name(
                        f"{a.py_spy.name}.{kind.name.replace(' ', '_')}.{i + 1}"
                    )
                ms, spent, note = drain(base, kind, a.messages, a.hold, out)
                rows.append([kind.name, i + 1, a.messages, ms or None, spent or None, before, note])
                print(f"# {kind.name} #{i + 1}: {ms:.2f} ms/msg (load {before})", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"\n## drain a backlog to smtp-sink; {os.cpu_count()} cores; load now {loadavg()}\n")
    print(
        table(["message", "run", "messages", "CPU ms/msg", "drain s", "load before", "note"], rows)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
