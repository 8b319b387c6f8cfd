"""Erasure in the store, on both engines (issue 13, point 3; samverka.protocol.erasure).

A verified erasure entry turns the entries it names into placeholders (hash kept, bytes
gone): the chain, the feed digest and the log positions stay; the record leaves the
current view and the search index; a signed copy arriving later never brings the
content back; and after the store's purge the text is in no database file. The purge
runs off the ingest path: a serving store purges in the background, once for a burst
of erasures; a purge that cannot get its lock gives up (and stays pending) instead of
queueing writers behind it; a process that died before its purge is purged by the next
one's start; a one-shot command purges when it closes its store.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import factories
import pgserver
import pytest
import sqlalchemy as sa
from samverka.errors import Reason, StoreError
from samverka.ops import metrics
from samverka.protocol.entries import parse_signed
from samverka.protocol.erasure import HeldEntry, build_erasure
from samverka.protocol.kommuner import HUB_ORIGIN
from samverka.protocol.verify import KeyRing
from samverka.replication.ingest import Incoming, IngestReport, ingest
from samverka.store import purge as purge_module
from samverka.store import store as store_module
from samverka.store.db import normalize_url
from samverka.store.purge import PurgeTask, purge_observers
from samverka.store.store import Store
from samverka.v1 import erasure_pb2, feed_pb2, records_pb2

NOW = factories.FIXED_NOW_MS
SECRET = "Zebulonsson-hemlig-7f3a"


def take(store: Store, keys: KeyRing, items: list[Incoming]) -> IngestReport:
    return ingest(store, keys, items, now_ms=NOW)


def erasure(
    writer: factories.FeedWriter,
    record_id: str,
    entries: list[feed_pb2.SignedEntry],
    *,
    origin: str | None = None,
) -> feed_pb2.SignedEntry:
    held = [HeldEntry(parse_signed(e).sequence, parse_signed(e).hash, 1) for e in entries]
    record = build_erasure(
        eraser=writer.origin,
        origin=origin or parse_signed(entries[0]).origin,
        record_id=record_id,
        entries=held,
        reason=erasure_pb2.ERASURE_REASON_PERSONAL_DATA,
        note="ett namn publicerades av misstag",
        request_ref="KS 2026/123" if writer.origin == HUB_ORIGIN else "",
        now_ms=writer.next_timestamp_ms,
    )
    return writer.append(record)


def database_bytes(store: Store, store_url: str) -> bytes:
    """Every byte of the database's files (SQLite: file and WAL; PostgreSQL: the
    relation files of the store's tables, read by the server)."""
    if not store.is_postgres:
        path = Path(store_url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    with store.engine.connect() as conn:
        return pgserver.relation_bytes(conn)


def test_an_erasure_keeps_the_chain_and_removes_the_content(
    store: Store, store_url: str, leksand: factories.FeedWriter
) -> None:
    keys = leksand.keyring()
    v1 = leksand.publish(record_id="uc-x", title="Första", summary=f"Kontakt {SECRET}")
    other = leksand.publish(record_id="uc-y", title="Kvar")
    v2 = leksand.publish(record_id="uc-x", title="Andra", summary=f"Ring {SECRET}")
    assert take(store, keys, [v1, other, v2]).accepted == 3
    assert [h.record_id for h in store.search(SECRET.split("-")[0])] == ["uc-x"]
    hashes = [parse_signed(e).hash for e in (v1, other, v2)]
    before = database_bytes(store, store_url)
    assert SECRET.encode() in before

    report = take(store, keys, [erasure(leksand, "uc-x", [v1, v2])])

    assert report.ok and report.accepted == 1
    # The same hashes at the same places: the chain and the log's leaves stand.
    assert [store.entry_hash(factories.LEKSAND, s) for s in (1, 2, 3)] == hashes
    kinds = [e.WhichOneof("item") for e in store.read_log(0, 10).entries]
    assert kinds == ["redacted", "signed", "redacted", "signed"]
    assert store.get_record(factories.LEKSAND, "uc-x") is None
    assert store.get_record(factories.LEKSAND, "uc-y") is not None
    assert store.search(SECRET.split("-")[0]) == []
    # The erasure itself is no record to list or search.
    assert {r.record_id for r in store.list_records(include_tombstoned=True)} == {"uc-y"}
    assert [(e.sequence, e.by_sequence) for e in store.erased_entries()] == [(1, 4), (3, 4)]
    # The bytes left in free pages and the WAL go with the purge, requested by the
    # append and run off its path (here at once; serving processes in the background).
    assert store.purge_pending() and store.purger.outstanding
    store.purger.purge_now()
    assert not store.purge_pending() and store.purger.wait_purged(timeout=0)
    assert SECRET.encode() not in database_bytes(store, store_url)
    # The feed goes on: the next entry chains to the erasure.
    assert take(store, keys, [leksand.publish(record_id="uc-z")]).accepted == 1


def test_a_signed_copy_never_brings_erased_content_back(
    store: Store, leksand: factories.FeedWriter
) -> None:
    keys = leksand.keyring()
    v1 = leksand.publish(record_id="uc-x", summary=SECRET)
    take(store, keys, [v1, erasure(leksand, "uc-x", [v1])])
    assert store.read_log(0, 1).entries[0].WhichOneof("item") == "redacted"

    again = take(store, keys, [v1])  # from a peer that has not erased yet

    assert (again.accepted, again.duplicates, again.stand_ins_filled) == (0, 1, 0)
    assert store.read_log(0, 1).entries[0].WhichOneof("item") == "redacted"
    assert store.feed_entries(factories.LEKSAND) == [factories.serialize(leksand.entries[1])]


def test_only_the_erased_version_goes_and_the_one_before_is_current_again(
    store: Store, leksand: factories.FeedWriter
) -> None:
    keys = leksand.keyring()
    v1 = leksand.publish(record_id="uc-x", title="Första versionen")
    v2 = leksand.publish(record_id="uc-x", title=f"Andra {SECRET}")
    take(store, keys, [v1, v2, erasure(leksand, "uc-x", [v2])])

    held = store.get_record(factories.LEKSAND, "uc-x")
    assert held is not None and (held.version, held.title) == (1, "Första versionen")
    assert [h.record_id for h in store.search("versionen")] == ["uc-x"]


def test_the_council_erases_a_kommuns_entry_and_it_stays_erased_when_it_arrives_later(
    store: Store, leksand: factories.FeedWriter
) -> None:
    hub = factories.FeedWriter(HUB_ORIGIN)
    keys = KeyRing([leksand.trusted_key(), hub.trusted_key()])
    v1 = leksand.publish(record_id="uc-x", summary=SECRET)
    # The hub's erasure arrives first (e.g. this store follows the hub's feed only).
    assert take(store, keys, [erasure(hub, "uc-x", [v1], origin=factories.LEKSAND)]).ok

    assert take(store, keys, [v1]).accepted == 1

    assert store.read_log(0, 10).entries[1].WhichOneof("item") == "redacted"
    assert store.get_record(factories.LEKSAND, "uc-x") is None
    assert [(e.origin, e.by_origin) for e in store.erased_entries()] == [("2029", "0000")]


def test_a_kommun_cannot_erase_another_kommuns_entries(
    store: Store, leksand: factories.FeedWriter, tibro: factories.FeedWriter
) -> None:
    keys = KeyRing([leksand.trusted_key(), tibro.trusted_key()])
    v1 = leksand.publish(record_id="uc-x", summary=SECRET)
    take(store, keys, [v1])

    report = take(store, keys, [erasure(tibro, "uc-x", [v1], origin=factories.LEKSAND)])

    assert report.first_refusal is not None
    assert report.first_refusal.reason is Reason.SCHEMA_INVALID
    assert "erasure.origin" in report.first_refusal.detail
    assert store.read_log(0, 1).entries[0].WhichOneof("item") == "signed"
    assert store.erased_entries() == []


def test_an_erasure_naming_another_hash_erases_nothing(
    store: Store, leksand: factories.FeedWriter
) -> None:
    keys = leksand.keyring()
    v1 = leksand.publish(record_id="uc-x", summary=SECRET)
    take(store, keys, [v1])
    wrong = records_pb2.Record()
    wrong.CopyFrom(
        build_erasure(
            eraser=factories.LEKSAND,
            origin=factories.LEKSAND,
            record_id="uc-x",
            entries=[HeldEntry(1, b"\x01" * 32, 1)],
            reason=erasure_pb2.ERASURE_REASON_OTHER,
            now_ms=leksand.next_timestamp_ms,
        )
    )
    assert take(store, keys, [leksand.append(wrong)]).ok
    assert store.read_log(0, 1).entries[0].WhichOneof("item") == "signed"
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM erased")).scalar() == 1


def test_a_reader_holding_the_wal_delays_the_purge_not_the_erasure(
    store: Store,
    leksand: factories.FeedWriter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if store.is_postgres:
        return  # PostgreSQL's VACUUM FULL waits for its lock; SQLite's WAL is the case here
    monkeypatch.setattr(store_module, "PURGE_CHECKPOINT_TRIES", 2)
    keys = leksand.keyring()
    v1 = leksand.publish(record_id="uc-x", summary=SECRET)
    take(store, keys, [v1])
    report = take(store, keys, [erasure(leksand, "uc-x", [v1])])
    assert report.ok and store.erased_entries() != []
    with store.snapshot() as held:
        assert held.head(factories.LEKSAND) is not None  # the snapshot is fixed now
        with pytest.raises(StoreError, match="could not be truncated"):
            store.purger.purge_now()
    assert store.purge_pending()  # still pending, for the next try
    store.purger.purge_now()  # once the reader is gone
    assert not store.purge_pending()


def test_a_stand_in_without_an_erasure_erases_nothing(
    store: Store, leksand: factories.FeedWriter
) -> None:
    """A relay that strips content on its own (serves the entry as a stand-in, with no
    erasure behind it) is undone where the entry was not held (the signed entry from
    another source fills the placeholder in) and changes nothing where it is. Only a
    verified erasure keeps a placeholder empty (test above)."""
    keys = leksand.keyring()
    v1 = leksand.publish(record_id="uc-x", summary=SECRET)
    stripped = feed_pb2.RedactedEntry(
        origin=factories.LEKSAND, sequence=1, entry_hash=parse_signed(v1).hash
    )
    assert take(store, keys, [stripped, leksand.publish(record_id="uc-y")]).ok
    assert take(store, keys, [v1]).stand_ins_filled == 1
    assert store.get_record(factories.LEKSAND, "uc-x") is not None

    assert take(store, keys, [stripped]).duplicates == 1
    assert store.read_log(0, 1).entries[0].WhichOneof("item") == "signed"
    assert [h.record_id for h in store.search(SECRET)] == ["uc-x"]


# -- the physical purge, off the ingest path (samverka.store.purge) ----------------


def outcomes() -> tuple[list[str], Callable[[str], None]]:
    seen: list[str] = []
    return seen, seen.append


def test_a_serving_store_purges_in_the_background_once_for_a_burst(
    store: Store, store_url: str, leksand: factories.FeedWriter
) -> None:
    keys = leksand.keyring()
    v1 = leksand.publish(record_id="uc-x", summary=f"Kontakt {SECRET}")
    v2 = leksand.publish(record_id="uc-y", summary=f"Ring {SECRET}")
    take(store, keys, [v1, v2])
    seen, observe = outcomes()
    purge_observers.add(observe)
    metrics.start_counting()
    counted = metrics._counted
    assert counted is not None
    before = counted.erasures_applied.labels("own")._value.get()
    purges = counted.erasure_purges.labels("done")._value.get()
    scrape = metrics.ServerCollector(store, factories.LEKSAND)

    def pending_gauge() -> float:
        family = next(f for f in scrape.collect() if f.name == "samverka_erasure_purge_pending")
        return float(family.samples[0].value)

    async def serve() -> None:
        task = PurgeTask(store, debounce_s=1.0)
        await task.start()
        try:
            # Two erasures, each its own push: each append returns before any purge.
            for entry, rid in ((v1, "uc-x"), (v2, "uc-y")):
                await asyncio.to_thread(take, store, keys, [erasure(leksand, rid, [entry])])
            assert store.purger.outstanding and seen == []
            assert pending_gauge() == 1
            assert await store.purger.purged(timeout=20)
            assert task.task_state.up
        finally:
            await task.close()

    try:
        asyncio.run(serve())
    finally:
        purge_observers.remove(observe)
    assert seen == ["done"]  # one purge for both
    assert counted.erasures_applied.labels("own")._value.get() == before + 2
    assert counted.erasure_purges.labels("done")._value.get() == purges + 1
    assert pending_gauge() == 0
    assert not store.purge_pending()
    assert SECRET.encode() not in database_bytes(store, store_url)


def test_a_purge_that_cannot_get_its_lock_gives_up_and_writers_go_on(
    store: Store,
    store_url: str,
    open_store: Callable[..., Store],
    leksand: factories.FeedWriter,
) -> None:
    keys = leksand.keyring()
    v1 = leksand.publish(record_id="uc-x", summary=SECRET)
    take(store, keys, [v1, erasure(leksand, "uc-x", [v1])])
    store.purger.lock_timeout_s = 0.3
    # A long transaction holds a lock the rewrite needs (PostgreSQL: a reader of the
    # log; SQLite: a writer).
    if store.is_postgres:
        holder: Any = open_store().engine.raw_connection().driver_connection
        holder.execute("SELECT count(*) FROM log").fetchone()
    else:
        holder = sqlite3.connect(store_url.removeprefix("sqlite:///"), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
    try:
        with ThreadPoolExecutor(1) as pool:
            purging = pool.submit(store.purger.purge_now)
            if store.is_postgres:
                # A push while the purge waits for its lock: it queues behind the
                # VACUUM FULL only until the purge gives up, not until the long
                # transaction ends (without lock_timeout it would wait for that).
                deadline = time.monotonic() + 10
                while not waiting_locks(store) and time.monotonic() < deadline:
                    time.sleep(0.02)  # polls the server's lock table
                assert waiting_locks(store), "the purge waiting for its lock"
                report = take(store, keys, [leksand.publish(record_id="uc-z")])
                assert report.ok and report.accepted == 1
            with pytest.raises(StoreError):
                purging.result(timeout=10)
    finally:
        holder.rollback()
        holder.close()
    assert store.purge_pending() and store.purger.outstanding
    take(store, keys, [leksand.publish(record_id="uc-w")])
    store.purger.purge_now()
    assert not store.purge_pending() and not store.purger.outstanding


def test_a_snapshot_from_before_the_erasure_holds_the_purge_back(
    store: Store, store_url: str, open_store: Callable[..., Store], leksand: factories.FeedWriter
) -> None:
    """PostgreSQL's VACUUM FULL copies rows that a running snapshot may still see
    ("recently dead") into the new files: a purge beside a snapshot taken before the
    erasure would report done with the bytes still there. It waits for such snapshots
    and, when they outlast it, stays pending. (SQLite: a reader holding the WAL, above.)"""
    keys = leksand.keyring()
    v1 = leksand.publish(record_id="uc-x", summary=SECRET)
    take(store, keys, [v1])
    holder: Any = None
    if store.is_postgres:
        holder = open_store().engine.raw_connection().driver_connection
        holder.autocommit = True
        holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        # A snapshot, and no lock on the tables the purge rewrites.
        holder.execute("SELECT 1").fetchone()
    take(store, keys, [erasure(leksand, "uc-x", [v1])])
    store.purger.lock_timeout_s = 0.3
    if holder is not None:
        with pytest.raises(StoreError, match="snapshot"):
            store.purger.purge_now()
        assert store.purge_pending()
        holder.execute("ROLLBACK")
        holder.close()
    store.purger.purge_now()
    assert not store.purge_pending()
    assert SECRET.encode() not in database_bytes(store, store_url)


@pytest.mark.parametrize("engine_name", ["postgresql"])  # SQLite has no other databases
def test_a_transaction_in_another_database_holds_the_purge_back(
    store: Store, store_url: str, leksand: factories.FeedWriter
) -> None:
    """VACUUM FULL's own snapshot reaches back to the oldest transaction running on the
    server, in any database (transaction ids are the server's), and the rows erased
    after it are still "recently dead" to it: copied into the new files. Another
    database's open transaction (another service on the shared server, another test
    worker) must hold the purge back as a snapshot of this one does."""
    keys = leksand.keyring()
    v1 = leksand.publish(record_id="uc-x", summary=SECRET)
    take(store, keys, [v1])
    elsewhere = sa.engine.make_url(normalize_url(store_url)).set(database="postgres")
    other = sa.create_engine(elsewhere, poolclass=sa.pool.NullPool)
    pooled = other.raw_connection()  # kept: dropping it closes the connection
    holder: Any = pooled.driver_connection
    try:
        holder.autocommit = True
        holder.execute("BEGIN")
        holder.execute("SELECT pg_current_xact_id()").fetchone()  # a transaction id
        take(store, keys, [erasure(leksand, "uc-x", [v1])])
        store.purger.lock_timeout_s = 0.3
        with pytest.raises(StoreError, match="transaction"):
            store.purger.purge_now()
        assert store.purge_pending()
        holder.execute("ROLLBACK")
    finally:
        pooled.close()
        other.dispose()
    store.purger.purge_now()
    assert not store.purge_pending()
    assert SECRET.encode() not in database_bytes(store, store_url)


def waiting_locks(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM pg_locks WHERE NOT granted").scalar())


def test_a_purge_pending_when_the_process_died_is_done_at_the_next_start(
    store_url: str, open_store: Callable[..., Store], leksand: factories.FeedWriter
) -> None:
    keys = leksand.keyring()
    v1 = leksand.publish(record_id="uc-x", summary=SECRET)
    dying = open_store()
    take(dying, keys, [v1, erasure(leksand, "uc-x", [v1])])
    dying.purger.purged_upto = dying.purger.requested  # it dies: its close purges nothing
    dying.close()
    restarted = open_store()
    assert restarted.purge_pending() and not restarted.purger.outstanding

    async def serve() -> None:
        task = PurgeTask(restarted, debounce_s=0)
        await task.start()
        try:
            await asyncio.wait_for(task.looked.wait(), 20)
            assert restarted.purger.requested == 1
            assert await restarted.purger.purged(timeout=20)
        finally:
            await task.close()

    asyncio.run(serve())
    assert not restarted.purge_pending()
    assert SECRET.encode() not in database_bytes(restarted, store_url)


def test_a_serving_replica_purges_what_another_left_pending(
    store_url: str,
    open_store: Callable[..., Store],
    leksand: factories.FeedWriter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(purge_module, "RECHECK_S", 0.2)
    serving, other = open_store(), open_store()
    keys = leksand.keyring()
    v1 = leksand.publish(record_id="uc-x", summary=SECRET)

    async def serve() -> None:
        task = PurgeTask(serving, debounce_s=0)
        await task.start()
        try:
            await asyncio.wait_for(task.looked.wait(), 20)
            # The other replica takes an erasure and dies before its purge.
            await asyncio.to_thread(take, other, keys, [v1, erasure(leksand, "uc-x", [v1])])
            other.purger.purged_upto = other.purger.requested
            deadline = time.monotonic() + 20
            while await asyncio.to_thread(serving.purge_pending):
                assert time.monotonic() < deadline, "the serving replica's purge"
                await asyncio.sleep(0.05)  # polls the durable mark
        finally:
            await task.close()

    asyncio.run(serve())
    assert SECRET.encode() not in database_bytes(serving, store_url)


def test_a_one_shot_command_purges_when_it_closes_its_store(
    store_url: str, open_store: Callable[..., Store], leksand: factories.FeedWriter
) -> None:
    keys = leksand.keyring()
    v1 = leksand.publish(record_id="uc-x", summary=SECRET)
    with Store.open(store_url) as command:
        take(command, keys, [v1, erasure(leksand, "uc-x", [v1])])
        assert command.purge_pending()
    after = open_store()
    assert not after.purge_pending()
    assert SECRET.encode() not in database_bytes(after, store_url)
