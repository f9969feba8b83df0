"""Shared helpers for the bench scripts: process-tree memory sampling, tables, timing.

Peak memory is sampled from /proc for the whole process tree (a scanning pool has several
processes that share pages), so every engine is measured the same way: the maximum over time of
the summed PSS of the tree, and the highest single-process VmHWM (what `time -v` would report).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as fh:
                    out.extend(int(x) for x in fh.read().split())
            except OSError:
                pass
    except OSError:
        pass
    return out


def process_tree(pid: int) -> list[int]:
    """The pid and all its descendants (from /proc/*/task/*/children)."""
    seen: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        todo.extend(_children(p))
    return seen


def _kb_field(path: str, key: str) -> int:
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


@dataclass
class MemPeak:
    pss_tree_kb: int = 0
    hwm_max_kb: int = 0

    @property
    def pss_mb(self) -> float:
        return self.pss_tree_kb / 1024

    @property
    def hwm_mb(self) -> float:
        return self.hwm_max_kb / 1024


class MemSampler:
    """Samples a process tree's memory every `interval` seconds in a thread until stopped."""

    def __init__(self, pid: int | list[int], interval: float = 0.05) -> None:
        self.pids = [pid] if isinstance(pid, int) else list(pid)
        self.interval = interval
        self.peak = MemPeak()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        pss = 0
        for p in {q for root in self.pids for q in process_tree(root)}:
            pss += _kb_field(f"/proc/{p}/smaps_rollup", "Pss:")
            hwm = _kb_field(f"/proc/{p}/status", "VmHWM:")
            self.peak.hwm_max_kb = max(self.peak.hwm_max_kb, hwm)
        self.peak.pss_tree_kb = max(self.peak.pss_tree_kb, pss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> MemSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain fixed-width table (also valid Markdown)."""
    cells = [[str(h) for h in headers]] + [[fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, r in enumerate(cells):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def fmt(c: object) -> str:
    """One table cell: None as "-", a float to about three significant digits."""
    if c is None:
        return "-"
    if isinstance(c, float):
        if c >= 100:
            return f"{c:.0f}"
        if c >= 10:
            return f"{c:.1f}"
        return f"{c:.2f}"
    return str(c)


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


class Stopwatch:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0


def loadavg() -> str:
    """The 1/5/15-minute load average: other work on the machine skews every number."""
    try:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return "?"
