"""Takeover: a database made by the migration framework before Alembic (its DDL and
``schema_migrations`` frozen in tests/fixtures/legacy_migrations.py) is stamped at the
matching revision and upgraded by Store.open, on SQLite and PostgreSQL, losing nothing:
the same feed heads, log and search results before and after."""

from __future__ import annotations

import factories
import pytest
import sqlalchemy as sa
from fixtures.legacy_migrations import legacy_migrate
from samverka.errors import StoreError
from samverka.protocol.entries import parse_signed
from samverka.store import migrations
from samverka.store.store import Store
from samverka.store.tables import erased

#: The store track's newest revision: a taken-over database is upgraded to it.
LATEST = migrations.latest_version()
QUERIES = ("äldreomsorg", "skola", "glesbygd", "får", "chatt")


def _fill(store: Store, leksand: factories.FeedWriter, tibro: factories.FeedWriter) -> None:
    # Today's append also reads the erasures held (store_0003's table, which the old code
    # never had): give it one for the filling, then take it away again.
    with store.engine.begin() as conn:
        erased.create(conn)
    _append_all(store, leksand, tibro)
    with store.engine.begin() as conn:
        erased.drop(conn)


def _append_all(store: Store, leksand: factories.FeedWriter, tibro: factories.FeedWriter) -> None:
    titles = ["Äldreomsorg i glesbygd", "Skola och AI", "Får vi chatta?", "Skolskjuts"]
    for i, title in enumerate(titles):
        store.append([parse_signed(leksand.publish(record_id=f"uc-{i}", title=title))])
        store.append([parse_signed(tibro.publish(record_id=f"t-{i}", title=f"{title} i Tibro"))])
    # a new version and a retraction, so the current view differs from the log
    store.append([parse_signed(leksand.publish(record_id="uc-1", title="Skola och språkmodeller"))])
    retracted = parse_signed(leksand.entries[0]).record
    store.append([parse_signed(leksand.append(factories.make_tombstone(retracted)))])


def _state(store: Store) -> tuple[object, ...]:
    heads = [(h.origin, h.sequence, h.entry_hash) for h in store.heads()]
    log = [e.SerializeToString() for e in store.read_log(0, limit=1000).entries]
    found = {q: [(h.origin, h.record_id, h.title) for h in store.search(q)] for q in QUERIES}
    return heads, store.log_position(), log, found


def test_a_database_made_before_alembic_is_taken_over(
    store_url: str, leksand: factories.FeedWriter, tibro: factories.FeedWriter
) -> None:
    with Store(store_url) as old:
        legacy_migrate(old.engine, ("store",))
        _fill(old, leksand, tibro)  # the store's tables as the old code made them
        before = _state(old)
    assert any(before[3].values())  # searches find something to compare

    with Store.open(store_url) as store:
        assert _state(store) == before
        assert migrations.applied_versions(store.engine, ["store"]) == {"store": LATEST}
        with store.engine.connect() as conn:
            stamped = conn.exec_driver_sql("SELECT version_num FROM alembic_version_store")
            assert [r[0] for r in stamped] == migrations.revisions("store")[-1:]
            legacy = conn.exec_driver_sql("SELECT track, version FROM schema_migrations")
            assert sorted(tuple(r) for r in legacy) == [("store", 1), ("store", 2)]
        migrations.check(store.engine)  # the models match the taken-over database
        # and it goes on as any other: a new entry is stored and found
        store.append([parse_signed(leksand.publish(record_id="uc-9", title="Glesbygdsskola"))])
        assert "uc-9" in {h.record_id for h in store.search("glesbygdsskola")}
    with Store.open(store_url) as again:  # a second open has nothing to do
        assert again.migrate() == []


def test_a_half_made_legacy_database_is_taken_over_and_finished(store_url: str) -> None:
    """A database the old code left at store/1 (before full-text search)."""
    with Store(store_url) as old:
        legacy_migrate(old.engine, ("store",))
        with old.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE records_fts")
            conn.exec_driver_sql("DELETE FROM schema_migrations WHERE version = 2")
    with Store.open(store_url) as store:
        assert store.schema_version() == LATEST
        assert store.search("något") == []


def test_a_legacy_version_from_a_newer_samverka_is_refused(store_url: str) -> None:
    with Store(store_url) as old:
        legacy_migrate(old.engine, ("store",))
        with old.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO schema_migrations (track, version, name, applied_at_ms) "
                    f"VALUES ('store', {LATEST + 1}, 'from the future', 0)"
                )
            )
    with pytest.raises(StoreError, match="newer than this software"):
        Store.open(store_url)
