"""Two hub replicas on one PostgreSQL database serve one federation.

Replica A is made with ``hub init --store-url`` on a throwaway database; replica B is
a copy of A's folder (same keys, same CA, same configuration) served on other ports,
as an operator runs a second replica on another host. Everything runs as real
processes on loopback over mutual TLS; the test process is the members (pushing with
HubService.Publish, following with FeedService.Subscribe) and reads what it receives
into a node store, verifying every signature against the signed directory.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from factories import FeedWriter
from hubkit import (
    Applicant,
    Procs,
    RunningHub,
    hub_env,
    init_replicas,
    run_async,
    start_hub,
    wait_for,
)
from pgserver import PgServer
from samverka.node import Node, init_node
from samverka.protocol.directory import keyring_from_directory
from samverka.protocol.entries import parse_signed
from samverka.replication.ingest import ingest
from samverka.transport.client import ClientTls, FeedClient
from samverka.transport.hubclient import HubClient
from samverka.v1 import feed_pb2, feed_service_pb2
from samverka_hub.folder import Hub, open_hub

LEKSAND, TIBRO, GAGNEF, FALUN = "2029", "1472", "2026", "2080"
#: The test PostgreSQL (pg_server, tests/conftest.py); this module makes its own database, so
#: no other test's NOTIFY reaches the replicas while latency is measured.


@dataclass
class Member:
    code: str
    tls: ClientTls
    writer: FeedWriter


@dataclass
class Replicas:
    procs: Procs
    #: Runs commands as on replica B's host: its database URL comes from the environment.
    procs_b: Procs
    a: RunningHub
    b: RunningHub
    hub: Hub  # replica A's folder opened in the test process, for the council's decisions
    url: str
    members: dict[str, Member] = field(default_factory=dict)

    def member(self, code: str) -> Member:
        """An admitted member (admitted on first use) whose feed the test writes."""
        if code not in self.members:
            applicant = Applicant.make(code)
            self.hub.council.submit_enrollment(applicant.request(at=time.time_ns() // 1_000_000))
            admission = self.hub.council.approve(code)
            tls = ClientTls(
                ca=self.hub.ca.cert_pem, cert=admission.certificate_pem, key=applicant.tls_key_pem
            )
            self.members[code] = Member(code, tls, FeedWriter(code, applicant.key))
        return self.members[code]

    def wait_admitted(self, *members: Member) -> None:
        """Until both replicas' directory watchers list ``members`` (polls every 0.1 s)."""

        async def heads(address: str, tls: ClientTls) -> bool:
            try:
                async with FeedClient.connect(address, tls, unary_timeout=5) as feed:
                    await feed.get_heads()
                return True
            except Exception:
                return False

        for m in members:
            for running in (self.a, self.b):
                wait_for(
                    lambda m=m, r=running: run_async(heads(r.member, m.tls)),
                    10,
                    f"{running.dir.name} to admit {m.code}",
                )


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, pg_server: PgServer) -> Iterator[Replicas]:
    with pg_server.database("samverka_r") as name:
        url = pg_server.url(name)
        tmp = tmp_path_factory.mktemp("replicas")
        env = hub_env()
        procs = Procs(tmp, env)
        # B's host keeps the URL out of its samverka.toml and passes it in the environment,
        # in the driver-less form (postgres://), which must mean the same database.
        env_b = {**env, "SAMVERKA_STORE_URL": url.replace("postgresql+psycopg", "postgres")}
        procs_b = Procs(tmp, env_b)
        hub: Hub | None = None
        try:
            a_dir, b_dir = init_replicas(procs, url)  # the second host gets a copy of the folder
            config = b_dir / "samverka.toml"
            text = config.read_text(encoding="utf-8")
            assert url in text
            config.write_text(text.replace(url, "postgresql://nobody@127.0.0.1:1/nowhere"), "utf-8")
            a = start_hub(procs, a_dir, name="replica-a")
            b = start_hub(procs_b, b_dir, name="replica-b")
            assert a.member != b.member and a.public != b.public

            def listening() -> bool:  # both replicas LISTEN (B found its URL in the environment)
                with pg_server.connect() as admin:
                    row = admin.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                        "AND query LIKE 'LISTEN%%'",
                        (name,),
                    ).fetchone()
                return row is not None and row[0] >= 2

            wait_for(listening, 10, "both replicas to LISTEN on samverka_log")
            hub = open_hub(a_dir)
            yield Replicas(procs, procs_b, a, b, hub, url)
        finally:
            procs.stop_all()
            procs_b.stop_all()
            if hub is not None:
                hub.close()


def log_entry(signed: feed_pb2.SignedEntry) -> feed_pb2.LogEntry:
    return feed_pb2.LogEntry(signed=signed)


def reader_node(replicas: Replicas) -> Node:
    folder = replicas.procs.tmp / f"reader-{secrets.token_hex(3)}"
    return init_node(folder, GAGNEF)


def test_an_entry_pushed_to_one_replica_reaches_a_subscriber_of_the_other(
    replicas: Replicas,
) -> None:
    """Gagnef follows replica A; Leksand pushes to replica B (Publish), and the council
    adds a recommendation with the CLI on B's folder: each arrives at A's subscriber
    within a second, and Gagnef's node verifies each against the signed directory."""
    leksand, gagnef = replicas.member(LEKSAND), replicas.member(GAGNEF)
    replicas.wait_admitted(leksand, gagnef)
    directory = replicas.hub.council.current_directory()
    assert directory is not None
    keys = keyring_from_directory(directory.directory)
    pushes = [leksand.writer.publish("use_case", record_id=f"uc-live-{i}") for i in range(5)]
    watched = feed_service_pb2.EntryFilter(origins=[LEKSAND, "0000"])

    async def scenario(node: Node) -> tuple[list[float], float]:
        latencies: list[float] = []
        async with (
            FeedClient.connect(replicas.a.member, gagnef.tls) as feed,
            HubClient(replicas.b.member, leksand.tls) as link,
        ):
            start = (await feed.get_heads()).log_position
            pages = feed.subscribe(start, watched)

            async def next_stored() -> list[feed_pb2.LogEntry]:
                page = await anext(pages)
                while page.heartbeat:
                    page = await anext(pages)
                report = await asyncio.to_thread(ingest, node.store, keys, page.entries)
                assert report.ok, report.first_refusal  # every signature verified
                return page.entries

            for signed in pushes:
                sent = time.perf_counter()
                published = await link.publish([log_entry(signed)])
                assert published.accepted == 1
                received = await asyncio.wait_for(next_stored(), 5)
                latencies.append(time.perf_counter() - sent)
                assert [e.signed.entry for e in received] == [signed.entry]

            # the council's CLI on B's folder: another process writing as origin 0000
            # (its first entry in this module's database, so the node can chain it)
            writer = replicas.procs_b.start(
                "hub", "recommend", "add", "--dir", str(replicas.b.dir), "--id", "rec-replica",
                "--title", "Rekommendation via replik B", "--summary", "Når replik A.",
                "--visibility", "public", name="recommend-b",
            )  # fmt: skip
            received = await asyncio.wait_for(next_stored(), 30)
            arrived = time.time()
            held = await asyncio.to_thread(node.store.get_record, "0000", "rec-replica")
            assert held is not None and [e.signed.entry for e in received]
            recommendation = arrived - held.timestamp_ms / 1000
            exit_code = await asyncio.to_thread(writer.wait, 30)
            assert exit_code == 0, replicas.procs_b.log("recommend-b")
            await pages.aclose()
        return latencies, recommendation

    with reader_node(replicas) as node:
        latencies, recommendation = run_async(asyncio.wait_for(scenario(node), 90))
        assert node.store.head(LEKSAND).sequence == 5  # type: ignore[union-attr]
        held = node.store.get_record("0000", "rec-replica")
        assert held is not None and held.key_id == replicas.hub.signing_key.key_id
    print(
        f"\nreplica B -> subscriber of A: Publish-to-arrival median "
        f"{statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms; "
        f"recommendation (CLI on B) {recommendation * 1000:.1f} ms after signing"
    )
    assert max(latencies) < 1.0, latencies
    assert recommendation < 1.0, recommendation


def test_concurrent_pushes_to_both_replicas_keep_one_gap_free_log(replicas: Replicas) -> None:
    """Tibro pushes to A while Falun pushes to B, and Falun's entries also go to A at
    the same time: one global log without gaps, every entry once, and both replicas
    serve it identically."""
    tibro, falun = replicas.member(TIBRO), replicas.member(FALUN)
    replicas.wait_admitted(tibro, falun)
    n, batch = 60, 3
    tibro_entries = [tibro.writer.publish("lesson", record_id=f"l-{i}") for i in range(n)]
    falun_entries = [falun.writer.publish("use_case", record_id=f"uc-{i}") for i in range(n)]

    async def push(address: str, member: Member, entries: list[Any]) -> int:
        accepted = 0
        async with HubClient(address, member.tls) as link:
            for i in range(0, len(entries), batch):
                published = await link.publish([log_entry(e) for e in entries[i : i + batch]])
                accepted += published.accepted
        return accepted

    async def together() -> list[int]:
        return list(
            await asyncio.gather(
                push(replicas.a.member, tibro, tibro_entries),
                push(replicas.b.member, falun, falun_entries),
                push(replicas.a.member, falun, falun_entries),  # the same entries, racing
            )
        )

    tibro_accepted, falun_b, falun_a = run_async(asyncio.wait_for(together(), 120))
    assert tibro_accepted == n and falun_a + falun_b == n  # every entry stored exactly once

    async def whole_log(address: str, tls: ClientTls) -> list[tuple[int, str, int, bytes]]:
        rows: list[tuple[int, str, int, bytes]] = []
        async with FeedClient.connect(address, tls) as feed:
            async for page in feed.read_entries(0):
                for e in page.entries:
                    if e.HasField("signed"):
                        p = parse_signed(e.signed)
                        rows.append((e.position, p.origin, p.sequence, p.hash))
                    else:
                        r = e.redacted
                        rows.append((e.position, r.origin, r.sequence, bytes(r.entry_hash)))
        return rows

    log_a = run_async(whole_log(replicas.a.member, tibro.tls))
    log_b = run_async(whole_log(replicas.b.member, falun.tls))
    assert log_a == log_b
    assert [row[0] for row in log_a] == list(range(1, len(log_a) + 1))  # no gap in positions
    for origin in (TIBRO, FALUN):
        sequences = [row[2] for row in log_a if row[1] == origin]
        assert sequences == list(range(1, n + 1)), origin  # each once, in order
    origins = [row[1] for row in log_a if row[1] in (TIBRO, FALUN)]
    switches = sum(1 for x, y in itertools.pairwise(origins) if x != y)
    print(f"\nconcurrent pushes: {len(origins)} entries; the origin changes {switches} times")

    # and every node following either replica can verify the whole log
    directory = replicas.hub.council.current_directory()
    assert directory is not None
    with reader_node(replicas) as node:

        async def mirror() -> None:
            async with FeedClient.connect(replicas.b.member, tibro.tls) as feed:
                async for page in feed.read_entries(0):
                    report = await asyncio.to_thread(
                        ingest,
                        node.store,
                        keyring_from_directory(directory.directory),
                        page.entries,
                    )
                    assert report.ok, report.first_refusal

        run_async(mirror())
        assert node.store.log_position() == len(log_a)


def test_replicas_never_both_re_sign_the_directory(replicas: Replicas) -> None:
    """Two replicas finding the directory stale at the same moment issue one new
    version, not two: each re-checks under the database's write lock."""
    b_hub = open_hub(replicas.b.dir, env={**os.environ, "SAMVERKA_STORE_URL": replicas.url})
    try:
        later = time.time_ns() // 1_000_000 + 4 * 24 * 3600 * 1000  # past half its life
        councils = [replicas.hub.council, b_hub.council]
        saved = [c.clock for c in councils]
        before = replicas.hub.members.directory_version()
        results: list[int] = []
        barrier = threading.Barrier(len(councils) * 3)

        def resign(council: Any) -> None:
            barrier.wait()
            results.append(council.ensure_fresh_directory().version)

        try:
            for council in councils:
                council.clock = lambda: later
            threads = [
                threading.Thread(target=resign, args=(c,)) for c in councils for _ in range(3)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            for council, clock in zip(councils, saved, strict=True):
                council.clock = clock
        assert results == [before + 1] * 6
        assert replicas.hub.members.directory_version() == before + 1
    finally:
        b_hub.close()


def test_hub_init_refuses_a_database_that_already_holds_a_hub(replicas: Replicas) -> None:
    """A replica is a copy of the hub folder; `hub init` on the same database would be
    a second hub with other keys, re-signing the directory with a key no node trusts."""
    other = replicas.procs.tmp / "hub-c"
    refused = replicas.procs.run(
        "hub", "init", "--dir", str(other), "--store-url", replicas.url, check=False
    )
    assert refused.returncode == 3, refused
    assert "already holds a hub" in refused.stderr and "copy its folder" in refused.stderr
    assert not (other / "samverka.toml").exists()


def test_replicas_share_one_transparency_log(replicas: Replicas) -> None:
    """Both replicas run a sequencer on the one database (samverka_hub.tlog): while
    members push to both, one log grows, every log position and directory version in it
    once, entries in cursor order, under checkpoints signed by the one log key."""
    from samverka.protocol import merkle
    from samverka.protocol.checkpoint import open_checkpoint
    from samverka_hub import tlog

    leksand, tibro = replicas.member(LEKSAND), replicas.member(TIBRO)
    replicas.wait_admitted(leksand, tibro)
    pushes = {
        address: (m, [m.writer.publish("lesson", record_id=f"t-{i}") for i in range(20)])
        for address, m in ((replicas.a.member, leksand), (replicas.b.member, tibro))
    }

    async def push(address: str, member: Member, entries: list[Any]) -> None:
        async with HubClient(address, member.tls) as link:
            for i in range(0, len(entries), 4):
                await link.publish([log_entry(e) for e in entries[i : i + 4]])

    async def together() -> None:
        await asyncio.gather(*(push(addr, m, e) for addr, (m, e) in pushes.items()))

    run_async(asyncio.wait_for(together(), 60))
    signer = tlog.load_log_key(replicas.a.dir)
    assert signer is not None
    assert tlog.load_log_key(replicas.b.dir).skey == signer.skey  # type: ignore[union-attr]
    hub = replicas.hub
    reader = tlog.LogReader(hub.store.engine, signer.verifier().vkey)

    def complete() -> tuple[int, bytes] | None:
        directory = hub.council.current_directory()
        assert directory is not None
        latest = reader.latest()
        expected = directory.version + hub.store.log_position()
        return latest if latest is not None and latest[0] == expected else None

    size, note = wait_for(complete, 20, "the log to hold every position and directory version")
    cp = open_checkpoint(note, signer.verifier()).checkpoint
    leaves = reader.read_leaves(0, size)
    assert cp.root_hash == merkle.root_from_leaf_hashes([merkle.leaf_hash(x) for x in leaves])
    parsed = [tlog.parse_leaf(x) for x in leaves]
    directories = [p.number for p in parsed if p.kind == tlog.KIND_DIRECTORY]
    entries = [(p.origin, p.number) for p in parsed if p.kind == tlog.KIND_ENTRY]
    assert directories == list(range(1, len(directories) + 1))
    assert len(entries) == hub.store.log_position() == len(set(entries))
    for origin in (LEKSAND, TIBRO):
        sequences = [s for o, s in entries if o == origin]
        assert sequences == list(range(1, len(sequences) + 1)), origin
