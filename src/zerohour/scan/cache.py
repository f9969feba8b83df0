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


def _path(key: str) -> Path | None:
    d = cache_dir()
    return None if d is None else d / f"{key}-v{FORMAT}-{__version__}.pickle"


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
    except OSError:
        return
