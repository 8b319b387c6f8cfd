"""Fixtures for the store's tests: every test runs on SQLite and on PostgreSQL.

``store`` is a migrated Store on a fresh database of each engine (a WAL SQLite file
in tmp_path; a fresh schema in the session's throwaway PostgreSQL database, see
tests/conftest.py). Entries are built with the real core through tests/factories.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import factories
import pytest
from samverka.store.store import Store

ENGINES = ("sqlite", "postgresql")


@pytest.fixture(params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(engine_name: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A URL of an empty database of the engine under test."""
    if engine_name == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def open_store(store_url: str) -> Iterator[Callable[..., Store]]:
    """Open (more) Store objects on the test's database; all are closed afterwards."""
    opened: list[Store] = []

    def _open(**kwargs: object) -> Store:
        store = Store.open(store_url, **kwargs)  # type: ignore[arg-type]
        opened.append(store)
        return store

    yield _open
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[..., Store]) -> Store:
    return open_store()


@pytest.fixture
def leksand() -> factories.FeedWriter:
    return factories.FeedWriter(factories.LEKSAND)


@pytest.fixture
def tibro() -> factories.FeedWriter:
    return factories.FeedWriter(factories.TIBRO)
