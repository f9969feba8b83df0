"""The store backends every test in `tests/store/` runs against: SQLite and PostgreSQL.

The PostgreSQL parameter gets a fresh schema per test (created here, dropped after) and carries
the `needs_postgres` marker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from helpers.postgres import fresh_schema
from zerohour.store.base import Store
from zerohour.store.postgres import PostgresStore
from zerohour.store.sqlite import SqliteStore

Opener = Callable[[], Awaitable[Store]]


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL store URL bound to a fresh schema (dropped after the test)."""
    with fresh_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.needs_postgres)])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    if request.param == "sqlite":
        return lambda: SqliteStore.open(tmp_path / "store.sqlite3")
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_url")
        return lambda: PostgresStore.open(url, max_size=4)
    raise AssertionError(request.param)


_SQLITE_ONLY = {
    # SQLite has one writer: another task's write waits for an open transaction. PostgreSQL
    # runs non-conflicting writes of other tasks concurrently (MVCC); what the transaction
    # must guarantee there, isolation and all-or-nothing, is asserted in test_postgres.py.
    "test_concurrent_writers_do_not_interleave_a_transaction": (
        "PostgreSQL does not serialise non-conflicting writers; isolation is tested in "
        "test_postgres.py::test_transaction_is_isolated_until_commit"
    ),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        name = getattr(item, "originalname", item.name)
        callspec = getattr(item, "callspec", None)
        if (
            name in _SQLITE_ONLY
            and callspec is not None
            and callspec.params.get("opener") == "postgres"
        ):
            item.add_marker(pytest.mark.skip(reason=_SQLITE_ONLY[name]))
