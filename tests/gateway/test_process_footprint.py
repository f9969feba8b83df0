"""The gateway's SMTP processes scan in worker processes: they must not load the engine, its
decoders, numpy or libarchive themselves (tens of MB per process, issue 11's 1,000-session
memory target), nor the database compiler (a reload compiles in a child process)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("zerohour.scan.engine", "zerohour.scan.decompose", "zerohour.scan.database",
         "zerohour.scan.dbcompile", "numpy", "libarchive")


def test_the_gateway_and_its_cli_do_not_import_the_engine() -> None:
    code = ("import sys, zerohour.cli.main as m, zerohour.gateway.app, zerohour.gateway.workers;"
            f"m.build_parser(); print(','.join(k for k in {HEAVY!r} if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout.strip()
    assert out == ""


def test_the_public_names_of_the_scan_package_still_import() -> None:
    from zerohour import scan

    assert scan.Engine.__name__ == "Engine"
    assert callable(scan.load_database)
    assert callable(scan.default_db_dirs)
