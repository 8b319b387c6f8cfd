"""signing seat: the one database the directory may be signed on

Revision ID: hub_0004
Revises: hub_0003
Create Date: 2026-12-03

A restored copy of the hub's database refuses to sign directory versions until
`samverka hub promote` (docs/OPERATIONS.md, "Backing up a hub").
Forward only: never edit a released revision; a change is a new one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "hub_0004"
down_revision = "hub_0003"
branch_labels = None
depends_on = None

#: BIGINT on PostgreSQL; INTEGER on SQLite (64-bit there, and a rowid alias as PK).
big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "hub_signing_seat",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("database", sa.String(200), nullable=False),
        sa.Column("since_ms", big, nullable=False),
        sa.Column("reason", sa.String, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("Samverka's migrations run forward only")
