"""Fixtures shared by every test folder.

PostgreSQL: ``pg_server`` (tests/pgserver.py), started lazily by the first test that
needs it: the running server ``SAMVERKA_TEST_PG`` names (a libpq URL such as
``postgresql://postgres@127.0.0.1:5432/test``; CI names the machine's), else a throwaway
cluster of our own on a free port, stopped and deleted at the end of the session. Each
test session creates a throwaway database ``samverka_t_<random>`` and drops it at the
end; each test that asks for ``pg_url`` gets a fresh schema in it (cheap, and fully
isolated). A server that cannot be had FAILS the tests that need it, never skips; tests
that stop or restart PostgreSQL (``pg_restartable``) get a throwaway cluster of their
own when the server is a named one.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pgserver
import psycopg
import pytest


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pgserver.PgServer]:
    """The session's PostgreSQL server (see the module's docstring)."""
    try:
        server = pgserver.from_environment(say=lambda _: None)
    except pgserver.PgServerError as exc:
        pytest.fail(f"no PostgreSQL for the tests: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def pg_restartable(pg_server: pgserver.PgServer) -> Iterator[pgserver.PgServer]:
    """A server of our own, for tests that stop, start, pause or restart it: the
    session's when it is a throwaway cluster, else (``SAMVERKA_TEST_PG`` names one, which
    is not ours to restart: CI's) a throwaway cluster started for them, so they run
    everywhere and never skip."""
    if pg_server.throwaway:
        yield pg_server
        return
    try:
        server = pgserver.start_throwaway(say=lambda _: None)
    except pgserver.PgServerError as exc:
        pytest.fail(f"no throwaway PostgreSQL for the fault tests: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.close()


def _pg_admin(server: pgserver.PgServer) -> psycopg.Connection[tuple[object, ...]]:
    try:
        return server.connect()
    except psycopg.OperationalError as exc:
        advice = (
            f"its log:\n{server.log_tail()}"
            if isinstance(server, pgserver.Throwaway)
            else f"start it, or unset {pgserver.ENV} to have the tests start their own"
        )
        pytest.fail(f"{server.describe()} is unreachable ({exc}); {advice}", pytrace=False)


@pytest.fixture(scope="session")
def pg_database(pg_server: pgserver.PgServer) -> Iterator[str]:
    """A PostgreSQL database for this test session, as a SQLAlchemy URL."""
    name = f"samverka_t_{secrets.token_hex(4)}"
    with _pg_admin(pg_server) as admin:
        admin.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")
    try:
        yield pg_server.url(name)
    finally:
        with _pg_admin(pg_server) as admin:
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
