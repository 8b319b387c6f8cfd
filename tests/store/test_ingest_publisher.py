"""ingest.ingest and publisher.Publisher, working on the real store."""

from __future__ import annotations

from collections.abc import Callable

import factories
import pytest
from samverka.errors import Reason, SamverkaError
from samverka.protocol.entries import ParsedEntry
from samverka.protocol.signing import SigningKey
from samverka.protocol.verify import KeyRing, TrustedKey
from samverka.records.publisher import Publisher
from samverka.replication.ingest import ingest
from samverka.store.store import Store
from samverka.v1 import feed_pb2, records_pb2

NOW = factories.FIXED_NOW_MS


def tampered(entry: feed_pb2.SignedEntry) -> feed_pb2.SignedEntry:
    bad = feed_pb2.SignedEntry()
    bad.CopyFrom(entry)
    bad.entry = entry.entry[:-1] + bytes([entry.entry[-1] ^ 1])
    return bad


def test_ingest_stores_a_verified_batch_once(
    store: Store, leksand: factories.FeedWriter, tibro: factories.FeedWriter
) -> None:
    for i in range(3):
        leksand.publish(record_id=f"uc-{i}")
        tibro.publish(origin=factories.TIBRO, record_id=f"uc-{i}")
    keys = KeyRing([leksand.trusted_key(), tibro.trusted_key()])
    batch = [e for pair in zip(leksand.entries, tibro.entries, strict=True) for e in pair]
    report = ingest(store, keys, batch)
    assert report.ok and report.accepted == 6
    assert report.positions == [1, 2, 3, 4, 5, 6]
    again = ingest(store, keys, batch)  # duplicates are idempotent
    assert (again.accepted, again.duplicates, again.ok) == (0, 6, True)
    assert store.log_position() == 6


def test_ingest_stores_nothing_from_the_first_bad_entry_on(
    store: Store, leksand: factories.FeedWriter
) -> None:
    entries = [leksand.publish(record_id=f"uc-{i}") for i in range(4)]
    entries[2] = tampered(entries[2])
    report = ingest(store, leksand.keyring(), entries)
    assert not report.ok
    assert report.first_refusal is not None
    assert report.first_refusal.reason is Reason.BAD_SIGNATURE
    assert report.accepted == 2
    head = store.head(factories.LEKSAND)
    assert head is not None and head.sequence == 2


def test_ingest_moves_a_cursor_with_the_entries_only_when_nothing_is_refused(
    store: Store, leksand: factories.FeedWriter
) -> None:
    keys = leksand.keyring()
    first = [leksand.publish(record_id=f"uc-{i}") for i in range(2)]
    report = ingest(store, keys, first, cursor=("hub", 2))
    assert report.ok and report.cursor_set and report.accepted == 2
    assert store.get_cursor("hub") == 2
    # Only duplicates: nothing to append, the cursor still moves.
    again = ingest(store, keys, first, cursor=("hub", 5))
    assert again.duplicates == 2 and again.cursor_set
    assert store.get_cursor("hub") == 5
    # A refusal: what came before it is stored, the cursor is the caller's to set.
    more = [leksand.publish(record_id=f"uc-{i}") for i in range(2, 4)]
    refused = ingest(store, keys, [more[0], tampered(more[1])], cursor=("hub", 9))
    assert not refused.ok and refused.accepted == 1 and not refused.cursor_set
    assert store.get_cursor("hub") == 5
    assert store.log_position() == 3


def test_ingest_checks_chains_and_versions_against_what_is_held(
    store: Store, leksand: factories.FeedWriter, tibro: factories.FeedWriter
) -> None:
    """Heads and record versions come from the store (read for the whole batch at
    once on PostgreSQL) and from the batch's own earlier entries."""
    keys = KeyRing([leksand.trusted_key(), tibro.trusted_key()])
    first = [leksand.publish(record_id="uc-1"), tibro.publish(origin=factories.TIBRO)]
    assert ingest(store, keys, first).accepted == 2
    second = [
        leksand.publish(record_id="uc-1"),  # version 2 over the held 1
        tibro.publish(origin=factories.TIBRO, record_id="uc-2"),
        leksand.publish(record_id="uc-1"),  # version 3 over the batch's own 2
    ]
    report = ingest(store, keys, second)
    assert report.ok and report.accepted == 3
    stale = leksand.build(factories.make_use_case(record_id="uc-1", version=3))
    refused = ingest(store, keys, [tibro.publish(origin=factories.TIBRO), stale])
    assert refused.accepted == 1
    assert refused.first_refusal is not None
    assert refused.first_refusal.reason is Reason.VERSION_NOT_NEWER
    head = store.head(factories.LEKSAND)
    assert head is not None and head.sequence == 3


def test_ingest_without_stopping_counts_the_rest_as_gaps(
    store: Store, leksand: factories.FeedWriter
) -> None:
    entries = [leksand.publish(record_id=f"uc-{i}") for i in range(4)]
    entries[1] = tampered(entries[1])
    report = ingest(store, leksand.keyring(), entries, stop_at_first_refusal=False)
    assert report.refused[Reason.BAD_SIGNATURE] == 1
    assert report.refused[Reason.SEQUENCE_GAP] == 2
    assert store.log_position() == 1


def test_a_mirror_follows_a_server_log_with_redactions(
    store: Store, leksand: factories.FeedWriter
) -> None:
    """A non-member mirror reads the public view of a log and keeps the chain whole."""
    leksand.publish(record_id="a")
    leksand.publish(record_id="b", visibility=records_pb2.VISIBILITY_MEMBERS)
    leksand.publish(record_id="c", visibility=records_pb2.VISIBILITY_DRAFT)
    leksand.publish(record_id="d")
    assert ingest(store, leksand.keyring(), leksand.entries).accepted == 4
    with Store.open("sqlite://") as mirror:
        page = store.read_log(0, 100, member=False)
        report = ingest(mirror, leksand.keyring(), page.entries)
        assert report.ok and report.accepted == 4
        assert [r.record_id for r in mirror.list_records()] == ["d", "a"]
        assert mirror.feed_digest(factories.LEKSAND) == store.feed_digest(factories.LEKSAND)
        # the mirror serves the same redactions on, and more entries chain on top
        leksand.publish(record_id="e")
        assert ingest(mirror, leksand.keyring(), leksand.entries[4:]).accepted == 1
        assert [e.WhichOneof("item") for e in mirror.read_log(0, 10).entries] == [
            "signed",
            "redacted",
            "redacted",
            "signed",
            "signed",
        ]


def test_publisher_versions_retires_and_peers_accept(store: Store) -> None:
    key = SigningKey.generate()
    publisher = Publisher(store, key, factories.LEKSAND, clock=lambda: NOW)
    record = factories.make_use_case(record_id="uc-pub", version=0)
    first = publisher.publish(record)
    second = publisher.publish(record)
    assert (first.version, second.version) == (1, 2)
    assert second.record.header.created_at_ms == first.record.header.created_at_ms
    retired = publisher.retire("uc-pub")
    assert retired.record.header.tombstone and retired.version == 3
    with pytest.raises(SamverkaError, match="already retired"):
        publisher.retire("uc-pub")
    with pytest.raises(SamverkaError, match="no record"):
        publisher.retire("nothing")
    assert store.list_records() == []
    # a peer verifies everything the publisher wrote
    keys = KeyRing([TrustedKey(factories.LEKSAND, key.public)])
    with Store.open("sqlite://") as peer:
        report = ingest(peer, keys, store.read_log(0, 10).entries)
        assert report.ok and report.accepted == 3


def test_publisher_never_dates_an_entry_before_the_feed_head(store: Store) -> None:
    times = iter([NOW, NOW - 60_000])  # the clock steps back a minute (NTP)
    publisher = Publisher(
        store, SigningKey.generate(), factories.LEKSAND, clock=lambda: next(times)
    )
    publisher.publish(factories.make_use_case(record_id="a"))
    later = publisher.publish(factories.make_use_case(record_id="b"))
    assert later.timestamp_ms == NOW


def test_publisher_retries_when_another_writer_gets_there_first(
    store: Store, open_store: Callable[..., Store]
) -> None:
    key = SigningKey.generate()
    other = Publisher(open_store(), key, factories.LEKSAND, clock=lambda: NOW)
    interfered: list[ParsedEntry] = []

    def clock() -> int:
        # runs after the publisher read the head: the other writer appends right then
        if not interfered:
            interfered.append(other.publish(factories.make_use_case(record_id="theirs")))
        return NOW

    publisher = Publisher(store, key, factories.LEKSAND, clock=clock)
    mine = publisher.publish(factories.make_use_case(record_id="mine"))
    assert mine.sequence == 2  # retried on top of the other writer's entry
    assert [h.sequence for h in store.heads()] == [2]
    assert {r.record_id for r in store.list_records()} == {"mine", "theirs"}
