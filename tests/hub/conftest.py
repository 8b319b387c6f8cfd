"""Fixtures for the hub's tests (membership here; aggregation adds its own files).

``hubkit.py`` in this folder holds helpers the tests import (``import hubkit``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from samverka.protocol.signing import SigningKey

sys.path.insert(0, str(Path(__file__).parent))

import hubkit


@pytest.fixture(scope="session")
def hub_key() -> SigningKey:
    """The council's directory-signing key, one per test session (generating is cheap)."""
    return SigningKey.generate()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The hub database: a SQLite file, or a fresh schema in the session's PostgreSQL."""
    if request.param == "sqlite":
        return ""
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def hub(tmp_path: Path, store_url: str) -> Iterator[hubkit.HubUnderTest]:
    """A hub folder made by init_hub, opened, with a clock the test can move."""
    with hubkit.make_hub(tmp_path / "hub", store_url=store_url) as made:
        yield made
