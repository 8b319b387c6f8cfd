"""The hub's side of key binding (issue 11, point 5), over a real hub database (SQLite
file and PostgreSQL): approved rotations are listed in the member's directory entry, so
nodes take the new key at once; a member's signed objection to a key listed for it is
kept and listed in a directory version signed at once, so every node (and the hub
itself) refuses the key."""

from __future__ import annotations

import factories
import pytest
from hubkit import HOUR, Applicant, HubUnderTest
from samverka.errors import DirectoryRefused, EnrollmentRefused, EntryRefused, Reason
from samverka.protocol import keybinding
from samverka.protocol.directory import build_key_objection
from samverka.protocol.signing import SigningKey
from samverka.protocol.verify import KeyRing, KeyStanding, MemoryFeedState, verify_entry
from samverka.v1 import directory_pb2
from samverka_hub.council import MAX_OBJECTIONS_PER_KOMMUN, MembershipConflict
from samverka_hub.tables import MemberKeyRow

LEKSAND, TIBRO = "2029", "1472"


def admit(h: HubUnderTest, code: str = LEKSAND) -> Applicant:
    applicant = Applicant.make(code)
    h.council.submit_enrollment(applicant.request(at=h.clock.now))
    h.council.approve(code)
    return applicant


def plant(h: HubUnderTest, code: str) -> SigningKey:
    """What a hub that misbehaves does: list a key of its own for ``code``."""
    key = SigningKey.generate()
    with h.council.store.write() as tx:
        tx.add_key(
            MemberKeyRow(
                key_id=key.key_id,
                kommunkod=code,
                public_key=key.public.raw,
                valid_from_ms=0,
                revoked_at_ms=None,
                added_at_ms=h.clock.now,
            )
        )
    return key


def test_an_approved_rotation_is_listed_and_takes_effect_at_a_node_at_once(
    hub: HubUnderTest,
) -> None:
    a = admit(hub)
    before = hub.council.current_directory()
    assert before is not None
    member = before.member(LEKSAND)
    assert member is not None and list(member.rotations) == []
    new = SigningKey.generate()
    signed = a.rotation(new, at=hub.clock.now)
    hub.council.submit_rotation(signed, caller=LEKSAND)
    hub.clock.now += HOUR
    after = hub.council.approve_rotation(LEKSAND)
    member = after.member(LEKSAND)
    assert member is not None
    assert [r.SerializeToString(deterministic=True) for r in member.rotations] == [
        signed.SerializeToString(deterministic=True)
    ]
    # A node that knew Leksand by its first key takes the new one at once.
    state = keybinding.update(
        keybinding.EMPTY, before.directory, now_ms=hub.clock.now, challenge_period_ms=HOUR
    )
    state = keybinding.update(
        state, after.directory, now_ms=hub.clock.now, challenge_period_ms=HOUR
    )
    binding = state.binding(LEKSAND, new.key_id)
    assert binding is not None and binding.via is keybinding.Via.ROTATION
    assert binding.standing is keybinding.Standing.EFFECTIVE


def test_an_objection_is_kept_and_listed_in_a_new_directory_version(hub: HubUnderTest) -> None:
    a = admit(hub)
    planted = plant(hub, LEKSAND)
    listed = hub.council.reissue_directory()
    objection = build_key_objection(
        a.key, kommunkod=LEKSAND, objected=planted.public, created_at_ms=hub.clock.now
    )
    row, directory = hub.council.object_to_key(objection, caller=LEKSAND)
    assert directory.version == listed.version + 1
    assert (row.kommunkod, row.objected_key_id, row.signer_key_id) == (
        LEKSAND,
        planted.key_id,
        a.key.key_id,
    )
    member = directory.member(LEKSAND)
    assert member is not None
    assert [o.SerializeToString(deterministic=True) for o in member.objections] == [
        objection.SerializeToString(deterministic=True)
    ]
    # Sent again (a node retrying): the same row, no new version.
    again, same = hub.council.object_to_key(objection.SerializeToString(), caller=LEKSAND)
    assert again.id == row.id and same.version == directory.version
    # The hub itself refuses the key from now on (its keyring is the directory's).
    ring: KeyRing = directory.keyring()
    key = ring.get(planted.key_id)
    assert key is not None and key.standing is KeyStanding.OBJECTED
    forged = factories.FeedWriter(LEKSAND, planted).publish(record_id="x", origin=LEKSAND)
    with pytest.raises(EntryRefused) as refused:
        verify_entry(forged, ring, MemoryFeedState())
    assert refused.value.reason is Reason.KEY_OBJECTED
    honest = factories.FeedWriter(LEKSAND, a.key).publish(record_id="y", origin=LEKSAND)
    verify_entry(honest, ring, MemoryFeedState())


def test_an_objection_must_be_the_callers_own_and_signed_by_its_listed_key(
    hub: HubUnderTest,
) -> None:
    leksand, tibro = admit(hub), admit(hub, TIBRO)
    planted = plant(hub, LEKSAND)
    at = hub.clock.now

    def objection(signer: SigningKey, target: SigningKey, code: str = LEKSAND) -> bytes:
        return build_key_objection(
            signer, kommunkod=code, objected=target.public, created_at_ms=at
        ).SerializeToString()

    with pytest.raises(MembershipConflict) as conflict:
        hub.council.object_to_key(objection(leksand.key, planted), caller=TIBRO)
    assert conflict.value.reason == "not_your_key"
    with pytest.raises(EnrollmentRefused) as refused:
        hub.council.object_to_key(objection(tibro.key, planted), caller=LEKSAND)
    assert refused.value.reason is Reason.UNKNOWN_KEY
    tampered = directory_pb2.SignedKeyObjection.FromString(objection(leksand.key, planted))
    tampered.signature = bytes(64)
    with pytest.raises(EnrollmentRefused) as refused:
        hub.council.object_to_key(tampered, caller=LEKSAND)
    assert refused.value.reason is Reason.BAD_SIGNATURE
    with pytest.raises(EnrollmentRefused) as refused:
        hub.council.object_to_key(objection(leksand.key, leksand.key), caller=LEKSAND)
    assert refused.value.reason is Reason.SCHEMA_INVALID
    with pytest.raises(DirectoryRefused) as malformed:
        hub.council.object_to_key(b"\xff\x01", caller=LEKSAND)
    assert malformed.value.reason is Reason.MALFORMED
    version = hub.council.current_directory().version  # type: ignore[union-attr]
    for _ in range(MAX_OBJECTIONS_PER_KOMMUN):
        hub.council.object_to_key(objection(leksand.key, SigningKey.generate()), caller=LEKSAND)
    with pytest.raises(MembershipConflict) as conflict:
        hub.council.object_to_key(objection(leksand.key, planted), caller=LEKSAND)
    assert conflict.value.reason == "too_many_objections"
    assert hub.council.current_directory().version == version + MAX_OBJECTIONS_PER_KOMMUN  # type: ignore[union-attr]
