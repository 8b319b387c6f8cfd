"""aggregation: refusals counted per origin and reason

Revision ID: hub_0002
Revises: hub_0001
Create Date: 2025-01-01

Version 2 of the hub's track (hub/2 before Alembic).
Forward only: never edit a released revision; a change is a new one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "hub_0002"
down_revision = "hub_0001"
branch_labels = None
depends_on = None

#: BIGINT on PostgreSQL; INTEGER on SQLite (64-bit there, and a rowid alias as PK).
big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "hub_refusals",
        sa.Column("origin", sa.String(8), primary_key=True),
        sa.Column("reason", sa.String(32), primary_key=True),
        sa.Column("count", big, nullable=False),
        sa.Column("last_sequence", big, nullable=False),
        sa.Column("last_detail", sa.String, nullable=False),
        sa.Column("last_source", sa.String(16), nullable=False),
        sa.Column("last_peer", sa.String(8), nullable=False),
        sa.Column("first_at_ms", big, nullable=False),
        sa.Column("last_at_ms", big, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("Samverka's migrations run forward only")
