"""On-disk cache of compiled databases, keyed by the database digest.

A 100k-signature automaton takes long to compile; its Hyperscan form serialises (`dumpb`) and the
rest of the database pickles compactly (hash tables are flat `bytes`), so a restart with the same
files only reads one file. The cache lives in `$ZEROHOUR_CACHE_DIR`, else
`$XDG_CACHE_HOME/zerohour/db`, else `~/.cache/zerohour/db`. It is written by this user only
(created 0700), which is what makes unpickling it acceptable; a corrupt or foreign-version entry
is ignored and rebuilt. `ZEROHOUR_CACHE_DIR=off` disables it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from zerohour import __version__

if TYPE_CHECKING:
    from zerohour.scan.database import Database

#: Bump when the pickled layout changes.
FORMAT = 2


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
                         here / "matcher.py", here / "hashindex.py"]):
            with contextlib.suppress(OSError):
                h.update(p.read_bytes())
        _CODE = h.hexdigest()[:12]
    return _CODE


def _path(key: str) -> Path | None:
    d = cache_dir()
    return None if d is None else d / f"{key}-{code_fingerprint()}.pickle"


def load(key: str) -> Database | None:
    from zerohour.scan.database import Database

    p = _path(key)
    if p is None:
        return None
    try:
        st = p.stat()
        if st.st_uid != os.getuid():
            return None
        with p.open("rb") as f:
            obj = pickle.load(f)  # noqa: S301 - our own file, in a folder only we can write
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError,
            TypeError, ValueError):
        return None
    except Exception:  # a foreign-platform hyperscan blob and the like: rebuild
        return None
    return obj if isinstance(obj, Database) else None


def store(key: str, db: Database) -> None:
    """Best effort: a read-only home or a full disk only costs the next start a recompile."""
    p = _path(key)
    if p is None:
        return
    try:
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(db, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, p)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _prune(p.parent, "*.pickle", KEEP)
    except OSError:
        return


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


#: Compiled databases kept; older ones (previous versions of the db or code) are removed.
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
