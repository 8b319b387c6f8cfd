"""The store's tables in SQLAlchemy Core: the schema the code queries today.

The schema itself is created and changed only by :mod:`samverka.migrations`; a test
checks that these tables and the migrated database agree. Queries go through
SQLAlchemy Core so bulk writes stay executemany, not one ORM object per row.

Plain Core tables, not sqlmodel models (the hub's own tables, in
``samverka_hub.tables``, are): every node process loads this module, and sqlmodel
brings the ORM and pydantic with it, about 14 MB of a serving node's memory that
nothing on a node uses.

Integer widths: positions, sequences, versions and Unix milliseconds are BIGINT on
PostgreSQL; on SQLite every integer is 64-bit and ``INTEGER PRIMARY KEY`` is the rowid.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

#: BIGINT on PostgreSQL; plain INTEGER on SQLite (64-bit there, and a rowid alias as PK).
Big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

#: The store's tables (the hub's are in SQLModel.metadata, see samverka_hub.tables).
metadata = sa.MetaData()


def _required(name: str, type_: Any, **kw: Any) -> sa.Column[Any]:
    return sa.Column(name, type_, nullable=False, **kw)


#: One position of the server's log: an entry stored verbatim, or a placeholder.
log = sa.Table(
    "log",
    metadata,
    #: The log cursor: 1, 2, 3, … allocated under the write lock, so gap-free.
    _required("position", Big, primary_key=True, autoincrement=False),
    _required("origin", sa.String(8)),
    _required("sequence", Big),
    #: SHA-256 of the entry bytes (the chain hash).
    _required("entry_hash", sa.LargeBinary),
    #: The serialized SignedEntry as received; NULL for a redacted placeholder.
    sa.Column("signed_entry", sa.LargeBinary, nullable=True),
    #: A placeholder for an entry this server was never allowed to see.
    _required("redacted", sa.Boolean, default=False),
    _required("key_id", sa.String, default=""),
    _required("timestamp_ms", Big, default=0),
    _required("record_id", sa.String, default=""),
    _required("kind", sa.Integer, default=0),
    _required("version", Big, default=0),
    _required("visibility", sa.Integer, default=0),
    _required("service_area", sa.Integer, default=0),
    _required("tombstone", sa.Boolean, default=False),
    #: The record's tags, normalized, in indexing.pack_tags form (for tag filters).
    _required("tags", sa.String, default=""),
    _required("stored_at_ms", Big, default=0),
    sa.UniqueConstraint("origin", "sequence", name="uq_log_origin_sequence"),
    sa.Index("ix_log_origin_position", "origin", "position"),
)

#: Each origin's newest held entry, updated in the same transaction as the log.
feed_heads = sa.Table(
    "feed_heads",
    metadata,
    _required("origin", sa.String(8), primary_key=True),
    _required("sequence", Big),
    _required("entry_hash", sa.LargeBinary),
    _required("position", Big),
    #: The newest entry timestamp in the feed (a placeholder head keeps the one
    #: before it); NULL while only placeholders are held.
    sa.Column("timestamp_ms", Big, nullable=True),
)

#: The current view: the newest version of each record, for listing and search.
#: The record itself is read from the log row at ``position`` (not copied here:
#: every byte written is copied again when the WAL is checkpointed).
records = sa.Table(
    "records",
    metadata,
    #: Surrogate key, allocated under the write lock; the full-text index refers to it.
    _required("rid", Big, primary_key=True, autoincrement=False),
    _required("origin", sa.String(8)),
    _required("record_id", sa.String(128)),
    _required("kind", sa.Integer),
    _required("version", Big),
    _required("visibility", sa.Integer),
    _required("tombstone", sa.Boolean),
    _required("title", sa.String),
    _required("summary", sa.String),
    _required("service_area", sa.Integer),
    _required("status", sa.Integer),
    _required("risk_class", sa.Integer),
    #: Normalized tags in indexing.pack_tags form.
    _required("tags", sa.String),
    #: Log position of the entry that wrote this version.
    _required("position", Big),
    _required("key_id", sa.String),
    _required("timestamp_ms", Big),
    sa.UniqueConstraint("origin", "record_id", name="uq_records_origin_record_id"),
    sa.Index("ix_records_kind", "kind"),
    sa.Index("ix_records_service_area", "service_area"),
)

#: How far this server has read each peer's log.
cursors = sa.Table(
    "cursors",
    metadata,
    _required("peer", sa.String(255), primary_key=True),
    _required("position", Big),
    _required("updated_at_ms", Big),
)

#: One applied migration (see samverka.migrations).
schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    _required("track", sa.String(64), primary_key=True),
    _required("version", sa.Integer, primary_key=True),
    _required("name", sa.String),
    _required("applied_at_ms", Big),
)
