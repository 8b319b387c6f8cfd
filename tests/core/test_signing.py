"""Ed25519 keys, key ids and domain-separated signatures."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from samverka.protocol.signing import (
    DIRECTORY_DOMAIN,
    ENROLLMENT_DOMAIN,
    ENTRY_DOMAIN,
    KEY_ROTATION_DOMAIN,
    PublicKey,
    SigningKey,
    entry_hash,
    key_id,
)


def test_keys_round_trip_through_pem() -> None:
    key = SigningKey.generate()
    again = SigningKey.from_pem(key.to_pem())
    assert again.key_id == key.key_id
    assert PublicKey.from_pem(key.public.to_pem()) == key.public


def test_key_id_is_the_first_16_bytes_of_sha256_in_hex() -> None:
    key = SigningKey.generate()
    assert key.key_id == hashlib.sha256(key.public.raw).digest()[:16].hex()
    assert key.key_id == key_id(key.public.raw) and len(key.key_id) == 32


def test_signatures_verify_and_are_domain_separated() -> None:
    key = SigningKey.generate()
    sig = key.sign(b"entry")
    assert key.public.verify(b"entry", sig)
    assert not key.public.verify(b"entry!", sig)
    for domain in (DIRECTORY_DOMAIN, ENROLLMENT_DOMAIN, KEY_ROTATION_DOMAIN):
        assert not key.public.verify(b"entry", sig, domain=domain)
        assert key.public.verify(b"entry", key.sign(b"entry", domain=domain), domain=domain)
    # The prefix is part of the message: a signature over prefix-less bytes fails.
    assert not key.public.verify(ENTRY_DOMAIN[:-1], key.sign(b""), domain=b"")


@pytest.mark.parametrize("signature", [b"", bytes(63), bytes(65), bytes(64)])
def test_wrong_length_or_zero_signatures_fail(signature: bytes) -> None:
    assert not SigningKey.generate().public.verify(b"x", signature)


def test_another_keys_signature_fails() -> None:
    a, b = SigningKey.generate(), SigningKey.generate()
    assert not b.public.verify(b"x", a.sign(b"x"))


def test_non_ed25519_keys_are_refused() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    pem = ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValueError):
        SigningKey.from_pem(pem)
    pub = ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValueError):
        PublicKey.from_pem(pub)
    with pytest.raises(ValueError):
        PublicKey(b"short")


def test_entry_hash_is_sha256() -> None:
    assert entry_hash(b"abc") == hashlib.sha256(b"abc").digest()
