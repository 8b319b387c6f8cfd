"""Enrollment requests and key rotations: build, sign and verify them (pure, no I/O).

An **enrollment request** asks the council to admit a kommun. It is signed by the
Ed25519 key it announces (proof that the requester holds that key) and carries a
PKCS#10 certificate request for the node's ECDSA P-256 TLS key, whose own
signature proves possession of that key too. The hub verifies it with
:func:`verify_enrollment_request` before storing it for the operator.

A **key rotation** announces a member's new signing key. It is signed twice over
the same bytes: by the old key (the member speaks) and by the new key (proof of
possession). The hub verifies it against the member's keys in its directory with
:func:`verify_key_rotation`; the council then approves it.

Freshness: a request or rotation must be created at most ``max_age_ms`` before and
``max_skew_ms`` after the verifier's clock. The hub checks it only when it sees a
request for the first time; asking again later with the very same signed bytes
(to learn the decision) is answered from what the hub stored.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from google.protobuf.message import DecodeError, Message

from samverka.errors import CertificateInvalid, EnrollmentRefused, Reason
from samverka.protocol.entries import has_unknown_fields
from samverka.protocol.kommuner import is_kommunkod, kommun_name
from samverka.protocol.signing import ENROLLMENT_DOMAIN, KEY_ROTATION_DOMAIN, PublicKey, SigningKey
from samverka.v1 import directory_pb2

if TYPE_CHECKING:  # pki loads cryptography.x509: only where certificates are handled
    from samverka.transport.pki import CsrInfo

M = TypeVar("M", bound=Message)

#: Largest serialized signed request or rotation accepted (a CSR is about 500 bytes).
MAX_REQUEST_BYTES = 16 * 1024
#: Longest name, contact role or address.
MAX_TEXT_CHARS = 200

#: A request older than this when the hub first sees it is refused (a replay).
DEFAULT_MAX_AGE_MS = 15 * 60 * 1000
#: A request dated further ahead of the hub's clock than this is refused.
DEFAULT_MAX_SKEW_MS = 10 * 60 * 1000


def request_digest(signed_bytes: bytes) -> bytes:
    """SHA-256 over the exact signed request bytes; how the hub recognises a request."""
    return hashlib.sha256(signed_bytes).digest()


# -- enrollment ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifiedEnrollment:
    """An enrollment request whose signatures, kommunkod and CSR have been checked."""

    signed: directory_pb2.SignedEnrollmentRequest
    request: directory_pb2.EnrollmentRequest
    csr: CsrInfo

    @property
    def kommunkod(self) -> str:
        return self.request.kommunkod

    @property
    def public_key(self) -> PublicKey:
        return PublicKey(bytes(self.request.signing_public_key))

    @property
    def key_id(self) -> str:
        return self.public_key.key_id

    @property
    def signed_bytes(self) -> bytes:
        return self.signed.SerializeToString(deterministic=True)

    @property
    def digest(self) -> bytes:
        """Identifies the request: SHA-256 over the signed request bytes."""
        return request_digest(self.signed.request)


def build_enrollment_request(
    key: SigningKey,
    *,
    kommunkod: str,
    csr_der: bytes,
    created_at_ms: int,
    contact_role: str = "",
    address: str = "",
    name: str = "",
) -> directory_pb2.SignedEnrollmentRequest:
    """Serialize a request once and sign those bytes with the key it announces."""
    request = directory_pb2.EnrollmentRequest(
        kommunkod=kommunkod,
        name=name or kommun_name(kommunkod),
        signing_public_key=key.public.raw,
        csr_der=csr_der,
        contact_role=contact_role,
        address=address,
        created_at_ms=created_at_ms,
    )
    raw = request.SerializeToString(deterministic=True)
    return directory_pb2.SignedEnrollmentRequest(
        request=raw, signature=key.sign(raw, domain=ENROLLMENT_DOMAIN)
    )


def verify_enrollment_request(
    signed: directory_pb2.SignedEnrollmentRequest | bytes,
    *,
    now_ms: int | None,
    max_age_ms: int = DEFAULT_MAX_AGE_MS,
    max_skew_ms: int = DEFAULT_MAX_SKEW_MS,
) -> VerifiedEnrollment:
    """Check a signed enrollment request; ``now_ms=None`` skips the freshness check.

    Refuses (EnrollmentRefused): oversize or malformed bytes, a key that is not 32
    bytes, a signature that is not by the announced key, a code that is not one of
    the 290 kommuner, a CSR that does not verify or is not ECDSA P-256 or whose
    common name is not the kommunkod, over-long text, a stale or future timestamp.
    """
    signed = _decode(signed, directory_pb2.SignedEnrollmentRequest, "SignedEnrollmentRequest")
    request = _decode(signed.request, directory_pb2.EnrollmentRequest, "EnrollmentRequest")
    if len(request.signing_public_key) != 32:
        raise EnrollmentRefused(Reason.MALFORMED, "signing_public_key must be 32 bytes")
    public = PublicKey(bytes(request.signing_public_key))
    if not public.verify(signed.request, signed.signature, domain=ENROLLMENT_DOMAIN):
        raise EnrollmentRefused(
            Reason.BAD_SIGNATURE, "the request is not signed by the signing key it announces"
        )
    code = request.kommunkod
    if not is_kommunkod(code):
        raise EnrollmentRefused(
            Reason.SCHEMA_INVALID,
            f"{code[:10]!r} is not one of the 290 kommunkoder",
            hint="use the kommun's 4-digit SCB code, e.g. 2029 for Leksand",
        )
    for label, text in (
        ("name", request.name),
        ("contact_role", request.contact_role),
        ("address", request.address),
    ):
        if len(text) > MAX_TEXT_CHARS:
            raise EnrollmentRefused(
                Reason.SCHEMA_INVALID,
                f"{label} is {len(text)} characters, at most {MAX_TEXT_CHARS}",
            )
    if request.address:
        check_address(request.address)
    csr = check_csr(bytes(request.csr_der), kommunkod=code)
    if now_ms is not None:
        check_fresh(request.created_at_ms, now_ms, max_age_ms=max_age_ms, max_skew_ms=max_skew_ms)
    return VerifiedEnrollment(signed=signed, request=request, csr=csr)


def check_csr(csr_der: bytes, *, kommunkod: str) -> CsrInfo:
    """:func:`samverka.transport.pki.verify_csr` for a CSR a member sent the hub (enrollment,
    renewal): a CSR it refuses is a refusal of the member's request (EnrollmentRefused)."""
    from samverka.transport.pki import verify_csr

    try:
        return verify_csr(csr_der, kommunkod=kommunkod)
    except CertificateInvalid as exc:
        raise EnrollmentRefused(
            exc.reason,
            f"the certificate request: {exc}",
            hint="make the request with `samverka node enroll`, which writes a valid one",
        ) from exc


def check_address(address: str) -> tuple[str, int]:
    """A ``host:port`` (IPv6 as ``[::1]:7443``); returns the host and the port."""
    host, sep, port_text = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    ok = bool(sep) and port_text.isdigit() and 0 < int(port_text) < 65536 and bool(host)
    if ok:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            labels = host.split(".")
            ok = all(
                0 < len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii()
                for label in labels
            )
    if not ok:
        raise EnrollmentRefused(
            Reason.SCHEMA_INVALID,
            f"address {address[:60]!r} is not host:port",
            hint="give the address the hub can reach the node at, e.g. node.leksand.se:7443",
        )
    return host, int(port_text)


def check_fresh(created_at_ms: int, now_ms: int, *, max_age_ms: int, max_skew_ms: int) -> None:
    if created_at_ms > now_ms + max_skew_ms:
        raise EnrollmentRefused(
            Reason.CLOCK_SKEW,
            f"created {created_at_ms - now_ms} ms in the future, tolerance {max_skew_ms} ms",
            hint="check the node's clock (NTP)",
        )
    if created_at_ms < now_ms - max_age_ms:
        raise EnrollmentRefused(
            Reason.EXPIRED,
            f"created {now_ms - created_at_ms} ms ago, at most {max_age_ms} ms",
            hint="make a new request (run the command again)",
        )


# -- key rotation ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifiedRotation:
    """A key rotation signed by a current key of the member and by the new key."""

    signed: directory_pb2.SignedKeyRotation
    rotation: directory_pb2.KeyRotation

    @property
    def kommunkod(self) -> str:
        return self.rotation.kommunkod

    @property
    def new_key(self) -> PublicKey:
        return PublicKey(bytes(self.rotation.new_public_key))

    @property
    def old_key_id(self) -> str:
        return self.rotation.old_key_id

    @property
    def digest(self) -> bytes:
        return request_digest(self.signed.rotation)


def build_key_rotation(
    old: SigningKey, new: SigningKey, *, kommunkod: str, created_at_ms: int
) -> directory_pb2.SignedKeyRotation:
    """Announce ``new`` under ``old``: both sign the same rotation bytes."""
    rotation = directory_pb2.KeyRotation(
        kommunkod=kommunkod,
        new_public_key=new.public.raw,
        old_key_id=old.key_id,
        created_at_ms=created_at_ms,
    )
    raw = rotation.SerializeToString(deterministic=True)
    return directory_pb2.SignedKeyRotation(
        rotation=raw,
        old_signature=old.sign(raw, domain=KEY_ROTATION_DOMAIN),
        new_signature=new.sign(raw, domain=KEY_ROTATION_DOMAIN),
    )


def parse_key_rotation(
    signed: directory_pb2.SignedKeyRotation | bytes,
) -> tuple[directory_pb2.SignedKeyRotation, directory_pb2.KeyRotation]:
    """Decode a rotation without trusting it (to find whose keys to check it against)."""
    signed = _decode(signed, directory_pb2.SignedKeyRotation, "SignedKeyRotation")
    rotation = _decode(signed.rotation, directory_pb2.KeyRotation, "KeyRotation")
    return signed, rotation


def verify_key_rotation(
    signed: directory_pb2.SignedKeyRotation | bytes,
    *,
    current_keys: Iterable[PublicKey],
    known_key_ids: Iterable[str] = (),
    now_ms: int | None,
    max_age_ms: int = DEFAULT_MAX_AGE_MS,
    max_skew_ms: int = DEFAULT_MAX_SKEW_MS,
) -> VerifiedRotation:
    """Check a rotation against the member's keys in force (``current_keys``).

    ``known_key_ids`` are every key id the directory has ever listed: a new key may
    not be one of them (no reusing an old or another member's key).
    """
    signed, rotation = parse_key_rotation(signed)
    if not is_kommunkod(rotation.kommunkod):
        raise EnrollmentRefused(
            Reason.SCHEMA_INVALID, f"{rotation.kommunkod[:10]!r} is not a kommunkod"
        )
    if len(rotation.new_public_key) != 32:
        raise EnrollmentRefused(Reason.MALFORMED, "new_public_key must be 32 bytes")
    old = {k.key_id: k for k in current_keys}.get(rotation.old_key_id)
    if old is None:
        raise EnrollmentRefused(
            Reason.UNKNOWN_KEY,
            f"key {rotation.old_key_id[:40]!r} is not a key of {rotation.kommunkod} in force",
        )
    if not old.verify(signed.rotation, signed.old_signature, domain=KEY_ROTATION_DOMAIN):
        raise EnrollmentRefused(Reason.BAD_SIGNATURE, "the old key's signature does not verify")
    new = PublicKey(bytes(rotation.new_public_key))
    if not new.verify(signed.rotation, signed.new_signature, domain=KEY_ROTATION_DOMAIN):
        raise EnrollmentRefused(Reason.BAD_SIGNATURE, "the new key's signature does not verify")
    if new.key_id == old.key_id or new.key_id in set(known_key_ids):
        raise EnrollmentRefused(
            Reason.SCHEMA_INVALID,
            f"key {new.key_id} has been listed before; a rotation needs a new key",
        )
    if now_ms is not None:
        check_fresh(rotation.created_at_ms, now_ms, max_age_ms=max_age_ms, max_skew_ms=max_skew_ms)
    return VerifiedRotation(signed=signed, rotation=rotation)


# -- helpers ------------------------------------------------------------------------------


def _decode(data: M | bytes, cls: type[M], what: str) -> M:
    if isinstance(data, cls):
        # Check the size of what would go over the wire.
        data = data.SerializeToString()
    if not isinstance(data, bytes):
        raise EnrollmentRefused(Reason.MALFORMED, f"expected {what}")
    if len(data) > MAX_REQUEST_BYTES:
        raise EnrollmentRefused(
            Reason.TOO_LARGE, f"{what} is {len(data)} bytes, at most {MAX_REQUEST_BYTES}"
        )
    try:
        msg = cls.FromString(data)
    except DecodeError as exc:
        raise EnrollmentRefused(Reason.MALFORMED, f"not a {what}: {exc}") from exc
    if has_unknown_fields(msg):
        raise EnrollmentRefused(Reason.MALFORMED, f"{what} has fields this hub does not know")
    return msg
