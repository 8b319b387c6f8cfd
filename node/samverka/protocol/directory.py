"""The hub's signed member directory: build and sign it, verify it, turn it into keys.

Pure: no files, no network, no clock (callers pass ``now_ms``). The hub signs a
``Directory`` with its Ed25519 key; every node pins that key at enrollment and
verifies each directory it is handed, like python-tuf's trusted metadata set:

1. size, then the unauthenticated ``SignedDirectory`` envelope decodes;
2. the envelope's key id is the pinned hub key (else ``UNKNOWN_KEY``);
3. the signature over ``"samverka/v1/directory" 0x00 || directory bytes`` verifies
   (else ``BAD_SIGNATURE``) — only then are the directory bytes decoded;
4. the directory is well formed: real codes, 32-byte keys whose ids match, no key
   listed twice, the hub's own key listed under origin "0000" (else ``MALFORMED``
   or ``SCHEMA_INVALID``);
5. no rollback: a version lower than the highest seen, or the same version with
   different bytes, is refused (``ROLLBACK``);
6. not expired (``EXPIRED``).

What a directory means for entry verification is :func:`keyring_from_directory`:
each member key with its validity window, every key of a revoked member revoked
from the member's ``revoked_at_ms`` on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from samverka.errors import DirectoryRefused, Reason
from samverka.protocol.kommuner import HUB_ORIGIN, is_origin
from samverka.protocol.signing import (
    DIRECTORY_DOMAIN,
    KEY_OBJECTION_DOMAIN,
    KEY_ROTATION_DOMAIN,
    PublicKey,
    SigningKey,
    key_id,
)
from samverka.protocol.verify import KeyRing, KeyStanding, TrustedKey
from samverka.v1 import directory_pb2

#: Largest serialized SignedDirectory accepted (290 members with a few keys each
#: take about 100 KiB).
MAX_DIRECTORY_BYTES = 1024 * 1024

#: How long a directory is valid after it is issued, unless the hub is configured
#: otherwise. The hub re-issues it (a new version) once half of that has passed, so
#: a node that fetches at least every few days never holds an expired directory.
DEFAULT_VALID_MS = 7 * 24 * 3600 * 1000

ACTIVE = directory_pb2.MEMBER_STATUS_ACTIVE
REVOKED = directory_pb2.MEMBER_STATUS_REVOKED


def directory_digest(directory_bytes: bytes) -> bytes:
    """SHA-256 over the exact directory bytes the hub signed."""
    return hashlib.sha256(directory_bytes).digest()


@dataclass(frozen=True, slots=True)
class DirectoryCheckpoint:
    """The highest directory a receiver has accepted: its version and digest.

    A later directory must have a higher version, or the same version and the very
    same bytes (fetching the same directory twice is harmless).
    """

    version: int
    digest: bytes


@dataclass(frozen=True, slots=True)
class VerifiedDirectory:
    """A directory whose signature, shape, version and lifetime have been checked."""

    signed: directory_pb2.SignedDirectory
    directory: directory_pb2.Directory

    @property
    def version(self) -> int:
        return self.directory.version

    @property
    def expires_at_ms(self) -> int:
        return self.directory.expires_at_ms

    @property
    def issued_at_ms(self) -> int:
        return self.directory.issued_at_ms

    @property
    def digest(self) -> bytes:
        return directory_digest(self.signed.directory)

    @property
    def checkpoint(self) -> DirectoryCheckpoint:
        return DirectoryCheckpoint(self.version, self.digest)

    def signed_bytes(self) -> bytes:
        """The SignedDirectory as stored and served; its directory bytes are the originals."""
        return self.signed.SerializeToString(deterministic=True)

    def member(self, kommunkod: str) -> directory_pb2.Member | None:
        for m in self.directory.members:
            if m.kommunkod == kommunkod:
                return m
        return None

    def is_revoked(self, kommunkod: str) -> bool:
        m = self.member(kommunkod)
        return m is not None and m.status == REVOKED

    def is_active(self, kommunkod: str) -> bool:
        m = self.member(kommunkod)
        return m is not None and m.status == ACTIVE

    def keyring(self) -> KeyRing:
        return keyring_from_directory(self.directory)

    def expired(self, now_ms: int) -> bool:
        return now_ms >= self.expires_at_ms


# -- hub side: build and sign ---------------------------------------------------------


def sign_directory(hub_key: SigningKey, directory: directory_pb2.Directory) -> VerifiedDirectory:
    """Serialize ``directory`` once (with the hub's key id set) and sign those bytes."""
    d = directory_pb2.Directory()
    d.CopyFrom(directory)
    d.hub_key_id = hub_key.key_id
    raw = d.SerializeToString(deterministic=True)
    signed = directory_pb2.SignedDirectory(
        directory=raw,
        signature=hub_key.sign(raw, domain=DIRECTORY_DOMAIN),
        key_id=hub_key.key_id,
    )
    return VerifiedDirectory(signed=signed, directory=directory_pb2.Directory.FromString(raw))


def build_directory(
    hub_key: SigningKey,
    *,
    version: int,
    members: Iterable[directory_pb2.Member],
    issued_at_ms: int,
    valid_ms: int = DEFAULT_VALID_MS,
    log_key: str = "",
    hub_rotation: directory_pb2.SignedHubKeyRotation | None = None,
) -> VerifiedDirectory:
    """A new signed directory version; members are sorted by kommunkod.

    The caller lists the hub itself as member "0000" with its key (see
    :func:`hub_member`); :func:`verify_directory` refuses a directory without it.
    ``log_key`` is the transparency log's verifier key; ``hub_rotation`` the hub key
    rotation this version is the first to carry (:mod:`samverka.protocol.hubrotation`).
    """
    if version < 1:
        raise ValueError("directory versions start at 1")
    if valid_ms <= 0:
        raise ValueError("a directory must be valid for some time")
    directory = directory_pb2.Directory(
        version=version,
        issued_at_ms=issued_at_ms,
        expires_at_ms=issued_at_ms + valid_ms,
        members=sorted(members, key=lambda m: m.kommunkod),
        log_key=log_key,
    )
    if hub_rotation is not None:
        directory.hub_rotation.CopyFrom(hub_rotation)
    signed = sign_directory(hub_key, directory)
    check_directory_shape(signed.directory, PublicKey(hub_key.public.raw))
    return signed


def hub_member(hub_key: PublicKey, *, joined_at_ms: int = 0) -> directory_pb2.Member:
    """The council's hub as a directory member: origin "0000" with its signing key."""
    return directory_pb2.Member(
        kommunkod=HUB_ORIGIN,
        name="AI-rådet (hub)",
        status=ACTIVE,
        keys=[directory_pb2.MemberKey(public_key=hub_key.raw, key_id=hub_key.key_id)],
        contact_role="AI-rådet",
        joined_at_ms=joined_at_ms,
    )


# -- receiver side: verify ------------------------------------------------------------


def verify_directory(
    signed: directory_pb2.SignedDirectory | bytes,
    hub_key: PublicKey,
    *,
    now_ms: int | None,
    seen: DirectoryCheckpoint | None = None,
    max_bytes: int = MAX_DIRECTORY_BYTES,
) -> VerifiedDirectory:
    """Verify a signed directory against the pinned hub key and the highest one seen.

    Raises DirectoryRefused with a Reason; the caller keeps what it held before.
    ``now_ms=None`` skips the expiry check: only for re-reading a directory this
    receiver verified and stored itself.
    """
    if isinstance(signed, bytes):
        if len(signed) > max_bytes:
            raise DirectoryRefused(Reason.TOO_LARGE, f"{len(signed)} bytes, limit {max_bytes}")
        try:
            signed = directory_pb2.SignedDirectory.FromString(signed)
        except DecodeError as exc:
            raise DirectoryRefused(Reason.MALFORMED, f"not a SignedDirectory: {exc}") from exc
    size = len(signed.directory) + len(signed.signature) + len(signed.key_id)
    if size > max_bytes:
        raise DirectoryRefused(Reason.TOO_LARGE, f"{size} bytes, limit {max_bytes}")
    if signed.key_id != hub_key.key_id:
        raise DirectoryRefused(
            Reason.UNKNOWN_KEY,
            f"signed by key {signed.key_id[:40]!r}, not the pinned hub key {hub_key.key_id}",
        )
    if not hub_key.verify(signed.directory, signed.signature, domain=DIRECTORY_DOMAIN):
        raise DirectoryRefused(Reason.BAD_SIGNATURE, "the hub's signature does not verify")
    try:
        directory = directory_pb2.Directory.FromString(signed.directory)
    except DecodeError as exc:
        raise DirectoryRefused(Reason.MALFORMED, f"directory bytes do not decode: {exc}") from exc
    check_directory_shape(directory, hub_key)
    if seen is not None:
        if directory.version < seen.version:
            raise DirectoryRefused(
                Reason.ROLLBACK,
                f"version {directory.version} is older than version {seen.version} already seen",
            )
        if directory.version == seen.version and directory_digest(signed.directory) != seen.digest:
            raise DirectoryRefused(
                Reason.ROLLBACK,
                f"a different directory with the same version {directory.version} was seen "
                "(the hub signed two directories with one version)",
            )
    if now_ms is not None and now_ms >= directory.expires_at_ms:
        raise DirectoryRefused(
            Reason.EXPIRED,
            f"version {directory.version} expired at {directory.expires_at_ms} (now {now_ms})",
        )
    return VerifiedDirectory(signed=signed, directory=directory)


def check_directory_shape(directory: directory_pb2.Directory, hub_key: PublicKey) -> None:
    """Refuse a signed directory that does not make sense as a list of members."""

    def bad(detail: str) -> DirectoryRefused:
        return DirectoryRefused(Reason.SCHEMA_INVALID, detail)

    if directory.version < 1:
        raise bad("version must be at least 1")
    if directory.hub_key_id != hub_key.key_id:
        raise bad(f"hub_key_id {directory.hub_key_id[:40]!r} is not the signing hub key")
    if directory.expires_at_ms <= directory.issued_at_ms:
        raise bad("expires_at_ms must be after issued_at_ms")
    codes: set[str] = set()
    key_ids: set[str] = set()
    hub_listed = False
    for m in directory.members:
        if not is_origin(m.kommunkod):
            raise bad(f"member {m.kommunkod[:10]!r} is not a kommunkod")
        if m.kommunkod in codes:
            raise bad(f"member {m.kommunkod} is listed twice")
        codes.add(m.kommunkod)
        if m.status not in (ACTIVE, REVOKED):
            raise bad(f"member {m.kommunkod} has no valid status")
        if m.status == REVOKED and m.revoked_at_ms <= 0:
            raise bad(f"revoked member {m.kommunkod} has no revoked_at_ms")
        if not m.keys:
            raise bad(f"member {m.kommunkod} has no signing key")
        for k in m.keys:
            if len(k.public_key) != 32:
                raise bad(f"a key of {m.kommunkod} is not 32 bytes")
            if k.key_id != key_id(k.public_key):
                raise bad(f"key id {k.key_id[:40]!r} of {m.kommunkod} does not match its key")
            if k.key_id in key_ids:
                raise bad(f"key {k.key_id} is listed twice")
            key_ids.add(k.key_id)
            if k.revoked_at_ms and k.revoked_at_ms <= k.valid_from_ms:
                raise bad(f"key {k.key_id} of {m.kommunkod} is revoked before it is valid")
            if m.kommunkod == HUB_ORIGIN and k.key_id == hub_key.key_id:
                hub_listed = True
    if not hub_listed:
        raise bad(f"the hub's key {hub_key.key_id} is not listed under origin {HUB_ORIGIN}")


# -- what a directory means for entries ---------------------------------------------


def effective_revocation(member: directory_pb2.Member, key: directory_pb2.MemberKey) -> int | None:
    """When ``key`` stops being valid: its own revocation or its member's, the earlier."""
    times = [t for t in (key.revoked_at_ms,) if t > 0]
    if member.status == REVOKED:
        times.append(member.revoked_at_ms)
    return min(times) if times else None


def keyring_from_directory(directory: directory_pb2.Directory) -> KeyRing:
    """Every member's signing keys with their validity windows, for ``verify_entry``.

    A revoked member's keys are revoked from the member's ``revoked_at_ms`` on:
    entries it signed before that still verify, later ones are refused as
    ``KEY_REVOKED``. The hub's own key is listed under origin "0000". A key its member
    objected to (``Member.objections``, signed by another key listed for it) is
    refused (``KEY_OBJECTED``): the directory's own word, as the hub reads it. A node
    reads more (samverka.protocol.keybinding: what it held before, challenge periods).
    """
    ring = KeyRing()
    for m in directory.members:
        objected = objected_key_ids(m)
        for k in m.keys:
            ring.add(
                TrustedKey(
                    origin=m.kommunkod,
                    public_key=PublicKey(bytes(k.public_key)),
                    valid_from_ms=k.valid_from_ms,
                    revoked_at_ms=effective_revocation(m, k),
                    standing=KeyStanding.OBJECTED
                    if k.key_id in objected
                    else KeyStanding.EFFECTIVE,
                    standing_note=f"was objected to by {m.kommunkod}"
                    if k.key_id in objected
                    else "",
                )
            )
    return ring


def objected_key_ids(member: directory_pb2.Member) -> set[str]:
    """Keys of ``member`` that another key listed for it signed an objection to."""
    listed = {k.key_id: PublicKey(bytes(k.public_key)) for k in member.keys}
    objected: set[str] = set()
    for signed in member.objections:
        try:
            objection = parse_key_objection(signed)
        except DirectoryRefused:
            continue
        signer = listed.get(objection.signer_key_id)
        if (
            objection.kommunkod == member.kommunkod
            and signer is not None
            and objection.objected_key_id != signer.key_id
            and objection.verifies_with(signer)
        ):
            objected.add(objection.objected_key_id)
    return objected


# -- key rotations and objections as a receiver reads them ------------------------------
# Building and checking a rotation at the hub (freshness, keys in force) is
# samverka.membership.enrollment's; here only what any receiver can check on its own:
# the exact bytes decode and the signatures verify (samverka.protocol.keybinding).

#: Largest serialized SignedKeyRotation or SignedKeyObjection a receiver decodes.
MAX_KEY_STATEMENT_BYTES = 4096


@dataclass(frozen=True, slots=True)
class KeyObjection:
    """A decoded objection (not yet checked against anyone's keys)."""

    signed: directory_pb2.SignedKeyObjection
    objection: directory_pb2.KeyObjection

    @property
    def kommunkod(self) -> str:
        return self.objection.kommunkod

    @property
    def objected_key_id(self) -> str:
        return key_id(bytes(self.objection.objected_public_key))

    @property
    def signer_key_id(self) -> str:
        return self.objection.key_id

    def signed_bytes(self) -> bytes:
        return self.signed.SerializeToString(deterministic=True)

    def verifies_with(self, signer: PublicKey) -> bool:
        """Whether ``signer`` (whose id the objection names) signed these exact bytes."""
        return signer.key_id == self.signer_key_id and signer.verify(
            self.signed.objection, self.signed.signature, domain=KEY_OBJECTION_DOMAIN
        )


def build_key_objection(
    signer: SigningKey, *, kommunkod: str, objected: PublicKey | bytes, created_at_ms: int
) -> directory_pb2.SignedKeyObjection:
    """``kommunkod``'s statement, signed by ``signer``, that ``objected`` is not its key."""
    raw_key = objected.raw if isinstance(objected, PublicKey) else objected
    objection = directory_pb2.KeyObjection(
        kommunkod=kommunkod,
        objected_public_key=raw_key,
        key_id=signer.key_id,
        created_at_ms=created_at_ms,
    )
    raw = objection.SerializeToString(deterministic=True)
    return directory_pb2.SignedKeyObjection(
        objection=raw, signature=signer.sign(raw, domain=KEY_OBJECTION_DOMAIN)
    )


def parse_key_objection(signed: directory_pb2.SignedKeyObjection | bytes) -> KeyObjection:
    """Decode an objection without trusting it; DirectoryRefused(MALFORMED, ...) if it
    is not one (too large, undecodable, not a kommunkod, not a 32-byte key)."""
    if isinstance(signed, bytes):
        if len(signed) > MAX_KEY_STATEMENT_BYTES:
            raise DirectoryRefused(Reason.TOO_LARGE, f"objection of {len(signed)} bytes")
        try:
            signed = directory_pb2.SignedKeyObjection.FromString(signed)
        except DecodeError as exc:
            raise DirectoryRefused(Reason.MALFORMED, f"not a SignedKeyObjection: {exc}") from exc
    if signed.ByteSize() > MAX_KEY_STATEMENT_BYTES:
        raise DirectoryRefused(Reason.TOO_LARGE, f"objection of {signed.ByteSize()} bytes")
    try:
        objection = directory_pb2.KeyObjection.FromString(signed.objection)
    except DecodeError as exc:
        raise DirectoryRefused(Reason.MALFORMED, f"not a KeyObjection: {exc}") from exc
    if not is_origin(objection.kommunkod):
        raise DirectoryRefused(
            Reason.MALFORMED, f"objection by {objection.kommunkod[:10]!r}, not a kommunkod"
        )
    if len(objection.objected_public_key) != 32 or len(signed.signature) != 64:
        raise DirectoryRefused(Reason.MALFORMED, "objection with a key or signature of bad size")
    return KeyObjection(signed=signed, objection=objection)


@dataclass(frozen=True, slots=True)
class KeyRotationStatement:
    """A decoded rotation whose two signatures verified (old key and new key)."""

    signed: directory_pb2.SignedKeyRotation
    rotation: directory_pb2.KeyRotation

    @property
    def kommunkod(self) -> str:
        return self.rotation.kommunkod

    @property
    def old_key_id(self) -> str:
        return self.rotation.old_key_id

    @property
    def new_key_id(self) -> str:
        return key_id(bytes(self.rotation.new_public_key))


def checked_rotation(
    signed: directory_pb2.SignedKeyRotation, old_key: PublicKey
) -> KeyRotationStatement | None:
    """The rotation if ``old_key`` (the key it names as old) and the new key it
    announces both signed its exact bytes; else None."""
    if signed.ByteSize() > MAX_KEY_STATEMENT_BYTES:
        return None
    try:
        rotation = directory_pb2.KeyRotation.FromString(signed.rotation)
    except DecodeError:
        return None
    if rotation.old_key_id != old_key.key_id or len(rotation.new_public_key) != 32:
        return None
    new_key = PublicKey(bytes(rotation.new_public_key))
    if new_key.key_id == old_key.key_id:
        return None
    if not old_key.verify(signed.rotation, signed.old_signature, domain=KEY_ROTATION_DOMAIN):
        return None
    if not new_key.verify(signed.rotation, signed.new_signature, domain=KEY_ROTATION_DOMAIN):
        return None
    return KeyRotationStatement(signed=signed, rotation=rotation)


def rotation_new_key_id(signed: directory_pb2.SignedKeyRotation) -> str:
    """The new key's id a rotation announces (unverified); "" if it does not decode."""
    try:
        raw = directory_pb2.KeyRotation.FromString(signed.rotation).new_public_key
    except DecodeError:
        return ""
    return key_id(bytes(raw)) if len(raw) == 32 else ""


def rotation_old_key_id(signed: directory_pb2.SignedKeyRotation) -> str:
    """The old key id a rotation names (unverified: to find the key to check it with)."""
    try:
        return directory_pb2.KeyRotation.FromString(signed.rotation).old_key_id
    except DecodeError:
        return ""
