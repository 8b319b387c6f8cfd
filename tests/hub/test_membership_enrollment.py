"""Enrollment requests and key rotations (pure): build, sign, verify, refuse."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from samverka.errors import EnrollmentRefused, Reason
from samverka.membership.enrollment import (
    DEFAULT_MAX_AGE_MS,
    DEFAULT_MAX_SKEW_MS,
    build_enrollment_request,
    build_key_rotation,
    check_address,
    verify_enrollment_request,
    verify_key_rotation,
)
from samverka.protocol.signing import ENROLLMENT_DOMAIN, KEY_ROTATION_DOMAIN, SigningKey
from samverka.transport.pki import create_csr
from samverka.v1 import directory_pb2

NOW = 1_800_000_000_000
KEY = SigningKey.generate()
CSR = create_csr("2029", name="Leksand").csr_der


def request(**kw):  # type: ignore[no-untyped-def]
    args = {
        "kommunkod": "2029",
        "csr_der": CSR,
        "created_at_ms": NOW,
        "contact_role": "IT-chef",
        "address": "127.0.0.1:7443",
    }
    args.update(kw)
    key = args.pop("key", KEY)
    return build_enrollment_request(key, **args)


def refused(signed, **kw) -> EnrollmentRefused:  # type: ignore[no-untyped-def]
    with pytest.raises(EnrollmentRefused) as exc:
        verify_enrollment_request(signed, now_ms=kw.pop("now_ms", NOW), **kw)
    return exc.value


def test_round_trip() -> None:
    signed = request()
    got = verify_enrollment_request(signed.SerializeToString(), now_ms=NOW)
    assert got.kommunkod == "2029"
    assert got.request.name == "Leksand"
    assert got.key_id == KEY.key_id
    assert got.csr.kommunkod == "2029"
    assert got.signed.request == signed.request
    assert len(got.digest) == 32


def test_signed_by_another_key_is_refused() -> None:
    signed = request()
    other = SigningKey.generate()
    signed.signature = other.sign(signed.request, domain=ENROLLMENT_DOMAIN)
    assert refused(signed).reason is Reason.BAD_SIGNATURE
    # right key, wrong domain
    signed.signature = KEY.sign(signed.request)
    assert refused(signed).reason is Reason.BAD_SIGNATURE
    signed.signature = KEY.sign(signed.request, domain=KEY_ROTATION_DOMAIN)
    assert refused(signed).reason is Reason.BAD_SIGNATURE


def test_unknown_kommunkod_and_hub_origin_are_refused() -> None:
    csr = create_csr("0000").csr_der
    assert refused(request(kommunkod="0000", csr_der=csr)).reason is Reason.SCHEMA_INVALID
    err = refused(request(kommunkod="9999", csr_der=CSR))
    assert err.reason is Reason.SCHEMA_INVALID and "kommunkod" in str(err)


def test_csr_must_name_the_kommun() -> None:
    other = create_csr("1472").csr_der
    err = refused(request(csr_der=other))
    assert err.reason is Reason.SCHEMA_INVALID and "1472" in str(err)
    assert refused(request(csr_der=b"")).reason is Reason.SCHEMA_INVALID
    assert refused(request(csr_der=b"\x30\x03\x02\x01\x00")).reason is Reason.SCHEMA_INVALID
    assert refused(request(csr_der=b"x" * 5000)).reason is Reason.TOO_LARGE


def test_text_sizes_and_address() -> None:
    assert refused(request(contact_role="r" * 201)).reason is Reason.SCHEMA_INVALID
    assert refused(request(address="not an address")).reason is Reason.SCHEMA_INVALID
    assert refused(request(address="host:99999")).reason is Reason.SCHEMA_INVALID
    assert check_address("[::1]:7443") == ("::1", 7443)
    assert check_address("node.leksand.se:443") == ("node.leksand.se", 443)
    with pytest.raises(EnrollmentRefused):
        check_address("evil/host:1")


def test_freshness() -> None:
    signed = request()
    assert refused(signed, now_ms=NOW + DEFAULT_MAX_AGE_MS + 1).reason is Reason.EXPIRED
    assert refused(signed, now_ms=NOW - DEFAULT_MAX_SKEW_MS - 1).reason is Reason.CLOCK_SKEW
    # without a clock (answering a request already stored) the age does not matter
    assert verify_enrollment_request(signed, now_ms=None).kommunkod == "2029"


def test_oversize_and_unknown_fields() -> None:
    assert refused(b"\x0a" + b"\xff" * 20_000).reason is Reason.TOO_LARGE
    assert refused(b"\xff\xff").reason is Reason.MALFORMED
    signed = request()
    extra = signed.request + b"\xa0\x06\x01"  # field 100, varint 1: unknown to this version
    signed = directory_pb2.SignedEnrollmentRequest(
        request=extra, signature=KEY.sign(extra, domain=ENROLLMENT_DOMAIN)
    )
    assert refused(signed).reason is Reason.MALFORMED


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_flipped_byte_is_refused(data: st.DataObject) -> None:
    raw = bytearray(request().SerializeToString())
    pos = data.draw(st.integers(0, len(raw) - 1))
    raw[pos] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(EnrollmentRefused):
        verify_enrollment_request(bytes(raw), now_ms=NOW)


# -- key rotation ----------------------------------------------------------------------


NEW = SigningKey.generate()


def test_rotation_round_trip() -> None:
    signed = build_key_rotation(KEY, NEW, kommunkod="2029", created_at_ms=NOW)
    got = verify_key_rotation(signed.SerializeToString(), current_keys=[KEY.public], now_ms=NOW)
    assert got.kommunkod == "2029"
    assert got.new_key == NEW.public
    assert got.old_key_id == KEY.key_id


def test_rotation_needs_both_signatures() -> None:
    signed = build_key_rotation(KEY, NEW, kommunkod="2029", created_at_ms=NOW)
    stranger = SigningKey.generate()
    # announced by someone who does not hold the old key
    forged = build_key_rotation(stranger, NEW, kommunkod="2029", created_at_ms=NOW)
    with pytest.raises(EnrollmentRefused) as exc:
        verify_key_rotation(forged, current_keys=[KEY.public], now_ms=NOW)
    assert exc.value.reason is Reason.UNKNOWN_KEY
    forged.old_signature = stranger.sign(forged.rotation, domain=KEY_ROTATION_DOMAIN)
    bad_old = directory_pb2.SignedKeyRotation()
    bad_old.CopyFrom(signed)
    bad_old.old_signature = stranger.sign(signed.rotation, domain=KEY_ROTATION_DOMAIN)
    with pytest.raises(EnrollmentRefused) as exc:
        verify_key_rotation(bad_old, current_keys=[KEY.public], now_ms=NOW)
    assert exc.value.reason is Reason.BAD_SIGNATURE
    bad_new = directory_pb2.SignedKeyRotation()
    bad_new.CopyFrom(signed)
    bad_new.new_signature = stranger.sign(signed.rotation, domain=KEY_ROTATION_DOMAIN)
    with pytest.raises(EnrollmentRefused) as exc:
        verify_key_rotation(bad_new, current_keys=[KEY.public], now_ms=NOW)
    assert exc.value.reason is Reason.BAD_SIGNATURE


def test_rotation_to_a_known_key_is_refused() -> None:
    signed = build_key_rotation(KEY, KEY, kommunkod="2029", created_at_ms=NOW)
    with pytest.raises(EnrollmentRefused) as exc:
        verify_key_rotation(signed, current_keys=[KEY.public], now_ms=NOW)
    assert exc.value.reason is Reason.SCHEMA_INVALID
    signed = build_key_rotation(KEY, NEW, kommunkod="2029", created_at_ms=NOW)
    with pytest.raises(EnrollmentRefused):
        verify_key_rotation(
            signed, current_keys=[KEY.public], known_key_ids=[NEW.key_id], now_ms=NOW
        )
    with pytest.raises(EnrollmentRefused) as exc:
        verify_key_rotation(signed, current_keys=[KEY.public], now_ms=NOW + DEFAULT_MAX_AGE_MS + 1)
    assert exc.value.reason is Reason.EXPIRED


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_flipped_rotation_byte_is_refused(data: st.DataObject) -> None:
    raw = bytearray(
        build_key_rotation(KEY, NEW, kommunkod="2029", created_at_ms=NOW).SerializeToString()
    )
    pos = data.draw(st.integers(0, len(raw) - 1))
    raw[pos] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(EnrollmentRefused):
        verify_key_rotation(bytes(raw), current_keys=[KEY.public], now_ms=NOW)
