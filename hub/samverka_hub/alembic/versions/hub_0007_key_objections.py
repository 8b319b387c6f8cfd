"""key objections: members' signed objections to keys listed for them

Revision ID: hub_0007
Revises: hub_0006
Create Date: 2026-12-03

A member that finds a key it never held listed for it objects (ObjectToKey); the hub
keeps the signed objection and lists it in the member's directory entry
(Member.objections), so every node refuses the key (issue 11).
Forward only: never edit a released revision; a change is a new one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "hub_0007"
down_revision = "hub_0006"
branch_labels = None
depends_on = None

#: BIGINT on PostgreSQL; INTEGER on SQLite (64-bit there, and a rowid alias as PK).
big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "hub_key_objections",
        sa.Column("id", big, primary_key=True),
        sa.Column("digest", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("kommunkod", sa.String(4), nullable=False),
        sa.Column("objected_key_id", sa.String(32), nullable=False),
        sa.Column("signer_key_id", sa.String(32), nullable=False),
        sa.Column("signed_objection", sa.LargeBinary, nullable=False),
        sa.Column("received_at_ms", big, nullable=False),
    )
    op.create_index("ix_hub_key_objections_kommunkod", "hub_key_objections", ["kommunkod"])


def downgrade() -> None:
    raise NotImplementedError("Samverka's migrations run forward only")
