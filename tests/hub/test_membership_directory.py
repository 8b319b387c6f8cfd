"""The signed member directory (pure): signing, verification, rollback, expiry, keys."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from samverka.errors import DirectoryRefused, EntryRefused, Reason
from samverka.protocol.directory import (
    DEFAULT_VALID_MS,
    DirectoryCheckpoint,
    build_directory,
    hub_member,
    keyring_from_directory,
    sign_directory,
    verify_directory,
)
from samverka.protocol.entries import build_entry, sign_entry
from samverka.protocol.signing import DIRECTORY_DOMAIN, SigningKey
from samverka.protocol.verify import MemoryFeedState, Verdict, verify_entry
from samverka.v1 import directory_pb2, records_pb2

NOW = 1_800_000_000_000
DAY = 24 * 3600 * 1000


def member(code: str, *keys: SigningKey, revoked_at_ms: int = 0) -> directory_pb2.Member:
    return directory_pb2.Member(
        kommunkod=code,
        name=code,
        status=directory_pb2.MEMBER_STATUS_REVOKED
        if revoked_at_ms
        else directory_pb2.MEMBER_STATUS_ACTIVE,
        keys=[directory_pb2.MemberKey(public_key=k.public.raw, key_id=k.key_id) for k in keys],
        revoked_at_ms=revoked_at_ms,
    )


LEKSAND = SigningKey.generate()
TIBRO = SigningKey.generate()


def make(hub_key: SigningKey, version: int = 1, *members: directory_pb2.Member, issued=NOW):
    return build_directory(
        hub_key,
        version=version,
        members=[hub_member(hub_key.public), *members],
        issued_at_ms=issued,
    )


def test_round_trip(hub_key: SigningKey) -> None:
    signed = make(hub_key, 3, member("2029", LEKSAND), member("1472", TIBRO))
    got = verify_directory(signed.signed_bytes(), hub_key.public, now_ms=NOW + 1)
    assert got.version == 3
    assert got.expires_at_ms == NOW + DEFAULT_VALID_MS
    assert [m.kommunkod for m in got.directory.members] == ["0000", "1472", "2029"]
    assert got.is_active("2029") and not got.is_revoked("2029")
    assert got.member("0180") is None
    ring = got.keyring()
    assert ring.get(LEKSAND.key_id).origin == "2029"  # type: ignore[union-attr]
    assert ring.get(hub_key.key_id).origin == "0000"  # type: ignore[union-attr]
    # the exact signed bytes survive the round trip
    assert got.signed.directory == signed.signed.directory


def test_unknown_signer_and_bad_signature(hub_key: SigningKey) -> None:
    other = SigningKey.generate()
    forged = build_directory(other, version=9, members=[hub_member(other.public)], issued_at_ms=NOW)
    with pytest.raises(DirectoryRefused) as exc:
        verify_directory(forged.signed, hub_key.public, now_ms=NOW)
    assert exc.value.reason is Reason.UNKNOWN_KEY
    # the hub's key id on someone else's signature
    forged.signed.key_id = hub_key.key_id
    with pytest.raises(DirectoryRefused) as exc:
        verify_directory(forged.signed, hub_key.public, now_ms=NOW)
    assert exc.value.reason is Reason.BAD_SIGNATURE


def test_signature_is_domain_separated(hub_key: SigningKey) -> None:
    """A signature over the same bytes with the entry domain is not a directory signature."""
    good = make(hub_key)
    wrong = directory_pb2.SignedDirectory(
        directory=good.signed.directory,
        signature=hub_key.sign(good.signed.directory),  # entry domain
        key_id=hub_key.key_id,
    )
    with pytest.raises(DirectoryRefused) as exc:
        verify_directory(wrong, hub_key.public, now_ms=NOW)
    assert exc.value.reason is Reason.BAD_SIGNATURE
    assert hub_key.public.verify(
        good.signed.directory, good.signed.signature, domain=DIRECTORY_DOMAIN
    )


def test_rollback_refused(hub_key: SigningKey) -> None:
    v5 = make(hub_key, 5, member("2029", LEKSAND))
    v4 = make(hub_key, 4, member("2029", LEKSAND))
    seen = verify_directory(v5.signed, hub_key.public, now_ms=NOW).checkpoint
    with pytest.raises(DirectoryRefused) as exc:
        verify_directory(v4.signed, hub_key.public, now_ms=NOW, seen=seen)
    assert exc.value.reason is Reason.ROLLBACK
    # the same directory again is fine
    assert verify_directory(v5.signed, hub_key.public, now_ms=NOW, seen=seen).version == 5
    # a newer one is fine
    v6 = make(hub_key, 6, member("2029", LEKSAND))
    assert verify_directory(v6.signed, hub_key.public, now_ms=NOW, seen=seen).version == 6


def test_equal_version_different_bytes_refused(hub_key: SigningKey) -> None:
    """Two directories with one version (e.g. one without a revocation) are an attack."""
    a = make(hub_key, 7, member("2029", LEKSAND))
    b = make(hub_key, 7, member("2029", LEKSAND, revoked_at_ms=NOW - 1))
    seen = DirectoryCheckpoint(a.version, a.digest)
    with pytest.raises(DirectoryRefused) as exc:
        verify_directory(b.signed, hub_key.public, now_ms=NOW, seen=seen)
    assert exc.value.reason is Reason.ROLLBACK
    assert "same version" in exc.value.detail


def test_expired_refused(hub_key: SigningKey) -> None:
    d = make(hub_key, 1, issued=NOW - 8 * DAY)
    with pytest.raises(DirectoryRefused) as exc:
        verify_directory(d.signed, hub_key.public, now_ms=NOW)
    assert exc.value.reason is Reason.EXPIRED
    assert verify_directory(d.signed, hub_key.public, now_ms=NOW - 2 * DAY).version == 1


def test_malformed_and_oversize(hub_key: SigningKey) -> None:
    with pytest.raises(DirectoryRefused) as exc:
        verify_directory(b"\xff\xff\xff", hub_key.public, now_ms=NOW)
    assert exc.value.reason is Reason.MALFORMED
    with pytest.raises(DirectoryRefused) as exc:
        verify_directory(b"\x00" * (2 * 1024 * 1024), hub_key.public, now_ms=NOW)
    assert exc.value.reason is Reason.TOO_LARGE
    # correctly signed garbage: the signature passes, decoding does not
    raw = b"\x0a\xff"
    signed = directory_pb2.SignedDirectory(
        directory=raw, signature=hub_key.sign(raw, domain=DIRECTORY_DOMAIN), key_id=hub_key.key_id
    )
    with pytest.raises(DirectoryRefused) as exc:
        verify_directory(signed, hub_key.public, now_ms=NOW)
    assert exc.value.reason is Reason.MALFORMED


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda d, k: d.members.add(kommunkod="9999", status=1), id="not-a-kommun"),
        pytest.param(lambda d, k: d.members.append(d.members[1]), id="member-twice"),
        pytest.param(
            lambda d, k: d.members[1].keys[0].__setattr__("key_id", "00" * 16), id="key-id"
        ),
        pytest.param(
            lambda d, k: d.members[1].keys[0].__setattr__("public_key", b"x"), id="short-key"
        ),
        pytest.param(lambda d, k: d.members[1].__setattr__("status", 2), id="revoked-without-time"),
        pytest.param(lambda d, k: d.members[1].__setattr__("status", 0), id="no-status"),
        pytest.param(lambda d, k: d.members.pop(0), id="hub-not-listed"),
        pytest.param(lambda d, k: d.__setattr__("expires_at_ms", d.issued_at_ms), id="no-lifetime"),
        pytest.param(
            lambda d, k: d.members[1].keys.append(d.members[0].keys[0]), id="key-of-two-members"
        ),
    ],
)
def test_shape_refused(hub_key: SigningKey, mutate) -> None:  # type: ignore[no-untyped-def]
    d = make(hub_key, 1, member("2029", LEKSAND)).directory
    mutate(d, hub_key)
    signed = sign_directory(hub_key, d)
    with pytest.raises(DirectoryRefused) as exc:
        verify_directory(signed.signed, hub_key.public, now_ms=NOW)
    assert exc.value.reason is Reason.SCHEMA_INVALID


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_flipped_byte_is_refused(hub_key: SigningKey, data: st.DataObject) -> None:
    signed = make(hub_key, 2, member("2029", LEKSAND), member("1472", TIBRO)).signed_bytes()
    pos = data.draw(st.integers(0, len(signed) - 1))
    bit = data.draw(st.integers(0, 7))
    flipped = bytearray(signed)
    flipped[pos] ^= 1 << bit
    with pytest.raises(DirectoryRefused) as exc:
        verify_directory(bytes(flipped), hub_key.public, now_ms=NOW)
    assert exc.value.reason in {
        Reason.MALFORMED,
        Reason.UNKNOWN_KEY,
        Reason.BAD_SIGNATURE,
        Reason.TOO_LARGE,
    }


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_flips_inside_the_signed_directory_are_bad_signatures(
    hub_key: SigningKey, data: st.DataObject
) -> None:
    d = make(hub_key, 2, member("2029", LEKSAND))
    raw = bytearray(d.signed.directory)
    pos = data.draw(st.integers(0, len(raw) - 1))
    raw[pos] ^= 1 << data.draw(st.integers(0, 7))
    tampered = directory_pb2.SignedDirectory(
        directory=bytes(raw), signature=d.signed.signature, key_id=d.signed.key_id
    )
    with pytest.raises(DirectoryRefused) as exc:
        verify_directory(tampered, hub_key.public, now_ms=NOW)
    assert exc.value.reason is Reason.BAD_SIGNATURE


# -- what the directory means for entries ------------------------------------------------


def _entry(key: SigningKey, origin: str, seq: int, prev: bytes, ts: int):  # type: ignore[no-untyped-def]
    record = records_pb2.Record(
        header=records_pb2.RecordHeader(
            id=f"uc-{seq}",
            kind=records_pb2.RECORD_KIND_USE_CASE,
            origin=origin,
            version=1,
            created_at_ms=ts,
            updated_at_ms=ts,
            visibility=records_pb2.VISIBILITY_PUBLIC,
            language="sv",
        ),
        use_case=records_pb2.UseCase(
            title="Chattbot för bygglov",
            summary="En chattbot svarar på frågor om bygglov.",
            service_area=records_pb2.SERVICE_AREA_URBAN_PLANNING,
            status=records_pb2.USE_CASE_STATUS_PILOT,
            risk_class=records_pb2.RISK_CLASS_LIMITED,
        ),
    )
    raw = build_entry(
        origin=origin, sequence=seq, previous_hash=prev, timestamp_ms=ts, record=record
    )
    return sign_entry(key, raw)


def test_revoked_member_keys_refuse_later_entries(hub_key: SigningKey) -> None:
    """Entries signed before the revocation time verify; those after are KEY_REVOKED."""
    from samverka.protocol.signing import GENESIS_HASH, entry_hash

    revoked_at = NOW - DAY
    d = make(hub_key, 3, member("2029", LEKSAND, revoked_at_ms=revoked_at))
    ring = keyring_from_directory(d.directory)
    assert ring.get(LEKSAND.key_id).revoked_at_ms == revoked_at  # type: ignore[union-attr]
    state = MemoryFeedState()
    before = _entry(LEKSAND, "2029", 1, GENESIS_HASH, revoked_at - 1)
    verdict, parsed = verify_entry(before, ring, state, now_ms=NOW)
    assert verdict is Verdict.ACCEPTED
    state.note_entry(parsed)
    after = _entry(LEKSAND, "2029", 2, entry_hash(before.entry), revoked_at)
    with pytest.raises(EntryRefused) as exc:
        verify_entry(after, ring, state, now_ms=NOW)
    assert exc.value.reason is Reason.KEY_REVOKED


def test_key_windows_from_rotation(hub_key: SigningKey) -> None:
    """After a rotation the old key is valid until its revocation, the new one from its start."""
    new = SigningKey.generate()
    m = member("2029", LEKSAND, new)
    m.keys[0].revoked_at_ms = NOW
    m.keys[1].valid_from_ms = NOW - DAY
    ring = keyring_from_directory(make(hub_key, 2, m).directory)
    old_key, new_key = ring.get(LEKSAND.key_id), ring.get(new.key_id)
    assert old_key is not None and new_key is not None
    assert (old_key.valid_from_ms, old_key.revoked_at_ms) == (0, NOW)
    assert (new_key.valid_from_ms, new_key.revoked_at_ms) == (NOW - DAY, None)
    # a member revoked later than a key's own revocation keeps the earlier time
    m.status = directory_pb2.MEMBER_STATUS_REVOKED
    m.revoked_at_ms = NOW + DAY
    ring = keyring_from_directory(make(hub_key, 3, m).directory)
    assert ring.get(LEKSAND.key_id).revoked_at_ms == NOW  # type: ignore[union-attr]
    assert ring.get(new.key_id).revoked_at_ms == NOW + DAY  # type: ignore[union-attr]
