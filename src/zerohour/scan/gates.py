"""Prefilters: does a layer hold a match of one pattern at all, before a decoder runs; which of
several magic numbers occur at all, before each one's offsets are searched for.

Why not `re` and `bytes.find`: a case-insensitive search (`(?i:begin)`, which gates the
uuencode and yEnc decoders on every text layer) steps through the buffer byte by byte in
Python's regex engine: about 550 us per 100 KB, a fifth of a 100 KB message's whole scan.
`bytes.find` of a 2-6 byte magic number walks 100 KB in 60-100 us, and the embedded-archive
search looks for five of them in every binary layer. Hyperscan's literal matcher answers in
7-16 us (measured on base64, text and a MIME message of 100 KB). Without hyperscan (not on
x86_64), or for a short buffer, `re` and `in` answer, with the same result.
"""

from __future__ import annotations

import re
import threading
from typing import Any

try:  # pragma: no cover - depends on the platform
    import hyperscan

    HAVE_HYPERSCAN = True
except ImportError:  # pragma: no cover
    HAVE_HYPERSCAN = False

_SHORT = 256  # below this, `re` or `in` costs no more than a call into hyperscan


class _Hyperscan:
    """One block-mode database (each expression reports once), compiled on first use in the
    process that scans, with a scratch per thread. `None` when hyperscan is missing or refuses
    an expression: the caller's Python fallback answers then."""

    def __init__(self, expressions: list[bytes], caseless: bool) -> None:
        self._expressions = expressions
        self._caseless = caseless
        self._db: Any = None
        self._failed = not HAVE_HYPERSCAN
        self._lock = threading.Lock()
        self._local = threading.local()

    def scan(self, data: bytes, on_match: Any) -> bool | None:
        """Run `on_match` on each expression found; None if hyperscan can't (use the
        fallback), True if `on_match` stopped the scan, else False."""
        if self._failed or len(data) < _SHORT:
            return None
        db = self._db or self._compile()
        if db is None:
            return None
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = hyperscan.Scratch(db)
        try:
            db.scan(data, match_event_handler=on_match, scratch=scratch)
        except hyperscan.ScanTerminated:
            return True
        return False

    def _compile(self) -> Any:
        with self._lock:
            if self._db is None and not self._failed:
                n = len(self._expressions)
                flags = hyperscan.HS_FLAG_SINGLEMATCH
                if self._caseless:
                    flags |= hyperscan.HS_FLAG_CASELESS
                db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
                try:
                    db.compile(expressions=self._expressions, ids=list(range(n)), elements=n,
                               flags=[flags] * n)
                except hyperscan.error:
                    self._failed = True
                    return None
                self._db = db
            return self._db


class Gate:
    """`gate(data)`: whether `pattern` (a regex that `re` and hyperscan read alike,
    case-insensitive unless told) occurs in `data`."""

    def __init__(self, pattern: bytes, caseless: bool = True) -> None:
        self.pattern = pattern
        self._re = re.compile(pattern, re.IGNORECASE if caseless else 0)
        self._hs = _Hyperscan([pattern], caseless)

    def __call__(self, data: bytes) -> bool:
        found = self._hs.scan(data, _stop)
        if found is None:
            return self._re.search(data) is not None
        return found


class Literals:
    """`literals.present(data)`: the indexes of those byte strings that occur in `data`."""

    def __init__(self, needles: tuple[bytes, ...]) -> None:
        self.needles = needles
        self._hs = _Hyperscan([_escape(n) for n in needles], caseless=False)

    def present(self, data: bytes) -> set[int]:
        seen: set[int] = set()

        def on_match(i: int, _from: int, _to: int, _flags: int, _ctx: object) -> None:
            seen.add(i)

        if self._hs.scan(data, on_match) is None:
            return {i for i, n in enumerate(self.needles) if n in data}
        return seen


def _escape(needle: bytes) -> bytes:
    """A literal as a hyperscan expression (every byte as \\xNN: NUL bytes included)."""
    return b"".join(b"\\x%02x" % c for c in needle)


def _stop(_id: int, _from: int, _to: int, _flags: int, _ctx: object) -> bool:
    return True
