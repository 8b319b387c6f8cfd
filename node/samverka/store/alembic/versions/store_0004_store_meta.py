"""the store's own settings and marks (issue 13, point 3: the purge mark)

Revision ID: store_0004
Revises: store_0003
Create Date: 2026-12-03

Version 4 of the store's track: ``store_meta``, one integer per key. Its first key,
``purged_erasures``, is how many rows of ``erased`` the last physical purge covered:
more rows than that means a purge is pending (samverka.store.purge), also after a
crash. Nothing held is changed.
Forward only: never edit a released revision; a change is a new one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "store_0004"
down_revision = "store_0003"
branch_labels = None
depends_on = None

#: BIGINT on PostgreSQL; INTEGER on SQLite (64-bit there).
big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "store_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", big, nullable=False),
    )
