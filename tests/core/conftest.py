"""Fixtures and Hypothesis profiles for the pure core's tests.

Profiles (select with ``HYPOTHESIS_PROFILE``):

- ``default``: what ``make test`` runs; the mutation suite totals well over 500
  cases and the whole folder stays within seconds.
- ``soak``: at least 20,000 cases per property (``make soak``).
"""

from __future__ import annotations

import os

import factories
import pytest
from hypothesis import HealthCheck, settings
from samverka.protocol.kommuner import HUB_ORIGIN

settings.register_profile(
    "default",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "soak",
    max_examples=20_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def leksand() -> factories.FeedWriter:
    return factories.FeedWriter(factories.LEKSAND)


@pytest.fixture
def tibro() -> factories.FeedWriter:
    return factories.FeedWriter(factories.TIBRO)


@pytest.fixture
def council() -> factories.FeedWriter:
    return factories.FeedWriter(HUB_ORIGIN)
