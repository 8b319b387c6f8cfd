"""Appending to and reading the log: bytes verbatim, positions, heads, placeholders."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import factories
import pytest
from samverka.errors import StoreConflict
from samverka.protocol.entries import ParsedEntry, parse_signed
from samverka.protocol.signing import entry_hash
from samverka.store.store import Store
from samverka.v1 import feed_pb2, records_pb2


def parsed(entries: Sequence[feed_pb2.SignedEntry]) -> list[ParsedEntry]:
    return [parse_signed(e) for e in entries]


def redact(entry: feed_pb2.SignedEntry) -> feed_pb2.RedactedEntry:
    p = parse_signed(entry)
    return feed_pb2.RedactedEntry(origin=p.origin, sequence=p.sequence, entry_hash=p.hash)


def snapshot(store: Store) -> tuple[object, ...]:
    """Everything a failed append must leave unchanged."""
    return (
        store.log_position(),
        store.heads(),
        [(r.origin, r.record_id, r.version) for r in store.list_records(include_tombstoned=True)],
        store.read_log(0, 10_000).entries,
    )


def test_new_store_is_empty(store: Store) -> None:
    assert store.log_position() == 0
    assert store.heads() == []
    assert store.head(factories.LEKSAND) is None
    assert store.entry_hash(factories.LEKSAND, 1) is None
    assert store.record_version(factories.LEKSAND, "uc-1") is None
    assert store.read_log(0, 10).entries == []
    assert store.append([]) == []


def test_append_and_read_back_keeps_the_signed_bytes_verbatim(
    store: Store, leksand: factories.FeedWriter
) -> None:
    entries = [leksand.publish(record_id=f"uc-{i}", title=f"Fall {i} – får") for i in range(3)]
    assert store.append(parsed(entries)) == [1, 2, 3]

    page = store.read_log(0, 10)
    assert [e.position for e in page.entries] == [1, 2, 3]
    assert page.next_position == 3 == page.log_position
    for stored, original in zip(page.entries, entries, strict=True):
        assert stored.WhichOneof("item") == "signed"
        assert stored.signed.entry == original.entry  # the signed bytes, exactly
        assert stored.signed.signature == original.signature
        assert stored.signed.key_id == original.key_id
    assert store.feed_entries(factories.LEKSAND) == [factories.serialize(e) for e in entries]
    assert store.feed_entries(factories.LEKSAND, after_sequence=2) == [
        factories.serialize(entries[2])
    ]
    # what was stored still verifies against the origin's key
    for e in store.feed_entries(factories.LEKSAND):
        signed = feed_pb2.SignedEntry.FromString(e)
        assert leksand.key.public.verify(signed.entry, signed.signature)


def test_heads_follow_every_origin(
    store: Store, leksand: factories.FeedWriter, tibro: factories.FeedWriter
) -> None:
    a = [leksand.publish(record_id=f"uc-{i}") for i in range(3)]
    b = [tibro.publish(record_id="uc-x", origin=factories.TIBRO)]
    store.append(parsed([a[0], b[0], a[1], a[2]]))

    head = store.head(factories.LEKSAND)
    assert head is not None
    assert (head.sequence, head.entry_hash) == (3, entry_hash(a[2].entry))
    assert head.timestamp_ms == parse_signed(a[2]).timestamp_ms
    assert [h.origin for h in store.heads()] == sorted([factories.LEKSAND, factories.TIBRO])
    assert [h.origin for h in store.heads([factories.TIBRO])] == [factories.TIBRO]
    assert store.entry_hash(factories.LEKSAND, 2) == entry_hash(a[1].entry)
    assert store.entry_hash(factories.LEKSAND, 4) is None
    assert store.log_position() == 4


def test_positions_continue_across_batches(store: Store, leksand: factories.FeedWriter) -> None:
    positions: list[int] = []
    for _ in range(4):
        batch = [leksand.publish(record_id=f"uc-{leksand.sequence + 1}") for _ in range(5)]
        positions += store.append(parsed(batch))
    assert positions == list(range(1, 21))
    page = store.read_log(7, 5)
    assert [e.position for e in page.entries] == [8, 9, 10, 11, 12]
    assert page.next_position == 12
    assert store.read_log(20, 5).entries == []
    assert store.read_log(20, 5).next_position == 20


def test_placeholder_advances_the_head_without_a_record(
    store: Store, leksand: factories.FeedWriter
) -> None:
    first = leksand.publish(record_id="uc-1")
    hidden = leksand.publish(record_id="uc-2", visibility=records_pb2.VISIBILITY_DRAFT)
    third = leksand.publish(record_id="uc-3")
    store.append([parse_signed(first), redact(hidden), parse_signed(third)])

    head = store.head(factories.LEKSAND)
    assert head is not None and head.sequence == 3
    assert store.entry_hash(factories.LEKSAND, 2) == entry_hash(hidden.entry)
    assert store.get_record(factories.LEKSAND, "uc-2") is None
    assert [r.record_id for r in store.list_records()] == ["uc-3", "uc-1"]
    # a placeholder is redacted even to the node's own user: its bytes were never held
    items = store.read_log(0, 10, include_drafts=True).entries
    assert [e.WhichOneof("item") for e in items] == ["signed", "redacted", "signed"]
    assert items[1].redacted == redact(hidden)
    assert store.feed_entries(factories.LEKSAND) == [
        factories.serialize(first),
        factories.serialize(third),
    ]


def test_placeholder_head_keeps_the_newest_known_timestamp(
    store: Store, leksand: factories.FeedWriter
) -> None:
    first = leksand.publish(record_id="uc-1")
    hidden = leksand.publish(record_id="uc-2")
    store.append([parse_signed(first), redact(hidden)])
    head = store.head(factories.LEKSAND)
    assert head is not None
    assert head.sequence == 2
    assert head.timestamp_ms == parse_signed(first).timestamp_ms


def test_feed_that_starts_with_a_placeholder_has_no_known_timestamp(
    store: Store, leksand: factories.FeedWriter
) -> None:
    store.append([redact(leksand.publish())])
    head = store.head(factories.LEKSAND)
    assert head is not None and head.timestamp_ms is None


def test_feed_digest_is_equal_exactly_when_histories_are(
    store: Store, tmp_path: Path, leksand: factories.FeedWriter
) -> None:
    entries = [leksand.publish(record_id=f"uc-{i}") for i in range(4)]
    store.append(parsed(entries))
    # another store (on SQLite, whatever the engine under test) holding the same
    # chain, one entry of it only as a placeholder (same hash)
    with Store.open(f"sqlite:///{tmp_path / 'other.db'}") as other:
        other.append([*parsed(entries[:2]), redact(entries[2])])
        assert other.feed_digest(factories.LEKSAND) != store.feed_digest(factories.LEKSAND)
        other.append(parsed(entries[3:]))
        assert other.feed_digest(factories.LEKSAND) == store.feed_digest(factories.LEKSAND)
    assert store.feed_digest(factories.LEKSAND) != store.feed_digest(factories.TIBRO)
    assert len(store.feed_digest(factories.TIBRO)) == 32


# -- conflicts: the concurrency guard ---------------------------------------------------


def test_appending_the_same_batch_twice_is_a_conflict_and_changes_nothing(
    store: Store, leksand: factories.FeedWriter
) -> None:
    batch = parsed([leksand.publish(record_id=f"uc-{i}") for i in range(3)])
    store.append(batch)
    before = snapshot(store)
    with pytest.raises(StoreConflict) as info:
        store.append(batch)
    assert "head is at sequence 3" in str(info.value)
    assert info.value.hint
    assert snapshot(store) == before


def test_a_batch_after_the_head_moved_is_a_conflict(
    store: Store, leksand: factories.FeedWriter
) -> None:
    store.append(parsed([leksand.publish(record_id="uc-1")]))
    # two writers verified their next entry against the same head; one got there first
    other = leksand.fork()
    mine = parsed([leksand.publish(record_id="uc-2")])
    theirs = parsed([other.publish(record_id="uc-3", title="Annan")])
    store.append(theirs)
    before = snapshot(store)
    with pytest.raises(StoreConflict):
        store.append(mine)
    assert snapshot(store) == before


def test_a_later_conflict_in_the_batch_stores_nothing_of_it(
    store: Store, leksand: factories.FeedWriter, tibro: factories.FeedWriter
) -> None:
    store.append(parsed([tibro.publish(origin=factories.TIBRO)]))
    before = snapshot(store)
    stale = tibro.fork()
    stale.sequence, stale.head_hash = 0, bytes(32)  # a writer that never saw Tibro's head
    batch = parsed([leksand.publish(record_id="uc-1"), stale.publish(origin=factories.TIBRO)])
    with pytest.raises(StoreConflict):
        store.append(batch)
    assert snapshot(store) == before


def test_a_gap_inside_a_batch_is_a_conflict(store: Store, leksand: factories.FeedWriter) -> None:
    entries = parsed([leksand.publish(record_id=f"uc-{i}") for i in range(3)])
    with pytest.raises(StoreConflict):
        store.append([entries[0], entries[2]])
    assert store.log_position() == 0
