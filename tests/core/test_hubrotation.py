"""The hub's own keys rotate under the old key (samverka.protocol.hubrotation, pure).

A node pins the hub's directory key and log key; a directory signed by another key,
or naming another log key, counts only with a rotation signed by the pinned key and
by the new one over the same bytes, made after the last one followed.
"""

from __future__ import annotations

import pytest
from samverka.errors import DirectoryRefused, Reason
from samverka.protocol.directory import build_directory, hub_member
from samverka.protocol.hubrotation import (
    HubTrust,
    build_hub_rotation,
    follow_directory,
    parse_hub_rotation,
    verify_hub_rotation,
)
from samverka.protocol.note import Ed25519Signer
from samverka.protocol.signing import DIRECTORY_DOMAIN, HUB_KEY_ROTATION_DOMAIN, SigningKey
from samverka.transport.pki import create_ca
from samverka.v1 import directory_pb2

T0 = 1_760_000_000_000
DAY = 86_400_000


def log_vkey(name: str = "hub.example/samverka-log") -> str:
    return Ed25519Signer.generate(name).verifier().vkey


def directory(
    key: SigningKey,
    version: int,
    *,
    log_key: str = "",
    rotation: directory_pb2.SignedHubKeyRotation | None = None,
    issued_at_ms: int = T0,
    hub_keys: tuple[SigningKey, ...] = (),
) -> directory_pb2.SignedDirectory:
    """A directory signed by ``key`` (listed under 0000, with ``hub_keys`` before it)."""
    hub = hub_member(key.public)
    for old in hub_keys:
        hub.keys.append(
            directory_pb2.MemberKey(
                public_key=old.public.raw, key_id=old.key_id, revoked_at_ms=issued_at_ms
            )
        )
    built = build_directory(key, version=version, members=[hub], issued_at_ms=issued_at_ms)
    d = directory_pb2.Directory()
    d.CopyFrom(built.directory)
    d.log_key = log_key
    if rotation is not None:
        d.hub_rotation.CopyFrom(rotation)
    raw = d.SerializeToString(deterministic=True)
    return directory_pb2.SignedDirectory(
        directory=raw, signature=key.sign(raw, domain=DIRECTORY_DOMAIN), key_id=key.key_id
    )


@pytest.fixture
def keys() -> tuple[SigningKey, SigningKey, SigningKey]:
    return SigningKey.generate(), SigningKey.generate(), SigningKey.generate()


# -- the rotation itself ----------------------------------------------------------------


def test_a_rotation_verifies_under_the_old_key_and_names_what_changes(keys) -> None:
    k0, k1, _ = keys
    new_log = log_vkey()
    ca = create_ca("Samverka CA 2").cert_pem
    signed = build_hub_rotation(k0, k1, created_at_ms=T0, new_log_key=new_log, new_ca_pem=ca)
    found = verify_hub_rotation(signed, k0.public)
    assert found.old_key_id == k0.key_id
    assert found.new_key == k1.public
    assert (found.new_log_key, found.new_ca_pem) == (new_log, ca)
    assert found.what() == ["directory key", "log key", "CA"]
    # Both signatures are over the very same bytes, in the hub rotation's own domain.
    assert k0.public.verify(signed.rotation, signed.old_signature, domain=HUB_KEY_ROTATION_DOMAIN)
    assert k1.public.verify(signed.rotation, signed.new_signature, domain=HUB_KEY_ROTATION_DOMAIN)
    assert parse_hub_rotation(signed.SerializeToString()).digest == found.digest


def test_a_forged_old_signature_is_refused(keys) -> None:
    k0, k1, mallory = keys
    # Mallory announces her key in the name of the hub's key: she signs the "old" part.
    rotation = directory_pb2.HubKeyRotation(
        old_key_id=k0.key_id, new_public_key=k1.public.raw, created_at_ms=T0
    )
    raw = rotation.SerializeToString()
    forged = directory_pb2.SignedHubKeyRotation(
        rotation=raw,
        old_signature=mallory.sign(raw, domain=HUB_KEY_ROTATION_DOMAIN),
        new_signature=k1.sign(raw, domain=HUB_KEY_ROTATION_DOMAIN),
    )
    with pytest.raises(DirectoryRefused) as refused:
        verify_hub_rotation(forged, k0.public)
    assert refused.value.reason is Reason.BAD_SIGNATURE
    assert "forged" in refused.value.detail


def test_a_missing_or_wrong_new_signature_is_refused(keys) -> None:
    k0, k1, mallory = keys
    signed = build_hub_rotation(k0, k1, created_at_ms=T0)
    missing = directory_pb2.SignedHubKeyRotation()
    missing.CopyFrom(signed)
    missing.ClearField("new_signature")
    with pytest.raises(DirectoryRefused) as refused:
        verify_hub_rotation(missing, k0.public)
    assert refused.value.reason is Reason.BAD_SIGNATURE
    assert "no signature by its new key" in refused.value.detail
    wrong = directory_pb2.SignedHubKeyRotation()
    wrong.CopyFrom(signed)
    wrong.new_signature = mallory.sign(signed.rotation, domain=HUB_KEY_ROTATION_DOMAIN)
    with pytest.raises(DirectoryRefused) as refused:
        verify_hub_rotation(wrong, k0.public)
    assert refused.value.reason is Reason.BAD_SIGNATURE


def test_a_signature_from_another_domain_does_not_count(keys) -> None:
    k0, k1, _ = keys
    signed = build_hub_rotation(k0, k1, created_at_ms=T0)
    signed.old_signature = k0.sign(signed.rotation, domain=b"samverka/v1/key-rotation\x00")
    with pytest.raises(DirectoryRefused) as refused:
        verify_hub_rotation(signed, k0.public)
    assert refused.value.reason is Reason.BAD_SIGNATURE


def test_a_rotation_from_another_key_is_refused(keys) -> None:
    k0, k1, k2 = keys
    # Genuinely signed by k1 and k2, but this node pins k0: the old key id is not its own.
    signed = build_hub_rotation(k1, k2, created_at_ms=T0)
    with pytest.raises(DirectoryRefused) as refused:
        verify_hub_rotation(signed, k0.public)
    assert refused.value.reason is Reason.UNKNOWN_KEY
    assert k0.key_id in refused.value.detail


def test_an_older_rotation_replayed_is_refused(keys) -> None:
    k0, _, _ = keys
    first = verify_hub_rotation(
        build_hub_rotation(k0, k0, created_at_ms=T0, new_log_key=log_vkey()), k0.public
    )
    second = verify_hub_rotation(
        build_hub_rotation(k0, k0, created_at_ms=T0 + DAY, new_log_key=log_vkey()),
        k0.public,
        after=first,
    )
    with pytest.raises(DirectoryRefused) as refused:
        verify_hub_rotation(first.signed, k0.public, after=second)
    assert refused.value.reason is Reason.ROLLBACK
    assert "replays an older one" in refused.value.detail
    # The same rotation again is no replay (a directory fetched twice).
    assert verify_hub_rotation(second.signed, k0.public, after=second).digest == second.digest


def test_a_rotation_that_changes_nothing_or_names_junk_is_malformed(keys) -> None:
    k0, _, _ = keys
    with pytest.raises(DirectoryRefused) as refused:
        build_hub_rotation(k0, k0, created_at_ms=T0)
    assert refused.value.reason is Reason.MALFORMED
    with pytest.raises(DirectoryRefused):
        build_hub_rotation(k0, k0, created_at_ms=T0, new_log_key="not a key")
    with pytest.raises(DirectoryRefused):
        build_hub_rotation(k0, k0, created_at_ms=T0, new_ca_pem=b"-----BEGIN nothing")
    leaf_pem = create_ca("x").cert_pem + create_ca("y").cert_pem
    with pytest.raises(DirectoryRefused):
        build_hub_rotation(k0, k0, created_at_ms=T0, new_ca_pem=leaf_pem)
    with pytest.raises(DirectoryRefused) as refused:
        parse_hub_rotation(b"\x0a" * 20_000)
    assert refused.value.reason is Reason.TOO_LARGE


# -- following directories --------------------------------------------------------------


def test_a_directory_under_the_pinned_key_pins_the_first_log_key(keys) -> None:
    k0, _, _ = keys
    vkey = log_vkey()
    followed = follow_directory(directory(k0, 1, log_key=vkey), HubTrust(k0.public), now_ms=T0 + 1)
    assert followed.log_key_first_seen and followed.rotation is None
    assert followed.trust == HubTrust(k0.public, log_key=vkey)


def test_a_directory_signed_by_an_unknown_key_without_a_rotation_is_refused(keys) -> None:
    k0, k1, _ = keys
    with pytest.raises(DirectoryRefused) as refused:
        follow_directory(directory(k1, 2), HubTrust(k0.public), now_ms=T0 + 1)
    assert refused.value.reason is Reason.UNKNOWN_KEY
    assert "carries no rotation announced under the pinned key" in refused.value.detail


def test_the_directory_key_log_key_and_ca_move_together(keys) -> None:
    k0, k1, _ = keys
    old_log, new_log = log_vkey(), log_vkey()
    ca = create_ca("Samverka CA 2").cert_pem
    rotation = build_hub_rotation(k0, k1, created_at_ms=T0, new_log_key=new_log, new_ca_pem=ca)
    trust = HubTrust(k0.public, log_key=old_log)
    signed = directory(k1, 2, log_key=new_log, rotation=rotation, hub_keys=(k0,))
    followed = follow_directory(signed, trust, now_ms=T0 + 1)
    assert followed.rotation is not None and followed.rotation.new_ca_pem == ca
    assert followed.trust.hub_key == k1.public and followed.trust.log_key == new_log
    # Fetched again once followed: nothing new to follow, same trust.
    again = follow_directory(signed, followed.trust, now_ms=T0 + 2)
    assert again.rotation is None and again.trust == followed.trust
    # The next version under k1 carries no rotation and keeps the new log key.
    later = follow_directory(directory(k1, 3, log_key=new_log), followed.trust, now_ms=T0 + 3)
    assert later.trust == followed.trust


def test_a_rotation_to_another_key_than_the_signer_is_refused(keys) -> None:
    k0, k1, k2 = keys
    rotation = build_hub_rotation(k0, k1, created_at_ms=T0)
    with pytest.raises(DirectoryRefused) as refused:
        follow_directory(directory(k2, 2, rotation=rotation), HubTrust(k0.public), now_ms=T0)
    assert refused.value.reason is Reason.UNKNOWN_KEY
    assert k1.key_id in refused.value.detail


def test_a_forged_rotation_in_a_directory_is_refused(keys) -> None:
    k0, _, mallory = keys
    # Mallory signs a directory with her key and a rotation "from" k0 she signed herself.
    forged = directory_pb2.SignedHubKeyRotation()
    forged.CopyFrom(build_hub_rotation(mallory, mallory, created_at_ms=T0, new_log_key=log_vkey()))
    rotation = directory_pb2.HubKeyRotation.FromString(forged.rotation)
    rotation.old_key_id = k0.key_id
    forged.rotation = rotation.SerializeToString()
    forged.old_signature = mallory.sign(forged.rotation, domain=HUB_KEY_ROTATION_DOMAIN)
    forged.new_signature = mallory.sign(forged.rotation, domain=HUB_KEY_ROTATION_DOMAIN)
    with pytest.raises(DirectoryRefused) as refused:
        follow_directory(directory(mallory, 9, rotation=forged), HubTrust(k0.public), now_ms=T0 + 1)
    assert refused.value.reason is Reason.BAD_SIGNATURE


def test_a_log_key_change_without_rotation_is_refused(keys) -> None:
    k0, _, _ = keys
    trust = HubTrust(k0.public, log_key=log_vkey())
    with pytest.raises(DirectoryRefused) as refused:
        follow_directory(directory(k0, 2, log_key=log_vkey()), trust, now_ms=T0 + 1)
    assert refused.value.reason is Reason.UNKNOWN_KEY
    assert "no rotation signed by the hub key announces it" in refused.value.detail


def test_a_log_key_only_rotation_under_the_same_key_and_its_replay(keys) -> None:
    k0, _, _ = keys
    log_a, log_b, log_c = log_vkey(), log_vkey(), log_vkey()
    to_b = build_hub_rotation(k0, k0, created_at_ms=T0, new_log_key=log_b)
    to_c = build_hub_rotation(k0, k0, created_at_ms=T0 + DAY, new_log_key=log_c)
    trust = HubTrust(k0.public, log_key=log_a)
    trust = follow_directory(directory(k0, 2, log_key=log_b, rotation=to_b), trust, now_ms=T0).trust
    assert trust.log_key == log_b
    trust = follow_directory(
        directory(k0, 3, log_key=log_c, rotation=to_c), trust, now_ms=T0 + DAY
    ).trust
    assert trust.log_key == log_c
    # The hub's key signs a newer version carrying the older rotation: a replay.
    with pytest.raises(DirectoryRefused) as refused:
        follow_directory(directory(k0, 4, log_key=log_b, rotation=to_b), trust, now_ms=T0 + DAY)
    assert refused.value.reason is Reason.ROLLBACK


def test_a_chain_of_rotations_is_followed_one_version_at_a_time(keys) -> None:
    k0, k1, k2 = keys
    r1 = build_hub_rotation(k0, k1, created_at_ms=T0)
    r2 = build_hub_rotation(k1, k2, created_at_ms=T0 + DAY)
    v2 = directory(k1, 2, rotation=r1, issued_at_ms=T0)
    v3 = directory(k2, 3, rotation=r2, issued_at_ms=T0 + DAY)
    trust = HubTrust(k0.public)
    # The newest alone cannot be followed from k0: the rotation in it is k1's.
    with pytest.raises(DirectoryRefused) as refused:
        follow_directory(v3, trust, now_ms=T0 + DAY)
    assert refused.value.reason is Reason.UNKNOWN_KEY
    # Walked in order it is, and an expired step is fine when the caller walks on.
    late = T0 + 30 * DAY
    with pytest.raises(DirectoryRefused) as refused:
        follow_directory(v2, trust, now_ms=late)
    assert refused.value.reason is Reason.EXPIRED
    step = follow_directory(v2, trust, now_ms=late, expired_step_ok=True)
    assert step.trust.hub_key == k1.public
    last = follow_directory(v3, step.trust, now_ms=T0 + DAY + 1, seen=step.directory.checkpoint)
    assert last.trust.hub_key == k2.public and last.rotation is not None
    # Going back to a directory of k1's now is refused: k1 is no longer pinned.
    with pytest.raises(DirectoryRefused) as refused:
        follow_directory(directory(k1, 4), last.trust, now_ms=T0 + DAY + 2)
    assert refused.value.reason is Reason.UNKNOWN_KEY


def test_an_expired_directory_without_a_rotation_is_still_refused(keys) -> None:
    k0, _, _ = keys
    with pytest.raises(DirectoryRefused) as refused:
        follow_directory(
            directory(k0, 1), HubTrust(k0.public), now_ms=T0 + 30 * DAY, expired_step_ok=True
        )
    assert refused.value.reason is Reason.EXPIRED


def test_a_rollback_across_a_rotation_is_refused(keys) -> None:
    k0, k1, _ = keys
    r1 = build_hub_rotation(k0, k1, created_at_ms=T0)
    held = follow_directory(directory(k0, 5), HubTrust(k0.public), now_ms=T0)
    with pytest.raises(DirectoryRefused) as refused:
        follow_directory(
            directory(k1, 4, rotation=r1),
            HubTrust(k0.public),
            now_ms=T0,
            seen=held.directory.checkpoint,
        )
    assert refused.value.reason is Reason.ROLLBACK
