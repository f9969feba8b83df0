"""Compact hash-signature index: millions of (size, digest) keys without millions of objects.

Per hash kind, every signature is one fixed-width record `size (8 bytes, big-endian) + digest` in
one sorted `bytes` blob; a lookup is a binary search over it (about 20 slice compares for a
million keys). `*` sizes use the reserved size 2**64-1, so "any size" is a second search. Names
live in one blob with an offset array, deduplicated, so 1M signatures cost ~ (record + 4 bytes)
each plus the distinct names, not 1M Python strings.

A database compiled in parts (one per file or slice of a file, see `zerohour.scan.dbcompile`)
chains their indexes (`HashIndex.chain`): a lookup asks every part, and as in one index the
signature loaded last wins. `bulk_hash_rows` parses a whole file of plain hash lines with no
per-line objects beyond the fields (the slow, exact per-line parser remains the reference: the
bulk path declines any text it does not parse identically).

Speed paths, and why: a ClamAV-sized database has 4M hash lines, about half of a cold load's
CPU before they were written. The common `Hash:Size:Name` line is parsed from the file's bytes
by `bytes.split` into columns checked as a whole (`_plain_columns`, ~0.5 us a line; the regex
pass that remains for the other lines costs ~1 us), names stay bytes into the name blob, and
the sort moves its columns in 4-byte words (`_sorted_table`).
"""

from __future__ import annotations

import binascii
import bisect
import codecs
import re
import struct
import sys
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, repeat
from operator import itemgetter

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
    _sizes: array[int] | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.names)

    def __getstate__(self) -> tuple[int, bytes, array[int]]:
        return (self.width, self.records, self.names)

    def __setstate__(self, st: tuple[int, bytes, array[int]]) -> None:
        self.width, self.records, self.names = st
        self._sparse = None
        self._has_any = False
        self._sizes = None

    def distinct_sizes(self) -> array[int]:
        """The sizes signatures name (not `*`), sorted, each once; built on first use from
        the records' size columns by C-level strided slices (4M records: ~0.3 s, once)."""
        sizes = self._sizes
        if sizes is None:
            w, recs = self.width, self.records
            n = len(recs) // w
            packed = bytearray(8 * n)
            for j in range(8):  # big-endian size bytes into little-endian words
                packed[7 - j :: 8] = recs[j::w]
            column = array("Q", bytes(packed))
            if sys.byteorder == "big":
                column.byteswap()
            sizes = self._sizes = array("Q", sorted(set(column) - {ANY_SIZE}))
        return sizes

    def sizes_in(self, lo: int, hi: int) -> array[int]:
        """The distinct signature sizes in [lo, hi)."""
        sizes = self.distinct_sizes()
        return sizes[bisect.bisect_left(sizes, lo) : bisect.bisect_left(sizes, hi)]

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
        # Equal keys sort by load order; we report the last loaded (ClamAV: unspecified).
        while recs[pos + w : pos + 2 * w] == key:
            pos += w
        return pos // w

    def sized(self, size: int, digest: bytes) -> int:
        """Name index of the signature for this digest at exactly this size; -1 if none."""
        i = self._find(struct.pack(">Q", size) + digest)
        return self.names[i] if i >= 0 else -1

    def wild(self, digest: bytes) -> int:
        """Name index of the `*`-size signature for this digest; -1 if none."""
        self._index()
        if not self._has_any:
            return -1
        i = self._find(_ANY_KEY + digest)
        return self.names[i] if i >= 0 else -1

    def lookup(self, size: int, digest: bytes) -> int:
        """Name index of a signature for this digest at this size (or any size); -1 if none."""
        i = self.sized(size, digest)
        return i if i >= 0 else self.wild(digest)

    def lookup_both(self, size: int, digest: bytes) -> list[int]:
        """Name indexes of the signature at this size and of the `*` one, as ClamAV reports
        both with --allmatch (`cli_hm_scan`, then `cli_hm_scan_wild`)."""
        return [i for i in (self.sized(size, digest), self.wild(digest)) if i >= 0]


@dataclass(slots=True)
class HashIndex:
    """Hash signatures of one family (file hashes, PE section hashes, allow-list).

    `more` holds the indexes of later parts of the same database (`chain`), in load order.
    """

    tables: dict[str, HashTable]
    names: NameTable
    more: tuple[HashIndex, ...] = ()

    @classmethod
    def chain(cls, parts: Iterable[HashIndex]) -> HashIndex:
        """One index over several, in load order (a later part's signature wins a tie)."""
        flat = [q for p in parts for q in (p.replace(more=()), *p.more) if q.count()]
        if not flat:
            return HashIndexBuilder().build()
        return flat[0].replace(more=tuple(flat[1:]))

    def replace(self, *, more: tuple[HashIndex, ...]) -> HashIndex:
        return HashIndex(self.tables, self.names, more)

    def _parts(self) -> tuple[HashIndex, ...]:
        return (self, *self.more) if self.more else (self,)

    def _sized(self, kind: str, size: int, digest: bytes) -> str | None:
        for part in reversed(self._parts()):
            table = part.tables.get(kind)
            if table is not None and len(table):
                i = table.sized(size, digest)
                if i >= 0:
                    return part.names.get(i)
        return None

    def _wild(self, kind: str, digest: bytes) -> str | None:
        for part in reversed(self._parts()):
            table = part.tables.get(kind)
            if table is not None and len(table):
                i = table.wild(digest)
                if i >= 0:
                    return part.names.get(i)
        return None

    def lookup(self, kind: str, size: int, digest: bytes) -> str | None:
        found = self._sized(kind, size, digest)
        return found if found is not None else self._wild(kind, digest)

    def lookup_all(self, kind: str, size: int, digest: bytes) -> list[str]:
        """Every signature name for this digest: the sized one, then the `*` one."""
        return [n for n in (self._sized(kind, size, digest), self._wild(kind, digest)) if n]

    def kinds(self) -> frozenset[str]:
        return frozenset(k for p in self._parts() for k, t in p.tables.items() if len(t))

    def sizes_in(self, kind: str, lo: int, hi: int, limit: int) -> list[int]:
        """The smallest `limit` distinct sizes in [lo, hi) that `kind` signatures name."""
        found: set[int] = set()
        for part in self._parts():
            table = part.tables.get(kind)
            if table is not None and len(table):
                found.update(table.sizes_in(lo, hi)[:limit])
        return sorted(found)[:limit]

    def count(self) -> int:
        return sum(len(t) for p in self._parts() for t in p.tables.values())

    def sizes_any(self) -> bool:
        """Whether any signature uses `*` (the engine then hashes layers of every size)."""
        for p in self._parts():
            for t in p.tables.values():
                w = t.width
                recs = t.records
                if recs and recs[len(recs) - w : len(recs) - w + 8] == _ANY_KEY:
                    return True
        return False


class HashIndexBuilder:
    """Collects records while the database loads (by column: no object per record), then
    sorts once by (key, load order)."""

    def __init__(self) -> None:
        self._digests: dict[str, bytearray] = {k: bytearray() for k in _DIGEST_LEN}
        self._sizes: dict[str, array[int]] = {k: array("Q") for k in _DIGEST_LEN}
        self._nids: dict[str, array[int]] = {k: array("I") for k in _DIGEST_LEN}
        #: Names as UTF-8, in name-id order (bulk-loaded ones straight from the file's bytes).
        self._names: list[bytes] = []
        self._name_ids: dict[str, int] = {}  # for `add`: names repeat in hand-written files

    def add(self, kind: str, digest: bytes, size: int | None, name: str) -> None:
        self._digests[kind] += digest
        self._sizes[kind].append(ANY_SIZE if size is None else size)
        nid = self._name_ids.get(name)
        if nid is None:
            nid = self._name_ids[name] = len(self._names)
            # a name that is not UTF-8 (read with surrogateescape) keeps its signature: its odd
            # bytes become U+FFFD (clamscan 1.4 panics on such a line)
            self._names.append(name.encode("utf-8", "surrogateescape").decode(
                "utf-8", "replace").encode("utf-8"))
        self._nids[kind].append(nid)

    def add_columns(self, kind: str, digests: bytes, sizes: array[int],
                    names: Sequence[bytes]) -> None:
        """Many records at once: `digests` concatenated, `sizes` (ANY_SIZE for `*`), names
        (UTF-8)."""
        # Not deduplicated: names of bulk-loaded signatures are (nearly) all distinct, and a
        # dictionary of them would cost more than the repeats.
        self._digests[kind] += digests
        self._sizes[kind].extend(sizes)
        start = len(self._names)
        self._names.extend(names)
        self._nids[kind].extend(range(start, start + len(names)))

    def build(self) -> HashIndex:
        tables = {}
        for kind, dlen in _DIGEST_LEN.items():
            tables[kind] = _sorted_table(dlen, bytes(self._digests[kind]), self._sizes[kind],
                                         self._nids[kind])
            self._digests[kind] = bytearray()
        names = self._names
        self._names, self._name_ids = [], {}
        starts = array("Q", accumulate(map(len, names), initial=0))
        starts.pop()
        return HashIndex(tables, NameTable(b"".join(names), starts))


def _big_endian(arr: array[int]) -> bytes:
    if sys.byteorder == "little":
        arr = array(arr.typecode, arr)
        arr.byteswap()
    return arr.tobytes()


def _words(data: bytes) -> array[int]:
    """`data` as 4-byte words (native order: moving words moves their bytes unchanged)."""
    out = array("I")
    out.frombytes(data)
    return out


def _sorted_table(dlen: int, digests: bytes, sizes: array[int], nids: array[int]) -> HashTable:
    """Sort records `size + digest` by (key, load order) with C-level column shuffles: the
    only per-record Python work is one slice per record and the sort itself. Every width
    (8 + 16/20/32, + 4) is a multiple of 4: columns move in 4-byte words, a quarter of the
    strided copies bytes would take."""
    n = len(sizes)
    w = 8 + dlen
    if not n:
        return HashTable(w)
    sw = w + 4  # key, then the load order (big-endian) so that equal keys keep it
    w4, sw4, d4 = w // 4, sw // 4, dlen // 4
    rec = array("I", bytes(n * sw))
    size_w = _words(_big_endian(sizes))
    dig_w = _words(digests)
    seq_w = _words(_big_endian(array("I", range(n))))
    rec[0::sw4] = size_w[0::2]
    rec[1::sw4] = size_w[1::2]
    del size_w
    for j in range(d4):
        rec[2 + j::sw4] = dig_w[j::d4]
    del dig_w
    rec[w4::sw4] = seq_w
    del seq_w
    flat = codecs.latin_1_decode(rec)[0]  # str slices sort with a memcmp-like fast compare
    del rec
    keys = [flat[i : i + sw] for i in range(0, n * sw, sw)]
    del flat
    keys.sort()
    out = _words("".join(keys).encode("latin-1"))
    del keys
    records = array("I", bytes(n * w))
    for j in range(w4):
        records[j::w4] = out[j::sw4]
    seq = out[w4::sw4]
    del out
    if sys.byteorder == "little":
        seq.byteswap()
    # bulk-loaded columns number their names 0..n-1 in load order: the order is the names
    names = seq if nids == array("I", range(n)) else array("I", map(nids.__getitem__, seq))
    return HashTable(w, records.tobytes(), names)


#: `Hash:Size:Name[:MinFL[:MaxFL]]` lines with nothing unusual: ASCII, no spaces at the ends,
#: a decimal size or `*`. Anything else (comments, blank lines, CR, odd bytes) sends the whole
#: text to the exact per-line parser.
_PLAIN_HASH = re.compile(
    r"^([0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64}):(\*|[0-9]{1,10}):"
    r"([!-9;-~](?:[ !-9;-~]*[!-9;-~])?)(?::([0-9]{1,9})(?::([0-9]{1,9}))?)?$", re.M)
_SECTION_HASH = re.compile(
    r"^(\*|[0-9]{1,10}):([0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64}):"
    r"([!-9;-~](?:[ !-9;-~]*[!-9;-~])?)(?::([0-9]{1,9})(?::([0-9]{1,9}))?)?$", re.M)
_KIND_BY_LEN = {32: "md5", 40: "sha1", 64: "sha256"}


@dataclass(slots=True)
class HashRows:
    """What `bulk_hash_rows` parsed: columns per digest kind (digests, sizes, UTF-8 names),
    and the lines it left out."""

    columns: dict[str, tuple[bytes, array[int], list[bytes]]]
    loaded: int
    flevel_skipped: int


_LEADING_LF = re.compile(rb"\n*")


def bulk_hash_rows(text: str | bytes, *, flevel: int, sections: bool = False,
                   wildcard_needs_flevel: bool = True) -> HashRows | None:
    """Parse every line of a hash file (`sections`: .mdb/.msb field order) in one pass,
    exactly as `parse_hash_line` would; None when any line needs the per-line parser (a
    comment, a blank line inside, an error to report, anything not plainly ASCII). Best
    given the file's bytes as read (a `str` is encoded back first): a slice of plain lines
    takes the fast path (`_plain_columns`), any other the regex pass (`_hash_rows`)."""
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    # slices of a file are prefixed with newlines (line numbers): skipped, not copied
    m = _LEADING_LF.match(data)
    start = m.end() if m is not None else 0
    if start >= len(data):
        return None
    # In slices of whole lines: a line's fields cost a few hundred bytes as objects, so a
    # 32 MB piece parsed at once would hold ~150 MB of them (two compile workers: double).
    digests: dict[str, list[bytes]] = {}
    columns: dict[str, tuple[bytes, array[int], list[bytes]]] = {}
    loaded = skipped = 0
    while start < len(data):
        end = data.find(b"\n", start + _ROWS_SLICE) + 1 or len(data)
        seg = data[start:end]
        part = _plain_columns(seg, sections)
        if part is None:
            part = _hash_rows(seg.decode("utf-8", "surrogateescape"), flevel, sections,
                              wildcard_needs_flevel)
        del seg
        if part is None:
            return None
        loaded += part.loaded
        skipped += part.flevel_skipped
        for kind, (raw, sizes, names) in part.columns.items():
            digests.setdefault(kind, []).append(raw)
            have = columns.setdefault(kind, (b"", sizes, names))
            if have[1] is not sizes:
                have[1].extend(sizes)
                have[2].extend(names)
        start = end
    return HashRows({k: (b"".join(digests[k]), sz, nm) for k, (_d, sz, nm) in columns.items()},
                    loaded, skipped)


#: Bytes of hash lines parsed at once (see `bulk_hash_rows`).
_ROWS_SLICE = 4 << 20
#: The bytes a plain signature name may hold (printable ASCII but `:`), and the line break
#: that joins the names for one check.
_NAME_BYTES = bytes(range(0x20, 0x7F)).replace(b":", b"") + b"\n"


def _plain_columns(seg: bytes, sections: bool) -> HashRows | None:
    """The common case without a regex: every line `Hash:Size:Name` (`Size:Hash:Name` for
    sections), one digest kind, decimal sizes, plain names. Why: the regex pass cost ~1 us a
    line (a 32 MB piece: ~0.45 s of its ~1 s); `bytes.split` and column checks over joined
    fields do the same work in C for a handful of objects per line. Accepts exactly the
    lines `_PLAIN_HASH` / `_SECTION_HASH` accept with no level fields and no `*` size (the
    checks below are that regex, column by column); None otherwise: `_hash_rows` decides."""
    if not seg.isascii():
        return None
    lines = seg.split(b"\n")
    if not lines[-1]:
        lines.pop()  # the slice's last line break
    n = len(lines)
    # exactly three fields on every line: then the joined fields line up in columns
    if not n or list(map(bytes.count, lines, repeat(b":"))).count(2) != n:
        return None
    fields = b":".join(lines).split(b":")
    del lines
    hashes, sizes = (fields[1::3], fields[0::3]) if sections else (fields[0::3], fields[1::3])
    names = fields[2::3]
    del fields
    hlen = len(hashes[0])
    kind = _KIND_BY_LEN.get(hlen)
    if kind is None or list(map(len, hashes)).count(hlen) != n:
        return None
    try:
        digests = binascii.unhexlify(b"".join(hashes))  # only [0-9a-fA-F] pass
    except binascii.Error:
        return None
    del hashes
    lens = list(map(len, sizes))
    if min(lens) < 1 or max(lens) > 10 or not b"".join(sizes).isdigit():
        return None
    size_col = array("Q", map(int, sizes))
    if min(size_col) == 0 or max(size_col) >= 0xFFFFFFFF:
        return None  # an error the per-line parser reports
    joined = b"\n".join(names)
    if joined.translate(None, _NAME_BYTES) or b"" in names or joined[:1] == b" " \
            or joined[-1:] == b" " or b"\n " in joined or b" \n" in joined:
        return None
    return HashRows({kind: (digests, size_col, names)}, n, 0)


def _hash_rows(body: str, flevel: int, sections: bool,
               wildcard_needs_flevel: bool) -> HashRows | None:
    lines = body.count("\n") + (0 if body.endswith("\n") else 1)
    rows = (_SECTION_HASH if sections else _PLAIN_HASH).findall(body)
    if len(rows) != lines:
        return None
    if sections:
        rows = [(h, sz, n, lo, hi) for sz, h, n, lo, hi in rows]
    skipped = 0
    sizes_col = list(map(itemgetter(1), rows))
    if any(map(itemgetter(3), rows)) or "*" in sizes_col:
        kept = []
        for r in rows:
            lo = int(r[3]) if r[3] else None
            if r[1] == "*" and wildcard_needs_flevel and (lo is None or lo < 73):
                return None  # an error the per-line parser reports
            if r[1] != "*" and not 0 < int(r[1]) < 0xFFFFFFFF:
                return None  # likewise, even on a line its levels would skip
            if (lo is not None and lo > flevel) or (r[4] and int(r[4]) < flevel):
                skipped += 1
                continue
            kept.append(r)
        rows = kept
    by_kind: dict[str, list[tuple[str, str, str, str, str]]] = {}
    if len(set(map(len, map(itemgetter(0), rows)))) > 1:
        for r in rows:
            by_kind.setdefault(_KIND_BY_LEN[len(r[0])], []).append(r)
    elif rows:
        by_kind[_KIND_BY_LEN[len(rows[0][0])]] = rows
    columns = {}
    for kind, krows in by_kind.items():
        if skipped or len(by_kind) > 1 or "*" in sizes_col:
            sizes = array("Q", [ANY_SIZE if r[1] == "*" else int(r[1]) for r in krows])
        else:  # every row kept, one kind, no '*': the size column as it is
            sizes = array("Q", map(int, sizes_col))
        sized = [v for v in sizes if v != ANY_SIZE] if ANY_SIZE in sizes else sizes
        if sized and (min(sized) == 0 or max(sized) >= 0xFFFFFFFF):
            return None  # an error the per-line parser reports
        digests = binascii.unhexlify("".join([r[0] for r in krows]))
        # names are ASCII here (the regex): one encode, split back
        names = "\n".join(map(itemgetter(2), krows)).encode("ascii").split(b"\n")
        columns[kind] = (digests, sizes, names)
    return HashRows(columns, len(rows), skipped)
