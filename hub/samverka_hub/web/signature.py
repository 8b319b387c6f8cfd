"""Check a stored signed entry again, against the member directory in force (pure).

The hub's store holds only entries that were verified when they arrived, so the web
catalog could simply say "verified". Checking again when a record is shown costs one
Ed25519 verification (about 50 µs) and makes the mark mean what it says: *these
stored bytes* carry a valid signature by a key the current signed directory lists
for the record's origin. It also shows when that key was revoked later (what the
kommun signed before the revocation still counts).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from samverka.errors import EntryRefused
from samverka.protocol.directory import VerifiedDirectory
from samverka.protocol.entries import parse_envelope
from samverka.protocol.signing import entry_hash
from samverka.protocol.verify import KeyRing
from samverka.v1 import feed_pb2


class SignatureStatus(enum.StrEnum):
    #: The signature verifies with a key the directory lists for the origin.
    VERIFIED = "verified"
    #: The directory in force does not list the key (e.g. no directory yet).
    UNKNOWN_KEY = "unknown_key"
    #: The bytes do not verify, or the key belongs to another origin or was revoked
    #: before the entry was signed. A store should never hold such an entry.
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    status: SignatureStatus
    key_id: str
    origin: str
    sequence: int
    #: SHA-256 of the signed entry bytes, hex (the feed's chain hash).
    entry_hash: str
    #: Version of the directory checked against (0: none).
    directory_version: int = 0
    #: When the key was revoked after the entry was signed (Unix ms), else None.
    key_revoked_at_ms: int | None = None

    @property
    def verified(self) -> bool:
        return self.status is SignatureStatus.VERIFIED


class KeyRings:
    """The key ring of the newest directory seen, built once per directory version."""

    def __init__(self) -> None:
        self._version = -1
        self._ring = KeyRing()

    def of(self, directory: VerifiedDirectory) -> KeyRing:
        if directory.version != self._version:
            # Built aside, then swapped in: readers in other threads see either ring.
            ring = directory.keyring()
            self._ring, self._version = ring, directory.version
        return self._ring


def check_signature(
    signed_bytes: bytes,
    directory: VerifiedDirectory | None,
    *,
    rings: KeyRings | None = None,
) -> SignatureCheck:
    """Verify ``signed_bytes`` (a stored SignedEntry) against ``directory``'s keys."""
    try:
        signed = parse_envelope(signed_bytes)
        entry = feed_pb2.Entry.FromString(signed.entry)
    except (EntryRefused, ValueError):
        return SignatureCheck(SignatureStatus.INVALID, "", "", 0, "")
    base = SignatureCheck(
        SignatureStatus.UNKNOWN_KEY,
        key_id=signed.key_id,
        origin=entry.origin,
        sequence=entry.sequence,
        entry_hash=entry_hash(signed.entry).hex(),
        directory_version=directory.version if directory is not None else 0,
    )
    if directory is None:
        return base
    key = (rings or KeyRings()).of(directory).get(signed.key_id)
    if key is None:
        return base
    revoked = key.revoked_at_ms
    if (
        key.origin != entry.origin
        or not key.public_key.verify(signed.entry, signed.signature)
        or entry.timestamp_ms < key.valid_from_ms
        or (revoked is not None and entry.timestamp_ms >= revoked)
    ):
        return replace(base, status=SignatureStatus.INVALID)
    return replace(base, status=SignatureStatus.VERIFIED, key_revoked_at_ms=revoked)
