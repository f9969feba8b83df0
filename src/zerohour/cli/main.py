"""`zerohour` entry point: builds the argument parser from the command-group modules.

Each command-group module exposes `register(subparsers)`, adding its parser(s) with
`set_defaults(func=...)`, where `func(args) -> int` returns the exit code. Errors from the one
exception tree become a message on stderr and exit code 2 here, in one place.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import cast

from zerohour import __version__
from zerohour.errors import ZerohourError

# Command -> the group module that registers it, in the order `zerohour --help` lists them.
GROUPS = {
    "scan": "scan",
    "gateway": "gateway",
    "milter": "milter",
    "config": "config_cmd",
    "hold": "hold",
    "quarantine": "quarantine",
    "queue": "queue",
    "status": "status",
    "reload": "reload",
    "provider": "provider",
    "keys": "keys",
    "admin": "admin",
    "demo": "demo",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or with `command` (one of `GROUPS`) only that command's group: a
    command imports only what it runs (`zerohour hold list` need not import the scanner;
    every group together costs ~0.5 s of start-up)."""
    parser = argparse.ArgumentParser(
        prog="zerohour",
        description="E-mail gateway with zero-hour outbreak protection.",
    )
    parser.add_argument("--version", action="version", version=f"zerohour {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in GROUPS.values() if command is None else (GROUPS[command],):
        importlib.import_module(f"zerohour.cli.{name}").register(sub)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The command `argv` names, if it is one of `GROUPS` (the top level has no option that
    takes a value, so the first word not starting with "-" is it)."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in GROUPS else None
        if arg == "--":
            return None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command(argv))
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return cast(Callable[[argparse.Namespace], int], func)(args)
    except ZerohourError as exc:
        print(f"zerohour: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `zerohour status | head`: the reader left. Say nothing (no traceback), and keep the
        # interpreter's final flush of stdout from raising again (Python's documented recipe).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a writer killed by the pipe
