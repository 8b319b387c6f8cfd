"""Fixtures for the load tests: a real hub with many members, and swarms of simulated nodes.

The hub kit (``arena.py``) and the soak results (``soakresults.py``) live in
tests/attacks; ``make soak`` (HYPOTHESIS_PROFILE=soak) runs the long versions.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "attacks"))


@pytest.fixture(scope="module")
def pg_schema(pg_database: str) -> Iterator[str]:
    """A schema of its own in the session's PostgreSQL database, for a module's hub."""
    schema = f"faults_{secrets.token_hex(4)}"
    dsn = pg_database.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{pg_database}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
