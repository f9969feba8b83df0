"""`zerohour demo` as a user runs it: a subprocess that plays the whole outbreak story.

It must end with exit code 0 and a summary in which nothing infected was delivered and every clean
message arrived once; Ctrl-C in the middle must stop the provider and gateway it started.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.timeout(300)]


def demo_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "TMPDIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}


def row(out: str, kind: str) -> list[int]:
    m = re.search(rf"^{kind}\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$", out, re.M)
    assert m is not None, out
    return [int(g) for g in m.groups()]


def test_demo_plays_the_story_and_cleans_up(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "zerohour", "demo"],
        capture_output=True,
        text=True,
        timeout=280,
        env=demo_env(tmp_path),
        check=False,
    )
    out = res.stdout
    assert res.returncode == 0, out + res.stderr
    # sent, delivered, held, quarantined, rejected
    assert row(out, "clean") == [5, 5, 3, 0, 0]
    sent, delivered, held, quarantined, rejected = row(out, "infected")
    assert (sent, delivered, held) == (5, 0, 2)
    assert quarantined == 2  # the new virus, once the published signature covered it
    assert rejected == 3  # EICAR twice (starter database), the new virus after the restart
    assert "infected delivered = 0" in out
    assert "clean delivered exactly once: yes" in out
    assert "signatures kept over a restart: yes" in out  # issue 9: a restart forgot the bundle
    assert "RESULT: OK" in out
    assert "zerohour status --data-dir" in out  # where to look next
    assert list(tmp_path.iterdir()) == []  # temp folders removed without --keep


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie of an exited child is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_ctrl_c_stops_every_process(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "zerohour", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=demo_env(tmp_path),
    )
    pids: list[int] = []
    seen: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            pids += [int(p) for p in re.findall(r"\(pid (\d+)\)", line)]
            if "step 1" in line:
                break
        assert len(pids) == 2, "".join(seen)  # provider and gateway
        assert all(_alive(p) for p in pids)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, "".join(seen) + rest
    assert "interrupted" in rest
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids)
    assert list(tmp_path.iterdir()) == []
