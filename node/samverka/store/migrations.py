"""Numbered, forward-only schema migrations, in independent tracks.

A *track* is a named sequence of migrations numbered 1, 2, 3, … The store's own
track is ``"store"``; a package that keeps its own tables in the same database (the
hub's member directory, say) registers another track and names it when it opens the
store::

    from samverka.store.migrations import Migration, register_migrations

    def _members(conn: Connection) -> None:
        conn.exec_driver_sql("CREATE TABLE members (kommunkod VARCHAR(4) PRIMARY KEY, …)")

    register_migrations("hub", [Migration(1, "member directory", _members)])
    store = Store.open(url, tracks=("store", "hub"))

Rules:

- A migration is a function of a SQLAlchemy ``Connection``; it may look at
  ``conn.dialect.name`` for engine-specific DDL. It is never edited once released:
  a change is a new migration. Migrations describe the schema as it was at their
  time (frozen DDL here, not the current models in :mod:`samverka.store.tables`).
- Each migration runs in its own write transaction together with its row in
  ``schema_migrations`` (track, version, name, applied_at_ms), so a crash leaves the
  database at the last whole migration. Both engines have transactional DDL.
- Tracks are applied in the order given, the store's first. Concurrent openers
  (two processes, two hub replicas) serialize on the write lock and re-check what is
  applied, so each migration runs exactly once.
- A database that has a version this software does not know is refused
  (``StoreError``): it was written by a newer Samverka.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from samverka.errors import StoreError
from samverka.protocol.entries import parse_signed
from samverka.store import fulltext
from samverka.store.db import read_transaction, write_transaction
from samverka.store.indexing import search_document
from samverka.store.tables import log, records, schema_migrations

STORE_TRACK = "store"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    apply: Callable[[Connection], None]


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    track: str
    version: int
    name: str


_TRACKS: dict[str, tuple[Migration, ...]] = {}


def register_migrations(track: str, migrations: Sequence[Migration]) -> None:
    """Register (or extend) a track. Versions must run 1, 2, 3, … without gaps.

    Registering the same migrations again (a module imported twice) is harmless;
    registering different ones under versions already taken is an error.
    """
    known = _TRACKS.get(track, ())
    for i, m in enumerate(migrations):
        if i < len(known):
            if known[i] != m:
                raise ValueError(f"migration {track}/{m.version} is already registered")
            continue
        if m.version != i + 1:
            raise ValueError(f"migration {track}/{m.version}: expected version {i + 1}")
    if len(migrations) > len(known):
        _TRACKS[track] = tuple(migrations)


def registered(track: str) -> tuple[Migration, ...]:
    try:
        return _TRACKS[track]
    except KeyError:
        raise StoreError(
            f"no migrations are registered for track {track!r}",
            hint="import the package that registers it before opening the store",
        ) from None


def latest_version(track: str = STORE_TRACK) -> int:
    return len(registered(track))


def applied_versions(engine: Engine) -> dict[str, int]:
    """The newest applied version of each track (empty for a new database)."""
    if not sa.inspect(engine).has_table(schema_migrations.name):
        return {}
    with read_transaction(engine) as conn:
        rows = conn.execute(
            sa.select(schema_migrations.c.track, sa.func.max(schema_migrations.c.version)).group_by(
                schema_migrations.c.track
            )
        ).all()
    return {track: int(version) for track, version in rows}


def migrate(
    engine: Engine,
    tracks: Sequence[str] = (STORE_TRACK,),
    *,
    upto: Mapping[str, int] | None = None,
) -> list[AppliedMigration]:
    """Apply every pending migration of ``tracks`` (each only up to ``upto[track]``)."""
    with write_transaction(engine) as conn:
        schema_migrations.create(conn, checkfirst=True)
    applied: list[AppliedMigration] = []
    for track in tracks:
        migrations = registered(track)
        limit = (upto or {}).get(track, len(migrations))
        for migration in migrations[:limit]:
            with write_transaction(engine) as conn:
                done = _applied(conn, track)
                if done > len(migrations):
                    raise StoreError(
                        f"the database's {track} schema is at version {done}, newer than "
                        f"this software knows ({len(migrations)})",
                        hint="run a Samverka version at least as new as the one that wrote it",
                    )
                if migration.version <= done:
                    continue
                migration.apply(conn)
                conn.execute(
                    sa.insert(schema_migrations).values(
                        track=track,
                        version=migration.version,
                        name=migration.name,
                        applied_at_ms=time.time_ns() // 1_000_000,
                    )
                )
            applied.append(AppliedMigration(track, migration.version, migration.name))
    return applied


def _applied(conn: Connection, track: str) -> int:
    version = conn.execute(
        sa.select(sa.func.max(schema_migrations.c.version)).where(
            schema_migrations.c.track == track
        )
    ).scalar()
    return int(version or 0)


# -- the store's track -----------------------------------------------------------------


def _m1_log_and_records(conn: Connection) -> None:
    """The log, feed heads, the current view, cursors."""
    md = sa.MetaData()
    big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    sa.Table(
        "log",
        md,
        sa.Column("position", big, primary_key=True, autoincrement=False),
        sa.Column("origin", sa.String(8), nullable=False),
        sa.Column("sequence", big, nullable=False),
        sa.Column("entry_hash", sa.LargeBinary, nullable=False),
        sa.Column("signed_entry", sa.LargeBinary, nullable=True),
        sa.Column("redacted", sa.Boolean, nullable=False),
        sa.Column("key_id", sa.String, nullable=False),
        sa.Column("timestamp_ms", big, nullable=False),
        sa.Column("record_id", sa.String, nullable=False),
        sa.Column("kind", sa.Integer, nullable=False),
        sa.Column("version", big, nullable=False),
        sa.Column("visibility", sa.Integer, nullable=False),
        sa.Column("service_area", sa.Integer, nullable=False),
        sa.Column("tombstone", sa.Boolean, nullable=False),
        sa.Column("tags", sa.String, nullable=False),
        sa.Column("stored_at_ms", big, nullable=False),
        sa.UniqueConstraint("origin", "sequence", name="uq_log_origin_sequence"),
        sa.Index("ix_log_origin_position", "origin", "position"),
    )
    sa.Table(
        "feed_heads",
        md,
        sa.Column("origin", sa.String(8), primary_key=True),
        sa.Column("sequence", big, nullable=False),
        sa.Column("entry_hash", sa.LargeBinary, nullable=False),
        sa.Column("position", big, nullable=False),
        sa.Column("timestamp_ms", big, nullable=True),
    )
    sa.Table(
        "records",
        md,
        sa.Column("rid", big, primary_key=True, autoincrement=False),
        sa.Column("origin", sa.String(8), nullable=False),
        sa.Column("record_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.Integer, nullable=False),
        sa.Column("version", big, nullable=False),
        sa.Column("visibility", sa.Integer, nullable=False),
        sa.Column("tombstone", sa.Boolean, nullable=False),
        sa.Column("title", sa.String, nullable=False),
        sa.Column("summary", sa.String, nullable=False),
        sa.Column("service_area", sa.Integer, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("risk_class", sa.Integer, nullable=False),
        sa.Column("tags", sa.String, nullable=False),
        sa.Column("position", big, nullable=False),
        sa.Column("key_id", sa.String, nullable=False),
        sa.Column("timestamp_ms", big, nullable=False),
        sa.UniqueConstraint("origin", "record_id", name="uq_records_origin_record_id"),
        sa.Index("ix_records_kind", "kind"),
        sa.Index("ix_records_service_area", "service_area"),
    )
    sa.Table(
        "cursors",
        md,
        sa.Column("peer", sa.String(255), primary_key=True),
        sa.Column("position", big, nullable=False),
        sa.Column("updated_at_ms", big, nullable=False),
    )
    md.create_all(conn)


def _m2_full_text(conn: Connection) -> None:
    """Full-text index of the current view; indexes the records already held."""
    fulltext.create_index(conn)
    rows = conn.execute(
        sa.select(records.c.rid, log.c.signed_entry)
        .join_from(records, log, log.c.position == records.c.position)
        .where(records.c.tombstone == sa.false())
    ).all()
    docs = [(int(rid), search_document(parse_signed(blob).record)) for rid, blob in rows]
    for start in range(0, len(docs), 1000):
        fulltext.insert_documents(conn, docs[start : start + 1000])


register_migrations(
    STORE_TRACK,
    [
        Migration(1, "log, feed heads, current view, cursors", _m1_log_and_records),
        Migration(2, "full-text index (FTS5 / tsvector swedish)", _m2_full_text),
    ],
)
