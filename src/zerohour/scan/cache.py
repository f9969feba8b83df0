"""On-disk cache of compiled database pieces, keyed by their content digest.

A 100k-signature automaton takes long to compile; its Hyperscan form serialises (`dumpb`) and the
rest of a database pickles compactly (hash tables are flat `bytes`). A database is compiled in
pieces (`zerohour.scan.dbcompile`), each cached as `piece-<key>`; a *manifest* (`db-<digest>`)
lists the pieces of one whole database, and `stat-<key>` remembers which database digest a set
of files (by path, size, times, inode) had, so a restart with the same files reads no signature
file at all, and a daily update recompiles only the pieces whose bytes changed.

The cache lives in `$ZEROHOUR_CACHE_DIR`, else `$XDG_CACHE_HOME/zerohour/db`, else
`~/.cache/zerohour/db`. It is written by this user only (created 0700), which is what makes
unpickling it acceptable; a corrupt or foreign-version entry is ignored and rebuilt.
`ZEROHOUR_CACHE_DIR=off` disables it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zerohour import __version__

if TYPE_CHECKING:
    from zerohour.scan.database import Database

#: Bump when the pickled layout changes.
FORMAT = 4


def cache_dir() -> Path | None:
    env = os.environ.get("ZEROHOUR_CACHE_DIR")
    if env == "off":
        return None
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "zerohour" / "db"


_CODE: str | None = None


def code_fingerprint() -> str:
    """Digest of the modules that shape a compiled database: a code change invalidates."""
    global _CODE
    if _CODE is None:
        here = Path(__file__).resolve().parent
        h = hashlib.sha256(f"{FORMAT}:{__version__}".encode())
        for p in sorted([*here.glob("signatures/*.py"), here / "database.py",
                         here / "matcher.py", here / "hashindex.py", here / "dbcompile.py"]):
            with contextlib.suppress(OSError):
                h.update(p.read_bytes())
        _CODE = h.hexdigest()[:12]
    return _CODE


def _path(kind: str, key: str) -> Path | None:
    d = cache_dir()
    return None if d is None else d / f"{kind}-{key}-{code_fingerprint()}.pickle"


def _read(p: Path | None, touch: bool = True) -> object | None:
    if p is None:
        return None
    try:
        st = p.stat()
        if st.st_uid != os.getuid():
            return None
        with p.open("rb") as f:
            obj: object = pickle.load(f)  # noqa: S301 - our own file, only we can write
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError,
            TypeError, ValueError):
        return None
    except Exception:  # a foreign-platform hyperscan blob and the like: rebuild
        return None
    if touch:
        with contextlib.suppress(OSError):
            os.utime(p)  # recently used: kept by the pruning
    return obj


def _write(p: Path | None, obj: object) -> None:
    """Best effort: a read-only home or a full disk only costs the next start a recompile."""
    if p is None:
        return
    try:
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, p)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        return


def load_piece(key: str) -> Database | None:
    from zerohour.scan.database import Database

    obj = _read(_path("piece", key))
    return obj if isinstance(obj, Database) else None


def has_piece(key: str) -> bool:
    p = _path("piece", key)
    return p is not None and p.is_file()


def piece_path(key: str) -> Path | None:
    return _path("piece", key)


def store_piece(key: str, db: Database) -> None:
    _write(_path("piece", key), db)


def write_piece(p: Path, db: Database) -> None:
    """A compiled piece to `p` (a cache path, or a compile worker's hand-over file)."""
    _write(p, db)


def load_cut(key: str) -> tuple[list[Any], str] | None:
    """How a file (by path, size, times, inode) was cut into pieces, if it was."""
    obj = _read(_path("cut", key), touch=False)
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], list):
        return obj[0], str(obj[1])
    return None


def store_cut(key: str, cut: tuple[list[Any], str]) -> None:
    _write(_path("cut", key), cut)
    d = cache_dir()
    if d is not None:
        _prune(d, "cut-*", 256)


@dataclass(frozen=True, slots=True)
class Manifest:
    """The pieces of one database, in load order, and what the whole is called."""

    pieces: tuple[str, ...]
    digest: str
    version: str


def load_manifest(key: str) -> Manifest | None:
    obj = _read(_path("db", key))
    return obj if isinstance(obj, Manifest) else None


def store_manifest(key: str, pieces: list[str], digest: str, version: str) -> None:
    _write(_path("db", key), Manifest(tuple(pieces), digest, version))
    prune()


def prune() -> None:
    """Keep the last `KEEP` databases and the pieces they use (and pieces younger than an hour:
    another process may be combining them right now)."""
    d = cache_dir()
    if d is None:
        return
    manifests = []
    for f in d.glob("db-*.pickle"):
        with contextlib.suppress(OSError):
            manifests.append((f.stat().st_mtime, f))
    manifests.sort(reverse=True)
    keep: set[str] = set()
    for _mtime, f in manifests[KEEP:]:
        with contextlib.suppress(OSError):
            f.unlink()
    for _mtime, f in manifests[:KEEP]:
        man = _read(f, touch=False)
        if isinstance(man, Manifest):
            keep.update(man.pieces)
    now = time.time()
    for f in d.glob("piece-*.pickle"):
        key = f.name.split("-")[1]
        try:
            young = now - f.stat().st_mtime < 3600
        except OSError:
            continue
        if key not in keep and not young:
            with contextlib.suppress(OSError):
                f.unlink()


def digest_for(stat_key: str) -> str | None:
    """The content digest remembered for files with exactly these stats, if any."""
    d = cache_dir()
    if d is None:
        return None
    try:
        text = (d / f"stat-{stat_key}").read_text("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else None


def remember_digest(stat_key: str, digest: str) -> None:
    d = cache_dir()
    if d is None:
        return
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-")
        with os.fdopen(fd, "w") as f:
            f.write(digest)
        os.replace(tmp, d / f"stat-{stat_key}")
        _prune(d, "stat-*", 64)
    except OSError:
        return


#: Databases kept; older ones (previous versions of the db or code) and their pieces go.
KEEP = 6


def _prune(d: Path, pattern: str, keep: int) -> None:
    entries = []
    for f in d.glob(pattern):
        with contextlib.suppress(OSError):
            entries.append((f.stat().st_mtime, f))
    entries.sort(reverse=True)
    for _mtime, f in entries[keep:]:
        with contextlib.suppress(OSError):
            f.unlink()
