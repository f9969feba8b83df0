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

# Command groups, in the order `zerohour --help` lists them.
GROUPS = (
    "scan",
    "gateway",
    "milter",
    "config_cmd",
    "hold",
    "quarantine",
    "queue",
    "status",
    "reload",
    "provider",
    "keys",
    "admin",
    "demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zerohour",
        description="E-mail gateway with zero-hour outbreak protection.",
    )
    parser.add_argument("--version", action="version", version=f"zerohour {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in GROUPS:
        try:
            module = importlib.import_module(f"zerohour.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"zerohour.cli.{name}":
                continue  # group not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
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
