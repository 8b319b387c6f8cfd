"""harvest: a schedule shared by the hub's replicas

Revision ID: hub_0003
Revises: hub_0002
Create Date: 2025-01-01

Version 3 of the hub's track (hub/3 before Alembic).
Forward only: never edit a released revision; a change is a new one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "hub_0003"
down_revision = "hub_0002"
branch_labels = None
depends_on = None

#: BIGINT on PostgreSQL; INTEGER on SQLite (64-bit there, and a rowid alias as PK).
big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "hub_harvest_schedule",
        sa.Column("kommunkod", sa.String(4), primary_key=True),
        sa.Column("next_due_ms", big, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("claimed_by", sa.String, nullable=False),
        sa.Column("last_finished_ms", big, nullable=True),
        sa.Column("last_error", sa.String, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("Samverka's migrations run forward only")
