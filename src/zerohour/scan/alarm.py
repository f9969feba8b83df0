"""MaxScanTime inside regular expressions: a timer signal in the process that scans.

The engine looks at its clock in its own loops (`ScanContext.check_time`); a regular expression
that backtracks for minutes never does, so a hostile layer could hold a scan until the hard
deadline killed its process. CPython's `re` does look for signals (every 4,096 steps of its
matcher: `_sre`'s MAYBE_CHECK_SIGNALS), and Python code runs a signal's handler between two
bytecodes. So a process that scans arms a timer (SIGALRM) for the scan's time budget, and the
handler raises `ScanLimitExceeded(MaxScanTime)` wherever the scan is: the engine records the
limit as it records its own checks. The timer repeats until the scan ends, lest a reading that
swallows the exception go on.

Only a process's main thread runs signal handlers: the gateway's scan workers and `zerohour
scan`'s scanning child arm it; elsewhere (an engine in a test or a benchmark) `armed` does
nothing. A scan interrupted so may have left a module's memo half-made: its process is
replaced after it answers (`Alarm.fired`).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from zerohour.errors import ScanLimitExceeded
from zerohour.scan.limits import MAX_SCAN_TIME

#: seconds between two more interruptions once the budget is spent
REPEAT = 0.25


@dataclass(slots=True)
class Alarm:
    seconds: float
    armed: bool = False
    fired: bool = False


_current: Alarm | None = None


def _on_alarm(_signum: int, _frame: FrameType | None) -> None:
    alarm = _current
    if alarm is None or not alarm.armed:
        return  # (a signal that was on its way as the scan ended)
    alarm.fired = True
    raise ScanLimitExceeded(MAX_SCAN_TIME, f"{alarm.seconds:g} s, interrupted")


@contextmanager
def armed(seconds: float) -> Iterator[Alarm]:
    """Interrupt what runs inside after `seconds` (and every `REPEAT` seconds after that)."""
    global _current
    alarm = Alarm(seconds)
    if threading.current_thread() is not threading.main_thread() or seconds <= 0:
        yield alarm
        return
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    _current, alarm.armed = alarm, True
    signal.setitimer(signal.ITIMER_REAL, seconds, REPEAT)
    try:
        yield alarm
    finally:
        alarm.armed = False  # first: a signal now on its way is ignored
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        _current = None
