"""Attacks on the hub's way in (HubService.Publish) over mutual TLS, against a real hub.

Each test sends what an attacker holding a member certificate can send and asserts
the precise gRPC status and ErrorInfo reason (origin and sequence where the entry
names them) and that the hub's store did not change (log position and every feed
head, read from its database before and after). The pure verification rules behind
these answers are tested in tests/core (test_verify.py, test_entries.py,
test_mutations.py); the refusals already shown over the network elsewhere are not
repeated here (docs/SECURITY.md maps each to its test):

- a flipped signature byte, an unknown key, a sequence gap:
  tests/hub/test_aggregation_e2e.py::test_refusals_are_answered_precisely_and_counted_by_reason
- pushing held entries again (replay of a whole feed):
  tests/hub/test_aggregation_e2e.py::test_pushing_again_changes_nothing
- Publish on the public port (UNAUTHENTICATED):
  tests/hub/test_aggregation_e2e.py::test_the_public_port_never_sends_a_members_record
- no client certificate, a certificate from another CA:
  tests/hub/test_membership_e2e.py::test_member_port_needs_a_member_certificate
"""

from __future__ import annotations

import datetime as dt
import time

import factories
import grpc
import pytest
from arena import (
    FALUN,
    GAGNEF,
    LEKSAND,
    RATTVIK,
    TIBRO,
    Arena,
    publish_raw,
    request_bytes,
    revoke,
    run,
)
from samverka.protocol.entries import build_entry, sign_entry
from samverka.protocol.signing import GENESIS_HASH, SigningKey, entry_hash
from samverka.transport.client import ClientTls, open_channel
from samverka.transport.pki import CertKeyPair, create_ca, issue_certificate
from samverka.v1 import feed_pb2, feed_service_pb2, hub_service_pb2, records_pb2
from samverka_hub.folder import CA_NAME
from soakresults import record

INVALID = grpc.StatusCode.INVALID_ARGUMENT
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


def use_case(origin: str, record_id: str, **fields: object) -> records_pb2.Record:
    """A use case of ``origin`` (version 0: the writer gives it the next version)."""
    return factories.make_record(
        "use_case", record_id=record_id, origin=origin, version=0, **fields
    )


def signed_bytes(key: SigningKey, entry: bytes) -> feed_pb2.SignedEntry:
    """Any bytes, correctly signed by ``key``: what a member can make of its own key."""
    return sign_entry(key, entry)


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field_bytes(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field, encoded by hand."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def nested_groups(depth: int, number: int = 99) -> bytes:
    """An unknown group field nested ``depth`` deep (the decoder recurses into groups)."""
    return varint(number << 3 | 3) * depth + varint(number << 3 | 4) * depth


# -- who signs ----------------------------------------------------------------------------


def test_forged_origin_is_refused(hub_arena: Arena) -> None:
    """Leksand's key signs an entry that claims to be Tibro's next one."""
    tibro = hub_arena.writer(TIBRO)
    forged = tibro.build(
        use_case(TIBRO, "forged-by-leksand", title="Tibro säger (inte)"),
        key=hub_arena.members[LEKSAND].key,
    )
    hub_arena.attack(
        "forged origin",
        LEKSAND,
        [forged],
        code=INVALID,
        reason="key_not_of_origin",
        origin=TIBRO,
        sequence=tibro.sequence + 1,
    )


def test_tampered_entry_bytes_and_key_id_are_refused(hub_arena: Arena) -> None:
    leksand = hub_arena.writer(LEKSAND)
    good = leksand.build(use_case(LEKSAND, "tampered", title="Ett ärligt fall"))
    sequence = leksand.sequence + 1

    altered = feed_pb2.SignedEntry()
    altered.CopyFrom(good)
    altered.entry = bytes(good.entry).replace("ärligt".encode(), "ärligT".encode())
    assert altered.entry != good.entry
    hub_arena.attack(
        "tampered entry bytes", GAGNEF, [altered],
        code=INVALID, reason="bad_signature", origin=LEKSAND, sequence=sequence,
    )  # fmt: skip

    # Another member's key id over Leksand's signature: the signature must verify with
    # the key the id names.
    other_id = feed_pb2.SignedEntry()
    other_id.CopyFrom(good)
    other_id.key_id = hub_arena.members[TIBRO].key.key_id
    hub_arena.attack(
        "tampered key id", GAGNEF, [other_id],
        code=INVALID, reason="bad_signature", origin=LEKSAND, sequence=sequence,
    )  # fmt: skip

    # The untampered entry goes through afterwards: nothing above blocked the feed.
    assert hub_arena.publish(LEKSAND, good).accepted == 1


def test_truncated_entries_are_refused(hub_arena: Arena) -> None:
    leksand = hub_arena.writer(LEKSAND)
    good = leksand.build(use_case(LEKSAND, "truncated"))
    half = feed_pb2.SignedEntry()
    half.CopyFrom(good)
    half.entry = good.entry[: len(good.entry) // 2]
    # (Cut bytes do not decode, so the refusal cannot name what they claim.)
    hub_arena.attack("truncated entry bytes", LEKSAND, [half], code=INVALID, reason="bad_signature")
    empty = feed_pb2.SignedEntry(signature=good.signature, key_id=good.key_id)
    hub_arena.attack("empty entry bytes", LEKSAND, [empty], code=INVALID, reason="malformed")
    raw = request_bytes(good)
    for cut in (len(raw) - 1, len(raw) // 2, 3):
        hub_arena.attack(
            f"truncated request ({cut} of {len(raw)} bytes)",
            LEKSAND,
            raw[:cut],
            code=INVALID,
            reason="malformed",
        )


# -- what is signed -------------------------------------------------------------------------


def test_malformed_protobuf_is_refused_before_any_handler(hub_arena: Arena) -> None:
    hub_arena.attack("random bytes as a request", LEKSAND, b"\xff\xfe\xfd\x00\x01",
                     code=INVALID, reason="malformed")  # fmt: skip
    # A well-formed request whose SignedEntry carries a field nothing signs.
    good = hub_arena.writer(LEKSAND).build(use_case(LEKSAND, "unknown-field"))
    envelope = good.SerializeToString() + field_bytes(9, b"smuggled")
    raw = field_bytes(1, field_bytes(2, envelope))  # PublishRequest.entries[0].signed
    assert hub_service_pb2.PublishRequest.FromString(raw).entries[0].signed.entry == good.entry
    hub_arena.attack("unknown field in the envelope", LEKSAND, raw,
                     code=INVALID, reason="malformed")  # fmt: skip
    # A member signs bytes that are not an Entry at all: the signature verifies, the
    # decoding that follows refuses it.
    junk = signed_bytes(hub_arena.members[LEKSAND].key, b"\x08\x96\x01 not an entry \xff")
    hub_arena.attack("signed junk", LEKSAND, [junk], code=INVALID, reason="malformed")
    # The same decoding refusal on FeedService (every method shares the interceptor).

    async def heads() -> grpc.StatusCode:
        channel = open_channel(hub_arena.hub.member, hub_arena.members[LEKSAND].tls())
        method = channel.unary_unary(
            "/samverka.v1.FeedService/GetFeedHeads",
            request_serializer=lambda raw: raw,
            response_deserializer=feed_service_pb2.GetFeedHeadsResponse.FromString,
        )
        try:
            await method(field_bytes(1, b"\xc3\x28"), timeout=10)  # origins[0]: not UTF-8
        except grpc.aio.AioRpcError as err:
            return err.code()
        finally:
            await channel.close()
        raise AssertionError("GetFeedHeads answered a request that does not decode")

    assert run(heads()) is INVALID


def test_invalid_utf8_is_refused(hub_arena: Arena) -> None:
    leksand = hub_arena.writer(LEKSAND)
    # A correctly signed entry whose title is not UTF-8 (same length, so the framing holds).
    entry = build_entry(
        origin=LEKSAND,
        sequence=leksand.sequence + 1,
        previous_hash=leksand.head_hash,
        timestamp_ms=leksand.next_timestamp_ms,
        record=factories.make_record("use_case", record_id="utf8", origin=LEKSAND, title="XXXX"),
    )
    bad = entry.replace(b"XXXX", b"\xc3\x28\xff\xfe")
    assert bad != entry
    hub_arena.attack(
        "invalid UTF-8 in a signed record",
        LEKSAND,
        [signed_bytes(hub_arena.members[LEKSAND].key, bad)],
        code=INVALID,
        reason="malformed",
    )
    # Invalid UTF-8 in the request itself (a stand-in's origin).
    stand_in = field_bytes(1, b"\xff\xfe") + b"\x10\x01" + field_bytes(3, bytes(32))
    raw = field_bytes(1, field_bytes(3, stand_in))  # entries[0].redacted
    hub_arena.attack("invalid UTF-8 in the request", LEKSAND, raw, code=INVALID, reason="malformed")


# -- how much --------------------------------------------------------------------------------


def test_oversize_messages_entries_and_batches_are_refused(hub_arena: Arena) -> None:
    key = hub_arena.members[LEKSAND].key
    # Over the server's 4 MiB message limit: gRPC refuses it before it is decoded.
    huge = signed_bytes(key, b"\x00" * (4 * 1024 * 1024 + 1))
    hub_arena.attack(
        "message over the size limit", LEKSAND, [huge],
        code=grpc.StatusCode.RESOURCE_EXHAUSTED, reason="",
    )  # fmt: skip
    # One entry over 256 KiB in a message under the limit: refused before its signature
    # is even checked.
    big = signed_bytes(key, b"\x00" * (256 * 1024 + 1))
    hub_arena.attack("entry over the size limit", LEKSAND, [big], code=INVALID, reason="too_large")
    # More entries than one call may carry (2,000): refused before any is verified.
    stand_in = feed_pb2.LogEntry(
        redacted=feed_pb2.RedactedEntry(origin=LEKSAND, sequence=1, entry_hash=bytes(32))
    )
    hub_arena.attack(
        "2,001 entries in one call", LEKSAND, [stand_in] * 2001,
        code=INVALID, reason="too_many_items",
    )  # fmt: skip


def test_huge_and_deeply_nested_fields_are_refused(hub_arena: Arena) -> None:
    leksand = hub_arena.writer(LEKSAND)
    sequence = leksand.sequence + 1
    many_tags = leksand.build(use_case(LEKSAND, "tags", tags=[f"t{i}" for i in range(20_000)]))
    assert many_tags.ByteSize() < 256 * 1024
    hub_arena.attack(
        "20,000 tags in a signed record", LEKSAND, [many_tags],
        code=INVALID, reason="schema_invalid", origin=LEKSAND, sequence=sequence,
    )  # fmt: skip
    long_title = leksand.build(use_case(LEKSAND, "long", title="Å" * 100_000))
    hub_arena.attack(
        "a 100,000-character title", LEKSAND, [long_title],
        code=INVALID, reason="schema_invalid", origin=LEKSAND, sequence=sequence,
    )  # fmt: skip
    # A signed record nested deeper than protobuf decodes (unknown groups, 200 deep).
    record = factories.make_record("use_case", record_id="deep", origin=LEKSAND)
    record_bytes = record.SerializeToString() + nested_groups(200)
    entry = (
        b"\x0a" + varint(4) + LEKSAND.encode()
        + b"\x10" + varint(sequence)
        + field_bytes(3, leksand.head_hash)
        + b"\x20" + varint(leksand.next_timestamp_ms)
        + field_bytes(5, record_bytes)
    )  # fmt: skip
    hub_arena.attack(
        "a signed record nested 200 deep",
        LEKSAND,
        [signed_bytes(hub_arena.members[LEKSAND].key, entry)],
        code=INVALID,
        reason="malformed",
    )
    # The request itself nested past the decoder's limit.
    raw = field_bytes(1, field_bytes(2, nested_groups(300)))
    hub_arena.attack("a request nested 300 deep", LEKSAND, raw, code=INVALID, reason="malformed")


# -- where in the feed ------------------------------------------------------------------------


def test_replay_rollback_and_fork_are_refused(hub_arena: Arena) -> None:
    leksand = hub_arena.writer(LEKSAND)
    v1 = leksand.publish(record_id="rollback", title="Version 1")
    v2 = leksand.publish(record_id="rollback", title="Version 2")
    assert hub_arena.publish(LEKSAND, v1, v2).accepted == 2

    # Replay: the hub holds the entries; sending them again (by anyone) changes nothing.
    before = hub_arena.state()
    replay = hub_arena.publish(GAGNEF, v1)
    assert (replay.ok, replay.accepted, replay.duplicates) == (True, 0, 1)
    assert hub_arena.state() == before

    # A record version rolled back: correctly signed and chained, version 1 again.
    old = leksand.build(
        factories.make_record(
            "use_case", record_id="rollback", origin=LEKSAND, version=1, title="Version 1 igen"
        )
    )
    hub_arena.attack(
        "record version rolled back", LEKSAND, [old], code=PRECONDITION,
        reason="version_not_newer", origin=LEKSAND, sequence=leksand.sequence + 1,
    )  # fmt: skip

    # A fork: a different entry at a sequence the hub holds ...
    rewrite = leksand.build(use_case(LEKSAND, "rewritten"), sequence=leksand.sequence,
                            previous_hash=entry_hash(v1.entry))  # fmt: skip
    hub_arena.attack(
        "fork at a held sequence", LEKSAND, [rewrite],
        code=PRECONDITION, reason="fork", origin=LEKSAND, sequence=leksand.sequence,
    )  # fmt: skip
    # ... and a next entry that does not chain from the hub's head.
    detached = leksand.build(use_case(LEKSAND, "detached"), previous_hash=GENESIS_HASH)
    hub_arena.attack(
        "fork by previous hash", LEKSAND, [detached],
        code=PRECONDITION, reason="fork", origin=LEKSAND, sequence=leksand.sequence + 1,
    )  # fmt: skip


def test_a_false_stand_in_for_another_origin_is_not_stored(hub_arena: Arena) -> None:
    """A member may not block another origin's next sequence with a stand-in it made up,
    not even followed by an entry of that origin the hub holds already (an entry before
    the stand-in vouches for nothing)."""
    held = hub_arena.writer(TIBRO).publish(record_id="before-fake")
    assert hub_arena.publish(TIBRO, held).accepted == 1
    tibro_next = hub_arena.state().head(TIBRO) + 1
    fake = feed_pb2.LogEntry(
        redacted=feed_pb2.RedactedEntry(origin=TIBRO, sequence=tibro_next, entry_hash=b"\x01" * 32)
    )
    before = hub_arena.state()
    for items in ([fake], [fake, held]):
        outcome = hub_arena.publish(GAGNEF, *items)
        assert (outcome.ok, outcome.accepted) == (True, 0), items
        assert hub_arena.state() == before
    tibro = hub_arena.writer(TIBRO)
    assert hub_arena.publish(TIBRO, tibro.publish(record_id="after-fake")).accepted == 1


# -- keys that ended ---------------------------------------------------------------------------


def test_revoked_member_and_key(hub_arena: Arena) -> None:
    """After revocation at R: the member's calls are refused; entries its key signs dated
    from R on are refused whoever relays them; backdating is bounded by its feed's
    newest timestamp (an origin's timestamps never go backwards)."""
    rattvik = hub_arena.writer(RATTVIK)
    first = rattvik.publish(record_id="before", title="Före återkallelsen")
    assert hub_arena.publish(RATTVIK, first).accepted == 1

    revoked_at = revoke(hub_arena.hub.dir, RATTVIK)
    # The running hub picks the new directory up within [directory] poll_seconds (0.1 s).
    deadline = time.monotonic() + 15
    while True:
        outcome = hub_arena.publish_raw(RATTVIK, b"")
        if outcome.code is grpc.StatusCode.PERMISSION_DENIED:
            break
        assert time.monotonic() < deadline, f"the hub kept serving a revoked member: {outcome}"
        time.sleep(0.05)
    assert outcome.reason == "member_revoked"
    record("attack", "revoked member calls", refused=True, code=outcome.code.name,
           reason=outcome.reason)  # fmt: skip

    # The stolen key keeps signing; Gagnef relays. Dated after the revocation: refused.
    late = rattvik.build(use_case(RATTVIK, "after"), timestamp_ms=revoked_at + 1)
    hub_arena.attack(
        "entry signed by a revoked key", GAGNEF, [late],
        code=INVALID, reason="key_revoked", origin=RATTVIK, sequence=rattvik.sequence + 1,
    )  # fmt: skip
    # Dated before the feed's newest entry: refused (timestamps never go backwards).
    older = rattvik.build(use_case(RATTVIK, "backdated"), timestamp_ms=first_ts(first) - 1)
    hub_arena.attack(
        "backdated before the feed's newest entry", GAGNEF, [older],
        code=INVALID, reason="clock_skew", origin=RATTVIK, sequence=rattvik.sequence + 1,
    )  # fmt: skip
    # The documented limit: dated between the feed's newest entry and R, it verifies.
    window = rattvik.build(use_case(RATTVIK, "in-window"), timestamp_ms=revoked_at - 1)
    assert hub_arena.publish(GAGNEF, window).accepted == 1


def first_ts(signed: feed_pb2.SignedEntry) -> int:
    return feed_pb2.Entry.FromString(signed.entry).timestamp_ms


# -- certificates ------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["expired", "not yet valid", "same-named impostor CA"])
def test_certificates_outside_their_validity_or_ca_are_refused(
    hub_arena: Arena, which: str
) -> None:
    """The TLS handshake fails, so nothing is served (gRPC reports UNAVAILABLE)."""
    hub_dir = hub_arena.hub.dir
    ca = CertKeyPair(
        (hub_dir / "tls" / "ca.pem").read_bytes(), (hub_dir / "ca" / "ca.key").read_bytes()
    )
    now = dt.datetime.now(dt.UTC)
    if which == "expired":  # issued by the hub's own CA, for a member, but a month old
        start = now - dt.timedelta(days=30)
        cert = issue_certificate(ca, kommunkod=FALUN, not_before=start, days=1)
    elif which == "not yet valid":
        start = now + dt.timedelta(days=1)
        cert = issue_certificate(ca, kommunkod=FALUN, not_before=start)
    else:  # a CA of the attacker's with the hub CA's name
        cert = issue_certificate(create_ca(CA_NAME), kommunkod=FALUN)
    tls = ClientTls(ca=ca.cert_pem, cert=cert.cert_pem, key=cert.key_pem)
    falun = hub_arena.writer(FALUN)
    before = hub_arena.state()
    outcome = publish_raw(hub_arena.hub.member, tls, request_bytes(falun.publish(record_id="x")))
    refused = outcome.code is grpc.StatusCode.UNAVAILABLE and hub_arena.state() == before
    record("attack", f"{which} client certificate", refused=refused, code=outcome.code.name,
           reason=outcome.reason)  # fmt: skip
    assert outcome.code is grpc.StatusCode.UNAVAILABLE, outcome
    assert hub_arena.state() == before
    assert f"Publish caller={FALUN}" not in hub_arena.hub.log()  # no call was served
