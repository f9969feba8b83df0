"""PE section hash signatures: .mdb and .msb.

Line: `PESectionSize:PESectionHash:MalwareName[:FLEVEL]` (size first, unlike .hdb); size may be `*`.
"""

from __future__ import annotations

from zerohour.errors import SignatureSyntaxError
from zerohour.scan.signatures.hdb import parse_hash_line


def parse_section_line(line: str) -> tuple[str, bytes, int | None, str] | None:
    fields = line.split(":")
    if len(fields) < 3:
        raise SignatureSyntaxError("expected PESectionSize:PESectionHash:MalwareName")
    return parse_hash_line(":".join([fields[1], fields[0], *fields[2:]]))
