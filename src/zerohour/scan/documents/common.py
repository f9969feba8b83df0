"""Small helpers the document decomposers share."""

from __future__ import annotations

import hashlib


class Dedup:
    """Each distinct child content once per document (blake2b digests, not the bytes)."""

    def __init__(self) -> None:
        self.seen: set[bytes] = set()

    def fresh(self, data: bytes) -> bool:
        d = hashlib.blake2b(data, digest_size=16).digest()
        if d in self.seen:
            return False
        self.seen.add(d)
        return True
