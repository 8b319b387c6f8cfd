"""samverka.protocol.wire: a request's bytes checked against its limits before decoding."""

from __future__ import annotations

import time

import pytest
from google.protobuf.descriptor import Descriptor
from samverka.errors import RequestRefused
from samverka.protocol.wire import MAX_STORED_INT, WireLimits, check_request
from samverka.v1 import feed_pb2, feed_service_pb2, hub_service_pb2, records_pb2

PUBLISH = WireLimits(max_bytes=4 * 1024 * 1024, max_items=2000, max_fields=2000 * 8 + 64)
DEFAULT = WireLimits()


def refusal(raw: bytes, descriptor: Descriptor, limits: WireLimits = DEFAULT) -> str:
    with pytest.raises(RequestRefused) as caught:
        check_request(raw, descriptor, limits)
    return caught.value.reason


def test_every_request_a_client_sends_passes() -> None:
    signed = feed_pb2.SignedEntry(entry=b"x" * 300, signature=b"s" * 64, key_id="k" * 32)
    redacted = feed_pb2.RedactedEntry(origin="2029", sequence=7, entry_hash=b"h" * 32)
    entries = [feed_pb2.LogEntry(position=i, signed=signed) for i in range(1000)]
    entries += [feed_pb2.LogEntry(redacted=redacted) for _ in range(1000)]
    publish = hub_service_pb2.PublishRequest(entries=entries)
    check_request(publish.SerializeToString(), publish.DESCRIPTOR, PUBLISH)
    filters = feed_service_pb2.EntryFilter(
        origins=["2029", "1484"] * 145,
        kinds=[records_pb2.RECORD_KIND_USE_CASE] * 50,
        tags=["ai"] * 20,
        since_ms=1,
        until_ms=2,
    )
    requests = [
        feed_service_pb2.SubscribeRequest(
            after=feed_pb2.Cursor(position=MAX_STORED_INT), filter=filters, batch_size=500
        ),
        feed_service_pb2.ReadEntriesRequest(after=feed_pb2.Cursor(position=3), filter=filters),
        feed_service_pb2.GetFeedHeadsRequest(origins=["2029"] * 290),
        hub_service_pb2.GetDirectoryRequest(known_version=MAX_STORED_INT),
        hub_service_pb2.SearchRequest(query="ö" * 500, origins=["2029"], limit=50),
        hub_service_pb2.GetStatsRequest(),
    ]
    for request in requests:
        check_request(request.SerializeToString(), request.DESCRIPTOR, DEFAULT)


def test_two_million_empty_items_are_refused_at_the_limit_not_decoded() -> None:
    raw = b"\x0a\x00" * (2 * 1024 * 1024 - 8)  # PublishRequest.entries: 2M empty LogEntry
    started = time.perf_counter()
    assert refusal(raw, hub_service_pb2.PublishRequest.DESCRIPTOR, PUBLISH) == "too_many_items"
    assert time.perf_counter() - started < 0.1  # stops after 2,001 items
    assert refusal(raw, hub_service_pb2.PublishRequest.DESCRIPTOR) == "too_large"


def test_packed_items_are_counted_without_decoding() -> None:
    kinds = b"\x01" * 1001
    raw = b"\x12" + _varint(len(kinds)) + kinds  # SearchRequest.kinds, packed
    assert refusal(raw, hub_service_pb2.SearchRequest.DESCRIPTOR) == "too_many_items"
    ok = b"\x12" + _varint(1000) + b"\x01" * 1000
    check_request(ok, hub_service_pb2.SearchRequest.DESCRIPTOR, DEFAULT)


def test_repeated_singular_fields_spend_the_field_budget() -> None:
    raw = b"\x08\x01" * 30_000  # GetDirectoryRequest.known_version, 30,000 times
    assert refusal(raw, hub_service_pb2.GetDirectoryRequest.DESCRIPTOR) == "malformed"


@pytest.mark.parametrize("value", [2**63, 2**64 - 1])
def test_uint64_at_or_above_two_to_the_63_is_out_of_range(value: int) -> None:
    cases = [
        hub_service_pb2.GetDirectoryRequest(known_version=value),
        feed_service_pb2.ReadEntriesRequest(after=feed_pb2.Cursor(position=value)),
        feed_service_pb2.SubscribeRequest(after=feed_pb2.Cursor(position=value)),
        hub_service_pb2.PublishRequest(
            entries=[feed_pb2.LogEntry(redacted=feed_pb2.RedactedEntry(sequence=value))]
        ),
        hub_service_pb2.PublishRequest(entries=[feed_pb2.LogEntry(position=value)]),
    ]
    for request in cases:
        assert refusal(request.SerializeToString(), request.DESCRIPTOR, PUBLISH) == "out_of_range"


def test_uint32_past_32_bits_is_out_of_range_not_truncated() -> None:
    raw = b"\x28" + _varint(2**32)  # SearchRequest.limit
    assert refusal(raw, hub_service_pb2.SearchRequest.DESCRIPTOR) == "out_of_range"


@pytest.mark.parametrize(
    ("raw", "descriptor"),
    [
        (b"\xf8\x01\x01", hub_service_pb2.GetDirectoryRequest.DESCRIPTOR),  # field 31
        (b"\x0a\x03\xa0\x06\x01", hub_service_pb2.PublishRequest.DESCRIPTOR),  # in LogEntry
        (b"\x0a\x02\x38\x01", feed_service_pb2.SubscribeRequest.DESCRIPTOR),  # in Cursor
        (b"\x0a\x00", hub_service_pb2.GetStatsRequest.DESCRIPTOR),
        (b"\x0a\x00", feed_service_pb2.GetNodeInfoRequest.DESCRIPTOR),
    ],
)
def test_unknown_fields_in_unsigned_wrappers_are_malformed(
    raw: bytes, descriptor: Descriptor
) -> None:
    assert refusal(raw, descriptor, PUBLISH) == "malformed"


@pytest.mark.parametrize(
    "raw",
    [
        b"\x08",  # truncated varint
        b"\x08" + b"\xff" * 11,  # overlong varint
        b"\x09" + b"\x00" * 8,  # known_version as 64-bit
        b"\x0b\x0c",  # a group
        b"\x0a\x05\x01",  # length past the end
    ],
)
def test_broken_framing_is_malformed(raw: bytes) -> None:
    assert refusal(raw, hub_service_pb2.GetDirectoryRequest.DESCRIPTOR) == "malformed"


def test_nesting_is_bounded() -> None:
    shallow = WireLimits(max_depth=1)
    raw = feed_service_pb2.SubscribeRequest(after=feed_pb2.Cursor(position=1)).SerializeToString()
    check_request(raw, feed_service_pb2.SubscribeRequest.DESCRIPTOR, shallow)
    nested = hub_service_pb2.PublishRequest(
        entries=[feed_pb2.LogEntry(redacted=feed_pb2.RedactedEntry(sequence=1))]
    ).SerializeToString()
    assert refusal(nested, hub_service_pb2.PublishRequest.DESCRIPTOR, shallow) == "malformed"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
