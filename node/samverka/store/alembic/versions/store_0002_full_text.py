"""full-text index (FTS5 / tsvector swedish)

Revision ID: store_0002
Revises: store_0001
Create Date: 2025-01-01

Version 2 of the store's track (store/2 before Alembic). The index is not a sqlmodel
model (an FTS5 virtual table, or a tsvector table with a GIN index): its DDL is frozen
here and ``alembic check`` leaves it out (see samverka.store.migrations). The records
already held are indexed with the store's own code, as new ones are.
Forward only: never edit a released revision; a change is a new one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from samverka.protocol.entries import parse_signed
from samverka.store import fulltext
from samverka.store.indexing import search_document

revision = "store_0002"
down_revision = "store_0001"
branch_labels = None
depends_on = None

_SQLITE = (
    "CREATE VIRTUAL TABLE records_fts USING fts5("
    "title, keywords, body, tokenize = 'unicode61 remove_diacritics 0')",
    # The rank column (used by ORDER BY rank) is bm25 with per-column weights.
    "INSERT INTO records_fts(records_fts, rank) VALUES ('rank', 'bm25(10.0, 4.0, 1.0)')",
)

_POSTGRESQL = (
    "CREATE TABLE records_fts ("
    " rid BIGINT PRIMARY KEY REFERENCES records (rid) ON DELETE CASCADE,"
    " document TSVECTOR NOT NULL)",
    "CREATE INDEX ix_records_fts_document ON records_fts USING GIN (document)",
)


def upgrade() -> None:
    conn = op.get_bind()
    for statement in _POSTGRESQL if conn.dialect.name == "postgresql" else _SQLITE:
        conn.exec_driver_sql(statement)
    records = sa.table(
        "records",
        sa.column("rid"),
        sa.column("position"),
        sa.column("tombstone", sa.Boolean),
    )
    log = sa.table("log", sa.column("position"), sa.column("signed_entry"))
    rows = conn.execute(
        sa.select(records.c.rid, log.c.signed_entry)
        .join_from(records, log, log.c.position == records.c.position)
        .where(records.c.tombstone == sa.false())
    ).all()
    docs = [(int(rid), search_document(parse_signed(blob).record)) for rid, blob in rows]
    for start in range(0, len(docs), 1000):
        fulltext.insert_documents(conn, docs[start : start + 1000])


def downgrade() -> None:
    raise NotImplementedError("Samverka's migrations run forward only")
