"""`zerohour scan`: a drop-in for clamscan 1.4's command line over the engine.

Same options and value syntax (scan_options.py), same output lines (`PATH: NAME FOUND`,
`PATH: OK`, `PATH: Empty file`, `PATH: Symbolic link`, `PATH: <reason> ERROR`), the same summary
block (scan_summary.py), the same walk (folders are scanned one level deep unless -r/--recursive,
symbolic links inside folders are listed, not followed) and exit codes: 0 clean, 1 found,
2 error (a finding wins over an error). Like clamscan, a limit, an encrypted, broken or
unsupported container is a finding only with its --alert-* option; the gateway keeps its own
fail-closed `Limits()`. Every file's scan runs under a hard deadline (scan_deadline.py).
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

from zerohour import __version__
from zerohour.cli.scan_actions import InfectedAction
from zerohour.cli.scan_deadline import DeadlineScanner
from zerohour.cli.scan_options import (
    DEFAULT_MAX_FILES,
    DEFAULT_MAX_FILESIZE,
    DEFAULT_MAX_RECURSION,
    DEFAULT_MAX_SCANSIZE,
    DEFAULT_MAX_SCANTIME_MS,
    BoolOption,
    ClamscanArgumentParser,
    FirstWins,
    LimitOptions,
    add_bool,
    number_value,
    size_value,
)
from zerohour.cli.scan_summary import Tally, summary_lines
from zerohour.errors import ConfigError, ScanError
from zerohour.scan.dbpaths import default_db_dirs
from zerohour.scan.types import FindingKind, LayerInfo, ScanReport

BOOLS = (
    BoolOption("recursive", "r", "scan subdirectories recursively"),
    BoolOption("allmatch", "z", "continue scanning within a file after a match; print every name"),
    BoolOption("infected", "i", "only print infected files"),
    BoolOption("suppress-ok-results", "o", "do not print OK files"),
    BoolOption("no-summary", None, "do not print the summary at the end"),
    BoolOption("debug", None, "print what the engine did per layer on stderr"),
    BoolOption("gen-json", None, "with --debug: print each file's layer tree as JSON"),
    BoolOption("remove", None, "remove infected files. Be careful!"),
    BoolOption("heuristic-alerts", None,
               "accepted for clamscan (default yes); =no keeps the --alert-* findings, as "
               "clamscan does, and every heuristic finding of ours has an --alert-* switch",
               True),
    BoolOption("heuristic-scan-precedence", None,
               "stop at the first heuristic finding (default: a signature found later wins)"),
    BoolOption("alert-exceeds-max", None,
               "a file over --max-filesize/--max-scansize/--max-files/--max-recursion/"
               "--max-scantime is a finding (Heuristics.Limits.Exceeded.*)"),
    BoolOption("alert-encrypted", None, "encrypted archives and documents are findings"),
    BoolOption("alert-encrypted-archive", None, "encrypted archives are findings"),
    BoolOption("alert-encrypted-doc", None, "encrypted documents (PDF) are findings"),
    BoolOption("alert-broken", None,
               "truncated or corrupt containers are findings (Heuristics.Broken.*)"),
    BoolOption("alert-broken-media", None,
               "accepted for clamscan; no effect (images are never judged broken)"),
    BoolOption("alert-unsupported", None,
               "zerohour's own: containers or methods it cannot open are findings "
               "(Heuristics.Unsupported.*; the gateway always alerts)"),
    BoolOption("alert-html-script", None,
               "zerohour's own: an HTML or SVG file that runs script when opened is a "
               "finding (Heuristics.HTML.Script; the gateway always alerts)"),
)


def register(sub: Any) -> None:
    p = sub.add_parser("scan", help="scan files, folders or stdin (a drop-in for clamscan)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.__class__ = ClamscanArgumentParser  # clamscan's --opt=yes/no and paths among options
    p.bool_options = BOOLS
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="file, folder, or - for stdin (default: the current folder)")
    p.add_argument("-V", "--version", action="store_true", help="print the version and exit")
    p.add_argument("-d", "--database", "--db", dest="database", action="append",
                   metavar="FILE/DIR",
                   help="signature file or folder (repeatable; default: $ZEROHOUR_DB_DIR, "
                        "else the bundled starter db)")
    for opt in BOOLS:
        add_bool(p, opt)
    p.add_argument("--move", action=FirstWins, metavar="DIR",
                   help="move infected files into DIR")
    p.add_argument("--copy", action=FirstWins, metavar="DIR",
                   help="copy infected files into DIR")
    p.add_argument("--max-filesize", action=FirstWins, type=size_value("--max-filesize"),
                   default=DEFAULT_MAX_FILESIZE, metavar="N[K|M|G]",
                   help="larger files are skipped, assumed clean (default 100M; 0: no limit)")
    p.add_argument("--max-scansize", action=FirstWins, type=size_value("--max-scansize"),
                   default=DEFAULT_MAX_SCANSIZE, metavar="N[K|M|G]",
                   help="most data scanned per file, members included (default 400M)")
    p.add_argument("--max-files", action=FirstWins, type=number_value("--max-files"),
                   default=DEFAULT_MAX_FILES,
                   metavar="N", help="most files scanned per file, itself included (10000)")
    p.add_argument("--max-recursion", action=FirstWins, type=number_value("--max-recursion"),
                   default=DEFAULT_MAX_RECURSION, metavar="N",
                   help="deepest container level, the file itself being 1 (17)")
    p.add_argument("--max-scantime", action=FirstWins, type=number_value("--max-scantime"),
                   default=DEFAULT_MAX_SCANTIME_MS, metavar="MS",
                   help="milliseconds per file, then skipped and assumed clean (120000; "
                        "a scan still running at twice this is killed: an ERROR)")
    p.add_argument("--json", action="store_true", help="one JSON object per file, no summary")
    p.add_argument("--db-info", action="store_true",
                   help="print database version, counts and warnings, then scan PATHs if any")
    p.add_argument("--strict", action="store_true", help="refuse a database with a bad line")
    p.add_argument("--no-heuristics", action="store_true",
                   help="no heuristic findings at all, whatever --alert-* says")
    p.set_defaults(func=run)


def _err(line: str) -> None:
    print(line, file=sys.stderr)


_CL_TYPES = {"zip": "CL_TYPE_ZIP", "mail": "CL_TYPE_MAIL", "rar": "CL_TYPE_RAR",
             "7z": "CL_TYPE_7Z", "gzip": "CL_TYPE_GZ", "bzip2": "CL_TYPE_BZ", "xz": "CL_TYPE_XZ",
             "tar": "CL_TYPE_POSIX_TAR", "pdf": "CL_TYPE_PDF", "ole2": "CL_TYPE_MSOLE2",
             "html": "CL_TYPE_HTML", "pe": "CL_TYPE_MSEXE", "elf": "CL_TYPE_ELF",
             "text": "CL_TYPE_TEXT_ASCII", "binary": "CL_TYPE_BINARY_DATA"}


def clam_json(name: str, report: ScanReport) -> dict[str, Any]:
    """The layer tree in the shape of clamscan's --gen-json (`CLAMJSONv0`), our type names
    mapped to ClamAV's where they have one."""
    viruses: dict[str, list[str]] = {}
    for f in report.findings:
        viruses.setdefault(f.path, []).append(f.name)

    def node(layer: LayerInfo) -> dict[str, Any]:
        out: dict[str, Any] = {
            "FileName": layer.name or os.path.basename(layer.path),
            "FileType": _CL_TYPES.get(layer.filetype.value,
                                      f"CL_TYPE_{layer.filetype.value.upper()}"),
            "FileSize": layer.size, "FileMD5": layer.md5,
        }
        if layer.path in viruses:
            out["Viruses"] = viruses[layer.path]
        return out

    root: dict[str, Any] = {"Magic": "CLAMJSONv0"}
    stack: list[dict[str, Any]] = []
    for layer in report.layers:
        n = node(layer)
        if layer.depth == 0:
            root.update({"RootFileType": n["FileType"], **n, "FileName": name})
            stack = [root]
            continue
        del stack[layer.depth:]
        if stack:
            stack[-1].setdefault("ContainedObjects", []).append(n)
        stack.append(n)
    return root


class _Run:
    """One `zerohour scan` run: the walk, the lines, the counts."""

    def __init__(self, args: argparse.Namespace, scanner: DeadlineScanner,
                 action: InfectedAction | None, tally: Tally, defer_heuristics: bool) -> None:
        self.args = args
        self.scanner = scanner
        self.action = action
        self.tally = tally
        self.defer_heuristics = defer_heuristics
        self.failed = False  # anything that makes the exit code 2 if nothing is found
        self.quiet = bool(args.infected)  # -i: infected files only

    def out(self, line: str) -> None:
        print(line)

    def debug(self, line: str) -> None:
        if self.args.debug:
            _err(f"zerohour debug: {line}")

    # -- the walk ------------------------------------------------------------------------------

    def target(self, raw: str) -> None:
        if raw == "-":
            data = sys.stdin.buffer.read()
            self.tally.read(len(data))
            self.scan(lambda: self.scanner.scan_bytes(data, "stdin"), "stdin", None)
            return
        path = raw.rstrip("/") or "/"
        try:
            st = os.stat(path)  # a link named on the command line is followed
        except OSError as exc:
            if os.path.islink(path):
                return  # a dangling link: clamscan passes it over without a word
            _err(f"{path}: {exc.strerror or exc}")
            _err(f"WARNING: {path}: Can't access file")
            self.failed = True
            return
        if stat.S_ISDIR(st.st_mode):
            self.directory(path)
        elif stat.S_ISREG(st.st_mode):
            self.file(path, st.st_size)
        else:
            _err(f"WARNING: {path}: Not supported file type")
            self.failed = True

    def directory(self, path: str) -> None:
        try:
            names = sorted(os.listdir(path))
        except OSError:
            if not self.quiet:
                self.out(f"{path}: Can't open directory.")
            self.tally.errors += 1
            self.failed = True
            return
        self.tally.dirs += 1
        for name in names:
            full = f"/{name}" if path == "/" else f"{path}/{name}"
            try:
                st = os.lstat(full)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                if not self.quiet:
                    self.out(f"{full}: Symbolic link")
            elif stat.S_ISDIR(st.st_mode):
                if self.args.recursive:  # without -r clamscan passes subfolders over silently
                    self.directory(full)
            elif stat.S_ISREG(st.st_mode):
                self.file(full, st.st_size)

    def file(self, path: str, size: int) -> None:
        if size == 0:
            if not self.quiet:
                self.out(f"{path}: Empty file")
            return
        self.tally.read(size)
        self.scan(lambda: self.scanner.scan_path(path), path, path)

    # -- one scanned object ----------------------------------------------------------------

    def names(self, report: ScanReport) -> list[str]:
        """The names to print: all with -z; else the first, where a signature found after a
        heuristic finding wins unless --heuristic-scan-precedence (clamscan's default)."""
        if self.args.allmatch:
            return list(dict.fromkeys(report.names))
        if self.defer_heuristics:
            sigs = [f.name for f in report.findings if f.kind is not FindingKind.HEURISTIC]
            if sigs:
                return sigs[:1]
        return list(report.names[:1])

    def scan(self, call: Any, shown: str, path: str | None) -> None:
        self.tally.files += 1
        try:
            report: ScanReport = call()
        except ScanError as exc:
            self.error(shown, str(exc))
            return
        self.tally.scanned(sum(layer.size for layer in report.layers))
        for layer in report.layers:
            self.debug(f"{layer.path}: {layer.filetype.value}, {layer.size} bytes, "
                       f"md5 {layer.md5}")
        for f in report.findings:
            self.debug(f"{f.path}: {f.name} ({f.kind.value})")
        if self.args.debug and self.args.gen_json:
            self.debug(json.dumps(clam_json(shown, report), indent=2))
        if self.args.json:
            self.out(json.dumps({
                "path": shown, "infected": report.infected,
                "findings": [{"name": f.name, "layer": f.path, "kind": f.kind.value}
                             for f in report.findings],
                "layers": len(report.layers), "db_version": report.db_version,
                "errors": list(report.errors),
            }))
        names = self.names(report)
        for err in report.errors:
            _err(f"zerohour: {err}")
        if names:
            self.tally.infected += 1
            if not self.args.json:
                for name in names:
                    self.out(f"{shown}: {name} FOUND")
            if self.action is not None and path is not None:
                self.act(path)
        elif report.errors:
            self.tally.errors += 1
            self.failed = True
            if not self.quiet and not self.args.json:
                self.out(f"{shown}: Scan error ERROR")
        elif not (self.quiet or self.args.suppress_ok_results or self.args.json):
            self.out(f"{shown}: OK")

    def error(self, shown: str, reason: str) -> None:
        self.tally.errors += 1
        self.failed = True
        if self.args.json:
            self.out(json.dumps({"path": shown, "error": reason}))
        elif not self.quiet:
            self.out(f"{shown}: {reason} ERROR")

    def act(self, path: str) -> None:
        assert self.action is not None
        line, problem = self.action.apply(path)
        if line is not None:
            self.out(line)
        if problem is not None:
            _err(f"ERROR: {problem}")
            if self.action.verb == "remove":
                self.tally.not_removed += 1
            else:
                self.tally.not_moved += 1


def run(args: argparse.Namespace) -> int:
    if args.version:
        print(f"zerohour {__version__}")
        return 0
    limits = LimitOptions.from_args(args)
    try:
        action = InfectedAction.from_options(args.move, args.copy, bool(args.remove))
    except ConfigError as exc:
        print(exc)  # on stdout, as clamscan
        return 2
    dirs = [os.path.expanduser(d) for d in args.database or []] or default_db_dirs()
    if not dirs:
        raise ConfigError("no signature database: pass -d FILE/DIR (or set ZEROHOUR_DB_DIR)")
    from zerohour.scan import Engine, load_database  # (not for `zerohour gateway run`)

    db = load_database([Path(d) for d in dirs], strict=args.strict)
    if args.db_info:
        info = db.info()
        if args.json:
            print(json.dumps(info.as_dict()))
        else:
            print(f"version: {info.version}")
            print(f"digest: {info.digest}")
            print(f"matcher: {info.backend}")
            for c in info.containers:
                print(f"container {c}")
            for k, v in sorted(info.counts.items()):
                print(f"{k}: {v}")
            for k, v in sorted(info.skipped.items()):
                print(f"skipped {k}: {v}")
            print(f"warnings: {len(info.warnings)}")
            for w in info.warnings:
                print(f"  {w}")
        if not args.paths:
            return 0
    for warning in limits.warnings():
        _err(f"zerohour: warning: {warning}")
    heuristics = not args.no_heuristics
    limits_cfg = limits.limits()
    any_alert = heuristics and (limits_cfg.alert_exceeds_max or limits_cfg.alert_encrypted
                                or limits_cfg.alert_encrypted_doc or limits_cfg.alert_broken
                                or limits_cfg.alert_unsupported or limits_cfg.alert_html_script)
    # clamscan's default: a heuristic finding does not stop the scan of a file, a signature
    # found later is what it reports. The engine stops at its first finding of any kind, so
    # here it walks on (allmatch) and `_Run.names` picks.
    defer = any_alert and not args.heuristic_scan_precedence and not args.allmatch
    engine = Engine(db, limits=limits_cfg, allmatch=bool(args.allmatch) or defer,
                    heuristics=heuristics, prefixes=False)  # (clamscan's hash semantics)
    tally = Tally(known=sum(n for k, n in db.counts.items() if k not in ("ign", "ign2")))
    r = _Run(args, DeadlineScanner(engine, limits.hard_deadline()), action, tally, defer)
    r.debug(f"database {db.version} from {', '.join(str(d) for d in db.dirs)}: "
            f"{dict(sorted(db.counts.items()))}")
    try:
        for raw in args.paths or [os.getcwd()]:
            r.target(raw)
    finally:
        r.scanner.close()
    if not args.no_summary and not args.json:
        for line in summary_lines(tally, __version__, copying=action is not None and
                                  action.verb == "copy"):
            print(line)
    sys.stdout.flush()
    return 1 if tally.infected else 2 if r.failed else 0
