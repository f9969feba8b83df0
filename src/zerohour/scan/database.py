"""Loading a folder (or several) of ClamAV-format signature files into one `Database`.

Supported files: .hdb .hsb (file hashes), .mdb .msb (PE section hashes), .ndb (body), .ldb
(logical), .fp .sfp (allow-lists), .ign .ign2 (ignore by name), and the kinds in
`zerohour.scan.signatures.kinds` (.cdb .yar/.yara .imp .ftm; bytecode, phishing, certificate,
icon, .info, .cfg and PUA files are counted as skipped). .cvd/.cld containers are verified
(`zerohour.scan.signatures.cvd`: MD5, digital signatures, .info index) before their members
load; one that fails is a `DatabaseError`, never partly loaded. A bad line becomes a
`DbWarning` with file:line and is counted; it never drops the database unless `strict`. Files
of other ClamAV kinds are reported as unsupported, never silently skipped.

Loading is incremental (`zerohour.scan.dbcompile`): files are compiled in pieces, in parallel
worker processes, each piece cached on disk (`zerohour.scan.cache`) by the digest of its bytes,
so a restart with the same files loads without recompiling and a daily update recompiles only
what changed. `_build` below is the one loader every piece goes through.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zerohour.errors import DatabaseError, SignatureSyntaxError
from zerohour.scan.dbpaths import default_db_dirs as default_db_dirs
from zerohour.scan.dbpaths import is_starter as is_starter
from zerohour.scan.dbpaths import starter_db_dir as starter_db_dir
from zerohour.scan.hashindex import HashIndex, HashIndexBuilder, bulk_hash_rows
from zerohour.scan.matcher import NORMALISED_PASS_TARGETS as NORMALISED_PASS_TARGETS
from zerohour.scan.matcher import BodyMatcher, Matcher, NormView
from zerohour.scan.signatures import cvd, kinds
from zerohour.scan.signatures.hdb import iter_lines, parse_hash_line
from zerohour.scan.signatures.ign2 import IgnoreList, parse_ignore_entry
from zerohour.scan.signatures.ldb import LogicalSig, NotEvaluated, parse_ldb_line
from zerohour.scan.signatures.mdb import parse_section_line
from zerohour.scan.signatures.model import FLEVEL, SUPPORTED_TARGETS, BodySig, DbWarning
from zerohour.scan.signatures.ndb import parse_ndb_line

#: Extensions we load, by family.
HASH_EXT = frozenset({".hdb", ".hsb"})
SECTION_EXT = frozenset({".mdb", ".msb"})
FP_EXT = frozenset({".fp", ".sfp"})
IGNORE_EXT = frozenset({".ign", ".ign2"})
BODY_EXT = frozenset({".ndb"})
LOGICAL_EXT = frozenset({".ldb"})
SUPPORTED_EXT = HASH_EXT | SECTION_EXT | FP_EXT | IGNORE_EXT | BODY_EXT | LOGICAL_EXT
#: ClamAV database kinds we know of but do not implement (reported, never silently skipped).
#: Official ClamAV containers: a 512-byte header, then a (gzipped) tar of the files above.
CONTAINER_EXT = frozenset({".cvd", ".cld"})
KNOWN_UNSUPPORTED_EXT = frozenset({".cud", ".pwdb", ".sign", ".ioc", ".sdb", ".zmd", ".rmd"})


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """How a database compiles. `flavour()` is the part of the cache key they decide; `jobs`
    (worker processes, 0: one per core) and `nice` (their priority) only change how fast."""

    strict: bool = False
    backend: str | None = None
    keys: cvd.CvdKeys = cvd.CLAMAV_KEYS
    jobs: int = 0
    nice: int = 0

    def flavour(self) -> str:
        flavour = f"{self.backend or 'default'}-{int(self.strict)}"
        if self.keys != cvd.CLAMAV_KEYS:  # never let a test key's verdict serve a real load
            flavour += "-" + hashlib.sha256(repr(self.keys).encode()).hexdigest()[:12]
        return flavour


@dataclass(slots=True)
class DatabaseInfo:
    """What `zerohour scan --db-info` prints."""

    version: str
    digest: str
    dirs: tuple[str, ...]
    counts: dict[str, int]
    warnings: tuple[DbWarning, ...]
    skipped: dict[str, int]
    backend: str
    #: The verified .cvd/.cld containers: "name: version N, S signatures, built T by B".
    containers: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "digest": self.digest,
            "dirs": list(self.dirs),
            "counts": dict(self.counts),
            "skipped": dict(self.skipped),
            "warnings": [str(w) for w in self.warnings],
            "warning_count": len(self.warnings),
            "backend": self.backend,
            "containers": list(self.containers),
        }


@dataclass(slots=True)
class Database:
    """A loaded, compiled signature database (immutable once built; shared by threads)."""

    dirs: tuple[Path, ...]
    digest: str
    version: str
    hashes: HashIndex
    sections: HashIndex
    allow: HashIndex
    n_body: int
    logical: tuple[LogicalSig, ...]
    ignored: frozenset[str]
    warnings: tuple[DbWarning, ...]
    counts: dict[str, int]
    skipped: dict[str, int]
    matcher: BodyMatcher
    #: Matcher signatures: [0, n_body) are .ndb signatures; the rest are .ldb subsignatures,
    #: `logical_base[i]` the first entry of logical signature i.
    logical_base: tuple[int, ...] = ()
    #: Logical signatures true (or with a PCRE trigger true) when nothing matched, such as
    #: `0=0`: ClamAV evaluates every logical signature on every layer, so these must be too.
    logical_always: tuple[int, ...] = ()
    #: Matcher for the normalised-text pass: the signatures that can match normalised text
    #: (`norm_map[k]` is the index in `matcher` of its signature k); None if there are none.
    norm_matcher: BodyMatcher | None = None
    norm_map: Sequence[int] = range(0)
    from_cache: bool = field(default=False, compare=False)
    #: .cdb, YARA, .imp and .ftm signatures (`zerohour.scan.signatures.kinds`).
    extras: kinds.Extras = field(default_factory=kinds.Extras)
    containers: tuple[str, ...] = ()

    def info(self) -> DatabaseInfo:
        return DatabaseInfo(self.version, self.digest, tuple(str(d) for d in self.dirs),
                            dict(self.counts), self.warnings, dict(self.skipped),
                            self.matcher.backend_name, self.containers)

    @property
    def needs_sha1(self) -> bool:
        return "sha1" in self.hashes.kinds() or "sha1" in self.allow.kinds()


def _db_files(dirs: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for d in dirs:
        if d.is_file():
            files.append(d)
            continue
        if not d.is_dir():
            raise DatabaseError(f"signature database folder not found: {d}")
        files.extend(sorted(p for p in d.iterdir() if p.is_file()))
    return files


def _unpack_cvd(path: Path, data: bytes, keys: cvd.CvdKeys) -> tuple[list[tuple[Path, bytes]], str]:
    """Members of a verified .cvd/.cld as (path/member, content), and a line for --db-info.
    Raises `DatabaseError` ("can't verify database integrity: ...") as clamscan refuses it."""
    try:
        box = cvd.unpack(data, cld=path.suffix.lower() == ".cld", keys=keys)
    except DatabaseError as exc:
        raise DatabaseError(f"{path}: {exc}") from None
    h = box.header
    about = (f"{path.name}: version {h.version}, {h.sigs} signatures, functionality level "
             f"{h.flevel}, built {h.time} by {h.builder}")
    return [(path / name, content) for name, content in box.members], about


def db_digest(files: Sequence[Path], contents: Sequence[bytes]) -> str:
    """SHA-256 over every file's name and content, in load order: the cache key."""
    h = hashlib.sha256()
    for p, data in zip(files, contents, strict=True):
        h.update(p.name.encode("utf-8", "surrogateescape") + b"\0")
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def load_database(dirs: Sequence[Path], *, strict: bool = False, use_cache: bool = True,
                  backend: str | None = None, cvd_keys: cvd.CvdKeys | None = None,
                  jobs: int = 0, nice: int = 0) -> Database:
    """Load and compile the signature files in `dirs` (cached on disk by content digest).
    `cvd_keys` replaces ClamAV's public keys for .cvd/.cld verification (tests only); `jobs`
    and `nice`: compile worker processes and their priority (see `BuildOptions`)."""
    from zerohour.scan import dbcompile

    opts = BuildOptions(strict, backend, cvd_keys or cvd.CLAMAV_KEYS, jobs, nice)
    return dbcompile.load(dirs, opts, use_cache=use_cache)


def _stat_key(files: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for p in files:
        try:
            st = p.stat()
        except OSError as exc:
            raise DatabaseError(f"cannot read signature database: {exc}") from exc
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}\n"
                 .encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def _version(files: Sequence[Path], contents: Sequence[bytes], digest: str) -> str:
    for p, data in zip(files, contents, strict=True):
        if p.name == "VERSION":
            text = data.decode("utf-8", "replace").strip()
            if text:
                return text
    return f"local-{digest[:12]}"


def _build(dirs: Sequence[Path], files: Sequence[Path], contents: Sequence[bytes], digest: str,
           *, strict: bool, backend: str | None,
           keys: cvd.CvdKeys = cvd.CLAMAV_KEYS) -> Database:
    warnings: list[DbWarning] = []
    counts: Counter[str] = Counter()
    skipped: Counter[str] = Counter()

    def bad(path: Path, line: int, msg: str) -> None:
        if strict:
            raise SignatureSyntaxError(msg, path=str(path), line=line)
        warnings.append(DbWarning(str(path), line, msg))
        skipped["invalid"] += 1

    texts: list[tuple[Path, str, bytes]] = []  # decoded when read line by line
    extra_files: list[tuple[Path, str, str]] = []
    containers: list[str] = []
    pending = list(zip(files, contents, strict=True))
    while pending:
        p, data = pending.pop(0)
        ext = p.suffix.lower()
        if p.name == "VERSION" or p.name.startswith("."):
            continue
        if ext in CONTAINER_EXT:
            members, about = _unpack_cvd(p, data, keys)  # refused: the whole load fails
            pending[:0] = members
            containers.append(about)
            continue
        if ext in kinds.SKIPPED_EXT:
            kinds.count_skipped(ext, data, skipped)
            continue
        if ext in kinds.LOADED_EXT:
            extra_files.append((p, ext, data.decode("utf-8", "surrogateescape")))
            continue
        if ext not in SUPPORTED_EXT:
            if ext not in KNOWN_UNSUPPORTED_EXT:
                skipped["other files"] += 1  # README and the like: counted, not a warning
                continue
            msg = f"unsupported ClamAV database kind {ext!r}: file not loaded"
            if strict:
                raise DatabaseError(f"{p}: {msg}")
            warnings.append(DbWarning(str(p), 0, msg))
            skipped["files"] += 1
            continue
        texts.append((p, ext, data))

    ignores = IgnoreList()
    for p, ext, data in texts:
        if ext in IGNORE_EXT:
            for no, line in iter_lines(data.decode("utf-8", "surrogateescape")):
                try:
                    ignores.add(*parse_ignore_entry(line, legacy=ext == ".ign"))
                    counts[ext[1:]] += 1
                except SignatureSyntaxError as exc:
                    bad(p, no, str(exc))

    hashes, sections, allow = HashIndexBuilder(), HashIndexBuilder(), HashIndexBuilder()
    body: list[BodySig] = []
    logical: list[LogicalSig] = []
    for p, ext, data in texts:
        if ext in IGNORE_EXT:
            continue
        fam = ext[1:]
        if ext in HASH_EXT | FP_EXT | SECTION_EXT and _bulk_hashes(
                ext, data, allow if ext in FP_EXT else sections if ext in SECTION_EXT else hashes,
                ignores, counts, skipped):
            continue
        for no, line in iter_lines(data.decode("utf-8", "surrogateescape")):
            try:
                if ext in HASH_EXT or ext in FP_EXT:
                    parsed = parse_hash_line(line)
                    if parsed is None:
                        skipped["flevel"] += 1
                        continue
                    kind, dig, size, name = parsed
                    if ext in FP_EXT:
                        allow.add(kind, dig, size, name)
                    elif not ignores.drops(name, line):
                        hashes.add(kind, dig, size, name)
                    else:
                        skipped["ignored"] += 1
                        continue
                elif ext in SECTION_EXT:
                    parsed = parse_section_line(line)
                    if parsed is None:
                        skipped["flevel"] += 1
                        continue
                    kind, dig, size, name = parsed
                    if ignores.drops(name, line):
                        skipped["ignored"] += 1
                        continue
                    sections.add(kind, dig, size, name)
                elif ext in BODY_EXT:
                    sig = parse_ndb_line(line)
                    if sig is None:
                        skipped["flevel"] += 1
                        continue
                    if ignores.drops(sig.name, line):
                        skipped["ignored"] += 1
                        continue
                    if sig.target not in SUPPORTED_TARGETS:
                        bad(p, no, f"target {int(sig.target)} not supported: never matches")
                        continue
                    body.append(sig)
                else:
                    lsig = parse_ldb_line(line)
                    if lsig is None:
                        skipped["flevel"] += 1
                        continue
                    if ignores.drops(lsig.name, line):
                        skipped["ignored"] += 1
                        continue
                    if lsig.target not in SUPPORTED_TARGETS:
                        bad(p, no, f"target {int(lsig.target)} not supported: never matches")
                        continue
                    logical.append(lsig)
                counts[fam] += 1
            except SignatureSyntaxError as exc:
                bad(p, no, str(exc))
            except NotEvaluated as exc:  # valid, but not evaluated faithfully here
                skipped[str(exc)] += 1

    extras = kinds.build(extra_files, ignores, bad, counts, skipped)
    entries = list(body)
    bases = []
    for lsig in logical:
        bases.append(len(entries))
        entries.extend(lsig.subs)
    matcher = Matcher(entries, backend=backend)
    # The normalised-text pass reuses this automaton for the signatures that can match there.
    norm_matcher = NormView(matcher) if matcher.has_norm else None
    # The subsignatures live in the matcher's table; the logical signatures keep only counts.
    logical = [dataclasses.replace(ls, subs=(), n_hex=len(ls.subs)) for ls in logical]
    always = tuple(i for i, ls in enumerate(logical) if _true_on_nothing(ls))
    return Database(
        dirs=tuple(dirs), digest=digest, version=_version(files, contents, digest),
        hashes=hashes.build(), sections=sections.build(), allow=allow.build(),
        n_body=len(body), logical=tuple(logical), ignored=ignores.names(),
        warnings=tuple(warnings), counts=dict(counts), skipped=dict(skipped), matcher=matcher,
        logical_base=tuple(bases), logical_always=always, norm_matcher=norm_matcher,
        norm_map=range(len(entries)), extras=extras, containers=tuple(containers),
    )


def _bulk_hashes(ext: str, data: bytes, builder: HashIndexBuilder, ignores: IgnoreList,
                 counts: Counter[str], skipped: Counter[str]) -> bool:
    """A whole hash file through the bulk parser (`bulk_hash_rows`), when it parses every line
    exactly as the per-line loop below would; False: use that loop."""
    rows = bulk_hash_rows(data, flevel=FLEVEL, sections=ext in SECTION_EXT)
    if rows is None:
        return False
    if ext not in FP_EXT and ignores:
        # the bulk names are the file's bytes (plain ASCII): compare the ignored names so
        names = {n.encode("utf-8", "surrogateescape") for n in ignores.names()}
        if any(not names.isdisjoint(col[2]) for col in rows.columns.values()):
            return False  # some line may be ignored: the exact loop decides which
    for kind, (digests, sizes, sig_names) in rows.columns.items():
        builder.add_columns(kind, digests, sizes, sig_names)
    if rows.loaded:
        counts[ext[1:]] += rows.loaded
    if rows.flevel_skipped:
        skipped["flevel"] += rows.flevel_skipped
    return True


def _true_on_nothing(lsig: LogicalSig) -> bool:
    zeros = [0] * lsig.nsubs
    return lsig.expr.evaluate(zeros)[0] or any(
        pc.trigger.evaluate(zeros)[0] for _i, pc in lsig.pcres)
