"""Fixtures for the web catalog's tests: a seeded hub (SQLite, and PostgreSQL for the
key routes), the ASGI test client, and headless Chromium for the browser tests.

``webkit.py`` in this folder seeds the hub through the real path (``import webkit``).
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))

import webkit
from webkit import client_for


@pytest.fixture(scope="session")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webkit.Federation]:
    """The demo federation at a hub on SQLite (shared by the read-only tests)."""
    with webkit.seeded_hub(tmp_path_factory.mktemp("web")) as seeded:
        yield seeded


@pytest.fixture(scope="session")
def client(federation: webkit.Federation) -> TestClient:
    return client_for(federation)


@pytest.fixture(scope="session")
def pg_federation(
    tmp_path_factory: pytest.TempPathFactory, pg_database: str
) -> Iterator[webkit.Federation]:
    """The same federation at a hub on PostgreSQL (a schema of the session's database)."""
    schema = f"web_{secrets.token_hex(6)}"
    dsn = pg_database.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = f"{pg_database}?options=-csearch_path%3D{schema}"
        with webkit.seeded_hub(tmp_path_factory.mktemp("web-pg"), store_url=url) as seeded:
            yield seeded
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="session")
def pg_client(pg_federation: webkit.Federation) -> TestClient:
    return client_for(pg_federation)
