"""Hypothesis mutations of valid signed entries: zero accepted mutants, zero crashes.

Every case starts from a signed entry the receiver would accept (or already holds),
mutates it once (a flipped byte, a truncation, a splice of two entries, swapped
fields) and asserts that verify_entry refuses it with the precise reason the
verification order promises. ``HYPOTHESIS_PROFILE=soak`` runs 20,000 cases per test.
"""

from __future__ import annotations

from dataclasses import dataclass

import factories
import pytest
from factories import FIXED_NOW_MS, FeedWriter
from hypothesis import given, settings
from hypothesis import strategies as st
from samverka.errors import EntryRefused, Reason
from samverka.protocol.kommuner import HUB_ORIGIN
from samverka.protocol.verify import KeyRing, MemoryFeedState, Verdict, verify_entry
from samverka.v1 import feed_pb2

#: Cases per mutation test: 8 tests x 150 = 1,200 in `make test`; the soak profile's
#: 20,000 per test when it is loaded.
EXAMPLES = max(150, settings().max_examples)


@dataclass(frozen=True)
class Case:
    """A valid signed entry and a receiver for which it is ACCEPTED (or DUPLICATE)."""

    signed: feed_pb2.SignedEntry
    keys: KeyRing
    state: MemoryFeedState
    expected: Verdict

    @property
    def raw(self) -> bytes:
        return factories.serialize(self.signed)


def _build_cases() -> list[Case]:
    leksand, tibro, council = FeedWriter("2029"), FeedWriter("1472"), FeedWriter(HUB_ORIGIN)
    keys = KeyRing(w.trusted_key() for w in (leksand, tibro, council))
    cases: list[Case] = []
    state = MemoryFeedState()
    for i, body in enumerate(("use_case", "lesson", "solution", "adoption", "use_case")):
        signed = leksand.publish(body, record_id=f"r{i}", tags=["äldreomsorg", "AI"])
        cases.append(Case(signed, keys, _copy(state), Verdict.ACCEPTED))
        _, parsed = verify_entry(signed, keys, state, now_ms=FIXED_NOW_MS)
        state.note_entry(parsed)
    # Entries the receiver already holds: a mutant must not pass as a duplicate.
    cases.append(Case(leksand.entries[0], keys, _copy(state), Verdict.DUPLICATE))
    cases.append(Case(leksand.entries[3], keys, _copy(state), Verdict.DUPLICATE))
    cases.append(Case(tibro.publish(origin="1472"), keys, MemoryFeedState(), Verdict.ACCEPTED))
    rec = council.publish("recommendation")
    cases.append(Case(rec, keys, MemoryFeedState(), Verdict.ACCEPTED))
    return cases


def _copy(state: MemoryFeedState) -> MemoryFeedState:
    twin = MemoryFeedState()
    twin._heads = dict(state._heads)
    twin._hashes = dict(state._hashes)
    twin._versions = dict(state._versions)
    return twin


CASES = _build_cases()
cases = st.sampled_from(CASES)


def verify(case: Case, signed: feed_pb2.SignedEntry | bytes) -> tuple[Verdict, object]:
    return verify_entry(signed, case.keys, case.state, now_ms=FIXED_NOW_MS)


def refused_reason(case: Case, signed: feed_pb2.SignedEntry | bytes) -> Reason:
    with pytest.raises(EntryRefused) as info:
        verify(case, signed)
    return info.value.reason


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def envelope(entry: bytes, signature: bytes, key_id: bytes) -> bytes:
    """A SignedEntry encoded by hand, so the key id can hold bytes that are not UTF-8."""
    out = b""
    for tag, value in ((0x0A, entry), (0x12, signature), (0x1A, key_id)):
        if value:
            out += bytes([tag]) + _varint(len(value)) + value
    return out


def flip(data: bytes, index: int, mask: int) -> bytes:
    i = index % len(data)
    return data[:i] + bytes([data[i] ^ mask]) + data[i + 1 :]


masks = st.integers(1, 255)
indices = st.integers(0, 10**6)


def test_every_case_is_valid_unmutated() -> None:
    for case in CASES:
        assert verify(case, case.signed)[0] is case.expected
        assert verify(case, case.raw)[0] is case.expected


@settings(max_examples=EXAMPLES)
@given(case=cases, index=indices, mask=masks)
def test_a_flipped_byte_in_the_entry_bytes_is_a_bad_signature(
    case: Case, index: int, mask: int
) -> None:
    mutant = feed_pb2.SignedEntry()
    mutant.CopyFrom(case.signed)
    mutant.entry = flip(case.signed.entry, index, mask)
    assert refused_reason(case, mutant) is Reason.BAD_SIGNATURE


@settings(max_examples=EXAMPLES)
@given(case=cases, index=indices, mask=masks)
def test_a_flipped_byte_in_the_signature_is_a_bad_signature(
    case: Case, index: int, mask: int
) -> None:
    mutant = feed_pb2.SignedEntry()
    mutant.CopyFrom(case.signed)
    mutant.signature = flip(case.signed.signature, index, mask)
    assert refused_reason(case, mutant) is Reason.BAD_SIGNATURE


@settings(max_examples=EXAMPLES)
@given(case=cases, index=indices, mask=masks)
def test_a_flipped_byte_in_the_key_id_is_an_unknown_key(case: Case, index: int, mask: int) -> None:
    key_id = flip(case.signed.key_id.encode(), index, mask)
    try:
        text = key_id.decode("utf-8")
    except UnicodeDecodeError:
        # Not UTF-8: protobuf refuses the string field, so the envelope is malformed.
        raw = envelope(case.signed.entry, case.signed.signature, key_id)
        assert refused_reason(case, raw) is Reason.MALFORMED
        return
    mutant = feed_pb2.SignedEntry()
    mutant.CopyFrom(case.signed)
    mutant.key_id = text
    expected = Reason.UNKNOWN_KEY if case.keys.get(text) is None else Reason.BAD_SIGNATURE
    assert refused_reason(case, mutant) is expected
    assert refused_reason(case, factories.serialize(mutant)) is expected


@settings(max_examples=EXAMPLES)
@given(case=cases, index=indices, mask=masks)
def test_a_flipped_byte_anywhere_in_the_envelope_is_refused(
    case: Case, index: int, mask: int
) -> None:
    raw = case.raw
    reason = refused_reason(case, flip(raw, index, mask))
    # Framing bytes make the envelope malformed (or drop a field, which then fails
    # as an unknown key or a bad signature); content bytes fail as above.
    assert reason in {Reason.MALFORMED, Reason.UNKNOWN_KEY, Reason.BAD_SIGNATURE}


@settings(max_examples=EXAMPLES)
@given(case=cases, data=st.data())
def test_truncations_are_refused(case: Case, data: st.DataObject) -> None:
    raw = case.raw
    cut = data.draw(st.integers(0, len(raw) - 1), label="cut")
    reason = refused_reason(case, raw[:cut])
    assert reason in {Reason.MALFORMED, Reason.UNKNOWN_KEY, Reason.BAD_SIGNATURE}
    # Truncating the signed bytes themselves, inside a well-formed envelope:
    inner = data.draw(st.integers(0, len(case.signed.entry) - 1), label="inner")
    truncated = feed_pb2.SignedEntry()
    truncated.CopyFrom(case.signed)
    truncated.entry = case.signed.entry[:inner]
    expected = Reason.MALFORMED if inner == 0 else Reason.BAD_SIGNATURE
    assert refused_reason(case, truncated) is expected


@settings(max_examples=EXAMPLES)
@given(a=cases, b=cases, data=st.data())
def test_splices_of_two_entries_are_refused(a: Case, b: Case, data: st.DataObject) -> None:
    """The head of one serialized entry joined to the tail of another."""
    i = data.draw(st.integers(0, len(a.raw)), label="i")
    j = data.draw(st.integers(0, len(b.raw)), label="j")
    spliced = a.raw[:i] + b.raw[j:]
    if spliced in (a.raw, b.raw):
        return  # the splice happened to rebuild an original
    for case in (a, b):
        try:
            verdict, _ = verify(case, spliced)
        except EntryRefused:
            continue
        # Accepted only if it decodes to exactly an original entry, signature and key.
        parsed = feed_pb2.SignedEntry.FromString(spliced)
        originals = {(c.signed.entry, c.signed.signature, c.signed.key_id) for c in CASES}
        assert (parsed.entry, parsed.signature, parsed.key_id) in originals, verdict
    # Splicing the signed entry bytes themselves is always a bad signature.
    k = data.draw(st.integers(0, len(a.signed.entry)), label="k")
    m = data.draw(st.integers(0, len(b.signed.entry)), label="m")
    inner = a.signed.entry[:k] + b.signed.entry[m:]
    if inner and inner != a.signed.entry:
        mutant = feed_pb2.SignedEntry()
        mutant.CopyFrom(a.signed)
        mutant.entry = inner
        assert refused_reason(a, mutant) is Reason.BAD_SIGNATURE


@settings(max_examples=EXAMPLES)
@given(a=cases, b=cases, swap=st.sampled_from(["entry", "signature", "key_id", "fields"]))
def test_field_swaps_are_refused(a: Case, b: Case, swap: str) -> None:
    """A field taken from another valid entry, or two fields exchanged."""
    mutant = feed_pb2.SignedEntry()
    mutant.CopyFrom(a.signed)
    if swap == "fields":
        mutant.entry, mutant.signature = a.signed.signature, a.signed.entry
    else:
        setattr(mutant, swap, getattr(b.signed, swap))
    if mutant == a.signed or mutant == b.signed:
        return  # same field in both (e.g. one writer's key id): nothing was mutated
    assert refused_reason(a, mutant) is Reason.BAD_SIGNATURE


@settings(max_examples=EXAMPLES)
@given(case=cases, extra=st.binary(min_size=1, max_size=40))
def test_bytes_appended_to_the_envelope_are_refused(case: Case, extra: bytes) -> None:
    """Trailing bytes either fail to parse or add a field nothing signs."""
    raw = case.raw + extra
    try:
        parsed = feed_pb2.SignedEntry.FromString(raw)
    except Exception:
        parsed = None
    if parsed is not None and parsed.SerializeToString(deterministic=True) == case.raw:
        # The extra bytes re-set a known field to the same value: a harmless re-encoding.
        assert verify(case, raw)[0] is case.expected
        return
    assert refused_reason(case, raw) in {
        Reason.MALFORMED,
        Reason.UNKNOWN_KEY,
        Reason.BAD_SIGNATURE,
    }
