"""The council's decisions on membership, each one transaction that publishes a directory.

Who calls what:

- the public port's ``Enroll`` calls :meth:`Council.submit_enrollment` (anyone may ask);
- the operator's CLI calls :meth:`approve`, :meth:`reject`, :meth:`revoke`,
  :meth:`approve_rotation` on the hub folder directly;
- the member port's ``RotateKey``, ``RenewCertificate`` and ``ObjectToKey`` call
  :meth:`submit_rotation`, :meth:`renew_certificate` and :meth:`object_to_key` for
  the calling member;
- ``hub serve`` calls :meth:`ensure_fresh_directory` on a timer, so the directory is
  re-signed (a new version) before it expires.

Every change to who is a member or which keys they hold ends in
:meth:`_publish_directory` inside the same write transaction: the new directory
version is committed together with the change it lists, or not at all.

Rules worth knowing:

- Anyone can send a request in any kommun's name; the operator must confirm the key
  id with the kommun out of band before approving (``hub members pending`` shows it,
  ``node enroll`` prints it). Several pending requests for one kommun are kept, and
  ``approve`` then needs ``--key-id`` to say which.
- A kommun that is a member (or was revoked) cannot enroll again: a new signing key is
  a key rotation, a new TLS certificate a renewal. A revoked kommun stays revoked;
  its certificates name it, so admitting it again would revive them.
- A member's first key is valid from 0: entries it signed before it enrolled verify.
  A rotated-in key is valid from the rotation's creation time; the old key stays
  valid for ``[directory] rotation_overlap_hours`` after approval.
- The hub's own keys (``hub rotate-keys``, :mod:`samverka_hub.keyrotation`): the
  version that first carries a :class:`~samverka.protocol.hubrotation` rotation is
  signed by the new directory key (:meth:`publish_rotation`); the hub's member "0000"
  keeps listing its earlier keys (each revoked ``rotation_overlap_hours`` after it
  was rotated away from), so the council's records signed before still verify. A
  folder still holding a key the directory has rotated away from signs nothing.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from samverka.errors import ConfigError, EnrollmentRefused, QuotaExhausted, Reason
from samverka.membership.enrollment import (
    VerifiedEnrollment,
    VerifiedRotation,
    check_csr,
    parse_key_rotation,
    request_digest,
    verify_enrollment_request,
    verify_key_rotation,
)
from samverka.protocol.directory import (
    VerifiedDirectory,
    build_directory,
    hub_member,
    parse_key_objection,
)
from samverka.protocol.hubrotation import carried_rotation, verify_hub_rotation
from samverka.protocol.kommuner import HUB_ORIGIN, is_kommunkod, kommun_name
from samverka.protocol.signing import PublicKey, SigningKey
from samverka.transport.server.status import Conflict
from samverka.v1 import directory_pb2

from samverka_hub.ca import HubCA, describe
from samverka_hub.config import DirectorySection
from samverka_hub.members import (
    ACTIVE,
    APPROVED,
    PENDING,
    REJECTED,
    Member,
    MemberStore,
    MemberTx,
    stored_directory,
)
from samverka_hub.tables import (
    CertificateRow,
    DirectoryRow,
    EnrollmentRow,
    KeyObjectionRow,
    KeyRotationRow,
    MemberKeyRow,
    MemberRow,
)

#: More pending enrollment requests than this for one kommun are refused (the public
#: port is open to anyone; this bounds what a stranger can pile up).
MAX_PENDING_PER_KOMMUN = 5
#: ... and in total.
MAX_PENDING_TOTAL = 1000
#: Objections one member may make (each is listed in every directory version).
MAX_OBJECTIONS_PER_KOMMUN = 16
#: Requests signed with one key, whatever became of them (a newer request with the
#: same key replaces the older, so this bounds how many rows one key can make).
MAX_REQUESTS_PER_KEY = 20


class MembershipConflict(Conflict):
    """A membership action does not fit the current state (already a member, nothing
    pending). Travels as FAILED_PRECONDITION with ``reason`` and the hint."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Admission:
    """What approving an enrollment produced."""

    enrollment: EnrollmentRow
    certificate_pem: bytes
    directory: VerifiedDirectory


class Council:
    """Membership decisions over one hub database, signed with the hub's key."""

    def __init__(
        self,
        store: MemberStore,
        hub_key: SigningKey,
        ca: HubCA,
        settings: DirectorySection,
        *,
        member_cert_days: int = 397,
        max_renewals: int = 3,
        renewal_period_ms: int = 24 * 3_600_000,
        clock: Callable[[], int] = now_ms,
        key_source: Callable[[], SigningKey] | None = None,
        log_key: Callable[[], str] | None = None,
    ) -> None:
        self.store = store
        self._hub_key = hub_key
        #: Reads the hub folder's directory key as it is now (a running hub follows
        #: `hub rotate-keys` without a restart); None: ``hub_key`` for good.
        self._key_source = key_source
        #: The transparency log's verifier key the directory names (Directory.log_key).
        self._log_key = log_key
        self.ca = ca
        self.settings = settings
        self.member_cert_days = member_cert_days
        self.max_renewals = max_renewals
        self.renewal_period_ms = renewal_period_ms
        self.clock = clock
        #: Directory versions known to carry no hub key rotation (rows never change).
        self._plain_versions: set[int] = set()

    @property
    def hub_key(self) -> SigningKey:
        """The key that signs the next directory version."""
        return self._key_source() if self._key_source is not None else self._hub_key

    def log_key(self) -> str:
        return self._log_key() if self._log_key is not None else ""

    # -- enrollment ------------------------------------------------------------------

    def submit_enrollment(
        self, signed: directory_pb2.SignedEnrollmentRequest | bytes
    ) -> EnrollmentRow:
        """Store a new request as pending, or return the one already stored (idempotent).

        Raises EnrollmentRefused for an invalid request and MembershipConflict for a
        kommun that is already a member or has too many pending requests.
        """
        # Checked without the clock first: the same request asked again later (to
        # learn the decision) is recognised however old it is.
        verified = verify_enrollment_request(signed, now_ms=None)
        with self.store.read() as tx:
            held = tx.enrollment_by_digest(verified.digest)
        if held is not None:
            return held
        now = self.clock()
        verify_enrollment_request(verified.signed, now_ms=now)
        with self.store.write() as tx:
            held = tx.enrollment_by_digest(verified.digest)
            if held is not None:
                return held
            self._check_may_enroll(tx, verified)
            for older in tx.enrollments(kommunkod=verified.kommunkod, status=PENDING):
                if older.key_id == verified.key_id and older.id is not None:
                    # Only the key's holder can sign a request with it: a newer one
                    # (e.g. a corrected address) replaces its own older ones.
                    tx.decide_enrollment(
                        older.id,
                        status=REJECTED,
                        message="superseded by a newer request signed with the same key",
                        decided_at_ms=now,
                    )
            return tx.add_enrollment(
                EnrollmentRow(
                    digest=verified.digest,
                    kommunkod=verified.kommunkod,
                    key_id=verified.key_id,
                    signed_request=verified.signed.SerializeToString(deterministic=True),
                    status=PENDING,
                    message="",
                    received_at_ms=now,
                )
            )

    def _check_may_enroll(self, tx: MemberTx, verified: VerifiedEnrollment) -> None:
        code = verified.kommunkod
        member = tx.member(code)
        if member is not None and member.active:
            raise MembershipConflict(
                f"kommun {code} is already a member of Samverka",
                reason="already_member",
                hint="to use a new signing key run `samverka node rotate-key`; for a new TLS "
                "certificate run `samverka node renew-cert`; a node folder that lost its "
                "keys must ask the council",
            )
        if member is not None:
            raise MembershipConflict(
                f"kommun {code}'s membership was revoked",
                reason="member_revoked",
                hint="re-admission is the council's decision: contact AI-rådet",
            )
        if tx.key(verified.key_id) is not None:
            raise EnrollmentRefused(
                Reason.SCHEMA_INVALID,
                f"signing key {verified.key_id} is already listed in the directory",
                hint="each kommun needs its own signing key",
            )
        if tx.count_pending(code) >= MAX_PENDING_PER_KOMMUN:
            raise MembershipConflict(
                f"kommun {code} already has {MAX_PENDING_PER_KOMMUN} pending requests",
                reason="too_many_pending",
                hint="wait for the council's decision, or ask it to reject the old requests",
            )
        if tx.count_requests(key_id=verified.key_id) >= MAX_REQUESTS_PER_KEY:
            raise MembershipConflict(
                f"{MAX_REQUESTS_PER_KEY} requests were already made with key {verified.key_id}",
                reason="too_many_requests",
                hint="wait for the council's decision on the last one",
            )
        if tx.count_pending() >= MAX_PENDING_TOTAL:
            raise MembershipConflict(
                "the hub has too many pending requests", reason="too_many_pending"
            )

    def enrollment_status(self, digest: bytes) -> EnrollmentRow | None:
        with self.store.read() as tx:
            return tx.enrollment_by_digest(digest)

    def pending(self) -> list[EnrollmentRow]:
        with self.store.read() as tx:
            return tx.enrollments(status=PENDING)

    def approve(self, kommunkod: str, *, key_id: str = "") -> Admission:
        """Admit ``kommunkod``: issue its certificate, list it, publish a new directory."""
        now = self.clock()
        with self.store.write() as tx:
            row = self._one_pending(tx, kommunkod, key_id)
            verified = verify_enrollment_request(row.signed_request, now_ms=None)
            self._check_may_enroll_again(tx, verified)
            request = verified.request
            cert = self.ca.issue_member(
                bytes(request.csr_der),
                kommunkod=kommunkod,
                name=kommun_name(kommunkod),
                address=request.address,
                days=self.member_cert_days,
            )
            tx.add_member(
                MemberRow(
                    kommunkod=kommunkod,
                    name=kommun_name(kommunkod),
                    status=ACTIVE,
                    contact_role=request.contact_role,
                    address=request.address,
                    joined_at_ms=now,
                    revoked_at_ms=None,
                    revoke_reason="",
                )
            )
            tx.add_key(
                MemberKeyRow(
                    key_id=verified.key_id,
                    kommunkod=kommunkod,
                    public_key=bytes(request.signing_public_key),
                    valid_from_ms=0,
                    revoked_at_ms=None,
                    added_at_ms=now,
                )
            )
            self.record_certificate(tx, kommunkod, cert.pem, "enrollment", now)
            assert row.id is not None
            tx.decide_enrollment(
                row.id,
                status=APPROVED,
                message="approved: welcome to Samverka",
                decided_at_ms=now,
                certificate_pem=cert.pem,
            )
            for other in tx.enrollments(kommunkod=kommunkod, status=PENDING):
                assert other.id is not None
                tx.decide_enrollment(
                    other.id,
                    status=REJECTED,
                    message=f"another request for {kommunkod} (key {verified.key_id}) was approved",
                    decided_at_ms=now,
                )
            directory = self._publish_directory(tx, now)
            approved = tx.enrollment_by_digest(row.digest)
        assert approved is not None
        return Admission(approved, cert.pem, directory)

    def _check_may_enroll_again(self, tx: MemberTx, verified: VerifiedEnrollment) -> None:
        # The same checks as on arrival, minus the pending limits: things may have
        # changed while the request waited.
        member = tx.member(verified.kommunkod)
        if member is not None:
            raise MembershipConflict(
                f"kommun {verified.kommunkod} is already listed ({_status_word(member)})",
                reason="already_member",
            )
        if tx.key(verified.key_id) is not None:
            raise MembershipConflict(
                f"signing key {verified.key_id} is already listed", reason="key_in_use"
            )

    def reject(self, kommunkod: str, *, reason: str, key_id: str = "") -> EnrollmentRow:
        """Refuse a pending request; the requester sees ``reason`` when it asks again."""
        if not reason.strip():
            raise MembershipConflict("give a reason for the rejection", reason="no_reason")
        now = self.clock()
        with self.store.write() as tx:
            row = self._one_pending(tx, kommunkod, key_id)
            assert row.id is not None
            tx.decide_enrollment(
                row.id, status=REJECTED, message=f"rejected: {reason.strip()}", decided_at_ms=now
            )
            decided = tx.enrollment_by_digest(row.digest)
        assert decided is not None
        return decided

    def _one_pending(self, tx: MemberTx, kommunkod: str, key_id: str) -> EnrollmentRow:
        _check_code(kommunkod)
        rows = [
            r
            for r in tx.enrollments(kommunkod=kommunkod, status=PENDING)
            if r.key_id.startswith(key_id)
        ]
        if not rows:
            raise MembershipConflict(
                f"no pending enrollment request for {kommunkod}"
                + (f" with key id {key_id}" if key_id else ""),
                reason="nothing_pending",
                hint="list them with `samverka hub members pending`",
            )
        if len(rows) > 1:
            ids = ", ".join(r.key_id for r in rows)
            raise MembershipConflict(
                f"{len(rows)} pending requests for {kommunkod} (key ids {ids})",
                reason="ambiguous",
                hint="confirm the key id with the kommun, then pass --key-id KEYID",
            )
        return rows[0]

    # -- revocation ------------------------------------------------------------------

    def revoke(
        self, kommunkod: str, *, reason: str = "", at_ms: int | None = None
    ) -> VerifiedDirectory:
        """Revoke a member from ``at_ms`` (default now): every key ends then, every node
        refuses its later entries on its next directory fetch, the hub refuses its calls."""
        now = self.clock()
        at = now if at_ms is None else at_ms
        with self.store.write() as tx:
            member = tx.member(_check_code(kommunkod))
            if member is None:
                raise MembershipConflict(
                    f"{kommunkod} is not a member",
                    reason="not_member",
                    hint="list members with `samverka hub members list`",
                )
            if not member.active:
                raise MembershipConflict(
                    f"{kommunkod} is already revoked", reason="already_revoked"
                )
            tx.revoke_member(kommunkod, at_ms=at, reason=reason.strip())
            return self._publish_directory(tx, now)

    # -- key rotation ----------------------------------------------------------------

    def submit_rotation(
        self, signed: directory_pb2.SignedKeyRotation | bytes, *, caller: str
    ) -> KeyRotationRow:
        """Store a member's announced new key as pending (idempotent), for the council.

        ``caller`` is the kommunkod from the caller's certificate; a member may only
        rotate its own key.
        """
        signed_msg, rotation = parse_key_rotation(signed)
        if rotation.kommunkod != caller:
            raise MembershipConflict(
                f"{caller} may not rotate the keys of {rotation.kommunkod[:10]}",
                reason="not_your_key",
            )
        digest = request_digest(signed_msg.rotation)
        with self.store.read() as tx:
            held = tx.rotation_by_digest(digest)
        if held is not None:
            return held
        now = self.clock()
        with self.store.write() as tx:
            held = tx.rotation_by_digest(digest)
            if held is not None:
                return held
            member = tx.member(caller)
            if member is None or not member.active:
                raise MembershipConflict(f"{caller} is not an active member", reason="not_member")
            verified = verify_key_rotation(
                signed_msg,
                current_keys=[PublicKey(k.public_key) for k in member.keys_in_force(now)],
                known_key_ids=tx.all_key_ids(),
                now_ms=now,
            )
            if len(tx.rotations(kommunkod=caller, status=PENDING)) >= MAX_PENDING_PER_KOMMUN:
                raise MembershipConflict(
                    f"{caller} already has pending key rotations", reason="too_many_pending"
                )
            return tx.add_rotation(
                KeyRotationRow(
                    digest=verified.digest,
                    kommunkod=caller,
                    old_key_id=verified.old_key_id,
                    new_key_id=verified.new_key.key_id,
                    signed_rotation=signed_msg.SerializeToString(deterministic=True),
                    status=PENDING,
                    message="",
                    received_at_ms=now,
                )
            )

    def pending_rotations(self) -> list[KeyRotationRow]:
        with self.store.read() as tx:
            return tx.rotations(status=PENDING)

    def approve_rotation(self, kommunkod: str, *, key_id: str = "") -> VerifiedDirectory:
        """List the new key (valid from the rotation's time) and end the old one after
        the overlap; publish a new directory."""
        now = self.clock()
        with self.store.write() as tx:
            row = self._one_pending_rotation(tx, kommunkod, key_id)
            member = tx.member(kommunkod)
            if member is None or not member.active:
                raise MembershipConflict(
                    f"{kommunkod} is not an active member", reason="not_member"
                )
            # Checked again: the old key may have ended, or the new one been listed, since.
            verified: VerifiedRotation = verify_key_rotation(
                row.signed_rotation,
                current_keys=[PublicKey(k.public_key) for k in member.keys_in_force(now)],
                known_key_ids=tx.all_key_ids(),
                now_ms=None,
            )
            tx.add_key(
                MemberKeyRow(
                    key_id=verified.new_key.key_id,
                    kommunkod=kommunkod,
                    public_key=verified.new_key.raw,
                    valid_from_ms=verified.rotation.created_at_ms,
                    revoked_at_ms=None,
                    added_at_ms=now,
                )
            )
            tx.revoke_key(verified.old_key_id, at_ms=now + self.settings.rotation_overlap_ms)
            assert row.id is not None
            tx.decide_rotation(row.id, status=APPROVED, message="approved", decided_at_ms=now)
            return self._publish_directory(tx, now)

    def reject_rotation(self, kommunkod: str, *, reason: str, key_id: str = "") -> KeyRotationRow:
        """Refuse a pending key rotation; the member sees ``reason`` when it asks again."""
        if not reason.strip():
            raise MembershipConflict("give a reason for the rejection", reason="no_reason")
        now = self.clock()
        with self.store.write() as tx:
            row = self._one_pending_rotation(tx, kommunkod, key_id)
            assert row.id is not None
            tx.decide_rotation(
                row.id,
                status=REJECTED,
                message=f"rejected: {reason.strip()}",
                decided_at_ms=now,
            )
            decided = tx.rotation_by_digest(row.digest)
        assert decided is not None
        return decided

    def _one_pending_rotation(self, tx: MemberTx, kommunkod: str, key_id: str) -> KeyRotationRow:
        """The one pending rotation of ``kommunkod`` whose new key id starts with ``key_id``."""
        rows = [
            r
            for r in tx.rotations(kommunkod=_check_code(kommunkod), status=PENDING)
            if r.new_key_id.startswith(key_id)
        ]
        if len(rows) != 1:
            raise MembershipConflict(
                f"{len(rows)} pending key rotations for {kommunkod}"
                + (f" with new key id {key_id}" if key_id else ""),
                reason="nothing_pending" if not rows else "ambiguous",
                hint="list them with `samverka hub keys pending`"
                + ("; pass --key-id NEWKEYID" if rows else ""),
            )
        return rows[0]

    def rotation_status(self, digest: bytes) -> KeyRotationRow | None:
        with self.store.read() as tx:
            return tx.rotation_by_digest(digest)

    # -- key objections --------------------------------------------------------------

    def object_to_key(
        self, signed: directory_pb2.SignedKeyObjection | bytes, *, caller: str
    ) -> tuple[KeyObjectionRow, VerifiedDirectory]:
        """Keep a member's signed objection to a key listed for it and publish a
        directory version listing it (Member.objections) at once, so every node
        refuses the key (samverka.protocol.keybinding judges it: signed by a key of
        the member that took effect no later than the objected one). Idempotent.

        ``caller`` is the kommunkod of the caller's certificate: a member objects for
        itself only, signed by a key the directory lists for it.
        """
        objection = parse_key_objection(signed)
        if objection.kommunkod != caller:
            raise MembershipConflict(
                f"{caller} may not object to keys of {objection.kommunkod}",
                reason="not_your_key",
            )
        raw = objection.signed_bytes()
        digest = hashlib.sha256(raw).digest()
        now = self.clock()
        with self.store.write() as tx:
            held = tx.objection_by_digest(digest)
            if held is not None:
                latest = tx.latest_directory()
                assert latest is not None
                return held, stored_directory(latest)
            member = tx.member(caller)
            if member is None:
                raise MembershipConflict(f"{caller} is not a member", reason="not_member")
            signer = next((k for k in member.keys if k.key_id == objection.signer_key_id), None)
            if signer is None:
                raise EnrollmentRefused(
                    Reason.UNKNOWN_KEY,
                    f"the objection is signed with key {objection.signer_key_id[:40]!r}, "
                    f"which the directory does not list for {caller}",
                    hint="sign it with the node's current signing key",
                )
            if not objection.verifies_with(PublicKey(signer.public_key)):
                raise EnrollmentRefused(
                    Reason.BAD_SIGNATURE, f"the objection's signature by {signer.key_id} fails"
                )
            if objection.objected_key_id == signer.key_id:
                raise EnrollmentRefused(Reason.SCHEMA_INVALID, "a key cannot object to itself")
            if len(tx.objections(caller)) >= MAX_OBJECTIONS_PER_KOMMUN:
                raise MembershipConflict(
                    f"{caller} has made {MAX_OBJECTIONS_PER_KOMMUN} objections already",
                    reason="too_many_objections",
                    hint="ask AI-rådet: a kommun with this many foreign keys needs the council",
                )
            row = tx.add_objection(
                KeyObjectionRow(
                    digest=digest,
                    kommunkod=caller,
                    objected_key_id=objection.objected_key_id,
                    signer_key_id=signer.key_id,
                    signed_objection=raw,
                    received_at_ms=now,
                )
            )
            return row, self._publish_directory(tx, now)

    # -- certificates ----------------------------------------------------------------

    def renew_certificate(self, kommunkod: str, csr_der: bytes) -> bytes:
        """A new TLS certificate for an active member's (new or same) key.

        At most ``max_renewals`` within ``renewal_period_ms``, counted from the issued
        certificates in the write transaction (the database's write lock), so replicas
        share one count; beyond it :class:`QuotaExhausted` says when to try again.
        """
        now = self.clock()
        with self.store.write() as tx:
            member = tx.member(kommunkod)
            if member is None or not member.active:
                raise MembershipConflict(
                    f"{kommunkod} is not an active member", reason="not_member"
                )
            recent = tx.issued_since(kommunkod, "renewal", now - self.renewal_period_ms)
            if len(recent) >= self.max_renewals:
                retry_at = recent[-self.max_renewals] + self.renewal_period_ms
                raise QuotaExhausted(
                    "renewal_limit",
                    f"{kommunkod} has renewed its certificate {len(recent)} times in the last "
                    f"{_hours(self.renewal_period_ms)} (the limit is {self.max_renewals}); "
                    f"the next renewal is allowed at {_utc(retry_at)} (in "
                    f"{_hours(retry_at - now)})",
                    retry_at_ms=retry_at,
                    hint="the certificate in tls/node.pem is still valid; renew again "
                    "after that time, or ask AI-rådet if the key was lost",
                )
            check_csr(csr_der, kommunkod=kommunkod)
            cert = self.ca.issue_member(
                csr_der,
                kommunkod=kommunkod,
                name=member.row.name,
                address=member.row.address,
                days=self.member_cert_days,
            )
            self.record_certificate(tx, kommunkod, cert.pem, "renewal", now)
        return cert.pem

    def record_certificate(
        self, tx: MemberTx, kommunkod: str, pem: bytes, purpose: str, now: int
    ) -> None:
        info = describe(pem)
        tx.add_certificate(
            CertificateRow(
                serial=info.serial,
                kommunkod=kommunkod,
                certificate_pem=pem,
                not_before_ms=info.not_before_ms,
                not_after_ms=info.not_after_ms,
                issued_at_ms=now,
                purpose=purpose,
            )
        )

    # -- the directory -----------------------------------------------------------------

    def current_directory(self) -> VerifiedDirectory | None:
        return self.store.latest_directory()

    def ensure_fresh_directory(self) -> VerifiedDirectory:
        """The newest directory, re-signed as a new version if half its life is gone."""
        now = self.clock()
        latest = self.store.latest_directory()
        if latest is not None and not self._stale(latest, now):
            return latest
        with self.store.write() as tx:
            row = tx.latest_directory()
            if row is not None:
                latest = stored_directory(row)
                if not self._stale(latest, now):
                    return latest
            return self._publish_directory(tx, now)

    def reissue_directory(self, *, min_version: int = 0) -> VerifiedDirectory:
        """Sign a new directory version now (e.g. after restoring a backup, with a
        ``min_version`` above any version nodes may have seen)."""
        now = self.clock()
        with self.store.write() as tx:
            return self._publish_directory(tx, now, min_version=min_version)

    def _stale(self, directory: VerifiedDirectory, now: int) -> bool:
        return (
            now >= directory.issued_at_ms + self.settings.reissue_after_ms
            or directory.directory.hub_key_id != self.hub_key.key_id
        )

    def promote(self, *, reason: str) -> tuple[str, str]:
        """Declare this database the one the directory is signed on (after a restore
        that replaces production, or after moving the database): returns the identities
        ``(before, now)``; ``before`` is "" when no version was signed yet."""
        now = self.clock()
        with self.store.write() as tx:
            seat = tx.signing_seat()
            here = tx.database_identity()
            tx.set_signing_seat(here, now=now, reason=f"promote: {reason}" if reason else "promote")
        return (seat.database if seat is not None else ""), here

    def signing_allowed(self) -> tuple[bool, str]:
        """Whether this database may sign directory versions, and what it is."""
        with self.store.read() as tx:
            return tx.signing_allowed()

    def _check_signing_seat(self, tx: MemberTx, now: int) -> None:
        """Refuse to sign on a copy of the database that signed the versions held: a
        restored backup (or a clone) signing version N+1 while production also signs
        an N+1 with other content forks the directory every node follows."""
        here = tx.database_identity()
        seat = tx.signing_seat()
        if seat is None:
            tx.set_signing_seat(here, now=now, reason="first signature")
        elif seat.database != here:
            raise ConfigError(
                f"this hub's database is a copy (restored or cloned) of the one that signed "
                f"directory version {tx.directory_version()} ({seat.database}; this is "
                f"{here}): it signs no new directory version, so it cannot fork the directory "
                "production keeps signing",
                hint="if this copy now IS the production hub (the old one is stopped for "
                "good): `samverka hub promote --dir HUB`, then `samverka hub directory "
                "reissue --min-version N+1` (docs/OPERATIONS.md, 'Backing up a hub'); "
                "a restore drill stops here",
            )

    # -- the hub's own keys -----------------------------------------------------------

    def publish_rotation(
        self, signed: directory_pb2.SignedHubKeyRotation, new_key: SigningKey
    ) -> VerifiedDirectory:
        """Announce the hub's new keys: the next directory version, signed by ``new_key``
        (the current key when only the log key or the CA changes), carries ``signed``
        (made by :func:`~samverka.protocol.hubrotation.build_hub_rotation` with the
        current key and ``new_key``) and names the rotation's log key, if it has one.
        One transaction: the version and the rotation commit together."""
        rotation = verify_hub_rotation(signed, self.hub_key.public)
        if rotation.new_key != new_key.public:
            raise ValueError("the rotation announces another key than the one given")
        now = max(self.clock(), rotation.created_at_ms)
        with self.store.write() as tx:
            latest = tx.latest_directory()
            if latest is not None:
                self._check_key_in_force(stored_directory(latest), self.hub_key)
            return self._publish_directory(
                tx,
                now,
                signer=new_key,
                hub_rotation=signed,
                log_key=rotation.new_log_key or None,
            )

    def rotation_step(self, known_version: int) -> VerifiedDirectory | None:
        """For a node holding ``known_version``: the first later version that carries a
        hub key rotation (the node must follow it before it can take any later version
        signed by a newer key), or None when no rotation came since."""
        latest = self.store.directory_version()
        for version in range(known_version + 1, latest):
            if version in self._plain_versions:
                continue
            with self.store.read() as tx:
                row = tx.directory(version)
            if row is None:
                continue
            stored = stored_directory(row)
            if carried_rotation(stored.directory) is not None:
                return stored
            self._plain_versions.add(version)  # directory rows never change
        return None

    def _check_key_in_force(self, latest: VerifiedDirectory, key: SigningKey) -> None:
        """Refuse to sign with a key the directory has rotated away from: a replica (or a
        copy of the folder) that missed `hub rotate-keys` would sign versions no node
        that followed the rotation takes."""
        if latest.directory.hub_key_id == key.key_id:
            return
        hub = latest.member(HUB_ORIGIN)
        if hub is not None and any(k.key_id == key.key_id for k in hub.keys):
            raise ConfigError(
                f"this hub folder's directory key {key.key_id} was rotated away from: "
                f"directory version {latest.version} is signed by key "
                f"{latest.directory.hub_key_id}",
                hint="copy keys/, ca/ and tls/ from the folder where `samverka hub "
                "rotate-keys` ran into this replica's folder (docs/OPERATIONS.md, "
                "'Rotating the hub's keys'); a running hub reads the new key by itself",
            )

    def _log_key_for(self, latest: VerifiedDirectory | None) -> str:
        """The log key a new version names: the one the versions before named (nodes
        take a change only with a hub key rotation, :meth:`publish_rotation`), else the
        folder's."""
        named = latest.directory.log_key if latest is not None else ""
        return named or self.log_key()

    def _hub_member(
        self, latest: VerifiedDirectory | None, signer: SigningKey, now: int
    ) -> directory_pb2.Member:
        """The hub's member "0000": its current key, and every key it signed with before
        (carried from version to version), each revoked ``rotation_overlap`` after it was
        rotated away from, so the council's records signed with it still verify."""
        member = hub_member(signer.public)
        previous = latest.member(HUB_ORIGIN) if latest is not None else None
        if previous is None:
            return member
        member.joined_at_ms = previous.joined_at_ms
        keys: list[directory_pb2.MemberKey] = []
        current: directory_pb2.MemberKey | None = None
        for key in previous.keys:
            kept = directory_pb2.MemberKey()
            kept.CopyFrom(key)
            if kept.key_id == signer.key_id:
                current = kept
                continue
            if not kept.revoked_at_ms:
                kept.revoked_at_ms = max(
                    now + self.settings.rotation_overlap_ms, kept.valid_from_ms + 1
                )
            keys.append(kept)
        if current is None:
            current = directory_pb2.MemberKey(
                public_key=signer.public.raw,
                key_id=signer.key_id,
                valid_from_ms=now if keys else 0,
            )
        current.revoked_at_ms = 0
        del member.keys[:]
        member.keys.extend([*keys, current])
        return member

    def _publish_directory(
        self,
        tx: MemberTx,
        now: int,
        *,
        min_version: int = 0,
        signer: SigningKey | None = None,
        hub_rotation: directory_pb2.SignedHubKeyRotation | None = None,
        log_key: str | None = None,
    ) -> VerifiedDirectory:
        self._check_signing_seat(tx, now)
        latest_row = tx.latest_directory()
        latest = stored_directory(latest_row) if latest_row is not None else None
        if signer is None:
            signer = self.hub_key
            if latest is not None:
                self._check_key_in_force(latest, signer)
        version = max(tx.directory_version() + 1, min_version)
        members: list[directory_pb2.Member] = [self._hub_member(latest, signer, now)]
        members.extend(m.to_proto() for m in tx.members())
        directory = build_directory(
            signer,
            version=version,
            members=members,
            issued_at_ms=now,
            valid_ms=self.settings.valid_ms,
            log_key=self._log_key_for(latest) if log_key is None else log_key,
            hub_rotation=hub_rotation,
        )
        tx.add_directory(
            DirectoryRow(
                version=version,
                signed_directory=directory.signed_bytes(),
                digest=directory.digest,
                issued_at_ms=directory.issued_at_ms,
                expires_at_ms=directory.expires_at_ms,
            )
        )
        return directory

    # -- reading ------------------------------------------------------------------------

    def members(self) -> list[Member]:
        with self.store.read() as tx:
            return tx.members()


def _hours(ms: int) -> str:
    """A duration for a message: "24 h", "1.5 h", "12 min"."""
    if ms < 3_600_000:
        return f"{max(1, -(-ms // 60_000))} min"
    return f"{ms / 3_600_000:.3g} h"


def _utc(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))


def _check_code(kommunkod: str) -> str:
    if not is_kommunkod(kommunkod):
        raise MembershipConflict(
            f"{kommunkod!r} is not a kommunkod",
            reason="not_a_kommun",
            hint="use the kommun's 4-digit SCB code, e.g. 2029",
        )
    return kommunkod


def _status_word(member: Member) -> str:
    return "active" if member.active else "revoked"
