"""The store's tables as sqlmodel models: the schema the code queries today.

They are the source of truth of the schema: the Alembic revisions of the ``"store"``
track (:mod:`samverka.store.migrations`, ``alembic/versions/``) create and change the
tables, and ``alembic check`` (``make lint``, tests/store/test_migrations.py) proves the
migrated database matches these models. Queries go through
SQLAlchemy Core (``LogRow.table()`` etc.) so bulk writes stay executemany, not one
ORM object per row.

Integer widths: positions, sequences, versions and Unix milliseconds are BIGINT on
PostgreSQL; on SQLite every integer is 64-bit and ``INTEGER PRIMARY KEY`` is the rowid.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

#: BIGINT on PostgreSQL; plain INTEGER on SQLite (64-bit there, and a rowid alias as PK).
Big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class _Table(SQLModel):
    __tablename__: ClassVar[Any]

    @classmethod
    def table(cls) -> sa.Table:
        return cast(sa.Table, cls.__table__)  # type: ignore[attr-defined]


class LogRow(_Table, table=True):
    """One position of the server's log: an entry stored verbatim, or a placeholder."""

    __tablename__ = "log"
    __table_args__ = (
        sa.UniqueConstraint("origin", "sequence", name="uq_log_origin_sequence"),
        sa.Index("ix_log_origin_position", "origin", "position"),
    )

    #: The log cursor: 1, 2, 3, … allocated under the write lock, so gap-free.
    position: int = Field(sa_type=Big, primary_key=True, sa_column_kwargs={"autoincrement": False})
    origin: str = Field(max_length=8)
    sequence: int = Field(sa_type=Big)
    #: SHA-256 of the entry bytes (the chain hash).
    entry_hash: bytes
    #: The serialized SignedEntry as received; NULL for a redacted placeholder.
    signed_entry: bytes | None = None
    #: A placeholder for an entry this server was never allowed to see.
    redacted: bool = False
    key_id: str = ""
    timestamp_ms: int = Field(sa_type=Big, default=0)
    record_id: str = ""
    kind: int = 0
    version: int = Field(sa_type=Big, default=0)
    visibility: int = 0
    service_area: int = 0
    tombstone: bool = False
    #: The record's tags, normalized, in indexing.pack_tags form (for tag filters).
    tags: str = ""
    stored_at_ms: int = Field(sa_type=Big, default=0)


class FeedHeadRow(_Table, table=True):
    """Each origin's newest held entry, updated in the same transaction as the log."""

    __tablename__ = "feed_heads"

    origin: str = Field(primary_key=True, max_length=8)
    sequence: int = Field(sa_type=Big)
    entry_hash: bytes
    position: int = Field(sa_type=Big)
    #: The newest entry timestamp in the feed (a placeholder head keeps the one
    #: before it); NULL while only placeholders are held.
    timestamp_ms: int | None = Field(sa_type=Big, default=None)


class RecordRow(_Table, table=True):
    """The current view: the newest version of each record, for listing and search."""

    __tablename__ = "records"
    __table_args__ = (
        sa.UniqueConstraint("origin", "record_id", name="uq_records_origin_record_id"),
        sa.Index("ix_records_kind", "kind"),
        sa.Index("ix_records_service_area", "service_area"),
    )

    #: Surrogate key, allocated under the write lock; the full-text index refers to it.
    rid: int = Field(sa_type=Big, primary_key=True, sa_column_kwargs={"autoincrement": False})
    origin: str = Field(max_length=8)
    record_id: str = Field(max_length=128)
    kind: int
    version: int = Field(sa_type=Big)
    visibility: int
    tombstone: bool
    title: str
    summary: str
    service_area: int
    status: int
    risk_class: int
    #: Normalized tags in indexing.pack_tags form.
    tags: str
    #: Log position of the entry that wrote this version.
    position: int = Field(sa_type=Big)
    key_id: str
    timestamp_ms: int = Field(sa_type=Big)
    # The record itself is read from the log row at ``position`` (not copied here:
    # every byte written is copied again when the WAL is checkpointed).


class CursorRow(_Table, table=True):
    """How far this server has read each peer's log."""

    __tablename__ = "cursors"

    peer: str = Field(primary_key=True, max_length=255)
    position: int = Field(sa_type=Big)
    updated_at_ms: int = Field(sa_type=Big)


class ErasedRow(_Table, table=True):
    """An entry whose content a verified erasure removed (issue 13, point 3).

    Its log row, if held, is a placeholder (hash kept, bytes gone) that no signed copy
    fills again; an entry listed here that arrives later is stored as a placeholder.
    """

    __tablename__ = "erased"

    origin: str = Field(primary_key=True, max_length=8)
    sequence: int = Field(sa_type=Big, primary_key=True, sa_column_kwargs={"autoincrement": False})
    #: The chain hash the erasure named: only the entry with this hash is erased.
    entry_hash: bytes
    #: The record the erased entry was a version of.
    record_id: str = Field(max_length=128)
    #: The erasure entry: its feed and sequence (the hub's "0000" for the council's).
    by_origin: str = Field(max_length=8)
    by_sequence: int = Field(sa_type=Big)
    erased_at_ms: int = Field(sa_type=Big)


class StoreMetaRow(_Table, table=True):
    """One integer the store keeps about itself, by key (e.g. ``purged_erasures``: how
    many rows of ``erased`` the last physical purge covered; samverka.store.purge)."""

    __tablename__ = "store_meta"

    key: str = Field(primary_key=True, max_length=64)
    value: int = Field(sa_type=Big)


log = LogRow.table()
feed_heads = FeedHeadRow.table()
records = RecordRow.table()
cursors = CursorRow.table()
erased = ErasedRow.table()
store_meta = StoreMetaRow.table()
