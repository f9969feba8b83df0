"""zerohour's scan engine: ClamAV-format signatures, MIME and archive decomposition, limits.

    from zerohour.scan import Engine, load_database
    engine = Engine(load_database([Path("/var/lib/zerohour/db")]))
    report = engine.scan_bytes(message_bytes, name="msg-1")
"""

from __future__ import annotations

from zerohour.scan.database import Database, default_db_dirs, load_database
from zerohour.scan.engine import Engine
from zerohour.scan.limits import Limits
from zerohour.scan.types import FileType, Finding, FindingKind, LayerInfo, ScanReport

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
