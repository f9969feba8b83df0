"""The clean cache: subtrees of a scan found clean, so the same bytes in the same place of a
later message are not taken apart again (ClamAV's `cache.c`, which clamd keeps for every
file it scans).

Mail repeats itself: the same logo, signature block, newsletter part or report goes to many
recipients in many messages. A layer below the message (an attachment, an archive member,
a decoded text block) that was scanned whole, with no finding, no limit, no error and nothing
it could not open, is remembered by what its verdict depends on:
- its SHA-256 and size (never MD5: an attacker can make an MD5 twin of a clean file);
- its name, whether it is an attachment, its depth, whether an ancestor is allow-listed, the
  ancestry the database's logical signatures test, whether it is inside a guess or an
  emulated image (`Engine._twin_key`).
The cache lives in one `Engine`, so a new database (a signature update, a reload) starts with
an empty one. The gateway's scan workers enable it (`scan.clean_cache_mb`); `zerohour scan`,
whose counts must equal clamscan's, does not.

What the walk takes from a remembered subtree is all it would have taken from scanning it:
- its layers (paths and depths moved to where it is now), so checksum notices, the scan trace
  and the admin views see every part, digests included;
- what it charged to the scan's budget (files, bytes, images' pixels): a replay that would
  pass a limit scans the subtree instead, and meets the limit as before;
- what it noted for the rest of the scan (`limits.Notes`): named files for joins across
  containers and layers a zlib stream may name as its dictionary, noted again in order.
A subtree is never remembered when its verdict could depend on the scan around it: a stream
that looked for a dictionary noted before it, a budget the joins could not take in full, a
layer skipped as the twin of one outside it, an image the emulator ran or decoded.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace

from zerohour.scan.limits import Notes, ScanContext
from zerohour.scan.types import LayerInfo

#: A layer's own bookkeeping besides its bytes (a `LayerInfo`, its digests as hex).
_LAYER_COST = 400
#: A PE section's digests (`SectionDigest`: a name, two digests as hex; round 30's F4 held
#: 96 a file, uncounted).
_SECTION_COST = 400
#: No entry takes more than this share of the cache.
_MAX_SHARE = 8


@dataclass(frozen=True, slots=True)
class Clean:
    """A subtree scanned whole and found clean, as the walk needs it again."""

    path: str  # where it was: the prefix of its layers' paths
    depth: int
    layers: tuple[LayerInfo, ...]
    notes: Notes
    files: int
    bytes: int
    pixels: int

    @property
    def cost(self) -> int:
        """Bytes it holds: its layers' records with their paths and names (a member of a
        folder with a 60,000-character name repeats it: round 29's F4), the named files and
        dictionaries it noted, and its twin keys (names again)."""
        notes = self.notes
        return (sum(_LAYER_COST + len(ly.path) + len(ly.name or "")
                    + _SECTION_COST * len(ly.pe_sections) for ly in self.layers)
                + sum(len(name) + len(data) + len(parent) + len(own)
                      for name, data, parent, own in notes.pieces)
                + sum(len(d) for d in notes.dictionaries)
                + sum(_LAYER_COST + len(str(t[1])) for t, _ in notes.twins) + len(self.path))

    def moved(self, path: str, depth: int) -> list[LayerInfo]:
        """Its layers as if found at `path`, `depth`."""
        cut, shift = len(self.path), depth - self.depth
        return [replace(ly, path=path + ly.path[cut:], depth=ly.depth + shift)
                for ly in self.layers]

    def fits(self, ctx: ScanContext, pixel_budget: int) -> bool:
        """Whether charging it keeps the scan within its limits."""
        lim = ctx.limits
        return (ctx.files + self.files <= lim.max_files
                and ctx.total_bytes + self.bytes <= lim.max_scan_size
                and ctx.pixel_bytes + self.pixels <= pixel_budget)

    def replay(self, ctx: ScanContext, path: str) -> None:
        """Charge its budget and note again what it noted (paths moved to `path`)."""
        ctx.files += self.files
        ctx.total_bytes += self.bytes
        ctx.pixel_bytes += self.pixels
        cut = len(self.path)
        for data in self.notes.dictionaries:
            ctx.note_dictionary(data)
        for name, data, parent, own in self.notes.pieces:
            ctx.note_piece(name, data, path + parent[cut:], path + own[cut:])


class CleanCache:
    """Least recently used clean subtrees, within `limit` bytes. Thread-safe.

    `lookups` counts the parts looked up, `hits` those replayed (`used`): a found entry whose
    charges would pass a limit is scanned instead, and is no hit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.lookups = 0
        self.hits = 0
        self._entries: OrderedDict[tuple[object, ...], Clean] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...]) -> Clean | None:
        with self._lock:
            self.lookups += 1
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def used(self) -> None:
        """An entry `get` gave was replayed."""
        with self._lock:
            self.hits += 1

    def put(self, key: tuple[object, ...], entry: Clean) -> None:
        cost = entry.cost
        if cost * _MAX_SHARE > self.limit:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.size -= old.cost
            self._entries[key] = entry
            self.size += cost
            while self.size > self.limit:
                _, gone = self._entries.popitem(last=False)
                self.size -= gone.cost

    def __len__(self) -> int:
        return len(self._entries)
