"""Fixtures for the hub's tests (membership here; aggregation adds its own files)."""

from __future__ import annotations

import pytest
from samverka.signing import SigningKey


@pytest.fixture(scope="session")
def hub_key() -> SigningKey:
    """The council's directory-signing key, one per test session (generating is cheap)."""
    return SigningKey.generate()
