"""erased entries (issue 13, point 3)

Revision ID: store_0003
Revises: store_0002
Create Date: 2026-12-03

Version 3 of the store's track: the ``erased`` table, the entries whose content a
verified erasure removed (samverka.protocol.erasure). Nothing held is changed.
Forward only: never edit a released revision; a change is a new one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "store_0003"
down_revision = "store_0002"
branch_labels = None
depends_on = None

#: BIGINT on PostgreSQL; INTEGER on SQLite (64-bit there).
big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "erased",
        sa.Column("origin", sa.String(8), primary_key=True),
        sa.Column("sequence", big, primary_key=True, autoincrement=False),
        sa.Column("entry_hash", sa.LargeBinary, nullable=False),
        sa.Column("record_id", sa.String(128), nullable=False),
        sa.Column("by_origin", sa.String(8), nullable=False),
        sa.Column("by_sequence", big, nullable=False),
        sa.Column("erased_at_ms", big, nullable=False),
    )
