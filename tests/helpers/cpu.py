"""CPU time in the build machine's seconds, for the linearity guards.

The scanner's tests bound the CPU time a hostile input may take (seconds, where the quadratic
paths they guard against took minutes). The bounds were set on the 2-core build machine. That
machine is a shared VM and some days it runs 2.5-3.5x slower (session 30: smtp-source to
smtp-sink 2,248 msgs/s against 7,849 the week before; one guard took 6.6 CPU s against its 5 s
bound, the whole suite 28 minutes against 14). `process_time()` here is
`time.process_time()` divided by how much slower this process runs a fixed reference workload
than the build machine did, never less than 1: on a fast machine the bounds stay as written,
on a slow one they stretch with it, and a quadratic path still fails them by minutes.
"""

from __future__ import annotations

import functools
import re
import statistics
import time

#: CPU seconds `_workload` takes on the build machine on a normal day. Measured in session 30
#: at 0.042 s (median of 5) while the machine ran benchmarks 2.6x slower than in session 29
#: (plain Postfix relay 298 against 771 msgs/s, same command), so a normal day is ~0.016 s.
REFERENCE_S = 0.016

_TEXT = b"".join(b"<p class=a%d>word &amp; %d</p>\n" % (i % 97, i) for i in range(20000))
_TAG = re.compile(rb"<(\w+)([^>]*)>")


def _workload() -> int:
    """Regular expressions, bytes methods and interpreted loops: what the scanner's text
    paths spend their time on."""
    seen: dict[bytes, int] = {}
    for m in _TAG.finditer(_TEXT):
        name = m.group(1)
        seen[name] = seen.get(name, 0) + len(m.group(2))
    total = 0
    for line in _TEXT.splitlines():
        words = line.split(b" ")
        total += len(words[0]) + len(words[-1])
    return total + len(seen)


@functools.cache
def slowdown() -> float:
    """How many times slower than the build machine this process runs (at least 1)."""
    times = []
    for _ in range(5):  # the median: this VM's speed drifts from one burst to the next
        t0 = time.process_time()
        _workload()
        times.append(time.process_time() - t0)
    return max(1.0, statistics.median(times) / REFERENCE_S)


def process_time() -> float:
    """`time.process_time()` in the build machine's seconds."""
    scale = slowdown()  # first: the calibration's own CPU time must not count
    return time.process_time() / scale
