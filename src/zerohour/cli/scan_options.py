"""clamscan's option syntax for `zerohour scan`, and the mapping of those options to `Limits`.

clamscan users script around its options, so `zerohour scan` takes them as clamscan 1.4 does:
- booleans as `--opt` or `--opt=yes|no|true|false|1|0` (any case; never a separate word, which
  would be a path);
- sizes (`--max-filesize`, `--max-scansize`) as digits with an optional `K`, `M` or `G` (any
  case), octal with a leading 0, as clamscan's strtoul does; numbers (`--max-files`,
  `--max-recursion`, `--max-scantime` in milliseconds) as plain decimal digits;
- 0 as "no limit" (`--max-recursion=0` means the default, with a warning);
- an option's first occurrence wins (but -d adds up);
- paths anywhere among the options.

The CLI's defaults are clamscan's: a limit or an encrypted, broken or unsupported container is
a finding only when asked for (`--alert-*`). The engine's own `Limits()` defaults stay fail
closed: the gateway builds its engines from those, never from this module.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from zerohour.scan.limits import Limits

TRUE_WORDS = frozenset({"yes", "true", "1"})
FALSE_WORDS = frozenset({"no", "false", "0"})
_SIZE = re.compile(r"([0-9]+)([KMG]?)", re.IGNORECASE)
_NUMBER = re.compile(r"[0-9]+")
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}

#: clamscan 1.4's defaults (clamscan --help, clamd.conf).
DEFAULT_MAX_FILESIZE = 100 * 1024**2
DEFAULT_MAX_SCANSIZE = 400 * 1024**2
DEFAULT_MAX_FILES = 10_000
DEFAULT_MAX_RECURSION = 17
DEFAULT_MAX_SCANTIME_MS = 120_000
#: ClamAV refuses to scan anything larger than this (2 GiB - 1), whatever --max-filesize says.
CLAMAV_MAX_FILE = 2**31 - 1


def _bad(option: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"Incorrect argument format for option {option}")


def size_value(option: str) -> Any:
    """An argparse `type` for a clamscan size: `10M`, `1g`, `512k`, `1048576`, `0` (no limit)."""

    def parse(text: str) -> int:
        m = _SIZE.fullmatch(text)
        if m is None:
            raise _bad(option)
        digits, unit = m.groups()
        try:  # strtoul(..., 0): a leading 0 means octal
            value = int(digits, 8) if len(digits) > 1 and digits[0] == "0" else int(digits)
        except ValueError:
            raise _bad(option) from None
        return value * _UNITS[unit.upper()]

    return parse


def number_value(option: str) -> Any:
    """An argparse `type` for a clamscan number: decimal digits only (`0x10`, `-1`, `1k` fail)."""

    def parse(text: str) -> int:
        if _NUMBER.fullmatch(text) is None:
            raise _bad(option)
        return int(text)

    return parse


@dataclass(frozen=True, slots=True)
class BoolOption:
    """A clamscan boolean: `--name`, `--name=yes|no`, and maybe a short letter."""

    name: str
    short: str | None
    help: str
    default: bool = False

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def off(self) -> str:
        """The hidden option string the `=no` spellings are rewritten to (see `normalise`)."""
        return f"--{self.name}=no"


class FirstWins(argparse.Action):
    """clamscan keeps an option's first occurrence and ignores the later ones
    (`-r --recursive=no` recurses, `--max-files=1 --max-files=7` allows one file)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        given: set[str] = namespace.__dict__.setdefault("_given", set())
        if self.dest in given:
            return
        given.add(self.dest)
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)


def add_bool(parser: argparse.ArgumentParser, opt: BoolOption) -> None:
    strings = [f"-{opt.short}", f"--{opt.name}"] if opt.short else [f"--{opt.name}"]
    parser.add_argument(*strings, dest=opt.dest, action=FirstWins, nargs=0, const=True,
                        default=opt.default, help=f"{opt.help} (=yes/no)")
    # argparse tries an exact option string before splitting at "=", so this literal string
    # is the "off" spelling; `normalise` rewrites every other spelling of it to this one.
    parser.add_argument(opt.off, dest=opt.dest, action=FirstWins, nargs=0, const=False,
                        help=argparse.SUPPRESS)


def normalise(args: Sequence[str], bools: Sequence[BoolOption]) -> list[str]:
    """Rewrite `--opt=<yes|no|...>` of boolean options to `--opt` / `--opt=no`; a bad value
    exits with clamscan's message (exit code 2)."""
    by_name = {f"--{b.name}": b for b in bools}
    out: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--":
            out.extend(args[i:])
            break
        name, eq, value = arg.partition("=")
        opt = by_name.get(name) if eq and arg.startswith("--") else None
        if opt is None:
            out.append(arg)
        elif value.lower() in TRUE_WORDS:
            out.append(name)
        elif value.lower() in FALSE_WORDS:
            out.append(opt.off)
        else:
            print(f"ERROR: Incorrect argument format for option {name}", file=sys.stderr)
            raise SystemExit(2)
    return out


class ClamscanArgumentParser(argparse.ArgumentParser):
    """The `scan` sub-parser: clamscan's `--bool=yes/no` spellings, and paths anywhere
    (`zerohour scan a -r b` scans a and b, as clamscan does)."""

    bool_options: tuple[BoolOption, ...] = ()

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        argv = normalise(list(sys.argv[1:] if args is None else args), self.bool_options)
        ns, extras = super().parse_known_args(argv, namespace)
        paths = [a for a in extras if a == "-" or not a.startswith("-")]
        if paths:
            ns.paths = [*(getattr(ns, "paths", None) or []), *paths]
            extras = [a for a in extras if not (a == "-" or not a.startswith("-"))]
        return ns, extras


# -- the CLI -> Limits mapping ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LimitOptions:
    """The limit and alert options as given (clamscan's units and counting)."""

    max_filesize: int = DEFAULT_MAX_FILESIZE
    max_scansize: int = DEFAULT_MAX_SCANSIZE
    max_files: int = DEFAULT_MAX_FILES
    max_recursion: int = DEFAULT_MAX_RECURSION
    max_scantime_ms: int = DEFAULT_MAX_SCANTIME_MS
    alert_exceeds_max: bool = False
    alert_encrypted_archive: bool = False
    alert_encrypted_doc: bool = False
    alert_broken: bool = False
    alert_unsupported: bool = False
    alert_html_script: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> LimitOptions:
        both = bool(args.alert_encrypted)
        return cls(
            max_filesize=args.max_filesize,
            max_scansize=args.max_scansize,
            max_files=args.max_files,
            max_recursion=args.max_recursion,
            max_scantime_ms=args.max_scantime,
            alert_exceeds_max=bool(args.alert_exceeds_max),
            alert_encrypted_archive=both or bool(args.alert_encrypted_archive),
            alert_encrypted_doc=both or bool(args.alert_encrypted_doc),
            alert_broken=bool(args.alert_broken),
            alert_unsupported=bool(args.alert_unsupported),
            alert_html_script=bool(args.alert_html_script),
        )

    def warnings(self) -> list[str]:
        """What clamscan says about the values before it scans (same wording)."""
        out = []
        if self.max_recursion == 0:
            out.append("MaxRecursion: the value of 0 is not allowed, using default: "
                       f"{DEFAULT_MAX_RECURSION}")
        if self.max_filesize > CLAMAV_MAX_FILE:
            out.append(f"Max file-size was set to {self.max_filesize} bytes. Unfortunately, "
                       f"scanning files greater than {CLAMAV_MAX_FILE} bytes (2 GiB - 1) is "
                       "not supported.")
        return out

    def limits(self) -> Limits:
        """The engine's `Limits` that give clamscan's verdicts.

        clamscan counts the scanned file itself in --max-files and its own level in
        --max-recursion (a zip's member is level 2), our engine counts neither: both are one
        less here (measured against clamscan 1.4, tests/conformance/test_clamscan_cli.py).
        0 means no limit, except for --max-recursion (the default).
        """
        unlimited = 2**62
        recursion = self.max_recursion or DEFAULT_MAX_RECURSION
        return Limits(
            max_recursion=recursion - 1,
            max_files=self.max_files - 1 if self.max_files else unlimited,
            max_scan_size=self.max_scansize or unlimited,
            max_file_size=min(self.max_filesize or unlimited, CLAMAV_MAX_FILE),
            max_scan_time=self.max_scantime_ms / 1000 if self.max_scantime_ms else float(unlimited),
            alert_exceeds_max=self.alert_exceeds_max,
            alert_encrypted=self.alert_encrypted_archive,
            alert_encrypted_doc=self.alert_encrypted_doc,
            alert_broken=self.alert_broken,
            alert_unsupported=self.alert_unsupported,
            alert_html_script=self.alert_html_script,
        )

    def hard_deadline(self) -> float | None:
        """Seconds after which a scan's process is killed: twice --max-scantime (at least one
        second more), as the gateway's `scan.hard_timeout`; None without a scan time limit."""
        if not self.max_scantime_ms:
            return None
        limit = self.max_scantime_ms / 1000
        return limit + max(limit, 1.0)
