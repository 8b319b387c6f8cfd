"""Reading and writing the hub's membership tables (the member store).

:class:`MemberStore` opens transactions; a :class:`MemberTx` holds one and offers the
queries. A decision of the council (:mod:`samverka_hub.council`) runs in one write
transaction, so a member, its key, its certificate and the directory version that
lists it are committed together or not at all. The write transaction is the
database's single write lock (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock),
so the operator's CLI and any number of hub replicas never allocate the same
directory version twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from samverka.protocol.directory import VerifiedDirectory
from samverka.store.db import create_engine, read_transaction, write_transaction
from samverka.store.migrations import migrate
from samverka.v1 import directory_pb2, hub_service_pb2
from sqlalchemy.engine import Connection, Engine

from samverka_hub.migrations import HUB_TRACK
from samverka_hub.tables import (
    CertificateRow,
    DirectoryRow,
    EnrollmentRow,
    HubTable,
    KeyObjectionRow,
    KeyRotationRow,
    MemberKeyRow,
    MemberRow,
    SigningSeatRow,
)

PENDING = hub_service_pb2.ENROLLMENT_STATUS_PENDING
APPROVED = hub_service_pb2.ENROLLMENT_STATUS_APPROVED
REJECTED = hub_service_pb2.ENROLLMENT_STATUS_REJECTED
ACTIVE = directory_pb2.MEMBER_STATUS_ACTIVE
REVOKED = directory_pb2.MEMBER_STATUS_REVOKED

STATUS_NAMES: dict[int, str] = {PENDING: "pending", APPROVED: "approved", REJECTED: "rejected"}
MEMBER_STATUS_NAMES: dict[int, str] = {ACTIVE: "active", REVOKED: "revoked"}

T = TypeVar("T", bound=HubTable)


@dataclass(frozen=True, slots=True)
class Member:
    """A member and its keys, as the directory will list it."""

    row: MemberRow
    keys: tuple[MemberKeyRow, ...]
    #: The approved key rotations (serialized SignedKeyRotation), oldest first: each key
    #: after the first announced under the one before, so nodes take it at once.
    rotations: tuple[bytes, ...] = ()
    #: The member's objections to keys listed for it (serialized SignedKeyObjection).
    objections: tuple[bytes, ...] = ()

    @property
    def kommunkod(self) -> str:
        return self.row.kommunkod

    @property
    def active(self) -> bool:
        return self.row.status == ACTIVE

    def keys_in_force(self, now_ms: int) -> list[MemberKeyRow]:
        """Keys valid now: not revoked, or revoked only later (a rotation's overlap)."""
        return [k for k in self.keys if k.revoked_at_ms is None or k.revoked_at_ms > now_ms]

    def to_proto(self) -> directory_pb2.Member:
        r = self.row
        return directory_pb2.Member(
            kommunkod=r.kommunkod,
            name=r.name,
            status=r.status,  # type: ignore[arg-type]
            contact_role=r.contact_role,
            address=r.address,
            joined_at_ms=r.joined_at_ms,
            revoked_at_ms=r.revoked_at_ms or 0,
            keys=[
                directory_pb2.MemberKey(
                    public_key=k.public_key,
                    key_id=k.key_id,
                    valid_from_ms=k.valid_from_ms,
                    revoked_at_ms=k.revoked_at_ms or 0,
                )
                for k in sorted(self.keys, key=lambda k: (k.valid_from_ms, k.added_at_ms))
            ],
            rotations=[directory_pb2.SignedKeyRotation.FromString(r) for r in self.rotations],
            objections=[directory_pb2.SignedKeyObjection.FromString(o) for o in self.objections],
        )


def stored_directory(row: DirectoryRow) -> VerifiedDirectory:
    """A directory the hub signed itself, read back from its own table."""
    signed = directory_pb2.SignedDirectory.FromString(row.signed_directory)
    return VerifiedDirectory(
        signed=signed, directory=directory_pb2.Directory.FromString(signed.directory)
    )


class MemberTx:
    """Queries on the membership tables inside one transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _rows(self, model: type[T], where: Any = None, order: Any = None) -> list[T]:
        stmt = sa.select(model.table())
        if where is not None:
            stmt = stmt.where(where)
        if order is not None:
            stmt = stmt.order_by(order)
        return [model(**row._mapping) for row in self.conn.execute(stmt)]

    def _insert(self, row: HubTable) -> None:
        values = row.model_dump()
        self.conn.execute(sa.insert(type(row).table()).values(**values))

    # -- enrollments ---------------------------------------------------------------
    def enrollment_by_digest(self, digest: bytes) -> EnrollmentRow | None:
        t = EnrollmentRow.table()
        rows = self._rows(EnrollmentRow, t.c.digest == digest)
        return rows[0] if rows else None

    def enrollments(
        self, *, kommunkod: str | None = None, status: int | None = None
    ) -> list[EnrollmentRow]:
        t = EnrollmentRow.table()
        conds = []
        if kommunkod is not None:
            conds.append(t.c.kommunkod == kommunkod)
        if status is not None:
            conds.append(t.c.status == status)
        return self._rows(EnrollmentRow, sa.and_(sa.true(), *conds), t.c.id)

    def count_pending(self, kommunkod: str | None = None) -> int:
        t = EnrollmentRow.table()
        stmt = sa.select(sa.func.count()).select_from(t).where(t.c.status == PENDING)
        if kommunkod is not None:
            stmt = stmt.where(t.c.kommunkod == kommunkod)
        return int(self.conn.execute(stmt).scalar_one())

    def count_requests(self, *, key_id: str) -> int:
        t = EnrollmentRow.table()
        stmt = sa.select(sa.func.count()).select_from(t).where(t.c.key_id == key_id)
        return int(self.conn.execute(stmt).scalar_one())

    def add_enrollment(self, row: EnrollmentRow) -> EnrollmentRow:
        t = EnrollmentRow.table()
        values = row.model_dump(exclude={"id"})
        new_id = self.conn.execute(sa.insert(t).values(**values).returning(t.c.id)).scalar_one()
        row.id = int(new_id)
        return row

    def decide_enrollment(
        self,
        enrollment_id: int,
        *,
        status: int,
        message: str,
        decided_at_ms: int,
        certificate_pem: bytes | None = None,
    ) -> None:
        t = EnrollmentRow.table()
        self.conn.execute(
            sa.update(t)
            .where(t.c.id == enrollment_id)
            .values(
                status=status,
                message=message,
                decided_at_ms=decided_at_ms,
                certificate_pem=certificate_pem,
            )
        )

    # -- members ---------------------------------------------------------------------
    def member(self, kommunkod: str) -> Member | None:
        rows = self._rows(MemberRow, MemberRow.table().c.kommunkod == kommunkod)
        if not rows:
            return None
        keys = self._rows(
            MemberKeyRow,
            MemberKeyRow.table().c.kommunkod == kommunkod,
            MemberKeyRow.table().c.added_at_ms,
        )
        return Member(
            rows[0],
            tuple(keys),
            tuple(self._signed_rotations(kommunkod).get(kommunkod, ())),
            tuple(self._signed_objections(kommunkod).get(kommunkod, ())),
        )

    def members(self) -> list[Member]:
        rows = self._rows(MemberRow, order=MemberRow.table().c.kommunkod)
        keys: dict[str, list[MemberKeyRow]] = {}
        for k in self._rows(MemberKeyRow, order=MemberKeyRow.table().c.added_at_ms):
            keys.setdefault(k.kommunkod, []).append(k)
        rotations = self._signed_rotations()
        objections = self._signed_objections()
        return [
            Member(
                r,
                tuple(keys.get(r.kommunkod, ())),
                tuple(rotations.get(r.kommunkod, ())),
                tuple(objections.get(r.kommunkod, ())),
            )
            for r in rows
        ]

    def _signed_rotations(self, kommunkod: str | None = None) -> dict[str, list[bytes]]:
        """Approved rotations' signed bytes per kommun, in the order they were decided."""
        t = KeyRotationRow.table()
        stmt = sa.select(t.c.kommunkod, t.c.signed_rotation).where(t.c.status == APPROVED)
        if kommunkod is not None:
            stmt = stmt.where(t.c.kommunkod == kommunkod)
        out: dict[str, list[bytes]] = {}
        for code, signed in self.conn.execute(stmt.order_by(t.c.decided_at_ms, t.c.id)):
            out.setdefault(code, []).append(bytes(signed))
        return out

    def _signed_objections(self, kommunkod: str | None = None) -> dict[str, list[bytes]]:
        t = KeyObjectionRow.table()
        stmt = sa.select(t.c.kommunkod, t.c.signed_objection)
        if kommunkod is not None:
            stmt = stmt.where(t.c.kommunkod == kommunkod)
        out: dict[str, list[bytes]] = {}
        for code, signed in self.conn.execute(stmt.order_by(t.c.id)):
            out.setdefault(code, []).append(bytes(signed))
        return out

    def key(self, key_id: str) -> MemberKeyRow | None:
        rows = self._rows(MemberKeyRow, MemberKeyRow.table().c.key_id == key_id)
        return rows[0] if rows else None

    def all_key_ids(self) -> set[str]:
        return set(self.conn.execute(sa.select(MemberKeyRow.table().c.key_id)).scalars())

    def add_member(self, row: MemberRow) -> None:
        self._insert(row)

    def add_key(self, row: MemberKeyRow) -> None:
        self._insert(row)

    def revoke_member(self, kommunkod: str, *, at_ms: int, reason: str) -> None:
        """Mark the member revoked and end every key still in force at ``at_ms``."""
        m, k = MemberRow.table(), MemberKeyRow.table()
        self.conn.execute(
            sa.update(m)
            .where(m.c.kommunkod == kommunkod)
            .values(status=REVOKED, revoked_at_ms=at_ms, revoke_reason=reason)
        )
        self.conn.execute(
            sa.update(k)
            .where(k.c.kommunkod == kommunkod)
            .where(sa.or_(k.c.revoked_at_ms.is_(None), k.c.revoked_at_ms > at_ms))
            .values(revoked_at_ms=at_ms)
        )

    def revoke_key(self, key_id: str, *, at_ms: int) -> None:
        k = MemberKeyRow.table()
        self.conn.execute(
            sa.update(k)
            .where(k.c.key_id == key_id)
            .where(sa.or_(k.c.revoked_at_ms.is_(None), k.c.revoked_at_ms > at_ms))
            .values(revoked_at_ms=at_ms)
        )

    # -- key rotations ---------------------------------------------------------------
    def rotation_by_digest(self, digest: bytes) -> KeyRotationRow | None:
        rows = self._rows(KeyRotationRow, KeyRotationRow.table().c.digest == digest)
        return rows[0] if rows else None

    def rotations(
        self, *, kommunkod: str | None = None, status: int | None = None
    ) -> list[KeyRotationRow]:
        t = KeyRotationRow.table()
        conds = []
        if kommunkod is not None:
            conds.append(t.c.kommunkod == kommunkod)
        if status is not None:
            conds.append(t.c.status == status)
        return self._rows(KeyRotationRow, sa.and_(sa.true(), *conds), t.c.id)

    def add_rotation(self, row: KeyRotationRow) -> KeyRotationRow:
        t = KeyRotationRow.table()
        values = row.model_dump(exclude={"id"})
        row.id = int(
            self.conn.execute(sa.insert(t).values(**values).returning(t.c.id)).scalar_one()
        )
        return row

    def decide_rotation(
        self, rotation_id: int, *, status: int, message: str, decided_at_ms: int
    ) -> None:
        t = KeyRotationRow.table()
        self.conn.execute(
            sa.update(t)
            .where(t.c.id == rotation_id)
            .values(status=status, message=message, decided_at_ms=decided_at_ms)
        )

    # -- key objections --------------------------------------------------------------
    def objection_by_digest(self, digest: bytes) -> KeyObjectionRow | None:
        rows = self._rows(KeyObjectionRow, KeyObjectionRow.table().c.digest == digest)
        return rows[0] if rows else None

    def objections(self, kommunkod: str) -> list[KeyObjectionRow]:
        t = KeyObjectionRow.table()
        return self._rows(KeyObjectionRow, t.c.kommunkod == kommunkod, t.c.id)

    def add_objection(self, row: KeyObjectionRow) -> KeyObjectionRow:
        t = KeyObjectionRow.table()
        values = row.model_dump(exclude={"id"})
        row.id = int(
            self.conn.execute(sa.insert(t).values(**values).returning(t.c.id)).scalar_one()
        )
        return row

    # -- directories -----------------------------------------------------------------
    def latest_directory(self) -> DirectoryRow | None:
        t = DirectoryRow.table()
        row = self.conn.execute(sa.select(t).order_by(t.c.version.desc()).limit(1)).first()
        return DirectoryRow(**row._mapping) if row is not None else None

    def directory_version(self) -> int:
        t = DirectoryRow.table()
        return int(self.conn.execute(sa.select(sa.func.max(t.c.version))).scalar() or 0)

    def directory(self, version: int) -> DirectoryRow | None:
        rows = self._rows(DirectoryRow, DirectoryRow.table().c.version == version)
        return rows[0] if rows else None

    def add_directory(self, row: DirectoryRow) -> None:
        self._insert(row)

    # -- the signing seat ------------------------------------------------------------
    def signing_seat(self) -> SigningSeatRow | None:
        rows = self._rows(SigningSeatRow, SigningSeatRow.table().c.id == 1)
        return rows[0] if rows else None

    def set_signing_seat(self, database: str, *, now: int, reason: str) -> None:
        """Allow signing on ``database`` from now on (replaces any earlier seat)."""
        t = SigningSeatRow.table()
        self.conn.execute(sa.delete(t))
        self._insert(SigningSeatRow(id=1, database=database, since_ms=now, reason=reason))

    def database_identity(self) -> str:
        return database_identity(self.conn)

    def signing_allowed(self) -> tuple[bool, str]:
        """Whether this database may sign (directory versions, log checkpoints): it is
        the signing seat, or none is recorded yet; and this database's identity."""
        seat = self.signing_seat()
        here = self.database_identity()
        return (seat is None or seat.database == here), here

    # -- certificates ----------------------------------------------------------------
    def add_certificate(self, row: CertificateRow) -> None:
        self._insert(row)

    def issued_since(self, kommunkod: str, purpose: str, since_ms: int) -> list[int]:
        """When (ms) certificates for ``purpose`` were issued to ``kommunkod`` since
        ``since_ms``, oldest first."""
        t = CertificateRow.table()
        stmt = (
            sa.select(t.c.issued_at_ms)
            .where(t.c.kommunkod == kommunkod, t.c.purpose == purpose)
            .where(t.c.issued_at_ms > since_ms)
            .order_by(t.c.issued_at_ms)
        )
        return [int(ms) for ms in self.conn.execute(stmt).scalars()]

    def certificates(self, kommunkod: str | None = None) -> list[CertificateRow]:
        t = CertificateRow.table()
        where = t.c.kommunkod == kommunkod if kommunkod is not None else None
        return self._rows(CertificateRow, where, t.c.issued_at_ms)


def database_identity(conn: Connection) -> str:
    """Which database this is, beyond its contents: a dump restored elsewhere, or a
    copied SQLite file, holds the same rows but answers another identity.

    PostgreSQL: the cluster's system identifier (when this role may read it; physical
    standbys share it, so a failover keeps it) and the database's OID. SQLite: the
    file's device and inode (a backup or copy is a new file; moving it within one
    file system keeps them).
    """
    if conn.dialect.name == "postgresql":
        oid = conn.execute(
            sa.text("SELECT oid FROM pg_database WHERE datname = current_database()")
        ).scalar()
        try:
            with conn.begin_nested():
                system = conn.execute(
                    sa.text("SELECT system_identifier FROM pg_control_system()")
                ).scalar()
        except sa.exc.DBAPIError:  # pg_control_system() not granted to this role
            system = "-"
        return f"postgresql:{system}:{oid}"
    files = [row[2] for row in conn.exec_driver_sql("PRAGMA database_list") if row[1] == "main"]
    if not files or not files[0]:
        return "sqlite:memory"
    info = os.stat(files[0])
    return f"sqlite:{info.st_dev}:{info.st_ino}"


class MemberStore:
    """The membership tables of one database (SQLite file or PostgreSQL)."""

    def __init__(self, engine: Engine, *, owns_engine: bool = False) -> None:
        self.engine = engine
        self._owns_engine = owns_engine

    @classmethod
    def open(cls, url: str, *, tracks: Sequence[str] = (HUB_TRACK,)) -> MemberStore:
        """Open the database at ``url`` and bring ``tracks`` up to date."""
        engine = create_engine(url, pool_size=4)
        try:
            migrate(engine, tracks)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, owns_engine=True)

    @contextmanager
    def read(self) -> Iterator[MemberTx]:
        with read_transaction(self.engine) as conn:
            yield MemberTx(conn)

    @contextmanager
    def write(self) -> Iterator[MemberTx]:
        with write_transaction(self.engine) as conn:
            yield MemberTx(conn)

    def latest_directory(self) -> VerifiedDirectory | None:
        with self.read() as tx:
            row = tx.latest_directory()
        return stored_directory(row) if row is not None else None

    def directory_version(self) -> int:
        with self.read() as tx:
            return tx.directory_version()

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()
