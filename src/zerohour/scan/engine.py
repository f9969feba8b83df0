"""The scan engine: walks the layer tree of one object and matches every layer.

For each layer: hash it (MD5 and SHA-256 always, SHA-1 only if the database has SHA-1
signatures), detect its true type, check the allow-list, then match file-hash, PE-section-hash,
body and logical signatures (an image layer's `fuzzy_img#` subsignatures against its ClamAV
fuzzy hash, `zerohour.scan.imagehash`, computed only when the database has some); text layers
are also matched in ClamAV's normalised form, and HTML in ClamAV's two normalised copies
(`zerohour.scan.htmlnorm`), each matched as a layer of its own with its own hashes, so an `.fp`
entry for a copy allow-lists a finding in it, as in clamscan. Then recurse into the children
`zerohour.scan.decompose` yields. Limits, encrypted containers and containers we cannot open
or that are damaged become `Heuristics.*` findings (switchable); every other failure to take
something apart is an entry in `ScanReport.errors`, and one child's failure never hides its
siblings (fail closed: see docs/scanning.md). Without `allmatch`, the walk stops at the first
finding, as clamscan does.

Allow-lists follow ClamAV: a finding in a layer is dropped if that layer *or any of its
ancestors* is on a .fp/.sfp list (ClamAV checks every layer of the recursion stack).

The other kinds (`zerohour.scan.signatures.kinds`): `.imp` import hashes on PE layers, YARA
rules on every layer, `.ftm` magic gives an otherwise unrecognised layer ClamAV's type for
matching, and `.cdb` container-metadata signatures match the directory entries a container's
decomposer notes (`ScanContext.note_member`), reported on the container.
"""

from __future__ import annotations

import bisect
import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from zerohour.errors import EncryptedContent, ScanError, ScanLimitExceeded
from zerohour.scan import decompose, filetype, htmlnorm, joins, pe, pngpixels, scripted
from zerohour.scan.cleancache import Clean, CleanCache
from zerohour.scan.database import Database, load_database
from zerohour.scan.limits import MAX_RECURSION, Limits, Notes, ScanContext
from zerohour.scan.matcher import Geometry
from zerohour.scan.normalize import normalize_text
from zerohour.scan.signatures import cltypes, imp, vinfo
from zerohour.scan.signatures.ldb import LogicalSig
from zerohour.scan.signatures.model import Target
from zerohour.scan.types import FileType, Finding, FindingKind, LayerInfo, ScanReport, SectionDigest

#: Which layer types each ClamAV target applies to (target 0 applies to all).
TARGET_TYPES: dict[Target, frozenset[FileType]] = {
    Target.PE: frozenset({FileType.PE}),
    Target.OLE2: frozenset({FileType.OLE2}),
    Target.HTML: frozenset({FileType.HTML}),
    Target.MAIL: frozenset({FileType.MAIL}),
    Target.ELF: frozenset({FileType.ELF}),
    Target.ASCII: frozenset(),  # text is matched as target 7 only in normalised form
    Target.MACHO: frozenset({FileType.MACHO}),
    Target.PDF: frozenset({FileType.PDF}),
}
#: Layers ClamAV also matches in normalised form: text (cli_scanscript) and HTML (cli_scanhtml).
#: HTML gets ClamAV's own copies (`Engine._match_html`, targets 0 and 3) and, for its scripts
#: (which clamscan also matches as JavaScript-normalised text, target 7, a normaliser we do not
#: have), this text normalisation for target 7; HTML over `Limits.max_html_normalize` gets
#: only this one, for targets 0, 3 and 7 (clamscan would not normalise it at all).
#: Unrecognised binary data gets the normalised pass too, for target-0 signatures: clamscan 1.4
#: finds a lower-case target-0 pattern in upper-case text inside random binary data. (When such
#: data also holds UTF-16 text clamscan sometimes does not; we do, erring towards detection.)
TEXT_TYPES = frozenset({FileType.TEXT, FileType.SCRIPT, FileType.HTML, FileType.BINARY})
_TEXT_TARGETS = frozenset({Target.ANY, Target.ASCII})
_HTML_SCRIPT_TARGETS = frozenset({Target.ASCII})
#: Children that are another view of their parent's own content (`decompose`'s origins).
_VIEW_ORIGINS = frozenset({"html-text", "html-visible"})
NORMALISED_TARGETS: dict[FileType, frozenset[Target]] = {
    FileType.TEXT: _TEXT_TARGETS,
    FileType.SCRIPT: _TEXT_TARGETS,
    FileType.HTML: _TEXT_TARGETS | {Target.HTML},
    FileType.BINARY: frozenset({Target.ANY}),
}


#: Our types for a layer that starts with `MZ` but is no PE, which ClamAV calls CL_TYPE_MSEXE.
_MZ_OVERRIDES = frozenset({FileType.BINARY, FileType.TEXT, FileType.SCRIPT, FileType.HTML})
#: Prefix sizes hashed per kind in a PE whose end its headers do not tell (`_match_prefixes`).
_MAX_PREFIXES = 1024


@dataclass(slots=True)
class _Walk:
    """Mutable state of one scan (never shared between threads)."""

    ctx: ScanContext
    findings: list[Finding] = field(default_factory=list)
    layers: list[LayerInfo] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: bool = False
    #: heuristics reported only when no other finding is (`scripted`)
    late: list[Finding] = field(default_factory=list)
    #: layers scanned whole, without a finding, a limit or an error (`Engine._twin_key`) ->
    #: whether one was opened as a file (`scripted` looked at it)
    clean: dict[tuple[object, ...], bool] = field(default_factory=dict)
    limit_hits: int = 0
    #: while the walk is inside speculative children (`ScanContext.guessing`), only signature
    #: findings count; `muted` counts what was dropped (a layer with any is never cached as
    #: clean: its twin outside a guess must be scanned in full)
    muted: int = 0
    #: layers skipped as the twin of one scanned before (`walk.clean`)
    twin_hits: int = 0
    #: `layers` by SHA-256 (hex), the first of each, built as twins need it (`_twin_facts`)
    by_sha256: dict[str, LayerInfo] = field(default_factory=dict)
    indexed: int = 0  # how many of `layers` are in `by_sha256`


@dataclass(frozen=True, slots=True)
class _LayerFacts:
    """What logical signatures' target description blocks test about a layer."""

    size: int
    parent: str | None  # the parent's type, `cltypes.refine` key
    ep: int | None
    nsections: int | None
    ancestors: tuple[str, ...] = ()  # FileType values, outermost first; the last is `parent`
    vinfo: frozenset[int] = frozenset()  # PE version-info string offsets (`VI:` subsigs)
    #: (logical signature, subsignature index) of the `fuzzy_img#` subsignatures whose hash is
    #: this image layer's (`zerohour.scan.imagehash`).
    fuzzy: tuple[tuple[int, int], ...] = ()

    def admits(self, lsig: LogicalSig) -> bool:
        def inside(value: int | None, bounds: tuple[int, int] | None) -> bool:
            return bounds is None or (value is not None and bounds[0] <= value <= bounds[1])

        if lsig.container is not None and self.parent != lsig.container:
            return False
        if not lsig.intermediates_hold(self.ancestors):
            return False
        return (inside(self.size, lsig.filesize) and inside(self.ep, lsig.entry_point)
                and inside(self.nsections, lsig.sections))


class Engine:
    """Scans bytes or files against one database. Thread-safe; pickles by reconstruction."""

    def __init__(self, db: Database, limits: Limits | None = None, allmatch: bool = False,
                 heuristics: bool = True, prefixes: bool = True, clean_cache: int = 0) -> None:
        self.db = db
        #: subtrees found clean, within `clean_cache` bytes (`cleancache`; 0: none)
        self.clean = CleanCache(clean_cache) if clean_cache > 0 else None
        self.limits = limits if limits is not None else Limits()
        self.allmatch = allmatch
        self.heuristics = heuristics
        #: hash signatures also on the prefixes of a PE whose end its headers do not tell
        #: (`_match_prefixes`): past clamscan, which the `zerohour scan` drop-in leaves off
        self.prefixes = prefixes
        self._n_body = db.n_body
        self._hash_kinds = db.hashes.kinds() | db.allow.kinds()
        self._section_kinds = db.sections.kinds()
        self._has_allow = db.allow.count() > 0
        self._extras = db.extras
        self._imp_kinds = db.extras.imports.kinds()
        self._has_vi = any(ls.vi for ls in db.logical)
        #: How much of a layer's ancestry a logical signature can test: all of it
        #: (`Intermediates`), its parent (`Container`), or none.
        self._ancestry = (None if any(ls.intermediates is not None for ls in db.logical)
                          else 1 if any(ls.container is not None for ls in db.logical) else 0)
        #: Image fuzzy hash -> the `fuzzy_img#` subsignatures (logical sig, subsig index).
        self._fuzzy: dict[bytes, list[tuple[int, int]]] = {}
        for li, ls in enumerate(db.logical):
            for idx, digest in ls.fuzzy:
                self._fuzzy.setdefault(digest, []).append((li, idx))

    @classmethod
    def from_dirs(cls, dirs: Sequence[Path], limits: Limits | None = None,
                  allmatch: bool = False, heuristics: bool = True,
                  prefixes: bool = True, clean_cache: int = 0) -> Engine:
        return cls(load_database(dirs), limits, allmatch, heuristics, prefixes, clean_cache)

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        """Rebuild from the db folders in the receiving process (it hits the disk cache)."""
        return (Engine.from_dirs, (list(self.db.dirs), self.limits, self.allmatch,
                                   self.heuristics, self.prefixes,
                                   self.clean.limit if self.clean else 0))

    # -- public API -------------------------------------------------------------------------

    def scan_bytes(self, data: bytes, name: str = "-") -> ScanReport:
        started = time.perf_counter()
        walk = _Walk(ScanContext(self.limits))
        try:
            walk.ctx.charge_bytes(len(data))
            walk.ctx.check_file_size(len(data))
        except ScanLimitExceeded as exc:
            self._limit(walk, exc, name, allowed=False)
            return self._report(walk, started)
        try:
            self._layer(walk, data, name, 0, None, False, allowed=False, ancestors=(),
                        reads_as=FileType.HTML if scripted.page_by_name(name) else None)
        except ScanLimitExceeded as exc:  # interrupted where no layer catches it (`scan.alarm`)
            self._limit(walk, exc, name, allowed=False)
        except Exception as exc:  # never an exception out of scan_bytes: a scan error instead
            walk.errors.append(f"{name}: internal error {type(exc).__name__}: {exc}")
        self._drain(walk, name, allowed=False)
        if walk.late and (self.allmatch or not walk.findings):
            walk.findings.extend(walk.late[: None if self.allmatch else 1])
        return self._report(walk, started)

    def scan_path(self, path: Path | str) -> ScanReport:
        p = Path(path)
        try:
            size = p.stat().st_size
            if size > self.limits.max_file_size:
                walk = _Walk(ScanContext(self.limits))
                self._limit(walk, ScanLimitExceeded("MaxFileSize", f"{size} bytes"), str(p),
                            allowed=False)
                return self._report(walk, time.perf_counter())
            data = p.read_bytes()
        except OSError as exc:
            raise ScanError(f"cannot read {p}: {exc.strerror or exc}") from exc
        return self.scan_bytes(data, str(p))

    # -- the walk ---------------------------------------------------------------------------

    def _report(self, walk: _Walk, started: float) -> ScanReport:
        return ScanReport(tuple(walk.findings), tuple(walk.layers), self.db.version,
                          time.perf_counter() - started, tuple(walk.errors))

    def _add(self, walk: _Walk, name: str, path: str, kind: FindingKind) -> None:
        if walk.ctx.guessing and kind is not FindingKind.SIGNATURE:
            walk.muted += 1  # a heuristic in a guess (a junk join is broken): not a finding
            return
        if any(f.name == name and f.path == path for f in walk.findings):
            return
        walk.findings.append(Finding(name, path, kind))
        if not self.allmatch:
            walk.stop = True

    def _limit(self, walk: _Walk, exc: ScanLimitExceeded, path: str, allowed: bool) -> None:
        walk.limit_hits += 1
        if self.heuristics and self.limits.alert_exceeds_max and not allowed:
            self._add(walk, f"Heuristics.Limits.Exceeded.{exc.which}", path,
                      FindingKind.HEURISTIC)

    def _layer(self, walk: _Walk, data: bytes, path: str, depth: int, lname: str | None,
               is_attachment: bool, allowed: bool, ancestors: tuple[str, ...],
               reads_as: FileType | None = None) -> None:
        """Match one layer and recurse; `ancestors` are the container types above it
        (`cltypes.refine` keys), outermost first (the last is its parent: `Container`,
        `Intermediates`); `reads_as`: how a client reads it too (`Child.reads_as`)."""
        size = len(data)
        # (SHA-256 first: the twin and cache keys need no more, and a layer the clean cache
        # replays needs no other digest: MD5 of a 100 KB part is 0.15 ms)
        sha256 = hashlib.sha256(data).digest()
        if reads_as is None and scripted.page_by_name(lname):
            reads_as = FileType.HTML
        twin = (self._twin_key(walk.ctx, sha256, lname, allowed, ancestors, reads_as) if depth
                else None)
        opened = scripted.opened_as_file(lname, is_attachment)
        if twin is not None and twin in walk.clean and (walk.clean[twin] or not opened):
            # The same bytes in the same context were scanned whole (no limit cut their
            # subtree, so a twin at any depth has nothing more to see) and found clean: the
            # decoders' readings overlap (a base64 body is both a MIME guess and a
            # text-carrier block), and scanning the twin again finds nothing new.
            walk.twin_hits += 1
            sha256_hex = sha256.hex()
            md5_hex, ft = self._twin_facts(walk, data, sha256_hex)
            walk.layers.append(LayerInfo(path, depth, size, md5_hex, sha256_hex, ft, lname,
                                         is_attachment, ()))
            return
        if twin is None or self.clean is None:
            self._scan_layer(walk, data, path, depth, lname, is_attachment, allowed,
                             ancestors, self._digests(data, sha256), twin, opened, reads_as)
            return
        ctx = walk.ctx
        key = (sha256, size, depth, ctx.depth, is_attachment, *twin[1:])
        entry = self.clean.get(key)
        # (a layer inside it this scan saw already is a twin the scan would skip, its charges
        # and notes with it: the replay would count them again, so the scan decides)
        if (entry is not None and entry.fits(ctx, pngpixels.BUDGET)
                and not any(t in walk.clean for t, _ in entry.notes.twins)):
            self.clean.used()
            entry.replay(ctx, path)
            walk.layers.extend(entry.moved(path, depth))
            for inner, was_opened in entry.notes.twins:
                self._clean_twin(walk, inner, was_opened)
            self._clean_twin(walk, twin, opened)
            return
        args = (walk, data, path, depth, lname, is_attachment, allowed, ancestors,
                self._digests(data, sha256), twin, opened, reads_as)
        if not joins.budget_unbounded(ctx):
            self._scan_layer(*args)
            return
        start, state = len(walk.layers), self._outside(walk)
        files, total, pixels = ctx.files, ctx.total_bytes, ctx.pixel_bytes
        notes = Notes()
        ctx.recordings.append(notes)
        try:
            self._scan_layer(*args)
        finally:
            ctx.recordings.pop()
        if not walk.stop and self._outside(walk) == state:
            self.clean.put(key, Clean(path, depth, tuple(walk.layers[start:]), notes,
                                      ctx.files - files, ctx.total_bytes - total,
                                      ctx.pixel_bytes - pixels))

    @staticmethod
    def _outside(walk: _Walk) -> tuple[object, ...]:
        """What changes when a subtree's verdict is not its own to keep (`cleancache`): it
        found, erred or was cut short (`_marks`), skipped a twin scanned outside it, read
        the layers noted before it for a zlib dictionary, or ran, decoded or met again an
        image (whose budgets are the scan's; one met again was decoded outside it)."""
        ctx = walk.ctx
        return (Engine._marks(walk), walk.twin_hits, ctx.lookups, len(ctx.dict_streams),
                len(ctx.decoded), sum(ctx.decoded.values()), ctx.decoded_again,
                tuple(ctx.spent.items()))

    def _scan_layer(self, walk: _Walk, data: bytes, path: str, depth: int, lname: str | None,
                    is_attachment: bool, allowed: bool, ancestors: tuple[str, ...],
                    digests: dict[str, bytes], twin: tuple[object, ...] | None,
                    opened: bool, reads_as: FileType | None) -> None:
        """`_layer`'s scan of a layer neither twin nor cache answers for."""
        size = len(data)
        md5, sha256 = digests["md5"], digests["sha256"]
        marks = self._marks(walk)
        walk.ctx.note_dictionary(data)  # (a zlib stream may name it: `zlibdict`)
        ft = filetype.detect(data)
        pe_info: pe.PEInfo | None = None
        sections: tuple[SectionDigest, ...] = ()
        if ft is FileType.PE:
            pe_info = pe.parse(data)
            if pe_info is not None:
                sections = pe.section_digests(data, pe_info)
        walk.layers.append(LayerInfo(path, depth, size, md5.hex(), sha256.hex(), ft, lname,
                                     is_attachment, sections))
        if not allowed:
            allowed = self._allowed(size, digests)
        views = True  # our extra views of this layer as children (its rendered text)
        if not allowed:
            mft = self._ftm_type(data, ft)
            copies = None
            if mft is FileType.HTML and size <= self.limits.max_html_normalize:
                try:
                    copies = self._html_copies(data, walk.ctx.check_time)
                except ScanLimitExceeded as exc:  # out of time: the raw passes still run
                    self._limit(walk, exc, path, allowed)
                    if walk.stop:
                        return
                else:
                    views = not any(listed for _, _, listed in copies)
            try:
                self._match(walk, data, path, mft, digests, pe_info, ancestors, copies=copies)
            except ScanLimitExceeded as exc:  # out of time in a match (`scan.alarm`)
                self._limit(walk, exc, path, allowed)
                return
            if (self.heuristics and self.limits.alert_html_script
                    and opened and not walk.ctx.guessing
                    and scripted.runs_script(data, ft, lname)):
                walk.late.append(Finding(scripted.NAME, path, FindingKind.HEURISTIC))
        if walk.stop:
            return
        self._children(walk, data, path, depth, ft, lname, allowed, ancestors, views,
                       reads_as)
        if twin is not None and not walk.stop and self._marks(walk) == marks:
            self._clean_twin(walk, twin, opened)

    @staticmethod
    def _twin_facts(walk: _Walk, data: bytes, sha256_hex: str) -> tuple[str, FileType]:
        """A twin's MD5 and type, from the layer of the same bytes listed before it (MD5 of a
        100 KB twin is 0.15-0.2 ms; the same bytes have the same digest and type). Computed
        when that layer is not listed (it always is: a twin is a layer scanned in this walk,
        or replayed from the clean cache with its layers)."""
        layers, index = walk.layers, walk.by_sha256
        for i in range(walk.indexed, len(layers)):
            index.setdefault(layers[i].sha256, layers[i])
        walk.indexed = len(layers)
        seen = index.get(sha256_hex)
        if seen is not None:
            return seen.md5, seen.filetype
        return hashlib.md5(data, usedforsecurity=False).hexdigest(), filetype.detect(data)

    @staticmethod
    def _clean_twin(walk: _Walk, twin: tuple[object, ...], opened: bool) -> None:
        """A layer scanned whole and clean: its twins later in the scan are not taken apart
        (and the subtrees being recorded for the clean cache say so when replayed)."""
        walk.clean[twin] = walk.clean.get(twin, False) or opened
        for rec in walk.ctx.recordings:
            rec.twins.append((twin, opened))

    def _twin_key(self, ctx: ScanContext, sha256: bytes, lname: str | None, allowed: bool,
                  ancestors: tuple[str, ...], reads_as: FileType | None
                  ) -> tuple[object, ...]:
        """What a layer's verdict depends on besides its depth and whether it is opened as a
        file (`scripted`): its bytes (by SHA-256: a layer with the MD5 of a clean one is no
        twin of it), its name (types and heuristics by name), whether an
        ancestor is allow-listed, the ancestry the database's logical signatures test, and
        whether the walk is inside a guess (heuristics muted), and which kinds of emulated
        image it is inside (in a packer's image packed files are neither run nor reported, in
        an unknown stub's they are): a packed PE found clean in one is not clean as a file of
        its own, nor in the other (rounds 23, 25); and how a client reads it
        (`Child.reads_as`: text found clean as plain text is not clean as a page)."""
        chain = (ancestors if self._ancestry is None
                 else ancestors[-1:] if self._ancestry else ())
        return (sha256, lname, allowed, chain, ctx.guessing > 0, frozenset(ctx.emulating),
                reads_as)

    @staticmethod
    def _marks(walk: _Walk) -> tuple[int, ...]:
        """Counts that grow when a layer's scan finds, errs or is cut short."""
        return (len(walk.findings), len(walk.late), len(walk.errors), walk.limit_hits,
                len(walk.ctx.skipped), len(walk.ctx.errors), len(walk.ctx.events), walk.muted)

    def _match_prefixes(self, walk: _Walk, data: bytes, path: str,
                        span: tuple[int, int]) -> None:
        """Hash signatures on the prefixes of `data` whose sizes lie in `span` and that a
        signature names (at most `_MAX_PREFIXES` a kind): one running digest, a copy per size,
        so the cost is one pass over the span plus a digest per size."""
        lo, hi = span
        view = memoryview(data)
        for kind in ("md5", "sha1", "sha256"):
            if kind not in self._hash_kinds:
                continue
            sizes = self.db.hashes.sizes_in(kind, lo, hi, _MAX_PREFIXES)
            if not sizes:
                continue
            walk.ctx.check_time()
            running = hashlib.new(kind, view[: sizes[0]], usedforsecurity=False)
            done = sizes[0]
            for size in sizes:
                running.update(view[done:size])
                done = size
                found = self.db.hashes.lookup(kind, size, running.copy().digest())
                if found is not None:
                    self._add(walk, found, path, FindingKind.SIGNATURE)
                    if walk.stop:
                        return

    def _digests(self, data: bytes, sha256: bytes | None = None) -> dict[str, bytes]:
        """MD5 and SHA-256 always (`sha256`: the layer's, computed already), SHA-1 only if a
        signature or allow-list entry uses it."""
        digests = {"md5": hashlib.md5(data, usedforsecurity=False).digest(),
                   "sha256": sha256 or hashlib.sha256(data).digest()}
        if "sha1" in self._hash_kinds:
            digests["sha1"] = hashlib.sha1(data, usedforsecurity=False).digest()
        return digests

    def _allowed(self, size: int, digests: dict[str, bytes]) -> bool:
        """On the .fp/.sfp allow-list (by any hash kind it holds)."""
        return self._has_allow and any(self.db.allow.lookup(k, size, d) is not None
                                       for k, d in digests.items())

    def _children(self, walk: _Walk, data: bytes, path: str, depth: int, ft: FileType,
                  lname: str | None, allowed: bool,
                  ancestors: tuple[str, ...] = (), views: bool = True,
                  reads_as: FileType | None = None) -> None:
        """Walk into the layer's children; without `views`, not into those that are only
        another view of the layer itself (`_VIEW_ORIGINS`); `reads_as`: read so too."""
        ctx = walk.ctx
        key = cltypes.refine(ft, data)  # the children's parent, as ClamAV types it
        # Depth is charged when a child actually appears: a leaf at the deepest allowed level
        # is not a limit hit (ScanContext.descend() would raise before knowing).
        ctx.depth += 1
        kids = decompose.children(data, ft, ctx, lname, reads_as)
        try:
            for seen, child in enumerate(kids, 1):
                # What the decomposer noted before yielding this child belongs to this layer.
                self._drain(walk, path, allowed)
                self._members(walk, path, len(data), allowed)
                if walk.stop:
                    return
                if not views and child.origin in _VIEW_ORIGINS:
                    continue
                if child.name == lname and child.data == data:
                    continue  # a reading that decoded nothing: the layer again, not a child
                if ctx.depth > self.limits.max_recursion:
                    raise ScanLimitExceeded(MAX_RECURSION, f"depth {ctx.depth}")
                label = child.name or child.origin or f"part{seen}"
                cpath = f"{path}/{label}"
                if child.origin != "joined-volumes" and (
                        child.name or (child.is_attachment and not child.speculative)):
                    # (an attachment with no name as Outlook saves it: R33-F2)
                    ctx.note_piece(child.name or f"ATT{seen:05d}.bin", child.data, path, cpath)
                errors = len(walk.errors)
                ctx.guessing += child.speculative  # (decoders read it too: `zlibdict`)
                if child.emulated:
                    ctx.emulating.append(child.emulated)
                try:
                    self._layer(walk, child.data, cpath, depth + 1, child.name,
                                child.is_attachment, allowed, ancestors=(*ancestors, key),
                                reads_as=child.reads_as)
                except ScanLimitExceeded:
                    raise  # (out of time: this layer's limit, below)
                except Exception as exc:  # one child's bug must not hide its siblings
                    walk.errors.append(f"{cpath}: internal error {type(exc).__name__}: {exc}")
                finally:
                    ctx.guessing -= child.speculative
                    if child.emulated:
                        ctx.emulating.pop()
                if child.speculative:
                    self._mute_errors(walk, errors)
                if walk.stop:
                    return
        except ScanLimitExceeded as exc:
            self._limit(walk, exc, path, allowed)
        except EncryptedContent as exc:
            if self.heuristics and self.limits.alerts_encrypted(exc.format) and not allowed:
                self._add(walk, f"Heuristics.Encrypted.{exc.format}", path,
                          FindingKind.HEURISTIC)
        except ScanError as exc:
            walk.errors.append(f"{path}: {exc}")
        except Exception as exc:  # a decomposer bug must not take the scanner down
            walk.errors.append(f"{path}: internal error {type(exc).__name__}: {exc}")
        finally:
            ctx.depth -= 1
            kids.close()  # (a decomposer's `finally` may note what it left unread: drained now)
            self._drain(walk, path, allowed)
            self._members(walk, path, len(data), allowed)

    @staticmethod
    def _mute_errors(walk: _Walk, since: int) -> None:
        """Drop the errors a speculative child's subtree added (decoders failing on a junk
        join): a guess must not make the scan fail, which defers the message."""
        ctx = walk.ctx
        dropped = len(walk.errors) - since + len(ctx.errors)
        if dropped:
            walk.muted += dropped
            del walk.errors[since:]
            ctx.errors.clear()

    def _drain(self, walk: _Walk, path: str, allowed: bool) -> None:
        """Turn what the decomposers noted (containers they could not open, decoders that
        raised on part of the layer) into findings and errors: nothing fails silently."""
        ctx = walk.ctx
        if ctx.errors:
            walk.errors.extend(f"{path}: {e}" for e in ctx.errors)
            ctx.errors.clear()
        if not ctx.events:
            return
        events = list(ctx.events)
        ctx.events.clear()
        for kind, name in events:
            switch = (self.limits.alert_broken if kind == "Broken"
                      else self.limits.alert_unsupported)
            if self.heuristics and switch and not allowed:
                if not walk.stop:
                    self._add(walk, f"Heuristics.{kind}.{name}", path, FindingKind.HEURISTIC)
            else:
                ctx.skipped.append(f"{kind}.{name}")

    def _ftm_type(self, data: bytes, ft: FileType) -> FileType:
        """The type ClamAV matches a layer as. Anything starting with `MZ` is CL_TYPE_MSEXE
        to ClamAV (its built-in magic), valid PE or not: target-1 signatures apply, and it is
        neither text nor normalised (a case-sensitive PCRE must not match there through the
        lower-cased copy). Otherwise .ftm magic types a layer we could only call binary."""
        if data[:2] == b"MZ" and ft in _MZ_OVERRIDES:
            return FileType.PE
        if ft is FileType.BINARY:
            for magic in self._extras.ftm:
                if magic.applies(data, ft):
                    return magic.type
        return ft

    def _members(self, walk: _Walk, path: str, size: int, allowed: bool) -> None:
        """Match the directory entries the container at `path` noted against .cdb signatures
        (matcher.c `cli_matchmeta`: the finding is the container's)."""
        ctx = walk.ctx
        if not ctx.members:
            return
        metas = list(ctx.members)
        ctx.members.clear()
        if allowed or walk.stop:
            return
        for meta in metas:
            for sig in self._extras.cdb:
                if sig.matches(meta, size):
                    self._add(walk, sig.name, path, FindingKind.SIGNATURE)
                    if walk.stop:
                        return

    # -- matching one layer -----------------------------------------------------------------

    def _match(self, walk: _Walk, data: bytes, path: str, ft: FileType,
               digests: dict[str, bytes], pe_info: pe.PEInfo | None,
               ancestors: tuple[str, ...], html_copy: bool = False,
               copies: list[tuple[bytes, dict[str, bytes], bool]] | None = None) -> None:
        """Every kind of signature on one layer (`html_copy`: one of ClamAV's normalised
        copies of an HTML layer, matched as a layer of its own and not normalised again).

        HTML (`copies`, from `_html_copies`): clamscan matches only its normalised copies,
        never the HTML's own bytes; we also match the bytes (erring towards detection), and
        walk into its rendered text, except when a copy is on the allow-list: then this layer
        is matched exactly as clamscan does, so an `.fp` entry taken from clamscan for a copy
        works here too."""
        db = self.db
        size = len(data)
        # Match the layer's own content (not only its hashes)?
        raw_content = copies is None or not any(listed for _, _, listed in copies)
        for kind in ("md5", "sha1", "sha256"):
            d = digests.get(kind)
            if d is None:
                continue
            # --allmatch: the sized signature and the '*' one both report, as in clamscan.
            hits: list[str]
            if self.allmatch:
                hits = db.hashes.lookup_all(kind, size, d)
            else:
                one = db.hashes.lookup(kind, size, d)
                hits = [one] if one is not None else []
            for found in hits:
                self._add(walk, found, path, FindingKind.SIGNATURE)
                if walk.stop:
                    return
        span = pe.prefix_span(data) if self.prefixes and data[:2] == b"MZ" else None
        if span is not None:  # a PE whose own end its headers do not tell (`pe.prefix_span`)
            self._match_prefixes(walk, data, path, span)
            if walk.stop:
                return
        if pe_info is not None and self._section_kinds:
            for sec in pe_info.sections:
                chunk = data[sec.raw_offset : sec.raw_offset + sec.raw_size]
                if not chunk:
                    continue
                for kind in self._section_kinds:
                    d = hashlib.new(kind, chunk, usedforsecurity=False).digest()
                    hit = db.sections.lookup(kind, len(chunk), d)
                    if hit is not None:
                        self._add(walk, hit, path, FindingKind.SIGNATURE)
                        if walk.stop:
                            return
        if pe_info is not None and self._imp_kinds:
            self._match_imports(walk, data, path, pe_info)
            if walk.stop:
                return
        if self._extras.yara is not None and raw_content:
            budget = self.limits.max_scan_time - walk.ctx.elapsed
            for name in self._extras.yara.match(data, timeout=budget):
                self._add(walk, name, path, FindingKind.SIGNATURE)
                if walk.stop:
                    return
        # body signatures, or logical ones (a `fuzzy_img#`-only signature has no body part)
        has_body = bool(len(db.matcher.sigs)) or bool(db.logical)

        graphics = filetype.is_graphics(data)

        def applies(t: Target) -> bool:
            return (t is Target.ANY or ft in TARGET_TYPES.get(t, ())
                    or (graphics and t is Target.GRAPHICS))

        ep = pe_info.entry_point_offset if pe_info is not None else None
        secs = tuple(s.raw_offset for s in pe_info.sections) if pe_info is not None else ()
        fuzzy: tuple[tuple[int, int], ...] = ()
        if graphics and self._fuzzy:
            digest = self._image_hash(walk, data, path)
            if walk.stop:
                return
            if digest is not None:
                fuzzy = tuple((li, idx) for li, idx in self._fuzzy.get(digest, ())
                              if applies(db.logical[li].target))
        layer = _LayerFacts(size, ancestors[-1] if ancestors else None, ep,
                            len(secs) if pe_info is not None else None,
                            ancestors,
                            vinfo.version_offsets(data, pe_info)
                            if pe_info is not None and self._has_vi and has_body
                            else frozenset(),
                            fuzzy)
        if has_body and raw_content:
            self._match_body(walk, data, path, Geometry(size, ep, secs), applies, layer)
        if walk.stop or html_copy:
            return
        norm_targets = NORMALISED_TARGETS.get(ft)
        if copies is not None:
            # cli_scanhtml: each copy a layer of type HTML below this one (targets 0 and 3,
            # FileSize and offsets the copy's; Container and Intermediates this layer's, as
            # ClamAV skips normalised layers there), findings reported on this layer.
            for copy, cdigests, allowed in copies:
                if not allowed:
                    self._match(walk, copy, path, FileType.HTML, cdigests, None, ancestors,
                                html_copy=True)
                    if walk.stop:
                        return
            norm_targets = _HTML_SCRIPT_TARGETS if raw_content else None
        if not has_body or norm_targets is None or self.db.norm_matcher is None:
            return
        norm = normalize_text(data)
        if norm != data:

            def applies_norm(t: Target) -> bool:
                return t in norm_targets

            self._match_body(walk, norm, path, Geometry(len(norm)), applies_norm, layer,
                             normalised=True)

    def _image_hash(self, walk: _Walk, data: bytes, path: str) -> bytes | None:
        """An image layer's ClamAV fuzzy hash, or None (not decodable, too large: ClamAV has
        none either and goes on). Only computed when the database has `fuzzy_img#`
        subsignatures; the image may not decode to more than `max_file_size` bytes (nor the
        512 MiB ClamAV's decoder allows), and the scan's deadline bounds the work."""
        from zerohour.scan import imagehash  # Pillow is only loaded for image fuzzy hashes

        ctx = walk.ctx
        try:
            return imagehash.image_fuzzy_hash(
                data, ctx.check_time,
                min(imagehash.MAX_DECODED_BYTES, self.limits.max_file_size))
        except imagehash.NoHash:
            return None
        except ScanLimitExceeded as exc:
            self._limit(walk, exc, path, allowed=False)
            return None

    def _html_copies(self, data: bytes, check: Callable[[], None] | None = None,
                     ) -> list[tuple[bytes, dict[str, bytes], bool]]:
        """scanners.c `cli_scanhtml`'s layers: ClamAV's `nocomment.html` and (for HTML up to
        `max_html_notags`) `notags.html` (empty ones are not scanned), each with its hashes
        and whether the allow-list holds it."""
        nocomment, notags = htmlnorm.normalise(data, check)
        out = []
        for copy in (nocomment, notags)[: 1 if len(data) > self.limits.max_html_notags else 2]:
            if copy:
                digests = self._digests(copy)
                out.append((copy, digests, self._allowed(len(copy), digests)))
        return out

    def _match_imports(self, walk: _Walk, data: bytes, path: str, info: pe.PEInfo) -> None:
        text = imp.import_string(data, info)
        if text is None:
            return
        for kind in self._imp_kinds:
            d = hashlib.new(kind, text, usedforsecurity=False).digest()
            hits = self._extras.imports.lookup_all(kind, len(text), d)
            for hit in hits if self.allmatch else hits[:1]:
                self._add(walk, hit, path, FindingKind.SIGNATURE)
                if walk.stop:
                    return

    def _match_body(self, walk: _Walk, data: bytes, path: str, geo: Geometry,
                    applies: Callable[[Target], bool], layer: _LayerFacts,
                    normalised: bool = False) -> None:
        db = self.db
        nb = self._n_body
        first_only = not self.allmatch and not db.logical
        if normalised and db.norm_matcher is not None:
            remap = db.norm_map
            local = db.norm_matcher.scan(data, geo, applies,
                                         counting=lambda k: remap[k] >= nb,
                                         first_only=first_only)
            found = {remap[k]: v for k, v in local.items()}
        else:
            found = db.matcher.scan(data, geo, applies, counting=lambda e: e >= nb,
                                    first_only=first_only)
        for e in sorted(found):
            if e >= nb:
                break
            self._add(walk, db.matcher.sigs.name(e), path, FindingKind.SIGNATURE)
            if walk.stop:
                return
        if not db.logical:
            return
        touched = {li for li in db.logical_always if applies(db.logical[li].target)}
        bases = db.logical_base
        for e in found:
            if e >= nb:
                touched.add(bisect.bisect_right(bases, e) - 1)
        fuzzy = () if normalised else layer.fuzzy  # an image's hash, not its normalised text
        touched.update(li for li, _ in fuzzy)
        for li in sorted(touched):
            lsig = db.logical[li]
            base = bases[li]
            counts = [found.get(base + j, 0) for j in range(lsig.hex_count)]
            for j in lsig.vi:  # found anywhere; counts only where a version string starts
                offsets = () if normalised else layer.vinfo
                pats = [p.full_regex() for p in db.matcher.sigs[base + j].patterns]
                counts[j] = sum(1 for off in offsets if any(rx.match(data, off) for rx in pats))
            counts = lsig.counts(counts)
            for fli, idx in fuzzy:
                if fli == li:
                    counts[idx] += 1
            if self._logical_true(lsig, counts, data, geo, layer):
                self._add(walk, lsig.name, path, FindingKind.SIGNATURE)
                if walk.stop:
                    return

    @staticmethod
    def _logical_true(lsig: LogicalSig, counts: list[int], data: bytes, geo: Geometry,
                      layer: _LayerFacts) -> bool:
        if not layer.admits(lsig):
            return False
        if lsig.pcres:
            counts = counts + [0] * (lsig.nsubs - len(counts))
            for idx, pc in lsig.pcres:
                trigger = pc.trigger
                if not trigger.evaluate(counts)[0]:
                    continue
                window = pc.offset.resolve(geo.size, geo.ep, geo.sections)
                if window is None:
                    continue
                rx = re.compile(pc.regex.encode("latin-1"), pc.flags)
                if window == (0, geo.size):
                    hits = [m.start() for m in rx.finditer(data)] if pc.global_ else \
                        [m.start() for m in [rx.search(data)] if m]
                else:
                    first = rx.search(data, window[0])  # a start within [lo, lo + shift]
                    hits = [first.start()] if first and first.start() <= window[1] else []
                counts[idx] = len(hits)
        return lsig.expr.evaluate(counts)[0]
