"""Where the signature database lives by default: light, so that processes that never load
a database (the gateway's SMTP processes: their scan workers do) need not import its code."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


def starter_db_dir() -> Path:
    """The bundled starter database: EICAR only, no real signatures."""
    return Path(__file__).resolve().parent.parent / "data" / "db"


def is_starter(dirs: Sequence[Path]) -> bool:
    """Is this the bundled starter database (no folders given, or exactly that folder)?"""
    return not dirs or [d.resolve() for d in dirs] == [starter_db_dir().resolve()]


def default_db_dirs() -> list[Path]:
    """The database used when none is given: `$ZEROHOUR_DB_DIR`, else the bundled starter db."""
    env = os.environ.get("ZEROHOUR_DB_DIR")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    bundled = starter_db_dir()
    return [bundled] if bundled.is_dir() else []
