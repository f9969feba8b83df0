"""Whole-file hash signatures: .hdb, .hsb, and the .fp/.sfp allow-lists (same syntax).

Line: `HashString:FileSize:MalwareName[:FLEVEL]`; the hash kind follows from its length
(32 MD5, 40 SHA1, 64 SHA256); `FileSize` may be `*` (any size).
"""

from __future__ import annotations

from collections.abc import Iterator

from zerohour.errors import SignatureSyntaxError
from zerohour.scan.signatures.model import FLEVEL

HASH_KINDS = {32: "md5", 40: "sha1", 64: "sha256"}


def parse_hash_line(line: str, *, wildcard_needs_flevel: bool = True
                    ) -> tuple[str, bytes, int | None, str] | None:
    """(kind, digest, size or None for `*`, name); None if its functionality levels exclude
    this engine. As readdb.c `cli_loadhash`: `Hash:Size:Name[:MinFL[:MaxFL]]`, a size of 0 is
    invalid, and `*` needs a MinFL of at least 73 (not in .imp files, which always had it)."""
    fields = line.split(":")
    if len(fields) < 3:
        raise SignatureSyntaxError("expected HashString:FileSize:MalwareName")
    if len(fields) > 5:
        raise SignatureSyntaxError("too many ':'-separated fields")
    hexdigest, size_s, name = fields[0], fields[1], fields[2]
    kind = HASH_KINDS.get(len(hexdigest))
    if kind is None:
        raise SignatureSyntaxError(f"hash of unknown length {len(hexdigest)}")
    try:
        digest = bytes.fromhex(hexdigest)
    except ValueError:
        raise SignatureSyntaxError("hash is not hex") from None
    min_fl = max_fl = None
    for i, what in ((3, "minimum"), (4, "maximum")):
        if len(fields) > i:
            if not fields[i].isdigit():
                raise SignatureSyntaxError(f"bad {what} functionality level {fields[i]!r}")
            if i == 3:
                min_fl = int(fields[i])
            else:
                max_fl = int(fields[i])
    if size_s == "*":
        size: int | None = None
        if wildcard_needs_flevel and (min_fl is None or min_fl < 73):
            raise SignatureSyntaxError("a '*' size needs a minimum functionality level >= 73")
    elif size_s.isdigit() and 0 < int(size_s) < 0xFFFFFFFF:
        size = int(size_s)
    else:
        raise SignatureSyntaxError(f"bad file size {size_s!r}")
    if not name:
        raise SignatureSyntaxError("empty signature name")
    if (min_fl is not None and min_fl > FLEVEL) or (max_fl is not None and max_fl < FLEVEL):
        return None
    return kind, digest, size, name


def iter_lines(text: str) -> Iterator[tuple[int, str]]:
    """Numbered non-empty, non-comment lines (ClamAV skips `#` comments and blank lines)."""
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield no, line
