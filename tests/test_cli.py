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


def test_each_command_loads_only_its_own_group() -> None:
    """`zerohour hold ...` builds the parser from the hold group alone (start-up), and every
    command of the whole parser is in `GROUPS` under the module that registers it."""
    from zerohour.cli.main import GROUPS, _command, build_parser

    whole = build_parser()
    subs = next(a for a in whole._actions if a.dest == "command")
    assert list(subs.choices or {}) == list(GROUPS)
    for command in GROUPS:
        parser = build_parser(command)
        one = next(a for a in parser._actions if a.dest == "command")
        assert list(one.choices or {}) == [command]
    assert _command(["hold", "list"]) == "hold"
    assert _command(["--version"]) is None
    assert _command(["no-such-command"]) is None


def test_a_command_does_not_import_the_other_groups() -> None:
    code = """
import contextlib, io, sys
from zerohour.cli.main import main
with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):
    main(["config", "--help"])
print(",".join(m for m in ("zerohour.cli.hold", "zerohour.cli.scan", "zerohour.cli.provider")
               if m in sys.modules))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert proc.stdout.strip() == ""


def test_help_for_one_command_and_errors_inside_it() -> None:
    proc = run("hold", "--help")
    assert proc.returncode == 0
    assert "usage: zerohour hold" in proc.stdout
    proc = run("hold", "no-such-subcommand")
    assert proc.returncode == 2
    assert "usage: zerohour hold" in proc.stderr
