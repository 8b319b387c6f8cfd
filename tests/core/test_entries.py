"""Envelopes and entries: sizes, decoding, unknown fields, structure."""

from __future__ import annotations

import factories
import pytest
from factories import FeedWriter
from samverka.errors import EntryRefused, Reason
from samverka.protocol.entries import (
    MAX_SIGNED_ENTRY_BYTES,
    decode_entry,
    has_unknown_fields,
    parse_envelope,
    parse_signed,
)
from samverka.protocol.signing import entry_hash
from samverka.v1 import feed_pb2, records_pb2


def reason_of(fn: object, *args: object, **kw: object) -> Reason:
    with pytest.raises(EntryRefused) as info:
        fn(*args, **kw)  # type: ignore[operator]
    return info.value.reason


def test_parse_signed_reads_back_what_was_signed(leksand: FeedWriter) -> None:
    signed = leksand.publish()
    parsed = parse_signed(factories.serialize(signed))
    assert parsed.signed == signed
    assert parsed.hash == entry_hash(signed.entry)
    assert parsed.record_id == "uc-1" and parsed.version == 1
    assert parsed.timestamp_ms == factories.T0_MS
    assert parsed.signed_bytes() == factories.serialize(signed)


def test_an_envelope_is_not_decoded_further(leksand: FeedWriter) -> None:
    envelope = parse_envelope(
        feed_pb2.SignedEntry(entry=b"\xff not protobuf", signature=b"s", key_id="k")
    )
    assert envelope.entry == b"\xff not protobuf"


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff",  # not a tag
        b"\x0a\x05ab",  # a length beyond the end
        b"\x1a\x02\xff\xfe",  # key id that is not UTF-8
        b"\x0a\x00",  # no entry bytes
        b"",  # nothing
        b"\x0a\x01x\xf8\x07\x01",  # an unknown field (127) nothing signs
        b"\xfb\x07" * 200 + b"\xfc\x07" * 200,  # groups nested 200 deep
    ],
)
def test_malformed_envelopes(raw: bytes) -> None:
    assert reason_of(parse_envelope, raw) is Reason.MALFORMED


def test_oversize_is_checked_on_bytes_and_on_messages() -> None:
    big = feed_pb2.SignedEntry(entry=b"x" * MAX_SIGNED_ENTRY_BYTES)
    assert reason_of(parse_envelope, big) is Reason.TOO_LARGE
    assert reason_of(parse_envelope, big.SerializeToString()) is Reason.TOO_LARGE
    assert reason_of(parse_envelope, b"\x00" * 11, max_bytes=10) is Reason.TOO_LARGE
    ok = feed_pb2.SignedEntry(entry=b"x" * (MAX_SIGNED_ENTRY_BYTES - 10))
    assert parse_envelope(ok) is ok


def _entry_bytes(**overrides: object) -> bytes:
    fields: dict[str, object] = {
        "origin": "2029",
        "sequence": 1,
        "previous_hash": bytes(32),
        "timestamp_ms": factories.T0_MS,
        "record": factories.make_use_case(),
    }
    fields.update(overrides)
    return feed_pb2.Entry(**fields).SerializeToString()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "entry_bytes",
    [
        _entry_bytes(sequence=0),
        _entry_bytes(previous_hash=b""),
        _entry_bytes(previous_hash=bytes(33)),
        _entry_bytes(timestamp_ms=0),
        _entry_bytes(origin="Leksand"),
        _entry_bytes(record=None),
        _entry_bytes() + b"\xb0\x06\x01",  # unknown Entry field 102
        b"\x0a\x02\xc3\x28",  # origin with invalid UTF-8
        b"\x2a" + b"\x80" * 11,  # a varint length that never ends
        b"\x2a\x64" + b"\x0a" * 3,  # a record cut short
    ],
)
def test_malformed_entries(entry_bytes: bytes) -> None:
    envelope = feed_pb2.SignedEntry(entry=entry_bytes, signature=bytes(64), key_id="k")
    assert reason_of(decode_entry, envelope) is Reason.MALFORMED


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _record_field(payload: bytes) -> bytes:
    """Entry field 5 (record), length-delimited, holding ``payload`` verbatim."""
    return b"\x2a" + _varint(len(payload)) + payload


def test_unknown_fields_inside_the_record_are_left_to_validation() -> None:
    record = factories.make_use_case().SerializeToString() + b"\x98\x06\x01"
    raw = _entry_bytes(record=None) + _record_field(record)
    parsed = decode_entry(feed_pb2.SignedEntry(entry=raw))
    assert has_unknown_fields(parsed.entry)
    assert not has_unknown_fields(feed_pb2.Entry.FromString(_entry_bytes()))


def test_deeply_nested_unknown_groups_inside_a_record_are_malformed() -> None:
    nested = b"\xfb\x07" * 150 + b"\xfc\x07" * 150
    raw = _entry_bytes(record=None) + _record_field(nested)
    envelope = feed_pb2.SignedEntry(entry=raw)
    assert reason_of(decode_entry, envelope) is Reason.MALFORMED


def test_a_record_with_a_huge_repeated_field_decodes_within_the_size_limit() -> None:
    record = factories.make_use_case()
    record.header.tags.extend(f"t{i}" for i in range(20_000))
    assert len(record.SerializeToString()) < MAX_SIGNED_ENTRY_BYTES
    parsed = decode_entry(feed_pb2.SignedEntry(entry=_entry_bytes(record=record)))
    assert len(parsed.record.header.tags) == 20_000  # validation then refuses it


def test_records_pb_default_values_are_not_sent() -> None:
    assert records_pb2.Record().SerializeToString() == b""
