"""The hub's migration track ``"hub"``: its tables in the node's database, on Alembic.

Registered on import; open the store with ``tracks=("store", "hub")`` (the store's
track always runs first: the hub's depends on it). The environment and revisions are
in ``samverka_hub/alembic/`` (version table ``alembic_version_hub``); the rules are
those of :mod:`samverka.store.migrations`. A node's database never gets these tables.
"""

from __future__ import annotations

from pathlib import Path

from samverka.store.migrations import Track, register_track

from samverka_hub.tables import HubTable

HUB_TRACK = "hub"

TRACK = Track(
    HUB_TRACK,
    Path(__file__).parent / "alembic",
    frozenset(model.table().name for model in HubTable.__subclasses__()),
)

register_track(TRACK)
