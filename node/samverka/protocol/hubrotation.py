"""The hub's own keys change: a rotation announced under the old key (TUF's root rotation).

Pure: no files, no network, no clock (callers pass ``now_ms``). The hub holds three
keys its members pin: the directory key (Ed25519, signs the member directory; pinned
at enrollment), the transparency log's note key (``Directory.log_key``, pinned on
first sight) and the CA certificate (the nodes' TLS trust bundle). To replace any of
them without every kommun enrolling again, the hub signs a ``HubKeyRotation``:

- the old directory key's id, the new directory key (the same key when only the log
  key or the CA changes), the new log verifier key and the new CA certificate (each
  empty when unchanged), and when it was made;
- signed over the same exact bytes by the old key (the announcement: only the key a
  node already trusts can move it) and by the new key (proof of possession: no one
  can announce a key they do not hold), under the domain
  ``"samverka/v1/hub-key-rotation" 0x00``;
- carried in ``Directory.hub_rotation`` of the first directory version the new key
  signs.

A node follows it with :func:`follow_directory`: a directory signed by a key other
than the pinned one is taken only with a rotation from the pinned key to that key;
the log key changes only with a rotation that names the new one; and a rotation made
before the newest one already followed is a replay (``ROLLBACK``). A node that missed
several rotations follows them one directory version at a time (the hub serves the
version that introduced each, see ``GetDirectory``), as a TUF client walks
``N.root.json``, ``N+1.root.json``, ...

Refusals are :class:`~samverka.errors.DirectoryRefused` with a reason:
``UNKNOWN_KEY`` (signed by a key the node does not pin, with no rotation from it, or a
rotation from another key), ``BAD_SIGNATURE`` (a forged announcement, a missing or
bad proof of possession), ``ROLLBACK`` (an older rotation replayed), ``MALFORMED``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography import x509
from google.protobuf.message import DecodeError

from samverka.errors import DirectoryRefused, Reason
from samverka.protocol.directory import (
    MAX_DIRECTORY_BYTES,
    DirectoryCheckpoint,
    VerifiedDirectory,
    verify_directory,
)
from samverka.protocol.note import Ed25519Verifier, NoteError
from samverka.protocol.signing import HUB_KEY_ROTATION_DOMAIN, PublicKey, SigningKey
from samverka.v1 import directory_pb2

#: Largest serialized SignedHubKeyRotation decoded (a CA certificate is about 700 bytes).
MAX_HUB_ROTATION_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class HubRotation:
    """A decoded hub key rotation (verified when returned by :func:`verify_hub_rotation`)."""

    signed: directory_pb2.SignedHubKeyRotation
    rotation: directory_pb2.HubKeyRotation

    @property
    def old_key_id(self) -> str:
        return self.rotation.old_key_id

    @property
    def new_key(self) -> PublicKey:
        return PublicKey(bytes(self.rotation.new_public_key))

    @property
    def new_log_key(self) -> str:
        """The log's new verifier key; "" when the log key does not change."""
        return self.rotation.new_log_key

    @property
    def new_ca_pem(self) -> bytes:
        """The new CA certificate; b"" when the CA does not change."""
        return bytes(self.rotation.new_ca_pem)

    @property
    def created_at_ms(self) -> int:
        return self.rotation.created_at_ms

    @property
    def digest(self) -> bytes:
        """SHA-256 over the exact rotation bytes both keys signed: its identity."""
        return hashlib.sha256(self.signed.rotation).digest()

    @property
    def moves_directory_key(self) -> bool:
        return self.new_key.key_id != self.old_key_id

    def what(self) -> list[str]:
        """What changes, for messages: "directory key", "log key", "CA"."""
        parts = []
        if self.moves_directory_key:
            parts.append("directory key")
        if self.new_log_key:
            parts.append("log key")
        if self.new_ca_pem:
            parts.append("CA")
        return parts

    def signed_bytes(self) -> bytes:
        return self.signed.SerializeToString(deterministic=True)


# -- hub side -----------------------------------------------------------------------------


def build_hub_rotation(
    old: SigningKey,
    new: SigningKey,
    *,
    created_at_ms: int,
    new_log_key: str = "",
    new_ca_pem: bytes = b"",
) -> directory_pb2.SignedHubKeyRotation:
    """The hub's announcement that ``new`` (with the log key / CA given) takes over from
    ``old``, signed by both over the same bytes. ``new`` may be ``old`` when only the
    log key or the CA changes; a rotation that changes nothing is refused."""
    rotation = directory_pb2.HubKeyRotation(
        old_key_id=old.key_id,
        new_public_key=new.public.raw,
        new_log_key=new_log_key,
        new_ca_pem=new_ca_pem,
        created_at_ms=created_at_ms,
    )
    _check_content(rotation)
    raw = rotation.SerializeToString(deterministic=True)
    return directory_pb2.SignedHubKeyRotation(
        rotation=raw,
        old_signature=old.sign(raw, domain=HUB_KEY_ROTATION_DOMAIN),
        new_signature=new.sign(raw, domain=HUB_KEY_ROTATION_DOMAIN),
    )


# -- receiver side ----------------------------------------------------------------------


def parse_hub_rotation(signed: directory_pb2.SignedHubKeyRotation | bytes) -> HubRotation:
    """Decode a rotation without trusting it (DirectoryRefused MALFORMED / TOO_LARGE)."""
    if isinstance(signed, bytes):
        if len(signed) > MAX_HUB_ROTATION_BYTES:
            raise DirectoryRefused(Reason.TOO_LARGE, f"hub key rotation of {len(signed)} bytes")
        try:
            signed = directory_pb2.SignedHubKeyRotation.FromString(signed)
        except DecodeError as exc:
            raise DirectoryRefused(Reason.MALFORMED, f"not a SignedHubKeyRotation: {exc}") from exc
    if signed.ByteSize() > MAX_HUB_ROTATION_BYTES:
        raise DirectoryRefused(Reason.TOO_LARGE, f"hub key rotation of {signed.ByteSize()} bytes")
    try:
        rotation = directory_pb2.HubKeyRotation.FromString(signed.rotation)
    except DecodeError as exc:
        raise DirectoryRefused(Reason.MALFORMED, f"not a HubKeyRotation: {exc}") from exc
    if len(rotation.new_public_key) != 32:
        raise DirectoryRefused(Reason.MALFORMED, "the hub key rotation's new key is not 32 bytes")
    _check_content(rotation)
    return HubRotation(signed=signed, rotation=rotation)


def verify_hub_rotation(
    signed: directory_pb2.SignedHubKeyRotation | bytes,
    pinned: PublicKey,
    *,
    after: HubRotation | None = None,
) -> HubRotation:
    """Check a rotation against the hub key a node pins, and against the newest rotation
    it followed (``after``): the rotation must name ``pinned`` as its old key, carry
    ``pinned``'s signature and the new key's over the same bytes, and be made after
    ``after`` (else it is a replay of an older one)."""
    found = parse_hub_rotation(signed)
    if found.old_key_id != pinned.key_id:
        raise DirectoryRefused(
            Reason.UNKNOWN_KEY,
            f"the hub key rotation is from key {found.old_key_id[:40]!r}, not from the "
            f"pinned hub key {pinned.key_id}",
        )
    if not pinned.verify(
        found.signed.rotation, found.signed.old_signature, domain=HUB_KEY_ROTATION_DOMAIN
    ):
        raise DirectoryRefused(
            Reason.BAD_SIGNATURE,
            f"the hub key rotation's signature by the pinned hub key {pinned.key_id} does "
            "not verify (forged)",
        )
    if not found.signed.new_signature:
        raise DirectoryRefused(
            Reason.BAD_SIGNATURE,
            f"the hub key rotation carries no signature by its new key {found.new_key.key_id} "
            "(no proof that the hub holds it)",
        )
    if not found.new_key.verify(
        found.signed.rotation, found.signed.new_signature, domain=HUB_KEY_ROTATION_DOMAIN
    ):
        raise DirectoryRefused(
            Reason.BAD_SIGNATURE,
            f"the hub key rotation's signature by its new key {found.new_key.key_id} does "
            "not verify",
        )
    if (
        after is not None
        and found.digest != after.digest
        and found.created_at_ms <= after.created_at_ms
    ):
        raise DirectoryRefused(
            Reason.ROLLBACK,
            f"the hub key rotation made at {found.created_at_ms} replays an older one: "
            f"the newest rotation followed was made at {after.created_at_ms}",
        )
    return found


def _check_content(rotation: directory_pb2.HubKeyRotation) -> None:
    """A rotation must change something, and what it names must be usable."""
    try:
        new_key = PublicKey(bytes(rotation.new_public_key))
    except ValueError as exc:
        raise DirectoryRefused(Reason.MALFORMED, f"the rotation's new key: {exc}") from exc
    if new_key.key_id == rotation.old_key_id and not (rotation.new_log_key or rotation.new_ca_pem):
        raise DirectoryRefused(Reason.MALFORMED, "the hub key rotation changes no key")
    if rotation.new_log_key:
        check_log_key(rotation.new_log_key)
    if rotation.new_ca_pem:
        check_ca_certificate(bytes(rotation.new_ca_pem))


def check_log_key(vkey: str) -> Ed25519Verifier:
    """A log verifier key as a directory or rotation names it (Ed25519 note key)."""
    try:
        return Ed25519Verifier.from_vkey(vkey)
    except (NoteError, ValueError) as exc:
        raise DirectoryRefused(
            Reason.MALFORMED, f"log key {vkey[:80]!r} is not an Ed25519 note verifier key: {exc}"
        ) from exc


def check_ca_certificate(pem: bytes) -> x509.Certificate:
    """One PEM certificate that may act as a CA (what a node adds to its trust bundle)."""
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise DirectoryRefused(
            Reason.MALFORMED, f"the new CA is not a PEM certificate: {exc}"
        ) from exc
    if len(certs) != 1:
        raise DirectoryRefused(
            Reason.MALFORMED, f"the new CA must be one certificate, not {len(certs)}"
        )
    try:
        constraints = certs[0].extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise DirectoryRefused(Reason.MALFORMED, "the new CA certificate is not a CA's")
    return certs[0]


# -- following a directory --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HubTrust:
    """What a node trusts of the hub: the directory key it pins, the log key it pins
    ("" before the first directory that names one), and the newest rotation it
    followed (None: none since it enrolled)."""

    hub_key: PublicKey
    log_key: str = ""
    rotation: HubRotation | None = None


@dataclass(frozen=True, slots=True)
class FollowedDirectory:
    """A directory verified under the node's trust, and that trust after it."""

    directory: VerifiedDirectory
    trust: HubTrust
    #: The rotation this directory made the node follow; None when it brought none new.
    rotation: HubRotation | None = None
    #: True when the directory named the first log key this node pins (trust on first use).
    log_key_first_seen: bool = False


def carried_rotation(
    directory: directory_pb2.Directory,
) -> directory_pb2.SignedHubKeyRotation | None:
    return directory.hub_rotation if directory.HasField("hub_rotation") else None


def follow_directory(
    signed: directory_pb2.SignedDirectory | bytes,
    trust: HubTrust,
    *,
    now_ms: int | None,
    seen: DirectoryCheckpoint | None = None,
    expired_step_ok: bool = False,
    max_bytes: int = MAX_DIRECTORY_BYTES,
) -> FollowedDirectory:
    """Verify a directory under ``trust``, following a hub key rotation it carries.

    Signed by the pinned key: verified as :func:`verify_directory` does; a rotation it
    carries under that same key (a new log key or CA only) is followed if new. Signed by
    another key: taken only if it carries a rotation from the pinned key to that very
    key (:func:`verify_hub_rotation`), and then verified with the new key. Either way the
    directory's log key must be the pinned one, or the one the rotation names, or the
    first one seen. ``expired_step_ok`` accepts an expired directory that brings a new
    rotation: a step of a chain the caller walks on at once (the hub's newest directory
    is never expired); ``now_ms=None`` skips the expiry check altogether.
    """
    if isinstance(signed, bytes):
        if len(signed) > max_bytes:
            raise DirectoryRefused(Reason.TOO_LARGE, f"{len(signed)} bytes, limit {max_bytes}")
        try:
            signed = directory_pb2.SignedDirectory.FromString(signed)
        except DecodeError as exc:
            raise DirectoryRefused(Reason.MALFORMED, f"not a SignedDirectory: {exc}") from exc
    pinned = trust.hub_key
    rotation: HubRotation | None = None
    if signed.key_id == pinned.key_id:
        verified = verify_directory(signed, pinned, now_ms=None, seen=seen, max_bytes=max_bytes)
        carried = carried_rotation(verified.directory)
        if carried is not None:
            found = parse_hub_rotation(carried)
            if found.new_key.key_id != pinned.key_id:
                raise DirectoryRefused(
                    Reason.MALFORMED,
                    f"the directory carries a rotation to key {found.new_key.key_id} but is "
                    f"signed by {pinned.key_id}",
                )
            already = trust.rotation is not None and found.digest == trust.rotation.digest
            # A rotation from an older key to the pinned one brought the node here (or
            # predates its enrollment): nothing to follow. One under the pinned key
            # itself moves the log key or the CA.
            if found.old_key_id == pinned.key_id and not already:
                rotation = verify_hub_rotation(carried, pinned, after=trust.rotation)
    else:
        unverified = _peek_directory(signed)
        carried = carried_rotation(unverified) if unverified is not None else None
        if carried is None:
            raise DirectoryRefused(
                Reason.UNKNOWN_KEY,
                f"signed by key {signed.key_id[:40]!r}, not the pinned hub key "
                f"{pinned.key_id}, and it carries no rotation announced under the pinned key",
            )
        rotation = verify_hub_rotation(carried, pinned, after=trust.rotation)
        if rotation.new_key.key_id != signed.key_id:
            raise DirectoryRefused(
                Reason.UNKNOWN_KEY,
                f"signed by key {signed.key_id[:40]!r}, but the rotation it carries moves the "
                f"hub to key {rotation.new_key.key_id}",
            )
        verified = verify_directory(
            signed, rotation.new_key, now_ms=None, seen=seen, max_bytes=max_bytes
        )
    if (
        now_ms is not None
        and verified.expired(now_ms)
        and not (expired_step_ok and rotation is not None)
    ):
        raise DirectoryRefused(
            Reason.EXPIRED,
            f"version {verified.version} expired at {verified.expires_at_ms} (now {now_ms})",
        )
    log_key = trust.log_key
    if rotation is not None and rotation.new_log_key:
        log_key = rotation.new_log_key
    named = verified.directory.log_key
    first_seen = False
    if named:
        if not log_key:
            check_log_key(named)
            log_key, first_seen = named, True
        elif named != log_key:
            raise DirectoryRefused(
                Reason.UNKNOWN_KEY,
                f"the directory names the log key {named[:80]!r}, not the pinned "
                f"{log_key[:80]!r}, and no rotation signed by the hub key announces it",
            )
    after = HubTrust(
        hub_key=rotation.new_key if rotation is not None else pinned,
        log_key=log_key,
        rotation=rotation if rotation is not None else trust.rotation,
    )
    return FollowedDirectory(
        directory=verified, trust=after, rotation=rotation, log_key_first_seen=first_seen
    )


def _peek_directory(signed: directory_pb2.SignedDirectory) -> directory_pb2.Directory | None:
    """The directory bytes decoded before any signature is checked: only to find the
    rotation that says which key to check them with (the rotation is verified on its
    own, and the directory then with the key it names)."""
    try:
        return directory_pb2.Directory.FromString(signed.directory)
    except DecodeError:
        return None
