"""`zerohour scan`: clamscan-like command line over the engine.

One line per file, `PATH: NAME FOUND` or `PATH: OK`; exit 0 if everything is clean, 1 if
something was found, 2 on errors (an error wins over clean, a finding wins over an error, as
with clamscan). Folders are walked recursively; `-` reads standard input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from zerohour.errors import ConfigError, ScanError
from zerohour.scan import Engine, ScanReport, default_db_dirs, load_database


def register(sub: Any) -> None:
    p = sub.add_parser("scan", help="scan files, folders or stdin (clamscan conventions)",
                       description=__doc__)
    p.add_argument("paths", nargs="*", metavar="PATH", help="file, folder, or - for stdin")
    p.add_argument("--db", action="append", type=Path, metavar="DIR",
                   help="signature folder (repeatable; default: the bundled starter db)")
    p.add_argument("--allmatch", action="store_true", help="report every match, not the first")
    p.add_argument("--json", action="store_true", help="one JSON object per file")
    p.add_argument("--db-info", action="store_true",
                   help="print database version, counts and warnings, then scan PATHs if any")
    p.add_argument("--strict", action="store_true", help="refuse a database with a bad line")
    p.add_argument("--no-heuristics", action="store_true",
                   help="do not report limit and encrypted-archive findings")
    p.set_defaults(func=run)


def _walk(paths: list[str]) -> Iterator[str]:
    for raw in paths:
        if raw == "-":
            yield raw
            continue
        p = Path(raw)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for f in sorted(files):
                    yield os.path.join(root, f)
        else:
            yield raw


def _line(path: str, report: ScanReport, as_json: bool) -> str:
    if as_json:
        return json.dumps({
            "path": path,
            "infected": report.infected,
            "findings": [{"name": f.name, "layer": f.path, "kind": f.kind.value}
                         for f in report.findings],
            "layers": len(report.layers),
            "db_version": report.db_version,
            "errors": list(report.errors),
        })
    if report.findings:
        return "\n".join(f"{path}: {name} FOUND" for name in dict.fromkeys(report.names))
    return f"{path}: OK"


def run(args: argparse.Namespace) -> int:
    dirs = args.db or default_db_dirs()
    if not dirs:
        raise ConfigError("no signature database: pass --db DIR (or set ZEROHOUR_DB_DIR)")
    db = load_database(dirs, strict=args.strict)
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
    if not args.paths:
        raise ConfigError("nothing to scan: give PATH... or -")
    engine = Engine(db, allmatch=args.allmatch, heuristics=not args.no_heuristics)
    found = errors = False
    for path in _walk(args.paths):
        try:
            if path == "-":
                report = engine.scan_bytes(sys.stdin.buffer.read(), "stdin")
                shown = "stdin"
            else:
                report = engine.scan_path(path)
                shown = path
        except ScanError as exc:
            errors = True
            if args.json:
                print(json.dumps({"path": path, "error": str(exc)}))
            else:
                print(f"{path}: {exc} ERROR")
            continue
        found = found or report.infected
        errors = errors or bool(report.errors)
        for err in report.errors:
            print(f"zerohour: {err}", file=sys.stderr)
        print(_line(shown, report, args.json), flush=False)
    sys.stdout.flush()
    return 1 if found else 2 if errors else 0
