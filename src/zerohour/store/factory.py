"""`open_store`: pick the backend from `--store` (a URL or a path) and open it.

`postgresql://...` (or `postgres://...`) opens a `PostgresStore` (a cluster of gateways on one
database); anything else is a SQLite file, relative paths under the data dir, and no target at
all is the default `<data_dir>/zerohour.sqlite3`. `open_bodies` pairs a store with where its
message bodies live: in PostgreSQL for a PostgresStore, the local spool otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path

from zerohour.errors import ConfigError
from zerohour.store.base import Store
from zerohour.store.bodies import BodyStore, PostgresBodies, SqliteBodies
from zerohour.store.sqlite import SqliteStore

DEFAULT_SQLITE_NAME = "zerohour.sqlite3"


def is_postgres_url(target: str) -> bool:
    """True for a `postgresql://` (or `postgres://`) store URL."""
    return target.startswith(("postgresql://", "postgres://"))


def describe_store(url_or_path: str | Path | None) -> str:
    """A loggable name for the target: a URL without its password."""
    if url_or_path is None or str(url_or_path) == "":
        return DEFAULT_SQLITE_NAME
    text = str(url_or_path)
    if is_postgres_url(text) and "@" in text:
        scheme, rest = text.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}@{host}" if user else f"{scheme}://{host}"
    return text


def resolve_store(url_or_path: str | Path | None, data_dir: Path) -> str | Path:
    """The PostgreSQL URL (a str) or the SQLite file (a Path) that `url_or_path` names."""
    if url_or_path is None or str(url_or_path) == "":
        return data_dir / DEFAULT_SQLITE_NAME
    text = str(url_or_path)
    if is_postgres_url(text):
        return text
    if "://" in text:
        raise ConfigError(f"unsupported store URL {describe_store(text)!r}: use postgresql://"
                          " or a SQLite file path")
    path = Path(text).expanduser()
    return path if path.is_absolute() else data_dir / path


async def open_store(
    url_or_path: str | Path | None,
    *,
    data_dir: Path,
    pool_size: int = 10,
) -> Store:
    """Open (creating and migrating) the store named by `url_or_path`."""
    target = resolve_store(url_or_path, data_dir)
    if isinstance(target, str):
        from zerohour.store.postgres import PostgresStore  # psycopg only for a cluster

        return await PostgresStore.open(target, max_size=pool_size)
    return await SqliteStore.open(target)


def open_bodies(store: Store, spool: BodyStore) -> BodyStore:
    """Where this store's bodies live: PostgreSQL for a cluster store; the SQLite store and,
    for large ones, the local spool for the embedded store; else the spool."""
    pg = sys.modules.get("zerohour.store.postgres")  # not imported: not a PostgresStore
    if pg is not None and isinstance(store, pg.PostgresStore):
        return PostgresBodies(store)
    if isinstance(store, SqliteStore):
        return SqliteBodies(store, spool)
    return spool
