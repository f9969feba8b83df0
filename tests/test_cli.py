"""The `zerohour` console script: help, version, and errors as exit codes."""

from __future__ import annotations

import subprocess
import sys

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
