"""Each distinct child content once per container: a million copies of one file scan once.

Keyed by a BLAKE2b digest (not the bytes: a container's children need not all stay in
memory), plus whether a browser renders the child's name: the same bytes as `a.txt` and as
`invoice.html` are two children, since only the second is checked for script (`scripted`).
"""

from __future__ import annotations

import hashlib

from zerohour.scan import scripted


class Dedup:
    """The contents (and rendered-by-name flags) one container has yielded."""

    def __init__(self) -> None:
        self.seen: set[bytes] = set()

    def fresh(self, data: bytes, name: str | None = None) -> bool:
        """Whether `data` (named `name`) is new to this container; it is not, after this."""
        d = hashlib.blake2b(data, digest_size=16).digest()
        if scripted.rendered_by_name(name):
            d += b"r"
        if d in self.seen:
            return False
        self.seen.add(d)
        return True
