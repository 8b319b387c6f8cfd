"""Several writers on one database: processes on one SQLite file, Store objects (as
hub replicas are) on one PostgreSQL database, threads sharing one Store."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import factories
import psycopg
import pytest
from samverka.errors import StoreConflict
from samverka.protocol.entries import parse_signed
from samverka.protocol.signing import SigningKey
from samverka.protocol.verify import KeyRing, TrustedKey
from samverka.replication.ingest import ingest
from samverka.store.store import NOTIFY_CHANNEL, Store

WRITER = Path(__file__).with_name("writer_process.py")


def run_writers(
    url: str, tmp_path: Path, writers: list[tuple[str, str, SigningKey]], count: int
) -> list[int]:
    """Start one process per (name, origin, key), release them together, wait for all."""
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = []
    for name, origin, key in writers:
        pem = tmp_path / f"{name}.pem"
        pem.write_bytes(key.to_pem())
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    str(WRITER),
                    url,
                    origin,
                    str(pem),
                    str(count),
                    str(barrier),
                    name,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    deadline = time.monotonic() + 60
    while len(list(barrier.glob("ready-*"))) < len(writers):
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        assert time.monotonic() < deadline, "writers did not start"
        time.sleep(0.01)
    (barrier / "go").touch()
    conflicts = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        conflicts.append(int(out.strip()))
    return conflicts


def check_log(store: Store, keys: KeyRing) -> None:
    """Positions 1..n without a gap, and every chain verifies from scratch."""
    page = store.read_log(0, 100_000, include_drafts=True)
    assert [e.position for e in page.entries] == list(range(1, store.log_position() + 1))
    with Store.open("sqlite://") as fresh:
        report = ingest(fresh, keys, page.entries)
        assert report.ok, report.first_refusal
        assert report.accepted == len(page.entries)
        for head in store.heads():
            assert fresh.feed_digest(head.origin) == store.feed_digest(head.origin)


def test_two_processes_write_their_own_feeds_into_one_database(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    a, b = SigningKey.generate(), SigningKey.generate()
    run_writers(
        store_url, tmp_path, [("a", factories.LEKSAND, a), ("b", factories.TIBRO, b)], count=60
    )
    assert store.log_position() == 120
    assert {h.origin: h.sequence for h in store.heads()} == {
        factories.LEKSAND: 60,
        factories.TIBRO: 60,
    }
    check_log(
        store, KeyRing([TrustedKey(factories.LEKSAND, a.public), TrustedKey("1472", b.public)])
    )


def test_two_processes_publishing_to_one_feed_retry_on_conflict(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    """The CLI and the server of one node both authoring: the chain stays one chain."""
    key = SigningKey.generate()
    run_writers(
        store_url, tmp_path, [("cli", factories.LEKSAND, key), ("srv", factories.LEKSAND, key)], 40
    )
    head = store.head(factories.LEKSAND)
    assert head is not None and head.sequence == 80
    assert len(store.list_records()) == 80
    check_log(store, KeyRing([TrustedKey(factories.LEKSAND, key.public)]))


def test_replicas_append_concurrently_and_readers_never_see_a_gap(
    open_store: Callable[..., Store],
) -> None:
    """Two Store objects (two hub replicas) append batches of many origins at once
    while a reader follows the log: every page it sees is contiguous after its
    cursor, i.e. positions become visible in order, and the final log is gap-free."""
    replicas = [open_store(), open_store()]
    reader = open_store()
    origins = ["0114", "0115", "0117", "0120", "0123", "0125"]
    writers = {o: factories.FeedWriter(o) for o in origins}
    keys = KeyRing(w.trusted_key() for w in writers.values())
    rounds, errors, observed = 15, [], []
    stop = threading.Event()

    def write(replica: Store, my_origins: list[str]) -> None:
        try:
            for _ in range(rounds):
                batch = [
                    parse_signed(writers[o].publish(origin=o, record_id=f"r{writers[o].sequence}"))
                    for o in my_origins
                    for _ in range(3)
                ]
                replica.append(batch)
        except Exception as exc:  # reported by the main thread
            errors.append(exc)

    def follow() -> None:
        cursor = 0
        try:
            while not stop.is_set() or cursor < reader.log_position():
                page = reader.read_log(cursor, 1_000)
                got = [e.position for e in page.entries]
                assert got == list(range(cursor + 1, cursor + 1 + len(got))), (cursor, got)
                observed.extend(got)
                cursor = page.next_position
        except Exception as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(replicas[0], origins[:3])),
        threading.Thread(target=write, args=(replicas[1], origins[3:])),
    ]
    follower = threading.Thread(target=follow)
    follower.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    stop.set()
    follower.join(timeout=120)
    assert not errors, errors
    total = rounds * 3 * len(origins)
    assert observed == list(range(1, total + 1))
    check_log(reader, keys)


def test_threads_share_one_store(store: Store) -> None:
    origins = ["1480", "1481", "1482", "1484"]
    errors: list[BaseException] = []

    def work(origin: str) -> None:
        writer = factories.FeedWriter(origin)
        try:
            for i in range(10):
                entries = [writer.publish(origin=origin, record_id=f"r{i}-{j}") for j in range(5)]
                report = ingest(store, writer.keyring(), entries)
                assert report.ok and report.accepted == 5
                assert store.search(f"äldreomsorgens r{i}") is not None
                store.read_log(0, 100)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(o,)) for o in origins]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert store.log_position() == 200
    assert [e.position for e in store.read_log(0, 500).entries] == list(range(1, 201))


def test_postgres_append_notifies_the_newest_position(
    pg_url: str, leksand: factories.FeedWriter
) -> None:
    with Store.open(pg_url) as store:
        dsn = store.url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, autocommit=True) as listener:
            listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
            store.append([parse_signed(leksand.publish(record_id="a"))])
            store.append([parse_signed(leksand.publish(record_id=f"b{i}")) for i in range(3)])
            payloads = [n.payload for n in listener.notifies(timeout=5, stop_after=2)]
    assert payloads == ["1", "4"]


def test_a_failed_postgres_append_sends_no_notification(
    pg_url: str, leksand: factories.FeedWriter
) -> None:
    with Store.open(pg_url) as store:
        entry = parse_signed(leksand.publish())
        store.append([entry])
        dsn = store.url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, autocommit=True) as listener:
            listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
            with pytest.raises(StoreConflict):
                store.append([entry])
            assert list(listener.notifies(timeout=0.3)) == []


def test_two_writers_ingesting_the_same_entries_leave_one_copy(
    open_store: Callable[..., Store],
) -> None:
    """A push and a harvest of the same node (or two hub replicas) at once: whoever
    loses a race gets StoreConflict inside ingest, verifies again and finds
    duplicates; the log holds every entry exactly once."""
    writer = factories.FeedWriter(factories.LEKSAND)
    batches = [[writer.publish(record_id=f"r{i}-{j}") for j in range(3)] for i in range(40)]
    stores = [open_store(), open_store()]
    reports: list[list[object]] = [[], []]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run(index: int) -> None:
        try:
            start.wait(timeout=30)
            for batch in batches:
                report = ingest(stores[index], writer.keyring(), batch)
                assert report.ok, report.first_refusal
                reports[index].append(report)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    total = sum(r.accepted for rs in reports for r in rs)  # type: ignore[attr-defined]
    assert total == 120
    assert stores[0].log_position() == 120
    head = stores[0].head(factories.LEKSAND)
    assert head is not None and head.sequence == 120
