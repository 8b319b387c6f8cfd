"""The hub's migration track ``"hub"``: its tables in the node's database.

Registered on import; open the store with ``tracks=("store", "hub")`` (or call
:func:`samverka.store.migrations.migrate` with ``("hub",)``). As in the store's track, a
migration describes the schema as it was at its time and is never edited: a change
is a new migration appended to :data:`MIGRATIONS`.
"""

from __future__ import annotations

import sqlalchemy as sa
from samverka.store.migrations import Migration, register_migrations
from sqlalchemy.engine import Connection

HUB_TRACK = "hub"


def _m1_membership(conn: Connection) -> None:
    """Enrollment requests, members and their keys, key rotations, directories, certificates."""
    md = sa.MetaData()
    big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    sa.Table(
        "hub_enrollments",
        md,
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
        sa.Index("ix_hub_enrollments_kommunkod_status", "kommunkod", "status"),
    )
    sa.Table(
        "hub_members",
        md,
        sa.Column("kommunkod", sa.String(4), primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("contact_role", sa.String, nullable=False),
        sa.Column("address", sa.String, nullable=False),
        sa.Column("joined_at_ms", big, nullable=False),
        sa.Column("revoked_at_ms", big, nullable=True),
        sa.Column("revoke_reason", sa.String, nullable=False),
    )
    sa.Table(
        "hub_member_keys",
        md,
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column(
            "kommunkod", sa.String(4), sa.ForeignKey("hub_members.kommunkod"), nullable=False
        ),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        sa.Column("valid_from_ms", big, nullable=False),
        sa.Column("revoked_at_ms", big, nullable=True),
        sa.Column("added_at_ms", big, nullable=False),
        sa.Index("ix_hub_member_keys_kommunkod", "kommunkod"),
    )
    sa.Table(
        "hub_key_rotations",
        md,
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
        sa.Index("ix_hub_key_rotations_kommunkod_status", "kommunkod", "status"),
    )
    sa.Table(
        "hub_directories",
        md,
        sa.Column("version", big, primary_key=True, autoincrement=False),
        sa.Column("signed_directory", sa.LargeBinary, nullable=False),
        sa.Column("digest", sa.LargeBinary, nullable=False),
        sa.Column("issued_at_ms", big, nullable=False),
        sa.Column("expires_at_ms", big, nullable=False),
    )
    sa.Table(
        "hub_certificates",
        md,
        sa.Column("serial", sa.String(64), primary_key=True),
        sa.Column("kommunkod", sa.String(4), nullable=False),
        sa.Column("certificate_pem", sa.LargeBinary, nullable=False),
        sa.Column("not_before_ms", big, nullable=False),
        sa.Column("not_after_ms", big, nullable=False),
        sa.Column("issued_at_ms", big, nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Index("ix_hub_certificates_kommunkod", "kommunkod"),
    )
    md.create_all(conn)


def _m2_refusals(conn: Connection) -> None:
    """Entries the hub refused (pushed or harvested), counted per origin and reason."""
    md = sa.MetaData()
    big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    sa.Table(
        "hub_refusals",
        md,
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
    md.create_all(conn)


def _m3_harvest_schedule(conn: Connection) -> None:
    """The harvest schedule the hub's replicas share: next due time (the lease), back-off."""
    md = sa.MetaData()
    big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    sa.Table(
        "hub_harvest_schedule",
        md,
        sa.Column("kommunkod", sa.String(4), primary_key=True),
        sa.Column("next_due_ms", big, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("claimed_by", sa.String, nullable=False),
        sa.Column("last_finished_ms", big, nullable=True),
        sa.Column("last_error", sa.String, nullable=False),
    )
    md.create_all(conn)


MIGRATIONS = [
    Migration(1, "membership: enrollments, members, keys, directories", _m1_membership),
    Migration(2, "aggregation: refusals counted per origin and reason", _m2_refusals),
    Migration(3, "harvest: a schedule shared by the hub's replicas", _m3_harvest_schedule),
]

register_migrations(HUB_TRACK, MIGRATIONS)
