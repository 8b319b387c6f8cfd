"""``kill -9`` of the hub while several nodes push, and of a node during ``samverka sync``.

The hub: four nodes (five in ``make soak``) push 2,000 entries (10,000 in soak) at
once with the real push code (``samverka.replication.push.push_feed``, batches of 50), retrying
with back-off like the push agent while the hub is away. The hub is killed (SIGKILL:
no drain, a Publish half done) once mid-way (twice in soak) and started again on the
same ports. Afterwards each origin's feed at the hub has the digest of the node's own
feed, which is what an uninterrupted push stores; no (origin, sequence) twice, no
sequence or log position missing, and SQLite's integrity check passes. Soak runs it
on SQLite and on PostgreSQL.

The node: ``samverka sync`` of a fresh enrolled node is killed while it pulls; the
rerun resumes from the cursor the first run stored (start_position), and the node
ends with the hub's feeds exactly.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import factories
import pytest
import sqlalchemy as sa
from arena import (
    HubProcess,
    MemberKeys,
    build_hub,
    enroll_node,
    hub_env,
    publish,
    run,
    serve_hub,
)
from samverka.errors import TransportError
from samverka.protocol.kommuner import kommuner
from samverka.protocol.verify import KeyRing, TrustedKey
from samverka.replication.ingest import ingest
from samverka.replication.push import push_feed
from samverka.store.store import Store
from samverka.transport.hubclient import HubClient
from soakresults import record, soak

SOAK = soak()
ENTRIES = 10_000 if SOAK else 2_000
NODES = 5 if SOAK else 4
KILLS = 2 if SOAK else 1
#: Entries a killed ``samverka sync`` pulls (pages of 100).
SYNC_ENTRIES = 10_000 if SOAK else 1_000
ENGINES = ["sqlite", "postgresql"] if SOAK else ["sqlite"]
CODES = sorted(kommuner())[: NODES + 2]


@dataclass
class Pusher:
    member: MemberKeys
    store: Store
    attempts: int = 0
    failures: list[str] = field(default_factory=list)


def node_feed(member: MemberKeys, path: Path, count: int) -> Store:
    """A node's own store holding ``count`` signed entries of its feed."""
    writer = factories.FeedWriter(member.code, member.key)
    writer.step_ms = 1
    entries = [writer.publish(record_id=f"crash-{i}", tags=["krasch"]) for i in range(count)]
    store = Store.open(f"sqlite:///{path}")
    assert ingest(store, KeyRingOf(member), entries, source="test").accepted == count
    return store


def KeyRingOf(member: MemberKeys):  # type: ignore[no-untyped-def]

    return KeyRing([TrustedKey(member.code, member.key.public)])


async def push_until_done(hub: HubProcess, pusher: Pusher) -> None:
    """Push the node's feed until the hub holds all of it; back off while it is away."""
    local = pusher.store.head(pusher.member.code)
    assert local is not None
    delay = 0.05
    while True:
        pusher.attempts += 1
        try:
            async with HubClient(hub.member, pusher.member.tls(), timeout=5) as link:
                report = await push_feed(pusher.store, pusher.member.code, link, batch_size=50)
            if report.hub_sequence == local.sequence:
                return
        except TransportError as exc:  # the hub is down or was killed mid-call
            pusher.failures.append(type(exc).__name__)
        await asyncio.sleep(delay * random.uniform(0.5, 1.0))
        delay = min(delay * 2, 1.0)


def log_shape(store: Store) -> tuple[int, int, int, int, dict[str, tuple[int, int, int]]]:
    """(rows, distinct (origin, sequence), lowest and highest position, per origin
    (rows, lowest and highest sequence))."""
    with store.engine.connect() as conn:
        rows, distinct, low, high = conn.execute(
            sa.text(
                "SELECT COUNT(*), COUNT(DISTINCT origin || ':' || CAST(sequence AS TEXT)), "
                "MIN(position), MAX(position) FROM log"
            )
        ).one()
        per_origin = {
            origin: (int(n), int(lo), int(hi))
            for origin, n, lo, hi in conn.execute(
                sa.text(
                    "SELECT origin, COUNT(*), MIN(sequence), MAX(sequence) FROM log GROUP BY origin"
                )
            )
        }
    return int(rows), int(distinct), int(low or 0), int(high or 0), per_origin


@pytest.fixture(scope="module", params=ENGINES)
def crash_hub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[HubProcess, dict[str, MemberKeys]]]:
    """A hub for this module (pages of 100 entries, so a sync has many to be killed in)."""
    tmp = tmp_path_factory.mktemp(f"crash-{request.param}")
    store_url = "" if request.param == "sqlite" else str(request.getfixturevalue("pg_schema"))
    # The last code is left for a node folder that enrolls itself (the sync test).
    members = build_hub(tmp / "hub", CODES[:-1], store_url=store_url)
    hub = serve_hub(
        tmp / "hub", tmp / "logs", store_url=store_url, SAMVERKA_SERVER_BATCH_SIZE="100"
    )
    try:
        yield hub, members
    finally:
        hub.stop()


# -- a node killed during samverka sync ---------------------------------------------------------


def test_kill_9_during_samverka_sync_resumes_from_the_cursor(
    crash_hub: tuple[HubProcess, dict[str, MemberKeys]], tmp_path: Path
) -> None:
    hub, members = crash_hub
    source = members[CODES[NODES]]  # a member the crash test does not push for
    writer = factories.FeedWriter(source.code, source.key)
    writer.step_ms = 1
    entries = [writer.publish(record_id=f"sync-{i}") for i in range(SYNC_ENTRIES)]
    for i in range(0, len(entries), 1000):
        assert publish(hub.member, source, *entries[i : i + 1000]).accepted == len(
            entries[i : i + 1000]
        )
    reader = enroll_node(hub, CODES[-1], tmp_path / "reader", quorum=0)
    env = hub_env()
    db = Store.open(f"sqlite:///{reader / 'samverka.db'}", migrate=False)
    with hub.open_store() as store:
        end = store.log_position()
    proc = subprocess.Popen(
        [sys.executable, "-m", "samverka", "sync", "--dir", str(reader), "--no-push", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while (cursor := db.get_cursor("hub")) < end // 3:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    cursor = db.get_cursor("hub")
    stored = db.log_position()
    assert 0 < cursor <= stored < end, (cursor, stored, end)

    rerun = subprocess.run(
        [sys.executable, "-m", "samverka", "sync", "--dir", str(reader), "--no-push", "--json"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    with hub.open_store() as store:
        same = all(store.feed_digest(h.origin) == db.feed_digest(h.origin) for h in store.heads())
    resumed = report["start_position"] == cursor
    record("fault", "kill -9 of a node during samverka sync", survived=same and resumed,
           entries=SYNC_ENTRIES, lost=0 if same else SYNC_ENTRIES, resumed_at=cursor)  # fmt: skip
    assert resumed, (report, cursor)
    # Everything the hub holds, once: what the first run stored plus what the rerun took.
    assert report["accepted"] + stored == end
    assert report["duplicates"] <= 100  # at most the page stored before its cursor moved
    assert same
    db.close()


# -- the hub killed while nodes push ------------------------------------------------------------


def test_kill_9_of_the_hub_mid_ingest_loses_and_duplicates_nothing(
    crash_hub: tuple[HubProcess, dict[str, MemberKeys]], tmp_path: Path
) -> None:
    hub, members = crash_hub
    per_node = ENTRIES // NODES
    pushers = [
        Pusher(members[code], node_feed(members[code], tmp_path / f"node-{code}.db", per_node))
        for code in CODES[:NODES]
    ]
    expected = {p.member.code: p.store.feed_digest(p.member.code) for p in pushers}
    with hub.open_store() as store:
        start = store.log_position()
    total = per_node * NODES
    marks = [start + total * (k + 1) // (KILLS + 2) for k in range(KILLS)]
    killed_at: list[int] = []

    async def killer(observer: Store) -> None:
        for mark in marks:
            while (position := await asyncio.to_thread(observer.log_position)) < mark:
                await asyncio.sleep(0.005)
            hub.kill9()
            killed_at.append(position - start)
            await asyncio.sleep(0.3)  # the nodes find the hub gone and back off
            await asyncio.to_thread(hub.start)

    async def scenario() -> float:
        started = time.monotonic()
        with hub.open_store() as observer:
            await asyncio.gather(killer(observer), *(push_until_done(hub, p) for p in pushers))
        return time.monotonic() - started

    seconds = run(scenario(), timeout=600)
    with hub.open_store() as store:
        rows, distinct, low, high, per_origin = log_shape(store)
        digests = {code: store.feed_digest(code) for code in expected}
        integrity = (
            store.engine.connect().execute(sa.text("PRAGMA integrity_check")).scalar()
            if not hub.store_url
            else "ok"
        )
    lost = sum(per_node - per_origin.get(code, (0, 0, 0))[0] for code in expected)
    survived = digests == expected and rows == distinct and lost == 0
    engine = "PostgreSQL" if hub.store_url else "SQLite"
    record(
        "fault", f"kill -9 of the hub during ingest ({engine})",
        survived=survived, entries=total, lost=lost, duplicates=rows - distinct,
        kills=len(killed_at), seconds=round(seconds, 1),
    )  # fmt: skip
    print(f"\n{total} entries from {NODES} nodes, killed at {killed_at}, {seconds:.1f} s, "
          f"{sum(len(p.failures) for p in pushers)} failed pushes retried")  # fmt: skip
    assert len(killed_at) == KILLS and all(0 < k < total for k in killed_at), killed_at
    assert any(p.failures for p in pushers)  # the kill did cut pushes off
    assert digests == expected  # each feed exactly as the node wrote it
    assert rows == distinct  # zero duplicates
    assert high - low + 1 == rows  # log positions gap-free
    for code in expected:
        assert per_origin[code] == (per_node, 1, per_node), code  # sequences 1..n, no gap
    assert integrity == "ok"
    for p in pushers:
        p.store.close()
