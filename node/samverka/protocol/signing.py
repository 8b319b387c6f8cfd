"""Ed25519 record-signing keys, key ids and the domain-separated entry signature.

Pure: no files, no network. Keys are read from and written to PEM bytes by the
callers that own the files.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

#: Prefixed to the entry bytes before signing, so that a signature over an entry can
#: never be replayed as a signature over anything else (a directory, a request).
ENTRY_DOMAIN = b"samverka/v1/entry\x00"
#: The other signed objects (proto/samverka/v1/directory.proto), each its own domain.
DIRECTORY_DOMAIN = b"samverka/v1/directory\x00"
ENROLLMENT_DOMAIN = b"samverka/v1/enrollment\x00"
KEY_ROTATION_DOMAIN = b"samverka/v1/key-rotation\x00"
KEY_OBJECTION_DOMAIN = b"samverka/v1/key-objection\x00"
HUB_KEY_ROTATION_DOMAIN = b"samverka/v1/hub-key-rotation\x00"

#: Length of an Ed25519 signature.
SIGNATURE_BYTES = 64

#: previous_hash of the first entry in every feed.
GENESIS_HASH = bytes(32)


def key_id(raw_public_key: bytes) -> str:
    """Hex of the first 16 bytes of SHA-256 over the raw 32-byte public key."""
    return hashlib.sha256(raw_public_key).digest()[:16].hex()


def entry_hash(entry_bytes: bytes) -> bytes:
    """The hash that chains an origin's feed: SHA-256 over the exact entry bytes."""
    return hashlib.sha256(entry_bytes).digest()


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A verifying key, identified by its key id."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")

    @property
    def key_id(self) -> str:
        return key_id(self.raw)

    def verify(self, message: bytes, signature: bytes, *, domain: bytes = ENTRY_DOMAIN) -> bool:
        """True if ``signature`` is this key's signature over ``domain + message``."""
        if len(signature) != SIGNATURE_BYTES:
            return False
        try:
            _loaded(self.raw).verify(signature, domain + message)
        except InvalidSignature:
            return False
        return True

    def to_pem(self) -> bytes:
        return Ed25519PublicKey.from_public_bytes(self.raw).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @classmethod
    def from_pem(cls, pem: bytes) -> PublicKey:
        key = serialization.load_pem_public_key(pem)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return cls(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


@lru_cache(maxsize=4096)
def _loaded(raw: bytes) -> Ed25519PublicKey:
    """The key object for raw bytes, loaded once: loading decompresses a curve point,
    a noticeable share of one verification when done for every entry."""
    return Ed25519PublicKey.from_public_bytes(raw)


class SigningKey:
    """An Ed25519 private key that signs a kommun's entries."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = PublicKey(
            private.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        )

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("not an Ed25519 private key")
        return cls(key)

    def to_pem(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def key_id(self) -> str:
        return self.public.key_id

    def sign(self, message: bytes, *, domain: bytes = ENTRY_DOMAIN) -> bytes:
        return self._private.sign(domain + message)
