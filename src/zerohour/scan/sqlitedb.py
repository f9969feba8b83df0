"""The values a SQLite database file holds, as its reader gets them (round 20 a07).

A file stored in a BLOB larger than a page is cut into overflow pages, each behind a 4-byte
pointer to the next: in the raw bytes it is no longer one run, while `sqlite3 x.db "SELECT
writefile('a.exe', data) FROM t"` gives it back whole. So the database is opened with SQLite
itself (`sqlite3.Connection.deserialize`: a copy in memory, no file) and every row of every
ordinary table is read; a BLOB of 16 bytes or more and a TEXT of 64 characters or more is a
layer of its own (`sqlite-value`, named `table.column`).

A hostile file must not cost more than a scan may. SQLite is built to read corrupt databases
safely; on top of that, as its "defense against the dark arts" advice says: the schema is not
trusted (`trusted_schema=OFF`, no function a view or generated column names runs), only stored
columns of ordinary tables are selected (no views, no virtual tables, no generated columns),
values are capped by `SQLITE_LIMIT_LENGTH` at the scan's output bound, `cell_size_check` is
on, and a progress handler checks the scan's clock every 1,000 virtual-machine steps. A file
with the magic that SQLite cannot read, or that is cut short or fails `quick_check`, is
`Heuristics.Broken.SQLite` (what can still be read is read). Virtual tables are not read: the
rows a module makes are not in the file, and what a module keeps there (FTS) is in ordinary
shadow tables, which are.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator

from zerohour.errors import ScanLimitExceeded
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import Child

MAGIC = b"SQLite format 3\x00"
_MIN_BLOB = 16
_MIN_TEXT = 64
_STEPS = 1000  # virtual-machine instructions between two looks at the clock


class _Text(bytes):
    """A TEXT value, as its bytes (a database may hold text that is not UTF-8)."""


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_COLLATION = re.compile(r"\bCOLLATE\s+(\"[^\"]{1,64}\"|`[^`]{1,64}`|\[[^\]]{1,64}\]|\w{1,64})",
                        re.I)


def _binary_order(a: str, b: str) -> int:
    return (a > b) - (a < b)


def _quick_check(conn: sqlite3.Connection) -> tuple[object, ...] | None:
    """`PRAGMA quick_check`'s first row; ("ok",) when only an application's own function
    (a CHECK constraint's, an index's) is missing here: that is no damage."""
    try:
        row = conn.execute("PRAGMA quick_check(1)").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such function" in str(exc) or "no such collation" in str(exc):
            return ("ok",)
        raise
    return tuple(row) if row is not None else None


def _cut_short(data: bytes) -> bool:
    """The header's page count (when valid: its version-valid-for number equals the change
    counter) says the file is longer than it is."""
    if len(data) < 100 or data[24:28] != data[92:96]:
        return False
    size = int.from_bytes(data[16:18], "big")
    size = 65536 if size == 1 else size
    return len(data) < int.from_bytes(data[28:32], "big") * size


def values(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """Each long enough BLOB or TEXT value of the database's ordinary tables."""
    stop: list[ScanLimitExceeded] = []

    def progress() -> int:
        try:
            ctx.check_time()
        except ScanLimitExceeded as exc:
            stop.append(exc)
            return 1
        return 0

    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max(1, min(ctx.output_bound(), 1 << 30)))
        conn.set_progress_handler(progress, _STEPS)
        conn.execute("PRAGMA trusted_schema=OFF")
        conn.execute("PRAGMA cell_size_check=ON")
        if data[18:20] == b"\x02\x02":  # WAL mode, which a database in memory cannot be in:
            data = data[:18] + b"\x01\x01" + data[20:]  # the same pages, as the legacy mode
        conn.deserialize(data)
        conn.execute("PRAGMA query_only=ON")
        for (sql,) in conn.execute("SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL"):
            for name in _COLLATION.findall(sql) if isinstance(sql, str) else ():
                # an application's own collation (Android's LOCALIZED): binary order here
                conn.create_collation(name.strip('"`[]'), _binary_order)
        if _cut_short(data) or _quick_check(conn) != ("ok",):
            ctx.broken("SQLite")  # (and what can still be read is read)
        tables = conn.execute("SELECT name, sql FROM sqlite_schema WHERE type = 'table'"
                              " ORDER BY rootpage").fetchall()
        queries: list[tuple[str, list[str]]] = []
        for name, sql in tables:
            if not isinstance(name, str):
                continue
            if isinstance(sql, str) and sql.lstrip()[:14].upper().startswith("CREATE VIRTUAL"):
                continue  # its module's rows: what the file holds is in its shadow tables
            stored = [c for _cid, c, _t, _nn, _d, _pk, hidden in
                      conn.execute(f"PRAGMA table_xinfo({_quoted(name)})")
                      if hidden in (0, 3) and isinstance(c, str)]  # (3: generated, stored)
            if stored:
                queries.append((name, stored))
        conn.text_factory = _Text
        for name, stored in queries:
            # (identifiers quoted as SQL quotes them; nothing else comes from the file)
            query = f"SELECT {', '.join(map(_quoted, stored))} FROM {_quoted(name)}"  # noqa: S608
            for row in conn.execute(query):
                for column, value in zip(stored, row, strict=True):
                    if not isinstance(value, bytes):
                        continue
                    if len(value) < (_MIN_TEXT if isinstance(value, _Text) else _MIN_BLOB):
                        continue
                    ctx.charge_child(len(value))
                    yield Child(data=bytes(value), name=f"{name}.{column}",
                                origin="sqlite-value")
    except (sqlite3.Error, ValueError):  # ValueError: a name holding NUL
        if stop:
            raise stop[0] from None
        ctx.broken("SQLite")
    finally:
        conn.close()
