"""`scan.alarm`: a timer signal stops a regular expression that never looks at the scan's clock
(CPython's `re` checks for signals as it matches). Run in a child process: pytest's own
timeout uses the same signal in this one."""

from __future__ import annotations

import subprocess
import sys
import textwrap

_CHILD = textwrap.dedent('''
    import re, threading, time
    from zerohour.errors import ScanLimitExceeded
    from zerohour.scan import alarm

    # a backtracking pattern (hours unstopped) is interrupted at the time given
    t0 = time.monotonic()
    try:
        with alarm.armed(0.3) as timer:
            re.search(rb"(a|aa)+b", b"a" * 48 + b"c")
    except ScanLimitExceeded as exc:
        assert exc.which == "MaxScanTime", exc.which
    else:
        raise AssertionError("not interrupted")
    assert timer.fired
    assert 0.25 < time.monotonic() - t0 < 3, time.monotonic() - t0

    # a reading that swallows the exception is interrupted again, until the scope ends
    hits = 0
    try:
        with alarm.armed(0.1):
            for _ in range(3):
                try:
                    re.search(rb"(a|aa)+b", b"a" * 48 + b"c")
                except ScanLimitExceeded:
                    hits += 1
            re.search(rb"(a|aa)+b", b"a" * 48 + b"c")
    except ScanLimitExceeded:
        hits += 1
    assert hits == 4, hits

    # what ends in time is not touched, and nothing fires after the scope
    with alarm.armed(0.2) as timer:
        pass
    time.sleep(0.5)
    assert not timer.fired

    # off the main thread it does nothing (signals are the main thread's)
    seen = []
    def off() -> None:
        with alarm.armed(0.05) as t:
            time.sleep(0.2)
        seen.append(t.fired)
    th = threading.Thread(target=off)
    th.start()
    th.join()
    assert seen == [False], seen
    print("ok")
''')


def test_the_timer_interrupts_a_regex_and_only_inside_its_scope() -> None:
    proc = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                          timeout=60)
    assert proc.stdout.strip() == "ok", proc.stderr
