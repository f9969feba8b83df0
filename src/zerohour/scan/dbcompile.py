"""Incremental database compile: pieces compiled in parallel, cached by content, combined.

A database folder is cut into *pieces*: every line-oriented signature file (.hdb .hsb .mdb .msb
.fp .sfp .ndb .ldb) in slices of whole lines (`CHUNK`), and one piece for everything else
(ignore lists, .cdb/.yara/.imp/.ftm, skipped kinds, containers). Each piece compiles with the
one loader (`database._build`) into a small `Database` of its own, keyed by the digest of its
bytes (plus the ignore lists, which drop signatures in any file, and the build options), and is
cached on disk. A load then combines the pieces in load order (`combine`): hash indexes chain,
matchers answer as one (`MatcherSet`), counts add up. So:

- a daily update recompiles only the pieces whose bytes changed (daily's), not main's;
- a cold compile runs the pieces on every core, in worker processes that exit afterwards (the
  long-lived process never holds a compile's transient memory);
- a folder holding a .cvd/.cld compiles as one piece (a container's members can carry ignore
  lists for the files beside it), as before.

Verdicts equal a one-piece compile: ignore lists are handed to every piece, the global
signature order is the one-piece order, and the hash tables answer "last loaded wins" across
pieces as within one.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import pickle
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, BinaryIO

from zerohour.errors import DatabaseError
from zerohour.scan import cache
from zerohour.scan.database import (
    BODY_EXT,
    CONTAINER_EXT,
    FP_EXT,
    HASH_EXT,
    IGNORE_EXT,
    LOGICAL_EXT,
    SECTION_EXT,
    BuildOptions,
    Database,
    _build,
    _db_files,
    _stat_key,
)
from zerohour.scan.hashindex import HashIndex
from zerohour.scan.matcher import Matcher, MatcherSet, NormView
from zerohour.scan.signatures import kinds
from zerohour.scan.signatures.ldb import LogicalSig
from zerohour.scan.signatures.model import DbWarning

LINE_EXT = HASH_EXT | SECTION_EXT | FP_EXT | BODY_EXT | LOGICAL_EXT
#: Bytes per piece, by kind: a piece is one worker's job and one Hyperscan database (body
#: pieces stay near 30k signatures, where compile time per pattern is lowest), or one sorted
#: hash table (each lookup asks every table of its kind: few, large ones for hashes).
CHUNK = {".ndb": 3 << 20, ".ldb": 2 << 20}
HASH_CHUNK = 32 << 20
#: Below this many bytes in all, pieces compile in this process (no worker start-up cost).
PARALLEL_MIN = 8 << 20
_BLOCK = 1 << 20
#: Line separators other than LF that `str.splitlines` honours: files holding one compile as
#: one piece, so that line numbers in warnings stay exact.
_ODD_BREAKS = (b"\r", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\xc2\x85",
               b"\xe2\x80\xa8", b"\xe2\x80\xa9")


@dataclass(frozen=True, slots=True)
class Piece:
    """Lines [first_line, ...) of `path`, bytes [start, end), with their digest; or, with
    `rest`, whole files compiled together."""

    path: Path
    start: int = 0
    end: int = 0
    first_line: int = 0
    digest: str = ""
    rest: tuple[Path, ...] = ()

    def key(self, opts: BuildOptions, context: str) -> str:
        h = hashlib.sha256(f"{opts.flavour()}\0{context}\0{self.first_line}\0".encode())
        names = self.rest or (self.path,)
        for p in names:
            h.update(p.name.encode("utf-8", "surrogateescape") + b"\0")
        h.update(self.digest.encode())
        return h.hexdigest()


@dataclass(slots=True)
class Plan:
    """What a load compiles: pieces in load order, the digest of everything, the version."""

    pieces: list[Piece] = field(default_factory=list)
    digest: str = ""
    version: str = ""
    #: The ignore-list files, verbatim: every line piece compiles with them.
    ignore_files: list[tuple[Path, bytes]] = field(default_factory=list)

    def context(self) -> str:
        h = hashlib.sha256()
        for p, data in self.ignore_files:
            h.update(p.name.encode("utf-8", "surrogateescape") + b"\0")
            h.update(hashlib.sha256(data).digest())
        return h.hexdigest()


def plan(files: Sequence[Path], memo: bool = False) -> Plan:
    """Read every file once (streaming): digests, the pieces, the version, the ignore lists.
    With `memo`, a signature file whose path, size, times and inode are those of one cut
    before is not read again: its pieces are remembered in the cache (a daily update then
    reads only daily's files)."""
    out = Plan()
    total = hashlib.sha256()
    rest: list[Path] = []
    rest_digest = hashlib.sha256()
    split = not any(p.suffix.lower() in CONTAINER_EXT for p in files)
    for p in files:
        ext = p.suffix.lower()
        line_kind = split and ext in LINE_EXT and p.name != "VERSION" \
            and not p.name.startswith(".")
        try:
            with p.open("rb") as f:
                st = os.fstat(f.fileno())
                size = st.st_size
                chunk = CHUNK.get(ext, HASH_CHUNK)
                # the inode, not the path: a hard link (or a renamed folder) is the same file
                key = hashlib.sha256(f"{p.name}\0{st.st_dev}\0{st.st_ino}\0{size}\0"
                                     f"{st.st_mtime_ns}\0{st.st_ctime_ns}\0{chunk}"
                                     .encode("utf-8", "surrogateescape")).hexdigest()
                known = cache.load_cut(key) if memo and line_kind else None
                if known is not None:
                    pieces, fdigest = known
                    out.pieces.extend(replace(pc, path=p) for pc in pieces)
                elif line_kind:
                    pieces, fdigest = _cut(p, f, chunk)
                    out.pieces.extend(pieces)
                    if memo:
                        cache.store_cut(key, (pieces, fdigest))
                else:
                    data = f.read()
                    fdigest = hashlib.sha256(data).hexdigest()
                    size = len(data)
                    rest.append(p)
                    rest_digest.update(p.name.encode("utf-8", "surrogateescape") + b"\0")
                    rest_digest.update(fdigest.encode())
                    if p.name == "VERSION":
                        out.version = data.decode("utf-8", "replace").strip()
                    if ext in IGNORE_EXT and split:
                        out.ignore_files.append((p, data))
        except OSError as exc:
            raise DatabaseError(f"cannot read signature database: {exc}") from exc
        total.update(p.name.encode("utf-8", "surrogateescape") + b"\0")
        total.update(size.to_bytes(8, "big") + fdigest.encode())
    if rest:
        out.pieces.append(Piece(rest[0], digest=rest_digest.hexdigest(), rest=tuple(rest)))
    out.digest = total.hexdigest()
    out.version = out.version or f"local-{out.digest[:12]}"
    return out


def _cut(p: Path, f: BinaryIO, chunk: int) -> tuple[list[Piece], str]:
    """Slices of whole lines of about `chunk` bytes; one slice if a line break is not LF."""
    whole = hashlib.sha256()
    pieces: list[Piece] = []
    cur = hashlib.sha256()
    start = first = base = cur_lines = 0
    odd = False
    for block in _blocks(f):
        whole.update(block)
        odd = odd or any(b in block for b in _ODD_BREAKS)
        i = 0
        while not odd:
            want = start + chunk - base  # where in this block the piece reaches `chunk` bytes
            nl = block.find(b"\n", max(want, i)) if want < len(block) else -1
            if nl < 0:
                break
            cut = nl + 1
            cur.update(block[i:cut])
            pieces.append(Piece(p, start, base + cut, first, cur.hexdigest()))
            first += cur_lines + block.count(b"\n", i, cut)
            start, cur, cur_lines, i = base + cut, hashlib.sha256(), 0, cut
        cur.update(block[i:])
        cur_lines += block.count(b"\n", i)
        base += len(block)
    if base > start or not pieces:
        pieces.append(Piece(p, start, base, first, cur.hexdigest()))
    digest = whole.hexdigest()
    if odd and len(pieces) > 1:
        pieces = [Piece(p, 0, base, 0, digest)]
    return pieces, digest


def _blocks(f: BinaryIO) -> Iterator[bytes]:
    """The file in blocks of about `_BLOCK` bytes, each ending after a LF (but the last)."""
    carry = b""
    while True:
        data = f.read(_BLOCK)
        if not data:
            if carry:
                yield carry
            return
        block = carry + data
        cut = block.rfind(b"\n") + 1
        if not cut:
            carry = block
            continue
        carry = block[cut:]
        yield block[:cut]


# -- compiling one piece (in a worker process, or here) -----------------------------------------

@dataclass(frozen=True, slots=True)
class _Job:
    piece: Piece
    key: str
    dirs: tuple[Path, ...]
    opts: BuildOptions
    ignore_files: tuple[tuple[Path, bytes], ...]
    #: Where the compiled piece goes (a cache file); None: returned.
    out: str | None


def _compile(job: _Job) -> Database | None:
    """Build one piece; store it in the cache (then return None) or return it."""
    piece = job.piece
    if piece.rest:
        files = list(piece.rest)
        try:
            contents = [p.read_bytes() for p in files]
        except OSError as exc:
            raise DatabaseError(f"cannot read signature database: {exc}") from exc
        digest = hashlib.sha256()
        for p, data in zip(files, contents, strict=True):
            digest.update(p.name.encode("utf-8", "surrogateescape") + b"\0")
            digest.update(hashlib.sha256(data).hexdigest().encode())
        got = digest.hexdigest()
    else:
        try:
            with piece.path.open("rb") as f:
                f.seek(piece.start)
                data = f.read(piece.end - piece.start)
        except OSError as exc:
            raise DatabaseError(f"cannot read signature database: {exc}") from exc
        got = hashlib.sha256(data).hexdigest()
        # line numbers of this slice count from its place in the file
        files = [p for p, _d in job.ignore_files] + [piece.path]
        contents = [d for _p, d in job.ignore_files] + [b"\n" * piece.first_line + data]
    if got != piece.digest:
        raise DatabaseError(f"{piece.path}: changed while the database was loading")
    with _no_gc():
        db = _build(job.dirs, files, contents, got, strict=job.opts.strict,
                    backend=job.opts.backend, keys=job.opts.keys)
    if not piece.rest and job.ignore_files:
        db = _without_context(db, {str(p) for p, _d in job.ignore_files})
    if job.out is not None:
        cache.write_piece(Path(job.out), db)
        return None
    return db


def _without_context(db: Database, context: set[str]) -> Database:
    """A line piece compiled with the ignore lists in front: what they counted is theirs."""
    counts = {k: v for k, v in db.counts.items() if f".{k}" not in IGNORE_EXT}
    mine = tuple(w for w in db.warnings if w.path not in context)
    skipped = dict(db.skipped)
    if len(mine) != len(db.warnings):
        left = skipped.get("invalid", 0) - (len(db.warnings) - len(mine))
        if left:
            skipped["invalid"] = left
        else:
            skipped.pop("invalid", None)
    return replace(db, counts=counts, warnings=mine, skipped=skipped, ignored=frozenset())


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Compiling makes millions of short-lived objects and no cycles: the cyclic collector
    would walk them all again and again (a multiple of the compile time)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _run(jobs: list[_Job], opts: BuildOptions, size: int) -> list[Database | None]:
    """Compile `jobs`, in worker processes when it pays (`python -m zerohour.scan.dbcompile`:
    a plain subprocess works from anywhere, a daemonic scan worker included). Longest first,
    each worker taking the next job when it is done with one, so none idles at the end."""
    workers = min(len(jobs), opts.jobs or os.cpu_count() or 1)
    if workers <= 1 or size < PARALLEL_MIN:
        return [_compile(j) for j in jobs]
    order = sorted(range(len(jobs)), key=lambda i: -_cost(jobs[i]))
    lock = threading.Lock()
    failures: list[BaseException] = []
    with tempfile.TemporaryDirectory(prefix="zh-compile-") as tmp:
        todo = [replace(j, out=j.out or os.path.join(tmp, f"{i}.pickle"))
                for i, j in enumerate(jobs)]

        env = _worker_env()

        def feed() -> None:
            proc = subprocess.Popen([sys.executable, "-m", "zerohour.scan.dbcompile",
                                     str(opts.nice)], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, env=env)
            assert proc.stdin is not None
            assert proc.stdout is not None
            with proc.stdin, proc.stdout:
                while True:
                    with lock:
                        if not order or failures:
                            break
                        i = order.pop(0)
                    try:
                        _send(proc.stdin, todo[i])
                        answer = _receive(proc.stdout)
                    except (OSError, EOFError, pickle.UnpicklingError) as exc:
                        answer = DatabaseError(f"database compile worker failed: {exc}")
                    if answer is not None:
                        with lock:
                            failures.append(answer if isinstance(answer, BaseException)
                                            else DatabaseError("database compile worker failed"))
                        break
                with contextlib.suppress(OSError):
                    _send(proc.stdin, None)
            proc.wait()

        threads = [threading.Thread(target=feed, name="zh-compile") for _ in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if failures:
            raise failures[0]
        out: list[Database | None] = [None] * len(jobs)
        for i, job in enumerate(jobs):
            if job.out is None:  # no cache: the worker left it in our temporary folder
                with open(os.path.join(tmp, f"{i}.pickle"), "rb") as f:
                    got = pickle.load(f)  # noqa: S301 - our own worker's file
                out[i] = got if isinstance(got, Database) else None
    return out


def _worker_env() -> dict[str, str]:
    """This process's environment, with the zerohour it runs first on the path: the workers
    must compile with the same code (a source snapshot, a checkout under test)."""
    here = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=here + (os.pathsep + path if path else ""))


def _send(f: IO[bytes], obj: object) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    f.write(len(data).to_bytes(8, "big") + data)
    f.flush()


def _receive(f: IO[bytes]) -> object:
    head = f.read(8)
    if len(head) < 8:
        raise EOFError("the worker exited")
    data = f.read(int.from_bytes(head, "big"))
    return pickle.loads(data)  # noqa: S301 - our own worker's answer


def _cost(job: _Job) -> int:
    p = job.piece
    if p.rest:
        return sum(_size(f) for f in p.rest)
    # body signatures cost more per byte (an automaton to compile) than hash lines
    return (p.end - p.start) * (8 if p.path.suffix.lower() in BODY_EXT | LOGICAL_EXT else 1)


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


def _worker(argv: Sequence[str]) -> int:
    """Worker process: compile the jobs its parent sends, one at a time, answering each with
    None or the exception that stopped it."""
    nice = int(argv[0]) if argv else 0
    if nice:
        with contextlib.suppress(OSError):
            os.nice(nice)
    gc.disable()
    # the pipe to the parent is ours alone: anything printed goes to stderr
    stdin, stdout = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    while True:
        job = _receive(stdin)
        if job is None:
            return 0
        try:
            assert isinstance(job, _Job)
            _compile(job)
        except BaseException as exc:
            try:
                _send(stdout, exc)
            except Exception:
                _send(stdout, DatabaseError(f"{type(exc).__name__}: {exc}"))
            return 1
        _send(stdout, None)


# -- loading ------------------------------------------------------------------------------------

def load(dirs: Sequence[Path], opts: BuildOptions, *, use_cache: bool = True) -> Database:
    """The database of `dirs`: from the cache when every piece is there, else compiled (only
    the missing pieces) and cached."""
    dirs = tuple(Path(d).absolute() for d in dirs)
    files = _db_files(dirs)
    use_cache = use_cache and cache.cache_dir() is not None
    flavour = opts.flavour()
    stat_key = _stat_key(files) if use_cache else ""
    with _no_gc():
        if use_cache:
            # Fast path: the same files (path, size, mtime, ctime, inode) as a previous load,
            # whose content digest we remember, so nothing is read or hashed.
            known = cache.digest_for(stat_key)
            db = _from_manifest(f"{known}-{flavour}", dirs) if known else None
            if db is not None:
                return db
        p = plan(files, memo=use_cache)
        key = f"{p.digest}-{flavour}"
        if use_cache:
            db = _from_manifest(key, dirs)
            if db is not None:
                cache.remember_digest(stat_key, p.digest)
                return db
        context = p.context()
        keys = [pc.key(opts, context) for pc in p.pieces]
        have = [use_cache and cache.has_piece(k) for k in keys]
        todo = [_Job(pc, k, dirs, opts, tuple(p.ignore_files),
                     str(cache.piece_path(k)) if use_cache else None)
                for pc, k, h in zip(p.pieces, keys, have, strict=True) if not h]
        built = iter(_run(todo, opts, sum(_cost(j) for j in todo)))
        parts: list[Database] = []
        rebuilt = False
        for pc, k, h in zip(p.pieces, keys, have, strict=True):
            part = next(built) if not h else None
            if part is None:
                part = cache.load_piece(k)
            if part is None:  # unreadable (corrupt, removed meanwhile): compile it here
                part = _compile(_Job(pc, k, dirs, opts, tuple(p.ignore_files), None))
                assert part is not None
                cache.store_piece(k, part)
                rebuilt = True
            parts.append(part)
        db = combine(parts, dirs, p.digest, p.version)
        db.from_cache = not todo and not rebuilt
        if use_cache:
            cache.store_manifest(key, keys, p.digest, p.version)
            cache.remember_digest(stat_key, p.digest)
        return db


def prepare(dirs: Sequence[Path], opts: BuildOptions) -> bool:
    """Compile and cache whatever `dirs` needs without loading it here: what a gateway runs
    (on a thread, compile workers at a low priority) before it starts scan workers on a new
    database, which then only read the cache. False when there is no cache to fill."""
    if cache.cache_dir() is None:
        return False
    dirs = tuple(Path(d).absolute() for d in dirs)
    files = _db_files(dirs)
    flavour = opts.flavour()
    stat_key = _stat_key(files)
    known = cache.digest_for(stat_key)
    if known and _cached(f"{known}-{flavour}"):
        return True
    p = plan(files, memo=True)
    key = f"{p.digest}-{flavour}"
    if not _cached(key):
        context = p.context()
        keys = [pc.key(opts, context) for pc in p.pieces]
        todo = [_Job(pc, k, dirs, opts, tuple(p.ignore_files), str(cache.piece_path(k)))
                for pc, k in zip(p.pieces, keys, strict=True) if not cache.has_piece(k)]
        _run(todo, opts, sum(_cost(j) for j in todo))
        cache.store_manifest(key, keys, p.digest, p.version)
    cache.remember_digest(stat_key, p.digest)
    return True


def _cached(key: str) -> bool:
    man = cache.load_manifest(key)
    return man is not None and all(cache.has_piece(k) for k in man.pieces)


def _from_manifest(key: str, dirs: tuple[Path, ...]) -> Database | None:
    man = cache.load_manifest(key)
    if man is None:
        return None
    parts = []
    for k in man.pieces:
        part = cache.load_piece(k)
        if part is None:
            return None
        parts.append(part)
    db = combine(parts, dirs, man.digest, man.version)
    db.from_cache = True
    return db


def _warning_rank(w: DbWarning) -> int:
    """The order one compile reports in: files it could not load, ignore lists, signature
    lines (file by file), then the extra kinds (a stable sort keeps each group's order)."""
    ext = os.path.splitext(w.path)[1].lower()
    if ext in LINE_EXT:
        return 2
    if ext in IGNORE_EXT:
        return 1
    return 3 if ext in kinds.LOADED_EXT else 0


# -- combining ----------------------------------------------------------------------------------

def combine(parts: Sequence[Database], dirs: tuple[Path, ...], digest: str,
            version: str) -> Database:
    """One database from pieces in load order, answering as one compile of them all would."""
    if len(parts) == 1:
        return replace(parts[0], dirs=dirs, digest=digest, version=version)
    counts: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    logical: list[LogicalSig] = []
    bases: list[int] = []
    always: list[int] = []
    n_body = sum(p.n_body for p in parts)
    sub_base = n_body
    matchers: list[tuple[Matcher, int]] = []
    extras = [p.extras for p in parts if p.extras != kinds.Extras()]
    if len(extras) > 1:
        raise DatabaseError("more than one database piece carries .cdb/.yara/.imp/.ftm")
    for p in parts:
        counts.update(p.counts)
        skipped.update(p.skipped)
        m = p.matcher
        if isinstance(m, NormView):
            m = m.base
        if isinstance(m, Matcher):
            matchers.append((m, p.n_body))
        elif isinstance(m, MatcherSet):
            matchers.extend(m.parts)
        always.extend(len(logical) + i for i in p.logical_always)
        bases.extend(sub_base + b - p.n_body for b in p.logical_base)
        logical.extend(p.logical)
        sub_base += (len(p.matcher.sigs) - p.n_body)
    ms = MatcherSet(matchers)
    return Database(
        dirs=dirs, digest=digest, version=version,
        hashes=HashIndex.chain(p.hashes for p in parts),
        sections=HashIndex.chain(p.sections for p in parts),
        allow=HashIndex.chain(p.allow for p in parts),
        n_body=n_body, logical=tuple(logical),
        ignored=frozenset().union(*(p.ignored for p in parts)),
        warnings=tuple(sorted((w for p in parts for w in p.warnings), key=_warning_rank)),
        counts=dict(counts), skipped=dict(skipped), matcher=ms,
        logical_base=tuple(bases), logical_always=tuple(always),
        norm_matcher=NormView(ms) if ms.has_norm else None, norm_map=range(ms.total),
        extras=extras[0] if extras else kinds.Extras(),
        containers=tuple(c for p in parts for c in p.containers),
    )


if __name__ == "__main__":
    # run the imported module's worker, so that unpickled jobs are its own `_Job`s
    from zerohour.scan.dbcompile import _worker as worker

    sys.exit(worker(sys.argv[1:]))
