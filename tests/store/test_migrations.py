"""Migrations on Alembic: the store's track from the first revision on, run by
Store.open, compared with the models by ``alembic check`` on both engines."""

from __future__ import annotations

from collections.abc import Callable

import factories
import pytest
import sqlalchemy as sa
from samverka.errors import StoreError
from samverka.protocol.entries import parse_signed
from samverka.store import migrations
from samverka.store.store import Store

LATEST = migrations.latest_version()
NODE_TABLES = {"log", "feed_heads", "records", "cursors", "records_fts", "erased", "store_meta"}


def _tables(store: Store) -> set[str]:
    names = set(sa.inspect(store.engine).get_table_names())
    return {n for n in names if not n.startswith("records_fts_")}  # FTS5's shadow tables


def test_a_new_database_is_migrated_on_open(store: Store) -> None:
    assert LATEST >= 2
    assert store.schema_version() == LATEST
    assert store.migrate() == []  # a second run is a no-op
    # a node's database holds the store's tables and its version table, nothing else
    assert _tables(store) == NODE_TABLES | {"alembic_version_store"}


def test_migrate_twice_is_a_no_op(store_url: str) -> None:
    with Store.open(store_url, migrate=False) as store:
        assert store.schema_version() == 0
        assert store.migrate() == list(range(1, LATEST + 1))
        assert store.migrate() == []
        assert store.schema_version() == LATEST


def test_a_database_at_migration_1_is_upgraded(
    store_url: str, leksand: factories.FeedWriter
) -> None:
    with Store(store_url) as old:
        assert old.migrate(upto=1) == [1]
        assert old.schema_version() == 1
        assert not sa.inspect(old.engine).has_table("records_fts")
    with Store.open(store_url) as store:
        assert store.schema_version() == LATEST
        store.append([parse_signed(leksand.publish(title="Äldreomsorg i glesbygd"))])
        assert [h.record_id for h in store.search("glesbygd")] == ["uc-1"]


def test_the_search_migration_indexes_records_already_held(
    store: Store, leksand: factories.FeedWriter
) -> None:
    store.append(
        [parse_signed(leksand.publish(record_id=f"uc-{i}", title=f"Skola {i}")) for i in range(3)]
    )
    store.append(
        [
            parse_signed(
                leksand.append(factories.make_tombstone(parse_signed(leksand.entries[0]).record))
            )
        ]
    )
    # turn the database back into one written before revision 2 existed
    first = migrations.revisions("store")[0]
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE records_fts")
        conn.exec_driver_sql("DROP TABLE erased")  # revision 3's
        conn.exec_driver_sql("DROP TABLE store_meta")  # revision 4's
        conn.execute(sa.text("UPDATE alembic_version_store SET version_num = :v"), {"v": first})
    assert store.schema_version() == 1
    assert store.migrate() == list(range(2, LATEST + 1))
    assert sorted(h.record_id for h in store.search("skola")) == ["uc-1", "uc-2"]


def test_alembic_check_finds_the_models_and_the_database_agree(store: Store) -> None:
    """``alembic check`` (as make lint runs it), here on both engines: the models are
    the source of truth, the full-text index is left out of the comparison."""
    migrations.check(store.engine)


def test_alembic_check_finds_a_difference(store: Store) -> None:
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE cursors ADD COLUMN note VARCHAR(10)")
    with pytest.raises(StoreError, match="disagree") as info:
        migrations.check(store.engine)
    assert "note" in str(info.value)


def test_a_track_is_registered_once() -> None:
    track = migrations.registered("store")
    migrations.register_track(track)  # again: harmless
    with pytest.raises(ValueError, match="already registered"):
        migrations.register_track(
            migrations.Track("store", track.script_location, frozenset({"log"}))
        )
    with pytest.raises(StoreError, match="no migrations"):
        migrations.registered("no-such-track")


def test_a_database_from_a_newer_samverka_is_refused(
    store: Store, open_store: Callable[..., Store]
) -> None:
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version_store SET version_num = 'store_9999'")
    assert migrations.applied_versions(store.engine, ["store"]) == {"store": -1}
    with pytest.raises(StoreError, match="newer than this software") as info:
        open_store()
    assert "store_9999" in str(info.value)


def test_an_unreachable_database_is_a_store_error() -> None:
    with pytest.raises(StoreError) as info:
        Store.open("postgresql://postgres@127.0.0.1:1/nothing")
    assert info.value.hint
    with pytest.raises(StoreError):
        Store.open("mysql://nope")
