"""The hub's migration track on Alembic: after the store's, on SQLite and PostgreSQL;
``alembic check`` of both tracks; a hub database made before Alembic taken over."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from fixtures.legacy_migrations import legacy_migrate
from samverka.store import migrations
from samverka.store.store import Store
from samverka_hub.migrations import HUB_TRACK
from samverka_hub.tables import HubTable, MemberRow

TRACKS = ("store", HUB_TRACK)


@pytest.fixture(params=("sqlite", "postgresql"))
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.db'}"
    return str(request.getfixturevalue("pg_url"))


def test_a_hub_database_gets_both_tracks_and_matches_the_models(url: str) -> None:
    with Store.open(url, tracks=TRACKS) as store:
        versions = migrations.applied_versions(store.engine, TRACKS)
        assert versions == {t: migrations.latest_version(t) for t in TRACKS}
        names = set(sa.inspect(store.engine).get_table_names())
        assert {m.table().name for m in HubTable.__subclasses__()} <= names
        assert {"alembic_version_store", "alembic_version_hub"} <= names
        migrations.check(store.engine, TRACKS)


def test_a_hub_database_made_before_alembic_is_taken_over(url: str) -> None:
    member = MemberRow(kommunkod="2029", name="Leksand", status=1, joined_at_ms=1)
    with Store(url) as old:
        legacy_migrate(old.engine, TRACKS)
        with old.engine.begin() as conn:
            conn.execute(sa.insert(MemberRow.table()).values(**member.model_dump()))
    with Store.open(url, tracks=TRACKS) as store:
        # stamped at the old framework's version, then upgraded to the newest revision
        latest = {t: migrations.latest_version(t) for t in TRACKS}
        assert migrations.applied_versions(store.engine, TRACKS) == latest
        with store.engine.connect() as conn:
            rows = conn.execute(sa.select(MemberRow.table())).all()
            hub_rev = conn.exec_driver_sql("SELECT version_num FROM alembic_version_hub").scalar()
        assert [r.kommunkod for r in rows] == ["2029"]
        assert hub_rev == migrations.revisions(HUB_TRACK)[-1]
        migrations.check(store.engine, TRACKS)


def test_a_node_database_opened_as_a_node_never_gets_hub_tables(url: str) -> None:
    with Store.open(url) as store:
        names = set(sa.inspect(store.engine).get_table_names())
    assert not {n for n in names if n.startswith("hub_")}
    assert "alembic_version_hub" not in names
