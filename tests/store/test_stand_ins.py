"""Filling a held redacted stand-in with the signed entry behind it, on both engines.

A receiver that was shown an entry only redacted (a draft, a MEMBERS record on the
public port, or a hub hiding a PUBLIC entry) holds a placeholder. When the signed
entry with the same origin, sequence and hash arrives later, ingest stores it in
the placeholder's row, and the current view and search index take it as if it had
arrived in order. See docs/SECURITY.md (§2, the hub hides an entry).
"""

from __future__ import annotations

from collections.abc import Sequence

import factories
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from samverka.errors import Reason, StoreConflict
from samverka.protocol.entries import parse_signed
from samverka.protocol.verify import KeyRing
from samverka.replication.ingest import Incoming, IngestReport, ingest
from samverka.store.store import Store
from samverka.v1 import feed_pb2, feed_service_pb2, records_pb2

NOW = factories.FIXED_NOW_MS
T0 = factories.T0_MS
MEMBERS = records_pb2.VISIBILITY_MEMBERS


def stand_in(entry: feed_pb2.SignedEntry) -> feed_pb2.RedactedEntry:
    p = parse_signed(entry)
    return feed_pb2.RedactedEntry(origin=p.origin, sequence=p.sequence, entry_hash=p.hash)


def shown(entries: Sequence[feed_pb2.SignedEntry], hidden: set[int]) -> list[Incoming]:
    """The feed as a source that hides the entries at sequences ``hidden`` shows it."""
    return [stand_in(e) if i in hidden else e for i, e in enumerate(entries, start=1)]


def take(store: Store, writer: factories.FeedWriter, items: Sequence[Incoming]) -> IngestReport:
    return ingest(store, writer.keyring(), items, now_ms=NOW)


def state(store: Store) -> tuple[object, ...]:
    """Everything a refused fill must leave unchanged."""
    return (
        store.log_position(),
        store.heads(),
        [
            (r.origin, r.record_id, r.version, r.tombstone)
            for r in store.list_records(include_tombstoned=True)
        ],
        store.read_log(0, 10_000).entries,
    )


def found(store: Store, text: str) -> list[str]:
    return [hit.record_id for hit in store.search(text)]


# -- filling in ---------------------------------------------------------------------------


def test_a_signed_entry_fills_its_stand_in_in_place(
    store: Store, leksand: factories.FeedWriter
) -> None:
    entries = [
        leksand.publish(record_id="a", title="Första fallet"),
        leksand.publish(record_id="b", title="Gömda älgräkningen"),
        leksand.publish(record_id="c", title="Tredje fallet"),
    ]
    assert take(store, leksand, shown(entries, {2})).accepted == 3
    assert store.get_record(factories.LEKSAND, "b") is None
    assert found(store, "älgräkningen") == []
    head, digest = store.head(factories.LEKSAND), store.feed_digest(factories.LEKSAND)

    report = take(store, leksand, [entries[1]])

    assert report.ok
    assert (report.accepted, report.duplicates, report.stand_ins_filled) == (0, 0, 1)
    assert report.positions == []  # the log's end does not move
    assert store.log_position() == 3
    assert store.head(factories.LEKSAND) == head
    assert store.feed_digest(factories.LEKSAND) == digest
    page = store.read_log(0, 10)
    assert [e.WhichOneof("item") for e in page.entries] == ["signed"] * 3
    assert page.entries[1].position == 2
    assert factories.serialize(page.entries[1].signed) == factories.serialize(entries[1])
    assert store.feed_entries(factories.LEKSAND) == [factories.serialize(e) for e in entries]
    held = store.get_record(factories.LEKSAND, "b")
    assert held is not None and held.position == 2 and held.title == "Gömda älgräkningen"
    assert found(store, "älgräkningen") == ["b"]
    # A content-filtered read finds it too (it filters on the log row's columns).
    kinds = feed_service_pb2.EntryFilter(kinds=[records_pb2.RECORD_KIND_USE_CASE])
    assert [e.position for e in store.read_log(0, 10, entry_filter=kinds).entries] == [1, 2, 3]


def test_filling_twice_is_a_duplicate_the_second_time(
    store: Store, leksand: factories.FeedWriter
) -> None:
    entries = [leksand.publish(record_id=f"r{i}") for i in range(3)]
    take(store, leksand, shown(entries, {2}))
    assert take(store, leksand, [entries[1]]).stand_ins_filled == 1
    again = take(store, leksand, entries)
    assert (again.accepted, again.duplicates, again.stand_ins_filled) == (0, 3, 0)
    # Stand-ins offered again for held entries, signed or placeholder, are duplicates.
    assert take(store, leksand, shown(entries, {1, 2, 3})).duplicates == 3


def test_a_different_entry_at_the_stand_ins_sequence_is_refused(
    store: Store, leksand: factories.FeedWriter
) -> None:
    leksand.publish(record_id="a")
    twin = leksand.fork()  # same key, a second history from #2 on
    entries = [leksand.entries[0], leksand.publish(record_id="b"), leksand.publish(record_id="c")]
    other = twin.publish(record_id="other")
    take(store, leksand, shown(entries, {2}))
    before = state(store)

    report = take(store, leksand, [other])

    assert report.first_refusal is not None
    assert report.first_refusal.reason is Reason.FORK
    assert (report.first_refusal.origin, report.first_refusal.sequence) == ("2029", 2)
    assert report.stand_ins_filled == 0
    assert state(store) == before
    assert store.read_log(1, 1).entries[0].WhichOneof("item") == "redacted"


def test_a_stand_ins_entry_that_does_not_chain_to_the_entry_before_is_refused(
    store: Store, leksand: factories.FeedWriter
) -> None:
    """A stand-in is never checked against the link before it: its entry must be."""
    twin = leksand.fork()
    mine = leksand.publish(record_id="a")
    twin.publish(record_id="a-other")  # another #1, signed with the same key
    spliced = twin.publish(record_id="b")  # #2 of the other history
    take(store, leksand, [mine, stand_in(spliced)])  # the head stand-in, on the sender's word
    before = state(store)

    report = take(store, leksand, [spliced])

    assert report.first_refusal is not None and report.first_refusal.reason is Reason.FORK
    assert report.first_refusal.sequence == 2
    assert "does not chain" in report.first_refusal.detail
    assert state(store) == before


def test_a_filling_entry_dated_outside_its_neighbours_is_refused(
    store: Store, leksand: factories.FeedWriter
) -> None:
    """As in order: not before the signed entry before it, not after the one after it."""
    a = leksand.publish(record_id="a")  # T0
    early = leksand.append(factories.make_use_case(record_id="early"), timestamp_ms=T0 - 1)
    late = leksand.append(factories.make_use_case(record_id="late"), timestamp_ms=T0 + 60_000)
    c = leksand.append(factories.make_use_case(record_id="c"), timestamp_ms=T0 + 30_000)
    take(store, leksand, [a, stand_in(early), stand_in(late), c])
    before = state(store)

    for entry, where in ((early, "before it"), (late, "after it")):
        report = take(store, leksand, [entry])
        assert report.first_refusal is not None
        assert report.first_refusal.reason is Reason.CLOCK_SKEW
        assert where in report.first_refusal.detail
    assert state(store) == before


def test_filling_the_head_raises_the_feeds_newest_timestamp(
    store: Store, leksand: factories.FeedWriter
) -> None:
    a = leksand.publish(record_id="a")
    b = leksand.append(factories.make_use_case(record_id="b"), timestamp_ms=T0 + 10_000)
    take(store, leksand, [a, stand_in(b)])
    held = store.head(factories.LEKSAND)
    assert held is not None and held.timestamp_ms == T0  # the placeholder's date is unknown

    assert take(store, leksand, [b]).stand_ins_filled == 1

    held = store.head(factories.LEKSAND)
    assert held is not None and (held.sequence, held.timestamp_ms) == (2, T0 + 10_000)
    # The next entry may not be dated before the filled one now.
    backdated = leksand.build(factories.make_use_case(record_id="c"), timestamp_ms=T0 + 5_000)
    refused = take(store, leksand, [backdated]).first_refusal
    assert refused is not None and refused.reason is Reason.CLOCK_SKEW


def test_a_stand_in_can_be_filled_by_the_next_item_of_the_same_batch(
    store: Store, leksand: factories.FeedWriter
) -> None:
    a, b, c = (leksand.publish(record_id=x) for x in "abc")
    report = take(store, leksand, [a, stand_in(b), b, c])
    assert (report.accepted, report.stand_ins_filled, report.ok) == (3, 1, True)
    assert [e.WhichOneof("item") for e in store.read_log(0, 10).entries] == ["signed"] * 3
    assert store.get_record(factories.LEKSAND, "b") is not None


def test_fills_and_new_entries_in_one_batch(
    store: Store, leksand: factories.FeedWriter, tibro: factories.FeedWriter
) -> None:
    """A fill of one origin, new entries of it and of another origin, one transaction."""
    old = [leksand.publish(record_id=f"r{i}") for i in range(3)]
    take(store, leksand, shown(old, {1, 3}))
    new = leksand.publish(record_id="r1")  # version 2 of r1, filled below as version 1
    theirs = tibro.publish(record_id="t")
    keys = KeyRing([leksand.trusted_key(), tibro.trusted_key()])

    report = ingest(store, keys, [old[0], theirs, old[2], new], now_ms=NOW)

    assert (report.accepted, report.stand_ins_filled, report.ok) == (2, 2, True)
    assert report.positions == [4, 5]
    assert [(r.record_id, r.version) for r in store.list_records(origins=["2029"])] == [
        ("r1", 2),
        ("r2", 1),
        ("r0", 1),
    ]


def test_a_fill_then_a_refusal_stores_the_fill(store: Store, leksand: factories.FeedWriter) -> None:
    """``held == refused_index``: the items before the refusal are held, fills included."""
    entries = [leksand.publish(record_id=f"r{i}") for i in range(3)]
    take(store, leksand, shown(entries, {2}))
    gap = leksand.build(factories.make_use_case(record_id="x"), sequence=9)
    report = take(store, leksand, [entries[0], entries[1], gap])
    assert report.first_refusal is not None
    assert report.first_refusal.reason is Reason.SEQUENCE_GAP
    assert (report.duplicates, report.stand_ins_filled) == (1, 1)
    assert report.held == report.refused_index == 2
    assert store.get_record(factories.LEKSAND, "r1") is not None


def test_the_store_refuses_to_fill_a_placeholder_another_writer_filled(
    store: Store, leksand: factories.FeedWriter
) -> None:
    entries = [leksand.publish(record_id=f"r{i}") for i in range(2)]
    take(store, leksand, shown(entries, {2}))
    second = parse_signed(entries[1])
    assert store.append([], fills=[second]) == []
    with pytest.raises(StoreConflict):
        store.append([], fills=[second])
    # Through ingest the conflict is verified again: a duplicate.
    assert take(store, leksand, [entries[1]]).duplicates == 1


def test_a_false_stand_in_is_not_vouched_for_by_a_duplicate(
    store: Store, leksand: factories.FeedWriter
) -> None:
    """Only an entry after a stand-in (or its own entry) vouches for it: an old entry
    sent again after a made-up stand-in must not get it stored for an untrusted sender."""
    entries = [leksand.publish(record_id=f"r{i}") for i in range(2)]
    take(store, leksand, entries)
    made_up = feed_pb2.RedactedEntry(origin=factories.LEKSAND, sequence=3, entry_hash=b"\7" * 32)
    report = ingest(
        store, leksand.keyring(), [made_up, entries[0]], now_ms=NOW, trust_stand_ins=frozenset()
    )
    assert report.ok and (report.accepted, report.stand_ins_left_out) == (0, 1)
    held = store.head(factories.LEKSAND)
    assert held is not None and held.sequence == 2


# -- the current view: filled in as if in order ---------------------------------------------


def test_a_filled_older_version_does_not_override_the_newer_current_one(
    store: Store, leksand: factories.FeedWriter
) -> None:
    v1 = leksand.publish(record_id="uc", title="Gamla rubriken")
    v2 = leksand.publish(record_id="uc", title="Nya rubriken")
    take(store, leksand, [stand_in(v1), v2])

    assert take(store, leksand, [v1]).stand_ins_filled == 1

    current = store.get_record(factories.LEKSAND, "uc")
    assert current is not None and (current.version, current.title) == (2, "Nya rubriken")
    assert current.position == 2
    assert found(store, "gamla") == []
    assert found(store, "nya") == ["uc"]
    assert store.read_log(0, 1).entries[0].WhichOneof("item") == "signed"


def test_a_filled_older_version_does_not_bring_back_a_retracted_record(
    store: Store, leksand: factories.FeedWriter
) -> None:
    v1 = leksand.publish(record_id="uc", title="Indraget förslag")
    gone = leksand.append(factories.make_tombstone(factories.make_use_case(record_id="uc")))
    take(store, leksand, [stand_in(v1), gone])

    assert take(store, leksand, [v1]).stand_ins_filled == 1

    current = store.get_record(factories.LEKSAND, "uc")
    assert current is not None and current.tombstone and current.version == 2
    assert store.list_records() == []
    assert found(store, "indraget") == []


def test_a_filled_newer_version_becomes_current(
    store: Store, leksand: factories.FeedWriter
) -> None:
    v1 = leksand.publish(record_id="uc", title="Gamla rubriken")
    v2 = leksand.publish(record_id="uc", title="Nya rubriken")
    take(store, leksand, [v1, stand_in(v2)])
    assert found(store, "gamla") == ["uc"]

    assert take(store, leksand, [v2]).stand_ins_filled == 1

    current = store.get_record(factories.LEKSAND, "uc")
    assert current is not None and (current.version, current.position) == (2, 2)
    assert found(store, "gamla") == []
    assert found(store, "nya") == ["uc"]
    # A new entry of the record is checked against the filled version now.
    stale = leksand.build(factories.make_use_case(record_id="uc", version=2))
    refused = take(store, leksand, [stale]).first_refusal
    assert refused is not None and refused.reason is Reason.VERSION_NOT_NEWER


def test_a_filled_tombstone_retracts_the_record(
    store: Store, leksand: factories.FeedWriter
) -> None:
    v1 = leksand.publish(record_id="uc", title="Snart indraget")
    gone = leksand.append(factories.make_tombstone(factories.make_use_case(record_id="uc")))
    take(store, leksand, [v1, stand_in(gone)])
    assert found(store, "indraget") == ["uc"]

    assert take(store, leksand, [gone]).stand_ins_filled == 1

    current = store.get_record(factories.LEKSAND, "uc")
    assert current is not None and current.tombstone and current.version == 2
    assert found(store, "indraget") == []


def test_a_members_record_once_seen_redacted_is_filled_and_still_redacted_for_the_public(
    store: Store, leksand: factories.FeedWriter
) -> None:
    """A mirror that first read the public view later reads as a member."""
    leksand.publish(record_id="pub")
    leksand.publish(record_id="mem", visibility=MEMBERS, title="Bara för medlemmar")
    leksand.publish(record_id="pub2")
    take(store, leksand, leksand.entries)
    with Store.open("sqlite://") as mirror:
        assert ingest(mirror, leksand.keyring(), store.read_log(0, 10, member=False).entries).ok
        assert mirror.get_record(factories.LEKSAND, "mem") is None

        report = ingest(mirror, leksand.keyring(), store.read_log(0, 10, member=True).entries)

        assert (report.duplicates, report.stand_ins_filled) == (2, 1)
        assert [h.record_id for h in mirror.search("medlemmar")] == ["mem"]
        assert [h.record_id for h in mirror.search("medlemmar", member=False)] == []
        public = [e.WhichOneof("item") for e in mirror.read_log(0, 10, member=False).entries]
        assert public == ["signed", "redacted", "signed"]
        assert mirror.read_log(0, 10).entries == store.read_log(0, 10).entries


# -- property: hidden then filled equals received in order -----------------------------------

#: One step of a feed: (record index, tombstone?).
_steps = st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=1, max_size=12)


def _write(steps: list[tuple[int, bool]]) -> factories.FeedWriter:
    writer = factories.FeedWriter(factories.LEKSAND)
    for number, (index, tombstone) in enumerate(steps):
        record = factories.make_use_case(
            record_id=f"uc-{index}", version=0, title=f"Fall {index} steg{number}"
        )
        record.header.tombstone = tombstone
        writer.append(record)
    return writer


def _view(store: Store) -> tuple[object, ...]:
    return (
        [
            (r.record_id, r.version, r.tombstone, r.title, r.position)
            for r in store.list_records(include_tombstoned=True)
        ],
        sorted((h.record_id, h.title) for h in store.search("fall", limit=100)),
        store.heads(),
        [factories.serialize(e.signed) if e.HasField("signed") else e.position
         for e in store.read_log(0, 100).entries],
    )  # fmt: skip


@settings(
    max_examples=max(40, settings().max_examples // 2),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(steps=_steps, data=st.data())
def test_hidden_then_filled_is_the_same_as_received_in_order(
    steps: list[tuple[int, bool]], data: st.DataObject
) -> None:
    """Any feed, any entries hidden, then the whole feed in any batch sizes: the log,
    heads, current view and search equal a store that got the feed in order."""
    writer = _write(steps)
    entries = writer.entries
    hidden = data.draw(st.sets(st.integers(1, len(entries))), label="hidden")
    size = data.draw(st.integers(1, len(entries)), label="batch size")
    with Store.open("sqlite://") as direct, Store.open("sqlite://") as mirror:
        assert ingest(direct, writer.keyring(), entries, now_ms=NOW).accepted == len(entries)
        assert ingest(mirror, writer.keyring(), shown(entries, hidden), now_ms=NOW).ok
        filled = duplicates = 0
        for start in range(0, len(entries), size):
            report = ingest(mirror, writer.keyring(), entries[start : start + size], now_ms=NOW)
            assert report.ok and report.accepted == 0
            filled += report.stand_ins_filled
            duplicates += report.duplicates
        assert (filled, duplicates) == (len(hidden), len(entries) - len(hidden))
        assert _view(mirror) == _view(direct)
