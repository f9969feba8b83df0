"""zerohour's scan engine: ClamAV-format signatures, MIME and archive decomposition, limits.

    from zerohour.scan import Engine, load_database
    engine = Engine(load_database([Path("/var/lib/zerohour/db")]))
    report = engine.scan_bytes(message_bytes, name="msg-1")

The names below are imported on first use (PEP 562): a process that only needs
`zerohour.scan.filetype` or `.types` (the gateway's SMTP processes: they scan in worker
processes) does not load the engine, its decoders, numpy and libarchive (about 40 MB and
0.8 s per process).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zerohour.scan.database import Database, load_database
    from zerohour.scan.dbpaths import default_db_dirs
    from zerohour.scan.engine import Engine
    from zerohour.scan.limits import Limits
    from zerohour.scan.types import FileType, Finding, FindingKind, LayerInfo, ScanReport

_WHERE = {"Database": "database", "default_db_dirs": "dbpaths", "load_database": "database",
          "Engine": "engine", "Limits": "limits", "FileType": "types", "Finding": "types",
          "FindingKind": "types", "LayerInfo": "types", "ScanReport": "types"}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'zerohour.scan' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"zerohour.scan.{where}"), name)
    globals()[name] = value
    return value


__all__ = [
    "Database",
    "Engine",
    "FileType",
    "Finding",
    "FindingKind",
    "LayerInfo",
    "Limits",
    "ScanReport",
    "default_db_dirs",
    "load_database",
]
