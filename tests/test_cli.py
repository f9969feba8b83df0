"""The `zerohour` console script: help, version, and errors as exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from zerohour import __version__


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zerohour", *args], capture_output=True, text=True, timeout=60
    )


def test_version() -> None:
    proc = run("--version")
    assert proc.returncode == 0
    assert __version__ in proc.stdout


def test_no_command_prints_help_and_fails() -> None:
    proc = run()
    assert proc.returncode == 2
    assert "usage: zerohour" in proc.stderr


def test_unknown_command_fails() -> None:
    proc = run("no-such-command")
    assert proc.returncode == 2


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path: Path) -> None:
    """`zerohour status | head -1`: the pipe closes before the output is written. That printed
    a BrokenPipeError traceback; now the command ends quietly with 141 (128 + SIGPIPE)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "zerohour", "status", "--data-dir", str(tmp_path / "d")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first line
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in err
    assert "BrokenPipe" not in err
