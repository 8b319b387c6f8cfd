"""log, feed heads, current view, cursors

Revision ID: store_0001
Revises:
Create Date: 2025-01-01

Version 1 of the store's track (the framework before Alembic called it store/1).
Forward only: never edit a released revision; a change is a new one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "store_0001"
down_revision = None
branch_labels = None
depends_on = None

#: BIGINT on PostgreSQL; INTEGER on SQLite (64-bit there, and a rowid alias as PK).
big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "log",
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
    )
    op.create_index("ix_log_origin_position", "log", ["origin", "position"])
    op.create_table(
        "feed_heads",
        sa.Column("origin", sa.String(8), primary_key=True),
        sa.Column("sequence", big, nullable=False),
        sa.Column("entry_hash", sa.LargeBinary, nullable=False),
        sa.Column("position", big, nullable=False),
        sa.Column("timestamp_ms", big, nullable=True),
    )
    op.create_table(
        "records",
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
    )
    op.create_index("ix_records_kind", "records", ["kind"])
    op.create_index("ix_records_service_area", "records", ["service_area"])
    op.create_table(
        "cursors",
        sa.Column("peer", sa.String(255), primary_key=True),
        sa.Column("position", big, nullable=False),
        sa.Column("updated_at_ms", big, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("Samverka's migrations run forward only")
