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
  long-lived process never holds a compile's transient memory), each piece handed over as
  soon as the plan has cut it (`plan`'s `offer`): compiling starts while files are read;
- a folder holding a .cvd/.cld compiles as one piece (a container's members can carry ignore
  lists for the files beside it), as before.

Verdicts equal a one-piece compile: ignore lists are handed to every piece, the global
signature order is the one-piece order, and the hash tables answer "last loaded wins" across
pieces as within one.

Worker processes, and why they look as they do (a cold load's CPU is almost all theirs): they
start from a small main that skips the scan engine's imports (`_WORKER_MAIN`), keep freed heap
for the next piece of the same kind instead of faulting it in again (`_WORKER_MALLOC`,
`_give_back_memory`), and collect each piece's reference cycles (the collector is off while
they compile).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import hashlib
import heapq
import os
import pickle
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
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
_ODD_LEADS = tuple(sorted({b[:1] for b in _ODD_BREAKS}))


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


def plan(files: Sequence[Path], memo: bool = False,
         offer: Callable[[Piece, Plan], None] | None = None) -> Plan:
    """Read every file once (streaming): digests, the pieces, the version, the ignore lists.
    With `memo`, a signature file whose path, size, times and inode are those of one cut
    before is not read again: its pieces are remembered in the cache (a daily update then
    reads only daily's files). `offer` gets each line piece as soon as it is cut, body files
    first (their pieces cost the most), so that compiling starts while the rest is read; the
    other files (ignore lists among them: every piece's key depends on them) come first."""
    out = Plan()
    split = not any(p.suffix.lower() in CONTAINER_EXT for p in files)
    digests: dict[int, tuple[int, str]] = {}
    cuts: dict[int, list[Piece]] = {}
    line: list[int] = []
    rest: list[Path] = []
    rest_digest = hashlib.sha256()
    for i, p in enumerate(files):
        if split and p.suffix.lower() in LINE_EXT and p.name != "VERSION" \
                and not p.name.startswith("."):
            line.append(i)
            continue
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise DatabaseError(f"cannot read signature database: {exc}") from exc
        fdigest = hashlib.sha256(data).hexdigest()
        digests[i] = (len(data), fdigest)
        rest.append(p)
        rest_digest.update(p.name.encode("utf-8", "surrogateescape") + b"\0")
        rest_digest.update(fdigest.encode())
        if p.name == "VERSION":
            out.version = data.decode("utf-8", "replace").strip()
        if p.suffix.lower() in IGNORE_EXT and split:
            out.ignore_files.append((p, data))
    # stable: files of one kind keep their order
    line.sort(key=lambda i: files[i].suffix.lower() not in BODY_EXT | LOGICAL_EXT)
    for i in line:
        p = files[i]
        try:
            with p.open("rb") as f:
                st = os.fstat(f.fileno())
                chunk = CHUNK.get(p.suffix.lower(), HASH_CHUNK)
                # the inode, not the path: a hard link (or a renamed folder) is the same file
                key = hashlib.sha256(f"{p.name}\0{st.st_dev}\0{st.st_ino}\0{st.st_size}\0"
                                     f"{st.st_mtime_ns}\0{st.st_ctime_ns}\0{chunk}"
                                     .encode("utf-8", "surrogateescape")).hexdigest()
                known = cache.load_cut(key) if memo else None
                if known is not None:
                    pieces, fdigest = [replace(pc, path=p) for pc in known[0]], known[1]
                    if offer is not None:
                        for pc in pieces:
                            offer(pc, out)
                else:
                    pieces, fdigest = _cut(p, f, chunk, lambda pc: offer(pc, out)
                                           if offer is not None else None)
                    if memo:
                        cache.store_cut(key, (pieces, fdigest))
        except OSError as exc:
            raise DatabaseError(f"cannot read signature database: {exc}") from exc
        cuts[i] = pieces
        digests[i] = (st.st_size, fdigest)
    total = hashlib.sha256()
    for i, p in enumerate(files):
        size, fdigest = digests[i]
        out.pieces.extend(cuts.get(i, ()))
        total.update(p.name.encode("utf-8", "surrogateescape") + b"\0")
        total.update(size.to_bytes(8, "big") + fdigest.encode())
    if rest:
        out.pieces.append(Piece(rest[0], digest=rest_digest.hexdigest(), rest=tuple(rest)))
        if offer is not None:
            offer(out.pieces[-1], out)
    out.digest = total.hexdigest()
    out.version = out.version or f"local-{out.digest[:12]}"
    return out


def _cut(p: Path, f: BinaryIO, chunk: int,
         offer: Callable[[Piece], None] | None = None) -> tuple[list[Piece], str]:
    """Slices of whole lines of about `chunk` bytes, each offered as soon as it is cut; one
    slice if a line break is not LF (rare: slices offered before that was seen are then
    compiled for nothing). The file's digest: its one slice's, else that of its slices'
    digests, so each byte is hashed once."""
    pieces: list[Piece] = []
    cur = hashlib.sha256()
    start = first = base = cur_lines = 0
    odd = False
    for block in _blocks(f):
        odd = odd or _odd_breaks(block)
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
            if offer is not None:
                offer(pieces[-1])
        cur.update(block[i:])
        cur_lines += block.count(b"\n", i)
        base += len(block)
    if odd and pieces:
        f.seek(0)
        cur = hashlib.sha256()
        for block in _blocks(f):
            cur.update(block)
        pieces, start = [], 0
    if base > start or not pieces:
        pieces.append(Piece(p, start, base, first if start else 0, cur.hexdigest()))
        if offer is not None:
            offer(pieces[-1])
    if len(pieces) == 1:
        return pieces, pieces[0].digest
    h = hashlib.sha256(b"pieces\0")
    for pc in pieces:
        h.update(f"{pc.start}:{pc.end}:{pc.digest}\n".encode())
    return pieces, h.hexdigest()


def _odd_breaks(block: bytes) -> bool:
    """Whether `block` holds a line break other than LF: first a scan for their first bytes
    (memchr, fast), the exact separators only when one occurs."""
    return any(b in block for b in _ODD_LEADS) and any(b in block for b in _ODD_BREAKS)


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
        del data  # one copy of the slice at a time
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


class _Compiler:
    """Compiles the pieces a load is missing while the plan is still cutting the files: in
    worker processes (`_WORKER_MAIN` in a new interpreter: a plain subprocess works from
    anywhere, a daemonic scan worker included) when the database is big enough to pay for
    their start, else here once the plan is done. Each worker takes the costliest piece
    waiting when it is done with one, so none idles at the end."""

    def __init__(self, dirs: tuple[Path, ...], opts: BuildOptions, use_cache: bool,
                 parallel: bool) -> None:
        self.dirs, self.opts, self.use_cache = dirs, opts, use_cache
        self.workers = (opts.jobs or os.cpu_count() or 1) if parallel else 1
        self.jobs: dict[str, _Job] = {}
        self._waiting: list[tuple[int, int, str]] = []  # (-cost, order, key): a heap
        self._cond = threading.Condition()
        self._closed = False
        self._failures: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._context: tuple[int, str] = (-1, "")
        self._env: dict[str, str] | None = None

    def offer(self, piece: Piece, plan: Plan) -> None:
        """A piece the plan has cut: compiled unless the cache has it (or it is queued)."""
        if self._context[0] != len(plan.ignore_files):
            self._context = (len(plan.ignore_files), plan.context())
        key = piece.key(self.opts, self._context[1])
        if key in self.jobs or (self.use_cache and cache.has_piece(key)):
            return
        out = str(cache.piece_path(key)) if self.use_cache else None
        job = _Job(piece, key, self.dirs, self.opts, tuple(plan.ignore_files), out)
        if self.workers <= 1:
            self.jobs[key] = job
            return
        with self._cond:
            if self._failures:
                raise self._failures[0]
            if job.out is None:
                if self._tmp is None:
                    self._tmp = tempfile.TemporaryDirectory(prefix="zh-compile-")
                job = replace(job, out=os.path.join(self._tmp.name, f"{len(self.jobs)}.pickle"))
            self.jobs[key] = job
            heapq.heappush(self._waiting, (-_cost(job), len(self.jobs), key))
            self._cond.notify()
        if len(self._threads) < min(self.workers, len(self.jobs)):  # one more worker
            if self._env is None:
                self._env = _worker_env()
            t = threading.Thread(target=self._feed, args=(self._env,), name="zh-compile")
            self._threads.append(t)
            t.start()

    def _next(self) -> _Job | None:
        with self._cond:
            while not self._waiting and not self._closed and not self._failures:
                self._cond.wait()
            if self._failures or not self._waiting:
                return None
            return self.jobs[heapq.heappop(self._waiting)[2]]

    def _feed(self, env: dict[str, str]) -> None:
        proc = subprocess.Popen([sys.executable, "-c", _WORKER_MAIN, str(self.opts.nice)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            while (job := self._next()) is not None:
                try:
                    _send(proc.stdin, job)
                    answer = _receive(proc.stdout)
                except (OSError, EOFError, pickle.UnpicklingError) as exc:
                    answer = DatabaseError(f"database compile worker failed: {exc}")
                if answer is not None:
                    with self._cond:
                        self._failures.append(
                            answer if isinstance(answer, BaseException)
                            else DatabaseError("database compile worker failed"))
                        self._cond.notify_all()
                    break
            with contextlib.suppress(OSError):
                _send(proc.stdin, None)
        finally:
            # (a worker that failed may be gone: closing its pipe flushes into nothing, and
            # that error must not end this thread before the worker is waited for)
            with contextlib.suppress(OSError):
                proc.stdin.close()
            proc.stdout.close()
            proc.wait()

    def finish(self) -> dict[str, Database | None]:
        """Wait for every piece; each compiled one by key (None: it is in the cache)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for t in self._threads:
            t.join()
        try:
            if self._failures:
                raise self._failures[0]
            if not self._threads:
                return {k: _compile(j) for k, j in self.jobs.items()}
            out: dict[str, Database | None] = {}
            for k, job in self.jobs.items():
                out[k] = None
                if self._tmp is not None and job.out is not None \
                        and job.out.startswith(self._tmp.name):
                    with open(job.out, "rb") as f:  # no cache: the worker left it here
                        got = pickle.load(f)  # noqa: S301 - our own worker's file
                    out[k] = got if isinstance(got, Database) else None
            return out
        finally:
            self.close()

    def close(self) -> None:
        """Stop (on an error: the workers finish their current piece, take no other)."""
        with self._cond:
            self._closed = True
            self._waiting.clear()
            self._cond.notify_all()
        for t in self._threads:
            t.join()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


#: glibc malloc settings of a compile worker. By default a large block freed at the top of
#: the heap goes back to the system at once (and the dynamic mmap threshold moves with the
#: sizes seen), so the next piece's, or the same piece's next, large buffers fault their
#: pages in again: ~10 % of a worker's CPU was system time, mostly those page faults. A
#: worker keeps its freed heap (blocks up to 32 MB come from the heap, whose top is never
#: trimmed on its own) for the next piece of the same kind; `_give_back_memory` returns it
#: when the worker turns to pieces of another kind.
_WORKER_MALLOC = {"MALLOC_TRIM_THRESHOLD_": str(1 << 30), "MALLOC_MMAP_THRESHOLD_": str(32 << 20),
                  "MALLOC_TOP_PAD_": str(16 << 20)}


#: A compile worker's main: this module, imported without `zerohour.scan`'s own `__init__`
#: (the scan engine, archive and MIME modules: ~0.15 s of CPU and of start-up per worker,
#: which compiles none of them), so that unpickled jobs are this module's `_Job`s.
_WORKER_MAIN = """\
import importlib.util, sys
spec = importlib.util.find_spec("zerohour.scan")
sys.modules["zerohour.scan"] = importlib.util.module_from_spec(spec)
from zerohour.scan.dbcompile import _worker
sys.exit(_worker(sys.argv[1:]))
"""


def _worker_env() -> dict[str, str]:
    """This process's environment, with the zerohour it runs first on the path: the workers
    must compile with the same code (a source snapshot, a checkout under test); and the
    worker's malloc settings (`_WORKER_MALLOC`), unless set already."""
    here = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    return {**_WORKER_MALLOC, **os.environ,
            "PYTHONPATH": here + (os.pathsep + path if path else "")}


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
    # body signatures cost more per byte (an automaton to compile) than hash lines: ~16x
    return (p.end - p.start) * (16 if p.path.suffix.lower() in BODY_EXT | LOGICAL_EXT else 1)


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


def _give_back_memory() -> None:
    """Return the heap compiled pieces freed to the system (glibc keeps it otherwise): a
    worker that compiled body pieces (many small objects, Hyperscan's own allocations) would
    hold that on top of a hash piece's columns, and two workers double it. Pieces of one
    kind reuse each other's freed heap well: it is returned when the kind changes."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def _kind(piece: Piece) -> str:
    if piece.rest:
        return "rest"
    return "body" if piece.path.suffix.lower() in BODY_EXT | LOGICAL_EXT else "hash"


def _worker(argv: Sequence[str]) -> int:
    """Worker process: compile the jobs its parent sends, one at a time, answering each with
    None or the exception that stopped it."""
    nice = int(argv[0]) if argv else 0
    if nice:
        with contextlib.suppress(OSError):
            os.nice(nice)
    gc.disable()
    gc.freeze()  # what the imports made: the collections below skip it
    # the pipe to the parent is ours alone: anything printed goes to stderr
    stdin, stdout = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    kind = ""
    while True:
        job = _receive(stdin)
        if job is None:
            return 0
        try:
            assert isinstance(job, _Job)
            was, kind = kind, _kind(job.piece)
            if was and was != kind:
                _give_back_memory()
            _compile(job)
            # A compiled piece leaves reference cycles (a matcher and its Hyperscan backend's
            # bound method): with the collector off, every body piece's automaton and tables
            # stayed in the worker to its end (~100 MB after nine pieces).
            gc.collect()
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
        comp = _Compiler(dirs, opts, use_cache, _parallel(files, opts))
        try:
            p = plan(files, memo=use_cache, offer=comp.offer)
            built = comp.finish()
        finally:
            comp.close()
        key = f"{p.digest}-{flavour}"
        if use_cache and not built:
            db = _from_manifest(key, dirs)
            if db is not None:
                cache.remember_digest(stat_key, p.digest)
                return db
        context = p.context()
        keys = [pc.key(opts, context) for pc in p.pieces]
        parts: list[Database] = []
        rebuilt = False
        for pc, k in zip(p.pieces, keys, strict=True):
            part = built.get(k)
            if part is None:
                part = cache.load_piece(k)
            if part is None:  # unreadable (corrupt, removed meanwhile): compile it here
                part = _compile(_Job(pc, k, dirs, opts, tuple(p.ignore_files), None))
                assert part is not None
                if use_cache:
                    cache.store_piece(k, part)
                rebuilt = True
            parts.append(part)
        db = combine(parts, dirs, p.digest, p.version)
        db.from_cache = not built and not rebuilt
        if use_cache:
            cache.store_manifest(key, keys, p.digest, p.version)
            cache.remember_digest(stat_key, p.digest)
        return db


def _parallel(files: Sequence[Path], opts: BuildOptions) -> bool:
    """Whether compile workers pay for their start: several cores, enough signatures."""
    if (opts.jobs or os.cpu_count() or 1) <= 1:
        return False
    size = sum(_size(p) * (16 if p.suffix.lower() in BODY_EXT | LOGICAL_EXT else 1)
               for p in files)
    return size >= PARALLEL_MIN


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
    comp = _Compiler(dirs, opts, True, _parallel(files, opts))
    try:
        p = plan(files, memo=True, offer=comp.offer)
        comp.finish()
    finally:
        comp.close()
    context = p.context()
    keys = [pc.key(opts, context) for pc in p.pieces]
    cache.store_manifest(f"{p.digest}-{flavour}", keys, p.digest, p.version)
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
