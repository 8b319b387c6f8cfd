"""membership: enrollments, members, keys, directories

Revision ID: hub_0001
Revises:
Create Date: 2025-01-01

Version 1 of the hub's track (hub/1 before Alembic).
Forward only: never edit a released revision; a change is a new one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "hub_0001"
down_revision = None
branch_labels = None
depends_on = None

#: BIGINT on PostgreSQL; INTEGER on SQLite (64-bit there, and a rowid alias as PK).
big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "hub_enrollments",
        sa.Column("id", big, primary_key=True),
        sa.Column("digest", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("kommunkod", sa.String(4), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("signed_request", sa.LargeBinary, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("message", sa.String, nullable=False),
        sa.Column("received_at_ms", big, nullable=False),
        sa.Column("decided_at_ms", big, nullable=True),
        sa.Column("certificate_pem", sa.LargeBinary, nullable=True),
    )
    op.create_index(
        "ix_hub_enrollments_kommunkod_status", "hub_enrollments", ["kommunkod", "status"]
    )
    op.create_table(
        "hub_members",
        sa.Column("kommunkod", sa.String(4), primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("contact_role", sa.String, nullable=False),
        sa.Column("address", sa.String, nullable=False),
        sa.Column("joined_at_ms", big, nullable=False),
        sa.Column("revoked_at_ms", big, nullable=True),
        sa.Column("revoke_reason", sa.String, nullable=False),
    )
    op.create_table(
        "hub_member_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column(
            "kommunkod", sa.String(4), sa.ForeignKey("hub_members.kommunkod"), nullable=False
        ),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        sa.Column("valid_from_ms", big, nullable=False),
        sa.Column("revoked_at_ms", big, nullable=True),
        sa.Column("added_at_ms", big, nullable=False),
    )
    op.create_index("ix_hub_member_keys_kommunkod", "hub_member_keys", ["kommunkod"])
    op.create_table(
        "hub_key_rotations",
        sa.Column("id", big, primary_key=True),
        sa.Column("digest", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("kommunkod", sa.String(4), nullable=False),
        sa.Column("old_key_id", sa.String(32), nullable=False),
        sa.Column("new_key_id", sa.String(32), nullable=False),
        sa.Column("signed_rotation", sa.LargeBinary, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("message", sa.String, nullable=False),
        sa.Column("received_at_ms", big, nullable=False),
        sa.Column("decided_at_ms", big, nullable=True),
    )
    op.create_index(
        "ix_hub_key_rotations_kommunkod_status", "hub_key_rotations", ["kommunkod", "status"]
    )
    op.create_table(
        "hub_directories",
        sa.Column("version", big, primary_key=True, autoincrement=False),
        sa.Column("signed_directory", sa.LargeBinary, nullable=False),
        sa.Column("digest", sa.LargeBinary, nullable=False),
        sa.Column("issued_at_ms", big, nullable=False),
        sa.Column("expires_at_ms", big, nullable=False),
    )
    op.create_table(
        "hub_certificates",
        sa.Column("serial", sa.String(64), primary_key=True),
        sa.Column("kommunkod", sa.String(4), nullable=False),
        sa.Column("certificate_pem", sa.LargeBinary, nullable=False),
        sa.Column("not_before_ms", big, nullable=False),
        sa.Column("not_after_ms", big, nullable=False),
        sa.Column("issued_at_ms", big, nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
    )
    op.create_index("ix_hub_certificates_kommunkod", "hub_certificates", ["kommunkod"])


def downgrade() -> None:
    raise NotImplementedError("Samverka's migrations run forward only")
