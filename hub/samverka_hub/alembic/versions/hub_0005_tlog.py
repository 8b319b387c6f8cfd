"""transparency log: leaves, stored hashes, signed checkpoints

Revision ID: hub_0005
Revises: hub_0004
Create Date: 2026-12-03

The hub's log of entries and directory versions as a Merkle tree (samverka_hub.tlog).
Existing hubs start with an empty log; the sequencer fills it from the store's log.
Forward only: never edit a released revision; a change is a new one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "hub_0005"
down_revision = "hub_0004"
branch_labels = None
depends_on = None

#: BIGINT on PostgreSQL; INTEGER on SQLite (64-bit there, and a rowid alias as PK).
big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "hub_tlog_leaves",
        sa.Column("index", big, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.Integer, nullable=False),
        sa.Column("ref", big, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("kind", "ref", name="uq_hub_tlog_leaves_kind_ref"),
    )
    op.create_table(
        "hub_tlog_hashes",
        sa.Column("index", big, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "hub_tlog_checkpoints",
        sa.Column("size", big, primary_key=True, autoincrement=False),
        sa.Column("note", sa.LargeBinary, nullable=False),
        sa.Column("signed_at_ms", big, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("Samverka's migrations run forward only")
