"""Fixtures for the attack tests: one real hub process with enrolled members.

``arena.py`` (the hub process, in-process enrollment, raw Publish calls, the hub's
state) and ``soakresults.py`` (results for the ``make soak`` table) sit next to this
file and are shared with tests/faults and tests/load. ``simhub.py`` is the in-memory
misbehaving hub.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))

import arena

# The same profiles as tests/core (``HYPOTHESIS_PROFILE=soak`` for ``make soak``).
settings.register_profile(
    "default", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "soak",
    max_examples=20_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

#: The arena's members: Leksand attacks, Tibro is the victim, Gagnef relays, Rättvik
#: gets revoked, Falun is kept for clock tests.
MEMBERS = (arena.LEKSAND, arena.TIBRO, arena.GAGNEF, arena.RATTVIK, arena.FALUN)


@pytest.fixture(scope="session")
def hub_arena(tmp_path_factory: pytest.TempPathFactory) -> Iterator[arena.Arena]:
    """One ``hub serve`` (SQLite) for every attack test, with MEMBERS enrolled. It stops
    after this folder's last test (see pytest_runtest_teardown), not at the end of the
    whole run."""
    tmp = tmp_path_factory.mktemp("arena")
    members = arena.build_hub(tmp / "hub", MEMBERS)
    hub = arena.serve_hub(tmp / "hub", tmp / "logs")
    _RUNNING.append(hub)
    try:
        yield arena.Arena(hub, members)
    finally:
        code = hub.stop()
    assert code == 0, hub.log()[-3000:]


_RUNNING: list[arena.HubProcess] = []
HERE = Path(__file__).parent


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the arena's hub once the next test is not one of this folder's (a session
    fixture would keep it running, idle, through the rest of ``make test``)."""
    if nextitem is None or HERE not in Path(nextitem.path).parents:
        while _RUNNING:
            code = _RUNNING.pop().stop()
            assert code == 0, f"the arena's hub exited {code}"
