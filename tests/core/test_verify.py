"""verify_entry: round trips, the order of checks, chains, keys, clocks and versions."""

from __future__ import annotations

from typing import Any

import factories
import pytest
from factories import FIXED_NOW_MS, T0_MS, FeedWriter, make_record, make_tombstone, receiver
from samverka.errors import EntryRefused, Reason
from samverka.protocol.entries import MAX_SIGNED_ENTRY_BYTES, build_entry, parse_signed, sign_entry
from samverka.protocol.kommuner import HUB_ORIGIN
from samverka.protocol.signing import GENESIS_HASH, SigningKey, entry_hash
from samverka.protocol.verify import (
    DEFAULT_MAX_CLOCK_SKEW_MS,
    BatchState,
    FeedHead,
    KeyRing,
    MemoryFeedState,
    StandIn,
    TrustedKey,
    Verdict,
    check_fill,
    verify_entry,
    verify_redacted,
)
from samverka.v1 import feed_pb2, records_pb2


def verify(
    signed: feed_pb2.SignedEntry | bytes, keys: KeyRing, state: MemoryFeedState, **kw: Any
) -> tuple[Verdict, Any]:
    kw.setdefault("now_ms", FIXED_NOW_MS)
    return verify_entry(signed, keys, state, **kw)


def accept(signed: feed_pb2.SignedEntry, keys: KeyRing, state: MemoryFeedState) -> None:
    verdict, parsed = verify(signed, keys, state)
    assert verdict is Verdict.ACCEPTED
    state.note_entry(parsed)


def refusal(
    signed: feed_pb2.SignedEntry | bytes, keys: KeyRing, state: MemoryFeedState, **kw: Any
) -> EntryRefused:
    with pytest.raises(EntryRefused) as info:
        verify(signed, keys, state, **kw)
    return info.value


# -- round trips -----------------------------------------------------------------------


@pytest.mark.parametrize("body", factories.ALL_BODIES)
def test_every_kind_round_trips_as_object_and_as_bytes(body: str) -> None:
    origin = HUB_ORIGIN if body == "recommendation" else factories.LEKSAND
    writer = FeedWriter(origin)
    keys, state = receiver(writer)
    record = make_record(body, origin=origin)
    signed = writer.append(record)

    verdict, parsed = verify(signed, keys, state)
    assert verdict is Verdict.ACCEPTED
    assert parsed.record == record
    assert parsed.origin == origin and parsed.sequence == 1
    assert parsed.hash == entry_hash(signed.entry)
    assert parsed.signed.entry == signed.entry  # the signed bytes travel untouched

    verdict_b, parsed_b = verify(factories.serialize(signed), keys, state)
    assert verdict_b is Verdict.ACCEPTED and parsed_b.record == record


@pytest.mark.parametrize("body", factories.ALL_BODIES)
def test_tombstones_round_trip(body: str) -> None:
    origin = HUB_ORIGIN if body == "recommendation" else factories.LEKSAND
    writer = FeedWriter(origin)
    keys, state = receiver(writer)
    record = make_record(body, origin=origin)
    accept(writer.append(record), keys, state)
    retired = make_tombstone(record)
    verdict, parsed = verify(writer.append(retired), keys, state)
    assert verdict is Verdict.ACCEPTED
    assert parsed.record.header.tombstone and parsed.version == 2


def test_a_bare_tombstone_without_body_is_accepted(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    record = factories.make_use_case()
    accept(leksand.append(record), keys, state)
    bare = records_pb2.Record(header=record.header)
    bare.header.tombstone = True
    bare.header.version = 2
    assert verify(leksand.append(bare), keys, state)[0] is Verdict.ACCEPTED


def test_a_long_chain_of_mixed_records_verifies(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    for i in range(30):
        body = ("use_case", "lesson", "solution", "adoption")[i % 4]
        accept(leksand.publish(body, record_id=f"r-{i % 7}"), keys, state)
    head = state.head(factories.LEKSAND)
    assert head is not None and head.sequence == 30
    assert head.entry_hash == leksand.head_hash
    assert head.timestamp_ms == T0_MS + 29_000


def test_several_origins_interleave(leksand: FeedWriter, tibro: FeedWriter) -> None:
    keys, state = receiver(leksand, tibro)
    for i in range(5):
        accept(leksand.publish(record_id=f"uc-{i}"), keys, state)
        accept(tibro.publish(origin=factories.TIBRO, record_id=f"uc-{i}"), keys, state)
    assert state.head(factories.TIBRO) == FeedHead(
        factories.TIBRO, 5, tibro.head_hash, T0_MS + 4_000
    )


# -- replays, gaps, forks, rollbacks ---------------------------------------------------


def test_replay_is_a_duplicate_and_idempotent(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    first = leksand.publish(record_id="a")
    accept(first, keys, state)
    accept(leksand.publish(record_id="b"), keys, state)
    for _ in range(3):
        verdict, _ = verify(first, keys, state)
        assert verdict is Verdict.DUPLICATE
    head = state.head(factories.LEKSAND)
    assert head is not None and head.sequence == 2


def test_a_gap_is_refused_and_names_the_missing_range(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    accept(leksand.publish(record_id="a"), keys, state)
    leksand.publish(record_id="b")  # 2 never arrives
    leksand.publish(record_id="c")  # 3 neither
    refused = refusal(leksand.publish(record_id="d"), keys, state)
    assert refused.reason is Reason.SEQUENCE_GAP
    assert (refused.origin, refused.sequence) == (factories.LEKSAND, 4)
    assert "2..3" in refused.detail


def test_a_first_entry_other_than_sequence_1_is_a_gap(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    leksand.publish()
    assert refusal(leksand.publish(record_id="b"), keys, state).reason is Reason.SEQUENCE_GAP


def test_a_second_entry_at_a_held_sequence_is_a_fork(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    twin = leksand.fork()
    accept(leksand.publish(record_id="a"), keys, state)
    other = twin.publish(record_id="a", title="En annan historia")
    refused = refusal(other, keys, state)
    assert refused.reason is Reason.FORK and refused.sequence == 1


def test_a_wrong_previous_hash_is_a_fork(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    accept(leksand.publish(record_id="a"), keys, state)
    forged = leksand.build(factories.make_use_case(record_id="b"), previous_hash=bytes(32))
    assert refusal(forged, keys, state).reason is Reason.FORK


def test_a_first_entry_must_chain_from_the_genesis_hash(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    signed = leksand.build(factories.make_use_case(), previous_hash=b"\x01" * 32)
    assert refusal(signed, keys, state).reason is Reason.FORK
    assert verify(leksand.build(factories.make_use_case()), keys, state)[0] is Verdict.ACCEPTED
    assert leksand.head_hash == GENESIS_HASH


def test_rollback_of_a_record_version_is_refused(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    accept(leksand.append(factories.make_use_case(version=1)), keys, state)
    accept(leksand.append(factories.make_use_case(version=2)), keys, state)
    for version in (1, 2):
        refused = refusal(leksand.build(factories.make_use_case(version=version)), keys, state)
        assert refused.reason is Reason.VERSION_NOT_NEWER


def test_versions_may_skip_forward(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    accept(leksand.append(factories.make_use_case(version=1)), keys, state)
    accept(leksand.append(factories.make_use_case(version=7)), keys, state)


def test_a_duplicate_is_not_a_rollback(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    first = leksand.append(factories.make_use_case(version=1))
    accept(first, keys, state)
    accept(leksand.append(factories.make_use_case(version=2)), keys, state)
    assert verify(first, keys, state)[0] is Verdict.DUPLICATE


# -- keys ----------------------------------------------------------------------------------


def test_an_unknown_key_is_refused(leksand: FeedWriter) -> None:
    keys, state = receiver()
    refused = refusal(leksand.publish(), keys, state)
    assert refused.reason is Reason.UNKNOWN_KEY


def test_forged_origin_with_another_kommuns_key(leksand: FeedWriter, tibro: FeedWriter) -> None:
    """Tibro's own valid key signs an entry that claims to be Leksand's."""
    keys, state = receiver(leksand, tibro)
    forged = leksand.build(factories.make_use_case(), key=tibro.key)
    refused = refusal(forged, keys, state)
    assert refused.reason is Reason.KEY_NOT_OF_ORIGIN
    assert refused.origin == factories.LEKSAND


def test_a_key_of_another_origin_with_a_matching_header(tibro: FeedWriter) -> None:
    keys, state = receiver(tibro)
    claim = factories.make_use_case(origin=factories.LEKSAND)
    forged = tibro.build(claim, origin=factories.LEKSAND)
    assert refusal(forged, keys, state).reason is Reason.KEY_NOT_OF_ORIGIN


def test_header_origin_must_match_the_feed(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    refused = refusal(leksand.append(factories.make_use_case(origin=factories.TIBRO)), keys, state)
    assert refused.reason is Reason.SCHEMA_INVALID and "header.origin" in refused.detail


def test_signature_by_an_untrusted_key_under_a_trusted_key_id(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    impostor = SigningKey.generate()
    signed = leksand.build(factories.make_use_case(), key=impostor)
    signed.key_id = leksand.key.key_id
    assert refusal(signed, keys, state).reason is Reason.BAD_SIGNATURE


@pytest.mark.parametrize(
    ("valid_from", "revoked_at", "offset", "reason"),
    [
        (0, T0_MS + 1, 0, None),  # revoked one ms after the entry: still fine
        (0, T0_MS, 0, Reason.KEY_REVOKED),  # revoked at the entry's time
        (0, T0_MS - 1, 0, Reason.KEY_REVOKED),
        (T0_MS, None, 0, None),  # valid from exactly then
        (T0_MS + 1, None, 0, Reason.KEY_REVOKED),  # not valid yet
    ],
)
def test_key_validity_window(
    leksand: FeedWriter, valid_from: int, revoked_at: int | None, offset: int, reason: Reason | None
) -> None:
    keys = KeyRing([leksand.trusted_key(valid_from_ms=valid_from, revoked_at_ms=revoked_at)])
    state = MemoryFeedState()
    signed = leksand.publish()
    if reason is None:
        assert verify(signed, keys, state)[0] is Verdict.ACCEPTED
    else:
        assert refusal(signed, keys, state).reason is reason


def test_entries_before_revocation_stay_valid_and_later_ones_are_refused(
    leksand: FeedWriter,
) -> None:
    keys, state = receiver(leksand)
    accept(leksand.publish(record_id="a"), keys, state)
    revocation = leksand.next_timestamp_ms
    keys.add(leksand.trusted_key(revoked_at_ms=revocation))
    late = leksand.publish(record_id="b")
    assert refusal(late, keys, state).reason is Reason.KEY_REVOKED
    assert verify(leksand.entries[0], keys, state)[0] is Verdict.DUPLICATE


def test_a_rotated_key_continues_the_same_feed(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    accept(leksand.publish(record_id="a"), keys, state)
    new_key = SigningKey.generate()
    switch = leksand.next_timestamp_ms
    keys.add(leksand.trusted_key(revoked_at_ms=switch))
    keys.add(TrustedKey(factories.LEKSAND, new_key.public, valid_from_ms=switch))
    leksand.key = new_key
    accept(leksand.publish(record_id="b"), keys, state)


def test_a_keyring_refuses_one_key_for_two_origins(leksand: FeedWriter) -> None:
    ring = leksand.keyring()
    with pytest.raises(ValueError, match="already trusted"):
        ring.add(TrustedKey(factories.TIBRO, leksand.key.public))
    ring.add(leksand.trusted_key(revoked_at_ms=5))  # same origin: replaced
    held = ring.get(leksand.key.key_id)
    assert held is not None and held.revoked_at_ms == 5 and len(ring) == 1
    assert ring.for_origin(factories.LEKSAND) == [held]


# -- clocks ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ahead_ms", "accepted"),
    [
        (0, True),
        (DEFAULT_MAX_CLOCK_SKEW_MS, True),
        (DEFAULT_MAX_CLOCK_SKEW_MS + 1, False),
        (365 * 24 * 3600 * 1000, False),
        (-365 * 24 * 3600 * 1000, True),  # old entries are history, not skew
    ],
)
def test_clock_skew_tolerance(leksand: FeedWriter, ahead_ms: int, accepted: bool) -> None:
    keys, state = receiver(leksand)
    now = T0_MS - ahead_ms
    signed = leksand.publish()
    if accepted:
        assert verify(signed, keys, state, now_ms=now)[0] is Verdict.ACCEPTED
    else:
        refused = refusal(signed, keys, state, now_ms=now)
        assert refused.reason is Reason.CLOCK_SKEW and refused.sequence == 1


def test_clock_skew_tolerance_is_configurable(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    signed = leksand.publish()
    refused = refusal(signed, keys, state, now_ms=T0_MS - 2_000, max_clock_skew_ms=1_000)
    assert refused.reason is Reason.CLOCK_SKEW
    assert verify(signed, keys, state, now_ms=T0_MS - 2_000, max_clock_skew_ms=2_000)[0] is (
        Verdict.ACCEPTED
    )


def test_the_default_clock_is_the_wall_clock(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    assert verify_entry(leksand.publish(record_id="past"), keys, state)[0] is Verdict.ACCEPTED
    far_future = leksand.build(factories.make_use_case(), timestamp_ms=2**62)
    with pytest.raises(EntryRefused) as info:
        verify_entry(far_future, keys, state)
    assert info.value.reason is Reason.CLOCK_SKEW


def test_timestamps_may_not_go_backwards_within_a_feed(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    accept(leksand.publish(record_id="a"), keys, state)
    backdated = leksand.build(factories.make_use_case(record_id="b"), timestamp_ms=T0_MS - 1)
    refused = refusal(backdated, keys, state)
    assert refused.reason is Reason.CLOCK_SKEW and refused.sequence == 2
    same_ms = leksand.build(factories.make_use_case(record_id="b"), timestamp_ms=T0_MS)
    assert verify(same_ms, keys, state)[0] is Verdict.ACCEPTED


def test_backdating_under_a_revoked_key_is_bounded_by_the_feed(leksand: FeedWriter) -> None:
    """A thief with the old key cannot date entries before the feed's newest one."""
    keys, state = receiver(leksand)
    accept(leksand.publish(record_id="a"), keys, state)
    accept(leksand.publish(record_id="b"), keys, state)
    keys.add(leksand.trusted_key(revoked_at_ms=T0_MS + 10_000))
    stolen = leksand.build(factories.make_use_case(record_id="evil"), timestamp_ms=T0_MS + 500)
    assert refusal(stolen, keys, state).reason is Reason.CLOCK_SKEW


def test_unknown_head_timestamp_skips_the_monotonic_check(leksand: FeedWriter) -> None:
    class Holder:
        """A receiver state that does not know its head's timestamp."""

        def head(self, origin: str) -> FeedHead | None:
            return FeedHead(origin, 1, leksand.head_hash)

        def entry_hash(self, origin: str, sequence: int) -> bytes | None:
            return leksand.head_hash

        def record_version(self, origin: str, record_id: str) -> int | None:
            return None

        def stand_in(self, origin: str, sequence: int) -> StandIn | None:
            return None

    leksand.publish(record_id="a")
    keys = leksand.keyring()
    early = leksand.build(factories.make_use_case(record_id="b"), timestamp_ms=1)
    assert verify_entry(early, keys, Holder(), now_ms=FIXED_NOW_MS)[0] is Verdict.ACCEPTED


def test_a_duplicate_older_than_the_head_is_still_a_duplicate(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    for i in range(3):
        accept(leksand.publish(record_id=f"r{i}"), keys, state)
    assert verify(leksand.entries[0], keys, state)[0] is Verdict.DUPLICATE


# -- order of the checks: nothing unsigned is looked at -------------------------------------


def test_an_unsigned_undecodable_entry_is_a_bad_signature_not_malformed(
    leksand: FeedWriter,
) -> None:
    keys, state = receiver(leksand)
    signed = feed_pb2.SignedEntry(
        entry=b"\xff\xff\xff garbage", signature=bytes(64), key_id=leksand.key.key_id
    )
    assert refusal(signed, keys, state).reason is Reason.BAD_SIGNATURE


def test_an_invalid_record_with_a_bad_signature_is_a_bad_signature(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    signed = leksand.build(records_pb2.Record())
    signed.signature = bytes(64)
    assert refusal(signed, keys, state).reason is Reason.BAD_SIGNATURE


def test_an_unknown_key_is_reported_before_anything_in_the_entry(leksand: FeedWriter) -> None:
    keys, state = receiver()
    signed = feed_pb2.SignedEntry(entry=b"\x00", signature=b"", key_id="nope")
    assert refusal(signed, keys, state).reason is Reason.UNKNOWN_KEY


def test_signed_but_malformed_entry_bytes_are_malformed(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    garbage = b"\x0a\xff\xff"
    signed = sign_entry(leksand.key, garbage)
    assert refusal(signed, keys, state).reason is Reason.MALFORMED


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sequence", 0),
        ("previous_hash", b"\x00" * 31),
        ("timestamp_ms", 0),
        ("timestamp_ms", -5),
        ("origin", "9999"),
        ("origin", ""),
    ],
)
def test_signed_entries_with_a_bad_structure_are_malformed(
    leksand: FeedWriter, field: str, value: object
) -> None:
    keys, state = receiver(leksand)
    entry = feed_pb2.Entry(
        origin=factories.LEKSAND,
        sequence=1,
        previous_hash=GENESIS_HASH,
        timestamp_ms=T0_MS,
        record=factories.make_use_case(),
    )
    setattr(entry, field, value)
    signed = sign_entry(leksand.key, entry.SerializeToString())
    assert refusal(signed, keys, state).reason is Reason.MALFORMED


def test_a_signed_entry_without_a_record_is_malformed(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    entry_bytes = feed_pb2.Entry(
        origin=factories.LEKSAND, sequence=1, previous_hash=GENESIS_HASH, timestamp_ms=T0_MS
    ).SerializeToString()
    assert refusal(sign_entry(leksand.key, entry_bytes), keys, state).reason is Reason.MALFORMED


def test_schema_is_checked_after_keys_and_before_the_chain(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    leksand.publish()
    invalid_and_gapped = leksand.build(records_pb2.Record(), sequence=5)
    assert refusal(invalid_and_gapped, keys, state).reason is Reason.SCHEMA_INVALID


def test_clock_skew_is_checked_before_the_schema(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    signed = leksand.build(records_pb2.Record(), timestamp_ms=FIXED_NOW_MS + 10**9)
    assert refusal(signed, keys, state).reason is Reason.CLOCK_SKEW


def test_revocation_is_checked_before_clock_skew(leksand: FeedWriter) -> None:
    keys = KeyRing([leksand.trusted_key(revoked_at_ms=T0_MS)])
    signed = leksand.build(factories.make_use_case(), timestamp_ms=FIXED_NOW_MS + 10**9)
    assert refusal(signed, keys, MemoryFeedState()).reason is Reason.KEY_REVOKED


def test_the_chain_is_checked_before_the_version(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    accept(leksand.append(factories.make_use_case(version=3)), keys, state)
    stale_and_gapped = leksand.build(factories.make_use_case(version=1), sequence=9)
    assert refusal(stale_and_gapped, keys, state).reason is Reason.SEQUENCE_GAP


# -- sizes ------------------------------------------------------------------------------------


def test_oversize_entries_are_refused_before_decoding(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    huge = feed_pb2.SignedEntry(
        entry=b"x" * MAX_SIGNED_ENTRY_BYTES, signature=bytes(64), key_id=leksand.key.key_id
    )
    assert refusal(huge, keys, state).reason is Reason.TOO_LARGE
    assert refusal(factories.serialize(huge), keys, state).reason is Reason.TOO_LARGE
    junk = b"\xff" * (MAX_SIGNED_ENTRY_BYTES + 1)  # not even protobuf: size comes first
    assert refusal(junk, keys, state).reason is Reason.TOO_LARGE


def test_the_size_limit_is_configurable(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    signed = leksand.publish()
    size = len(factories.serialize(signed))
    assert verify(signed, keys, state, max_bytes=size)[0] is Verdict.ACCEPTED
    assert refusal(signed, keys, state, max_bytes=size - 1).reason is Reason.TOO_LARGE


def test_a_signed_record_that_is_too_big_for_the_schema(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    record = factories.make_use_case(description="å" * 20_001)
    refused = refusal(leksand.append(record), keys, state)
    assert refused.reason is Reason.SCHEMA_INVALID
    assert "use_case.description" in refused.detail


# -- redacted entries and batches -----------------------------------------------------------


def _redacted(signed: feed_pb2.SignedEntry, origin: str, sequence: int) -> feed_pb2.RedactedEntry:
    return feed_pb2.RedactedEntry(
        origin=origin, sequence=sequence, entry_hash=entry_hash(signed.entry)
    )


def test_a_redacted_entry_keeps_the_chain_verifiable(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    accept(leksand.publish(record_id="a"), keys, state)
    draft = leksand.publish(record_id="draft", visibility=records_pb2.VISIBILITY_DRAFT)
    stand_in = _redacted(draft, factories.LEKSAND, 2)
    assert verify_redacted(stand_in, state) is Verdict.ACCEPTED
    state.note_redacted(stand_in)
    assert verify_redacted(stand_in, state) is Verdict.DUPLICATE
    accept(leksand.publish(record_id="b"), keys, state)
    head = state.head(factories.LEKSAND)
    assert head is not None and head.sequence == 3


def test_a_redacted_head_keeps_the_previous_timestamp_as_lower_bound(
    leksand: FeedWriter,
) -> None:
    keys, state = receiver(leksand)
    accept(leksand.publish(record_id="a"), keys, state)
    draft = leksand.publish(record_id="draft", visibility=records_pb2.VISIBILITY_DRAFT)
    state.note_redacted(_redacted(draft, factories.LEKSAND, 2))
    head = state.head(factories.LEKSAND)
    assert head is not None and head.timestamp_ms == T0_MS
    backdated = leksand.build(factories.make_use_case(record_id="b"), timestamp_ms=T0_MS - 1)
    assert refusal(backdated, keys, state).reason is Reason.CLOCK_SKEW


def test_a_lying_redacted_hash_breaks_the_chain(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    accept(leksand.publish(record_id="a"), keys, state)
    leksand.publish(record_id="draft")
    state.note_redacted(feed_pb2.RedactedEntry(origin="2029", sequence=2, entry_hash=b"\1" * 32))
    assert refusal(leksand.publish(record_id="b"), keys, state).reason is Reason.FORK


@pytest.mark.parametrize(
    "item",
    [
        feed_pb2.RedactedEntry(origin="2029", sequence=1, entry_hash=b"short"),
        feed_pb2.RedactedEntry(origin="9999", sequence=1, entry_hash=bytes(32)),
        feed_pb2.RedactedEntry(origin="2029", sequence=0, entry_hash=bytes(32)),
    ],
)
def test_malformed_redacted_entries(item: feed_pb2.RedactedEntry) -> None:
    with pytest.raises(EntryRefused) as info:
        verify_redacted(item, MemoryFeedState())
    assert info.value.reason is Reason.MALFORMED


def test_a_redacted_entry_at_a_gap_is_refused() -> None:
    item = feed_pb2.RedactedEntry(origin="2029", sequence=3, entry_hash=bytes(32))
    with pytest.raises(EntryRefused) as info:
        verify_redacted(item, MemoryFeedState())
    assert info.value.reason is Reason.SEQUENCE_GAP


def test_the_signed_entry_behind_a_stand_in_fills_it_once(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    accept(leksand.publish(record_id="a"), keys, state)
    hidden = leksand.publish(record_id="b")
    state.note_redacted(_redacted(hidden, factories.LEKSAND, 2))
    accept(leksand.publish(record_id="c"), keys, state)

    verdict, parsed = verify(hidden, keys, state)
    assert verdict is Verdict.FILLS_STAND_IN
    state.note_fill(parsed)
    assert verify(hidden, keys, state)[0] is Verdict.DUPLICATE
    assert state.record_version(factories.LEKSAND, "b") == 1
    # A stand-in offered again is a duplicate, before and after the fill.
    assert verify_redacted(_redacted(hidden, factories.LEKSAND, 2), state) is Verdict.DUPLICATE


def test_a_fill_does_not_lower_a_records_version(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    v1 = leksand.publish(record_id="uc")
    state.note_redacted(_redacted(v1, factories.LEKSAND, 1))
    accept(leksand.publish(record_id="uc"), keys, state)  # version 2
    verdict, parsed = verify(v1, keys, state)
    assert verdict is Verdict.FILLS_STAND_IN  # no version check: its place is fixed
    state.note_fill(parsed)
    assert state.record_version(factories.LEKSAND, "uc") == 2


def test_filling_the_head_raises_the_newest_timestamp(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    accept(leksand.publish(record_id="a"), keys, state)
    hidden = leksand.append(factories.make_use_case(record_id="b"), timestamp_ms=T0_MS + 9_000)
    state.note_redacted(_redacted(hidden, factories.LEKSAND, 2))
    verdict, parsed = verify(hidden, keys, state)
    assert verdict is Verdict.FILLS_STAND_IN
    state.note_fill(parsed)
    head = state.head(factories.LEKSAND)
    assert head is not None and (head.sequence, head.timestamp_ms) == (2, T0_MS + 9_000)


def test_a_different_entry_at_a_stand_ins_sequence_is_a_fork(leksand: FeedWriter) -> None:
    keys, state = receiver(leksand)
    twin = leksand.fork()
    state.note_redacted(_redacted(leksand.publish(record_id="a"), factories.LEKSAND, 1))
    assert refusal(twin.publish(record_id="other"), keys, state).reason is Reason.FORK


_FILL = StandIn("2029", 5, b"\5" * 32, b"\4" * 32, not_before_ms=100, not_after_ms=200)


@pytest.mark.parametrize(
    ("previous_hash", "timestamp_ms", "reason"),
    [
        (b"\4" * 32, 100, None),
        (b"\4" * 32, 200, None),
        (b"\4" * 32, None, None),
        (b"\3" * 32, 150, Reason.FORK),
        (b"\4" * 32, 99, Reason.CLOCK_SKEW),
        (b"\4" * 32, 201, Reason.CLOCK_SKEW),
    ],
)
def test_check_fill(previous_hash: bytes, timestamp_ms: int | None, reason: Reason | None) -> None:
    if reason is None:
        check_fill(_FILL, previous_hash=previous_hash, timestamp_ms=timestamp_ms)
        return
    with pytest.raises(EntryRefused) as info:
        check_fill(_FILL, previous_hash=previous_hash, timestamp_ms=timestamp_ms)
    assert (info.value.reason, info.value.origin, info.value.sequence) == (reason, "2029", 5)


def test_check_fill_without_bounds_takes_any_date() -> None:
    open_ended = StandIn("2029", 1, b"\1" * 32, GENESIS_HASH)
    check_fill(open_ended, previous_hash=GENESIS_HASH, timestamp_ms=0)


def test_batch_state_bounds_a_stand_ins_date_by_the_batchs_signed_entries(
    leksand: FeedWriter,
) -> None:
    keys, base = receiver(leksand)
    accept(leksand.publish(record_id="a"), keys, base)  # T0
    hidden = [leksand.publish(record_id=f"h{i}") for i in range(2)]  # T0+1 s, T0+2 s
    after = leksand.publish(record_id="c")  # T0+3 s
    batch = BatchState(base)
    for item in hidden:
        batch.note_redacted(_redacted(item, factories.LEKSAND, parse_signed(item).sequence))
    verdict, parsed = verify(after, keys, batch)  # type: ignore[arg-type]
    assert verdict is Verdict.ACCEPTED
    batch.note_entry(parsed)
    found = batch.stand_in(factories.LEKSAND, 3)
    assert found is not None
    assert (found.previous_hash, found.not_before_ms, found.not_after_ms) == (
        entry_hash(hidden[0].entry),
        T0_MS,
        T0_MS + 3_000,
    )
    verdict, parsed = verify(hidden[0], keys, batch)  # type: ignore[arg-type]
    assert verdict is Verdict.FILLS_STAND_IN
    batch.note_fill(parsed)
    assert batch.stand_in(factories.LEKSAND, 2) is None
    later = batch.stand_in(factories.LEKSAND, 3)
    assert later is not None and later.not_before_ms == T0_MS + 1_000


def test_batch_state_sees_the_batch_over_its_base(leksand: FeedWriter) -> None:
    keys, base = receiver(leksand)
    accept(leksand.publish(record_id="a"), keys, base)
    batch = BatchState(base)
    for i in range(3):
        verdict, parsed = verify(leksand.publish(record_id=f"b{i}"), keys, batch)  # type: ignore[arg-type]
        assert verdict is Verdict.ACCEPTED
        batch.note_entry(parsed)
    head = batch.head(factories.LEKSAND)
    assert head is not None and head.sequence == 4
    assert base.head(factories.LEKSAND).sequence == 1  # type: ignore[union-attr]
    assert batch.record_version(factories.LEKSAND, "a") == 1
    assert batch.entry_hash(factories.LEKSAND, 1) == entry_hash(leksand.entries[0].entry)


def test_hub_can_publish_recommendations_and_kommuner_cannot(
    council: FeedWriter, leksand: FeedWriter
) -> None:
    keys, state = receiver(council, leksand)
    accept(council.publish("recommendation"), keys, state)
    refused = refusal(leksand.publish("recommendation"), keys, state)
    assert refused.reason is Reason.SCHEMA_INVALID and "council" in refused.detail


def test_entries_built_by_hand_match_the_writer() -> None:
    key = SigningKey.generate()
    record = factories.make_use_case()
    entry_bytes = build_entry(
        origin="2029", sequence=1, previous_hash=GENESIS_HASH, timestamp_ms=T0_MS, record=record
    )
    writer = FeedWriter("2029", key)
    assert writer.append(record).entry == entry_bytes
