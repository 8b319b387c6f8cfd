"""The hub's tables as sqlmodel models (membership, aggregation): the schema the code
queries today.

They live in the node's database beside the store's tables. They are the source of
truth: the Alembic revisions of the ``"hub"`` track (:mod:`samverka_hub.migrations`,
``alembic/versions/``) create and change the tables, and ``alembic check`` proves the
migrated database matches them. Queries use SQLAlchemy Core through
``Model.table()``, as the store does.

Everything signed is kept as the exact bytes that were signed (requests, rotations,
directories), so it can be verified again later and served as it is.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

#: BIGINT on PostgreSQL; plain INTEGER on SQLite (64-bit there, and a rowid alias as PK).
Big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class HubTable(SQLModel):
    __tablename__: ClassVar[Any]

    @classmethod
    def table(cls) -> sa.Table:
        return cast(sa.Table, cls.__table__)  # type: ignore[attr-defined]


class EnrollmentRow(HubTable, table=True):
    """A signed enrollment request as received, and the council's decision on it."""

    __tablename__ = "hub_enrollments"
    __table_args__ = (sa.Index("ix_hub_enrollments_kommunkod_status", "kommunkod", "status"),)

    id: int | None = Field(default=None, sa_type=Big, primary_key=True)
    #: SHA-256 over the signed request bytes: the same request sent again is this row.
    digest: bytes = Field(sa_column_kwargs={"unique": True})
    kommunkod: str = Field(max_length=4)
    key_id: str = Field(max_length=32)
    #: The SignedEnrollmentRequest, serialized; its request bytes are the signed originals.
    signed_request: bytes
    #: samverka.v1.EnrollmentStatus: 1 pending, 2 approved, 3 rejected.
    status: int
    #: Why it was rejected (the operator's words), or other news for the requester.
    message: str = ""
    received_at_ms: int = Field(sa_type=Big)
    decided_at_ms: int | None = Field(default=None, sa_type=Big)
    #: The certificate issued on approval (PEM).
    certificate_pem: bytes | None = None


class MemberRow(HubTable, table=True):
    """An admitted kommun. Members are never deleted: revocation is a status."""

    __tablename__ = "hub_members"

    kommunkod: str = Field(max_length=4, primary_key=True)
    name: str
    #: samverka.v1.MemberStatus: 1 active, 2 revoked.
    status: int
    contact_role: str = ""
    address: str = ""
    joined_at_ms: int = Field(sa_type=Big)
    revoked_at_ms: int | None = Field(default=None, sa_type=Big)
    revoke_reason: str = ""


class MemberKeyRow(HubTable, table=True):
    """A member's Ed25519 signing key and its validity window."""

    __tablename__ = "hub_member_keys"
    __table_args__ = (sa.Index("ix_hub_member_keys_kommunkod", "kommunkod"),)

    key_id: str = Field(max_length=32, primary_key=True)
    kommunkod: str = Field(max_length=4, foreign_key="hub_members.kommunkod")
    public_key: bytes
    valid_from_ms: int = Field(sa_type=Big, default=0)
    revoked_at_ms: int | None = Field(default=None, sa_type=Big)
    added_at_ms: int = Field(sa_type=Big)


class KeyRotationRow(HubTable, table=True):
    """A signed key rotation as received, and the council's decision on it."""

    __tablename__ = "hub_key_rotations"
    __table_args__ = (sa.Index("ix_hub_key_rotations_kommunkod_status", "kommunkod", "status"),)

    id: int | None = Field(default=None, sa_type=Big, primary_key=True)
    digest: bytes = Field(sa_column_kwargs={"unique": True})
    kommunkod: str = Field(max_length=4)
    old_key_id: str = Field(max_length=32)
    new_key_id: str = Field(max_length=32)
    #: The SignedKeyRotation, serialized.
    signed_rotation: bytes
    status: int
    message: str = ""
    received_at_ms: int = Field(sa_type=Big)
    decided_at_ms: int | None = Field(default=None, sa_type=Big)


class KeyObjectionRow(HubTable, table=True):
    """A member's signed objection to a key listed for it, as received (ObjectToKey).

    Listed in the member's directory entry from the next version on, so every node
    refuses the key (samverka.protocol.keybinding)."""

    __tablename__ = "hub_key_objections"
    __table_args__ = (sa.Index("ix_hub_key_objections_kommunkod", "kommunkod"),)

    id: int | None = Field(default=None, sa_type=Big, primary_key=True)
    #: SHA-256 over the signed objection bytes: the same objection sent again is this row.
    digest: bytes = Field(sa_column_kwargs={"unique": True})
    kommunkod: str = Field(max_length=4)
    objected_key_id: str = Field(max_length=32)
    signer_key_id: str = Field(max_length=32)
    #: The SignedKeyObjection, serialized; its objection bytes are the signed originals.
    signed_objection: bytes
    received_at_ms: int = Field(sa_type=Big)


class DirectoryRow(HubTable, table=True):
    """Every directory version the hub signed, newest the one served."""

    __tablename__ = "hub_directories"

    version: int = Field(sa_type=Big, primary_key=True, sa_column_kwargs={"autoincrement": False})
    #: The SignedDirectory, serialized; its directory bytes are the signed originals.
    signed_directory: bytes
    digest: bytes
    issued_at_ms: int = Field(sa_type=Big)
    expires_at_ms: int = Field(sa_type=Big)


class CertificateRow(HubTable, table=True):
    """Every TLS certificate the hub's CA issued (an audit trail; revocation is by member)."""

    __tablename__ = "hub_certificates"
    __table_args__ = (sa.Index("ix_hub_certificates_kommunkod", "kommunkod"),)

    #: The certificate's serial number in hex.
    serial: str = Field(max_length=64, primary_key=True)
    kommunkod: str = Field(max_length=4)
    certificate_pem: bytes
    not_before_ms: int = Field(sa_type=Big)
    not_after_ms: int = Field(sa_type=Big)
    issued_at_ms: int = Field(sa_type=Big)
    #: "hub", "enrollment" or "renewal".
    purpose: str = Field(max_length=16)


class RefusalRow(HubTable, table=True):
    """Entries the hub refused, counted per origin and reason, with the latest case.

    One row per (origin, reason): bounded by origins × reasons however much a
    misbehaving node sends. ``origin`` is what the entry claims when it was refused
    before its bytes were trusted (e.g. a bad signature), or "" when not even that
    could be read.
    """

    __tablename__ = "hub_refusals"

    origin: str = Field(max_length=8, primary_key=True)
    #: A samverka.errors.Reason value, e.g. "bad_signature".
    reason: str = Field(max_length=32, primary_key=True)
    count: int = Field(sa_type=Big)
    last_sequence: int = Field(sa_type=Big, default=0)
    last_detail: str = ""
    #: How the entry came: "push" or "harvest".
    last_source: str = Field(max_length=16, default="")
    #: Who sent it: the pushing member, or the harvested member.
    last_peer: str = Field(max_length=8, default="")
    first_at_ms: int = Field(sa_type=Big)
    last_at_ms: int = Field(sa_type=Big)


class HarvestScheduleRow(HubTable, table=True):
    """When each member is next harvested, and who is harvesting it: the schedule every
    hub replica on one database shares (:mod:`samverka_hub.harvest_schedule`).

    ``next_due_ms`` is both the due time and the lease: a replica claims a due member
    by moving it forward by the lease (compare-and-set), and a replica that dies
    mid-harvest leaves a member that falls due again when the lease runs out.
    """

    __tablename__ = "hub_harvest_schedule"

    kommunkod: str = Field(max_length=4, primary_key=True)
    #: Milliseconds since the epoch on the database's clock.
    next_due_ms: int = Field(sa_type=Big)
    #: Failed harvests in a row (the back-off's exponent); 0 after a success.
    failures: int = 0
    #: The replica holding the lease ("host:pid:token"), "" when nobody harvests it.
    claimed_by: str = ""
    last_finished_ms: int | None = Field(default=None, sa_type=Big)
    #: What went wrong in the last harvest, "" when it worked.
    last_error: str = ""


class SigningSeatRow(HubTable, table=True):
    """The one database the hub's directory versions may be signed on (one row, id 1).

    A restored or cloned copy of the database carries this row but is another database
    (:func:`samverka_hub.members.database_identity` differs), so its hub refuses to sign
    a directory version (which production may also sign, with other content: a fork)
    until ``samverka hub promote`` declares the copy the production hub.
    """

    __tablename__ = "hub_signing_seat"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    #: The database's identity where signing is allowed ("postgresql:<system id>:<oid>",
    #: "sqlite:<device>:<inode>").
    database: str = Field(max_length=200)
    #: When it was set, and why ("first signature", "promote: …").
    since_ms: int = Field(sa_type=Big)
    reason: str = ""


class TlogLeafRow(HubTable, table=True):
    """One leaf of the hub's transparency log (:mod:`samverka_hub.tlog`)."""

    __tablename__ = "hub_tlog_leaves"
    __table_args__ = (sa.UniqueConstraint("kind", "ref", name="uq_hub_tlog_leaves_kind_ref"),)

    #: The leaf index: 0, 1, 2, … (gap-free, appended by one sequencer at a time).
    index: int = Field(sa_type=Big, primary_key=True, sa_column_kwargs={"autoincrement": False})
    #: 1 an entry (ref: its log position), 2 a directory version (ref: the version).
    kind: int
    ref: int = Field(sa_type=Big)
    #: The leaf bytes (tlog.entry_leaf / tlog.directory_leaf), as served in entry bundles.
    data: bytes


class TlogHashRow(HubTable, table=True):
    """A stored hash of the log's Merkle tree (samverka.protocol.merkle's layout)."""

    __tablename__ = "hub_tlog_hashes"

    index: int = Field(sa_type=Big, primary_key=True, sa_column_kwargs={"autoincrement": False})
    hash: bytes


class TlogCheckpointRow(HubTable, table=True):
    """A signed checkpoint (C2SP signed note) of the log, one per size it reached."""

    __tablename__ = "hub_tlog_checkpoints"

    size: int = Field(sa_type=Big, primary_key=True, sa_column_kwargs={"autoincrement": False})
    note: bytes
    signed_at_ms: int = Field(sa_type=Big)


class TlogCosignatureRow(HubTable, table=True):
    """A witness's cosignature (C2SP tlog-cosignature/v1) of one checkpoint
    (:mod:`samverka_hub.cosigned`): one per (size, kommun), the newest timestamp kept."""

    __tablename__ = "hub_tlog_cosignatures"
    __table_args__ = (sa.Index("ix_hub_tlog_cosignatures_kommunkod_size", "kommunkod", "size"),)

    #: The checkpoint's tree size (hub_tlog_checkpoints.size).
    size: int = Field(sa_type=Big, primary_key=True, sa_column_kwargs={"autoincrement": False})
    kommunkod: str = Field(max_length=4, primary_key=True)
    #: The note key hash of the witness key that signed (samverka-witness/<kommunkod>).
    key_hash: int = Field(sa_type=Big)
    #: The cosignature's own timestamp (POSIX seconds, the first 8 bytes of signature).
    timestamp: int = Field(sa_type=Big)
    #: timestamp (8 bytes) || Ed25519 signature (64 bytes), as in the signature line.
    signature: bytes
    received_at_ms: int = Field(sa_type=Big)
