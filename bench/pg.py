"""PostgreSQL helpers for the benches: a scratch database, the server's CPU, statement counts.

A bench that runs zerohour on PostgreSQL gets its own database (`scratch_database`), so its
tables never meet another run's, and the server log lines of its sessions can be told apart by
the `%u@%d` of the default `log_line_prefix`: with `count=True` every session logs its
statements (`log_statement=all`, set per connection: this costs server CPU, so a counting run is
separate from a timed one) and `StatementLog.count()` reads how many the server executed.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = os.environ.get("ZEROHOUR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
DEFAULT_LOG = Path(
    os.environ.get("ZEROHOUR_BENCH_PG_LOG", "/var/log/postgresql/postgresql-15-main.log")
)


def postgres_cpu() -> float:
    """Seconds of CPU used by the PostgreSQL server so far: live postgres processes plus the
    reaped children of the postmaster (backends that already exited). Server-wide: other
    sessions' work during a measurement counts too."""
    tick = os.sysconf("SC_CLK_TCK")
    procs: dict[str, tuple[str, int, int]] = {}  # pid -> (ppid, own ticks, reaped children)
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        if not comm.startswith("postgres"):
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
        procs[pid] = (fields[1], utime + stime, cutime + cstime)
    total = 0
    for ppid, own, reaped in procs.values():
        total += own
        if ppid not in procs:  # the postmaster: its children's CPU is added when they exit
            total += reaped
    return total / tick


def _proc_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backend_cpu(url: str, database: str) -> dict[int, float]:
    """CPU seconds so far of each server backend connected to `database` (pid -> seconds):
    the part of the server's work that is one client's, unlike `postgres_cpu`."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname=%s AND pid<>pg_backend_pid()",
            (database,),
        ).fetchall()
    return {int(pid): _proc_cpu(int(pid)) for (pid,) in rows}


def _with_options(url: str, database: str, options: str) -> str:
    """`url` pointed at `database`, with libpq `options` (URL-encoded) added."""
    base, _, query = url.partition("?")
    scheme, rest = base.split("://", 1)
    hostpart = rest.split("/", 1)[0]
    params = [p for p in query.split("&") if p and not p.startswith("options=")]
    if options:
        params.append("options=" + options.replace(" ", "%20").replace("=", "%3D"))
    return f"{scheme}://{hostpart}/{database}" + ("?" + "&".join(params) if params else "")


@dataclass
class StatementLog:
    """Counts the statements the server logged for one database since `start()`."""

    database: str
    log: Path = DEFAULT_LOG
    offset: int = 0

    def start(self) -> None:
        self.offset = self.log.stat().st_size if self.log.exists() else 0

    def count(self) -> tuple[int, int]:
        """(statements, of which BEGIN/COMMIT/ROLLBACK) logged since `start()`."""
        tag = f"@{self.database} LOG:  "
        total = control = 0
        with open(self.log, "rb") as fh:
            fh.seek(self.offset)
            for raw in fh:
                line = raw.decode(errors="replace")
                i = line.find(tag)
                if i < 0:
                    continue
                text = line[i + len(tag) :]
                if text.startswith("statement: "):
                    sql = text[len("statement: ") :]
                elif text.startswith("execute "):
                    sql = text.split(": ", 1)[1] if ": " in text else ""
                else:
                    continue
                total += 1
                if sql.strip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
                    control += 1
        return total, control


@contextmanager
def scratch_database(
    url: str = DEFAULT_URL, *, count: bool = False
) -> Iterator[tuple[str, StatementLog | None]]:
    """A new, empty database on the server of `url` (dropped afterwards); yields its URL and,
    with `count`, a `StatementLog` (the URL then makes every session log its statements)."""
    import psycopg  # only the benches that use PostgreSQL need it

    name = f"zh_bench_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        opts = "-c log_statement=all" if count else ""
        stmts = StatementLog(name) if count else None
        yield _with_options(url, name, opts), stmts
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
