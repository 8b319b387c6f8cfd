"""Two hub replicas on one PostgreSQL survive losing it, and their fan-out resumes.

Replicas A and B (real ``hub serve`` processes, one database) take a steady push load
(one entry every 20 ms, alternating replicas, a failed Publish retried as the push
agent does); a node follows each replica with the real follow code
(``samverka.replication.sync.follow_peer``) into its own store. Mid-load the database
fails: every backend is terminated (``pg_terminate_backend``), or (throwaway cluster
only) the server is restarted, or paused (SIGSTOP of the postmaster and its children,
as a network drop: no error, only silence) for a few seconds. Afterwards every
follower holds every entry once (0 lost, 0 duplicated), and an entry pushed to one
replica after the database's return reaches the follower of the *other* replica (the
LISTEN/NOTIFY fan-out) within 5 s; both replicas report SERVING again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pgserver
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from samverka.errors import SamverkaError
from samverka.protocol.directory import keyring_from_directory
from samverka.protocol.entries import parse_signed
from samverka.replication.sync import follow_peer
from samverka.store.store import Store
from samverka.transport.client import ClientTls, FeedClient
from samverka.transport.hubclient import HubClient
from samverka.v1 import feed_pb2
from soakresults import record, soak

sys.path.insert(0, str(Path(__file__).parent.parent / "hub"))
from factories import FeedWriter
from hubkit import (
    Applicant,
    Procs,
    RunningHub,
    hub_env,
    run_async,
    start_replicas,
    wait_for,
)

ENTRIES = 600 if soak() else 200
INTERVAL = 0.02
#: Seconds within which fan-out must resume after the database's return.
RESUME_LIMIT = 5.0
PAUSE_SECONDS = 4.0
PUSHERS = {"terminate": "2029", "restart": "1472", "pause": "2080"}


@dataclass
class Replicas:
    procs: Procs
    a: RunningHub
    b: RunningHub
    hub_dir: Path
    database: str
    server: pgserver.PgServer


@pytest.fixture(scope="module")
def replicas(
    pg_restartable: pgserver.PgServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replicas]:
    pg_server = pg_restartable  # ours to terminate, pause and restart, even in CI
    name = f"samverka_f_{secrets.token_hex(4)}"
    with pg_server.connect() as admin:
        admin.autocommit = True
        admin.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")
    url = pg_server.url(name)
    tmp = tmp_path_factory.mktemp("replica-faults")
    procs = Procs(tmp, hub_env(SAMVERKA_WEB_ENABLED="false"))
    try:
        a, b = start_replicas(procs, url)
        wait_for(lambda: listeners(pg_server, name) >= 2, 15, "both replicas to LISTEN")
        yield Replicas(procs, a, b, a.dir, name, pg_server)
    finally:
        procs.stop_all()
        with contextlib.suppress(Exception), pg_server.connect() as admin:
            admin.autocommit = True
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def listeners(server: pgserver.PgServer, database: str) -> int:
    with server.connect() as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND query LIKE 'LISTEN%%'",
            (database,),
        ).fetchone()
    return int(row[0]) if row else 0


def terminate_backends(server: pgserver.PgServer, database: str) -> int:
    with server.connect() as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return len(rows)


def server_processes(server: pgserver.PgServer) -> list[int]:
    """The postmaster and its children (to pause them all, as a network drop)."""
    assert isinstance(server, pgserver.Throwaway) and server.pid is not None
    pids = [server.pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == server.pid:
                    pids.append(int(entry.name))
    return pids


async def health(address: str, tls: ClientTls, service: str = "") -> int:
    async with FeedClient.connect(address, tls) as feed:
        stub = health_pb2_grpc.HealthStub(feed.channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        return int(reply.status)


@pytest.mark.parametrize("fault", ["terminate", "restart", "pause"])
def test_replicas_fan_out_survives_losing_postgresql(
    replicas: Replicas, fault: str, request: pytest.FixtureRequest
) -> None:
    from samverka_hub.folder import open_hub

    hub = open_hub(replicas.hub_dir)
    try:
        pusher_code = PUSHERS[fault]
        applicant = Applicant.make(pusher_code)
        hub.council.submit_enrollment(applicant.request(at=time.time_ns() // 1_000_000))
        admission = hub.council.approve(pusher_code)
        # the member pushes, and (with the same certificate) a node of its follows each
        tls = ClientTls(
            ca=hub.ca.cert_pem, cert=admission.certificate_pem, key=applicant.tls_key_pem
        )
        directory = hub.council.current_directory()
        assert directory is not None
        keys = keyring_from_directory(directory.directory)
        writer = FeedWriter(pusher_code, applicant.key)
        entries = [writer.publish("use_case", record_id=f"f-{fault}-{i}") for i in range(ENTRIES)]
    finally:
        hub.close()
    time.sleep(0.5)  # the replicas' directory watchers (0.1 s) admit both

    tmp = replicas.procs.tmp / f"followers-{fault}"
    tmp.mkdir()
    stores = {r: Store.open(f"sqlite:///{tmp / (r + '.db')}") for r in ("a", "b")}
    address = {"a": replicas.a.member, "b": replicas.b.member}
    #: sequence -> monotonic time it arrived at each follower
    arrived: dict[str, dict[int, float]] = {"a": {}, "b": {}}
    accepted_at: dict[int, tuple[str, float]] = {}
    fault_over = [0.0]
    retries = [0]

    async def scenario() -> None:
        stop = asyncio.Event()

        async def follow(r: str) -> None:
            store = stores[r]

            def stored(positions: list[int]) -> None:
                now = time.monotonic()
                for pos in positions:
                    page = store.read_log(pos - 1, 1)
                    for e in page.entries:
                        if e.HasField("signed"):
                            p = parse_signed(e.signed)
                            if p.origin == pusher_code:
                                arrived[r].setdefault(p.sequence, now)

            async with FeedClient.connect(address[r], tls) as client:
                await follow_peer(
                    store, keys, client, peer=f"replica-{r}", stop=stop,
                    min_backoff=0.1, max_backoff=1.0, on_entries=stored,
                )  # fmt: skip

        async def push() -> None:
            links = {r: HubClient(address[r], tls) for r in ("a", "b")}
            try:
                for i, signed in enumerate(entries):
                    r = "ab"[i % 2]
                    while True:
                        try:
                            reply = await links[r].publish([feed_pb2.LogEntry(signed=signed)])
                            break
                        except SamverkaError:
                            retries[0] += 1
                            await asyncio.sleep(0.1)
                    assert reply.accepted + reply.duplicates == 1, reply
                    accepted_at[i + 1] = (r, time.monotonic())
                    await asyncio.sleep(INTERVAL)
            finally:
                for link in links.values():
                    await link.close()

        async def break_database() -> None:
            await asyncio.sleep(ENTRIES * INTERVAL / 3)
            server = replicas.server
            if fault == "terminate":
                await asyncio.to_thread(terminate_backends, server, replicas.database)
            elif fault == "restart":
                await asyncio.to_thread(server.restart)
            else:
                pids = server_processes(server)
                for pid in pids:
                    os.kill(pid, signal.SIGSTOP)
                try:
                    await asyncio.sleep(PAUSE_SECONDS)
                finally:
                    for pid in pids:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGCONT)
            fault_over[0] = time.monotonic()

        followers = [asyncio.create_task(follow(r)) for r in ("a", "b")]
        await asyncio.sleep(0.5)
        await asyncio.gather(push(), break_database())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(len(arrived[r]) < ENTRIES for r in arrived):
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.gather(*followers)

    run_async(asyncio.wait_for(scenario(), 180))

    lost = duplicated = 0
    for store in stores.values():
        rows: list[int] = []
        after = 0
        while True:
            page = store.read_log(after, 500)
            for e in page.entries:
                if e.HasField("signed"):
                    p = parse_signed(e.signed)
                    if p.origin == pusher_code:
                        rows.append(p.sequence)
            if page.next_position <= after or page.next_position >= page.log_position:
                break
            after = page.next_position
        lost += ENTRIES - len(set(rows))
        duplicated += len(rows) - len(set(rows))
        store.close()

    # Fan-out across replicas after the database's return: the first entry accepted by
    # one replica after it, and its arrival at the follower of the other.
    resumed: list[float] = []
    for r, other in (("a", "b"), ("b", "a")):
        later = sorted(
            s for s, (where, at) in accepted_at.items() if where == r and at >= fault_over[0]
        )
        first = later[0] if later else None
        if first is not None and first in arrived[other]:
            resumed.append(arrived[other][first] - fault_over[0])
        else:
            resumed.append(float("inf"))
    resume = max(resumed)
    states = [run_async(health(address, tls)) for address in address.values()]
    serving = all(s == health_pb2.HealthCheckResponse.SERVING for s in states)
    name = {
        "terminate": "PostgreSQL backends terminated under two replicas",
        "restart": "PostgreSQL restarted under two replicas",
        "pause": f"PostgreSQL paused {PAUSE_SECONDS:.0f} s under two replicas",
    }[fault]
    print(
        f"\n{name}: {ENTRIES} entries, lost {lost}, duplicated {duplicated}, fan-out resumed "
        f"in {resume:.2f} s (A->B {resumed[0]:.2f} s, B->A {resumed[1]:.2f} s), "
        f"{retries[0]} pushes retried, health {'SERVING' if serving else states}"
    )
    record(
        "fault",
        name,
        survived=lost == 0 and duplicated == 0 and resume <= RESUME_LIMIT and serving,
        entries=ENTRIES,
        lost=lost,
        duplicated=duplicated,
        resume_seconds=round(resume, 2),
    )
    assert lost == 0 and duplicated == 0
    assert resume <= RESUME_LIMIT, resumed
    assert serving, states
    for where in address.values():  # each replica's listener reports itself up
        assert run_async(health(where, tls, "samverka.task.log-listener")) == 1
