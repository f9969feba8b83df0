"""Whole-file hash signatures: .hdb, .hsb, and the .fp/.sfp allow-lists (same syntax).

Line: `HashString:FileSize:MalwareName[:FLEVEL]`; the hash kind follows from its length
(32 MD5, 40 SHA1, 64 SHA256); `FileSize` may be `*` (any size).
"""

from __future__ import annotations

from collections.abc import Iterator

from zerohour.errors import SignatureSyntaxError
from zerohour.scan.signatures.model import FLEVEL

HASH_KINDS = {32: "md5", 40: "sha1", 64: "sha256"}


def parse_hash_line(line: str) -> tuple[str, bytes, int | None, str] | None:
    """(kind, digest, size or None for `*`, name); None if its functionality level is too high."""
    fields = line.split(":")
    if len(fields) < 3:
        raise SignatureSyntaxError("expected HashString:FileSize:MalwareName")
    hexdigest, size_s, name = fields[0], fields[1], fields[2]
    kind = HASH_KINDS.get(len(hexdigest))
    if kind is None:
        raise SignatureSyntaxError(f"hash of unknown length {len(hexdigest)}")
    try:
        digest = bytes.fromhex(hexdigest)
    except ValueError:
        raise SignatureSyntaxError("hash is not hex") from None
    if size_s == "*":
        size: int | None = None
    elif size_s.isdigit():
        size = int(size_s)
    else:
        raise SignatureSyntaxError(f"bad file size {size_s!r}")
    if not name:
        raise SignatureSyntaxError("empty signature name")
    if len(fields) > 3 and fields[3]:
        if not fields[3].isdigit():
            raise SignatureSyntaxError(f"bad functionality level {fields[3]!r}")
        if int(fields[3]) > FLEVEL:
            return None
    return kind, digest, size, name


def iter_lines(text: str) -> Iterator[tuple[int, str]]:
    """Numbered non-empty, non-comment lines (ClamAV skips `#` comments and blank lines)."""
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield no, line
