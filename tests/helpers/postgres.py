"""PostgreSQL for tests: a throw-away schema per test on the server CI and dev machines run.

The server is `ZEROHOUR_TEST_POSTGRES` (default `postgresql://postgres@127.0.0.1:5432/test`,
trust auth; `scripts/services` starts it). Each test gets a fresh schema, reached through a URL
whose `options` set `search_path`, and the schema is dropped afterwards. An unreachable server
fails the `needs_postgres` tests (they must run in CI); deselect them locally with
`-m "not needs_postgres"`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import psycopg
import pytest

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def server_url() -> str:
    return os.environ.get("ZEROHOUR_TEST_POSTGRES", DEFAULT_URL)


def with_schema(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


@contextmanager
def fresh_schema(prefix: str = "zh_test") -> Iterator[str]:
    """Create a schema, yield a store URL bound to it, drop it (and everything in it) after."""
    base = server_url()
    schema = f"{prefix}_{secrets.token_hex(6)}"
    try:
        with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL not reachable at {base} ({exc}); run scripts/services, set "
            "ZEROHOUR_TEST_POSTGRES, or deselect with -m 'not needs_postgres'"
        )
    try:
        yield with_schema(base, schema)
    finally:
        with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
