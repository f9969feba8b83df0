"""Compact hash-signature index: millions of (size, digest) keys without millions of objects.

Per hash kind, every signature is one fixed-width record `size (8 bytes, big-endian) + digest` in
one sorted `bytes` blob; a lookup is a binary search over it (about 20 slice compares for a
million keys). `*` sizes use the reserved size 2**64-1, so "any size" is a second search. Names
live in one blob with an offset array, deduplicated, so 1M signatures cost ~ (record + 4 bytes)
each plus the distinct names, not 1M Python strings.
"""

from __future__ import annotations

import bisect
import struct
from array import array
from dataclasses import dataclass, field

ANY_SIZE = 2**64 - 1
_ANY_KEY = b"\xff" * 8
_DIGEST_LEN = {"md5": 16, "sha1": 20, "sha256": 32}


@dataclass(slots=True)
class NameTable:
    """Deduplicated names stored as one UTF-8 blob plus start offsets."""

    blob: bytes = b""
    starts: array[int] = field(default_factory=lambda: array("Q"))

    def get(self, i: int) -> str:
        start = self.starts[i]
        end = self.starts[i + 1] if i + 1 < len(self.starts) else len(self.blob)
        return self.blob[start:end].decode("utf-8", "replace")

    def __len__(self) -> int:
        return len(self.starts)


#: One sampled key per this many records: bisect (in C) over the samples, then a short search.
_STRIDE = 64


@dataclass(slots=True)
class HashTable:
    """Sorted fixed-width records for one digest kind."""

    width: int
    records: bytes = b""
    names: array[int] = field(default_factory=lambda: array("I"))
    _sparse: list[bytes] | None = field(default=None, repr=False, compare=False)
    _has_any: bool = field(default=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.names)

    def __getstate__(self) -> tuple[int, bytes, array[int]]:
        return (self.width, self.records, self.names)

    def __setstate__(self, st: tuple[int, bytes, array[int]]) -> None:
        self.width, self.records, self.names = st
        self._sparse = None
        self._has_any = False

    def _index(self) -> list[bytes]:
        """Every `_STRIDE`-th key, built on first use (not stored in the cache)."""
        sparse = self._sparse
        if sparse is None:
            w, recs = self.width, self.records
            sparse = [recs[i : i + w] for i in range(0, len(recs), w * _STRIDE)]
            self._has_any = bool(recs) and recs[len(recs) - w : len(recs) - w + 8] == _ANY_KEY
            self._sparse = sparse
        return sparse

    def _find(self, key: bytes) -> int:
        w, recs = self.width, self.records
        # The first key >= `key` lies in this block or is the next block's first record.
        block = max(bisect.bisect_left(self._index(), key) - 1, 0)
        start = block * _STRIDE * w
        end = min(start + (_STRIDE + 1) * w, len(recs))
        # One C substring search over the block instead of a Python binary search; a hit
        # must sit on a record boundary (a key could straddle two records by chance).
        pos = recs.find(key, start, end)
        while pos >= 0 and (pos - start) % w:
            pos = recs.find(key, pos + 1, end)
        if pos < 0:
            return -1
        # Equal keys sort by load order; ClamAV's hash table keeps the last one loaded.
        while recs[pos + w : pos + 2 * w] == key:
            pos += w
        return pos // w

    def lookup(self, size: int, digest: bytes) -> int:
        """Name index of a signature for this digest at this size (or any size); -1 if none."""
        i = self._find(struct.pack(">Q", size) + digest)
        if i < 0 and self._has_any:
            i = self._find(_ANY_KEY + digest)
        return self.names[i] if i >= 0 else -1

    def lookup_both(self, size: int, digest: bytes) -> list[int]:
        """Name indexes of the signature at this size and of the `*` one, as ClamAV reports
        both with --allmatch (`cli_hm_scan`, then `cli_hm_scan_wild`)."""
        out = []
        i = self._find(struct.pack(">Q", size) + digest)
        if i >= 0:
            out.append(self.names[i])
        if self._has_any:
            j = self._find(_ANY_KEY + digest)
            if j >= 0:
                out.append(self.names[j])
        return out


@dataclass(slots=True)
class HashIndex:
    """Hash signatures of one family (file hashes, PE section hashes, allow-list)."""

    tables: dict[str, HashTable]
    names: NameTable

    def lookup(self, kind: str, size: int, digest: bytes) -> str | None:
        table = self.tables.get(kind)
        if table is None or not len(table):
            return None
        i = table.lookup(size, digest)
        return self.names.get(i) if i >= 0 else None

    def lookup_all(self, kind: str, size: int, digest: bytes) -> list[str]:
        """Every signature name for this digest: the sized one, then the `*` one."""
        table = self.tables.get(kind)
        if table is None or not len(table):
            return []
        return [self.names.get(i) for i in table.lookup_both(size, digest)]

    def kinds(self) -> frozenset[str]:
        return frozenset(k for k, t in self.tables.items() if len(t))

    def count(self) -> int:
        return sum(len(t) for t in self.tables.values())

    def sizes_any(self) -> bool:
        """Whether any signature uses `*` (the engine then hashes layers of every size)."""
        for t in self.tables.values():
            w = t.width
            recs = t.records
            if recs and recs[len(recs) - w : len(recs) - w + 8] == b"\xff" * 8:
                return True
        return False


class HashIndexBuilder:
    """Collects records while the database loads, then sorts once."""

    def __init__(self) -> None:
        self._records: dict[str, list[bytes]] = {k: [] for k in _DIGEST_LEN}
        self._name_ids: dict[str, int] = {}
        self._names: list[str] = []

    def add(self, kind: str, digest: bytes, size: int | None, name: str) -> None:
        nid = self._name_ids.get(name)
        if nid is None:
            nid = self._name_ids[name] = len(self._names)
            self._names.append(name)
        # The name id rides along after the key so that one sort orders both.
        self._records[kind].append(
            struct.pack(">Q", ANY_SIZE if size is None else size) + digest + struct.pack(">I", nid)
        )

    def build(self) -> HashIndex:
        tables = {}
        for kind, recs in self._records.items():
            recs.sort()
            w = 8 + _DIGEST_LEN[kind]
            names = array("I", (struct.unpack_from(">I", r, w)[0] for r in recs))
            tables[kind] = HashTable(w, b"".join(r[:w] for r in recs), names)
            recs.clear()
        blob = bytearray()
        starts = array("Q")
        for n in self._names:
            starts.append(len(blob))
            blob += n.encode("utf-8")
        self._name_ids.clear()
        return HashIndex(tables, NameTable(bytes(blob), starts))
