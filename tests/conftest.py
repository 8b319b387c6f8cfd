"""Fixtures shared by every test folder.

PostgreSQL: the real server at 127.0.0.1:5432 (trust auth, user ``postgres``). Each
test session creates a throwaway database ``samverka_t_<random>`` and drops it at
the end; each test that asks for ``pg_url`` gets a fresh schema in it (cheap, and
fully isolated). An unreachable server FAILS the tests that need it, never skips.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

PG_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=5"
PG_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432"


def _pg_admin() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(PG_ADMIN_DSN, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL at 127.0.0.1:5432 is unreachable ({exc}); the store and hub tests "
            "need it: start it (e.g. `pg_ctlcluster 15 main start`) and run again",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A PostgreSQL database for this test session, as a SQLAlchemy URL."""
    name = f"samverka_t_{secrets.token_hex(4)}"
    with _pg_admin() as admin:
        admin.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")
    try:
        yield f"{PG_SERVER_URL}/{name}"
    finally:
        with _pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_schema(pg_database: str, prefix: str) -> Iterator[str]:
    """A new, empty schema in the session's database, dropped after: a URL whose
    search_path is it."""
    schema = f"{prefix}_{secrets.token_hex(6)}"
    dsn = pg_database.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{pg_database}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    """A fresh, empty schema for one test."""
    with fresh_schema(pg_database, "t") as url:
        yield url


@pytest.fixture(scope="module")
def pg_schema(pg_database: str) -> Iterator[str]:
    """A fresh, empty schema for a module's hub (shared by its tests)."""
    with fresh_schema(pg_database, "module") as url:
        yield url
