#!/usr/bin/env python3
"""CPU per scan of bench/smtp.py's message kinds, in one process, as a scanner worker does it.

The gateway scans each message in a worker process; this runs that worker's scan function
(`gateway.scanner._scan`: the engine plus the summary) on the same four kinds of message the
SMTP benchmark sends (5 KB and 100 KB, plain and MIME), and on HTML newsletters in four scripts
(`newsletters.py`: what most HTML mail costs), with the starter database, and prints the CPU
time per scan. Compare two trees of the code by running it with each on PYTHONPATH:

    .venv/bin/python bench/scan_message.py
    PYTHONPATH=/tmp/old/src .venv/bin/python bench/scan_message.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import loadavg, table
from newsletters import WORDS, newsletter_mail
from smtp import Kind, kinds

from zerohour.gateway import scanner


def message(kind: Kind) -> bytes:
    """The message as the gateway scans it: for the plain kinds (-l), what smtp-source sends
    (its headers, then lines of a counter digit and 77 `X`, ending with one of 80 `X`: a
    body that looks like base64, so it is decoded as text carriers too), the MIME file for
    the others."""
    if kind.file is not None:
        return kind.body()
    head = (b"From: <sender@example.org>\r\nTo: <rcpt@example.com>\r\n"
            b"Date: Sat,  5 Dec 2026 20:37:20 +0000 (UTC)\r\nMessage-Id: <2b1f.0003.0000@vm>"
            b"\r\n\r\n")
    n = max(1, (kind.size - len(head) - 82) // 80)
    lines = [b"%d" % (i % 10) + b"X" * 77 + b"\r\n" for i in range(1, n + 1)]
    return head + b"".join(lines) + b"X" * 80 + b"\r\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scans", type=int, default=300, help="timed scans per kind")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (the best one counts)")
    a = ap.parse_args()
    scanner._init_worker([])
    rows = []
    with tempfile.TemporaryDirectory() as work:
        samples = [(kind.name, message(kind)) for kind in kinds(Path(work), quick=False)]
        samples += [(f"{lang} newsletter", newsletter_mail(lang)) for lang in WORDS]
        for name, data in samples:
            for _ in range(10):
                scanner._scan(data, "bench")
            best = float("inf")
            for _ in range(a.rounds):
                t0 = time.process_time()
                for _ in range(a.scans):
                    scanner._scan(data, "bench")
                best = min(best, (time.process_time() - t0) / a.scans)
            rows.append([name, len(data), f"{best * 1000:.2f}"])
    print(f"# load average: {loadavg()}")
    print(table(["message", "bytes", "CPU ms per scan (best round)"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
