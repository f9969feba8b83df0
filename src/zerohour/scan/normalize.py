"""ClamAV's text normalisation for target 7 (`libclamav/textnorm.c`, re-implemented).

Per byte: whitespace (`\\t \\n \\v \\f \\r` and space) becomes one space, runs collapse to one;
`A-Z` become lowercase; other control bytes and every byte >= 0x80 are dropped (without ending
a whitespace run); everything else is copied. ClamAV matches the result against target-7 and
target-0 signatures, so a target-0 pattern written in lowercase also finds upper-case text.
"""

from __future__ import annotations

import re

_WS = b"\t\n\x0b\x0c\r "
_DROP = bytes(b for b in range(256) if (b < 0x20 and b not in _WS) or b >= 0x80)
_TABLE = bytes.maketrans(
    bytes(range(0x41, 0x5B)) + _WS, bytes(range(0x61, 0x7B)) + b" " * len(_WS)
)
_RUNS = re.compile(b"  +")


def normalize_text(data: bytes) -> bytes:
    """The normalised form ClamAV's `cli_scanscript` matches target-7 signatures against."""
    return _RUNS.sub(b" ", data.translate(_TABLE, _DROP))
