"""The one ingest every way in ends in (push, harvest, sync): the rules aggregation adds.

On a real SQLite file: stand-ins contradicted by their successor are not stored, the
receiver's clock and skew tolerance are honoured, the source is reported, and two
writers ingesting the same entries at once leave one copy.
"""

from __future__ import annotations

import threading
from pathlib import Path

import factories
import pytest
from samverka.errors import Reason
from samverka.protocol.signing import entry_hash
from samverka.protocol.verify import KeyRing
from samverka.replication.ingest import ingest
from samverka.store.store import Store
from samverka.v1 import feed_pb2

NOW = factories.FIXED_NOW_MS


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    yield opened  # type: ignore[misc]
    opened.close()


def stand_in(origin: str, sequence: int, hash_: bytes) -> feed_pb2.LogEntry:
    return feed_pb2.LogEntry(
        redacted=feed_pb2.RedactedEntry(origin=origin, sequence=sequence, entry_hash=hash_)
    )


def signed(entry: feed_pb2.SignedEntry) -> feed_pb2.LogEntry:
    return feed_pb2.LogEntry(signed=entry)


def test_a_stand_in_contradicted_by_its_successor_is_not_stored(store: Store) -> None:
    leksand = factories.FeedWriter(factories.LEKSAND)
    tibro = factories.FeedWriter(factories.TIBRO)
    keys = KeyRing([leksand.trusted_key(), tibro.trusted_key()])
    e1 = leksand.publish(record_id="uc-1")
    leksand.publish(record_id="uc-2")  # #2, shown only as a (false) stand-in
    e3 = leksand.publish(record_id="uc-3")
    t1 = tibro.publish(record_id="uc-t")
    batch = [
        signed(e1),
        stand_in(factories.LEKSAND, 2, b"\x07" * 32),  # not #2's hash
        signed(t1),  # another origin between them
        signed(e3),  # its previous_hash contradicts the stand-in
    ]
    report = ingest(store, keys, batch, source="push")
    assert report.source == "push"
    refusal = report.first_refusal
    assert refusal is not None and refusal.reason is Reason.FORK
    # the refusal names the unproven stand-in, and nothing from it on is stored
    assert (refusal.origin, refusal.sequence) == (factories.LEKSAND, 2)
    assert report.refused_index == 1
    assert report.accepted + report.duplicates == report.refused_index == 1
    head = store.head(factories.LEKSAND)
    assert head is not None and head.sequence == 1
    assert store.head(factories.TIBRO) is None
    # the true chain still goes in afterwards
    true_two = leksand.entries[1]
    again = ingest(store, keys, [signed(true_two), signed(e3), signed(t1)])
    assert again.ok and again.accepted == 3


def test_a_vouched_stand_in_is_stored_and_a_contradiction_later_cannot_undo_it(
    store: Store,
) -> None:
    leksand = factories.FeedWriter(factories.LEKSAND)
    keys = leksand.keyring()
    e1 = leksand.publish(record_id="uc-1")
    e2 = leksand.publish(record_id="uc-2")
    e3 = leksand.publish(record_id="uc-3")
    fork = leksand.fork()
    e4 = leksand.publish(record_id="uc-4")
    other4 = fork.publish(record_id="uc-other")
    batch = [
        signed(e1),
        stand_in(factories.LEKSAND, 2, entry_hash(e2.entry)),
        signed(e3),  # vouches for the stand-in
        signed(other4),  # a second history's #4 goes in first ...
        signed(e4),  # ... so this #4 is the fork, and the vouched stand-in stays
    ]
    report = ingest(store, keys, batch)
    refusal = report.first_refusal
    assert refusal is not None and refusal.reason is Reason.FORK
    assert (refusal.origin, refusal.sequence) == (factories.LEKSAND, 4)
    assert report.accepted == 4 and report.refused_index == 4


def test_without_stopping_the_contradicted_origin_is_left_out(store: Store) -> None:
    leksand = factories.FeedWriter(factories.LEKSAND)
    tibro = factories.FeedWriter(factories.TIBRO)
    keys = KeyRing([leksand.trusted_key(), tibro.trusted_key()])
    e1 = leksand.publish(record_id="uc-1")
    leksand.publish(record_id="uc-2")
    e3 = leksand.publish(record_id="uc-3")
    t1, t2 = tibro.publish(record_id="t1"), tibro.publish(record_id="t2")
    batch = [
        signed(e1),
        stand_in(factories.LEKSAND, 2, b"\x01" * 32),
        signed(t1),
        signed(e3),
        stand_in(factories.LEKSAND, 4, b"\x02" * 32),
        signed(t2),
    ]
    report = ingest(store, keys, batch, stop_at_first_refusal=False)
    assert report.accepted == 3  # e1, t1, t2
    assert report.refused[Reason.FORK] == 3  # the stand-in, e3, and the stand-in after
    head = store.head(factories.LEKSAND)
    assert head is not None and head.sequence == 1
    tibro_head = store.head(factories.TIBRO)
    assert tibro_head is not None and tibro_head.sequence == 2


def test_untrusted_stand_ins_need_a_signed_entry_after_them(store: Store) -> None:
    """At the hub a member vouches only for its own stand-ins: a relayer's false stand-in
    would otherwise block the origin's true next entry for good."""
    leksand = factories.FeedWriter(factories.LEKSAND)
    tibro = factories.FeedWriter(factories.TIBRO)
    keys = KeyRing([leksand.trusted_key(), tibro.trusted_key()])
    e1 = leksand.publish(record_id="uc-1")
    e2 = leksand.publish(record_id="uc-2")
    t1, t2 = tibro.publish(record_id="t1"), tibro.publish(record_id="t2")
    batch = [
        signed(e1),
        stand_in(factories.LEKSAND, 2, b"\x05" * 32),  # false, and nothing vouches for it
        signed(t1),
        stand_in(factories.TIBRO, 2, entry_hash(t2.entry)),  # the sender's own: taken
    ]
    report = ingest(store, keys, batch, trust_stand_ins={factories.TIBRO})
    assert report.ok and report.accepted == 3 and report.stand_ins_left_out == 1
    head = store.head(factories.LEKSAND)
    assert head is not None and head.sequence == 1
    # Leksand's true #2 still goes in
    assert ingest(store, keys, [signed(e2)]).accepted == 1
    # a vouched stand-in of another origin is taken
    e3, e4 = leksand.publish(record_id="uc-3"), leksand.publish(record_id="uc-4")
    vouched = [stand_in(factories.LEKSAND, 3, entry_hash(e3.entry)), signed(e4)]
    assert ingest(store, keys, vouched, trust_stand_ins=frozenset()).accepted == 2


def test_the_receivers_clock_and_tolerance_are_used(store: Store) -> None:
    leksand = factories.FeedWriter(factories.LEKSAND, start_ms=NOW + 5_000)
    entry = leksand.publish(record_id="uc-1")
    report = ingest(store, leksand.keyring(), [entry], now_ms=NOW, max_clock_skew_ms=1_000)
    assert report.first_refusal is not None
    assert report.first_refusal.reason is Reason.CLOCK_SKEW
    assert ingest(store, leksand.keyring(), [entry], now_ms=NOW, max_clock_skew_ms=10_000).ok


def test_concurrent_ingests_of_the_same_entries_store_each_once(tmp_path: Path) -> None:
    """A push and a harvest of one node at once (two Store objects, like two threads of
    the hub, or a hub and its CLI): every entry ends up stored exactly once."""
    url = f"sqlite:///{tmp_path / 'race.db'}"
    writer = factories.FeedWriter(factories.LEKSAND)
    entries = [writer.publish(record_id=f"uc-{i}") for i in range(60)]
    stores = [Store.open(url), Store.open(url)]
    accepted = [0, 0]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            for start in range(0, len(entries), 7):
                report = ingest(
                    stores[i], writer.keyring(), entries[start : start + 7], source="push"
                )
                assert report.ok, report.first_refusal
                accepted[i] += report.accepted
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    try:
        assert not errors, errors
        assert sum(accepted) == 60
        assert stores[0].log_position() == 60
        assert len(stores[0].feed_entries(factories.LEKSAND)) == 60
    finally:
        for s in stores:
            s.close()
