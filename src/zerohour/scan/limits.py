"""Scan limits (ClamAV's defaults) and the per-scan budget that enforces them.

A `ScanContext` lives for one scanned object. The engine walks the layer tree and the decomposers
produce children; both charge the same budget so that a zip bomb, a deeply nested MIME message or
a slow pathological input costs bounded memory and time. Every overrun raises
`ScanLimitExceeded(which)` with `which` in ClamAV's naming (`MaxRecursion`, `MaxFiles`,
`MaxScanSize`, `MaxFileSize`, `MaxScanTime`) plus our own `CompressionRatio` and
`OverlappingFiles`; the engine turns it into `Heuristics.Limits.Exceeded.<which>` when
`alert_exceeds_max` is on.

Who charges what:
- `decompose.children()` (and the modules it dispatches to) call `charge_child(n)` for every
  child it yields (one file, `n` bytes, file-size bound), `check_time()` in loops, and
  `check_ratio()` / `output_bound()` around decompression.
- The engine calls `descend()` (a context manager) around the walk into a layer's children, so
  `depth` is the recursion level of the layer whose children are being produced.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from zerohour.errors import EncryptedContent, ScanLimitExceeded
from zerohour.scan.types import MemberMeta

_T = TypeVar("_T")

MiB = 1024 * 1024

MAX_RECURSION = "MaxRecursion"
MAX_FILES = "MaxFiles"
MAX_SCAN_SIZE = "MaxScanSize"
MAX_FILE_SIZE = "MaxFileSize"
MAX_SCAN_TIME = "MaxScanTime"
COMPRESSION_RATIO = "CompressionRatio"
OVERLAPPING_FILES = "OverlappingFiles"

LIMIT_NAMES = frozenset(
    {
        MAX_RECURSION,
        MAX_FILES,
        MAX_SCAN_SIZE,
        MAX_FILE_SIZE,
        MAX_SCAN_TIME,
        COMPRESSION_RATIO,
        OVERLAPPING_FILES,
    }
)

#: `EncryptedContent` formats that are documents (the rest are archives).
ENCRYPTED_DOCUMENTS = frozenset({"PDF", "OLE2", "Doc", "OOXML", "ODF"})


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds of one scan. Defaults are ClamAV 1.4's (clamd.conf) plus a compression-ratio bound.

    The ratio bound only applies once a decompressed member is larger than `ratio_min_size`, so
    that small highly compressible files (a page of zeros) are not flagged, while a bomb
    (kilobytes to gigabytes, ratios of 1000+) is stopped after at most a few MiB of output.
    """

    max_recursion: int = 17
    max_files: int = 10_000
    max_scan_size: int = 400 * MiB
    max_file_size: int = 100 * MiB
    max_scan_time: float = 120.0
    max_compression_ratio: int = 250
    ratio_min_size: int = 4 * MiB
    alert_exceeds_max: bool = True
    alert_encrypted: bool = True  # encrypted archives (clamscan --alert-encrypted-archive)
    alert_broken: bool = True  # truncated / corrupt containers: Heuristics.Broken.<Format>
    alert_unsupported: bool = True  # formats or methods we cannot open: Heuristics.Unsupported.*
    alert_encrypted_doc: bool = True  # encrypted documents (clamscan --alert-encrypted-doc)
    #: an HTML or SVG file (an attachment, an archive member, a decoded file) that runs script
    #: when opened: Heuristics.HTML.Script (`scan.scripted`), when no signature matched
    alert_html_script: bool = True
    #: ClamAV's MaxHTMLNormalize / MaxHTMLNoTags: HTML up to this size is matched in ClamAV's
    #: normalised copies (`zerohour.scan.htmlnorm`); larger HTML in our cheaper text
    #: normalisation instead (where clamscan would not normalise it at all).
    max_html_normalize: int = 40 * MiB
    max_html_notags: int = 8 * MiB

    def alerts_encrypted(self, fmt: str) -> bool:
        """Whether `Heuristics.Encrypted.<fmt>` is a finding: documents and archives are
        switched separately, as clamscan's --alert-encrypted-doc / --alert-encrypted-archive."""
        return self.alert_encrypted_doc if fmt in ENCRYPTED_DOCUMENTS else self.alert_encrypted


#: Layers up to this size are kept as possible zlib dictionaries, up to the total below.
_MAX_DICTIONARY = 256 * 1024
_MAX_DICTIONARY_BYTES = 16 * 1024 * 1024


@dataclass(slots=True)
class Notes:
    """What one layer's subtree noted for the rest of its scan: named files (for joins across
    containers) and possible zlib dictionaries, as `note_piece` and `note_dictionary` got them,
    and the layers it found clean whole (the engine's twin keys, and whether each was opened as
    a file), which a later copy in the same scan is not taken apart again for."""

    pieces: list[tuple[str, bytes, str, str]] = field(default_factory=list)
    dictionaries: list[bytes] = field(default_factory=list)
    twins: list[tuple[tuple[object, ...], bool]] = field(default_factory=list)


class ScanContext:
    """The budget of one scan: recursion depth, files, bytes and a deadline."""

    def __init__(
        self, limits: Limits | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits if limits is not None else Limits()
        self._clock = clock
        self.started = clock()
        self.deadline = self.started + self.limits.max_scan_time
        self.depth = 0
        self.files = 0
        self.total_bytes = 0
        self.skipped: list[str] = []  # limits passed over silently (alert_exceeds_max off)
        # What a decomposer could not take apart, without stopping (its siblings still get
        # scanned): the engine drains both after every child and at the end of each container.
        self.events: list[tuple[str, str]] = []  # ("Broken" | "Unsupported", "<Format>[.x]")
        self.errors: list[str] = []  # a decoder raised; the rest of the object went on
        # Directory entries of the containers opened so far (read or not), for `.cdb`
        # container-metadata signatures; the engine drains them like `events`.
        self.members: list[MemberMeta] = []
        # Named files of every container of this scan (a member's base name, its bytes and
        # its container's path), every one of a name, for a file split over two containers
        # (`joined_across`), and what is in it already
        self.pieces: list[tuple[str, bytes, str, str]] = []
        self._piece_keys: set[tuple[str, int, int, str]] = set()
        # Layers a zlib stream may name as its preset dictionary, by Adler-32 (`zlibdict`),
        # and the streams that named one not seen yet (looked for again at the scan's end).
        self._dictionary_layers: list[bytes] = []
        self._indexed = 0
        self._dictionaries: dict[int, list[bytes]] = {}
        self.dictionary_bytes = 0
        self.dictionaries_dropped = False  # a layer was left out for the budget above
        # (stream, dictionaries tried, decoded by one, found inside a guess)
        self.dict_streams: list[tuple[bytes, int, bool, bool]] = []
        # speculative children the walk is inside (`Child.speculative`; the engine counts):
        # only signature findings count there, and decoders note it (`zlibdict`)
        self.guessing = 0
        self.pixel_bytes = 0  # images' pixels decoded so far (`pngpixels`)
        # the images made by running a stub (`Child.emulated`: the packer's name, or "stub")
        # the walk is inside: they keep the packer's marks, and running the stub again in
        # them would only recurse
        self.emulating: list[str] = []
        # images decoded whole (`unpack.wwpack`), by hash, and whether a decode was outside
        # a guess: not decoded again (but decoded outside a guess once, as a guess mutes what
        # it finds), while what they hold is unpacked as anywhere else; and how many times one
        # was met again and left (what left it is not its own to cache: `cleancache`)
        self.decoded: dict[int, bool] = {}
        self.decoded_again = 0
        # what the scan has spent of budgets of its own ("packer.runs", "stub.seconds"...:
        # `unpack`), kept apart from the size budget above
        self.spent: dict[str, float] = {}
        # What the subtrees being recorded for the clean cache note for the rest of the scan
        # (`cleancache`: replayed when the cache answers for them), and how often a stream
        # looked among the layers noted before it (a subtree that did is never cached).
        self.recordings: list[Notes] = []
        self.lookups = 0

    # -- recursion ---------------------------------------------------------------------------

    @contextmanager
    def descend(self) -> Iterator[None]:
        """Enter one nesting level; raises MaxRecursion beyond `max_recursion`."""
        self.enter()
        try:
            yield
        finally:
            self.leave()

    def enter(self) -> None:
        if self.depth + 1 > self.limits.max_recursion:
            raise ScanLimitExceeded(MAX_RECURSION, f"depth {self.depth + 1}")
        self.depth += 1

    def leave(self) -> None:
        self.depth = max(0, self.depth - 1)

    def check_depth(self, extra: int = 0) -> None:
        """Raise if a decomposer's internal nesting (`extra` levels below us) is too deep."""
        if self.depth + extra > self.limits.max_recursion:
            raise ScanLimitExceeded(MAX_RECURSION, f"depth {self.depth + extra}")

    def note_piece(self, name: str, data: bytes, parent: str, own: str | None = None) -> None:
        """Remember a named file; the bytes are the layer's own, already charged. Every one
        is kept (there are no more than `max_files`): a cap dropped names silently, and the
        pieces of a file split over two archives after 1,024 other names were never joined
        (a gateway attack on the clean cache found it); and so is every file of one name (the
        first of a name alone let a decoy `p2.bin` hide the tail `p2.bin` in a zip: R33-F1).
        The same bytes under the same name in the same container are one. `own`: the
        piece's own path (`parent/name` unless given), to tell a container from its members."""
        own = own if own is not None else f"{parent}/{name}"
        for rec in self.recordings:
            rec.pieces.append((name, data, parent, own))
        base = name.replace("\\", "/").rsplit("/", 1)[-1]
        key = (base, len(data), hash(data), parent)
        if base and key not in self._piece_keys:
            self._piece_keys.add(key)
            self.pieces.append((base, data, parent, own))

    def note_dictionary(self, data: bytes) -> None:
        """Remember a layer as a possible preset dictionary (`zlibdict`), within
        `_MAX_DICTIONARY_BYTES` in all; indexed only once a stream asks (`dictionary`)."""
        for rec in self.recordings:
            rec.dictionaries.append(data)
        if not 0 < len(data) <= _MAX_DICTIONARY:
            return
        if self.dictionary_bytes + len(data) > _MAX_DICTIONARY_BYTES:
            self.dictionaries_dropped = True  # a stream that finds none is a limit, not clean
            return
        self.dictionary_bytes += len(data)
        self._dictionary_layers.append(data)

    def dictionaries(self, adler: int) -> list[bytes]:
        """The layers whose Adler-32 a zlib header names (all of them: a decoy may share the
        checksum), also without their last line end, and with LF line ends and one last
        line end (a text part as the sender wrote it)."""
        self.lookups += 1
        for data in self._dictionary_layers[self._indexed :]:
            lf = data.replace(b"\r\n", b"\n")
            # (a MIME part's last line end belongs to the boundary after it: the file had one)
            for form in {data, data.rstrip(b"\r\n"), lf, lf.rstrip(b"\n") + b"\n"}:
                if form.strip():
                    same = self._dictionaries.setdefault(zlib.adler32(form), [])
                    if form not in same:
                        same.append(form)
        self._indexed = len(self._dictionary_layers)
        return self._dictionaries.get(adler, [])

    # -- files and bytes ---------------------------------------------------------------------

    def charge_file(self) -> None:
        self.files += 1
        if self.files > self.limits.max_files:
            raise ScanLimitExceeded(MAX_FILES, f"{self.files} files")

    def check_file_size(self, n: int) -> None:
        if n > self.limits.max_file_size:
            raise ScanLimitExceeded(MAX_FILE_SIZE, f"{n} bytes")

    def charge_bytes(self, n: int) -> None:
        self.total_bytes += n
        if self.total_bytes > self.limits.max_scan_size:
            raise ScanLimitExceeded(MAX_SCAN_SIZE, f"{self.total_bytes} bytes")

    def skip_oversized(self, n: int) -> bool:
        """For one member of `n` bytes: False if it fits; True (skip it, keep going with its
        siblings, as ClamAV does) when it is over `max_file_size` and alerts are off; raises
        MaxFileSize when it is over and `alert_exceeds_max` is on (fail closed)."""
        if n <= self.limits.max_file_size:
            return False
        if self.limits.alert_exceeds_max:
            raise ScanLimitExceeded(MAX_FILE_SIZE, f"{n} bytes")
        self.skipped.append(MAX_FILE_SIZE)
        return True

    def tolerate(self, exc: ScanLimitExceeded) -> bool:
        """Whether a member-level MaxFileSize overrun may be skipped (alerts off)."""
        if exc.which == MAX_FILE_SIZE and not self.limits.alert_exceeds_max:
            self.skipped.append(exc.which)
            return True
        return False

    def charge_child(self, n: int) -> None:
        """Account one produced child of `n` bytes (file count, file size, scan size, time)."""
        self.check_time()
        self.check_file_size(n)
        self.charge_file()
        self.charge_bytes(n)

    def output_bound(self) -> int:
        """Largest output a decompressor may produce for one member before it must stop.

        One more byte than this means a limit was exceeded; see `check_output`.
        """
        room = self.limits.max_scan_size - self.total_bytes
        return max(0, min(self.limits.max_file_size, room))

    def check_output(self, n: int) -> None:
        """Raise the right limit for a member whose output reached `n` bytes."""
        self.check_file_size(n)
        if self.total_bytes + n > self.limits.max_scan_size:
            raise ScanLimitExceeded(MAX_SCAN_SIZE, f"{self.total_bytes + n} bytes")

    def check_ratio(self, compressed: int, uncompressed: int) -> None:
        """Raise CompressionRatio when a large output came from too little input."""
        if uncompressed <= self.limits.ratio_min_size:
            return
        if uncompressed > self.limits.max_compression_ratio * max(1, compressed):
            raise ScanLimitExceeded(
                COMPRESSION_RATIO, f"{uncompressed} bytes from {compressed} bytes"
            )

    # -- what could not be taken apart --------------------------------------------------------

    def unsupported(self, fmt: str, detail: str | None = None) -> None:
        """A container (or member) in a format or method we cannot open:
        `Heuristics.Unsupported.<fmt>[.<detail>]` (fail closed, like encrypted content)."""
        self.events.append(("Unsupported", f"{fmt}.{detail}" if detail else fmt))

    def broken(self, fmt: str, detail: str | None = None) -> None:
        """A truncated or corrupt container: `Heuristics.Broken.<fmt>[.<detail>]`."""
        self.events.append(("Broken", f"{fmt}.{detail}" if detail else fmt))

    def note_member(self, meta: MemberMeta) -> None:
        """A container's directory lists this member (call it for every entry, including
        encrypted or unreadable ones, before yielding its content if any)."""
        self.members.append(meta)

    def error(self, where: str, exc: BaseException) -> None:
        """A decoder raised on part of the object; the caller goes on with the rest."""
        self.errors.append(f"{where}: {type(exc).__name__}: {exc}")

    def guard(self, items: Iterable[_T], where: str) -> Iterator[_T]:
        """`items`, but an exception from one source (a decoder bug, a codec error) is noted
        in `errors` and ends only that source: the caller goes on with its siblings. Limits
        and encrypted content still propagate (they are findings, decided by the engine)."""
        try:
            yield from items
        except (ScanLimitExceeded, EncryptedContent):
            raise
        except Exception as exc:
            self.error(where, exc)

    # -- time --------------------------------------------------------------------------------

    def check_time(self) -> None:
        """Raise MaxScanTime past the deadline; decoders call it inside every loop over input."""
        if self._clock() > self.deadline:
            raise ScanLimitExceeded(MAX_SCAN_TIME, f"{self.limits.max_scan_time:g} s")

    @property
    def elapsed(self) -> float:
        return self._clock() - self.started
