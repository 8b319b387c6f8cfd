"""Migrations: numbered, forward-only, recorded, in tracks, from the first schema on."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import factories
import pytest
import sqlalchemy as sa
from samverka.errors import StoreError
from samverka.protocol.entries import parse_signed
from samverka.store import migrations
from samverka.store.migrations import Migration, register_migrations
from samverka.store.store import Store
from samverka.store.tables import schema_migrations
from sqlmodel import SQLModel

LATEST = migrations.latest_version()
#: The node store's tables (the hub's own, in the same metadata, are checked in tests/hub).
NODE_TABLES = {"log", "feed_heads", "records", "cursors", "schema_migrations"}


def test_a_new_database_is_migrated_on_open(store: Store) -> None:
    assert LATEST >= 2
    assert store.schema_version() == LATEST
    assert store.migrate() == []  # a second run is a no-op


def test_migrate_twice_is_a_no_op(store_url: str) -> None:
    with Store.open(store_url, migrate=False) as store:
        assert store.schema_version() == 0
        assert store.migrate() == list(range(1, LATEST + 1))
        assert store.migrate() == []
        assert store.schema_version() == LATEST
        with store.engine.connect() as conn:
            rows = conn.execute(sa.select(schema_migrations.c.track, schema_migrations.c.version))
            assert sorted(tuple(r) for r in rows) == [("store", v) for v in range(1, LATEST + 1)]


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
    # turn the database back into one written before migration 2 existed
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE records_fts")
        conn.execute(sa.delete(schema_migrations).where(schema_migrations.c.version >= 2))
    assert store.schema_version() == 1
    assert store.migrate() == list(range(2, LATEST + 1))
    assert sorted(h.record_id for h in store.search("skola")) == ["uc-1", "uc-2"]


def test_models_match_the_migrated_schema(store: Store) -> None:
    """The sqlmodel models (what the code queries) and the migrations (what creates
    the tables) are written separately; they must agree column for column."""
    inspector = sa.inspect(store.engine)
    node_tables = [t for t in SQLModel.metadata.sorted_tables if t.name in NODE_TABLES]
    assert {t.name for t in node_tables} == NODE_TABLES
    for table in node_tables:
        db_columns = {c["name"]: c for c in inspector.get_columns(table.name)}
        assert set(db_columns) == {c.name for c in table.columns}, table.name
        for column in table.columns:
            assert db_columns[column.name]["nullable"] == column.nullable, (
                table.name,
                column.name,
            )
        db_pk = inspector.get_pk_constraint(table.name)["constrained_columns"]
        assert set(db_pk) == {c.name for c in table.primary_key.columns}, table.name


def test_another_track_is_applied_after_the_store(store_url: str) -> None:
    track = f"test_{secrets.token_hex(3)}"

    def create(conn: sa.Connection) -> None:
        conn.exec_driver_sql(f"CREATE TABLE {track}_members (code VARCHAR(4) PRIMARY KEY)")

    def add_name(conn: sa.Connection) -> None:
        conn.exec_driver_sql(f"ALTER TABLE {track}_members ADD COLUMN name VARCHAR(100)")

    register_migrations(track, [Migration(1, "members", create)])
    register_migrations(track, [Migration(1, "members", create)])  # again: harmless
    with Store.open(store_url, tracks=(track,)) as store:
        assert store.schema_version() == LATEST
        assert store.schema_version(track) == 1
    register_migrations(track, [Migration(1, "members", create), Migration(2, "name", add_name)])
    with Store.open(store_url, tracks=("store", track)) as store:
        assert store.schema_version(track) == 2
        assert store.migrate() == []
        columns = {c["name"] for c in sa.inspect(store.engine).get_columns(f"{track}_members")}
        assert columns == {"code", "name"}


def test_bad_registrations_are_refused() -> None:
    def noop(conn: sa.Connection) -> None:
        return None

    with pytest.raises(ValueError, match="expected version 1"):
        register_migrations("test_bad", [Migration(2, "two", noop)])
    with pytest.raises(ValueError, match="already registered"):
        register_migrations("store", [Migration(1, "something else", noop)])
    with pytest.raises(StoreError, match="no migrations"):
        migrations.registered("no-such-track")


def test_a_database_from_a_newer_samverka_is_refused(
    store: Store, open_store: Callable[..., Store]
) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(schema_migrations).values(
                track="store", version=LATEST + 1, name="from the future", applied_at_ms=0
            )
        )
        # pretend our newest migration is not yet applied, so migrate has work to do
        conn.execute(sa.delete(schema_migrations).where(schema_migrations.c.version == LATEST))
    with pytest.raises(StoreError, match="newer than this software"):
        open_store()


def test_an_unreachable_database_is_a_store_error() -> None:
    with pytest.raises(StoreError) as info:
        Store.open("postgresql://postgres@127.0.0.1:1/nothing")
    assert info.value.hint
    with pytest.raises(StoreError):
        Store.open("mysql://nope")
