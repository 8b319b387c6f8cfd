"""transparency log: the witnesses' cosignatures of checkpoints

Revision ID: hub_0006
Revises: hub_0005
Create Date: 2026-12-04

Members cosign the hub's checkpoints (AddCosignature; samverka_hub.cosigned); the hub
serves each checkpoint with the cosignatures it gathered. One row per (size, kommun).
Forward only: never edit a released revision; a change is a new one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "hub_0006"
down_revision = "hub_0005"
branch_labels = None
depends_on = None

#: BIGINT on PostgreSQL; INTEGER on SQLite (64-bit there, and a rowid alias as PK).
big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "hub_tlog_cosignatures",
        sa.Column("size", big, primary_key=True, autoincrement=False),
        sa.Column("kommunkod", sa.String(4), primary_key=True),
        sa.Column("key_hash", big, nullable=False),
        sa.Column("timestamp", big, nullable=False),
        sa.Column("signature", sa.LargeBinary, nullable=False),
        sa.Column("received_at_ms", big, nullable=False),
    )
    op.create_index(
        "ix_hub_tlog_cosignatures_kommunkod_size",
        "hub_tlog_cosignatures",
        ["kommunkod", "size"],
    )


def downgrade() -> None:
    raise NotImplementedError("Samverka's migrations run forward only")
